"""A fake Prometheus on 127.0.0.1 (port 0) answering ``/api/v1/query`` as the test scripts it.

Owns the ``fake_prometheus`` fixture (import ``fake_prometheus_fixture`` into the test module):
``FakePrometheus.answer`` maps the PromQL of a request to ``(status, body, delay_s)``; every request
is recorded (query, headers) so tests can count them and check the bearer token.
"""

from __future__ import annotations

import http.server
import json
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

Answer = tuple[int, Any, float]  # status, body (JSON-able, or bytes as is), delay before answering


def vector(*rows: tuple[dict[str, str], float | str], at: float = 1000.0) -> dict[str, Any]:
    """A successful instant-vector answer."""
    result = [{"metric": labels, "value": [at, str(value)]} for labels, value in rows]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


class FakePrometheus:
    vector = staticmethod(vector)

    def __init__(self, tls: tuple[Path, Path] | None = None) -> None:
        self.tls = tls
        self.answer: Callable[[str], Answer] = lambda _q: (200, vector(), 0.0)
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.stop_event = threading.Event()
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                query = urllib.parse.parse_qs(url.query).get("query", [""])[0]
                fake.requests.append((query, dict(self.headers.items())))
                status, body, delay = (
                    fake.answer(query) if url.path.endswith("/api/v1/query") else (404, b"", 0)
                )
                if delay:
                    fake.stop_event.wait(delay)
                raw = body if isinstance(body, bytes) else json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                except OSError:
                    pass  # the client gave up (timeout test)

            def log_message(self, *_args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls is not None:  # (certificate, key): serve https
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(tls[0]), str(tls[1]))
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.stop_event.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(name="fake_prometheus")
def fake_prometheus_fixture() -> Iterator[FakePrometheus]:
    fake = FakePrometheus()
    yield fake
    fake.close()


@pytest.fixture(name="now")
def now_fixture() -> float:
    return time.time()
