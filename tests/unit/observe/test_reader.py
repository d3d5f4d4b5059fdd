"""``PrometheusReader`` against a fake Prometheus: values, batching, and every failure mode as a problem.

None of the failures reads as zero: ``rps`` is None with the problem named (partial coverage keeps
the value), and ``detail`` carries the query and the server's words.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from observe.fake_prometheus import Answer, FakePrometheus, fake_prometheus_fixture, now_fixture  # noqa: F401

from inferfleet.core.observed import MetricsProblem, Observed
from inferfleet.observe import Limits, PoolQuery, PrometheusReader, QueryError, Signal
from inferfleet.observe.queries import MIX_SIGNALS
from inferfleet_dev.pki import make_pki

POOL = PoolQuery("chat", "llama", ready={"h100": 2, "mi300x": 1})
P = {"namespace": "chat", "pool": "llama"}


def _cls(c: str) -> dict[str, str]:
    return {**P, "accelerator_class": c}


HEALTHY: dict[Signal, list[tuple[dict[str, str], float | str]]] = {
    Signal.FIRST_TOKENS: [(P, 8.0), ({"namespace": "other", "pool": "x"}, 99.0)],
    Signal.QUEUE_GROWTH: [(P, 1.5)],
    Signal.BURST_FIRST_TOKENS: [(P, 20.0)],
    Signal.BURST_QUEUE_GROWTH: [(P, 4.0)],
    Signal.INPUT_TOKENS: [(P, 500.0)],
    Signal.OUTPUT_TOKENS: [(P, 200.0)],
    Signal.PODS: [(P, 3)],
    Signal.SAMPLE_AGE: [(P, 2.0)],
    Signal.TTFT_P95: [(_cls("h100"), 0.375), (_cls("mi300x"), "NaN")],
    Signal.TPOT_P95: [(_cls("h100"), 0.05), (_cls("mi300x"), "NaN")],
    Signal.REQUESTS: [(_cls("h100"), 90.0), (_cls("mi300x"), 0.0)],
    Signal.CLASS_PODS: [(_cls("h100"), 2), (_cls("mi300x"), 1)],
    Signal.WAITING: [(_cls("h100"), 3.0), (_cls("mi300x"), 0.0)],
    Signal.KV_USAGE: [(_cls("h100"), 0.92), (_cls("mi300x"), "NaN")],
}


def _script(
    fake: FakePrometheus, reader: PrometheusReader, **changes: Answer | list[tuple[dict[str, str], Any]]
) -> None:
    """Answer every batch query with HEALTHY, except the signals named in ``changes``."""
    by_query = {q: s for s, q in reader.batch_queries().items()}

    def answer(query: str) -> Answer:
        signal = by_query.get(query)
        if signal is None:
            return 400, {"status": "error", "errorType": "bad_data", "error": f"unexpected {query}"}, 0.0
        change = changes.get(str(signal))
        if isinstance(change, tuple):
            return change
        return 200, fake.vector(*(change if change is not None else HEALTHY[signal])), 0.0

    fake.answer = answer


def _observe(fake: FakePrometheus, pool: PoolQuery = POOL, **changes: Any) -> Observed:
    reader = PrometheusReader(fake.url, timeout=1.0)
    _script(fake, reader, **changes)
    return reader.observe([pool], 1000.0)[pool.key]


def test_healthy_pool(fake_prometheus: FakePrometheus) -> None:
    seen = _observe(fake_prometheus)
    assert seen.problem is None and seen.detail == ""
    assert seen.rps == 9.5  # first tokens + queue growth
    assert seen.burst_rps == 24.0  # the same over the burst window
    assert (seen.input_tokens, seen.output_tokens, seen.sample_age_s, seen.series) == (500, 200, 2, 3)
    h100, mi = seen.classes
    assert (h100.accelerator_class, h100.ttft_p95_s, h100.tpot_p95_s, h100.requests, h100.series) == (
        "h100",
        0.375,
        0.05,
        90,
        2,
    )
    # idle class: histogram_quantile gave NaN; that is no sample, not 0 and not a breach
    assert (mi.ttft_p95_s, mi.tpot_p95_s, mi.requests, mi.series) == (None, None, 0, 1)
    assert (h100.waiting, h100.kv_usage, mi.waiting, mi.kv_usage) == (3.0, 0.92, 0.0, None)


def test_one_query_per_signal_for_all_pools(fake_prometheus: FakePrometheus) -> None:
    reader = PrometheusReader(fake_prometheus.url)
    _script(fake_prometheus, reader)
    pools = [PoolQuery("chat", f"p{i}") for i in range(50)] + [POOL]
    seen = reader.observe(pools, 1000.0)
    assert len(fake_prometheus.requests) == len(Signal) - len(MIX_SIGNALS)  # no pool has a mix
    assert seen["chat/llama"].rps == 9.5
    assert seen["chat/p7"].problem is MetricsProblem.EMPTY and seen["chat/p7"].rps is None


def test_too_few_requests_is_no_latency_sample(fake_prometheus: FakePrometheus) -> None:
    seen = _observe(fake_prometheus, requests=[(_cls("h100"), 19.0), (_cls("mi300x"), 0.0)])
    assert seen.problem is None and seen.classes[0].ttft_p95_s is None and seen.classes[0].requests == 19


def test_queue_draining_never_makes_arrivals_negative(fake_prometheus: FakePrometheus) -> None:
    assert _observe(fake_prometheus, queue_growth=[(P, -20.0)]).rps == 0.0


def test_missing_queue_gauge_is_said(fake_prometheus: FakePrometheus) -> None:
    seen = _observe(fake_prometheus, queue_growth=[])
    assert seen.rps == 8.0 and seen.problem is None and "no queue gauge" in seen.detail


BAD_DATA = {"status": "error", "errorType": "bad_data", "error": '1:31: parse error: unexpected "}"'}


@pytest.mark.parametrize(
    ("change", "problem", "words"),
    [
        ((400, BAD_DATA, 0.0), MetricsProblem.BAD_QUERY, 'bad_data: 1:31: parse error: unexpected "}"'),
        (
            (422, {"status": "error", "errorType": "execution", "error": "many-to-many"}, 0),
            MetricsProblem.BAD_QUERY,
            "execution: many-to-many",
        ),
        ((503, b"Service Unavailable", 0.0), MetricsProblem.HTTP_ERROR, "HTTP 503: Service Unavailable"),
        ((200, b"<html>login</html>", 0.0), MetricsProblem.HTTP_ERROR, "not a Prometheus API answer"),
        (
            (200, {"status": "success", "data": {"resultType": "matrix", "result": []}}, 0),
            MetricsProblem.WRONG_SHAPE,
            "a matrix",
        ),
        (
            (200, {"status": "success", "data": {"resultType": "scalar", "result": [1, "2"]}}, 0),
            MetricsProblem.WRONG_SHAPE,
            "a scalar",
        ),
        (
            (
                200,
                {
                    "status": "success",
                    "data": {"resultType": "vector", "result": [{"metric": P, "value": [1, "x"]}]},
                },
                0,
            ),
            MetricsProblem.WRONG_SHAPE,
            "not a [timestamp, value]",
        ),
        ((0, None, 0.0), MetricsProblem.EMPTY, "no series for chat/llama"),
        ((200, None, 3.0), MetricsProblem.UNREACHABLE, "no answer within 1s"),
    ],
)
def test_each_failure_of_the_load_query_is_its_own_problem(
    fake_prometheus: FakePrometheus, change: Answer, problem: MetricsProblem, words: str
) -> None:
    answer: Any = [] if change[0] == 0 else change
    if change[2] == 3.0:
        answer = (200, fake_prometheus.vector((P, 8.0)), 3.0)
    seen = _observe(fake_prometheus, first_tokens=answer)
    assert seen.problem is problem and seen.rps is None
    assert words in seen.detail
    assert "vllm:time_to_first_token_seconds_count" in seen.detail  # the query is named


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("NaN", MetricsProblem.NOT_A_NUMBER),
        ("+Inf", MetricsProblem.NOT_A_NUMBER),
        (-3.0, MetricsProblem.ABSURD),
        (5e7, MetricsProblem.ABSURD),
    ],
)
def test_nan_inf_negative_and_absurd_loads(
    fake_prometheus: FakePrometheus, value: Any, problem: MetricsProblem
) -> None:
    seen = _observe(fake_prometheus, first_tokens=[(P, value)])
    assert seen.problem is problem and seen.rps is None


def test_stale_samples(fake_prometheus: FakePrometheus) -> None:
    seen = _observe(fake_prometheus, sample_age=[(P, 600.0)])
    assert seen.problem is MetricsProblem.STALE and seen.rps is None and seen.sample_age_s == 600
    assert "600s old" in seen.detail


def test_a_pool_whose_pods_stopped_reporting(fake_prometheus: FakePrometheus) -> None:
    seen = _observe(fake_prometheus, sample_age=[])  # rate() still remembers them; instant queries do not
    assert seen.problem is MetricsProblem.EMPTY and seen.rps is None and "stopped reporting" in seen.detail


def test_partial_coverage_keeps_the_value(fake_prometheus: FakePrometheus) -> None:
    pool = PoolQuery("chat", "llama", ready={"h100": 3, "mi300x": 1})
    seen = _observe(fake_prometheus, pool)
    assert seen.problem is MetricsProblem.PARTIAL and seen.rps == 9.5
    assert "2 of 4 Ready pods report" in seen.detail or "3 of 4 Ready pods report" in seen.detail
    assert "h100: 2 of 3 Ready pods report" in seen.detail


def test_a_class_with_ready_pods_but_no_series(fake_prometheus: FakePrometheus) -> None:
    pool = PoolQuery("chat", "llama", ready={"h100": 2, "mi300x": 1, "tpu": 2})
    seen = _observe(fake_prometheus, pool)
    tpu = next(c for c in seen.classes if c.accelerator_class == "tpu")
    assert seen.problem is MetricsProblem.PARTIAL and (tpu.series, tpu.ttft_p95_s, tpu.requests) == (
        0,
        None,
        0,
    )


def test_a_broken_latency_query_keeps_the_load(fake_prometheus: FakePrometheus) -> None:
    seen = _observe(fake_prometheus, ttft_p95=(400, BAD_DATA, 0.0))
    assert seen.rps == 9.5 and seen.problem is MetricsProblem.BAD_QUERY
    assert all(c.ttft_p95_s is None for c in seen.classes) and seen.classes[0].tpot_p95_s == 0.05


def test_unreachable(now: float) -> None:
    reader = PrometheusReader("http://127.0.0.1:1", timeout=1.0)
    seen = reader.observe([POOL], now)["chat/llama"]
    assert seen.problem is MetricsProblem.UNREACHABLE and seen.rps is None and "refused" in seen.detail
    assert seen.detail.count("refused") == 1  # the same failure of ten queries is said once


def test_a_pools_own_rate_query(fake_prometheus: FakePrometheus) -> None:
    reader = PrometheusReader(fake_prometheus.url)
    _script(fake_prometheus, reader)
    healthy = fake_prometheus.answer
    own = 'sum(rate(gateway_requests_total{ns="{namespace}",svc="{pool}"}[{window}]))'
    answers = {
        'sum(rate(gateway_requests_total{ns="chat",svc="llama"}[2m]))': (
            200,
            fake_prometheus.vector(({}, 4.0)),
            0.0,
        ),
        'sum(rate(gateway_requests_total{ns="chat",svc="llama"}[30s]))': (  # the burst window
            200,
            fake_prometheus.vector(({}, 7.0)),
            0.0,
        ),
        "scalar(vector(2))": (
            200,
            {"status": "success", "data": {"resultType": "scalar", "result": [1, "2"]}},
            0.0,
        ),
        "two": (200, fake_prometheus.vector((P, 1.0), ({**P, "x": "y"}, 1.0)), 0.0),
        "none": (200, fake_prometheus.vector(), 0.0),
        "broken": (400, BAD_DATA, 0.0),
    }
    fake_prometheus.answer = lambda q: answers.get(q) or healthy(q)
    observed = {
        q: reader.observe([PoolQuery("chat", "llama", rate_query=q)], 1000.0)["chat/llama"]
        for q in (own, "scalar(vector(2))", "two", "none", "broken")
    }
    assert observed[own].rps == 4.0 and observed[own].problem is None  # no queue term added
    assert observed[own].burst_rps == 7.0 and observed[own].detail == ""
    assert observed["scalar(vector(2))"].rps == 2.0
    assert observed["scalar(vector(2))"].burst_rps is None  # no {window}: no burst reading
    assert observed["two"].problem is MetricsProblem.WRONG_SHAPE and "2 series" in observed["two"].detail
    assert observed["none"].problem is MetricsProblem.EMPTY and observed["none"].rps is None
    assert (
        observed["broken"].problem is MetricsProblem.BAD_QUERY
        and "requestRateQuery" in observed["broken"].detail
    )


def test_bearer_token_is_reread_when_it_changes(fake_prometheus: FakePrometheus, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("first\n")
    reader = PrometheusReader(fake_prometheus.url, token_file=token)
    reader.query("up", 1000.0)
    token.write_text("second-token\n")
    reader.query("up", 1000.0)
    assert [h["Authorization"] for _q, h in fake_prometheus.requests] == [
        "Bearer first",
        "Bearer second-token",
    ]
    token.unlink()
    with pytest.raises(Exception, match="bearer token file") as err:
        reader.query("up", 1000.0)
    assert getattr(err.value, "problem", None) is MetricsProblem.HTTP_ERROR


def test_fleet_wide_overrides_and_bad_options(fake_prometheus: FakePrometheus) -> None:
    reader = PrometheusReader(fake_prometheus.url, window="30s", queries={"sample_age": "vector(0)"})
    assert reader.batch_queries()[Signal.SAMPLE_AGE] == "vector(0)"
    assert "[30s]" in reader.batch_queries()[Signal.FIRST_TOKENS]
    with pytest.raises(ValueError, match="unknown signal"):
        PrometheusReader(fake_prometheus.url, queries={"rps": "x"})
    with pytest.raises(ValueError, match="unknown engine"):
        PrometheusReader(fake_prometheus.url, engine="tgi")
    with pytest.raises(ValueError, match="http"):
        PrometheusReader("127.0.0.1:9090")


def test_an_override_without_pool_labels_is_the_wrong_shape(fake_prometheus: FakePrometheus) -> None:
    reader = PrometheusReader(fake_prometheus.url, queries={"first_tokens": "sum(rate(x[1m]))"})
    _script(fake_prometheus, reader, first_tokens=[({}, 3.0)])
    seen = reader.observe([POOL], 1000.0)["chat/llama"]
    assert seen.problem is MetricsProblem.WRONG_SHAPE and "aggregate by (namespace, pool)" in seen.detail


def test_limits_are_options(fake_prometheus: FakePrometheus) -> None:
    reader = PrometheusReader(fake_prometheus.url, limits=Limits(max_sample_age_s=1.0, min_requests=1.0))
    _script(fake_prometheus, reader)
    seen = reader.observe([POOL], 1000.0)["chat/llama"]
    assert seen.problem is MetricsProblem.STALE and not math.isnan(seen.sample_age_s or math.nan)


def test_https_with_the_ca_file_and_without(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")  # a CA and a serving certificate for 127.0.0.1 (openssl)
    fake = FakePrometheus(tls=(pki.server_cert, pki.server_key))
    try:
        fake.answer = lambda _q: (200, fake.vector(({}, 1.0)), 0.0)
        assert PrometheusReader(fake.url, ca_file=pki.ca_cert).query("up", 1.0)[0].value == 1.0
        with pytest.raises(QueryError) as err:
            PrometheusReader(fake.url, timeout=2).query("up", 1.0)
        assert (
            err.value.problem is MetricsProblem.UNREACHABLE
            and "CERTIFICATE_VERIFY_FAILED" in err.value.detail
        )
        with pytest.raises(QueryError) as err:
            PrometheusReader(fake.url, ca_file=tmp_path / "missing.crt").query("up", 1.0)
        assert err.value.problem is MetricsProblem.UNREACHABLE and "CA file" in err.value.detail
    finally:
        fake.close()


def test_a_failed_burst_or_guard_query_is_a_detail_and_the_reading_stands(
    fake_prometheus: FakePrometheus,
) -> None:
    seen = _observe(
        fake_prometheus, burst_first_tokens=(400, BAD_DATA, 0.0), waiting=(503, {"status": "error"}, 0.0)
    )
    assert seen.problem is None and seen.rps == 9.5 and seen.burst_rps is None
    assert "burst window" in seen.detail and "saturation guard unknown" in seen.detail
    assert all(c.waiting is None for c in seen.classes)


def test_the_burst_load_adds_its_queue_growth_and_never_goes_negative(
    fake_prometheus: FakePrometheus,
) -> None:
    assert _observe(fake_prometheus, burst_queue_growth=[(P, -50.0)]).burst_rps == 0.0
    assert _observe(fake_prometheus, burst_queue_growth=[]).burst_rps == 20.0  # no queue gauge


def test_absurd_guards_are_not_read(fake_prometheus: FakePrometheus) -> None:
    seen = _observe(fake_prometheus, kv_usage=[(_cls("h100"), 7.0)], waiting=[(_cls("h100"), -1.0)])
    h100 = seen.classes[0]
    assert (h100.kv_usage, h100.waiting, seen.problem) == (None, None, None)


def test_a_fleet_wide_load_query_takes_its_burst_twin_along(fake_prometheus: FakePrometheus) -> None:
    with_window = PrometheusReader(fake_prometheus.url, queries={"first_tokens": "sum(rate(x[{window}]))"})
    assert with_window.batch_queries()[Signal.BURST_FIRST_TOKENS] == "sum(rate(x[30s]))"
    fixed = PrometheusReader(fake_prometheus.url, queries={"first_tokens": "sum(rate(x[1m]))"})
    assert Signal.BURST_FIRST_TOKENS not in fixed.batch_queries()


def test_a_pool_with_a_mix_has_its_length_histograms_read_alone(fake_prometheus: FakePrometheus) -> None:
    reader = PrometheusReader(fake_prometheus.url, timeout=1.0)
    mix = PoolQuery("chat", "llama", POOL.ready, mix=True)
    queries = reader.mix_queries(mix)
    assert set(queries) == set(MIX_SIGNALS)
    assert all('namespace=~"chat",pool=~"llama"' in q for q in queries.values())
    batch = {q: s for s, q in reader.batch_queries().items()}
    lengths = {
        queries[Signal.INPUT_LENGTHS]: [("200", 56.0), ("+Inf", 80.0), ("2000", 80.0)],
        queries[Signal.OUTPUT_LENGTHS]: [("50", 40.0), ("+Inf", 40.0)],
    }

    def answer(query: str) -> Answer:
        if query in lengths:
            labels = [({"namespace": "chat", "pool": "llama", "le": le}, v) for le, v in lengths[query]]
            return 200, fake_prometheus.vector(*labels), 0.0
        return 200, fake_prometheus.vector(*HEALTHY[batch[query]]), 0.0

    fake_prometheus.answer = answer
    seen = reader.observe([mix, PoolQuery("chat", "other")], 1000.0)
    assert len(fake_prometheus.requests) == len(Signal)  # the batch, and two for the one mix pool
    got = seen["chat/llama"]
    assert got.input_lengths is not None and got.input_lengths.edges == (200.0, 2000.0, math.inf)
    assert got.input_lengths.counts == (56.0, 80.0, 80.0)
    assert got.output_lengths is not None and got.output_lengths.total == 40.0
    assert got.problem is None and seen["chat/other"].input_lengths is None


def test_a_missing_histogram_is_a_detail_not_a_problem(fake_prometheus: FakePrometheus) -> None:
    reader = PrometheusReader(fake_prometheus.url, timeout=1.0)
    _script(fake_prometheus, reader)  # the histogram queries are answered 400 (unknown to the script)
    seen = reader.observe([PoolQuery("chat", "llama", POOL.ready, mix=True)], 1000.0)["chat/llama"]
    assert seen.rps == 9.5 and seen.problem is None and seen.input_lengths is None
    assert "request mix unknown (prompt-length)" in seen.detail
