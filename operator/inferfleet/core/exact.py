"""The exact path: lexicographic MILP phases in HiGHS, seeded with a heuristic plan, on one deadline.

Owns the phase loop.  Priority levels are optimised one at a time, highest first: minimise the
level's normalised shed (shed fractions plus missing-minimum fractions of its pools) with every
higher level capped, then minimise cost with all levels capped.  A level the plan in hand already
serves in full is capped at zero without a solve (nothing can beat zero).

What a phase hands on is always an integral plan, never HiGHS's raw point: its replica counts
rounded, every other column recomputed from them (:meth:`~inferfleet.core.milp.HighsModel.full_vector`,
the packing columns from HiGHS's own packing when it holds them), checked against every row
(``FEASIBLE`` relative) and kept only if it is lexicographically no worse than the plan before.  A
level's cap is that plan's level recomputed from its counts, plus float noise (``CAP_SLACK``), so
the plan stays feasible for every later phase, which therefore never does worse than it; capping at
HiGHS's raw objective instead sits up to a primal tolerance per pool below what the counts imply
and forces later phases off the optimum.

Tolerances: a level phase runs with ``mip_rel_gap`` 0 and ``mip_abs_gap`` ``LEVEL_GAP``, so a level
HiGHS proves optimal is optimal to ``LEVEL_GAP`` normalised units (a millionth of one pool's
demand); the cost phase to ``mip_rel_gap`` (1e-4).  The status is ``Optimal`` only when every phase
that ran was proven.  The bound is HiGHS's dual bound of the cost phase: a lower bound on the cost
of every plan whose levels are all within this plan's caps, which contains the lexicographic
optimum when every level phase was proven (each cap is then at least the optimum's level).

Time: every phase runs against one ``deadline`` (``time.perf_counter()`` seconds); a phase cut short
keeps the best plan found so far.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import numpy.typing as npt

from inferfleet.core.formulation import Compiled
from inferfleet.core.milp import HighsModel, SolveResult
from inferfleet.core.objectives import cost_vector, level_vector
from inferfleet.core.relax import Outcome

__all__ = ["CAP_SLACK", "FEASIBLE", "LEVEL_GAP", "solve_exact"]

FloatArray = npt.NDArray[np.float64]
log = logging.getLogger(__name__)
LEVEL_GAP = 1e-6  # absolute, normalised shed units: a level proven within this is optimal
CAP_SLACK = 1e-9  # a level's cap above its value from the counts, relative
FEASIBLE = 1e-6  # largest relative row violation of a rounded plan that is accepted
MIN_RUN_S = 0.005  # a phase given less than this is not started
# of the time left, what the level phases still to run share equally at most: the cost phase keeps
# the rest, enough for HiGHS's root node on these models (whose cut rounds do not look at the clock)
LEVEL_SHARE = 0.6
# HiGHS's root heuristics (RENS, RINS sub-MIPs) do not look at the clock: on a run shorter than this
# they overshoot its limit by up to 0.25 s (measured on 1,500-column models), so it runs without them
SHORT_RUN_S = 0.5
HEURISTIC_EFFORT = 0.05  # HiGHS's default


def solve_exact(comp: Compiled, deadline: float, start: Outcome, *, mip_rel_gap: float = 1e-4) -> Outcome:
    """Lexicographically optimal replica counts (module notes) or the best found by ``deadline``."""
    model = HighsModel(comp, integer=True, mip_rel_gap=mip_rel_gap)
    # HiGHS 1.15's MIP presolve, given a start (an objective cutoff), can prune the optimum of these
    # models and still report Optimal (found by the brute-force property test); without presolve the
    # answer is right and these models stay fast.
    model.highs.set_option("presolve", "off")
    lay = model.layout
    cost = cost_vector(comp, lay)
    x = model.full_vector(np.round(start.n))
    levels = lay.level_values(x)
    statuses: list[str] = []
    moved = False  # whether a phase's plan replaced the start
    to_run = [k for k in range(len(levels)) if len(lay.level_cols[k])]
    for k in range(len(levels)):
        if len(lay.level_cols[k]) == 0:
            continue
        if levels[k] > 0.0:
            # an equal share of LEVEL_SHARE of what is left per level still to run: the cost phase
            # always gets some time (and so a bound)
            later = sum(1 for j in to_run if j >= k)
            share = LEVEL_SHARE * (deadline - time.perf_counter()) / later
            model.highs.set_option("mip_rel_gap", 0.0)
            model.highs.set_option("mip_abs_gap", LEVEL_GAP)
            model.set_costs(level_vector(lay, k))
            res = _run(model, min(deadline, time.perf_counter() + share), x)
            statuses.append(res.status)
            got = _integral(model, res)
            if got is not None:
                got_levels = lay.level_values(got)
                if not np.all(got_levels[:k] <= _caps(levels[:k])):
                    log.debug("level %d: plan over a higher level's cap rejected", k)
                elif got_levels[k] < levels[k]:
                    x, levels, moved = got, got_levels, True
            # HiGHS's point may undercut its rows by its tolerance per pool (1e-7): allow that
            if res.status == "Optimal" and levels[k] > res.objective + LEVEL_GAP + FEASIBLE * len(
                lay.level_cols[k]
            ):
                statuses[-1] = "Unproven"  # HiGHS's optimum did not survive rounding: say so
            log.debug("level %d: %s %.9g", k, res.status, levels[k])
        model.set_level_bound(k, float(_caps(levels[k : k + 1])[0]))
    model.highs.set_option("mip_rel_gap", mip_rel_gap)
    model.highs.set_option("mip_abs_gap", 1e-6)
    model.set_costs(cost)
    res = _run(model, deadline, x)
    statuses.append(res.status)
    got = _integral(model, res)
    if got is not None and not np.all(lay.level_values(got) <= _caps(levels)):
        log.debug("cost: plan over a level's cap rejected")
    elif got is not None and cost @ got < cost @ x - 1e-9 * max(1.0, abs(float(cost @ x))):
        x, moved = got, True  # an equal-cost plan keeps the start (what runs now wins ties)
    objective = float(cost @ x)
    if res.status == "Optimal" and objective > res.objective + mip_rel_gap * abs(objective) + 1e-6:
        statuses[-1] = "Unproven"
    # HiGHS's dual bound holds for every plan within the caps; costs are >= 0 (moves >= 0)
    bound = max(0.0, float(res.bound)) if res.status in ("Optimal", "TimeLimit") else 0.0
    status = "Optimal"
    if any(s not in ("Optimal", "TimeLimit") for s in statuses):
        status = "Heuristic"  # HiGHS failed a phase, or its optimum was lost: say so
        plan_of = "milp" if moved else start.method
        log.warning("exact path: HiGHS phases %s; the plan is %s", statuses, plan_of)
    elif "TimeLimit" in statuses:
        status = "TimeLimit"
    return Outcome(
        n=x[: lay.n_rep],
        levels=lay.level_values(x),
        objective=objective,
        bound=min(bound, objective),
        status=status,
        method="milp" if moved or status == "Optimal" else start.method,
    )


def _caps(levels: FloatArray) -> FloatArray:
    """The caps of levels whose plan-derived values are ``levels`` (float noise above; a level at
    zero is capped at zero, which its shed and missing-minimum columns reach exactly)."""
    return np.asarray(levels * (1.0 + CAP_SLACK), dtype=np.float64)


def _run(model: HighsModel, deadline: float, x: FloatArray) -> SolveResult:
    left = deadline - time.perf_counter()
    if left < MIN_RUN_S:
        return SolveResult(np.zeros(0), float("inf"), float("-inf"), "TimeLimit")
    model.highs.set_option("mip_heuristic_effort", HEURISTIC_EFFORT if left >= SHORT_RUN_S else 0.0)
    return model.run(left, x)


def _integral(model: HighsModel, res: SolveResult) -> FloatArray | None:
    """HiGHS's point as an integral plan (counts rounded, the rest implied), or ``None`` when it
    has none or the rounded plan breaks a row."""
    if not res.ok:
        return None
    x = model.full_vector(np.round(res.values[: model.layout.n_rep]), res.values)
    if model.violation(x) > FEASIBLE:
        log.debug("rounded plan rejected: violation %.3g", model.violation(x))
        return None
    return x
