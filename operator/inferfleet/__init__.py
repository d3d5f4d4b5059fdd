"""inferfleet: place AI inference replicas across heterogeneous accelerator pools.

Layers, dependencies pointing down (locked by the import-linter contracts in pyproject.toml)::

    cli                      faces: plan, run, crds
    controller               kopf, the planning loop, the metrics observer
    kube | observe | metrics adapters: Kubernetes API and watch cache | Prometheus | exporter
    reconcile | plan         pure: snapshot + measurements -> decision | the offline what-if
    translate                the one bridge: API objects -> core Problem
    api | core               pydantic kinds | pure models, planner, autoscaling policy

The dev harness (``inferfleet_dev``: local control plane, simulator, demo) imports this package,
never the reverse.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
