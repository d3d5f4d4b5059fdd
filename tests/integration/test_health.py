"""Liveness and readiness of the real operator on the real control plane: ``/readyz`` turns 200 once
the watch cache has synced and the first round is done, ``/healthz`` is 200 while all is well; and
the review's case, an API server behind a TCP proxy that freezes every socket (connections stay
open, no byte moves), turns ``/healthz`` to 500 (APIUnreachable) within the bound given by flag,
not before it, and back to 200 once the proxy thaws.

The operator reaches the API server only through the proxy: its kubeconfig is the cluster's with
the server address pointed at the proxy (the apiserver's certificate covers 127.0.0.1).
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from operator_proc import OperatorProcess, Operators
from test_operator import operator_log_on_failure, operators  # noqa: F401 - the shared fixtures

from inferfleet_dev.cluster import Cluster

pytestmark = pytest.mark.integration

API_BOUND_S = 8.0  # --api-unreachable-seconds in the freeze test
PROBE_S = 1.0  # --api-probe-seconds in the freeze test


class FreezableProxy:
    """A loopback TCP proxy to ``target``; ``freeze()`` holds every byte in both directions (on
    open connections and new ones, which are still accepted) until ``thaw()``."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._thawed = threading.Event()
        self._thawed.set()
        self._closed = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, name="proxy-accept", daemon=True).start()

    def freeze(self) -> None:
        self._thawed.clear()

    def thaw(self) -> None:
        self._thawed.set()

    def close(self) -> None:
        self._closed.set()
        self._thawed.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            for s in self._sockets:
                with contextlib.suppress(OSError):
                    s.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=10)
            except OSError:  # the API server is down (a restart): drop this client, closed
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                while not self._thawed.wait(0.5):  # frozen: hold the bytes
                    pass
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):  # both directions end; closed here so none waits for the GC
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    s.close()


def get(url: str) -> tuple[int | None, dict[str, Any]]:
    """Status and JSON body; (None, {}) while nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=3) as rsp:
            return rsp.status, json.loads(rsp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None, {}


def health(op: OperatorProcess, path: str) -> tuple[int | None, dict[str, Any]]:
    return get(f"http://127.0.0.1:{op.health_port}{path}")


@pytest.fixture
def proxy(cluster: Cluster) -> Iterator[FreezableProxy]:
    server = yaml.safe_load(Path(cluster.kubeconfig).read_text())["clusters"][0]["cluster"]["server"]
    url = urllib.parse.urlsplit(server)
    p = FreezableProxy((url.hostname or "127.0.0.1", int(url.port or 443)))
    yield p
    p.close()


def proxied_kubeconfig(cluster: Cluster, proxy: FreezableProxy, path: Path) -> Path:
    config = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    for entry in config["clusters"]:
        url = urllib.parse.urlsplit(entry["cluster"]["server"])
        entry["cluster"]["server"] = f"{url.scheme}://127.0.0.1:{proxy.port}"
    path.write_text(yaml.safe_dump(config))
    return path


def test_ready_after_sync_and_the_first_round_and_live_throughout(
    operators: Operators,  # noqa: F811
    crds: list[Path],
    wait_for: Callable[..., Any],
) -> None:
    op = operators.new("it-health")
    op.start()
    status, body = wait_for(
        lambda: (r := health(op, "/readyz"))[0] == 200 and r, timeout=60, what="/readyz to answer 200"
    )
    assert body["status"] == "ok" and body["cacheSynced"] is True and body["leader"] is True
    assert body["lastPlanAgeSeconds"] is not None, "ready as leader only after a first round"
    status, body = health(op, "/healthz")
    assert (status, body["status"], body["problems"]) == (200, "ok", [])
    assert body["apiLastAnsweredSecondsAgo"] is not None and body["apiLastAnsweredSecondsAgo"] < 30
    assert health(op, "/nope")[0] == 404
    op.stop()


def test_a_frozen_api_server_fails_liveness_within_the_bound_and_recovers_after(
    operators: Operators,  # noqa: F811
    crds: list[Path],
    cluster: Cluster,
    proxy: FreezableProxy,
    tmp_path: Path,
    wait_for: Callable[..., Any],
) -> None:
    op = operators.new(
        "it-health-frozen",
        extra_args=[
            f"--api-probe-seconds={PROBE_S}",
            f"--api-unreachable-seconds={API_BOUND_S}",
            "--plan-stale-seconds=600",  # only the API bound is under test here
        ],
    )
    op.kubeconfig = proxied_kubeconfig(cluster, proxy, tmp_path / "kubeconfig")
    op.start()
    wait_for(lambda: health(op, "/readyz")[0] == 200, timeout=60, what="/readyz to answer 200 via the proxy")
    assert health(op, "/healthz")[0] == 200

    proxy.freeze()
    frozen_at = time.monotonic()
    seen: list[tuple[float, int | None]] = []
    body: dict[str, Any] = {}
    while time.monotonic() - frozen_at < API_BOUND_S + 15:
        status, body = health(op, "/healthz")
        seen.append((round(time.monotonic() - frozen_at, 2), status))
        if status not in (200, None):
            break
        time.sleep(0.25)
    took = time.monotonic() - frozen_at
    print(f"/healthz turned {seen[-1][1]} {took:.1f}s after the freeze (bound {API_BOUND_S:.0f}s)")
    assert seen[-1][1] == 500, f"/healthz never failed during the freeze: {seen[-5:]}"
    assert [p["reason"] for p in body["problems"]] == ["APIUnreachable"], body
    assert took >= API_BOUND_S - PROBE_S - 0.5, f"failed before the bound: {took:.1f}s"
    assert took <= API_BOUND_S + PROBE_S + 3, f"failed well after the bound: {took:.1f}s"
    assert health(op, "/readyz")[0] == 200, "readiness is not liveness"

    proxy.thaw()
    thawed_at = time.monotonic()
    wait_for(lambda: health(op, "/healthz")[0] == 200, timeout=60, what="/healthz back to 200 after the thaw")
    print(f"/healthz back to 200 {time.monotonic() - thawed_at:.1f}s after the thaw")
    op.stop()
