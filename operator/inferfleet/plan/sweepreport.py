"""The report of ``inferfleet plan --sweep``: one JSON document (docs/capacity-planning.md), and a
table from it.

Owns turning a sweep's points and break-even points into the stable, versioned document
(``inferfleet.dev/plan-sweep/v1``) and rendering that one document as text, including the binding
constraints of each break-even point in words (facts arrive typed; sentences are made here).  It
solves nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from inferfleet.core import types as core
from inferfleet.plan.breakeven import BreakEven, BreakEvenKind
from inferfleet.plan.report import solver, table
from inferfleet.plan.sweep import Axis, AxisKind, Point, Sweep

__all__ = ["SCHEMA_VERSION", "binding_words", "document", "render_table"]

SCHEMA_VERSION = "inferfleet.dev/plan-sweep/v1"


def _r(x: float | None, digits: int) -> float | None:
    return None if x is None else round(x, digits)


def _axis(a: Axis) -> dict[str, Any]:
    return {
        "name": a.name,
        "kind": str(a.kind),
        "subject": a.subject or None,
        "metric": a.metric or None,
        "unit": a.unit,
        "low": a.low,
        "high": a.high,
        "points": a.points,
        "spacing": "log" if a.log else "linear",
    }


def _point(axes: Sequence[Axis], p: Point) -> dict[str, Any]:
    e = p.energy
    dollars = p.class_dollars()
    total = sum(dollars.values())
    replicas = p.class_replicas()
    shed = p.shed_rps
    return {
        "values": {a.name: round(v, 6) for a, v in zip(axes, p.values, strict=True)},
        "demandRequestsPerSecond": round(p.demand_rps, 3),
        "servedRequestsPerSecond": round(e.requests_per_second, 3),
        "shedRequestsPerSecond": round(float(sum(shed.values())), 3),
        "shed": {k: round(v, 3) for k, v in shed.items()},
        "outputTokensPerSecond": round(e.output_tokens_per_second, 1),
        "dollarsPerHour": round(p.plan.dollars_per_hour, 2),
        "hardwareDollarsPerHour": round(e.hardware_dollars_per_hour, 2),
        "energyDollarsPerHour": round(e.energy_dollars_per_hour, 3),
        "dollarsPerMillionOutputTokens": _r(e.dollars_per_million_output_tokens, 4),
        "kilowatts": round(p.plan.watts / 1000, 3),
        "kilowattHoursPerDay": round(e.kwh_per_day, 1),
        "outputTokensPerJoule": _r(e.output_tokens_per_joule, 4),
        "classes": [
            {
                "name": name,
                "replicas": replicas.get(name, 0),
                "dollarsPerHour": round(d, 2),
                "share": round(d / total, 4) if total > 0 else 0.0,
            }
            for name, d in dollars.items()
        ],
        "singleClass": [
            {
                "class": s.name,
                "pools": s.pools,
                "elsewhere": list(s.others),
                "dollarsPerHour": round(s.dollars_per_hour, 2),
                "dollarsPerMillionOutputTokens": _r(s.dollars_per_million_output_tokens, 4),
            }
            for s in p.singles
        ],
        "solver": solver(p.plan.solver),
    }


_KIND_WORDS = {
    core.BindingKind.POWER: "the power budget of {}",
    core.BindingKind.CAPACITY: "the free nodes of {}",
}


def binding_words(binding: Sequence[tuple[str, core.Binding]]) -> str:
    """Binding constraints in words, each with the pools it binds: ``the power budget of hall-b
    (batch/summarise-batch, chat/chat-70b)``."""
    by: dict[str, list[str]] = {}
    for pool, b in binding:
        if b.kind in _KIND_WORDS:
            words = _KIND_WORDS[b.kind].format(b.subject)
        elif b.kind is core.BindingKind.MAX_REPLICAS:
            words = "maxReplicas"
        elif b.kind is core.BindingKind.MIN_REPLICAS:
            words = "minReplicas"
        else:
            words = f"no class fits ({b.subject})"
        by.setdefault(words, [])
        if pool not in by[words]:
            by[words].append(pool)
    return "; ".join(f"{w} ({', '.join(pools)})" for w, pools in by.items()) or "none"


def _event_words(b: BreakEven) -> str:
    if b.kind is BreakEvenKind.USES:
        return f"{b.accelerator_class} {'enters' if b.rising else 'leaves'} the plan"
    verb = "starts" if b.rising else "stops"
    return f"{b.accelerator_class} {verb} carrying most of {b.pool}"


def _break_even(b: BreakEven) -> dict[str, Any]:
    return {
        "kind": str(b.kind),
        "class": b.accelerator_class,
        "pool": b.pool,
        "direction": "starts" if b.rising else "stops",
        "value": round(b.value, 6),
        "below": round(b.below.values[0], 6),
        "above": round(b.above.values[0], 6),
        "demandRequestsPerSecondAbove": round(b.above.demand_rps, 3),
        "binding": [{"pool": pool, "constraint": str(c)} for pool, c in b.binding],
        "event": _event_words(b),
        "bindingWords": binding_words(b.binding),
    }


def document(sweep: Sweep, break_evens: Sequence[BreakEven], *, plans: int, seconds: float) -> dict[str, Any]:
    """The stable JSON document of docs/capacity-planning.md."""
    return {
        "schema": SCHEMA_VERSION,
        "axes": [_axis(a) for a in sweep.axes],
        "points": [_point(sweep.axes, p) for p in sweep.points],
        "breakEven": [_break_even(b) for b in break_evens],
        "plans": plans,
        "seconds": round(seconds, 3),
    }


def _value(axis: dict[str, Any], v: float) -> str:
    unit = axis["unit"]
    if axis["kind"] == AxisKind.DEMAND:
        return f"{v:.3g}x"
    number = f"{v:,.0f}" if abs(v) >= 10_000 else f"{v:.4g}"
    if unit.startswith("$"):
        return f"${number}{unit[1:]}"
    return f"{number} {unit}"


def _mix(classes: Sequence[dict[str, Any]]) -> str:
    ranked = sorted(classes, key=lambda c: -c["share"])
    return ", ".join(f"{c['name']} {100 * c['share']:.0f}%" for c in ranked if c["share"] >= 0.005)


def _by_value(events: Sequence[dict[str, Any]]) -> list[tuple[float, list[dict[str, Any]]]]:
    """Break-even points found by the same bisection (the same plans on both sides) together."""
    out: list[tuple[float, list[dict[str, Any]]]] = []
    for b in events:
        if out and out[-1][1][0]["below"] == b["below"] and out[-1][1][0]["above"] == b["above"]:
            out[-1][1].append(b)
        else:
            out.append((b["value"], [b]))
    return out


def render_table(doc: dict[str, Any]) -> str:
    """Text from the JSON document: the points, then the break-even points in words."""
    axes = doc["axes"]
    out = []
    for a in axes:
        what = "x the manifests' demand" if a["kind"] == AxisKind.DEMAND else a["unit"]
        out.append(f"Sweep {a['name']} ({what}, {a['spacing']}-spaced, {a['points']} points)")
    headers = [a["name"].upper() for a in axes] + [
        "REQ/S",
        "OUT-TOK/S",
        "$/H",
        "$/M-OUT-TOK",
        "KW",
        "OUT-TOK/J",
        "SHED-REQ/S",
        "MIX ($/H SHARE)",
    ]
    rows = []
    for p in doc["points"]:
        per_m = p["dollarsPerMillionOutputTokens"]
        tpj = p["outputTokensPerJoule"]
        rows.append(
            [_value(a, p["values"][a["name"]]) for a in axes]
            + [
                f"{p['servedRequestsPerSecond']:,.1f}",
                f"{p['outputTokensPerSecond']:,.0f}",
                f"{p['dollarsPerHour']:,.2f}",
                "-" if per_m is None else f"{per_m:.3f}",
                f"{p['kilowatts']:,.2f}",
                "-" if tpj is None else f"{tpj:.3f}",
                f"{p['shedRequestsPerSecond']:,.1f}",
                _mix(p["classes"]),
            ]
        )
    out.append(table(headers, rows))
    if len(axes) == 1:
        out.append("")
        if doc["breakEven"]:
            out.append(f"Break-even points ({axes[0]['name']}, each between two plans that differ there):")
            for value, group in _by_value(doc["breakEven"]):
                out.append(f"  {_value(axes[0], value)}: {'; '.join(b['event'] for b in group)}")
                out.append(f"    binding just above: {group[0]['bindingWords']}")
        else:
            out.append(
                f"Break-even points ({axes[0]['name']}): none (between these points no class enters or "
                "leaves the plan, or takes or loses the most of a pool's load)"
            )
    out.append("")
    out.append(f"{doc['plans']} plans in {doc['seconds']:.1f} s")
    return "\n".join(out)
