"""Liveness and readiness: what they mean, decided from timestamps, and the port that serves them.

Owns ``assess`` (pure: ``Facts`` with every time on one clock, and ``Bounds``, in; a ``Verdict``
out) and ``HealthServer`` (``/healthz``: 200 while live, 500 with the reasons when not; ``/readyz``:
200 when ready, 503 with the reasons when not; both answer JSON).

Live means the operator can still do its job, so a restart would not help:
- the API server answered the periodic probe within ``api_unreachable_s`` (a frozen connection
  pool or a dead route to the API server fails it);
- no store of the watch cache has been silent (no LIST, WATCH, event or bookmark) for longer than
  ``watch_silence_s`` while the probe shows the API server answering and the cluster's
  resourceVersion moved past that store's (a stuck watch thread or a half-dead stream);
- as the leader, a planning round completed within ``plan_stale_s`` of the last one (or of becoming
  leader); default the larger of 3 x the loop's resync period and 120 s.
Ready means the watch cache has synced and, on the leader, a first round has completed; a follower
is ready once synced.  Readiness says nothing of liveness: a probe that fails it restarts the pod.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import logging
import socketserver
import threading
import wsgiref.simple_server
from collections.abc import Callable
from typing import Any, Final

__all__ = ["Bounds", "Facts", "HealthServer", "Problem", "Reason", "Verdict", "assess"]

log = logging.getLogger("inferfleet.health")

PLAN_STALE_MIN_S: Final = 120.0
PLAN_STALE_RESYNCS: Final = 3


class Reason(enum.StrEnum):
    NOT_STARTED = "NotStarted"
    API_UNREACHABLE = "APIUnreachable"
    WATCH_STALLED = "WatchStalled"
    PLAN_STALE = "PlanStale"
    CACHE_NOT_SYNCED = "CacheNotSynced"
    NO_ROUND_YET = "NoRoundYet"


@dataclasses.dataclass(frozen=True)
class Problem:
    reason: Reason
    message: str


@dataclasses.dataclass(frozen=True)
class Bounds:
    api_unreachable_s: float = 120.0
    watch_silence_s: float = 360.0
    plan_stale_s: float | None = None  # None: max(3 x resync period, 120 s)

    def plan_bound(self, resync_s: float) -> float:
        if self.plan_stale_s is not None:
            return self.plan_stale_s
        return max(PLAN_STALE_RESYNCS * resync_s, PLAN_STALE_MIN_S)


@dataclasses.dataclass(frozen=True)
class Facts:
    """Every time on one clock (seconds); None: never happened."""

    now: float
    started_at: float  # the process (before the runtime starts) or the watch cache (after)
    started: bool = True  # the runtime (watch cache, loop, election) is running
    probing: bool = True  # the API probe runs
    synced: bool = False
    leader: bool = False
    leader_since: float | None = None
    last_round: float | None = None
    resync_s: float = 60.0
    quiet_store: str | None = None
    quiet_since: float | None = None
    moved_on: bool = False
    probe_ok_at: float | None = None
    probe_error: str | None = None


@dataclasses.dataclass(frozen=True)
class Verdict:
    live: tuple[Problem, ...]  # why not live (empty: live)
    ready: tuple[Problem, ...]  # why not ready (empty: ready)

    @property
    def is_live(self) -> bool:
        return not self.live

    @property
    def is_ready(self) -> bool:
        return not self.ready


def _since(now: float, at: float) -> str:
    return f"{now - at:.0f}s"


def assess(facts: Facts, bounds: Bounds) -> Verdict:
    """Whether the operator is live and ready, and why not."""
    f = facts
    live: list[Problem] = []
    if not f.started:
        if f.now - f.started_at > bounds.api_unreachable_s:
            live.append(
                Problem(Reason.NOT_STARTED, f"not started {_since(f.now, f.started_at)} after launch")
            )
        return Verdict(tuple(live), (Problem(Reason.NOT_STARTED, "the runtime has not started yet"),))
    if f.probing:
        answered = f.started_at if f.probe_ok_at is None else f.probe_ok_at
        if f.now - answered > bounds.api_unreachable_s:
            last = "never" if f.probe_ok_at is None else f"{_since(f.now, f.probe_ok_at)} ago"
            live.append(
                Problem(
                    Reason.API_UNREACHABLE,
                    f"the API server last answered the probe {last} (bound {bounds.api_unreachable_s:.0f}s)"
                    + (f": {f.probe_error}" if f.probe_error else ""),
                )
            )
    heard = f.started_at if f.quiet_since is None else f.quiet_since
    if (
        f.now - heard > bounds.watch_silence_s
        and f.probe_ok_at is not None
        and f.probe_ok_at > heard
        and f.moved_on
    ):
        live.append(
            Problem(
                Reason.WATCH_STALLED,
                f"the {f.quiet_store} watch has heard nothing for {_since(f.now, heard)} "
                f"(bound {bounds.watch_silence_s:.0f}s) while the API server answers and has moved on",
            )
        )
    if f.leader:
        since = f.started_at if f.leader_since is None else f.leader_since
        bound = bounds.plan_bound(f.resync_s)
        if f.last_round is None or f.last_round < since:
            if f.now - since > bound:
                what = f"no planning round completed in the {_since(f.now, since)} since leading began"
                live.append(Problem(Reason.PLAN_STALE, f"{what} (bound {bound:.0f}s)"))
        elif f.now - f.last_round > bound:
            what = f"the last planning round completed {_since(f.now, f.last_round)} ago"
            live.append(Problem(Reason.PLAN_STALE, f"{what} (bound {bound:.0f}s)"))
    ready: list[Problem] = []
    if not f.synced:
        ready.append(Problem(Reason.CACHE_NOT_SYNCED, "the watch cache has not listed every source yet"))
    if f.leader and f.last_round is None:
        ready.append(Problem(Reason.NO_ROUND_YET, "the leader has not completed a planning round yet"))
    return Verdict(tuple(live), tuple(ready))


CheckFn = Callable[[], tuple[Verdict, dict[str, Any]]]  # the verdict and details to show


_STATUS: Final = {
    200: "200 OK",
    404: "404 Not Found",
    500: "500 Internal Server Error",
    503: "503 Service Unavailable",
}


class _Server(socketserver.ThreadingMixIn, wsgiref.simple_server.WSGIServer):
    daemon_threads = True


class _Quiet(wsgiref.simple_server.WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)


class HealthServer:
    """``/healthz`` and ``/readyz`` on ``port`` (all interfaces), each a fresh ``check()``.  A WSGI
    app on the standard library's server (the runtime's import contract keeps ``http`` for
    clients: there is none here)."""

    def __init__(self, port: int, check: CheckFn, host: str = "0.0.0.0") -> None:
        self._check = check
        self._httpd = wsgiref.simple_server.make_server(
            host, port, self._app, server_class=_Server, handler_class=_Quiet
        )
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="inferfleet-health", daemon=True
        )

    def answer(self, path: str) -> tuple[int, dict[str, Any]]:
        """The status and body of a GET of ``path``."""
        if path not in ("/healthz", "/readyz"):
            return 404, {"error": f"no such endpoint {path}; try /healthz or /readyz"}
        try:
            verdict, details = self._check()
        except Exception as exc:  # a check that crashes is a failed check, said so
            log.exception("health check failed")
            return 500, {"status": "error", "error": f"{type(exc).__name__}: {exc}"}
        problems = verdict.live if path == "/healthz" else verdict.ready
        code = 200 if not problems else (500 if path == "/healthz" else 503)
        return code, {
            "status": "ok" if not problems else "failing",
            "problems": [{"reason": str(p.reason), "message": p.message} for p in problems],
            **details,
        }

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        code, body = self.answer(str(environ.get("PATH_INFO") or "/"))
        data = json.dumps(body, sort_keys=True).encode()
        start_response(
            _STATUS[code], [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
        )
        return [data]

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def start(self) -> HealthServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
