"""The simulator's HTTP face on loopback: ``GET /metrics`` and the JSON control endpoint.

Owns the routes and their validation (stdlib ``http.server`` in a thread):

- ``GET /metrics``: every replica's vLLM series (503 while a ``stop-metrics`` fault without a
  class is on: the scrape fails as a dead target's would);
- ``POST /control/load`` ``{"pool": "ns/name", "rps": 12.5}`` or ``{"pool": ..., "profile": {...}}``
  (404 for a pool the API server does not have, unless ``"force": true``);
- ``POST /control/fault`` ``{"kind": "stop-metrics"|"slow-class"|"clear", "acceleratorClass": ...,
  "factor": 2.0}``;
- ``GET /control/state[?window=60]``: offered load, replicas, ground-truth p95 per pool and class.

Before reading or changing anything it brings the simulation to ``clock()``.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from inferfleet_dev.simulate.load import profile_from
from inferfleet_dev.simulate.sim import Simulation

__all__ = ["ControlError", "SimServer", "apply_fault", "apply_load"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class ControlError(ValueError):
    """A control request the simulator refuses; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def apply_load(sim: Simulation, body: dict[str, Any]) -> dict[str, Any]:
    pool = body.get("pool")
    if not isinstance(pool, str) or pool.count("/") != 1 or not all(pool.split("/")):
        raise ControlError(f"'pool' must be 'namespace/name', got {pool!r}")
    if pool not in sim.pools and not body.get("force"):
        known = ", ".join(sorted(sim.pools)) or "none"
        raise ControlError(f"unknown pool {pool!r} (known: {known})", 404)
    spec = body.get("profile", body.get("rps"))
    if spec is None or isinstance(spec, bool) or not isinstance(spec, int | float | dict):
        raise ControlError("give 'rps' (a number >= 0) or 'profile' (an object)")
    if isinstance(spec, int | float) and (spec < 0 or not math.isfinite(spec)):
        raise ControlError(f"'rps' must be a finite number >= 0, got {spec!r}")
    try:
        profile = profile_from(spec)
    except (ValueError, OSError) as exc:
        raise ControlError(str(exc)) from None
    mix = body.get("mix")
    if mix is not None and (
        not isinstance(mix, list)
        or not mix
        or not all(isinstance(w, int | float) and not isinstance(w, bool) and w >= 0 for w in mix)
        or sum(mix) <= 0
    ):
        raise ControlError(f"'mix' must be a list of weights >= 0 (one per requestMix bucket), got {mix!r}")
    sim.set_load(pool, profile, mix=None if mix is None else [float(w) for w in mix])
    out: dict[str, Any] = {"pool": pool, "profile": profile.describe()}
    if mix is not None:
        out["mix"] = mix
    return out


def apply_fault(sim: Simulation, body: dict[str, Any]) -> dict[str, Any]:
    kind = body.get("kind")
    cls = body.get("acceleratorClass")
    if cls is not None and not isinstance(cls, str):
        raise ControlError("'acceleratorClass' must be a string")
    if kind == "clear":
        sim.clear_faults()
    elif kind == "stop-metrics":
        sim.stop_metrics(cls)
    elif kind == "slow-class":
        factor = body.get("factor")
        if not cls:
            raise ControlError("slow-class needs 'acceleratorClass'")
        if isinstance(factor, bool) or not isinstance(factor, int | float) or not 0 < factor < math.inf:
            raise ControlError(f"slow-class needs 'factor' > 0, got {factor!r}")
        sim.slow_class(cls, float(factor))
    else:
        raise ControlError(f"unknown fault kind {kind!r} (stop-metrics, slow-class, clear)")
    return {"faults": sim.state()["faults"]}


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: str, content_type: str = "application/json") -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _json(self, status: int, obj: Any) -> None:
        self._send(status, json.dumps(obj, indent=1, sort_keys=True) + "\n")

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        sim = self.server.sim
        with sim.lock:
            sim.advance(self.server.clock())
            if url.path == "/metrics":
                text = sim.metrics_text()
                if text is None:
                    self._send(503, "metrics stopped by a fault\n", "text/plain")
                else:
                    self._send(200, text, CONTENT_TYPE)
            elif url.path == "/control/state":
                try:
                    window = float(parse_qs(url.query).get("window", ["60"])[0])
                except ValueError:
                    self._json(400, {"error": "window must be a number of seconds"})
                    return
                self._json(200, sim.state(window))
            else:
                self._json(404, {"error": f"no such path {url.path}"})

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        routes: dict[str, Callable[[Simulation, dict[str, Any]], dict[str, Any]]] = {
            "/control/load": apply_load,
            "/control/fault": apply_fault,
        }
        route = routes.get(url.path)
        if route is None:
            self._json(404, {"error": f"no such path {url.path}"})
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            if not isinstance(body, dict):
                raise ControlError("the body must be a JSON object")
            sim = self.server.sim
            with sim.lock:
                sim.advance(self.server.clock())
                self._json(200, route(sim, body))
        except json.JSONDecodeError as exc:
            self._json(400, {"error": f"bad JSON: {exc}"})
        except ControlError as exc:
            self._json(exc.status, {"error": str(exc)})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    sim: Simulation
    clock: Callable[[], float]


class SimServer:
    """The HTTP server in a daemon thread; ``port`` 0 picks a free one (``.port`` says which)."""

    def __init__(self, sim: Simulation, clock: Callable[[], float], port: int = 9400) -> None:
        self._http = _Server(("127.0.0.1", port), _Handler)
        self._http.sim = sim
        self._http.clock = clock
        self.port: int = self._http.server_address[1]
        self._thread = threading.Thread(target=self._http.serve_forever, name="simulate-http", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> SimServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(timeout=5)
