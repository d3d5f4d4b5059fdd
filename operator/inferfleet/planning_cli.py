"""``inferfleet plan``: the offline what-if planner over the manifests users apply.

Owns reading the paths, applying what-if flags (budgets, prices, demand), calling the core planner
and rendering its plan as tables or as the documented JSON schema (docs/plan-output.md).  Exit 0
with a report for every valid fleet, even an infeasible one; exit 2 for bad input, with messages
naming file, object and field.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from typing import Any

from inferfleet import manifests, translate
from inferfleet.api.fleetpolicy import FleetPolicy
from inferfleet.core import planner
from inferfleet.core import types as core
from inferfleet.core.problem import build_problem

__all__ = ["PlanInput", "build_inputs", "plan_to_json", "register", "render_table"]

SCHEMA_VERSION = "inferfleet.dev/plan/v1"


class UsageError(Exception):
    """A what-if flag that names nothing in the manifests, or is malformed."""


@dataclasses.dataclass(frozen=True)
class PlanInput:
    problem: core.Problem
    notes: tuple[str, ...]


def _pairs(values: Sequence[str] | None, flag: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in values or ():
        key, sep, number = item.partition("=")
        try:
            value = float(number)
        except ValueError:
            value = -1.0
        if not sep or not key or value < 0:
            raise UsageError(f"{flag} {item!r}: expected KEY=NUMBER with a non-negative number")
        out[key] = value
    return out


def nodes_from_documents(docs: Sequence[dict[str, Any]]) -> list[translate.NodeInfo] | None:
    """Nodes given with the manifests (Node objects, or a SimulatedFleet); None if there are none."""
    nodes: list[dict[str, Any]] = [d for d in docs if d.get("kind") == "Node"]
    fleets = [d for d in docs if d.get("kind") == "SimulatedFleet"]
    if fleets:
        from inferfleet.sim import fleet as simfleet

        for doc in fleets:
            try:
                nodes.extend(simfleet.node_manifests(simfleet.parse_fleet(doc, source="SimulatedFleet"), 1))
            except simfleet.FleetError as exc:
                raise manifests.ManifestError([str(exc)]) from exc
    if not nodes:
        return None
    return [translate.node_info_from_manifest(n) for n in nodes]


def ample_capacity(devices_per_node: int) -> tuple[int, ...]:
    """Capacity standing in for "no node limit": more whole nodes than any plan here uses."""
    return (devices_per_node,) * 10_000


def build_inputs(m: manifests.Manifests, args: argparse.Namespace) -> PlanInput:
    notes: list[str] = []
    budgets = _pairs(args.power_budget, "--power-budget")
    prices = _pairs(args.price, "--price")
    demands = _pairs(args.demand, "--demand")
    chosen: FleetPolicy | None
    if len(m.policies) > 1:
        names = [p.metadata["name"] for p in m.policies]
        chosen = next((p for p in m.policies if p.metadata["name"] == "default"), m.policies[0])
        notes.append(f"several FleetPolicies ({', '.join(names)}); using {chosen.metadata['name']!r}")
    else:
        chosen = m.policies[0] if m.policies else None
    if chosen is None:
        notes.append("no FleetPolicy given: no power budgets, default electricity price and PUE")
    policy = translate.to_core_policy(chosen, time_limit_s=args.time_limit)
    domains = {c.spec.power_domain for c in m.classes}
    for domain in budgets:
        if domain not in domains:
            raise UsageError(
                f"--power-budget {domain}: no AcceleratorClass is in power domain {domain!r} "
                f"(known: {', '.join(sorted(domains)) or 'none'})"
            )
    policy = dataclasses.replace(
        policy,
        domain_budgets_watts={**policy.domain_budgets_watts, **{d: kw * 1000 for d, kw in budgets.items()}},
    )
    nodes = nodes_from_documents(m.others)
    classes = []
    class_names = {str(c.metadata["name"]) for c in m.classes}
    for name in prices:
        if name not in class_names:
            raise UsageError(
                f"--price {name}: no such AcceleratorClass (known: {', '.join(sorted(class_names))})"
            )
    for cls in m.classes:
        capacity = translate.class_capacity(cls, nodes)
        name = str(cls.metadata["name"])
        if cls.spec.capacity is None and nodes is None:
            notes.append(
                f"class {name}: capacity unknown (no nodes given, no spec.capacity); assumed unbounded"
            )
            capacity = ample_capacity(cls.spec.devices_per_node)
        core_cls = translate.to_core_class(cls, capacity)
        if name in prices:
            core_cls = dataclasses.replace(core_cls, price_per_device_hour=prices[name])
        classes.append(core_cls)
    pool_keys = {translate.pool_key(p) for p in m.pools}
    for key in demands:
        if key not in pool_keys:
            raise UsageError(f"--demand {key}: no such InferencePool (known: {', '.join(sorted(pool_keys))})")
    pools = [translate.to_core_pool(p, demand_rps=demands.get(translate.pool_key(p))) for p in m.pools]
    for pool in m.pools:
        allowed = pool.spec.placement.allowed_classes or []
        for missing in sorted(set(allowed) - class_names):
            notes.append(
                f"InferencePool {translate.pool_key(pool)}: allowed class {missing!r} is not defined"
            )
    return PlanInput(build_problem(pools, classes, policy), tuple(notes))


def _round(x: float, digits: int = 2) -> float:
    return round(x, digits)


def plan_to_json(plan: core.Plan, problem: core.Problem, notes: Sequence[str]) -> dict[str, Any]:
    """The stable JSON document of docs/plan-output.md."""
    pools = []
    for pp in plan.pools:
        namespace, _, name = pp.key.partition("/")
        pools.append(
            {
                "namespace": namespace,
                "name": name,
                "status": pp.status,
                "reason": pp.reason,
                "binding": list(pp.binding),
                "demandRequestsPerSecond": _round(pp.demand_rps, 3),
                "servedRequestsPerSecond": _round(pp.served_rps, 3),
                "placements": [
                    {
                        "class": pl.accelerator_class,
                        "replicas": pl.replicas,
                        "devices": pl.devices,
                        "watts": round(pl.watts),
                        "dollarsPerHour": _round(pl.dollars_per_hour),
                        "requestsPerSecond": _round(pl.rps_capacity, 3),
                        "ttftP95Milliseconds": _round(pl.ttft_s * 1000, 1),
                        "tpotP95Milliseconds": _round(pl.tpot_s * 1000, 2),
                    }
                    for pl in pp.placements
                ],
                "unfit": dict(sorted(problem.unfit.get(pp.key, {}).items())),
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
        "bestSingleClass": _single(planner.best_single_class(problem), plan.dollars_per_hour),
        "bestSingleClassWithoutLimits": _single(
            planner.best_single_class(problem, respect_limits=False), _unlimited_cost(problem)
        ),
        "solver": {
            "status": plan.solver.status,
            "method": plan.solver.method,
            "objective": _round(plan.solver.objective, 4),
            "bound": _round(plan.solver.bound, 4),
            "gap": round(plan.solver.gap, 6),
            "seconds": round(plan.solver.seconds, 4),
        },
        "notes": list(notes),
    }


def _unlimited_cost(problem: core.Problem) -> float:
    """The mixed plan's $/h with no budgets and ample nodes: the like-for-like side of the
    single-class comparison without limits (Mélange's comparison)."""
    ample = tuple(
        dataclasses.replace(c, node_free_devices=ample_capacity(c.devices_per_node)) for c in problem.classes
    )
    policy = dataclasses.replace(problem.policy, domain_budgets_watts={}, churn_dollars_per_replica=0.0)
    unlimited = dataclasses.replace(
        problem,
        classes=ample,
        policy=policy,
        pools=tuple(dataclasses.replace(p, current={}) for p in problem.pools),
    )
    return planner.solve(unlimited).dollars_per_hour


def _single(best: tuple[str, float] | None, plan_cost: float) -> dict[str, Any] | None:
    if best is None:
        return None
    saving = _round(100.0 * (1 - plan_cost / best[1]), 1) if best[1] > 0 else 0.0
    return {"class": best[0], "dollarsPerHour": _round(best[1]), "savingPercent": saving}


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


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
            out.append("  " + _table(headers, rows).replace("\n", "\n  "))
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
    out.append(_table(["POWER-DOMAIN", "USED-KW", "BUDGET-KW", "USE"], rows))
    out.append("")
    totals = doc["totals"]
    out.append(f"Fleet: {totals['watts'] / 1000:.2f} kW, ${totals['dollarsPerHour']:.2f}/h")
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


def _run(args: argparse.Namespace) -> int:
    try:
        m = manifests.load(args.filename)
        if not m.pools:
            raise manifests.ManifestError([f"{', '.join(args.filename)}: no InferencePool found"])
        if not m.classes:
            raise manifests.ManifestError([f"{', '.join(args.filename)}: no AcceleratorClass found"])
        inputs = build_inputs(m, args)
    except (manifests.ManifestError, UsageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    plan = planner.solve(inputs.problem)
    doc = plan_to_json(plan, inputs.problem, inputs.notes)
    if args.output == "json":
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(render_table(doc))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "plan",
        help="plan placement offline from manifests (what-if)",
        description="Plan replicas of every InferencePool over the AcceleratorClasses under the "
        "FleetPolicy's budgets, from the same YAML you kubectl apply.",
    )
    p.add_argument(
        "-f",
        "--filename",
        action="append",
        required=True,
        metavar="PATH",
        help="file or directory (non-recursive, like kubectl); repeatable",
    )
    p.add_argument("-o", "--output", choices=("table", "json"), default="table")
    p.add_argument("--power-budget", action="append", metavar="DOMAIN=KW", help="override a domain's budget")
    p.add_argument(
        "--price", action="append", metavar="CLASS=USD_PER_HOUR", help="override a class's device price"
    )
    p.add_argument("--demand", action="append", metavar="NAMESPACE/POOL=RPS", help="override a pool's demand")
    p.add_argument("--time-limit", type=float, default=None, metavar="SECONDS", help="solver time limit")
    p.set_defaults(func=_run)
