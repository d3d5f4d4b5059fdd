"""Property tests of the size-aware split inside the global plan, against brute force.

Small random fleets whose pools give their demand as 2-3 request-size buckets with a rate per
(bucket, option) (0: the option cannot serve that bucket); brute force enumerates every replica
count, keeps those that fit the nodes and budgets, and scores each with the most its replicas can
serve under any split (an LP written here from the definition).  The planner must reach the
lexicographic optimum (shed by priority, then cost), its split must never put more of a bucket on
a placement than its replicas carry, the routed req/s of a bucket must add up to at most its share
(exactly when the pool is placed), and with one bucket the plan must be today's.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence

import numpy as np
from core.test_planner_properties import PREFERENCE, fleets, packs, score
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inferfleet.core.cost import moved_replicas
from inferfleet.core.formulation import compile_problem, split_of
from inferfleet.core.heuristic import greedy
from inferfleet.core.highs import INF, Solver, SparseModel
from inferfleet.core.mix import mixture_rps
from inferfleet.core.planner import Method, solve
from inferfleet.core.problem import build_problem
from inferfleet.core.reference import REFERENCE_HARDWARE
from inferfleet.core.types import (
    SLO,
    AcceleratorClass,
    Bucket,
    Hardware,
    ModelSpec,
    Option,
    Plan,
    Policy,
    Pool,
    Problem,
    Routing,
    Workload,
)
from inferfleet.core.units import GIB, TERA

HW = Hardware(memory_bytes=80 * GIB, memory_bandwidth_bytes_per_s=3.0 * TERA, flops_bf16=900 * TERA)
SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TOL = 1e-6


@st.composite
def split_fleets(draw: st.DrawFn) -> Problem:
    """1-2 classes, 1-2 size-aware pools of 2-3 buckets, up to one option per class."""
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
        f"d{i}": float(draw(st.integers(1, 12)) * 100) for i in range(n_classes) if draw(st.booleans())
    }
    pools, options = [], {}
    for k in range(draw(st.integers(1, 2))):
        nb = draw(st.integers(2, 3))
        weights = [draw(st.integers(1, 4)) for _ in range(nb)]
        buckets = tuple(
            Bucket(Workload(100 * (b + 1), 50 * (nb - b)), w / sum(weights)) for b, w in enumerate(weights)
        )
        opts = []
        for cls in classes:
            if draw(st.integers(0, 3)) == 0:
                continue
            rates = tuple(draw(st.integers(0, 12)) * 0.5 for _ in range(nb))
            if max(rates) <= 0:
                continue
            opts.append(
                Option(
                    accelerator_class=cls.name,
                    devices=draw(st.sampled_from((1, 2, 4))),
                    rps=mixture_rps([b.share for b in buckets], rates),
                    watts=float(draw(st.integers(1, 4)) * 100),
                    dollars_per_hour=draw(st.integers(1, 12)) * 0.5,
                    preferred=draw(st.booleans()),
                    bucket_rps=rates,
                )
            )
        key = f"ns/p{k}"
        current = {c.name: draw(st.integers(0, 2)) for c in classes if draw(st.booleans())}
        pools.append(
            Pool(
                key=key,
                model=ModelSpec(name="m", parameters_b=8),
                slo=SLO(),
                workload=Workload(256, 64),
                demand_rps=draw(st.integers(0, 24)) * 0.5,
                min_replicas=draw(st.integers(0, 1)),
                max_replicas=draw(st.integers(1, 3)),
                priority=draw(st.integers(0, 1)),
                current=current,
                buckets=buckets,
                routing=Routing.SIZE_AWARE,
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
            churn_dollars_per_replica=draw(st.sampled_from((0.0, 1.0))),
        ),
    )


def served_fraction(pool: Pool, opts: Sequence[Option], counts: Sequence[int], headroom: float) -> float:
    """The most of the pool's need (demand x headroom) ``counts`` replicas serve under any split:
    max sum_b s_b sum_j y_bj with sum_j y_bj <= 1 and sum_b y_bj s_b need / r_bj <= n_j."""
    need = pool.demand_rps * headroom
    pairs = [
        (b, j)
        for b in range(len(pool.buckets))
        for j, o in enumerate(opts)
        if o.bucket_rps[b] > 0 and counts[j] > 0
    ]
    if need <= 0:
        return 1.0
    if not pairs:
        return 0.0
    nb, nj = len(pool.buckets), len(opts)
    start, index, value = [0], [], []
    for b, j in pairs:
        index += [b, nb + j]
        value += [1.0, pool.buckets[b].share * need / opts[j].bucket_rps[b]]
        start.append(len(index))
    model = SparseModel(
        col_cost=np.array([-pool.buckets[b].share for b, _ in pairs]),
        col_lower=np.zeros(len(pairs)),
        col_upper=np.ones(len(pairs)),
        row_lower=np.full(nb + nj, -INF),
        row_upper=np.array([1.0] * nb + [float(c) for c in counts]),
        start=np.array(start, dtype=np.int64),
        index=np.array(index, dtype=np.int64),
        value=np.array(value),
    )
    h = Solver({"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10})
    h.pass_model(model)
    res = h.run(10.0)
    assert res.status == "Optimal"
    return min(1.0, -res.objective)


def split_score(problem: Problem, n: Sequence[Sequence[int]]) -> tuple[tuple[float, ...], float]:
    """(normalised shed per priority level, highest first; cost objective) under the best split."""
    levels = sorted({p.priority for p in problem.pools}, reverse=True)
    shed = dict.fromkeys(levels, 0.0)
    cost = 0.0
    for pool, row in zip(problem.pools, n, strict=True):
        opts = problem.options[pool.key]
        if pool.demand_rps > 0 and opts:
            shed[pool.priority] += 1.0 - served_fraction(pool, opts, row, problem.policy.headroom)
        if pool.min_replicas > 0 and opts:
            shed[pool.priority] += max(0, pool.min_replicas - sum(row)) / pool.min_replicas
        for o, k in zip(opts, row, strict=True):
            cost += k * o.dollars_per_hour * (1 - PREFERENCE if o.preferred else 1.0)
        on = {o.accelerator_class: k for o, k in zip(opts, row, strict=True)}
        cost += problem.policy.churn_dollars_per_replica * moved_replicas(pool.current, on)
    return tuple(shed[lv] for lv in levels), cost


def fits(problem: Problem, n: Sequence[Sequence[int]]) -> bool:
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


def best(problem: Problem) -> tuple[tuple[float, ...], float]:
    per_pool = []
    for pool in problem.pools:
        opts = problem.options[pool.key]
        per_pool.append(
            [
                c
                for c in itertools.product(range(pool.max_replicas + 1), repeat=len(opts))
                if sum(c) <= pool.max_replicas
            ]
        )
    scored = [split_score(problem, list(n)) for n in itertools.product(*per_pool) if fits(problem, list(n))]
    return min(scored, key=lambda s: (tuple(round(v, 7) for v in s[0]), s[1]))


def counts(plan: Plan, problem: Problem) -> list[list[int]]:
    out = []
    for pool, pp in zip(problem.pools, plan.pools, strict=True):
        by_class = {pl.accelerator_class: pl.replicas for pl in pp.placements}
        out.append([by_class.get(o.accelerator_class, 0) for o in problem.options[pool.key]])
    return out


def check_split(problem: Problem, plan: Plan) -> None:
    """Each placement within its replicas for the buckets routed to it; each bucket's routed req/s
    at most its share of demand, exactly when the pool is placed."""
    headroom = problem.policy.headroom
    for pool, pp in zip(problem.pools, plan.pools, strict=True):
        by_class = {o.accelerator_class: o for o in problem.options[pool.key]}
        routed = np.zeros(len(pool.buckets))
        for pl in pp.placements:
            opt = by_class[pl.accelerator_class]
            assert len(pl.bucket_rps) == len(pool.buckets)
            load = 0.0
            for b, x in enumerate(pl.bucket_rps):
                assert x >= -TOL
                if opt.bucket_rps[b] <= 0:
                    assert x <= TOL, (
                        f"{pool.key}: bucket {b} routed to {pl.accelerator_class}, which cannot serve it"
                    )
                    continue
                load += x * headroom / opt.bucket_rps[b]
            assert load <= pl.replicas + 1e-6, f"{pool.key} on {pl.accelerator_class}: {load} > {pl.replicas}"
            routed += np.array(pl.bucket_rps)
        shares = np.array([b.share * pool.demand_rps for b in pool.buckets])
        assert (routed <= shares + 1e-6).all()
        if pp.status == "Placed" and pool.demand_rps > 0:
            assert np.allclose(routed, shares, atol=1e-6)
            assert abs(routed.sum() - pool.demand_rps) <= 1e-6


@SETTINGS
@given(split_fleets())
def test_exact_split_plan_is_the_brute_force_optimum_and_within_capacity(problem: Problem) -> None:
    plan = solve(problem, method="milp")
    assert plan.solver.status == "Optimal"
    check_split(problem, plan)
    n = counts(plan, problem)
    assert fits(problem, n)
    levels, cost = split_score(problem, n)
    want_levels, want_cost = best(problem)
    assert np.allclose(levels, want_levels, atol=1e-6), (levels, want_levels)
    assert cost <= want_cost * (1 + 1e-4) + 1e-6, (cost, want_cost)


@SETTINGS
@given(split_fleets(), st.sampled_from(("heuristic", "auto")))
def test_every_path_gives_a_split_within_capacity(problem: Problem, method: Method) -> None:
    plan = solve(problem, method=method)
    check_split(problem, plan)
    n = counts(plan, problem)
    assert fits(problem, n)
    # the plan serves what its replicas serve under the best split
    for pool, pp, row in zip(problem.pools, plan.pools, n, strict=True):
        need = pool.demand_rps * problem.policy.headroom
        if need > 0 and problem.options[pool.key]:
            frac = served_fraction(pool, problem.options[pool.key], row, problem.policy.headroom)
            assert abs(pp.served_rps - frac * need) <= 1e-6 * max(need, 1.0)


def as_split(problem: Problem, shares: tuple[float, float]) -> Problem:
    """Every pool as two buckets of the same speed on each option (the split changes nothing)."""
    pools = tuple(
        dataclasses.replace(
            p,
            buckets=(Bucket(Workload(100, 10), shares[0]), Bucket(Workload(200, 20), shares[1])),
            routing=Routing.SIZE_AWARE,
        )
        for p in problem.pools
    )
    options = {
        k: tuple(dataclasses.replace(o, bucket_rps=(o.rps, o.rps)) for o in opts)
        for k, opts in problem.options.items()
    }
    return dataclasses.replace(problem, pools=pools, options=options)


@SETTINGS
@given(fleets(churny=True), st.sampled_from(((0.5, 0.5), (0.3, 0.7))))
def test_buckets_of_one_speed_plan_as_today(problem: Problem, shares: tuple[float, float]) -> None:
    today = solve(problem, method="milp")
    split = solve(as_split(problem, shares), method="milp")
    assert today.solver.status == split.solver.status == "Optimal"
    got, want = score(problem, counts(split, problem)), score(problem, counts(today, problem))
    assert np.allclose(got[0], want[0], atol=1e-6)
    assert abs(got[1] - want[1]) <= 1e-4 * max(want[1], 1.0) + 1e-6
    for a, b in zip(today.pools, split.pools, strict=True):
        assert a.status == b.status


@settings(max_examples=30, deadline=None)
@given(
    st.integers(64, 4000),
    st.integers(1, 800),
    st.sampled_from((None, 0.2, 1.0)),
    st.sampled_from((None, 0.03, 0.08)),
    st.integers(1, 400),
    st.sampled_from(tuple(Routing)),
)
def test_one_bucket_is_todays_plan_exactly(
    n_in: int, n_out: int, ttft: float | None, tpot: float | None, demand: int, routing: Routing
) -> None:
    classes = [
        AcceleratorClass(name, REFERENCE_HARDWARE[name], 8, price, "dc", node_free_devices=(8,) * 4)
        for name, price in (("H100-SXM5-80GB", 3.0), ("L4", 0.6), ("A10G", 0.9))
    ]
    base = Pool("ns/p", ModelSpec("llama-8b", 8.0), SLO(ttft, tpot), Workload(n_in, n_out), demand * 0.5)
    one = dataclasses.replace(base, buckets=(Bucket(base.workload, 1.0),), routing=routing)
    policy = Policy(domain_budgets_watts={"dc": 6000.0})
    a = build_problem([base], classes, policy)
    b = build_problem([one], classes, policy)
    assert a.options == b.options
    assert {k: dict(v) for k, v in a.unfit.items()} == {k: dict(v) for k, v in b.unfit.items()}
    pa, pb = solve(a, method="milp"), solve(b, method="milp")
    assert pa.pools == pb.pools
    assert (pa.dollars_per_hour, pa.watts, pa.classes, pa.domains) == (
        pb.dollars_per_hour,
        pb.watts,
        pb.classes,
        pb.domains,
    )


@SETTINGS
@given(split_fleets())
def test_greedy_serves_every_servable_size_aware_pool_when_nothing_binds(problem: Problem) -> None:
    free = dataclasses.replace(
        problem,
        classes=tuple(dataclasses.replace(c, node_free_devices=(8,) * 200) for c in problem.classes),
        pools=tuple(dataclasses.replace(p, max_replicas=1000, min_replicas=0) for p in problem.pools),
        policy=dataclasses.replace(problem.policy, domain_budgets_watts={}),
    )
    comp = compile_problem(free)
    n = greedy(comp)
    _, served = split_of(comp, n)
    for p, pool in enumerate(free.pools):
        opts = free.options[pool.key]
        servable = all(any(o.bucket_rps[b] > 0 for o in opts) for b in range(len(pool.buckets)))
        if pool.demand_rps > 0 and opts and servable:
            assert served[p] >= 1.0 - 1e-6, (pool.key, served[p])


def as_mixed(problem: Problem) -> Problem:
    """The same pools with mixed routing: each option at its mixture rate (gone where it misses a
    bucket)."""
    pools = tuple(dataclasses.replace(p, routing=Routing.MIXED) for p in problem.pools)
    options = {
        k: tuple(dataclasses.replace(o, bucket_rps=()) for o in opts if o.rps > 0)
        for k, opts in problem.options.items()
    }
    return dataclasses.replace(problem, pools=pools, options=options)


@SETTINGS
@given(split_fleets())
def test_size_aware_is_never_worse_than_mixed(problem: Problem) -> None:
    """A mixed plan is a size-aware plan (every replica taking the mix in proportion), so the
    size-aware optimum sheds no more at any level and, shedding as much, costs no more."""
    aware = solve(problem, method="milp")
    mixed = solve(as_mixed(problem), method="milp")
    assert aware.solver.status == mixed.solver.status == "Optimal"
    a_levels, a_cost = split_score(problem, counts(aware, problem))
    m_levels, m_cost = split_score(problem, counts(mixed, problem))
    for a, m in zip(a_levels, m_levels, strict=True):
        assert a <= m + 1e-6
        if a < m - 1e-6:
            return
    assert a_cost <= m_cost * (1 + 1e-4) + 1e-6
