"""``plan.breakeven``: break-even points are where the plan changes: the real plans just below and
just above each point differ in the state it names, and lie within the bisection's tolerance."""

from __future__ import annotations

from pathlib import Path

import pytest

from inferfleet.core import types as core
from inferfleet.plan import breakeven, manifests, offline, sweep
from inferfleet.plan.sweepreport import binding_words
from inferfleet.translate.problem import Fleet, Overrides

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    m = manifests.load([ROOT / "examples", ROOT / "examples" / "simulated-fleet"])
    return Fleet(m.pools, m.classes, m.policies, manifests.nodes_from_documents(m.others))


# the examples' budgets bind so hard that prices cannot move the mix; with them lifted they do
UNBUDGETED = Overrides(budgets_kilowatts={"hall-a": 1000.0, "hall-b": 1000.0})


def _found(fleet: Fleet, flag: str) -> tuple[sweep.Sweep, sweep.Planner, list[breakeven.BreakEven]]:
    base = Overrides() if flag.startswith("demand") else UNBUDGETED
    axes = sweep.parse_axes([flag], fleet, base)
    planner = sweep.Planner(fleet, base, axes)
    result = sweep.run(planner)
    return result, planner, breakeven.find(result, planner)


def _state(b: breakeven.BreakEven, point: sweep.Point) -> bool:
    if b.kind is breakeven.BreakEvenKind.USES:
        return breakeven.uses(point, b.accelerator_class)
    assert b.pool is not None
    return breakeven.majority(point, b.accelerator_class, b.pool)


@pytest.mark.parametrize(
    "flag",
    [
        pytest.param("price.mi300x=0.5:12:4", id="a-class-priced-out"),
        pytest.param("demand=0.3:0.5:3", id="demand-brings-in-h200"),
    ],
)
def test_each_point_lies_between_two_plans_that_differ_there(fleet: Fleet, flag: str) -> None:
    result, planner, found = _found(fleet, flag)
    assert found, "the sweep changes the plan, so there are break-even points"
    axis = result.axes[0]
    for b in found:
        lo, hi = b.below.values[0], b.above.values[0]
        assert lo < b.value < hi
        if axis.log:
            assert hi <= lo * (1 + breakeven.REL_TOL) + 1e-12
        else:
            assert hi - lo <= breakeven.LIN_TOL * (axis.high - axis.low) + 1e-12
        assert _state(b, b.below) is not b.rising and _state(b, b.above) is b.rising
        assert all(isinstance(c, core.Binding) for _, c in b.binding)
    # every flip between adjacent sweep points has its break-even point inside that interval
    for lo, hi in zip(result.points, result.points[1:], strict=False):
        for cls in (c.name for c in result.base_problem.classes):
            if breakeven.uses(lo, cls) != breakeven.uses(hi, cls):
                assert any(
                    b.kind is breakeven.BreakEvenKind.USES
                    and b.accelerator_class == cls
                    and lo.values[0] <= b.value <= hi.values[0]
                    for b in found
                ), cls
    assert planner.solves > len(result.points)  # the bisection planned points of its own


def test_a_dearer_class_leaves_the_plan_and_the_plans_are_the_single_plans(fleet: Fleet) -> None:
    _, _, found = _found(fleet, "price.mi300x=0.5:12:4")
    leaves = [b for b in found if b.kind is breakeven.BreakEvenKind.USES and b.accelerator_class == "mi300x"]
    assert [b.rising for b in leaves] == [False], leaves
    b = leaves[0]
    for point in (b.below, b.above):
        what_if = Overrides(
            prices={"mi300x": point.values[0]}, budgets_kilowatts=UNBUDGETED.budgets_kilowatts
        )
        alone = offline.solve_fleet(fleet, what_if).plan
        assert alone.dollars_per_hour == pytest.approx(point.plan.dollars_per_hour)
    assert "mi300x" in b.below.class_replicas() and "mi300x" not in b.above.class_replicas()


def test_two_axes_have_no_break_even_points(fleet: Fleet) -> None:
    axes = sweep.parse_axes(["electricity=0:0.1:2", "price.h100=1:2:2"], fleet, Overrides())
    planner = sweep.Planner(fleet, Overrides(), axes)
    assert breakeven.find(sweep.run(planner), planner) == []


@pytest.mark.parametrize(
    ("binding", "words"),
    [
        pytest.param([], "none", id="none"),
        pytest.param(
            [
                ("chat/a", core.Binding(core.BindingKind.POWER, "hall-b")),
                ("batch/b", core.Binding(core.BindingKind.POWER, "hall-b")),
                ("batch/b", core.Binding(core.BindingKind.CAPACITY, "h100")),
            ],
            "the power budget of hall-b (chat/a, batch/b); the free nodes of h100 (batch/b)",
            id="grouped-by-constraint",
        ),
        pytest.param(
            [("x/y", core.Binding(core.BindingKind.MAX_REPLICAS))], "maxReplicas (x/y)", id="max-replicas"
        ),
    ],
)
def test_binding_constraints_in_words(binding: list[tuple[str, core.Binding]], words: str) -> None:
    assert binding_words(binding) == words
