"""Property tests of the planner on small random fleets, checked against brute force."""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inferfleet.core.churn import pool_moves
from inferfleet.core.cost import moved_replicas
from inferfleet.core.cuts import joined, separate_drop, separate_mir
from inferfleet.core.formulation import compile_problem
from inferfleet.core.milp import HighsModel
from inferfleet.core.objectives import weighted_vector
from inferfleet.core.planner import Method, solve
from inferfleet.core.types import (
    SLO,
    AcceleratorClass,
    Hardware,
    ModelSpec,
    Option,
    Plan,
    Policy,
    Pool,
    Problem,
    Workload,
)
from inferfleet.core.units import GIB, TERA

HW = Hardware(memory_bytes=80 * GIB, memory_bandwidth_bytes_per_s=3.0 * TERA, flops_bf16=900 * TERA)
PREFERENCE = 1e-3  # the planner's tie-breaking discount on preferred options
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TOL = 1e-6


def ffd(sizes: Sequence[int], free: Sequence[int]) -> bool:
    """First-fit decreasing onto nodes in the given order: does every replica find a node?"""
    left = list(free)
    for s in sorted(sizes, reverse=True):
        for i, f in enumerate(left):
            if f >= s:
                left[i] = f - s
                break
        else:
            return False
    return True


def packs(sizes: Sequence[int], free: Sequence[int]) -> bool:
    """Whether the replicas fit on the nodes: first-fit decreasing when sizes divide each other
    (exact then), an exhaustive search otherwise (first fit can miss a packing of sizes 3 and 2)."""
    distinct = sorted(set(sizes))
    if all(b % a == 0 for a, b in itertools.pairwise(distinct)):
        return ffd(sizes, free)

    def place(items: list[int], left: list[int]) -> bool:
        if not items:
            return True
        for i in sorted(range(len(left)), key=lambda k: left[k]):
            if left[i] >= items[0]:
                left[i] -= items[0]
                if place(items[1:], left):
                    return True
                left[i] += items[0]
        return False

    return place(sorted(sizes, reverse=True), list(free))


@st.composite
def fleets(
    draw: st.DrawFn,
    *,
    max_pools: int = 3,
    one_shape: bool = False,
    odd_sizes: bool = False,
    churny: bool = False,
) -> Problem:
    """1-2 classes (two domains), 1-3 pools with up to one option per class, small replica bounds.

    ``one_shape``: every replica 2 devices and 100 W, no minimum, no churn; ``odd_sizes``: replicas
    of 3 devices too (sizes that do not divide each other, where the threshold rows are not exact);
    ``churny``: up to 4 replicas running per class, up to 6 planned and churn of $0.3-3 a move, so
    that pools scale, move and grow beside their current placement.
    """
    sizes = (1, 2, 3, 4) if odd_sizes else (1, 2, 4)
    n_classes = draw(st.integers(1, 2))
    classes = tuple(
        AcceleratorClass(
            name=f"c{i}",
            hardware=HW,
            devices_per_node=8,
            price_per_device_hour=1.0,
            power_domain=f"d{i}",
            node_free_devices=tuple(draw(st.lists(st.integers(0, 8), min_size=1, max_size=3))),
        )
        for i in range(n_classes)
    )
    budgets = {
        f"d{i}": float(draw(st.integers(1, 20)) * 100) for i in range(n_classes) if draw(st.booleans())
    }
    pools, options = [], {}
    for k in range(draw(st.integers(1, max_pools))):
        opts = []
        for cls in classes:
            if one_shape or draw(st.integers(0, 3)) > 0:
                opts.append(
                    Option(
                        accelerator_class=cls.name,
                        devices=2 if one_shape else draw(st.sampled_from(sizes)),
                        rps=draw(st.integers(1, 20)) * 0.5,
                        watts=100.0 if one_shape else float(draw(st.integers(1, 6)) * 100),
                        dollars_per_hour=draw(st.integers(1, 20)) * 0.5,
                        preferred=draw(st.booleans()),
                    )
                )
        key = f"ns/p{k}"
        current = {c.name: draw(st.integers(0, 4 if churny else 2)) for c in classes if draw(st.booleans())}
        pools.append(
            Pool(
                key=key,
                model=ModelSpec(name="m", parameters_b=8),
                slo=SLO(),
                workload=Workload(256, 64),
                demand_rps=draw(st.integers(0, 30)) * 0.5,
                min_replicas=0 if one_shape else draw(st.integers(0, 2)),
                max_replicas=100 if one_shape else draw(st.integers(1, 6 if churny else 3)),
                priority=draw(st.integers(0, 2)),
                current={} if one_shape else current,
            )
        )
        options[key] = tuple(opts)
    return Problem(
        pools=tuple(pools),
        options=options,
        unfit={},
        classes=classes,
        policy=Policy(
            domain_budgets_watts=budgets,
            headroom=draw(st.sampled_from((1.0, 1.2))),
            churn_dollars_per_replica=draw(st.sampled_from((0.3, 1.0, 3.0) if churny else (0.0, 1.0))),
            time_limit_s=5.0,
        ),
    )


