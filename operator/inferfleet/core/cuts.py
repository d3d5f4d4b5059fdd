"""Mixed-integer rounding cuts on each pool's demand row, separated in bulk with numpy.

Most pools need a replica or two: the LP relaxation happily buys 0.3 of a big replica, which makes its
bound useless (10-15% below the integer optimum on realistic fleets).  Dividing a pool's demand row
``sum_j rps_j n_j + need f >= need`` by one of its own replica sizes ``r_k`` and rounding gives the
MIR inequality (``a_j = rps_j / r_k``, ``b = need / r_k``, ``f0 = frac(b)``)::

    sum_j (floor(a_j) + min(frac(a_j), f0) / f0) n_j + (need / r_k) / f0 * f >= ceil(b)

valid for integer ``n`` and continuous ``f >= 0``; a coefficient above ``ceil(b)`` is lowered to it (one
such replica meets the row alone).  With the reference chosen per pool as the most
violated one these cuts give the pool's integer hull in the common one-big-replica case, and a few
rounds close most of the LP gap.

The drop credit ``d`` of a running pool (:mod:`inferfleet.core.churn`: ``max(0, N - planned)``, with
the grow binary ``g``) has a weak relaxation on its own: a sliver of ``g`` "grows" the pool to the
most replicas it could have and so claims credit for replicas it keeps.  For any ``beta >= 0``::

    d <= N - beta + (beta - N) g + beta f + sum_j max(beta c_j - 1, 0) n_j

(``c_j`` the demand-row coefficient ``min(rps_j / need, 1)``, ``f`` the shed fraction) is valid: with
``g = 1``, ``d = 0`` and the right-hand side is >= 0; with ``g = 0`` it reads ``beta (1 - f) <= sum_j
max(1, beta c_j) n_j``, which the demand row implies.  ``beta = 1 / c_k`` of the option the pool
runs on says a pool that keeps exactly the replicas it needs earns no credit.  This module owns the
separation of both families; the planner adds them as rows.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import numpy.typing as npt

from inferfleet.core.formulation import Compiled
from inferfleet.core.milp import Layout

__all__ = ["CutRows", "joined", "separate_drop", "separate_mir"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclasses.dataclass(frozen=True)
class CutRows:
    """Rows in compressed-row form, ``lower <= A x`` (upper infinite)."""

    lower: FloatArray
    start: IntArray
    index: IntArray
    value: FloatArray

    def __len__(self) -> int:
        return len(self.lower)


def _empty() -> CutRows:
    return CutRows(np.zeros(0), np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0))


def joined(a: CutRows, b: CutRows) -> CutRows:
    """The rows of ``a`` then those of ``b``."""
    return CutRows(
        np.concatenate([a.lower, b.lower]),
        np.concatenate([a.start, b.start[1:] + a.start[-1]]),
        np.concatenate([a.index, b.index]),
        np.concatenate([a.value, b.value]),
    )


def _pairs(comp: Compiled, refs: IntArray) -> tuple[IntArray, IntArray]:
    """Every (reference ``refs[g]``, column of the same pool) pair, as ``(g, column)``."""
    pool_start = np.searchsorted(comp.col_pool, np.arange(comp.n_pools + 1)).astype(np.int64)
    lens = np.diff(pool_start)[comp.col_pool[refs]]
    group = np.repeat(np.arange(len(refs)), lens)
    first = np.repeat(np.cumsum(lens) - lens, lens)
    cols = pool_start[comp.col_pool[refs]][group] + (np.arange(int(lens.sum())) - first)
    return group, cols


def _most_violated(pools: IntArray, refs: IntArray, viol: FloatArray, min_violation: float) -> IntArray:
    """Per pool the reference with the largest violation, kept when above ``min_violation``."""
    order = np.lexsort((refs, -viol, pools))
    _, first_of_pool = np.unique(pools[order], return_index=True)
    pick = order[first_of_pool]
    return pick[viol[pick] > min_violation]


def _csr(row: IntArray, idx: IntArray, val: FloatArray, lower: FloatArray) -> CutRows:
    """Rows ``lower <= A x`` from coordinate triplets (row numbers ``0 .. len(lower) - 1``)."""
    order = np.lexsort((idx, row))
    start = np.zeros(len(lower) + 1, dtype=np.int64)
    np.cumsum(np.bincount(row, minlength=len(lower)), out=start[1:])
    return CutRows(
        lower.astype(np.float64), start, idx[order].astype(np.int64), val[order].astype(np.float64)
    )


def separate_mir(comp: Compiled, lay: Layout, x: FloatArray, min_violation: float = 1e-3) -> CutRows:
    """The most violated MIR cut of each pool's demand row at ``x`` (at most one per pool)."""
    shed_of = np.full(comp.n_pools, -1, dtype=np.int64)
    shed_of[lay.shed_pools] = lay.shed_start + np.arange(len(lay.shed_pools))
    live = comp.ub > 0
    refs = np.flatnonzero(live & (shed_of[comp.col_pool] >= 0))
    if len(refs) == 0:
        return _empty()
    b = comp.need[comp.col_pool[refs]] / comp.rps[refs]
    f0 = b - np.floor(b)
    ok = (f0 > 1e-6) & (f0 < 1.0 - 1e-6) & (b < 1e6)
    refs, b, f0 = refs[ok], b[ok], f0[ok]
    if len(refs) == 0:
        return _empty()
    group, cols = _pairs(comp, refs)
    a = comp.rps[cols] / comp.rps[refs][group]
    fa = a - np.floor(a)
    coef = np.floor(a) + np.minimum(fa, f0[group]) / f0[group]
    # a replica that alone meets the right-hand side needs no bigger coefficient (covering rows)
    coef = np.where(live[cols], np.minimum(coef, np.ceil(b)[group]), 0.0)
    shed_col = shed_of[comp.col_pool[refs]]
    shed_coef = b / f0
    rhs = np.ceil(b)
    lhs = np.bincount(group, weights=coef * x[cols], minlength=len(refs)) + shed_coef * x[shed_col]
    pick = _most_violated(comp.col_pool[refs], refs, (rhs - lhs) / rhs, min_violation)
    if len(pick) == 0:
        return _empty()
    # rows in the order of ``pick``: columns of each chosen group, then its shed column
    rank = np.full(len(refs), -1, dtype=np.int64)
    rank[pick] = np.arange(len(pick))
    in_pick = (rank[group] >= 0) & (coef != 0.0)
    return _csr(
        np.concatenate([rank[group[in_pick]], np.arange(len(pick))]),
        np.concatenate([cols[in_pick], shed_col[pick]]),
        np.concatenate([coef[in_pick], shed_coef[pick]]),
        rhs[pick],
    )


