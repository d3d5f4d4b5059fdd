"""The default PromQL: one table keyed by engine, then by signal (another engine is a data change).

Owns ``Signal`` (what is read), ``DEFAULT_QUERIES`` and ``render``.  Every template selects with
``namespace=~"{namespace}",pool=~"{pool}"`` and aggregates ``by (namespace, pool)`` (pool signals) or
``by (namespace, pool, accelerator_class)`` (class signals), so one query answers for every pool:
``render`` substitutes ``.+`` for a batch, or one pool's regex-escaped names; ``{window}`` is the
range of ``rate``/``increase``/``delta`` (``{window_seconds}`` it in seconds) and ``{burst}``
(``{burst_seconds}``) the short one the burst signals read (a
load step is seen within a few scrapes, not after the long window fills).  Substitution is
textual (PromQL is full of braces, so no ``str.format``).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

__all__ = [
    "CLASS_SIGNALS",
    "DEFAULT_QUERIES",
    "MIX_SIGNALS",
    "POOL_SIGNALS",
    "Signal",
    "burst_window",
    "duration_seconds",
    "promql_regex",
    "render",
    "render_override",
]


class Signal(enum.StrEnum):
    """One thing read per pool (or per pool and accelerator class)."""

    FIRST_TOKENS = "first_tokens"  # req/s reaching their first token (admitted arrivals)
    QUEUE_GROWTH = "queue_growth"  # change of waiting requests over the window / its seconds
    BURST_FIRST_TOKENS = "burst_first_tokens"  # the same two over the short window
    BURST_QUEUE_GROWTH = "burst_queue_growth"
    INPUT_TOKENS = "input_tokens"  # mean prompt tokens per request
    OUTPUT_TOKENS = "output_tokens"  # mean generated tokens per request
    PODS = "pods"  # pods reporting the load
    SAMPLE_AGE = "sample_age"  # seconds since the newest sample behind the load
    TTFT_P95 = "ttft_p95"  # per class, seconds
    TPOT_P95 = "tpot_p95"  # per class, seconds
    REQUESTS = "requests"  # per class, requests in the window (what the percentiles rest on)
    CLASS_PODS = "class_pods"  # per class, pods reporting
    WAITING = "waiting"  # per class, requests queued now (a saturation guard)
    KV_USAGE = "kv_usage"  # per class, the fullest replica's KV cache 0..1 (a saturation guard)
    INPUT_LENGTHS = "input_lengths"  # per pool with a requestMix: prompt-length histogram, by le
    OUTPUT_LENGTHS = "output_lengths"  # the same of generated lengths


POOL_SIGNALS: Final = (
    Signal.FIRST_TOKENS,
    Signal.QUEUE_GROWTH,
    Signal.BURST_FIRST_TOKENS,
    Signal.BURST_QUEUE_GROWTH,
    Signal.INPUT_TOKENS,
    Signal.OUTPUT_TOKENS,
    Signal.PODS,
    Signal.SAMPLE_AGE,
)
# read for pools with a request mix only, one query per pool (a histogram per pool is ~20 series)
MIX_SIGNALS: Final = (Signal.INPUT_LENGTHS, Signal.OUTPUT_LENGTHS)
CLASS_SIGNALS: Final = (
    Signal.TTFT_P95,
    Signal.TPOT_P95,
    Signal.REQUESTS,
    Signal.CLASS_PODS,
    Signal.WAITING,
    Signal.KV_USAGE,
)

_S = 'namespace=~"{namespace}",pool=~"{pool}"'
_POOL = "namespace, pool"
_CLASS = "namespace, pool, accelerator_class"


def _p95(histogram: str) -> str:
    return f"histogram_quantile(0.95, sum by ({_CLASS}, le) (rate({histogram}_bucket{{{_S}}}[{{window}}])))"


def _pods(series: str, by: str) -> str:
    return f"count by ({by}) (count by ({by}, pod) ({series}{{{_S}}}))"


def _engine(
    *,
    ttft: str,
    tpot: tuple[str, ...],
    waiting: str,
    kv: str,
    tokens: tuple[tuple[str, str], tuple[str, str]],
    lengths: tuple[str, str] | None = None,
) -> Mapping[Signal, str]:
    """The templates of an engine from its metric names (``tokens``: (sum, count) of prompt and
    generated tokens per request; ``tpot``: histograms tried in order, per class, with ``or``;
    ``lengths``: the prompt- and generated-length histograms, when the engine has them)."""
    count = f"{ttft}_count"
    (in_sum, in_count), (out_sum, out_count) = tokens

    def change(window: str, seconds: str) -> str:
        return f"sum by ({_POOL}) (delta({waiting}{{{_S}}}[{window}])) / {seconds}"

    def mean(total: str, n: str) -> str:
        return (
            f"sum by ({_POOL}) (rate({total}{{{_S}}}[{{window}}]))"
            f" / sum by ({_POOL}) (rate({n}{{{_S}}}[{{window}}]))"
        )

    def histogram(name: str) -> str:
        return f"sum by ({_POOL}, le) (increase({name}_bucket{{{_S}}}[{{window}}]))"

    mix = (
        {}
        if lengths is None
        else {Signal.INPUT_LENGTHS: histogram(lengths[0]), Signal.OUTPUT_LENGTHS: histogram(lengths[1])}
    )
    return MappingProxyType(
        {
            **mix,
            Signal.FIRST_TOKENS: f"sum by ({_POOL}) (rate({count}{{{_S}}}[{{window}}]))",
            # arrivals = first tokens + the queue's change over the same window: delta (end minus
            # start) is what makes the identity exact; a regression slope (deriv) does not cancel
            # a draining backlog's first tokens and overshot by 20-60% after a scale-up
            Signal.QUEUE_GROWTH: change("{window}", "{window_seconds}"),
            Signal.BURST_FIRST_TOKENS: f"sum by ({_POOL}) (rate({count}{{{_S}}}[{{burst}}]))",
            Signal.BURST_QUEUE_GROWTH: change("{burst}", "{burst_seconds}"),
            Signal.INPUT_TOKENS: mean(in_sum, in_count),
            Signal.OUTPUT_TOKENS: mean(out_sum, out_count),
            Signal.PODS: _pods(count, _POOL),
            Signal.SAMPLE_AGE: f"time() - max by ({_POOL}) (timestamp({count}{{{_S}}}))",
            Signal.TTFT_P95: _p95(ttft),
            Signal.TPOT_P95: " or ".join(_p95(h) for h in tpot),
            Signal.REQUESTS: f"sum by ({_CLASS}) (increase({count}{{{_S}}}[{{window}}]))",
            Signal.CLASS_PODS: _pods(count, _CLASS),
            Signal.WAITING: f"sum by ({_CLASS}) ({waiting}{{{_S}}})",
            Signal.KV_USAGE: f"max by ({_CLASS}) ({kv}{{{_S}}})",
        }
    )


DEFAULT_QUERIES: Final[Mapping[str, Mapping[Signal, str]]] = MappingProxyType(
    {
        # vLLM V1 (AUTOSCALING.md §1).  TPOT: per-request TPOT, then inter-token latency, then the
        # name removed after 0.11.
        "vllm": _engine(
            ttft="vllm:time_to_first_token_seconds",
            tpot=(
                "vllm:request_time_per_output_token_seconds",
                "vllm:inter_token_latency_seconds",
                "vllm:time_per_output_token_seconds",
            ),
            waiting="vllm:num_requests_waiting",
            kv="vllm:kv_cache_usage_perc",
            tokens=(
                ("vllm:request_prompt_tokens_sum", "vllm:request_prompt_tokens_count"),
                ("vllm:request_generation_tokens_sum", "vllm:request_generation_tokens_count"),
            ),
            lengths=("vllm:request_prompt_tokens", "vllm:request_generation_tokens"),
        ),
        # SGLang, from its metrics reference (not run against a live SGLang here): token means from
        # the token counters over the finished-request counter.
        "sglang": _engine(
            ttft="sglang:time_to_first_token_seconds",
            tpot=("sglang:time_per_output_token_seconds", "sglang:inter_token_latency_seconds"),
            waiting="sglang:num_queue_reqs",
            kv="sglang:token_usage",
            tokens=(
                ("sglang:prompt_tokens_total", "sglang:num_requests_total"),
                ("sglang:generation_tokens_total", "sglang:num_requests_total"),
            ),
        ),
    }
)

_DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0, "y": 31536000.0}


def duration_seconds(text: str) -> float:
    """A PromQL duration (``2m``, ``1m30s``, ``500ms``) in seconds; ValueError if it is not one."""
    parts = _DURATION.findall(text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a Prometheus duration: {text!r} (e.g. 30s, 2m, 1m30s)")
    return sum(int(n) * _UNIT_S[u] for n, u in parts)


def burst_window(window: str) -> str:
    """The default burst window: a quarter of the long one, but at least 10 s (or half the long
    one, if shorter): over a few 1 s scrapes rate() and the queue's change are mostly noise."""
    long = duration_seconds(window)
    return f"{max(1, round(max(long / 4, min(10.0, long / 2))))}s"


