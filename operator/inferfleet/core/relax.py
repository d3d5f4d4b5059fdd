"""The large-instance path: LP relaxation strengthened by MIR cuts, rounded, then a RINS-style MILP.

Owns the sequence and its time budget:

1. the LP relaxation with the weighted objective (shed levels dominate cost, see
   :func:`~inferfleet.core.objectives.weighted_vector`);
2. rounds of pool MIR and drop-credit cuts (:mod:`inferfleet.core.cuts`) while they are violated;
3. rounding: whole replicas first-fit-decreasing, fractions rounded up by priority, greedy top-up
   (:func:`~inferfleet.core.heuristic.repair`);
4. a MILP over the pools the LP left fractional (replicas or shed, or a drop credit above what its
   counts earn), every other pool fixed at its LP counts (relaxation induced neighbourhood search),
   with the cuts of step 2 and seeded with the rounded plan: first the weighted objective, then cost
   with the shed levels it reached capped;
5. the bound: the cut LP with the cost objective and each pool's shed (and missing minimum) capped
   at the plan's.  Its optimum is a proven lower bound on the cost of any plan that serves every
   pool at least as well, so ``gap`` measures cost at this plan's service, not whether less shed
   was possible.  (Capping whole levels instead lets the LP shed a sliver more of some big, dear
   pool and makes the bound swing by percents with the plan's shed mix.)

Every step works to one deadline; only the bound LP, once the plan is made, may run up to
``BOUND_GRACE`` of the limit past it (then it gives no bound, 0, rather than a later plan).  As a
start for the exact path (``bound=False``) the bound LP is skipped.  Plans handed on are integral:
the sub-MILP's answers are taken as rounded counts with every other column recomputed from them,
and its shed levels capped at those values.
"""

from __future__ import annotations

import dataclasses
import logging
import time

import numpy as np
import numpy.typing as npt

from inferfleet.core.cuts import CutRows, joined, separate_drop, separate_mir
from inferfleet.core.formulation import Compiled
from inferfleet.core.heuristic import greedy, repair
from inferfleet.core.highs import SparseModel
from inferfleet.core.milp import INF, HighsModel, Layout, build_model, new_highs
from inferfleet.core.objectives import cost_vector, weighted_vector

__all__ = ["LEVEL_SLACK", "Outcome", "better", "evaluate", "solve_relaxation"]

FloatArray = npt.NDArray[np.float64]
log = logging.getLogger(__name__)
LEVEL_SLACK = 1e-7
GREEDY_MAX_POOLS = 200  # above this the greedy comparison costs more than it ever wins
FRESH_BOUND_AFTER_S = 0.3  # first LP slower than this: solve the bound LP cold, not from its basis
MATERIAL_SHED = 0.02  # less shed than 2% of a lowest-priority pool is not worth a new RINS start
RINS_SHED_GAP = 1e-6  # relative to the weighted shed of the pools the LP left fractional
RINS_COST_GAP = 2e-4  # relative to their cost
RINS_MAX_NODES = 200  # a work limit, so that an unhurried run gives the same plan on any machine
RINS_PRESOLVE = "on"  # a sub-MILP is a heuristic: presolve (bug or not, see exact.py) only costs quality
MIN_CUTS = 0.002  # stop separating when a round finds cuts for fewer than 0.2% of the pools
BOUND_GRACE = 0.04  # of the time limit, past the deadline, that the bound LP may still take
RINS_SHARE = 0.9  # of the time left for the sub-MILP it is given (the rest covers HiGHS's overshoot)


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


def _implied(comp: Compiled, lay: Layout, n: FloatArray, hint: FloatArray | None = None) -> FloatArray:
    """Replica counts plus the columns they imply (packing, shed, missing minimum, moved)."""
    return HighsModel.implied(comp, lay, n, hint)


def evaluate(model: HighsModel, n: FloatArray, method: str) -> Outcome:
    """Levels and cost objective of integral counts ``n`` (bound 0: nothing proven yet)."""
    x = model.full_vector(n)
    cost = float(cost_vector(model.comp, model.layout) @ x)
    return Outcome(n, model.layout.level_values(x), cost, 0.0, "Heuristic", method)


INCUMBENT_FEASIBLE = 1e-6  # the largest relative row violation of what runs now, to compete


