"""Liveness and readiness from timestamps (a fake clock: every time is a number on one clock), the
health port's answers over real HTTP, and the runtime's facts from its cache and loop.

The review's case is here by name: a frozen API server behind an open port answered 200 on
``/healthz`` for 180 s while the last plan aged to 178 s; it now fails liveness past either bound.
"""

from __future__ import annotations

import dataclasses
import json
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from inferfleet.controller.health import Bounds, Facts, HealthServer, Reason, Verdict, assess
from inferfleet.controller.runtime import Config, Runtime
from inferfleet.kube.informer import CacheHealth

T0 = 1000.0
BOUNDS = Bounds(api_unreachable_s=120.0, watch_silence_s=360.0)  # plan: max(3 x 60, 120) = 180


def healthy(now: float, **kw: Any) -> Facts:
    """A synced leader that planned 10 s ago, whose watches and probe heard from the server 1 s ago."""
    base = dict(
        now=now,
        started_at=T0,
        synced=True,
        leader=True,
        leader_since=T0,
        last_round=now - 10,
        resync_s=60.0,
        quiet_store="Node",
        quiet_since=now - 1,
        moved_on=True,
        probe_ok_at=now - 1,
    )
    return Facts(**{**base, **kw})


LIVENESS = [
    pytest.param(healthy(T0 + 5000), BOUNDS, [], id="a healthy leader long after start is live"),
    pytest.param(
        healthy(T0 + 5000, probe_ok_at=T0 + 5000 - 121, probe_error="ReadTimeoutError"),
        BOUNDS,
        [Reason.API_UNREACHABLE],
        id="the API server has not answered the probe for 121 s: not live",
    ),
    pytest.param(
        healthy(T0 + 5000, probe_ok_at=T0 + 5000 - 119),
        BOUNDS,
        [],
        id="119 s without an answer is within the bound",
    ),
    pytest.param(
        healthy(T0 + 121, probe_ok_at=None),
        BOUNDS,
        [Reason.API_UNREACHABLE],
        id="never an answer since start, past the bound: not live",
    ),
    pytest.param(
        healthy(T0 + 60, probe_ok_at=None, last_round=None),
        BOUNDS,
        [],
        id="a fresh start without an answer yet is live",
    ),
    pytest.param(
        healthy(T0 + 5000, probe_ok_at=None, probing=False),
        BOUNDS,
        [],
        id="no probe configured: the API bound does not apply",
    ),
    pytest.param(
        healthy(T0 + 5000, last_round=T0 + 5000 - 178, probe_ok_at=T0 + 5000 - 180),
        BOUNDS,
        [Reason.API_UNREACHABLE],
        id="the review's freeze: 180 s without an answer, plan 178 s old: not live",
    ),
    pytest.param(
        healthy(T0 + 5000, quiet_since=T0 + 5000 - 361),
        BOUNDS,
        [Reason.WATCH_STALLED],
        id="a watch silent for 361 s while the API answers and moved on: not live",
    ),
    pytest.param(
        healthy(T0 + 5000, quiet_since=T0 + 5000 - 361, moved_on=False),
        BOUNDS,
        [],
        id="a silent watch on a cluster where nothing was written is live",
    ),
    pytest.param(
        healthy(T0 + 5000, quiet_since=T0 + 5000 - 400, probe_ok_at=T0 + 5000 - 401),
        BOUNDS,
        [Reason.API_UNREACHABLE],
        id="a silent watch with a silent API server is the API's failure, not the watch's",
    ),
    pytest.param(
        healthy(T0 + 400, quiet_since=None),
        BOUNDS,
        [Reason.WATCH_STALLED],
        id="a store never heard from 400 s after start: not live",
    ),
    pytest.param(
        healthy(T0 + 5000, last_round=T0 + 5000 - 181),
        BOUNDS,
        [Reason.PLAN_STALE],
        id="the leader's last round 181 s ago, bound max(3 x 60, 120): not live",
    ),
    pytest.param(
        healthy(T0 + 5000, last_round=T0 + 5000 - 179),
        BOUNDS,
        [],
        id="the leader's last round 179 s ago is within the bound",
    ),
    pytest.param(
        healthy(T0 + 5000, last_round=T0 + 5000 - 121, resync_s=10.0),
        BOUNDS,
        [Reason.PLAN_STALE],
        id="a short resync period still waits 120 s at least, and not more",
    ),
    pytest.param(
        healthy(T0 + 5000, last_round=T0 + 5000 - 500),
        dataclasses.replace(BOUNDS, plan_stale_s=600.0),
        [],
        id="an explicit plan bound replaces the default",
    ),
    pytest.param(
        healthy(T0 + 5000, last_round=T0 + 5000 - 5000, leader=False),
        BOUNDS,
        [],
        id="a follower never plans and is live",
    ),
    pytest.param(
        healthy(T0 + 5000, last_round=T0 + 100, leader_since=T0 + 5000 - 30),
        BOUNDS,
        [],
        id="a new leader's clock starts when it took over, not at its last round as leader",
    ),
    pytest.param(
        healthy(T0 + 5000, last_round=None, leader_since=T0 + 5000 - 200),
        BOUNDS,
        [Reason.PLAN_STALE],
        id="a leader that never completed a round in 200 s: not live",
    ),
    pytest.param(
        Facts(now=T0 + 10, started_at=T0, started=False),
        BOUNDS,
        [],
        id="the runtime still starting is live",
    ),
    pytest.param(
        Facts(now=T0 + 121, started_at=T0, started=False),
        BOUNDS,
        [Reason.NOT_STARTED],
        id="the runtime not started 121 s after launch: not live",
    ),
]


