"""Autoscaling through ``decide``: measured demand reaches the plan, missing data holds it, the state
survives in status, and a class measured slower than modelled is planned as such."""

from __future__ import annotations

import copy
import dataclasses
import math
from typing import Any

import pytest
from examples import ROOT, example_docs

from inferfleet.api.inferencepool import InferencePoolStatus
from inferfleet.api.simulatedfleet import load_fleet, node_manifests
from inferfleet.core import planner
from inferfleet.core import types as core
from inferfleet.core.mixfit import Histogram
from inferfleet.core.observed import ClassSample, MetricsProblem, Observed
from inferfleet.reconcile.autoscaling import seconds
from inferfleet.reconcile.decide import Decision, decide
from inferfleet.reconcile.ports import Snapshot

KEY = "chat/chat-70b"
NODES = node_manifests(load_fleet(ROOT / "examples/simulated-fleet/fleet.yaml"))


def _docs(stabilization: int = 300) -> list[dict[str, Any]]:
    docs = example_docs()
    for d in docs:
        if d["kind"] == "FleetPolicy":  # no budgets, so capacity alone shapes the plan
            d["spec"].pop("powerDomains", None)
        if d["kind"] == "InferencePool" and d["metadata"]["name"] == "chat-70b":
            d["spec"]["demand"]["requestsPerSecond"] = 4
            d["spec"]["demand"]["autoscaling"] = {"scaleDownStabilizationSeconds": stabilization}
    return docs


def _snapshot(docs: list[dict[str, Any]], deployments: list[dict[str, Any]] | None = None) -> Snapshot:
    return Snapshot(
        pools=[d for d in docs if d["kind"] == "InferencePool"],
        classes=[d for d in docs if d["kind"] == "AcceleratorClass"],
        policy=next(d for d in docs if d["kind"] == "FleetPolicy"),
        nodes=NODES,
        foreign_used={},
        deployments=deployments or [],
        services=[],
    )


def _round(
    docs: list[dict[str, Any]], now: str, observed: dict[str, Observed] | None, deps: list[dict[str, Any]]
) -> tuple[Decision, list[dict[str, Any]], list[dict[str, Any]]]:
    """One round, then the cluster as it would be after it: statuses written, Deployments applied."""
    d = decide(_snapshot(docs, deps), now, planner.solve, observed)
    docs = copy.deepcopy(docs)
    for s in d.statuses:
        for doc in docs:
            if doc["kind"] == s.kind and doc["metadata"]["name"] == s.name:
                doc["status"] = s.status
    by_name = {x["metadata"]["name"]: x for x in deps}
    for obj in d.reductions + d.increases:
        if obj["kind"] == "Deployment":
            by_name[obj["metadata"]["name"]] = dict(obj, status={"readyReplicas": obj["spec"]["replicas"]})
    for _, _, name in d.deletes:
        by_name.pop(name, None)
    return d, docs, list(by_name.values())


def _replicas(d: Decision) -> int:
    assert d.plan is not None
    return sum(p.replicas for pp in d.plan.pools if pp.key == KEY for p in pp.placements)


def _pool_status(docs: list[dict[str, Any]]) -> dict[str, Any]:
    status: dict[str, Any] = next(d for d in docs if d["metadata"]["name"] == "chat-70b")["status"]
    InferencePoolStatus.model_validate(status)  # what the API server would accept
    return status


def _cond(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == type_)


def seen(rps: float | None, t: str, problem: MetricsProblem | None = None, **kw: Any) -> dict[str, Observed]:
    return {KEY: Observed(at=seconds(t), rps=rps, problem=problem, detail=kw.pop("detail", ""), **kw)}


