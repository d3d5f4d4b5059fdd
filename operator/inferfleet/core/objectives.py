"""The objectives every phase optimises, as cost vectors over the model's columns.

Owns the cost objective ($/h of replicas, preferred options a hair cheaper, churn on the replicas a
plan moves between classes), the normalised shed of one priority level (what the exact path
minimises level by level), and the weighted sum the relaxation uses to steer shed levels
lexicographically in a single LP.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from inferfleet.core.churn import pool_moves
from inferfleet.core.formulation import Compiled
from inferfleet.core.milp import Layout

__all__ = ["PREFERENCE_DISCOUNT", "cost_vector", "level_vector", "plan_cost", "weighted_vector"]

FloatArray = npt.NDArray[np.float64]
# A preferred option's $/h counts 0.1% less: a tie-breaker, never a material override of cost.
PREFERENCE_DISCOUNT = 1e-3
# Shed weights of consecutive priority levels differ by a ratio in [MIN, MAX], as large as keeps the
# biggest weight below MAX_WEIGHT (HiGHS's dual simplex fails its ratio test on costs near 1e10).
LEVEL_RATIO_MIN = 10.0
LEVEL_RATIO_MAX = 1000.0
MAX_WEIGHT = 1e9


def cost_vector(comp: Compiled, lay: Layout) -> FloatArray:
    """The cost objective: $/h of replicas (preferred ones a hair cheaper) plus churn.

    Churn is charged on replicas taken off a class less the pool's drop credit (what scaling down
    removes), i.e. on ``min(added, removed)``; replicas on classes without a column are a constant
    left out (the planner adds it back).
    """
    churn = comp.problem.policy.churn_dollars_per_replica
    c = np.zeros(lay.n_cols, dtype=np.float64)
    c[: lay.n_rep] = comp.cost * np.where(comp.preferred, 1.0 - PREFERENCE_DISCOUNT, 1.0)
    c[lay.churn_start : lay.drop_start] = churn
    c[lay.drop_start :] = -churn
    return c


def level_vector(lay: Layout, level: int) -> FloatArray:
    """The normalised shed of one priority level (its shed fractions and missing minimums)."""
    c = np.zeros(lay.n_cols, dtype=np.float64)
    c[lay.level_cols[level]] = lay.level_vals[level]
    return c


def weighted_vector(comp: Compiled, lay: Layout) -> FloatArray:
    """Cost plus shed weights that make each level dominate cost and every lower level.

    The lowest level's weight is ten times what the biggest pool costs on its cheapest option, so a
    relaxation sheds to save money only where serving costs over ten times the cheapest way; each
    level above weighs 10-1000 times more, as much as keeps every weight below ``MAX_WEIGHT``.  This
    is lexicographic only up to that ratio (see the planner's module notes); it steers the LP that
    the rounding starts from, while the exact path fixes levels one by one.
    """
    c = cost_vector(comp, lay)
    cheapest = np.full(comp.n_pools, np.inf)
    if comp.n_cols:
        np.minimum.at(cheapest, comp.col_pool, comp.cost / comp.rps)
    full = np.where(np.isfinite(cheapest), cheapest, 0.0) * comp.need
    base = 10.0 * (1.0 + float(full.max(initial=0.0)))
    n_levels = len(lay.level_cols)
    ratio = LEVEL_RATIO_MAX
    if n_levels > 1:
        ratio = min(LEVEL_RATIO_MAX, max(LEVEL_RATIO_MIN, (MAX_WEIGHT / base) ** (1.0 / (n_levels - 1))))
    for k in range(n_levels):
        c[lay.level_cols[k]] += base * ratio ** (n_levels - 1 - k) * lay.level_vals[k]
    return c


def plan_cost(comp: Compiled, n: FloatArray) -> float:
    """The cost objective of integral counts ``n``, every move charged (no model needed)."""
    cost = float(n @ (comp.cost * np.where(comp.preferred, 1.0 - PREFERENCE_DISCOUNT, 1.0)))
    moved = float(pool_moves(comp, n).sum())
    return cost + comp.problem.policy.churn_dollars_per_replica * moved
