"""The autoscaling phase of a round (pure): measurements and each pool's last state -> the demand
and correction factors it is planned with.

Owns reading the policy's state back from ``status.autoscaling`` (level-based: a restart or a new
leader continues), the pressure the policy reads (breaches, saturation, replicas still loading),
and running ``core.autoscale.recommend``, ``core.correction.update`` and ``core.startup.observe``
per pool; ``reconcile.scaling_status`` renders the result for status and events.  Pools without
``spec.demand.autoscaling`` (or with it disabled) are left out; a pool pinned by ``spec.replicas``
(``kubectl scale``, an HPA) is evaluated and reported, but its demand is not planned.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from inferfleet.api.inferencepool import AutoscalingStatus, InferencePool, MeasuredBucket, RequestBucket
from inferfleet.core import autoscale, correction, mixfit, startup
from inferfleet.core.observed import ClassSample, Observed
from inferfleet.core.units import MILLI
from inferfleet.reconcile.validate import Objects

__all__ = [
    "EVALUATION_S",
    "Scaling",
    "evaluate",
    "seconds",
    "timestamp",
]

EVALUATION_S = 15.0  # while any pool autoscales, rounds run at least this often (HPA's default period)
SATURATED_QUEUE = 1.0  # requests waiting per replica of a class: a standing queue
SATURATED_KV = 0.9  # the fullest replica's KV cache: admission is about to stall


def seconds(stamp: str) -> float:
    """An RFC 3339 time as written in status (``2026-12-01T21:00:05Z``) -> unix seconds."""
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def timestamp(unix: float) -> str:
    return datetime.datetime.fromtimestamp(unix, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclasses.dataclass(frozen=True)
class Scaling:
    """One pool's autoscaling this round."""

    key: str
    outcome: autoscale.Outcome | None  # None: the operator has no metrics source
    factors: dict[str, correction.Factor]
    samples: dict[str, ClassSample]
    previous_demand: float | None
    previous_problem: str | None
    breaches: tuple[tuple[str, str, float, float], ...]  # (class, "TTFT"|"TPOT", measured s, SLO s)
    pressure: autoscale.Pressure = dataclasses.field(default_factory=autoscale.Pressure)
    sample_age_s: float | None = None
    burst_rps: float | None = None
    startups: dict[str, startup.Startup] = dataclasses.field(default_factory=dict)
    pinned: bool = False  # spec.replicas pins the total: measured and reported, not planned
    mix_shares: tuple[float, ...] | None = None  # a request mix's shares, measured (None: the weights)
    mix_edges: tuple[dict[str, int], ...] = ()  # its buckets' edges (camelCase), for status

    @property
    def planned_demand_rps(self) -> float | None:
        """The demand the planner is given (None: the pool's own, static or pinned)."""
        return None if self.pinned else self.demand_rps

    @property
    def demand_rps(self) -> float | None:
        return None if self.outcome is None else self.outcome.demand_rps

    @property
    def slo_factors(self) -> dict[str, tuple[float, float]]:
        return {c: (f.ttft, f.tpot) for c, f in self.factors.items() if (f.ttft, f.tpot) != (1.0, 1.0)}


def _previous(raw_status: Mapping[str, Any]) -> AutoscalingStatus | None:
    block = raw_status.get("autoscaling")
    if not isinstance(block, dict):
        return None
    try:
        return AutoscalingStatus.model_validate(block)
    except ValidationError:  # a status we cannot read is started afresh, never a failed round
        return None


def _state(prev: AutoscalingStatus | None) -> autoscale.State:
    if prev is None:
        return autoscale.State()
    return autoscale.State(
        demand_rps=prev.demand_requests_per_second if prev.last_evaluation_time else None,
        recommendations=tuple((seconds(r.time), r.requests_per_second) for r in prev.recommendations),
        missing_since=seconds(prev.missing_since) if prev.missing_since else None,
        last_scale=seconds(prev.last_scale_time) if prev.last_scale_time else None,
        breaches=prev.consecutive_breaches,
    )


def _placed(raw_status: Mapping[str, Any]) -> dict[str, tuple[int, int]]:
    """(planned, Ready) replicas per class, as the last round wrote them."""
    out: dict[str, tuple[int, int]] = {}
    for p in raw_status.get("placements") or []:
        if isinstance(p, dict) and p.get("acceleratorClass"):
            out[str(p["acceleratorClass"])] = (int(p.get("replicas") or 0), int(p.get("readyReplicas") or 0))
    return out


