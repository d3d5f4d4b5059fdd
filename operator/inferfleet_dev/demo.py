"""The README's main command: the whole local demo in one go (``./scripts/demo``).

Owns the sequence: binaries, the simulated fleet (real control plane + kwok accelerator nodes), the
CRDs, the operator as a background process, the examples, waiting until the pools are placed, and
showing the result.  ``down`` stops the operator and the cluster; ``plan`` is the offline planner only.
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
from inferfleet_dev import install
from inferfleet_dev.cluster import Cluster, ClusterError, default_fleet_file

__all__ = ["main"]

ROOT = Path(__file__).resolve().parents[2]
NAME = "demo"
METRICS_PORT = 18080
HEALTH_PORT = 18081


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


def stop_operator(cluster: Cluster) -> None:
    pid = _operator_pid(cluster)
    if pid is None:
        return
    os.killpg(pid, signal.SIGTERM)
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except OSError:
            break
        time.sleep(0.1)
    else:
        os.killpg(pid, signal.SIGKILL)
    (cluster.state_dir / "operator.pid").unlink(missing_ok=True)
    say("operator stopped")


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
    cluster = Cluster(NAME)
    cluster.up(default_fleet_file())
    install_crds(cluster)
    start_operator(cluster)
    cluster.kubectl("apply", "-f", str(ROOT / "examples"))
    say("applied examples/; waiting for the operator to place the pools ...")
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
    say("  ./scripts/demo down    # stop everything")
    return 0


def down() -> int:
    cluster = Cluster(NAME)
    stop_operator(cluster)
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
    except (ClusterError, install.InstallError) as exc:
        say(f"error: {exc}")
        return 1
    say(f"usage: demo [up|down|plan], got {action!r}")
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
