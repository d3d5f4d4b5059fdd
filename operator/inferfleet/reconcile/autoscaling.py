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
    )


def _learn(
    prev: AutoscalingStatus | None, raw_status: Mapping[str, Any], observed: Observed | None
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
        outcome = None if observed is None else autoscale.recommend(settings, _state(prev), reading, now)
        factors, samples = _learn(prev, raw_status, reading)
        out[key] = Scaling(
            key,
            outcome,
            factors,
            samples,
            prev.demand_requests_per_second if prev and prev.last_evaluation_time else None,
            prev.metrics_problem if prev else None,
            _breaches(pool, samples),
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
                f"{o.signal}: demand {before} -> {o.demand_rps:g} req/s "
                f"(measured {o.measured_rps or 0.0:.3g} req/s)",
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
