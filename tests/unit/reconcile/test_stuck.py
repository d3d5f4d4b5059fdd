"""The scheduler's feedback (``reconcile/stuck.py``): replicas unschedulable too long are held off
their class, damped so that nothing flaps; microseconds, the clock passed in."""

from __future__ import annotations

from collections.abc import Mapping

from inferfleet.reconcile.stuck import Rules, Stuck, Verdict, advance

KEY = ("chat/chat-70b", "h100")
WHY = "0/4 nodes are available: 4 Insufficient cpu."
RULES = Rules(replan_after_s=120, gap_s=90, hold_s=600, max_hold_s=1800)
GENS = {KEY: (1, 1)}


def run(
    rounds: list[tuple[float, int]],
    bound: int = 0,
    gens: Mapping[tuple[str, str], tuple[object, object]] = GENS,
    start: Mapping[tuple[str, str], Stuck] | None = None,
) -> list[Verdict]:
    """Each round (time, stuck replicas) from ``start``; every verdict."""
    state = start
    out = []
    for t, n in rounds:
        v = advance(state, {KEY: (n, WHY)} if n else {}, {KEY: bound}, gens, t, RULES)
        out.append(v)
        state = v.state
    return out


def test_stuck_for_less_than_the_bound_is_only_remembered_and_a_round_is_due_at_the_bound() -> None:
    v = run([(0, 2), (60, 2), (100, 2)])[-1]
    assert v.caps() == {} and not v.started
    assert v.state[KEY].since == 0
    assert v.due_s(100) == 20  # the round that holds it comes when the bound is reached


def test_stuck_past_the_bound_is_held_at_what_did_schedule_and_said_once() -> None:
    verdicts = run([(0, 2), (60, 2), (120, 2), (180, 2)], bound=3)
    assert [v.started for v in verdicts] == [(), (), (KEY,), ()]
    caps = verdicts[2].caps()
    assert caps["chat/chat-70b"]["h100"][0] == 3
    assert "2 replica(s) could not be scheduled for 120 s" in caps["chat/chat-70b"]["h100"][1]
    assert WHY in caps["chat/chat-70b"]["h100"][1]
    assert verdicts[3].caps() == caps  # the words do not change while it holds: no status churn
    assert verdicts[2].due_s(120) == 600


def test_the_gaps_the_pinning_makes_do_not_end_an_episode() -> None:
    # a stuck pinned replica is deleted after 60 s; its replacement is stuck again seconds later
    verdicts = run([(0, 1), (55, 1), (62, 0), (70, 1), (125, 1)])
    assert verdicts[-1].started == (KEY,)


def test_an_episode_ends_after_the_gap_and_the_next_starts_afresh() -> None:
    verdicts = run([(0, 1), (100, 1), (200, 0), (300, 1), (400, 1)])
    assert all(not v.started for v in verdicts)
    assert verdicts[-1].state[KEY].since == 300


def test_a_hold_ends_after_its_time_then_a_repeat_holds_twice_as_long() -> None:
    verdicts = run([(0, 1), (120, 1), (719, 0), (720, 0), (730, 1), (850, 1)])
    assert verdicts[2].caps() and not verdicts[3].caps()  # released at 720
    assert verdicts[-1].started == (KEY,)
    assert verdicts[-1].due_s(850) == 1200  # the second hold: 2 x 600


def test_holds_never_grow_past_the_maximum() -> None:
    t, rounds = 0.0, []
    for _ in range(4):
        rounds += [(t, 1), (t + 120, 1)]
        t += 120 + 2000
        rounds.append((t - 1, 0))
    verdicts = run(rounds)
    held = [v.due_s(r[0]) for v, r in zip(verdicts, rounds, strict=True) if v.started]
    assert held == [600, 1200, 1800, 1800]


def test_a_class_clear_long_after_its_hold_is_forgotten_and_starts_again_at_the_first_hold() -> None:
    verdicts = run([(0, 1), (120, 1), (720, 0), (1400, 0), (1500, 1), (1620, 1)])
    assert KEY not in verdicts[3].state
    assert verdicts[-1].due_s(1620) == 600


def test_a_changed_pool_or_class_ends_the_hold_at_once() -> None:
    held = run([(0, 1), (120, 1)])[-1].state
    v = advance(held, {}, {KEY: 0}, {KEY: (2, 1)}, 130, RULES)
    assert v.caps() == {}
    assert v.state.get(KEY) is None or v.state[KEY].holds == 0


def test_keys_are_independent() -> None:
    other = ("chat/chat-70b", "mi300x")
    gens = {KEY: (1, 1), other: (1, 1)}
    state = None
    for t in (0, 60, 120):
        v = advance(state, {KEY: (1, WHY)}, {}, gens, t, RULES)
        state = v.state
    v = advance(state, {other: (1, WHY)}, {}, gens, 130, RULES)
    assert set(v.caps()["chat/chat-70b"]) == {"h100"}