def counts(plan: Plan, problem: Problem) -> list[list[int]]:
    """Replicas per pool per option (options are one per class here)."""
    out = []
    for pool, pp in zip(problem.pools, plan.pools, strict=True):
        by_class = {pl.accelerator_class: pl.replicas for pl in pp.placements}
        out.append([by_class.get(o.accelerator_class, 0) for o in problem.options[pool.key]])
    return out


def fits(problem: Problem, n: Sequence[Sequence[int]]) -> bool:
    """Power within every budget and replicas packable onto the actual nodes."""
    watts: dict[str, float] = {}
    sizes: dict[str, list[int]] = {}
    domain = {c.name: c.power_domain for c in problem.classes}
    for pool, row in zip(problem.pools, n, strict=True):
        for o, k in zip(problem.options[pool.key], row, strict=True):
            watts[domain[o.accelerator_class]] = watts.get(domain[o.accelerator_class], 0.0) + k * o.watts
            sizes.setdefault(o.accelerator_class, []).extend([o.devices] * k)
    budgets = problem.policy.domain_budgets_watts
    if any(w > budgets[d] + TOL for d, w in watts.items() if d in budgets):
        return False
    return all(packs(sizes.get(c.name, []), c.node_free_devices) for c in problem.classes)


def score(problem: Problem, n: Sequence[Sequence[int]]) -> tuple[tuple[float, ...], float]:
    """(normalised shed per priority level, highest first; cost objective) of counts ``n``."""
    levels = sorted({p.priority for p in problem.pools}, reverse=True)
    shed = dict.fromkeys(levels, 0.0)
    cost = 0.0
    for pool, row in zip(problem.pools, n, strict=True):
        opts = problem.options[pool.key]
        need = pool.demand_rps * problem.policy.headroom
        served = sum(k * o.rps for o, k in zip(opts, row, strict=True))
        if need > 0 and opts:
            shed[pool.priority] += max(0.0, 1.0 - served / need)
        if pool.min_replicas > 0 and opts:
            shed[pool.priority] += max(0, pool.min_replicas - sum(row)) / pool.min_replicas
        for o, k in zip(opts, row, strict=True):
            cost += k * o.dollars_per_hour * (1 - PREFERENCE if o.preferred else 1.0)
        on = {o.accelerator_class: k for o, k in zip(opts, row, strict=True)}
        cost += problem.policy.churn_dollars_per_replica * moved_replicas(pool.current, on)
    return tuple(shed[lv] for lv in levels), cost


def brute_force(problem: Problem) -> list[tuple[tuple[float, ...], float, list[list[int]]]]:
    """Every plan that fits, scored."""
    per_pool = []
    for pool in problem.pools:
        k = len(problem.options[pool.key])
        per_pool.append(
            [
                r
                for r in itertools.product(range(pool.max_replicas + 1), repeat=k)
                if sum(r) <= pool.max_replicas
            ]
        )
    out = []
    for combo in itertools.product(*per_pool):
        n = [list(r) for r in combo]
        if fits(problem, n):
            levels, cost = score(problem, n)
            out.append((levels, cost, n))
    return out


def lex_close(a: tuple[tuple[float, ...], float], b: tuple[tuple[float, ...], float]) -> bool:
    (la, ca), (lb, cb) = a, b
    return all(math.isclose(x, y, abs_tol=1e-5) for x, y in zip(la, lb, strict=True)) and math.isclose(
        ca, cb, rel_tol=2e-4, abs_tol=1e-6
    )


@SETTINGS
@given(fleets(odd_sizes=True), st.sampled_from(("milp", "heuristic")))
def test_power_never_over_budget_and_replicas_always_pack(problem: Problem, method: Method) -> None:
    plan = solve(problem, method=method)
    assert fits(problem, counts(plan, problem))
    for d in plan.domains:
        assert d.budget_watts is None or d.used_watts <= d.budget_watts + TOL


