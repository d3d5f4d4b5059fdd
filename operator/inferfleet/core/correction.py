"""Correction factors: how much slower than the performance model each class really is, per pool,
learnt from measured p95 latency (pure).

Owns ``Factor`` (TTFT and TPOT multipliers, persisted in the pool's status) and ``update``: an
exponentially weighted mean of observed p95 / predicted p95, learnt only from evidence that means
something — enough requests in the window, every planned replica serving (none still loading its
model), the window wholly after the last scaling (a transient is not a speed), and the pool loaded
to 50-90% of its planned capacity (below, latency says little; above, queueing past the knee would
be learnt as slowness).  TTFT counts from arrival, so it includes queueing: it is not learnt while
requests stand queued on the class (TPOT still is).  A latency measured below half its SLO teaches
nothing either: there the model's error cannot breach the SLO, and learning it would only move
replicas between classes for nothing (a continuous-batching TTFT well under a loose SLO is often
2-4x the model's prefill time).  Factors are clamped to
``[1, MAX]``: a class measured faster than predicted is not learnt, because below the planned load
a fast class and a lightly loaded one look the same, and an SLO is the product.  The planner plans
each (pool, class) against SLO / factor (``core.problem``), so a class 1.5x slower than modelled is
planned as 1.5x slower.
"""

from __future__ import annotations

import dataclasses
import math

from inferfleet.core.observed import ClassSample

__all__ = [
    "ALPHA",
    "MAX",
    "MAX_QUEUE_PER_REPLICA",
    "MAX_UTILISATION",
    "MIN_REQUESTS",
    "MIN_UTILISATION",
    "RELEVANT",
    "Factor",
    "update",
]

ALPHA = 0.5  # weight of a new observation
MAX = 4.0
MIN_REQUESTS = 20.0  # fewer requests in the window: no latency sample
MIN_UTILISATION = 0.5
MAX_UTILISATION = 0.9  # above: queueing past the latency knee, not the class's speed, drives p95
RELEVANT = 0.5  # a latency below this fraction of its SLO is not learnt from
MAX_QUEUE_PER_REPLICA = 0.5  # more requests waiting per replica: TTFT measures the queue, not the class


@dataclasses.dataclass(frozen=True)
class Factor:
    ttft: float = 1.0
    tpot: float = 1.0
    updates: int = 0  # evaluations that taught it something


def _blend(old: float, ratio: float | None) -> float:
    if ratio is None or not math.isfinite(ratio) or ratio <= 0:
        return old
    return min(MAX, max(1.0, (1 - ALPHA) * old + ALPHA * ratio))


def _ratio(measured: float | None, predicted: float, slo: float | None) -> float | None:
    """Measured / predicted, when it is evidence that matters (see module)."""
    if measured is None or predicted <= 0:
        return None
    if slo is not None and slo > 0 and measured < RELEVANT * slo:
        return None
    return measured / predicted


def update(
    factor: Factor,
    sample: ClassSample,
    predicted_ttft_s: float,
    predicted_tpot_s: float,
    *,
    utilisation: float,
    all_serving: bool,
    settled: bool = True,
    queue_per_replica: float | None = None,
    slo_s: tuple[float | None, float | None] = (None, None),
) -> Factor:
    """The factor after one evaluation; unchanged unless the sample is evidence (see module)."""
    if (
        not all_serving
        or not settled
        or sample.requests < MIN_REQUESTS
        or not MIN_UTILISATION <= utilisation <= MAX_UTILISATION
    ):
        return factor
    queued = queue_per_replica is not None and queue_per_replica > MAX_QUEUE_PER_REPLICA
    ttft = _ratio(sample.ttft_p95_s, predicted_ttft_s, slo_s[0]) if not queued else None
    tpot = _ratio(sample.tpot_p95_s, predicted_tpot_s, slo_s[1])
    if ttft is None and tpot is None:
        return factor
    return Factor(_blend(factor.ttft, ttft), _blend(factor.tpot, tpot), factor.updates + 1)
