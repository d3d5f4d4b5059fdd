"""The one bridge: ``problem_from`` is what both ``inferfleet plan`` and the operator's ``decide``
plan from, so the offline planner replays the operator's decision exactly."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from examples import ROOT, example_docs

from inferfleet.api.acceleratorclass import AcceleratorClass
from inferfleet.api.fleetpolicy import FleetPolicy
from inferfleet.api.inferencepool import InferencePool
from inferfleet.api.simulatedfleet import load_fleet, node_manifests
from inferfleet.core import planner
from inferfleet.core import types as core
from inferfleet.reconcile.decide import decide
from inferfleet.reconcile.ports import Snapshot
from inferfleet.translate import inventory
from inferfleet.translate.problem import Fleet, NoteKind, Overrides, Running, problem_from

FLEET_FILE = ROOT / "examples" / "simulated-fleet" / "fleet.yaml"


def _fleet(docs: list[dict[str, Any]], nodes: list[dict[str, Any]] | None) -> Fleet:
    return Fleet(
        [InferencePool.model_validate(d) for d in docs if d["kind"] == "InferencePool"],
        [AcceleratorClass.model_validate(d) for d in docs if d["kind"] == "AcceleratorClass"],
        [FleetPolicy.model_validate(d) for d in docs if d["kind"] == "FleetPolicy"],
        None if nodes is None else [inventory.node_info_from_manifest(n) for n in nodes],
    )


def _counts(plan: core.Plan) -> dict[str, dict[str, int]]:
    return {pp.key: {p.accelerator_class: p.replicas for p in pp.placements} for pp in plan.pools}


def test_the_operator_and_the_offline_planner_plan_the_same_fleet_identically() -> None:
    docs = example_docs()
    nodes = node_manifests(load_fleet(FLEET_FILE))
    seen: list[core.Problem] = []

    def solve(problem: core.Problem) -> core.Plan:
        seen.append(problem)
        return planner.solve(problem)

    snap = Snapshot(
        pools=[d for d in docs if d["kind"] == "InferencePool"],
        classes=[d for d in docs if d["kind"] == "AcceleratorClass"],
        policy=next(d for d in docs if d["kind"] == "FleetPolicy"),
        nodes=nodes,
        foreign_used={},
        deployments=[],
        services=[],
    )
    decision = decide(snap, "2026-12-01T10:00:00Z", solve)
    offline = problem_from(_fleet(docs, nodes)).problem
    assert seen == [offline]
    assert decision.plan is not None
    assert _counts(decision.plan) == _counts(planner.solve(offline))


def test_plan_cli_prints_the_operators_placement() -> None:
    """The CLI as a subprocess over the same files gives the placement decide() computes."""
    import json

    docs = example_docs()
    nodes = node_manifests(load_fleet(FLEET_FILE))
    expected = _counts(planner.solve(problem_from(_fleet(docs, nodes)).problem))
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "inferfleet",
            "plan",
            "-f",
            "examples",
            "-f",
            "examples/simulated-fleet",
            "-o",
            "json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    doc = json.loads(out)
    got = {
        f"{p['namespace']}/{p['name']}": {pl["class"]: pl["replicas"] for pl in p["placements"]}
        for p in doc["pools"]
    }
    assert got == expected


def test_nodes_carry_their_names_into_the_core() -> None:
    docs = example_docs()
    nodes = node_manifests(load_fleet(FLEET_FILE))
    problem = problem_from(_fleet(docs, nodes)).problem
    names = {n["metadata"]["name"] for n in nodes}
    for cls in problem.classes:
        assert len(cls.node_names) == len(cls.node_free_devices) > 0
        assert set(cls.node_names) <= names


def test_unknown_capacity_is_unbounded_and_noted() -> None:
    bridged = problem_from(_fleet(example_docs(), None))
    kinds = {n.kind for n in bridged.notes}
    assert NoteKind.CAPACITY_UNKNOWN in kinds
    assert all(len(c.node_free_devices) == core.UNBOUNDED_NODES for c in bridged.problem.classes)
    assert all(c.node_names == () for c in bridged.problem.classes)


def test_overrides_reach_the_core_in_core_units() -> None:
    fleet = _fleet(example_docs(), None)
    pool = fleet.pools[0]
    key = f"{pool.metadata['namespace']}/{pool.metadata['name']}"
    cls = str(fleet.classes[0].metadata["name"])
    domain = fleet.classes[0].spec.power_domain
    problem = problem_from(
        fleet, overrides=Overrides(budgets_kilowatts={domain: 2.5}, prices={cls: 7.0}, demand_rps={key: 3.0})
    ).problem
    assert problem.policy.domain_budgets_watts[domain] == 2500.0
    assert {c.name: c.price_per_device_hour for c in problem.classes}[cls] == 7.0
    assert {p.key: p.demand_rps for p in problem.pools}[key] == 3.0


def test_frozen_devices_come_off_the_largest_nodes_first() -> None:
    fleet = _fleet(example_docs(), node_manifests(load_fleet(FLEET_FILE)))
    cls = fleet.classes[0]
    name = str(cls.metadata["name"])
    before = {c.name: c for c in problem_from(fleet).problem.classes}[name]
    after = {c.name: c for c in problem_from(fleet, Running(frozen_devices={name: 3})).problem.classes}[name]
    assert sum(after.node_free_devices) == sum(before.node_free_devices) - 3
    assert len(after.node_names) == len(after.node_free_devices)


def test_an_allowed_class_that_does_not_exist_is_unfit_and_noted() -> None:
    docs = example_docs()
    pool = next(d for d in docs if d["kind"] == "InferencePool")
    pool["spec"].setdefault("placement", {})["allowedClasses"] = ["no-such-class"]
    bridged = problem_from(_fleet(docs, None))
    key = f"{pool['metadata']['namespace']}/{pool['metadata']['name']}"
    assert bridged.problem.unfit[key]["no-such-class"].kind is core.UnfitKind.UNDEFINED
    assert any(n.kind is NoteKind.UNDEFINED_CLASS and n.subject == key for n in bridged.notes)


def test_capped_options_keep_at_most_their_cap_and_a_cap_of_zero_leaves_the_class_out() -> None:
    docs = example_docs()
    fleet = _fleet(docs, None)
    free = problem_from(fleet).problem
    key = "chat/chat-70b"
    first, second = (o.accelerator_class for o in free.options[key][:2])
    capped = Overrides(capped={key: {first: (0, "stuck: no cpu"), second: (2, "stuck: no memory")}})
    got = problem_from(fleet, overrides=capped).problem
    by_class = {o.accelerator_class: o for o in got.options[key]}
    assert first not in by_class
    assert got.unfit[key][first] == core.Unfit(core.UnfitKind.UNSCHEDULABLE, "stuck: no cpu")
    assert by_class[second].max_replicas == 2
    others = [o for o in got.options[key] if o.accelerator_class not in (first, second)]
    assert others and all(o.max_replicas is None for o in others)
    assert got.options["search/embed"] == free.options["search/embed"]  # other pools untouched
