"""``inferfleet simulate run`` on the real control plane: it serves exactly the Ready pods of our
pools (on kwok nodes) with the labels a PodMonitor would give a real vLLM fleet, holds a new pod
back for its class's start-up time, serves load, drops a deleted pod's series, and exits cleanly on
SIGTERM; and a real Prometheus scraping it reads the offered load and a p95 in the ground truth's
bucket.

The tests make the replicas itself (Deployments labelled like the operator's children, pinned to
the simulated h100 / mi300x nodes); no operator runs, so nothing else changes them.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families
from prometheus_fixture import prometheus_binary_fixture, prometheus_fixture  # noqa: F401 - fixtures

from inferfleet_dev.cluster import Cluster
from inferfleet_dev.prometheus import Prometheus, simulator_target

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
GROUP, VERSION = "inferfleet.dev", "v1alpha1"
POOL_LABEL = "inferfleet.dev/pool"
CLASS_LABEL = "inferfleet.dev/accelerator-class"
MODEL = "test/sim-8b"


def pool(namespace: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "InferencePool",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "model": {"name": MODEL, "parameters": "8B", "precision": "bf16", "contextLength": 8192},
            "server": {"image": "registry.invalid/inference:1"},
            "slo": {"ttftP95Milliseconds": 2000, "tpotP95Milliseconds": 100},
            "demand": {"requestsPerSecond": 1, "inputTokens": 512, "outputTokens": 64},
        },
    }


def deployment(name: str, pool_name: str, cls: str, replicas: int, *, node_class: str | None = None) -> Any:
    """Replicas labelled like the operator's children; ``node_class`` pins them elsewhere."""
    labels = {POOL_LABEL: pool_name, CLASS_LABEL: cls, "app.kubernetes.io/name": name}
    where = node_class or cls
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "nodeSelector": {CLASS_LABEL: where},
                    "tolerations": [{"key": "inferfleet.dev/accelerator", "operator": "Exists"}],
                    "containers": [{"name": "server", "image": "registry.invalid/inference:1"}],
                },
            },
        },
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except (urllib.error.URLError, OSError):
        return 0, ""


def post(url: str, body: dict[str, Any]) -> int:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.fixture
def start_simulator(cluster: Cluster, tmp_path: Path) -> Iterator[Callable[..., tuple[str, Any, Path]]]:
    """``start(*extra_args)``: the simulator as a subprocess on a free loopback port (SIGTERM, then
    kill, afterwards)."""
    procs: list[subprocess.Popen[str]] = []

    def start(*extra: str) -> tuple[str, subprocess.Popen[str], Path]:
        port = free_port()
        log = tmp_path / f"requests-{len(procs)}.jsonl"
        env = {**os.environ, "PYTHONPATH": str(ROOT / "operator")}
        cmd = [sys.executable, "-m", "inferfleet_dev", "simulate", "run", "--kubeconfig"]
        cmd += [
            str(cluster.kubeconfig),
            "--port",
            str(port),
            "--log",
            str(log),
            "--poll-seconds",
            "0.3",
            *extra,
        ]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        procs.append(proc)
        return f"http://127.0.0.1:{port}", proc, log

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if proc.stderr is not None:
            proc.stderr.close()


def series(url: str) -> dict[str, list[Any]]:
    status, text = get(url + "/metrics")
    if status != 200:
        return {}
    return {f.name: list(f.samples) for f in text_string_to_metric_families(text)}


def ready_pods(core: Any, namespace: str) -> set[str]:
    pods = core.list_namespaced_pod(namespace, label_selector=POOL_LABEL).items
    return {
        p.metadata.name
        for p in pods
        if p.metadata.deletion_timestamp is None
        and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
    }


