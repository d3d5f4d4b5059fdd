"""Plain data the core works on: hardware, models, SLOs, demand, the fleet, the policy and plans.

Everything here is a frozen dataclass in base SI units (bytes, bytes/s, FLOP/s, W, s; money in $
per hour), spelled in the field name where it is not obvious (``_s``, ``_watts``, ``_per_hour``).
The API layer translates its pydantic objects into these (see ``inferfleet.translate``); the core
never sees pydantic, kopf or the Kubernetes client.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from typing import Literal

__all__ = [
    "BYTES_PER_PARAM",
    "UNBOUNDED_NODES",
    "SLO",
    "AcceleratorClass",
    "Binding",
    "BindingKind",
    "Bucket",
    "ClassUse",
    "DomainUse",
    "Estimate",
    "Hardware",
    "ModelSpec",
    "Option",
    "Placement",
    "Plan",
    "PlanStatus",
    "Policy",
    "Pool",
    "PoolPlan",
    "Precision",
    "Problem",
    "Profile",
    "ProfilePoint",
    "Routing",
    "SolverStats",
    "Unfit",
    "UnfitKind",
    "Workload",
]

Precision = Literal["fp32", "bf16", "fp16", "fp8", "int8", "int4", "fp4"]

BYTES_PER_PARAM: Mapping[str, float] = {
    "fp32": 4.0,
    "bf16": 2.0,
    "fp16": 2.0,
    "fp8": 1.0,
    "int8": 1.0,
    "int4": 0.5,
    "fp4": 0.5,
}


UNBOUNDED_NODES = 10_000  # capacity standing in for "no node limit": more nodes than any plan uses

# --------------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Hardware:
    """Figures of one device (a GPU, a chip, or one wafer-scale system) the roofline needs."""

    memory_bytes: float
    memory_bandwidth_bytes_per_s: float
    flops_bf16: float  # dense FLOP/s
    flops_fp8: float | None = None  # dense FLOP/s; None when the device has no FP8 path
    power_idle_watts: float = 0.0
    power_busy_watts: float = 0.0
    # Fixed latency per transformer layer per decode step (fabric / pipeline hops, kernel launch).
    # It is what bounds SRAM systems (Cerebras, Groq), whose bandwidth roofline is far away.
    layer_latency_s: float = 0.0


@dataclasses.dataclass(frozen=True)
class ProfilePoint:
    """Measured max req/s at the SLO for requests up to these token lengths (a Mélange/AIBrix bucket)."""

    input_tokens: int
    output_tokens: int
    max_rps: float


@dataclasses.dataclass(frozen=True)
class Profile:
    """Measured performance of one model on one class; overrides the analytic model where given."""

    model: str
    devices: int | None = None  # devices per replica it was measured with (None: analytic fit)
    rps: float | None = None  # a single figure for every request shape
    points: tuple[ProfilePoint, ...] = ()


@dataclasses.dataclass(frozen=True)
class AcceleratorClass:
    """One hardware pool: figures, price, power domain and current capacity."""

    name: str
    hardware: Hardware
    devices_per_node: int
    price_per_device_hour: float  # $/h per device, hardware only (amortised capex already folded in)
    power_domain: str
    # Free devices on each Ready, schedulable node of the class (capacity the planner may use).
    node_free_devices: tuple[int, ...] = ()
    profiles: tuple[Profile, ...] = ()
    # The names of those nodes, in the same order (empty when capacity is not tied to real nodes:
    # a capacity override, or no node limit).
    node_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.node_names and len(self.node_names) != len(self.node_free_devices):
            raise ValueError(
                f"class {self.name}: {len(self.node_names)} node names for "
                f"{len(self.node_free_devices)} nodes"
            )


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """The model a pool serves."""

    name: str
    parameters_b: float  # billions of parameters
    precision: Precision = "bf16"
    context_length: int = 8192
    layers: int | None = None  # estimated from parameters_b when unknown
    kv_bytes_per_token: int | None = None  # estimated from parameters_b when unknown


@dataclasses.dataclass(frozen=True)
class SLO:
    """Latency objectives at p95; None means unconstrained."""

    ttft_s: float | None = None
    tpot_s: float | None = None


@dataclasses.dataclass(frozen=True)
class Workload:
    """The typical request: token counts in and out (0 out for embedding models)."""

    input_tokens: int
    output_tokens: int


@dataclasses.dataclass(frozen=True)
class Bucket:
    """One request size of a pool's demand: its representative request and its share of the pool's
    req/s (a pool's shares sum to 1; :mod:`inferfleet.core.mix` checks them)."""

    workload: Workload
    share: float


class Routing(enum.StrEnum):
    """How a pool's requests reach its replicas when its demand is a mix of buckets."""

    MIXED = "mixed"  # every replica sees the whole mix: a replica's capacity is the mixture's
    SIZE_AWARE = "sizeAware"  # each class receives the buckets the plan gives it


@dataclasses.dataclass(frozen=True)
class Pool:
    """One InferencePool as the planner sees it."""

    key: str  # "namespace/name"
    model: ModelSpec
    slo: SLO
    workload: Workload
    demand_rps: float
    min_replicas: int = 0
    max_replicas: int = 1000
    priority: int = 0  # higher is more important; lower priorities are shed first
    allowed_classes: frozenset[str] | None = None  # None: every class
    preferred_classes: frozenset[str] = frozenset()
    current: Mapping[str, int] = dataclasses.field(default_factory=dict)  # replicas per class now
    # class -> (TTFT, TPOT) correction factors learnt from measurements: the class is planned
    # against SLO / factor (``core.correction``); absent means 1.
    slo_factors: Mapping[str, tuple[float, float]] = dataclasses.field(default_factory=dict)
    # Demand as request sizes (empty: every request is ``workload``); ``routing`` says how they
    # reach the replicas (:mod:`inferfleet.core.mix`).
    buckets: tuple[Bucket, ...] = ()
    routing: Routing = Routing.MIXED


@dataclasses.dataclass(frozen=True)
class Policy:
    """The shared cost model and budgets."""

    domain_budgets_watts: Mapping[str, float] = dataclasses.field(default_factory=dict)
    electricity_per_kwh: float = 0.10  # $/kWh
    pue: float = 1.3
    headroom: float = 1.2  # plan capacity for demand x headroom
    churn_dollars_per_replica: float = 0.0  # one-off penalty for each replica that moves class
    time_limit_s: float = 5.0
    carbon_g_per_kwh: float | None = None


# --------------------------------------------------------------------------------------------------
# What the performance model says about one (pool, class)
# --------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Estimate:
    """A replica of a pool's model on a class: size, speed at the SLO, power and cost."""

    devices: int  # devices per replica
    rps: float  # sustainable requests/s per replica at the SLO
    ttft_s: float  # predicted p95 TTFT at that load
    tpot_s: float  # predicted p95 TPOT at that load
    batch: int  # concurrent sequences at that load
    source: Literal["analytic", "profile"] = "analytic"


class UnfitKind(enum.StrEnum):
    """What keeps a pool's model off a class: the machine fact behind an ``Unfit`` sentence."""

    FIGURES = "figures"  # the model or class lacks the figures to size a replica
    MEMORY = "memory"  # weights and KV cache do not fit
    SLO = "slo"  # even at batch 1 the latency SLO is missed
    NODE_SIZE = "nodeSize"  # a replica needs more devices than a node has
    PROFILE = "profile"  # a measured profile rules it out
    NOT_ALLOWED = "allowedClasses"  # outside the pool's allowedClasses
    UNDEFINED = "undefinedClass"  # allowedClasses names a class that does not exist
    REFUSED = "refused"  # the API server refuses the pool's replicas on this class (its words)
    UNSCHEDULABLE = "unschedulable"  # its replicas there could not be scheduled for too long


@dataclasses.dataclass(frozen=True)
class Unfit:
    """Why a pool's model cannot run on a class: the kind, and one sentence for people."""

    kind: UnfitKind
    reason: str


# --------------------------------------------------------------------------------------------------
# The optimisation problem (what the planner solves) and its answer
# --------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Option:
    """One way to serve a pool: replicas of a fixed shape on one class."""

    accelerator_class: str
    devices: int  # per replica; must fit on one node of the class
    rps: float  # per replica at the SLO
    watts: float  # per replica at planned utilisation
    dollars_per_hour: float  # per replica, hardware + energy
    ttft_s: float = 0.0
    tpot_s: float = 0.0
    preferred: bool = False
    max_replicas: int | None = None  # at most this many (None: no cap of its own)
    # Size-aware pools only: req/s per replica at the SLO of each of the pool's buckets, in its
    # order (0: the class cannot serve that bucket); ``rps`` is then the whole mix's.
    bucket_rps: tuple[float, ...] = ()


@dataclasses.dataclass(frozen=True)
class Problem:
    """The global placement problem over all pools x classes."""

    pools: tuple[Pool, ...]
    options: Mapping[str, tuple[Option, ...]]  # pool key -> feasible options
    unfit: Mapping[str, Mapping[str, Unfit]]  # pool key -> class -> why not
    classes: tuple[AcceleratorClass, ...]
    policy: Policy


class PlanStatus(enum.StrEnum):
    """How much of a pool's demand the plan serves."""

    PLACED = "Placed"
    PARTIALLY_SHED = "PartiallyShed"
    SHED = "Shed"
    UNPLACEABLE = "Unplaceable"


class BindingKind(enum.StrEnum):
    """A constraint that shapes a pool's plan."""

    POWER = "power"  # subject: the power domain
    CAPACITY = "capacity"  # subject: the accelerator class
    MAX_REPLICAS = "maxReplicas"
    MIN_REPLICAS = "minReplicas"
    UNFIT = "unfit"  # subject: an UnfitKind (why no class can run an unplaceable pool)


@dataclasses.dataclass(frozen=True, order=True)
class Binding:
    """One binding constraint of a pool's plan, as data (``str()`` is its stable short form:
    ``power:<domain>``, ``capacity:<class>``, ``maxReplicas``, ``minReplicas``, or the unfit kind)."""

    kind: BindingKind
    subject: str = ""

    def __str__(self) -> str:
        if self.kind is BindingKind.UNFIT:
            return self.subject
        return f"{self.kind}:{self.subject}" if self.subject else str(self.kind)


@dataclasses.dataclass(frozen=True)
class Placement:
    """Replicas of one pool on one class in a plan (totals over those replicas)."""

    accelerator_class: str
    replicas: int
    devices: int  # total
    watts: float  # total
    dollars_per_hour: float  # total
    rps_capacity: float  # total
    ttft_s: float
    tpot_s: float
    # Size-aware pools: the req/s of each of the pool's buckets routed to these replicas (of its
    # demand, in bucket order); empty otherwise.
    bucket_rps: tuple[float, ...] = ()


@dataclasses.dataclass(frozen=True)
class PoolPlan:
    """The plan for one pool and why it looks that way."""

    key: str
    placements: tuple[Placement, ...]
    demand_rps: float
    served_rps: float  # capacity planned, capped at demand x headroom
    status: PlanStatus
    binding: tuple[Binding, ...] = ()  # the constraints that bound this pool; empty when none did
    reason: str = ""  # one sentence for people (status messages, tables); never parsed


@dataclasses.dataclass(frozen=True)
class DomainUse:
    name: str
    budget_watts: float | None
    used_watts: float


@dataclasses.dataclass(frozen=True)
class ClassUse:
    name: str
    devices_total: int
    devices_used: int
    watts: float


@dataclasses.dataclass(frozen=True)
class SolverStats:
    status: str  # "Optimal", "TimeLimit", "Heuristic", "Empty"
    objective: float
    bound: float
    gap: float  # relative, (objective - bound) / max(|objective|, tiny)
    seconds: float
    method: str  # e.g. "milp", "lp-rounding", "greedy"


@dataclasses.dataclass(frozen=True)
class Plan:
    pools: tuple[PoolPlan, ...]
    domains: tuple[DomainUse, ...]
    classes: tuple[ClassUse, ...]
    watts: float
    dollars_per_hour: float
    solver: SolverStats
