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
import logging
import time

import highspy
import numpy as np
import numpy.typing as npt

from inferfleet.core.cuts import CutRows, separate_mir
from inferfleet.core.formulation import Compiled
from inferfleet.core.heuristic import greedy, repair
from inferfleet.core.milp import (
    INF,
    HighsModel,
    Layout,
    build_model,
    cost_vector,
    fix_columns,
    new_highs,
    weighted_vector,
)

__all__ = ["LEVEL_SLACK", "Outcome", "better", "evaluate", "solve_relaxation"]

FloatArray = npt.NDArray[np.float64]
log = logging.getLogger(__name__)
LEVEL_SLACK = 1e-7
GREEDY_MAX_POOLS = 200  # above this the greedy comparison costs more than it ever wins
FRESH_BOUND_AFTER_S = 0.3  # first LP slower than this: solve the bound LP cold, not from its basis
RINS_SHED_GAP = 1e-3  # relative to shed weights + cost of the pools the LP left fractional
RINS_COST_GAP = 2e-4  # relative to their cost
RINS_MAX_NODES = 200  # a work limit, so that an unhurried run gives the same plan on any machine
MIN_CUTS = 0.002  # stop separating when a round finds cuts for fewer than 0.2% of the pools


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


def _implied(comp: Compiled, lay: Layout, n: FloatArray) -> FloatArray:
    """Replica counts plus the slack columns they imply (shed, missing minimum, moved)."""
    return HighsModel.implied(comp, lay, n)


def evaluate(model: HighsModel, n: FloatArray, method: str) -> Outcome:
    """Levels and cost objective of integral counts ``n`` (bound 0: nothing proven yet)."""
    x = model.full_vector(n)
    cost = float(cost_vector(model.comp, model.layout) @ x)
    return Outcome(n, model.layout.level_values(x), cost, 0.0, "Heuristic", method)


def _run_sub(lp: highspy.HighsLp, start: FloatArray, gap: float, time_limit: float) -> FloatArray | None:
    h = new_highs(gap)
    h.setOptionValue("presolve", "off")  # see exact.py: presolve with a start can cut the optimum
    h.setOptionValue("time_limit", max(time_limit, 0.01))
    h.setOptionValue("mip_max_nodes", RINS_MAX_NODES)
    h.passModel(lp)
    sol = highspy.HighsSolution()
    sol.col_value = start
    h.setSolution(sol)
    h.run()
    if h.getInfo().primal_solution_status != highspy.kSolutionStatusFeasible:
        return None
    return np.asarray(h.getSolution().col_value, dtype=np.float64)


def _fix_and_solve(comp: Compiled, x: FloatArray, start: FloatArray, time_limit: float) -> FloatArray | None:
    """Keep the pools the LP placed integrally; solve the MILP over the others (RINS).

    ``x`` is the LP solution, ``start`` an integral plan used as the MIP start.  Two short solves:
    the weighted objective settles how much each level sheds, then the cost objective with those
    levels capped (the weighted objective's gap is mostly shed weight, useless for cost).
    """
    t0 = time.perf_counter()
    lay, lp = build_model(comp, integer=True)
    n = x[: comp.n_cols]
    loose = np.zeros(comp.n_pools, dtype=np.bool_)
    loose[comp.col_pool[np.abs(n - np.round(n)) > 1e-6]] = True
    shed = x[lay.shed_start : lay.min_start]
    loose[lay.shed_pools[(shed > 1e-6) & (shed < 1.0 - 1e-6)]] = True
    if not loose.any():
        return None
    keep = np.concatenate(
        [
            loose[comp.col_pool],
            loose[lay.shed_pools],
            loose[lay.min_pools],
            loose[comp.churn_pool[lay.churn_pairs]],
        ]
    )
    fixed = _implied(comp, lay, np.round(n))
    lp.col_cost_ = weighted_vector(comp, lay)
    shed_fixed = _run_sub(
        fix_columns(lp, keep, fixed, comp.n_cols),
        _implied(comp, lay, start)[keep],
        RINS_SHED_GAP,
        0.6 * time_limit,
    )
    if shed_fixed is None:
        return None
    fixed[keep] = shed_fixed
    upper = np.asarray(lp.row_upper_, dtype=np.float64).copy()
    for k, value in enumerate(lay.level_values(fixed)):
        upper[lay.level_row0 + k] = float(value) + LEVEL_SLACK
    lp.row_upper_ = upper
    lp.col_cost_ = cost_vector(comp, lay)
    cheaper = _run_sub(
        fix_columns(lp, keep, fixed, comp.n_cols),
        shed_fixed,
        RINS_COST_GAP,
        time_limit - (time.perf_counter() - t0),
    )
    if cheaper is not None:
        fixed[keep] = cheaper
    return repair(comp, fixed[: comp.n_cols])


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
    lp_seconds = time.perf_counter() - t0
    log.debug("lp %s %.3fs", res.status, lp_seconds)
    if not res.ok:
        return evaluate(model, greedy(comp), "greedy")
    # the final bound re-solve takes about as long as the first LP: keep that in reserve
    reserve = min(0.5 * time_limit, 1.5 * lp_seconds + 0.03 + 0.05 * time_limit)
    added: list[CutRows] = []
    for _ in range(max_rounds):
        if left() < reserve + 0.4 * time_limit:
            break
        cuts = separate_mir(comp, lay, res.values)
        if len(cuts) <= MIN_CUTS * comp.n_pools:
            break
        model.add_rows(cuts.lower, np.full(len(cuts), INF), cuts.start, cuts.index, cuts.value)
        added.append(cuts)
        nxt = model.run(left() - reserve)
        if not nxt.ok:
            break
        res = nxt
        log.debug("cuts %d -> %.6g %.3fs", len(cuts), res.objective, time.perf_counter() - t0)
    best = evaluate(model, repair(comp, res.values[: lay.n_rep]), "lp-rounding")
    log.debug("rounded %.6g %s %.3fs", best.objective, best.levels, time.perf_counter() - t0)
    if comp.n_pools <= GREEDY_MAX_POOLS:
        best = better(best, evaluate(model, greedy(comp), "greedy"))
    if left() > reserve + 0.05:
        fixed = _fix_and_solve(comp, res.values, best.n, 0.85 * (left() - reserve))
        if fixed is not None:
            best = better(evaluate(model, fixed, "lp-rounding"), best)
        log.debug("rins %.6g %s %.3fs", best.objective, best.levels, time.perf_counter() - t0)
    # the bound: the cheapest fractional plan that sheds no more than ``best`` at any level.  On big
    # models a cold solve of a fresh model beats re-solving the weighted one from its basis.
    final = model
    if lp_seconds > FRESH_BOUND_AFTER_S:
        final = HighsModel(comp, integer=False)
        final.highs.setOptionValue("presolve", "off")
        for cuts in added:
            final.add_rows(cuts.lower, np.full(len(cuts), INF), cuts.start, cuts.index, cuts.value)
    final.set_costs(cost_vector(comp, lay))
    for k, value in enumerate(best.levels):
        final.set_level_bound(k, float(value) + LEVEL_SLACK)
    res = final.run(max(left(), 0.05))
    bound = res.objective if res.status == "Optimal" else 0.0
    log.debug("bound %s %.6g %.3fs", res.status, bound, time.perf_counter() - t0)
    return dataclasses.replace(best, bound=min(bound, best.objective))
