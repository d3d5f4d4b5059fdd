"""inferfleet: place AI inference replicas across heterogeneous accelerator pools.

Layers (dependencies point one way): ``controller`` (kopf) -> ``kube`` (API I/O) and
``translate`` -> ``api`` (pydantic) and ``core`` (pure planning, cost and power models).
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
