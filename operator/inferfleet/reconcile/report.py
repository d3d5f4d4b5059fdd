"""Phase 6 of a round: the statuses and events that say what the plan means, for every kind.

Owns building each kind's status from the plan (through ``status`` and, for autoscaled pools,
``autoscaling``), writing it only when it differs from what the object shows, and the events: a
pool's placement change, a plan status other than Placed, the autoscaler's signals, invalid specs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from inferfleet.api.conditions import ConditionType, EventReason, Reason
from inferfleet.core import types as core
from inferfleet.core.observed import Observed
from inferfleet.reconcile import autoscaling, children, node_status, scaling_status, status, stuck
from inferfleet.reconcile.decision import Decision, Event, StatusWrite
from inferfleet.reconcile.ports import Refusal, Snapshot
from inferfleet.reconcile.validate import Objects, meta
from inferfleet.translate import inventory, readiness
from inferfleet.translate.objects import watts as objects_watts

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
    refused: Sequence[Refusal] = (),
    verdict: readiness.Verdict | None = None,
    held: stuck.Verdict | None = None,
) -> None:
    """Phase 6: statuses (written only when they differ) and events for every kind; ``verdict``:
    the nodes' health as the plan counted it (None: NodesReady is not reported); ``held``: the
    options capped because their replicas could not be scheduled (said in Placed's message, and
    once as a Replanned event when the hold begins)."""
    by_pool: dict[str, list[Refusal]] = {}
    for r in refused:
        by_pool.setdefault(r.pool, []).append(r)
    left_out = children.excluded(refused, existing)
    caps = held.caps() if held is not None else {}
    for key, cls in held.started if held is not None else ():
        raw = objects.pool_raw.get(key)
        if raw is not None:
            words = f"{cls}: {caps[key][cls][1]}; the rest of the pool is planned on other classes"
            out.events.append(Event(raw, "Warning", EventReason.REPLANNED, words))
    for pp in plan.pools:
        waiting = {c: v for (k, c), v in snapshot.unschedulable.items() if k == pp.key}
        capped = "; ".join(f"{c}: {why}" for c, (_, why) in sorted(caps.get(pp.key, {}).items()))
        _pool(
            out,
            objects,
            existing,
            pp,
            now,
            scalings.get(pp.key),
            observed.get(pp.key),
            by_pool.get(pp.key, []),
            status.unschedulable_words(waiting),
            set(left_out.get(pp.key, {})),
            capped or None,
        )
    _invalid_pools(out, objects, now)
    _classes(out, snapshot, objects, nodes, plan, now, verdict)
    _policy(out, snapshot, plan, now, verdict)


def _pool(
    out: Decision,
    objects: Objects,
    existing: children.Existing,
    pp: core.PoolPlan,
    now: str,
    scaling: autoscaling.Scaling | None,
    observed: Observed | None,
    refused: Sequence[Refusal] = (),
    unschedulable: str | None = None,
    left_out: set[str] | None = None,
    capped: str | None = None,
) -> None:
    """A planned pool: its status, the placement change and the autoscaler's say as events; a
    child the API server refused makes it Placed=False (ApplyFailed) with the server's words, and
    replicas the scheduler cannot place make it Ready=False (Unschedulable) with the scheduler's.
    A refused class the plan left out (``left_out``) while the pool is placed on others: Placed
    stays the plan's, its message says which class was refused and why, and an event says it once."""
    raw = objects.pool_raw[pp.key]
    m = meta(raw)
    new_counts = {p.accelerator_class: p.replicas for p in pp.placements if p.replicas > 0}
    old_counts = {c: n for c, n in existing.current.get(pp.key, {}).items() if n > 0}
    classes = sorted(set(new_counts) | set(old_counts))
    # said: what this round carries out (an increase the gate holds back is said when it is applied)
    change = status.change_of(old_counts, _carried_out(pp.key, old_counts, new_counts, out.increases))
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
    placed_elsewhere = any(p.replicas > 0 for p in pp.placements)
    aside = [r for r in refused if placed_elsewhere and r.accelerator_class in (left_out or set())]
    failure = status.refusal_words([r for r in refused if r not in aside])
    note = status.refusal_words(aside)
    failing = status.replica_failure_words(
        {str(meta(d).get("name")): d for d in (existing.deployments.get((pp.key, c)) for c in classes) if d}
    )
    said_aside = "; ".join(w for w in (note, capped) if w) or None
    new = status.pool_status(
        pp,
        ready,
        prev,
        gen,
        str(m.get("name")),
        now,
        sentence,
        block,
        conds,
        refused=failure,
        unschedulable=unschedulable,
        aside=said_aside,
        energy=out.energy.get(pp.key),
        replica_failure=failing,
    )
    if differs(prev, new):
        out.statuses.append(StatusWrite("InferencePool", m.get("namespace"), str(m.get("name")), new))
    if failure is not None:
        before: dict[str, Any] = next(
            (c for c in prev.get("conditions", []) if c.get("type") == ConditionType.PLACED), {}
        )
        if before.get("reason") != Reason.APPLY_FAILED:  # once while it fails, however the words change
            out.events.append(Event(raw, "Warning", EventReason.APPLY_FAILED, failure))
    if note is not None and failure is None:
        before = next((c for c in prev.get("conditions", []) if c.get("type") == ConditionType.PLACED), {})
        if note not in str(before.get("message", "")):
            out.events.append(Event(raw, "Warning", EventReason.APPLY_FAILED, note))
    if failing is not None and failure is None:
        before = next((c for c in prev.get("conditions", []) if c.get("type") == ConditionType.READY), {})
        if before.get("reason") != Reason.REPLICA_FAILURE:  # once while it fails
            out.events.append(Event(raw, "Warning", EventReason.REPLICA_FAILURE, failing))
    if unschedulable is not None and failure is None:
        before = next((c for c in prev.get("conditions", []) if c.get("type") == ConditionType.READY), {})
        if (before.get("reason"), before.get("message")) != (Reason.UNSCHEDULABLE, _ready_message(new)):
            out.events.append(Event(raw, "Warning", EventReason.UNSCHEDULABLE, unschedulable))
    if failure is None and change is not None and sentence is not None:  # a refused change did not happen
        out.events.append(Event(raw, "Normal", change.kind.event_reason, sentence))
    prev_placed = next(
        (c.get("reason") for c in prev.get("conditions", []) if c.get("type") == ConditionType.PLACED),
        None,
    )
    if pp.status is not core.PlanStatus.PLACED and pp.status != prev_placed:
        out.events.append(Event(raw, "Warning", EventReason(pp.status), pp.reason or pp.status))


