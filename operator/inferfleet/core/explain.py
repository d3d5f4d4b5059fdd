"""From replica counts to a :class:`~inferfleet.core.types.Plan` that says why it looks that way.

Owns the per-pool status (Placed / PartiallyShed / Shed / Unplaceable), the binding constraints
(typed ``Binding`` values: a power domain, a class's capacity, maxReplicas, minReplicas, and for
unplaceable pools the kinds of their Unfit reasons), the one-sentence reason, and the domain, class
and fleet totals.  A size-aware pool's placements carry the split (the req/s of each bucket of its
demand routed to them, :func:`~inferfleet.core.formulation.split_of`), their capacity is at the
mix routed to them, and its shed is what the split leaves unserved.

A budget binds a pool when the pool is short (shed or below its minimum) or runs on something
dearer than one of its options, and that option cannot get one more replica: its power domain is at
least 99% used or has less left than the replica draws, or no node of its class has room for it.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from inferfleet.core.formulation import Compiled, split_of
from inferfleet.core.heuristic import Fleet
from inferfleet.core.types import (
    Binding,
    BindingKind,
    ClassUse,
    DomainUse,
    Placement,
    Plan,
    PlanStatus,
    PoolPlan,
    SolverStats,
)

__all__ = ["build_plan"]

FloatArray = npt.NDArray[np.float64]
FULL = 0.99  # a budget at least this used is binding
TOL = 1e-6


def _kw(watts: float) -> str:
    return f"{watts / 1000:,.1f}"


class _Context:
    """Per-column facts for the binding tests, computed in bulk (10k pools must take milliseconds)."""

    def __init__(self, comp: Compiled, n: FloatArray) -> None:
        fleet = Fleet(comp)
        cols = np.flatnonzero(n > 0)
        for j in cols[np.lexsort((cols, -comp.devices[cols]))].tolist():
            fleet.place(j, int(n[j]))
        dom = comp.class_domain[comp.col_class]
        self.used = np.bincount(
            dom[dom >= 0], weights=(n * comp.watts)[dom >= 0], minlength=len(comp.budgets)
        )
        # one extra slot stands for "no budget" (never full)
        room = np.append(comp.budgets - self.used, np.inf)
        full = np.append(self.used >= FULL * comp.budgets, False)
        safe = np.where(dom >= 0, dom, len(comp.budgets))
        # per column: its domain when that domain cannot take one more replica of it, else -1
        self.power_full = np.where(
            (dom >= 0) & (full[safe] | (room[safe] < comp.watts - TOL)), dom, -1
        ).tolist()
        biggest = np.array([max(h, default=0) for h in fleet.nodes], dtype=np.float64)
        self.node_full = (biggest[comp.col_class] < comp.devices).tolist() if comp.n_cols else []
        ratio = comp.cost / comp.rps
        reps = np.maximum(comp.min_r[comp.col_pool], np.ceil(comp.need[comp.col_pool] / comp.rps - 1e-9))
        self.alone = (reps * comp.cost).tolist()  # the pool on this option alone
        self.too_many = (reps > comp.max_r[comp.col_pool]).tolist()
        self.ratio = ratio.tolist()
        self.reps = reps.tolist()
        self.n = n.tolist()
        self.cost = comp.cost.tolist()
        self.rps = comp.rps.tolist()
        self.devices = comp.devices.astype(np.int64).tolist()
        self.watts = comp.watts.tolist()
        self.cls = comp.col_class.tolist()


class _Split:
    """The split of the size-aware pools for the plan's counts, per column."""

    def __init__(self, comp: Compiled, n: FloatArray) -> None:
        y, self.served = split_of(comp, n)
        nb = len(comp.bucket_pool)
        # per column: req/s of each bucket of its pool's demand (a row per column, global buckets)
        demand = np.array([comp.problem.pools[p].demand_rps for p in comp.bucket_pool], dtype=np.float64)
        rate = y * comp.bucket_share[comp.split_bucket]
        self.routed = np.zeros((comp.n_cols, nb), dtype=np.float64)
        np.add.at(self.routed, (comp.split_col, comp.split_bucket), rate * demand[comp.split_bucket])
        need = comp.need[comp.bucket_pool[comp.split_bucket]]
        self.assigned = np.bincount(comp.split_col, weights=rate * need, minlength=comp.n_cols)
        self.units = np.bincount(comp.split_col, weights=y * comp.split_load, minlength=comp.n_cols)
        self.aware = comp.aware()
        self.buckets = [np.flatnonzero(comp.bucket_pool == p) for p in range(comp.n_pools)]

    def capacity(self, comp: Compiled, j: int, count: float) -> float:
        """Req/s of ``count`` replicas of column ``j`` at the mix routed to them."""
        if self.units[j] > TOL:
            return float(count * self.assigned[j] / self.units[j])
        return float(count * comp.rps_fill[j])

    def bucket_rps(self, p: int, j: int) -> tuple[float, ...]:
        return tuple(float(v) for v in self.routed[j, self.buckets[p]])


