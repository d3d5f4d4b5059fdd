"""The power model: linear between idle and busy per device, clamped; sums per power domain."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inferfleet.core.power import domain_watts, replica_watts
from inferfleet.core.types import Hardware

GPU = Hardware(80, 3.35, 989, power_idle_watts=100, power_busy_watts=700)


@pytest.mark.parametrize(
    ("devices", "utilisation", "watts"),
    [
        pytest.param(1, 0.0, 100, id="idle-device-draws-idle-power"),
        pytest.param(1, 1.0, 700, id="busy-device-draws-busy-power"),
        pytest.param(1, 0.5, 400, id="half-load-is-halfway"),
        pytest.param(8, 1 / 1.2, 8 * (100 + 600 / 1.2), id="eight-gpus-at-planned-headroom"),
        pytest.param(2, -0.5, 200, id="negative-load-clamps-to-idle"),
        pytest.param(2, 3.0, 1400, id="overload-clamps-to-busy"),
        pytest.param(0, 0.7, 0, id="no-devices-no-watts"),
    ],
)
def test_replica_watts(devices: int, utilisation: float, watts: float) -> None:
    assert replica_watts(devices, GPU, utilisation) == pytest.approx(watts)


def test_negative_devices_are_an_error() -> None:
    with pytest.raises(ValueError, match="devices"):
        replica_watts(-1, GPU, 0.5)


def test_domain_watts_sums_per_domain_in_sorted_order() -> None:
    got = domain_watts([("hall-b", 100.0), ("hall-a", 50.0), ("hall-b", 25.0)])
    assert got == {"hall-a": 50.0, "hall-b": 125.0}
    assert list(got) == ["hall-a", "hall-b"]


@given(st.integers(0, 1000), st.floats(-2, 3), st.floats(-2, 3))
def test_watts_rise_with_load_and_stay_between_idle_and_busy(devices: int, u1: float, u2: float) -> None:
    lo, hi = sorted((u1, u2))
    w_lo, w_hi = replica_watts(devices, GPU, lo), replica_watts(devices, GPU, hi)
    assert devices * GPU.power_idle_watts <= w_lo <= w_hi <= devices * GPU.power_busy_watts
