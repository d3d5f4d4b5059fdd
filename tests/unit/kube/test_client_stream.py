"""``kube/client.py`` without a server: a WATCH stream's events out of arbitrarily cut chunks, its
close from another thread, a broken stream as a transient error, and the request counter's verbs."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import urllib3

from inferfleet.kube import client
from inferfleet.kube.client import TransientAPIError, WatchStream


class FakeResponse:
    """urllib3's streaming response, as far as WatchStream uses it."""

    def __init__(self, chunks: list[bytes], *, fail: bool = False, block: bool = False) -> None:
        self.chunks = chunks
        self.fail = fail
        self.block = threading.Event() if block else None
        self.closed = False
        self.released = False

    def stream(self, _amt: Any = None, decode_content: bool = True) -> Iterator[bytes]:
        yield from self.chunks
        if self.block is not None:
            self.block.wait(10)
            raise urllib3.exceptions.ProtocolError("connection closed")  # what a shutdown looks like
        if self.fail:
            raise urllib3.exceptions.ReadTimeoutError(None, "/api/v1/pods", "read timed out")  # type: ignore[arg-type]

    def shutdown(self) -> None:
        if self.block is not None:
            self.block.set()

    def close(self) -> None:
        self.closed = True

    def release_conn(self) -> None:
        self.released = True


EVENTS = [
    {"type": "ADDED", "object": {"metadata": {"name": "a", "resourceVersion": "1"}}},
    {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "2"}}},
    {"type": "DELETED", "object": {"metadata": {"name": "a", "resourceVersion": "3"}}},
]


def test_events_come_whole_whatever_the_chunking() -> None:
    data = b"".join(json.dumps(e).encode() + b"\n" for e in EVENTS)
    for size in (1, 7, 64, len(data)):
        chunks = [data[i : i + size] for i in range(0, len(data), size)]
        response = FakeResponse(chunks)
        assert list(WatchStream(response, "/api/v1/pods")) == EVENTS
        assert response.released and not response.closed, "read to its end: the connection is reused"


def test_a_broken_stream_is_a_transient_error_and_is_closed() -> None:
    response = FakeResponse([json.dumps(EVENTS[0]).encode() + b"\n"], fail=True)
    got: list[dict[str, Any]] = []
    with pytest.raises(TransientAPIError, match="WATCH /api/v1/pods"):
        got.extend(WatchStream(response, "/api/v1/pods"))
    assert got == EVENTS[:1]
    assert response.closed and not response.released, "a broken connection is never pooled"


def test_close_from_another_thread_ends_a_blocked_read_quietly() -> None:
    response = FakeResponse([], block=True)
    stream = WatchStream(response, "/api/v1/nodes")
    threading.Timer(0.1, stream.close).start()
    assert list(stream) == [], "a stream we closed ourselves ends without an error"
    assert response.closed and not response.released


def test_the_request_counter_uses_the_api_servers_verbs() -> None:
    before = client.request_counts()
    calls = [
        ("GET", "/api/v1/pods"),
        ("GET", "/api/v1/namespaces/ns/pods/p"),
        ("WATCH", "/apis/apps/v1/namespaces/ns/deployments"),
        ("PATCH", "/apis/inferfleet.dev/v1alpha1/namespaces/ns/inferencepools/p/status"),
        ("GET", "/apis/inferfleet.dev/v1alpha1/acceleratorclasses"),
        ("POST", "/api/v1/namespaces/ns/events"),
    ]
    for method, path in calls:
        client._count(method, path)
    after = client.request_counts()
    delta = {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}
    assert delta == {
        "LIST pods": 1,
        "GET pods": 1,
        "WATCH deployments": 1,
        "PATCH inferencepools/status": 1,
        "LIST acceleratorclasses": 1,
        "POST events": 1,
    }