BATCH = ".+"  # every pool: matches any non-empty label
_RE2_SPECIAL = frozenset(".^$*+?()[]{}|\\")


def promql_regex(value: str) -> str:
    r"""``value`` as an RE2 pattern matching only itself, inside a PromQL double-quoted string:
    regex metacharacters escaped, the escaping backslash doubled for the string (Python's
    ``re.escape`` also escapes ``-``, which PromQL's string parser refuses as ``\-``)."""
    return "".join("\\\\" + c if c in _RE2_SPECIAL else c for c in value)


def render(
    template: str, *, window: str, burst: str = "", namespace: str | None = None, pool: str | None = None
) -> str:
    """A default or fleet-wide template for every pool (names None) or for one pool (regex-escaped)."""
    ns = BATCH if namespace is None else promql_regex(namespace)
    name = BATCH if pool is None else promql_regex(pool)
    burst = burst or window
    text = template.replace("{namespace}", ns).replace("{pool}", name).replace("{window}", window)
    text = text.replace("{window_seconds}", f"{duration_seconds(window):g}")
    return text.replace("{burst_seconds}", f"{duration_seconds(burst):g}").replace("{burst}", burst)


def render_override(template: str, *, namespace: str, pool: str, window: str) -> str:
    """A pool's own ``requestRateQuery``: its names substituted as they are (it may use ``=``).
    Rendered with the long window, and again with the burst window when it uses ``{window}``."""
    return template.replace("{namespace}", namespace).replace("{pool}", pool).replace("{window}", window)
