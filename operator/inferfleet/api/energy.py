"""The energy block of a pool's and the FleetPolicy's status: what the plan draws and buys at the
load it serves (``core.energy`` defines every figure; docs/plan-output.md#energy says what each
means)."""

from __future__ import annotations

from pydantic import Field

from inferfleet.api.common import Spec

__all__ = ["EnergyStatus"]


class EnergyStatus(Spec):
    """Energy figures of the last plan at the load it serves (demand, at most its capacity)."""

    output_tokens_per_joule: float | None = Field(
        None,
        ge=0,
        description="Output tokens per joule of device energy (unset: the plan draws no power).",
    )
    tokens_per_joule: float | None = Field(
        None, ge=0, description="Input and output tokens per joule of device energy (unset: no power)."
    )
    dollars_per_million_output_tokens: float | None = Field(
        None, ge=0, description="Hardware and energy $ per million output tokens (unset: none are served)."
    )
    kilowatt_hours_per_day: float = Field(
        0, ge=0, description="Facility energy per day at the planned load (device energy x PUE), kWh."
    )
    energy_dollars_per_hour: float = Field(0, ge=0, description="The cost of that energy, $/h.")
    hardware_dollars_per_hour: float = Field(0, ge=0, description="The cost of the devices, $/h.")
