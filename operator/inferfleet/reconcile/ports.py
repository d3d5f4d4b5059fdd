"""The ports of the pure reconcile layer: what it reads and what it writes (adapters implement them).

Owns two shapes only: ``Snapshot`` (everything one plan needs, read in one go, as plain dicts in the
API's camelCase JSON form) and ``Writer`` (every write the loop may make, counted).  The loop and the
pure reconcile code depend on these, never on the Kubernetes client.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal, Protocol

__all__ = ["Obj", "Snapshot", "Writer"]

Obj = dict[str, Any]  # a Kubernetes object as JSON (camelCase), e.g. from the API or a manifest


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """The fleet as the API server says it is now."""

    pools: list[Obj]  # every InferencePool (all watched namespaces)
    classes: list[Obj]  # every AcceleratorClass
    policy: Obj | None  # the FleetPolicy named "default", if any
    nodes: list[Obj]  # every Node
    # node name -> extended resource -> devices requested by running/pending pods NOT managed by
    # inferfleet (label app.kubernetes.io/managed-by != inferfleet); our own replicas are re-planned.
    foreign_used: Mapping[str, Mapping[str, int]]
    deployments: list[Obj]  # Deployments labelled app.kubernetes.io/managed-by=inferfleet
    services: list[Obj]  # Services labelled app.kubernetes.io/managed-by=inferfleet
    # ("namespace/pool", class) -> our pods that exist on Ready nodes (bound, unfinished, terminating
    # ones included): what draws power now, whatever the Deployments say they want.
    live_replicas: Mapping[tuple[str, str], int] = dataclasses.field(default_factory=dict)


class Writer(Protocol):
    """Every write the operator makes.  Implementations count writes by kind and verb."""

    def apply(self, obj: Obj) -> None:
        """Server-side apply (field manager ``inferfleet``, force) of a Deployment or Service."""

    def delete(self, kind: Literal["Deployment", "Service"], namespace: str, name: str) -> None:
        """Delete a child (404 is not an error)."""

    def patch_status(
        self,
        kind: Literal["InferencePool", "AcceleratorClass", "FleetPolicy"],
        namespace: str | None,
        name: str,
        status: Obj,
    ) -> None:
        """Merge-patch the status subresource (lists inside are replaced whole)."""

    def event(self, obj: Obj, type_: Literal["Normal", "Warning"], reason: str, message: str) -> None:
        """Record a core/v1 Event about obj (an object dict with apiVersion, kind and metadata)."""
