"""Statuses, conditions and changes computed from a plan (pure): phase 6 of a round.

Owns the InferencePool status (conditions Ready, Placed, PowerLimited, CapacityLimited, Valid; the
per-class placement; totals; selector; the last change in words), the AcceleratorClass and
FleetPolicy statuses, each built as a dict and passed through its pydantic status model (so a field
the CRD does not have fails here, not silently at the API server's pruning), and the typed
``Change`` of a pool's placement with its sentence ("moved 2 replicas from h100 to mi300x: hall-a
power budget binding").  Conditions keep lastTransitionTime unless their status flips.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping, Sequence
from typing import Any

from inferfleet.api.acceleratorclass import AcceleratorClassStatus
from inferfleet.api.common import Spec
from inferfleet.api.conditions import ConditionType, EventReason, Reason
from inferfleet.api.fleetpolicy import FleetPolicyStatus
from inferfleet.api.inferencepool import InferencePoolStatus
from inferfleet.api.labels import pool_selector
from inferfleet.core import types as core
from inferfleet.core.energy import Energy
from inferfleet.reconcile.ports import Refusal

__all__ = [
    "Change",
    "ClassBudget",
    "ChangeKind",
    "change_of",
    "checked",
    "class_status",
    "condition",
    "describe",
    "describe_change",
    "merge_conditions",
    "policy_status",
    "pool_status",
    "pool_status_invalid",
    "refusal_words",
    "unschedulable_words",
]


MAX_CHANGE = 4096  # status.lastChange.reason
MAX_REFUSAL = 2048  # the refused writes in a condition message (the API allows 32 KiB)


def checked(model: type[Spec], status: Mapping[str, Any]) -> dict[str, Any]:
    """The status as its API model accepts and serialises it."""
    return model.model_validate(status).to_api()


def condition(
    type_: ConditionType, ok: bool, reason: Reason | str, message: str, generation: int | None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": str(type_),
        "status": "True" if ok else "False",
        "reason": str(reason),
        "message": message[:32768],
    }
    if generation is not None:
        out["observedGeneration"] = generation
    return out


def merge_conditions(
    previous: Sequence[Mapping[str, Any]] | None, new: Sequence[dict[str, Any]], now: str
) -> list[dict[str, Any]]:
    """New conditions with lastTransitionTime carried over when the status did not flip."""
    old = {c.get("type"): c for c in previous or ()}
    out = []
    for cond in new:
        before = old.get(cond["type"])
        keep = (
            before is not None and before.get("status") == cond["status"] and before.get("lastTransitionTime")
        )
        out.append({**cond, "lastTransitionTime": before["lastTransitionTime"] if keep and before else now})
    return out


def _binding_words(binding: Sequence[core.Binding]) -> str:
    words = []
    for b in binding:
        if b.kind is core.BindingKind.POWER:
            words.append(f"{b.subject} power budget binding")
        elif b.kind is core.BindingKind.CAPACITY:
            words.append(f"{b.subject} capacity binding")
        elif b.kind is core.BindingKind.MAX_REPLICAS:
            words.append("maxReplicas binding")
        elif b.kind is core.BindingKind.MIN_REPLICAS:
            words.append("minReplicas cannot be met")
        else:
            words.append(f"{b} binding")
    return ", ".join(words)


class ChangeKind(enum.StrEnum):
    PLACED = "Placed"  # nothing ran before
    MOVED = "Moved"  # replicas left some classes for others
    SCALED_UP = "ScaledUp"
    SCALED_DOWN = "ScaledDown"

    @property
    def event_reason(self) -> EventReason:
        if self is ChangeKind.PLACED:
            return EventReason.PLACED
        return EventReason.MOVED if self is ChangeKind.MOVED else EventReason.RESCALED


@dataclasses.dataclass(frozen=True)
class Change:
    """How a pool's replicas per class changed between what runs and the plan."""

    kind: ChangeKind
    old: Mapping[str, int]
    new: Mapping[str, int]


