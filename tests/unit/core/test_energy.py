"""``core.energy`` and the energy blocks of the plan report: the figures add up to the plan's, per
pool and for the fleet, and mean what docs/plan-output.md says."""

from __future__ import annotations

from pathlib import Path

import pytest

from inferfleet.core import energy
from inferfleet.core import types as core
from inferfleet.core.compare import Comparison
from inferfleet.plan import manifests, offline, report
from inferfleet.translate.problem import Fleet, Overrides

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def solved() -> offline.Solved:
    m = manifests.load([ROOT / "examples", ROOT / "examples" / "simulated-fleet"])
    fleet = Fleet(m.pools, m.classes, m.policies, manifests.nodes_from_documents(m.others))
    return offline.solve_fleet(fleet, Overrides())


def test_hardware_and_energy_add_up_to_the_plans_cost(solved: offline.Solved) -> None:
    per_pool, fleet = energy.plan_energy(solved.plan, solved.problem)
    for pp in solved.plan.pools:
        e = per_pool[pp.key]
        assert e.dollars_per_hour == pytest.approx(sum(pl.dollars_per_hour for pl in pp.placements))
        assert e.watts == pytest.approx(sum(pl.watts for pl in pp.placements))
    assert fleet.dollars_per_hour == pytest.approx(solved.plan.dollars_per_hour)
    assert fleet.watts == pytest.approx(solved.plan.watts)
    policy = solved.problem.policy
    assert fleet.energy_dollars_per_hour == pytest.approx(
        solved.plan.watts / 1000 * policy.pue * policy.electricity_per_kwh
    )


def test_tokens_follow_the_served_demand(solved: offline.Solved) -> None:
    per_pool, fleet = energy.plan_energy(solved.plan, solved.problem)
    headroom = solved.problem.policy.headroom
    for pool in solved.problem.pools:
        pp = next(p for p in solved.plan.pools if p.key == pool.key)
        e = per_pool[pool.key]
        capacity = sum(pl.rps_capacity for pl in pp.placements)
        assert e.requests_per_second == pytest.approx(min(pool.demand_rps, capacity / headroom))
        assert e.output_tokens_per_second == pytest.approx(
            e.requests_per_second * pool.workload.output_tokens
        )
        assert e.output_tokens_per_joule == pytest.approx(e.output_tokens_per_second / e.watts)
        assert e.kwh_per_day == pytest.approx(e.watts * 24 / 1000)
        assert e.facility_kwh_per_day == pytest.approx(e.kwh_per_day * solved.problem.policy.pue)
        per_m = e.dollars_per_million_output_tokens
        if pool.workload.output_tokens == 0:
            assert per_m is None  # an embedding model makes no output tokens
            assert e.dollars_per_million_tokens is not None
        else:
            assert per_m == pytest.approx(e.dollars_per_hour / (e.output_tokens_per_second * 3600) * 1e6)
    assert fleet.output_tokens_per_second == pytest.approx(
        sum(e.output_tokens_per_second for e in per_pool.values())
    )


def test_a_pool_with_nothing_placed_draws_nothing_and_has_no_ratios() -> None:
    pp = core.PoolPlan("a/b", (), 10.0, 0.0, core.PlanStatus.SHED)
    e = energy.fleet_energy([], 1.3)
    assert e.output_tokens_per_joule is None and e.dollars_per_million_output_tokens is None
    assert energy.served_rps(pp, 1.2) == 0.0


def test_the_report_carries_energy_per_pool_and_fleet_in_json_and_table(solved: offline.Solved) -> None:
    doc = report.document(solved.plan, solved.problem, (), Comparison(None, None, 0.0))
    fields = {
        "requestsPerSecond",
        "outputTokensPerSecond",
        "tokensPerSecond",
        "watts",
        "kilowattHoursPerDay",
        "facilityKilowattHoursPerDay",
        "hardwareDollarsPerHour",
        "energyDollarsPerHour",
        "outputTokensPerJoule",
        "tokensPerJoule",
        "dollarsPerMillionOutputTokens",
        "dollarsPerMillionTokens",
    }
    assert set(doc["energy"]) == fields
    for pool in doc["pools"]:
        assert set(pool["energy"]) == fields
        assert pool["energy"]["watts"] == pytest.approx(sum(p["watts"] for p in pool["placements"]), abs=2)
    e = doc["energy"]
    assert e["hardwareDollarsPerHour"] + e["energyDollarsPerHour"] == pytest.approx(
        doc["totals"]["dollarsPerHour"], abs=0.02
    )
    text = report.render_table(doc)
    assert text.count("  energy: ") == sum(1 for p in doc["pools"] if p["placements"])
    assert "Energy: " in text and "kWh/day" in text and "output tokens/J" in text
    assert "per million tokens" in text  # the embedding pool: no output tokens, so all tokens
