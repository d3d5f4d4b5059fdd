"""``inferfleet plan``: the what-if planner, over the manifests users apply or (``--live``) over the
cluster as the operator sees it.

Owns the command's flags and its run.  From files: read the paths (``plan.manifests``), turn the
flags into overrides (``plan.whatif``), plan through the one offline path (``plan.offline``: the
bridge, then the planner), compare, and print the report (``plan.report``).  With ``--sweep``: one
such plan per point of one or two axes (``plan.sweep``), break-even points by bisection
(``plan.breakeven``), optional plots (``plan.plots``, matplotlib imported only then), one report
(``plan.sweepreport``) printed once everything is known.  Live: read the
operator's snapshot once (``kube.snapshot.read_snapshot``, GETs only), give it to the operator's
own round (``reconcile.decide``) with the flags' overrides and the demand the operator recorded for
autoscaled pools (``plan.live``), and print what would change against what runs now
(``plan.delta``, ``plan.livereport``); nothing is written.  Tables, JSON or YAML.  Exit 0 with a
report for every valid fleet, even an infeasible one; exit 2 for bad input (files, flags, a
kubeconfig, a cluster that cannot be read) with one line per problem, never a traceback.  Without
``--live`` it imports neither kopf nor the Kubernetes client; with it, only the Kubernetes client.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from inferfleet.reconcile.ports import Snapshot
    from inferfleet.translate.problem import Fleet, Overrides

__all__ = ["register"]


class _InputError(Exception):
    """A flag, a kubeconfig or a cluster the live plan cannot use: one line, exit 2."""


def _print(doc: dict[str, Any], output: str, table: Any) -> None:
    if output == "json":
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif output == "yaml":
        import yaml

        yaml.safe_dump(doc, sys.stdout, sort_keys=False)
    else:
        print(table(doc))


def _run(args: argparse.Namespace) -> int:
    try:
        _check_flags(args)
    except _InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return _run_live(args) if args.live else _run_files(args)


def _check_flags(args: argparse.Namespace) -> None:
    if not args.live:
        if not args.filename:
            raise _InputError("-f/--filename is required (or --live to plan against the cluster)")
        for flag, value in (("--kubeconfig", args.kubeconfig), ("--context", args.context)):
            if value is not None:
                raise _InputError(f"{flag} needs --live")
        for flag, given in (("--plot", args.plot is not None), ("--no-break-even", args.no_break_even)):
            if given and not args.sweep:
                raise _InputError(f"{flag} needs --sweep")
        return
    for flag, given in (
        ("--sweep", bool(args.sweep)),
        ("--electricity", args.electricity is not None),
        ("--plot", args.plot is not None),
    ):
        if given:
            raise _InputError(f"{flag} plans from files: it cannot be combined with --live")
    if args.filename:
        raise _InputError("--live plans the cluster's objects: -f/--filename cannot be combined with it")
    if args.measurements:
        raise _InputError(
            "--live reads the demand and corrections the operator recorded in status: "
            "--measurements cannot be combined with it"
        )
    if args.kubeconfig is not None and not Path(args.kubeconfig).is_file():
        raise _InputError(f"--kubeconfig {args.kubeconfig}: no such file")


def _run_files(args: argparse.Namespace) -> int:
    from inferfleet.api.validation import ManifestError
    from inferfleet.core import planner
    from inferfleet.core.compare import compare
    from inferfleet.plan import manifests, offline, report, whatif
    from inferfleet.translate.problem import Fleet

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
        if args.electricity is not None:
            overrides = dataclasses.replace(overrides, electricity_per_kwh=_electricity(args.electricity))
        if args.measurements:
            demand, factors = whatif.measurements(args.measurements, fleet)
            overrides = dataclasses.replace(
                overrides, demand_rps={**demand, **overrides.demand_rps}, slo_factors=factors
            )
        if args.sweep:
            return _run_sweep(args, fleet, overrides)
    except (ManifestError, whatif.UsageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    solved = offline.solve_fleet(fleet, overrides)
    problem = solved.problem
    comparison = compare(problem, solved.plan, planner.solve)
    doc = report.document(solved.plan, problem, solved.bridged.notes, comparison)
    _print(doc, args.output, report.render_table)
    return 0


def _electricity(value: float) -> float:
    from inferfleet.plan.whatif import UsageError

    if not 0 <= value <= 10:  # also refuses nan
        raise UsageError(f"--electricity {value:g}: expected $/kWh from 0 to 10")
    return value


def _run_sweep(args: argparse.Namespace, fleet: Fleet, overrides: Overrides) -> int:
    """Every point of the sweep, the break-even points, the plots, then the report: nothing is
    printed until everything is known (bad input raises ``UsageError`` before any plan)."""
    import time

    from inferfleet.plan import breakeven, sweep, sweepreport, whatif

    axes = sweep.parse_axes(args.sweep, fleet, overrides)
    if args.plot is not None:
        from inferfleet.plan import plots

        if len(axes) != 1:
            raise whatif.UsageError("--plot draws one axis: give a single --sweep")
        plots.check(args.plot)
    t0 = time.perf_counter()
    planner = sweep.Planner(fleet, overrides, axes)
    result = sweep.run(planner)
    found = [] if args.no_break_even else breakeven.find(result, planner)
    doc = sweepreport.document(result, found, plans=planner.solves, seconds=time.perf_counter() - t0)
    if args.plot is not None:
        try:
            written = plots.write(doc, args.plot)
        except OSError as exc:
            raise whatif.UsageError(f"--plot {args.plot}: cannot write: {exc}") from None
        print(f"wrote {', '.join(str(p) for p in written)}", file=sys.stderr)
    _print(doc, args.output, sweepreport.render_table)
    return 0


def _read_cluster(args: argparse.Namespace) -> tuple[Snapshot, dict[str, Any]]:
    """The operator's snapshot, read once with GETs only, and where it was read from."""
    from inferfleet.kube import client, snapshot

    def read_only(api: Any, method: str, path: str, **kw: Any) -> Any:
        if method != "GET":  # belt and braces: read_snapshot only LISTs
            raise _InputError(f"plan --live refused to send {method} {path}: it never writes")
        return client.request(api, method, path, **kw)

    try:
        api = client.make_api_client(args.kubeconfig, context=args.context, retries=1)
    except Exception as exc:  # the library raises ConfigException, YAML or OS errors: all bad input
        raise _InputError(f"kubeconfig: {_line(exc)}") from None
    server = str(getattr(api.configuration, "host", "") or "")
    try:
        # the routing ConfigMaps are what the operator writes, not what it plans from
        snap = snapshot.read_snapshot(api, request_fn=read_only, without=frozenset({"ConfigMap"}))
    except snapshot.CRDsMissing as exc:
        raise _InputError(f"{server}: {_line(exc)}") from None
    except client.APIError as exc:
        raise _InputError(f"cannot read the cluster at {server}: {_line(exc)}") from None
    finally:
        api.close()
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return snap, {"server": server, "context": args.context, "readAt": now}


