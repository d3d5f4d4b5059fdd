"""The autoscaling policy (pure, clock injected): measured load and the last state -> the demand a
pool is planned for.

Owns ``recommend``: one evaluation of one pool.  Autoscaling produces *demand*; the global planner
still decides how many replicas go where under power and cost, so there is one decision-maker.
Its state (``State``) lives in the pool's status, so a restart or a new leader continues where the
last one stopped.  The rules:

- **Missing data is never zero.** No reading (Prometheus down, bad query, empty, stale, NaN): the
  demand is held at max(last planned demand, the static floor) — never lowered — with the problem
  reported.  Partial coverage (fewer series than Ready pods) may raise demand but never lowers it.
- **The static demand is a floor**: ``spec.demand.requestsPerSecond``.
- **Up at once** when the measured load over the long window exceeds the planned demand by more
  than the tolerance, or when the load over the short *burst* window (a step is seen within a few
  scrapes) exceeds it by the tolerance plus ``burst_sigmas`` standard deviations of a Poisson
  arrival count over that window (``sqrt(demand / window)`` req/s): a short window is noisy, and
  acting on its noise would ratchet the demand up and hold it for a stabilisation window.  The burst
  window is never used to scale down.
- **Up on latency**: a measured p95 above the SLO on every class that has a latency sample, on
  ``breaches_to_scale`` settled evaluations in a row (nothing pending, the last scaling older than
  the latency window), raises the demand by ``breach_step`` (never past ``max_latency_factor``
  times the measured load): what the load alone does not explain
  (a backlog, a model error not learnt yet) still gets capacity.  A breach on some classes only is
  those classes' problem — slower than planned (the correction factors' job) or sent more than
  their share by a capacity-blind router — and more demand would mostly buy more of them; it is
  reported (``SLOAtRisk``) and blocks scaling down, but raises nothing.
- **Down slowly**: only to the highest recommendation of the stabilisation window (HPA's rule; a
  scale-up's own demand is a recommendation too), at most halving per evaluation (a last step
  within the tolerance of that value lands on it, so a decay ends on the floor), and only after
  the consolidation check: no class breaching, saturated (a standing queue, a full KV cache) or
  still loading its model.
- **Within the tolerance** nothing changes.

Pending replicas count as capacity on the way: demand is measured arrivals, not latency, so
replicas still loading do not make the load rule ask for more, and the latency rule waits for them
(no cascade).  Steady model error is the correction factors' job (``core.correction``).
"""

from __future__ import annotations

import dataclasses
import enum
import math

from inferfleet.core.observed import MetricsProblem, Observed

__all__ = ["MAX_RECOMMENDATIONS", "Driver", "Outcome", "Pressure", "Settings", "Signal", "State", "recommend"]

MAX_RECOMMENDATIONS = 64  # the stabilisation window's memory, bounded (status size)


class Signal(enum.StrEnum):
    """What one evaluation did, as a fact (the event sentence is rendered at the edge)."""

    INITIAL = "Initial"  # the first measurement sets the demand
    SCALE_UP = "ScaleUp"
    SCALE_DOWN = "ScaleDown"
    STEADY = "Steady"  # within the tolerance
    STABILISING = "Stabilising"  # lower load, held by the stabilisation window
    CONSOLIDATION_BLOCKED = "ConsolidationBlocked"  # lower load, but a class breaches or saturates
    HELD = "Held"  # no usable reading: demand held


class Driver(enum.StrEnum):
    """What moved the demand (named in the event)."""

    LOAD = "load"  # the long-window load
    BURST = "burst"  # the short-window load
    LATENCY = "latency"  # p95 above the SLO on consecutive evaluations


@dataclasses.dataclass(frozen=True)
class Settings:
    floor_rps: float  # the static demand: never plan below it
    tolerance: float = 0.10
    stabilization_s: float = 300.0
    max_step_down: float = 0.5  # at most this fraction of the demand is removed per evaluation
    breaches_to_scale: int = 2  # settled evaluations in a row with a p95 breach before the latency rule
    breach_step: float = 1.25  # the latency rule's demand multiplier
    # the latency rule never plans for more than this many times the measured load: when more
    # replicas cannot help (a class slower than the SLO at any count, budgets that bind) it would
    # otherwise raise the demand at every evaluation, without end
    max_latency_factor: float = 4.0
    burst_sigmas: float = 2.0  # how far above the tolerance a burst reading must be to count


