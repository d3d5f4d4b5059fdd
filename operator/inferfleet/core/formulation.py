"""The placement problem as arrays: one column per (pool, option), the rows that couple them.

This module owns the translation of a :class:`~inferfleet.core.types.Problem` into numpy arrays that
every solver path (exact MILP, LP relaxation, greedy) shares, and the node-capacity model:

* ``n[j]`` integer replicas of column ``j`` (one pool's option on one class), at most what demand,
  the minimum or the current placement can use, and at most the option's own ``max_replicas``;
* per pool with demand: ``sum_j min(rps_j/need_p, 1) * n_j + f_p >= 1`` where ``need_p = demand x
  headroom`` and ``f_p`` in [0, 1] is the shed *fraction* (shed rps = ``f_p * need_p``); capping a
  coefficient at 1 (one replica that alone covers the pool) is valid for integer ``n`` and makes
  the LP relaxation much tighter for the many pools that need less than one big replica;
* per pool with ``min_replicas > 0``: ``sum_j n_j + u_p >= min`` (``u_p`` = missing minimum replicas,
  a slack so that a budget below the minimum gives a report, not an infeasible model);
* per pool whose ``max_replicas`` can bind: ``sum_j n_j <= max``;
* per (pool, class) it runs on now: ``sum_{j on class} n_j + m >= current`` (``m`` = replicas taken
  off that class);
* per pool running replicas now: a drop credit ``d`` (what scaling down removes) with its rows and,
  where the pool could grow, one binary, so that ``sum m - d`` is the replicas the plan *moves*
  between classes, ``min(added, removed)``, each charged ``churn_dollars_per_replica``
  (:mod:`inferfleet.core.churn`);
* node capacity, exact for any replica size (:mod:`inferfleet.core.patterns`): a replica must fit
  on one node.  When every size that can be placed on a class divides the next larger one (powers
  of two), threshold rows per size ``s``: ``sum_{j on class, devices_j >= s} devices_j * n_j <=
  sum_nodes floor(free_i / s) * s`` (exact then, and only the rows that can bind); otherwise the
  class's packing columns (maximal per-node patterns, or one column per node and size) with their
  rows, unless every replica the column bounds allow fits anyway;
* per power domain with a budget: ``sum_j watts_j * n_j <= budget``;
* per size-aware pool (:mod:`inferfleet.core.mix`: two or more buckets, routed by size): split
  columns ``y[b, j]`` in [0, 1], the fraction of bucket ``b`` sent to column ``j`` (only where ``j``
  serves ``b`` at the SLO); its demand row is ``sum_{b,j} share_b * y[b, j] + f_p >= 1`` in place of
  the replica terms, with ``sum_j y[b, j] <= 1`` per bucket and ``sum_b load[b, j] * y[b, j] <= n_j``
  per column, ``load[b, j] = share_b * need_p / rps[b, j]`` (Mélange's formulation, continuous).
  For such a column ``rps`` is its fastest bucket's rate, so ``sum_j min(rps_j / need_p, 1) n_j + f_p
  >= 1`` still holds for every split plan (what the cuts and the drop rows derive from); ``rps_fill``
  (the whole mix's rate, what any replica surely serves) is what the greedy fills with, and
  ``rps_low`` (its slowest bucket's) what bounds the replicas a plan may use.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from inferfleet.core.mix import mixture_rps, size_aware, split_and_margins
from inferfleet.core.patterns import Supply, class_supply, fits_greedily, is_chain
from inferfleet.core.types import Option, Problem

__all__ = [
    "CapacityRow",
    "Compiled",
    "compile_problem",
    "packs_decreasing",
    "PoolSplit",
    "pool_split",
    "split_of",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclasses.dataclass(frozen=True)
class CapacityRow:
    """One threshold row: devices of replicas of size >= ``size`` on ``cls`` within ``rhs``."""

    cls: int
    size: int
    rhs: float


@dataclasses.dataclass(frozen=True, eq=False)
class Compiled:
    """Arrays of one problem.  Columns are grouped by pool, in problem order."""

    problem: Problem
    # columns
    options: tuple[Option, ...]
    col_pool: IntArray
    col_class: IntArray
    devices: FloatArray
    rps: FloatArray
    watts: FloatArray
    cost: FloatArray
    preferred: npt.NDArray[np.bool_]
    ub: FloatArray
    # pools
    need: FloatArray  # demand x headroom
    min_r: FloatArray
    max_r: FloatArray
    level: IntArray  # 0 = highest priority
    levels: tuple[int, ...]  # distinct priorities, highest first
    # churn pairs: (pool, class, current replicas); pairs without any column are forced moves
    churn_pool: IntArray
    churn_class: IntArray
    churn_current: FloatArray
    churn_pair: IntArray  # pair of each churn row, -1 when the pool has no column on that class
    pair_of_col: IntArray  # (pool, class) pair of each column
    n_pairs: int
    running: FloatArray  # replicas each pool runs now, on any class (known or not)
    # classes and domains
    class_names: tuple[str, ...]
    class_domain: IntArray  # -1: not in a budgeted domain
    domain_names: tuple[str, ...]  # budgeted domains
    budgets: FloatArray
    capacity_rows: tuple[CapacityRow, ...]  # classes whose sizes are a chain
    supplies: tuple[Supply, ...]  # packing columns of the other classes whose nodes can bind
    # request mixes (module notes): per column the rate every replica surely serves and the
    # slowest bucket's (both ``rps`` for a pool without a split); per size-aware bucket its pool
    # and share; per split column its replica column, bucket and load (replicas for all of it)
    rps_fill: FloatArray
    rps_low: FloatArray
    bucket_pool: IntArray
    bucket_share: FloatArray
    split_col: IntArray
    split_bucket: IntArray
    split_load: FloatArray

    @property
    def n_cols(self) -> int:
        return len(self.options)

    @property
    def n_pools(self) -> int:
        return len(self.problem.pools)

    @property
    def n_split(self) -> int:
        return len(self.split_col)

    def aware(self) -> npt.NDArray[np.bool_]:
        """Per pool: whether it is size-aware (has buckets and split columns)."""
        out = np.zeros(self.n_pools, dtype=np.bool_)
        out[self.bucket_pool] = True
        return out


def _capacity(free: Sequence[int], size: int) -> float:
    return float(sum((f // size) * size for f in free if f > 0))


def compile_problem(problem: Problem) -> Compiled:
    """Flatten ``problem`` into column and row data (options on unknown classes are dropped)."""
    class_names = tuple(c.name for c in problem.classes)
    class_index = {name: i for i, name in enumerate(class_names)}
    budgets = problem.policy.domain_budgets_watts
    domain_names = tuple(sorted({c.power_domain for c in problem.classes if c.power_domain in budgets}))
    domain_index = {d: i for i, d in enumerate(domain_names)}
    class_domain = np.array([domain_index.get(c.power_domain, -1) for c in problem.classes], dtype=np.int64)
    headroom = problem.policy.headroom
    levels = tuple(sorted({p.priority for p in problem.pools}, reverse=True))
    level_of = {prio: i for i, prio in enumerate(levels)}

    opts: list[Option] = []
    col_pool: list[int] = []
    col_class: list[int] = []
    rates: list[tuple[float, float, float]] = []  # rps, rps_fill, rps_low per column
    bucket_pool: list[int] = []
    bucket_share: list[float] = []
    split: list[tuple[int, int, float]] = []  # column, bucket, rate
    for pi, pool in enumerate(problem.pools):
        aware = size_aware(pool)
        first_bucket = len(bucket_pool)
        if aware:
            bucket_pool.extend([pi] * len(pool.buckets))
            bucket_share.extend(b.share for b in pool.buckets)
        for opt in problem.options.get(pool.key, ()):
            ci = class_index.get(opt.accelerator_class)
            if ci is None or opt.devices <= 0:
                continue
            if aware:
                if len(opt.bucket_rps) != len(pool.buckets) or max(opt.bucket_rps, default=0.0) <= 0:
                    continue
                live = [r for r in opt.bucket_rps if r > 0]
                shares = [b.share for b in pool.buckets]
                rates.append((max(live), mixture_rps(shares, opt.bucket_rps), min(live)))
                split.extend((len(opts), first_bucket + b, r) for b, r in enumerate(opt.bucket_rps) if r > 0)
            elif opt.rps <= 0:
                continue
            else:
                rates.append((opt.rps, opt.rps, opt.rps))
            opts.append(opt)
            col_pool.append(pi)
            col_class.append(ci)
    cp = np.array(col_pool, dtype=np.int64)
    cc = np.array(col_class, dtype=np.int64)
    devices = np.array([o.devices for o in opts], dtype=np.float64)
    rps = np.array([r[0] for r in rates], dtype=np.float64)
    rps_fill = np.array([r[1] for r in rates], dtype=np.float64)
    rps_low = np.array([r[2] for r in rates], dtype=np.float64)
    watts = np.array([o.watts for o in opts], dtype=np.float64)
    cost = np.array([o.dollars_per_hour for o in opts], dtype=np.float64)
    preferred = np.array([o.preferred for o in opts], dtype=np.bool_)

    pools = problem.pools
    need = np.array([max(p.demand_rps, 0.0) * headroom for p in pools], dtype=np.float64)
    min_r = np.array([max(p.min_replicas, 0) for p in pools], dtype=np.float64)
    max_r = np.array([max(p.max_replicas, 0) for p in pools], dtype=np.float64)
    level = np.array([level_of[p.priority] for p in pools], dtype=np.int64)
    b_pool = np.array(bucket_pool, dtype=np.int64)
    b_share = np.array(bucket_share, dtype=np.float64)
    s_col = np.array([t[0] for t in split], dtype=np.int64)
    s_bucket = np.array([t[1] for t in split], dtype=np.int64)
    s_rate = np.array([t[2] for t in split], dtype=np.float64)
    s_load = b_share[s_bucket] * need[b_pool[s_bucket]] / s_rate if split else np.zeros(0)

    churn_rows: list[tuple[int, int, float]] = []
    for pi, pool in enumerate(pools):
        for cname, count in sorted(pool.current.items()):
            if count > 0:
                churn_rows.append((pi, class_index.get(cname, -1), float(count)))
    churn_pool = np.array([r[0] for r in churn_rows], dtype=np.int64)
    churn_class = np.array([r[1] for r in churn_rows], dtype=np.int64)
    churn_current = np.array([r[2] for r in churn_rows], dtype=np.float64)
    # (pool, class) pairs that have columns; churn rows point at theirs (-1: forced move)
    n_cls = max(len(class_names), 1)
    col_key = cp * n_cls + cc
    pair_keys, pair_of_col = np.unique(col_key, return_inverse=True)
    churn_key = churn_pool * n_cls + churn_class
    pos = np.minimum(np.searchsorted(pair_keys, churn_key), max(len(pair_keys) - 1, 0))
    found = (churn_class >= 0) & (len(pair_keys) > 0)
    if len(pair_keys):
        found &= pair_keys[pos] == churn_key
    churn_pair = np.where(found, pos, -1).astype(np.int64)
    running = np.bincount(churn_pool, weights=churn_current, minlength=len(pools)).astype(np.float64)

    # Upper bounds: more than ceil(need/rps) replicas of one option is never better unless the
    # minimum or the current placement asks for more.
    cur_on_pair = np.zeros(len(pair_keys), dtype=np.float64)
    np.add.at(cur_on_pair, churn_pair[found], churn_current[found])
    cur_of = cur_on_pair[pair_of_col] if opts else np.zeros(0)
    by_demand = np.ceil(need[cp] / rps - 1e-9) if opts else np.zeros(0)
    if split:  # a split column may carry every bucket it serves
        all_of = np.bincount(s_col, weights=s_load, minlength=len(opts))
        on_split = np.zeros(len(opts), dtype=np.bool_)
        on_split[s_col] = True
        by_demand = np.where(on_split, np.ceil(all_of - 1e-9), by_demand)
    ub = np.minimum(max_r[cp], np.maximum(np.maximum(by_demand, min_r[cp]), cur_of))
    # an option's own cap (replicas beyond it could not be scheduled) holds against all of these
    own = np.array([np.inf if o.max_replicas is None else max(o.max_replicas, 0) for o in opts])
    ub = np.minimum(ub, own) if opts else ub

    cap_rows: list[CapacityRow] = []
    supplies: list[Supply] = []
    for ci, cls in enumerate(problem.classes):
        on = cc == ci
        # a replica larger than every node can never be placed
        biggest = max(cls.node_free_devices, default=0)
        ub[on & (devices > biggest)] = 0.0
        live = on & (ub > 0)
        sizes = sorted({int(d) for d in devices[live]})
        if is_chain(sizes):
            for s in sizes:
                rhs = _capacity(cls.node_free_devices, s)
                sel = live & (devices >= s)
                if float(np.sum(ub[sel] * devices[sel])) > rhs:
                    cap_rows.append(CapacityRow(ci, s, rhs))
            continue
        at_most: dict[int, int] = {}
        for j in np.flatnonzero(live).tolist():
            at_most[int(devices[j])] = at_most.get(int(devices[j]), 0) + int(ub[j])
        if not fits_greedily(at_most, cls.node_free_devices):
            supplies.append(class_supply(ci, cls.node_free_devices, sizes))

    return Compiled(
        problem=problem,
        options=tuple(opts),
        col_pool=cp,
        col_class=cc,
        devices=devices,
        rps=rps,
        watts=watts,
        cost=cost,
        preferred=preferred,
        ub=ub,
        need=need,
        min_r=min_r,
        max_r=max_r,
        level=level,
        levels=levels,
        churn_pool=churn_pool,
        churn_class=churn_class,
        churn_current=churn_current,
        churn_pair=churn_pair,
        pair_of_col=pair_of_col.astype(np.int64),
        n_pairs=len(pair_keys),
        running=running,
        class_names=class_names,
        class_domain=class_domain,
        domain_names=domain_names,
        budgets=np.array([float(budgets[d]) for d in domain_names], dtype=np.float64),
        capacity_rows=tuple(cap_rows),
        supplies=tuple(supplies),
        rps_fill=rps_fill,
        rps_low=rps_low,
        bucket_pool=b_pool,
        bucket_share=b_share,
        split_col=s_col,
        split_bucket=s_bucket,
        split_load=s_load,
    )


def packs_decreasing(sizes: Sequence[int], free: Sequence[int]) -> bool:
    """Whether replicas of ``sizes`` devices each fit on nodes with ``free`` devices.

    Largest replicas first, each onto the fullest node that still has room (best fit decreasing, on
    a histogram of free counts so that 100k replicas take milliseconds).  Exact when every size
    divides the next larger one; a heuristic otherwise (:func:`inferfleet.core.patterns.fits` is
    exact for any sizes).
    """
    hist: dict[int, int] = {}
    for f in free:
        if f > 0:
            hist[f] = hist.get(f, 0) + 1
    counts: dict[int, int] = {}
    for s in sizes:
        counts[s] = counts.get(s, 0) + 1
    for size in sorted(counts, reverse=True):
        left = counts[size]
        while left > 0:
            best = min((f for f in hist if f >= size), default=None)
            if best is None:
                return False
            per_node = best // size
            nodes = min(hist[best], -(-left // per_node))
            hist[best] -= nodes
            if hist[best] == 0:
                del hist[best]
            used = min(left, nodes * per_node)
            # all but possibly the last node take per_node replicas
            full_nodes, rest = divmod(used, per_node)
            if full_nodes and best - per_node * size > 0:
                hist[best - per_node * size] = hist.get(best - per_node * size, 0) + full_nodes
            if rest and best - rest * size > 0:
                hist[best - rest * size] = hist.get(best - rest * size, 0) + 1
            left -= used
    return True


@dataclasses.dataclass(frozen=True)
class PoolSplit:
    """The best split of one size-aware pool for given replica counts."""

    entries: slice  # its entries of ``comp.split_*`` (each pool's are together)
    values: FloatArray  # of those entries: the fraction of the bucket on the column
    served: float  # the fraction of the pool's requests served
    cols: IntArray  # its replica columns with a split entry
    margins: FloatArray  # per such column: the most one more replica adds to ``served``


def pool_split(comp: Compiled, p: int, n: FloatArray) -> PoolSplit:
    """The best split of size-aware pool ``p``'s buckets for replica counts ``n``
    (:func:`~inferfleet.core.mix.split_and_margins`)."""
    owner = comp.bucket_pool[comp.split_bucket]
    mine = slice(int(np.searchsorted(owner, p, "left")), int(np.searchsorted(owner, p, "right")))
    cols = np.unique(comp.split_col[mine])
    if comp.need[p] <= 0:
        return PoolSplit(mine, np.zeros(mine.stop - mine.start), 1.0, cols, np.zeros(len(cols)))
    buckets = np.flatnonzero(comp.bucket_pool == p)
    load = np.full((len(buckets), len(cols)), np.inf)
    bi = np.searchsorted(buckets, comp.split_bucket[mine])
    ci = np.searchsorted(cols, comp.split_col[mine])
    load[bi, ci] = comp.split_load[mine]
    got, frac, margins = split_and_margins(
        comp.bucket_share[buckets], load, np.asarray(n, dtype=np.float64)[cols]
    )
    return PoolSplit(mine, got[bi, ci], frac, cols, margins)


def split_of(comp: Compiled, n: FloatArray) -> tuple[FloatArray, FloatArray]:
    """The best split of every size-aware pool's buckets for replica counts ``n``
    (:func:`pool_split`): the value of each split column, and per pool the fraction of its requests
    served (1 for pools without a split; theirs is ``n @ rps``)."""
    y = np.zeros(comp.n_split, dtype=np.float64)
    served = np.ones(comp.n_pools, dtype=np.float64)
    for p in np.unique(comp.bucket_pool).tolist():
        got = pool_split(comp, p, n)
        y[got.entries] = got.values
        served[p] = got.served
    return y, served