def _line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _run_live(args: argparse.Namespace) -> int:
    from inferfleet.core import planner
    from inferfleet.plan import delta, live, livereport, whatif
    from inferfleet.reconcile import pinning
    from inferfleet.reconcile.decide import decide
    from inferfleet.reconcile.validate import validate
    from inferfleet.translate.problem import Fleet

    try:
        snap, cluster = _read_cluster(args)
        objects = validate(snap)
        fleet = Fleet(list(objects.pools.values()), list(objects.classes.values()))
        what_if = whatif.overrides(
            fleet,
            power_budget=args.power_budget,
            price=args.price,
            demand=args.demand,
            time_limit_s=args.time_limit,
        )
    except (_InputError, whatif.UsageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    flags = {
        "powerBudgetKilowatts": what_if.budgets_kilowatts,
        "pricePerDeviceHour": what_if.prices,
        "demandRequestsPerSecond": what_if.demand_rps,
    }
    recorded = live.recorded_demand(objects.pools, objects.pool_raw)
    overrides = dataclasses.replace(what_if, demand_rps={**recorded, **what_if.demand_rps})
    decision = decide(snap, cluster["readAt"], planner.solve, overrides=overrides)
    if decision.plan is None:
        _print(
            livereport.paused(decision.problems, cluster=cluster, what_if=flags),
            args.output,
            livereport.render_table,
        )
        return 0
    current = {
        pool: {c: n for c, n in by_class.items() if not objects.frozen(pool, c)}
        for pool, by_class in live.running(snap.deployments).items()
    }
    changes = delta.compute(
        decision.plan,
        current,
        {name: c.spec.power_domain for name, c in objects.classes.items()},
        per_replica_now=live.per_replica(snap.pools),
        applies=decision.reductions + decision.increases,
        deletes=decision.deletes,
        nodes_now=pinning.counts(snap.placed),  # what the scheduler bound, node by node
        nodes_planned=decision.assignment,  # the operator's packing of the plan
    )
    doc = livereport.document(
        decision.plan, changes, cluster=cluster, what_if=flags, problems=decision.problems
    )
    _print(doc, args.output, livereport.render_table)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "plan",
        help="plan placement from manifests, or what would change on the cluster (what-if)",
        description="Plan replicas of every InferencePool over the AcceleratorClasses under the "
        "FleetPolicy's budgets, from the same YAML you kubectl apply, or (--live) from the cluster, "
        "against what runs now.",
    )
    p.add_argument(
        "-f",
        "--filename",
        action="append",
        metavar="PATH",
        help="file or directory (non-recursive, like kubectl), or - for standard input; repeatable; "
        "required without --live",
    )
    p.add_argument(
        "--live",
        action="store_true",
        help="plan the cluster as the operator sees it (read-only) and print what would change",
    )
    p.add_argument("--kubeconfig", metavar="PATH", help="with --live (default: $KUBECONFIG, ~/.kube/config)")
    p.add_argument(
        "--context", metavar="NAME", help="with --live: a kubeconfig context other than the current"
    )
    p.add_argument("-o", "--output", choices=("table", "json", "yaml"), default="table")
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
    p.add_argument(
        "--electricity",
        type=float,
        default=None,
        metavar="USD_PER_KWH",
        help="override the electricity price",
    )
    p.add_argument("--time-limit", type=float, default=None, metavar="SECONDS", help="solver time limit")
    p.add_argument(
        "--sweep",
        action="append",
        metavar="AXIS=LO:HI:N",
        help="plan N points from LO to HI (one or two axes): demand (scale factor, log-spaced), "
        "price.CLASS ($/device-hour), capital.CLASS ($/device, amortised), electricity ($/kWh), "
        "budget.DOMAIN (kW), "
        "slo.NAMESPACE/POOL.ttft|tpot (ms); at most 200 points; break-even points for one axis "
        "(docs/capacity-planning.md)",
    )
    p.add_argument("--no-break-even", action="store_true", help="with --sweep: skip the break-even bisection")
    p.add_argument(
        "--plot",
        metavar="DIR",
        help="with one --sweep: write PNG and SVG plots into DIR (needs matplotlib)",
    )
    p.set_defaults(func=_run)
