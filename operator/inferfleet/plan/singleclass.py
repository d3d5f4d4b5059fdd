"""Single-class fleets: what the fleet would cost on one class alone, the line each class draws
against the mixed plan in ``inferfleet plan --sweep --plot`` (``plan.plots``).

Owns the definition: per class, every pool the class can run placed on it and each pool it cannot
run on that pool's cheapest class, with no budgets or node limits (``core.planner.best_single_class``
without limits, the rule behind the plan's ``bestSingleClassWithoutLimits``), so every class's fleet
serves the same tokens.  Pure: a core ``Problem`` in, frozen dataclasses out; no solver.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from inferfleet.core import types as core
from inferfleet.core.planner import best_single_class

__all__ = ["SingleClassFleet", "single_class_fleets"]


@dataclasses.dataclass(frozen=True)
class SingleClassFleet:
    """A fleet built on one class, with no budgets or node limits (the comparison the plan's
    ``bestSingleClassWithoutLimits`` makes, per class): every pool the class can run on it, and each
    pool it cannot run on the cheapest class that can, so that every line serves the same tokens."""

    name: str
    pools: int  # how many of the fleet's pools run on the class
    others: tuple[str, ...]  # the pools it cannot run (placed on their cheapest class)
    dollars_per_hour: float
    output_tokens_per_second: float

    @property
    def dollars_per_million_output_tokens(self) -> float | None:
        if self.output_tokens_per_second <= 0:
            return None
        return self.dollars_per_hour / (self.output_tokens_per_second * 3600.0) * 1e6


def _on(problem: core.Problem, pools: Sequence[core.Pool], cls: core.AcceleratorClass) -> float | None:
    """$/h of ``pools`` all on ``cls``, no limits (None: some pool's maxReplicas is too low)."""
    options = {
        p.key: tuple(o for o in problem.options.get(p.key, ()) if o.accelerator_class == cls.name)
        for p in pools
    }
    sub = dataclasses.replace(problem, pools=tuple(pools), options=options, classes=(cls,))
    best = best_single_class(sub, respect_limits=False)
    return None if best is None else best[1]


def _cheapest(problem: core.Problem, pool: core.Pool) -> float | None:
    """$/h of one pool on its cheapest class, no limits."""
    best = best_single_class(dataclasses.replace(problem, pools=(pool,)), respect_limits=False)
    return None if best is None else best[1]


def single_class_fleets(problem: core.Problem) -> list[SingleClassFleet]:
    """Per class, its single-class fleet (classes that can run no pool, or whose fleet breaks a
    pool's maxReplicas, are left out; pools no class can run are left out of every fleet)."""
    placeable = [p for p in problem.pools if problem.options.get(p.key)]
    tokens = sum(max(p.demand_rps, 0.0) * p.workload.output_tokens for p in placeable)
    cheapest: dict[str, float | None] = {}
    out = []
    for cls in problem.classes:
        mine = [p for p in placeable if any(o.accelerator_class == cls.name for o in problem.options[p.key])]
        keys = {p.key for p in mine}
        rest = [p for p in placeable if p.key not in keys]
        if not mine:
            continue
        on_class = _on(problem, mine, cls)
        for p in rest:
            if p.key not in cheapest:
                cheapest[p.key] = _cheapest(problem, p)
        elsewhere = [cheapest[p.key] for p in rest]
        if on_class is None or any(c is None for c in elsewhere):
            continue
        dollars = on_class + sum(c for c in elsewhere if c is not None)
        out.append(SingleClassFleet(cls.name, len(mine), tuple(p.key for p in rest), dollars, tokens))
    return out
