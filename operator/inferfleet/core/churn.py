"""Churn: the replicas a plan moves between classes, counted in bulk and modelled exactly.

A pool running ``N`` replicas (``c_k`` on class ``k``) and planned ``n`` (``on_k`` on class ``k``)
moves ``min(added, removed)`` of them (:func:`~inferfleet.core.cost.moved_replicas`): plain scale-ups
and scale-downs move nothing.  Since ``added - removed = planned - N``, that is ``removed - max(0, N -
planned)``.  This module owns the one vectorised count (:func:`pool_moves`, tested against the cost
model's) and the rows that make the placement model charge exactly it: with ``m_k >= c_k - on_k``
the replicas taken off class ``k`` (charged ``churn``), a drop credit ``d`` (credited ``churn``) is
held at ``max(0, N - planned)`` by

* ``d + planned - (U - N) g <= N`` and ``d + N g <= N``, one binary ``g`` (1: the pool grows), where
  ``U`` is the most replicas the pool can usefully get (:func:`most_replicas`); a pool that cannot
  grow past ``N`` needs no ``g``.  With ``g`` in [0, 1] these two rows are the convex hull of the
  hinge ``d <= max(0, N - planned)`` for ``planned`` in [0, U];
* and three rows that every integer plan satisfies anyway but that keep the relaxation from
  claiming credit for a fractional growth (which makes every move look nearly free when ``U`` is
  large; :func:`~inferfleet.core.cuts.separate_drop` separates a stronger family per pool):
  ``d - sum_k m_k <= (replicas on classes without a column)`` (the credit never exceeds what is
  removed, so moves stay >= 0); ``d + D g - b f <= D`` with ``D = max(0, N - b)``, ``f`` the shed
  fraction and ``b`` the fewest replicas that serve the demand (``planned >= b (1 - f)`` by the
  demand row: a pool shrinks at most to what it needs); and ``d + D g - u <= D`` with ``D = max(0,
  N - min)`` and ``u`` the missing minimum replicas.

``U`` is smaller than the column bounds allow, and still exact.  In a plan where ``planned > N``
some replica sits on a class that gained replicas; removing one of those leaves the moves as they
were (``added - 1 >= removed``) and saves its price, so in an optimal plan every such replica is
needed for the demand (or the minimum).  With ``r`` the smallest and ``R`` the largest replica rps
of the pool, that gives ``planned <= N + ceil(need / r)`` and ``planned < (need + R) / r``.  Any plan
can be cut down to that without shedding more or costing more, so neither a shed phase's optimum nor
the cost phase's (nor the bound) changes.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import numpy.typing as npt

from inferfleet.core.formulation import Compiled
from inferfleet.core.highs import INF

__all__ = ["ChurnColumns", "RowBlock", "drop_rows", "most_replicas", "pool_moves"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
EPS = 1e-9


@dataclasses.dataclass(frozen=True)
class RowBlock:
    """Rows as coordinate triplets (rows numbered from 0 in the block), ``lower <= A x <= upper``."""

    rows: IntArray
    cols: IntArray
    vals: FloatArray
    lower: FloatArray
    upper: FloatArray


@dataclasses.dataclass(frozen=True)
class ChurnColumns:
    """Where the model keeps the columns the drop rows use: pool ``pools[i]`` of each kind is at
    column ``first + i``."""

    drop_pools: IntArray
    drop0: int
    grow_pools: IntArray
    grow0: int
    churn_pairs: IntArray  # churn pairs with a column; their taken-off column churn0 + i
    churn0: int
    shed_pools: IntArray
    shed0: int
    min_pools: IntArray
    min0: int


def pool_moves(comp: Compiled, n: FloatArray) -> FloatArray:
    """Replicas each pool moves between classes with counts ``n``: ``min(added, removed)``.

    The vectorised :func:`~inferfleet.core.cost.moved_replicas`: ``removed - max(0, running -
    planned)``.  Replicas on a class the pool has no column for are all removed.
    """
    on = np.append(np.bincount(comp.pair_of_col, weights=n, minlength=comp.n_pairs), 0.0)
    kept = on[comp.churn_pair]  # -1 (a class without a column) reads the 0 at the end
    removed = np.bincount(
        comp.churn_pool, weights=np.maximum(comp.churn_current - kept, 0.0), minlength=comp.n_pools
    )
    planned = np.bincount(comp.col_pool, weights=n, minlength=comp.n_pools)
    return np.asarray(removed - np.maximum(comp.running - planned, 0.0), dtype=np.float64)


def most_replicas(comp: Compiled) -> FloatArray:
    """Per pool, the most replicas an optimal plan can have (see the module notes)."""
    live = comp.ub > 0
    ub_sum = np.bincount(comp.col_pool, weights=comp.ub, minlength=comp.n_pools)
    r_min = np.full(comp.n_pools, INF)
    r_max = np.zeros(comp.n_pools)
    np.minimum.at(r_min, comp.col_pool[live], comp.rps[live])
    np.maximum.at(r_max, comp.col_pool[live], comp.rps[live])
    # a pool without a live column has r_min inf (by_need 0) and ub_sum 0
    by_need = np.minimum(
        comp.running + np.ceil(comp.need / r_min - EPS), np.floor((comp.need + r_max) / r_min + EPS)
    )
    useful = np.maximum(np.maximum(comp.min_r, comp.running), by_need)
    useful = np.where(comp.aware(), ub_sum, useful)  # a split pool: its columns' bounds only
    return np.asarray(np.minimum(np.minimum(ub_sum, comp.max_r), useful), dtype=np.float64)


def _pos(pools: IntArray, n_pools: int) -> IntArray:
    """Index of each pool in ``pools`` (-1: absent)."""
    out = np.full(n_pools, -1, dtype=np.int64)
    out[pools] = np.arange(len(pools))
    return out


def drop_rows(comp: Compiled, cols: ChurnColumns, most: FloatArray) -> list[RowBlock]:
    """The rows of the drop credits (module notes), one block per kind."""
    dp, gp = cols.drop_pools, cols.grow_pools
    k, g = len(dp), len(gp)
    if k == 0:
        return []
    run = comp.running
    at = _pos(dp, comp.n_pools)
    drop_of = cols.drop0 + at  # the drop column of each pool (meaningful where at >= 0)
    blocks = []
    # d + planned - (U - N) g <= N
    sel = np.flatnonzero(at[comp.col_pool] >= 0)
    blocks.append(
        RowBlock(
            np.concatenate([at[comp.col_pool[sel]], np.arange(k), at[gp]]),
            np.concatenate([sel, cols.drop0 + np.arange(k), cols.grow0 + np.arange(g)]),
            np.concatenate([np.ones(len(sel) + k), -(most[gp] - run[gp])]),
            np.full(k, -INF),
            run[dp],
        )
    )
    if g:  # d + N g <= N
        blocks.append(
            RowBlock(
                np.concatenate([np.arange(g), np.arange(g)]),
                np.concatenate([drop_of[gp], cols.grow0 + np.arange(g)]),
                np.concatenate([np.ones(g), run[gp]]),
                np.full(g, -INF),
                run[gp],
            )
        )
    # d - sum m <= replicas on classes without a column
    forced = np.bincount(
        comp.churn_pool[comp.churn_pair < 0],
        weights=comp.churn_current[comp.churn_pair < 0],
        minlength=comp.n_pools,
    )
    pairs = cols.churn_pairs
    blocks.append(
        RowBlock(
            np.concatenate([np.arange(k), at[comp.churn_pool[pairs]]]),
            np.concatenate([drop_of[dp], cols.churn0 + np.arange(len(pairs))]),
            np.concatenate([np.ones(k), -np.ones(len(pairs))]),
            np.full(k, -INF),
            forced[dp].astype(np.float64),
        )
    )
    grow_of = np.full(comp.n_pools, -1, dtype=np.int64)
    grow_of[gp] = cols.grow0 + np.arange(g)
    # d + D g - b f <= D, D = max(0, N - b): b = 1 / the pool's largest demand-row coefficient
    coef = np.minimum(comp.rps / np.maximum(comp.need[comp.col_pool], 1e-12), 1.0)
    best = np.zeros(comp.n_pools)
    np.maximum.at(best, comp.col_pool[comp.ub > 0], coef[comp.ub > 0])
    sp = np.flatnonzero(at[cols.shed_pools] >= 0)  # positions in shed_pools of running pools
    pools = cols.shed_pools[sp]
    b = 1.0 / best[pools]
    blocks.append(_cap(drop_of[pools], grow_of[pools], cols.shed0 + sp, b, np.maximum(run[pools] - b, 0.0)))
    # d + D g - u <= D, D = max(0, N - min)
    mp = np.flatnonzero(at[cols.min_pools] >= 0)
    pools = cols.min_pools[mp]
    spare = np.maximum(run[pools] - comp.min_r[pools], 0.0)
    blocks.append(_cap(drop_of[pools], grow_of[pools], cols.min0 + mp, np.ones(len(mp)), spare))
    return blocks


def _cap(drop: IntArray, grow: IntArray, slack: IntArray, coef: FloatArray, spare: FloatArray) -> RowBlock:
    """``d + spare g - coef slack <= spare`` per entry (no ``g`` term where ``grow`` is -1)."""
    k = len(drop)
    has = np.flatnonzero(grow >= 0)
    return RowBlock(
        np.concatenate([np.arange(k), np.arange(k), has]),
        np.concatenate([drop, slack, grow[has]]),
        np.concatenate([np.ones(k), -coef, spare[has]]),
        np.full(k, -INF),
        spare.astype(np.float64),
    )
