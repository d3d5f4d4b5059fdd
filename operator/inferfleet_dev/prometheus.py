"""A real Prometheus for the dev harness: Debian's binaries from the cache, one server on loopback.

Owns: ``ensure`` (the verified ``prometheus`` and ``promtool`` in ``~/.cache/inferfleet/bin/
prometheus-<version>/``, unpacked by ``prometheus_install`` through the installer); the scrape
configuration (the fleet simulator with ``honor_labels: true``, the operator's metrics endpoint);
and ``Prometheus``, one server process on 127.0.0.1 with its own TSDB directory, started detached,
waited on (``/-/ready``, then ``up == 1`` per target through the HTTP API, never a fixed sleep) and
stopped by process group.  ``$INFERFLEET_ASSETS/prometheus`` and ``promtool`` take precedence over
the cache (for machines without apt).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from inferfleet_dev import install, procs
from inferfleet_dev.prometheus_install import BINARIES, PROMETHEUS_VERSION, PrometheusError, download

__all__ = [
    "DEFAULT_SIMULATOR",
    "PROMETHEUS_VERSION",
    "Prometheus",
    "PrometheusError",
    "ScrapeTarget",
    "binary",
    "download",
    "ensure",
    "for_cluster",
    "operator_target",
    "scrape_config",
    "simulator_target",
    "stop_recorded",
    "wait_scraped",
]

DEFAULT_SIMULATOR = "127.0.0.1:9400"
INSTALL_HINT = "python -m inferfleet_dev.install prometheus promtool"


def binary(name: str = "prometheus") -> Path:
    """Where ``prometheus`` / ``promtool`` is (user asset) or will be (cache), without installing."""
    return install.tool_path(name)


def ensure() -> dict[str, Path]:
    """Verified ``prometheus`` and ``promtool``, unpacked into the cache if needed (the installer's
    ``prometheus`` group calls ``download``); raises PrometheusError with the way out."""
    try:
        return {name: install.ensure(name) for name in BINARIES}
    except PrometheusError:
        raise
    except install.InstallError as exc:
        raise PrometheusError(f"{exc}\n  install with: {INSTALL_HINT}") from None


@dataclasses.dataclass(frozen=True)
class ScrapeTarget:
    """One scrape job with one ``host:port`` target on loopback."""

    job: str
    address: str
    path: str = "/metrics"
    honor_labels: bool = False  # keep the target's own namespace/pod/pool labels


def simulator_target(address: str = DEFAULT_SIMULATOR) -> ScrapeTarget:
    """The fleet simulator: its series carry namespace, pod, pool and accelerator_class themselves."""
    return ScrapeTarget("simulator", address, honor_labels=True)


def operator_target(address: str) -> ScrapeTarget:
    return ScrapeTarget("inferfleet-operator", address)


def scrape_config(targets: Sequence[ScrapeTarget], interval_s: float) -> dict[str, Any]:
    """The prometheus.yml document scraping ``targets`` every ``interval_s`` seconds."""
    interval = f"{round(interval_s * 1000)}ms"
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval, "scrape_timeout": interval},
        "scrape_configs": [
            {
                "job_name": t.job,
                "metrics_path": t.path,
                "honor_labels": t.honor_labels,
                "static_configs": [{"targets": [t.address]}],
            }
            for t in targets
        ],
    }


class Prometheus:
    """One Prometheus server on 127.0.0.1:``port`` whose config, TSDB and log live in ``state_dir``."""

    def __init__(
        self,
        state_dir: Path,
        port: int,
        targets: Sequence[ScrapeTarget],
        *,
        scrape_interval_s: float = 5.0,
        executable: Path | None = None,
        log: Callable[[str], None] = lambda _msg: None,
    ) -> None:
        self.state_dir = state_dir
        self.port = port
        self.targets = tuple(targets)
        self.scrape_interval_s = scrape_interval_s
        self.executable = executable
        self.log = log
        self.info: procs.ProcInfo | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "prometheus.json"

    def argv(self, executable: Path) -> list[str]:
        return [
            str(executable),
            f"--config.file={self.state_dir / 'prometheus.yml'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            f"--storage.tsdb.path={self.state_dir / 'tsdb'}",
            "--storage.tsdb.retention.time=1d",
            "--web.enable-lifecycle",  # POST /-/reload after a config change
            "--log.level=warn",
        ]

    def start(self, timeout: float = 60.0, *, wait_up: Sequence[str] | None = None) -> float:
        """Start, wait for ``/-/ready``, then for ``up == 1`` on the ``wait_up`` jobs (default all).

        Returns the seconds from spawn to ready-and-up; a failure stops the process and raises.
        """
        exe = self.executable or ensure()["prometheus"]
        if procs.port_in_use(self.port):
            holder = procs.who_listens(self.port) or "another process"
            raise PrometheusError(f"port {self.port} on 127.0.0.1 (for prometheus) is in use by {holder}")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.write_config()
        t0 = time.monotonic()
        self.info = procs.spawn("prometheus", self.argv(exe), self.state_dir / "prometheus.log")
        self.pid_file.write_text(json.dumps(self.info.to_json()))
        try:
            try:
                procs.wait_healthy(self.info, f"{self.url}/-/ready", None, timeout)
            except procs.ComponentError as exc:
                raise PrometheusError(str(exc)) from None
            self.log(f"  prometheus ready after {time.monotonic() - t0:.2f}s at {self.url}")
            jobs = [t.job for t in self.targets] if wait_up is None else list(wait_up)
            self.wait_up(jobs, timeout=max(1.0, timeout - (time.monotonic() - t0)))
        except BaseException:
            self.stop()
            raise
        return time.monotonic() - t0

    def write_config(self) -> None:
        path = self.state_dir / "prometheus.yml"
        # JSON is YAML: no YAML library needed (the installer side of this module is stdlib only)
        path.write_text(json.dumps(scrape_config(self.targets, self.scrape_interval_s), indent=2))

    def query(self, promql: str, timeout: float = 5.0) -> list[dict[str, Any]]:
        """The instant vector of ``promql`` (raises PrometheusError on anything else)."""
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:
                body = json.loads(resp.read())
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise PrometheusError(f"query {promql!r} at {self.url} failed: {exc}") from None
        if body.get("status") != "success" or body["data"]["resultType"] != "vector":
            raise PrometheusError(f"query {promql!r}: unexpected answer {str(body)[:300]}")
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def up(self) -> dict[str, float]:
        """job -> the latest ``up`` value (jobs not scraped yet are absent)."""
        return {r["metric"].get("job", ""): float(r["value"][1]) for r in self.query("up")}

    def wait_up(self, jobs: Sequence[str], timeout: float = 60.0, *, value: float = 1.0) -> float:
        """Poll the API until every job's ``up`` equals ``value``; raises with the last state."""
        start = time.monotonic()
        state: dict[str, float] = {}
        while True:
            if self.info is not None and not procs.alive(self.info):
                tail = procs.log_tail(self.info.log)
                raise PrometheusError(f"prometheus exited (log {self.info.log}):\n{tail}")
            with contextlib.suppress(PrometheusError):
                state = self.up()
            if all(state.get(job) == value for job in jobs):
                return time.monotonic() - start
            if time.monotonic() - start > timeout:
                raise PrometheusError(
                    f"prometheus at {self.url}: targets not up == {value:g} after {timeout:.0f}s: "
                    + ", ".join(f"{j}={state.get(j, 'not scraped yet')}" for j in jobs)
                )
            time.sleep(min(0.1, self.scrape_interval_s / 10))

    def reload(self, targets: Sequence[ScrapeTarget]) -> None:
        """Replace the scrape targets (``POST /-/reload``)."""
        self.targets = tuple(targets)
        self.write_config()
        req = urllib.request.Request(f"{self.url}/-/reload", method="POST")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                resp.read()
        except (urllib.error.URLError, OSError) as exc:
            raise PrometheusError(f"reload at {self.url} failed: {exc}") from None

    def stop(self) -> None:
        """Stop the process (SIGTERM to its group, SIGKILL if it lingers) and forget it."""
        info = self.info or _recorded(self.pid_file)
        if info is not None:
            procs.stop(info)
        self.pid_file.unlink(missing_ok=True)
        self.info = None

    def __enter__(self) -> Prometheus:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def _recorded(pid_file: Path) -> procs.ProcInfo | None:
    try:
        return procs.ProcInfo.from_json(json.loads(pid_file.read_text()))
    except (OSError, ValueError, KeyError):
        return None


