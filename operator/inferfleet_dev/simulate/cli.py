"""``inferfleet simulate run | set-load | fault | state``: the simulator's command line.

Owns argument parsing, the flag syntaxes (``ns/pool=RPS``, ``class=value,...``), the client side
of the control endpoint, and the one-line error with exit 2 for every bad input (unknown pool,
malformed argument, unreachable simulator, port in use, missing kubeconfig).  ``run`` itself is
``inferfleet_dev.simulate.run``.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

__all__ = ["SimulateError", "control", "parse_class_values", "parse_pool_rps", "register"]

DEFAULT_URL = "http://127.0.0.1:9400"


class SimulateError(Exception):
    """Bad input or an unreachable simulator: one line for people, exit 2."""


def parse_pool_rps(text: str) -> tuple[str, float]:
    """``namespace/pool=12.5`` -> ("namespace/pool", 12.5)."""
    key, sep, value = text.partition("=")
    ns, slash, name = key.partition("/")
    if not sep or not slash or not ns or not name or "/" in name:
        raise SimulateError(f"expected NAMESPACE/POOL=RPS, got {text!r}")
    try:
        rps = float(value)
    except ValueError:
        raise SimulateError(f"expected NAMESPACE/POOL=RPS with a number, got {text!r}") from None
    if not rps >= 0 or rps == float("inf"):
        raise SimulateError(f"requests/s must be a finite number >= 0, got {value!r}")
    return key, rps


def parse_class_values(items: list[str] | None, what: str) -> dict[str, float]:
    """``["h100=10,default=5", "l4=3"]`` -> {"h100": 10, "default": 5, "l4": 3} (values > 0 or >= 0)."""
    out: dict[str, float] = {}
    for item in items or []:
        for part in item.split(","):
            cls, sep, value = part.strip().partition("=")
            try:
                number = float(value)
            except ValueError:
                number = -1.0
            if not sep or not cls or not number >= 0 or number == float("inf"):
                raise SimulateError(f"{what}: expected CLASS=NUMBER[,CLASS=NUMBER...], got {part!r}")
            out[cls] = number
    return out


def control(url: str, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """One call to the control endpoint; SimulateError with the simulator's message on failure."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        url.rstrip("/") + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            got: dict[str, Any] = json.loads(resp.read())
            return got
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read()).get("error", exc.reason)
        except (ValueError, AttributeError):
            message = exc.reason
        raise SimulateError(str(message)) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SimulateError(f"cannot reach the simulator at {url}: {reason}") from None


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``simulate`` command to the ``inferfleet`` parser."""
    parser = sub.add_parser(
        "simulate",
        help="simulated vLLM replicas for the Ready pods of a cluster (metrics + control endpoint)",
        description="Serve vLLM-compatible /metrics for every Ready pod of an InferencePool, with "
        "load, start-up delay and speed per accelerator class; control it at run time.",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    p = actions.add_parser("run", help="run the simulator (real clock) until SIGINT/SIGTERM")
    p.add_argument("--kubeconfig", type=Path, required=True)
    p.add_argument("--port", type=int, default=9400, help="loopback port (default 9400; 0: any free)")
    p.add_argument("--profile", type=Path, help="YAML/JSON: {pools: {ns/pool: profile}, tokens, seed}")
    p.add_argument("--rps", action="append", metavar="NS/POOL=RPS", help="constant load (repeatable)")
    p.add_argument("--startup-seconds", action="append", metavar="CLASS=S,...", help="model start-up")
    p.add_argument("--speed", action="append", metavar="CLASS=F,...", help="step-time factor per class")
    p.add_argument("--log", type=Path, help="ground-truth request log (JSONL)")
    p.add_argument(
        "--max-num-seqs", default="256", help="batch limit per replica, or 'planner': the planner's batch"
    )
    p.add_argument("--token-budget", type=int, default=2048, help="prefill tokens per step")
    p.add_argument("--poll-seconds", type=float, default=0.5, help="API poll interval (default 0.5)")
    p.add_argument("--keep-seconds", type=float, default=300.0, help="ground truth kept for state (300)")
    p.add_argument("--seed", type=int, default=None)
    p.set_defaults(func=_guard(_run))

    p = actions.add_parser("set-load", help="set a pool's offered load: NAMESPACE/POOL=RPS")
    p.add_argument("loads", nargs="+", metavar="NAMESPACE/POOL=RPS")
    p.add_argument(
        "--mix",
        help="weights of the pools' requestMix buckets for this load, e.g. 9,1 (default: the spec's)",
    )
    _url(p)
    p.set_defaults(func=_guard(_set_load))

    p = actions.add_parser("fault", help="inject a fault: stop-metrics | slow-class | clear")
    p.add_argument("kind", choices=("stop-metrics", "slow-class", "clear"))
    p.add_argument("--class", dest="accelerator_class", help="the accelerator class it applies to")
    p.add_argument("--factor", type=float, help="slow-class: step-time factor (2.0 = twice as slow)")
    _url(p)
    p.set_defaults(func=_guard(_fault))

    p = actions.add_parser("state", help="offered load, replicas and ground-truth p95 (JSON)")
    p.add_argument("--window", type=float, default=60.0, help="seconds of requests for the p95s")
    _url(p)
    p.set_defaults(func=_guard(_state))


def _url(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", default=DEFAULT_URL, help=f"the simulator (default {DEFAULT_URL})")


def _guard(func: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            rc: int = func(args)
        except SimulateError as exc:
            print(f"inferfleet simulate: error: {exc}", file=sys.stderr)
            return 2
        return rc

    return run


def _run(args: argparse.Namespace) -> int:
    from inferfleet_dev.simulate.run import run

    return run(args)


def _set_load(args: argparse.Namespace) -> int:
    mix = None
    if args.mix:
        try:
            mix = [float(w) for w in args.mix.split(",")]
        except ValueError:
            raise SimulateError(f"--mix must be comma-separated weights, got {args.mix!r}") from None
    for key, rps in [parse_pool_rps(text) for text in args.loads]:
        body: dict[str, Any] = {"pool": key, "rps": rps} | ({"mix": mix} if mix is not None else {})
        control(args.url, "POST", "/control/load", body)
        print(f"{key}: {rps:g} req/s" + (f", mix {args.mix}" if mix is not None else ""))
    return 0


def _fault(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"kind": args.kind}
    if args.accelerator_class:
        body["acceleratorClass"] = args.accelerator_class
    if args.kind == "slow-class":
        if not args.accelerator_class or args.factor is None:
            raise SimulateError("slow-class needs --class and --factor")
        body["factor"] = args.factor
    got = control(args.url, "POST", "/control/fault", body)
    print(json.dumps(got["faults"], sort_keys=True))
    return 0


def _state(args: argparse.Namespace) -> int:
    print(json.dumps(control(args.url, "GET", f"/control/state?window={args.window:g}"), indent=1))
    return 0
