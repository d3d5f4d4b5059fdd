"""``inferfleet simulate run``: the simulator on the real clock until SIGINT/SIGTERM.

Owns putting the parts together for a live run: the profile file (``{seed, tokens, pools: {ns/pool:
profile}}``), the Kubernetes client from ``--kubeconfig``, the HTTP server on 127.0.0.1, the fleet
watcher thread, the clock loop (advance every 50 ms) and a clean shutdown (threads stopped, the
request log closed, exit 0).  Every expected failure is a ``SimulateError`` (exit 2).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import IO, Any

import yaml

from inferfleet_dev.simulate.cli import SimulateError, parse_class_values, parse_pool_rps
from inferfleet_dev.simulate.engine import RealClock
from inferfleet_dev.simulate.fleet import FleetWatcher
from inferfleet_dev.simulate.load import Profile, profile_from, tokens_from
from inferfleet_dev.simulate.record import Recorder
from inferfleet_dev.simulate.server import SimServer
from inferfleet_dev.simulate.sim import Simulation

__all__ = ["load_profile_file", "run"]

TICK_SECONDS = 0.05


def load_profile_file(path: Path) -> tuple[dict[str, Any], dict[str, Profile]]:
    """(the file's mapping, its pools' profiles); SimulateError with the reason when it is bad."""
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(doc, dict) or not isinstance(doc.get("pools", {}), dict):
            raise ValueError("expected a mapping with 'pools: {namespace/pool: profile}'")
        profiles = {}
        for key, spec in (doc.get("pools") or {}).items():
            parse_pool_rps(f"{key}=0")  # the key's shape
            profiles[str(key)] = profile_from(spec, base=path.parent)
        tokens_from(doc.get("tokens"))
    except (OSError, ValueError, yaml.YAMLError, AttributeError, TypeError) as exc:
        raise SimulateError(f"{path}: {exc}") from None
    return doc, profiles


def _positive_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise SimulateError(f"--max-num-seqs: expected a number or 'planner', got {text!r}") from None


def _api_client(kubeconfig: Path) -> Any:
    from kubernetes import config

    if not kubeconfig.is_file():
        raise SimulateError(f"no kubeconfig at {kubeconfig}")
    try:
        return config.new_client_from_config(config_file=str(kubeconfig), persist_config=False)
    except Exception as exc:  # the client raises its own ConfigException, and others
        raise SimulateError(f"{kubeconfig}: {exc}") from None


def run(args: argparse.Namespace) -> int:
    doc: dict[str, Any] = {}
    profiles: dict[str, Profile] = {}
    if args.profile is not None:
        doc, profiles = load_profile_file(args.profile)
    for text in args.rps or []:
        key, rps = parse_pool_rps(text)
        profiles[key] = profile_from(rps)
    startup = parse_class_values(args.startup_seconds, "--startup-seconds")
    speed = parse_class_values(args.speed, "--speed")
    if any(v <= 0 for v in speed.values()):
        raise SimulateError("--speed: factors must be > 0")
    max_num_seqs = None if args.max_num_seqs == "planner" else _positive_int(args.max_num_seqs)
    if (max_num_seqs is not None and max_num_seqs < 1) or args.token_budget < 1:
        raise SimulateError("--max-num-seqs (or 'planner') and --token-budget must be >= 1")
    if not args.keep_seconds > 0 or not args.poll_seconds > 0:
        raise SimulateError("--keep-seconds and --poll-seconds must be > 0")
    api = _api_client(args.kubeconfig)
    log: IO[str] | None = None
    if args.log is not None:
        try:
            log = args.log.open("a", encoding="utf-8", buffering=1)
        except OSError as exc:
            raise SimulateError(f"cannot open the request log: {exc}") from None
    clock = RealClock()
    seed = args.seed if args.seed is not None else int(doc.get("seed", 1))
    sim = Simulation(
        startup_seconds=startup,
        speed=speed,
        max_num_seqs=max_num_seqs,
        token_budget=args.token_budget,
        tokens=tokens_from(doc.get("tokens")),
        seed=seed,
        recorder=Recorder(keep_seconds=args.keep_seconds, log=log),
    )
    sim.advance(clock.now())
    for key, profile in profiles.items():
        sim.set_load(key, profile)
    try:
        server = SimServer(sim, clock.now, args.port)
    except OSError as exc:
        raise SimulateError(f"cannot listen on 127.0.0.1:{args.port}: {exc.strerror or exc}") from None
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    watcher = FleetWatcher(sim, api, clock.now, interval=args.poll_seconds)
    try:
        server.start()
        watcher.start()
        print(f"simulate: serving {server.url}/metrics and {server.url}/control", file=sys.stderr, flush=True)
        while not stop.wait(TICK_SECONDS):
            with sim.lock:
                sim.advance(clock.now())
    finally:
        watcher.stop()
        server.stop()
        for s, handler in previous.items():
            signal.signal(s, handler)
        with contextlib.suppress(Exception):
            api.close()
        if log is not None:
            log.close()
    summary = {"requests": sim.recorder.total, "replicas": len(sim.replicas)}
    print(f"simulate: stopped ({json.dumps(summary)})", file=sys.stderr, flush=True)
    return 0
