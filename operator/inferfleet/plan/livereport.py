"""The report of ``inferfleet plan --live``: one JSON document (docs/plan-output.md, "Live plans"),
and tables from it.

Owns turning a plan and its ``plan.delta.Delta`` against what runs now into the stable, versioned
document (JSON or YAML), and rendering that one document as human tables.  Rounded as the operator
rounds status (watts to the watt, dollars to the cent), so the planned placements compare equal to
the pools' ``status.placements`` when nothing would change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from inferfleet.core import types as core
from inferfleet.plan import report
from inferfleet.plan.delta import Delta

__all__ = ["SCHEMA_VERSION", "document", "paused", "render_table"]

SCHEMA_VERSION = "inferfleet.dev/plan-live/v1"


def _money(x: float) -> float:
    return round(x, 2)


def _figures(current_w: float, planned_w: float, current_usd: float, planned_usd: float) -> dict[str, Any]:
    return {
        "currentWatts": round(current_w),
        "plannedWatts": round(planned_w),
        "deltaWatts": round(planned_w) - round(current_w),
        "currentDollarsPerHour": _money(current_usd),
        "plannedDollarsPerHour": _money(planned_usd),
        "deltaDollarsPerHour": _money(_money(planned_usd) - _money(current_usd)),
    }


def _head(cluster: Mapping[str, Any], what_if: Mapping[str, Mapping[str, float]]) -> dict[str, Any]:
    return {
        "schema": SCHEMA_VERSION,
        "cluster": dict(cluster),
        "whatIf": {k: dict(v) for k, v in what_if.items()},
    }


def document(
    plan: core.Plan,
    delta: Delta,
    *,
    cluster: Mapping[str, Any],
    what_if: Mapping[str, Mapping[str, float]],
    problems: Sequence[str] = (),
) -> dict[str, Any]:
    """The live plan's document: ``cluster`` says where and when it was read, ``what_if`` the flags'
    values, ``problems`` what the operator would log (invalid pools or classes, left as they are)."""
    rows: dict[str, list[dict[str, Any]]] = {}
    for r in delta.replicas:
        rows.setdefault(r.pool, []).append(
            {"class": r.accelerator_class, "current": r.current, "planned": r.planned, "delta": r.delta}
        )
    pools = []
    for pp in plan.pools:
        pools.append(
            {
                **report.pool_head(pp),
                "replicas": rows.pop(pp.key, []),
                "placements": [report.placement(pl) for pl in pp.placements if pl.replicas > 0],
            }
        )
    return {
        **_head(cluster, what_if),
        "changed": delta.changed,
        "paused": None,
        "pools": pools,
        # replicas of pools the plan does not have (deleted pools: garbage collection removes them)
        "gone": [{"pool": pool, "replicas": r} for pool, r in sorted(rows.items())],
        "domains": [
            {
                "name": d.name,
                "budgetWatts": None if d.budget_watts is None else round(d.budget_watts),
                "binding": d.binding,
                **_figures(
                    d.current_watts, d.planned_watts, d.current_dollars_per_hour, d.planned_dollars_per_hour
                ),
            }
            for d in delta.domains
        ],
        "totals": _figures(
            delta.current_watts,
            delta.planned_watts,
            delta.current_dollars_per_hour,
            delta.planned_dollars_per_hour,
        ),
        "binding": [{"constraint": str(b), "pools": list(pools_)} for b, pools_ in delta.binding],
        "moves": [
            {"pool": m.pool, "removed": dict(m.removed), "added": dict(m.added), "moved": m.moved}
            for m in delta.moves
        ],
        "nodeMoves": [
            {
                "pool": n.pool,
                "class": n.accelerator_class,
                "node": n.node,
                "current": n.current,
                "planned": n.planned,
            }
            for n in delta.node_moves
        ],
        "writes": [
            {
                "verb": str(w.verb),
                "kind": w.kind,
                "namespace": w.namespace,
                "name": w.name,
                "class": w.accelerator_class,
                "replicasBefore": w.replicas_before,
                "replicasAfter": w.replicas_after,
            }
            for w in delta.writes
        ],
        "unvalued": [{"pool": pool, "class": cls} for pool, cls in delta.unvalued],
        "solver": report.solver(plan.solver),
        "problems": list(problems),
    }


def paused(
    reasons: Sequence[str], *, cluster: Mapping[str, Any], what_if: Mapping[str, Mapping[str, float]]
) -> dict[str, Any]:
    """The document when the operator plans nothing (an invalid or missing FleetPolicy)."""
    return {
        **_head(cluster, what_if),
        "changed": False,
        "paused": "; ".join(reasons) or "planning is paused",
        "pools": [],
        "gone": [],
        "domains": [],
        "totals": _figures(0, 0, 0, 0),
        "binding": [],
        "moves": [],
        "nodeMoves": [],
        "writes": [],
        "unvalued": [],
        "solver": None,
        "problems": list(reasons),
    }


def _signed(x: float, digits: int = 2) -> str:
    return f"{x:+.{digits}f}"


def _flags(what_if: Mapping[str, Mapping[str, float]]) -> str:
    flags = {"powerBudgetKilowatts": "--power-budget", "pricePerDeviceHour": "--price"}
    flags["demandRequestsPerSecond"] = "--demand"
    parts = [f"{flags[k]} {name}={value:g}" for k, v in what_if.items() for name, value in sorted(v.items())]
    return ", ".join(parts) or "none"


def render_table(doc: Mapping[str, Any]) -> str:
    """Human tables from the live document (one renderer of one source of truth)."""
    cluster = doc["cluster"]
    where = f"Live plan of {cluster.get('server')} read at {cluster.get('readAt')}"
    out = [f"{where}; what-if: {_flags(doc['whatIf'])}"]
    if doc["paused"]:
        out.append(f"Planning is paused, nothing would change: {doc['paused']}")
        return "\n".join(out)
    moved = sum(m["moved"] for m in doc["moves"])
    out.append(
        f"Changes: {len(doc['writes'])} child write(s), {moved} replica(s) move between classes"
        if doc["changed"]
        else "No change: the plan is what runs now (the operator would write no child)"
    )
    out.append("")
    rows = []
    for pool in doc["pools"]:
        key = f"{pool['namespace']}/{pool['name']}"
        for r in pool["replicas"] or [{"class": "-", "current": 0, "planned": 0, "delta": 0}]:
            delta = f"{r['delta']:+d}" if r["delta"] else "0"
            rows.append([key, r["class"], str(r["current"]), str(r["planned"]), delta, pool["status"]])
    for gone in doc["gone"]:
        for r in gone["replicas"]:
            rows.append([gone["pool"], r["class"], str(r["current"]), "0", f"{r['delta']:+d}", "Gone"])
    out.append(report.table(["POOL", "CLASS", "NOW", "PLANNED", "DELTA", "STATUS"], rows))
    out.append("")
    rows = [
        [
            d["name"],
            f"{d['currentWatts'] / 1000:.2f}",
            f"{d['plannedWatts'] / 1000:.2f}",
            _signed(d["deltaWatts"] / 1000),
            "-" if d["budgetWatts"] is None else f"{d['budgetWatts'] / 1000:.2f}",
            f"{d['currentDollarsPerHour']:.2f}",
            f"{d['plannedDollarsPerHour']:.2f}",
            _signed(d["deltaDollarsPerHour"]),
            "yes" if d["binding"] else "no",
        ]
        for d in doc["domains"]
    ]
    headers = ["POWER-DOMAIN", "NOW-KW", "PLANNED-KW", "DELTA-KW", "BUDGET-KW", "NOW-$/H", "PLANNED-$/H"]
    out.append(report.table([*headers, "DELTA-$/H", "BINDING"], rows))
    out.append("")
    t = doc["totals"]
    out.append(
        f"Fleet: {t['currentWatts'] / 1000:.2f} -> {t['plannedWatts'] / 1000:.2f} kW "
        f"({_signed(t['deltaWatts'] / 1000)}), ${t['currentDollarsPerHour']:.2f} -> "
        f"${t['plannedDollarsPerHour']:.2f}/h ({_signed(t['deltaDollarsPerHour'])})"
    )
    for b in doc["binding"]:
        out.append(f"Binding: {b['constraint']} ({', '.join(b['pools'])})")
    for m in doc["moves"]:
        parts = [f"{c} -{n}" for c, n in sorted(m["removed"].items())]
        parts += [f"{c} +{n}" for c, n in sorted(m["added"].items())]
        out.append(f"Move: {m['pool']}: {', '.join(parts)} ({m['moved']} replica(s) move)")
    for n in doc["nodeMoves"]:
        out.append(f"Node: {n['pool']} on {n['class']} node {n['node']}: {n['current']} -> {n['planned']}")
    for w in doc["writes"]:
        what = f" ({w['class']}: {w['replicasBefore']} -> {w['replicasAfter']})" if w["class"] else ""
        out.append(f"Write: {w['verb']} {w['kind']} {w['namespace']}/{w['name']}{what}")
    for u in doc["unvalued"]:
        out.append(f"note: {u['pool']} on {u['class']} runs with no figures recorded; counted at 0 W, $0/h")
    s = doc["solver"]
    out.append(
        f"Solver: {s['status']} ({s['method']}), gap {100 * s['gap']:.3f}%, {s['seconds'] * 1000:.0f} ms"
    )
    for problem in doc["problems"]:
        out.append(f"problem: {problem}")
    return "\n".join(out)
