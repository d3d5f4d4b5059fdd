"""Phase 5 of a round: the budget-safe order of writes, and which increases must wait.

Owns the rule that keeps live power within budget while a plan is carried out: reductions and
deletions go first; where a power domain could exceed its budget while pods being removed still
run there, that domain's increases wait (the loop re-plans shortly); and increases are applied
biggest replicas first (they are the hardest to place).
"""

from __future__ import annotations

from collections.abc import Mapping

from inferfleet.core import types as core
from inferfleet.reconcile.children import ChildWrites, devices_per_replica, pool_and_class

__all__ = ["gate"]


def _over_budget(plan: core.Plan, problem: core.Problem, live: Mapping[tuple[str, str], int]) -> list[str]:
    """Domains that could exceed their budget during the move: per (pool, class) the larger of the
    pods alive now and the replicas planned, at the planned watts per replica."""
    domain_of = {c.name: c.power_domain for c in problem.classes}
    watts = {(k, o.accelerator_class): o.watts for k, opts in problem.options.items() for o in opts}
    planned = {(pp.key, pl.accelerator_class): pl.replicas for pp in plan.pools for pl in pp.placements}
    over = []
    for domain, budget in sorted(problem.policy.domain_budgets_watts.items()):
        keys = [k for k in set(live) | set(planned) if domain_of.get(k[1]) == domain]
        during = sum(max(live.get(k, 0), planned.get(k, 0)) * watts.get(k, 0.0) for k in keys)
        if during > budget + 1e-6:
            over.append(domain)
    return over


def gate(
    writes: ChildWrites, plan: core.Plan, problem: core.Problem, live: Mapping[tuple[str, str], int]
) -> list[str]:
    """Drop the increases that must wait and order the rest; returns the domains that wait."""
    deferred = _over_budget(plan, problem, live)
    domain_of = {c.name: c.power_domain for c in problem.classes}
    keep = []
    for obj in writes.increases:
        key = pool_and_class(obj) or ("", "")
        cls = key[1]
        adds_pods = obj["kind"] == "Deployment" and obj["spec"]["replicas"] > live.get(key, 0)
        if adds_pods and domain_of.get(cls) in deferred:
            continue
        keep.append(obj)
    writes.increases = sorted(keep, key=devices_per_replica, reverse=True)
    return deferred
