"""Operator benchmark on the real local control plane: 1,000 InferencePools over ~190 kwok nodes
(``--pools 5000 --scale 27``: 5,000 over 513).

Prints (never asserts): time from apply to every pool placed and Ready, and the replicas left
Pending at the end; the operator's CPU seconds; the duration of an idle round and of the rounds
after one pool's change; the API requests the operator
makes per idle round and for one pool's demand edit, by verb and resource (its own count, from the
``apiRequests`` of its /healthz probe), and the watch connections it holds (the API server's
``apiserver_longrunning_requests``, before the operator starts and once it has settled: kopf's
watches included); a budget change re-planned and applied (seconds, API writes); operator RSS.
Targets (issues 4 and 10): 1,000 pools settled <= 120 s with 0 Pending, 5,000 <= 5 min with RSS
<= 512 MiB; an idle round makes no write and no LIST; re-plan and apply <= 10 s.
The power budgets grow with the pools (``--budget-scale``, default pools / 1,000).

    ./scripts/bench operator [--pools 1000] [--scale 10] [--budget-scale X] [--keep]
                             [--cluster NAME] [--port-base N]

The wait for settling ends early only on a plateau: no pool settled, no write and no round ended
for ``plateau_s`` (30 s, or twice the longest round seen so far when rounds are longer: a 5,000-pool
round can plan for a minute before its first write).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from inferfleet_dev import demo
from inferfleet_dev.cluster import Cluster, default_fleet_file

ROOT = Path(__file__).resolve().parents[1]
METRICS_PORT = 19180  # the defaults; --port-base moves them to base + 7 and base + 8
HEALTH_PORT = 19181
INTERVAL_S = 20  # the FleetPolicy's planning interval: an idle round every 20 s
IDLE_ROUNDS = 3
PLANS = "inferfleet_plan_duration_seconds_count"

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


def plateau_s(longest_round_s: float, floor_s: float = 30.0) -> float:
    """How long nothing may happen before the wait calls it a plateau: 30 s, or twice the longest
    round seen so far (a round plans before it writes, and a long one is quiet for a while)."""
    return max(floor_s, 2.0 * longest_round_s)


def scrape() -> str:
    """The operator's /metrics text.  Not free: ~0.1 s of the operator's CPU at 1,000 pools (550 kB;
    every per-pool series), so the waits below poll it once a second or less, never faster."""
    body: bytes = urllib.request.urlopen(f"http://127.0.0.1:{METRICS_PORT}/metrics", timeout=10).read()
    return body.decode()


def metric_sum(name: str, text: str | None = None) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in (scrape() if text is None else text).splitlines()
        if line.startswith(name) and not line.startswith("#")
    )


def writes_by(text: str) -> dict[str, float]:
    """``inferfleet_api_writes_total`` of a /metrics text by "Kind verb"."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("inferfleet_api_writes_total{"):
            labels_text, value = line.rsplit(" ", 1)
            kind = labels_text.split('kind="', 1)[1].split('"', 1)[0]
            verb = labels_text.split('verb="', 1)[1].split('"', 1)[0]
            out[f"{kind} {verb}"] = out.get(f"{kind} {verb}", 0.0) + float(value)
    return out


def writes_now() -> dict[str, float]:
    return writes_by(
        urllib.request.urlopen(f"http://127.0.0.1:{METRICS_PORT}/metrics", timeout=10).read().decode()
    )


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def round_seconds(before: tuple[float, float], after: tuple[float, float]) -> float:
    """Mean plan+apply round between two (count, sum) readings of the duration histogram."""
    n = after[0] - before[0]
    return (after[1] - before[1]) / n if n > 0 else float("nan")


def rounds_now() -> tuple[float, float]:
    text = scrape()
    return metric_sum(PLANS, text), metric_sum("inferfleet_plan_duration_seconds_sum", text)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


_probed_at = [0.0]


def api_requests() -> dict[str, int]:
    """The operator's own count of its API calls, by "VERB resource" (kopf's not included), as of
    now: kopf answers /healthz from a cache refreshed when older than 10 s, so this waits for it."""
    time.sleep(max(0.0, _probed_at[0] + 10.5 - time.monotonic()))
    _probed_at[0] = time.monotonic()
    body = urllib.request.urlopen(f"http://127.0.0.1:{HEALTH_PORT}/healthz", timeout=10).read()
    counts: dict[str, int] = json.loads(body)["apiRequests"]
    return counts


def wait_rounds(done: float, more: int, timeout: float = 300.0) -> float:
    """Wait until ``more`` planning rounds have finished after the count ``done``; the new count.
    Rounds are counted when they end: a window from one end to another holds whole rounds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        count = metric_sum(PLANS)
        if count >= done + more:
            return count
        time.sleep(1.0)
    raise TimeoutError(f"fewer than {more} planning rounds in {timeout:.0f}s")


def wait_loop_quiet(quiet_s: float = 4.0, timeout: float = 120.0) -> float:
    """Wait until no round has finished for ``quiet_s``; the round count."""
    deadline = time.monotonic() + timeout
    last, since = metric_sum(PLANS), time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - since < quiet_s:
        time.sleep(1.0)
        count = metric_sum(PLANS)
        if count != last:
            last, since = count, time.monotonic()
    return last


def open_watches(cluster: Cluster) -> dict[str, float]:
    """WATCH connections open on the API server right now, by resource (every client's)."""
    text = cluster.kubectl("get", "--raw", "/metrics", timeout=60).stdout
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("apiserver_longrunning_requests{") and 'verb="WATCH"' in line:
            labels_text, value = line.rsplit(" ", 1)
            resource = labels_text.split('resource="', 1)[1].split('"', 1)[0]
            out[resource] = out.get(resource, 0.0) + float(value)
    return out


def by_verb(before: dict[str, int], after: dict[str, int], rounds: float) -> str:
    """ "LIST 8.0 (pods 2.0, nodes 1.0, ...), PATCH ..." per round, from two counts."""
    delta = {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}
    verbs: dict[str, dict[str, int]] = {}
    for key, n in delta.items():
        verb, _, resource = key.partition(" ")
        verbs.setdefault(verb, {})[resource] = n
    per = max(rounds, 1.0)
    parts = [f"total {sum(delta.values()) / per:.1f}"]
    for verb, resources in sorted(verbs.items()):
        inner = ", ".join(f"{r} {n / per:.1f}" for r, n in sorted(resources.items()))
        parts.append(f"{verb} {sum(resources.values()) / per:.1f} ({inner})")
    return "; ".join(parts)


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
        time.sleep(0.5)
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
    ap.add_argument("--budget-scale", type=float, default=None, help="x the budgets (default pools/1000)")
    ap.add_argument("--keep", action="store_true", help="leave the cluster running")
    ap.add_argument("--cluster", default="bench", help="the dev cluster's name (default bench)")
    ap.add_argument("--port-base", type=int, default=None, help="its port base (default: by name)")
    args = ap.parse_args()
    global METRICS_PORT, HEALTH_PORT  # the module's helpers read them
    if args.port_base is not None:
        METRICS_PORT, HEALTH_PORT = args.port_base + 7, args.port_base + 8
    budget = args.budget_scale if args.budget_scale is not None else max(args.pools / 1000, 1.0)
    cluster = Cluster(args.cluster, port_base=args.port_base)
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
                {"name": "hall-a", "budgetKilowatts": round(600 * budget)},
                {"name": "hall-b", "budgetKilowatts": round(900 * budget)},
            ],
            "planning": {"intervalSeconds": INTERVAL_S},
        },
    }
    namespaces = 10
    for i in range(namespaces):
        cluster.kubectl("create", "namespace", f"bench-{i:02d}", check=False)
    cluster.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump_all([*classes, policy]))
    watches_without = open_watches(cluster)
    pid = demo.start_operator(
        cluster,
        metrics_port=METRICS_PORT,
        health_port=HEALTH_PORT,
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
        done, total, last_change = 0, len(docs), time.monotonic()
        last_seen: tuple[int, float, float] = (-1, -1.0, -1.0)
        longest, round_ended = 0.0, time.monotonic()
        while time.monotonic() - t0 < max(900.0, 0.3 * len(docs)):
            done, total = settled_count(cluster)
            if total == len(docs) and done == total:
                break
            text = scrape()
            seen = (done, metric_sum("inferfleet_api_writes_total", text), metric_sum(PLANS, text))
            if seen[2] != last_seen[2]:
                longest, round_ended = max(longest, time.monotonic() - round_ended), time.monotonic()
            quiet = plateau_s(longest)
            if seen != last_seen:  # progress: pools settled, the operator writing, or a round ended
                last_seen, last_change = seen, time.monotonic()
            elif done > 0 and time.monotonic() - last_change > quiet:  # plateau: report what is stuck
                stuck = pending_pods(cluster)
                print(
                    f"plateau: {done}/{total} settled, no writes and no round for {quiet:.0f} s; "
                    f"{len(stuck)} pending: {stuck[:5]}"
                )
                break
            time.sleep(max(2.0, len(docs) / 1000))  # each poll LISTs every pool: 5 s at 5,000
        settled_at = time.monotonic() if done == total else last_change  # a plateau: its start
        placed_s = settled_at - t0
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
        pending = pending_pods(cluster)
        print(
            f"all {done}/{total} pools placed and Ready (or reported shed) {placed_s:.1f}s after "
            f"the first apply, {after_apply:.1f}s after the last "
            f"({len(deps)} Deployments, {replicas} replicas, {len(pending)} Pending); "
            f"RSS {rss_mb(pid):.0f} MB; operator CPU {cpu_s(pid):.0f} s"
        )
        by_kind = writes_now()
        print(
            f"writes so far: {sum(by_kind.values()):.0f} ("
            + ", ".join(f"{k} {v:.0f}" for k, v in sorted(by_kind.items()))
            + f"); rounds {metric_sum(PLANS):.0f}, longest between round ends {longest:.0f} s"
        )
        writes_before = metric_sum("inferfleet_api_writes_total")
        time.sleep(5)
        idle = metric_sum("inferfleet_api_writes_total") - writes_before
        print(f"idle writes over 5 s after settling: {idle:.0f}")
        watches = {
            r: n - watches_without.get(r, 0.0)
            for r, n in open_watches(cluster).items()
            if n - watches_without.get(r, 0.0)
        }
        print(
            f"watch connections the operator holds: {sum(watches.values()):.0f} "
            f"({', '.join(f'{r} {n:.0f}' for r, n in sorted(watches.items()))})"
        )
        # idle rounds: nothing changes, the loop plans every INTERVAL_S; the window runs from the end
        # of one round to the end of another, so it holds IDLE_ROUNDS whole rounds
        rounds0 = wait_rounds(metric_sum(PLANS), 1)
        counts0, t_idle, hist0, cpu0 = api_requests(), time.monotonic(), rounds_now(), cpu_s(pid)
        rounds1 = wait_rounds(rounds0, IDLE_ROUNDS)
        counts1, hist1 = api_requests(), rounds_now()
        print(
            f"idle: {rounds1 - rounds0:.0f} rounds in {time.monotonic() - t_idle:.0f} s, "
            f"{round_seconds(hist0, hist1):.2f} s each, operator CPU {cpu_s(pid) - cpu0:.1f} s; "
            f"API requests per idle round: {by_verb(counts0, counts1, rounds1 - rounds0)}; "
            f"RSS {rss_mb(pid):.0f} MB"
        )
        # one pool's demand edited, right after a round: until writes and rounds have stopped
        rounds2 = wait_rounds(rounds1, 1)
        counts2, t2, hist2 = api_requests(), time.monotonic(), rounds_now()
        cluster.kubectl(
            "patch",
            "inferencepools.inferfleet.dev",
            "pool-0004",  # a 70B pool of high priority: more demand takes more replicas
            "-n",
            "bench-04",
            "--type=merge",
            "-p",
            json.dumps({"spec": {"demand": {"requestsPerSecond": 4}}}),
        )
        seconds, writes = wait_quiet(t2)
        rounds3 = wait_loop_quiet()  # the rounds that the echoes of its own writes cause
        counts3, hist3 = api_requests(), rounds_now()
        print(
            f"one pool's demand 1 -> 4 req/s: applied in {seconds:.1f}s with {writes:.0f} writes over "
            f"{rounds3 - rounds2:.0f} rounds ({round_seconds(hist2, hist3):.2f} s each); "
            f"API requests in all: {by_verb(counts2, counts3, 1.0)}"
        )
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
                            {"name": "hall-a", "budgetKilowatts": round(300 * budget)},
                            {"name": "hall-b", "budgetKilowatts": round(900 * budget)},
                        ]
                    }
                }
            ),
        )
        seconds, writes = wait_quiet(t1)
        print(
            f"budget change hall-a {600 * budget:.0f} -> {300 * budget:.0f} kW: "
            f"re-planned and applied in {seconds:.1f}s "
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