def test_a_load_step_is_planned_at_once_and_said_in_status_and_events() -> None:
    d1, docs, deps = _round(_docs(), "2026-12-01T10:00:00Z", seen(10.0, "2026-12-01T10:00:00Z"), [])
    d2, docs, deps = _round(docs, "2026-12-01T10:00:15Z", seen(30.0, "2026-12-01T10:00:15Z"), deps)
    assert _replicas(d2) > _replicas(d1)
    st = _pool_status(docs)
    assert st["autoscaling"]["demandRequestsPerSecond"] == 30.0
    assert st["autoscaling"]["signal"] == "ScaleUp"
    assert st["demandRequestsPerSecond"] == 30.0
    assert _cond(st, "MetricsAvailable")["status"] == "True"
    assert any(e.reason == "DemandChanged" and "10 -> 30 req/s" in e.message for e in d2.events)


def test_missing_metrics_hold_the_demand_and_remove_nothing() -> None:
    t0, t1 = "2026-12-01T10:00:00Z", "2026-12-01T10:00:15Z"
    d1, docs, deps = _round(_docs(), t0, seen(12.0, t0), [])
    problem = MetricsProblem.UNREACHABLE
    d2, docs, deps = _round(docs, t1, seen(None, t1, problem, detail="GET /api/v1/query: refused"), deps)
    assert _replicas(d2) == _replicas(d1)
    assert not d2.reductions and not d2.deletes
    st = _pool_status(docs)
    cond = _cond(st, "MetricsAvailable")
    assert (cond["status"], cond["reason"]) == ("False", "PrometheusUnreachable")
    assert "refused" in cond["message"] and "held at 12 req/s" in cond["message"]
    assert st["autoscaling"]["missingSince"] == t1
    assert [e.reason for e in d2.events if e.type == "Warning"] == ["MetricsUnavailable"]


def test_no_metrics_source_is_said_not_pretended() -> None:
    _, docs, _ = _round(_docs(), "2026-12-01T10:00:00Z", None, [])
    cond = _cond(_pool_status(docs), "MetricsAvailable")
    assert (cond["status"], cond["reason"]) == ("False", "NoMetricsSource")


def test_the_stabilisation_window_survives_in_status_across_a_restart() -> None:
    t = ["2026-12-01T10:00:00Z", "2026-12-01T10:00:15Z", "2026-12-01T10:00:30Z", "2026-12-01T10:06:00Z"]
    _, docs, deps = _round(_docs(stabilization=300), t[0], seen(12.0, t[0]), [])
    # a new operator (nothing in memory) sees low load: the window in status still holds 12 req/s
    _, docs, deps = _round(docs, t[1], seen(3.0, t[1]), deps)
    assert _pool_status(docs)["autoscaling"]["demandRequestsPerSecond"] == 12.0
    _, docs, deps = _round(docs, t[2], seen(3.0, t[2]), deps)
    assert _pool_status(docs)["autoscaling"]["signal"] == "Stabilising"
    _, docs, deps = _round(docs, t[3], seen(3.0, t[3]), deps)  # window passed: halve at most
    assert _pool_status(docs)["autoscaling"]["demandRequestsPerSecond"] == 6.0


def test_a_class_measured_slower_than_modelled_is_planned_slower() -> None:
    t0 = "2026-12-01T10:00:00Z"
    _, docs, deps = _round(_docs(), t0, seen(12.0, t0), [])
    for i in range(1, 16):  # every class measured 1.5x slower than predicted, at 80% of planned capacity
        t = f"2026-12-01T10:{i:02d}:00Z"
        placed = _pool_status(docs)["placements"]
        load = 0.8 * sum(p["requestsPerSecond"] for p in placed)
        samples = tuple(
            ClassSample(
                p["acceleratorClass"],
                ttft_p95_s=1.5 * p["ttftP95Milliseconds"] / 1000,
                tpot_p95_s=1.5 * p["tpotP95Milliseconds"] / 1000,
                requests=1000,
                series=p["replicas"],
            )
            for p in placed
        )
        _, docs, deps = _round(docs, t, seen(load, t, classes=samples), deps)
    classes = {c["acceleratorClass"]: c for c in _pool_status(docs)["autoscaling"]["classes"]}
    learnt = {c: v["tpotCorrection"] for c, v in classes.items() if v["updates"] >= 4}
    assert learnt and all(1.45 <= f <= 1.5 for f in learnt.values()), classes
    # the problem now rates each learnt class below what the uncorrected model gives it (req/s per device)
    problems: list[Any] = []

    def spy(problem: Any) -> Any:
        problems.append(problem)
        return planner.solve(problem)

    forgotten = copy.deepcopy(docs)
    for doc in forgotten:
        doc.get("status", {}).pop("autoscaling", None)  # no learnt factors
    decide(_snapshot(docs, deps), t, spy, None)
    decide(_snapshot(forgotten, deps), t, spy, None)
    corrected, plain = ({o.accelerator_class: o.rps / o.devices for o in p.options[KEY]} for p in problems)
    assert all(corrected[c] < plain[c] for c in learnt if c in plain), (corrected, plain)


