"""An exact per-node reference model of the placement problem, for property tests and benchmarks.

Written from the problem's definition, sharing no code with the planner's formulation (only the
HiGHS adapter and the plain types): every node of every class on its own, and for each node every
*maximal* packing pattern of the replica sizes that can run on its class (a pattern: how many
replicas of each size the node holds; maximal: no further replica fits).  A binary per (node,
pattern), at most one pattern per node, and per (class, size) the replicas planned within what the
chosen patterns hold.  Churn is ``min(added, removed)`` per pool with one binary choosing which
side is smaller; shed per pool is ``max(0, 1 - served / need)``, missing minimum replicas
``max(0, min - count) / min``.

Solved lexicographically with HiGHS to optimality, no time limit, zero relative gap and tightened
tolerances: each priority level from the highest down (its value recomputed from the rounded counts
and capped there, a hair above, for the levels after it), then cost.  Only for tiny fleets: the
binaries grow with nodes x patterns.

Also: :func:`random_fleet`, the fleets the property tests and ``benchmarks/bench_planner.py
--property`` draw (odd replica sizes on 8- and 12-device nodes, tight budgets, several priority
levels, churn), and :func:`level_grid`, the step of the lattice the level values of a fleet lie on.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import random
from collections.abc import Mapping, Sequence
from fractions import Fraction

import numpy as np

from inferfleet.core.cost import moved_replicas
from inferfleet.core.highs import INF, Solver, SparseModel
from inferfleet.core.types import (
    SLO,
    AcceleratorClass,
    Hardware,
    ModelSpec,
    Option,
    Policy,
    Pool,
    Problem,
    Workload,
)

__all__ = [
    "HW",
    "PREFERENCE",
    "Reference",
    "level_grid",
    "maximal_patterns",
    "random_fleet",
    "score",
    "solve_reference",
    "usable",
]

PREFERENCE = 1e-3  # the planner's tie-breaking discount on preferred options (part of the objective)
HW = Hardware(memory_bytes=80e9, memory_bandwidth_bytes_per_s=3e12, flops_bf16=9e14)
# the reference's own cap above a level it has optimised: float noise only (its tolerances are 1e-9)
CAP_SLACK = 1e-8


@dataclasses.dataclass(frozen=True)
class Reference:
    """The lexicographic optimum: shed per level (highest first), cost, replicas per pool per option."""

    levels: tuple[float, ...]
    cost: float
    counts: tuple[tuple[int, ...], ...]


def usable(problem: Problem, pool: Pool) -> list[tuple[int, Option]]:
    """(index, option) of the pool's options that can hold a replica somewhere: a known class, rps and
    devices > 0, and a node with that many free devices."""
    biggest = {c.name: max(c.node_free_devices, default=0) for c in problem.classes}
    return [
        (i, o)
        for i, o in enumerate(problem.options.get(pool.key, ()))
        if o.accelerator_class in biggest and o.rps > 0 and 0 < o.devices <= biggest[o.accelerator_class]
    ]


def score(problem: Problem, counts: Sequence[Sequence[int]]) -> tuple[tuple[float, ...], float]:
    """(normalised shed per priority level, highest first; cost objective) of integer counts.

    ``counts[p][i]`` are replicas of option ``i`` of pool ``p`` (the problem's option order).  A
    pool counts towards its level when it has an option at all (a constant for pools with no usable
    one); cost is $/h with preferred options 0.1% cheaper plus churn x moved replicas.
    """
    levels = sorted({p.priority for p in problem.pools}, reverse=True)
    shed = dict.fromkeys(levels, 0.0)
    cost = 0.0
    for pool, row in zip(problem.pools, counts, strict=True):
        opts = problem.options.get(pool.key, ())
        need = max(pool.demand_rps, 0.0) * problem.policy.headroom
        served = sum(k * o.rps for o, k in zip(opts, row, strict=True))
        if need > 0 and opts:
            shed[pool.priority] += max(0.0, 1.0 - served / need)
        if pool.min_replicas > 0 and opts:
            shed[pool.priority] += max(0, pool.min_replicas - sum(row)) / pool.min_replicas
        planned: dict[str, int] = {}
        for o, k in zip(opts, row, strict=True):
            cost += k * o.dollars_per_hour * (1 - PREFERENCE if o.preferred else 1.0)
            planned[o.accelerator_class] = planned.get(o.accelerator_class, 0) + k
        cost += problem.policy.churn_dollars_per_replica * moved_replicas(pool.current, planned)
    return tuple(shed[lv] for lv in levels), cost


def maximal_patterns(sizes: Sequence[int], free: int) -> list[tuple[int, ...]]:
    """Every count vector ``a`` (one entry per size) with ``sum a_s s <= free`` that no replica can be
    added to, by plain enumeration (tiny nodes only)."""
    ranges = [range(free // s + 1) for s in sizes]
    out = []
    smallest = min(sizes, default=free + 1)
    for a in itertools.product(*ranges):
        used = sum(k * s for k, s in zip(a, sizes, strict=True))
        if used <= free and free - used < smallest:
            out.append(a)
    return out


class _Model:
    """Columns and rows in coordinate form, then one SparseModel."""

    def __init__(self) -> None:
        self.lower: list[float] = []
        self.upper: list[float] = []
        self.integer: list[bool] = []
        self.r_lo: list[float] = []
        self.r_hi: list[float] = []
        self.entries: list[tuple[int, int, float]] = []

    def col(self, lo: float, hi: float, integer: bool) -> int:
        self.lower.append(lo)
        self.upper.append(hi)
        self.integer.append(integer)
        return len(self.lower) - 1

    def row(self, terms: Sequence[tuple[int, float]], lo: float, hi: float) -> int:
        r = len(self.r_lo)
        self.r_lo.append(lo)
        self.r_hi.append(hi)
        self.entries.extend((r, c, v) for c, v in terms)
        return r

    def sparse(self) -> tuple[SparseModel, list[int]]:
        """The model with integer columns first (as SparseModel wants) and the column permutation."""
        order = sorted(range(len(self.lower)), key=lambda c: (not self.integer[c], c))
        new = {c: i for i, c in enumerate(order)}
        n = len(order)
        by_col: list[list[tuple[int, float]]] = [[] for _ in range(n)]
        for r, c, v in self.entries:
            by_col[new[c]].append((r, v))
        start = np.zeros(n + 1, dtype=np.int64)
        start[1:] = np.cumsum([len(e) for e in by_col])
        index = np.array([r for e in by_col for r, _ in e], dtype=np.int64)
        value = np.array([v for e in by_col for _, v in e], dtype=np.float64)
        model = SparseModel(
            col_cost=np.zeros(n),
            col_lower=np.array([self.lower[c] for c in order], dtype=np.float64),
            col_upper=np.array([self.upper[c] for c in order], dtype=np.float64),
            row_lower=np.array(self.r_lo, dtype=np.float64),
            row_upper=np.array(self.r_hi, dtype=np.float64),
            start=start,
            index=index,
            value=value,
            n_int=sum(self.integer),
        )
        return model, [new[c] for c in range(n)]


def solve_reference(
    problem: Problem,
    *,
    pool_caps: Mapping[str, tuple[float, float]] | None = None,
    level_caps: Sequence[float] | None = None,
) -> Reference:
    """The lexicographic optimum of ``problem`` (module notes).

    With ``pool_caps`` (pool key -> (shed fraction, missing minimum replicas)) no level is optimised:
    every pool's shed and missing minimum are capped there and only cost is minimised, i.e. the
    cheapest plan that serves every pool at least as well (what the heuristic path's bound claims).
    With ``level_caps`` (per level, highest first) likewise: the cheapest plan whose every level is
    within its cap (what the exact path's bound claims when a phase ran out of time).
    """
    m = _Model()
    classes = {c.name: c for c in problem.classes}
    policy = problem.policy
    levels = sorted({p.priority for p in problem.pools}, reverse=True)
    n_cols: list[list[tuple[int, int]]] = []  # per pool: (option index, column)
    level_terms: dict[int, list[tuple[int, float]]] = {lv: [] for lv in levels}
    cost_terms: list[tuple[int, float]] = []
    on_class: dict[str, dict[int, list[int]]] = {c: {} for c in classes}  # class -> size -> columns
    watts: dict[str, list[tuple[int, float]]] = {}
    big = (
        1.0 + sum(p.max_replicas for p in problem.pools) + sum(sum(p.current.values()) for p in problem.pools)
    )
    for pool in problem.pools:
        cols = []
        for i, o in usable(problem, pool):
            j = m.col(0.0, float(max(pool.max_replicas, 0)), True)
            cols.append((i, j))
            cost_terms.append((j, o.dollars_per_hour * (1 - PREFERENCE if o.preferred else 1.0)))
            on_class[o.accelerator_class].setdefault(o.devices, []).append(j)
            watts.setdefault(classes[o.accelerator_class].power_domain, []).append((j, o.watts))
        n_cols.append(cols)
        opts = problem.options.get(pool.key, ())
        if cols:
            m.row([(j, 1.0) for _, j in cols], -INF, float(max(pool.max_replicas, 0)))
        need = max(pool.demand_rps, 0.0) * policy.headroom
        cap_f, cap_u = (pool_caps or {}).get(pool.key, (INF, INF))
        if need > 0 and opts:
            f = m.col(0.0, INF, False)  # f >= 1 - served / need
            m.row([(f, 1.0)] + [(j, opts[i].rps / need) for i, j in cols], 1.0, INF)
            level_terms[pool.priority].append((f, 1.0))
            if pool_caps is not None:
                m.row([(f, 1.0)], -INF, cap_f + CAP_SLACK)
        if pool.min_replicas > 0 and opts:
            u = m.col(0.0, INF, False)  # u >= min - count
            m.row([(u, 1.0)] + [(j, 1.0) for _, j in cols], float(pool.min_replicas), INF)
            level_terms[pool.priority].append((u, 1.0 / pool.min_replicas))
            if pool_caps is not None:
                m.row([(u, 1.0)], -INF, cap_u + CAP_SLACK)
        # churn: moved >= added - big b, moved >= removed - big (1 - b)
        if pool.current and policy.churn_dollars_per_replica > 0:
            added, removed = [], []
            for cname in sorted(set(pool.current) | {opts[i].accelerator_class for i, _ in cols}):
                cur = float(pool.current.get(cname, 0))
                on = [(j, 1.0) for i, j in cols if opts[i].accelerator_class == cname]
                a = m.col(0.0, INF, False)  # a >= on - cur
                m.row([(a, 1.0)] + [(j, -v) for j, v in on], -cur, INF)
                r = m.col(0.0, INF, False)  # r >= cur - on
                m.row([(r, 1.0), *on], cur, INF)
                added.append(a)
                removed.append(r)
            b = m.col(0.0, 1.0, True)
            moved = m.col(0.0, INF, False)
            m.row([(moved, 1.0), (b, big)] + [(a, -1.0) for a in added], 0.0, INF)
            m.row([(moved, 1.0), (b, -big)] + [(r, -1.0) for r in removed], -big, INF)
            cost_terms.append((moved, policy.churn_dollars_per_replica))
    for domain, terms in watts.items():
        budget = policy.domain_budgets_watts.get(domain)
        if budget is not None:
            m.row(terms, -INF, float(budget))
    for cname, by_size in on_class.items():
        if not by_size:
            continue
        sizes = sorted(by_size)
        supply: dict[int, list[tuple[int, float]]] = {s: [] for s in sizes}
        for free in classes[cname].node_free_devices:
            fits = [s for s in sizes if s <= free]
            if not fits:
                continue
            picks = []
            for pattern in maximal_patterns(fits, free):
                z = m.col(0.0, 1.0, True)
                picks.append((z, 1.0))
                for s, k in zip(fits, pattern, strict=True):
                    if k:
                        supply[s].append((z, float(k)))
            m.row(picks, -INF, 1.0)  # one pattern per node
        for s in sizes:
            m.row([(j, 1.0) for j in by_size[s]] + [(z, -k) for z, k in supply[s]], -INF, 0.0)
    level_rows = {lv: m.row(level_terms[lv], -INF, INF) for lv in levels}
    model, perm = m.sparse()
    h = Solver(
        {
            "threads": 1,
            "random_seed": 1,
            "presolve": "off",
            "mip_rel_gap": 0.0,
            "mip_abs_gap": 1e-9,
            "primal_feasibility_tolerance": 1e-9,
            "dual_feasibility_tolerance": 1e-9,
            "mip_feasibility_tolerance": 1e-9,
        }
    )
    h.pass_model(model)

    def run(terms: Sequence[tuple[int, float]]) -> tuple[tuple[int, ...], ...]:
        costs = np.zeros(model.n_cols)
        for c, v in terms:
            costs[perm[c]] += v
        h.change_costs(np.arange(model.n_cols, dtype=np.int64), costs)
        res = h.run(1e6)
        assert res.status == "Optimal", res.status
        counts = []
        for pool, cols in zip(problem.pools, n_cols, strict=True):
            row = [0] * len(problem.options.get(pool.key, ()))
            for i, j in cols:
                row[i] = round(float(res.values[perm[j]]))
            counts.append(tuple(row))
        return tuple(counts)

    counts = tuple(tuple(0 for _ in problem.options.get(p.key, ())) for p in problem.pools)
    if model.n_cols == 0:  # nothing to decide
        got_levels, cost = score(problem, counts)
        return Reference(got_levels, cost, counts)
    if level_caps is not None:
        for lv, cap in zip(levels, level_caps, strict=True):
            h.change_row_bounds(level_rows[lv], -INF, cap + CAP_SLACK)
    elif pool_caps is None:
        for k, lv in enumerate(levels):
            if not level_terms[lv]:
                continue
            counts = run(level_terms[lv])
            value = score(problem, counts)[0][k]
            h.change_row_bounds(level_rows[lv], -INF, value + CAP_SLACK)
    counts = run(cost_terms)
    got_levels, cost = score(problem, counts)
    return Reference(got_levels, cost, counts)


def level_grid(problem: Problem) -> float:
    """The step of the lattice every level value of ``problem`` lies on (0 when it has none).

    A level is a sum of ``1 - served / need`` and ``missing / min`` terms; with every rps a multiple
    of ``q`` and every need and minimum a rational, each term is a multiple of ``1 / den`` for the
    denominator of ``q / need`` (or of ``1 / min``), so two different level values differ by at
    least ``1 / lcm`` of those denominators.  Exact arithmetic on the decimal forms of the floats.
    """
    rps = [Fraction(str(o.rps)) for opts in problem.options.values() for o in opts]
    if not rps:
        return 1.0
    q = rps[0]
    for r in rps[1:]:
        top = math.gcd(q.numerator * r.denominator, r.numerator * q.denominator)
        q = Fraction(top, q.denominator * r.denominator)
    headroom = Fraction(str(problem.policy.headroom))
    den = 1
    for pool in problem.pools:
        if pool.demand_rps > 0:
            den = math.lcm(den, (q / (Fraction(str(pool.demand_rps)) * headroom)).denominator)
        if pool.min_replicas > 0:
            den = math.lcm(den, pool.min_replicas)
    return 1.0 / den


def random_fleet(
    rng: random.Random,
    *,
    pools: tuple[int, int] = (2, 6),
    classes: tuple[int, int] = (1, 3),
    nodes: tuple[int, int] = (1, 3),
    sizes: Sequence[int] = (1, 2, 3, 4, 5, 6, 8, 12),
    churn: bool = True,
) -> Problem:
    """A small fleet whose capacity, budgets and priorities bind (the property tests' fleets).

    Classes of 8- or 12-device nodes, partly used (free devices 0 up to the node size), one power
    domain each; pools of three priority levels with one option on most classes (replica sizes drawn
    from ``sizes`` up to the node size, rps and $/h multiples of 0.5), demands multiples of 0.5,
    minimum 0-2, maximum 2-6 replicas, some running replicas; each budget 30-100% of what the pools'
    demand would draw on that domain.
    """
    n_classes = rng.randint(*classes)
    cls = []
    for i in range(n_classes):
        per_node = rng.choice((8, 12))
        count = rng.randint(*nodes)
        free = tuple(rng.choice((per_node, per_node, rng.randint(0, per_node))) for _ in range(count))
        cls.append(
            AcceleratorClass(
                name=f"c{i}",
                hardware=HW,
                devices_per_node=per_node,
                price_per_device_hour=1.0,
                power_domain=f"d{i}",
                node_free_devices=free,
            )
        )
    out_pools, options = [], {}
    draw_watts = dict.fromkeys((c.power_domain for c in cls), 0.0)
    for k in range(rng.randint(*pools)):
        opts = []
        demand = rng.randint(1, 24) * 0.5
        for c in cls:
            if rng.random() < 0.2:
                continue
            fit = [s for s in sizes if s <= c.devices_per_node]
            devices = rng.choice(fit)
            rps = rng.randint(1, 16) * 0.5
            w = float(devices * rng.randint(1, 3) * 100)
            opts.append(
                Option(
                    accelerator_class=c.name,
                    devices=devices,
                    rps=rps,
                    watts=w,
                    dollars_per_hour=rng.randint(1, 4 * devices) * 0.5,
                    preferred=rng.random() < 0.15,
                )
            )
            draw_watts[c.power_domain] += math.ceil(demand / rps) * w / max(1, len(cls))
        current = {}
        if churn and rng.random() < 0.5:
            for o in opts:
                if rng.random() < 0.5:
                    current[o.accelerator_class] = rng.randint(1, 3)
        key = f"ns/p{k}"
        out_pools.append(
            Pool(
                key=key,
                model=ModelSpec(name="m", parameters_b=8),
                slo=SLO(),
                workload=Workload(256, 64),
                demand_rps=demand,
                min_replicas=rng.choice((0, 0, 1, 2)),
                max_replicas=rng.randint(2, 6),
                priority=rng.choice((0, 10, 100)),
                current=current,
            )
        )
        options[key] = tuple(opts)
    budgets = {d: float(max(100, round(w * rng.uniform(0.3, 1.0), -2))) for d, w in draw_watts.items()}
    return Problem(
        pools=tuple(out_pools),
        options=options,
        unfit={},
        classes=tuple(cls),
        policy=Policy(
            domain_budgets_watts=budgets,
            headroom=rng.choice((1.0, 1.2)),
            churn_dollars_per_replica=rng.choice((0.0, 0.5, 2.0)) if churn else 0.0,
            time_limit_s=5.0,
        ),
    )
