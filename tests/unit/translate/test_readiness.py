"""``readiness.advance``: the health the plan counts for each node, round after round (pure)."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from inferfleet.translate.readiness import Health, Rules, Seen, Verdict, advance, is_ready

RULES = Rules(grace_s=60, stabilization_s=120)


def stamp(t: float) -> str:
    return datetime.datetime.fromtimestamp(t, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def node(name: str, ready: bool | None, zone: str = "a", since: float | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"metadata": {"name": name, "labels": {"topology.kubernetes.io/zone": zone}}}
    if ready is not None:
        cond: dict[str, Any] = {"type": "Ready", "status": "True" if ready else "Unknown"}
        if since is not None:
            cond["lastTransitionTime"] = stamp(since)
        out["status"] = {"conditions": [cond]}
    return out


HEALTHY = [node(f"ok-{i}", True) for i in range(3)]


def run(rounds: list[tuple[float, bool, float | None]], rules: Rules = RULES) -> list[Health]:
    """Node "n" (beside three healthy ones) read at each (time, ready, lastTransitionTime)."""
    seen: dict[str, Seen] | None = None
    out = []
    for t, ready, since in rounds:
        verdict = advance(seen, [node("n", ready, since=since), *HEALTHY], t, rules)
        seen = verdict.seen
        out.append(verdict.health("n"))
    return out


H, L, R, OK = Health.HELD, Health.LOST, Health.RETURNING, Health.READY


@pytest.mark.parametrize(
    ("rounds", "expected"),
    [
        pytest.param(
            [(0, True, None), (10, False, 8), (20, True, None)], [OK, H, OK], id="a-blip-is-forgotten"
        ),
        pytest.param(
            [(0, True, None), (10, False, 8), (67, False, 8), (69, False, 8)],
            [OK, H, H, L],
            id="lost-after-grace",
        ),
        pytest.param(
            [
                (0, True, None),
                (10, False, 8),
                (70, False, 8),
                (80, True, None),
                (199, True, None),
                (200, True, None),
            ],
            [OK, H, L, R, R, OK],
            id="a-return-waits-for-the-window",
        ),
        pytest.param(
            [(0, True, None), (10, False, 8), (70, False, 8), (80, True, None), (90, False, 88)],
            [OK, H, L, R, L],
            id="a-returning-node-that-fails-again-stays-lost",
        ),
        pytest.param([(100, False, 10)], [L], id="first-read-after-a-long-outage-restart-is-lost-at-once"),
        pytest.param([(100, False, 90)], [H], id="first-read-in-a-fresh-outage-is-held"),
        pytest.param([(100, False, None)], [H], id="no-transition-time-counts-from-now"),
        pytest.param(
            [(0, True, None), (100, True, None), (130, False, 1), (150, False, 1)],
            [OK, OK, H, H],
            id="a-stale-transition-time-never-predates-the-last-ready-reading",
        ),
    ],
)
def test_health_over_rounds(rounds: list[tuple[float, bool, float | None]], expected: list[Health]) -> None:
    assert run(rounds) == expected


def test_zero_grace_and_window_act_at_once() -> None:
    rules = Rules(grace_s=0, stabilization_s=0)
    assert run([(0, True, None), (1, False, 1), (2, True, None)], rules) == [OK, L, OK]


def test_most_of_every_zone_not_ready_is_mass_and_nothing_is_newly_lost() -> None:
    nodes = [node(f"{z}{i}", i == 0, zone=z, since=0) for z in "ab" for i in range(3)]  # 2 of 3 down each
    verdict = advance(None, nodes, 1000, RULES)
    assert verdict.mass and (verdict.not_ready, verdict.total) == (4, 6)
    assert {verdict.health(n["metadata"]["name"]) for n in nodes} == {OK, H}


def test_one_zone_down_while_another_is_healthy_is_a_real_loss() -> None:
    nodes = [node(f"a{i}", False, zone="a", since=0) for i in range(3)] + [node("b0", True, zone="b")]
    verdict = advance(None, nodes, 1000, RULES)
    assert not verdict.mass
    assert [verdict.health(f"a{i}") for i in range(3)] == [L, L, L]


def test_a_node_lost_before_a_mass_outage_stays_lost_and_gone_nodes_are_forgotten() -> None:
    first = advance(None, [node("x", False, since=0), *HEALTHY], 100, RULES)
    assert first.health("x") is L
    down = [node(n["metadata"]["name"], False, since=100) for n in HEALTHY]
    second = advance(first.seen, [node("x", False, since=0), *down], 200, RULES)
    assert second.mass and second.health("x") is L and second.health("ok-0") is H
    third = advance(second.seen, HEALTHY, 300, RULES)
    assert "x" not in third.seen


def test_the_node_ready_rule() -> None:
    assert is_ready(node("new", None))  # a manifest about to be created
    assert is_ready(node("n", True)) and not is_ready(node("n", False))
    assert Verdict({}, RULES).health("unknown") is OK


def test_the_next_change_by_the_clock_is_when_a_grace_period_or_window_ends() -> None:
    first = advance(None, [node("n", True), node("m", True)], 0, RULES)
    assert first.due_s(0) is None  # nothing pending
    held = advance(first.seen, [node("n", False, since=10), node("m", True)], 15, RULES)
    assert held.due_s(15) == 55  # NotReady since 10, grace 60
    lost = advance(held.seen, [node("n", False, since=10), node("m", True)], 71, RULES)
    assert lost.health("n") is L and lost.due_s(71) is None
    back = advance(lost.seen, [node("n", True), node("m", True)], 80, RULES)
    assert back.due_s(80) == 120