def separate_drop(comp: Compiled, lay: Layout, x: FloatArray, min_violation: float = 1e-3) -> CutRows:
    """The most violated drop-credit cut (module notes) of each running pool with demand at ``x``.

    ``beta`` is tried at ``1 / c_k`` for every live option ``k`` of the pool; the row is written
    ``sum_j max(beta c_j - 1, 0) n_j + (beta - N) g + beta f - d >= beta - N``, strengthened by
    rounding where ``beta`` is fractional: the MIR of ``sum_j max(1, beta c_j) n_j + beta f >= beta``
    (as in :func:`separate_mir`, ``f0 = frac(beta)``) is ``sum_j a_j n_j + beta / f0 f >=
    ceil(beta)``, so ``sum_j (a_j - 1) n_j + (ceil(beta) - N) g + beta / f0 f - d >= ceil(beta) -
    N`` (valid the same way: ``g = 0`` is the MIR, ``g = 1`` leaves a right-hand side >= 0).
    """

    def column_of(pools: IntArray, first: int) -> IntArray:
        out = np.full(comp.n_pools, -1, dtype=np.int64)
        out[pools] = first + np.arange(len(pools))
        return out

    shed_of = column_of(lay.shed_pools, lay.shed_start)
    drop_of = column_of(lay.drop_pools, lay.drop_start)
    grow_of = column_of(lay.grow_pools, lay.n_rep)
    live = comp.ub > 0
    refs = np.flatnonzero(live & (shed_of[comp.col_pool] >= 0) & (drop_of[comp.col_pool] >= 0))
    if len(refs) == 0:
        return _empty()
    c = np.minimum(comp.rps / np.maximum(comp.need[comp.col_pool], 1e-12), 1.0)
    pools = comp.col_pool[refs]
    beta = 1.0 / c[refs]
    running = comp.running[pools]
    group, cols = _pairs(comp, refs)
    # MIR of sum_j a_j n_j + beta f >= beta (a_j = max(1, beta c_j)) where frac(beta) allows it
    f0 = beta - np.floor(beta)
    rounded = (f0 > 1e-6) & (f0 < 1.0 - 1e-6)
    f0 = np.where(rounded, f0, 1.0)
    need = np.where(rounded, np.ceil(beta), beta)  # replicas' worth the pool needs unshed
    f_coef = np.where(rounded, beta / f0, beta)
    a = np.maximum(beta[group] * c[cols], 1.0)
    fa = a - np.floor(a)
    mir = np.floor(a) + np.minimum(fa, f0[group]) / f0[group]
    a = np.where(rounded[group], np.minimum(mir, need[group]), a)
    w = np.where(live[cols], a - 1.0, 0.0)
    g = np.where(grow_of[pools] >= 0, x[np.maximum(grow_of[pools], 0)], 0.0)
    rhs = (
        running
        - need
        + (need - running) * g
        + f_coef * x[shed_of[pools]]
        + np.bincount(group, weights=w * x[cols], minlength=len(refs))
    )
    pick = _most_violated(pools, refs, x[drop_of[pools]] - rhs, min_violation)
    if len(pick) == 0:
        return _empty()
    rank = np.full(len(refs), -1, dtype=np.int64)
    rank[pick] = np.arange(len(pick))
    in_pick = (rank[group] >= 0) & (w != 0.0)
    k = np.arange(len(pick))
    grows = pick[grow_of[pools[pick]] >= 0]
    return _csr(
        np.concatenate([rank[group[in_pick]], k, k, rank[grows]]),
        np.concatenate([cols[in_pick], shed_of[pools[pick]], drop_of[pools[pick]], grow_of[pools[grows]]]),
        np.concatenate([w[in_pick], f_coef[pick], -np.ones(len(pick)), need[grows] - running[grows]]),
        need[pick] - running[pick],
    )
