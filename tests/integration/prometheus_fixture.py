"""Fixtures for tests against a real Prometheus: the binary, a server factory and a vLLM-shaped exporter.

Owns ``prometheus_binary`` (session: installs or finds Debian's prometheus; with ``CI=true`` a
failure fails the tests, never skips; outside CI it skips with the install command), ``prometheus``
(a factory: ``prometheus(targets, interval=1.0)`` starts a server on a free loopback port >= 29900,
waits for ``up == 1`` and stops it after the test) and ``vllm_exporter`` (``VllmExporter``: vLLM's
series for pods the test adds, computed from the wall clock so a rate is known exactly).  Import the
fixtures into a test module (``from prometheus_fixture import prometheus_fixture, ...``); they are
registered under the names without ``_fixture``.
"""

from __future__ import annotations

import dataclasses
import http.server
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from inferfleet_dev import procs
from inferfleet_dev.prometheus import INSTALL_HINT, Prometheus, PrometheusError, ScrapeTarget, ensure

__all__ = [
    "PodSeries",
    "VllmExporter",
    "prometheus_binary_fixture",
    "prometheus_fixture",
    "vllm_exporter_fixture",
]

PORT_BASE = int(os.environ.get("INFERFLEET_TEST_PROMETHEUS_PORT", "29900"))
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
TPOT_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


@dataclasses.dataclass
class PodSeries:
    """One vLLM pod: arrivals per second and the share of requests at or below each bucket edge."""

    namespace: str
    pool: str
    pod: str
    accelerator_class: str
    rps: float
    ttft_cdf: Mapping[float, float]  # le -> fraction of requests <= le (missing edges interpolate up)
    tpot_cdf: Mapping[float, float]
    prompt_tokens: float = 512.0
    generation_tokens: float = 256.0
    waiting: float = 0.0
    waiting_growth: float = 0.0  # requests/s joining the queue and not admitted
    tpot_name: str = "vllm:request_time_per_output_token_seconds"
    start: float = dataclasses.field(default_factory=time.time)

    def _labels(self, **extra: str) -> str:
        pairs = {
            "namespace": self.namespace,
            "pool": self.pool,
            "pod": self.pod,
            "accelerator_class": self.accelerator_class,
            "model_name": "m",
            "engine": "0",
            **extra,
        }
        return "{" + ",".join(f'{k}="{v}"' for k, v in pairs.items()) + "}"

    def _histogram(
        self, name: str, buckets: Sequence[float], cdf: Mapping[float, float], n: float
    ) -> list[str]:
        lines, share = [], 0.0
        for le in buckets:
            share = max(share, cdf.get(le, share))
            lines.append(f"{name}_bucket{self._labels(le=repr(le))} {n * share}")
        lines.append(f"{name}_bucket{self._labels(le='+Inf')} {n}")
        lines.append(f"{name}_count{self._labels()} {n}")
        lines.append(f"{name}_sum{self._labels()} {n * 0.1}")
        return lines

    def text(self, now: float) -> str:
        n = self.rps * max(0.0, now - self.start)
        lines = self._histogram("vllm:time_to_first_token_seconds", TTFT_BUCKETS, self.ttft_cdf, n)
        lines += self._histogram(self.tpot_name, TPOT_BUCKETS, self.tpot_cdf, n)
        for name, per in (("prompt", self.prompt_tokens), ("generation", self.generation_tokens)):
            lines.append(f"vllm:request_{name}_tokens_sum{self._labels()} {n * per}")
            lines.append(f"vllm:request_{name}_tokens_count{self._labels()} {n}")
        waiting = self.waiting + self.waiting_growth * max(0.0, now - self.start)
        lines.append(f"vllm:num_requests_waiting{self._labels()} {waiting}")
        return "\n".join(lines) + "\n"


class VllmExporter:
    """A loopback HTTP server answering ``/metrics`` with the pods' series (the text format)."""

    def __init__(self) -> None:
        self.pods: list[PodSeries] = []
        self.lock = threading.Lock()
        exporter = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with exporter.lock:
                    body = "".join(p.text(time.time()) for p in exporter.pods).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def target(self, job: str = "simulator") -> ScrapeTarget:
        return ScrapeTarget(job, self.address, honor_labels=True)

    def add(self, *pods: PodSeries) -> None:
        with self.lock:
            self.pods.extend(pods)

    def stop(self) -> None:
        """Stop answering (the scrape then fails: up == 0, the series go stale)."""
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(name="vllm_exporter")
def vllm_exporter_fixture() -> Iterator[VllmExporter]:
    exporter = VllmExporter()
    yield exporter
    exporter.stop()


@pytest.fixture(scope="session", name="prometheus_binary")
def prometheus_binary_fixture() -> Path:
    """Debian's prometheus from the cache (installed on first use)."""
    try:
        return ensure()["prometheus"]
    except PrometheusError as exc:
        if _in_ci():
            pytest.fail(f"CI=true and Prometheus cannot be installed: {exc}", pytrace=False)
        pytest.skip(f"Prometheus not available ({exc}); install with: {INSTALL_HINT}")


def _free_port() -> int:
    for port in range(PORT_BASE, PORT_BASE + 100):
        if not procs.port_in_use(port):
            return port
    raise PrometheusError(f"no free loopback port in {PORT_BASE}..{PORT_BASE + 99}")


@pytest.fixture(name="prometheus")
def prometheus_fixture(prometheus_binary: Path, tmp_path: Path) -> Iterator[Callable[..., Prometheus]]:
    """``start(targets, interval=1.0, wait_up=None)``: a running Prometheus, stopped after the test."""
    started: list[Prometheus] = []

    def start(
        targets: Sequence[ScrapeTarget], *, interval: float = 1.0, wait_up: Sequence[str] | None = None
    ) -> Prometheus:
        prom = Prometheus(
            tmp_path / f"prometheus-{len(started)}",
            _free_port(),
            targets,
            scrape_interval_s=interval,
            executable=prometheus_binary,
        )
        started.append(prom)
        try:
            prom.start(60.0, wait_up=wait_up)
        except PrometheusError as exc:
            pytest.fail(f"Prometheus did not start: {exc}", pytrace=False)
        return prom

    yield start
    for prom in started:
        prom.stop()
