"""Planner benchmark: synthetic fleets of 100 / 1,000 / 10,000 pools x 16 classes x 4 power domains.

Prints, per size: median solve seconds over ``--repeat`` runs, the solver's gap to its proven bound,
the plan's cost against the best single-class placement, and the shed fraction.  Figures only: no
timing is asserted.  Run::

    PYTHONPATH=operator python benchmarks/bench_planner.py [--sizes 100,1000,10000] [--repeat 5]
    PYTHONPATH=operator python benchmarks/bench_planner.py --property 200 [--property-fleet mid]

``--property N``: the property tests' fleets (``tests/unit/core/exact_reference.random_fleet``: odd
replica sizes on 8- and 12-device nodes, tight budgets, three priority levels, churn), each solved
by the planner and (``small`` fleets only) by the exact per-node reference model: mismatches, the
worst true gap against the reported one, and the solve time against the limit.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from inferfleet.core.planner import Method, best_single_class, solve
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

__all__ = ["make_fleet", "main"]

# name, devices/node, $/device-h, busy W/device, memory GiB, relative decode speed per device,
# tokens/s per user at 8B (what a tight SLO needs)
CATALOGUE: tuple[tuple[str, int, float, float, float, float, float], ...] = (
    ("l4", 8, 0.80, 72, 24, 0.30, 60),
    ("a10g", 8, 1.01, 150, 24, 0.60, 80),
    ("l40s", 8, 1.86, 350, 48, 0.86, 110),
    ("a100", 8, 3.67, 400, 80, 2.04, 170),
    ("h100", 8, 6.90, 700, 80, 3.35, 290),
    ("h200", 8, 5.41, 700, 141, 4.80, 300),
    ("b200", 8, 14.0, 1000, 180, 8.00, 450),
    ("mi300x", 8, 2.50, 750, 192, 5.30, 260),
    ("gaudi3", 8, 4.00, 900, 128, 3.67, 230),
    ("inf2", 16, 0.80, 130, 32, 0.82, 90),
    ("trn2", 16, 3.00, 500, 96, 2.90, 220),
    ("tpu-v5e", 8, 1.20, 200, 16, 0.82, 100),
    ("tpu-v6e", 8, 2.70, 300, 32, 1.64, 180),
    ("cerebras-cs3", 4, 13.5, 5000, 44, 30.0, 1800),
    ("groq-lpu", 8, 2.20, 350, 46, 4.00, 750),
    ("sn40l", 8, 5.00, 700, 64, 4.50, 1000),
)
MODELS_B = (1.0, 3.0, 8.0, 8.0, 8.0, 8.0, 13.0, 34.0, 70.0, 70.0, 405.0)
PRIORITIES = (0, 10, 100, 1000)
PRIORITY_P = (0.4, 0.3, 0.2, 0.1)
ROOT = Path(__file__).resolve().parents[1]


def _options(
    rng: np.random.Generator, params_b: float, tight: bool, classes: tuple[AcceleratorClass, ...]
) -> tuple[Option, ...]:
    out = []
    need_gib = params_b * (1.0 if params_b > 100 else 2.0) * 1.3  # the biggest models run in FP8
    for cls, row in zip(classes, CATALOGUE, strict=True):
        _, dpn, price, watts, mem, speed, user_tps = row
        if tight and user_tps * 8.0 / params_b < 40.0:
            continue  # misses a tight TPOT SLO
        devices = 1
        while devices * mem < need_gib and devices < dpn:
            devices *= 2
        if devices * mem < need_gib or rng.random() < 0.1:
            continue  # does not fit a node (or not allowed)
        rps = 40.0 * speed * devices**0.9 / params_b * float(rng.uniform(0.7, 1.3))
        w = devices * watts * float(rng.uniform(0.6, 0.9))
        dollars = devices * price + w * 1.3 * 0.10 / 1000.0
        out.append(
            Option(
                accelerator_class=cls.name,
                devices=devices,
                rps=round(rps, 3),
                watts=round(w, 1),
                dollars_per_hour=round(dollars, 4),
                ttft_s=0.2,
                tpot_s=0.03 if tight else 0.08,
                preferred=bool(rng.random() < 0.05),
            )
        )
    return tuple(out)


def make_fleet(n_pools: int, seed: int = 7, n_classes: int = 16, n_domains: int = 4) -> Problem:
    """A deterministic synthetic fleet whose power budgets and node capacities bind."""
    rng = np.random.default_rng(seed)
    skeleton = tuple(
        AcceleratorClass(
            name=row[0],
            hardware=Hardware(
                memory_bytes=row[4] * GIB, memory_bandwidth_bytes_per_s=1.0 * TERA, flops_bf16=100.0 * TERA
            ),
            devices_per_node=row[1],
            price_per_device_hour=row[2],
            power_domain=f"hall-{i % n_domains}",
        )
        for i, row in enumerate(CATALOGUE[:n_classes])
    )
    pools: list[Pool] = []
    options: dict[str, tuple[Option, ...]] = {}
    want_devices = dict.fromkeys((c.name for c in skeleton), 0.0)
    want_watts = dict.fromkeys((c.power_domain for c in skeleton), 0.0)
    for i in range(n_pools):
        params = float(rng.choice(MODELS_B))
        tight = bool(rng.random() < 0.3)
        demand = float(min(5000.0, 4.0 * (rng.pareto(1.2) + 1.0) ** 1.5 * min(1.0, 8.0 / params)))
        key = f"team-{i % 97}/pool-{i}"
        opts = _options(rng, params, tight, skeleton)
        options[key] = opts
        best = min(opts, key=lambda o: o.dollars_per_hour / o.rps, default=None)
        current: dict[str, int] = {}
        max_r = 1000
        if best is not None:
            reps = math.ceil(demand * 1.2 / best.rps)
            want_devices[best.accelerator_class] += reps * best.devices
            cls_dom = next(c.power_domain for c in skeleton if c.name == best.accelerator_class)
            want_watts[cls_dom] += reps * best.watts
            if rng.random() < 0.5:
                moved = opts[int(rng.integers(len(opts)))]
                current[moved.accelerator_class] = max(1, math.ceil(demand * 1.2 / moved.rps))
            if rng.random() < 0.03:
                max_r = max(1, int(reps * 0.8))
        pools.append(
            Pool(
                key=key,
                model=ModelSpec(name=f"m{params:g}b", parameters_b=params),
                slo=SLO(tpot_s=0.03 if tight else 0.08),
                workload=Workload(input_tokens=512, output_tokens=256),
                demand_rps=round(demand, 3),
                min_replicas=int(rng.choice((0, 0, 0, 1, 1, 2))),
                max_replicas=max_r,
                priority=int(rng.choice(PRIORITIES, p=PRIORITY_P)),
                current=current,
            )
        )
    classes = []
    for cls in skeleton:
        # capacity around 70-160% of what the cheapest placement would want, fragmented nodes
        target = want_devices[cls.name] * float(rng.uniform(0.7, 1.6)) + cls.devices_per_node * 2
        n_nodes = max(1, math.ceil(target / cls.devices_per_node))
        free = [
            cls.devices_per_node if rng.random() < 0.6 else int(rng.integers(0, cls.devices_per_node))
            for _ in range(n_nodes)
        ]
        classes.append(
            AcceleratorClass(
                name=cls.name,
                hardware=cls.hardware,
                devices_per_node=cls.devices_per_node,
                price_per_device_hour=cls.price_per_device_hour,
                power_domain=cls.power_domain,
                node_free_devices=tuple(free),
            )
        )
    budgets = {d: round(w * 0.9 + 5000.0, 1) for d, w in sorted(want_watts.items())}
    return Problem(
        pools=tuple(pools),
        options=options,
        unfit={},
        classes=tuple(classes),
        policy=Policy(domain_budgets_watts=budgets, churn_dollars_per_replica=0.5, time_limit_s=30.0),
    )


def _shed_fraction(plan: Plan, problem: Problem) -> float:
    need = sum(p.demand_rps for p in plan.pools) * problem.policy.headroom
    served = sum(p.served_rps for p in plan.pools)
    return 0.0 if need <= 0 else max(0.0, 1.0 - served / need)


def without_limits(problem: Problem) -> Problem:
    """The same fleet with no power budgets and room for everything on every class."""
    classes = tuple(
        dataclasses.replace(c, node_free_devices=(c.devices_per_node,) * 20_000) for c in problem.classes
    )
    policy = dataclasses.replace(problem.policy, domain_budgets_watts={})
    return dataclasses.replace(problem, classes=classes, policy=policy)


def mix_vs_single_class(problem: Problem, time_limit: float) -> tuple[str, float] | None:
    """Without budgets or node limits: the planner's $/h over the pools the best single class can run,
    divided by that class's $/h for them (Melange's comparison; < 1 means mixing classes saves).

    The class is the one with the lowest $ per req/s among those that run pools holding >= 80% of the
    demand, each pool on ``max(min, ceil(need / rps))`` replicas of its cheapest option there.
    """
    open_problem = without_limits(problem)
    plan = solve(open_problem, time_limit_s=time_limit)
    headroom = problem.policy.headroom
    total = sum(p.demand_rps for p in problem.pools) * headroom
    best: tuple[str, float, float, set[str]] | None = None
    for cls in sorted(c.name for c in problem.classes):
        cost = covered = 0.0
        keys = set()
        for pool in problem.pools:
            need = pool.demand_rps * headroom
            prices = [
                max(pool.min_replicas, math.ceil(need / o.rps - 1e-9)) * o.dollars_per_hour
                for o in problem.options[pool.key]
                if o.accelerator_class == cls
            ]
            if prices and need > 0:
                cost += min(prices)
                covered += need
                keys.add(pool.key)
        if covered >= 0.8 * total and (best is None or cost / covered < best[1] / best[2]):
            best = (cls, cost, covered, keys)
    if best is None:
        return None
    mixed = sum(pl.dollars_per_hour for pp in plan.pools if pp.key in best[3] for pl in pp.placements)
    return best[0], mixed / best[1]


def _counts(plan: Plan, problem: Problem) -> list[list[int]]:
    """Replicas per pool per option (the property fleets have at most one option per class)."""
    out = []
    for pool, pp in zip(problem.pools, plan.pools, strict=True):
        by_class = {pl.accelerator_class: pl.replicas for pl in pp.placements}
        out.append([by_class.get(o.accelerator_class, 0) for o in problem.options[pool.key]])
    return out


def property_fleets(n: int, fleet: str, limit: float, seed: int, method: Method) -> None:
    """Planner vs the exact per-node reference on ``n`` property-test fleets (module notes)."""
    sys.path.insert(0, str(ROOT / "tests" / "unit"))
    from core.exact_reference import level_grid, random_fleet, score, solve_reference

    shape = {} if fleet == "small" else {"pools": (30, 80), "nodes": (5, 20), "classes": (3, 6)}
    tally = dict.fromkeys(("more shed", "dearer", "bound above optimum", "Optimal but not", "overrun"), 0)
    statuses: dict[str, int] = {}
    worst_true = worst_reported = worst_ratio = 0.0
    for i in range(n):
        problem = random_fleet(random.Random(seed + i), **shape)
        t0 = time.perf_counter()
        plan = solve(problem, time_limit_s=limit, method=method)
        ratio = (time.perf_counter() - t0) / limit
        worst_ratio = max(worst_ratio, ratio)
        tally["overrun"] += ratio > 1.1
        statuses[plan.solver.status] = statuses.get(plan.solver.status, 0) + 1
        if fleet != "small":
            continue
        ref = solve_reference(problem)
        levels, cost = score(problem, _counts(plan, problem))
        tol = level_grid(problem) / 2
        first = next((a - b for a, b in zip(levels, ref.levels, strict=True) if abs(a - b) > tol), 0.0)
        wrong = first > 0
        tally["more shed"] += first > 0
        if first == 0:
            true_gap = (cost - ref.cost) / max(cost, 1e-9)
            worst_true = max(worst_true, true_gap)
            worst_reported = max(worst_reported, plan.solver.gap)
            tally["dearer"] += cost > ref.cost * (1 + 1e-4) + 1e-6
            wrong |= cost > ref.cost * (1 + 1e-4) + 1e-6
            tally["bound above optimum"] += plan.solver.bound > ref.cost + 1e-6
        tally["Optimal but not"] += wrong and plan.solver.status == "Optimal"
    print(
        f"{n} {fleet} property fleets (seed {seed}), limit {limit:g} s, method {method}: {tally}; "
        f"statuses {statuses}; worst true gap {100 * worst_true:.3f}% (worst reported "
        f"{100 * worst_reported:.3f}%); worst time {worst_ratio:.3f} x the limit"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--method", default="auto", choices=("auto", "milp", "heuristic"))
    parser.add_argument(
        "--time-limit", type=float, default=None, help="seconds (default: 1 up to 1,000 pools, then 10)"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--property", type=int, default=0, help="property-test fleets instead (count)")
    parser.add_argument("--property-fleet", default="small", choices=("small", "mid"))
    args = parser.parse_args(argv)
    method: Method = args.method
    if args.property:
        limit = 5.0 if args.time_limit is None else args.time_limit
        property_fleets(args.property, args.property_fleet, limit, args.seed, method)
        return
    print(
        f"{'pools':>6} {'columns':>8} {'method':>11} {'status':>9} {'limit s':>7} {'median s':>8} "
        f"{'gap % (min-max)':>17} {'$/h':>9} {'shed %':>6}  {'single class, limits':<20} "
        f"{'mix/single, no limits':<22}"
    )
    for size in (int(s) for s in args.sizes.split(",")):
        problem = make_fleet(size, seed=args.seed)
        limit = args.time_limit if args.time_limit is not None else (1.0 if size <= 1000 else 10.0)
        columns = sum(len(v) for v in problem.options.values())
        times, gaps = [], []
        plan = None
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            plan = solve(problem, time_limit_s=limit, method=method)
            times.append(time.perf_counter() - t0)
            gaps.append(100 * plan.solver.gap)
        assert plan is not None
        strict = best_single_class(problem)
        strict_txt = "none can carry all" if strict is None else f"{strict[0]} ${strict[1]:,.0f}/h"
        mix = mix_vs_single_class(problem, 3 * limit)
        mix_txt = "-" if mix is None else f"{mix[1]:.3f} vs {mix[0]}"
        print(
            f"{size:>6} {columns:>8} {plan.solver.method:>11} {plan.solver.status:>9} {limit:>7.1f} "
            f"{statistics.median(times):>8.3f} "
            f"{f'{statistics.median(gaps):.2f} ({min(gaps):.2f}-{max(gaps):.2f})':>17} "
            f"{plan.dollars_per_hour:>9,.0f} {100 * _shed_fraction(plan, problem):>6.2f}  {strict_txt:<20} "
            f"{mix_txt:<22}"
        )


if __name__ == "__main__":
    main()
