"""``decide``: from a cluster snapshot to ordered, minimal writes (pure, no cluster)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from examples import ROOT, example_docs

from inferfleet.api.simulatedfleet import load_fleet, node_manifests
from inferfleet.core import planner
from inferfleet.reconcile.decide import Decision, decide
from inferfleet.reconcile.ports import Snapshot


def snapshot(
    docs: list[dict[str, Any]] | None = None,
    deployments: list[dict[str, Any]] | None = None,
    nodes: list[dict[str, Any]] | None = None,
) -> Snapshot:
    docs = example_docs() if docs is None else docs
    policies = [d for d in docs if d["kind"] == "FleetPolicy"]
    return Snapshot(
        pools=[d for d in docs if d["kind"] == "InferencePool"],
        classes=[d for d in docs if d["kind"] == "AcceleratorClass"],
        policy=policies[0] if policies else None,
        nodes=node_manifests(load_fleet(ROOT / "examples/simulated-fleet/fleet.yaml"), 1)
        if nodes is None
        else nodes,
        foreign_used={},
        deployments=deployments or [],
        services=[],
    )


def applied(decision: Decision, ready: bool = True) -> list[dict[str, Any]]:
    """The Deployments as the API server would hold them after the decision was applied."""
    out = []
    for desired in decision.reductions + decision.increases:
        if desired["kind"] != "Deployment":
            continue
        obj = copy.deepcopy(desired)
        obj["status"] = {"readyReplicas": obj["spec"]["replicas"] if ready else 0}
        out.append(obj)
    return out


def with_statuses(docs: list[dict[str, Any]], decision: Decision) -> list[dict[str, Any]]:
    docs = copy.deepcopy(docs)
    for s in decision.statuses:
        for d in docs:
            if d["kind"] == s.kind and d["metadata"]["name"] == s.name:
                d["status"] = s.status
    return docs


def solve(problem: Any) -> Any:
    return planner.solve(problem)


def test_fresh_fleet_creates_children_statuses_and_events() -> None:
    d = decide(snapshot(), "2026-12-01T10:00:00Z", solve)
    assert d.plan is not None
    kinds = [o["kind"] for o in d.increases]
    assert kinds.count("Service") == 4
    assert kinds.count("Deployment") >= 4
    assert not d.reductions and not d.deletes
    assert {s.kind for s in d.statuses} == {"InferencePool", "AcceleratorClass", "FleetPolicy"}
    assert any(e.reason == "Placed" for e in d.events)


def test_statuses_carry_the_plans_energy_figures_which_add_up_to_the_fleets() -> None:
    d = decide(snapshot(), "2026-12-01T10:00:00Z", solve)
    pools = {s.name: s.status for s in d.statuses if s.kind == "InferencePool"}
    policy = next(s.status for s in d.statuses if s.kind == "FleetPolicy")
    fleet = policy["energy"]
    for name, st in pools.items():
        e = st["energy"]
        assert e["hardwareDollarsPerHour"] + e["energyDollarsPerHour"] == pytest.approx(
            st["dollarsPerHour"], abs=0.02
        ), name
        assert e["kilowattHoursPerDay"] > 0 and (e["tokensPerJoule"] or 0) > 0, name
    chat = pools["chat-70b"]["energy"]
    assert chat["outputTokensPerJoule"] is not None and chat["dollarsPerMillionOutputTokens"] > 0
    assert pools["embed"]["energy"]["outputTokensPerJoule"] in (None, 0.0)  # embeddings emit none
    assert sum(p["energy"]["kilowattHoursPerDay"] for p in pools.values()) == pytest.approx(
        fleet["kilowattHoursPerDay"], abs=0.5
    )
    assert fleet["hardwareDollarsPerHour"] + fleet["energyDollarsPerHour"] == pytest.approx(
        policy["dollarsPerHour"], abs=0.05
    )


def test_nothing_changed_means_no_write() -> None:
    docs = example_docs()
    first = decide(snapshot(docs), "2026-12-01T10:00:00Z", solve)
    deployments = applied(first)
    docs2 = with_statuses(docs, first)
    # second round sees ready replicas, so statuses change once (Ready flips) ...
    second = decide(snapshot(docs2, deployments), "2026-12-01T10:01:00Z", solve)
    assert not second.reductions and not second.deletes
    assert [o["kind"] for o in second.increases] == ["Service"] * 4  # services were never "applied" here
    docs3 = with_statuses(docs2, second)
    third = decide(
        Snapshot(
            **{
                **snapshot(docs3, deployments).__dict__,
                "services": [o for o in first.increases if o["kind"] == "Service"],
            }
        ),
        "2026-12-01T10:02:00Z",
        solve,
    )
    assert third.writes == 0, (third.increases, third.statuses, third.events)


def test_lower_budget_applies_reductions_first_and_fits_the_budget() -> None:
    docs = example_docs()
    first = decide(snapshot(docs), "2026-12-01T10:00:00Z", solve)
    policy = next(d for d in docs if d["kind"] == "FleetPolicy")
    policy["spec"]["powerDomains"] = [
        {"name": "hall-a", "budgetKilowatts": 10},
        {"name": "hall-b", "budgetKilowatts": 25},
    ]
    second = decide(snapshot(docs, applied(first)), "2026-12-01T10:01:00Z", solve)
    assert second.plan is not None
    for dom in second.plan.domains:
        if dom.budget_watts is not None:
            assert dom.used_watts <= dom.budget_watts + 1e-6
    assert second.reductions or second.deletes
    for obj in second.reductions:
        before = next(o for o in applied(first) if o["metadata"]["name"] == obj["metadata"]["name"])
        assert obj["spec"]["replicas"] < before["spec"]["replicas"]


def test_invalid_pool_is_reported_and_its_children_left_alone() -> None:
    docs = example_docs()
    first = decide(snapshot(docs), "2026-12-01T10:00:00Z", solve)
    pool = next(d for d in docs if d["kind"] == "InferencePool" and d["metadata"]["name"] == "chat-70b")
    pool["spec"]["model"]["parameters"] = "a lot"
    second = decide(snapshot(docs, applied(first)), "2026-12-01T10:01:00Z", solve)
    touched = {o["metadata"]["name"] for o in second.reductions + second.increases} | {
        n for _, _, n in second.deletes
    }
    assert not any(name.startswith("chat-70b-") for name in touched)
    status = next(s for s in second.statuses if s.name == "chat-70b")
    valid = next(c for c in status.status["conditions"] if c["type"] == "Valid")
    assert valid["status"] == "False" and "spec.model.parameters" in valid["message"]
    assert any(e.reason == "InvalidSpec" for e in second.events)


def test_invalid_policy_pauses_planning_without_touching_children() -> None:
    docs = example_docs()
    policy = next(d for d in docs if d["kind"] == "FleetPolicy")
    policy["spec"]["electricity"]["pue"] = "9"
    d = decide(snapshot(docs), "2026-12-01T10:00:00Z", solve)
    assert d.plan is None and not d.increases and not d.reductions and not d.deletes
    assert [s.kind for s in d.statuses] == ["FleetPolicy"]
    assert "pue must be between 1.0 and 3.0" in d.statuses[0].status["conditions"][0]["message"]


def test_class_without_ready_nodes_moves_replicas_elsewhere() -> None:
    docs = example_docs()
    first = decide(snapshot(docs), "2026-12-01T10:00:00Z", solve)
    assert first.plan is not None
    used = {p.accelerator_class for pp in first.plan.pools for p in pp.placements if p.replicas}
    victim = sorted(used)[0]
    nodes = node_manifests(load_fleet(ROOT / "examples/simulated-fleet/fleet.yaml"), 1)
    for n in nodes:
        if n["metadata"]["labels"].get("inferfleet.dev/accelerator-class") == victim:
            n["spec"]["unschedulable"] = True
    second = decide(snapshot(docs, applied(first), nodes), "2026-12-01T10:01:00Z", solve)
    assert second.plan is not None
    assert all(
        p.replicas == 0 for pp in second.plan.pools for p in pp.placements if p.accelerator_class == victim
    )
    assert not second.deletes  # scaled, never deleted: the Deployment stays at 0 replicas
    idle = [d for d in second.reductions if d["metadata"]["name"].endswith(f"-{victim}")]
    assert idle and all(d["spec"]["replicas"] == 0 for d in idle)


@pytest.mark.parametrize("missing", ["chat-70b"], ids=["deleted-pool-left-to-garbage-collection"])
def test_children_of_deleted_pools_are_not_deleted_by_us(missing: str) -> None:
    docs = example_docs()
    first = decide(snapshot(docs), "2026-12-01T10:00:00Z", solve)
    docs = [d for d in docs if d["metadata"]["name"] != missing]
    second = decide(snapshot(docs, applied(first)), "2026-12-01T10:01:00Z", solve)
    assert not any(n.startswith(f"{missing}-") for _, _, n in second.deletes)


def live_of(deployments: list[dict[str, Any]]) -> dict[tuple[str, str], int]:
    """Pods alive per (pool, class), as if every Deployment's pods were still running."""
    out = {}
    for dep in deployments:
        labels = dep["metadata"]["labels"]
        key = (
            f"{dep['metadata']['namespace']}/{labels['inferfleet.dev/pool']}",
            labels["inferfleet.dev/accelerator-class"],
        )
        out[key] = dep["spec"]["replicas"]
    return out


