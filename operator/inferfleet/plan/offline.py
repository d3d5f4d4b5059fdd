"""One offline plan: a fleet of API objects and what-if overrides in, the bridged problem and its
plan out.

Owns the path every offline plan takes, so that ``inferfleet plan`` and each point of a sweep
(``plan.sweep``) are the same computation: the one bridge (``translate.problem.problem_from``), then
the planner.  The solver is passed in (``core.planner.solve`` by default) so tests and benchmarks can
give it a time limit or count its calls.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from inferfleet.core import types as core
from inferfleet.translate.problem import Bridged, Fleet, Overrides, problem_from

__all__ = ["Solve", "Solved", "solve_fleet"]

Solve = Callable[[core.Problem], core.Plan]


@dataclasses.dataclass(frozen=True)
class Solved:
    bridged: Bridged
    plan: core.Plan

    @property
    def problem(self) -> core.Problem:
        return self.bridged.problem


def solve_fleet(fleet: Fleet, overrides: Overrides, solve: Solve | None = None) -> Solved:
    """The plan of ``fleet`` under ``overrides``, as ``inferfleet plan`` makes it."""
    if solve is None:
        from inferfleet.core import planner

        solve = planner.solve
    bridged = problem_from(fleet, overrides=overrides)
    return Solved(bridged, solve(bridged.problem))
