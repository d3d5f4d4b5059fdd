"""``kube.events``: client-go's event correlation as pure code on an injected clock (aggregation
within a window, a token bucket per object, bounded memory)."""

from __future__ import annotations

import time

import pytest

from inferfleet.kube.events import BURST, REFILL_S, WINDOW_S, Action, Correlator, EventKey, TokenBucket

POOL = ("InferencePool", "chat", "chat-70b", "u-1")
OTHER = ("InferencePool", "chat", "embed", "u-2")


def key(message: str = "placed 2 replicas", obj: tuple[str, str, str, str] = POOL, **kw: str) -> EventKey:
    return EventKey(obj, kw.get("type", "Normal"), kw.get("reason", "Placed"), message)


def tell(c: Correlator, k: EventKey, now: float, name: str = "ev") -> Action:
    """Tell ``k`` as the writer does: a CREATE is remembered under ``name``."""
    verdict = c.observe(k, now)
    if verdict.action is Action.CREATE:
        c.created(k, name, now)
    return verdict.action


def test_the_same_event_within_the_window_is_one_event_with_a_count() -> None:
    c = Correlator()
    assert tell(c, key(), 0.0, "ev-1") is Action.CREATE
    counts = []
    for i in range(1, 5):
        v = c.observe(key(), float(i))
        assert (v.action, v.name, v.first_seen) == (Action.PATCH, "ev-1", 0.0)
        counts.append(v.count)
    assert counts == [2, 3, 4, 5]
    assert len(c) == 1


@pytest.mark.parametrize(
    "other",
    [
        key("placed 3 replicas"),
        key(reason="Moved"),
        key(type="Warning"),
        key(obj=OTHER),
        key(obj=("InferencePool", "chat", "chat-70b", "u-recreated")),  # same name, a new object
    ],
    ids=["another-message", "another-reason", "another-type", "another-object", "same-name-new-uid"],
)
def test_any_difference_in_object_type_reason_or_message_is_another_event(other: EventKey) -> None:
    c = Correlator()
    tell(c, key(), 0.0, "a")
    assert tell(c, other, 1.0, "b") is Action.CREATE
    assert c.observe(key(), 2.0).name == "a" and c.observe(other, 2.0).name == "b"


def test_past_the_window_the_next_one_starts_a_new_event() -> None:
    c = Correlator(window_s=600.0)
    tell(c, key(), 0.0, "first")
    assert c.observe(key(), 600.0).action is Action.PATCH  # the window runs from the last time told
    assert c.observe(key(), 1200.0).action is Action.PATCH
    assert tell(c, key(), 1800.1, "second") is Action.CREATE
    v = c.observe(key(), 1801.0)
    assert (v.name, v.count) == ("second", 2)


def test_a_forgotten_event_is_created_anew() -> None:
    c = Correlator()
    tell(c, key(), 0.0, "expired")
    c.forget(key())  # the API server's TTL took it: the writer's PATCH met a 404
    assert tell(c, key(), 1.0, "fresh") is Action.CREATE
    assert c.observe(key(), 2.0).name == "fresh"


def test_an_object_gets_burst_events_then_one_per_refill_period() -> None:
    c = Correlator(burst=BURST, refill_s=REFILL_S)
    said = [tell(c, key(f"m{i}"), 0.0) for i in range(BURST + 5)]
    assert said.count(Action.CREATE) == BURST and said[BURST:] == [Action.DROP] * 5
    assert c.observe(key("late"), REFILL_S - 1).action is Action.DROP
    assert tell(c, key("late"), REFILL_S) is Action.CREATE  # one token back after one period
    assert c.observe(key("later"), REFILL_S + 1).action is Action.DROP
    # another object has its own bucket
    assert tell(c, key("m0", obj=OTHER), 0.0) is Action.CREATE


def test_repeats_take_tokens_too_as_in_client_go() -> None:
    c = Correlator(burst=3, refill_s=REFILL_S)
    actions = [tell(c, key(), float(i)) for i in range(5)]
    assert actions == [Action.CREATE, Action.PATCH, Action.PATCH, Action.DROP, Action.DROP]
    assert c.observe(key(), 6.0).action is Action.DROP  # a dropped repeat does not count


def test_the_bucket_never_holds_more_than_burst() -> None:
    b = TokenBucket.full(2, 10.0, 0.0)
    assert b.take(1e6) and b.take(1e6) and not b.take(1e6)


def test_memory_is_bounded_least_recently_told_forgotten_first() -> None:
    c = Correlator(max_entries=3, burst=100)
    for i in range(3):
        tell(c, key(f"m{i}"), float(i), f"ev-{i}")
    c.observe(key("m0"), 3.0)  # m0 told again: now the most recent
    tell(c, key("m3"), 4.0, "ev-3")
    assert len(c) == 3
    assert c.observe(key("m1"), 5.0).action is Action.CREATE  # the least recent went
    assert c.observe(key("m0"), 5.0).name == "ev-0"
    for i in range(10):
        c.observe(key(obj=("Pod", "ns", f"p{i}", "")), 6.0)
    assert c.buckets() == 3


@pytest.mark.parametrize(
    "kwargs",
    [{"window_s": 0}, {"burst": 0}, {"refill_s": -1}, {"max_entries": 0}],
    ids=["no-window", "no-burst", "negative-refill", "no-memory"],
)
def test_nonsense_settings_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="need window_s > 0"):
        Correlator(**kwargs)  # type: ignore[arg-type]


def test_the_defaults_are_client_gos() -> None:
    assert (WINDOW_S, BURST, REFILL_S) == (600.0, 25, 300.0)


def test_observing_takes_microseconds() -> None:
    c = Correlator()
    keys = [key(f"m{i % 50}", obj=("InferencePool", "ns", f"p{i % 200}", "")) for i in range(20_000)]
    start = time.perf_counter()
    for i, k in enumerate(keys):
        if c.observe(k, i * 1e-3).action is Action.CREATE:
            c.created(k, f"ev-{i}", i * 1e-3)
    per_call = (time.perf_counter() - start) / len(keys)
    assert per_call < 50e-6, f"{per_call * 1e6:.1f} us per event"
