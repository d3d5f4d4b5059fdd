"""Autoscaling end to end: the real control plane, a real Prometheus scraping the fleet simulator's
vLLM metrics, and the operator reading them (timings scaled down: 1 s scrapes, 5 s evaluations,
15 s windows).  Pass criteria come from the simulator's ground truth (its own request log).

Scenarios (AUTOSCALING.md §6): a 3x load step is answered by a scale-up and the ground-truth p95
comes back within the SLO; a step down removes nothing inside the stabilisation window and scales
down after it; Prometheus killed under load: MetricsAvailable=False with its reason within two
evaluations, nothing scaled down while load halves, normal control after it returns; a broken
custom query: BadQuery, nothing changed; a class 1.5x slower than modelled is learnt and planned so.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from operator_proc import ROOT, SOURCE_ROOT, OperatorProcess, Operators, free_port
from test_operator import Kube, fleet, kube, operators, policy_restored, pool_ns, small_pool  # noqa: F401

from inferfleet_dev.cluster import Cluster
from inferfleet_dev.prometheus import Prometheus, ScrapeTarget

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

EVAL_S = 5  # FleetPolicy planning.intervalSeconds: the evaluation period (the API's minimum)
SLO_TTFT_MS, SLO_TPOT_MS = 2000, 100


class Simulator:
    """``python -m inferfleet_dev simulate run`` as a user runs it, on a free loopback port."""

    def __init__(self, kubeconfig: Path, log: Path, *, startup: str = "default=2", seed: int = 7) -> None:
        self.port = free_port()
        env = dict(os.environ, PYTHONPATH=str(SOURCE_ROOT))
        argv = [
            sys.executable, "-m", "inferfleet_dev", "simulate", "run", f"--kubeconfig={kubeconfig}",
            f"--port={self.port}", f"--startup-seconds={startup}", "--poll-seconds=0.5", f"--seed={seed}",
        ]  # fmt: skip
        self.log = log.open("ab")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                self.state()
                return
            except OSError:
                assert self.proc.poll() is None, f"simulator exited: {log.read_text()[-2000:]}"
                time.sleep(0.2)
        raise AssertionError("simulator did not answer within 30 s")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def state(self, window: float = 15.0) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}/control/state?window={window}", timeout=5) as rsp:
            doc: dict[str, Any] = json.loads(rsp.read())
            return doc

    def set_load(self, key: str, rps: float, mix: list[float] | None = None) -> None:
        argv = [
            sys.executable,
            "-m",
            "inferfleet_dev",
            "simulate",
            "set-load",
            f"{key}={rps}",
            f"--url={self.url}",
            *([f"--mix={','.join(f'{w:g}' for w in mix)}"] if mix is not None else []),
        ]
        env = dict(os.environ, PYTHONPATH=str(SOURCE_ROOT))
        subprocess.run(argv, check=True, env=env, cwd=ROOT, capture_output=True, timeout=30)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


@pytest.fixture
def simulator(cluster: Cluster, tmp_path: Path) -> Iterator[Simulator]:
    sim = Simulator(cluster.kubeconfig, tmp_path / "simulator.log")
    yield sim
    sim.stop()


@pytest.fixture
def prometheus(simulator: Simulator, tmp_path: Path) -> Iterator[Prometheus]:
    prom = Prometheus(
        tmp_path / "prometheus",
        free_port(),
        [ScrapeTarget("simulator", f"127.0.0.1:{simulator.port}", honor_labels=True)],
        scrape_interval_s=1.0,
    )
    prom.start(timeout=60)
    yield prom
    prom.stop()


@pytest.fixture
def autoscaling_operator(
    operators: Operators,  # noqa: F811
    prometheus: Prometheus,
    policy_restored: dict[str, Any],  # noqa: F811
    cluster: Cluster,
) -> Iterator[OperatorProcess]:
    from inferfleet.api import GROUP

    # no churn penalty: replica counts follow the autoscaler's demand, not the cost of moving
    spec = {"planning": {"intervalSeconds": EVAL_S}, "churnDollarsPerReplicaMove": 0}
    cluster.kubectl(
        "patch", f"fleetpolicies.{GROUP}", "default", "--type=merge", "-p", json.dumps({"spec": spec})
    )
    op = operators.new(
        f"it-autoscale-{time.monotonic_ns() % 10_000}",
        extra_args=[f"--prometheus-url={prometheus.url}", "--prometheus-window=15s"],
    )
    op.start()
    yield op
    op.stop()


def _autoscaled_pool(namespace: str, floor: float, stabilization: int = 60, **auto: Any) -> dict[str, Any]:
    return small_pool(
        "chat",
        namespace,
        slo={"ttftP95Milliseconds": SLO_TTFT_MS, "tpotP95Milliseconds": SLO_TPOT_MS},
        demand={
            "requestsPerSecond": floor,
            "inputTokens": 512,
            "outputTokens": 128,
            "autoscaling": {"scaleDownStabilizationSeconds": stabilization, "tolerancePercent": 10, **auto},
        },
        minReplicas=1,
    )


def _pool_when(kube: Kube, namespace: str, ok: Callable[[dict[str, Any]], bool]) -> Callable[[], Any]:  # noqa: F811
    """For ``wait_for``: the pool when ``ok(pool)``, else None."""

    def check() -> dict[str, Any] | None:
        pool = kube.pool(namespace, "chat")
        return pool if ok(pool) else None

    return check


def _cond(pool: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in pool.get("status", {}).get("conditions", []) if c["type"] == type_), {})


def _planned(pool: dict[str, Any]) -> int:
    return int(pool.get("status", {}).get("replicas") or 0)


def _capacity(pool: dict[str, Any]) -> float:
    """The planned capacity (req/s at the SLO) over the pool's placements."""
    return float(sum(p["requestsPerSecond"] for p in pool["status"]["placements"]))


