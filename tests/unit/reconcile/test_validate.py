"""Phase 1: invalid objects are set aside with a message, valid ones parsed, children frozen."""

from __future__ import annotations

from examples import example_docs

from inferfleet.reconcile.ports import Snapshot
from inferfleet.reconcile.validate import validate


def _snapshot(**changes: object) -> Snapshot:
    docs = example_docs()
    pools = [d for d in docs if d["kind"] == "InferencePool"]
    classes = [d for d in docs if d["kind"] == "AcceleratorClass"]
    policy = next(d for d in docs if d["kind"] == "FleetPolicy")
    if "pool_params" in changes:
        pools[0]["spec"]["model"]["parameters"] = changes["pool_params"]
    if "class_devices" in changes:
        classes[0]["spec"]["devicesPerNode"] = changes["class_devices"]
    if "policy_budget" in changes:
        policy["spec"]["powerDomains"][0]["budgetKilowatts"] = changes["policy_budget"]
    return Snapshot(pools, classes, policy, [], {}, [], [])


def test_valid_fleet_has_no_problems() -> None:
    objects = validate(_snapshot())
    assert objects.policy is not None and objects.policy_problem is None
    assert objects.problems == []
    assert len(objects.pools) == len(objects.pool_raw) == 4


def test_an_invalid_pool_is_reported_by_name_and_field_and_its_children_frozen() -> None:
    objects = validate(_snapshot(pool_params=-1))
    [(key, message)] = objects.pool_problems.items()
    assert "spec.model.parameters" in message and key in message
    assert key not in objects.pools and key in objects.pool_raw
    assert objects.frozen(key, "h100") and not objects.frozen("other/pool", "h100")


def test_an_invalid_class_freezes_its_children_in_every_pool() -> None:
    objects = validate(_snapshot(class_devices=0))
    [name] = objects.class_problems
    assert "spec.devicesPerNode" in objects.class_problems[name]
    assert objects.frozen("any/pool", name)


def test_an_invalid_policy_pauses_planning_with_the_reason() -> None:
    objects = validate(_snapshot(policy_budget=-5))
    assert objects.policy is None
    assert objects.policy_problem is not None
    assert "budgetKilowatts" in objects.policy_problem and "planning is paused" in objects.policy_problem
