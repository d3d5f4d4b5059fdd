"""Events aggregate on the real API server as client-go's recorder makes them: the same event told
N times is one Event with count N (and a series of N for events.k8s.io/v1 readers), different
messages are separate Events, an Event the server no longer has is created anew, and an object over
its rate limit gets no more Events."""

from __future__ import annotations

import time
from typing import Any

import pytest

from inferfleet.kube.client import request
from inferfleet.kube.events import Correlator
from inferfleet.kube.writer import KubeWriter

pytestmark = pytest.mark.integration


def config_map(kube_api: Any, namespace: str, name: str) -> dict[str, Any]:
    """Something for the events to be about (any object will do)."""
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace}}
    obj: dict[str, Any] = request(kube_api, "POST", f"/api/v1/namespaces/{namespace}/configmaps", body=body)
    return obj


def events_about(kube_api: Any, namespace: str, name: str, group: str = "/api/v1") -> list[dict[str, Any]]:
    field = "involvedObject.name" if group == "/api/v1" else "regarding.name"
    items: list[dict[str, Any]] = request(
        kube_api,
        "GET",
        f"{group}/namespaces/{namespace}/events",
        query=[("fieldSelector", f"{field}={name}")],
    )["items"]
    return items


def test_the_same_event_told_n_times_is_one_event_with_count_n(kube_api: Any, namespace: str) -> None:
    obj = config_map(kube_api, namespace, "told-again")
    writer = KubeWriter(kube_api, reporting_instance="it-events")
    n = 7
    for _ in range(n):
        writer.event(obj, "Normal", "Rescaled", "scaled up +1 on h100: demand 30 req/s")
        time.sleep(0.01)
    [event] = events_about(kube_api, namespace, "told-again")
    assert event["count"] == n
    assert event["series"]["count"] == n
    assert event["lastTimestamp"] >= event["firstTimestamp"]
    assert event["involvedObject"]["uid"] == obj["metadata"]["uid"]
    [new_style] = events_about(kube_api, namespace, "told-again", "/apis/events.k8s.io/v1")
    assert new_style["series"]["count"] == n and new_style["reason"] == "Rescaled"
    assert writer.writes == {("Event", "create"): 1, ("Event", "patch"): n - 1}


def test_different_messages_reasons_or_types_are_separate_events(kube_api: Any, namespace: str) -> None:
    obj = config_map(kube_api, namespace, "told-differently")
    writer = KubeWriter(kube_api, reporting_instance="it-events")
    told = [
        ("Normal", "Rescaled", "scaled up +1 on h100"),
        ("Normal", "Rescaled", "scaled up +2 on h100"),
        ("Normal", "Moved", "scaled up +1 on h100"),
        ("Warning", "Rescaled", "scaled up +1 on h100"),
    ]
    for type_, reason, message in told + told[:1]:
        writer.event(obj, type_, reason, message)  # type: ignore[arg-type]
    got = events_about(kube_api, namespace, "told-differently")
    assert sorted((e["type"], e["reason"], e["message"], e["count"]) for e in got) == sorted(
        (t, r, m, 2 if (t, r, m) == told[0] else 1) for t, r, m in told
    )


def test_an_event_the_server_no_longer_has_is_created_anew(kube_api: Any, namespace: str) -> None:
    obj = config_map(kube_api, namespace, "expired")
    writer = KubeWriter(kube_api, reporting_instance="it-events")
    writer.event(obj, "Normal", "Placed", "placed 2 replicas")
    [first] = events_about(kube_api, namespace, "expired")
    request(kube_api, "DELETE", f"/api/v1/namespaces/{namespace}/events/{first['metadata']['name']}")
    writer.event(obj, "Normal", "Placed", "placed 2 replicas")  # as after the API server's 1 h TTL
    [second] = events_about(kube_api, namespace, "expired")
    assert second["metadata"]["name"] != first["metadata"]["name"] and second["count"] == 1


def test_an_object_over_its_rate_limit_gets_no_more_events(kube_api: Any, namespace: str) -> None:
    noisy, quiet = config_map(kube_api, namespace, "noisy"), config_map(kube_api, namespace, "quiet")
    writer = KubeWriter(
        kube_api, reporting_instance="it-events", correlator=Correlator(burst=4, refill_s=300.0)
    )
    for i in range(10):
        writer.event(noisy, "Warning", "ApplyFailed", f"refused, attempt {i}")
    writer.event(quiet, "Normal", "Placed", "placed 1 replica")
    assert len(events_about(kube_api, namespace, "noisy")) == 4
    assert len(events_about(kube_api, namespace, "quiet")) == 1
    assert writer.writes[("Event", "dropped")] == 6
