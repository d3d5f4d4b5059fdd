"""Node readiness as the plan counts it: a blip moves nothing, a loss moves replicas, a return waits.

Owns the Node-Ready rule (``is_ready``) and the rule between a node's Ready condition and whether
the planner may use it, with the memory it needs (``Seen`` per node, carried from round to round by
the caller):

- a node NotReady for less than the grace period is ``HELD``: its replicas stay and it still counts
  as capacity (after an API server freeze nodes read NotReady for seconds; moving then reloads every
  model for nothing);
- beyond the grace period it is ``LOST`` and its replicas are re-planned elsewhere;
- a lost node that is Ready again is ``RETURNING`` until it has stayed Ready for the stabilization
  window, then ``READY``; a returning node that fails again is lost at once (it flaps);
- **mass NotReady**: when at least ``MASS_FRACTION`` of the nodes of every zone are NotReady, the
  cause is the control plane (as the node-lifecycle controller reasons when every zone is
  disrupted), so no node is newly counted lost.

Time is the caller's (seconds).  A node that goes NotReady is taken as NotReady since its Ready
condition's ``lastTransitionTime`` (set by the node-lifecycle controller), but never since before
the operator last read it Ready; so a restarted operator neither forgets a long outage nor mistakes
an old one for new.  Ready nodes first seen are trusted.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from inferfleet.api.labels import ZONE

__all__ = ["MASS_FRACTION", "Health", "Rules", "Seen", "Verdict", "advance", "is_ready"]

MASS_FRACTION = 0.55  # the node-lifecycle controller's default unhealthy-zone threshold


class Health(enum.StrEnum):
    READY = "Ready"
    HELD = "Held"  # NotReady within the grace period (or during mass NotReady): still counted
    LOST = "Lost"  # NotReady beyond the grace period: not counted
    RETURNING = "Returning"  # Ready again after a loss, within the stabilization window: not counted

    @property
    def usable(self) -> bool:
        return self in (Health.READY, Health.HELD)


@dataclasses.dataclass(frozen=True)
class Seen:
    """What the operator remembers of one node: Ready or not, since when, its health, and when it
    was last read (a change is dated by the node's condition, never before the last reading)."""

    ready: bool
    since: float
    health: Health
    read: float


@dataclasses.dataclass(frozen=True)
class Rules:
    grace_s: float = 60.0
    stabilization_s: float = 120.0


@dataclasses.dataclass(frozen=True)
class Verdict:
    """Every node's health this round, and whether the fleet reads as a control-plane problem."""

    seen: dict[str, Seen]
    rules: Rules
    mass: bool = False
    not_ready: int = 0
    total: int = 0

    def due_s(self, now: float) -> float | None:
        """Seconds until the next node's health changes by the clock alone (a grace period or a
        stabilization window ends); None when none will."""
        ends = [
            s.since + (self.rules.grace_s if s.health is Health.HELD else self.rules.stabilization_s)
            for s in self.seen.values()
            if (s.health is Health.HELD and not self.mass) or s.health is Health.RETURNING
        ]
        return max(min(ends) - now, 0.0) if ends else None

    def health(self, name: str) -> Health:
        found = self.seen.get(name)
        return found.health if found is not None else Health.READY


def _ready_condition(node: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for c in (node.get("status") or {}).get("conditions") or ():
        if c.get("type") == "Ready":
            return c  # type: ignore[no-any-return]
    return None


def is_ready(node: Mapping[str, Any]) -> bool:
    """The Node-Ready rule: a Ready condition with status True; a node with no conditions yet (a
    manifest about to be created) counts as Ready."""
    if not (node.get("status") or {}).get("conditions"):
        return True
    cond = _ready_condition(node)
    return cond is not None and cond.get("status") == "True"


def _transition(node: Mapping[str, Any], now: float) -> float:
    """When the Ready condition last changed, by the API (never later than now); unknown -> now."""
    stamp = (_ready_condition(node) or {}).get("lastTransitionTime")
    try:
        t = datetime.datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return now
    return min(t, now)


def _mass(nodes: Sequence[Mapping[str, Any]], ready: Mapping[str, bool]) -> bool:
    """At least MASS_FRACTION of the nodes of every zone NotReady (nodes without a zone: one zone)."""
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for node in nodes:
        meta = node.get("metadata") or {}
        zone = str((meta.get("labels") or {}).get(ZONE, ""))
        totals[zone][0] += 1
        totals[zone][1] += 0 if ready[str(meta.get("name", ""))] else 1
    return bool(totals) and all(bad >= MASS_FRACTION * total for total, bad in totals.values())


def _next(
    prev: Seen | None, ready: bool, node: Mapping[str, Any], now: float, rules: Rules, mass: bool
) -> Seen:
    if ready:
        if prev is None:
            return Seen(True, now, Health.READY, now)
        if not prev.ready:  # back: a blip is forgotten, a loss waits for the window
            lost = prev.health is Health.LOST and rules.stabilization_s > 0
            return Seen(True, now, Health.RETURNING if lost else Health.READY, now)
        settled = prev.health is Health.RETURNING and now - prev.since >= rules.stabilization_s
        return Seen(True, prev.since, Health.READY if settled else prev.health, now)
    if prev is None or prev.ready:
        since = max(_transition(node, now), prev.read if prev is not None else -math.inf)
        # a returning node that fails again flaps: it stays lost
        flapping = prev is not None and prev.health is Health.RETURNING
        overdue = now - since >= rules.grace_s and not mass
        return Seen(False, since, Health.LOST if flapping or overdue else Health.HELD, now)
    overdue = now - prev.since >= rules.grace_s and not mass
    health = Health.LOST if prev.health is Health.LOST or overdue else Health.HELD
    return Seen(False, prev.since, health, now)


def advance(
    prev: Mapping[str, Seen] | None, nodes: Sequence[Mapping[str, Any]], now: float, rules: Rules
) -> Verdict:
    """Every node's health now, from the last round's memory (None: first round) and the nodes as
    the API shows them; nodes that are gone are forgotten."""
    ready = {str((n.get("metadata") or {}).get("name", "")): is_ready(n) for n in nodes}
    mass = _mass(nodes, ready)
    seen = {
        name: _next((prev or {}).get(name), ready[name], node, now, rules, mass)
        for node in nodes
        if (name := str((node.get("metadata") or {}).get("name", "")))
    }
    return Verdict(seen, rules, mass, sum(1 for r in ready.values() if not r), len(ready))