def incumbent(comp: Compiled) -> FloatArray | None:
    """Replica counts per column as they run now (None: nothing runs).  A pool's replicas on a
    class go to the first of its columns there (one column per pool and class, but for split
    columns, which share it)."""
    if not len(comp.churn_current):
        return None
    first_of_pair = np.full(max(comp.n_pairs, 1), -1, dtype=np.int64)
    cols = np.arange(comp.n_cols, dtype=np.int64)
    # np.minimum.at keeps the lowest column index of each pair
    if comp.n_cols:
        first_of_pair[:] = comp.n_cols
        np.minimum.at(first_of_pair, comp.pair_of_col, cols)
    n = np.zeros(comp.n_cols, dtype=np.float64)
    for pair, count in zip(comp.churn_pair.tolist(), comp.churn_current.tolist(), strict=True):
        if pair >= 0 and 0 <= first_of_pair[pair] < comp.n_cols:
            j = int(first_of_pair[pair])
            n[j] += count
    n = np.minimum(n, comp.ub)
    return n if n.any() else None


def _fix_and_solve(
    comp: Compiled, x: FloatArray, start: FloatArray, time_limit: float, cuts: list[CutRows]
) -> FloatArray | None:
    """Keep the pools the LP placed integrally; solve the MILP over the others (RINS).

    ``x`` is the LP solution, ``start`` an integral plan used as the MIP start.  Two short solves
    on the small model: shed with the LP's level weights alone (with cost in it the objective's gap
    is mostly shed weight and it converges slowly), then cost with every level capped at that.  The
    shed solve ignores cost, so pools whose shed it did not change get their start placement back
    before the cost solve (:func:`_mend`).
    """
    t0 = time.perf_counter()
    lay, lp = build_model(comp, integer=True)
    lp = with_cuts(lp, cuts)
    n = x[: comp.n_cols]
    loose = np.zeros(comp.n_pools, dtype=np.bool_)
    loose[comp.col_pool[np.abs(n - np.round(n)) > 1e-6]] = True
    shed = x[lay.shed_start : lay.min_start]
    loose[lay.shed_pools[(shed > 1e-6) & (shed < 1.0 - 1e-6)]] = True
    full = _implied(comp, lay, np.round(n))
    # whole replicas but a fractional grow binary that bought more drop credit than they earn: the
    # LP priced the pool's churn too low
    credit = lay.drop_start + np.arange(len(lay.drop_pools))
    loose[lay.drop_pools[x[credit] > full[credit] + 1e-6]] = True
    if not loose.any():
        return None
    # the loose pools' columns and every packing column (pool -1) are the sub-MILP's
    keep = np.where(lay.pool_of >= 0, loose[np.maximum(lay.pool_of, 0)], True)
    mixed = np.where(loose[comp.col_pool], start, np.round(n))
    full = _implied(comp, lay, mixed)
    sub, row_map, activity = fix_columns(lp, keep, full, lay.n_int)
    h = new_highs(RINS_SHED_GAP, presolve=RINS_PRESOLVE, mip_max_nodes=RINS_MAX_NODES)
    h.pass_model(sub)
    idx = np.arange(int(keep.sum()), dtype=np.int64)

    def run(costs: FloatArray, seconds: float) -> bool:
        """Solve, and take the answer as whole replicas with every other column implied."""
        h.change_costs(idx, costs[keep])
        res = h.run(seconds, full[keep])
        if not res.ok:
            return False
        point = full.copy()
        point[keep] = res.values
        full[:] = _implied(comp, lay, np.round(point[: lay.n_rep]), point)
        return True

    cost = cost_vector(comp, lay)
    weights = weighted_vector(comp, lay) - cost  # the level weights alone
    before = full.copy()
    if run(weights, 0.5 * time_limit) and float(weights @ (before - full)) < MATERIAL_SHED * weights.min(
        initial=np.inf, where=weights > 0
    ):
        full[:] = before  # a sliver less shed is not worth a plan the cost solve may not mend in time
    else:
        _mend(comp, lay, sub, keep, full, before)
    # each level capped at its value in the plan (recomputed from its counts), float noise above
    for k, value in enumerate(lay.level_values(full)):
        row = int(row_map[lay.level_row0 + k])
        if row >= 0:
            cap = float(value) + LEVEL_SLACK * max(1.0, float(value))
            h.change_row_bounds(row, -INF, cap - float(activity[lay.level_row0 + k]))
    log.debug("rins shed %s $%.6g %.3fs", lay.level_values(full), cost @ full, time.perf_counter() - t0)
    h.set_option("mip_rel_gap", RINS_COST_GAP)
    run(cost, time_limit - (time.perf_counter() - t0))
    log.debug("rins cost $%.6g %.3fs", cost @ full, time.perf_counter() - t0)
    return repair(comp, full[: comp.n_cols])