def stop_recorded(state_dir: Path) -> bool:
    """Stop a Prometheus recorded in ``state_dir`` (by ``dev-cluster up --prometheus``); True if one ran."""
    info = _recorded(state_dir / "prometheus.json")
    if info is None:
        return False
    running = procs.alive(info)
    procs.stop(info)
    (state_dir / "prometheus.json").unlink(missing_ok=True)
    return running


def wait_scraped(prom: Prometheus, timeout: float = 60.0) -> dict[str, float]:
    """Poll until every target has been scraped once (``up`` present, 0 or 1); returns job -> up."""
    start = time.monotonic()
    while True:
        with contextlib.suppress(PrometheusError):
            state = prom.up()
            if all(t.job in state for t in prom.targets):
                return state
        if prom.info is not None and not procs.alive(prom.info):
            raise PrometheusError(
                f"prometheus exited (log {prom.info.log}):\n{procs.log_tail(prom.info.log)}"
            )
        if time.monotonic() - start > timeout:
            raise PrometheusError(f"prometheus at {prom.url} scraped no target within {timeout:.0f}s")
        time.sleep(min(0.1, prom.scrape_interval_s / 10))


def for_cluster(
    state_dir: Path,
    port: int,
    *,
    simulator: str = DEFAULT_SIMULATOR,
    operator_metrics: str | None = None,
    scrape_interval_s: float = 5.0,
    log: Callable[[str], None] = lambda _msg: None,
) -> tuple[Prometheus, dict[str, float]]:
    """``dev-cluster up --prometheus``: a detached Prometheus in ``<state_dir>/prometheus/``, left running
    (``stop_recorded`` stops it); waits for ready and for one scrape of each target, which may be down
    (the simulator and the operator may start later).  Returns it and job -> ``up``."""
    targets = [simulator_target(simulator)]
    if operator_metrics:
        targets.append(operator_target(operator_metrics))
    prom = Prometheus(state_dir / "prometheus", port, targets, scrape_interval_s=scrape_interval_s, log=log)
    recorded = _recorded(prom.pid_file)
    if recorded is not None and procs.alive(recorded):
        prom.info = recorded
        log(f"  prometheus already running (pid {recorded.pid}) at {prom.url}")
        return prom, wait_scraped(prom)
    prom.start(wait_up=[])
    try:
        return prom, wait_scraped(prom, timeout=max(30.0, 4 * scrape_interval_s))
    except BaseException:
        prom.stop()
        raise
