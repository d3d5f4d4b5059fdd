"""From a snapshot of the cluster to the writes that make it match a new plan (pure).

Owns ``decide``, a short orchestrator over named phases, each a function with its own tests:

1. validate the objects (``validate``): an invalid pool or class is reported and its running
   children are left alone; an invalid FleetPolicy pauses planning;
2. index what runs now (``children.index``);
3. autoscaling: measured demand and correction factors per pool (``autoscaling``), then the problem
   through the one bridge (``translate.problem.problem_from``), solved;
4. diff the plan's children against what exists (``children.diff``): nothing changed, no write;
5. order the writes so power never goes over a budget in between (``gate``);
6. statuses and events (``status`` and ``_report`` here).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from inferfleet.api.conditions import ConditionType, EventReason, Reason
from inferfleet.api.kinds import POLICY_NAME
from inferfleet.core import types as core
from inferfleet.core.observed import Observed
from inferfleet.reconcile import autoscaling, children, gate, status
from inferfleet.reconcile.decision import Decision, Event, StatusWrite
from inferfleet.reconcile.ports import Snapshot
from inferfleet.reconcile.validate import Objects, meta, validate
from inferfleet.translate import inventory
from inferfleet.translate.problem import Fleet, Overrides, Running, problem_from

__all__ = ["Decision", "Event", "StatusWrite", "decide"]

Solver = Callable[[core.Problem], core.Plan]


def decide(
    snapshot: Snapshot, now: str, solve: Solver, observed: Mapping[str, Observed] | None = None
) -> Decision:
    """The writes that bring the cluster to a fresh plan.  ``observed``: the metrics of autoscaled
    pools by key (None: the operator has no metrics source)."""
    objects = validate(snapshot)  # 1
    if objects.policy_problem is not None:
        return _paused(snapshot, objects.policy_problem, now)
    existing = children.index(snapshot.deployments, objects)  # 2
    nodes = [
        inventory.node_info_from_manifest(n, snapshot.foreign_used.get(str(meta(n).get("name")), {}))
        for n in snapshot.nodes
    ]
    scalings = autoscaling.evaluate(objects, observed, now)  # 3
    bridged = problem_from(
        Fleet(
            [p for _, p in sorted(objects.pools.items())],
            [c for _, c in sorted(objects.classes.items())],
            [objects.policy] if objects.policy is not None else [],
            nodes,
        ),
        Running(existing.current, existing.frozen_devices),
        Overrides(
            demand_rps={k: s.demand_rps for k, s in scalings.items() if s.demand_rps is not None},
            slo_factors={k: s.slo_factors for k, s in scalings.items() if s.slo_factors},
        ),
    )
    plan = solve(bridged.problem)
    writes = children.diff(plan, objects, existing, snapshot.services)  # 4
    deferred = gate.gate(writes, plan, bridged.problem, snapshot.live_replicas)  # 5
    out = Decision(
        plan=plan,
        reductions=writes.reductions,
        deletes=writes.deletes,
        increases=writes.increases,
        problems=objects.problems,
        deferred=deferred,
        ready=existing.ready,
        resync_s=_resync(objects, scalings),
    )
    _report(out, snapshot, objects, existing, nodes, plan, now, scalings, observed or {})  # 6
    return out


def _resync(objects: Objects, scalings: Mapping[str, autoscaling.Scaling]) -> float | None:
    """The period of rounds without changes: the policy's, and at most EVALUATION_S while any pool
    autoscales (measurements change without any object changing)."""
    interval = float(objects.policy.spec.planning.interval_seconds) if objects.policy else None
    if scalings:
        return min(interval or autoscaling.EVALUATION_S, autoscaling.EVALUATION_S)
    return interval


def _paused(snapshot: Snapshot, problem: str, now: str) -> Decision:
    """An invalid FleetPolicy: say so on it, change nothing else."""
    assert snapshot.policy is not None
    out = Decision(problems=[problem])
    prev = snapshot.policy.get("status") or {}
    gen = meta(snapshot.policy).get("generation")
    cond = status.condition(ConditionType.READY, False, Reason.INVALID_SPEC, problem, gen)
    new = {
        **prev,
        "observedGeneration": gen,
        "conditions": status.merge_conditions(prev.get("conditions"), [cond], now),
    }
    if _differs(prev, new):
        out.statuses.append(StatusWrite("FleetPolicy", None, POLICY_NAME, new))
        out.events.append(Event(snapshot.policy, "Warning", EventReason.INVALID_SPEC, problem))
    return out


def _differs(
    old: Mapping[str, object] | None, new: Mapping[str, object], ignore: tuple[str, ...] = ()
) -> bool:
    a = {k: v for k, v in (old or {}).items() if k not in ignore}
    b = {k: v for k, v in new.items() if k not in ignore and v is not None}
    return a != b


def _report(
    out: Decision,
    snapshot: Snapshot,
    objects: Objects,
    existing: children.Existing,
    nodes: list[inventory.NodeInfo],
    plan: core.Plan,
    now: str,
    scalings: Mapping[str, autoscaling.Scaling],
    observed: Mapping[str, Observed],
) -> None:
    """Phase 6: statuses (written only when they differ) and events for every kind."""
    for pp in plan.pools:
        raw = objects.pool_raw[pp.key]
        m = meta(raw)
        new_counts = {p.accelerator_class: p.replicas for p in pp.placements if p.replicas > 0}
        old_counts = {c: n for c, n in existing.current.get(pp.key, {}).items() if n > 0}
        change = status.change_of(old_counts, new_counts)
        sentence = status.describe(change, pp) if change else None
        ready = {c: existing.ready.get((pp.key, c), 0) for c in new_counts}
        prev = raw.get("status") or {}
        gen = m.get("generation")
        scaling = scalings.get(pp.key)
        block, conds = None, []
        if scaling is not None:
            block = autoscaling.status_block(scaling, autoscaling.seconds(now))
            conds = autoscaling.conditions(scaling, observed.get(pp.key), gen)
            risk = next(
                (c.get("status") for c in prev.get("conditions", []) if c.get("type") == "SLOAtRisk"), None
            )
            for type_, reason, message in autoscaling.events(scaling, observed.get(pp.key), risk):
                out.events.append(Event(raw, "Normal" if type_ == "Normal" else "Warning", reason, message))
        new = status.pool_status(pp, ready, prev, gen, str(m.get("name")), now, sentence, block, conds)
        if _differs(prev, new):
            out.statuses.append(StatusWrite("InferencePool", m.get("namespace"), str(m.get("name")), new))
        if change is not None and sentence is not None:
            out.events.append(Event(raw, "Normal", change.kind.event_reason, sentence))
        prev_placed = next(
            (c.get("reason") for c in prev.get("conditions", []) if c.get("type") == ConditionType.PLACED),
            None,
        )
        if pp.status is not core.PlanStatus.PLACED and pp.status != prev_placed:
            out.events.append(Event(raw, "Warning", EventReason(pp.status), pp.reason or pp.status))
    for key, msg in objects.pool_problems.items():
        raw = objects.pool_raw[key]
        prev = raw.get("status") or {}
        new = status.pool_status_invalid(msg, prev, meta(raw).get("generation"), now)
        if _differs(prev, new):
            out.statuses.append(
                StatusWrite("InferencePool", meta(raw).get("namespace"), str(meta(raw).get("name")), new)
            )
            out.events.append(Event(raw, "Warning", EventReason.INVALID_SPEC, msg))
    uses = {c.name: c for c in plan.classes}
    for raw in snapshot.classes:
        name = str(meta(raw).get("name"))
        valid = objects.classes.get(name)
        matching = [
            n for n in nodes if valid is not None and inventory.matches(valid.spec.node_selector, n.labels)
        ]
        ready_nodes = sum(1 for n in matching if n.ready and n.schedulable)
        prev = raw.get("status") or {}
        gen = meta(raw).get("generation")
        problem = objects.class_problems.get(name)
        new = status.class_status(uses.get(name), len(matching), ready_nodes, prev, gen, now, problem)
        if _differs(prev, new):
            out.statuses.append(StatusWrite("AcceleratorClass", None, name, new))
            if problem is not None:
                out.events.append(Event(raw, "Warning", EventReason.INVALID_SPEC, problem))
    if snapshot.policy is not None:
        prev = snapshot.policy.get("status") or {}
        new = status.policy_status(
            plan, prev, meta(snapshot.policy).get("generation"), now, plan.solver.seconds
        )
        if _differs(prev, new, ignore=("lastPlan",)):
            out.statuses.append(StatusWrite("FleetPolicy", None, str(meta(snapshot.policy).get("name")), new))