def _place_and_load(
    kube: Kube,  # noqa: F811
    sim: Simulator,
    ns: str,
    wait_for: Callable[..., Any],
    share: float,
    **kw: Any,
) -> dict[str, Any]:
    """Create the pool, wait for it, and offer ``share`` of its first plan's capacity."""
    kube.create_pool(_autoscaled_pool(ns, floor=1, **kw))
    placed: dict[str, Any] = wait_for(
        _pool_when(kube, ns, lambda p: _planned(p) >= 1), timeout=60, what="placed"
    )
    sim.set_load(f"{ns}/chat", share * _capacity(placed))
    return placed


def test_a_3x_load_step_is_answered_by_a_scale_up_and_the_slo_is_restored(
    kube: Kube,  # noqa: F811
    pool_ns: str,  # noqa: F811
    simulator: Simulator,
    autoscaling_operator: OperatorProcess,
    wait_for: Callable[..., Any],
) -> None:
    key = f"{pool_ns}/chat"
    kube.create_pool(_autoscaled_pool(pool_ns, floor=1))
    placed = wait_for(
        _pool_when(kube, pool_ns, lambda p: _planned(p) >= 1 and bool(p["status"].get("readyReplicas"))),
        timeout=60,
        what="the autoscaled pool placed and Ready",
    )
    base = 0.5 * _capacity(placed) / 1.2  # comfortably inside one plan's capacity
    simulator.set_load(key, base)

    def measuring(p: dict[str, Any]) -> bool:
        got = p["status"].get("autoscaling", {}).get("observedRequestsPerSecond") or 0.0
        return _cond(p, "MetricsAvailable").get("status") == "True" and abs(got - base) < 0.3 * base

    measured = wait_for(
        _pool_when(kube, pool_ns, measuring),
        timeout=90,
        what=f"the operator to measure about {base:.2f} req/s through Prometheus",
    )
    before = _capacity(measured)
    step_at = time.monotonic()
    simulator.set_load(key, 3 * base * 2.4)  # well past what the current replicas can serve
    scaled = wait_for(
        _pool_when(kube, pool_ns, lambda p: _capacity(p) > 1.5 * before),
        timeout=60,
        what="a scale-up after the load step",
    )
    reaction_s = time.monotonic() - step_at
    assert scaled["status"]["autoscaling"]["signal"] in ("ScaleUp", "Steady")
    events = kube.core.list_namespaced_event(pool_ns).items
    assert any(e.reason == "DemandChanged" and "ScaleUp" in (e.message or "") for e in events)

    def slo_restored() -> dict[str, Any] | None:
        st = simulator.state(window=10.0)["pools"].get(key, {})
        ok = (
            st.get("requests", 0) >= 20
            and st.get("serving", 0) >= _planned(kube.pool(pool_ns, "chat"))
            and (st.get("p95TtftSeconds") or 1e9) <= SLO_TTFT_MS / 1000
            and (st.get("p95TpotSeconds") or 1e9) <= SLO_TPOT_MS / 1000
        )
        return st if ok else None

    truth = wait_for(slo_restored, timeout=90, what="ground-truth p95 back within the SLO")
    print(
        f"3x step: scale-up after {reaction_s:.1f}s, SLO restored after {time.monotonic() - step_at:.1f}s "
        f"(p95 TTFT {truth['p95TtftSeconds']:.3f}s, TPOT {truth['p95TpotSeconds']:.3f}s)"
    )


