"""``plan.live``: what the live plan reads back from the operator's objects (pure)."""

from __future__ import annotations

from typing import Any

import pytest
from examples import example

from inferfleet.api.inferencepool import InferencePool
from inferfleet.plan.live import per_replica, recorded_demand, running

KEY = "chat/chat-70b"


def _pool(autoscaling: dict[str, Any] | None, status: dict[str, Any] | None, **spec: Any) -> dict[str, Any]:
    doc = example("InferencePool", "chat-70b")
    if autoscaling is not None:
        doc["spec"]["demand"]["autoscaling"] = autoscaling
    doc["spec"].update(spec)
    if status is not None:
        doc["status"] = status
    return doc


EVALUATED = {"autoscaling": {"lastEvaluationTime": "2026-12-01T10:00:00Z", "demandRequestsPerSecond": 31.5}}


@pytest.mark.parametrize(
    ("doc", "want"),
    [
        pytest.param(
            _pool({}, EVALUATED), {KEY: 31.5}, id="autoscaled-and-evaluated-uses-the-recorded-demand"
        ),
        pytest.param(_pool(None, EVALUATED), {}, id="not-autoscaled-plans-its-own-demand"),
        pytest.param(_pool({"enabled": False}, EVALUATED), {}, id="autoscaling-disabled"),
        pytest.param(
            _pool({}, EVALUATED, replicas=3), {}, id="pinned-by-spec-replicas-is-not-planned-by-demand"
        ),
        pytest.param(
            _pool({}, {"autoscaling": {"metricsProblem": "NoMetricsSource", "classes": []}}),
            {},
            id="no-metrics-source-never-evaluated",
        ),
        pytest.param(_pool({}, None), {}, id="no-status-yet"),
    ],
)
def test_recorded_demand_is_what_the_operator_planned_autoscaled_pools_with(
    doc: dict[str, Any], want: dict[str, float]
) -> None:
    pool = InferencePool.model_validate(doc)
    assert recorded_demand({KEY: pool}, {KEY: doc}) == want


def _dep(pool: str, cls: str, replicas: int, namespace: str = "chat") -> dict[str, Any]:
    labels = {"inferfleet.dev/pool": pool, "inferfleet.dev/accelerator-class": cls}
    return {
        "metadata": {"name": f"{pool}-{cls}", "namespace": namespace, "labels": labels},
        "spec": {"replicas": replicas},
    }


def test_running_is_what_our_deployments_ask_for_classes_at_zero_left_out() -> None:
    deps = [_dep("chat-70b", "h100", 2), _dep("chat-70b", "mi300x", 0), _dep("embed", "l4", 3, "search")]
    deps.append({"metadata": {"name": "stray", "namespace": "chat", "labels": {}}, "spec": {"replicas": 1}})
    assert running(deps) == {KEY: {"h100": 2}, "search/embed": {"l4": 3}}


def test_per_replica_figures_come_from_status_placements() -> None:
    doc = example("InferencePool", "chat-70b")
    doc["status"] = {
        "placements": [
            {"acceleratorClass": "h100", "replicas": 2, "watts": 9000, "dollarsPerHour": 60.5},
            {"acceleratorClass": "mi300x", "replicas": 0, "watts": 0, "dollarsPerHour": 0},
        ]
    }
    assert per_replica([doc]) == {(KEY, "h100"): (4500.0, 30.25)}