@pytest.mark.parametrize(("facts", "bounds", "reasons"), LIVENESS)
def test_liveness(facts: Facts, bounds: Bounds, reasons: list[Reason]) -> None:
    verdict = assess(facts, bounds)
    assert [p.reason for p in verdict.live] == reasons
    assert verdict.is_live == (not reasons)


READINESS = [
    pytest.param(healthy(T0 + 5), [], id="a synced leader with a round done is ready"),
    pytest.param(healthy(T0 + 5, synced=False), [Reason.CACHE_NOT_SYNCED], id="not synced: not ready"),
    pytest.param(
        healthy(T0 + 5, last_round=None), [Reason.NO_ROUND_YET], id="a leader before its first round"
    ),
    pytest.param(
        healthy(T0 + 5, leader=False, last_round=None), [], id="a synced follower is ready without a round"
    ),
    pytest.param(
        healthy(T0 + 5, leader=False, synced=False), [Reason.CACHE_NOT_SYNCED], id="an unsynced follower"
    ),
    pytest.param(
        Facts(now=T0 + 5, started_at=T0, started=False), [Reason.NOT_STARTED], id="not started: not ready"
    ),
    pytest.param(
        healthy(T0 + 5000, probe_ok_at=T0),
        [],
        id="readiness does not repeat liveness: a dead API is still ready",
    ),
]


@pytest.mark.parametrize(("facts", "reasons"), READINESS)
def test_readiness(facts: Facts, reasons: list[Reason]) -> None:
    assert [p.reason for p in assess(facts, BOUNDS).ready] == reasons


def test_the_reasons_say_what_and_how_long() -> None:
    verdict = assess(
        healthy(T0 + 5000, probe_ok_at=T0 + 4800, probe_error="ReadTimeoutError", last_round=T0 + 4700),
        BOUNDS,
    )
    messages = [p.message for p in verdict.live]
    assert messages == [
        "the API server last answered the probe 200s ago (bound 120s): ReadTimeoutError",
        "the last planning round completed 300s ago (bound 180s)",
    ]


# ---- the port --------------------------------------------------------------------------------------
def get(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as rsp:
            return rsp.status, json.loads(rsp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_port_answers_200_when_live_and_ready_500_and_503_with_reasons_when_not() -> None:
    state: dict[str, Facts] = {"facts": healthy(T0 + 5)}

    def check() -> tuple[Verdict, dict[str, Any]]:
        return assess(state["facts"], BOUNDS), {"leader": True}

    server = HealthServer(0, check, host="127.0.0.1").start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        assert get(f"{base}/healthz") == (200, {"status": "ok", "problems": [], "leader": True})
        assert get(f"{base}/readyz")[0] == 200
        state["facts"] = healthy(T0 + 5000, probe_ok_at=T0, synced=False)
        code, body = get(f"{base}/healthz")
        assert (code, body["status"], [p["reason"] for p in body["problems"]]) == (
            500,
            "failing",
            ["APIUnreachable"],
        )
        code, body = get(f"{base}/readyz")
        assert (code, [p["reason"] for p in body["problems"]]) == (503, ["CacheNotSynced"])
        assert get(f"{base}/nothing")[0] == 404
    finally:
        server.stop()


def test_a_check_that_crashes_fails_liveness() -> None:
    def check() -> tuple[Verdict, dict[str, Any]]:
        raise RuntimeError("boom")

    server = HealthServer(0, check, host="127.0.0.1").start()
    try:
        code, body = get(f"http://127.0.0.1:{server.port}/healthz")
        assert (code, body["error"]) == (500, "RuntimeError: boom")
    finally:
        server.stop()


# ---- the runtime's facts ---------------------------------------------------------------------------
class FakeCache:
    def __init__(self, health: CacheHealth) -> None:
        self._health = health

    def health(self) -> CacheHealth:
        return self._health

    def synced(self) -> bool:
        return self._health.synced


class FakeLoop:
    def __init__(self, last_success: float | None, resync_s: float) -> None:
        self.last_success = last_success
        self.resync_s = resync_s


def test_the_runtime_moves_the_loops_wall_clock_onto_the_monotonic_one_and_reads_its_resync() -> None:
    rt = Runtime()
    rt.configure(Config(leader_elect=False, plan_stale_s=None))
    now = time.monotonic()
    rt._cache = FakeCache(
        CacheHealth(
            synced=True,
            started_at=now - 1000,
            quiet_store="Pod",
            quiet_since=now - 2,
            moved_on=True,
            probe_ok_at=now - 3,
            probe_error=None,
        )
    )
    rt.loop = FakeLoop(time.time() - 200, resync_s=30.0)  # type: ignore[assignment]
    rt._leader_since = now - 1000
    facts = rt.facts()
    assert facts.leader and facts.synced and facts.resync_s == 30.0
    assert facts.last_round is not None and abs((facts.now - facts.last_round) - 200) < 1
    verdict, details = rt.check()
    assert [p.reason for p in verdict.live] == [Reason.PLAN_STALE], "200 s > max(3 x 30, 120)"
    assert details["quietestWatch"] == "Pod" and details["cacheSynced"] is True
    rt.loop.last_success = time.time() - 5  # type: ignore[misc]
    assert rt.check()[0].is_live


def test_a_runtime_not_started_is_not_ready_and_says_so() -> None:
    verdict, _ = Runtime().check()
    assert verdict.is_live and [p.reason for p in verdict.ready] == [Reason.NOT_STARTED]