def _per_replica(sample: ClassSample | None, replicas: int) -> float | None:
    if sample is None or sample.waiting is None:
        return None
    return sample.waiting / max(replicas, sample.series, 1)


def _serving(
    placed: Mapping[str, tuple[int, int]], samples: Mapping[str, ClassSample]
) -> dict[str, tuple[int, int]]:
    """(planned, serving) per class: serving is Ready, and (when the pool's metrics say which pods
    report) reporting too — a Ready model server may still be loading its weights."""
    per_class = any(s.series for s in samples.values())
    return {
        cls: (planned, min(ready, samples[cls].series if cls in samples else 0) if per_class else ready)
        for cls, (planned, ready) in placed.items()
    }


def _pressure(
    placed: Mapping[str, tuple[int, int]],
    samples: Mapping[str, ClassSample],
    breaches: tuple[tuple[str, str, float, float], ...],
) -> autoscale.Pressure:
    """Breach, saturation (a standing queue, a full KV cache) and replicas still loading."""
    pending = sum(max(0, planned - serving) for planned, serving in _serving(placed, samples).values())
    queues = [_per_replica(s, placed.get(c, (0, 0))[0]) for c, s in samples.items()]
    saturated = any(q is not None and q >= SATURATED_QUEUE for q in queues) or any(
        s.kv_usage is not None and s.kv_usage >= SATURATED_KV for s in samples.values()
    )
    measured = {c for c, x in samples.items() if x.ttft_p95_s is not None or x.tpot_p95_s is not None}
    breaching = {b[0] for b in breaches}
    return autoscale.Pressure(
        breached=bool(measured) and measured <= breaching,
        at_risk=bool(breaching),
        saturated=saturated,
        pending=pending,
    )


def _startups(
    prev: AutoscalingStatus | None,
    placed: Mapping[str, tuple[int, int]],
    samples: Mapping[str, ClassSample],
    observed: Observed | None,
    now: float,
) -> dict[str, startup.Startup]:
    """Each class's learnt start-up time, advanced by this evaluation when the reading is usable."""
    out = {
        c.accelerator_class: startup.Startup(
            c.startup_seconds,
            c.startup_samples,
            seconds(c.starting_since) if c.starting_since else None,
            c.planned_replicas,
        )
        for c in (prev.classes if prev else [])
    }
    if observed is None or observed.rps is None:
        return out  # who serves is not known: nothing learnt, nothing lost
    previous_eval = seconds(prev.last_evaluation_time) if prev and prev.last_evaluation_time else None
    for cls, (planned, serving) in _serving(placed, samples).items():
        out[cls] = startup.observe(out.get(cls, startup.Startup()), planned, serving, previous_eval, now)
    return out


def _learn(
    pool: InferencePool,
    prev: AutoscalingStatus | None,
    raw_status: Mapping[str, Any],
    observed: Observed | None,
    now: float,
) -> tuple[dict[str, correction.Factor], dict[str, ClassSample]]:
    factors = {
        c.accelerator_class: correction.Factor(c.ttft_correction, c.tpot_correction, c.updates)
        for c in (prev.classes if prev else [])
    }
    if observed is None or observed.rps is None:
        return factors, {}
    samples = {s.accelerator_class: s for s in observed.classes}
    placements = {p.get("acceleratorClass"): p for p in raw_status.get("placements") or []}
    capacity = sum(float(p.get("requestsPerSecond") or 0.0) for p in placements.values())
    utilisation = observed.rps / capacity if capacity > 0 else 0.0
    last_scale = seconds(prev.last_scale_time) if prev and prev.last_scale_time else None
    settled = last_scale is None or now - last_scale >= observed.window_s
    slo = pool.spec.slo
    ttft_ms, tpot_ms = slo.ttft_p95_milliseconds, slo.tpot_p95_milliseconds
    slo_s = (None if ttft_ms is None else ttft_ms * MILLI, None if tpot_ms is None else tpot_ms * MILLI)
    for cls, sample in samples.items():
        placed = placements.get(cls)
        if placed is None:
            continue
        replicas = int(placed.get("replicas") or 0)
        factors[cls] = correction.update(
            factors.get(cls, correction.Factor()),
            sample,
            float(placed.get("ttftP95Milliseconds") or 0.0) * MILLI,
            float(placed.get("tpotP95Milliseconds") or 0.0) * MILLI,
            utilisation=utilisation,
            all_serving=replicas > 0 and sample.series >= replicas,
            settled=settled,
            queue_per_replica=_per_replica(sample, replicas),
            slo_s=slo_s,
        )
    return factors, samples