def _mend(
    comp: Compiled,
    lay: Layout,
    sub: SparseModel,
    keep: npt.NDArray[np.bool_],
    x: FloatArray,
    start: FloatArray,
) -> None:
    """Give the pools whose shed the shed stage left as it was their placement from ``start`` back.

    The shed stage does not look at cost, so it moves pools it need not; the cost stage may not have
    the time to move them back.  Done in place on ``x`` when the mix still satisfies every row.
    """
    pool_same = np.ones(comp.n_pools, dtype=np.bool_)
    for first, pools in ((lay.shed_start, lay.shed_pools), (lay.min_start, lay.min_pools)):
        cols = first + np.arange(len(pools))
        pool_same[pools] &= np.abs(x[cols] - start[cols]) <= LEVEL_SLACK
    counts = np.where(pool_same[comp.col_pool], start[: lay.n_rep], x[: lay.n_rep])
    mixed = _implied(comp, lay, counts)
    y = mixed[keep]
    act = np.bincount(sub.index, weights=sub.value * y[sub.col_of_entry()], minlength=sub.n_rows)
    if np.all(act >= sub.row_lower - 1e-6) and np.all(act <= sub.row_upper + 1e-6):
        x[:] = mixed


def solve_relaxation(comp: Compiled, deadline: float, *, bound: bool = True, max_rounds: int = 8) -> Outcome:
    """The plan from the cut-strengthened LP by ``deadline`` (``time.perf_counter()`` seconds), with
    a proven lower bound on its cost (``bound``; else 0: a start for the exact path, which proves
    its own)."""
    t0 = time.perf_counter()
    time_limit = max(deadline - t0, 0.0)

    def left() -> float:
        return deadline - time.perf_counter()

    model = HighsModel(comp, integer=False)
    model.highs.set_option("presolve", "off")  # faster on these models; cuts keep the basis
    lay = model.layout
    model.set_costs(weighted_vector(comp, lay))
    res = model.run(0.5 * time_limit)
    lp_seconds = time.perf_counter() - t0
    log.debug("lp %s %.3fs", res.status, lp_seconds)
    if res.status != "Optimal":
        return evaluate(model, greedy(comp), "greedy")
    # the bound LP at the end takes up to twice the first LP when solved cold, far less warm: keep
    # that in reserve; cut while
    # at least 30% of the limit stays for the sub-MILP (15% for the first two rounds, which matter most)
    cold = lp_seconds > FRESH_BOUND_AFTER_S
    reserve = min(0.5 * time_limit, (2.0 if cold else 0.5) * lp_seconds + 0.02 + 0.02 * time_limit)
    if not bound:
        reserve = 0.0
    added: list[CutRows] = []
    for rounds in range(max_rounds):
        if left() - reserve < (0.15 if rounds < 2 else 0.3) * time_limit:
            break
        cuts = joined(separate_mir(comp, lay, res.values), separate_drop(comp, lay, res.values))
        if len(cuts) <= MIN_CUTS * comp.n_pools:
            break
        model.add_rows(cuts.lower, np.full(len(cuts), INF), cuts.start, cuts.index, cuts.value)
        added.append(cuts)
        nxt = model.run(left() - reserve)
        if nxt.status != "Optimal":
            break
        res = nxt
        log.debug("cuts %d -> %.6g %.3fs", len(cuts), res.objective, time.perf_counter() - t0)
    t_round = time.perf_counter()
    best = evaluate(model, repair(comp, res.values[: lay.n_rep]), "lp-rounding")
    # what repairing and scoring a plan takes on this machine now (~25 us a pool unloaded)
    rounding_s = time.perf_counter() - t_round
    log.debug("rounded %.6g %s %.3fs", best.objective, best.levels, time.perf_counter() - t0)
    if comp.n_pools <= GREEDY_MAX_POOLS:
        best = better(best, evaluate(model, greedy(comp), "greedy"))
    kept = incumbent(comp)
    if kept is not None:  # what runs now, mended to fit; it wins ties: a rounding may trade one
        # pool's replica for another's at equal cost and shed (equal-priority pools under a budget)
        mended = repair(comp, kept)
        if model.violation(model.full_vector(mended)) <= INCUMBENT_FEASIBLE:
            best = better(evaluate(model, mended, "lp-rounding"), best)
    if left() > reserve + 0.05:
        # HiGHS overshoots a sub-MILP's limit by up to ~0.05 s (root cuts and heuristics check the
        # clock rarely; the "up to half" once seen here was HiGHS timing an instance's runs
        # together, see core.highs); repairing and scoring its answer takes what the rounding did
        spare = left() - reserve - 0.02 - 1.5 * rounding_s
        fixed = _fix_and_solve(comp, res.values, best.n, RINS_SHARE * spare, added)
        if fixed is not None:
            best = better(best, evaluate(model, fixed, "lp-rounding"))  # ties keep what runs
        log.debug("rins %.6g %s %.3fs", best.objective, best.levels, time.perf_counter() - t0)
    if not bound:
        return best
    # the bound: the cheapest fractional plan that serves every pool at least as well as ``best``
    # (each pool's shed and missing minimum capped at the plan's).  On big models a cold solve of a
    # fresh model beats re-solving the weighted one from its basis.
    final = model
    if cold:
        final = HighsModel(comp, integer=False)
        final.highs.set_option("presolve", "off")
        for cuts in added:
            final.add_rows(cuts.lower, np.full(len(cuts), INF), cuts.start, cuts.index, cuts.value)
    final.set_costs(cost_vector(comp, lay))
    slack = np.arange(lay.shed_start, lay.churn_start, dtype=np.int64)
    caps = model.full_vector(best.n)[slack] + LEVEL_SLACK
    final.highs.change_col_bounds(slack, np.zeros(len(slack)), caps)
    # the plan is made: a bound may use a little of the limit's tolerance (BOUND_GRACE) rather than
    # leave none (gap 100%) when the sub-MILP overshot into its reserve
    res = final.run(left() + BOUND_GRACE * time_limit)
    proven = res.objective if res.status == "Optimal" else 0.0
    log.debug("bound %s %.6g %.3fs", res.status, proven, time.perf_counter() - t0)
    return dataclasses.replace(best, bound=min(proven, best.objective))


