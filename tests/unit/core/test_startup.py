"""Learnt start-up time: measured from the round that planned the replicas to the first round that
sees them serve, to within half an evaluation interval."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from inferfleet.core.startup import Startup, observe


def _run(startup_s: float, every: float = 15.0, planned_at: float = 100.0, rounds: int = 10) -> Startup:
    """A replica planned at ``planned_at`` (a round), serving ``startup_s`` later; rounds every ``every``."""
    s, prev = Startup(planned=1), planned_at
    for i in range(1, rounds):
        now = planned_at + i * every
        s = observe(s, 2, 2 if now >= planned_at + startup_s else 1, prev, now)
        prev = now
    return s


@given(startup=st.floats(min_value=0.0, max_value=600.0), every=st.floats(min_value=1.0, max_value=60.0))
def test_the_sample_is_within_half_an_interval(startup: float, every: float) -> None:
    s = _run(startup, every, rounds=int(startup // every) + 3)
    assert s.samples == 1 and s.since is None and s.seconds is not None
    assert abs(s.seconds - startup) <= every / 2 + 1e-9


def test_samples_blend_and_a_steady_class_learns_nothing() -> None:
    s = Startup(seconds=10.0, samples=3, planned=3)
    assert observe(s, 3, 3, 100.0, 115.0) == s  # nothing pending, nothing in progress
    assert observe(s, 2, 2, 100.0, 115.0) == Startup(10.0, 3, None, 2)  # a scale-down teaches nothing
    started = observe(s, 4, 3, 100.0, 115.0)
    assert started.since == 100.0 and started.seconds == 10.0
    assert observe(started, 4, 3, 115.0, 130.0) == started  # still loading
    done = observe(started, 4, 4, 130.0, 145.0)
    assert done == Startup(seconds=(10.0 + 37.5) / 2, samples=4, since=None, planned=4)


def test_the_first_evaluation_ever_starts_at_now() -> None:
    assert observe(Startup(), 2, 0, None, 50.0).since == 50.0
