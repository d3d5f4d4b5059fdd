"""``plan.sweep``: axes parsed and checked against the fleet (messages naming the flag and what is
known), their values, and points that are exactly the single plans at the same settings."""

from __future__ import annotations

import dataclasses
import itertools
import math
from pathlib import Path

import pytest

from inferfleet.core import types as core
from inferfleet.core.cost import amortised_hourly_price
from inferfleet.plan import manifests, offline, sweep
from inferfleet.plan.whatif import UsageError
from inferfleet.translate.problem import Fleet, Overrides

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    m = manifests.load([ROOT / "examples", ROOT / "examples" / "simulated-fleet"])
    return Fleet(m.pools, m.classes, m.policies, manifests.nodes_from_documents(m.others))


def _shape(plan: core.Plan) -> list[tuple[str, str, int]]:
    return [(pp.key, pl.accelerator_class, pl.replicas) for pp in plan.pools for pl in pp.placements]


def _same(a: core.Plan, b: core.Plan) -> None:
    assert _shape(a) == _shape(b)
    assert a.dollars_per_hour == pytest.approx(b.dollars_per_hour, rel=1e-9)
    assert a.watts == pytest.approx(b.watts, rel=1e-9)
    assert [pp.status for pp in a.pools] == [pp.status for pp in b.pools]


def test_demand_is_log_spaced_and_the_others_linear() -> None:
    demand = sweep.Axis(sweep.AxisKind.DEMAND, 0.1, 100.0, 4)
    assert demand.values() == pytest.approx([0.1, 1.0, 10.0, 100.0])
    price = sweep.Axis(sweep.AxisKind.PRICE, 1.0, 4.0, 4, subject="h100")
    assert price.values() == pytest.approx([1.0, 2.0, 3.0, 4.0])
    assert price.name == "price.h100" and price.unit == "$/device-hour"


def test_two_axes_make_a_grid_first_axis_outermost() -> None:
    a = sweep.Axis(sweep.AxisKind.ELECTRICITY, 0.0, 0.2, 2)
    b = sweep.Axis(sweep.AxisKind.BUDGET, 10.0, 30.0, 3, subject="hall-a")
    assert sweep.grid([a, b]) == [
        (0.0, 10.0),
        (0.0, 20.0),
        (0.0, 30.0),
        (0.2, 10.0),
        (0.2, 20.0),
        (0.2, 30.0),
    ]


# each axis, and the overrides a user would give `inferfleet plan` for the same point
SINGLE = {
    "price.mi300x": lambda v: Overrides(prices={"mi300x": v}),
    "electricity": lambda v: Overrides(electricity_per_kwh=v),
    "budget.hall-b": lambda v: Overrides(budgets_kilowatts={"hall-b": v}),
    # the CS-3's capital cost over the 5 years its spec.price.lifetimeYears says, as --price takes it
    "capital.cerebras-cs3": lambda v: Overrides(prices={"cerebras-cs3": amortised_hourly_price(v, 5)}),
}


@pytest.mark.parametrize(
    ("flag", "single"),
    [
        pytest.param("price.mi300x=1:6:3", SINGLE["price.mi300x"], id="price"),
        pytest.param("electricity=0:1:3", SINGLE["electricity"], id="electricity"),
        pytest.param("budget.hall-b=10:40:3", SINGLE["budget.hall-b"], id="budget"),
        pytest.param("capital.cerebras-cs3=1e6:4e6:3", SINGLE["capital.cerebras-cs3"], id="capital"),
    ],
)
def test_each_point_is_the_single_plan_at_its_setting(fleet: Fleet, flag: str, single: object) -> None:
    axes = sweep.parse_axes([flag], fleet, Overrides())
    result = sweep.run(sweep.Planner(fleet, Overrides(), axes))
    assert len(result.points) == 3
    for point in result.points:
        alone = offline.solve_fleet(fleet, single(point.values[0]))  # type: ignore[operator]
        _same(point.plan, alone.plan)


def test_demand_points_scale_every_pool_and_equal_single_plans(fleet: Fleet) -> None:
    base = offline.solve_fleet(fleet, Overrides()).problem
    axes = sweep.parse_axes(["demand=0.5:2:3"], fleet, Overrides())
    result = sweep.run(sweep.Planner(fleet, Overrides(), axes))
    for point in result.points:
        factor = point.values[0]
        demand = {p.key: p.demand_rps * factor for p in base.pools}
        alone = offline.solve_fleet(fleet, Overrides(demand_rps=demand))
        _same(point.plan, alone.plan)
        assert point.demand_rps == pytest.approx(sum(demand.values()))


