"""``plan.delta``: a plan against what runs now, as facts (pure, table-driven)."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from inferfleet.core import types as core
from inferfleet.plan.delta import Move, NodeMove, ReplicaDelta, Write, WriteVerb, compute

DOMAIN_OF = {"h100": "hall-a", "mi300x": "hall-a", "l4": "hall-b"}
PER_REPLICA = {"h100": (1000.0, 10.0), "mi300x": (700.0, 6.0), "l4": (80.0, 0.8)}


def _plan(
    placements: Mapping[str, Mapping[str, int]],
    binding: Mapping[str, tuple[core.Binding, ...]] | None = None,
    budgets: Mapping[str, float | None] | None = None,
) -> core.Plan:
    pools = tuple(
        core.PoolPlan(
            key,
            tuple(
                core.Placement(
                    cls, n, n, PER_REPLICA[cls][0] * n, PER_REPLICA[cls][1] * n, 10.0 * n, 0.1, 0.01
                )
                for cls, n in sorted(by_class.items())
            ),
            demand_rps=10.0,
            served_rps=10.0,
            status=core.PlanStatus.PLACED,
            binding=(binding or {}).get(key, ()),
        )
        for key, by_class in sorted(placements.items())
    )
    domains = tuple(core.DomainUse(d, b, 0.0) for d, b in sorted((budgets or {"hall-a": None}).items()))
    return core.Plan(pools, domains, (), 0.0, 0.0, core.SolverStats("Optimal", 0.0, 0.0, 0.0, 0.01, "milp"))


CASES = [
    pytest.param(
        {"a/chat": {"h100": 2}},
        {"a/chat": {"h100": 2}},
        [ReplicaDelta("a/chat", "h100", 2, 2)],
        [],
        id="the-plan-is-what-runs-no-change",
    ),
    pytest.param(
        {"a/chat": {"h100": 2}},
        {"a/chat": {"h100": 3}},
        [ReplicaDelta("a/chat", "h100", 2, 3)],
        [],
        id="a-rescale-is-a-delta-but-no-move",
    ),
    pytest.param(
        {"a/chat": {"h100": 3}},
        {"a/chat": {"h100": 1, "mi300x": 4}},
        [ReplicaDelta("a/chat", "h100", 3, 1), ReplicaDelta("a/chat", "mi300x", 0, 4)],
        [Move("a/chat", {"h100": 2}, {"mi300x": 4})],
        id="replicas-leaving-one-class-for-another-move-min-of-both",
    ),
    pytest.param(
        {"a/chat": {"h100": 1}, "b/embed": {"l4": 4}},
        {"a/chat": {"h100": 1}},
        [ReplicaDelta("a/chat", "h100", 1, 1), ReplicaDelta("b/embed", "l4", 4, 0)],
        [],
        id="a-pool-the-plan-sheds-goes-to-zero",
    ),
]


@pytest.mark.parametrize(("current", "planned", "replicas", "moves"), CASES)
def test_replicas_and_moves(
    current: dict[str, dict[str, int]],
    planned: dict[str, dict[str, int]],
    replicas: list[ReplicaDelta],
    moves: list[Move],
) -> None:
    d = compute(_plan(planned), current, DOMAIN_OF)
    assert list(d.replicas) == replicas
    assert list(d.moves) == moves
    assert d.changed == any(r.delta for r in replicas)


def test_moved_counts_as_the_churn_penalty_does() -> None:
    assert Move("p", {"h100": 2}, {"mi300x": 4}).moved == 2
    assert Move("p", {"h100": 5, "l4": 1}, {"mi300x": 4}).moved == 4


def test_domains_value_now_with_the_recorded_figures_and_planned_with_the_plan() -> None:
    current = {"a/chat": {"h100": 2}, "b/embed": {"l4": 4}}
    recorded = {("a/chat", "h100"): (900.0, 9.0), ("b/embed", "l4"): (80.0, 0.8)}
    d = compute(
        _plan({"a/chat": {"mi300x": 3}, "b/embed": {"l4": 4}}), current, DOMAIN_OF, per_replica_now=recorded
    )
    by = {x.name: x for x in d.domains}
    assert (by["hall-a"].current_watts, by["hall-a"].planned_watts) == (1800.0, 2100.0)
    assert (by["hall-a"].current_dollars_per_hour, by["hall-a"].planned_dollars_per_hour) == (18.0, 18.0)
    assert (by["hall-b"].current_watts, by["hall-b"].planned_watts) == (320.0, 320.0)
    assert d.current_watts == 2120.0 and d.planned_watts == 2420.0
    assert d.unvalued == ()


def test_a_replica_with_no_recorded_figures_is_valued_as_planned_or_named() -> None:
    current = {"a/chat": {"h100": 2, "l4": 1}}
    d = compute(_plan({"a/chat": {"h100": 2}}), current, DOMAIN_OF)
    by = {x.name: x for x in d.domains}
    assert by["hall-a"].current_watts == 2000.0  # as the plan values an h100 replica
    assert by["hall-b"].current_watts == 0.0  # l4 is not planned: nothing to value it with
    assert d.unvalued == (("a/chat", "l4"),)


def test_binding_constraints_name_the_pools_they_bind_and_mark_their_domain() -> None:
    power = core.Binding(core.BindingKind.POWER, "hall-a")
    capacity = core.Binding(core.BindingKind.CAPACITY, "l4")
    plan = _plan(
        {"a/chat": {"h100": 1}, "b/embed": {"l4": 2}, "c/batch": {"mi300x": 1}},
        binding={"a/chat": (power,), "c/batch": (power,), "b/embed": (capacity,)},
        budgets={"hall-a": 5000.0, "hall-b": None},
    )
    d = compute(plan, {}, DOMAIN_OF)
    assert dict(d.binding) == {power: ("a/chat", "c/batch"), capacity: ("b/embed",)}
    assert {x.name: (x.binding, x.budget_watts) for x in d.domains} == {
        "hall-a": (True, 5000.0),
        "hall-b": (False, None),
    }


def test_writes_say_replicas_before_and_after_and_deletions() -> None:
    dep = {
        "kind": "Deployment",
        "metadata": {
            "name": "chat-h100",
            "namespace": "a",
            "labels": {"inferfleet.dev/pool": "chat", "inferfleet.dev/accelerator-class": "h100"},
        },
        "spec": {"replicas": 0},
    }
    svc = {"kind": "Service", "metadata": {"name": "chat", "namespace": "a"}}
    d = compute(
        _plan({"a/chat": {"mi300x": 1}}),
        {"a/chat": {"h100": 2}},
        DOMAIN_OF,
        applies=[dep, svc],
        deletes=[("Deployment", "a", "chat-tpu")],
    )
    assert list(d.writes) == [
        Write(WriteVerb.APPLY, "Deployment", "a", "chat-h100", "h100", 2, 0),
        Write(WriteVerb.APPLY, "Service", "a", "chat"),
        Write(WriteVerb.DELETE, "Deployment", "a", "chat-tpu"),
    ]
    assert d.changed


def test_service_writes_alone_are_a_change() -> None:
    svc = {"kind": "Service", "metadata": {"name": "chat", "namespace": "a"}}
    d = compute(_plan({"a/chat": {"h100": 1}}), {"a/chat": {"h100": 1}}, DOMAIN_OF, applies=[svc])
    assert d.changed and not any(r.delta for r in d.replicas)


def test_node_moves_only_where_both_sides_know_the_nodes() -> None:
    plan = _plan({"a/chat": {"h100": 2, "l4": 1}})
    now = {("a/chat", "h100"): {"n1": 2}, ("a/chat", "l4"): {"n9": 1}, ("a/chat", "mi300x"): {"m1": 1}}
    planned = {("a/chat", "h100"): {"n1": 1, "n2": 1}}  # l4 is not placed node by node
    current = {"a/chat": {"h100": 2, "l4": 1, "mi300x": 1}}
    d = compute(plan, current, DOMAIN_OF, nodes_now=now, nodes_planned=planned)
    assert list(d.node_moves) == [
        NodeMove("a/chat", "h100", "n1", 2, 1),
        NodeMove("a/chat", "h100", "n2", 0, 1),
        NodeMove("a/chat", "mi300x", "m1", 1, 0),  # planned at zero: every replica goes
    ]
    assert compute(plan, current, DOMAIN_OF, nodes_now=now).node_moves == ()