def change_of(old: Mapping[str, int], new: Mapping[str, int]) -> Change | None:
    """The change from ``old`` to ``new`` replicas per class; None when nothing changed."""
    classes = set(old) | set(new)
    delta = {c: new.get(c, 0) - old.get(c, 0) for c in classes}
    if all(d == 0 for d in delta.values()):
        return None
    if not any(old.values()):
        return Change(ChangeKind.PLACED, old, new)
    down = any(d < 0 for d in delta.values())
    up = any(d > 0 for d in delta.values())
    kind = ChangeKind.MOVED if down and up else (ChangeKind.SCALED_UP if up else ChangeKind.SCALED_DOWN)
    return Change(kind, old, new)


def describe(change: Change, plan: core.PoolPlan) -> str:
    """One sentence for events and status.lastChange."""
    old, new = change.old, change.new
    delta = {c: new.get(c, 0) - old.get(c, 0) for c in sorted(set(old) | set(new))}
    down = {c: -d for c, d in delta.items() if d < 0}
    up = {c: d for c, d in delta.items() if d > 0}
    why = _binding_words(plan.binding) or f"demand {plan.demand_rps:g} req/s"
    if change.kind is ChangeKind.PLACED:
        where = ", ".join(f"{n} on {c}" for c, n in sorted(new.items()) if n)
        total = sum(new.values())
        return f"placed {total} replica{'s' if total != 1 else ''} ({where}): {why}"
    if change.kind is ChangeKind.MOVED:
        moved = min(sum(down.values()), sum(up.values()))
        text = f"moved {moved} replica{'s' if moved != 1 else ''} from {', '.join(sorted(down))} to "
        text += ", ".join(sorted(up))
        rest = sum(up.values()) - sum(down.values())
        if rest:
            text += f" ({'+' if rest > 0 else ''}{rest} overall)"
        return f"{text}: {why}"
    if change.kind is ChangeKind.SCALED_UP:
        return "scaled up " + ", ".join(f"+{n} on {c}" for c, n in sorted(up.items())) + f": {why}"
    return "scaled down " + ", ".join(f"-{n} on {c}" for c, n in sorted(down.items())) + f": {why}"


def describe_change(old: Mapping[str, int], new: Mapping[str, int], plan: core.PoolPlan) -> str | None:
    """``describe(change_of(old, new), plan)``; None when the placement did not change."""
    change = change_of(old, new)
    return None if change is None else describe(change, plan)


def refusal_words(refused: Sequence[Refusal]) -> str | None:
    """The pool's refused child writes as one sentence (None: none), bounded for a condition."""
    if not refused:
        return None
    words = "; ".join(f"the API server refused to {r.verb} {r.kind} {r.name}: {r.message}" for r in refused)
    return words[:MAX_REFUSAL]


def unschedulable_words(pending: Mapping[str, tuple[int, str]]) -> str | None:
    """Replicas the scheduler cannot place, per class, with its message (None: none)."""
    if not pending:
        return None
    words = "; ".join(
        f"{n} replica{'s' if n != 1 else ''} on {cls} cannot be scheduled: {why}"
        for cls, (n, why) in sorted(pending.items())
    )
    return words[:MAX_REFUSAL]


