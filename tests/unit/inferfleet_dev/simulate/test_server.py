"""The HTTP face on 127.0.0.1: /metrics, and the control endpoint's round trips and refusals."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from inferfleet.core.types import AcceleratorClass, Pool
from inferfleet_dev.simulate.server import SimServer
from inferfleet_dev.simulate.sim import Pod, Simulation


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def served(
    pools: dict[str, Pool], classes: dict[str, AcceleratorClass]
) -> Iterator[tuple[SimServer, Simulation, Clock]]:
    sim, clock = Simulation(), Clock()
    sim.sync(
        pools, classes, [Pod("chat", "a", "chat-70b", "h100", 0.0), Pod("chat", "b", "chat-70b", "l4", 0.0)]
    )
    server = SimServer(sim, clock, port=0).start()
    yield server, sim, clock
    server.stop()


def call(server: SimServer, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = urllib.request.Request(server.url + path, data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            raw = resp.read().decode()
            status = resp.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read().decode(), exc.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw


def test_load_round_trip_and_metrics(served: tuple[SimServer, Simulation, Clock]) -> None:
    server, _, clock = served
    assert server.url.startswith("http://127.0.0.1:") and server.port > 0
    status, got = call(server, "POST", "/control/load", {"pool": "chat/chat-70b", "rps": 12.5})
    assert status == 200 and got["profile"] == {"kind": "constant", "rps": 12.5}
    clock.t = 60.0  # past the first requests' ~10 s of decode steps
    status, state = call(server, "GET", "/control/state?window=20")
    assert status == 200 and state["time"] == 60.0 and state["windowSeconds"] == 20.0
    chat = state["pools"]["chat/chat-70b"]
    assert chat["offeredRps"] == 12.5 and chat["requests"] > 100
    assert set(state["replicas"]) == {"chat/a", "chat/b"}
    assert {"waiting", "running", "kvCacheUsage"} <= set(state["replicas"]["chat/a"])
    profile = {"kind": "square", "low": 1, "high": 5, "period": 10}
    status, got = call(server, "POST", "/control/load", {"pool": "chat/chat-70b", "profile": profile})
    assert status == 200 and got["profile"] == {"kind": "square", "low": 1.0, "high": 5.0, "period": 10.0}
    status, text = call(server, "GET", "/metrics")
    assert status == 200
    names = {f.name for f in text_string_to_metric_families(text)}
    assert "vllm:time_to_first_token_seconds" in names and "vllm:request_success" in names


def test_faults_round_trip(served: tuple[SimServer, Simulation, Clock]) -> None:
    server, sim, _ = served
    status, got = call(
        server, "POST", "/control/fault", {"kind": "slow-class", "acceleratorClass": "l4", "factor": 2}
    )
    assert status == 200 and got["faults"]["slow"] == {"l4": 2.0}
    assert sim.replicas["chat/b"].engine.speed == 2.0
    assert (
        call(server, "POST", "/control/fault", {"kind": "stop-metrics", "acceleratorClass": "l4"})[0] == 200
    )
    status, text = call(server, "GET", "/metrics")
    assert status == 200 and 'pod="a"' in text and 'pod="b"' not in text
    assert call(server, "POST", "/control/fault", {"kind": "stop-metrics"})[0] == 200
    assert call(server, "GET", "/metrics")[0] == 503
    status, got = call(server, "POST", "/control/fault", {"kind": "clear"})
    assert status == 200 and got["faults"] == {"slow": {}, "stopMetrics": []}
    assert call(server, "GET", "/metrics")[0] == 200 and sim.replicas["chat/b"].engine.speed == 1.0


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/control/load", {"pool": "chat/nope", "rps": 1}, 404, "unknown pool 'chat/nope' (known: "),
        ("/control/load", {"pool": "chat-70b", "rps": 1}, 400, "'pool' must be 'namespace/name'"),
        ("/control/load", {"pool": "chat/chat-70b", "rps": -1}, 400, "'rps' must be a finite number >= 0"),
        ("/control/load", {"pool": "chat/chat-70b"}, 400, "give 'rps'"),
        (
            "/control/load",
            {"pool": "chat/chat-70b", "profile": {"kind": "wave"}},
            400,
            "unknown profile kind",
        ),
        ("/control/load", b"{not json", 400, "bad JSON"),
        ("/control/load", [1, 2], 400, "the body must be a JSON object"),
        ("/control/fault", {"kind": "melt"}, 400, "unknown fault kind 'melt'"),
        ("/control/fault", {"kind": "slow-class", "acceleratorClass": "l4"}, 400, "needs 'factor' > 0"),
        ("/control/fault", {"kind": "slow-class", "factor": 2}, 400, "needs 'acceleratorClass'"),
        ("/control/nothing", {}, 404, "no such path"),
    ],
)
def test_bad_control_requests_are_refused_with_a_reason(
    served: tuple[SimServer, Simulation, Clock], path: str, body: Any, status: int, message: str
) -> None:
    got_status, got = call(served[0], "POST", path, body)
    assert got_status == status and message in got["error"]
    assert served[1].loads == {}  # nothing changed


def test_a_forced_load_may_name_a_pool_not_seen_yet(served: tuple[SimServer, Simulation, Clock]) -> None:
    status, _ = call(served[0], "POST", "/control/load", {"pool": "later/pool", "rps": 3, "force": True})
    assert status == 200 and served[1].state()["pools"]["later/pool"]["known"] is False
