"""The cost model: replica-hour price with energy, straight-line amortisation, churn."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inferfleet.core.cost import (
    amortised_hourly_price,
    churn_cost,
    energy_dollars_per_hour,
    moved_replicas,
    replica_dollars_per_hour,
)
from inferfleet.core.types import Policy

POLICY = Policy(electricity_per_kwh=0.10, pue=1.3, churn_dollars_per_replica=2.5)


@pytest.mark.parametrize(
    ("devices", "price", "watts", "dollars"),
    [
        pytest.param(8, 12.29, 5600.0, 8 * 12.29 + 5.6 * 1.3 * 0.10, id="h100-node-pays-devices-plus-energy"),
        pytest.param(1, 0.80, 72.0, 0.80 + 0.072 * 0.13, id="one-l4"),
        pytest.param(4, 0.0, 92000.0, 92 * 0.13, id="owned-systems-pay-energy-only"),
        pytest.param(0, 5.0, 0.0, 0.0, id="nothing-costs-nothing"),
    ],
)
def test_replica_dollars_per_hour(devices: int, price: float, watts: float, dollars: float) -> None:
    assert replica_dollars_per_hour(devices, price, watts, POLICY) == pytest.approx(dollars)


def test_energy_scales_with_pue_and_price() -> None:
    assert energy_dollars_per_hour(1000.0, Policy(electricity_per_kwh=0.2, pue=1.5)) == pytest.approx(0.3)


@pytest.mark.parametrize(
    ("capex", "years", "utilisation", "hourly"),
    [
        pytest.param(
            2_500_000, 4, 1.0, 2_500_000 / (4 * 8760), id="cerebras-cs3-over-4-years-is-71-per-hour"
        ),
        pytest.param(20_000, 4, 1.0, 20_000 / 35040, id="groq-card-over-4-years"),
        pytest.param(87_600, 1, 0.5, 20.0, id="half-used-hardware-costs-double-per-used-hour"),
    ],
)
def test_amortised_hourly_price(capex: float, years: float, utilisation: float, hourly: float) -> None:
    assert amortised_hourly_price(capex, years, utilisation) == pytest.approx(hourly)


@pytest.mark.parametrize(
    ("years", "utilisation", "match"),
    [
        pytest.param(0, 1.0, "lifetime", id="zero-lifetime"),
        pytest.param(3, 0.0, "utilisation", id="never-used"),
        pytest.param(3, 1.5, "utilisation", id="more-than-always-used"),
    ],
)
def test_amortisation_rejects_nonsense(years: float, utilisation: float, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        amortised_hourly_price(1000, years, utilisation)


@pytest.mark.parametrize(
    ("current", "planned", "moved"),
    [
        pytest.param({"a": 3}, {"b": 3}, 3, id="all-replicas-change-class"),
        pytest.param({"a": 3}, {"a": 1, "b": 4}, 2, id="two-move-and-two-are-growth"),
        pytest.param({"a": 3}, {"a": 5, "b": 1}, 0, id="pure-scale-up-moves-nothing"),
        pytest.param({"a": 3, "b": 2}, {"a": 1}, 0, id="pure-scale-down-moves-nothing"),
        pytest.param({}, {}, 0, id="nothing-to-nothing"),
        pytest.param({"a": 2, "b": 0}, {"b": 2}, 2, id="zero-entries-are-harmless"),
    ],
)
def test_moved_replicas_and_churn(current: dict[str, int], planned: dict[str, int], moved: int) -> None:
    assert moved_replicas(current, planned) == moved
    assert churn_cost(current, planned, POLICY) == pytest.approx(moved * 2.5)


counts = st.dictionaries(st.sampled_from("abcd"), st.integers(0, 20))


@given(counts, counts)
def test_moves_are_symmetric_and_bounded_by_either_side(
    current: dict[str, int], planned: dict[str, int]
) -> None:
    moved = moved_replicas(current, planned)
    assert moved == moved_replicas(planned, current)
    assert 0 <= moved <= min(sum(current.values()), sum(planned.values()))