def test_simulator_serves_exactly_the_ready_pods(
    cluster: Cluster,
    kube_api: Any,
    namespace: str,
    crds: list[Path],
    start_simulator: Callable[..., tuple[str, subprocess.Popen[str], Path]],
    wait_for: Callable[..., Any],
) -> None:
    url, proc, log = start_simulator("--startup-seconds", "mi300x=4,default=0")
    cluster.kubectl(
        "apply", "--server-side", "--force-conflicts", f"-f={ROOT / 'examples/10-accelerator-classes.yaml'}"
    )
    custom, apps, core = (
        client.CustomObjectsApi(kube_api),
        client.AppsV1Api(kube_api),
        client.CoreV1Api(kube_api),
    )
    custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, "inferencepools", pool(namespace, "sim")
    )
    apps.create_namespaced_deployment(namespace, deployment("sim-h100", "sim", "h100", 2))
    apps.create_namespaced_deployment(namespace, deployment("sim-mi300x", "sim", "mi300x", 1))
    # labelled but never Ready (no node matches), and Ready but of a pool that does not exist
    apps.create_namespaced_deployment(
        namespace, deployment("sim-pending", "sim", "h100", 1, node_class="none")
    )
    apps.create_namespaced_deployment(namespace, deployment("ghost", "no-such-pool", "h100", 1))

    def three_ready() -> set[str] | None:
        names = ready_pods(core, namespace)
        ours = {n for n in names if n.startswith("sim-")}
        return ours if len(ours) == 3 and any(n.startswith("ghost-") for n in names) else None

    expected = wait_for(three_ready, timeout=90, what="3 Ready sim pods and the ghost pod")
    wait_for(lambda: get(url + "/control/state")[0] == 200, timeout=30, what="the simulator to listen")

    def simulated() -> dict[str, Any] | None:
        state = json.loads(get(url + "/control/state")[1])
        mine = {k.split("/", 1)[1]: v for k, v in state["replicas"].items() if k.startswith(namespace + "/")}
        ghost = any(k.startswith(f"{namespace}/ghost-") for k in state["ignoredPods"])
        return state if set(mine) == expected and ghost else None

    state = wait_for(simulated, timeout=30, what="the simulator to serve exactly the Ready pods, no others")
    ghost = [k for k in state["ignoredPods"] if k.startswith(f"{namespace}/ghost-")]
    assert ghost and state["ignoredPods"][ghost[0]] == f"no InferencePool {namespace}/no-such-pool"
    ready_at = {
        p.metadata.name: next(
            c.last_transition_time for c in p.status.conditions if c.type == "Ready"
        ).timestamp()
        for p in core.list_namespaced_pod(namespace, label_selector=POOL_LABEL).items
        if p.metadata.name in expected
    }
    for key, replica in state["replicas"].items():
        ns, name = key.split("/", 1)
        if ns != namespace:
            continue
        cls = "mi300x" if name.startswith("sim-mi300x") else "h100"
        assert (replica["acceleratorClass"], replica["pool"]) == (cls, f"{namespace}/sim")
        # start-up time: mi300x replicas serve 4 s after their pod became Ready, h100 ones at once
        assert replica["servingFrom"] == pytest.approx(ready_at[name] + (4.0 if cls == "mi300x" else 0.0))

    assert post(url + "/control/load", {"pool": f"{namespace}/sim", "rps": 20}) == 200
    assert post(url + "/control/load", {"pool": f"{namespace}/nope", "rps": 1}) == 404

    def all_serving() -> dict[str, list[Any]] | None:
        got = series(url)
        done = {
            s.labels["pod"]: s.value
            for s in got.get("vllm:request_success", [])
            if s.labels["namespace"] == namespace
        }
        return got if set(done) == expected and all(v > 0 for v in done.values()) else None

    got = wait_for(all_serving, timeout=60, what="every Ready pod to complete requests")
    for s in got["vllm:num_requests_running"]:
        if s.labels["namespace"] == namespace:
            cls = "mi300x" if s.labels["pod"].startswith("sim-mi300x") else "h100"
            assert s.labels == {
                "model_name": MODEL,
                "engine": "0",
                "namespace": namespace,
                "pod": s.labels["pod"],
                "pool": "sim",
                "accelerator_class": cls,
            }

    gone = sorted(n for n in expected if n.startswith("sim-h100"))[0]
    core.delete_namespaced_pod(gone, namespace, grace_period_seconds=0)

    def dropped() -> bool:
        pods = {s.labels["pod"] for s in series(url).get("vllm:num_requests_running", [])}
        return gone not in pods and bool(pods & expected)

    wait_for(dropped, timeout=30, what=f"the deleted pod {gone}'s series to disappear")

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
    assert "simulate: stopped" in (proc.stderr.read() if proc.stderr else "")
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert rows and {
        "pool",
        "acceleratorClass",
        "pod",
        "arrival",
        "firstToken",
        "finish",
        "nIn",
        "nOut",
    } <= set(rows[0])


