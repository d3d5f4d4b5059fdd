"""The simulated fleet: replicas are exactly the known Ready pods, serve only after the class's
start-up time, share their pool's load, vanish with their pod, and honour faults."""

from __future__ import annotations

from typing import Any

import pytest

from inferfleet.api.labels import ACCELERATOR_CLASS, POOL
from inferfleet.core.performance import estimate
from inferfleet.core.types import AcceleratorClass, Estimate, Pool
from inferfleet_dev.simulate.engine import RealClock
from inferfleet_dev.simulate.fleet import ready_pods
from inferfleet_dev.simulate.sim import Pod, Simulation

CHAT = "chat/chat-70b"


def pod(name: str, cls: str = "h100", ready_at: float = 0.0, pool: str = "chat-70b") -> Pod:
    return Pod("chat", name, pool, cls, ready_at)


def test_a_replica_serves_only_after_its_class_start_up_time(
    pools: dict[str, Pool], classes: dict[str, AcceleratorClass]
) -> None:
    sim = Simulation(startup_seconds={"h100": 10.0, "default": 3.0})
    sim.advance(100.0)
    sim.sync(pools, classes, [pod("a", "h100", ready_at=100.0), pod("b", "mi300x", ready_at=100.0)])
    sim.set_load(CHAT, 20.0)
    sim.advance(102.9)
    assert sim.state()["pools"][CHAT]["serving"] == 0
    assert sim.recorder.total == 0 and sim.loads[CHAT].dropped > 20  # no replica: nowhere to go
    sim.advance(109.9)
    state = sim.state()
    assert state["replicas"]["chat/b"]["serving"] and not state["replicas"]["chat/a"]["serving"]
    assert state["replicas"]["chat/a"]["servingFrom"] == 110.0
    assert sim.replicas["chat/a"].series.success == 0
    sim.advance(140.0)
    assert sim.replicas["chat/a"].series.success > 0
    first = min(d.arrival for d in sim.recorder.done if d.pod == "a")
    assert first >= 110.0


def test_load_is_spread_over_the_serving_replicas(
    pools: dict[str, Pool], classes: dict[str, AcceleratorClass]
) -> None:
    sim = Simulation()
    sim.sync(pools, classes, [pod(f"p{i}") for i in range(3)])
    sim.set_load(CHAT, 12.0)  # within the three replicas' capacity
    sim.advance(120.0)
    per_pod = [sim.replicas[f"chat/p{i}"].series.success for i in range(3)]
    assert sum(per_pod) > 1000
    assert max(per_pod) < 1.1 * min(per_pod)


def test_replicas_are_exactly_the_known_pods_and_go_with_them(
    pools: dict[str, Pool], classes: dict[str, AcceleratorClass]
) -> None:
    sim = Simulation()
    sim.sync(
        pools,
        classes,
        [pod("a"), pod("b"), pod("x", pool="no-such-pool"), pod("y", cls="no-such-class")],
    )
    assert sorted(sim.replicas) == ["chat/a", "chat/b"]
    assert sim.state()["ignoredPods"] == {
        "chat/x": "no InferencePool chat/no-such-pool",
        "chat/y": "no AcceleratorClass no-such-class",
    }
    sim.set_load(CHAT, 5.0)
    sim.advance(20.0)
    text = sim.metrics_text()
    assert text is not None and 'pod="b"' in text
    sim.sync(pools, classes, [pod("a")])
    text = sim.metrics_text()
    assert text is not None and 'pod="a"' in text and 'pod="b"' not in text
    kept = sim.replicas["chat/a"]
    sim.sync(pools, classes, [pod("a")])
    assert sim.replicas["chat/a"] is kept  # the same pod keeps its counters
    sim.sync(pools, classes, [pod("a", ready_at=30.0)])  # Ready again (restarted): a new replica
    assert sim.replicas["chat/a"] is not kept