@SETTINGS
@given(fleets())
def test_demand_met_whenever_brute_force_says_it_can_be(problem: Problem) -> None:
    plan = solve(problem, method="milp")
    feasible = any(all(v <= TOL for v in levels) for levels, _, _ in brute_force(problem))
    if feasible:
        assert all(pp.status == "Placed" for pp in plan.pools if problem.options[pp.key])
        for pool, pp in zip(problem.pools, plan.pools, strict=True):
            if problem.options[pool.key]:
                assert pp.served_rps >= pool.demand_rps * problem.policy.headroom - 1e-6
                assert sum(pl.replicas for pl in pp.placements) >= pool.min_replicas


@SETTINGS
@given(st.one_of(fleets(), fleets(max_pools=2, churny=True)))
def test_milp_optimum_equals_brute_force(problem: Problem) -> None:
    plan = solve(problem, method="milp")
    assert plan.solver.status == "Optimal"
    got = score(problem, counts(plan, problem))
    best = min(brute_force(problem), key=lambda t: (tuple(round(v, 9) for v in t[0]), t[1]))
    assert lex_close(got, (best[0], best[1])), (got, best)
    assert plan.solver.objective == pytest.approx(got[1], rel=1e-6, abs=1e-6)


@SETTINGS
@given(st.one_of(fleets(), fleets(churny=True)), st.data())
def test_pool_moves_are_cost_moved_replicas(problem: Problem, data: st.DataObject) -> None:
    """The vectorised move count the solvers share is the cost model's definition, replica counts
    anywhere (within or beyond the current placement, on classes with or without a column)."""
    comp = compile_problem(problem)
    n = np.array(
        data.draw(st.lists(st.integers(0, 4), min_size=comp.n_cols, max_size=comp.n_cols)), dtype=float
    )
    got = pool_moves(comp, n)
    for p, pool in enumerate(problem.pools):
        planned: dict[str, int] = {}
        for j in np.flatnonzero(comp.col_pool == p).tolist():
            name = comp.options[j].accelerator_class
            planned[name] = planned.get(name, 0) + int(n[j])
        assert got[p] == moved_replicas(pool.current, planned)


@SETTINGS
@given(st.one_of(fleets(), fleets(max_pools=2, churny=True)), st.sampled_from(("milp", "heuristic")))
def test_plan_objective_charges_churn_on_moved_replicas(problem: Problem, method: Method) -> None:
    """$/h plus churn x ``cost.moved_replicas`` per pool, whichever path made the plan."""
    plan = solve(problem, method=method)
    assert plan.solver.objective == pytest.approx(
        score(problem, counts(plan, problem))[1], rel=1e-9, abs=1e-9
    )
    assert plan.solver.bound <= plan.solver.objective + 1e-9


@SETTINGS
@given(st.one_of(fleets(), fleets(max_pools=2, churny=True)))
def test_cuts_never_cut_off_a_plan(problem: Problem) -> None:
    """Every MIR and drop-credit cut (one per pool, violated or not, at the LP optimum) holds for
    every plan that fits, whatever it costs."""
    comp = compile_problem(problem)
    if comp.n_cols == 0:
        return
    model = HighsModel(comp, integer=False)
    model.set_costs(weighted_vector(comp, model.layout))
    res = model.run(5.0)
    assert res.ok
    lay = model.layout
    cuts = joined(
        separate_mir(comp, lay, res.values, min_violation=-math.inf),
        separate_drop(comp, lay, res.values, min_violation=-math.inf),
    )
    row = np.repeat(np.arange(len(cuts)), np.diff(cuts.start))
    for _, _, plan in brute_force(problem):
        x = HighsModel.implied(comp, lay, np.array([k for r in plan for k in r], dtype=float))
        activity = np.bincount(row, weights=cuts.value * x[cuts.index], minlength=len(cuts))
        assert np.all(activity >= cuts.lower - 1e-6), plan


@SETTINGS
@given(fleets(), st.sampled_from(("milp", "heuristic")))
def test_same_problem_same_plan(problem: Problem, method: Method) -> None:
    def strip(plan: Plan) -> Plan:
        return dataclasses.replace(plan, solver=dataclasses.replace(plan.solver, seconds=0.0))

    assert strip(solve(problem, method=method)) == strip(solve(problem, method=method))


@SETTINGS
@given(fleets(max_pools=3, one_shape=True))
def test_under_a_short_budget_the_lowest_priority_sheds_first(problem: Problem) -> None:
    """Every replica has the same size and draw, so one freed replica always makes room for another:
    a pool may shed only while every lower-priority pool runs nothing."""
    plan = solve(problem, method="milp")
    by_key = {pp.key: pp for pp in plan.pools}
    for pool in problem.pools:
        pp = by_key[pool.key]
        if pp.served_rps < pool.demand_rps * problem.policy.headroom - 1e-6:
            for lower in problem.pools:
                if lower.priority < pool.priority:
                    assert by_key[lower.key].placements == (), (pool.key, lower.key)
