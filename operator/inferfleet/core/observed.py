"""What the metrics say about a pool, as plain data: the port between the Prometheus reader
(``inferfleet.observe``) and the autoscaling policy (``core.autoscale``).

Owns ``Observed`` (one pool at one evaluation: offered load, mean token lengths, p95 latencies per
class, coverage and sample age) and ``MetricsProblem``, the distinct ways reading can fail.  A
missing value is ``None`` with a problem, never zero.
"""

from __future__ import annotations

import dataclasses
import enum

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


@dataclasses.dataclass(frozen=True)
class Observed:
    """One pool at one evaluation."""

    at: float  # unix seconds of the evaluation
    rps: float | None  # offered load (arrivals) in req/s; None when it could not be read
    problem: MetricsProblem | None = None  # set whenever something is missing or wrong
    detail: str = ""  # the failing query and what the server said, for status and events
    classes: tuple[ClassSample, ...] = ()
    input_tokens: float | None = None  # mean prompt tokens per request in the window
    output_tokens: float | None = None  # mean generated tokens per request in the window
    sample_age_s: float | None = None  # age of the newest sample behind ``rps``
    series: int = 0  # pods reporting the load
