"""The planner against an exact per-node model (``exact_reference``) on small random fleets.

Fleets (``exact_reference.random_fleet``): 1-3 classes of 8- or 12-device nodes, partly used;
replica sizes 1, 2, 3, 4, 5, 6, 8, 12 (odd ones that do not divide each other, where threshold
rows are not exact); budgets 30-100% of what the demand would draw; three priority levels; minimum
replicas, maximum replicas and running replicas with churn.

Tolerances, from the data:

* **levels**: every level value of a fleet is a multiple of ``g = level_grid(problem)`` (the rps,
  demands, headroom and minimums are decimals: see its docstring), so two plans' levels are either
  equal or at least ``g`` apart.  The planner proves a level to ``exact.LEVEL_GAP`` (1e-6); fleets
  are drawn with ``g > 4 * LEVEL_GAP`` and levels compared within ``g / 2``: that is equality.
* **cost**: the exact path's cost phase stops at a relative gap of 1e-4 (``mip_rel_gap``); costs
  are compared within that relative gap plus 1e-6 $/h of float noise, and the reported bound must
  not exceed the reference's optimum by more than the noise (so the reported gap bounds the true
  one).
"""

from __future__ import annotations

import dataclasses
import itertools
import random
import time
from collections.abc import Sequence

import pytest
from core.exact_reference import (
    HW,
    level_grid,
    maximal_patterns,
    random_fleet,
    score,
    solve_reference,
)
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from inferfleet.core.exact import LEVEL_GAP
from inferfleet.core.planner import solve
from inferfleet.core.types import (
    SLO,
    AcceleratorClass,
    ModelSpec,
    Option,
    Plan,
    Policy,
    Pool,
    Problem,
    Workload,
)

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
COST_REL = 1e-4  # the exact path's mip_rel_gap on cost
NOISE = 1e-6  # $/h


def counts(plan: Plan, problem: Problem) -> list[list[int]]:
    """Replicas per pool per option (the fleets have at most one option per class)."""
    out = []
    for pool, pp in zip(problem.pools, plan.pools, strict=True):
        by_class = {pl.accelerator_class: pl.replicas for pl in pp.placements}
        out.append([by_class.get(o.accelerator_class, 0) for o in problem.options[pool.key]])
    return out


def packs(sizes: Sequence[int], free: Sequence[int]) -> bool:
    """Exhaustive: can every replica be put on some node (tiny inputs only)?"""
    items = sorted(sizes, reverse=True)
    left = list(free)

    def place(i: int) -> bool:
        if i == len(items):
            return True
        tried = set()
        for n, room in enumerate(left):
            if room >= items[i] and room not in tried:
                tried.add(room)
                left[n] -= items[i]
                if place(i + 1):
                    return True
                left[n] += items[i]
        return False

    return place(0)


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
    if any(w > budgets[d] + 1e-6 for d, w in watts.items() if d in budgets):
        return False
    return all(packs(sizes.get(c.name, []), c.node_free_devices) for c in problem.classes)


def lex_compare(a: Sequence[float], b: Sequence[float], tol: float) -> int:
    """-1, 0 or 1 as levels ``a`` are lexicographically less, as much or more shed than ``b``."""
    for x, y in zip(a, b, strict=True):
        if x < y - tol:
            return -1
        if x > y + tol:
            return 1
    return 0


def fleet(rng: random.Random) -> Problem:
    problem = random_fleet(rng)
    assume(level_grid(problem) > 4 * LEVEL_GAP)
    return problem


@SETTINGS
@given(st.randoms(use_true_random=False))
def test_the_reference_is_the_brute_force_optimum(rng: random.Random) -> None:
    """The oracle's oracle: on fleets small enough to enumerate, every plan scored and packed
    exhaustively gives the reference's levels and cost."""
    problem = random_fleet(rng, pools=(1, 3), classes=(1, 2), nodes=(1, 2))
    ranges = []
    for pool in problem.pools:
        k = len(problem.options[pool.key])
        top = min(pool.max_replicas, 3)
        ranges.append([r for r in itertools.product(range(top + 1), repeat=k) if sum(r) <= top])
    pools = tuple(dataclasses.replace(p, max_replicas=min(p.max_replicas, 3)) for p in problem.pools)
    problem = dataclasses.replace(problem, pools=pools)
    best: tuple[tuple[float, ...], float] | None = None
    for combo in itertools.product(*ranges):
        n = [list(r) for r in combo]
        if fits(problem, n):
            got = score(problem, n)
            key = (tuple(round(v, 9) for v in got[0]), got[1])
            if best is None or key < (tuple(round(v, 9) for v in best[0]), best[1]):
                best = got
    assert best is not None  # no replicas at all always fits
    ref = solve_reference(problem)
    assert lex_compare(ref.levels, best[0], 1e-7) == 0, (ref, best)
    assert ref.cost == pytest.approx(best[1], rel=1e-9, abs=1e-9), (ref, best)


@SETTINGS
@given(st.randoms(use_true_random=False))
def test_the_exact_path_equals_the_per_node_optimum(rng: random.Random) -> None:
    """Shed per level equal to the optimum's, cost within the cost phase's gap, reported Optimal,
    the reported bound below the optimum (so the reported gap bounds the true one), and the plan
    fits the actual nodes and budgets."""
    problem = fleet(rng)
    plan = solve(problem, method="milp")
    ref = solve_reference(problem)
    levels, cost = score(problem, counts(plan, problem))
    tol = level_grid(problem) / 2
    assert fits(problem, counts(plan, problem))
    assert plan.solver.status == "Optimal"
    assert lex_compare(levels, ref.levels, tol) == 0, (levels, ref.levels)
    assert cost <= ref.cost * (1 + COST_REL) + NOISE, (cost, ref.cost)
    assert cost >= ref.cost - NOISE, (cost, ref.cost)
    assert plan.solver.bound <= ref.cost + NOISE, (plan.solver.bound, ref.cost)
    assert plan.solver.objective == pytest.approx(cost, rel=1e-9, abs=1e-9)


