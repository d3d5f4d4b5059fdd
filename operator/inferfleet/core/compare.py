"""How a plan compares with simpler fleets: the best single class, within limits and without.

Owns ``compare``: the cheapest single class that could carry every pool within the budgets and
nodes, the cheapest with no budgets or node limits, and (for the like-for-like side of the latter,
Mélange's comparison) the mixed plan's cost under the same lack of limits, solved once more.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from inferfleet.core.planner import best_single_class
from inferfleet.core.types import UNBOUNDED_NODES, Plan, Problem

__all__ = ["Comparison", "SingleClass", "compare", "unlimited"]


@dataclasses.dataclass(frozen=True)
class SingleClass:
    name: str
    dollars_per_hour: float
    saving: float  # fraction of the single class's cost the compared plan saves (negative: dearer)


@dataclasses.dataclass(frozen=True)
class Comparison:
    within_limits: SingleClass | None  # None: no single class can carry the whole fleet
    without_limits: SingleClass | None
    unlimited_mix_dollars_per_hour: float


def unlimited(problem: Problem) -> Problem:
    """The same problem with no budgets, no node limit, no churn and nothing running."""
    classes = tuple(
        dataclasses.replace(c, node_free_devices=(c.devices_per_node,) * UNBOUNDED_NODES, node_names=())
        for c in problem.classes
    )
    policy = dataclasses.replace(problem.policy, domain_budgets_watts={}, churn_dollars_per_replica=0.0)
    pools = tuple(dataclasses.replace(p, current={}) for p in problem.pools)
    return dataclasses.replace(problem, classes=classes, policy=policy, pools=pools)


def _single(best: tuple[str, float] | None, plan_cost: float) -> SingleClass | None:
    if best is None:
        return None
    saving = 1.0 - plan_cost / best[1] if best[1] > 0 else 0.0
    return SingleClass(best[0], best[1], saving)


def compare(problem: Problem, plan: Plan, solve: Callable[[Problem], Plan]) -> Comparison:
    """``plan`` (of ``problem``) against the best single-class fleets; ``solve`` plans the mix
    without limits."""
    mix = solve(unlimited(problem)).dollars_per_hour
    return Comparison(
        within_limits=_single(best_single_class(problem), plan.dollars_per_hour),
        without_limits=_single(best_single_class(problem, respect_limits=False), mix),
        unlimited_mix_dollars_per_hour=mix,
    )
