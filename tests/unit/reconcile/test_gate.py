"""The budget gate: increases in a domain wait while removed pods still draw power there, and the
rest are applied biggest replicas first."""

from __future__ import annotations

from typing import Any

from inferfleet.api import labels
from inferfleet.core import types as core
from inferfleet.core.units import GIB, TERA
from inferfleet.reconcile.children import ChildWrites
from inferfleet.reconcile.gate import gate

HW = core.Hardware(memory_bytes=80 * GIB, memory_bandwidth_bytes_per_s=3.0 * TERA, flops_bf16=900 * TERA)


def _class(name: str, domain: str) -> core.AcceleratorClass:
    return core.AcceleratorClass(name, HW, 8, 2.0, domain, (8,))


def _deployment(pool: str, cls: str, replicas: int, devices: int) -> dict[str, Any]:
    return {
        "kind": "Deployment",
        "metadata": {"namespace": "ns", "labels": {labels.POOL: pool, labels.ACCELERATOR_CLASS: cls}},
        "spec": {
            "replicas": replicas,
            "template": {
                "spec": {"containers": [{"resources": {"limits": {"nvidia.com/gpu": str(devices)}}}]}
            },
        },
    }


def _problem(budget_w: float) -> core.Problem:
    options = {
        "ns/p": (core.Option("a", 1, 1.0, 100.0, 1.0), core.Option("b", 4, 4.0, 100.0, 1.0)),
        "ns/q": (core.Option("a", 2, 1.0, 100.0, 1.0),),
    }
    pools = tuple(
        core.Pool(k, core.ModelSpec("m", 1.0), core.SLO(), core.Workload(100, 100), 1.0) for k in options
    )
    policy = core.Policy(domain_budgets_watts={"hall": budget_w})
    return core.Problem(pools, options, {}, (_class("a", "hall"), _class("b", "hall")), policy)


def _plan(counts: dict[tuple[str, str], int]) -> core.Plan:
    stats = core.SolverStats("Optimal", 0.0, 0.0, 0.0, 0.0, "milp")
    pools = tuple(
        core.PoolPlan(
            key,
            tuple(
                core.Placement(c, n, n, 100.0 * n, 1.0, 1.0, 0.1, 0.01)
                for (k, c), n in counts.items()
                if k == key
            ),
            1.0,
            1.0,
            core.PlanStatus.PLACED,
        )
        for key in sorted({k for k, _ in counts})
    )
    return core.Plan(pools, (), (), 0.0, 0.0, stats)


def test_increases_wait_while_removed_pods_would_push_the_domain_over_budget() -> None:
    # moving p from a (3 live pods) to b (3 planned): during the move 6 x 100 W > 500 W
    writes = ChildWrites(reductions=[_deployment("p", "a", 0, 1)], increases=[_deployment("p", "b", 3, 4)])
    plan = _plan({("ns/p", "a"): 0, ("ns/p", "b"): 3})
    deferred = gate(writes, plan, _problem(500.0), {("ns/p", "a"): 3})
    assert deferred == ["hall"]
    assert writes.increases == []
    assert writes.reductions == [_deployment("p", "a", 0, 1)]


def test_within_budget_everything_goes_and_biggest_replicas_come_first() -> None:
    small, big = _deployment("q", "a", 2, 2), _deployment("p", "b", 3, 4)
    writes = ChildWrites(increases=[small, big])
    plan = _plan({("ns/p", "b"): 3, ("ns/q", "a"): 2})
    assert gate(writes, plan, _problem(10_000.0), {}) == []
    assert writes.increases == [big, small]


def test_increases_that_add_no_pods_are_never_held() -> None:
    # same replica count as live (e.g. a spec change only): applying it adds no power
    same = _deployment("p", "b", 3, 4)
    writes = ChildWrites(increases=[same])
    plan = _plan({("ns/p", "b"): 3})
    assert gate(writes, plan, _problem(100.0), {("ns/p", "b"): 3}) == ["hall"]
    assert writes.increases == [same]
