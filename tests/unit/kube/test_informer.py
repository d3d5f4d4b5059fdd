"""The watch cache's store logic against a fake API (no cluster): LIST then WATCH from the list's
resourceVersion, events applied, bookmarks, relists on 410 (as an ERROR event or as the answer to
the WATCH), the periodic relist, which changes wake the planner (not heartbeats, not Pending ->
Running), snapshots as copies, waiting for the first sync, missing CRDs, the threads' lifecycle, and
what liveness reads: when each store last heard from the API server, and the API probe (reachable or
not, moved on or not).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest

from inferfleet.kube.client import APIRejected, NotFound, TransientAPIError
from inferfleet.kube.informer import CacheNotSynced, Expired, WatchCache
from inferfleet.kube.snapshot import CRDsMissing, read_snapshot, sources

Obj = dict[str, Any]
API: Any = None  # no client: the request and watch functions are fakes
PATHS = {src.name: src.path() for src in sources()}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeAPI:
    """Collections by path with one resourceVersion counter, LISTs served from them, and WATCH
    streams scripted per path (a list of events, or an exception to raise on open)."""

    def __init__(self) -> None:
        self.rv = 100
        self.collections: dict[str, dict[str, Obj]] = defaultdict(dict)
        self.missing: set[str] = set()
        self.scripts: dict[str, list[Any]] = defaultdict(list)
        self.calls: list[tuple[str, str, dict[str, str]]] = []

    def put(self, kind: str, obj: Obj, type_: str | None = None) -> Obj:
        """Store obj (a new resourceVersion) and return the watch event saying so."""
        self.rv += 1
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = str(self.rv)
        key = f"{obj['metadata'].get('namespace')}/{obj['metadata']['name']}"
        existed = key in self.collections[PATHS[kind]]
        self.collections[PATHS[kind]][key] = obj
        return {"type": type_ or ("MODIFIED" if existed else "ADDED"), "object": copy.deepcopy(obj)}

    def delete(self, kind: str, obj: Obj) -> Obj:
        self.rv += 1
        key = f"{obj['metadata'].get('namespace')}/{obj['metadata']['name']}"
        gone = self.collections[PATHS[kind]].pop(key)
        gone["metadata"]["resourceVersion"] = str(self.rv)
        return {"type": "DELETED", "object": copy.deepcopy(gone)}

    def request(self, _api: Any, method: str, path: str, *, query: Any = (), **_: Any) -> Obj:
        assert method == "GET"
        self.calls.append(("LIST", path, dict(query)))
        if path in self.missing:
            raise NotFound("HTTP 404: the server could not find the requested resource", status=404)
        items = [copy.deepcopy(o) for o in self.collections[path].values()]
        return {"metadata": {"resourceVersion": str(self.rv)}, "items": items}

    def watch(self, _api: Any, path: str, *, query: Any = (), **_: Any) -> Iterator[Obj]:
        self.calls.append(("WATCH", path, dict(query)))
        script = self.scripts[path].pop(0) if self.scripts[path] else []
        if isinstance(script, Exception):
            raise script
        return iter(copy.deepcopy(script))

    def verbs(self, path: str) -> list[str]:
        return [verb for verb, p, _ in self.calls if p == path]


def node(name: str, gpus: int = 8, *, ready: bool = True, heartbeat: str = "t0", **labels: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"inferfleet.dev/accelerator-class": "h100", **labels}},
        "spec": {},
        "status": {
            "allocatable": {"nvidia.com/gpu": str(gpus)},
            "capacity": {"nvidia.com/gpu": str(gpus)},
            "conditions": [
                {"type": "Ready", "status": "True" if ready else "False", "lastHeartbeatTime": heartbeat}
            ],
        },
    }


def pod(name: str, node_name: str, gpus: int, *, pool: str | None = None, phase: str = "Running") -> Obj:
    labels = {"app.kubernetes.io/managed-by": "inferfleet", "inferfleet.dev/pool": pool} if pool else {}
    if pool:
        labels["inferfleet.dev/accelerator-class"] = "h100"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "ns", "labels": labels, "uid": name, "generateName": "x-"},
        "spec": {
            "nodeName": node_name,
            "containers": [
                {"name": "c", "image": "i", "resources": {"limits": {"nvidia.com/gpu": str(gpus)}}}
            ],
        },
        "status": {"phase": phase, "podIP": "10.0.0.1"},
    }


def ipool(name: str, *, generation: int = 1, status: Obj | None = None) -> Obj:
    return {
        "apiVersion": "inferfleet.dev/v1alpha1",
        "kind": "InferencePool",
        "metadata": {"name": name, "namespace": "ns", "generation": generation, "managedFields": [{"x": 1}]},
        "spec": {"demand": {"requestsPerSecond": generation}},
        "status": status or {},
    }


def make_cache(fake: FakeAPI, clock: Clock | None = None, **kw: Any) -> tuple[WatchCache, list[str]]:
    changes: list[str] = []
    cache = WatchCache(
        API,
        on_change=changes.append,
        request_fn=fake.request,
        watch_fn=fake.watch,
        clock=clock or Clock(),
        **kw,
    )
    return cache, changes


def synced(fake: FakeAPI, clock: Clock | None = None, **kw: Any) -> tuple[WatchCache, list[str]]:
    """A cache whose every store has been listed once (each watch ended at once)."""
    cache, changes = make_cache(fake, clock, **kw)
    for store in cache.stores.values():
        cache.run_once(store)
    assert changes == ["watch cache synced"]
    changes.clear()
    return cache, changes


def test_list_then_watch_from_the_lists_version_with_bookmarks_and_the_same_selectors() -> None:
    fake = FakeAPI()
    fake.put("Pod", pod("p", "n1", 1))
    cache, _ = synced(fake)
    listed_at = str(fake.rv)
    by_kind = {src.name: src for src in sources()}
    for name, path in PATHS.items():  # two sources read pods: told apart by their field selectors
        fields = by_kind[name].fields
        (list_verb, _, list_q), (watch_verb, _, watch_q) = [
            c for c in fake.calls if c[1] == path and c[2].get("fieldSelector") == fields
        ]
        assert (list_verb, watch_verb) == ("LIST", "WATCH")
        assert watch_q["resourceVersion"] == listed_at
        assert watch_q["allowWatchBookmarks"] == "true"
        assert int(watch_q["timeoutSeconds"]) > 0
        for q in (list_q, watch_q):
            assert q.get("labelSelector") == by_kind[name].labels
            assert q.get("fieldSelector") == by_kind[name].fields
    pods_q = next(
        c[2]
        for c in fake.calls
        if c[1] == PATHS["Pod"] and c[2].get("fieldSelector") == by_kind["Pod"].fields
    )
    assert pods_q["fieldSelector"] == "spec.nodeName!=,status.phase!=Succeeded,status.phase!=Failed"
    assert "labelSelector" not in pods_q, "one WATCH of every bound pod, split by label client-side"
    deps_q = fake.calls[[c[1] for c in fake.calls].index(PATHS["Deployment"])][2]
    assert deps_q["labelSelector"] == "app.kubernetes.io/managed-by=inferfleet"
    assert cache.stores["Pod"].objects.keys() == {"ns/p"}


def test_added_modified_deleted_are_applied_and_each_wakes_the_planner() -> None:
    fake = FakeAPI()
    fake.put("InferencePool", ipool("a"))
    cache, changes = synced(fake)
    events = [
        fake.put("InferencePool", ipool("b")),
        fake.put("InferencePool", ipool("a", generation=2)),
        fake.delete("InferencePool", ipool("b")),
    ]
    store = cache.stores["InferencePool"]
    fake.scripts[PATHS["InferencePool"]].append(events)
    cache.run_once(store)
    assert store.objects.keys() == {"ns/a"}
    assert store.objects["ns/a"]["spec"]["demand"]["requestsPerSecond"] == 2
    assert "managedFields" not in store.objects["ns/a"]["metadata"]
    assert store.version == str(fake.rv)
    assert changes == ["InferencePool ns/b added", "InferencePool ns/a changed", "InferencePool ns/b deleted"]
    assert fake.verbs(PATHS["InferencePool"]) == ["LIST", "WATCH", "WATCH"], "resumed, not relisted"
    assert fake.calls[-1][2]["resourceVersion"] == str(fake.rv - 3)


def test_a_bookmark_moves_the_version_and_changes_nothing() -> None:
    fake = FakeAPI()
    fake.put("Node", node("n1"))
    cache, changes = synced(fake)
    store = cache.stores["Node"]
    before = copy.deepcopy(store.objects)
    bookmark = {"type": "BOOKMARK", "object": {"kind": "Node", "metadata": {"resourceVersion": "555"}}}
    fake.scripts[PATHS["Node"]].append([bookmark])
    cache.run_once(store)
    assert store.version == "555"
    assert store.objects == before
    assert changes == []
    cache.run_once(store)
    assert fake.calls[-1][2]["resourceVersion"] == "555", "the next watch resumes from the bookmark"


def test_a_410_error_event_relists_and_the_relist_finds_what_was_missed() -> None:
    fake = FakeAPI()
    fake.put("Pod", pod("gone", "n1", 2))
    fake.put("Pod", pod("stays", "n1", 1))
    cache, changes = synced(fake)
    store = cache.stores["Pod"]
    fake.delete("Pod", pod("gone", "n1", 2))  # happens while the watch is broken: no event for it
    expired = {
        "type": "ERROR",
        "object": {"kind": "Status", "code": 410, "message": "too old resource version"},
    }
    fake.scripts[PATHS["Pod"]].append([expired])
    with pytest.raises(Expired):
        cache.run_once(store)
    assert store.version == ""
    cache.run_once(store)
    assert fake.verbs(PATHS["Pod"])[-2:] == ["LIST", "WATCH"]
    assert store.objects.keys() == {"ns/stays"}
    assert changes == ["Pod relisted: 0 added, 1 removed, 0 changed"]
    assert cache.snapshot().foreign_used == {"n1": {"nvidia.com/gpu": 1}}


def test_a_410_answer_to_the_watch_itself_relists_too() -> None:
    fake = FakeAPI()
    cache, _ = synced(fake)
    store = cache.stores["Service"]
    fake.scripts[PATHS["Service"]].append(APIRejected("HTTP 410: Expired", status=410))
    with pytest.raises(Expired):
        cache.run_once(store)
    assert store.version == ""
    cache.run_once(store)
    assert fake.verbs(PATHS["Service"])[-2:] == ["LIST", "WATCH"]


def test_other_errors_resume_the_watch_without_a_relist() -> None:
    fake = FakeAPI()
    cache, _ = synced(fake)
    store = cache.stores["Node"]
    version = store.version
    fake.scripts[PATHS["Node"]].append(TransientAPIError("connection reset"))
    with pytest.raises(TransientAPIError):
        cache.run_once(store)
    error = {"type": "ERROR", "object": {"kind": "Status", "code": 500, "message": "internal"}}
    fake.scripts[PATHS["Node"]].append([error])
    with pytest.raises(TransientAPIError, match="internal"):
        cache.run_once(store)
    cache.run_once(store)
    assert fake.verbs(PATHS["Node"]) == ["LIST", "WATCH", "WATCH", "WATCH", "WATCH"]
    assert store.version == version


def test_the_periodic_relist_runs_when_due_even_on_a_busy_stream() -> None:
    fake = FakeAPI()
    clock = Clock()
    cache, changes = synced(fake, clock, relist_s=600.0)
    store = cache.stores["Node"]
    clock.now += 599
    cache.run_once(store)
    assert fake.verbs(PATHS["Node"]) == ["LIST", "WATCH", "WATCH"]
    clock.now += 1
    cache.run_once(store)
    assert fake.verbs(PATHS["Node"])[-2:] == ["LIST", "WATCH"]
    # a stream that never ends on its own is left once the relist falls due
    clock.now += 600
    fake.scripts[PATHS["Node"]].append([fake.put("Node", node(f"n{i}")) for i in range(3)])
    cache.run_once(store)  # relists (due), then watches: events past the due time end the watch
    assert fake.verbs(PATHS["Node"])[-2:] == ["LIST", "WATCH"]
    assert changes == ["Node relisted: 3 added, 0 removed, 0 changed"]


def test_node_heartbeats_do_not_wake_the_planner_but_placement_facts_do() -> None:
    fake = FakeAPI()
    fake.put("Node", node("n1"))
    cache, changes = synced(fake)
    store = cache.stores["Node"]
    fake.scripts[PATHS["Node"]].append(
        [fake.put("Node", node("n1", heartbeat=f"t{i}")) for i in range(1, 4)]  # heartbeats
    )
    cache.run_once(store)
    assert changes == []
    hb = store.objects["n1"]["status"]["conditions"][0]["lastHeartbeatTime"]
    assert hb == "t3", "the store still holds the newest object"
    fake.scripts[PATHS["Node"]].append(
        [
            fake.put("Node", node("n1", gpus=4)),
            fake.put("Node", node("n1", gpus=4, ready=False)),
            fake.put("Node", node("n1", gpus=4, ready=False, zone="b")),
        ]
    )
    cache.run_once(store)
    assert changes == ["Node n1 changed"] * 3


def test_pods_wake_the_planner_only_when_device_usage_or_our_replicas_change() -> None:
    fake = FakeAPI()
    fake.put("Pod", pod("theirs", "n1", 2, phase="Pending"))
    cache, changes = synced(fake)
    store = cache.stores["Pod"]
    fake.scripts[PATHS["Pod"]].append(
        [
            fake.put("Pod", pod("theirs", "n1", 2, phase="Running")),  # no device changes hands
            fake.put("Pod", pod("r1", "n1", 4, pool="chat")),  # one of our replicas appears
            fake.put("Pod", pod("r1", "n1", 4, pool="chat", phase="Pending")),
        ]
    )
    cache.run_once(store)
    assert changes == ["Pod ns/r1 added"]
    kept = store.objects["ns/theirs"]
    assert "podIP" not in kept["status"] and "generateName" not in kept["metadata"], "pods are trimmed"
    changes.clear()
    fake.scripts[PATHS["Pod"]].append(
        [fake.put("Pod", pod("theirs", "n2", 2)), fake.delete("Pod", pod("r1", "n1", 4, pool="chat"))]
    )
    cache.run_once(store)
    assert changes == ["Pod ns/theirs changed", "Pod ns/r1 deleted"]


def test_our_own_status_writes_do_not_wake_the_planner_but_spec_changes_do() -> None:
    fake = FakeAPI()
    fake.put("InferencePool", ipool("a"))
    cache, changes = synced(fake)
    store = cache.stores["InferencePool"]
    fake.scripts[PATHS["InferencePool"]].append(
        [fake.put("InferencePool", ipool("a", status={"phase": "Placed"}))]
    )
    cache.run_once(store)
    assert changes == []
    assert store.objects["ns/a"]["status"] == {"phase": "Placed"}
    fake.scripts[PATHS["InferencePool"]].append([fake.put("InferencePool", ipool("a", generation=2))])
    cache.run_once(store)
    assert changes == ["InferencePool ns/a changed"]


def test_every_deployment_change_wakes_the_planner() -> None:
    fake = FakeAPI()
    dep: Obj = {"metadata": {"name": "d", "namespace": "ns"}, "status": {"readyReplicas": 0}}
    fake.put("Deployment", dep)
    cache, changes = synced(fake)
    dep["status"]["readyReplicas"] = 1
    fake.scripts[PATHS["Deployment"]].append([fake.put("Deployment", dep)])
    cache.run_once(cache.stores["Deployment"])
    assert changes == ["Deployment ns/d changed"]


def test_a_snapshot_is_a_copy_the_cache_does_not_change_afterwards() -> None:
    fake = FakeAPI()
    fake.put("Node", node("n1"))
    fake.put("InferencePool", ipool("b"))
    fake.put("InferencePool", ipool("a"))
    fake.put("Pod", pod("r1", "n1", 4, pool="a"))
    fake.put("Pod", pod("theirs", "n1", 2))
    cache, _ = synced(fake)
    snap = cache.snapshot()
    assert [p["metadata"]["name"] for p in snap.pools] == ["a", "b"], "in (namespace, name) order"
    assert snap.foreign_used == {"n1": {"nvidia.com/gpu": 2}}
    assert snap.live_replicas == {("ns/a", "h100"): 1}
    fake.scripts[PATHS["InferencePool"]].append(
        [fake.put("InferencePool", ipool("a", generation=5)), fake.delete("InferencePool", ipool("b"))]
    )
    fake.scripts[PATHS["Pod"]].append([fake.delete("Pod", pod("theirs", "n1", 2))])
    cache.run_once(cache.stores["InferencePool"])
    cache.run_once(cache.stores["Pod"])
    assert [p["metadata"]["name"] for p in snap.pools] == ["a", "b"]
    assert snap.pools[0]["metadata"]["generation"] == 1
    assert snap.foreign_used == {"n1": {"nvidia.com/gpu": 2}}
    after = cache.snapshot()
    assert [(p["metadata"]["name"], p["metadata"]["generation"]) for p in after.pools] == [("a", 5)]
    assert after.foreign_used == {}


def test_the_cache_snapshot_equals_a_one_shot_read_of_the_same_state() -> None:
    fake = FakeAPI()
    fake.put("Node", node("n2", ready=False))
    fake.put("Node", node("n1"))
    fake.put("Pod", pod("r1", "n1", 4, pool="a"))
    fake.put("Pod", pod("r2", "n2", 4, pool="a"))
    fake.put("Pod", pod("theirs", "n2", 3))
    fake.put("InferencePool", ipool("a"))
    fake.put("Deployment", {"metadata": {"name": "a-h100", "namespace": "ns"}})
    cache, _ = synced(fake)
    fake.scripts[PATHS["Pod"]].append([fake.put("Pod", pod("late", "n1", 1))])
    cache.run_once(cache.stores["Pod"])
    fake.put("FleetPolicy", {"metadata": {"name": "default"}, "spec": {}})
    fake.scripts[PATHS["FleetPolicy"]].append(
        [{"type": "ADDED", "object": fake.collections[PATHS["FleetPolicy"]]["None/default"]}]
    )
    cache.run_once(cache.stores["FleetPolicy"])
    snap = cache.snapshot()
    # the fake ignores field selectors, so its unbound-pod store holds what its stores were fed
    once = read_snapshot(API, request_fn=fake.request)
    assert dataclasses.replace(snap, pending_pods=[]) == dataclasses.replace(once, pending_pods=[])
    assert snap.policy is not None and snap.policy["kind"] == "FleetPolicy"
    assert snap.foreign_used == {"n2": {"nvidia.com/gpu": 3}, "n1": {"nvidia.com/gpu": 1}}
    assert snap.live_replicas == {("ns/a", "h100"): 1}, "the pod on the node that is not Ready is not live"


def test_no_snapshot_until_every_store_has_synced_once() -> None:
    fake = FakeAPI()
    cache, changes = make_cache(fake, sync_timeout_s=0.05)
    stores = list(cache.stores.values())
    for store in stores[:-1]:
        cache.run_once(store)
    with pytest.raises(CacheNotSynced, match="ConfigMap"):
        cache.snapshot()
    assert changes == [], "nothing wakes the planner before the first full sync"
    threading.Timer(0.2, cache.run_once, args=(stores[-1],)).start()
    t0 = time.monotonic()
    snap = cache.snapshot(timeout=10)
    assert 0.1 < time.monotonic() - t0 < 5, "waited for the last store, then returned"
    assert snap.pools == []
    assert changes == ["watch cache synced"]


def test_missing_crds_are_named_as_the_one_shot_reader_names_them() -> None:
    fake = FakeAPI()
    fake.missing = {PATHS["InferencePool"], PATHS["AcceleratorClass"], PATHS["FleetPolicy"]}
    cache, _ = make_cache(fake)
    for store in cache.stores.values():
        if store.source.crd:
            with pytest.raises(NotFound):
                cache.run_once(store)
        else:
            cache.run_once(store)
    with pytest.raises(CRDsMissing) as from_cache:
        cache.snapshot(timeout=0)
    with pytest.raises(CRDsMissing) as one_shot:
        read_snapshot(API, request_fn=fake.request)
    assert (
        from_cache.value.missing
        == one_shot.value.missing
        == [
            "acceleratorclasses.inferfleet.dev",
            "fleetpolicies.inferfleet.dev",
            "inferencepools.inferfleet.dev",
        ]
    )
    assert str(from_cache.value) == str(one_shot.value)
    assert "kubectl apply --server-side -f crds/" in str(from_cache.value)
    fake.missing = set()  # installed now: the next list succeeds and planning may start
    for store in cache.stores.values():
        if store.source.crd:
            cache.run_once(store)
    assert cache.snapshot(timeout=0).pools == []


def test_missing_crds_are_named_together_even_when_their_lists_are_answered_one_by_one() -> None:
    fake = FakeAPI()
    fake.missing = {PATHS["InferencePool"], PATHS["FleetPolicy"]}
    cache, _ = make_cache(fake)
    first, *rest = [s for s in cache.stores.values() if s.source.crd]
    with pytest.raises(NotFound):
        cache.run_once(first)

    def the_rest() -> None:
        for store in rest:
            with contextlib.suppress(NotFound):
                cache.run_once(store)

    threading.Timer(0.2, the_rest).start()
    with pytest.raises(CRDsMissing) as err:
        cache.snapshot(timeout=10)
    assert err.value.missing == ["fleetpolicies.inferfleet.dev", "inferencepools.inferfleet.dev"]


class BlockingStream:
    """A watch that yields its events, then blocks like an idle connection until closed."""

    def __init__(self, events: list[Obj]) -> None:
        self.events = events
        self.closed = threading.Event()

    def __iter__(self) -> Iterator[Obj]:
        yield from self.events
        self.closed.wait(30)

    def close(self) -> None:
        self.closed.set()


def test_the_threads_retry_after_errors_sync_follow_events_and_stop_promptly() -> None:
    fake = FakeAPI()
    fake.put("Node", node("n1"))
    streams: list[BlockingStream] = []
    failures = {"Node": 2}

    def watch(api: Any, path: str, **kw: Any) -> BlockingStream:
        fake.watch(api, path, **kw)
        if path == PATHS["Node"] and failures["Node"]:
            failures["Node"] -= 1
            raise TransientAPIError("connection refused")
        events = [fake.put("Node", node("n1", gpus=4))] if path == PATHS["Node"] else []
        streams.append(BlockingStream(events))
        return streams[-1]

    changes: list[str] = []
    woke = threading.Event()

    def on_change(why: str) -> None:
        changes.append(why)
        if why == "Node n1 changed":
            woke.set()

    cache = WatchCache(
        API, on_change=on_change, request_fn=fake.request, watch_fn=watch, backoff_s=(0.01, 0.05), probe_s=0
    )
    cache.start()
    try:
        snap = cache.snapshot(timeout=10)
        assert [n["metadata"]["name"] for n in snap.nodes] == ["n1"]
        assert woke.wait(10), changes
        assert cache.snapshot().nodes[0]["status"]["allocatable"] == {"nvidia.com/gpu": "4"}
    finally:
        t0 = time.monotonic()
        cache.stop(timeout=5)
    assert time.monotonic() - t0 < 2, "stop closes the open streams instead of waiting them out"
    assert all(s.closed.is_set() for s in streams)
    assert not any(t.is_alive() for t in cache._threads)
    assert changes[0] == "watch cache synced"
    assert fake.verbs(PATHS["Node"]).count("LIST") == 1, "errors resume the watch; they do not relist"


# ---- what liveness reads -------------------------------------------------------------------------
def test_each_store_hears_from_the_server_on_list_watch_and_event_and_the_quietest_is_named() -> None:
    fake, clock = FakeAPI(), Clock()
    cache, _ = make_cache(fake, clock)
    assert cache.health().quiet_store is not None and cache.health().quiet_since is None, "none heard yet"
    for store in cache.stores.values():
        clock.now += 1
        cache.run_once(store)
    health = cache.health()
    first = next(iter(cache.stores))
    assert (health.synced, health.quiet_store, health.quiet_since) == (True, first, 1001.0)
    clock.now = 2000.0
    bookmark = {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "900"}}}
    fake.scripts[PATHS[first]].append([bookmark])
    cache.run_once(cache.stores[first])
    health = cache.health()
    assert health.quiet_store != first, "a bookmark is hearing from the server"
    assert cache.stores[first].heard_at == 2000.0


def test_the_probe_lists_one_node_and_says_whether_the_cluster_moved_past_the_quietest_store() -> None:
    fake, clock = FakeAPI(), Clock()
    cache, _ = synced(fake, clock)
    clock.now = 1050.0
    cache.probe()
    health = cache.health()
    assert fake.calls[-1] == ("LIST", PATHS["Node"], {"limit": "1"})
    assert (health.probe_ok_at, health.probe_error, health.moved_on) == (1050.0, None, False)
    fake.put("InferencePool", ipool("a"))  # a write the watches have not delivered
    cache.probe()
    assert cache.health().moved_on


def test_a_probe_that_times_out_is_a_failure_and_a_refusal_is_an_answer() -> None:
    fake, clock = FakeAPI(), Clock()
    cache, _ = synced(fake, clock)
    cache.probe()
    answered_at = clock.now

    def timeout(*_a: Any, **_k: Any) -> Obj:
        raise TransientAPIError("GET /api/v1/nodes: ReadTimeoutError: read timed out")

    cache._request = timeout
    clock.now += 30
    cache.probe()
    health = cache.health()
    assert health.probe_ok_at == answered_at
    assert health.probe_error is not None and "read timed out" in health.probe_error

    def forbidden(*_a: Any, **_k: Any) -> Obj:
        raise APIRejected("HTTP 403: forbidden", status=403)

    cache._request = forbidden
    clock.now += 5
    cache.probe()
    assert (cache.health().probe_ok_at, cache.health().probe_error) == (clock.now, None)


def test_the_probe_thread_probes_at_once_and_every_period_until_stopped() -> None:
    fake = FakeAPI()
    probes = threading.Semaphore(0)

    def request(api: Any, method: str, path: str, **kw: Any) -> Obj:
        if dict(kw.get("query") or ()).get("limit") == "1":
            probes.release()
        return fake.request(api, method, path, **kw)

    def idle(*_a: Any, **_k: Any) -> BlockingStream:
        return BlockingStream([])

    cache = WatchCache(API, request_fn=request, watch_fn=idle, probe_s=0.05)
    cache.start()
    try:
        assert all(probes.acquire(timeout=5) for _ in range(3)), "three probes in a few periods"
        assert cache.health().probe_ok_at is not None
    finally:
        cache.stop(timeout=5)
    assert not any(t.is_alive() for t in cache._threads)


def test_an_unbound_pod_of_ours_wakes_the_planner_when_its_gate_lifts_and_when_it_cannot_schedule() -> None:
    from inferfleet.kube.informer import Store

    by_kind = {src.name: src for src in sources()}
    store = Store(by_kind["PendingPod"])
    gated: dict[str, Any] = {
        "metadata": {"name": "r1", "namespace": "ns", "resourceVersion": "1", "labels": {"a": "b"}},
        "spec": {"schedulingGates": [{"name": "inferfleet.dev/placement"}], "containers": []},
        "status": {"phase": "Pending"},
    }
    pinned = copy.deepcopy(gated)
    pinned["metadata"]["resourceVersion"] = "2"
    pinned["spec"] = {"nodeSelector": {"kubernetes.io/hostname": "n1"}, "containers": []}
    stuck = copy.deepcopy(pinned)
    stuck["metadata"]["resourceVersion"] = "3"
    stuck["status"]["conditions"] = [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "Insufficient cpu"}
    ]
    same = copy.deepcopy(stuck)
    same["metadata"]["resourceVersion"] = "4"
    same["metadata"]["annotations"] = {"noise": "1"}  # what the trimmed pod does not keep
    got = [store.apply({"type": "ADDED", "object": gated})]
    got += [store.apply({"type": "MODIFIED", "object": o}) for o in (pinned, stuck, same)]
    assert got == ["PendingPod ns/r1 added", "PendingPod ns/r1 changed", "PendingPod ns/r1 changed", None]