def test_a_real_prometheus_reads_the_offered_load_and_p95_from_the_simulator(
    cluster: Cluster,
    kube_api: Any,
    namespace: str,
    crds: list[Path],
    start_simulator: Callable[..., tuple[str, subprocess.Popen[str], Path]],
    prometheus: Callable[..., Prometheus],
    wait_for: Callable[..., Any],
) -> None:
    cluster.kubectl(
        "apply", "--server-side", "--force-conflicts", f"-f={ROOT / 'examples/10-accelerator-classes.yaml'}"
    )
    custom, apps, core = (
        client.CustomObjectsApi(kube_api),
        client.AppsV1Api(kube_api),
        client.CoreV1Api(kube_api),
    )
    custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, "inferencepools", pool(namespace, "prom")
    )
    apps.create_namespaced_deployment(namespace, deployment("prom-h100", "prom", "h100", 2))
    pods = wait_for(
        lambda: (names := ready_pods(core, namespace)) and len(names) == 2 and names,
        timeout=90,
        what="2 Ready pods",
    )
    rps = 20.0
    url, _, _ = start_simulator("--rps", f"{namespace}/prom={rps:g}")
    address = url.removeprefix("http://")
    prom = prometheus([simulator_target(address)], interval=1.0)
    selector = f'namespace="{namespace}",pool="prom"'

    def scraped_pods() -> set[str] | None:
        got = prom.query(f"vllm:num_requests_running{{{selector}}}")
        names = {r["metric"]["pod"] for r in got}
        return names if names == pods else None

    wait_for(scraped_pods, timeout=60, what="Prometheus to scrape both pods' series")
    got = prom.query(f"vllm:num_requests_running{{{selector}}}")[0]["metric"]
    assert (got["accelerator_class"], got["model_name"], got["engine"]) == ("h100", MODEL, "0")

    def arrivals() -> float | None:
        res = prom.query(f"sum(rate(vllm:time_to_first_token_seconds_count{{{selector}}}[20s]))")
        return float(res[0]["value"][1]) if res and time.time() > start + 25 else None

    start = time.time()
    measured = wait_for(arrivals, timeout=90, what="a 20 s arrival rate in Prometheus")
    assert measured == pytest.approx(rps, rel=0.35)
    res = prom.query(
        "histogram_quantile(0.95, sum by (le) "
        f"(rate(vllm:time_to_first_token_seconds_bucket{{{selector}}}[20s])))"
    )
    p95_prometheus = float(res[0]["value"][1])
    truth = json.loads(get(url + "/control/state?window=20")[1])["pools"][f"{namespace}/prom"]
    assert truth["requests"] > 100
    assert truth["p95TtftSeconds"] is not None
    # histogram_quantile interpolates inside a bucket: the same bucket, not the same number
    edges = [0.0, 0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5]
    lo = max(e for e in edges if e < truth["p95TtftSeconds"])
    hi = min(e for e in edges if e >= truth["p95TtftSeconds"])
    assert lo * 0.5 <= p95_prometheus <= hi * 2.0, (p95_prometheus, truth["p95TtftSeconds"])