def _pool_plan(comp: Compiled, ctx: _Context, split: _Split, p: int, cols: range, lowest: int) -> PoolPlan:
    pool = comp.problem.pools[p]
    n = ctx.n
    aware = bool(split.aware[p])
    placements = tuple(
        Placement(
            accelerator_class=comp.options[j].accelerator_class,
            replicas=int(n[j]),
            devices=int(n[j]) * ctx.devices[j],
            watts=n[j] * ctx.watts[j],
            dollars_per_hour=n[j] * ctx.cost[j],
            rps_capacity=split.capacity(comp, j, n[j]) if aware else n[j] * ctx.rps[j],
            ttft_s=comp.options[j].ttft_s,
            tpot_s=comp.options[j].tpot_s,
            bucket_rps=split.bucket_rps(p, j) if aware else (),
        )
        for j in cols
        if n[j] > 0
    )
    if not cols:  # no option on any class of the fleet
        unfit = sorted(comp.problem.unfit.get(pool.key, {}).items())
        text = "; ".join(f"{c}: {u.reason}" for c, u in unfit) or "no option was offered for any class"
        kinds = sorted({u.kind for _, u in unfit})
        return PoolPlan(
            pool.key,
            (),
            pool.demand_rps,
            0.0,
            PlanStatus.UNPLACEABLE,
            tuple(Binding(BindingKind.UNFIT, str(k)) for k in kinds),
            f"no class can run this pool: {text}",
        )
    need = float(comp.need[p])
    min_r, max_r = float(comp.min_r[p]), float(comp.max_r[p])
    capacity = sum(pl.rps_capacity for pl in placements)
    count = sum(pl.replicas for pl in placements)
    shed = max(0.0, need - capacity)
    if aware:  # what the best split leaves unserved (spare replicas may not serve a bucket)
        shed = max(0.0, need * (1.0 - float(split.served[p])))
        capacity = min(capacity, need - shed) if shed > 0 else capacity
    short = shed > TOL * max(need, 1.0) or count < min_r
    status: PlanStatus
    if need > 0 and capacity <= TOL:
        status = PlanStatus.SHED
    elif shed > TOL * max(need, 1.0):
        status = PlanStatus.PARTIALLY_SHED
    else:
        status = PlanStatus.PLACED
    binding: list[Binding] = []
    notes: list[str] = []
    spent = sum(pl.dollars_per_hour for pl in placements)
    by_ratio = sorted(cols, key=lambda c: (ctx.ratio[c], c))
    for j in by_ratio:
        # an option that would have served the pool for less, or any option when the pool is short
        if not short and (ctx.alone[j] >= spent * (1 - 1e-3) or ctx.too_many[j]):
            continue
        d = ctx.power_full[j]
        power = Binding(BindingKind.POWER, comp.domain_names[d]) if d >= 0 else None
        if power is not None and power not in binding:
            binding.append(power)
            notes.append(
                f"power budget of {comp.domain_names[d]} binding "
                f"({_kw(ctx.used[d])}/{_kw(float(comp.budgets[d]))} kW)"
            )
        name = comp.class_names[ctx.cls[j]]
        if ctx.node_full[j] and Binding(BindingKind.CAPACITY, name) not in binding:
            binding.append(Binding(BindingKind.CAPACITY, name))
            notes.append(f"no {name} node has {ctx.devices[j]} free devices")
    if count >= max_r and (short or np.ceil(need / ctx.rps[by_ratio[0]] - 1e-9) > max_r):
        binding.append(Binding(BindingKind.MAX_REPLICAS))
        notes.append(f"maxReplicas is {int(max_r)}")
    if min_r > 0 and (
        count < min_r
        or (count == min_r and shed <= TOL and count > np.ceil(need / ctx.rps[by_ratio[0]] - 1e-9))
    ):
        binding.append(Binding(BindingKind.MIN_REPLICAS))
        notes.append(
            f"{count} of {int(min_r)} minimum replicas placed"
            if count < min_r
            else f"minReplicas {int(min_r)} keeps more replicas than demand needs"
        )
    why = ", ".join(notes[:3]) + (f" and {len(notes) - 3} more" if len(notes) > 3 else "")
    if status is PlanStatus.PLACED:
        where = ", ".join(f"{pl.replicas} on {pl.accelerator_class}" for pl in placements) or "nothing"
        text = (
            f"placed {where}: {capacity:.1f} req/s for {need:.1f} needed"
            if need > 0
            else f"no demand: placed {where}"
        )
        reason = f"{text}; {why}" if why else text
    else:
        prio = (
            f"priority {pool.priority} is the lowest"
            if pool.priority == lowest
            else (f"priority {pool.priority}, shed after lower priorities")
        )
        reason = f"shed {shed:.1f} of {need:.1f} req/s: {why or 'no option fits'}; {prio}"
    served = min(capacity, need)
    return PoolPlan(pool.key, placements, pool.demand_rps, served, status, tuple(binding), reason)


