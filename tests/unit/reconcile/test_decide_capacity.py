"""``decide`` and the capacity classes claim: a node two classes match counts once and both say
so; a capacity override beyond the matching nodes is said, not silently counted."""

from __future__ import annotations

import copy
from typing import Any

from examples import example_docs
from tests.unit.reconcile.test_decide import snapshot, solve, with_statuses

from inferfleet.reconcile.decide import decide

NOW = "2026-12-01T10:00:00Z"


def with_twin(docs: list[dict[str, Any]], of: str = "h100", twin: str = "h100-twin") -> list[dict[str, Any]]:
    docs = copy.deepcopy(docs)
    original = next(d for d in docs if d["kind"] == "AcceleratorClass" and d["metadata"]["name"] == of)
    copy_ = copy.deepcopy(original)
    copy_["metadata"]["name"] = twin
    docs.append(copy_)
    return docs


def class_conditions(statuses: list[Any], name: str) -> dict[str, dict[str, Any]]:
    status = next(s.status for s in statuses if s.kind == "AcceleratorClass" and s.name == name)
    return {c["type"]: c for c in status["conditions"]}


def devices_on(d: Any, *classes: str) -> int:
    return sum(p.devices for pp in d.plan.pools for p in pp.placements if p.accelerator_class in classes)


def test_two_classes_on_the_same_nodes_count_them_once_and_both_say_so() -> None:
    docs = with_twin(example_docs())
    demand = [d for d in docs if d["kind"] == "InferencePool"]
    for pool in demand:  # enough demand to want every h100 twice over, and budgets that do not bind
        pool["spec"]["demand"]["requestsPerSecond"] = pool["spec"]["demand"]["requestsPerSecond"] * 20
    policy = next(d for d in docs if d["kind"] == "FleetPolicy")
    for domain in policy["spec"]["powerDomains"]:
        domain["budgetKilowatts"] = 10_000
    d = decide(snapshot(docs), NOW, solve)
    assert d.plan is not None
    assert devices_on(d, "h100", "h100-twin") <= 4 * 8  # the fleet's 4 h100 nodes, once
    for name, other in (("h100", "h100-twin"), ("h100-twin", "h100")):
        shared = class_conditions(d.statuses, name)["NodesShared"]
        assert (shared["status"], shared["reason"]) == ("True", "OverlapsOtherClasses")
        assert other in shared["message"] and "counts once" in shared["message"]
    said = sorted(e.obj["metadata"]["name"] for e in d.events if e.reason == "NodesShared")
    assert said == ["h100", "h100-twin"]
    again = decide(snapshot(with_statuses(docs, d)), NOW, solve)
    assert not [e for e in again.events if e.reason == "NodesShared"]  # said once
    alone = decide(snapshot(example_docs()), NOW, solve)
    assert class_conditions(alone.statuses, "h100")["NodesShared"]["reason"] == "Exclusive"


def test_a_capacity_override_beyond_the_matching_nodes_is_said() -> None:
    docs = copy.deepcopy(example_docs())
    cls = next(d for d in docs if d["kind"] == "AcceleratorClass" and d["metadata"]["name"] == "h100")
    cls["spec"]["capacity"] = {"nodes": 10}
    d = decide(snapshot(docs), NOW, solve)
    cond = class_conditions(d.statuses, "h100")["CapacityMatchesNodes"]
    assert (cond["status"], cond["reason"]) == ("False", "OverrideBeyondNodes")
    assert "10" in cond["message"] and "4 Ready node(s)" in cond["message"]
    assert [e.reason for e in d.events if e.obj["metadata"]["name"] == "h100"] == ["CapacityBeyondNodes"]
    cls["spec"]["capacity"] = {"nodes": 3}
    d = decide(snapshot(docs), NOW, solve)
    assert class_conditions(d.statuses, "h100")["CapacityMatchesNodes"]["status"] == "True"
