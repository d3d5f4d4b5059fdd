"""Status and change descriptions: what users read in kubectl and events."""

from __future__ import annotations

import pytest

from inferfleet.core import types as core
from inferfleet.reconcile import status


def _binding(short: str) -> core.Binding:
    kind, _, subject = short.partition(":")
    return core.Binding(core.BindingKind(kind), subject)


def pool_plan(
    placements: dict[str, int],
    state: core.PlanStatus = core.PlanStatus.PLACED,
    binding: tuple[str, ...] = (),  # short forms: "power:hall-a", "capacity:h100"
    reason: str = "",
) -> core.PoolPlan:
    return core.PoolPlan(
        key="chat/chat-70b",
        placements=tuple(
            core.Placement(
                c,
                n,
                devices=2 * n,
                watts=500.0 * n,
                dollars_per_hour=10.0 * n,
                rps_capacity=3.0 * n,
                ttft_s=0.2,
                tpot_s=0.03,
            )
            for c, n in placements.items()
        ),
        demand_rps=12.0,
        served_rps=12.0,
        status=state,
        binding=tuple(_binding(b) for b in binding),
        reason=reason,
    )


CHANGES = [
    pytest.param({}, {"h100": 2}, (), "placed 2 replicas (2 on h100): demand 12 req/s", id="first-placement"),
    pytest.param({"h100": 2}, {"h100": 2}, (), None, id="no-change-no-sentence"),
    pytest.param(
        {"h100": 3},
        {"h100": 1, "mi300x": 2},
        ("power:hall-a",),
        "moved 2 replicas from h100 to mi300x: hall-a power budget binding",
        id="moved-by-power",
    ),
    pytest.param({"h100": 2}, {"h100": 4}, (), "scaled up +2 on h100: demand 12 req/s", id="scale-up"),
    pytest.param(
        {"h100": 4, "l4": 1},
        {"h100": 2},
        ("capacity:h100",),
        "scaled down -2 on h100, -1 on l4: h100 capacity binding",
        id="scale-down",
    ),
]


@pytest.mark.parametrize(("old", "new", "binding", "text"), CHANGES)
def test_describe_change(
    old: dict[str, int], new: dict[str, int], binding: tuple[str, ...], text: str | None
) -> None:
    assert status.describe_change(old, new, pool_plan(new, binding=binding)) == text


def test_ready_only_when_every_planned_replica_is_ready() -> None:
    plan = pool_plan({"h100": 2, "mi300x": 1})
    partial = status.pool_status(plan, {"h100": 2}, None, 3, "chat-70b", "T1", None)
    ready = {c["type"]: c for c in partial["conditions"]}["Ready"]
    assert (ready["status"], ready["reason"], ready["message"]) == (
        "False",
        "ReplicasNotReady",
        "2 of 3 replicas ready",
    )
    full = status.pool_status(plan, {"h100": 2, "mi300x": 1}, partial, 3, "chat-70b", "T2", None)
    assert {c["type"]: c["status"] for c in full["conditions"]}["Ready"] == "True"
    assert full["placementSummary"] == "h100=2,mi300x=1"
    assert full["selector"] == "inferfleet.dev/pool=chat-70b"
    assert full["replicas"] == 3 and full["readyReplicas"] == 3 and full["watts"] == 1500


def test_transition_time_kept_unless_status_flips() -> None:
    plan = pool_plan({"h100": 1})
    first = status.pool_status(plan, {}, None, 1, "p", "T1", None)
    second = status.pool_status(plan, {}, first, 1, "p", "T2", None)
    third = status.pool_status(plan, {"h100": 1}, second, 1, "p", "T3", None)
    times = [{c["type"]: c["lastTransitionTime"] for c in s["conditions"]} for s in (first, second, third)]
    assert times[1]["Ready"] == "T1"
    assert times[2]["Ready"] == "T3"
    assert times[2]["Placed"] == "T1"


def test_power_limited_pool_says_which_domain() -> None:
    plan = pool_plan(
        {"h100": 1},
        core.PlanStatus.PARTIALLY_SHED,
        ("power:hall-a",),
        "shed 4 of 12 req/s: hall-a power budget",
    )
    conds = {c["type"]: c for c in status.pool_status(plan, {}, None, 1, "p", "T", None)["conditions"]}
    assert conds["PowerLimited"]["status"] == "True"
    assert "hall-a" in conds["PowerLimited"]["message"]
    assert (conds["Placed"]["status"], conds["Placed"]["reason"]) == ("False", "PartiallyShed")
    assert conds["Ready"]["reason"] == "NotPlaced"


def test_invalid_pool_keeps_its_previous_placement_in_status() -> None:
    prev = status.pool_status(pool_plan({"h100": 2}), {"h100": 2}, None, 1, "p", "T1", "placed")
    bad = status.pool_status_invalid("spec.model.parameters: bad", prev, 2, "T2")
    assert bad["placements"] == prev["placements"]
    assert {c["type"]: c["status"] for c in bad["conditions"]}["Valid"] == "False"
