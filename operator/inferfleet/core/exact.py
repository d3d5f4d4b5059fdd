"""The exact path: lexicographic MILP phases in HiGHS, seeded with a heuristic plan.

Owns the phase loop.  Priority levels are optimised one at a time, highest first: minimise the
level's normalised shed (shed fractions plus missing-minimum fractions of its pools) with every
higher level capped at its optimum, then minimise cost with all levels capped.  A level the start
plan already serves in full is capped at zero without a solve (nothing can beat zero).  Each phase
starts from the previous phase's plan, so the result is never worse than the start.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from inferfleet.core.formulation import Compiled
from inferfleet.core.milp import HighsModel
from inferfleet.core.objectives import cost_vector, level_vector
from inferfleet.core.relax import LEVEL_SLACK, Outcome

__all__ = ["solve_exact"]


def solve_exact(comp: Compiled, time_limit: float, start: Outcome, *, mip_rel_gap: float = 1e-4) -> Outcome:
    """Lexicographically optimal replica counts (within ``mip_rel_gap``) or the best found in time."""
    t0 = time.perf_counter()
    model = HighsModel(comp, integer=True, mip_rel_gap=mip_rel_gap)
    # HiGHS 1.15's MIP presolve, given a start (an objective cutoff), can prune the optimum of these
    # models and still report Optimal (found by the brute-force property test); without presolve the
    # answer is right and these models stay fast.
    model.highs.set_option("presolve", "off")
    lay = model.layout
    x = model.full_vector(start.n)
    levels = lay.level_values(x)
    proven = True
    for k in range(len(levels)):
        if len(lay.level_cols[k]) == 0:
            continue
        if levels[k] > LEVEL_SLACK:
            model.set_costs(level_vector(lay, k))
            res = model.run(time_limit - (time.perf_counter() - t0), x)
            proven &= res.status == "Optimal"
            if res.ok:
                x = res.values
                levels = lay.level_values(x)
        model.set_level_bound(k, float(levels[k]) + LEVEL_SLACK)
    model.set_costs(cost_vector(comp, lay))
    res = model.run(time_limit - (time.perf_counter() - t0), x)
    proven &= res.status == "Optimal"
    if not res.ok:
        return dataclasses.replace(start, status="TimeLimit")
    n = np.round(res.values[: lay.n_rep])
    final = model.full_vector(n)
    return Outcome(
        n=n,
        levels=lay.level_values(final),
        objective=float(cost_vector(comp, lay) @ final),
        bound=min(float(res.bound), float(res.objective)),
        status="Optimal" if proven else "TimeLimit",
        method="milp",
    )