def _breaches(
    pool: InferencePool, samples: Mapping[str, ClassSample]
) -> tuple[tuple[str, str, float, float], ...]:
    slo = pool.spec.slo
    out = []
    for cls, s in sorted(samples.items()):
        if s.requests < correction.MIN_REQUESTS:
            continue
        for what, got, target_ms in (
            ("TTFT", s.ttft_p95_s, slo.ttft_p95_milliseconds),
            ("TPOT", s.tpot_p95_s, slo.tpot_p95_milliseconds),
        ):
            if got is not None and target_ms and got > target_ms * MILLI:
                out.append((cls, what, got, target_ms * MILLI))
    return tuple(out)


def _edges(buckets: Sequence[RequestBucket | MeasuredBucket]) -> list[mixfit.Range]:
    """The token ranges of requestMix buckets, as the spec or status gives them."""
    return [
        mixfit.Range(b.min_input_tokens, b.max_input_tokens, b.min_output_tokens, b.max_output_tokens)
        for b in buckets
    ]


def _ranges(pool: InferencePool) -> list[mixfit.Range]:
    return _edges(pool.spec.demand.request_mix)


def _mix(
    pool: InferencePool, prev: AutoscalingStatus | None, reading: Observed | None, tolerance: float
) -> tuple[float, ...] | None:
    """The shares of the pool's request mix to plan: measured, damped by the pool's tolerance;
    a measurement of other buckets (the mix was edited) is dropped."""
    ranges = _ranges(pool)
    if len(ranges) < 2:
        return None
    planned = None
    if prev is not None and prev.request_mix is not None:
        planned = [b.share for b in prev.request_mix] if _edges(prev.request_mix) == ranges else None
    measured = None
    if reading is not None and reading.input_lengths is not None and reading.output_lengths is not None:
        measured = mixfit.measured_shares(ranges, reading.input_lengths, reading.output_lengths)
    return mixfit.follow(planned, measured, tolerance)


def evaluate(objects: Objects, observed: Mapping[str, Observed] | None, now_stamp: str) -> dict[str, Scaling]:
    """Every autoscaled pool's demand and factors; ``observed`` None: no metrics source configured."""
    out: dict[str, Scaling] = {}
    now = 0.0
    for key, pool in sorted(objects.pools.items()):
        auto = pool.spec.demand.autoscaling
        if auto is None or not auto.enabled:
            continue
        now = now or seconds(now_stamp)
        raw_status = objects.pool_raw[key].get("status") or {}
        prev = _previous(raw_status)
        settings = autoscale.Settings(
            floor_rps=pool.spec.demand.requests_per_second,
            tolerance=auto.tolerance_percent / 100.0,
            stabilization_s=float(auto.scale_down_stabilization_seconds),
        )
        reading = None if observed is None else observed.get(key)
        factors, samples = _learn(pool, prev, raw_status, reading, now)
        breaches = _breaches(pool, samples)
        placed = _placed(raw_status)
        pressure = _pressure(placed, samples, breaches)
        outcome = (
            None if observed is None else autoscale.recommend(settings, _state(prev), reading, now, pressure)
        )
        out[key] = Scaling(
            key,
            outcome,
            factors,
            samples,
            prev.demand_requests_per_second if prev and prev.last_evaluation_time else None,
            prev.metrics_problem if prev else None,
            breaches,
            pressure,
            None if reading is None else reading.sample_age_s,
            None if reading is None or reading.rps is None else reading.burst_rps,
            _startups(prev, placed, samples, reading, now),
            pool.spec.replicas is not None,
            _mix(pool, prev, reading, settings.tolerance),  # no reading: as planned (plan --live)
            tuple(
                {
                    "minInputTokens": r.min_in,
                    "maxInputTokens": r.max_in,
                    "minOutputTokens": r.min_out,
                    "maxOutputTokens": r.max_out,
                }
                for r in _ranges(pool)
            ),
        )
    return out
