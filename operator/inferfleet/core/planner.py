"""The global placement planner: every pool x accelerator class in one optimisation.

Public entry points: :func:`solve` (a :class:`~inferfleet.core.types.Problem` in, a
:class:`~inferfleet.core.types.Plan` out) and :func:`best_single_class` (the cheapest plan that puts
every pool on one class, for "savings vs best single class").

Model (rows in :mod:`~inferfleet.core.formulation`): integer replicas per (pool, option); demand x
headroom met or the rest shed; min/max replicas (the minimum soft, so a budget below it is reported,
never infeasible); whole replicas on one node, exact for any replica size
(:mod:`~inferfleet.core.patterns`: threshold rows where the sizes on a class divide each other, as
powers of two do, per-node packing patterns otherwise); power per budgeted domain; churn =
replicas a pool moves between classes, ``min(added, removed)`` against what runs now
(:func:`~inferfleet.core.cost.moved_replicas`: plain scale-ups and scale-downs move nothing), each
charged ``churn_dollars_per_replica`` once and added to the hourly cost as is.

Request mixes (:mod:`~inferfleet.core.mix`): a pool with buckets and mixed routing plans with the
mixture's rate per option (no new columns); a size-aware pool gets continuous split columns, the
fraction of each bucket each of its options carries, within that option's whole replicas (rows in
:mod:`~inferfleet.core.formulation`), so the split is decided with every other pool's placement,
the budgets and the nodes.  Every path reads a size-aware pool's service off its best split for the
counts (:func:`~inferfleet.core.formulation.split_of`, a small LP per pool).

Objective, lexicographic (:mod:`~inferfleet.core.objectives`): first shed, level by level from the
highest priority down, measured per level as the sum over its pools of shed/need plus missing/min
replicas (so a big pool does not swamp small ones within a level); then $/h + churn, with preferred
options 0.1% cheaper (a tie-breaker that never beats a real saving of more than 0.1%).  Weights
alone cannot make this exact: shedding an epsilon of a high level to spare whole low-level pools
needs ever bigger weights, and weights above ~1e10 break the simplex; hence phases.

* ``milp`` (exact, :mod:`~inferfleet.core.exact`): HiGHS phases, one per priority level that sheds,
  then cost, each capping the levels before it at the value recomputed from the previous phase's
  rounded counts; seeded with the relaxation's plan; one thread and a fixed seed.  ``Optimal``: every
  level optimal to ``exact.LEVEL_GAP`` (1e-6 of one pool) and cost within ``mip_rel_gap`` 1e-4, the
  bound a true lower bound on the lexicographic optimum's cost; otherwise TimeLimit (the bound then
  holds for every plan no worse than this one at any level) or, should HiGHS fail a phase,
  Heuristic, with ``method`` naming where the plan came from.
* ``heuristic`` (large fleets, :mod:`~inferfleet.core.relax`): LP relaxation with pool MIR and
  drop-credit cuts, rounding and a MILP over the pools the LP left fractional.  Levels are steered
  by weights there (each level 10-1000x the one below), so a higher level may shed a sliver to
  spare far more of a lower one.  Its bound is the cut LP's cost with every pool's shed capped at
  this plan's: the gap says how far the cost is from the cheapest plan serving every pool as well,
  not whether less shed was possible.  Moves are a concave charge (a pool that scales down is
  credited what it removes), so this bound is looser where many running pools could move (about
  1% on the benchmark fleet, against 0.2-0.8% when every removed replica was charged).
* ``auto``: ``milp`` up to ``AUTO_MILP_COLUMNS`` (pool, option) columns, else ``heuristic``.

Time: compiling, every solver phase and the explanation work to one deadline, ``time_limit_s``
after the call (the phases stop ``FINISH_S`` plus ``FINISH_PER_POOL_S`` a pool, or
``FINISH_PER_COMPILE`` times what compiling took when the machine is slower, before it, for the
packing check and the explanation); HiGHS overshoots a run's limit by a few hundredths of a second
at most on these models once its root heuristics are off for short runs (``exact.SHORT_RUN_S``).

Determinism: no clock or randomness reaches the answer unless a time limit cuts a solve short (the
status then says TimeLimit for ``milp``; for ``heuristic`` the sub-MILP is bounded by nodes, and
only a limit too short for it makes runs differ).  ``SolverStats.seconds`` always differs.

Known limits: size-aware pools make the MILP much harder to prove than the same pools mixed (on
random fleets of 4-bucket pools over 4 classes: 20 pools Optimal in ~8 s, 100 pools 16% from the
bound after 5 s, against 0.5 s Optimal for the same 100 pools mixed), and their greedy and rounding
solve one split LP per step of a pool (~1 ms each), so at fleet scale they want the longer time
limits.  A shed remainder below float tolerances (1e-7 of a pool) is ignored.  Every path's
plan packs by construction (the exact packing columns, or the greedy placement); the packing check
after the solve (:func:`~inferfleet.core.patterns.fits`, exact) is a safety net that repairs and
says Heuristic.  The plan is exact for packing the nodes as a whole; which replica goes on which
node is the caller's (:func:`~inferfleet.core.patterns.pack` gives one packing).  HiGHS 1.15's MIP
presolve can cut the optimum of these models when given a start, so every MILP here runs without
presolve.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Literal

import numpy as np

from inferfleet.core.exact import solve_exact
from inferfleet.core.explain import build_plan
from inferfleet.core.formulation import compile_problem
from inferfleet.core.heuristic import repair
from inferfleet.core.objectives import plan_cost
from inferfleet.core.patterns import fits
from inferfleet.core.relax import Outcome, solve_relaxation
from inferfleet.core.types import Plan, Problem, SolverStats

__all__ = ["AUTO_MILP_COLUMNS", "Method", "best_single_class", "solve"]

AUTO_MILP_COLUMNS = 2000
Method = Literal["auto", "milp", "heuristic"]


# what is left after the solve: the packing check and the explanation (~30-50 us a pool unloaded,
# about twice what compiling took, however loaded the machine)
FINISH_S = 0.01
FINISH_PER_POOL_S = 6e-5
FINISH_PER_COMPILE = 3.0
START_SHARE = 0.3  # of the exact path's time, at most, for the relaxation that seeds it


def _packs(problem: Problem, comp_n: dict[str, list[int]]) -> bool:
    by_name = {c.name: c for c in problem.classes}
    return all(fits(sizes, by_name[name].node_free_devices) for name, sizes in comp_n.items())


def solve(problem: Problem, *, time_limit_s: float | None = None, method: Method = "auto") -> Plan:
    """Place every pool's replicas across the fleet; see the module notes for the model."""
    t0 = time.perf_counter()
    limit = problem.policy.time_limit_s if time_limit_s is None else time_limit_s
    limit = max(float(limit), 0.05)
    deadline = t0 + limit
    comp = compile_problem(problem)
    if comp.n_pools == 0:
        return build_plan(
            comp, np.zeros(0), SolverStats("Empty", 0.0, 0.0, 0.0, time.perf_counter() - t0, "none")
        )
    chosen = method
    if chosen == "auto":
        chosen = "milp" if comp.n_cols <= AUTO_MILP_COLUMNS else "heuristic"
    # every phase works to one deadline, less what the packing check and explanation take
    compile_s = time.perf_counter() - t0
    solve_by = deadline - FINISH_S - max(FINISH_PER_POOL_S * comp.n_pools, FINISH_PER_COMPILE * compile_s)
    outcome: Outcome
    if comp.n_cols == 0:  # nothing can be placed anywhere: every pool is unplaceable
        outcome = Outcome(np.zeros(0), np.zeros(len(comp.levels)), 0.0, 0.0, "Optimal", chosen)
    elif chosen == "milp":
        now = time.perf_counter()
        start = solve_relaxation(comp, now + START_SHARE * (solve_by - now), bound=False)
        outcome = solve_exact(comp, solve_by, start)
    else:
        outcome = solve_relaxation(comp, solve_by)
    n = np.round(outcome.n)
    sizes: dict[str, list[int]] = {}
    for j in np.flatnonzero(n > 0).tolist():
        sizes.setdefault(comp.class_names[comp.col_class[j]], []).extend([int(comp.devices[j])] * int(n[j]))
    if not _packs(problem, sizes):  # a safety net: every path's plan packs by construction
        n = repair(comp, n)
        outcome = dataclasses.replace(outcome, status="Heuristic", bound=0.0)
    # replicas on a class the pool can no longer use are removed whatever the plan: a constant the
    # models leave out of their removed count (their drop credit still sees them), so it is added
    # to the bound; the objective counts every move itself
    forced = problem.policy.churn_dollars_per_replica * float(comp.churn_current[comp.churn_pair < 0].sum())
    objective = plan_cost(comp, n)
    bound = min(outcome.bound + forced, objective)
    gap = (objective - bound) / max(abs(objective), 1e-9)
    stats = SolverStats(
        status=outcome.status,
        objective=objective,
        bound=bound,
        gap=max(gap, 0.0),
        seconds=time.perf_counter() - t0,
        method=outcome.method,
    )
    return build_plan(comp, n, stats)


