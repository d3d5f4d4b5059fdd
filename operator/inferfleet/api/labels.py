"""Every label, annotation and taint key inferfleet reads or writes, and their fixed values.

One home for each: children (Deployments, Services, pods, their scheduling gate), the nodes the
simulated fleet renders, and the selectors the operator and tests use.  Keys under
``inferfleet.dev/`` are ours; the ``app.kubernetes.io/*`` keys follow Kubernetes' recommended labels.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "ACCELERATOR_CLASS",
    "ACCELERATOR_TAINT",
    "COMPONENT",
    "HOSTNAME",
    "INSTANCE",
    "KWOK_NODE",
    "MANAGED_BY",
    "MANAGER",
    "NAME",
    "NODE_GROUP",
    "NOT_OURS",
    "OURS",
    "PART_OF",
    "PLACEMENT_GATE",
    "POOL",
    "POWER_DOMAIN",
    "PRODUCT",
    "SIM_MANAGER",
    "SPEC_HASH",
    "ZONE",
    "pool_selector",
]

# app.kubernetes.io recommended labels
NAME: Final = "app.kubernetes.io/name"
INSTANCE: Final = "app.kubernetes.io/instance"
COMPONENT: Final = "app.kubernetes.io/component"
PART_OF: Final = "app.kubernetes.io/part-of"
MANAGED_BY: Final = "app.kubernetes.io/managed-by"
PRODUCT: Final = "inferfleet"  # the value of part-of
MANAGER: Final = "inferfleet"  # the value of managed-by on the operator's children
SIM_MANAGER: Final = "inferfleet-sim"  # the value of managed-by on the simulated fleet's nodes
OURS: Final = f"{MANAGED_BY}={MANAGER}"  # label selector of the operator's children
NOT_OURS: Final = f"{MANAGED_BY}!={MANAGER}"

# on children and their pods
POOL: Final = "inferfleet.dev/pool"  # the InferencePool's name
ACCELERATOR_CLASS: Final = "inferfleet.dev/accelerator-class"  # the AcceleratorClass's name (pods, nodes)
SPEC_HASH: Final = "inferfleet.dev/spec-hash"  # annotation: hash of what the operator owns in a child
# scheduling gate on replicas: held until the operator pins each to its planned node
PLACEMENT_GATE: Final = "inferfleet.dev/placement"
HOSTNAME: Final = "kubernetes.io/hostname"  # the well-known node label a pinned replica selects

# on (simulated) nodes
POWER_DOMAIN: Final = "inferfleet.dev/power-domain"
NODE_GROUP: Final = "inferfleet.dev/sim-pool"  # which node group of a SimulatedFleet made the node
ACCELERATOR_TAINT: Final = "inferfleet.dev/accelerator"  # taint key, value = class name
ZONE: Final = "topology.kubernetes.io/zone"
KWOK_NODE: Final = "kwok.x-k8s.io/node"  # annotation kwok manages (value "fake")


def pool_selector(pool_name: str) -> str:
    """The label selector of every replica of one pool (status.selector, for the scale subresource)."""
    return f"{POOL}={pool_name}"
