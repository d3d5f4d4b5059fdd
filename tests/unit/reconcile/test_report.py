"""``report``: the events of a round say what its writes carry out; an increase the gate holds back
(its power domain waits for removed pods to go) is said by the round that applies it, once."""

from __future__ import annotations

import copy
from typing import Any

from examples import ROOT, example_docs

from inferfleet.api.conditions import EventReason
from inferfleet.api.simulatedfleet import load_fleet, node_manifests
from inferfleet.core import planner
from inferfleet.reconcile.decide import Decision, decide
from inferfleet.reconcile.ports import Snapshot

CHANGES = (EventReason.PLACED, EventReason.MOVED, EventReason.RESCALED)
NODES = node_manifests(load_fleet(ROOT / "examples/simulated-fleet/fleet.yaml"), 1)


def snapshot(docs: list[dict[str, Any]], deployments: list[dict[str, Any]], live: bool = True) -> Snapshot:
    """The fleet with ``deployments`` as the API server holds them (``live``: their pods all alive)."""
    return Snapshot(
        pools=[d for d in docs if d["kind"] == "InferencePool"],
        classes=[d for d in docs if d["kind"] == "AcceleratorClass"],
        policy=next(d for d in docs if d["kind"] == "FleetPolicy"),
        nodes=NODES,
        foreign_used={},
        deployments=deployments,
        services=[],
        live_replicas={key(d): d["spec"]["replicas"] for d in deployments} if live else {},
    )


def key(dep: dict[str, Any]) -> tuple[str, str]:
    labels = dep["metadata"]["labels"]
    return f"{dep['metadata']['namespace']}/{labels['inferfleet.dev/pool']}", labels[
        "inferfleet.dev/accelerator-class"
    ]


def applied(decision: Decision, before: list[dict[str, Any]] = ()) -> list[dict[str, Any]]:  # type: ignore[assignment]
    out = {d["metadata"]["name"]: d for d in before}
    for desired in decision.reductions + decision.increases:
        if desired["kind"] == "Deployment":
            obj = copy.deepcopy(desired)
            obj["status"] = {"readyReplicas": obj["spec"]["replicas"]}
            out[obj["metadata"]["name"]] = obj
    return list(out.values())


def changes(decision: Decision) -> dict[str, str]:
    """Pool key -> the sentence of its placement change event."""
    return {
        f"{e.obj['metadata']['namespace']}/{e.obj['metadata']['name']}": e.message
        for e in decision.events
        if e.reason in CHANGES
    }


def test_an_increase_that_waits_is_said_by_the_round_that_applies_it() -> None:
    docs = example_docs()
    first = decide(snapshot(docs, []), "2026-12-01T10:00:00Z", planner.solve)
    running = applied(first)
    counts = {key(d): d["spec"]["replicas"] for d in running}
    policy = next(d for d in docs if d["kind"] == "FleetPolicy")
    policy["spec"]["powerDomains"] = [
        {"name": "hall-a", "budgetKilowatts": 10},
        {"name": "hall-b", "budgetKilowatts": 20},
    ]
    second = decide(snapshot(docs, running), "2026-12-01T10:01:00Z", planner.solve)
    assert second.deferred == ["hall-b"]
    assert second.plan is not None
    written = {key(o) for o in second.increases if o["kind"] == "Deployment"}
    held = {
        (pp.key, pl.accelerator_class)
        for pp in second.plan.pools
        for pl in pp.placements
        if pl.replicas > counts.get((pp.key, pl.accelerator_class), 0)
        and (pp.key, pl.accelerator_class) not in written
    }
    assert held, "the budget cut holds no increase back: the scenario tests nothing"
    said = changes(second)
    for pool, cls in held:  # nothing said adds replicas on a held class this round
        sentence = said.get(pool, "")
        assert not sentence.startswith(("placed", "scaled up", "moved")) or cls not in sentence, sentence
    # the reductions land and the removed pods go: the increases are written, and said
    third = decide(snapshot(docs, applied(second, running)), "2026-12-01T10:01:02Z", planner.solve)
    assert third.deferred == []
    said = changes(third)
    for pool, cls in held:
        assert cls in said.get(pool, ""), f"{pool}: {said.get(pool)}"
    # and a round with nothing left to do says nothing
    fourth = decide(
        snapshot(docs, applied(third, applied(second, running))), "2026-12-01T10:01:04Z", planner.solve
    )
    assert changes(fourth) == {}