def pool_status(
    plan: core.PoolPlan,
    ready: Mapping[str, int],
    previous: Mapping[str, Any] | None,
    generation: int | None,
    pool_name: str,
    now: str,
    change: str | None,
    autoscaling: Mapping[str, Any] | None = None,
    extra_conditions: Sequence[dict[str, Any]] = (),
    *,
    refused: str | None = None,
    unschedulable: str | None = None,
    aside: str | None = None,
    energy: Energy | None = None,
    replica_failure: str | None = None,
) -> dict[str, Any]:
    """The InferencePool status for a plan; ``ready`` is ready replicas per class now;
    ``autoscaling`` and ``extra_conditions`` come from the autoscaling phase; ``refused`` says
    which of its children the API server refused (then Placed and Ready are False, ApplyFailed);
    ``aside``: refused children of classes the plan left out, said in Placed's message."""
    placements: list[dict[str, Any]] = [
        {
            "acceleratorClass": p.accelerator_class,
            "replicas": p.replicas,
            "readyReplicas": min(ready.get(p.accelerator_class, 0), p.replicas),
            "devices": p.devices,
            "watts": round(p.watts),
            "dollarsPerHour": round(p.dollars_per_hour, 2),
            "ttftP95Milliseconds": round(p.ttft_s * 1000, 1),
            "tpotP95Milliseconds": round(p.tpot_s * 1000, 2),
            "requestsPerSecond": round(p.rps_capacity, 3),
            **({"bucketRequestsPerSecond": [round(r, 3) for r in p.bucket_rps]} if p.bucket_rps else {}),
        }
        for p in plan.placements
        if p.replicas > 0
    ]
    replicas = sum(p.replicas for p in plan.placements if p.replicas > 0)
    ready_total = sum(p["readyReplicas"] for p in placements)
    placed = plan.status is core.PlanStatus.PLACED
    power = [b.subject for b in plan.binding if b.kind is core.BindingKind.POWER]
    capacity = [b.subject for b in plan.binding if b.kind is core.BindingKind.CAPACITY]
    all_ready = placed and ready_total >= replicas and refused is None
    if refused is not None:
        ready_reason, ready_words = (
            Reason.APPLY_FAILED,
            f"{ready_total} of {replicas} replicas ready; {refused}",
        )
    elif all_ready:
        ready_reason, ready_words = Reason.ALL_REPLICAS_READY, f"{ready_total} of {replicas} replicas ready"
    elif replica_failure is not None:
        ready_reason, ready_words = (
            Reason.REPLICA_FAILURE,
            f"{ready_total} of {replicas} replicas ready; {replica_failure}",
        )
    elif unschedulable is not None:
        ready_reason, ready_words = (
            Reason.UNSCHEDULABLE,
            f"{ready_total} of {replicas} replicas ready; {unschedulable}",
        )
    elif placed:
        ready_reason, ready_words = Reason.REPLICAS_NOT_READY, f"{ready_total} of {replicas} replicas ready"
    else:
        ready_reason, ready_words = Reason.NOT_PLACED, plan.reason or plan.status
    conds = [
        condition(ConditionType.READY, all_ready, ready_reason, ready_words, generation),
        condition(
            ConditionType.PLACED,
            placed,
            Reason(plan.status),
            (plan.reason or "demand is met at the SLO") + (f"; left out: {aside}" if aside else ""),
            generation,
        )
        if refused is None
        else condition(ConditionType.PLACED, False, Reason.APPLY_FAILED, refused, generation),
        condition(
            ConditionType.POWER_LIMITED,
            bool(power),
            Reason.POWER_BUDGET_BINDING if power else Reason.WITHIN_BUDGET,
            f"power budget binding in {', '.join(power)}" if power else "no power budget limits this pool",
            generation,
        ),
        condition(
            ConditionType.CAPACITY_LIMITED,
            bool(capacity),
            Reason.CAPACITY_BINDING if capacity else Reason.CAPACITY_AVAILABLE,
            f"capacity binding on {', '.join(capacity)}" if capacity else "no node capacity limits this pool",
            generation,
        ),
        condition(ConditionType.VALID, True, Reason.SPEC_VALID, "the spec is valid", generation),
    ]
    last = (previous or {}).get("lastChange")
    status: dict[str, Any] = {
        "observedGeneration": generation,
        "conditions": merge_conditions((previous or {}).get("conditions"), [*conds, *extra_conditions], now),
        "placements": placements,
        "replicas": replicas,
        "readyReplicas": ready_total,
        "watts": round(sum(p.watts for p in plan.placements)),
        "dollarsPerHour": round(sum(p.dollars_per_hour for p in plan.placements), 2),
        "demandRequestsPerSecond": round(plan.demand_rps, 3),
        "placementSummary": ",".join(f"{p['acceleratorClass']}={p['replicas']}" for p in placements)
        or "none",
        "selector": pool_selector(pool_name),
        "lastChange": {"time": now, "reason": change[:MAX_CHANGE]} if change else last,
    }
    if autoscaling is not None:
        status["autoscaling"] = dict(autoscaling)
    if energy is not None:
        status["energy"] = energy_block(energy)
    out = checked(InferencePoolStatus, status)
    if autoscaling is None and (previous or {}).get("autoscaling") is not None:
        out["autoscaling"] = None  # autoscaling was turned off: the merge patch removes the old block
    return out


