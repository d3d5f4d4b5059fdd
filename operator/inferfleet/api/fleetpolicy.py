"""The FleetPolicy kind (cluster-scoped; the operator reads the one named ``default``).

Owns the shared cost model and the budgets: power budget per domain, electricity price, PUE,
optional carbon intensity, SLO headroom, the churn penalty for moving replicas, and the planning
cadence.  Its status reports budget use per domain, fleet cost and the last plan's solver figures.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from inferfleet.api import API_VERSION
from inferfleet.api.common import CelRule, Decimal, Name, Spec, name_rule
from inferfleet.api.conditions import Conditions
from inferfleet.api.energy import EnergyStatus

__all__ = [
    "DomainStatus",
    "Electricity",
    "FleetPolicy",
    "FleetPolicySpec",
    "FleetPolicyStatus",
    "LastPlan",
    "Planning",
    "PowerDomain",
]

DEFAULT_POLICY_NAME = "default"


class PowerDomain(Spec):
    """A hall, row or site with a hard power budget."""

    name: Name = Field(description="The domain, as AcceleratorClasses name it in spec.powerDomain.")
    budget_kilowatts: Decimal = Field(description="Hard budget for the accelerators in this domain, kW.")


class Electricity(Spec):
    """The price of energy and the facility overhead on it."""

    dollars_per_kilowatt_hour: Decimal = Field(default=0.10, description="Energy price, $/kWh.")
    pue: Decimal = Field(default=1.3, description="Power usage effectiveness (facility / IT power), 1.0-3.0.")
    carbon_grams_per_kilowatt_hour: int | None = Field(
        None, ge=0, le=5000, description="Grid carbon intensity."
    )

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            "!has(self.pue) || (double(self.pue) >= 1.0 && double(self.pue) <= 3.0)",
            "pue must be between 1.0 and 3.0",
            lambda s: 1.0 <= s.pue <= 3.0,
            ".pue",
        ),
    )


class Planning(Spec):
    """When and how long the operator plans."""

    interval_seconds: int = Field(60, ge=5, le=3600, description="Periodic re-plan even without changes.")
    solver_time_limit_seconds: int = Field(5, ge=1, le=300, description="MILP time limit per plan.")
    autoscaling_interval_seconds: int = Field(
        15,
        ge=1,
        le=300,
        description="While any pool autoscales, rounds (read metrics, re-plan) run at least this often.",
    )
    node_not_ready_grace_seconds: int = Field(
        60,
        ge=0,
        le=3600,
        description="A node NotReady for less than this keeps its replicas and still counts as capacity "
        "(a blip, e.g. after an API server restart, moves nothing).",
    )
    node_return_stabilization_seconds: int = Field(
        120,
        ge=0,
        le=3600,
        description="A node counted lost is used again only once it has been Ready this long.",
    )
    unschedulable_replan_seconds: int = Field(
        120,
        ge=1,
        le=3600,
        description="Replicas of a pool the scheduler cannot place on a class for this long are planned "
        "elsewhere: the class is held at the replicas that did schedule there.",
    )
    unschedulable_hold_seconds: int = Field(
        600,
        ge=1,
        le=86400,
        description="How long such a hold lasts before the class is offered to the pool again; each "
        "repeat doubles it, up to six times this.",
    )


class FleetPolicySpec(Spec):
    """Desired state of the fleet policy."""

    power_domains: list[PowerDomain] = Field(
        default_factory=list,
        max_length=64,
        description="Budgets per power domain.  Empty: no budgets anywhere.  Otherwise a class whose "
        "powerDomain is not listed is handled by unlistedPowerDomains.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    unlisted_power_domains: Literal["NotPlaced", "Unbudgeted"] = Field(
        "NotPlaced",
        description="When powerDomains lists any domain, what a class naming another one gets: NotPlaced "
        "(nothing new is placed on it and its running replicas are left alone, so a misspelt domain "
        "cannot lift a budget) or Unbudgeted (it is planned with no power budget).",
    )
    electricity: Electricity = Field(default_factory=Electricity)
    slo_headroom_percent: int = Field(
        20, ge=0, le=400, description="Plan capacity for demand x (1 + headroom/100)."
    )
    churn_dollars_per_replica_move: Decimal = Field(
        default=1.0,
        description="One-off penalty for each replica moved to another class; keeps plans stable when "
        "classes cost nearly the same (0 lets every re-plan reshuffle equal-cost placements).",
    )
    planning: Planning = Field(default_factory=Planning)

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            "!has(self.powerDomains) || "
            "self.powerDomains.all(d, self.powerDomains.exists_one(e, e.name == d.name))",
            "power domain names must be unique",
            lambda s: len({d.name for d in s.power_domains}) == len(s.power_domains),
            ".powerDomains",
        ),
    )


class DomainStatus(Spec):
    """One power domain's budget and its planned use."""

    name: str = Field(max_length=63, description="The power domain.")
    budget_watts: int | None = Field(None, ge=0, description="Its budget, W (unset: unbudgeted).")
    used_watts: int = Field(0, ge=0, description="Planned power of its classes' replicas, W.")


class LastPlan(Spec):
    """The solver's figures of the last plan."""

    time: str = Field(max_length=64, description="When it was made (RFC 3339).")
    duration_seconds: float = Field(ge=0, description="How long solving took.")
    status: str = Field(max_length=64, description="The solver's outcome, e.g. Optimal.")
    method: str = Field(max_length=64, description="How it was solved, e.g. milp.")
    gap: float = Field(ge=0, description="Relative gap to the best bound (0: proven optimal).")
    pools: int = Field(0, ge=0, description="Pools planned.")
    shed_pools: int = Field(0, ge=0, description="Pools not fully placed (lowest priority first).")


class FleetPolicyStatus(Spec):
    """Observed state of the fleet, written by the operator."""

    observed_generation: int | None = Field(None, ge=0, description="The metadata.generation last acted on.")
    domains: list[DomainStatus] = Field(
        default_factory=list, max_length=64, description="Budget and use per power domain."
    )
    watts: int = Field(0, ge=0, description="Planned power of the whole fleet, W.")
    dollars_per_hour: float = Field(0, ge=0, description="Cost of the whole fleet, $/h.")
    last_plan: LastPlan | None = Field(None, description="The last plan's solver figures.")
    energy: EnergyStatus | None = Field(None, description="What the whole fleet's plan draws and buys.")
    conditions: Conditions = Field(default_factory=list)


class FleetPolicy(Spec):
    """The fleet's shared cost model and power budgets."""

    api_version: Literal["inferfleet.dev/v1alpha1"] = API_VERSION
    kind: Literal["FleetPolicy"] = "FleetPolicy"
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: FleetPolicySpec
    status: FleetPolicyStatus | None = None

    # The operator reads the one named "default": a second policy would be silently ignored, so the
    # API server refuses it at creation.
    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        name_rule(
            f"^{DEFAULT_POLICY_NAME}$",
            f"a FleetPolicy must be named {DEFAULT_POLICY_NAME}: the operator reads only that one (one "
            "fleet, one cost model and one set of budgets)",
        ),
    )
