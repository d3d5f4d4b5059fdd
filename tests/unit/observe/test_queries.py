"""The query table: every engine has every signal; rendering for a batch, for one pool and for overrides."""

from __future__ import annotations

import pytest

from inferfleet.observe.queries import (
    CLASS_SIGNALS,
    DEFAULT_QUERIES,
    POOL_SIGNALS,
    Signal,
    render,
    render_override,
)


@pytest.mark.parametrize("engine", sorted(DEFAULT_QUERIES))
def test_every_engine_has_every_signal_with_the_placeholders(engine: str) -> None:
    table = DEFAULT_QUERIES[engine]
    assert set(table) == set(Signal) == set(POOL_SIGNALS) | set(CLASS_SIGNALS)
    for signal, template in table.items():
        assert "{namespace}" in template and "{pool}" in template, signal
        by = "by (namespace, pool, accelerator_class" if signal in CLASS_SIGNALS else "by (namespace, pool)"
        assert by in template, signal


def test_batch_and_single_pool_rendering() -> None:
    template = DEFAULT_QUERIES["vllm"][Signal.FIRST_TOKENS]
    assert render(template, window="2m") == (
        "sum by (namespace, pool) "
        '(rate(vllm:time_to_first_token_seconds_count{namespace=~".+",pool=~".+"}[2m]))'
    )
    one = render(template, window="30s", namespace="a.b", pool="chat-1")
    assert 'namespace=~"a\\.b",pool=~"chat\\-1"' in one and "[30s]" in one


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