def _carried_out(
    key: str, old: Mapping[str, int], new: Mapping[str, int], increases: Sequence[Any]
) -> dict[str, int]:
    """Replicas per class once this round's writes land: a class whose increase is not written
    (its power domain waits for removed pods to go: ``gate``) stays at what runs."""
    written = {
        pc[1]
        for o in increases
        if o.get("kind") == "Deployment" and (pc := children.pool_and_class(o)) is not None and pc[0] == key
    }
    out = {}
    for cls in set(old) | set(new):
        n = new.get(cls, 0)
        if n > old.get(cls, 0) and cls not in written:
            n = old.get(cls, 0)
        if n > 0:
            out[cls] = n
    return out


def _ready_message(pool_status: Mapping[str, Any]) -> str | None:
    return next(
        (c.get("message") for c in pool_status.get("conditions", []) if c.get("type") == ConditionType.READY),
        None,
    )


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
    verdict: readiness.Verdict | None,
) -> None:
    uses = {c.name: c for c in plan.classes}
    valid_classes = list(objects.classes.values())
    owners = inventory.node_owners(valid_classes, nodes)
    shared = inventory.overlaps(valid_classes, nodes)
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
        budget = class_budget(raw, objects)
        extra = []
        if valid is not None:
            if verdict is not None:
                extra.append(node_status.class_nodes(matching, verdict).condition(gen))
            if valid.spec.capacity is None:
                extra.append(
                    node_status.shared_condition(
                        name, shared.get(name, {}), owners, valid.spec.resource_name, gen
                    )
                )
            else:
                extra.append(node_status.override_condition(valid.spec.capacity.nodes, ready_nodes, gen))
        new = status.class_status(
            uses.get(name), len(matching), ready_nodes, prev, gen, now, problem, budget, extra
        )
        for cond in extra:
            if event := node_status.transition_event(prev.get("conditions"), cond):
                out.events.append(Event(raw, event[0], event[1], cond["message"]))
        unlisted = budget is not None and budget.reason is Reason.UNKNOWN_POWER_DOMAIN
        if differs(prev, new):
            out.statuses.append(StatusWrite("AcceleratorClass", None, name, new))
            if problem is not None and not unlisted:  # an unlisted domain has its own event below
                out.events.append(Event(raw, "Warning", EventReason.INVALID_SPEC, problem))
        if (
            budget is not None
            and unlisted
            and _reason_of(prev, ConditionType.POWER_BUDGET) != str(budget.reason)
        ):
            out.events.append(Event(raw, "Warning", EventReason.UNKNOWN_POWER_DOMAIN, budget.message()))


def _reason_of(prev: Mapping[str, Any], type_: ConditionType) -> str | None:
    return next((c.get("reason") for c in prev.get("conditions", []) if c.get("type") == type_), None)


def class_budget(raw: Mapping[str, Any], objects: Objects) -> status.ClassBudget | None:
    """What the validated policy says of the class's power domain (None: the class is invalid)."""
    domain = (raw.get("spec") or {}).get("powerDomain")
    if not isinstance(domain, str):
        return None
    listed = {d.name: d for d in objects.policy.spec.power_domains} if objects.policy else {}
    if domain in listed:
        watts = round(objects_watts(float(listed[domain].budget_kilowatts)))
        return status.ClassBudget(domain, Reason.BUDGET_KNOWN, watts)
    if listed:
        allowed = objects.policy is not None and objects.policy.spec.unlisted_power_domains == "Unbudgeted"
        reason = Reason.UNBUDGETED if allowed else Reason.UNKNOWN_POWER_DOMAIN
        return status.ClassBudget(domain, reason, listed=tuple(sorted(listed)))
    return status.ClassBudget(domain, Reason.UNBUDGETED)


def _policy(
    out: Decision, snapshot: Snapshot, plan: core.Plan, now: str, verdict: readiness.Verdict | None
) -> None:
    if snapshot.policy is not None:
        prev = snapshot.policy.get("status") or {}
        gen = meta(snapshot.policy).get("generation")
        healthy = [node_status.fleet_condition(verdict, gen)] if verdict is not None else []
        new = status.policy_status(plan, prev, gen, now, plan.solver.seconds, healthy, out.fleet_energy)
        for cond in healthy:
            if event := node_status.transition_event(prev.get("conditions"), cond):
                out.events.append(Event(snapshot.policy, event[0], event[1], cond["message"]))
        if differs(prev, new, ignore=("lastPlan",)):
            out.statuses.append(StatusWrite("FleetPolicy", None, str(meta(snapshot.policy).get("name")), new))
