"""The query table: every engine has every signal; rendering for a batch, for one pool and for overrides."""

from __future__ import annotations

import pytest

from inferfleet.observe.queries import (
    CLASS_SIGNALS,
    DEFAULT_QUERIES,
    MIX_SIGNALS,
    POOL_SIGNALS,
    Signal,
    burst_window,
    duration_seconds,
    render,
    render_override,
)


@pytest.mark.parametrize("engine", sorted(DEFAULT_QUERIES))
def test_every_engine_has_every_signal_with_the_placeholders(engine: str) -> None:
    table = DEFAULT_QUERIES[engine]
    assert set(Signal) == set(POOL_SIGNALS) | set(CLASS_SIGNALS) | set(MIX_SIGNALS)
    # every engine reads the load and latency; the length histograms where the engine has them
    assert set(POOL_SIGNALS) | set(CLASS_SIGNALS) <= set(table) <= set(Signal)
    assert (set(MIX_SIGNALS) <= set(table)) == (engine == "vllm")
    for signal, template in table.items():
        assert "{namespace}" in template and "{pool}" in template, signal
        by = "by (namespace, pool)"
        if signal in CLASS_SIGNALS:
            by = "by (namespace, pool, accelerator_class"
        elif signal in MIX_SIGNALS:
            by = "by (namespace, pool, le)"
        assert by in template, signal


def test_batch_and_single_pool_rendering() -> None:
    template = DEFAULT_QUERIES["vllm"][Signal.FIRST_TOKENS]
    assert render(template, window="2m") == (
        "sum by (namespace, pool) "
        '(rate(vllm:time_to_first_token_seconds_count{namespace=~".+",pool=~".+"}[2m]))'
    )
    one = render(template, window="30s", namespace="a.b", pool="chat-1")
    assert 'namespace=~"a\\\\.b",pool=~"chat-1"' in one and "[30s]" in one


def test_tpot_falls_back_per_class_through_three_names() -> None:
    tpot = DEFAULT_QUERIES["vllm"][Signal.TPOT_P95]
    names = [
        "request_time_per_output_token_seconds",
        "inter_token_latency_seconds",
        "time_per_output_token_seconds",
    ]
    positions = [tpot.index(f"vllm:{n}_bucket") for n in names]
    assert positions == sorted(positions) and tpot.count(" or ") == 2


def test_override_substitutes_names_as_they_are() -> None:
    own = 'sum(rate(x{ns="{namespace}",svc="{pool}"}[{window}]))'
    assert (
        render_override(own, namespace="a.b", pool="p", window="1m") == 'sum(rate(x{ns="a.b",svc="p"}[1m]))'
    )


def test_the_burst_signals_read_the_short_window() -> None:
    table = DEFAULT_QUERIES["vllm"]
    burst = render(table[Signal.BURST_FIRST_TOKENS], window="2m", burst="30s")
    assert "[30s]" in burst and "[2m]" not in burst
    assert render(table[Signal.BURST_FIRST_TOKENS], window="2m").endswith("[2m]))")  # no burst given


@pytest.mark.parametrize(
    ("text", "seconds"), [("2m", 120.0), ("1m30s", 90.0), ("500ms", 0.5), ("1h", 3600.0)]
)
def test_durations(text: str, seconds: float) -> None:
    assert duration_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "2", "m", "2 m", "1.5m", "-1s"])
def test_bad_durations_are_refused_by_name(text: str) -> None:
    with pytest.raises(ValueError, match="not a Prometheus duration"):
        duration_seconds(text)


def test_the_default_burst_window_is_a_quarter_of_the_window_but_not_a_few_scrapes() -> None:
    assert (burst_window("2m"), burst_window("30s"), burst_window("15s"), burst_window("2s")) == (
        "30s",
        "10s",
        "8s",
        "1s",
    )


def test_the_queue_term_is_the_change_over_the_window_in_seconds() -> None:
    table = DEFAULT_QUERIES["vllm"]
    long = render(table[Signal.QUEUE_GROWTH], window="2m", burst="30s")
    short = render(table[Signal.BURST_QUEUE_GROWTH], window="2m", burst="30s")
    assert "delta(vllm:num_requests_waiting" in long and long.endswith("[2m])) / 120")
    assert short.endswith("[30s])) / 30")


def test_a_name_is_matched_as_itself() -> None:
    from inferfleet.observe.queries import promql_regex

    assert promql_regex("it-a1") == "it-a1"  # '-' needs no escape outside a class
    assert promql_regex("a.b") == "a\\\\.b"  # \\. in the PromQL string: the regex a\.b