def test_demand_scales_on_top_of_the_demand_flags(fleet: Fleet) -> None:
    base = Overrides(demand_rps={"chat/chat-70b": 10.0})
    axes = sweep.parse_axes(["demand=1:3:2"], fleet, base)
    result = sweep.run(sweep.Planner(fleet, base, axes))
    chat = [next(pp for pp in p.plan.pools if pp.key == "chat/chat-70b") for p in result.points]
    assert [pp.demand_rps for pp in chat] == pytest.approx([10.0, 30.0])


def test_slo_axis_at_the_pools_own_slo_is_the_base_plan(fleet: Fleet) -> None:
    axes = sweep.parse_axes(["slo.chat/chat-70b.tpot=30:40:3"], fleet, Overrides())
    result = sweep.run(sweep.Planner(fleet, Overrides(), axes))
    _same(result.points[-1].plan, offline.solve_fleet(fleet, Overrides()).plan)  # 40 ms is its own SLO
    chat = [next(pp for pp in p.plan.pools if pp.key == "chat/chat-70b") for p in result.points]
    tpot = [max(pl.tpot_s for pl in pp.placements) for pp in chat]
    assert all(t <= ms / 1000 + 1e-9 for t, ms in zip(tpot, (30, 35, 40), strict=True)), tpot
    assert _shape(result.points[0].plan) != _shape(result.points[-1].plan)


def test_a_tighter_slo_never_makes_an_unbudgeted_fleet_cheaper(fleet: Fleet) -> None:
    """With budgets out of the way nothing is shed, so the exact plan's cost can only rise as the
    SLO tightens (with budgets binding, a tighter SLO may shed a pool and cost less)."""
    base = Overrides(budgets_kilowatts={"hall-a": 10_000.0, "hall-b": 10_000.0})
    axes = sweep.parse_axes(["slo.chat/chat-70b.tpot=25:40:4"], fleet, base)
    result = sweep.run(sweep.Planner(fleet, base, axes))
    cost = [p.plan.dollars_per_hour for p in result.points]
    assert all(a >= b - 1e-6 for a, b in itertools.pairwise(cost)), cost
    assert cost[0] > cost[-1], cost
    assert all(not p.shed_rps for p in result.points)