def best_single_class(problem: Problem, *, respect_limits: bool = True) -> tuple[str, float] | None:
    """The cheapest class that alone could serve every pool's demand x headroom and minimum.

    Per pool the cheapest option on that class sized to ``max(min, ceil(need / rps))`` replicas
    (within ``max_replicas``).  With ``respect_limits`` the class's domain budget and its nodes
    (first-fit decreasing) must hold the lot; without, only the options matter.  ``None`` when no
    class can carry everything.  Returns ``(class, $/h)``, ties broken by class name.
    """
    headroom = problem.policy.headroom
    budgets = problem.policy.domain_budgets_watts
    best: tuple[str, float] | None = None
    for cls in sorted(problem.classes, key=lambda c: c.name):
        total, watts, sizes = 0.0, 0.0, []
        feasible = True
        for pool in problem.pools:
            need = max(pool.demand_rps, 0.0) * headroom
            if need <= 0 and pool.min_replicas <= 0:
                continue
            choices = []
            for opt in problem.options.get(pool.key, ()):
                if opt.accelerator_class != cls.name or opt.rps <= 0:
                    continue
                reps = max(pool.min_replicas, math.ceil(need / opt.rps - 1e-9))
                if reps <= pool.max_replicas:
                    choices.append((reps * opt.dollars_per_hour, reps, opt.devices, opt.watts))
            if not choices:
                feasible = False
                break
            cost, reps, devices, w = min(choices)
            total += cost
            watts += reps * w
            sizes.extend([devices] * reps)
        if not feasible:
            continue
        if respect_limits:
            budget = budgets.get(cls.power_domain)
            if budget is not None and watts > budget + 1e-6:
                continue
            if not fits(sizes, cls.node_free_devices):
                continue
        if best is None or total < best[1] - 1e-9:
            best = (cls.name, total)
    return best