def test_rounds_run_at_least_every_evaluation_period_while_a_pool_autoscales() -> None:
    from inferfleet.reconcile.autoscaling import EVALUATION_S

    d, _, _ = _round(_docs(), "2026-12-01T10:00:00Z", seen(10.0, "2026-12-01T10:00:00Z"), [])
    assert d.resync_s == EVALUATION_S  # the example policy's interval is 60 s
    plain = [
        doc for doc in _docs() if doc["kind"] != "InferencePool" or doc["metadata"]["name"] != "chat-70b"
    ]
    static = decide(_snapshot(plain), "2026-12-01T10:00:00Z", planner.solve, {})
    assert static.resync_s == 60.0
    quick = _docs()
    next(x for x in quick if x["kind"] == "FleetPolicy")["spec"].setdefault("planning", {})[
        "autoscalingIntervalSeconds"
    ] = 5
    fast, _, _ = _round(quick, "2026-12-01T10:00:00Z", seen(10.0, "2026-12-01T10:00:00Z"), [])
    assert fast.resync_s == 5.0


def test_measured_growth_under_a_binding_budget_sheds_the_lowest_priority_first() -> None:
    docs = example_docs()  # the example budgets bind: hall-a 10 kW, hall-b 30 kW
    for d in docs:
        if d["kind"] == "InferencePool" and d["metadata"]["name"] == "chat-70b":  # priority 100
            d["spec"]["demand"]["autoscaling"] = {}
    t0, t1 = "2026-12-01T10:00:00Z", "2026-12-01T10:00:15Z"
    before, docs, deps = _round(docs, t0, seen(40.0, t0), [])
    after, docs, deps = _round(docs, t1, seen(80.0, t1), deps)
    assert before.plan is not None and after.plan is not None
    plans = {
        name: {pp.key: pp for pp in d.plan.pools}
        for name, d in (("before", before), ("after", after))
        if d.plan
    }
    chat, batch = "chat/chat-70b", "batch/summarise-batch"  # batch: priority 10, the lowest
    assert plans["after"][chat].status is core.PlanStatus.PLACED  # the higher priority is served
    assert plans["after"][chat].served_rps >= 80.0 * 1.2 - 1e-6  # demand x headroom
    assert plans["after"][batch].served_rps < plans["before"][batch].served_rps  # the lowest gives way
    assert core.BindingKind.POWER in {b.kind for b in plans["after"][batch].binding}
    for d in after.plan.domains:  # never over a budget
        assert d.budget_watts is None or d.used_watts <= d.budget_watts + 1e-6
    shed = next(s for s in after.statuses if s.name == "summarise-batch")
    assert "power budget" in _cond(shed.status, "Placed")["message"]


def test_a_burst_scales_up_and_the_event_names_the_burst_window() -> None:
    t0, t1 = "2026-12-01T10:00:00Z", "2026-12-01T10:00:15Z"
    _, docs, deps = _round(_docs(), t0, seen(10.0, t0, sample_age_s=1.5), [])
    d, docs, deps = _round(docs, t1, seen(11.0, t1, burst_rps=30.0, sample_age_s=2.0), deps)
    auto = _pool_status(docs)["autoscaling"]
    assert (auto["signal"], auto["demandRequestsPerSecond"], auto["burstRequestsPerSecond"]) == (
        "ScaleUp",
        30.0,
        30.0,
    )
    assert auto["sampleAgeSeconds"] == 2.0
    assert any("10 -> 30 req/s (burst window 30 req/s" in e.message for e in d.events), d.events


