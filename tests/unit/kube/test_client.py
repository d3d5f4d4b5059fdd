"""``make_api_client``'s connection pool against a local HTTP server: concurrent writers keep their
connections (none opened again for a second burst) when the pool is as large as the operator's
concurrency, and the default covers the planning loop's writers plus the watch cache's streams."""

from __future__ import annotations

import http.server
import inspect
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from inferfleet.controller.loop import PlanningLoop
from inferfleet.kube import client
from inferfleet.kube.snapshot import sources


class Counting(http.server.ThreadingHTTPServer):
    daemon_threads = True
    connections = 0

    def process_request(self, request: object, client_address: object) -> None:
        type(self).connections += 1
        super().process_request(request, client_address)  # type: ignore[arg-type]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a pooled connection serves request after request

    def do_PATCH(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        time.sleep(0.05)  # long enough for a burst's requests to overlap
        body = b"{}"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Path]:
    Counting.connections = 0
    srv = Counting(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        f"""apiVersion: v1
kind: Config
clusters: [{{name: c, cluster: {{server: "http://127.0.0.1:{srv.server_address[1]}"}}}}]
users: [{{name: u, user: {{token: t}}}}]
contexts: [{{name: x, context: {{cluster: c, user: u}}}}]
current-context: x
"""
    )
    yield kubeconfig
    srv.shutdown()
    srv.server_close()


def burst(api: Any, n: int) -> None:
    """``n`` PATCHes at once, as the loop's writers make them."""
    with ThreadPoolExecutor(n) as ex:
        list(
            ex.map(
                lambda i: client.request(api, "PATCH", f"/api/v1/namespaces/ns/pods/p{i}", body={}), range(n)
            )
        )


def test_a_pool_as_large_as_the_writers_keeps_every_connection(server: Path) -> None:
    api = client.make_api_client(str(server), pool_maxsize=16)
    burst(api, 16)
    opened = Counting.connections
    assert 1 <= opened <= 16
    burst(api, 16)
    assert Counting.connections == opened  # every request of the second burst on a kept connection


def test_a_pool_smaller_than_the_writers_opens_connections_again(server: Path) -> None:
    # why the size matters: urllib3 discards what does not fit, and each request then pays a new
    # connection (a TLS handshake against a real API server)
    api = client.make_api_client(str(server), pool_maxsize=2)
    burst(api, 16)
    opened = Counting.connections
    burst(api, 16)
    assert Counting.connections > opened


def test_the_default_pool_covers_the_loops_writers_and_the_caches_watches() -> None:
    writers = inspect.signature(PlanningLoop.__init__).parameters["workers"].default
    probe_and_lease = 2
    assert writers + len(sources()) + probe_and_lease <= client.POOL_MAXSIZE
