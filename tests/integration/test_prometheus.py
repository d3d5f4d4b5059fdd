"""The reader against a real Prometheus scraping a vLLM-shaped exporter whose rates and buckets are known.

Checks: the offered load (first-token rate plus queue growth) within a tolerance of what the exporter
generates, p95 TTFT/TPOT per class from known bucket shares (exact: histogram_quantile's
interpolation), coverage against Ready pods, a pool's own query (good and broken), a target that
stops (NoData), Prometheus killed (PrometheusUnreachable), and the time to read 1,000 pools.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import pytest
from prometheus_fixture import (  # noqa: F401 - fixtures
    PodSeries,
    VllmExporter,
    prometheus_binary_fixture,
    prometheus_fixture,
    vllm_exporter_fixture,
)

from inferfleet.core.observed import MetricsProblem, Observed
from inferfleet.observe import PoolQuery, PrometheusReader
from inferfleet_dev.prometheus import Prometheus

pytestmark = pytest.mark.integration

WINDOW = "15s"
H100_TTFT = {0.1: 0.5, 0.25: 0.9, 0.5: 1.0}  # p95 in (0.25, 0.5]: 0.25 + 0.5 * 0.25 = 0.375
H100_TPOT = {0.025: 0.5, 0.05: 0.8, 0.075: 1.0}  # p95 = 0.05 + 0.75 * 0.025 = 0.06875
MI_TTFT = {0.25: 0.5, 0.5: 0.9, 0.75: 1.0}  # p95 = 0.625
POOL = PoolQuery("chat", "llama", ready={"h100": 2, "mi300x": 1})


def _pods(pool: str = "llama", namespace: str = "chat") -> list[PodSeries]:
    return [
        PodSeries(namespace, pool, f"{pool}-h100-{i}", "h100", 3.0, H100_TTFT, H100_TPOT, 500, 200)
        for i in range(2)
    ] + [
        # the old TPOT name on this pod: the fallback chain still finds a TPOT for its class
        PodSeries(
            namespace,
            pool,
            f"{pool}-mi-0",
            "mi300x",
            2.0,
            MI_TTFT,
            H100_TPOT,
            500,
            200,
            waiting_growth=1.5,
            tpot_name="vllm:time_per_output_token_seconds",
        )
    ]


def _settled(
    reader: PrometheusReader,
    pools: list[PoolQuery],
    wait_for: Callable[..., Any],
    rps: Callable[[int], float],
) -> dict[str, Observed]:
    """Poll until every pool's load is within 2% of ``rps(i)`` and every class has a TTFT: the window
    has filled with scrapes (the exporter's counters start at 0, so early rates ramp up)."""
    last: list[dict[str, Observed]] = [{}]

    def ready() -> dict[str, Observed] | None:
        seen = last[0] = reader.observe(pools, time.time())
        ok = all(
            o.rps is not None
            and abs(o.rps - rps(i)) <= 0.02 * rps(i)
            and o.classes
            and all(c.ttft_p95_s for c in o.classes)
            for i, o in enumerate(seen.values())
        )
        return seen if ok else None

    try:
        result: dict[str, Observed] = wait_for(ready, timeout=120, interval=0.5, what="every pool's load")
    except BaseException:
        print("last observation:", list(last[0].values())[:3])
        raise
    return result


def test_reads_load_latency_and_tokens(
    prometheus: Callable[..., Prometheus], vllm_exporter: VllmExporter, wait_for: Callable[..., Any]
) -> None:
    vllm_exporter.add(*_pods())
    prom = prometheus([vllm_exporter.target()])
    reader = PrometheusReader(prom.url, window=WINDOW)
    seen = _settled(reader, [POOL], wait_for, lambda _i: 9.5)["chat/llama"]
    assert seen.problem is None, seen.detail
    assert seen.rps == pytest.approx(3 + 3 + 2 + 1.5, rel=0.05)  # first tokens + the queue's growth
    assert seen.input_tokens == pytest.approx(500) and seen.output_tokens == pytest.approx(200)
    assert seen.series == 3 and seen.sample_age_s is not None and seen.sample_age_s < 5
    by = {c.accelerator_class: c for c in seen.classes}
    assert by["h100"].ttft_p95_s == pytest.approx(0.375, rel=1e-6)
    assert by["h100"].tpot_p95_s == pytest.approx(0.06875, rel=1e-6)
    assert by["mi300x"].ttft_p95_s == pytest.approx(0.625, rel=1e-6)
    assert by["mi300x"].tpot_p95_s == pytest.approx(0.06875, rel=1e-6)  # from the old name
    assert (by["h100"].series, by["mi300x"].series) == (2, 1)
    assert by["h100"].requests == pytest.approx(6 * 15, rel=0.1)  # increase over the 15 s window


def test_partial_coverage_keeps_the_value_and_own_queries(
    prometheus: Callable[..., Prometheus], vllm_exporter: VllmExporter, wait_for: Callable[..., Any]
) -> None:
    vllm_exporter.add(*_pods())
    prom = prometheus([vllm_exporter.target()])
    reader = PrometheusReader(prom.url, window=WINDOW)
    own = 'sum(rate(vllm:request_prompt_tokens_count{namespace="{namespace}",pool="{pool}"}[{window}]))'
    pools = [
        PoolQuery("chat", "llama", ready={"h100": 3, "mi300x": 1}),  # one Ready h100 pod is silent
        PoolQuery("chat", "llama", rate_query=own),
        PoolQuery("chat", "llama", rate_query="sum(rate(vllm:oops[1m]"),
    ]
    _settled(reader, pools[:1], wait_for, lambda _i: 9.5)
    partial, custom, broken = (reader.observe([p], time.time())["chat/llama"] for p in pools)
    assert partial.problem is MetricsProblem.PARTIAL and "2 of 3 Ready pods" in partial.detail
    assert partial.rps == pytest.approx(9.5, rel=0.05)
    assert custom.problem is None and custom.rps == pytest.approx(8.0, rel=0.05)  # no queue term
    assert broken.problem is MetricsProblem.BAD_QUERY and broken.rps is None
    assert "parse error" in broken.detail and "vllm:oops" in broken.detail


def test_a_target_that_stops_is_no_data_and_a_dead_prometheus_unreachable(
    prometheus: Callable[..., Prometheus], vllm_exporter: VllmExporter, wait_for: Callable[..., Any]
) -> None:
    vllm_exporter.add(*_pods())
    prom = prometheus([vllm_exporter.target()])
    reader = PrometheusReader(prom.url, window=WINDOW, timeout=2)
    _settled(reader, [POOL], wait_for, lambda _i: 9.5)
    vllm_exporter.stop()

    def empty() -> Observed | None:
        seen = reader.observe([POOL], time.time())["chat/llama"]
        return seen if seen.problem is MetricsProblem.EMPTY else None

    gone = wait_for(empty, timeout=30, interval=0.5, what="the stopped target's series to vanish")
    assert gone.rps is None and "no current sample for chat/llama" in gone.detail
    prom.stop()
    dead = reader.observe([POOL], time.time())["chat/llama"]
    assert dead.problem is MetricsProblem.UNREACHABLE and dead.rps is None
    assert "Connection refused" in dead.detail


def test_one_thousand_pools(
    prometheus: Callable[..., Prometheus], vllm_exporter: VllmExporter, wait_for: Callable[..., Any]
) -> None:
    n = 1000
    vllm_exporter.add(
        *(
            PodSeries("fleet", f"p{i}", f"p{i}-0", "h100", 1.0 + i % 7, H100_TTFT, H100_TPOT, 500, 200)
            for i in range(n)
        )
    )
    prom = prometheus([vllm_exporter.target()], interval=2.0)
    reader = PrometheusReader(prom.url, window="20s")
    pools = [PoolQuery("fleet", f"p{i}", ready={"h100": 1}) for i in range(n)]
    _settled(reader, pools, wait_for, lambda i: 1.0 + i % 7)
    times = []
    for _ in range(3):
        t0 = time.monotonic()
        seen = reader.observe(pools, time.time())
        times.append(time.monotonic() - t0)
    assert all(o.problem is None for o in seen.values()), next(o.detail for o in seen.values() if o.problem)
    assert seen["fleet/p3"].rps == pytest.approx(4.0, rel=0.1)
    print(f"\nreader: {n} pools in {statistics.median(times):.3f}s (median of 3; {times})")
    assert statistics.median(times) < 10.0  # N queries per pool would take minutes; measured 0.7-2.8 s