def _measured(docs: list[dict[str, Any]], factor: float, load: float | None = None) -> tuple[float, Any]:
    """Every placed class at ``factor`` x its predicted p95, every replica reporting."""
    placed = _pool_status(docs)["placements"]
    samples = tuple(
        ClassSample(
            p["acceleratorClass"],
            ttft_p95_s=factor * p["ttftP95Milliseconds"] / 1000,
            tpot_p95_s=factor * p["tpotP95Milliseconds"] / 1000,
            requests=1000,
            series=p["replicas"],
            waiting=0.0,
        )
        for p in placed
    )
    return (load if load is not None else 0.7 * sum(p["requestsPerSecond"] for p in placed)), samples


def test_a_breach_on_two_settled_evaluations_scales_up_and_says_why() -> None:
    t0 = "2026-12-01T10:00:00Z"
    _, docs, deps = _round(_docs(), t0, seen(12.0, t0), [])
    demand = _pool_status(docs)["autoscaling"]["demandRequestsPerSecond"]
    slo_ms = next(d for d in docs if d["metadata"]["name"] == "chat-70b")["spec"]["slo"][
        "ttftP95Milliseconds"
    ]
    events = []
    counted = []
    # the first status still says 0 Ready (the replica was loading): that breach is not counted
    for t in ("2026-12-01T10:05:00Z", "2026-12-01T10:05:15Z", "2026-12-01T10:05:30Z"):
        _, samples = _measured(docs, 1.0)
        breaching = tuple(dataclasses.replace(s, ttft_p95_s=2 * slo_ms / 1000) for s in samples)
        d, docs, deps = _round(docs, t, seen(12.0, t, classes=breaching), deps)
        events += d.events
        counted.append(_pool_status(docs)["autoscaling"]["consecutiveBreaches"])
    assert counted == [0, 1, 0]  # reset by the scale-up
    auto = _pool_status(docs)["autoscaling"]
    assert auto["signal"] == "ScaleUp" and auto["demandRequestsPerSecond"] == pytest.approx(demand * 1.25)
    assert any("on consecutive evaluations" in e.message for e in events), events


def test_a_standing_queue_blocks_a_scale_down() -> None:
    t0, t1 = "2026-12-01T10:00:00Z", "2026-12-01T10:10:00Z"
    _, docs, deps = _round(_docs(stabilization=60), t0, seen(20.0, t0), [])
    _, samples = _measured(docs, 1.0)
    queued = tuple(dataclasses.replace(s, waiting=5.0 * s.series) for s in samples)
    _, docs, deps = _round(docs, t1, seen(4.0, t1, classes=queued), deps)
    auto = _pool_status(docs)["autoscaling"]
    assert (auto["signal"], auto["demandRequestsPerSecond"]) == ("ConsolidationBlocked", 20.0)
    assert {c["waiting"] for c in auto["classes"] if c["requests"]} == {5.0 * s.series for s in samples}