def test_prometheus_down_holds_the_fleet_says_why_and_control_resumes(
    kube: Kube,  # noqa: F811
    pool_ns: str,  # noqa: F811
    simulator: Simulator,
    prometheus: Prometheus,
    autoscaling_operator: OperatorProcess,
    wait_for: Callable[..., Any],
) -> None:
    key = f"{pool_ns}/chat"
    capacity = _capacity(_place_and_load(kube, simulator, pool_ns, wait_for, 2.5))
    busy = wait_for(
        _pool_when(kube, pool_ns, lambda p: _capacity(p) > 1.5 * capacity), timeout=90, what="scaled up"
    )
    prometheus.stop()
    down_at = time.monotonic()
    unreachable = wait_for(
        _pool_when(
            kube, pool_ns, lambda p: _cond(p, "MetricsAvailable").get("reason") == "PrometheusUnreachable"
        ),
        timeout=2 * EVAL_S + 10,
        what="MetricsAvailable=False (PrometheusUnreachable) within two evaluations",
    )
    noticed_s = time.monotonic() - down_at
    cond = _cond(unreachable, "MetricsAvailable")
    assert cond["status"] == "False" and "held at" in cond["message"]
    held = _capacity(kube.pool(pool_ns, "chat"))
    assert held >= _capacity(busy)
    simulator.set_load(key, 0.5 * capacity)  # load halves while Prometheus is down
    end = time.monotonic() + 3 * EVAL_S
    while time.monotonic() < end:  # nothing is removed on what cannot be seen
        assert _capacity(kube.pool(pool_ns, "chat")) >= held
        time.sleep(1)
    events = kube.core.list_namespaced_event(pool_ns).items
    assert any(e.reason == "MetricsUnavailable" for e in events)
    prometheus.start(timeout=60)
    wait_for(
        lambda: _cond(kube.pool(pool_ns, "chat"), "MetricsAvailable").get("status") == "True",
        timeout=60,
        what="MetricsAvailable=True after Prometheus returns",
    )
    print(f"Prometheus down: noticed after {noticed_s:.1f}s; capacity held at {held:.1f} req/s")


