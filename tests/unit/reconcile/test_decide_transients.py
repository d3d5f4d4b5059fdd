"""``decide`` over several rounds while nodes fail and return: a blip moves nothing, a loss moves
replicas (scaling Deployments, never deleting them), a return waits for the stabilization window,
and a fleet-wide NotReady is taken as a control-plane problem."""

from __future__ import annotations

import copy
import datetime
from typing import Any

from examples import ROOT, example_docs
from tests.unit.reconcile.test_decide import applied, snapshot, solve, with_statuses

from inferfleet.api.simulatedfleet import load_fleet, node_manifests
from inferfleet.reconcile.decide import Decision, decide
from inferfleet.translate.readiness import Seen

T0 = datetime.datetime(2026, 12, 1, 10, 0, tzinfo=datetime.UTC)
CLASS_LABEL = "inferfleet.dev/accelerator-class"


def at(seconds: float) -> str:
    return (T0 + datetime.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def fleet_nodes(
    not_ready: frozenset[str] | set[str] = frozenset(), since: float | None = None
) -> list[dict[str, Any]]:
    """The simulated fleet's nodes, those of the classes in ``not_ready`` NotReady since ``since``."""
    nodes = node_manifests(load_fleet(ROOT / "examples/simulated-fleet/fleet.yaml"), 1)
    for n in nodes:
        ready = n["metadata"]["labels"].get(CLASS_LABEL) not in not_ready
        cond: dict[str, Any] = {"type": "Ready", "status": "True" if ready else "Unknown"}
        if not ready and since is not None:
            cond["lastTransitionTime"] = at(since)
        n.setdefault("status", {})["conditions"] = [cond]
    return nodes


def policy_with(docs: list[dict[str, Any]], grace: int, window: int) -> list[dict[str, Any]]:
    docs = copy.deepcopy(docs)
    for d in docs:
        if d["kind"] == "FleetPolicy":
            d["spec"].setdefault("planning", {}).update(
                nodeNotReadyGraceSeconds=grace, nodeReturnStabilizationSeconds=window
            )
    return docs


class Fleet:
    """Rounds of decide with the API server's side played: children applied, statuses kept."""

    def __init__(self, grace: int = 60, window: int = 120) -> None:
        self.docs = policy_with(example_docs(), grace, window)
        self.deployments: dict[str, dict[str, Any]] = {}
        self.seen: dict[str, Seen] | None = None

    def round(self, t: float, nodes: list[dict[str, Any]]) -> Decision:
        d = decide(snapshot(self.docs, list(self.deployments.values()), nodes), at(t), solve, seen=self.seen)
        self.seen = d.seen
        for dep in applied(d):
            self.deployments[dep["metadata"]["name"]] = dep
        for _, _, name in d.deletes:
            self.deployments.pop(name, None)
        self.docs = with_statuses(self.docs, d)
        return d

    def replicas_on(self, cls: str) -> int:
        return sum(
            d["spec"]["replicas"]
            for d in self.deployments.values()
            if d["metadata"]["labels"].get(CLASS_LABEL) == cls
        )

    def conditions(self, kind: str, name: str) -> dict[str, dict[str, Any]]:
        obj = next(d for d in self.docs if d["kind"] == kind and d["metadata"]["name"] == name)
        return {c["type"]: c for c in (obj.get("status") or {}).get("conditions", [])}


def busiest_class(fleet: Fleet) -> str:
    counts: dict[str, int] = {}
    for d in fleet.deployments.values():
        cls = d["metadata"]["labels"][CLASS_LABEL]
        counts[cls] = counts.get(cls, 0) + d["spec"]["replicas"]
    return max(sorted(counts), key=lambda c: counts[c])


def settled_fleet(**kw: int) -> tuple[Fleet, str]:
    fleet = Fleet(**kw)
    fleet.round(0, fleet_nodes())
    assert not moves(fleet.round(1, fleet_nodes()))
    return fleet, busiest_class(fleet)


def moves(d: Decision) -> list[Any]:
    """The Deployment writes of a round (Services are re-applied: the snapshot here holds none)."""
    return [w for w in d.reductions + d.increases if w["kind"] == "Deployment"] + d.deletes


def test_a_blip_shorter_than_the_grace_period_moves_nothing_and_says_so() -> None:
    fleet, victim = settled_fleet(grace=60)
    before = copy.deepcopy(fleet.deployments)
    held = fleet.round(20, fleet_nodes({victim}, since=15))
    assert not moves(held)
    cond = fleet.conditions("AcceleratorClass", victim)["NodesReady"]
    assert (cond["status"], cond["reason"]) == ("False", "WithinGrace")
    assert "replicas are kept" in cond["message"]
    back = fleet.round(30, fleet_nodes())
    assert not moves(back) and fleet.deployments == before
    assert fleet.conditions("AcceleratorClass", victim)["NodesReady"]["reason"] == "AllNodesReady"
    assert not [e for e in held.events + back.events if e.reason in ("NodesLost", "NodesReturned")]


def test_a_loss_beyond_the_grace_period_scales_the_class_to_zero_and_a_return_waits() -> None:
    fleet, victim = settled_fleet(grace=60, window=120)
    lost_at = 10
    fleet.round(30, fleet_nodes({victim}, since=lost_at))  # within grace
    assert fleet.replicas_on(victim) > 0
    lost = fleet.round(lost_at + 61, fleet_nodes({victim}, since=lost_at))
    assert fleet.replicas_on(victim) == 0 and not lost.deletes  # scaled, not deleted
    assert any(d["metadata"]["name"].endswith(victim) for d in lost.reductions)
    assert [e.reason for e in lost.events if e.reason == "NodesLost"] == ["NodesLost"]
    assert fleet.conditions("AcceleratorClass", victim)["NodesReady"]["reason"] == "NodesLost"
    moved = fleet.replicas_on(victim)

    back_at = 200
    waiting = fleet.round(back_at, fleet_nodes())
    assert fleet.replicas_on(victim) == moved == 0  # not within a second: the window holds it
    assert fleet.conditions("AcceleratorClass", victim)["NodesReady"]["reason"] == "Returning"
    assert not waiting.increases or all(not d["metadata"]["name"].endswith(victim) for d in waiting.increases)
    fleet.round(back_at + 119, fleet_nodes())
    assert fleet.replicas_on(victim) == 0
    used = fleet.round(back_at + 121, fleet_nodes())
    assert fleet.conditions("AcceleratorClass", victim)["NodesReady"]["reason"] == "AllNodesReady"
    assert [e.reason for e in used.events if e.reason == "NodesReturned"] == ["NodesReturned"]


def test_an_operator_restart_during_a_long_outage_acts_on_the_nodes_transition_time() -> None:
    fleet, victim = settled_fleet(grace=60)
    fleet.seen = None  # restarted: no memory
    fleet.round(500, fleet_nodes({victim}, since=100))
    assert fleet.replicas_on(victim) == 0
    assert fleet.conditions("AcceleratorClass", victim)["NodesReady"]["reason"] == "NodesLost"


def test_every_zone_mostly_not_ready_is_a_control_plane_problem_and_moves_nothing() -> None:
    fleet, _ = settled_fleet(grace=10)
    every = {n["metadata"]["labels"][CLASS_LABEL] for n in fleet_nodes()}
    before = copy.deepcopy(fleet.deployments)
    first = fleet.round(5, fleet_nodes(every, since=2))
    later = fleet.round(300, fleet_nodes(every, since=2))
    assert fleet.deployments == before
    assert not moves(first) and not moves(later)
    healthy = fleet.conditions("FleetPolicy", "default")["NodesHealthy"]
    assert (healthy["status"], healthy["reason"]) == ("False", "MassNotReady")
    assert [e.reason for e in first.events + later.events if e.reason == "MassNotReady"] == ["MassNotReady"]
    fleet.round(310, fleet_nodes())
    assert fleet.conditions("FleetPolicy", "default")["NodesHealthy"]["status"] == "True"
    assert fleet.deployments == before


def test_the_next_round_comes_when_a_grace_period_ends_not_at_the_resync() -> None:
    fleet, victim = settled_fleet(grace=60)
    held = fleet.round(20, fleet_nodes({victim}, since=15))
    assert held.resync_s == 56  # 15 + 60 - 20, and a second so the clock has passed it
