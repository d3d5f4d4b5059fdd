"""A pool's request mix measured from token-length histograms (vLLM's ``request_prompt_tokens`` and
``request_generation_tokens``), and when a measured mix replaces the one planned.

Owns ``Histogram`` (cumulative counts at upper edges, as Prometheus gives them), ``cdf`` (requests
at or below a length, linear within a histogram bucket, as ``histogram_quantile`` assumes),
``measured_shares`` and ``follow`` (the damping).  A bucket's share is the fraction of requests whose
input length falls in its input range times the fraction whose output length falls in its output
range: exact when the buckets split one dimension only (the usual prompt-length mix), an
independence assumption for a grid (two histograms cannot say how the lengths pair up).  The
range at the top of each dimension takes the longer requests too (the edge bucket), the one at 0
the empty ones.  Exact when the buckets' edges are histogram edges (vLLM's 1, 2, 5 x 10^k).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

__all__ = ["Histogram", "Range", "cdf", "follow", "measured_shares"]

MIN_REQUESTS = 50.0  # fewer requests in the window: the mix is not measured (too noisy)


@dataclasses.dataclass(frozen=True)
class Histogram:
    """Cumulative request counts at upper edges, ascending (the last edge may be ``inf``)."""

    edges: tuple[float, ...]
    counts: tuple[float, ...]

    @property
    def total(self) -> float:
        return self.counts[-1] if self.counts else 0.0


@dataclasses.dataclass(frozen=True)
class Range:
    """One bucket's lengths: input in (min_in, max_in], output in (min_out, max_out] (0 included
    when the min is 0)."""

    min_in: int
    max_in: int
    min_out: int
    max_out: int


def cdf(h: Histogram, x: float) -> float:
    """Requests of length at most ``x`` (linear between edges; the first bucket starts at 0)."""
    if x < 0 or not h.edges:
        return 0.0
    lower_edge, lower_count = 0.0, 0.0
    for edge, count in zip(h.edges, h.counts, strict=True):
        if x <= edge:
            if math.isinf(edge):
                return lower_count  # nothing is known above the last finite edge
            width = edge - lower_edge
            frac = (x - lower_edge) / width if width > 0 else 1.0
            return lower_count + (count - lower_count) * frac
        lower_edge, lower_count = edge, count
    return h.total


def _fractions(h: Histogram, ranges: Sequence[tuple[int, int]]) -> list[float]:
    """The fraction of requests in each (low, high] range, the top range open-ended."""
    top = max(high for _, high in ranges)
    total = h.total
    out = []
    for low, high in ranges:
        upper = total if high >= top else cdf(h, high)
        lower = cdf(h, low) if low > 0 else 0.0
        out.append(max(0.0, upper - lower) / total if total > 0 else 0.0)
    return out


def measured_shares(
    buckets: Sequence[Range], inputs: Histogram, outputs: Histogram, min_requests: float = MIN_REQUESTS
) -> tuple[float, ...] | None:
    """Each bucket's share of the requests the histograms counted (summing to 1), or None when
    they counted fewer than ``min_requests`` or none falls in any bucket."""
    if not buckets or inputs.total < min_requests or outputs.total < min_requests:
        return None
    f_in = _fractions(inputs, [(b.min_in, b.max_in) for b in buckets])
    # output ranges of (0, 0] (embeddings): every request is in them
    if all(b.max_out == 0 for b in buckets):
        f_out = [1.0] * len(buckets)
    else:
        f_out = _fractions(outputs, [(b.min_out, b.max_out) for b in buckets])
    raw = [a * b for a, b in zip(f_in, f_out, strict=True)]
    total = sum(raw)
    if total <= 0:
        return None
    return tuple(r / total for r in raw)


def follow(
    planned: Sequence[float] | None, measured: Sequence[float] | None, tolerance: float
) -> tuple[float, ...] | None:
    """The shares to plan: the measured ones when no share is planned yet or one moved by more than
    ``tolerance`` (a fraction, e.g. 0.1), else the planned ones (noise does not re-plan)."""
    if measured is None:
        return tuple(planned) if planned is not None else None
    if planned is None or len(planned) != len(measured):
        return tuple(measured)
    if max(abs(a - b) for a, b in zip(planned, measured, strict=True)) > tolerance:
        return tuple(measured)
    return tuple(planned)