def replica_failure_words(deployments: Mapping[str, Mapping[str, Any]]) -> str | None:
    """What the Deployment controller says when a ReplicaSet cannot create pods (its
    ``ReplicaFailure`` condition), per Deployment name; None when none fails."""
    said = []
    for name, dep in sorted(deployments.items()):
        for c in (dep.get("status") or {}).get("conditions") or ():
            if c.get("type") == "ReplicaFailure" and c.get("status") == "True":
                said.append(f"Deployment {name} cannot create pods: {c.get('message') or c.get('reason')}")
    return "; ".join(said)[:1024] if said else None


def energy_block(e: Energy) -> dict[str, Any]:
    """A plan's energy figures as status carries them (rounded, so equal plans write nothing)."""

    def sig(x: float | None) -> float | None:
        return None if x is None else float(f"{x:.4g}")

    return {
        "outputTokensPerJoule": sig(e.output_tokens_per_joule),
        "tokensPerJoule": sig(e.tokens_per_joule),
        "dollarsPerMillionOutputTokens": sig(e.dollars_per_million_output_tokens),
        "kilowattHoursPerDay": round(e.facility_kwh_per_day, 1),
        "energyDollarsPerHour": round(e.energy_dollars_per_hour, 2),
        "hardwareDollarsPerHour": round(e.hardware_dollars_per_hour, 2),
    }


def pool_status_invalid(
    message: str, previous: Mapping[str, Any] | None, generation: int | None, now: str
) -> dict[str, Any]:
    """A pool the operator cannot honour: say what to change, leave everything running as it is."""
    conds = [
        condition(ConditionType.READY, False, Reason.INVALID_SPEC, message, generation),
        condition(ConditionType.VALID, False, Reason.INVALID_SPEC, message, generation),
    ]
    status = dict(previous or {})
    status["observedGeneration"] = generation
    status["conditions"] = merge_conditions((previous or {}).get("conditions"), conds, now)
    return checked(InferencePoolStatus, status)


