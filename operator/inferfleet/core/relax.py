"""The large-instance path: LP relaxation strengthened by MIR cuts, rounded, then a RINS-style MILP.

Owns the sequence and its time budget:

1. the LP relaxation with the weighted objective (shed levels dominate cost, see
   :func:`~inferfleet.core.milp.weighted_vector`);
2. rounds of pool MIR cuts (:mod:`inferfleet.core.cuts`) while they are violated;
3. rounding: whole replicas first-fit-decreasing, fractions rounded up by priority, greedy top-up
   (:func:`~inferfleet.core.heuristic.repair`);
4. a MILP over the pools the LP left fractional, every other pool fixed at its LP counts (relaxation
   induced neighbourhood search), seeded with the rounded plan;
5. the bound: the LP with the cost objective and each priority level's shed capped at what the plan
   sheds.  Its optimum is a proven lower bound on the cost of any plan that sheds no more at any
   level, so ``gap`` measures cost at this plan's shed (not whether less shed was possible).
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import numpy.typing as npt

from inferfleet.core.cuts import separate_mir
from inferfleet.core.formulation import Compiled
from inferfleet.core.heuristic import greedy, repair
from inferfleet.core.milp import INF, HighsModel, cost_vector, weighted_vector

__all__ = ["LEVEL_SLACK", "Outcome", "better", "evaluate", "solve_relaxation"]

FloatArray = npt.NDArray[np.float64]
LEVEL_SLACK = 1e-7
GREEDY_MAX_POOLS = 2000  # above this the greedy comparison costs more than it ever wins


@dataclasses.dataclass(frozen=True)
class Outcome:
    """An integral plan (replicas per column) with its cost objective and a lower bound."""

    n: FloatArray
    levels: FloatArray  # normalised shed per priority level (highest first)
    objective: float
    bound: float
    status: str  # "Optimal", "TimeLimit", "Heuristic"
    method: str


def better(a: Outcome, b: Outcome, tol: float = 1e-7) -> Outcome:
    """The lexicographically better plan: less shed at the highest differing level, then cheaper."""
    for la, lb in zip(a.levels, b.levels, strict=True):
        if la < lb - tol:
            return a
        if lb < la - tol:
            return b
    return a if a.objective <= b.objective + 1e-9 else b


def evaluate(model: HighsModel, n: FloatArray, method: str) -> Outcome:
    """Levels and cost objective of integral counts ``n`` (bound 0: nothing proven yet)."""
    x = model.full_vector(n)
    cost = float(cost_vector(model.comp, model.layout) @ x)
    return Outcome(n, model.layout.level_values(x), cost, 0.0, "Heuristic", method)


def _fix_and_solve(comp: Compiled, x: FloatArray, start: FloatArray, time_limit: float) -> FloatArray | None:
    """Keep the pools the LP placed integrally; solve the MILP over the others."""
    n = x[: comp.n_cols]
    loose = np.zeros(comp.n_pools, dtype=np.bool_)
    loose[comp.col_pool[np.abs(n - np.round(n)) > 1e-6]] = True
    model = HighsModel(comp, integer=True, mip_rel_gap=2e-4)
    lay = model.layout
    shed = x[lay.shed_start : lay.min_start]
    loose[lay.shed_pools[(shed > 1e-6) & (shed < 1.0 - 1e-6)]] = True
    if not loose.any():
        return None
    fix = np.flatnonzero(~loose[comp.col_pool]).astype(np.int32)
    val = np.round(n[fix])
    model.highs.changeColsBounds(len(fix), fix, val, val)
    model.set_costs(weighted_vector(comp, lay))
    res = model.run(time_limit, model.full_vector(start))
    return repair(comp, res.values[: comp.n_cols]) if res.ok else None


def solve_relaxation(comp: Compiled, time_limit: float, *, max_rounds: int = 8) -> Outcome:
    """The plan from the cut-strengthened LP, with a proven lower bound on its cost."""
    t0 = time.perf_counter()

    def left() -> float:
        return time_limit - (time.perf_counter() - t0)

    model = HighsModel(comp, integer=False)
    model.highs.setOptionValue("presolve", "off")  # faster on these models; cuts keep the basis
    lay = model.layout
    model.set_costs(weighted_vector(comp, lay))
    res = model.run(0.5 * time_limit)
    if not res.ok:
        return evaluate(model, greedy(comp), "greedy")
    for _ in range(max_rounds):
        if left() < 0.55 * time_limit:
            break
        cuts = separate_mir(comp, lay, res.values)
        if len(cuts) == 0:
            break
        model.add_rows(cuts.lower, np.full(len(cuts), INF), cuts.start, cuts.index, cuts.value)
        nxt = model.run(left() - 0.45 * time_limit)
        if not nxt.ok:
            break
        res = nxt
    best = evaluate(model, repair(comp, res.values[: lay.n_rep]), "lp-rounding")
    if comp.n_pools <= GREEDY_MAX_POOLS:
        best = better(best, evaluate(model, greedy(comp), "greedy"))
    if left() > 0.2 * time_limit:
        fixed = _fix_and_solve(comp, res.values, best.n, left() - 0.2 * time_limit)
        if fixed is not None:
            best = better(evaluate(model, fixed, "lp-rounding"), best)
    # the bound: the cheapest fractional plan that sheds no more than ``best`` at any level
    model.set_costs(cost_vector(comp, lay))
    for k, value in enumerate(best.levels):
        model.set_level_bound(k, float(value) + LEVEL_SLACK)
    res = model.run(max(left(), 0.05))
    bound = res.objective if res.status == "Optimal" else 0.0
    return dataclasses.replace(best, bound=min(bound, best.objective))
