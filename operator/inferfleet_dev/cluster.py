"""A named local dev cluster: real control plane on loopback plus kwok and the simulated fleet.

Owns: the cluster's state directory (``~/.cache/inferfleet/clusters/<name>/``: state.json, pki,
kubeconfig, etcd data, logs), bringing it up (idempotently; detecting ports in use and leftover
clusters), tearing it down (process groups killed, ports checked free), and reporting status.
Given an existing cluster's kubeconfig (e.g. kind) it runs only kwok and adds the fake nodes.

Python API (the integration tests and the demo use it)::

    c = Cluster("inferfleet")
    c.up("examples/simulated-fleet/fleet.yaml", scale=1)
    c.kubeconfig, c.kubectl_path, c.kubectl("get", "nodes")
    c.status(); c.apply_fleet(path); c.down()
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import shutil
import ssl
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from inferfleet.api.simulatedfleet import load_fleet, node_manifests
from inferfleet_dev import install, nodes, procs, prometheus
from inferfleet_dev.components import (
    COMPONENTS,
    DEFAULT_PORT_BASE,
    Component,
    Ports,
    control_plane,
    health_endpoints,
    kwok_component,
    write_kwok_config,
)
from inferfleet_dev.pki import make_pki, write_kubeconfig

__all__ = [
    "DEFAULT_NAME",
    "Cluster",
    "ClusterError",
    "ClusterStatus",
    "ComponentStatus",
    "UpReport",
    "clusters_root",
    "default_fleet_file",
    "default_port_base",
]

DEFAULT_NAME = "inferfleet"
STATE_FILE = "state.json"
_STOP_ORDER = ("kwok", "kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd")


class ClusterError(RuntimeError):
    """The cluster cannot be brought up or down; the message says why and what to do."""


@dataclasses.dataclass
class ComponentStatus:
    name: str
    pid: int
    alive: bool
    healthy: bool
    log: str


@dataclasses.dataclass
class ClusterStatus:
    name: str
    state: str  # "running", "degraded" or "absent"
    mode: str  # "local" or "external"
    kubeconfig: str
    components: list[ComponentStatus]
    classes: list[nodes.ClassSummary]
    message: str = ""


@dataclasses.dataclass
class UpReport:
    already_running: bool
    kubeconfig: Path
    seconds: float
    timings: dict[str, float]
    nodes: nodes.ApplyResult


def clusters_root() -> Path:
    return install.cache_root() / "clusters"


def default_port_base(name: str) -> int:
    """17443 for the default cluster; other names get a stable base in 17500-22490."""
    if name == DEFAULT_NAME:
        return DEFAULT_PORT_BASE
    return 17500 + 10 * (zlib.crc32(name.encode()) % 500)


def default_fleet_file() -> Path | None:
    """examples/simulated-fleet/fleet.yaml of the current directory or of this source checkout."""
    rel = Path("examples/simulated-fleet/fleet.yaml")
    for base in (Path.cwd(), Path(__file__).resolve().parents[2]):
        if (base / rel).is_file():
            return base / rel
    return None


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _ssl_context(tls: str, state: Path) -> ssl.SSLContext | None:
    if tls == "none":
        return None
    if tls == "cluster":
        ctx = ssl.create_default_context(cafile=str(state / "pki" / "ca.crt"))
        ctx.load_cert_chain(str(state / "pki" / "admin.crt"), str(state / "pki" / "admin.key"))
        return ctx
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class Cluster:
    """One named dev cluster.  Cheap to construct; nothing happens until ``up``/``down``."""

    def __init__(
        self,
        name: str = DEFAULT_NAME,
        *,
        port_base: int | None = None,
        existing_kubeconfig: Path | str | None = None,
        log: Callable[[str], None] = _stderr,
    ) -> None:
        if not name or not name.replace("-", "").isalnum():
            raise ClusterError(f"cluster name {name!r} must be letters, digits and '-'")
        self.name = name
        self.state_dir = clusters_root() / name
        self.log = log
        saved = self._load_state()
        self.external_kubeconfig = Path(existing_kubeconfig).resolve() if existing_kubeconfig else None
        if self.external_kubeconfig is None and saved.get("mode") == "external":
            self.external_kubeconfig = Path(str(saved["kubeconfig"]))
        base = port_base or saved.get("port_base") or default_port_base(name)
        self.ports = Ports(int(base))

    # -- paths -----------------------------------------------------------------------------
    @property
    def external(self) -> bool:
        return self.external_kubeconfig is not None

    @property
    def kubeconfig(self) -> Path:
        return self.external_kubeconfig or self.state_dir / "kubeconfig"

    @property
    def kubectl_path(self) -> Path:
        return install.tool_path("kubectl")

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    def env(self) -> dict[str, str]:
        """os.environ with KUBECONFIG set and the built kubectl first on PATH."""
        env = dict(os.environ)
        env["KUBECONFIG"] = str(self.kubeconfig)
        env["PATH"] = f"{self.kubectl_path.parent}{os.pathsep}{env.get('PATH', '')}"
        return env

    def kubectl(
        self, *args: str, check: bool = True, input: str | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run the built kubectl against this cluster."""
        cmd = [str(self.kubectl_path), f"--kubeconfig={self.kubeconfig}", *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, input=input, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise ClusterError(f"kubectl {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc

    @contextlib.contextmanager
    def api_client(self) -> Iterator[Any]:
        """A kubernetes.client.ApiClient for this cluster, closed on exit."""
        with nodes.api_client(self.kubeconfig) as api:
            yield api

    # -- state -----------------------------------------------------------------------------
    def _load_state(self) -> dict[str, Any]:
        try:
            raw: dict[str, Any] = json.loads((self.state_dir / STATE_FILE).read_text())
            return raw
        except (OSError, ValueError):
            return {}

    def _save_state(self, procs_: list[procs.ProcInfo], extra: dict[str, Any]) -> None:
        state = {
            "name": self.name,
            "mode": "external" if self.external else "local",
            "port_base": self.ports.base,
            "kubeconfig": str(self.kubeconfig),
            "processes": [p.to_json() for p in procs_],
            **extra,
        }
        tmp = self.state_dir / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.state_dir / STATE_FILE)

    def _recorded(self) -> list[procs.ProcInfo]:
        return [procs.ProcInfo.from_json(p) for p in self._load_state().get("processes", [])]

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with (self.state_dir / ".lock").open("w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _components(self, bins: dict[str, Path]) -> list[Component]:
        stages = self.state_dir / "kwok.yaml"
        if self.external:
            return [kwok_component(bins["kwok"], stages, self.ports, self.kubeconfig)]
        pki = make_pki(self.state_dir / "pki")
        return control_plane(bins, self.ports, pki, self.kubeconfig, state=self.state_dir, stages=stages)

    def _probe_all(self) -> list[ComponentStatus]:
        endpoints = health_endpoints(self.ports)
        out = []
        for p in self._recorded():
            alive = procs.alive(p)
            url, tls = endpoints[p.name]
            healthy = alive and procs.probe(url, _ssl_context(tls, self.state_dir))[0]
            out.append(ComponentStatus(p.name, p.pid, alive, healthy, p.log))
        return out

    def healthy(self) -> bool:
        """True if a cluster of this name is recorded and every component answers its health URL."""
        comps = self._probe_all()
        return bool(comps) and all(c.healthy for c in comps)

    # -- up --------------------------------------------------------------------------------
    def up(self, fleet_file: Path | str | None = None, *, scale: int = 1, timeout: float = 180.0) -> UpReport:
        """Start the cluster (or find it running) and apply the fleet; waits for nodes Ready."""
        start = time.monotonic()
        fleet_path = Path(fleet_file) if fleet_file else default_fleet_file()
        if fleet_path is None:
            raise ClusterError(
                "no fleet file given and examples/simulated-fleet/fleet.yaml not found; "
                "pass one (--fleet FILE)"
            )
        manifests = node_manifests(load_fleet(fleet_path), scale)  # validate before starting anything
        with self._lock():
            if self._load_state():
                comps = self._probe_all()
                if comps and all(c.healthy for c in comps):
                    self.log(f"cluster {self.name!r} is already running; re-applying the fleet")
                    applied = self._apply(manifests, timeout)
                    return UpReport(True, self.kubeconfig, time.monotonic() - start, {}, applied)
                bad = (
                    ", ".join(
                        f"{c.name} ({'unhealthy' if c.alive else 'dead'})" for c in comps if not c.healthy
                    )
                    or "no processes recorded"
                )
                raise ClusterError(
                    f"a leftover cluster {self.name!r} is in {self.state_dir} and is not healthy: {bad}.\n"
                    f"  way out: inferfleet dev-cluster down --name {self.name}   (then 'up' again)"
                )
            return self._start(manifests, fleet_path, scale, timeout, start)

    def _start(
        self, manifests: list[dict[str, Any]], fleet_path: Path, scale: int, timeout: float, start: float
    ) -> UpReport:
        problems = procs.free_port_problems(self.ports.by_component(self.external))
        if problems:
            raise ClusterError(
                "cannot start: " + "; ".join(problems) + ".\n  way out: stop that process "
                "(if it is another dev cluster: inferfleet dev-cluster down --name <its name>; "
                "'inferfleet dev-cluster status --all' lists them), or choose other ports with "
                "--port-base N (uses N..N+5)"
            )
        if self.external and not self.kubeconfig.is_file():
            raise ClusterError(f"kubeconfig {self.kubeconfig} does not exist")
        timings: dict[str, float] = {}
        t = time.monotonic()
        needed = ("kwok", "kubectl") if self.external else install.CLUSTER_TOOLS
        bins = install.ensure_binaries(needed, quiet=True)
        write_kwok_config(self.state_dir / "kwok.yaml", install.kwok_stages())
        timings["binaries"] = time.monotonic() - t
        t = time.monotonic()
        shutil.rmtree(self.state_dir / "etcd-data", ignore_errors=True)
        for old in self.logs_dir.glob("*.log") if self.logs_dir.is_dir() else []:
            old.replace(old.with_suffix(".log.prev"))  # one generation of logs survives a restart
        comps = self._components(bins)
        if not self.external:
            write_kubeconfig(
                self.kubeconfig,
                make_pki(self.state_dir / "pki"),
                f"https://127.0.0.1:{self.ports.apiserver}",
                self.name,
            )
        timings["pki"] = time.monotonic() - t
        started: list[procs.ProcInfo] = []
        extra = {"fleet": str(fleet_path.resolve()), "scale": scale, "started_at": time.time()}
        try:
            applied = self._launch(
                comps, started, extra=extra, timings=timings, manifests=manifests, timeout=timeout
            )
        except BaseException:
            self.log(f"start failed; stopping what was started (logs kept in {self.logs_dir})")
            for p in reversed(started):
                procs.stop(p)
            (self.state_dir / STATE_FILE).unlink(missing_ok=True)
            raise
        total = time.monotonic() - start
        extra["start_seconds"] = round(total, 2)
        self._save_state(started, extra)
        return UpReport(False, self.kubeconfig, total, timings, applied)

    def _launch(
        self,
        comps: list[Component],
        started: list[procs.ProcInfo],
        *,
        extra: dict[str, Any],
        timings: dict[str, float],
        manifests: list[dict[str, Any]],
        timeout: float,
    ) -> nodes.ApplyResult:
        """etcd and apiserver at once; once the apiserver is ready the other components start while
        the nodes are created; then everything is health-waited and the nodes waited Ready."""
        endpoints = health_endpoints(self.ports)
        first = [c for c in comps if c.name in ("etcd", "kube-apiserver")]
        rest = [c for c in comps if c not in first]
        t0 = time.monotonic()
        applied = nodes.ApplyResult()
        for batch in (first, rest):
            spawned = [procs.spawn(c.name, c.argv, self.logs_dir / f"{c.name}.log") for c in batch]
            started.extend(spawned)
            self._save_state(started, extra)
            if batch is rest:
                with self.api_client() as api:
                    applied = nodes.apply_nodes(api, manifests)
            for info in spawned:
                url, tls = endpoints[info.name]
                procs.wait_healthy(info, url, _ssl_context(tls, self.state_dir), timeout)
                timings[info.name] = time.monotonic() - t0
                self.log(f"  {info.name:24s} healthy after {timings[info.name]:5.1f}s  (pid {info.pid})")
        with self.api_client() as api:
            nodes.wait_nodes_ready(api, [m["metadata"]["name"] for m in manifests], timeout)
        timings["nodes ready"] = time.monotonic() - t0
        self.log(f"  fleet: {len(manifests)} nodes Ready ({applied.describe()})")
        return applied

    def _apply(self, manifests: list[dict[str, Any]], timeout: float) -> nodes.ApplyResult:
        with self.api_client() as api:
            result = nodes.apply_nodes(api, manifests)
            nodes.wait_nodes_ready(api, [m["metadata"]["name"] for m in manifests], timeout)
        self.log(f"  fleet: {len(manifests)} nodes Ready ({result.describe()})")
        return result

    def apply_fleet(
        self, fleet_file: Path | str, *, scale: int = 1, timeout: float = 120.0
    ) -> nodes.ApplyResult:
        """(Re-)apply a fleet file to the running cluster; prunes managed nodes not in it."""
        manifests = node_manifests(load_fleet(fleet_file), scale)
        return self._apply(manifests, timeout)

    # -- down / status ---------------------------------------------------------------------
    def down(self) -> list[str]:
        """Stop every component (process groups), delete the data; keep logs.  Returns what stopped."""
        with self._lock():
            recorded = self._recorded()
            if self.external and recorded and self.kubeconfig.is_file():
                with contextlib.suppress(Exception), self.api_client() as api:
                    gone = nodes.delete_managed_nodes(api)
                    self.log(f"  deleted {len(gone)} simulated nodes")
            order = {n: i for i, n in enumerate(_STOP_ORDER)}
            stopped = []
            for p in sorted(recorded, key=lambda p: order.get(p.name, -1)):
                if procs.alive(p):
                    procs.stop(p)
                    stopped.append(p.name)
            stopped += self._kill_orphans()
            if prometheus.stop_recorded(self.state_dir / "prometheus"):  # dev-cluster up --prometheus, demo
                stopped.append("prometheus")
            for entry in self.state_dir.iterdir() if self.state_dir.is_dir() else []:
                if entry.name in ("logs", ".lock"):
                    continue
                if entry.is_dir():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
        busy = procs.wait_ports_free(self.ports.by_component(self.external))
        if busy:
            raise ClusterError("stopped, but ports are still in use: " + "; ".join(busy))
        return stopped

    def _kill_orphans(self) -> list[str]:
        """Processes whose command line names this cluster's state dir but are not recorded."""
        marker = str(self.state_dir) + "/"
        killed = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit() or int(proc.name) == os.getpid():
                continue
            try:
                cmd = (proc / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if marker in cmd and Path(cmd.split("\0")[0]).name in COMPONENTS:
                pid = int(proc.name)
                st = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                info = procs.ProcInfo(Path(cmd.split("\0")[0]).name, pid, int(st[19]), "", "")
                procs.stop(info)
                killed.append(f"{info.name} (orphan pid {pid})")
        return killed

    def status(self) -> ClusterStatus:
        state = self._load_state()
        mode = "external" if self.external else "local"
        if not state:
            return ClusterStatus(
                self.name,
                "absent",
                mode,
                str(self.kubeconfig),
                [],
                [],
                f"no cluster named {self.name!r} (start one: inferfleet dev-cluster up)",
            )
        comps = self._probe_all()
        ok = bool(comps) and all(c.healthy for c in comps)
        classes: list[nodes.ClassSummary] = []
        message = ""
        try:
            with self.api_client() as api:
                classes = nodes.summarise(api)
        except Exception as exc:  # the API server being down is a status, not an error
            message = f"API server not reachable: {str(exc)[:200]}"
        return ClusterStatus(
            self.name, "running" if ok else "degraded", mode, str(self.kubeconfig), comps, classes, message
        )


def list_clusters() -> list[str]:
    root = clusters_root()
    if not root.is_dir():
        return []
    return sorted(d.name for d in root.iterdir() if (d / STATE_FILE).is_file())
