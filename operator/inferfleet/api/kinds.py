"""The registry of inferfleet's kinds: identity, scope, names and printer columns, in one place.

Owns, for each custom resource, what every other part needs to know about it: kind, plural, scope,
short names, category, its pydantic models (object, spec, status), description, printer columns and
whether it has a scale subresource.  Read by the CRD and doc generators, the API client's paths,
the controller's watches and object validation.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Final

from pydantic import BaseModel

from inferfleet.api import GROUP, VERSION
from inferfleet.api.acceleratorclass import AcceleratorClass, AcceleratorClassSpec, AcceleratorClassStatus
from inferfleet.api.fleetpolicy import FleetPolicy, FleetPolicySpec, FleetPolicyStatus
from inferfleet.api.inferencepool import InferencePool, InferencePoolSpec, InferencePoolStatus

__all__ = ["BY_KIND", "CATEGORY", "KINDS", "POLICY_NAME", "Kind"]

CATEGORY: Final = "inferfleet"
POLICY_NAME: Final = "default"  # the one FleetPolicy the operator reads


@dataclasses.dataclass(frozen=True)
class Kind:
    kind: str
    plural: str
    scope: str  # "Namespaced" or "Cluster"
    short_names: tuple[str, ...]
    model: type[BaseModel]
    spec: type[BaseModel]
    status: type[BaseModel]
    description: str
    columns: tuple[dict[str, Any], ...]
    scale: bool = False
    group: str = GROUP
    version: str = VERSION

    @property
    def namespaced(self) -> bool:
        return self.scope == "Namespaced"

    @property
    def name(self) -> str:
        return f"{self.plural}.{GROUP}"


_READY = {
    "name": "Ready",
    "type": "string",
    "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
}
_AGE = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}

KINDS: tuple[Kind, ...] = (
    Kind(
        kind="InferencePool",
        model=InferencePool,
        plural="inferencepools",
        scope="Namespaced",
        short_names=("ifp",),
        spec=InferencePoolSpec,
        status=InferencePoolStatus,
        description="One model served under latency SLOs, placed by inferfleet across accelerator classes.",
        columns=(
            _READY,
            {"name": "Replicas", "type": "integer", "jsonPath": ".status.replicas"},
            {"name": "Available", "type": "integer", "jsonPath": ".status.readyReplicas"},
            {"name": "Placement", "type": "string", "jsonPath": ".status.placementSummary"},
            {"name": "Watts", "type": "integer", "jsonPath": ".status.watts"},
            {"name": "$/h", "type": "number", "jsonPath": ".status.dollarsPerHour"},
            {"name": "Model", "type": "string", "jsonPath": ".spec.model.name", "priority": 1},
            {"name": "Reason", "type": "string", "jsonPath": ".status.lastChange.reason", "priority": 1},
            _AGE,
        ),
        scale=True,
    ),
    Kind(
        kind="AcceleratorClass",
        model=AcceleratorClass,
        plural="acceleratorclasses",
        scope="Cluster",
        short_names=("accelclass",),
        spec=AcceleratorClassSpec,
        status=AcceleratorClassStatus,
        description="One kind of accelerator node pool: node selection, hardware figures, price, "
        "power domain.",
        columns=(
            {"name": "Resource", "type": "string", "jsonPath": ".spec.resourceName"},
            {"name": "Domain", "type": "string", "jsonPath": ".spec.powerDomain"},
            {"name": "Nodes", "type": "integer", "jsonPath": ".status.readyNodes"},
            {"name": "Devices", "type": "integer", "jsonPath": ".status.devicesTotal"},
            {"name": "Used", "type": "integer", "jsonPath": ".status.devicesUsed"},
            {"name": "Watts", "type": "integer", "jsonPath": ".status.watts"},
            _AGE,
        ),
    ),
    Kind(
        kind="FleetPolicy",
        model=FleetPolicy,
        plural="fleetpolicies",
        scope="Cluster",
        short_names=("fleetpol",),
        spec=FleetPolicySpec,
        status=FleetPolicyStatus,
        description="The fleet's shared cost model and power budgets; the operator reads the one "
        "named default.",
        columns=(
            {"name": "Watts", "type": "integer", "jsonPath": ".status.watts"},
            {"name": "$/h", "type": "number", "jsonPath": ".status.dollarsPerHour"},
            {"name": "Solver", "type": "string", "jsonPath": ".status.lastPlan.status"},
            {"name": "Last-Plan", "type": "date", "jsonPath": ".status.lastPlan.time"},
            _AGE,
        ),
    ),
)


BY_KIND: Final[dict[str, Kind]] = {k.kind: k for k in KINDS}
