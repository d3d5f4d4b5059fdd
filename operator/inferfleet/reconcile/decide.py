"""From a snapshot of the cluster to the writes that make it match a new plan (pure).

Owns ``decide``, a short orchestrator over named phases, each a function with its own tests:

1. validate the objects (``validate``): an invalid pool or class is reported and its running
   children are left alone; an invalid FleetPolicy pauses planning;
2. index what runs now (``children.index``);
3. autoscaling: measured demand and correction factors per pool (``autoscaling``), then the problem
   through the one bridge (``translate.problem.problem_from``), solved;
4. diff the plan's children against what exists (``children.diff``): nothing changed, no write;
5. order the writes so power never goes over a budget in between (``gate``);
6. pack each class's replicas node by node and pin gated replicas to their nodes (``pinning``);
7. statuses and events (``report``, through ``status`` and ``autoscaling``).

Before 3, the scheduler's feedback (``stuck``): a (pool, class) whose replicas could not be
scheduled for too long is capped at those that did, so the plan places the rest elsewhere.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from inferfleet.api.conditions import ConditionType, EventReason, Reason
from inferfleet.api.kinds import POLICY_NAME
from inferfleet.core import energy
from inferfleet.core import types as core
from inferfleet.core.observed import Observed
from inferfleet.reconcile import autoscaling, children, gate, pinning, report, routing, status, stuck
from inferfleet.reconcile.decision import Decision, Event, StatusWrite
from inferfleet.reconcile.ports import Refusal, Snapshot
from inferfleet.reconcile.validate import Objects, meta, validate
from inferfleet.translate import inventory, readiness
from inferfleet.translate.problem import Fleet, Overrides, Running, problem_from

__all__ = ["Decision", "Event", "StatusWrite", "decide"]

Solver = Callable[[core.Problem], core.Plan]


def decide(
    snapshot: Snapshot,
    now: str,
    solve: Solver,
    observed: Mapping[str, Observed] | None = None,
    refused: Sequence[Refusal] = (),
    seen: Mapping[str, readiness.Seen] | None = None,
    overrides: Overrides | None = None,
    held: Mapping[tuple[str, str], stuck.Stuck] | None = None,
) -> Decision:
    """The writes that bring the cluster to a fresh plan.  ``observed``: the metrics of autoscaled
    pools by key (None: the operator has no metrics source); ``refused``: the child writes of the
    last round that failed (said in the pools' status and events); ``seen``: the nodes' readiness
    as the last round left it (``Decision.seen``; None on the first round); ``overrides``: what-if
    changes (``inferfleet plan --live``): their budgets, prices and time limit apply, their demand
    replaces the autoscaler's, their factors and refusals are added to this round's; ``held``: the
    scheduler's feedback as the last round left it (``Decision.stuck``; None on the first round)."""
    objects = validate(snapshot)  # 1
    rules = _rules(objects)
    verdict = readiness.advance(seen, snapshot.nodes, autoscaling.seconds(now), rules)
    if objects.policy_problem is not None:  # paused: the scheduler's feedback is kept as it was
        return dataclasses.replace(
            _paused(snapshot, objects.policy_problem, now, verdict), stuck=dict(held or {})
        )
    if snapshot.policy is None and _recorded_budgets(snapshot):
        return dataclasses.replace(_policy_missing(snapshot, objects, now, verdict), stuck=dict(held or {}))
    existing = children.index(snapshot.deployments, objects)  # 2
    nodes = [
        inventory.node_info_from_manifest(
            n, snapshot.foreign_used.get(name := str(meta(n).get("name")), {}), verdict.health(name)
        )
        for n in snapshot.nodes
    ]
    scalings = autoscaling.evaluate(objects, observed, now)  # 3
    stuck_now = _stuck(held, snapshot, objects, autoscaling.seconds(now))
    bridged = problem_from(
        Fleet(
            [p for _, p in sorted(objects.pools.items())],
            [c for _, c in sorted(objects.classes.items())],
            [objects.policy] if objects.policy is not None else [],
            nodes,
        ),
        Running(existing.current, existing.frozen_devices),
        _merged(
            Overrides(
                demand_rps={
                    k: demand for k, s in scalings.items() if (demand := s.planned_demand_rps) is not None
                },
                slo_factors={k: s.slo_factors for k, s in scalings.items() if s.slo_factors},
                mix_shares={k: s.mix_shares for k, s in scalings.items() if s.mix_shares is not None},
                refused=children.excluded(refused, existing),
                capped=stuck_now.caps(),
            ),
            overrides,
        ),
    )
    plan = solve(bridged.problem)
    writes = children.diff(plan, objects, existing, snapshot.services)  # 4
    routing.extend(writes, plan, objects.pools, snapshot.services, snapshot.config_maps)
    deferred = gate.gate(writes, plan, bridged.problem, snapshot.live_replicas)  # 5
    wanted = pinning.assignment(plan, bridged.problem, snapshot.placed, snapshot.pending_pods)  # 6
    unpinned = {c.name for c in bridged.problem.classes if not c.node_names}
    pins, unpins = pinning.pins(
        wanted,
        snapshot.placed,
        snapshot.pending_pods,
        autoscaling.seconds(now),
        lambda k: k[1] in unpinned or objects.frozen(*k) or k[0] not in objects.pools,
    )
    out = Decision(
        plan=plan,
        reductions=writes.reductions,
        deletes=writes.deletes,
        increases=writes.increases,
        problems=objects.problems,
        deferred=deferred,
        ready=existing.ready,
        resync_s=_soonest(
            _resync(objects, scalings),
            _first(verdict.due_s(autoscaling.seconds(now)), stuck_now.due_s(autoscaling.seconds(now))),
        ),
        seen=verdict.seen,
        stuck=stuck_now.state,
        pins=pins,
        unpins=unpins,
        assignment=wanted.per_node,
    )
    out.energy, out.fleet_energy = energy.plan_energy(plan, bridged.problem)
    said = dataclasses.replace(
        snapshot, unschedulable={**_unplaced(wanted.unplaced), **snapshot.unschedulable}
    )
    report.report(
        out, said, objects, existing, nodes, plan, now, scalings, observed or {}, refused, verdict, stuck_now
    )  # 7
    return out


def _stuck(
    held: Mapping[tuple[str, str], stuck.Stuck] | None, snapshot: Snapshot, objects: Objects, now: float
) -> stuck.Verdict:
    """The scheduler's feedback one round on: what could not be placed, what did, and the
    generations that end a hold."""
    bound = {k: sum(len(pods) for pods in nodes.values()) for k, nodes in snapshot.placed.items()}
    class_gen = {meta(c).get("name"): meta(c).get("generation") for c in snapshot.classes}

    def generations(key: tuple[str, str]) -> tuple[object, object]:
        pool = objects.pool_raw.get(key[0])
        return (meta(pool).get("generation") if pool is not None else None, class_gen.get(key[1]))

    keys = set(snapshot.unschedulable) | set(held or {})
    rules = stuck.Rules()
    if objects.policy is not None:
        planning = objects.policy.spec.planning
        hold = float(planning.unschedulable_hold_seconds)
        rules = stuck.Rules(float(planning.unschedulable_replan_seconds), rules.gap_s, hold, 6.0 * hold)
    return stuck.advance(held, snapshot.unschedulable, bound, {k: generations(k) for k in keys}, now, rules)


def _first(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)


def _merged(own: Overrides, what_if: Overrides | None) -> Overrides:
    """This round's overrides with the what-if ones on top (None: this round's alone)."""
    if what_if is None:
        return own
    return dataclasses.replace(
        own,
        budgets_kilowatts={**own.budgets_kilowatts, **what_if.budgets_kilowatts},
        prices={**own.prices, **what_if.prices},
        demand_rps={**own.demand_rps, **what_if.demand_rps},
        time_limit_s=own.time_limit_s if what_if.time_limit_s is None else what_if.time_limit_s,
        slo_factors={**own.slo_factors, **what_if.slo_factors},
        mix_shares={**own.mix_shares, **what_if.mix_shares},
        refused={**own.refused, **what_if.refused},
    )


def _unplaced(unplaced: Mapping[tuple[str, str], int]) -> dict[tuple[str, str], tuple[int, str]]:
    """Replicas the packing could not put on any planned node, as the scheduler's words would say."""
    why = "no planned node has room for them as the class's nodes are packed now"
    return {key: (n, why) for key, n in unplaced.items() if n > 0}


def _soonest(resync_s: float | None, due_s: float | None) -> float | None:
    """The next round: at the resync, or as soon as a node's grace period or window ends (plus a
    second, so the clock has passed it), whichever is first."""
    if due_s is None:
        return resync_s
    due = due_s + 1.0
    return due if resync_s is None else min(resync_s, due)


def _rules(objects: Objects) -> readiness.Rules:
    """The validated policy's grace period and stabilization window for nodes (defaults without)."""
    if objects.policy is None:
        return readiness.Rules()
    planning = objects.policy.spec.planning
    return readiness.Rules(
        float(planning.node_not_ready_grace_seconds), float(planning.node_return_stabilization_seconds)
    )


def _resync(objects: Objects, scalings: Mapping[str, autoscaling.Scaling]) -> float | None:
    """The period of rounds without changes: the policy's, and at most its autoscaling interval
    (EVALUATION_S without a policy) while any pool autoscales (measurements change without any
    object changing)."""
    planning = objects.policy.spec.planning if objects.policy else None
    interval = float(planning.interval_seconds) if planning else None
    if scalings:
        every = float(planning.autoscaling_interval_seconds) if planning else autoscaling.EVALUATION_S
        return min(interval or every, every)
    return interval


def _recorded_budgets(snapshot: Snapshot) -> dict[str, int]:
    """Power domain -> the budget the classes' statuses recorded (the tightest, if they differ)."""
    out: dict[str, int] = {}
    for raw in snapshot.classes:
        watts = (raw.get("status") or {}).get("powerBudgetWatts")
        domain = (raw.get("spec") or {}).get("powerDomain")
        if isinstance(watts, int) and isinstance(domain, str):
            out[domain] = min(watts, out.get(domain, watts))
    return out


def _policy_missing(snapshot: Snapshot, objects: Objects, now: str, verdict: readiness.Verdict) -> Decision:
    """Budgets fail closed: the FleetPolicy that set them is gone, so nothing is added, moved or
    removed until it is back (planning without it would lift every budget); every class says so."""
    recorded = _recorded_budgets(snapshot)
    out = Decision(
        problems=[f"FleetPolicy {POLICY_NAME} is missing; planning is paused (budgets fail closed)"],
        seen=verdict.seen,
    )
    for raw in snapshot.classes:
        domain = (raw.get("spec") or {}).get("powerDomain")
        if not isinstance(domain, str):
            continue
        budget = status.ClassBudget(domain, Reason.POLICY_MISSING, recorded.get(domain))
        prev = raw.get("status") or {}
        gen = meta(raw).get("generation")
        new = {**prev, "conditions": _with(prev.get("conditions"), budget.condition(gen), now)}
        if report.differs(prev, new):
            name = str(meta(raw).get("name"))
            out.statuses.append(StatusWrite("AcceleratorClass", None, name, new))
            out.events.append(Event(raw, "Warning", EventReason.POLICY_MISSING, budget.message()))
    return out


def _with(conditions: list[dict[str, Any]] | None, cond: dict[str, Any], now: str) -> list[dict[str, Any]]:
    """The conditions with one of them set (the others kept as they are)."""
    kept = [c for c in conditions or () if c.get("type") != cond["type"]]
    return [*kept, *status.merge_conditions(conditions, [cond], now)]


def _paused(snapshot: Snapshot, problem: str, now: str, verdict: readiness.Verdict) -> Decision:
    """An invalid FleetPolicy: say so on it, change nothing else."""
    assert snapshot.policy is not None
    out = Decision(problems=[problem], seen=verdict.seen)
    prev = snapshot.policy.get("status") or {}
    gen = meta(snapshot.policy).get("generation")
    cond = status.condition(ConditionType.READY, False, Reason.INVALID_SPEC, problem, gen)
    new = {
        **prev,
        "observedGeneration": gen,
        "conditions": _with(prev.get("conditions"), cond, now),
    }
    if report.differs(prev, new):
        out.statuses.append(StatusWrite("FleetPolicy", None, POLICY_NAME, new))
        out.events.append(Event(snapshot.policy, "Warning", EventReason.INVALID_SPEC, problem))
    return out
