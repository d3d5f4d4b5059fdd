"""The ports of the pure reconcile layer: what it reads and what it writes (adapters implement them).

Owns three shapes only: ``Snapshot`` (everything one plan needs, read in one go, as plain dicts in
the API's camelCase JSON form), ``Writer`` (every write the loop may make, counted) and ``Refusal``
(a child write of the last round that failed, as the loop saw it: the next round says so in the
pool's status and events).  The loop and the
pure reconcile code depend on these, never on the Kubernetes client.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal, Protocol

__all__ = ["INVALID_CODES", "ChildKind", "Obj", "Refusal", "Snapshot", "Writer"]

Obj = dict[str, Any]  # a Kubernetes object as JSON (camelCase), e.g. from the API or a manifest
ChildKind = Literal["Deployment", "Service", "ConfigMap", "Pod"]  # what the operator may delete


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """The fleet as the API server says it is now."""

    pools: list[Obj]  # every InferencePool (all watched namespaces)
    classes: list[Obj]  # every AcceleratorClass
    policy: Obj | None  # the FleetPolicy named "default", if any
    nodes: list[Obj]  # every Node
    # node name -> extended resource -> devices requested by running/pending pods NOT managed by
    # inferfleet (label app.kubernetes.io/managed-by != inferfleet), and by our terminating ones;
    # our other replicas are re-planned.
    foreign_used: Mapping[str, Mapping[str, int]]
    deployments: list[Obj]  # Deployments labelled app.kubernetes.io/managed-by=inferfleet
    services: list[Obj]  # Services labelled app.kubernetes.io/managed-by=inferfleet
    # ("namespace/pool", class) -> our pods that exist on Ready nodes (bound, unfinished, terminating
    # ones included): what draws power now, whatever the Deployments say they want.
    live_replicas: Mapping[tuple[str, str], int] = dataclasses.field(default_factory=dict)
    # ("namespace/pool", class) -> (our pods the scheduler marked Unschedulable, its message)
    unschedulable: Mapping[tuple[str, str], tuple[int, str]] = dataclasses.field(default_factory=dict)
    # ("namespace/pool", class) -> node -> names of our bound, unfinished, not terminating pods there
    placed: Mapping[tuple[str, str], Mapping[str, tuple[str, ...]]] = dataclasses.field(default_factory=dict)
    # our unbound pods (trimmed: identity, scheduling gates, hostname pin, PodScheduled condition)
    pending_pods: list[Obj] = dataclasses.field(default_factory=list)
    # ConfigMaps labelled app.kubernetes.io/managed-by=inferfleet (size-aware pools' routing)
    config_maps: list[Obj] = dataclasses.field(default_factory=list)


INVALID_CODES = (400, 403, 422)  # the server judged the object (invalid, or denied by admission)


@dataclasses.dataclass(frozen=True)
class Refusal:
    """A write of a pool's child that failed (refused by the API server, or not answered), or that
    a server-side dry run refused before the plan counted it (``dry_run``)."""

    pool: str  # "namespace/name" of the pool the child belongs to
    kind: str  # Deployment | Service | ConfigMap | Pod (a replica pinned to its node, or taken off one)
    name: str
    verb: Literal["apply", "delete", "pin"]
    message: str  # the server's words (status code and message), or the transport failure
    accelerator_class: str | None = None  # the class a Deployment runs on
    code: int | None = None  # the HTTP status (None: no answer)
    dry_run: bool = False

    @property
    def invalid(self) -> bool:
        """The server refused this pool's Deployment on this class as such (not a transient
        failure): the plan must not count it until it is fixed or tried again."""
        return (
            self.kind == "Deployment"
            and self.verb == "apply"
            and self.accelerator_class is not None
            and self.code in INVALID_CODES
        )


class Writer(Protocol):
    """Every write the operator makes.  Implementations count writes by kind and verb."""

    def apply(self, obj: Obj) -> None:
        """Server-side apply (field manager ``inferfleet``, force) of a Deployment, Service or
        ConfigMap."""

    def dry_run(self, obj: Obj) -> None:
        """``apply`` with ``dryRun=All``: admission and validation run, nothing is stored; raises
        as ``apply`` would."""

    def delete(self, kind: ChildKind, namespace: str, name: str) -> None:
        """Delete a child, or a replica (404 is not an error)."""

    def pin(self, namespace: str, name: str, node: str | None) -> None:
        """Lift a replica's placement gate, adding ``kubernetes.io/hostname: node`` to its
        nodeSelector (None: lift only)."""

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