def test_increases_wait_until_removed_pods_are_gone() -> None:
    """A budget cut that moves replicas: while the old pods still run, only reductions are written;
    once they are gone, the increases follow, and the domain never draws more than its budget."""
    docs = example_docs()
    first = decide(snapshot(docs), "2026-12-01T10:00:00Z", solve)
    before = applied(first)
    policy = next(d for d in docs if d["kind"] == "FleetPolicy")
    policy["spec"]["powerDomains"] = [
        {"name": "hall-a", "budgetKilowatts": 10},
        {"name": "hall-b", "budgetKilowatts": 20},
    ]
    pods_running = Snapshot(**{**snapshot(docs, before).__dict__, "live_replicas": live_of(before)})
    second = decide(pods_running, "2026-12-01T10:01:00Z", solve)
    assert second.deferred == ["hall-b"]
    assert second.reductions or second.deletes
    grown = [
        o
        for o in second.increases
        if o["kind"] == "Deployment"
        and o["spec"]["replicas"]
        > live_of(before).get(
            (
                f"{o['metadata']['namespace']}/{o['metadata']['labels']['inferfleet.dev/pool']}",
                o["metadata"]["labels"]["inferfleet.dev/accelerator-class"],
            ),
            0,
        )
        and o["spec"]["template"]["spec"]["nodeSelector"]["inferfleet.dev/accelerator-class"]
        in ("l4", "mi300x", "cerebras-cs3", "groq")
    ]
    assert grown == []
    # the reductions land and their pods terminate: now the increases go ahead
    deleted = {n for _, _, n in second.deletes}
    reduced = {o["metadata"]["name"]: o for o in applied(second)}
    after = [reduced.get(d["metadata"]["name"], d) for d in before if d["metadata"]["name"] not in deleted]
    pods_gone = Snapshot(**{**snapshot(docs, after).__dict__, "live_replicas": live_of(after)})
    third = decide(pods_gone, "2026-12-01T10:02:00Z", solve)
    assert third.deferred == []
    assert any(o["kind"] == "Deployment" for o in third.increases)


