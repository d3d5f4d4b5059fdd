"""Which pools the loop reads metrics for, and a failing reader never stops planning."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from inferfleet.controller.observing import Observer, pool_queries
from inferfleet.core.observed import MetricsProblem, Observed
from inferfleet.observe import PoolQuery
from inferfleet.reconcile.ports import Snapshot


def _pool(name: str, autoscaling: dict[str, Any] | None, replicas: int | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"demand": {"requestsPerSecond": 1}}
    if autoscaling is not None:
        spec["demand"]["autoscaling"] = autoscaling
    if replicas is not None:
        spec["replicas"] = replicas
    return {"metadata": {"namespace": "ns", "name": name}, "spec": spec}


def _dep(pool: str, cls: str, ready: int) -> dict[str, Any]:
    labels = {"inferfleet.dev/pool": pool, "inferfleet.dev/accelerator-class": cls}
    return {"metadata": {"namespace": "ns", "labels": labels}, "status": {"readyReplicas": ready}}


SNAP = Snapshot(
    pools=[
        _pool("on", {}),
        _pool("custom", {"requestRateQuery": "sum(rate(x{pool='{pool}'}[1m]))"}),
        _pool("off", {"enabled": False}),
        _pool("pinned", {}, replicas=3),
        _pool("static", None),
    ],
    classes=[],
    policy=None,
    nodes=[],
    foreign_used={},
    deployments=[_dep("on", "h100", 2), _dep("on", "l4", 1)],
    services=[],
)


def test_autoscaled_pools_are_read_with_their_ready_replicas_pinned_ones_too() -> None:
    queries = {q.key: q for q in pool_queries(SNAP)}
    assert set(queries) == {"ns/on", "ns/custom", "ns/pinned"}  # a pinned pool's autoscaling reports
    assert queries["ns/on"].ready == {"h100": 2, "l4": 1}
    assert queries["ns/custom"].rate_query == "sum(rate(x{pool='{pool}'}[1m]))"


class Broken:
    def observe(self, pools: Sequence[PoolQuery], now: float) -> dict[str, Observed]:
        raise RuntimeError("socket exploded")


def test_a_failing_reader_gives_every_pool_a_problem_not_an_exception() -> None:
    got = Observer(Broken(), clock=lambda: 42.0)(SNAP)  # type: ignore[arg-type]
    assert set(got) == {"ns/on", "ns/custom", "ns/pinned"}
    assert all(
        o.rps is None and o.problem is MetricsProblem.UNREACHABLE and o.at == 42.0 for o in got.values()
    )
    assert "socket exploded" in got["ns/on"].detail
