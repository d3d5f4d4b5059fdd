"""The operator as the tests run it: ``python -m inferfleet run`` in a subprocess of its own.

Owns ``OperatorProcess`` (start with free metrics/health ports, stop with SIGTERM, kill with
SIGKILL, scrape ``/metrics``, the log captured to a file) and ``Operators`` (every process a test
module started, stopped at the end; the log lines written since a mark, to print on failure).
The process gets ``--kubeconfig`` and no ``$KUBECONFIG``, so the flag itself is under test.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from prometheus_client.parser import text_string_to_metric_families

import inferfleet

__all__ = ["OperatorProcess", "Operators", "free_port"]

ROOT = Path(__file__).resolve().parents[2]
SOURCE_ROOT = Path(inferfleet.__file__).resolve().parents[1]  # the operator the tests import, not a copy


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class OperatorProcess:
    """One operator replica; ``leader_elect`` False means ``--no-leader-elect``."""

    def __init__(
        self,
        kubeconfig: Path,
        log_path: Path,
        identity: str,
        *,
        leader_elect: bool = False,
        lease_namespace: str = "default",
        extra_args: Sequence[str] = (),
    ) -> None:
        self.kubeconfig = kubeconfig
        self.extra_args = list(extra_args)
        self.log_path = log_path
        self.identity = identity
        self.leader_elect = leader_elect
        self.lease_namespace = lease_namespace
        self.metrics_port = 0
        self.health_port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 30.0) -> OperatorProcess:
        """Start and wait until the metrics endpoint answers (the runtime is up)."""
        assert not self.alive, f"operator {self.identity} already running"
        self.metrics_port, self.health_port = free_port(), free_port()
        env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SOURCE_ROOT), env.get("PYTHONPATH")) if p)
        cmd = [
            sys.executable,
            "-m",
            "inferfleet",
            "run",
            f"--kubeconfig={self.kubeconfig}",
            f"--metrics-port={self.metrics_port}",
            f"--health-port={self.health_port}",
            f"--identity={self.identity}",
            f"--lease-namespace={self.lease_namespace}",
            "--leader-elect" if self.leader_elect else "--no-leader-elect",
            *self.extra_args,
        ]
        self._log = self.log_path.open("ab")
        banner = f"\n==== {time.strftime('%H:%M:%S')} start {self.identity}: {' '.join(cmd)}\n"
        self._log.write(banner.encode())
        self._log.flush()
        self.proc = subprocess.Popen(
            cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=ROOT, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while self.scrape() is None:
            if not self.alive:
                raise RuntimeError(
                    f"operator {self.identity} exited ({self.proc.returncode}) on start; "
                    f"log:\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"operator {self.identity} metrics did not answer within {timeout:.0f}s")
            time.sleep(0.1)
        return self

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM (kopf cleanup releases the lease), SIGKILL after ``timeout``."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._close()

    def kill(self) -> None:
        """SIGKILL: no cleanup, the lease stays held until it expires."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._close()

    def _close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    # -- observing ---------------------------------------------------------------------------
    def scrape(self) -> dict[str, list[tuple[dict[str, str], float]]] | None:
        """Samples by name (e.g. ``inferfleet_api_writes_total``); None while nothing answers."""
        if not self.alive:
            return None
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2) as rsp:
                text = rsp.read().decode()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return None
        out: dict[str, list[tuple[dict[str, str], float]]] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                out.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
        return out

    def metric(self, name: str) -> float | None:
        """The sum of a metric's samples (0 for a labelled counter never incremented); None: no answer."""
        samples = self.scrape()
        if samples is None:
            return None
        return sum(value for _labels, value in samples.get(name, []))

    def writes(self) -> dict[tuple[str, str], float]:
        samples = self.scrape() or {}
        return {(lb["kind"], lb["verb"]): v for lb, v in samples.get("inferfleet_api_writes_total", [])}

    def log_tail(self, since: int = 0, max_lines: int = 300) -> str:
        try:
            with self.log_path.open("rb") as f:
                f.seek(since)
                lines = f.read().decode(errors="replace").splitlines()
        except OSError:
            return ""
        # kopf logs every watch event it handles: noise when reading a failure
        lines = [line for line in lines if "kopf.objects: Handler" not in line]
        return "\n".join(lines[-max_lines:])


class Operators:
    """Every operator a module started (one log file each), stopped by ``stop_all``."""

    def __init__(self, kubeconfig: Path, log_dir: Path) -> None:
        self.kubeconfig = kubeconfig
        self.log_dir = log_dir
        self.started: list[OperatorProcess] = []

    def new(
        self,
        identity: str,
        *,
        leader_elect: bool = False,
        lease_namespace: str = "default",
        extra_args: Sequence[str] = (),
    ) -> OperatorProcess:
        op = OperatorProcess(
            self.kubeconfig,
            self.log_dir / f"{identity}.log",
            identity,
            leader_elect=leader_elect,
            lease_namespace=lease_namespace,
            extra_args=extra_args,
        )
        self.started.append(op)
        return op

    def mark(self) -> dict[Path, int]:
        """Each log file's current size: what a test's failure report starts from."""
        return {p: p.stat().st_size for p in self.log_dir.glob("*.log")}

    def report(self, mark: dict[Path, int]) -> str:
        parts = []
        for path in sorted(self.log_dir.glob("*.log")):
            op = next((o for o in self.started if o.log_path == path), None)
            if op is not None:
                text = op.log_tail(since=mark.get(path, 0))
                if text.strip():
                    parts.append(f"---- operator log {path} (since the test started) ----\n{text}")
        return "\n".join(parts)

    def stop_all(self) -> None:
        for op in self.started:
            with contextlib.suppress(Exception):
                op.stop()