def test_replicas_the_scheduler_cannot_place_are_said_with_its_words_once() -> None:
    import dataclasses

    first = decide(snapshot(), "2026-12-01T10:00:00Z", solve)
    docs, deps = with_statuses(example_docs(), first), applied(first, ready=False)
    placed = next(s for s in first.statuses if s.name == "chat-70b").status["placements"]
    cls = placed[0]["acceleratorClass"]
    why = "0/12 nodes are available: 12 Insufficient memory."
    events = []
    for now in ("2026-12-01T10:00:15Z", "2026-12-01T10:00:30Z"):
        snap = dataclasses.replace(snapshot(docs, deps), unschedulable={("chat/chat-70b", cls): (1, why)})
        d = decide(snap, now, solve)
        docs = with_statuses(docs, d)
        events += [e for e in d.events if e.reason == "Unschedulable"]
    pool = next(x for x in docs if x["metadata"]["name"] == "chat-70b")
    ready = next(c for c in pool["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "Unschedulable")
    assert f"1 replica on {cls} cannot be scheduled: {why}" in ready["message"]
    assert len(events) == 1 and why in events[0].message  # said once, not every round


def test_replicas_unschedulable_too_long_are_planned_elsewhere_and_said_once() -> None:
    import dataclasses

    first = decide(snapshot(), "2026-12-01T10:00:00Z", solve)
    docs, deps = with_statuses(example_docs(), first), applied(first, ready=False)
    placed = next(s for s in first.statuses if s.name == "chat-70b").status["placements"]
    cls = placed[0]["acceleratorClass"]
    why = "0/12 nodes are available: 12 Insufficient cpu."
    held, replanned, d = first.stuck, [], first
    for now in ("10:00:15", "10:01:15", "10:02:20", "10:03:00"):  # stuck from 10:00:15
        snap = dataclasses.replace(snapshot(docs, deps), unschedulable={("chat/chat-70b", cls): (1, why)})
        d = decide(snap, f"2026-12-01T{now}Z", solve, held=held)
        docs, held = with_statuses(docs, d), d.stuck
        replanned += [(now, e.message) for e in d.events if e.reason == "Replanned"]
        assert d.plan is not None
        on = {
            p.accelerator_class
            for pp in d.plan.pools
            if pp.key == "chat/chat-70b"
            for p in pp.placements
            if p.replicas
        }
        assert (cls in on) == (now < "10:02:15"), (now, on)  # held off after 120 s, the rest elsewhere
    assert [n for n, _ in replanned] == ["10:02:20"]  # said once, when the hold begins
    assert why in replanned[0][1] and "planned on other classes" in replanned[0][1]
    pool = next(x for x in docs if x["metadata"]["name"] == "chat-70b")
    placed_cond = next(c for c in pool["status"]["conditions"] if c["type"] == "Placed")
    assert (
        placed_cond["status"] == "True"
        and f"{cls}: 1 replica(s) could not be scheduled" in placed_cond["message"]
    )
    assert d.resync_s is not None and d.resync_s <= 600  # a round when the hold ends
    shrunk = {x["metadata"]["name"]: x["spec"]["replicas"] for x in d.reductions}
    assert shrunk[f"chat-70b-{cls}"] == 0  # none of its replicas there scheduled: it scales to 0


def test_a_deleted_policy_cannot_lift_the_budgets_planning_pauses_and_every_class_says_why() -> None:
    docs = example_docs()
    first = decide(snapshot(docs), "2026-12-01T10:00:00Z", solve)
    docs = with_statuses(docs, first)
    classes = {d["metadata"]["name"]: d for d in docs if d["kind"] == "AcceleratorClass"}
    h100 = classes["h100"]["status"]
    assert h100["powerBudgetWatts"] == 10_000  # hall-a's 10 kW, recorded
    budget = next(c for c in h100["conditions"] if c["type"] == "PowerBudget")
    assert (budget["status"], budget["reason"]) == ("True", "BudgetKnown")

    gone = [d for d in docs if d["kind"] != "FleetPolicy"]
    deps = applied(first)
    paused = decide(snapshot(gone, deps), "2026-12-01T10:01:00Z", solve)
    assert not (paused.reductions or paused.increases or paused.deletes)  # nothing added or removed
    assert {s.kind for s in paused.statuses} == {"AcceleratorClass"}
    said = {e.obj["metadata"]["name"]: e.message for e in paused.events if e.reason == "PolicyMissing"}
    assert set(said) == set(classes) and "10 kW" in said["h100"] and "powerDomains: []" in said["h100"]
    again = decide(snapshot(with_statuses(gone, paused), deps), "2026-12-01T10:02:00Z", solve)
    assert again.writes == 0  # said once

    restored = decide(snapshot(with_statuses(docs, paused), deps), "2026-12-01T10:03:00Z", solve)
    cond = next(
        c
        for s in restored.statuses
        if s.kind == "AcceleratorClass" and s.name == "h100"
        for c in s.status["conditions"]
        if c["type"] == "PowerBudget"
    )
    assert cond["reason"] == "BudgetKnown"


def test_a_fleet_never_budgeted_plans_without_a_policy() -> None:
    docs = [d for d in example_docs() if d["kind"] != "FleetPolicy"]
    d = decide(snapshot(docs), "2026-12-01T10:00:00Z", solve)
    assert d.increases  # nothing was ever recorded: a fresh install plans
    h100 = next(s for s in d.statuses if s.name == "h100").status
    assert next(c for c in h100["conditions"] if c["type"] == "PowerBudget")["reason"] == "Unbudgeted"


def test_a_misspelt_power_domain_places_nothing_on_the_class_and_is_said_once() -> None:
    docs = example_docs()
    first = decide(snapshot(docs), "2026-12-01T09:59:00Z", solve)
    running = applied(first)
    classes = {d["metadata"]["name"]: d for d in docs if d["kind"] == "AcceleratorClass"}
    used = sorted(c for c in classes if any(d["metadata"]["name"].endswith(f"-{c}") for d in running))
    assert used, "the example fleet runs something"
    name = used[0]
    cls = classes[name]
    domain = cls["spec"]["powerDomain"]
    misspelt = domain.replace("hall", "hal")
    on_class = {d["metadata"]["name"] for d in running if d["metadata"]["name"].endswith(f"-{name}")}
    cls["spec"]["powerDomain"] = misspelt
    d = decide(snapshot(docs, running), "2026-12-01T10:00:00Z", solve)
    assert d.plan is not None
    assert not [p for pp in d.plan.pools for p in pp.placements if p.accelerator_class == name and p.replicas]
    touched = {w["metadata"]["name"] for w in d.reductions + d.increases} | {n for _, _, n in d.deletes}
    assert not touched & on_class  # what runs there is left alone
    status = next(s for s in d.statuses if s.name == name).status
    cond = next(c for c in status["conditions"] if c["type"] == "PowerBudget")
    assert (cond["status"], cond["reason"]) == ("False", "UnknownPowerDomain")
    assert f"{misspelt!r} is not listed" in cond["message"] and domain in cond["message"]
    assert [e.obj["metadata"]["name"] for e in d.events if e.reason == "UnknownPowerDomain"] == [name]
    assert not [e for e in d.events if e.reason == "InvalidSpec"]  # one event, the precise one
    d2 = decide(snapshot(with_statuses(docs, d), running), "2026-12-01T10:01:00Z", solve)
    assert not [e for e in d2.events if e.reason == "UnknownPowerDomain"]


def test_a_policy_can_allow_unlisted_domains_which_are_then_planned_unbudgeted() -> None:
    docs = example_docs()
    cls = next(d for d in docs if d["kind"] == "AcceleratorClass" and d["metadata"]["name"] == "h100")
    cls["spec"]["powerDomain"] = "hall-c"
    policy = next(d for d in docs if d["kind"] == "FleetPolicy")
    policy["spec"]["unlistedPowerDomains"] = "Unbudgeted"
    d = decide(snapshot(docs), "2026-12-01T10:00:00Z", solve)
    assert d.plan is not None
    assert [p for pp in d.plan.pools for p in pp.placements if p.accelerator_class == "h100" and p.replicas]
    status = next(s for s in d.statuses if s.name == "h100").status
    cond = next(c for c in status["conditions"] if c["type"] == "PowerBudget")
    assert (cond["status"], cond["reason"]) == ("True", "Unbudgeted") and "allows unlisted" in cond["message"]


def test_a_replicaset_that_cannot_create_pods_is_said_in_ready_and_once_as_an_event() -> None:
    first = decide(snapshot(), "2026-12-01T10:00:00Z", solve)
    docs, deps = with_statuses(example_docs(), first), applied(first, ready=False)
    dep = next(d for d in deps if d["metadata"]["name"].startswith("chat-70b-"))
    why = 'pods "chat-70b-x" is forbidden: error looking up service account chat/vllm: not found'
    dep["status"]["conditions"] = [
        {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": why}
    ]
    events = []
    for now in ("2026-12-01T10:00:15Z", "2026-12-01T10:00:30Z"):
        d = decide(snapshot(docs, deps), now, solve)
        docs = with_statuses(docs, d)
        events += [e for e in d.events if e.reason == "ReplicaFailure"]
    pool = next(x for x in docs if x["metadata"]["name"] == "chat-70b")
    ready = next(c for c in pool["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "ReplicaFailure")
    assert f"Deployment {dep['metadata']['name']} cannot create pods: {why}" in ready["message"]
    assert len(events) == 1 and why in events[0].message
    other = next(x for x in docs if x["metadata"]["name"] == "embed")
    assert (
        next(c for c in other["status"]["conditions"] if c["type"] == "Ready")["reason"] != "ReplicaFailure"
    )
