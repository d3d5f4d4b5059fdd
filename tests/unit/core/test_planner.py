"""Table-driven tests of the global planner on hand-made problems, each case named for its story."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence

import pytest

from inferfleet.core.planner import Method, best_single_class, solve
from inferfleet.core.types import (
    SLO,
    AcceleratorClass,
    Binding,
    BindingKind,
    Hardware,
    ModelSpec,
    Option,
    Plan,
    Policy,
    Pool,
    PoolPlan,
    Problem,
    Unfit,
    UnfitKind,
    Workload,
)
from inferfleet.core.units import GIB, TERA

HW = Hardware(memory_bytes=80 * GIB, memory_bandwidth_bytes_per_s=3.0 * TERA, flops_bf16=900 * TERA)


def klass(name: str, nodes: Sequence[int] = (8, 8), domain: str = "hall-a") -> AcceleratorClass:
    return AcceleratorClass(
        name=name,
        hardware=HW,
        devices_per_node=8,
        price_per_device_hour=1.0,
        power_domain=domain,
        node_free_devices=tuple(nodes),
    )


def opt(
    cls: str,
    *,
    rps: float = 10.0,
    cost: float = 1.0,
    devices: int = 1,
    watts: float = 100.0,
    preferred: bool = False,
) -> Option:
    return Option(
        accelerator_class=cls,
        devices=devices,
        rps=rps,
        watts=watts,
        dollars_per_hour=cost,
        ttft_s=0.2,
        tpot_s=0.03,
        preferred=preferred,
    )


def pool(
    key: str,
    demand: float,
    *,
    priority: int = 0,
    min_r: int = 0,
    max_r: int = 1000,
    current: Mapping[str, int] | None = None,
) -> Pool:
    return Pool(
        key=key,
        model=ModelSpec(name="m", parameters_b=8),
        slo=SLO(),
        workload=Workload(512, 128),
        demand_rps=demand,
        min_replicas=min_r,
        max_replicas=max_r,
        priority=priority,
        current=dict(current or {}),
    )


def problem(
    entries: Sequence[tuple[Pool, Sequence[Option]]],
    classes: Sequence[AcceleratorClass],
    *,
    budgets: Mapping[str, float] | None = None,
    churn: float = 0.0,
    unfit: Mapping[str, Mapping[str, Unfit]] | None = None,
) -> Problem:
    return Problem(
        pools=tuple(p for p, _ in entries),
        options={p.key: tuple(o) for p, o in entries},
        unfit=dict(unfit or {}),
        classes=tuple(classes),
        policy=Policy(
            domain_budgets_watts=dict(budgets or {}),
            headroom=1.0,
            churn_dollars_per_replica=churn,
            time_limit_s=5.0,
        ),
    )


def replicas(plan: Plan, key: str) -> dict[str, int]:
    pp = next(p for p in plan.pools if p.key == key)
    out: dict[str, int] = {}
    for pl in pp.placements:
        out[pl.accelerator_class] = out.get(pl.accelerator_class, 0) + pl.replicas
    return out


def pool_plan(plan: Plan, key: str) -> PoolPlan:
    return next(p for p in plan.pools if p.key == key)


@dataclasses.dataclass(frozen=True)
class Case:
    problem: Problem
    check: Callable[[Plan], None]


def _cheapest_class_wins() -> Case:
    p = problem(
        [(pool("a/p", 40), [opt("h100", rps=20, cost=8), opt("l4", rps=5, cost=1)])],
        [klass("h100"), klass("l4")],
    )

    def check(plan: Plan) -> None:
        assert replicas(plan, "a/p") == {"l4": 8}  # $8/h on l4 against $16/h on h100
        assert pool_plan(plan, "a/p").status == "Placed"
        assert plan.dollars_per_hour == pytest.approx(8.0)

    return Case(p, check)


def _power_budget_forces_a_mix() -> Case:
    # l4 is cheaper per req/s but its replicas draw 500 W: the 1.2 kW budget of hall-a holds two
    p = problem(
        [
            (
                pool("a/p", 40),
                [
                    opt("l4", rps=10, cost=1, watts=500),
                    opt(
                        "a100",
                        rps=10,
                        cost=3,
                        watts=300,
                    ),
                ],
            )
        ],
        [klass("l4", domain="hall-a"), klass("a100", domain="hall-b")],
        budgets={"hall-a": 1200},
    )

    def check(plan: Plan) -> None:
        assert replicas(plan, "a/p") == {"l4": 2, "a100": 2}
        assert {d.name: d.used_watts for d in plan.domains}["hall-a"] <= 1200
        assert Binding(BindingKind.POWER, "hall-a") in pool_plan(plan, "a/p").binding

    return Case(p, check)


def _capacity_forces_spill_to_second_class() -> Case:
    # one l4 node with 2 free devices; 2-device replicas: one fits there, the rest go to a100
    p = problem(
        [(pool("a/p", 30), [opt("l4", rps=10, cost=1, devices=2), opt("a100", rps=10, cost=4)])],
        [klass("l4", nodes=(2, 1)), klass("a100")],
    )

    def check(plan: Plan) -> None:
        assert replicas(plan, "a/p") == {"l4": 1, "a100": 2}
        assert Binding(BindingKind.CAPACITY, "l4") in pool_plan(plan, "a/p").binding
        assert "no l4 node has 2 free devices" in pool_plan(plan, "a/p").reason

    return Case(p, check)


def _fragmented_nodes_hold_whole_replicas_only() -> Case:
    # 3+3 free devices: 6 in total but only two 2-device replicas fit whole (not three)
    p = problem([(pool("a/p", 30), [opt("l4", rps=10, cost=1, devices=2)])], [klass("l4", nodes=(3, 3))])

    def check(plan: Plan) -> None:
        assert replicas(plan, "a/p") == {"l4": 2}
        assert pool_plan(plan, "a/p").status == "PartiallyShed"
        assert pool_plan(plan, "a/p").served_rps == pytest.approx(20)

    return Case(p, check)


def _max_replicas_binds() -> Case:
    # small replicas are cheaper per req/s but maxReplicas=2 forces the big ones
    p = problem(
        [(pool("a/p", 40, max_r=2), [opt("l4", rps=10, cost=1), opt("h100", rps=25, cost=4)])],
        [klass("l4"), klass("h100")],
    )

    def check(plan: Plan) -> None:
        assert replicas(plan, "a/p") == {"h100": 2}
        assert Binding(BindingKind.MAX_REPLICAS) in pool_plan(plan, "a/p").binding

    return Case(p, check)


def _min_replicas_above_budget_is_reported_not_a_crash() -> Case:
    p = problem(
        [(pool("a/p", 1, min_r=5), [opt("l4", rps=10, cost=1, watts=400)])],
        [klass("l4")],
        budgets={"hall-a": 900},
    )

    def check(plan: Plan) -> None:
        pp = pool_plan(plan, "a/p")
        assert replicas(plan, "a/p") == {"l4": 2}
        assert (
            Binding(BindingKind.MIN_REPLICAS) in pp.binding
            and Binding(BindingKind.POWER, "hall-a") in pp.binding
        )
        assert "2 of 5 minimum replicas placed" in pp.reason

    return Case(p, check)


def _allowed_classes_respected_via_options() -> Case:
    # b/p may only use a100 (no l4 option offered) although l4 is cheaper for everyone
    p = problem(
        [
            (pool("a/p", 10), [opt("l4", cost=1), opt("a100", cost=3)]),
            (pool("b/p", 10), [opt("a100", cost=3)]),
        ],
        [klass("l4"), klass("a100")],
        unfit={"b/p": {"l4": Unfit(UnfitKind.NOT_ALLOWED, "not in allowedClasses")}},
    )

    def check(plan: Plan) -> None:
        assert replicas(plan, "a/p") == {"l4": 1}
        assert replicas(plan, "b/p") == {"a100": 1}

    return Case(p, check)


def _churn_keeps_current_when_savings_are_small() -> Case:
    # moving 4 replicas saves $0.40/h; each move costs $1
    p = problem(
        [(pool("a/p", 40, current={"a100": 4}), [opt("l4", cost=1.0), opt("a100", cost=1.1)])],
        [klass("l4"), klass("a100")],
        churn=1.0,
    )

    def check(plan: Plan) -> None:
        assert replicas(plan, "a/p") == {"a100": 4}

    return Case(p, check)


def _churn_moves_when_savings_are_large() -> Case:
    p = problem(
        [(pool("a/p", 40, current={"a100": 4}), [opt("l4", cost=1.0), opt("a100", cost=3.0)])],
        [klass("l4"), klass("a100")],
        churn=1.0,
    )

    def check(plan: Plan) -> None:
        assert replicas(plan, "a/p") == {"l4": 4}

    return Case(p, check)


def _scale_down_is_not_a_move(dearer_class: bool) -> Callable[[], Case]:
    """summarise-batch: 8 mi300x running, demand down to 2 req/s (2 replicas).  Removing 6 moves
    nothing: the plan is the 2 the planner would place from scratch, charged no churn.  With a
    dearer second class offered the pool could grow, so its drop credit needs the binary."""

    def make() -> Case:
        opts = [opt("mi300x", rps=1.0, cost=1.7775)] + (
            [opt("h100", rps=1.0, cost=3.0)] if dearer_class else []
        )
        p = problem(
            [(pool("batch/summarise-batch", 2, current={"mi300x": 8}), opts)],
            [klass("mi300x"), klass("h100")],
            churn=2.0,
        )

        def check(plan: Plan) -> None:
            assert replicas(plan, "batch/summarise-batch") == {"mi300x": 2}
            assert plan.solver.objective == pytest.approx(2 * 1.7775)

        return Case(p, check)

    return make


def _scale_down_of_a_class_no_longer_offered_is_not_a_move() -> Case:
    # 4 replicas on a class the pool can no longer use and no demand: removing them moves nothing
    p = problem([(pool("a/p", 0, current={"gone": 4}), [opt("l4")])], [klass("l4")], churn=1.0)

    def check(plan: Plan) -> None:
        assert replicas(plan, "a/p") == {}
        assert plan.solver.objective == pytest.approx(0.0)
        assert plan.solver.bound <= plan.solver.objective + 1e-9

    return Case(p, check)


def _replicas_off_a_class_no_longer_offered_move_when_replaced() -> Case:
    # {gone: 2} -> {l4: 2}: two moves, whatever the plan does (the constant the models leave out)
    p = problem([(pool("a/p", 20, current={"gone": 2}), [opt("l4")])], [klass("l4")], churn=1.5)

    def check(plan: Plan) -> None:
        assert replicas(plan, "a/p") == {"l4": 2}
        assert plan.solver.objective == pytest.approx(2 * 1.0 + 2 * 1.5)
        assert plan.solver.bound == pytest.approx(plan.solver.objective, rel=1e-4)

    return Case(p, check)


def _a_real_move_is_charged_per_replica() -> Case:
    # {a100: 3} -> {l4: 3} saves $3/h and costs 3 x $0.50 once
    p = problem(
        [(pool("a/p", 30, current={"a100": 3}), [opt("l4", cost=1.0), opt("a100", cost=2.0)])],
        [klass("l4"), klass("a100")],
        churn=0.5,
    )

    def check(plan: Plan) -> None:
        assert replicas(plan, "a/p") == {"l4": 3}
        assert plan.solver.objective == pytest.approx(3 * 1.0 + 3 * 0.5)

    return Case(p, check)


def _a_move_saving_less_than_its_churn_stays() -> Case:
    # moving saves $0.50/h a replica, a move costs $0.60: the 3 a100 replicas stay
    p = problem(
        [(pool("a/p", 30, current={"a100": 3}), [opt("l4", cost=1.5), opt("a100", cost=2.0)])],
        [klass("l4"), klass("a100")],
        churn=0.6,
    )

    def check(plan: Plan) -> None:
        assert replicas(plan, "a/p") == {"a100": 3}
        assert plan.solver.objective == pytest.approx(3 * 2.0)

    return Case(p, check)


def _scale_down_and_move_charges_only_the_moves() -> Case:
    # {a100: 8} -> {l4: 2}: eight removed, two added, so two moves
    p = problem(
        [(pool("a/p", 20, current={"a100": 8}), [opt("l4", cost=1.0), opt("a100", cost=2.0)])],
        [klass("l4"), klass("a100")],
        churn=0.5,
    )

    def check(plan: Plan) -> None:
        assert replicas(plan, "a/p") == {"l4": 2}
        assert plan.solver.objective == pytest.approx(2 * 1.0 + 2 * 0.5)

    return Case(p, check)


def _growth_beside_a_move_is_not_charged() -> Case:
    # {a100: 3} -> {a100: 1, l4: 4}: demand grows to 5 replicas, l4 is cheaper but its nodes hold 4;
    # two leave a100 (moves) and the other two l4 replicas are growth
    p = problem(
        [(pool("a/p", 50, current={"a100": 3}), [opt("l4", cost=1.0), opt("a100", cost=2.0)])],
        [klass("l4", nodes=(4,)), klass("a100")],
        churn=0.5,
    )

    def check(plan: Plan) -> None:
        assert replicas(plan, "a/p") == {"a100": 1, "l4": 4}
        assert plan.solver.objective == pytest.approx(1 * 2.0 + 4 * 1.0 + 2 * 0.5)

    return Case(p, check)


def _empty_problem() -> Case:
    def check(plan: Plan) -> None:
        assert plan.pools == () and plan.dollars_per_hour == 0 and plan.solver.status == "Empty"

    return Case(problem([], [klass("l4")]), check)


def _zero_demand_with_min_zero_places_nothing() -> Case:
    p = problem([(pool("a/p", 0), [opt("l4")])], [klass("l4")])

    def check(plan: Plan) -> None:
        pp = pool_plan(plan, "a/p")
        assert pp.placements == () and pp.status == "Placed" and pp.served_rps == 0

    return Case(p, check)


def _unplaceable_pool_says_why() -> Case:
    p = problem(
        [(pool("a/p", 10), [])],
        [klass("l4"), klass("h100")],
        unfit={
            "a/p": {
                "l4": Unfit(UnfitKind.MEMORY, "model needs 140 GiB of memory, node has 24"),
                "h100": Unfit(UnfitKind.SLO, "TPOT SLO missed"),
            }
        },
    )

    def check(plan: Plan) -> None:
        pp = pool_plan(plan, "a/p")
        assert pp.status == "Unplaceable"
        assert "140 GiB" in pp.reason and "TPOT SLO missed" in pp.reason
        assert set(pp.binding) == {Binding(BindingKind.UNFIT, "memory"), Binding(BindingKind.UNFIT, "slo")}

    return Case(p, check)


def _lowest_priority_sheds_first() -> Case:
    # power for 4 replicas; three pools want 2 each: the priority-0 pool sheds
    p = problem(
        [
            (pool("a/low", 20, priority=0), [opt("l4", watts=100)]),
            (pool("a/mid", 20, priority=5), [opt("l4", watts=100)]),
            (pool("a/high", 20, priority=9), [opt("l4", watts=100)]),
        ],
        [klass("l4")],
        budgets={"hall-a": 400},
    )

    def check(plan: Plan) -> None:
        assert pool_plan(plan, "a/high").status == "Placed"
        assert pool_plan(plan, "a/mid").status == "Placed"
        low = pool_plan(plan, "a/low")
        assert low.status == "Shed" and low.served_rps == 0
        assert low.reason.startswith("shed 20.0 of 20.0 req/s: power budget of hall-a binding (0.4/0.4 kW)")
        assert low.reason.endswith("priority 0 is the lowest")

    return Case(p, check)


def _partial_shed_within_a_level_is_spread_by_fraction() -> Case:
    # same priority, room for 3 replicas: the small pool is served whole, the big one sheds
    p = problem(
        [(pool("a/small", 10), [opt("l4", watts=100)]), (pool("a/big", 40), [opt("l4", watts=100)])],
        [klass("l4")],
        budgets={"hall-a": 300},
    )

    def check(plan: Plan) -> None:
        assert replicas(plan, "a/small") == {"l4": 1}
        big = pool_plan(plan, "a/big")
        assert big.status == "PartiallyShed" and big.served_rps == pytest.approx(20)

    return Case(p, check)


def _preferred_class_breaks_a_tie() -> Case:
    p = problem(
        [(pool("a/p", 10), [opt("l4", cost=2.0), opt("a10g", cost=2.0, preferred=True)])],
        [klass("l4"), klass("a10g")],
    )

    def check(plan: Plan) -> None:
        assert replicas(plan, "a/p") == {"a10g": 1}

    return Case(p, check)


def _preference_never_beats_a_real_saving() -> Case:
    p = problem(
        [(pool("a/p", 10), [opt("l4", cost=2.0), opt("a10g", cost=2.1, preferred=True)])],
        [klass("l4"), klass("a10g")],
    )

    def check(plan: Plan) -> None:
        assert replicas(plan, "a/p") == {"l4": 1}

    return Case(p, check)


def _an_option_capped_keeps_its_replicas_and_the_rest_go_elsewhere() -> Case:
    # l4 is cheapest, but only the 2 replicas running there could be scheduled: the rest go to h100,
    # however much cheaper l4 is, and the 2 stay (no move)
    capped = dataclasses.replace(opt("l4", rps=10, cost=1), max_replicas=2)
    p = problem(
        [(pool("a/p", 50, current={"l4": 2}), [capped, opt("h100", rps=10, cost=3)])],
        [klass("l4"), klass("h100")],
    )

    def check(plan: Plan) -> None:
        assert replicas(plan, "a/p") == {"l4": 2, "h100": 3}
        assert pool_plan(plan, "a/p").status == "Placed"

    return Case(p, check)


def _an_option_capped_at_zero_is_not_used() -> Case:
    capped = dataclasses.replace(opt("l4", rps=10, cost=1), max_replicas=0)
    p = problem(
        [(pool("a/p", 20, current={"l4": 2}), [capped, opt("h100", rps=10, cost=3)])],
        [klass("l4"), klass("h100")],
    )

    def check(plan: Plan) -> None:
        assert replicas(plan, "a/p") == {"h100": 2}

    return Case(p, check)


def _a_budget_for_one_of_three_equal_pools_keeps_the_one_that_runs(runs: str) -> Callable[[], Case]:
    """Same priority, cost and shed either way: swapping which pool runs would stop a replica and
    start another for nothing (seen at 5,000 pools: 263 such swaps in the round after the first)."""

    def make() -> Case:
        p = problem(
            [
                (pool(f"a/{name}", 10, current={"l4": 1} if name == runs else None), [opt("l4")])
                for name in ("p0", "p1", "p2")
            ],
            [klass("l4")],
            budgets={"hall-a": 100},
            churn=1.0,
        )

        def check(plan: Plan) -> None:
            assert {k: replicas(plan, f"a/{k}") for k in ("p0", "p1", "p2")} == {
                k: ({"l4": 1} if k == runs else {}) for k in ("p0", "p1", "p2")
            }

        return Case(p, check)

    return make


CASES = {
    "cheapest class wins": _cheapest_class_wins,
    "power budget forces a mix": _power_budget_forces_a_mix,
    "capacity forces spill to second class": _capacity_forces_spill_to_second_class,
    "fragmented nodes hold whole replicas only": _fragmented_nodes_hold_whole_replicas_only,
    "maxReplicas binds": _max_replicas_binds,
    "min replicas above budget is reported, not a crash": _min_replicas_above_budget_is_reported_not_a_crash,
    "allowed classes respected via options": _allowed_classes_respected_via_options,
    "churn keeps current placement when savings are small": _churn_keeps_current_when_savings_are_small,
    "churn moves when savings are large": _churn_moves_when_savings_are_large,
    "scale-down is not a move": _scale_down_is_not_a_move(dearer_class=False),
    "scale-down is not a move, pool could grow elsewhere": _scale_down_is_not_a_move(dearer_class=True),
    "scale-down of a class no longer offered is not a move": (
        _scale_down_of_a_class_no_longer_offered_is_not_a_move
    ),
    "replicas off a class no longer offered move when replaced": (
        _replicas_off_a_class_no_longer_offered_move_when_replaced
    ),
    "a real move is charged per replica": _a_real_move_is_charged_per_replica,
    "a move saving less than its churn stays": _a_move_saving_less_than_its_churn_stays,
    "scale-down and move charges only the moves": _scale_down_and_move_charges_only_the_moves,
    "growth beside a move is not charged": _growth_beside_a_move_is_not_charged,
    "empty problem": _empty_problem,
    "zero demand with min 0 places nothing": _zero_demand_with_min_zero_places_nothing,
    "unplaceable pool says why": _unplaceable_pool_says_why,
    "lowest priority sheds first": _lowest_priority_sheds_first,
    "partial shed within a level is spread by fraction": _partial_shed_within_a_level_is_spread_by_fraction,
    "preferred class breaks a tie": _preferred_class_breaks_a_tie,
    "preference never beats a real saving": _preference_never_beats_a_real_saving,
    "an option capped keeps its replicas and the rest go elsewhere": (
        _an_option_capped_keeps_its_replicas_and_the_rest_go_elsewhere
    ),
    "an option capped at zero is not used": _an_option_capped_at_zero_is_not_used,
    **{
        f"a budget for one of three equal pools keeps the one that runs ({runs})": (
            _a_budget_for_one_of_three_equal_pools_keeps_the_one_that_runs(runs)
        )
        for runs in ("p0", "p1", "p2")
    },
}


@pytest.mark.parametrize("method", ["milp", "heuristic"])
@pytest.mark.parametrize("name", list(CASES))
def test_planner_case(name: str, method: Method) -> None:
    case = CASES[name]()
    case.check(solve(case.problem, method=method))


def test_plan_totals_domains_and_classes_add_up() -> None:
    case = _power_budget_forces_a_mix()
    plan = solve(case.problem)
    placements = [pl for pp in plan.pools for pl in pp.placements]
    assert plan.watts == pytest.approx(sum(pl.watts for pl in placements))
    assert plan.dollars_per_hour == pytest.approx(sum(pl.dollars_per_hour for pl in placements))
    assert [(d.name, d.budget_watts) for d in plan.domains] == [("hall-a", 1200), ("hall-b", None)]
    assert sum(d.used_watts for d in plan.domains) == pytest.approx(plan.watts)
    uses = {c.name: c for c in plan.classes}
    assert uses["l4"].devices_total == 16 and uses["l4"].devices_used == 2
    assert uses["a100"].watts == pytest.approx(600)
    pl = pool_plan(plan, "a/p").placements[0]
    assert (pl.ttft_s, pl.tpot_s) == (0.2, 0.03)


def test_solver_stats_report_an_optimal_milp() -> None:
    plan = solve(_cheapest_class_wins().problem, method="milp")
    assert plan.solver.status == "Optimal" and plan.solver.method == "milp"
    assert plan.solver.bound <= plan.solver.objective + 1e-9
    assert plan.solver.gap <= 1e-4 and plan.solver.seconds > 0


def test_served_rps_is_capped_at_demand_times_headroom() -> None:
    base = _cheapest_class_wins().problem
    p = dataclasses.replace(base, policy=dataclasses.replace(base.policy, headroom=1.2))
    pp = pool_plan(solve(p), "a/p")
    assert replicas(solve(p), "a/p") == {"l4": 10}  # 40 x 1.2 = 48 req/s
    assert pp.served_rps == pytest.approx(48.0)


def test_a_class_missing_from_the_fleet_is_never_used() -> None:
    p = problem([(pool("a/p", 10), [opt("ghost", cost=0.1), opt("l4", cost=1)])], [klass("l4")])
    assert replicas(solve(p), "a/p") == {"l4": 1}


@pytest.mark.parametrize(
    ("limits", "expected"),
    [(True, ("a100", 12.0)), (False, ("l4", 4.0))],
    ids=["capacity rules l4 out", "without limits l4 is cheapest"],
)
def test_best_single_class(limits: bool, expected: tuple[str, float]) -> None:
    p = problem(
        [(pool("a/p", 40), [opt("l4", cost=1), opt("a100", cost=3)])],
        [klass("l4", nodes=(2,)), klass("a100")],
    )
    assert best_single_class(p, respect_limits=limits) == expected


def test_best_single_class_is_none_when_no_class_serves_every_pool() -> None:
    p = problem(
        [(pool("a/p", 10), [opt("l4")]), (pool("b/p", 10), [opt("a100")])], [klass("l4"), klass("a100")]
    )
    assert best_single_class(p) is None
