"""``pins``: gated replicas go to planned nodes with room; stuck pins are given up (pure)."""

from __future__ import annotations

from typing import Any

from inferfleet.reconcile.pinning import Assignment, Pin, pins

NOW = 1_800_000_000.0


def pod(
    name: str,
    cls: str = "h100",
    gated: bool = True,
    node: str | None = None,
    stuck_since: float | None = None,
    pool: str = "p",
) -> dict[str, Any]:
    conditions = []
    if stuck_since is not None:
        import datetime

        when = datetime.datetime.fromtimestamp(stuck_since, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        conditions.append(
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": "0/3 nodes",
                "lastTransitionTime": when,
            }
        )
    return {
        "metadata": {
            "name": name,
            "namespace": "ns",
            "labels": {"inferfleet.dev/pool": pool, "inferfleet.dev/accelerator-class": cls},
        },
        "spec": {
            "schedulingGates": [{"name": "inferfleet.dev/placement"}] if gated else [],
            "nodeSelector": {"kubernetes.io/hostname": node} if node else {},
        },
        "status": {"conditions": conditions},
    }


KEY = ("ns/p", "h100")


def test_gated_replicas_fill_the_planned_room_and_no_more() -> None:
    wanted = Assignment({KEY: {"a": 2, "b": 1}}, {}, {})
    placed = {KEY: {"a": ("running",)}}  # one runs on a already
    got, unpins = pins(wanted, placed, [pod("r1"), pod("r2"), pod("r3")], NOW)
    assert sorted(p.node or "" for p in got) == ["a", "b"]  # room: a 1, b 1; the third waits
    assert unpins == []


def test_a_pinned_replica_not_yet_bound_holds_its_slot() -> None:
    wanted = Assignment({KEY: {"a": 1}}, {}, {})
    got, _ = pins(wanted, {}, [pod("pinned", gated=False, node="a"), pod("r2")], NOW)
    assert got == []


def test_a_pin_the_scheduler_cannot_honour_is_given_up_after_the_timeout() -> None:
    wanted = Assignment({KEY: {"a": 1}}, {}, {})
    fresh = pod("fresh", gated=False, node="a", stuck_since=NOW - 10)
    old = pod("old", gated=False, node="a", stuck_since=NOW - 61, pool="p")
    _, unpins = pins(wanted, {}, [fresh], NOW)
    assert unpins == []
    _, unpins = pins(wanted, {}, [old], NOW)
    assert [(u.name, u.node) for u in unpins] == [("old", "a")] and "0/3" in unpins[0].why


def test_replicas_of_classes_without_known_nodes_are_released_to_the_scheduler() -> None:
    none = Assignment({}, {}, {})
    got, _ = pins(none, {}, [pod("r1", cls="override")], NOW, lambda k: k[1] == "override")
    assert got == [Pin("ns", "r1", None)]
    got, _ = pins(none, {}, [pod("r2", cls="h100")], NOW, lambda k: k[1] == "override")
    assert got == []  # planned nowhere yet: it waits at the gate


def test_a_move_deletes_that_many_running_replicas_off_the_node_and_their_slots_open() -> None:
    wanted = Assignment({KEY: {"a": 1, "b": 2}}, {}, {KEY: {"a": 1}})
    placed = {KEY: {"a": ("r-a1", "r-a2"), "b": ("r-b1",)}}
    got, unpins = pins(wanted, placed, [pod("gated")], NOW)
    assert [(u.name, u.node) for u in unpins] == [("r-a1", "a")] and "make room" in unpins[0].why
    assert got == [Pin("ns", "gated", "b")]  # b: planned 2, bound 1
