"""Phase 6 of a round: the statuses and events that say what the plan means, for every kind.

Owns building each kind's status from the plan (through ``status`` and, for autoscaled pools,
``autoscaling``), writing it only when it differs from what the object shows, and the events: a
pool's placement change, a plan status other than Placed, the autoscaler's signals, invalid specs.
"""

from __future__ import annotations

from collections.abc import Mapping

from inferfleet.api.conditions import ConditionType, EventReason
from inferfleet.core import types as core
from inferfleet.core.observed import Observed
from inferfleet.reconcile import autoscaling, children, scaling_status, status
from inferfleet.reconcile.decision import Decision, Event, StatusWrite
from inferfleet.reconcile.ports import Snapshot
from inferfleet.reconcile.validate import Objects, meta
from inferfleet.translate import inventory

__all__ = ["differs", "report"]


def differs(
    old: Mapping[str, object] | None, new: Mapping[str, object], ignore: tuple[str, ...] = ()
) -> bool:
    a = {k: v for k, v in (old or {}).items() if k not in ignore}
    b = {k: v for k, v in new.items() if k not in ignore and v is not None}
    return a != b


def report(
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
        _pool(out, objects, existing, pp, now, scalings.get(pp.key), observed.get(pp.key))
    _invalid_pools(out, objects, now)
    _classes(out, snapshot, objects, nodes, plan, now)
    _policy(out, snapshot, plan, now)


def _pool(
    out: Decision,
    objects: Objects,
    existing: children.Existing,
    pp: core.PoolPlan,
    now: str,
    scaling: autoscaling.Scaling | None,
    observed: Observed | None,
) -> None:
    """A planned pool: its status, the placement change and the autoscaler's say as events."""
    raw = objects.pool_raw[pp.key]
    m = meta(raw)
    new_counts = {p.accelerator_class: p.replicas for p in pp.placements if p.replicas > 0}
    old_counts = {c: n for c, n in existing.current.get(pp.key, {}).items() if n > 0}
    change = status.change_of(old_counts, new_counts)
    sentence = status.describe(change, pp) if change else None
    ready = {c: existing.ready.get((pp.key, c), 0) for c in new_counts}
    prev = raw.get("status") or {}
    gen = m.get("generation")
    block, conds = None, []
    if scaling is not None:
        block = scaling_status.status_block(scaling, autoscaling.seconds(now))
        conds = scaling_status.conditions(scaling, observed, gen)
        risk = next(
            (
                c.get("status")
                for c in prev.get("conditions", [])
                if c.get("type") == ConditionType.SLO_AT_RISK
            ),
            None,
        )
        for type_, reason, message in scaling_status.events(scaling, observed, risk):
            out.events.append(Event(raw, "Normal" if type_ == "Normal" else "Warning", reason, message))
    new = status.pool_status(pp, ready, prev, gen, str(m.get("name")), now, sentence, block, conds)
    if differs(prev, new):
        out.statuses.append(StatusWrite("InferencePool", m.get("namespace"), str(m.get("name")), new))
    if change is not None and sentence is not None:
        out.events.append(Event(raw, "Normal", change.kind.event_reason, sentence))
    prev_placed = next(
        (c.get("reason") for c in prev.get("conditions", []) if c.get("type") == ConditionType.PLACED),
        None,
    )
    if pp.status is not core.PlanStatus.PLACED and pp.status != prev_placed:
        out.events.append(Event(raw, "Warning", EventReason(pp.status), pp.reason or pp.status))


def _invalid_pools(out: Decision, objects: Objects, now: str) -> None:
    """An invalid pool: say what to change; its status keeps what runs."""
    for key, msg in objects.pool_problems.items():
        raw = objects.pool_raw[key]
        prev = raw.get("status") or {}
        new = status.pool_status_invalid(msg, prev, meta(raw).get("generation"), now)
        if differs(prev, new):
            out.statuses.append(
                StatusWrite("InferencePool", meta(raw).get("namespace"), str(meta(raw).get("name")), new)
            )
            out.events.append(Event(raw, "Warning", EventReason.INVALID_SPEC, msg))


def _classes(
    out: Decision,
    snapshot: Snapshot,
    objects: Objects,
    nodes: list[inventory.NodeInfo],
    plan: core.Plan,
    now: str,
) -> None:
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
        if differs(prev, new):
            out.statuses.append(StatusWrite("AcceleratorClass", None, name, new))
            if problem is not None:
                out.events.append(Event(raw, "Warning", EventReason.INVALID_SPEC, problem))


def _policy(out: Decision, snapshot: Snapshot, plan: core.Plan, now: str) -> None:
    if snapshot.policy is not None:
        prev = snapshot.policy.get("status") or {}
        new = status.policy_status(
            plan, prev, meta(snapshot.policy).get("generation"), now, plan.solver.seconds
        )
        if differs(prev, new, ignore=("lastPlan",)):
            out.statuses.append(StatusWrite("FleetPolicy", None, str(meta(snapshot.policy).get("name")), new))