def test_a_step_down_waits_for_the_stabilisation_window(
    kube: Kube,  # noqa: F811
    pool_ns: str,  # noqa: F811
    simulator: Simulator,
    autoscaling_operator: OperatorProcess,
    wait_for: Callable[..., Any],
) -> None:
    stabilization = 20
    capacity = _capacity(
        _place_and_load(kube, simulator, pool_ns, wait_for, 3.0, stabilization=stabilization)
    )
    busy = wait_for(
        _pool_when(kube, pool_ns, lambda p: _capacity(p) > 1.5 * capacity), timeout=90, what="scaled up"
    )
    high = _capacity(busy)
    simulator.set_load(f"{pool_ns}/chat", 0.3 * capacity)
    dropped = time.monotonic()
    peak = kube.pool(pool_ns, "chat")["status"]["autoscaling"]["demandRequestsPerSecond"]
    while time.monotonic() - dropped < stabilization - 5:  # inside the window: nothing removed
        pool = kube.pool(pool_ns, "chat")
        assert _capacity(pool) >= high
        assert pool["status"]["autoscaling"]["demandRequestsPerSecond"] >= peak
        time.sleep(1)
    lower = wait_for(
        _pool_when(kube, pool_ns, lambda p: _capacity(p) < high),
        timeout=stabilization + 6 * EVAL_S + 30,
        what="a scale-down after the stabilisation window",
    )
    assert time.monotonic() - dropped >= stabilization - 5
    assert lower["status"]["autoscaling"]["signal"] in ("ScaleDown", "Steady", "Stabilising")


def test_a_broken_custom_query_is_named_and_changes_nothing(
    kube: Kube,  # noqa: F811
    pool_ns: str,  # noqa: F811
    simulator: Simulator,
    autoscaling_operator: OperatorProcess,
    wait_for: Callable[..., Any],
) -> None:
    broken = 'sum(rate(vllm:time_to_first_token_seconds_count{pool="{pool}"}[1m]'
    _place_and_load(kube, simulator, pool_ns, wait_for, 2.0, requestRateQuery=broken)
    bad = wait_for(
        _pool_when(kube, pool_ns, lambda p: _cond(p, "MetricsAvailable").get("reason") == "BadQuery"),
        timeout=4 * EVAL_S + 20,
        what="MetricsAvailable=False (BadQuery)",
    )
    assert "vllm:time_to_first_token_seconds_count" in _cond(bad, "MetricsAvailable")["message"]
    held = _capacity(bad)
    time.sleep(2 * EVAL_S)
    assert _capacity(kube.pool(pool_ns, "chat")) == held  # twice the capacity offered, but unseen


def test_a_class_slower_than_modelled_is_learnt_and_planned_slower(
    kube: Kube,  # noqa: F811
    pool_ns: str,  # noqa: F811
    simulator: Simulator,
    autoscaling_operator: OperatorProcess,
    wait_for: Callable[..., Any],
) -> None:
    placed = _place_and_load(kube, simulator, pool_ns, wait_for, 0.8 / 1.2)
    cls = placed["status"]["placements"][0]["acceleratorClass"]
    per_device = (
        placed["status"]["placements"][0]["requestsPerSecond"] / placed["status"]["placements"][0]["devices"]
    )
    env = dict(os.environ, PYTHONPATH=str(SOURCE_ROOT))
    subprocess.run(
        [sys.executable, "-m", "inferfleet_dev", "simulate", "fault", "slow-class", f"--class={cls}",
         "--factor=1.5", f"--url={simulator.url}"],
        check=True, env=env, cwd=ROOT, capture_output=True, timeout=30,
    )  # fmt: skip

    def learnt(p: dict[str, Any]) -> bool:
        classes = {c["acceleratorClass"]: c for c in p["status"].get("autoscaling", {}).get("classes", [])}
        return float(classes.get(cls, {}).get("tpotCorrection", 1.0)) >= 1.2

    slow = wait_for(_pool_when(kube, pool_ns, learnt), timeout=180, what=f"a TPOT correction >= 1.2 on {cls}")
    factor = next(c for c in slow["status"]["autoscaling"]["classes"] if c["acceleratorClass"] == cls)
    now = {p["acceleratorClass"]: p for p in slow["status"]["placements"]}
    if cls in now:  # still on the class: rated lower per device
        assert now[cls]["requestsPerSecond"] / now[cls]["devices"] < per_device
    print(
        f"slow class {cls}: tpotCorrection {factor['tpotCorrection']}, "
        f"ttftCorrection {factor['ttftCorrection']}"
    )