def build_plan(comp: Compiled, n: FloatArray, solver: SolverStats) -> Plan:
    """The plan of integral replica counts ``n`` per column of ``comp``."""
    problem = comp.problem
    ctx = _Context(comp, n)
    split = _Split(comp, n)
    lowest = min((p.priority for p in problem.pools), default=0)
    bounds = np.searchsorted(comp.col_pool, np.arange(comp.n_pools + 1)).tolist()
    pools = tuple(
        _pool_plan(comp, ctx, split, p, range(bounds[p], bounds[p + 1]), lowest) for p in range(comp.n_pools)
    )
    watts_by_class = np.bincount(comp.col_class, weights=n * comp.watts, minlength=len(comp.class_names))
    dev_by_class = np.bincount(comp.col_class, weights=n * comp.devices, minlength=len(comp.class_names))
    budgets = problem.policy.domain_budgets_watts
    domain_watts: dict[str, float] = {}
    for i, cls in enumerate(problem.classes):
        domain_watts[cls.power_domain] = domain_watts.get(cls.power_domain, 0.0) + float(watts_by_class[i])
    domains = tuple(
        DomainUse(name, float(budgets[name]) if name in budgets else None, domain_watts.get(name, 0.0))
        for name in sorted(set(budgets) | {d for d, w in domain_watts.items() if w > 0})
    )
    classes = tuple(
        ClassUse(
            cls.name, int(sum(cls.node_free_devices)), int(np.rint(dev_by_class[i])), float(watts_by_class[i])
        )
        for i, cls in enumerate(problem.classes)
    )
    return Plan(
        pools=pools,
        domains=domains,
        classes=classes,
        watts=float(n @ comp.watts),
        dollars_per_hour=float(n @ comp.cost),
        solver=solver,
    )
