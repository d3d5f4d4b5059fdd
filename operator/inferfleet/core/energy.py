"""Energy accounting of a plan: tokens per joule, dollars per million tokens, energy per day, and
the cost of the energy apart from the cost of the hardware, per pool and for the fleet.

Owns the definitions (docs/plan-output.md#energy), as typed values; the reports render them:

* the load is the demand the plan serves: ``min(demand, capacity / headroom)`` requests per second
  (the planner provisions demand x headroom, so its replicas run at 1 / headroom of their SLO rate,
  the load their watts are counted at); tokens per second are that times the pool's input and
  output tokens per request;
* joules are the plan's device watts (what the budgets count); energy per day is those watts over
  24 h, and ``facility`` multiplies by the policy's PUE, which is what the electricity bill and the
  energy cost count;
* hardware $/h is devices x price per device-hour, energy $/h the facility energy at the policy's
  electricity price (``core.cost.energy_dollars_per_hour``); they add up to the plan's $/h.

Pure: a core ``Plan`` and its ``Problem`` in, frozen dataclasses out; ``plan`` reports them, the
operator writes them into the pools' and the FleetPolicy's status and the metrics.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from inferfleet.core import types as core
from inferfleet.core.cost import energy_dollars_per_hour

__all__ = ["Energy", "fleet_energy", "plan_energy", "pool_energy", "served_rps"]

HOURS_PER_DAY = 24.0


@dataclasses.dataclass(frozen=True)
class Energy:
    """What a pool (or the fleet) draws and buys at the planned load."""

    requests_per_second: float  # served demand
    input_tokens_per_second: float
    output_tokens_per_second: float
    watts: float  # devices
    pue: float
    hardware_dollars_per_hour: float
    energy_dollars_per_hour: float

    @property
    def dollars_per_hour(self) -> float:
        return self.hardware_dollars_per_hour + self.energy_dollars_per_hour

    @property
    def tokens_per_second(self) -> float:
        return self.input_tokens_per_second + self.output_tokens_per_second

    @property
    def kwh_per_day(self) -> float:
        return self.watts / 1000.0 * HOURS_PER_DAY

    @property
    def facility_kwh_per_day(self) -> float:
        return self.kwh_per_day * self.pue

    @property
    def output_tokens_per_joule(self) -> float | None:
        return self.output_tokens_per_second / self.watts if self.watts > 0 else None

    @property
    def tokens_per_joule(self) -> float | None:
        return self.tokens_per_second / self.watts if self.watts > 0 else None

    def dollars_per_million(self, tokens_per_second: float) -> float | None:
        """Dollars per million of the given tokens at this cost (None when there are none)."""
        if tokens_per_second <= 0:
            return None
        return self.dollars_per_hour / (tokens_per_second * 3600.0) * 1e6

    @property
    def dollars_per_million_output_tokens(self) -> float | None:
        return self.dollars_per_million(self.output_tokens_per_second)

    @property
    def dollars_per_million_tokens(self) -> float | None:
        return self.dollars_per_million(self.tokens_per_second)


def served_rps(pp: core.PoolPlan, headroom: float) -> float:
    """The demand a pool's plan serves: its capacity without the headroom, at most its demand."""
    capacity = sum(pl.rps_capacity for pl in pp.placements)
    return max(0.0, min(pp.demand_rps, capacity / max(headroom, 1.0)))


def pool_energy(pp: core.PoolPlan, pool: core.Pool, problem: core.Problem) -> Energy:
    """The energy figures of one pool's plan."""
    prices = {c.name: c.price_per_device_hour for c in problem.classes}
    policy = problem.policy
    rps = served_rps(pp, policy.headroom)
    watts = sum(pl.watts for pl in pp.placements)
    hardware = sum(pl.devices * prices.get(pl.accelerator_class, 0.0) for pl in pp.placements)
    return Energy(
        requests_per_second=rps,
        input_tokens_per_second=rps * pool.workload.input_tokens,
        output_tokens_per_second=rps * pool.workload.output_tokens,
        watts=watts,
        pue=policy.pue,
        hardware_dollars_per_hour=hardware,
        energy_dollars_per_hour=energy_dollars_per_hour(watts, policy),
    )


def fleet_energy(parts: Iterable[Energy], pue: float) -> Energy:
    """The sum of pools' figures."""
    items = list(parts)
    return Energy(
        requests_per_second=sum(e.requests_per_second for e in items),
        input_tokens_per_second=sum(e.input_tokens_per_second for e in items),
        output_tokens_per_second=sum(e.output_tokens_per_second for e in items),
        watts=sum(e.watts for e in items),
        pue=pue,
        hardware_dollars_per_hour=sum(e.hardware_dollars_per_hour for e in items),
        energy_dollars_per_hour=sum(e.energy_dollars_per_hour for e in items),
    )


def plan_energy(plan: core.Plan, problem: core.Problem) -> tuple[dict[str, Energy], Energy]:
    """Per pool key and for the fleet."""
    pools = {p.key: p for p in problem.pools}
    per_pool = {pp.key: pool_energy(pp, pools[pp.key], problem) for pp in plan.pools}
    return per_pool, fleet_energy(per_pool.values(), problem.policy.pue)
