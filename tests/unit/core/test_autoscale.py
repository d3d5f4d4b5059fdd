"""The autoscaling policy: properties (never lower on missing data, monotone in load, never below
the floor, stabilisation) and the narrative cases."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inferfleet.core.autoscale import (
    MAX_RECOMMENDATIONS,
    Driver,
    Pressure,
    Settings,
    Signal,
    State,
    recommend,
)
from inferfleet.core.observed import MetricsProblem, Observed

S = Settings(floor_rps=2.0, tolerance=0.1, stabilization_s=300.0)
rates = st.floats(min_value=0.0, max_value=1e4, allow_nan=False)
times = st.floats(min_value=0.0, max_value=1e6, allow_nan=False)
problems = st.sampled_from([p for p in MetricsProblem if p is not MetricsProblem.PARTIAL])


def seen(rps: float | None, at: float = 0.0, problem: MetricsProblem | None = None) -> Observed:
    return Observed(at=at, rps=rps, problem=problem)


def run(loads: list[float], step: float = 15.0, s: Settings = S) -> list[float]:
    state, out = State(), []
    for i, rps in enumerate(loads):
        o = recommend(s, state, seen(rps), i * step)
        state = o.state
        out.append(o.demand_rps)
    return out


@given(last=rates, problem=problems, now=times)
def test_missing_data_never_lowers_demand(last: float, problem: MetricsProblem, now: float) -> None:
    state = State(demand_rps=last, recommendations=((now - 1, last),))
    for reading in (seen(None, now, problem), None, seen(float("nan"), now), seen(-3.0, now)):
        out = recommend(S, state, reading, now)
        assert out.demand_rps >= last
        assert out.signal is Signal.HELD and out.problem is not None
        assert out.state.missing_since == now


@given(last=rates, low=rates, high=rates, now=times)
def test_more_load_never_means_less_demand(last: float, low: float, high: float, now: float) -> None:
    low, high = min(low, high), max(low, high)
    state = State(demand_rps=last, recommendations=((now - 10, last),))
    assert (
        recommend(S, state, seen(high, now), now).demand_rps
        >= recommend(S, state, seen(low, now), now).demand_rps
    )


@settings(max_examples=50)
@given(st.lists(rates, min_size=1, max_size=60))
def test_demand_is_never_below_the_floor(loads: list[float]) -> None:
    assert all(d >= S.floor_rps for d in run(loads))


@settings(max_examples=50)
@given(high=st.floats(min_value=10.0, max_value=1e3), low_frac=st.floats(min_value=0.0, max_value=0.5))
def test_no_scale_down_inside_the_stabilisation_window(high: float, low_frac: float) -> None:
    step = 15.0
    n_window = int(S.stabilization_s // step)
    demands = run([high] + [high * low_frac] * (n_window + 40), step)
    assert all(d == high for d in demands[: n_window + 1])  # the window still holds the peak
    target = max(high * low_frac, S.floor_rps)  # then it decays to the new load, within the tolerance
    assert target <= demands[-1] <= target / (1 - S.tolerance)
    # at most halving per evaluation on the way down (a last step within the tolerance of the
    # target lands on it)
    assert all(b >= a * 0.5 * (1 - S.tolerance) - 1e-9 for a, b in itertools.pairwise(demands))


def test_a_3x_step_is_answered_in_one_evaluation() -> None:
    assert run([10.0, 30.0]) == [10.0, 30.0]


def test_noise_within_the_tolerance_changes_nothing() -> None:
    demands = run([10.0, 10.5, 9.6, 10.9, 9.2])
    assert demands == [10.0] * 5


def test_partial_coverage_may_scale_up_but_never_down() -> None:
    state = State(demand_rps=10.0, recommendations=((0.0, 10.0),))
    up = recommend(S, state, seen(20.0, 400.0, MetricsProblem.PARTIAL), 400.0)
    down = recommend(S, state, seen(3.0, 400.0, MetricsProblem.PARTIAL), 400.0)
    assert up.demand_rps == 20.0 and up.signal is Signal.SCALE_UP
    assert down.demand_rps == 10.0 and down.signal is Signal.STEADY


def test_the_first_reading_sets_the_demand_and_a_restart_continues_from_status() -> None:
    first = recommend(S, State(), seen(8.0), 0.0)
    assert (first.signal, first.demand_rps) == (Signal.INITIAL, 8.0)
    # a new leader reads the same state back from status: the window still holds 8 req/s
    resumed = recommend(S, first.state, seen(1.0, 30.0), 30.0)
    assert resumed.demand_rps == 8.0 and resumed.signal is Signal.STABILISING


def test_the_window_stays_bounded_and_keeps_its_peak() -> None:
    s = Settings(floor_rps=0.0, stabilization_s=86_400.0)
    state = State()
    for i in range(500):
        state = recommend(s, state, seen(100.0 if i == 3 else 1.0, float(i)), float(i)).state
    assert len(state.recommendations) <= MAX_RECOMMENDATIONS
    assert max(r for _, r in state.recommendations) == 100.0


# -- the burst window, the latency rule and the consolidation check ------------------------------
def burst(rps: float, short: float, at: float = 0.0) -> Observed:
    return Observed(at=at, rps=rps, burst_rps=short, window_s=120.0)


UP = State(demand_rps=10.0, recommendations=((0.0, 10.0),), last_scale=0.0)


def test_the_burst_window_scales_up_before_the_long_window_fills() -> None:
    o = recommend(S, UP, burst(11.0, 30.0, 15.0), 15.0)  # long window +10%, burst window 3x
    assert (o.signal, o.driver, o.demand_rps) == (Signal.SCALE_UP, Driver.BURST, 30.0)
    assert max(r for _, r in o.state.recommendations) == 30.0  # held by the window like any scale-up


@given(long=rates, short=rates, now=st.floats(min_value=1.0, max_value=1e5))
def test_the_burst_window_never_lowers_demand(long: float, short: float, now: float) -> None:
    with_burst = recommend(S, UP, burst(long, short, now), now)
    without = recommend(S, UP, seen(long, now), now)
    assert with_burst.demand_rps >= without.demand_rps


def _breach(state: State, now: float, pending: int = 0, rps: float = 10.0) -> tuple[float, State, Signal]:
    o = recommend(S, state, burst(rps, rps, now), now, Pressure(breached=True, pending=pending))
    return o.demand_rps, o.state, o.signal


def test_a_breach_on_two_settled_evaluations_raises_demand_by_the_step() -> None:
    d1, st1, sig1 = _breach(UP, 200.0)
    assert (d1, sig1, st1.breaches) == (10.0, Signal.STEADY, 1)
    d2, st2, sig2 = _breach(st1, 215.0)
    assert (d2, sig2, st2.breaches) == (10.0 * S.breach_step, Signal.SCALE_UP, 0)
    assert st2.last_scale == 215.0
    d3, st3, _ = _breach(st2, 230.0)  # the window still holds the time before: not counted yet
    assert (d3, st3.breaches) == (d2, 0)


def test_breaches_while_replicas_load_or_inside_the_window_are_not_counted() -> None:
    state = UP
    for t in (15.0, 30.0, 45.0, 60.0):  # within 120 s of the last scaling
        _, state, sig = _breach(state, t)
        assert sig is Signal.STEADY and state.breaches == 0
    for t in (200.0, 215.0, 230.0):  # settled, but a replica is still loading: no cascade
        _, state, sig = _breach(state, t, pending=1)
        assert sig is Signal.STEADY and state.breaches == 0


def test_a_breach_between_evaluations_resets_the_count() -> None:
    _, st1, _ = _breach(UP, 200.0)
    calm = recommend(S, st1, burst(10.0, 10.0, 215.0), 215.0, Pressure())
    assert calm.state.breaches == 0
    _, st3, sig = _breach(calm.state, 230.0)
    assert sig is Signal.STEADY and st3.breaches == 1


@pytest.mark.parametrize(
    "pressure",
    [Pressure(breached=True), Pressure(at_risk=True), Pressure(saturated=True), Pressure(pending=2)],
    ids=str,
)
def test_the_consolidation_check_blocks_a_scale_down(pressure: Pressure) -> None:
    old = State(demand_rps=20.0, recommendations=((0.0, 20.0),), last_scale=0.0)
    o = recommend(S, old, burst(2.0, 2.0, 1000.0), 1000.0, pressure)  # window long passed
    assert (o.signal, o.demand_rps) == (Signal.CONSOLIDATION_BLOCKED, 20.0)
    free = recommend(S, old, burst(2.0, 2.0, 1000.0), 1000.0, Pressure())
    assert (free.signal, free.demand_rps) == (Signal.SCALE_DOWN, 10.0)


def test_the_latency_rule_s_demand_is_held_by_the_stabilisation_window() -> None:
    _, st1, _ = _breach(UP, 200.0)
    raised, st2, _ = _breach(st1, 215.0)
    after = recommend(S, st2, burst(10.0, 10.0, 230.0), 230.0, Pressure())  # the breach is over
    assert (after.signal, after.demand_rps) == (Signal.STABILISING, raised)


def test_a_breach_on_some_classes_only_raises_nothing() -> None:
    state = UP
    for t in (200.0, 215.0, 230.0, 245.0):
        o = recommend(S, state, burst(10.0, 10.0, t), t, Pressure(at_risk=True))
        state = o.state
        assert (o.signal, o.demand_rps, state.breaches) == (Signal.STEADY, 10.0, 0)


@given(peak=st.floats(min_value=2.0 / (1 - 0.1) + 1e-6, max_value=1e4))
def test_a_decay_ends_exactly_on_the_floor(peak: float) -> None:
    """Halving steps never leave the demand stuck inside the tolerance band above the floor (a
    peak already within the band of the floor is noise, and stays)."""
    state = State(demand_rps=peak, recommendations=((0.0, peak),), last_scale=0.0)
    for i in range(40):
        now = 1000.0 + 15.0 * i  # the window (300 s) holds nothing higher any more
        state = recommend(S, state, seen(0.0, now), now).state
    assert state.demand_rps == S.floor_rps


def test_a_breach_that_more_replicas_cannot_mend_raises_demand_no_further_than_the_cap() -> None:
    # a class slower than the SLO at any replica count breaches forever (found by the soak: the
    # demand grew 214 -> 2.59 million req/s in 28 minutes at ~200 req/s measured)
    state, now, demands = UP, 200.0, []
    for _ in range(200):
        demand, state, _ = _breach(state, now)
        demands.append(demand)
        now += 1_000.0  # every evaluation settled and outside the latency window
    assert max(demands) == 10.0 * S.max_latency_factor
    assert demands == sorted(demands)  # it rises to the cap and stays, never past it
