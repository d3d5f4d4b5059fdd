"""``build_event``: the Event the writer posts, built purely from the object and the clock."""

from __future__ import annotations

import datetime

from inferfleet.kube.writer import CLUSTER_EVENT_NAMESPACE, EVENT_MESSAGE_BYTES, build_event

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