def test_faults_slow_a_class_and_withhold_its_metrics(
    pools: dict[str, Pool], classes: dict[str, AcceleratorClass]
) -> None:
    sim = Simulation(speed={"mi300x": 1.2})
    sim.sync(pools, classes, [pod("a", "h100"), pod("b", "mi300x")])
    assert sim.replicas["chat/b"].engine.speed == 1.2
    sim.slow_class("h100", 2.0)
    assert (sim.replicas["chat/a"].engine.speed, sim.replicas["chat/b"].engine.speed) == (2.0, 1.2)
    sim.stop_metrics("h100")
    text = sim.metrics_text()
    assert text is not None and 'accelerator_class="h100"' not in text and 'pod="b"' in text
    sim.stop_metrics(None)
    assert sim.metrics_text() is None
    sim.clear_faults()
    assert sim.replicas["chat/a"].engine.speed == 1.0 and sim.metrics_text() is not None
    assert sim.state()["faults"] == {"slow": {}, "stopMetrics": []}


def test_state_reports_ground_truth_p95_per_pool_and_class(
    pools: dict[str, Pool], classes: dict[str, AcceleratorClass]
) -> None:
    sim = Simulation()
    sim.sync(pools, classes, [pod("a", "h100"), pod("b", "mi300x")])
    sim.set_load(CHAT, 10.0)
    sim.advance(120.0)
    chat = sim.state(window_seconds=60.0)["pools"][CHAT]
    assert chat["offeredRps"] == 10.0 and chat["replicas"] == chat["serving"] == 2
    assert chat["requests"] == pytest.approx(600, rel=0.15)
    assert 0 < chat["p95TtftSeconds"] < 0.8 and 0 < chat["p95TpotSeconds"] < 0.04  # within the SLO
    assert set(chat["classes"]) == {"h100", "mi300x"}
    assert sum(c["requests"] for c in chat["classes"].values()) == chat["requests"]


def raw_pod(name: str, ready: str | None, *, labels: bool = True, deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "chat"}
    if labels:
        meta["labels"] = {POOL: "chat-70b", ACCELERATOR_CLASS: "h100"}
    if deleting:
        meta["deletionTimestamp"] = "2026-12-01T10:00:00Z"
    conds = (
        []
        if ready is None
        else [{"type": "Ready", "status": ready, "lastTransitionTime": "2026-12-01T10:00:00Z"}]
    )
    return {"metadata": meta, "status": {"conditions": conds}}


def test_only_ready_labelled_live_pods_become_replicas() -> None:
    got = ready_pods(
        [
            raw_pod("ok", "True"),
            raw_pod("not-ready", "False"),
            raw_pod("pending", None),
            raw_pod("unlabelled", "True", labels=False),
            raw_pod("terminating", "True", deleting=True),
        ]
    )
    assert [(p.key, p.pool_key, p.accelerator_class) for p in got] == [("chat/ok", CHAT, "h100")]
    assert got[0].ready_at == 1796119200.0  # 2026-12-01T10:00:00Z


def test_the_same_fleet_runs_on_the_real_clock(
    pools: dict[str, Pool], classes: dict[str, AcceleratorClass]
) -> None:
    clock = RealClock()
    start = clock.now()
    sim = Simulation()
    sim.advance(start)
    # a fast pool: a 70B request takes ~10 s of decode steps, a code completion well under one
    sim.sync(pools, classes, [Pod("code", "a", "code-completion-8b", "cerebras-cs3", start - 60.0)])
    sim.set_load("code/code-completion-8b", 100.0)
    deadline = start + 10.0
    while sim.recorder.total < 20 and clock.now() < deadline:
        clock.sleep_until(clock.now() + 0.02)
        sim.advance(clock.now())
    assert sim.recorder.total >= 20
    first = sim.recorder.done[0]
    assert start < first.arrival < first.first_token < first.finish <= clock.now()


def test_max_num_seqs_may_be_the_planners_batch(
    pools: dict[str, Pool], classes: dict[str, AcceleratorClass]
) -> None:
    sim = Simulation(max_num_seqs=None)
    sim.sync(pools, classes, [pod("a", "h100"), pod("b", "mi300x")])
    batches = {k: r.calibration.estimate.batch for k, r in sim.replicas.items() if r.calibration.estimate}
    chat = pools[CHAT]
    planned = {
        f"chat/{name}": estimate(chat.model, chat.workload, chat.slo, classes[cls])
        for name, cls in (("a", "h100"), ("b", "mi300x"))
    }
    assert batches == {k: e.batch for k, e in planned.items() if isinstance(e, Estimate)}
    assert len(batches) == 2
    assert {k: r.engine.max_num_seqs for k, r in sim.replicas.items()} == batches
    assert Simulation().max_num_seqs == 256
