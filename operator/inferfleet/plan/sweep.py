"""Sweeps for ``inferfleet plan --sweep AXIS=LO:HI:N``: axes as data, checked against the fleet, and
one full plan per point through the offline path (``plan.offline.solve_fleet``).

Axes (values in the API's units):

* ``demand``: a scale factor on every pool's demand (after ``--demand``/``--measurements``),
  log-spaced;
* ``price.<class>``: the class's $/device-hour; ``capital.<class>``: its purchase price per device,
  amortised over its ``spec.price.lifetimeYears`` (``core.cost.amortised_hourly_price``) into the
  same $/device-hour; ``electricity``: $/kWh; ``budget.<domain>``: kW;
* ``slo.<namespace>/<pool>.ttft|tpot``: the pool's p95 SLO in milliseconds (planned through the
  pool's correction factors: a class is planned against the swept SLO / its measured factor).

All but ``demand`` are linearly spaced.  A point is the overrides of the base plan with the axis
values on top; its plan is exactly what ``inferfleet plan`` prints with the matching flags (the
tests check it).  The planner takes no start, so every point is solved afresh; what a sweep reuses
is the bridge's performance estimates (cached per model and class).

Owns parsing and checking axes (``parse_axes``: messages name the flag and what is known), the
values of an axis, the overrides of a point and the figures of a point (``Point``, with the
single-class fleets of ``plan.singleclass``).  Pure apart from the solver it is given.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Mapping, Sequence

import numpy as np

from inferfleet.core import types as core
from inferfleet.core.cost import amortised_hourly_price
from inferfleet.core.energy import Energy, plan_energy
from inferfleet.plan.offline import Solve, Solved, solve_fleet
from inferfleet.plan.singleclass import SingleClassFleet, single_class_fleets
from inferfleet.plan.whatif import UsageError
from inferfleet.translate.objects import pool_key
from inferfleet.translate.problem import Fleet, Overrides, problem_from

__all__ = [
    "MAX_POINTS",
    "Axis",
    "AxisKind",
    "Planner",
    "Point",
    "Sweep",
    "evaluate",
    "grid",
    "parse_axes",
    "point_overrides",
    "run",
]

MAX_POINTS = 200
MAX_AXES = 2


class AxisKind(enum.StrEnum):
    DEMAND = "demand"
    PRICE = "price"
    CAPITAL = "capital"
    ELECTRICITY = "electricity"
    BUDGET = "budget"
    SLO = "slo"


# kind -> (unit, lowest allowed, highest allowed, lowest may equal it)
LIMITS: Mapping[AxisKind, tuple[str, float, float, bool]] = {
    AxisKind.DEMAND: ("x", 0.0, 10_000.0, False),
    AxisKind.PRICE: ("$/device-hour", 0.0, 100_000.0, True),
    AxisKind.CAPITAL: ("$/device", 0.0, 1_000_000_000.0, True),
    AxisKind.ELECTRICITY: ("$/kWh", 0.0, 10.0, True),
    AxisKind.BUDGET: ("kW", 0.0, 10_000_000.0, True),
    AxisKind.SLO: ("ms", 0.0, 600_000.0, False),
}


@dataclasses.dataclass(frozen=True)
class Axis:
    """One swept setting: ``kind`` and its subject (class, domain, or ``ns/pool`` and ``metric``)."""

    kind: AxisKind
    low: float
    high: float
    points: int
    subject: str = ""
    metric: str = ""  # slo: "ttft" or "tpot"
    lifetime_years: int = 0  # capital: the class's amortisation period

    @property
    def name(self) -> str:
        if self.kind is AxisKind.SLO:
            return f"slo.{self.subject}.{self.metric}"
        return f"{self.kind}.{self.subject}" if self.subject else str(self.kind)

    @property
    def unit(self) -> str:
        return LIMITS[self.kind][0]

    @property
    def log(self) -> bool:
        return self.kind is AxisKind.DEMAND

    def values(self) -> list[float]:
        space = np.geomspace if self.log else np.linspace
        return [float(v) for v in space(self.low, self.high, self.points)]


def _number(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"{where}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise UsageError(f"{where}: {text!r} is not a finite number")
    return value


def _subject(name: str, fleet: Fleet, flag: str) -> tuple[AxisKind, str, str]:
    head, _, rest = name.partition(".")
    known_axes = (
        "demand, price.<class>, capital.<class>, electricity, budget.<domain>, "
        "slo.<namespace>/<pool>.ttft|tpot"
    )
    try:
        kind = AxisKind(head)
    except ValueError:
        raise UsageError(f"{flag}: unknown axis {name!r} (known: {known_axes})") from None
    if kind in (AxisKind.DEMAND, AxisKind.ELECTRICITY):
        if rest:
            raise UsageError(f"{flag}: axis {head!r} takes no subject (got {name!r})")
        return kind, "", ""
    if not rest:
        raise UsageError(f"{flag}: axis {head!r} needs a subject: {known_axes}")
    if kind in (AxisKind.PRICE, AxisKind.CAPITAL):
        classes = sorted(str(c.metadata["name"]) for c in fleet.classes)
        if rest not in classes:
            raise UsageError(f"{flag}: no such AcceleratorClass {rest!r} (known: {', '.join(classes)})")
        return kind, rest, ""
    if kind is AxisKind.BUDGET:
        domains = sorted({c.spec.power_domain for c in fleet.classes})
        if rest not in domains:
            raise UsageError(
                f"{flag}: no AcceleratorClass is in power domain {rest!r} (known: {', '.join(domains)})"
            )
        return kind, rest, ""
    key, _, metric = rest.rpartition(".")
    if metric not in ("ttft", "tpot") or not key:
        raise UsageError(f"{flag}: expected slo.<namespace>/<pool>.ttft or .tpot (got {name!r})")
    pools = {pool_key(p): p for p in fleet.pools}
    if key not in pools:
        raise UsageError(f"{flag}: no such InferencePool {key!r} (known: {', '.join(sorted(pools))})")
    slo = pools[key].spec.slo
    current = slo.ttft_p95_milliseconds if metric == "ttft" else slo.tpot_p95_milliseconds
    if current is None:
        field = "ttftP95Milliseconds" if metric == "ttft" else "tpotP95Milliseconds"
        raise UsageError(f"{flag}: InferencePool {key} has no {metric} SLO (spec.slo.{field}) to sweep")
    return kind, key, metric


def _axis(text: str, fleet: Fleet) -> Axis:
    flag = f"--sweep {text}"
    name, sep, spec = text.partition("=")
    parts = spec.split(":")
    if not sep or not name or len(parts) != 3:
        raise UsageError(f"{flag}: expected AXIS=LO:HI:N (e.g. demand=0.1:100:30)")
    kind, subject, metric = _subject(name, fleet, flag)
    lifetime = next(
        (
            c.spec.price.lifetime_years
            for c in fleet.classes
            if kind is AxisKind.CAPITAL and c.metadata["name"] == subject
        ),
        0,
    )
    low, high = _number(parts[0], f"{flag}: LO"), _number(parts[1], f"{flag}: HI")
    try:
        points = int(parts[2])
    except ValueError:
        raise UsageError(f"{flag}: N {parts[2]!r} must be a whole number from 2 to {MAX_POINTS}") from None
    if not 2 <= points <= MAX_POINTS:
        raise UsageError(f"{flag}: N {points} must be a whole number from 2 to {MAX_POINTS}")
    unit, lowest, highest, closed = LIMITS[kind]
    if low >= high:
        raise UsageError(f"{flag}: the range {low:g}:{high:g} is empty or reversed (LO must be below HI)")
    if low < lowest or (low == lowest and not closed) or high > highest:
        sign = ">=" if closed else ">"
        raise UsageError(
            f"{flag}: the range {low:g}:{high:g} is outside what a {name} axis can mean "
            f"({sign} {lowest:g} and <= {highest:g} {unit})"
        )
    return Axis(kind, low, high, points, subject, metric, lifetime)


def parse_axes(texts: Sequence[str], fleet: Fleet, base: Overrides) -> tuple[Axis, ...]:
    """The ``--sweep`` flags as axes, each checked against the fleet and the other flags."""
    if len(texts) > MAX_AXES:
        raise UsageError(f"--sweep: at most {MAX_AXES} axes at a time (got {len(texts)})")
    axes = tuple(_axis(t, fleet) for t in texts)
    names = [a.name for a in axes]
    if len(set(names)) != len(names):
        raise UsageError(f"--sweep: axis {names[0]} given twice")
    priced = [a.subject for a in axes if a.kind in (AxisKind.PRICE, AxisKind.CAPITAL)]
    if len(set(priced)) != len(priced):
        raise UsageError(f"--sweep price.{priced[0]} and capital.{priced[0]} set the same thing: give one")
    total = math.prod(a.points for a in axes)
    if total > MAX_POINTS:
        counts = " x ".join(str(a.points) for a in axes)
        raise UsageError(f"--sweep: {counts} = {total} points; at most {MAX_POINTS}")
    for a in axes:
        flag = {
            AxisKind.PRICE: f"--price {a.subject}" if a.subject in base.prices else "",
            AxisKind.CAPITAL: f"--price {a.subject}" if a.subject in base.prices else "",
            AxisKind.BUDGET: f"--power-budget {a.subject}" if a.subject in base.budgets_kilowatts else "",
            AxisKind.ELECTRICITY: "--electricity" if base.electricity_per_kwh is not None else "",
        }.get(a.kind, "")
        if flag:
            raise UsageError(f"--sweep {a.name} and {flag} set the same thing: give one")
    return axes


def point_overrides(
    base: Overrides, problem: core.Problem, axes: Sequence[Axis], values: Sequence[float]
) -> Overrides:
    """The overrides of one point: ``base`` with each axis at its value (``problem`` is the base
    plan's, for the demand and SLOs the axes scale and replace)."""
    out = base
    for axis, value in zip(axes, values, strict=True):
        if axis.kind is AxisKind.DEMAND:
            demand = {p.key: p.demand_rps * value for p in problem.pools}
            out = dataclasses.replace(out, demand_rps=demand)
        elif axis.kind is AxisKind.PRICE:
            out = dataclasses.replace(out, prices={**out.prices, axis.subject: value})
        elif axis.kind is AxisKind.CAPITAL:
            hourly = amortised_hourly_price(value, axis.lifetime_years)
            out = dataclasses.replace(out, prices={**out.prices, axis.subject: hourly})
        elif axis.kind is AxisKind.ELECTRICITY:
            out = dataclasses.replace(out, electricity_per_kwh=value)
        elif axis.kind is AxisKind.BUDGET:
            out = dataclasses.replace(out, budgets_kilowatts={**out.budgets_kilowatts, axis.subject: value})
        else:
            out = dataclasses.replace(out, slo_factors=_slo_factors(out, problem, axis, value))
    return out


def _slo_factors(
    base: Overrides, problem: core.Problem, axis: Axis, milliseconds: float
) -> dict[str, dict[str, tuple[float, float]]]:
    pool = next(p for p in problem.pools if p.key == axis.subject)
    current = pool.slo.ttft_s if axis.metric == "ttft" else pool.slo.tpot_s
    assert current is not None  # parse_axes checked it
    scale = current / (milliseconds / 1000.0)
    factors = {k: dict(v) for k, v in base.slo_factors.items()}
    mine = factors.setdefault(axis.subject, {})
    for cls in problem.classes:
        ttft, tpot = mine.get(cls.name, pool.slo_factors.get(cls.name, (1.0, 1.0)))
        mine[cls.name] = (ttft * scale, tpot) if axis.metric == "ttft" else (ttft, tpot * scale)
    return factors


@dataclasses.dataclass(frozen=True)
class Point:
    """One point of a sweep: the axis values, the plan, and what the reports say of it."""

    values: tuple[float, ...]
    solved: Solved
    energy: Energy
    pool_energy: Mapping[str, Energy]
    singles: tuple[SingleClassFleet, ...]

    @property
    def plan(self) -> core.Plan:
        return self.solved.plan

    @property
    def demand_rps(self) -> float:
        return sum(pp.demand_rps for pp in self.plan.pools)

    @property
    def shed_rps(self) -> dict[str, float]:
        """Demand each pool's plan leaves unserved (only pools that shed)."""
        out = {}
        for pp in self.plan.pools:
            left = pp.demand_rps - self.pool_energy[pp.key].requests_per_second
            if left > 1e-6 * max(pp.demand_rps, 1.0):
                out[pp.key] = left
        return out

    def class_dollars(self) -> dict[str, float]:
        """$/h per class of the plan (classes it uses)."""
        out: dict[str, float] = {}
        for pp in self.plan.pools:
            for pl in pp.placements:
                out[pl.accelerator_class] = out.get(pl.accelerator_class, 0.0) + pl.dollars_per_hour
        return dict(sorted(out.items()))

    def class_replicas(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for pp in self.plan.pools:
            for pl in pp.placements:
                out[pl.accelerator_class] = out.get(pl.accelerator_class, 0) + pl.replicas
        return dict(sorted(out.items()))


def evaluate(values: Sequence[float], solved: Solved) -> Point:
    per_pool, fleet = plan_energy(solved.plan, solved.problem)
    return Point(tuple(values), solved, fleet, per_pool, tuple(single_class_fleets(solved.problem)))


@dataclasses.dataclass(frozen=True)
class Sweep:
    axes: tuple[Axis, ...]
    base: Overrides
    base_problem: core.Problem
    points: tuple[Point, ...]


class Planner:
    """Plans points of a sweep, each once (break-even bisection asks again for values it has)."""

    def __init__(
        self, fleet: Fleet, base: Overrides, axes: Sequence[Axis], solve: Solve | None = None
    ) -> None:
        self.fleet, self.base, self.axes, self.solve = fleet, base, tuple(axes), solve
        # the base problem, unsolved: the demand and SLOs the axes scale and replace
        self.base_problem = problem_from(fleet, overrides=base).problem
        self.cache: dict[tuple[float, ...], Point] = {}
        self.solves = 0

    def at(self, values: Sequence[float]) -> Point:
        key = tuple(values)
        if key not in self.cache:
            overrides = point_overrides(self.base, self.base_problem, self.axes, key)
            self.cache[key] = evaluate(key, solve_fleet(self.fleet, overrides, self.solve))
            self.solves += 1
        return self.cache[key]


def grid(axes: Sequence[Axis]) -> list[tuple[float, ...]]:
    """Every point of the axes, the first axis outermost."""
    out: list[tuple[float, ...]] = [()]
    for axis in axes:
        out = [(*head, v) for head in out for v in axis.values()]
    return out


def run(planner: Planner) -> Sweep:
    """Every point of the sweep's grid, in order."""
    points = tuple(planner.at(values) for values in grid(planner.axes))
    return Sweep(planner.axes, planner.base, planner.base_problem, points)
