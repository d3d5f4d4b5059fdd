"""The autoscaling policy (pure, clock injected): measured load and the last state -> the demand a
pool is planned for.

Owns ``recommend``: one evaluation of one pool.  Autoscaling produces *demand*; the global planner
still decides how many replicas go where under power and cost, so there is one decision-maker.
Its state (``State``) lives in the pool's status, so a restart or a new leader continues where the
last one stopped.  The rules:

- **Missing data is never zero.** No reading (Prometheus down, bad query, empty, stale, NaN): the
  demand is held at the last planned value (never lowered), with the problem reported.  Partial
  coverage (fewer series than Ready pods) may raise demand but never lowers it.
- **The static demand is a floor**: ``spec.demand.requestsPerSecond``.
- **Up at once** when the measured load exceeds the planned demand by more than the tolerance.
- **Down slowly**: only to the highest recommendation of the stabilisation window (HPA's rule), and
  at most halving per evaluation.
- **Within the tolerance** nothing changes.

Pending replicas need no special case here: demand is measured arrivals, not latency, so replicas
still loading the model do not make the policy ask for more (no cascade).  Latency above the model's
prediction is handled by the correction factors (``core.correction``), which make the planner plan
each class as slow as it is.
"""

from __future__ import annotations

import dataclasses
import enum
import math

from inferfleet.core.observed import MetricsProblem, Observed

__all__ = ["MAX_RECOMMENDATIONS", "Outcome", "Settings", "Signal", "State", "recommend"]

MAX_RECOMMENDATIONS = 64  # the stabilisation window's memory, bounded (status size)


class Signal(enum.StrEnum):
    """What one evaluation did, as a fact (the event sentence is rendered at the edge)."""

    INITIAL = "Initial"  # the first measurement sets the demand
    SCALE_UP = "ScaleUp"
    SCALE_DOWN = "ScaleDown"
    STEADY = "Steady"  # within the tolerance
    STABILISING = "Stabilising"  # lower load, held by the stabilisation window
    HELD = "Held"  # no usable reading: demand held


@dataclasses.dataclass(frozen=True)
class Settings:
    floor_rps: float  # the static demand: never plan below it
    tolerance: float = 0.10
    stabilization_s: float = 300.0
    max_step_down: float = 0.5  # at most this fraction of the demand is removed per evaluation


@dataclasses.dataclass(frozen=True)
class State:
    """What the policy remembers between evaluations (persisted in status.autoscaling)."""

    demand_rps: float | None = None  # the demand last planned; None before the first reading
    recommendations: tuple[tuple[float, float], ...] = ()  # (unix seconds, req/s), oldest first
    missing_since: float | None = None
    last_scale: float | None = None


@dataclasses.dataclass(frozen=True)
class Outcome:
    demand_rps: float
    state: State
    signal: Signal
    measured_rps: float | None
    problem: MetricsProblem | None


def _window(
    recs: tuple[tuple[float, float], ...], now: float, span: float, new: float
) -> tuple[tuple[float, float], ...]:
    """Recommendations within the window plus ``new``, bounded in number without ever losing a
    high one: when too many, the two oldest merge into one at the later time with the larger rate."""
    kept = [r for r in recs if now - r[0] <= span and r[0] <= now]
    kept.append((now, new))
    while len(kept) > MAX_RECOMMENDATIONS:
        (_, a), (t, b) = kept[0], kept[1]
        kept[:2] = [(t, max(a, b))]
    return tuple(kept)


def recommend(settings: Settings, state: State, observed: Observed | None, now: float) -> Outcome:
    """The demand to plan for now, and the state to persist."""
    floor = max(settings.floor_rps, 0.0)
    last = state.demand_rps
    rps = None if observed is None else observed.rps
    problem = MetricsProblem.EMPTY if observed is None else observed.problem
    if rps is None or not math.isfinite(rps) or rps < 0:  # no usable reading
        held = max(last if last is not None else floor, floor)
        missing = state.missing_since if state.missing_since is not None else now
        kept = dataclasses.replace(state, demand_rps=held, missing_since=missing)
        return Outcome(held, kept, Signal.HELD, None, problem or MetricsProblem.EMPTY)
    desired = max(rps, floor)
    recs = _window(state.recommendations, now, settings.stabilization_s, desired)
    base = dataclasses.replace(state, recommendations=recs, missing_since=None)
    if last is None:
        return Outcome(
            desired,
            dataclasses.replace(base, demand_rps=desired, last_scale=now),
            Signal.INITIAL,
            rps,
            problem,
        )
    if desired > last * (1 + settings.tolerance) or (last == 0 and desired > 0):
        return Outcome(
            desired,
            dataclasses.replace(base, demand_rps=desired, last_scale=now),
            Signal.SCALE_UP,
            rps,
            problem,
        )
    if desired >= last * (1 - settings.tolerance) or problem is MetricsProblem.PARTIAL:
        return Outcome(last, dataclasses.replace(base, demand_rps=last), Signal.STEADY, rps, problem)
    stable = max(r for _, r in recs)  # the highest recommendation of the window
    target = max(stable, last * (1 - settings.max_step_down), floor)
    if target >= last * (1 - settings.tolerance):
        return Outcome(last, dataclasses.replace(base, demand_rps=last), Signal.STABILISING, rps, problem)
    return Outcome(
        target, dataclasses.replace(base, demand_rps=target, last_scale=now), Signal.SCALE_DOWN, rps, problem
    )
