"""The autoscaling phase of a round (pure): measurements and each pool's last state -> the demand
and correction factors it is planned with, and what status and events say about it.

Owns reading the policy's state back from ``status.autoscaling`` (level-based: a restart or a new
leader continues), running ``core.autoscale.recommend`` and ``core.correction.update`` per pool,
and rendering the result as the ``status.autoscaling`` block, the conditions ``MetricsAvailable``
and ``SLOAtRisk``, and events that name the signal.  Pools without ``spec.demand.autoscaling`` (or
with it disabled, or pinned by ``spec.replicas``) are left out.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from inferfleet.api.conditions import ConditionType, EventReason, Reason
from inferfleet.api.inferencepool import AutoscalingStatus, InferencePool
from inferfleet.core import autoscale, correction
from inferfleet.core.observed import ClassSample, Observed
from inferfleet.core.units import MILLI
from inferfleet.reconcile import status
from inferfleet.reconcile.validate import Objects

__all__ = [
    "EVALUATION_S",
    "Scaling",
    "conditions",
    "evaluate",
    "events",
    "seconds",
    "status_block",
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


def _pressure(
    placed: Mapping[str, tuple[int, int]],
    samples: Mapping[str, ClassSample],
    breaches: tuple[tuple[str, str, float, float], ...],
) -> autoscale.Pressure:
    """Breach, saturation (a standing queue, a full KV cache) and replicas still loading: planned
    but not Ready, or (when the pool's metrics say which pods report) Ready but not reporting yet."""
    per_class = any(s.series for s in samples.values())
    pending = 0
    for cls, (planned, ready) in placed.items():
        serving = min(ready, samples[cls].series if cls in samples else 0) if per_class else ready
        pending += max(0, planned - serving)
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


def evaluate(objects: Objects, observed: Mapping[str, Observed] | None, now_stamp: str) -> dict[str, Scaling]:
    """Every autoscaled pool's demand and factors; ``observed`` None: no metrics source configured."""
    out: dict[str, Scaling] = {}
    now = 0.0
    for key, pool in sorted(objects.pools.items()):
        auto = pool.spec.demand.autoscaling
        if auto is None or not auto.enabled or pool.spec.replicas is not None:
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
        pressure = _pressure(_placed(raw_status), samples, breaches)
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
        )
    return out


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value / MILLI, 2)


def status_block(s: Scaling, now: float) -> dict[str, Any]:
    """``status.autoscaling`` (camelCase, as the API model serialises it)."""
    classes = [
        {
            "acceleratorClass": cls,
            "ttftP95Milliseconds": _ms(sample.ttft_p95_s) if sample else None,
            "tpotP95Milliseconds": _ms(sample.tpot_p95_s) if sample else None,
            "requests": round(sample.requests, 1) if sample else 0.0,
            "waiting": None if sample is None or sample.waiting is None else round(sample.waiting, 1),
            "kvCacheUsage": None if sample is None or sample.kv_usage is None else round(sample.kv_usage, 3),
            "ttftCorrection": round(f.ttft, 4),
            "tpotCorrection": round(f.tpot, 4),
            "updates": f.updates,
        }
        for cls in sorted(set(s.factors) | set(s.samples))
        for f, sample in [(s.factors.get(cls, correction.Factor()), s.samples.get(cls))]
    ]
    if s.outcome is None:
        block: dict[str, Any] = {
            "signal": "",
            "metricsProblem": str(Reason.NO_METRICS_SOURCE),
            "classes": classes,
        }
        return status.checked(AutoscalingStatus, block)
    o, st = s.outcome, s.outcome.state
    block = {
        "observedRequestsPerSecond": None if o.measured_rps is None else round(o.measured_rps, 3),
        "burstRequestsPerSecond": None if s.burst_rps is None else round(s.burst_rps, 3),
        "sampleAgeSeconds": None if s.sample_age_s is None else round(s.sample_age_s, 1),
        "consecutiveBreaches": st.breaches,
        "demandRequestsPerSecond": round(o.demand_rps, 3),
        "signal": str(o.signal),
        "metricsProblem": None if o.problem is None else str(o.problem),
        "lastEvaluationTime": timestamp(now),
        "lastScaleTime": timestamp(st.last_scale) if st.last_scale is not None else None,
        "missingSince": timestamp(st.missing_since) if st.missing_since is not None else None,
        "recommendations": [
            {"time": timestamp(t), "requestsPerSecond": round(r, 3)} for t, r in st.recommendations
        ],
        "classes": classes,
    }
    return status.checked(AutoscalingStatus, block)