@SETTINGS
@given(st.randoms(use_true_random=False), st.sampled_from((0.002, 0.01, 0.03)))
def test_cut_short_the_plan_still_fits_and_its_bound_still_holds(rng: random.Random, limit: float) -> None:
    """With almost no time: whatever the status, the plan fits, never beats the optimum, Optimal
    only when it is, and its bound is below the cheapest plan whose every level is within the
    plan's (what the bound claims when a level phase was not proven)."""
    problem = fleet(rng)
    plan = solve(problem, method="milp", time_limit_s=limit)
    ref = solve_reference(problem)
    n = counts(plan, problem)
    levels, cost = score(problem, n)
    tol = level_grid(problem) / 2
    assert fits(problem, n)
    order = lex_compare(levels, ref.levels, tol)
    assert order >= 0, (levels, ref.levels)
    if plan.solver.status == "Optimal":
        assert order == 0 and cost <= ref.cost * (1 + COST_REL) + NOISE
    within = solve_reference(problem, level_caps=[v + tol for v in levels])
    assert plan.solver.bound <= within.cost + NOISE, (plan.solver.bound, within.cost)


@SETTINGS
@given(st.randoms(use_true_random=False))
def test_the_large_instance_path_bounds_the_cost_of_serving_every_pool_as_well(rng: random.Random) -> None:
    """The heuristic path's bound is below the cheapest plan that sheds no more of any pool (and
    misses no more of its minimum) than its plan: the claim its gap makes."""
    problem = fleet(rng)
    plan = solve(problem, method="heuristic")
    n = counts(plan, problem)
    assert fits(problem, n)
    if plan.solver.status == "Optimal":  # only when nothing can be placed at all
        assert all(pp.placements == () for pp in plan.pools)
    caps = {}
    for pool, row in zip(problem.pools, n, strict=True):
        need = pool.demand_rps * problem.policy.headroom
        served = sum(k * o.rps for k, o in zip(row, problem.options[pool.key], strict=True))
        shed = max(0.0, 1 - served / need) if need > 0 else 0.0
        caps[pool.key] = (shed, max(0, pool.min_replicas - sum(row)))
    within = solve_reference(problem, pool_caps=caps)
    assert plan.solver.bound <= within.cost + NOISE, (plan.solver.bound, within.cost)
    assert plan.solver.objective >= within.cost - NOISE


@pytest.mark.parametrize("seed", range(4))
def test_the_time_limit_holds_within_ten_percent(seed: int) -> None:
    """Fleets too big to prove in the time (30-80 pools, 3-6 classes of 5-20 nodes, odd sizes):
    every phase works to one deadline, so the solve ends near the limit.  Asserted within 50% (a
    loaded CI machine stretches wall time; the overrun this guards was 1.9-2.7x); the 10% target
    is measured by ``./scripts/bench planner --property``, not here."""
    problem = random_fleet(random.Random(seed), pools=(30, 80), nodes=(5, 20), classes=(3, 6))
    limit = 1.0
    t0 = time.perf_counter()
    plan = solve(problem, method="milp", time_limit_s=limit)
    elapsed = time.perf_counter() - t0
    assert elapsed <= 1.5 * limit, (elapsed, plan.solver)
    assert plan.solver.seconds <= 1.5 * limit


def test_two_four_device_replicas_share_an_eight_device_node_beside_three_device_ones() -> None:
    """The issue's case: a 3-device replica on the class made the old size-3 threshold row cap
    every replica of >= 3 devices at floor(8/3) * 3 = 6 devices per node, so two 4-device replicas
    (8 devices, one node) looked impossible.  The exact path packs them, and a 3 + 5 node too."""
    cls = AcceleratorClass("c", HW, 8, 1.0, "d", node_free_devices=(8, 8))
    pools = tuple(
        Pool(key, ModelSpec("m", 8), SLO(), Workload(256, 64), demand_rps=demand, max_replicas=6)
        for key, demand in (("ns/four", 2.0), ("ns/three", 1.0), ("ns/five", 1.0))
    )
    options = {
        f"ns/{name}": (Option("c", devices=size, rps=1.0, watts=1.0, dollars_per_hour=1.0),)
        for name, size in (("four", 4), ("three", 3), ("five", 5))
    }
    problem = Problem(pools=pools, options=options, unfit={}, classes=(cls,), policy=Policy(headroom=1.0))
    plan = solve(problem, method="milp")
    n = counts(plan, problem)
    assert n == [[2], [1], [1]], n  # 4 + 4 on one node, 3 + 5 on the other: nothing shed
    assert plan.solver.status == "Optimal" and all(pp.status == "Placed" for pp in plan.pools)


def test_the_reference_enumerates_every_maximal_pattern() -> None:
    """Maximal: no further replica fits (3 + 3 on 8 devices leaves 2, too few for a 3 or a 5)."""
    assert sorted(maximal_patterns([3, 5], 8)) == [(1, 1), (2, 0)]
    assert sorted(maximal_patterns([2, 3], 7)) == [(0, 2), (2, 1), (3, 0)]
    assert maximal_patterns([5], 4) == [(0,)]
