"""``plan.singleclass``: one fleet per class, every line serving the same tokens, and the class that
alone can run every pool costing what the plan's bestSingleClassWithoutLimits says."""

from __future__ import annotations

from pathlib import Path

import pytest

from inferfleet.core import planner
from inferfleet.core.compare import compare
from inferfleet.plan import manifests, offline
from inferfleet.plan.singleclass import single_class_fleets
from inferfleet.translate.problem import Fleet, Overrides

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def solved() -> offline.Solved:
    m = manifests.load([ROOT / "examples", ROOT / "examples" / "simulated-fleet"])
    fleet = Fleet(m.pools, m.classes, m.policies, manifests.nodes_from_documents(m.others))
    return offline.solve_fleet(fleet, Overrides())


def test_every_class_fleet_serves_the_same_tokens(solved: offline.Solved) -> None:
    singles = {s.name: s for s in single_class_fleets(solved.problem)}
    # code-completion-8b's 2 ms TPOT runs only on the SRAM systems: every GPU fleet places it elsewhere
    assert singles["h200"].others == ("code/code-completion-8b",)
    assert singles["h200"].pools == 3
    assert singles["cerebras-cs3"].others == ()
    assert len({s.output_tokens_per_second for s in singles.values()}) == 1
    assert all(s.dollars_per_hour > 0 for s in singles.values())


def test_a_class_that_runs_every_pool_costs_what_best_single_class_without_limits_says(
    solved: offline.Solved,
) -> None:
    best = compare(solved.problem, solved.plan, planner.solve).without_limits
    assert best is not None
    mine = {s.name: s for s in single_class_fleets(solved.problem)}[best.name]
    assert mine.others == ()
    assert mine.dollars_per_hour == pytest.approx(best.dollars_per_hour)
    alone = [s for s in single_class_fleets(solved.problem) if not s.others]
    assert min(s.dollars_per_hour for s in alone) == pytest.approx(best.dollars_per_hour)