def conditions(s: Scaling, observed: Observed | None, generation: int | None) -> list[dict[str, Any]]:
    """``MetricsAvailable`` and ``SLOAtRisk`` for an autoscaled pool."""
    if s.outcome is None:
        metrics = status.condition(
            ConditionType.METRICS_AVAILABLE,
            False,
            Reason.NO_METRICS_SOURCE,
            "autoscaling is on but the operator has no metrics source (--prometheus-url); "
            "the static demand is planned",
            generation,
        )
    elif s.outcome.problem is not None:
        held = f"demand held at {s.outcome.demand_rps:g} req/s"
        detail = observed.detail if observed is not None and observed.detail else "no usable reading"
        metrics = status.condition(
            ConditionType.METRICS_AVAILABLE, False, str(s.outcome.problem), f"{detail}; {held}", generation
        )
    else:
        metrics = status.condition(
            ConditionType.METRICS_AVAILABLE,
            True,
            Reason.METRICS_READ,
            f"measured {s.outcome.measured_rps or 0.0:.3g} req/s",
            generation,
        )
    if s.breaches:
        words = ", ".join(
            f"p95 {what} on {cls} {got / MILLI:.0f} ms > SLO {target / MILLI:.0f} ms"
            for cls, what, got, target in s.breaches
        )
        risk = status.condition(ConditionType.SLO_AT_RISK, True, Reason.SLO_BREACHED, words, generation)
    elif any(x.requests >= correction.MIN_REQUESTS for x in s.samples.values()):
        risk = status.condition(
            ConditionType.SLO_AT_RISK, False, Reason.WITHIN_SLO, "measured p95 within the SLO", generation
        )
    else:
        risk = status.condition(
            ConditionType.SLO_AT_RISK,
            False,
            Reason.NO_LATENCY_SAMPLE,
            "too few requests to measure p95",
            generation,
        )
    return [metrics, risk]


def _why(s: Scaling) -> str:
    """The signal behind a demand change, as words."""
    o = s.outcome
    assert o is not None
    measured = f"measured {o.measured_rps or 0.0:.3g} req/s"
    if o.driver is autoscale.Driver.BURST:
        return f"burst window {s.burst_rps or 0.0:.3g} req/s; {measured}"
    if o.driver is autoscale.Driver.LATENCY and s.breaches:
        cls, what, got, target = s.breaches[0]
        breach = f"p95 {what} on {cls} {got / MILLI:.0f} ms > SLO {target / MILLI:.0f} ms"
        return f"{breach} on consecutive evaluations; {measured}"
    return measured


def events(
    s: Scaling, observed: Observed | None, previous_risk: str | None
) -> list[tuple[str, EventReason, str]]:
    """(type, reason, message) of the events this evaluation deserves."""
    out: list[tuple[str, EventReason, str]] = []
    o = s.outcome
    if o is None:
        return out
    if o.signal in (autoscale.Signal.INITIAL, autoscale.Signal.SCALE_UP, autoscale.Signal.SCALE_DOWN):
        before = "unset" if s.previous_demand is None else f"{s.previous_demand:g}"
        out.append(
            (
                "Normal",
                EventReason.DEMAND_CHANGED,
                f"{o.signal}: demand {before} -> {o.demand_rps:g} req/s ({_why(s)})",
            )
        )
    if o.problem is not None and str(o.problem) != s.previous_problem:
        detail = observed.detail if observed is not None and observed.detail else "no usable reading"
        out.append(
            (
                "Warning",
                EventReason.METRICS_UNAVAILABLE,
                f"{o.problem}: {detail}; demand held at {o.demand_rps:g} req/s",
            )
        )
    if s.breaches and previous_risk != "True":
        cls, what, got, target = s.breaches[0]
        out.append(
            (
                "Warning",
                EventReason.SLO_AT_RISK,
                f"p95 {what} on {cls} {got / MILLI:.0f} ms exceeds the {target / MILLI:.0f} ms SLO",
            )
        )
    return out
