"""What the metrics say about a pool, as plain data: the port between the Prometheus reader
(``inferfleet.observe``) and the autoscaling policy (``core.autoscale``).

Owns ``Observed`` (one pool at one evaluation: offered load, mean token lengths, p95 latencies per
class, coverage, sample age and, for a pool with a request mix, its token-length histograms) and
``MetricsProblem``, the distinct ways reading can fail.  A
missing value is ``None`` with a problem, never zero.
"""

from __future__ import annotations

import dataclasses
import enum

from inferfleet.core.mixfit import Histogram

__all__ = ["ClassSample", "MetricsProblem", "Observed"]


class MetricsProblem(enum.StrEnum):
    """Why a pool's metrics could not be used (each is a distinct condition reason)."""

    UNREACHABLE = "PrometheusUnreachable"  # connection refused, DNS, timeout
    HTTP_ERROR = "PrometheusHTTPError"  # a non-2xx answer other than a bad query
    BAD_QUERY = "BadQuery"  # PromQL that does not parse or fails to evaluate (HTTP 400/422)
    WRONG_SHAPE = "WrongShape"  # not an instant vector of numbers (a matrix, a string, ...)
    EMPTY = "NoData"  # an empty vector: no series for the pool
    PARTIAL = "PartialCoverage"  # fewer series than Ready pods
    STALE = "StaleSamples"  # the newest sample is older than allowed
    NOT_A_NUMBER = "NotANumber"  # NaN or infinite where a number was needed
    ABSURD = "AbsurdValue"  # negative, or beyond any sane bound


@dataclasses.dataclass(frozen=True)
class ClassSample:
    """Latency of a pool's replicas on one accelerator class over the window."""

    accelerator_class: str
    ttft_p95_s: float | None  # None: no sample (too few requests), not a breach
    tpot_p95_s: float | None
    requests: float  # requests completed in the window: what the percentiles rest on
    series: int  # replicas (pods) reporting
    waiting: float | None = None  # requests queued on the class's replicas now (None: not read)
    kv_usage: float | None = None  # the fullest replica's KV cache, 0..1 (None: not read)


@dataclasses.dataclass(frozen=True)
class Observed:
    """One pool at one evaluation."""

    at: float  # unix seconds of the evaluation
    rps: float | None  # offered load (arrivals) in req/s; None when it could not be read
    burst_rps: float | None = None  # the same over the short (burst) window: for scaling up only
    problem: MetricsProblem | None = None  # set whenever something is missing or wrong
    detail: str = ""  # the failing query and what the server said, for status and events
    classes: tuple[ClassSample, ...] = ()
    input_tokens: float | None = None  # mean prompt tokens per request in the window
    output_tokens: float | None = None  # mean generated tokens per request in the window
    sample_age_s: float | None = None  # age of the newest sample behind ``rps``
    series: int = 0  # pods reporting the load
    window_s: float = 120.0  # the range of rate() and the percentiles: what a sample spans
    burst_window_s: float = 30.0  # the range behind ``burst_rps``
    # pools with a request mix: the prompt- and generated-length histograms over the window
    input_lengths: Histogram | None = None
    output_lengths: Histogram | None = None
