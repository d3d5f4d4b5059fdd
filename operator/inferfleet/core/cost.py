"""Cost model: dollars per replica-hour (hardware + energy), amortised capex, churn.

One model for the whole fleet:

    $/h per replica = devices x price per device-hour + watts / 1000 x PUE x electricity $/kWh

Systems sold by capital cost (Cerebras CS-3, Groq racks) get an hourly price by straight-line
amortisation: ``capex / (lifetime_years x 8760 h x utilisation)``, with no cost of capital and no
residual value; ``utilisation`` is the fraction of hours the system is allocated to serving (1.0:
every hour of its life is paid for by serving). Moving a replica to another class costs
``Policy.churn_dollars_per_replica`` once; :func:`moved_replicas` counts moves against the pool's
current placement.
"""

from __future__ import annotations

from collections.abc import Mapping

from inferfleet.core.types import Policy

__all__ = [
    "HOURS_PER_YEAR",
    "amortised_hourly_price",
    "churn_cost",
    "energy_dollars_per_hour",
    "moved_replicas",
    "replica_dollars_per_hour",
]

HOURS_PER_YEAR = 8760.0


def energy_dollars_per_hour(watts: float, policy: Policy) -> float:
    """Electricity cost of drawing ``watts`` for an hour, facility overhead (PUE) included."""
    return watts / 1000.0 * policy.pue * policy.electricity_per_kwh


def replica_dollars_per_hour(
    devices: int, price_per_device_hour: float, watts: float, policy: Policy
) -> float:
    """Hourly cost of one replica: its devices' price plus its energy."""
    return devices * price_per_device_hour + energy_dollars_per_hour(watts, policy)


def amortised_hourly_price(capex_dollars: float, lifetime_years: float, utilisation: float = 1.0) -> float:
    """Straight-line hourly price of hardware bought for ``capex_dollars`` (see module docstring)."""
    if lifetime_years <= 0:
        raise ValueError(f"lifetime_years must be > 0, got {lifetime_years}")
    if not 0.0 < utilisation <= 1.0:
        raise ValueError(f"utilisation must be in (0, 1], got {utilisation}")
    return capex_dollars / (lifetime_years * HOURS_PER_YEAR * utilisation)


def moved_replicas(current: Mapping[str, int], planned: Mapping[str, int]) -> int:
    """Replicas that change class: ``min(replicas added, replicas removed)`` over all classes.

    Pure scale-ups and scale-downs move nothing; {A: 3} -> {B: 3} moves 3; {A: 3} -> {A: 1, B: 4}
    moves 2 (two leave A, and the other two new B replicas are growth).
    """
    added = removed = 0
    for name in set(current) | set(planned):
        delta = planned.get(name, 0) - current.get(name, 0)
        if delta > 0:
            added += delta
        else:
            removed -= delta
    return min(added, removed)


def churn_cost(current: Mapping[str, int], planned: Mapping[str, int], policy: Policy) -> float:
    """One-off dollars for the replicas a plan moves between classes."""
    return moved_replicas(current, planned) * policy.churn_dollars_per_replica