@dataclasses.dataclass(frozen=True)
class Pressure:
    """What the measurements say besides the load: the latency rule and the consolidation check."""

    breached: bool = False  # every class with a latency sample measures a p95 above the SLO
    at_risk: bool = False  # some class does
    saturated: bool = False  # some class has a standing queue or a nearly full KV cache
    pending: int = 0  # planned replicas not serving yet (loading the model)


@dataclasses.dataclass(frozen=True)
class State:
    """What the policy remembers between evaluations (persisted in status.autoscaling)."""

    demand_rps: float | None = None  # the demand last planned; None before the first reading
    recommendations: tuple[tuple[float, float], ...] = ()  # (unix seconds, req/s), oldest first
    missing_since: float | None = None
    last_scale: float | None = None
    breaches: int = 0  # settled evaluations in a row with a p95 breach


@dataclasses.dataclass(frozen=True)
class Outcome:
    demand_rps: float
    state: State
    signal: Signal
    measured_rps: float | None
    problem: MetricsProblem | None
    driver: Driver | None = None  # set when the demand went up or down


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


def _usable(x: float | None) -> bool:
    return x is not None and math.isfinite(x) and x >= 0


def recommend(
    settings: Settings,
    state: State,
    observed: Observed | None,
    now: float,
    pressure: Pressure | None = None,
) -> Outcome:
    """The demand to plan for now, and the state to persist."""
    pressure = pressure or Pressure()
    floor = max(settings.floor_rps, 0.0)
    last = state.demand_rps
    rps = None if observed is None else observed.rps
    problem = MetricsProblem.EMPTY if observed is None else observed.problem
    if rps is None or not _usable(rps):  # no usable reading
        held = max(last if last is not None else floor, floor)
        missing = state.missing_since if state.missing_since is not None else now
        kept = dataclasses.replace(state, demand_rps=held, missing_since=missing, breaches=0)
        return Outcome(held, kept, Signal.HELD, None, problem or MetricsProblem.EMPTY)
    assert observed is not None
    desired = max(rps, floor)
    burst = observed.burst_rps
    up = desired
    if burst is not None and _usable(burst) and last is not None and observed.burst_window_s > 0:
        noise = settings.burst_sigmas * math.sqrt(max(last, 1.0) / observed.burst_window_s)
        if burst > last * (1 + settings.tolerance) + noise:
            up = max(desired, burst)
    window_s = observed.window_s
    settled = pressure.pending == 0 and (state.last_scale is None or now - state.last_scale >= window_s)
    breaches = state.breaches + 1 if pressure.breached and settled else 0

    def outcome(demand: float, signal: Signal, driver: Driver | None = None, scaled: bool = False) -> Outcome:
        # a scale-up's demand is a recommendation too (the window then holds it); a scale-down's not
        went_up = scaled and signal is not Signal.SCALE_DOWN
        recs = _window(state.recommendations, now, settings.stabilization_s, max(desired, demand * went_up))
        st = dataclasses.replace(
            state,
            demand_rps=demand,
            recommendations=recs,
            missing_since=None,
            last_scale=now if scaled else state.last_scale,
            breaches=0 if scaled else breaches,
        )
        return Outcome(demand, st, signal, rps, problem, driver)

    if last is None:
        return outcome(up, Signal.INITIAL, Driver.BURST if up > desired else Driver.LOAD, scaled=True)
    if up > last * (1 + settings.tolerance) or (last == 0 and up > 0):
        return outcome(up, Signal.SCALE_UP, Driver.BURST if up > desired else Driver.LOAD, scaled=True)
    if breaches >= settings.breaches_to_scale:
        cap = max(desired, settings.floor_rps) * settings.max_latency_factor
        raised = min(max(last, desired) * settings.breach_step, cap)
        if raised > last * (1 + 1e-9):
            return outcome(raised, Signal.SCALE_UP, Driver.LATENCY, scaled=True)
    if desired >= last * (1 - settings.tolerance) or problem is MetricsProblem.PARTIAL:
        return outcome(last, Signal.STEADY)
    if pressure.breached or pressure.at_risk or pressure.saturated or pressure.pending:
        return outcome(last, Signal.CONSOLIDATION_BLOCKED)
    window = _window(state.recommendations, now, settings.stabilization_s, desired)
    stable = max(floor, *(r for _, r in window))  # the window's highest, never below the floor
    target = max(stable, last * (1 - settings.max_step_down))
    if target * (1 - settings.tolerance) <= stable:  # the last step lands on it, not inside the band
        target = stable
    if target >= last * (1 - settings.tolerance):
        return outcome(last, Signal.STABILISING)
    return outcome(target, Signal.SCALE_DOWN, Driver.LOAD, scaled=True)
