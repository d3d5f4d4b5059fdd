"""What status and events say about one pool's autoscaling this round (pure): the
``status.autoscaling`` block, the conditions ``MetricsAvailable`` and ``SLOAtRisk``, and events that
name the signal behind each demand change.

Owns rendering only; ``reconcile.autoscaling`` owns the evaluation these render.
"""

from __future__ import annotations

from typing import Any

from inferfleet.api.conditions import ConditionType, EventReason, Reason
from inferfleet.api.inferencepool import AutoscalingStatus
from inferfleet.core import autoscale, correction, mixfit, startup
from inferfleet.core.observed import Observed
from inferfleet.core.units import MILLI
from inferfleet.reconcile import status
from inferfleet.reconcile.autoscaling import Scaling, timestamp

__all__ = ["conditions", "events", "status_block"]


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value / MILLI, 2)


def _class_block(cls: str, s: Scaling) -> dict[str, Any]:
    f, sample = s.factors.get(cls, correction.Factor()), s.samples.get(cls)
    up = s.startups.get(cls, startup.Startup())
    return {
        "acceleratorClass": cls,
        "ttftP95Milliseconds": _ms(sample.ttft_p95_s) if sample else None,
        "tpotP95Milliseconds": _ms(sample.tpot_p95_s) if sample else None,
        "requests": round(sample.requests, 1) if sample else 0.0,
        "waiting": None if sample is None or sample.waiting is None else round(sample.waiting, 1),
        "kvCacheUsage": None if sample is None or sample.kv_usage is None else round(sample.kv_usage, 3),
        "ttftCorrection": round(f.ttft, 4),
        "tpotCorrection": round(f.tpot, 4),
        "updates": f.updates,
        "startupSeconds": None if up.seconds is None else round(up.seconds, 1),
        "startupSamples": up.samples,
        "startingSince": None if up.since is None else timestamp(up.since),
        "plannedReplicas": up.planned,
    }


def status_block(s: Scaling, now: float) -> dict[str, Any]:
    """``status.autoscaling`` (camelCase, as the API model serialises it)."""
    classes = [_class_block(cls, s) for cls in sorted(set(s.factors) | set(s.samples) | set(s.startups))]
    if s.outcome is None:
        block: dict[str, Any] = {
            "signal": "",
            "metricsProblem": str(Reason.NO_METRICS_SOURCE),
            "classes": classes,
        }
        return status.checked(AutoscalingStatus, block)
    o, st = s.outcome, s.outcome.state
    block = {
        "signal": "Pinned" if s.pinned else str(o.signal),
        "observedRequestsPerSecond": None if o.measured_rps is None else round(o.measured_rps, 3),
        "burstRequestsPerSecond": None if s.burst_rps is None else round(s.burst_rps, 3),
        "sampleAgeSeconds": None if s.sample_age_s is None else round(s.sample_age_s, 1),
        "consecutiveBreaches": st.breaches,
        "demandRequestsPerSecond": round(o.demand_rps, 3),
        "metricsProblem": None if o.problem is None else str(o.problem),
        "lastEvaluationTime": timestamp(now),
        "lastScaleTime": timestamp(st.last_scale) if st.last_scale is not None else None,
        "missingSince": timestamp(st.missing_since) if st.missing_since is not None else None,
        "recommendations": [
            {"time": timestamp(t), "requestsPerSecond": round(r, 3)} for t, r in st.recommendations
        ],
        "classes": classes,
    }
    if s.mix_shares is not None:
        block["requestMix"] = [
            {**edges, "share": round(share, 4)}
            for edges, share in zip(s.mix_edges, s.mix_shares, strict=True)
        ]
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
            f"measured {s.outcome.measured_rps or 0.0:.3g} req/s{_mix_note(s, observed)}",
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


def _mix_note(s: Scaling, observed: Observed | None) -> str:
    """Why a pool's request mix was not measured this round (empty when it was, or has none)."""
    if len(s.mix_edges) < 2 or observed is None:
        return ""
    planned = "as last measured" if s.mix_shares is not None else "by its weights"
    inputs, outputs = observed.input_lengths, observed.output_lengths
    if inputs is None or outputs is None:
        why = next(
            (d for d in observed.detail.split("; ") if d.startswith("request mix unknown")),
            "request mix unknown: no token-length histograms",
        )
    elif min(inputs.total, outputs.total) < mixfit.MIN_REQUESTS:
        why = f"request mix unknown: fewer than {mixfit.MIN_REQUESTS:g} requests in the window"
    else:
        return ""
    return f"; {why}; the mix is planned {planned}"


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
    if not s.pinned and o.signal in (
        autoscale.Signal.INITIAL,
        autoscale.Signal.SCALE_UP,
        autoscale.Signal.SCALE_DOWN,
    ):
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