def class_status(
    use: core.ClassUse | None,
    nodes: int,
    ready_nodes: int,
    previous: Mapping[str, Any] | None,
    generation: int | None,
    now: str,
    problem: str | None = None,
    budget: ClassBudget | None = None,
    extra: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """The AcceleratorClass status: nodes, devices, watts, Ready, (``budget``) what its power
    domain's budget is, recorded so that a deleted FleetPolicy cannot silently lift it, and
    (``extra``) the conditions on its nodes as the plan counts them (``node_status``)."""
    devices_total = use.devices_total if use else 0
    if problem:
        cond = condition(ConditionType.READY, False, Reason.INVALID_SPEC, problem, generation)
    elif ready_nodes == 0:
        cond = condition(
            ConditionType.READY,
            False,
            Reason.NO_READY_NODES,
            "no Ready, schedulable node matches nodeSelector",
            generation,
        )
    else:
        cond = condition(
            ConditionType.READY,
            True,
            Reason.NODES_READY,
            f"{ready_nodes} of {nodes} matching nodes ready",
            generation,
        )
    conds = [cond, *extra]
    recorded = (previous or {}).get("powerBudgetWatts")
    if budget is not None:
        conds.append(budget.condition(generation))
        if budget.reason is not Reason.POLICY_MISSING:  # the policy says: record what it says
            recorded = budget.watts if budget.reason is Reason.BUDGET_KNOWN else None
    return checked(
        AcceleratorClassStatus,
        {
            "observedGeneration": generation,
            "nodes": nodes,
            "readyNodes": ready_nodes,
            "devicesTotal": devices_total,
            "devicesUsed": use.devices_used if use else 0,
            "watts": round(use.watts) if use else 0,
            "powerBudgetWatts": recorded,
            "conditions": merge_conditions((previous or {}).get("conditions"), conds, now),
        },
    )


@dataclasses.dataclass(frozen=True)
class ClassBudget:
    """What the plan knows of a class's power budget, as a fact (the sentence is made here)."""

    domain: str
    reason: Reason  # BUDGET_KNOWN, UNBUDGETED, UNKNOWN_POWER_DOMAIN or POLICY_MISSING
    watts: int | None = None
    listed: tuple[str, ...] = ()  # the domains the policy lists

    def message(self) -> str:
        if self.reason is Reason.BUDGET_KNOWN:
            return f"power domain {self.domain}: budget {(self.watts or 0) / 1000:g} kW"
        if self.reason is Reason.UNKNOWN_POWER_DOMAIN:
            return (
                f"power domain {self.domain!r} is not listed in FleetPolicy default "
                f"({', '.join(self.listed)}): nothing new is placed on the class (running replicas are "
                "left as they are); check spec.powerDomain for a typo, add the domain to the policy, or "
                "set the policy's spec.unlistedPowerDomains: Unbudgeted"
            )
        if self.reason is Reason.UNBUDGETED and self.listed:
            return (
                f"power domain {self.domain!r} is not listed in FleetPolicy default "
                f"({', '.join(self.listed)}) and the policy allows unlisted domains "
                "(unlistedPowerDomains: Unbudgeted): the class is planned without a power budget"
            )
        if self.reason is Reason.POLICY_MISSING:
            kw = "unknown" if self.watts is None else f"{self.watts / 1000:g} kW"
            return (
                f"FleetPolicy default is gone; the last accepted budget of {self.domain} ({kw}) holds and "
                "planning is paused (nothing is added, moved or removed) until it is restored; to plan "
                "without budgets, create it with powerDomains: []"
            )
        return f"power domain {self.domain} has no budget (no FleetPolicy lists one)"

    def condition(self, generation: int | None) -> dict[str, Any]:
        ok = self.reason in (Reason.BUDGET_KNOWN, Reason.UNBUDGETED)
        return condition(ConditionType.POWER_BUDGET, ok, self.reason, self.message(), generation)


def policy_status(
    plan: core.Plan,
    previous: Mapping[str, Any] | None,
    generation: int | None,
    now: str,
    duration_s: float,
    extra: Sequence[dict[str, Any]] = (),
    energy: Energy | None = None,
) -> dict[str, Any]:
    """The FleetPolicy status for a plan; ``extra``: further conditions (e.g. NodesHealthy);
    ``energy``: the fleet's energy figures."""
    shed = sum(1 for p in plan.pools if p.status in (core.PlanStatus.SHED, core.PlanStatus.PARTIALLY_SHED))
    over = [
        d.name for d in plan.domains if d.budget_watts is not None and d.used_watts > d.budget_watts + 1e-6
    ]
    cond = (
        condition(
            ConditionType.READY,
            False,
            Reason.OVER_BUDGET,
            f"planned power over budget in {', '.join(over)}",
            generation,
        )
        if over
        else condition(
            ConditionType.READY,
            True,
            Reason.PLANNED,
            f"planned {len(plan.pools)} pools, {shed} shed",
            generation,
        )
    )
    return checked(
        FleetPolicyStatus,
        {
            "observedGeneration": generation,
            "domains": [
                {
                    "name": d.name,
                    **({"budgetWatts": round(d.budget_watts)} if d.budget_watts is not None else {}),
                    "usedWatts": round(d.used_watts),
                }
                for d in plan.domains
            ],
            "watts": round(plan.watts),
            "dollarsPerHour": round(plan.dollars_per_hour, 2),
            **({"energy": energy_block(energy)} if energy is not None else {}),
            "lastPlan": {
                "time": now,
                "durationSeconds": round(duration_s, 3),
                "status": plan.solver.status,
                "method": plan.solver.method,
                "gap": round(plan.solver.gap, 6),
                "pools": len(plan.pools),
                "shedPools": shed,
            },
            "conditions": merge_conditions((previous or {}).get("conditions"), [cond, *extra], now),
        },
    )
