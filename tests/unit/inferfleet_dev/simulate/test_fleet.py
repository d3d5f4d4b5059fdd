"""The fleet reader: pods, pools and classes from the API's raw LISTs (validated, converted), synced
into the simulation; an invalid object is reported, an API error keeps the last picture."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from examples import example_docs

from inferfleet.api.labels import ACCELERATOR_CLASS, POOL
from inferfleet.kube.client import TransientAPIError
from inferfleet_dev.simulate import fleet
from inferfleet_dev.simulate.sim import Simulation

READY = {"type": "Ready", "status": "True", "lastTransitionTime": "2026-12-01T10:00:00Z"}


def pod(name: str, pool: str = "chat-70b", cls: str = "h100") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "chat", "labels": {POOL: pool, ACCELERATOR_CLASS: cls}},
        "status": {"conditions": [READY]},
    }


class FakeAPI:
    """Answers the four LISTs the reader makes, or fails them all."""

    def __init__(self) -> None:
        docs = example_docs()
        self.pools = [d for d in docs if d["kind"] == "InferencePool"]
        self.classes = [d for d in docs if d["kind"] == "AcceleratorClass"]
        self.pods = [pod("a"), pod("b", cls="mi300x")]
        self.config_maps: list[dict[str, Any]] = []
        self.down = False
        self.calls: list[tuple[str, list[tuple[str, str]]]] = []

    def request(self, api: Any, method: str, path: str, *, query: Any = (), timeout: Any = None) -> Any:
        assert api is self and method == "GET"
        self.calls.append((path, list(query)))
        if self.down:
            raise TransientAPIError("GET: connection refused")
        if path.endswith("/inferencepools"):
            return {"items": copy.deepcopy(self.pools)}
        if path.endswith("/acceleratorclasses"):
            return {"items": copy.deepcopy(self.classes)}
        if path == "/api/v1/configmaps":
            return {"items": copy.deepcopy(self.config_maps)}
        assert path == "/api/v1/pods"
        return {"items": copy.deepcopy(self.pods)}


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> FakeAPI:
    fake = FakeAPI()
    monkeypatch.setattr(fleet, "request", fake.request)
    return fake


def test_the_watcher_syncs_the_ready_pods_and_keeps_them_through_an_api_error(api: FakeAPI) -> None:
    sim = Simulation()
    logged: list[str] = []
    watcher = fleet.FleetWatcher(sim, api, clock=lambda: 5.0, log=logged.append)
    watcher.poll_once()
    assert watcher.synced.is_set() and watcher.passes == 1
    assert sorted(sim.replicas) == ["chat/a", "chat/b"] and sim.now == 5.0
    assert ("/api/v1/pods", [("labelSelector", f"{POOL},{ACCELERATOR_CLASS}")]) in api.calls
    api.down = True
    watcher.poll_once()
    watcher.poll_once()
    assert sorted(sim.replicas) == ["chat/a", "chat/b"]  # the last picture holds
    assert len(logged) == 1 and "cannot read the fleet (TransientAPIError" in logged[0]
    api.down = False
    api.pods = [pod("b", cls="mi300x")]
    watcher.poll_once()
    assert sorted(sim.replicas) == ["chat/b"] and watcher.passes == 2


def test_an_invalid_pool_is_reported_and_its_pods_ignored(api: FakeAPI) -> None:
    bad = next(p for p in api.pools if p["metadata"]["name"] == "chat-70b")
    bad["spec"]["demand"]["inputTokens"] = "many"
    view = fleet.read_fleet(api)
    assert "chat/chat-70b" not in view.pools and "code/code-completion-8b" in view.pools
    assert len(view.invalid) == 1 and view.invalid[0].startswith("InferencePool chat/chat-70b: ")
    sim = Simulation()
    sim.sync(view.pools, view.classes, view.pods)
    assert sim.replicas == {} and sim.state()["ignoredPods"]["chat/a"] == "no InferencePool chat/chat-70b"


def routing_map(pool: str, name: str, data: str) -> dict[str, Any]:
    labels = {POOL: pool, "app.kubernetes.io/managed-by": "inferfleet"}
    return {"metadata": {"name": name, "namespace": "chat", "labels": labels}, "data": {"routing.json": data}}


def test_the_reader_takes_routing_tables_and_names_a_broken_one(api: FakeAPI) -> None:
    table = {
        "pool": "chat-70b",
        "service": "chat-70b",
        "port": 8000,
        "generation": 3,
        "buckets": [
            {"minInputTokens": 0, "maxInputTokens": 512, "minOutputTokens": 0, "maxOutputTokens": 64}
        ],
    }
    api.config_maps = [
        routing_map("chat-70b", "chat-70b-routing", json.dumps(table)),
        routing_map("chat-70b", "chat-70b-other", "{}"),  # not the routing table's name: ignored
        routing_map("embed", "embed-routing", '{"pool": "embed"}'),
    ]
    view = fleet.read_fleet(api)
    assert list(view.routes) == ["chat/chat-70b"] and view.routes["chat/chat-70b"].generation == 3
    assert [line for line in view.invalid if line.startswith("ConfigMap")] == [
        next(line for line in view.invalid if "chat/embed-routing" in line)
    ]
