"""``inferfleet plan``: the offline what-if planner over the manifests users apply.

Owns the command's flags and its run: read the paths (``plan.manifests``), turn the flags into
overrides (``plan.whatif``), build the problem through the one bridge (``translate.problem``),
solve, compare, and print the report (``plan.report``) as tables or JSON.  Exit 0 with a report for
every valid fleet, even an infeasible one; exit 2 for bad input, with messages naming file, object
and field.  Imports neither kopf nor the Kubernetes client.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

__all__ = ["register"]


def _run(args: argparse.Namespace) -> int:
    from inferfleet.api.validation import ManifestError
    from inferfleet.core import planner
    from inferfleet.core.compare import compare
    from inferfleet.plan import manifests, report, whatif
    from inferfleet.translate.problem import Fleet, problem_from

    try:
        m = manifests.load(args.filename)
        if not m.pools:
            raise ManifestError([f"{', '.join(args.filename)}: no InferencePool found"])
        if not m.classes:
            raise ManifestError([f"{', '.join(args.filename)}: no AcceleratorClass found"])
        fleet = Fleet(m.pools, m.classes, m.policies, manifests.nodes_from_documents(m.others))
        overrides = whatif.overrides(
            fleet,
            power_budget=args.power_budget,
            price=args.price,
            demand=args.demand,
            time_limit_s=args.time_limit,
        )
        if args.measurements:
            demand, factors = whatif.measurements(args.measurements, fleet)
            overrides = dataclasses.replace(
                overrides, demand_rps={**demand, **overrides.demand_rps}, slo_factors=factors
            )
    except (ManifestError, whatif.UsageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    bridged = problem_from(fleet, overrides=overrides)
    plan = planner.solve(bridged.problem)
    doc = report.document(plan, bridged.problem, bridged.notes, compare(bridged.problem, plan, planner.solve))
    if args.output == "json":
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(report.render_table(doc))
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
    p.add_argument(
        "--measurements",
        metavar="FILE",
        help="replay autoscaling: demand and correction factors per pool, as in status.autoscaling",
    )
    p.add_argument("--time-limit", type=float, default=None, metavar="SECONDS", help="solver time limit")
    p.set_defaults(func=_run)
