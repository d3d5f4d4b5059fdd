"""The README's main command: the whole local demo in one go (``./scripts/demo``).

Owns the sequence: binaries, the simulated fleet (real control plane + kwok accelerator nodes), the
CRDs, the fleet simulator (vLLM metrics for every Ready replica) and a real Prometheus scraping it,
the operator as a background process reading that Prometheus, the examples with autoscaling on,
waiting until the pools are placed, and showing the result and how to step the load.  ``down``
stops everything; ``plan`` is the offline planner only.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from inferfleet.api import labels
from inferfleet_dev import install, procs, prometheus
from inferfleet_dev.cluster import Cluster, ClusterError, default_fleet_file

__all__ = ["main"]

ROOT = Path(__file__).resolve().parents[2]
NAME = "demo"
METRICS_PORT = 18080
HEALTH_PORT = 18081
SIMULATOR_PORT = 19400
PROMETHEUS_PORT = 19090
SCRAPE_S = 5.0
# the demo's autoscaling: follow measured load, scale down after 2 minutes of lower demand
AUTOSCALING = {"scaleDownStabilizationSeconds": 120, "tolerancePercent": 10}


def say(msg: str) -> None:
    print(f"[demo] {msg}", file=sys.stderr, flush=True)


def _operator_pid(cluster: Cluster) -> int | None:
    try:
        pid = int((cluster.state_dir / "operator.pid").read_text())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def install_crds(cluster: Cluster) -> None:
    """Apply crds/ (server-side) and wait until the API server serves them."""
    cluster.kubectl("apply", "--server-side", "-f", str(ROOT / "crds"))
    cluster.kubectl(
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd",
        "-l",
        f"{labels.PART_OF}={labels.PRODUCT}",
    )


def start_operator(
    cluster: Cluster,
    *,
    metrics_port: int = METRICS_PORT,
    health_port: int = HEALTH_PORT,
    log_name: str = "operator.log",
    extra_args: Sequence[str] = (),
) -> int:
    """The operator as a background process of this cluster (one per cluster; its pid is recorded)."""
    pid = _operator_pid(cluster)
    if pid is not None:
        say(f"operator already running (pid {pid})")
        return pid
    cluster.logs_dir.mkdir(parents=True, exist_ok=True)
    log = (cluster.logs_dir / log_name).open("ab")
    env = {**cluster.env(), "PYTHONPATH": str(ROOT / "operator")}
    argv = [
        sys.executable,
        "-m",
        "inferfleet",
        "run",
        f"--kubeconfig={cluster.kubeconfig}",
        "--no-leader-elect",
        f"--metrics-port={metrics_port}",
        f"--health-port={health_port}",
        *extra_args,
    ]
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    (cluster.state_dir / "operator.pid").write_text(str(proc.pid))
    say(f"operator started (pid {proc.pid}); log: {cluster.logs_dir / log_name}")
    return proc.pid


def _stop_recorded_pid(cluster: Cluster, name: str) -> bool:
    pid_file = cluster.state_dir / f"{name}.pid"
    try:
        pid = int(pid_file.read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        pid_file.unlink(missing_ok=True)
        return False
    os.killpg(pid, signal.SIGTERM)
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except OSError:
            break
        time.sleep(0.1)
    else:
        os.killpg(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
    return True


def stop_operator(cluster: Cluster) -> None:
    if _stop_recorded_pid(cluster, "operator"):
        say("operator stopped")


def start_simulator(cluster: Cluster, loads: dict[str, float]) -> None:
    """The fleet simulator (``inferfleet simulate run``) in the background, offering ``loads``."""
    if _stop_recorded_pid(cluster, "simulator"):
        say("restarting the simulator")
    log = (cluster.logs_dir / "simulator.log").open("ab")
    env = {**cluster.env(), "PYTHONPATH": str(ROOT / "operator")}
    argv = [
        sys.executable, "-m", "inferfleet_dev", "simulate", "run", f"--kubeconfig={cluster.kubeconfig}",
        f"--port={SIMULATOR_PORT}", "--startup-seconds=default=10",
        *(f"--rps={key}={rps:g}" for key, rps in sorted(loads.items())),
    ]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    (cluster.state_dir / "simulator.pid").write_text(str(proc.pid))
    deadline = time.monotonic() + 30
    while not procs.port_in_use(SIMULATOR_PORT):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise ClusterError(f"the simulator did not start; log: {cluster.logs_dir / 'simulator.log'}")
        time.sleep(0.2)
    say(f"fleet simulator serving vLLM metrics on 127.0.0.1:{SIMULATOR_PORT} (pid {proc.pid})")


def start_prometheus(cluster: Cluster) -> str:
    """A real Prometheus on loopback scraping the simulator every SCRAPE_S seconds."""
    prometheus.stop_recorded(cluster.state_dir / "prometheus")
    prom = prometheus.Prometheus(
        cluster.state_dir / "prometheus",
        PROMETHEUS_PORT,
        [prometheus.simulator_target(f"127.0.0.1:{SIMULATOR_PORT}")],
        scrape_interval_s=SCRAPE_S,
    )
    took = prom.start(timeout=60)
    say(f"prometheus at {prom.url}, scraping the simulator (up after {took:.1f}s)")
    return prom.url


def _pools(cluster: Cluster) -> list[dict[str, Any]]:
    out = cluster.kubectl("get", "inferencepools.inferfleet.dev", "-A", "-o", "json", check=False)
    if out.returncode != 0:
        return []
    items: list[dict[str, Any]] = json.loads(out.stdout).get("items", [])
    return items


def _settled(pool: dict[str, Any]) -> bool:
    """Ready, or reported as not placeable: either way the operator has had its say."""
    conds = {c.get("type"): c.get("status") for c in (pool.get("status") or {}).get("conditions", [])}
    return conds.get("Ready") == "True" or conds.get("Placed") == "False"


def up(timeout: float = 180.0) -> int:
    start = time.monotonic()
    install.ensure_all(
        ["kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "etcd", "kwok"]
    )
    prometheus.ensure()
    cluster = Cluster(NAME)
    cluster.up(default_fleet_file())
    install_crds(cluster)
    cluster.kubectl("apply", "-f", str(ROOT / "examples"))
    loads = _autoscale_examples(cluster)
    start_simulator(cluster, loads)
    url = start_prometheus(cluster)
    start_operator(cluster, extra_args=[f"--prometheus-url={url}", "--prometheus-window=1m"])
    say("applied examples/ with autoscaling on; waiting for the operator to place the pools ...")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pools = _pools(cluster)
        if pools and all(_settled(p) for p in pools):
            break
        time.sleep(1)
    else:
        say(f"not every pool settled within {timeout:.0f}s; see the operator log")
    print(cluster.kubectl("get", "inferencepools.inferfleet.dev", "-A", "-o", "wide").stdout)
    print(cluster.kubectl("get", "fleetpolicies.inferfleet.dev,acceleratorclasses.inferfleet.dev").stdout)
    print(cluster.kubectl("get", "deployments", "-A", "-l", labels.OURS).stdout)
    say(f"demo ready in {time.monotonic() - start:.0f}s. Try:")
    say(f"  export KUBECONFIG={cluster.kubeconfig}")
    say(f"  {cluster.kubectl_path} describe inferencepools.inferfleet.dev -n chat chat-70b")
    say(
        f"  {cluster.kubectl_path} patch fleetpolicy default --type=merge "
        '-p \'{"spec":{"powerDomains":[{"name":"hall-a","budgetKilowatts":15},'
        '{"name":"hall-b","budgetKilowatts":60}]}}\''
    )
    say(f"  curl -s localhost:{METRICS_PORT}/metrics | grep ^inferfleet_")
    say("  step the load and watch the operator answer within about a minute (the example's power")
    say("  budgets bind: past about 2x the plan sheds, lowest priority first; the patch above raises them):")
    say(f"  ./scripts/inferfleet simulate set-load chat/chat-70b=80 --url http://127.0.0.1:{SIMULATOR_PORT}")
    say(f"  {cluster.kubectl_path} get inferencepools.inferfleet.dev -A -w")
    say(f"  ./scripts/inferfleet simulate state --url http://127.0.0.1:{SIMULATOR_PORT}   # ground truth")
    say("  ./scripts/demo down    # stop everything")
    return 0


def _autoscale_examples(cluster: Cluster) -> dict[str, float]:
    """Turn autoscaling on for every example pool; the simulator offers each its static demand
    (the embeddings pool a tenth of it: thousands of tiny requests a second cost the simulator more
    CPU than this machine spares)."""
    loads = {}
    for pool in _pools(cluster):
        meta, demand = pool["metadata"], pool["spec"]["demand"]
        patch = {"spec": {"demand": {"autoscaling": AUTOSCALING}}}
        cluster.kubectl(
            "patch", "inferencepools.inferfleet.dev", "-n", meta["namespace"], meta["name"],
            "--type=merge", "-p", json.dumps(patch),
        )  # fmt: skip
        rps = float(demand["requestsPerSecond"])
        loads[f"{meta['namespace']}/{meta['name']}"] = rps / 10 if rps > 500 else rps
    return loads


def down() -> int:
    cluster = Cluster(NAME)
    stop_operator(cluster)
    if _stop_recorded_pid(cluster, "simulator"):
        say("simulator stopped")
    if prometheus.stop_recorded(cluster.state_dir / "prometheus"):
        say("prometheus stopped")
    cluster.down()
    return 0


def plan() -> int:
    """``inferfleet plan`` over the examples and the simulated fleet, run as a user runs it."""
    argv = [sys.executable, "-m", "inferfleet", "plan", "-f", str(ROOT / "examples")]
    argv += ["-f", str(ROOT / "examples" / "simulated-fleet")]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "operator")}
    return subprocess.run(argv, env=env, check=False).returncode


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    action = args[0] if args else "up"
    try:
        if action == "up":
            return up()
        if action == "down":
            return down()
        if action == "plan":
            return plan()
    except (ClusterError, install.InstallError, prometheus.PrometheusError) as exc:
        say(f"error: {exc}")
        return 1
    say(f"usage: demo [up|down|plan], got {action!r}")
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
