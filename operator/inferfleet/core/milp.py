"""The placement model for HiGHS: sparse rows built with numpy, one model passed, phases by costs.

Owns the column layout (replicas, grow binaries, packing columns of the classes whose replica sizes
are not a chain, the split columns of size-aware pools (continuous), shed fractions,
missing-minimum slacks, replicas taken off a class, drop credits), the sparse matrix of every row
:mod:`inferfleet.core.formulation` describes (the churn rows come from
:mod:`inferfleet.core.churn`, the packing columns and rows from :mod:`inferfleet.core.patterns`)
plus one row per priority level (the normalised shed of that level, used to cap a level once it
is optimised), the solver options that make runs reproducible (one thread, fixed seed), MIP
starts, the integral point a plan's counts imply (and its violation of the rows), and the dual
bound and status a phase reports.  The same class holds the MILP and its LP relaxation.  The
solver itself is reached only through :mod:`inferfleet.core.highs`.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import numpy.typing as npt

from inferfleet.core.churn import ChurnColumns, drop_rows, most_replicas
from inferfleet.core.formulation import Compiled, pool_split, split_of
from inferfleet.core.highs import INF, OptionValue, Solver, SparseModel
from inferfleet.core.patterns import supply_values

__all__ = ["INF", "HighsModel", "Layout", "SolveResult", "build_model", "new_highs"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
SEED = 1729


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where each kind of variable and row lives."""

    n_rep: int  # replica columns [0, n_rep)
    grow_pools: IntArray  # running pools that can grow past what runs: binary column n_rep + i
    supply_start: tuple[int, ...]  # first packing column of each of comp.supplies (integer)
    n_pack: int  # packing columns, after the grow binaries
    n_split: int  # split columns (continuous), after the integer ones; comp.split_* describe them
    shed_pools: IntArray  # pools with demand and a column: shed fraction column shed_start + i
    min_pools: IntArray  # pools with a minimum and a column: missing-minimum column min_start + i
    churn_pairs: IntArray  # churn pairs with columns: taken-off column churn_start + i
    drop_pools: IntArray  # running pools: drop credit column drop_start + i
    pool_of: IntArray  # the pool of every column (-1: a packing column)
    level_cols: tuple[IntArray, ...]  # per level: its shed and missing-minimum columns
    level_vals: tuple[FloatArray, ...]  # 1 for shed fractions, 1/min for missing minimum replicas
    level_row0: int  # row of level 0; level k is row level_row0 + k
    demand_row0: int  # demand row of shed_pools[i] is demand_row0 + i

    @property
    def pack_start(self) -> int:
        return self.n_rep + len(self.grow_pools)

    @property
    def n_int(self) -> int:
        """The integer columns come first: replicas, grow binaries, packing columns."""
        return self.pack_start + self.n_pack

    @property
    def split_start(self) -> int:
        return self.n_int

    @property
    def shed_start(self) -> int:
        return self.n_int + self.n_split

    @property
    def min_start(self) -> int:
        return self.shed_start + len(self.shed_pools)

    @property
    def churn_start(self) -> int:
        return self.min_start + len(self.min_pools)

    @property
    def drop_start(self) -> int:
        return self.churn_start + len(self.churn_pairs)

    @property
    def n_cols(self) -> int:
        return self.drop_start + len(self.drop_pools)

    def level_values(self, x: FloatArray) -> FloatArray:
        return np.array([float(x[c] @ v) for c, v in zip(self.level_cols, self.level_vals, strict=True)])


@dataclasses.dataclass(frozen=True)
class SolveResult:
    values: FloatArray  # empty without a primal solution
    objective: float
    bound: float
    status: str  # "Optimal", "TimeLimit", "Infeasible", "Error"

    @property
    def ok(self) -> bool:
        return len(self.values) > 0


def new_highs(mip_rel_gap: float, **options: OptionValue) -> Solver:
    """A silent, single-threaded, seeded HiGHS instance (same input, same answer)."""
    return Solver({"threads": 1, "random_seed": SEED, "mip_rel_gap": mip_rel_gap, **options})


