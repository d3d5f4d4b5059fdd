"""The report of ``inferfleet plan``: one JSON document (docs/plan-output.md), and tables from it.

Owns turning a plan, its problem, the notes and the comparison with single-class fleets into the
stable, versioned JSON document, and rendering that one document as human tables (one source of
truth for both outputs).  It solves nothing: comparisons arrive as data (``core.compare``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from inferfleet.core import types as core
from inferfleet.core.compare import Comparison, SingleClass
from inferfleet.core.energy import Energy, plan_energy

__all__ = [
    "SCHEMA_VERSION",
    "document",
    "energy",
    "energy_line",
    "placement",
    "pool_head",
    "render_table",
    "solver",
    "table",
]

SCHEMA_VERSION = "inferfleet.dev/plan/v1"


def _round(x: float, digits: int = 2) -> float:
    return round(x, digits)


def pool_head(pp: core.PoolPlan) -> dict[str, Any]:
    """What both reports say first of a planned pool: who it is, its plan status, demand, served."""
    namespace, _, name = pp.key.partition("/")
    return {
        "namespace": namespace,
        "name": name,
        "status": str(pp.status),
        "reason": pp.reason,
        "binding": [str(b) for b in pp.binding],
        "demandRequestsPerSecond": _round(pp.demand_rps, 3),
        "servedRequestsPerSecond": _round(pp.served_rps, 3),
    }


def placement(pl: core.Placement) -> dict[str, Any]:
    """One placement of the document (rounded as the operator rounds it in status)."""
    return {
        "class": pl.accelerator_class,
        "replicas": pl.replicas,
        "devices": pl.devices,
        "watts": round(pl.watts),
        "dollarsPerHour": _round(pl.dollars_per_hour),
        "requestsPerSecond": _round(pl.rps_capacity, 3),
        "ttftP95Milliseconds": _round(pl.ttft_s * 1000, 1),
        "tpotP95Milliseconds": _round(pl.tpot_s * 1000, 2),
        # size-aware pools: req/s of each requestMix bucket routed to the class
        **({"bucketRequestsPerSecond": [_round(r, 3) for r in pl.bucket_rps]} if pl.bucket_rps else {}),
    }


def _maybe(x: float | None, digits: int) -> float | None:
    return None if x is None else round(x, digits)


def energy(e: Energy) -> dict[str, Any]:
    """The energy block of a pool or of the fleet (docs/plan-output.md#energy)."""
    return {
        "requestsPerSecond": _round(e.requests_per_second, 3),
        "outputTokensPerSecond": _round(e.output_tokens_per_second, 1),
        "tokensPerSecond": _round(e.tokens_per_second, 1),
        "watts": round(e.watts),
        "kilowattHoursPerDay": _round(e.kwh_per_day, 1),
        "facilityKilowattHoursPerDay": _round(e.facility_kwh_per_day, 1),
        "hardwareDollarsPerHour": _round(e.hardware_dollars_per_hour),
        "energyDollarsPerHour": _round(e.energy_dollars_per_hour, 3),
        "outputTokensPerJoule": _maybe(e.output_tokens_per_joule, 4),
        "tokensPerJoule": _maybe(e.tokens_per_joule, 4),
        "dollarsPerMillionOutputTokens": _maybe(e.dollars_per_million_output_tokens, 4),
        "dollarsPerMillionTokens": _maybe(e.dollars_per_million_tokens, 4),
    }


def solver(stats: core.SolverStats) -> dict[str, Any]:
    return {
        "status": stats.status,
        "method": stats.method,
        "objective": _round(stats.objective, 4),
        "bound": _round(stats.bound, 4),
        "gap": round(stats.gap, 6),
        "seconds": round(stats.seconds, 4),
    }


def document(
    plan: core.Plan, problem: core.Problem, notes: Sequence[object], comparison: Comparison
) -> dict[str, Any]:
    """The stable JSON document of docs/plan-output.md (``notes`` render with ``str``)."""
    per_pool, fleet = plan_energy(plan, problem)
    pools = []
    for pp in plan.pools:
        pools.append(
            {
                **pool_head(pp),
                "placements": [placement(pl) for pl in pp.placements],
                "unfit": {c: u.reason for c, u in sorted(problem.unfit.get(pp.key, {}).items())},
                "energy": energy(per_pool[pp.key]),
            }
        )
    return {
        "schema": SCHEMA_VERSION,
        "pools": pools,
        "domains": [
            {
                "name": d.name,
                "budgetWatts": None if d.budget_watts is None else round(d.budget_watts),
                "usedWatts": round(d.used_watts),
            }
            for d in plan.domains
        ],
        "classes": [
            {
                "name": c.name,
                "devicesTotal": c.devices_total,
                "devicesUsed": c.devices_used,
                "watts": round(c.watts),
            }
            for c in plan.classes
        ],
        "totals": {"watts": round(plan.watts), "dollarsPerHour": _round(plan.dollars_per_hour)},
        "energy": energy(fleet),
        "bestSingleClass": _single(comparison.within_limits),
        "bestSingleClassWithoutLimits": _single(comparison.without_limits),
        "solver": solver(plan.solver),
        "notes": [str(n) for n in notes],
    }


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


def _single(best: SingleClass | None) -> dict[str, Any] | None:
    if best is None:
        return None
    return {
        "class": best.name,
        "dollarsPerHour": _round(best.dollars_per_hour),
        "savingPercent": _round(100.0 * best.saving, 1),
    }


def energy_line(e: dict[str, Any]) -> str:
    """One line of an energy block: kWh a day, energy and hardware $/h, tokens per joule, $/M tokens."""
    parts = [
        f"{e['kilowattHoursPerDay']:,.0f} kWh/day ({e['facilityKilowattHoursPerDay']:,.0f} with PUE)",
        f"energy ${e['energyDollarsPerHour']:.2f}/h + hardware ${e['hardwareDollarsPerHour']:.2f}/h",
    ]
    if e["outputTokensPerJoule"] is not None and e["outputTokensPerSecond"] > 0:
        parts.append(f"{e['outputTokensPerJoule']:.3g} output tokens/J")
    elif e["tokensPerJoule"] is not None:
        parts.append(f"{e['tokensPerJoule']:.3g} tokens/J")
    if e["dollarsPerMillionOutputTokens"] is not None:
        parts.append(f"${e['dollarsPerMillionOutputTokens']:.3g} per million output tokens")
    elif e["dollarsPerMillionTokens"] is not None:
        parts.append(f"${e['dollarsPerMillionTokens']:.3g} per million tokens")
    return ", ".join(parts)


def render_table(doc: dict[str, Any]) -> str:
    """Human tables from the JSON document (one renderer of one source of truth)."""
    out: list[str] = []
    for pool in doc["pools"]:
        out.append(
            f"InferencePool {pool['namespace']}/{pool['name']}: {pool['status']}, "
            f"{pool['servedRequestsPerSecond']:g} of {pool['demandRequestsPerSecond']:g} req/s planned"
            + (f" — {pool['reason']}" if pool["reason"] else "")
        )
        rows = [
            [
                p["class"],
                str(p["replicas"]),
                str(p["devices"]),
                f"{p['watts'] / 1000:.2f}",
                f"{p['dollarsPerHour']:.2f}",
                f"{p['requestsPerSecond']:.1f}",
                f"{p['ttftP95Milliseconds']:.0f}",
                f"{p['tpotP95Milliseconds']:.1f}",
            ]
            for p in pool["placements"]
        ]
        if rows:
            headers = ["CLASS", "REPLICAS", "DEVICES", "KW", "$/H", "REQ/S", "TTFT-P95-MS", "TPOT-P95-MS"]
            out.append("  " + table(headers, rows).replace("\n", "\n  "))
            out.append(f"  energy: {energy_line(pool['energy'])}")
            split = [p for p in pool["placements"] if "bucketRequestsPerSecond" in p]
            if split:
                out.append(
                    "  size-aware split, req/s per requestMix bucket: "
                    + "; ".join(
                        f"{p['class']} " + " ".join(f"{r:g}" for r in p["bucketRequestsPerSecond"])
                        for p in split
                    )
                )
        out.append("")
    rows = []
    for d in doc["domains"]:
        budget = d["budgetWatts"]
        use = f"{100 * d['usedWatts'] / budget:.0f}%" if budget else "-"
        rows.append(
            [
                d["name"],
                f"{d['usedWatts'] / 1000:.2f}",
                "-" if budget is None else f"{budget / 1000:.2f}",
                use,
            ]
        )
    out.append(table(["POWER-DOMAIN", "USED-KW", "BUDGET-KW", "USE"], rows))
    out.append("")
    totals = doc["totals"]
    out.append(f"Fleet: {totals['watts'] / 1000:.2f} kW, ${totals['dollarsPerHour']:.2f}/h")
    out.append(f"Energy: {energy_line(doc['energy'])}")
    for key, label in (
        ("bestSingleClass", "within budgets and nodes"),
        ("bestSingleClassWithoutLimits", "with no budgets or node limits (vs. the mix under the same)"),
    ):
        best = doc[key]
        if best:
            out.append(
                f"Best single class {label}: {best['class']} at ${best['dollarsPerHour']:.2f}/h "
                f"(this plan saves {best['savingPercent']:.1f}%)"
            )
        else:
            out.append(f"Best single class {label}: none can carry the whole fleet")
    s = doc["solver"]
    out.append(
        f"Solver: {s['status']} ({s['method']}), gap {100 * s['gap']:.3f}%, {s['seconds'] * 1000:.0f} ms"
    )
    for note in doc["notes"]:
        out.append(f"note: {note}")
    return "\n".join(out)
