"""Replicas the scheduler cannot place, remembered across rounds, and the holds that re-plan them
elsewhere (pure; the clock is passed in).

Owns the feedback path from the scheduler to the plan.  A (pool, class) whose replicas have been
``Unschedulable`` (the scheduler's PodScheduled condition, e.g. CPU or memory no node has) for
``Rules.replan_after_s`` is *held*: its option is capped at the replicas that did schedule there
(``Hold.cap``; 0 when none did), so the plan counts devices and watts only for those and places
the rest of the pool elsewhere (the FleetPolicy's ``spec.planning.unschedulableReplanSeconds`` and
``unschedulableHoldSeconds`` set the bound and the hold).  Damped, so nothing flaps:

- an episode survives the gaps the pinning makes (a stuck pinned replica is deleted after
  ``pinning.PIN_TIMEOUT_S`` and its replacement is stuck again seconds later): it ends only after
  ``Rules.gap_s`` with no stuck replica;
- a hold lasts ``Rules.hold_s``, doubled for each hold before it (up to ``Rules.max_hold_s``); a
  (pool, class) held before and stuck again within ``hold_s`` of its release counts as a repeat;
- a hold ends at once when the pool or the class changes (a new ``metadata.generation``: the user
  fixed the template or the class), and the repeat count starts again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

__all__ = ["Hold", "Rules", "Stuck", "Verdict", "advance"]

Key = tuple[str, str]  # ("namespace/pool", class)
Generations = tuple[object, object]  # (pool, class) metadata.generation


@dataclasses.dataclass(frozen=True)
class Rules:
    replan_after_s: float = 120.0  # stuck this long: re-planned elsewhere (two pin timeouts)
    gap_s: float = 90.0  # no stuck replica for this long: the episode is over
    hold_s: float = 600.0  # the first hold; each repeat doubles it
    max_hold_s: float = 3600.0


@dataclasses.dataclass(frozen=True)
class Hold:
    """An option capped until ``until`` (epoch seconds) at ``cap`` replicas."""

    cap: int
    until: float
    stuck: int  # replicas the scheduler could not place when the hold began
    for_s: float  # how long they had been stuck
    message: str  # the scheduler's words

    def words(self) -> str:
        return (
            f"{self.stuck} replica(s) could not be scheduled for {self.for_s:.0f} s "
            f"({self.message}); held at {self.cap} there"
        )


@dataclasses.dataclass(frozen=True)
class Stuck:
    """What the rounds so far saw of one (pool, class)."""

    since: float | None  # the current episode's start (None: none running)
    clear: float | None  # the first round of the episode that saw no stuck replica (None: stuck)
    message: str
    pending: int
    generations: Generations
    hold: Hold | None = None
    holds: int = 0  # holds so far (each doubles the next)
    released: float | None = None  # when the last hold ended


@dataclasses.dataclass(frozen=True)
class Verdict:
    state: dict[Key, Stuck]
    started: tuple[Key, ...]  # holds that began this round (said once, as an event)
    replan_after_s: float = Rules.replan_after_s

    def caps(self) -> dict[str, dict[str, tuple[int, str]]]:
        """Pool key -> class -> (replicas at most, why) for every option held now."""
        out: dict[str, dict[str, tuple[int, str]]] = {}
        for (pool, cls), s in sorted(self.state.items()):
            if s.hold is not None:
                out.setdefault(pool, {})[cls] = (s.hold.cap, s.hold.words())
        return out

    def due_s(self, now: float) -> float | None:
        """Seconds until the next round that must look: a stuck episode reaching the bound (it is
        then held), or a hold ending (the option is offered again)."""
        ends = [s.hold.until for s in self.state.values() if s.hold is not None]
        ends += [s.since + self.replan_after_s for s in self.state.values() if s.since is not None]
        return max(min(ends) - now, 0.0) if ends else None


def advance(
    prev: Mapping[Key, Stuck] | None,
    unschedulable: Mapping[Key, tuple[int, str]],
    bound: Mapping[Key, int],
    generations: Mapping[Key, Generations],
    now: float,
    rules: Rules = Rules(),
) -> Verdict:
    """This round's memory: ``unschedulable`` (key -> stuck replicas, the scheduler's message),
    ``bound`` (key -> replicas the scheduler did place), ``generations`` (key -> (pool, class)
    generation) and ``now`` in epoch seconds."""
    state: dict[Key, Stuck] = {}
    started: list[Key] = []
    for key in sorted(set(prev or {}) | set(unschedulable)):
        before = (prev or {}).get(key)
        count, message = unschedulable.get(key, (0, ""))
        s = _step(before, count, message, generations.get(key, (None, None)), now, rules)
        if s.hold is None and s.since is not None and count > 0 and now - s.since >= rules.replan_after_s:
            hold_for = min(rules.hold_s * 2**s.holds, rules.max_hold_s)
            hold = Hold(bound.get(key, 0), now + hold_for, s.pending, now - s.since, s.message)
            s = dataclasses.replace(s, since=None, hold=hold, holds=s.holds + 1)
            started.append(key)
        if not _forgotten(s, now, rules):
            state[key] = s
    return Verdict(state, tuple(started), rules.replan_after_s)


def _step(
    before: Stuck | None, count: int, message: str, gens: Generations, now: float, rules: Rules
) -> Stuck:
    """One key one round on: the episode, the hold's end, the generation reset."""
    s = before or Stuck(None, None, message, count, gens)
    if s.generations != gens:  # the user changed the pool or the class: start afresh
        s = Stuck(None, None, s.message, s.pending, gens)
    if s.hold is not None and now >= s.hold.until:
        s = dataclasses.replace(s, hold=None, released=now, since=None, clear=None)
    if count > 0:
        over = s.since is None or (s.clear is not None and now - s.clear > rules.gap_s)
        since = None if s.hold is not None else (now if over else s.since)
        return dataclasses.replace(s, since=since, clear=None, message=message, pending=count)
    if s.since is None:
        return s
    clear = now if s.clear is None else s.clear
    if now - clear > rules.gap_s:  # the episode is over
        return dataclasses.replace(s, since=None, clear=None)
    return dataclasses.replace(s, clear=clear)


def _forgotten(s: Stuck, now: float, rules: Rules) -> bool:
    """Nothing to remember: no hold, no episode, and no recent release to count a repeat against."""
    recent = s.released is not None and now - s.released < rules.hold_s
    return s.hold is None and s.since is None and not recent
