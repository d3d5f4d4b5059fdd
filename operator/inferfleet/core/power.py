"""Power model: watts a replica draws at a utilisation, and sums per power domain.

A device draws ``idle + (busy - idle) x utilisation`` watts, linear between its idle and busy
figures (``Hardware.power_idle_watts`` / ``power_busy_watts``). The reference busy figures are rated
board or system power, so budgets are conservative: GPUs in decode usually draw well below their
rating. Host servers, switches and cooling are outside the device figures; ``Policy.pue`` covers
facility overhead in the cost model, not here.
"""

from __future__ import annotations

from collections.abc import Iterable

from inferfleet.core.types import Hardware

__all__ = ["domain_watts", "replica_watts"]


def replica_watts(devices: int, hw: Hardware, utilisation: float) -> float:
    """Watts of one replica on ``devices`` devices at ``utilisation`` (clamped to [0, 1])."""
    if devices < 0:
        raise ValueError(f"devices must be >= 0, got {devices}")
    u = min(1.0, max(0.0, utilisation))
    per_device = hw.power_idle_watts + (hw.power_busy_watts - hw.power_idle_watts) * u
    return devices * per_device


def domain_watts(items: Iterable[tuple[str, float]]) -> dict[str, float]:
    """Sum ``(power_domain, watts)`` pairs per domain, domains in sorted order."""
    totals: dict[str, float] = {}
    for domain, watts in items:
        totals[domain] = totals.get(domain, 0.0) + watts
    return dict(sorted(totals.items()))