@pytest.mark.parametrize(
    ("flags", "base", "message"),
    [
        pytest.param(
            ["volume=1:2:3"],
            Overrides(),
            "--sweep volume=1:2:3: unknown axis 'volume' (known: demand,",
            id="unknown-axis",
        ),
        pytest.param(
            ["price.h900=1:2:3"],
            Overrides(),
            "no such AcceleratorClass 'h900' (known: cerebras-cs3,",
            id="unknown-class",
        ),
        pytest.param(
            ["budget.hall-z=1:2:3"],
            Overrides(),
            "no AcceleratorClass is in power domain 'hall-z' (known: hall-a, hall-b)",
            id="unknown-domain",
        ),
        pytest.param(
            ["slo.chat/nope.tpot=1:2:3"],
            Overrides(),
            "no such InferencePool 'chat/nope' (known: batch/summarise-batch,",
            id="unknown-pool",
        ),
        pytest.param(
            ["slo.search/embed.tpot=1:2:3"],
            Overrides(),
            "InferencePool search/embed has no tpot SLO (spec.slo.tpotP95Milliseconds)",
            id="pool-without-that-slo",
        ),
        pytest.param(
            ["slo.chat/chat-70b.p99=1:2:3"],
            Overrides(),
            "expected slo.<namespace>/<pool>.ttft or .tpot",
            id="unknown-slo-metric",
        ),
        pytest.param(["price=1:2:3"], Overrides(), "axis 'price' needs a subject", id="price-without-class"),
        pytest.param(
            ["demand.x=1:2:3"], Overrides(), "axis 'demand' takes no subject", id="demand-with-subject"
        ),
        pytest.param(
            ["demand=1:2"], Overrides(), "expected AXIS=LO:HI:N (e.g. demand=0.1:100:30)", id="no-count"
        ),
        pytest.param(["demand"], Overrides(), "expected AXIS=LO:HI:N", id="no-range"),
        pytest.param(["demand=2:1:3"], Overrides(), "the range 2:1 is empty or reversed", id="reversed"),
        pytest.param(["demand=1:1:3"], Overrides(), "the range 1:1 is empty or reversed", id="empty"),
        pytest.param(
            ["demand=0:1:3"],
            Overrides(),
            "outside what a demand axis can mean (> 0 and <= 10000 x)",
            id="demand-zero-on-a-log-axis",
        ),
        pytest.param(
            ["demand=1:1e9:3"], Overrides(), "outside what a demand axis can mean", id="absurd-demand"
        ),
        pytest.param(
            ["price.h100=-1:2:3"],
            Overrides(),
            "outside what a price.h100 axis can mean (>= 0",
            id="negative-price",
        ),
        pytest.param(
            ["electricity=0:50:3"],
            Overrides(),
            "outside what a electricity axis can mean",
            id="absurd-electricity",
        ),
        pytest.param(["demand=nan:1:3"], Overrides(), "LO: 'nan' is not a finite number", id="nan"),
        pytest.param(["demand=a:1:3"], Overrides(), "LO: 'a' is not a number", id="not-a-number"),
        pytest.param(
            ["demand=1:2:1"], Overrides(), "N 1 must be a whole number from 2 to 200", id="one-point"
        ),
        pytest.param(
            ["demand=1:2:201"],
            Overrides(),
            "N 201 must be a whole number from 2 to 200",
            id="too-many-points",
        ),
        pytest.param(
            ["demand=1:2:2.5"], Overrides(), "N '2.5' must be a whole number", id="fractional-count"
        ),
        pytest.param(
            ["demand=1:2:20", "electricity=0:1:20"],
            Overrides(),
            "--sweep: 20 x 20 = 400 points; at most 200",
            id="grid-too-big",
        ),
        pytest.param(
            ["demand=1:2:2", "electricity=0:1:2", "budget.hall-a=1:2:2"],
            Overrides(),
            "at most 2 axes",
            id="three-axes",
        ),
        pytest.param(
            ["demand=1:2:2", "demand=1:3:2"], Overrides(), "axis demand given twice", id="same-axis-twice"
        ),
        pytest.param(
            ["price.h100=1:2:2"],
            Overrides(prices={"h100": 3.0}),
            "--sweep price.h100 and --price h100 set the same thing",
            id="price-flag-too",
        ),
        pytest.param(
            ["price.h100=1:2:2", "capital.h100=1:2:2"],
            Overrides(),
            "--sweep price.h100 and capital.h100 set the same thing",
            id="price-and-capital-axes",
        ),
        pytest.param(
            ["capital.groq=1:2:2"],
            Overrides(prices={"groq": 3.0}),
            "--sweep capital.groq and --price groq set the same thing",
            id="capital-and-price-flag",
        ),
        pytest.param(
            ["budget.hall-a=1:2:2"],
            Overrides(budgets_kilowatts={"hall-a": 3.0}),
            "and --power-budget hall-a set the same thing",
            id="budget-flag-too",
        ),
    ],
)
def test_bad_axes_say_what_is_wrong(fleet: Fleet, flags: list[str], base: Overrides, message: str) -> None:
    with pytest.raises(UsageError) as err:
        sweep.parse_axes(flags, fleet, base)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_a_sweep_plans_each_point_once(fleet: Fleet) -> None:
    axes = sweep.parse_axes(["electricity=0:0.1:2"], fleet, Overrides())
    planner = sweep.Planner(fleet, Overrides(), axes)
    sweep.run(planner)
    sweep.run(planner)
    assert planner.solves == 2


def test_shed_is_demand_minus_what_the_plan_serves(fleet: Fleet) -> None:
    axes = sweep.parse_axes(["budget.hall-b=1:2:2"], fleet, Overrides())
    point = sweep.run(sweep.Planner(fleet, Overrides(), axes)).points[0]
    assert point.shed_rps, "a 1 kW hall-b must shed"
    for key, rps in point.shed_rps.items():
        pp = next(p for p in point.plan.pools if p.key == key)
        assert rps == pytest.approx(pp.demand_rps - point.pool_energy[key].requests_per_second)
        assert 0 < rps <= pp.demand_rps
    assert not math.isnan(sum(point.class_dollars().values()))
    assert dataclasses.asdict(point.energy)["watts"] == pytest.approx(point.plan.watts)
