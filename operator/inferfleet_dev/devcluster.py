"""``inferfleet dev-cluster install | up | down | status | env``: the dev cluster's command line.

Owns: argument parsing and human-readable output for the local cluster; the work is done by
``inferfleet_dev.cluster`` (processes, fleet) and ``inferfleet_dev.install`` (binaries).  Every
expected failure (fleet file, ports, leftover cluster, build) ends as one message and exit code 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
from pathlib import Path

from inferfleet.api.simulatedfleet import FleetError
from inferfleet_dev import install, prometheus
from inferfleet_dev.cluster import (
    DEFAULT_NAME,
    Cluster,
    ClusterError,
    ClusterStatus,
    list_clusters,
)
from inferfleet_dev.nodes import NodeError
from inferfleet_dev.pki import PkiError
from inferfleet_dev.procs import ComponentError

__all__ = ["register"]

_EXPECTED = (ClusterError, FleetError, NodeError, PkiError, ComponentError, install.InstallError)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``dev-cluster`` command to the ``inferfleet`` parser."""
    parser = sub.add_parser(
        "dev-cluster",
        help="local Kubernetes control plane with a simulated accelerator fleet (kwok)",
        description="Run etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok on "
        "loopback, with fake accelerator nodes from a fleet file.  State, logs and kubeconfig "
        "live in ~/.cache/inferfleet/clusters/<name>/.",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    p = actions.add_parser("install", help="build or verify the binaries (cached under ~/.cache/inferfleet)")
    p.add_argument("tools", nargs="*", metavar="TOOL", help=f"default: all of {', '.join(install.TOOLS)}")
    p.set_defaults(func=_install)

    p = actions.add_parser("up", help="start the cluster (idempotent) and apply the fleet")
    _name(p)
    p.add_argument(
        "-f", "--fleet", type=Path, help="fleet file (default examples/simulated-fleet/fleet.yaml)"
    )
    p.add_argument("--scale", type=int, default=1, help="multiply every pool's node count (default 1)")
    p.add_argument(
        "--kubeconfig",
        type=Path,
        help="use this existing cluster (e.g. kind): only run kwok and add the fake nodes",
    )
    p.add_argument(
        "--port-base", type=int, help="first of six loopback ports (default 17443 for the default cluster)"
    )
    p.add_argument("--timeout", type=float, default=180.0, help="seconds to wait per step (default 180)")
    _prometheus_args(p)
    p.set_defaults(func=_up)

    p = actions.add_parser("down", help="stop every process, free the ports, delete the data (logs kept)")
    _name(p)
    p.set_defaults(func=_down)

    p = actions.add_parser("status", help="components and nodes per accelerator class")
    _name(p)
    p.add_argument("--all", action="store_true", help="every known dev cluster")
    p.add_argument("-o", "--output", choices=("text", "json"), default="text")
    p.set_defaults(func=_status)

    p = actions.add_parser("env", help="print shell exports: KUBECONFIG and the built kubectl on PATH")
    _name(p)
    p.set_defaults(func=_env)


def _prometheus_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "prometheus (Debian's 2.42, unpacked into the cache; see inferfleet_dev.prometheus)"
    )
    g.add_argument("--prometheus", action="store_true", help="also run Prometheus on 127.0.0.1")
    g.add_argument("--prometheus-port", type=int, help="default: the cluster's port base + 8")
    g.add_argument("--scrape-interval", type=float, default=5.0, help="seconds (default 5)")
    g.add_argument("--simulator", default=prometheus.DEFAULT_SIMULATOR, help="fleet simulator host:port")
    g.add_argument("--operator-metrics", default="127.0.0.1:18080", help="operator metrics host:port")


def _up_prometheus(args: argparse.Namespace, cluster: Cluster) -> None:
    port = args.prometheus_port or cluster.ports.base + 8
    prom, up = prometheus.for_cluster(
        cluster.state_dir,
        port,
        simulator=args.simulator,
        operator_metrics=args.operator_metrics,
        scrape_interval_s=args.scrape_interval,
    )
    targets = ", ".join(f"{job} {'up' if value == 1 else 'DOWN'}" for job, value in sorted(up.items()))
    print(f"prometheus: {prom.url} (every {args.scrape_interval:g}s; {targets}); log {prom.state_dir}")


