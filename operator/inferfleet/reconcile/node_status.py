"""What the plan counts of the nodes, said: a class's ``NodesReady``, ``NodesShared`` and
``CapacityMatchesNodes`` conditions, the policy's ``NodesHealthy``, and their events.

Owns ``ClassNodes`` (the facts of one class's matching nodes under ``translate.readiness``: which
are held within their grace period, lost, returning) and turning those facts into conditions and
events; the sentences are made here, at the edge.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from inferfleet.api.conditions import ConditionType, EventReason, Reason
from inferfleet.reconcile.status import condition
from inferfleet.translate.inventory import NodeInfo
from inferfleet.translate.problem import overlap_words
from inferfleet.translate.readiness import Health, Rules, Verdict

__all__ = [
    "ClassNodes",
    "class_nodes",
    "fleet_condition",
    "override_condition",
    "shared_condition",
    "transition_event",
]

NAMES_SHOWN = 5


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(names[:NAMES_SHOWN])
    return shown + (f" and {len(names) - NAMES_SHOWN} more" if len(names) > NAMES_SHOWN else "")


@dataclasses.dataclass(frozen=True)
class ClassNodes:
    """A class's matching nodes by the health the plan counts."""

    total: int
    rules: Rules
    held: tuple[str, ...] = ()
    lost: tuple[str, ...] = ()
    returning: tuple[str, ...] = ()
    mass: bool = False

    @property
    def reason(self) -> Reason:
        if self.lost:
            return Reason.NODES_LOST
        if self.held and self.mass:
            return Reason.MASS_NOT_READY
        if self.returning:
            return Reason.RETURNING
        if self.held:
            return Reason.WITHIN_GRACE
        return Reason.ALL_NODES_READY

    def message(self) -> str:
        grace, window = f"{self.rules.grace_s:g}s", f"{self.rules.stabilization_s:g}s"
        parts = []
        if self.lost:
            parts.append(
                f"{len(self.lost)} of {self.total} nodes NotReady for over {grace} ({_names(self.lost)}): "
                "their replicas are re-planned on other nodes"
            )
        if self.held:
            why = (
                "most nodes of every zone are NotReady, a control-plane problem: nothing is moved"
                if self.mass
                else f"NotReady for less than {grace}: their replicas are kept"
            )
            parts.append(f"{len(self.held)} of {self.total} nodes {why} ({_names(self.held)})")
        if self.returning:
            parts.append(
                f"{len(self.returning)} node(s) Ready again ({_names(self.returning)}): used once Ready "
                f"for {window}"
            )
        return "; ".join(parts) or f"all {self.total} matching nodes Ready"

    def condition(self, generation: int | None) -> dict[str, Any]:
        ok = self.reason is Reason.ALL_NODES_READY
        return condition(ConditionType.NODES_READY, ok, self.reason, self.message(), generation)


def class_nodes(matching: Sequence[NodeInfo], verdict: Verdict) -> ClassNodes:
    by: dict[Health, list[str]] = {h: [] for h in Health}
    for node in sorted(matching, key=lambda n: n.name):
        by[node.health or (Health.READY if node.ready else Health.LOST)].append(node.name)
    return ClassNodes(
        len(matching),
        verdict.rules,
        tuple(by[Health.HELD]),
        tuple(by[Health.LOST]),
        tuple(by[Health.RETURNING]),
        verdict.mass,
    )


def fleet_condition(verdict: Verdict, generation: int | None) -> dict[str, Any]:
    """The FleetPolicy's NodesHealthy: False while the fleet reads as a control-plane problem."""
    if verdict.mass:
        return condition(
            ConditionType.NODES_HEALTHY,
            False,
            Reason.MASS_NOT_READY,
            f"{verdict.not_ready} of {verdict.total} nodes NotReady, most of every zone: taken as a "
            "control-plane problem (API server, network, node heartbeats), so no replica is moved "
            "until nodes report again",
            generation,
        )
    return condition(
        ConditionType.NODES_HEALTHY,
        True,
        Reason.ALL_NODES_READY if verdict.not_ready == 0 else Reason.WITHIN_GRACE,
        f"{verdict.total - verdict.not_ready} of {verdict.total} nodes Ready",
        generation,
    )


def shared_condition(
    name: str,
    others: Mapping[str, Sequence[str]],
    owners: Mapping[tuple[str, str], str],
    resource: str,
    generation: int | None,
) -> dict[str, Any]:
    """NodesShared: True when other classes match some of this class's nodes for the same device
    (each node counts once, for its owner: ``inventory.node_owners``)."""
    if not others:
        return condition(
            ConditionType.NODES_SHARED,
            False,
            Reason.EXCLUSIVE,
            "no other class matches its nodes",
            generation,
        )
    parts = []
    for other, shared in sorted(others.items()):
        mine = sum(1 for n in shared if owners.get((n, resource)) == name)
        theirs = len(shared) - mine
        parts.append(
            f"{overlap_words(name, other, shared)}; {mine} of them count for {name}, {theirs} for {other}"
        )
    return condition(
        ConditionType.NODES_SHARED, True, Reason.OVERLAPS_OTHER_CLASSES, "; ".join(parts), generation
    )


def override_condition(override_nodes: int, matching: int, generation: int | None) -> dict[str, Any]:
    """CapacityMatchesNodes, for a class with spec.capacity: False when it counts more nodes than
    match (their replicas stay Pending until a node autoscaler adds nodes)."""
    if override_nodes > matching:
        return condition(
            ConditionType.CAPACITY_MATCHES_NODES,
            False,
            Reason.OVERRIDE_BEYOND_NODES,
            f"spec.capacity.nodes is {override_nodes} but {matching} Ready node(s) match nodeSelector: the "
            "plan counts the override, so replicas beyond the matching nodes stay Pending until a node "
            "autoscaler adds nodes; lower spec.capacity.nodes or remove it to count the nodes",
            generation,
        )
    return condition(
        ConditionType.CAPACITY_MATCHES_NODES,
        True,
        Reason.OVERRIDE_WITHIN_NODES,
        f"spec.capacity.nodes is {override_nodes}; {matching} Ready node(s) match nodeSelector",
        generation,
    )


def _reason(conditions: Sequence[Mapping[str, Any]] | None, type_: ConditionType) -> str | None:
    return next((c.get("reason") for c in conditions or () if c.get("type") == type_), None)


def transition_event(
    previous: Sequence[Mapping[str, Any]] | None, new: Mapping[str, Any]
) -> tuple[Literal["Normal", "Warning"], EventReason] | None:
    """The event a NodesReady or NodesHealthy condition's change deserves: nodes lost, lost nodes
    back in use, mass NotReady begun (type, reason); None when nothing worth an event changed."""
    before = _reason(previous, ConditionType(new["type"]))
    after = new["reason"]
    if after == before:
        return None
    if after == Reason.NODES_LOST:
        return "Warning", EventReason.NODES_LOST
    if after == Reason.MASS_NOT_READY and new["type"] == ConditionType.NODES_HEALTHY:
        return "Warning", EventReason.MASS_NOT_READY  # once, on the policy, not on every class
    if after == Reason.ALL_NODES_READY and before in (Reason.NODES_LOST, Reason.RETURNING):
        return "Normal", EventReason.NODES_RETURNED
    if after == Reason.OVERLAPS_OTHER_CLASSES:
        return "Warning", EventReason.NODES_SHARED
    if after == Reason.OVERRIDE_BEYOND_NODES:
        return "Warning", EventReason.CAPACITY_BEYOND_NODES
    return None