def with_cuts(lp: SparseModel, cuts: list[CutRows]) -> SparseModel:
    """``lp`` with the rows ``lower <= A x`` of ``cuts`` after its own (so row numbers stay)."""
    if not cuts:
        return lp
    rows = [np.asarray(lp.index, dtype=np.int64)]
    cols = [lp.col_of_entry()]
    vals = [np.asarray(lp.value, dtype=np.float64)]
    lower = [np.asarray(lp.row_lower, dtype=np.float64)]
    first = lp.n_rows
    for c in cuts:
        rows.append(first + np.repeat(np.arange(len(c), dtype=np.int64), np.diff(c.start)))
        cols.append(c.index)
        vals.append(c.value)
        lower.append(c.lower)
        first += len(c)
    row, col, val = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
    order = np.lexsort((row, col))
    start = np.zeros(lp.n_cols + 1, dtype=np.int64)
    np.cumsum(np.bincount(col, minlength=lp.n_cols), out=start[1:])
    return dataclasses.replace(
        lp,
        row_lower=np.concatenate(lower),
        row_upper=np.concatenate(
            [np.asarray(lp.row_upper, dtype=np.float64), np.full(first - lp.n_rows, INF)]
        ),
        start=start,
        index=row[order],
        value=val[order],
    )


def fix_columns(
    lp: SparseModel, keep: npt.NDArray[np.bool_], x: FloatArray, n_int: int
) -> tuple[SparseModel, npt.NDArray[np.int64], FloatArray]:
    """``lp`` with the columns outside ``keep`` fixed at ``x`` and removed (row bounds shifted).

    The first ``n_int`` columns of ``lp`` are the integer ones.  Rows left without a column are
    dropped.  Also returns each row's index in the new model (-1: dropped) and the activity of the
    fixed columns in it.  A model a tenth the size presolves and runs HiGHS's sub-MIP heuristics far faster
    than the same model with bounds fixed.
    """
    start = np.asarray(lp.start, dtype=np.int64)
    index = np.asarray(lp.index, dtype=np.int64)
    value = np.asarray(lp.value, dtype=np.float64)
    col_of = lp.col_of_entry()
    kept_entry = keep[col_of]
    gone = ~kept_entry
    activity = np.bincount(index[gone], weights=value[gone] * x[col_of[gone]], minlength=lp.n_rows)
    live_rows = np.bincount(index[kept_entry], minlength=lp.n_rows) > 0
    new_row = np.cumsum(live_rows) - 1
    cols = np.flatnonzero(keep)
    row_lower = np.asarray(lp.row_lower, dtype=np.float64)
    row_upper = np.asarray(lp.row_upper, dtype=np.float64)
    sub_start = np.zeros(len(cols) + 1, dtype=np.int64)
    np.cumsum(np.diff(start)[cols], out=sub_start[1:])
    sub = SparseModel(
        col_cost=np.asarray(lp.col_cost, dtype=np.float64)[cols],
        col_lower=np.asarray(lp.col_lower, dtype=np.float64)[cols],
        col_upper=np.asarray(lp.col_upper, dtype=np.float64)[cols],
        row_lower=np.where(np.isinf(row_lower), -INF, row_lower - activity)[live_rows],
        row_upper=np.where(np.isinf(row_upper), INF, row_upper - activity)[live_rows],
        start=sub_start,
        index=new_row[index[kept_entry]].astype(np.int64),
        value=value[kept_entry],
        n_int=int(np.count_nonzero(cols < n_int)),
    )
    return sub, np.where(live_rows, new_row, -1).astype(np.int64), activity.astype(np.float64)
