"""``inferfleet run``: start the operator (argument parsing only; kopf is imported when it runs,
by ``controller.main``)."""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import yaml

__all__ = ["register", "with_context"]


class _InputError(Exception):
    pass


def with_context(kubeconfig: str | None, context: str) -> str:
    """A kubeconfig path list whose current context is ``context``: the kubeconfig in use (``kubeconfig``,
    else $KUBECONFIG, else ~/.kube/config) followed by a file of ours naming only ``current-context``.

    kopf's login and the operator's client both load the kubeconfig through the client library with no
    context argument; the library merges a ':'-separated list and takes the last ``current-context`` it
    reads, so the context file goes last.  It is removed when the process exits."""
    home = Path("~/.kube/config").expanduser()
    path = kubeconfig or os.environ.get("KUBECONFIG") or (str(home) if home.is_file() else None)
    if not path:
        raise _InputError(f"--context {context}: no kubeconfig to find it in (--kubeconfig, $KUBECONFIG)")
    known: list[str] = []
    for part in filter(None, path.split(os.pathsep)):
        try:
            doc = yaml.safe_load(Path(part).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise _InputError(f"kubeconfig {part}: {exc}") from None
        known += [str(c.get("name")) for c in doc.get("contexts") or [] if isinstance(c, dict)]
    if context not in known:
        raise _InputError(f"--context {context}: no such context in {path} (it has: {', '.join(known)})")
    folder = tempfile.mkdtemp(prefix="inferfleet-context-")
    atexit.register(shutil.rmtree, folder, True)
    chosen = Path(folder) / "context.yaml"
    chosen.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "current-context": context}))
    return f"{path}{os.pathsep}{chosen}"


def _run(args: argparse.Namespace) -> int:
    problem = _check(args)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        kubeconfig = with_context(args.kubeconfig, args.context) if args.context else args.kubeconfig
    except _InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if kubeconfig:
        # kopf's own login reads it too, through the client library, which reads $KUBECONFIG once at
        # import (building the parser already imported it), so point its default here as well.
        from inferfleet.kube.client import use_kubeconfig

        use_kubeconfig(kubeconfig)
    from inferfleet.cli.logs import configure

    configure(args.log_level, args.log_format)
    from inferfleet.controller.main import serve
    from inferfleet.controller.runtime import Config

    config = Config(
        kubeconfig=kubeconfig,
        namespace=args.namespace,
        metrics_port=args.metrics_port,
        metrics_secure=args.metrics_secure,
        metrics_cert_file=args.metrics_cert_file,
        metrics_key_file=args.metrics_key_file,
        leader_elect=args.leader_elect,
        lease_duration_s=args.leader_elect_lease_duration,
        renew_deadline_s=args.leader_elect_renew_deadline,
        retry_period_s=args.leader_elect_retry_period,
        lease_namespace=args.lease_namespace,
        identity=args.identity or Config().identity,
        prometheus_url=args.prometheus_url,
        prometheus_token_file=args.prometheus_token_file,
        prometheus_ca_file=args.prometheus_ca_file,
        prometheus_window=args.prometheus_window,
        prometheus_burst_window=args.prometheus_burst_window,
        probe_s=args.api_probe_seconds,
        api_unreachable_s=args.api_unreachable_seconds,
        watch_silence_s=args.watch_silence_seconds,
        plan_stale_s=args.plan_stale_seconds,
    )
    serve(config, args.health_port)
    return 0


