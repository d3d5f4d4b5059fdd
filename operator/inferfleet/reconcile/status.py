"""Statuses, conditions and change descriptions computed from a plan (pure).

Owns the InferencePool status (conditions Ready, Placed, PowerLimited, CapacityLimited, Valid; the
per-class placement; totals; selector; the last change in words), the AcceleratorClass and
FleetPolicy statuses, and ``describe_change`` ("moved 2 replicas from h100 to mi300x: hall-a power
budget binding").  Conditions keep lastTransitionTime unless their status flips.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from inferfleet.api.labels import pool_selector
from inferfleet.core import types as core

__all__ = [
    "class_status",
    "condition",
    "describe_change",
    "merge_conditions",
    "policy_status",
    "pool_status",
    "pool_status_invalid",
]


def condition(type_: str, ok: bool, reason: str, message: str, generation: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": type_,
        "status": "True" if ok else "False",
        "reason": reason,
        "message": message,
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


def _binding_words(binding: Sequence[str]) -> str:
    words = []
    for b in binding:
        kind, _, what = b.partition(":")
        if kind == "power":
            words.append(f"{what} power budget binding")
        elif kind == "capacity":
            words.append(f"{what} capacity binding")
        elif kind == "maxReplicas":
            words.append("maxReplicas binding")
        elif kind == "minReplicas":
            words.append("minReplicas cannot be met")
        else:
            words.append(f"{b} binding")
    return ", ".join(words)


def describe_change(old: Mapping[str, int], new: Mapping[str, int], plan: core.PoolPlan) -> str | None:
    """One sentence for events and status.lastChange; None when the placement did not change."""
    classes = sorted(set(old) | set(new))
    delta = {c: new.get(c, 0) - old.get(c, 0) for c in classes}
    if all(d == 0 for d in delta.values()):
        return None
    down = {c: -d for c, d in delta.items() if d < 0}
    up = {c: d for c, d in delta.items() if d > 0}
    why = _binding_words(plan.binding) or f"demand {plan.demand_rps:g} req/s"
    if not any(old.values()):
        where = ", ".join(f"{n} on {c}" for c, n in sorted(new.items()) if n)
        total = sum(new.values())
        return f"placed {total} replica{'s' if total != 1 else ''} ({where}): {why}"
    if down and up:
        moved = min(sum(down.values()), sum(up.values()))
        src = ", ".join(sorted(down))
        dst = ", ".join(sorted(up))
        text = f"moved {moved} replica{'s' if moved != 1 else ''} from {src} to {dst}"
        rest = sum(up.values()) - sum(down.values())
        if rest:
            text += f" ({'+' if rest > 0 else ''}{rest} overall)"
        return f"{text}: {why}"
    if up:
        return "scaled up " + ", ".join(f"+{n} on {c}" for c, n in sorted(up.items())) + f": {why}"
    return "scaled down " + ", ".join(f"-{n} on {c}" for c, n in sorted(down.items())) + f": {why}"


def pool_status(
    plan: core.PoolPlan,
    ready: Mapping[str, int],
    previous: Mapping[str, Any] | None,
    generation: int | None,
    pool_name: str,
    now: str,
    change: str | None,
) -> dict[str, Any]:
    """The InferencePool status for a plan; ``ready`` is ready replicas per class now."""
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
        }
        for p in plan.placements
        if p.replicas > 0
    ]
    replicas = sum(p.replicas for p in plan.placements if p.replicas > 0)
    ready_total = sum(p["readyReplicas"] for p in placements)
    placed = plan.status == "Placed"
    power = [b.split(":", 1)[1] for b in plan.binding if b.startswith("power:")]
    capacity = [b.split(":", 1)[1] for b in plan.binding if b.startswith("capacity:")]
    all_ready = placed and ready_total >= replicas
    conds = [
        condition(
            "Ready",
            all_ready,
            "AllReplicasReady" if all_ready else ("ReplicasNotReady" if placed else "NotPlaced"),
            f"{ready_total} of {replicas} replicas ready" if placed else (plan.reason or plan.status),
            generation,
        ),
        condition("Placed", placed, plan.status, plan.reason or "demand is met at the SLO", generation),
        condition(
            "PowerLimited",
            bool(power),
            "PowerBudgetBinding" if power else "WithinBudget",
            f"power budget binding in {', '.join(power)}" if power else "no power budget limits this pool",
            generation,
        ),
        condition(
            "CapacityLimited",
            bool(capacity),
            "CapacityBinding" if capacity else "CapacityAvailable",
            f"capacity binding on {', '.join(capacity)}" if capacity else "no node capacity limits this pool",
            generation,
        ),
        condition("Valid", True, "SpecValid", "the spec is valid", generation),
    ]
    last = (previous or {}).get("lastChange")
    status: dict[str, Any] = {
        "observedGeneration": generation,
        "conditions": merge_conditions((previous or {}).get("conditions"), conds, now),
        "placements": placements,
        "replicas": replicas,
        "readyReplicas": ready_total,
        "watts": round(sum(p.watts for p in plan.placements)),
        "dollarsPerHour": round(sum(p.dollars_per_hour for p in plan.placements), 2),
        "demandRequestsPerSecond": round(plan.demand_rps, 3),
        "placementSummary": ",".join(f"{p['acceleratorClass']}={p['replicas']}" for p in placements)
        or "none",
        "selector": pool_selector(pool_name),
        "lastChange": {"time": now, "reason": change} if change else last,
    }
    if status["lastChange"] is None:
        del status["lastChange"]
    return status


def pool_status_invalid(
    message: str, previous: Mapping[str, Any] | None, generation: int | None, now: str
) -> dict[str, Any]:
    """A pool the operator cannot honour: say what to change, leave everything running as it is."""
    conds = [
        condition("Ready", False, "InvalidSpec", message, generation),
        condition("Valid", False, "InvalidSpec", message, generation),
    ]
    status = dict(previous or {})
    status["observedGeneration"] = generation
    status["conditions"] = merge_conditions((previous or {}).get("conditions"), conds, now)
    return status


def class_status(
    use: core.ClassUse | None,
    nodes: int,
    ready_nodes: int,
    previous: Mapping[str, Any] | None,
    generation: int | None,
    now: str,
    problem: str | None = None,
) -> dict[str, Any]:
    devices_total = use.devices_total if use else 0
    if problem:
        cond = condition("Ready", False, "InvalidSpec", problem, generation)
    elif ready_nodes == 0:
        cond = condition(
            "Ready", False, "NoReadyNodes", "no Ready, schedulable node matches nodeSelector", generation
        )
    else:
        cond = condition(
            "Ready", True, "NodesReady", f"{ready_nodes} of {nodes} matching nodes ready", generation
        )
    return {
        "observedGeneration": generation,
        "nodes": nodes,
        "readyNodes": ready_nodes,
        "devicesTotal": devices_total,
        "devicesUsed": use.devices_used if use else 0,
        "watts": round(use.watts) if use else 0,
        "conditions": merge_conditions((previous or {}).get("conditions"), [cond], now),
    }


def policy_status(
    plan: core.Plan,
    previous: Mapping[str, Any] | None,
    generation: int | None,
    now: str,
    duration_s: float,
) -> dict[str, Any]:
    shed = sum(1 for p in plan.pools if p.status in ("Shed", "PartiallyShed"))
    over = [
        d.name for d in plan.domains if d.budget_watts is not None and d.used_watts > d.budget_watts + 1e-6
    ]
    cond = (
        condition("Ready", False, "OverBudget", f"planned power over budget in {', '.join(over)}", generation)
        if over
        else condition("Ready", True, "Planned", f"planned {len(plan.pools)} pools, {shed} shed", generation)
    )
    return {
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
        "lastPlan": {
            "time": now,
            "durationSeconds": round(duration_s, 3),
            "status": plan.solver.status,
            "method": plan.solver.method,
            "gap": round(plan.solver.gap, 6),
            "pools": len(plan.pools),
            "shedPools": shed,
        },
        "conditions": merge_conditions((previous or {}).get("conditions"), [cond], now),
    }