class HighsModel:
    """One HiGHS instance holding the placement model (integer, or its LP relaxation)."""

    def __init__(self, comp: Compiled, *, integer: bool, mip_rel_gap: float = 1e-4) -> None:
        self.comp = comp
        self.integer = integer
        self.layout, self.model = build_model(comp, integer=integer)
        self.row_upper = np.array(self.model.row_upper, dtype=np.float64)  # with the level caps set
        self.highs = new_highs(mip_rel_gap)
        self.highs.pass_model(self.model)

    def set_costs(self, costs: FloatArray) -> None:
        self.highs.change_costs(np.arange(len(costs), dtype=np.int64), costs)

    def set_level_bound(self, level: int, upper: float) -> None:
        self.row_upper[self.layout.level_row0 + level] = upper
        self.highs.change_row_bounds(self.layout.level_row0 + level, -INF, upper)

    def violation(self, x: FloatArray) -> float:
        """The largest violation of a row or column bound of the model (rows added later aside) by
        ``x``, each relative to its bound's size (at least 1)."""
        m = self.model
        act = np.bincount(m.index, weights=m.value * x[m.col_of_entry()], minlength=m.n_rows).astype(
            np.float64
        )

        def excess(value: FloatArray, limit: FloatArray) -> float:
            """The largest ``value - limit`` relative to ``max(1, |limit|)`` where ``limit`` is finite."""
            ok = np.isfinite(limit)
            rel = (value[ok] - limit[ok]) / np.maximum(np.abs(limit[ok]), 1.0)
            return float(rel.max(initial=0.0))

        lower = np.asarray(m.row_lower, dtype=np.float64)
        return max(
            excess(act, self.row_upper),
            excess(-act, -lower),
            excess(x, np.asarray(m.col_upper, dtype=np.float64)),
            excess(-x, -np.asarray(m.col_lower, dtype=np.float64)),
        )

    def add_rows(
        self, lower: FloatArray, upper: FloatArray, start: IntArray, index: IntArray, value: FloatArray
    ) -> None:
        self.highs.add_rows(lower, upper, start, index, value)

    def full_vector(self, n: FloatArray, hint: FloatArray | None = None) -> FloatArray:
        """Replica counts plus the grow, packing, shed, missing-minimum and churn columns they imply."""
        return self.implied(self.comp, self.layout, n, hint)

    @staticmethod
    def implied(comp: Compiled, lay: Layout, n: FloatArray, hint: FloatArray | None = None) -> FloatArray:
        """Replica counts plus the grow, packing, shed, missing-minimum and churn columns they imply.

        The packing columns come from ``hint`` (a solver's point: rounded) where they hold the
        counts, else from :func:`~inferfleet.core.patterns.supply_values`; zero when the counts do
        not pack at all (the point is then infeasible whatever they are).
        """
        x = np.zeros(lay.n_cols, dtype=np.float64)
        x[: lay.n_rep] = n
        served = np.bincount(comp.col_pool, weights=n * comp.rps, minlength=comp.n_pools)
        count = np.bincount(comp.col_pool, weights=n, minlength=comp.n_pools)
        gp = lay.grow_pools
        x[lay.n_rep : lay.pack_start] = count[gp] > comp.running[gp] + 1e-9
        sp = lay.shed_pools
        shed = np.clip(1.0 - served[sp] / comp.need[sp], 0.0, 1.0)
        if comp.n_split:  # size-aware pools: the hint's split where it holds, else the best
            y, frac = _split_for(comp, lay, n, hint)
            x[lay.split_start : lay.shed_start] = y
            shed = np.where(comp.aware()[sp], np.clip(1.0 - frac[sp], 0.0, 1.0), shed)
        x[lay.shed_start : lay.min_start] = shed
        mp = lay.min_pools
        x[lay.min_start : lay.churn_start] = np.maximum(comp.min_r[mp] - count[mp], 0.0)
        if len(lay.churn_pairs):
            on = np.bincount(comp.pair_of_col, weights=n, minlength=comp.n_pairs)
            cp = lay.churn_pairs
            x[lay.churn_start : lay.drop_start] = np.maximum(
                comp.churn_current[cp] - on[comp.churn_pair[cp]], 0.0
            )
        dp = lay.drop_pools
        x[lay.drop_start :] = np.maximum(comp.running[dp] - count[dp], 0.0)
        for first, supply in zip(lay.supply_start, comp.supplies, strict=True):
            on = comp.col_class == supply.cls
            per_size = np.array([float(n[on & (comp.devices == size)].sum()) for size in supply.sizes])
            cols = slice(first, first + supply.n_cols)
            if hint is not None:
                held = np.round(hint[cols])
                room = np.bincount(supply.group, weights=supply.use * held, minlength=len(supply.group_cap))
                holds = supply.holds.T @ held
                if np.all(room <= supply.group_cap + 1e-9) and np.all(holds >= per_size - 1e-9):
                    x[cols] = held
                    continue
            values = supply_values(supply, [round(v) for v in per_size])
            if values is not None:
                x[cols] = values
        return x

    def run(self, time_limit: float, start: FloatArray | None = None) -> SolveResult:
        res = self.highs.run(time_limit, start if self.integer else None)
        # the MIP's dual bound; an LP's optimum is its own bound
        lp_bound = res.objective if res.status == "Optimal" else -INF
        bound = res.mip_dual_bound if self.integer else lp_bound
        return SolveResult(res.values, res.objective, bound, res.status)


