"""What one planning round decided: the writes, in the order the loop carries them out.

Owns ``Decision`` (reductions, deletions, increases, statuses, events, the domains whose increases
wait, ready replicas, problems for the log, the resync interval of the validated policy, and the
nodes' readiness and the scheduler's feedback the next round starts from),
``StatusWrite`` and ``Event`` (with a typed reason).
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from inferfleet.api.conditions import EventReason
from inferfleet.core import types as core
from inferfleet.core.energy import Energy
from inferfleet.reconcile.pinning import Pin, Unpin
from inferfleet.reconcile.ports import Obj
from inferfleet.reconcile.stuck import Stuck
from inferfleet.translate.readiness import Seen

__all__ = ["Decision", "Event", "StatusWrite"]

StatusKind = Literal["InferencePool", "AcceleratorClass", "FleetPolicy"]


@dataclasses.dataclass(frozen=True)
class StatusWrite:
    kind: StatusKind
    namespace: str | None
    name: str
    status: Obj


@dataclasses.dataclass(frozen=True)
class Event:
    obj: Obj
    type: Literal["Normal", "Warning"]
    reason: EventReason
    message: str


@dataclasses.dataclass
class Decision:
    plan: core.Plan | None = None
    reductions: list[Obj] = dataclasses.field(default_factory=list)  # applies that lower replicas
    deletes: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)  # (kind, namespace, name)
    # applies that add or keep replicas, biggest replicas first (they are the hardest to place)
    increases: list[Obj] = dataclasses.field(default_factory=list)
    statuses: list[StatusWrite] = dataclasses.field(default_factory=list)
    events: list[Event] = dataclasses.field(default_factory=list)
    problems: list[str] = dataclasses.field(default_factory=list)
    # power domains whose increases wait until removed pods are gone (re-plan shortly)
    deferred: list[str] = dataclasses.field(default_factory=list)
    ready: dict[tuple[str, str], int] = dataclasses.field(default_factory=dict)  # (pool key, class) -> ready
    resync_s: float | None = None  # the validated FleetPolicy's planning interval
    seen: dict[str, Seen] = dataclasses.field(default_factory=dict)  # nodes' readiness, for the next round
    # the scheduler's feedback per (pool key, class), for the next round
    stuck: dict[tuple[str, str], Stuck] = dataclasses.field(default_factory=dict)
    pins: list[Pin] = dataclasses.field(default_factory=list)  # gated replicas to pin to their nodes
    unpins: list[Unpin] = dataclasses.field(default_factory=list)  # pinned replicas to delete (stuck)
    assignment: dict[tuple[str, str], dict[str, int]] = dataclasses.field(default_factory=dict)
    # the plan's energy figures per pool key, and the fleet's (status and metrics)
    energy: dict[str, Energy] = dataclasses.field(default_factory=dict)
    fleet_energy: Energy | None = None

    @property
    def writes(self) -> int:
        return (
            len(self.reductions)
            + len(self.deletes)
            + len(self.increases)
            + len(self.statuses)
            + len(self.events)
            + len(self.pins)
            + len(self.unpins)
        )