def test_the_start_up_time_of_new_replicas_is_learnt_and_kept_in_status() -> None:
    t = [f"2026-12-01T10:0{m}:{s:02d}Z" for m, s in ((0, 0), (1, 0), (1, 15), (1, 30), (1, 45), (2, 0))]

    def reporting(docs: list[dict[str, Any]], old: dict[str, int] | None) -> tuple[ClassSample, ...]:
        """Every planned replica reports (``old`` None), or only those planned before the step."""
        return tuple(
            ClassSample(c, None, None, 0.0, p["replicas"] if old is None else old.get(c, 0))
            for p in _pool_status(docs)["placements"]
            for c in [p["acceleratorClass"]]
        )

    _, docs, deps = _round(_docs(), t[0], seen(10.0, t[0]), [])
    _, docs, deps = _round(docs, t[1], seen(10.0, t[1], classes=reporting(docs, None)), deps)
    before = {p["acceleratorClass"]: p["replicas"] for p in _pool_status(docs)["placements"]}
    _, docs, deps = _round(docs, t[2], seen(30.0, t[2], classes=reporting(docs, None)), deps)  # step
    assert sum(p["replicas"] for p in _pool_status(docs)["placements"]) > sum(before.values())
    for now in t[3:5]:  # the new replicas load their model
        _, docs, deps = _round(docs, now, seen(30.0, now, classes=reporting(docs, before)), deps)
        loading = [c for c in _pool_status(docs)["autoscaling"]["classes"] if c.get("startingSince")]
        assert loading and {c["startingSince"] for c in loading} == {t[2]}
    _, docs, deps = _round(docs, t[5], seen(30.0, t[5], classes=reporting(docs, None)), deps)  # serving
    learnt = {c["acceleratorClass"]: c for c in _pool_status(docs)["autoscaling"]["classes"]}
    assert all(c.get("startingSince") is None for c in learnt.values())
    # the first deployment: Ready (the harness makes pods Ready a round later) 60-75 s after t0;
    # the step's new replicas: first seen serving 30-45 s after the plan; a class with both blends
    first, step = 67.5, 37.5
    for cls in {c["acceleratorClass"] for c in loading}:
        want = (first + step) / 2 if cls in before else step
        assert learnt[cls]["startupSeconds"] == want, learnt[cls]


def test_a_pinned_pool_reports_but_its_demand_is_not_planned_and_turning_off_clears_the_block() -> None:
    t = ["2026-12-01T10:00:00Z", "2026-12-01T10:00:15Z", "2026-12-01T10:00:30Z", "2026-12-01T10:00:45Z"]
    _, docs, deps = _round(_docs(), t[0], seen(10.0, t[0]), [])
    pool = next(d for d in docs if d["metadata"]["name"] == "chat-70b")
    pool["spec"]["replicas"] = 2
    d, docs, deps = _round(docs, t[1], seen(60.0, t[1]), deps)
    st = _pool_status(docs)
    assert st["autoscaling"]["signal"] == "Pinned" and st["autoscaling"]["observedRequestsPerSecond"] == 60.0
    assert st["demandRequestsPerSecond"] < 60.0  # the measured load is not planned (the pin is)
    assert _replicas(d) == 2 and not [e for e in d.events if e.reason == "DemandChanged"]
    assert _cond(st, "MetricsAvailable")["status"] == "True"
    # autoscaling removed: the old block goes (a merge patch with null), then nothing more is written
    pool = next(x for x in docs if x["metadata"]["name"] == "chat-70b")
    pool["spec"]["demand"].pop("autoscaling")
    d, docs, deps = _round(docs, t[2], None, deps)
    write = next(s for s in d.statuses if s.name == "chat-70b")
    assert "autoscaling" in write.status and write.status["autoscaling"] is None
    for doc in docs:  # the API server applies the null: the key is gone
        if doc["metadata"]["name"] == "chat-70b":
            doc["status"].pop("autoscaling", None)
    d, docs, deps = _round(docs, t[3], None, deps)
    assert not [s for s in d.statuses if s.name == "chat-70b"]


def _mix_docs() -> list[dict[str, Any]]:
    docs = _docs()
    for d in docs:
        if d["kind"] == "InferencePool" and d["metadata"]["name"] == "chat-70b":
            d["spec"]["demand"]["routing"] = "SizeAware"
            d["spec"]["demand"]["requestMix"] = [
                {"maxInputTokens": 200, "maxOutputTokens": 50, "weight": 1},
                {"minInputTokens": 200, "maxInputTokens": 2000, "maxOutputTokens": 50, "weight": 1},
            ]
    return docs


def _lengths(short: int, long: int) -> tuple[Histogram, Histogram]:
    edges = (200.0, 2000.0, math.inf)
    n = float(short + long)
    return Histogram(edges, (float(short), n, n)), Histogram((50.0, math.inf), (n, n))


def _mix_reading(short: int, long: int, at: float) -> Observed:
    inputs, outputs = _lengths(short, long)
    return Observed(at=at, rps=8.0, sample_age_s=1.0, input_lengths=inputs, output_lengths=outputs)