def _split_for(
    comp: Compiled, lay: Layout, n: FloatArray, hint: FloatArray | None
) -> tuple[FloatArray, FloatArray]:
    """Split values for counts ``n`` and the fraction each pool serves: a solver point's own split
    for every size-aware pool whose columns it keeps within ``n`` and whose buckets it serves in
    full, the best split (:func:`~inferfleet.core.formulation.split_of`) for the others."""
    if hint is None or len(hint) < lay.shed_start:
        return split_of(comp, n)
    y = np.clip(hint[lay.split_start : lay.shed_start], 0.0, 1.0)
    use = np.bincount(comp.split_col, weights=comp.split_load * y, minlength=comp.n_cols)
    over = use > n + 1e-9
    per_bucket = np.bincount(comp.split_bucket, weights=y, minlength=len(comp.bucket_pool))
    short = per_bucket < 1.0 - 1e-9
    bad = np.zeros(comp.n_pools, dtype=np.bool_)
    bad[comp.col_pool[over]] = True
    bad[comp.bucket_pool[short]] = True
    served = np.ones(comp.n_pools, dtype=np.float64)
    for p in np.unique(comp.bucket_pool[bad[comp.bucket_pool]]).tolist():
        got = pool_split(comp, p, n)
        y[got.entries] = got.values
        served[p] = got.served
    return y, served


def _coo_to_csc(
    rows: IntArray, cols: IntArray, vals: FloatArray, n_cols: int
) -> tuple[IntArray, IntArray, FloatArray]:
    order = np.lexsort((rows, cols))
    start = np.zeros(n_cols + 1, dtype=np.int64)
    np.cumsum(np.bincount(cols[order], minlength=n_cols), out=start[1:])
    return start, rows[order], vals[order]


class _Rows:
    """Accumulates row blocks as coordinate triplets."""

    def __init__(self) -> None:
        self.rows: list[IntArray] = []
        self.cols: list[IntArray] = []
        self.vals: list[FloatArray] = []
        self.lower: list[FloatArray] = []
        self.upper: list[FloatArray] = []
        self.count = 0

    def add(self, r: IntArray, c: IntArray, v: FloatArray, lo: FloatArray, hi: FloatArray) -> int:
        first = self.count
        v = np.asarray(v, dtype=np.float64)
        nz = v != 0.0
        self.rows.append(np.asarray(r, dtype=np.int64)[nz] + first)
        self.cols.append(np.asarray(c, dtype=np.int64)[nz])
        self.vals.append(v[nz])
        self.lower.append(np.asarray(lo, dtype=np.float64))
        self.upper.append(np.asarray(hi, dtype=np.float64))
        self.count += len(lo)
        return first

    def per_pool(
        self,
        comp: Compiled,
        pools: IntArray,
        slack0: int | None,
        rhs_lo: FloatArray,
        rhs_hi: FloatArray,
        coef: FloatArray,
    ) -> int:
        """One row per pool in ``pools`` over its replica columns (plus its own slack column)."""
        row_of = np.full(comp.n_pools, -1, dtype=np.int64)
        row_of[pools] = np.arange(len(pools))
        sel = np.flatnonzero(row_of[comp.col_pool] >= 0)
        k = len(pools)
        r, c, v = row_of[comp.col_pool[sel]], sel, coef[sel]
        if slack0 is not None:
            r = np.concatenate([r, np.arange(k)])
            c = np.concatenate([c, slack0 + np.arange(k)])
            v = np.concatenate([v, np.ones(k)])
        return self.add(r, c, v, rhs_lo, rhs_hi)

    def extend(self, r: IntArray, c: IntArray, v: FloatArray) -> None:
        """Entries in rows already added (``r`` absolute row numbers)."""
        self.rows.append(np.asarray(r, dtype=np.int64))
        self.cols.append(np.asarray(c, dtype=np.int64))
        self.vals.append(np.asarray(v, dtype=np.float64))

    def single(self, cols: IntArray, vals: FloatArray, lo: float, hi: float) -> int:
        return self.add(np.zeros(len(cols), dtype=np.int64), cols, vals, np.array([lo]), np.array([hi]))


