"""Break-even points of a one-axis sweep: per class, the axis value where the plan starts (or stops)
using it, and where it starts (or stops) carrying the majority of a pool's load.

Owns the states a point is judged by (``uses``: the plan has a replica on the class; ``majority``:
the class holds more than half of a pool's planned capacity), finding where they flip between
adjacent sweep points, and bisecting each flip on the axis (geometrically on a log axis) down to
``REL_TOL`` (log axes: the two sides within 2% of each other) or ``LIN_TOL`` (0.5%) of the range
(linear axes).  Each probe is a full plan through the sweep's planner, so the two plans a break-even
point names, just below and just above it, are real plans that differ in that state; the binding
constraints it reports are those of the plan just above it, as typed values (the report words them).
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Callable

from inferfleet.core import types as core
from inferfleet.plan.sweep import Planner, Point, Sweep

__all__ = ["LIN_TOL", "REL_TOL", "BreakEven", "BreakEvenKind", "bisect", "find", "majority", "uses"]

REL_TOL = 0.02
LIN_TOL = 0.005
MAX_STEPS = 24


class BreakEvenKind(enum.StrEnum):
    USES = "uses"  # the plan has a replica on the class
    MAJORITY = "majority"  # the class carries more than half of a pool's planned capacity


@dataclasses.dataclass(frozen=True)
class BreakEven:
    kind: BreakEvenKind
    accelerator_class: str
    pool: str | None  # majority: the pool; uses: None (the fleet)
    rising: bool  # True: the state holds above the point and not below
    below: Point
    above: Point
    log: bool

    @property
    def value(self) -> float:
        lo, hi = self.below.values[0], self.above.values[0]
        return math.sqrt(lo * hi) if self.log and lo > 0 else (lo + hi) / 2

    @property
    def binding(self) -> tuple[tuple[str, core.Binding], ...]:
        """The binding constraints of the plan just above the point: (pool key, constraint)."""
        return tuple((pp.key, b) for pp in self.above.plan.pools for b in pp.binding)


def uses(point: Point, cls: str) -> bool:
    return point.class_replicas().get(cls, 0) > 0


def majority(point: Point, cls: str, pool: str) -> bool:
    pp = next(p for p in point.plan.pools if p.key == pool)
    total = sum(pl.rps_capacity for pl in pp.placements)
    mine = sum(pl.rps_capacity for pl in pp.placements if pl.accelerator_class == cls)
    return total > 0 and mine > 0.5 * total


def bisect(planner: Planner, lo: Point, hi: Point, state: Callable[[Point], bool]) -> tuple[Point, Point]:
    """The two points within the tolerance of each other, between ``lo`` and ``hi`` (whose states
    differ), where ``state`` flips."""
    axis = planner.axes[0]
    low_state = state(lo)
    for _ in range(MAX_STEPS):
        a, b = lo.values[0], hi.values[0]
        if (axis.log and b <= a * (1 + REL_TOL)) or (
            not axis.log and b - a <= LIN_TOL * (axis.high - axis.low)
        ):
            break
        mid = planner.at((math.sqrt(a * b) if axis.log else (a + b) / 2,))
        if state(mid) == low_state:
            lo = mid
        else:
            hi = mid
    return lo, hi


def find(sweep: Sweep, planner: Planner) -> list[BreakEven]:
    """Every flip of every state along a one-axis sweep, bisected; sorted by axis value."""
    if len(sweep.axes) != 1:
        return []
    classes = [c.name for c in sweep.base_problem.classes]
    pools = [p.key for p in sweep.base_problem.pools]
    states: list[tuple[BreakEvenKind, str, str | None, Callable[[Point], bool]]] = []
    for cls in classes:
        states.append((BreakEvenKind.USES, cls, None, lambda p, c=cls: uses(p, c)))  # type: ignore[misc]
        for key in pools:
            states.append(
                (BreakEvenKind.MAJORITY, cls, key, lambda p, c=cls, k=key: majority(p, c, k))  # type: ignore[misc]
            )
    out = []
    for kind, cls, pool, state in states:
        for lo, hi in zip(sweep.points, sweep.points[1:], strict=False):
            if state(lo) != state(hi):
                below, above = bisect(planner, lo, hi, state)
                out.append(BreakEven(kind, cls, pool, state(above), below, above, sweep.axes[0].log))
    return sorted(out, key=lambda b: (b.value, b.accelerator_class, b.kind, b.pool or ""))
