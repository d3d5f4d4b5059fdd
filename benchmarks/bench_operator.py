"""Operator benchmark on the real local control plane: 1,000 InferencePools over ~190 kwok nodes.

Prints (never asserts): time from apply to every pool placed and Ready; a budget change re-planned
and applied (seconds, API writes); operator RSS.  Targets (issue 4): all placed <= 120 s, re-plan and
apply <= 10 s, RSS <= 300 MB.

    ./scripts/bench operator [--pools 1000] [--scale 10] [--keep]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from inferfleet_dev import demo
from inferfleet_dev.cluster import Cluster, default_fleet_file

ROOT = Path(__file__).resolve().parents[1]
METRICS_PORT = 19180

MODELS = [  # (name, parameters, precision, slo ttft ms, slo tpot ms, in, out, rps)
    ("meta-llama/Llama-3.1-8B-Instruct", "8B", "bf16", 500, 40, 512, 128, 2),
    ("meta-llama/Llama-3.1-8B-Instruct", "8B", "fp8", 300, 25, 1024, 256, 4),
    ("BAAI/bge-large-en-v1.5", "335M", "fp16", 50, None, 256, 0, 50),
    ("meta-llama/Llama-3.2-3B-Instruct", "3B", "bf16", 300, 20, 512, 128, 3),
    ("meta-llama/Llama-3.1-70B-Instruct", "70B", "fp8", 1000, 60, 1024, 256, 1),
]


def pools(n: int, namespaces: int) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        name, params, prec, ttft, tpot, tin, tout, rps = MODELS[i % len(MODELS)]
        slo: dict[str, int] = {"ttftP95Milliseconds": ttft}
        if tpot:
            slo["tpotP95Milliseconds"] = tpot
        out.append(
            {
                "apiVersion": "inferfleet.dev/v1alpha1",
                "kind": "InferencePool",
                "metadata": {"name": f"pool-{i:04d}", "namespace": f"bench-{i % namespaces:02d}"},
                "spec": {
                    "model": {"name": name, "parameters": params, "precision": prec},
                    "server": {"image": "vllm/vllm-openai:v0.8.5", "args": ["--model", name]},
                    "slo": slo,
                    "demand": {"requestsPerSecond": rps, "inputTokens": tin, "outputTokens": tout},
                    "priority": (i * 7) % 5 * 10,
                    "maxReplicas": 8,
                },
            }
        )
    return out


def metric_sum(name: str) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{METRICS_PORT}/metrics", timeout=10).read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name) and not line.startswith("#")
    )


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def settled_count(cluster: Cluster) -> tuple[int, int]:
    out = cluster.kubectl("get", "inferencepools.inferfleet.dev", "-A", "-o", "json", timeout=120).stdout
    items = json.loads(out)["items"]
    done = 0
    for p in items:
        conds = {c["type"]: c for c in (p.get("status") or {}).get("conditions", [])}
        if conds.get("Ready", {}).get("status") == "True" or conds.get("Placed", {}).get("status") == "False":
            done += 1
    return done, len(items)


def pending_pods(cluster: Cluster) -> list[str]:
    out = cluster.kubectl("get", "pods", "-A", "--field-selector=status.phase=Pending", "-o", "name").stdout
    return out.split()


def wait_quiet(start: float, quiet_s: float = 3.0, timeout: float = 120.0) -> tuple[float, float]:
    """Wait until the write counter stops moving; returns (seconds to last write, writes)."""
    base = metric_sum("inferfleet_api_writes_total")
    last_value, last_change = base, start
    while time.monotonic() - start < timeout:
        time.sleep(0.2)
        value = metric_sum("inferfleet_api_writes_total")
        if value != last_value:
            last_value, last_change = value, time.monotonic()
        elif value > base and time.monotonic() - last_change > quiet_s:
            break
    return last_change - start, last_value - base


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pools", type=int, default=1000)
    ap.add_argument("--scale", type=int, default=10)
    ap.add_argument("--keep", action="store_true", help="leave the cluster running")
    args = ap.parse_args()
    cluster = Cluster("bench")
    t = time.monotonic()
    cluster.up(default_fleet_file(), scale=args.scale)
    nodes = len(json.loads(cluster.kubectl("get", "nodes", "-o", "json").stdout)["items"])
    print(f"cluster with {nodes} kwok nodes up in {time.monotonic() - t:.1f}s")
    demo.install_crds(cluster)
    classes = [
        d for d in yaml.safe_load_all((ROOT / "examples/10-accelerator-classes.yaml").read_text()) if d
    ]
    policy = {
        "apiVersion": "inferfleet.dev/v1alpha1",
        "kind": "FleetPolicy",
        "metadata": {"name": "default"},
        "spec": {
            "powerDomains": [
                {"name": "hall-a", "budgetKilowatts": 600},
                {"name": "hall-b", "budgetKilowatts": 900},
            ]
        },
    }
    namespaces = 10
    for i in range(namespaces):
        cluster.kubectl("create", "namespace", f"bench-{i:02d}", check=False)
    cluster.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump_all([*classes, policy]))
    pid = demo.start_operator(
        cluster,
        metrics_port=METRICS_PORT,
        health_port=0,
        log_name="operator-bench.log",
        extra_args=["--log-level=warning"],
    )
    try:
        time.sleep(3)
        docs = pools(args.pools, namespaces)
        t0 = time.monotonic()
        batches = [yaml.safe_dump_all(docs[i : i + 125]) for i in range(0, len(docs), 125)]
        with concurrent.futures.ThreadPoolExecutor(4) as ex:  # kubectl apply itself is the slow part
            list(
                ex.map(
                    lambda b: cluster.kubectl("apply", "--server-side", "-f", "-", input=b, timeout=300),
                    batches,
                )
            )
        applied = time.monotonic() - t0
        print(f"applied {len(docs)} pools in {applied:.1f}s")
        done, total, last_change, last_done = 0, len(docs), time.monotonic(), -1
        while time.monotonic() - t0 < 600:
            done, total = settled_count(cluster)
            if total == len(docs) and done == total:
                break
            if done != last_done:
                last_done, last_change = done, time.monotonic()
            elif done > 0 and time.monotonic() - last_change > 30:  # plateau: report what is stuck
                print(f"plateau: {done}/{total} settled for 30 s; pending pods: {pending_pods(cluster)}")
                break
            time.sleep(2)
        placed_s = time.monotonic() - t0
        after_apply = placed_s - applied
        deps = json.loads(
            cluster.kubectl(
                "get",
                "deployments",
                "-A",
                "-l",
                "app.kubernetes.io/managed-by=inferfleet",
                "-o",
                "json",
                timeout=120,
            ).stdout
        )["items"]
        replicas = sum(d["spec"]["replicas"] for d in deps)
        print(
            f"all {done}/{total} pools placed and Ready (or reported shed) {placed_s:.1f}s after "
            f"the first apply, {after_apply:.1f}s after the last "
            f"({len(deps)} Deployments, {replicas} replicas); RSS {rss_mb(pid):.0f} MB"
        )
        writes_before = metric_sum("inferfleet_api_writes_total")
        time.sleep(5)
        idle = metric_sum("inferfleet_api_writes_total") - writes_before
        print(f"idle writes over 5 s after settling: {idle:.0f}")
        # budget change
        t1 = time.monotonic()
        cluster.kubectl(
            "patch",
            "fleetpolicy",
            "default",
            "--type=merge",
            "-p",
            json.dumps(
                {
                    "spec": {
                        "powerDomains": [
                            {"name": "hall-a", "budgetKilowatts": 300},
                            {"name": "hall-b", "budgetKilowatts": 900},
                        ]
                    }
                }
            ),
        )
        seconds, writes = wait_quiet(t1)
        print(
            f"budget change hall-a 600 -> 300 kW: re-planned and applied in {seconds:.1f}s "
            f"with {writes:.0f} API writes; RSS {rss_mb(pid):.0f} MB"
        )
        count = metric_sum("inferfleet_plan_duration_seconds_count")
        total_s = metric_sum("inferfleet_plan_duration_seconds_sum")
        print(f"plans: {count:.0f}, mean plan+apply round {total_s / max(count, 1):.2f}s")
    finally:
        demo.stop_operator(cluster)
        if not args.keep:
            cluster.down()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