def _name(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", default=DEFAULT_NAME, help=f"cluster name (default {DEFAULT_NAME})")


def _fail(exc: BaseException) -> int:
    print(f"inferfleet dev-cluster: error: {exc}", file=sys.stderr)
    return 1


def _install(args: argparse.Namespace) -> int:
    unknown = [t for t in args.tools if t not in install.TOOLS]
    if unknown:
        return _fail(ValueError(f"unknown tool(s) {', '.join(unknown)}; known: {', '.join(install.TOOLS)}"))
    return install.main(args.tools)


def _up(args: argparse.Namespace) -> int:
    if args.scale < 1:
        return _fail(ValueError(f"--scale must be >= 1, got {args.scale}"))
    try:
        cluster = Cluster(args.name, port_base=args.port_base, existing_kubeconfig=args.kubeconfig)
        report = cluster.up(args.fleet, scale=args.scale, timeout=args.timeout)
    except _EXPECTED as exc:
        return _fail(exc)
    verb = "was already running" if report.already_running else f"is up in {report.seconds:.1f}s"
    print(f"cluster {args.name!r} {verb}; nodes: {report.nodes.describe()}")
    if report.timings:
        print("timings:    " + ", ".join(f"{k} {v:.1f}s" for k, v in report.timings.items()))
    print(f"kubeconfig: {report.kubeconfig}")
    print(f"kubectl:    {cluster.kubectl_path}")
    print(f'try:        eval "$(inferfleet dev-cluster env --name {args.name})"; kubectl get nodes')
    if args.prometheus:
        try:
            _up_prometheus(args, cluster)
        except _EXPECTED as exc:
            return _fail(exc)
    return 0


def _down(args: argparse.Namespace) -> int:
    try:
        cluster = Cluster(args.name)
        prometheus_ran = prometheus.stop_recorded(cluster.state_dir / "prometheus")
        stopped = ["prometheus"] * prometheus_ran + cluster.down()
    except _EXPECTED as exc:
        return _fail(exc)
    if stopped:
        print(
            f"cluster {args.name!r} stopped ({', '.join(stopped)}); ports free; "
            f"logs kept in {cluster.logs_dir}"
        )
    else:
        print(f"no running processes for cluster {args.name!r}; state cleared")
    return 0


def _print_status(st: ClusterStatus) -> None:
    print(f"cluster {st.name!r}: {st.state} ({st.mode}); kubeconfig {st.kubeconfig}")
    if st.message:
        print(f"  {st.message}")
    for c in st.components:
        health = "healthy" if c.healthy else ("UNHEALTHY" if c.alive else "DEAD")
        print(f"  {c.name:24s} pid {c.pid:<8d} {health:9s} log {c.log}")
    if st.classes:
        print(
            f"  {'CLASS':14s} {'NODES':>5s} {'READY':>5s} {'CORDON':>6s}  {'RESOURCE':24s} "
            f"{'PER NODE':>8s} {'TOTAL':>6s}  POWER DOMAIN / ZONE"
        )
        for s in st.classes:
            print(
                f"  {s.accelerator_class:14s} {s.nodes:5d} {s.ready:5d} {s.cordoned:6d}  "
                f"{s.resource or '-':24s} {s.devices_per_node or '-':>8s} {s.devices_allocatable:6d}  "
                f"{','.join(sorted(s.power_domains))} / {','.join(sorted(s.zones))}"
            )


def _status(args: argparse.Namespace) -> int:
    names = list_clusters() if args.all else [args.name]
    try:
        statuses = [Cluster(n).status() for n in names]
    except _EXPECTED as exc:
        return _fail(exc)
    if args.output == "json":
        print(json.dumps([_as_json(s) for s in statuses], indent=2, default=sorted))
    else:
        if not statuses:
            print("no dev clusters")
        for st in statuses:
            _print_status(st)
    return 0 if all(s.state == "running" for s in statuses) else 3


def _as_json(st: ClusterStatus) -> dict[str, object]:
    return dataclasses.asdict(st)


def _env(args: argparse.Namespace) -> int:
    cluster = Cluster(args.name)
    print(f"export KUBECONFIG={shlex.quote(str(cluster.kubeconfig))}")
    print(f'export PATH={shlex.quote(str(cluster.kubectl_path.parent))}:"$PATH"')
    return 0