def _duration(text: str) -> str:
    from inferfleet.observe.queries import duration_seconds

    try:
        duration_seconds(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, not {text}")
    return value


def _check(args: argparse.Namespace) -> str | None:
    """Cross-flag rules argparse cannot express: what is wrong, in one line (None: nothing)."""
    lease, renew, retry = (
        args.leader_elect_lease_duration,
        args.leader_elect_renew_deadline,
        args.leader_elect_retry_period,
    )
    if not retry < renew < lease:
        return (
            "need --leader-elect-retry-period < --leader-elect-renew-deadline < "
            f"--leader-elect-lease-duration, got {retry:g}, {renew:g}, {lease:g}"
        )
    if bool(args.metrics_cert_file) != bool(args.metrics_key_file):
        return "--metrics-cert-file and --metrics-key-file go together"
    if args.metrics_secure and not args.metrics_cert_file:
        return "--metrics-secure needs --metrics-cert-file and --metrics-key-file (its TLS certificate)"
    for flag in ("metrics_cert_file", "metrics_key_file"):
        path = getattr(args, flag)
        if path and not os.path.isfile(path):
            return f"--{flag.replace('_', '-')} {path}: no such file"
    return None


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("run", help="run the operator", description="Run the inferfleet operator (kopf).")
    p.add_argument(
        "--kubeconfig", default=None, help="kubeconfig (default: $KUBECONFIG, ~/.kube/config, in-cluster)"
    )
    p.add_argument(
        "--context", metavar="NAME", default=None, help="a kubeconfig context other than the current one"
    )
    p.add_argument("--namespace", default=None, help="watch one namespace (default: all)")
    p.add_argument("--metrics-port", type=int, default=8080, help="Prometheus metrics port (0: off)")
    p.add_argument(
        "--metrics-secure",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="serve the metrics over HTTPS and only to a bearer token the API server authenticates "
        "(TokenReview) whose user may get /metrics (SubjectAccessReview)",
    )
    p.add_argument("--metrics-cert-file", default=None, help="TLS certificate (PEM) of the metrics endpoint")
    p.add_argument("--metrics-key-file", default=None, help="TLS private key (PEM) of the metrics endpoint")
    p.add_argument(
        "--health-port",
        type=int,
        default=8081,
        help="port of /healthz (liveness) and /readyz (readiness) (0: off)",
    )
    p.add_argument(
        "--api-probe-seconds",
        type=float,
        default=10.0,
        help="period of the API server probe (a LIST of one node) that liveness reads (0: no probe)",
    )
    p.add_argument(
        "--api-unreachable-seconds",
        type=float,
        default=120.0,
        help="/healthz fails once the API server has not answered the probe for this long",
    )
    p.add_argument(
        "--watch-silence-seconds",
        type=float,
        default=360.0,
        help="/healthz fails once a watch has heard nothing (no event, bookmark or reconnect) for this long "
        "while the API server answers and has moved on (watches reconnect every 300 s)",
    )
    p.add_argument(
        "--plan-stale-seconds",
        type=float,
        default=None,
        help="/healthz fails once the leader has completed no planning round for this long "
        "(default: 3 x the resync period or 120 s, whichever is larger)",
    )
    p.add_argument(
        "--leader-elect",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Lease-based leader election (run 2 replicas for HA)",
    )
    p.add_argument(
        "--leader-elect-lease-duration",
        type=_seconds,
        default=15.0,
        help="seconds a standby waits on an unchanged Lease before taking it over",
    )
    p.add_argument(
        "--leader-elect-renew-deadline",
        type=_seconds,
        default=10.0,
        help="seconds the leader keeps leading without a successful renewal (less than the duration)",
    )
    p.add_argument(
        "--leader-elect-retry-period",
        type=_seconds,
        default=2.0,
        help="seconds between renewals and between a standby's attempts (less than the renew deadline)",
    )
    p.add_argument("--lease-namespace", default=os.environ.get("POD_NAMESPACE", "default"))
    p.add_argument("--identity", default=os.environ.get("POD_NAME"), help="leader election identity")
    p.add_argument(
        "--prometheus-url",
        default=os.environ.get("INFERFLEET_PROMETHEUS_URL"),
        help="Prometheus to read SLO metrics from for autoscaled pools (default: none)",
    )
    p.add_argument("--prometheus-token-file", default=None, help="bearer token file for Prometheus")
    p.add_argument("--prometheus-ca-file", default=None, help="CA bundle for Prometheus's TLS")
    p.add_argument(
        "--prometheus-window",
        default="2m",
        type=_duration,
        help="rate and quantile window of the default queries (scale-down and learning read it)",
    )
    p.add_argument(
        "--prometheus-burst-window",
        default=None,
        type=_duration,
        help="short window that lets a load step scale up within a few scrapes (default: window / 4)",
    )
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    p.add_argument(
        "--log-format",
        default="text",
        choices=("text", "json"),
        help="text lines, or one JSON object a line (time, level, logger, message)",
    )
    p.set_defaults(func=_run)
