"""``build_event``: the Event the writer posts, built purely from the object and the clock."""

from __future__ import annotations

import datetime

import pytest

from inferfleet.kube import writer
from inferfleet.kube.client import NotFound
from inferfleet.kube.events import Correlator
from inferfleet.kube.writer import (
    CLUSTER_EVENT_NAMESPACE,
    EVENT_MESSAGE_BYTES,
    build_event,
    event_key,
    repeat_patch,
)

NOW = datetime.datetime(2026, 12, 1, 21, 0, 5, 123456, tzinfo=datetime.UTC)
POOL = {
    "apiVersion": "inferfleet.dev/v1alpha1",
    "kind": "InferencePool",
    "metadata": {"name": "chat-70b", "namespace": "chat", "uid": "u-1"},
}


def test_an_event_names_the_object_and_lands_in_its_namespace() -> None:
    ev = build_event(POOL, "Normal", "Placed", "placed 2 replicas", reporting_instance="op-1", now=NOW)
    assert ev["involvedObject"] == {
        "apiVersion": "inferfleet.dev/v1alpha1",
        "kind": "InferencePool",
        "name": "chat-70b",
        "namespace": "chat",
        "uid": "u-1",
    }
    assert ev["metadata"]["namespace"] == "chat"
    assert ev["metadata"]["name"].startswith("chat-70b.")
    assert (ev["type"], ev["reason"], ev["message"]) == ("Normal", "Placed", "placed 2 replicas")
    assert ev["firstTimestamp"] == ev["lastTimestamp"] == "2026-12-01T21:00:05Z"
    assert ev["eventTime"] == "2026-12-01T21:00:05.123456Z"
    assert ev["reportingInstance"] == "op-1"


def test_events_about_cluster_scoped_objects_go_to_the_default_namespace() -> None:
    cls = {"apiVersion": "inferfleet.dev/v1alpha1", "kind": "AcceleratorClass", "metadata": {"name": "h100"}}
    ev = build_event(cls, "Warning", "InvalidSpec", "bad", reporting_instance="op", now=NOW)
    assert ev["metadata"]["namespace"] == CLUSTER_EVENT_NAMESPACE
    assert "namespace" not in ev["involvedObject"]


def test_long_messages_are_cut_to_the_api_limit_in_bytes() -> None:
    ev = build_event(POOL, "Normal", "Moved", "é" * 2000, reporting_instance="op", now=NOW)
    assert len(ev["message"].encode()) <= EVENT_MESSAGE_BYTES
    assert ev["message"].endswith("...")


def test_two_events_at_different_times_get_different_names() -> None:
    a = build_event(POOL, "Normal", "Placed", "x", reporting_instance="op", now=NOW)
    b = build_event(
        POOL, "Normal", "Placed", "x", reporting_instance="op", now=NOW + datetime.timedelta(microseconds=1)
    )
    assert a["metadata"]["name"] != b["metadata"]["name"]


def test_an_events_key_is_its_object_type_reason_and_message() -> None:
    ev = build_event(POOL, "Normal", "Placed", "placed 2 replicas", reporting_instance="op-1", now=NOW)
    later = build_event(
        POOL, "Normal", "Placed", "placed 2 replicas", reporting_instance="op-2", now=NOW.replace(hour=22)
    )
    assert event_key(ev) == event_key(later)  # time, name and reporter do not make it another event
    assert event_key(ev).obj == ("InferencePool", "chat", "chat-70b", "u-1")
    moved = build_event(POOL, "Normal", "Moved", "placed 2 replicas", reporting_instance="op", now=NOW)
    assert event_key(ev) != event_key(moved)


def test_a_repeat_patches_count_last_timestamp_and_series() -> None:
    assert repeat_patch(3, NOW) == {
        "count": 3,
        "lastTimestamp": "2026-12-01T21:00:05Z",
        "series": {"count": 3, "lastObservedTime": "2026-12-01T21:00:05.123456Z"},
    }


class _FakeAPI:
    """What the writer's ``request`` would send, with a 404 for Events the server no longer has."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, object]]] = []
        self.events: dict[str, dict[str, object]] = {}

    def __call__(self, _api: object, verb: str, path: str, body: object = None, **_kw: object) -> object:
        assert isinstance(body, dict)
        self.calls.append((verb, path, body))
        if verb == "POST":
            self.events[body["metadata"]["name"]] = body
        elif verb == "PATCH":
            name = path.rsplit("/", 1)[1]
            if name not in self.events:
                raise NotFound(f"events {name} not found")
            self.events[name].update(body)
        return {}


def test_the_writer_creates_once_patches_repeats_recreates_an_expired_one_and_drops_past_the_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake, clock = _FakeAPI(), [0.0]
    monkeypatch.setattr(writer, "request", fake)
    w = writer.KubeWriter(
        None,  # type: ignore[arg-type]
        reporting_instance="op",
        correlator=Correlator(burst=6, refill_s=300.0),
        clock=lambda: clock[0],
    )
    for _ in range(3):
        w.event(POOL, "Normal", "Rescaled", "scaled up +1 on h100")
        clock[0] += 1.0
    assert [c[0] for c in fake.calls] == ["POST", "PATCH", "PATCH"]
    assert fake.calls[1][1].startswith("/api/v1/namespaces/chat/events/chat-70b.")
    (only,) = fake.events.values()
    assert only["count"] == 3
    assert only["series"]["count"] == 3  # type: ignore[index]
    fake.events.clear()  # the API server's TTL
    w.event(POOL, "Normal", "Rescaled", "scaled up +1 on h100")
    assert [c[0] for c in fake.calls[3:]] == ["PATCH", "POST"]
    assert next(iter(fake.events.values()))["count"] == 1
    w.event(POOL, "Warning", "Unschedulable", "0/3 nodes")
    w.event(POOL, "Normal", "Rescaled", "scaled up +1 on h100")
    w.event(POOL, "Normal", "Rescaled", "scaled up +1 on h100")  # the 7th: over the burst of 6
    assert w.writes == {("Event", "create"): 3, ("Event", "patch"): 3, ("Event", "dropped"): 1}