def build_model(comp: Compiled, *, integer: bool) -> tuple[Layout, SparseModel]:
    """Every row of the model with a zero objective; each phase sets its own costs."""
    n_rep = comp.n_cols
    placeable = (
        np.bincount(comp.col_pool, weights=(comp.ub > 0).astype(np.float64), minlength=comp.n_pools) > 0
    )
    shed_pools = np.flatnonzero((comp.need > 0) & placeable)
    min_pools = np.flatnonzero((comp.min_r > 0) & placeable)
    churn_pairs = np.flatnonzero(comp.churn_pair >= 0)
    # a running pool that can usefully get more replicas than it runs needs a grow binary
    ub_sum = np.bincount(comp.col_pool, weights=comp.ub, minlength=comp.n_pools)
    most = most_replicas(comp)
    drop_pools = np.flatnonzero(comp.running > 0)
    grow_pools = np.flatnonzero((comp.running > 0) & (most > comp.running))
    grow0 = n_rep
    pack0 = grow0 + len(grow_pools)
    supply_start = tuple(int(v) for v in pack0 + np.cumsum([0] + [sp.n_cols for sp in comp.supplies])[:-1])
    n_pack = sum(sp.n_cols for sp in comp.supplies)
    split0 = pack0 + n_pack
    shed0 = split0 + comp.n_split
    min0 = shed0 + len(shed_pools)
    churn0 = min0 + len(min_pools)
    drop0 = churn0 + len(churn_pairs)
    rows = _Rows()
    ones = np.ones(n_rep)
    inf_k = np.full(len(shed_pools), INF)
    aware = comp.aware()
    demand0 = rows.per_pool(
        comp,
        shed_pools,
        shed0,
        np.ones(len(shed_pools)),
        inf_k,
        np.where(
            aware[comp.col_pool], 0.0, np.minimum(comp.rps / np.maximum(comp.need[comp.col_pool], 1e-12), 1.0)
        ),
    )
    if comp.n_split:
        _split_rows(comp, rows, shed_pools, demand0, split0)
    rows.per_pool(comp, min_pools, min0, comp.min_r[min_pools], np.full(len(min_pools), INF), ones)
    max_pools = np.flatnonzero(ub_sum > comp.max_r)
    rows.per_pool(comp, max_pools, None, np.full(len(max_pools), -INF), comp.max_r[max_pools], ones)
    if len(churn_pairs):
        # moved replicas: sum over the pair's columns + m >= current
        row_of = np.full(comp.n_pairs, -1, dtype=np.int64)
        row_of[comp.churn_pair[churn_pairs]] = np.arange(len(churn_pairs))
        sel = np.flatnonzero((comp.pair_of_col >= 0) & (row_of[np.maximum(comp.pair_of_col, 0)] >= 0))
        k = len(churn_pairs)
        rows.add(
            np.concatenate([row_of[comp.pair_of_col[sel]], np.arange(k)]),
            np.concatenate([sel, churn0 + np.arange(k)]),
            np.ones(len(sel) + k),
            comp.churn_current[churn_pairs],
            np.full(k, INF),
        )
    churn_cols = ChurnColumns(
        drop_pools=drop_pools,
        drop0=drop0,
        grow_pools=grow_pools,
        grow0=grow0,
        churn_pairs=churn_pairs,
        churn0=churn0,
        shed_pools=shed_pools,
        shed0=shed0,
        min_pools=min_pools,
        min0=min0,
    )
    for block in drop_rows(comp, churn_cols, most):
        rows.add(block.rows, block.cols, block.vals, block.lower, block.upper)
    for cap in comp.capacity_rows:
        sel = np.flatnonzero((comp.col_class == cap.cls) & (comp.devices >= cap.size) & (comp.ub > 0))
        rows.single(sel, comp.devices[sel], -INF, cap.rhs)
    for first, supply in zip(supply_start, comp.supplies, strict=True):
        # the nodes of each group hold at most what they have: sum use x <= cap
        k = supply.n_cols
        no_lower = np.full(len(supply.group_cap), -INF)
        rows.add(supply.group, first + np.arange(k), supply.use, no_lower, supply.group_cap)
        # replicas of each size within what the packing columns hold
        t = len(supply.sizes)
        r_rep, c_rep = [], []
        for i, size in enumerate(supply.sizes):
            sel = np.flatnonzero((comp.col_class == supply.cls) & (comp.devices == size) & (comp.ub > 0))
            r_rep.append(np.full(len(sel), i, dtype=np.int64))
            c_rep.append(sel)
        held = supply.holds.T  # (sizes, columns)
        nz_r, nz_c = np.nonzero(held)
        rows.add(
            np.concatenate([*r_rep, nz_r]),
            np.concatenate([*c_rep, first + nz_c]),
            np.concatenate([np.ones(sum(len(c) for c in c_rep)), -held[nz_r, nz_c].astype(np.float64)]),
            np.full(t, -INF),
            np.zeros(t),
        )
    dom = comp.class_domain[comp.col_class]
    for d, budget in enumerate(comp.budgets):
        sel = np.flatnonzero((dom == d) & (comp.ub > 0))
        rows.single(sel, comp.watts[sel], -INF, float(budget))
    level_cols: list[IntArray] = []
    level_vals: list[FloatArray] = []
    level_row0 = rows.count
    for k in range(len(comp.levels)):
        sp = np.flatnonzero(comp.level[shed_pools] == k)
        mp = np.flatnonzero(comp.level[min_pools] == k)
        cols = np.concatenate([shed0 + sp, min0 + mp]).astype(np.int64)
        vals = np.concatenate([np.ones(len(sp)), 1.0 / comp.min_r[min_pools[mp]]])
        level_cols.append(cols)
        level_vals.append(vals)
        rows.single(cols, vals, -INF, INF)
    pool_of = np.concatenate(
        [
            comp.col_pool,
            grow_pools,
            np.full(n_pack, -1),
            comp.col_pool[comp.split_col],
            shed_pools,
            min_pools,
            comp.churn_pool[churn_pairs],
            drop_pools,
        ]
    ).astype(np.int64)
    lay = Layout(
        n_rep=n_rep,
        grow_pools=grow_pools,
        supply_start=supply_start,
        n_pack=n_pack,
        n_split=comp.n_split,
        shed_pools=shed_pools,
        min_pools=min_pools,
        churn_pairs=churn_pairs,
        drop_pools=drop_pools,
        pool_of=pool_of,
        level_cols=tuple(level_cols),
        level_vals=tuple(level_vals),
        level_row0=level_row0,
        demand_row0=demand0,
    )

    start, index, value = _coo_to_csc(
        np.concatenate(rows.rows), np.concatenate(rows.cols), np.concatenate(rows.vals), lay.n_cols
    )
    lp = SparseModel(
        col_cost=np.zeros(lay.n_cols),
        col_lower=np.zeros(lay.n_cols),
        col_upper=np.concatenate(
            [
                comp.ub,
                np.ones(len(grow_pools)),
                *(sp.upper for sp in comp.supplies),
                np.ones(comp.n_split),
                np.ones(len(shed_pools)),
                comp.min_r[min_pools],
                comp.churn_current[churn_pairs],
                comp.running[drop_pools],
            ]
        ).astype(np.float64),
        row_lower=np.concatenate(rows.lower),
        row_upper=np.concatenate(rows.upper),
        start=start,
        index=index,
        value=value,
        n_int=lay.n_int if integer else None,
    )
    return lay, lp


def _split_rows(comp: Compiled, rows: _Rows, shed_pools: IntArray, demand0: int, split0: int) -> None:
    """The split of size-aware pools (:mod:`~inferfleet.core.formulation` notes): share-weighted
    split columns in their pools' demand rows, one row per bucket and one per split replica column."""
    k = comp.n_split
    idx = np.arange(k, dtype=np.int64)
    row_of = np.full(comp.n_pools, -1, dtype=np.int64)
    row_of[shed_pools] = demand0 + np.arange(len(shed_pools))
    pool = comp.bucket_pool[comp.split_bucket]
    on = row_of[pool] >= 0
    rows.extend(row_of[pool[on]], split0 + idx[on], comp.bucket_share[comp.split_bucket[on]])
    nb = len(comp.bucket_pool)
    rows.add(comp.split_bucket, split0 + idx, np.ones(k), np.full(nb, -INF), np.ones(nb))
    cols, col_row = np.unique(comp.split_col, return_inverse=True)
    m = len(cols)
    rows.add(
        np.concatenate([col_row, np.arange(m)]),
        np.concatenate([split0 + idx, cols]),
        np.concatenate([comp.split_load, -np.ones(m)]),
        np.full(m, -INF),
        np.zeros(m),
    )