def _routed(d: Decision) -> list[float]:
    """Req/s of each bucket the plan routes, over the pool's classes."""
    assert d.plan is not None
    pp = next(pp for pp in d.plan.pools if pp.key == KEY)
    return [sum(p.bucket_rps[i] for p in pp.placements if p.bucket_rps) for i in range(2)]


def test_the_measured_mix_replaces_the_weights_and_noise_does_not_move_it() -> None:
    docs, deps = _mix_docs(), []
    start = seconds("2026-12-01T10:00:00Z")
    d, docs, deps = _round(docs, "2026-12-01T10:00:00Z", {KEY: _mix_reading(90, 10, start)}, deps)
    assert _routed(d) == pytest.approx([7.2, 0.8], abs=1e-3), "90/10 of the measured 8 req/s"
    block = _pool_status(docs)["autoscaling"]["requestMix"]
    assert [b["share"] for b in block] == [0.9, 0.1] and block[1]["minInputTokens"] == 200
    # 85/15 is within the 10% tolerance: the plan keeps 90/10
    d, docs, deps = _round(docs, "2026-12-01T10:00:30Z", {KEY: _mix_reading(85, 15, start + 30)}, deps)
    assert [b["share"] for b in _pool_status(docs)["autoscaling"]["requestMix"]] == [0.9, 0.1]
    # a histogram that cannot be read: still 90/10, from status (a restart or a new leader too)
    d, docs, deps = _round(
        docs, "2026-12-01T10:01:00Z", {KEY: Observed(at=start + 60, rps=8.0, sample_age_s=1.0)}, deps
    )
    assert _routed(d) == pytest.approx([7.2, 0.8], abs=1e-3)
    # a real shift: 30/70
    d, docs, deps = _round(docs, "2026-12-01T10:01:30Z", {KEY: _mix_reading(30, 70, start + 90)}, deps)
    assert _routed(d) == pytest.approx([2.4, 5.6], abs=1e-3)


def test_an_edited_mix_drops_the_old_measurement() -> None:
    docs, deps = _mix_docs(), []
    start = seconds("2026-12-01T10:00:00Z")
    _, docs, deps = _round(docs, "2026-12-01T10:00:00Z", {KEY: _mix_reading(90, 10, start)}, deps)
    pool = next(d for d in docs if d["metadata"]["name"] == "chat-70b")
    pool["spec"]["demand"]["requestMix"][0]["maxInputTokens"] = 500
    pool["spec"]["demand"]["requestMix"][1]["minInputTokens"] = 500
    no_lengths = {KEY: Observed(at=start + 30, rps=8.0, sample_age_s=1.0)}
    d, docs, _ = _round(docs, "2026-12-01T10:00:30Z", no_lengths, deps)
    assert _routed(d) == pytest.approx([4.0, 4.0], abs=1e-3), "the weights again (1:1)"
    assert "requestMix" not in _pool_status(docs)["autoscaling"]


def test_a_mix_not_measured_is_said_in_metrics_available() -> None:
    docs, deps = _mix_docs(), []
    start = seconds("2026-12-01T10:00:00Z")
    unread = Observed(
        at=start, rps=8.0, sample_age_s=1.0, detail="request mix unknown (prompt-length): HTTP 400 bad_data"
    )
    _, docs, deps = _round(docs, "2026-12-01T10:00:00Z", {KEY: unread}, deps)
    message = _cond(_pool_status(docs), "MetricsAvailable")["message"]
    assert "request mix unknown (prompt-length): HTTP 400 bad_data" in message
    assert message.endswith("the mix is planned by its weights")
    few = _mix_reading(20, 10, start + 30)
    _, docs, deps = _round(docs, "2026-12-01T10:00:30Z", {KEY: few}, deps)
    assert "fewer than 50 requests in the window" in _cond(_pool_status(docs), "MetricsAvailable")["message"]
    _, docs, deps = _round(docs, "2026-12-01T10:01:00Z", {KEY: _mix_reading(90, 10, start + 60)}, deps)
    assert "request mix" not in _cond(_pool_status(docs), "MetricsAvailable")["message"]
