"""The watch cache (``kube/informer.py``) against the real API server: it sees an object created,
modified and deleted (and says so through its change callback), survives a forced relist (a watch
resumed from an expired resourceVersion) without losing what changed meanwhile, gives the same
snapshot as the one-shot ``read_snapshot`` for the same cluster state, and names missing CRDs.

Cluster-scoped objects get unique names, so these tests can share the cluster with others."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from inferfleet.api.kinds import BY_KIND
from inferfleet.kube import client as kube_client
from inferfleet.kube.client import request, request_counts
from inferfleet.kube.informer import WatchCache
from inferfleet.kube.snapshot import CRDsMissing, read_snapshot
from inferfleet.reconcile.ports import Snapshot

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CLASSES = "/apis/inferfleet.dev/v1alpha1/acceleratorclasses"


def example_class(name: str) -> dict[str, Any]:
    for doc in yaml.safe_load_all((ROOT / "examples/10-accelerator-classes.yaml").read_text()):
        if doc and doc.get("kind") == "AcceleratorClass":
            obj = copy.deepcopy(dict(doc))
            obj["metadata"] = {"name": name}
            return obj
    raise LookupError("AcceleratorClass")


class Changes:
    """The cache's change callback: every reason, and waiting for one."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self._cond = threading.Condition()

    def __call__(self, why: str) -> None:
        with self._cond:
            self.seen.append(why)
            self._cond.notify_all()

    def wait(self, why: str, timeout: float = 20.0) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: why in self.seen, timeout):
                pytest.fail(f"the cache did not report {why!r} within {timeout:.0f}s; saw {self.seen[-10:]}")


@pytest.fixture
def changes() -> Changes:
    return Changes()


@pytest.fixture
def cache(kube_api: Any, crds: list[Path], changes: Changes) -> Iterator[WatchCache]:
    c = WatchCache(kube_api, on_change=changes, backoff_s=(0.2, 2.0))
    c.start()
    c.snapshot(timeout=30)  # synced
    yield c
    c.stop()


@pytest.fixture
def class_name(kube_api: Any) -> Iterator[str]:
    name = f"it-watch-{uuid.uuid4().hex[:6]}"
    yield name
    with contextlib.suppress(kube_client.NotFound):
        request(kube_api, "DELETE", f"{CLASSES}/{name}")


def _class_in(snap: Snapshot, name: str) -> dict[str, Any] | None:
    return next((c for c in snap.classes if c["metadata"]["name"] == name), None)


def test_the_cache_sees_an_object_created_modified_and_deleted(
    kube_api: Any, cache: WatchCache, changes: Changes, class_name: str, wait_for: Callable[..., Any]
) -> None:
    assert changes.seen[:1] == ["watch cache synced"]
    request(kube_api, "POST", CLASSES, body=example_class(class_name))
    changes.wait(f"AcceleratorClass {class_name} added")
    created = _class_in(cache.snapshot(), class_name)
    assert created is not None and created["kind"] == "AcceleratorClass"
    assert "managedFields" not in created["metadata"]

    request(
        kube_api,
        "PATCH",
        f"{CLASSES}/{class_name}",
        body={"spec": {"price": {"dollarsPerDeviceHour": "1.25"}}},
        content_type="application/merge-patch+json",
    )
    changes.wait(f"AcceleratorClass {class_name} changed")
    modified = _class_in(cache.snapshot(), class_name)
    assert modified is not None and modified["spec"]["price"]["dollarsPerDeviceHour"] == "1.25"

    request(kube_api, "DELETE", f"{CLASSES}/{class_name}")
    changes.wait(f"AcceleratorClass {class_name} deleted")
    assert _class_in(cache.snapshot(), class_name) is None


def test_a_forced_relist_finds_what_changed_while_the_watch_was_down_and_watching_goes_on(
    kube_api: Any, cache: WatchCache, changes: Changes, class_name: str, wait_for: Callable[..., Any]
) -> None:
    store = cache.stores["AcceleratorClass"]
    lists = request_counts().get("LIST acceleratorclasses", 0)

    def watching() -> Any:  # synced means listed; the watch opens just after
        with cache._cond:
            return cache._streams.get("AcceleratorClass")

    stream = wait_for(watching, timeout=20, what="the AcceleratorClass watch to open")
    cache.relist_s = 0.0  # the periodic relist falls due at once
    stream.close()  # the watch drops, as when a connection breaks
    request(kube_api, "POST", CLASSES, body=example_class(class_name))

    def relisted() -> bool:
        return (
            request_counts().get("LIST acceleratorclasses", 0) > lists
            and _class_in(cache.snapshot(), class_name) is not None
        )

    wait_for(relisted, timeout=30, what="a relist that finds the class created meanwhile")
    cache.relist_s = 600.0
    reports = [why for why in changes.seen if why.startswith("AcceleratorClass")]
    assert reports, "the new class woke the planner"
    for why in reports:  # seen by the relist or by the watch after it; nothing else changed
        assert why in (
            f"AcceleratorClass {class_name} added",
            "AcceleratorClass relisted: 1 added, 0 removed, 0 changed",
        )
    assert store.version, "watching again from the relist's resourceVersion"
    request(kube_api, "DELETE", f"{CLASSES}/{class_name}")
    changes.wait(f"AcceleratorClass {class_name} deleted")
    assert _class_in(cache.snapshot(), class_name) is None


def test_the_cache_snapshot_equals_a_one_shot_read(
    kube_api: Any, cache: WatchCache, class_name: str, wait_for: Callable[..., Any]
) -> None:
    request(kube_api, "POST", CLASSES, body=example_class(class_name))
    wait_for(lambda: _class_in(cache.snapshot(), class_name), timeout=20, what="the class in the cache")

    def same() -> bool:
        # the cluster keeps moving (node heartbeats): equal to a read on either side of it is enough
        before = cache.snapshot()
        read = read_snapshot(kube_api)
        return read in (before, cache.snapshot())

    wait_for(same, timeout=30, what="the cache's snapshot to equal read_snapshot's")
    snap = cache.snapshot()
    assert snap.nodes, "the test cluster has nodes"
    assert _class_in(snap, class_name) is not None


def test_missing_crds_are_named_by_the_cache_too(kube_api: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    unserved = {k: dataclasses.replace(v, version="v0nosuchversion") for k, v in BY_KIND.items()}
    monkeypatch.setattr(kube_client, "BY_KIND", unserved)  # every CR list now 404s
    c = WatchCache(kube_api, backoff_s=(0.2, 1.0))
    c.start()
    try:
        with pytest.raises(CRDsMissing) as err:
            c.snapshot(timeout=30)
    finally:
        c.stop()
    assert err.value.missing == [
        "acceleratorclasses.inferfleet.dev",
        "fleetpolicies.inferfleet.dev",
        "inferencepools.inferfleet.dev",
    ]
    assert "kubectl apply --server-side -f crds/" in str(err.value)
