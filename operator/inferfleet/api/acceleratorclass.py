"""The AcceleratorClass kind (cluster-scoped): one kind of hardware pool.

Owns how its nodes are selected (node selector, tolerations), the extended resource a replica
requests, devices per node, the hardware figures the performance model needs, the price (hourly, or
capital cost amortised), the power domain, an optional capacity override and measured profiles.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Final, Literal

from pydantic import Field

from inferfleet.api import API_VERSION
from inferfleet.api.common import DNS1123_LABEL, CelRule, Decimal, Name, Size, Spec, name_rule
from inferfleet.api.conditions import Conditions

__all__ = [
    "LABEL_VALUE",
    "PROFILE_BUCKETS_TOTAL",
    "AcceleratorClass",
    "AcceleratorClassSpec",
    "AcceleratorClassStatus",
    "CapacityOverride",
    "HardwareSpec",
    "InterconnectSpec",
    "PriceSpec",
    "ProfileBucket",
    "ProfileSpec",
    "QualifiedName",
    "is_qualified_name",
    "Toleration",
]

LabelKey = Annotated[
    str, Field(min_length=1, max_length=317, pattern=r"^([a-z0-9.-]{1,253}/)?[-A-Za-z0-9_.]{1,63}$")
]
LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
LabelValue = Annotated[str, Field(max_length=63, pattern=LABEL_VALUE)]
# A label or taint key as the API server checks it: an optional DNS-subdomain prefix and '/', then at
# most 63 letters, digits, '-', '_' and '.', beginning and ending alphanumeric.  "[.]", not a backslash,
# so the same text is a CEL string literal; the prefix's limit of 253 characters needs CEL (a pattern
# cannot bound it): see the rules of Toleration and AcceleratorClassSpec.
QUALIFIED_NAME = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
PREFIX_MAX = 253
# Measured profiles' buckets over all of a class's profiles: keeps the largest valid class well under
# the 256 KiB of annotations in which client-side kubectl apply keeps it (api/sizing.py).
PROFILE_BUCKETS_TOTAL: Final = 512
_QUALIFIED = re.compile(QUALIFIED_NAME)
QualifiedName = Annotated[str, Field(min_length=1, max_length=317, pattern=QUALIFIED_NAME)]


def is_qualified_name(key: str) -> bool:
    """``key`` is a valid label or taint key (the Python side of the CEL checks of one)."""
    return _QUALIFIED.fullmatch(key) is not None and key.find("/") <= PREFIX_MAX


class Toleration(Spec):
    """A Kubernetes toleration copied onto every replica placed on this class; the rules are the Pod's."""

    key: QualifiedName | None = Field(
        None, description="Taint key tolerated; unset (with operator Exists) tolerates every taint."
    )
    operator: Literal["Equal", "Exists"] = Field(
        "Equal", description="Equal (the taint's value must match) or Exists (any value)."
    )
    value: LabelValue | None = Field(None, description="Taint value matched by Equal; empty with Exists.")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        None, description="Taint effect tolerated; unset: every effect."
    )
    toleration_seconds: int | None = Field(
        None,
        ge=0,
        le=2**31 - 1,
        description="How long a NoExecute taint is tolerated before eviction; unset: forever.",
    )

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            f"!has(self.key) || self.key.indexOf('/') <= {PREFIX_MAX}",
            f"key's prefix (before '/') must be at most {PREFIX_MAX} characters",
            lambda t: t.key is None or t.key.find("/") <= PREFIX_MAX,
            ".key",
        ),
        CelRule(
            "has(self.key) || self.operator == 'Exists'",
            "key may be unset only with operator Exists (which tolerates every taint)",
            lambda t: t.key is not None or t.operator == "Exists",
            ".key",
        ),
        CelRule(
            "self.operator != 'Exists' || !has(self.value) || self.value == ''",
            "value must be empty when operator is Exists",
            lambda t: t.operator != "Exists" or not t.value,
            ".value",
        ),
        CelRule(
            "!has(self.tolerationSeconds) || (has(self.effect) && self.effect == 'NoExecute')",
            "tolerationSeconds needs effect NoExecute",
            lambda t: t.toleration_seconds is None or t.effect == "NoExecute",
            ".tolerationSeconds",
        ),
    )


class InterconnectSpec(Spec):
    """The fabric a tensor-parallel replica all-reduces over; unset figures take the kind's defaults."""

    kind: Literal["NVLink", "InfinityFabric", "PCIe", "NeuronLink", "ICI", "RealScale", "OnWafer"] = Field(
        description="NVLink, InfinityFabric, PCIe (cards such as L4), NeuronLink, ICI (TPU), RealScale "
        "(Groq: scheduled hops, counted in layerLatencyMicroseconds) or OnWafer (no all-reduce)."
    )
    bandwidth_g_bps: int | None = Field(
        None, ge=1, le=10**7, description="Link bandwidth per device, one direction, GB/s; unset: the kind's."
    )
    latency_microseconds: Decimal | None = Field(
        None,
        description="Latency of one all-reduce step (ceil(log2 devices) per all-reduce); unset: the kind's.",
    )


class HardwareSpec(Spec):
    """Figures of ONE device (a GPU, a chip, or one wafer-scale system)."""

    memory: Size = Field(description='Device memory (HBM or on-chip SRAM), e.g. "80Gi", "230Mi".')
    memory_bandwidth_g_bps: int = Field(
        ge=1, le=10**9, description="Memory bandwidth, GB/s (3350 for an H100 SXM)."
    )
    bf16_tflops: int = Field(ge=1, le=10**7, description="Dense BF16 TFLOPS.")
    fp8_tflops: int | None = Field(None, ge=1, le=10**7, description="Dense FP8 TFLOPS; unset: no FP8 path.")
    power_idle_watts: int = Field(ge=0, le=10**6, description="Power of an idle device, W.")
    power_busy_watts: int = Field(ge=1, le=10**6, description="Power of a fully loaded device, W.")
    layer_latency_microseconds: Decimal = Field(
        default=0.0,
        description="Fixed latency per layer per decode step (fabric hops, launches); bounds SRAM systems.",
    )
    interconnect: InterconnectSpec | None = Field(
        None,
        description="Tensor-parallel fabric between the devices of a replica; unset: no all-reduce cost.",
    )

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            "self.powerIdleWatts <= self.powerBusyWatts",
            "powerIdleWatts must not exceed powerBusyWatts",
            lambda s: s.power_idle_watts <= s.power_busy_watts,
            ".powerIdleWatts",
        ),
    )


class PriceSpec(Spec):
    """What one device costs: an hourly price, or a capital cost amortised over its lifetime."""

    dollars_per_device_hour: Decimal | None = Field(
        None, description='Hourly price per device, e.g. "12.29".'
    )
    capital_dollars_per_device: Decimal | None = Field(
        None, description="Purchase price per device (systems sold by capital cost)."
    )
    lifetime_years: int = Field(5, ge=1, le=20, description="Amortisation period of the capital cost.")

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            "has(self.dollarsPerDeviceHour) != has(self.capitalDollarsPerDevice)",
            "set exactly one of dollarsPerDeviceHour and capitalDollarsPerDevice",
            lambda s: (s.dollars_per_device_hour is None) != (s.capital_dollars_per_device is None),
        ),
    )


class CapacityOverride(Spec):
    """Capacity the planner may use instead of the matching nodes (e.g. a pool a node autoscaler grows)."""

    nodes: int = Field(ge=0, le=100_000, description="Nodes of devicesPerNode devices each.")


class ProfileBucket(Spec):
    """Max req/s at the SLO for requests up to these lengths (a Mélange/AIBrix profile bucket)."""

    input_tokens: int = Field(ge=1, le=2_097_152, description="Requests with at most this many input tokens.")
    output_tokens: int = Field(ge=0, le=131_072, description="...and at most this many output tokens.")
    requests_per_second: Decimal = Field(description="Max requests/s per replica at the SLO.")


class ProfileSpec(Spec):
    """A measured profile of one model on this class; overrides the analytic model where given."""

    model: str = Field(min_length=1, max_length=253, description="Matches spec.model.name of a pool.")
    devices: int | None = Field(None, ge=1, le=4096, description="Devices per replica it was measured with.")
    requests_per_second: Decimal | None = Field(None, description="One figure for every request shape.")
    buckets: list[ProfileBucket] = Field(
        default_factory=list,
        max_length=64,
        description=f"At most {PROFILE_BUCKETS_TOTAL} over all of the class's profiles.",
    )

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            "has(self.requestsPerSecond) || (has(self.buckets) && size(self.buckets) > 0)",
            "a profile needs requestsPerSecond or buckets",
            lambda s: s.requests_per_second is not None or len(s.buckets) > 0,
        ),
    )


class AcceleratorClassSpec(Spec):
    """Desired state of an AcceleratorClass."""

    # keys: a rule below, not a pattern (a structural schema has none for map keys), so plan says
    # what the API server says
    node_selector: dict[Annotated[str, Field(max_length=317)], LabelValue] = Field(
        max_length=16, description="Labels selecting the class's nodes; copied onto every replica."
    )
    tolerations: list[Toleration] = Field(
        default_factory=list,
        max_length=16,
        description="Tolerations copied onto every replica (the class's taints).",
    )
    resource_name: str = Field(
        min_length=1,
        max_length=253,
        pattern=r"^[a-z0-9.-]{1,200}/[-A-Za-z0-9_.]{1,63}$",
        description="Extended resource a replica requests, e.g. nvidia.com/gpu, aws.amazon.com/neuron.",
    )
    devices_per_node: int = Field(
        ge=1, le=4096, description="Devices on each node; a replica fits on one node."
    )
    hardware: HardwareSpec
    price: PriceSpec
    power_domain: Name = Field(description="Power domain (hall, row, site) whose budget this class draws on.")
    capacity: CapacityOverride | None = Field(None, description="Override capacity from nodes.")
    profiles: list[ProfileSpec] = Field(
        default_factory=list,
        max_length=64,
        description="Measured profiles; override the analytic model per model.",
    )

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            "size(self.nodeSelector) > 0",
            "nodeSelector needs at least one label, or replicas could land on any node",
            lambda s: len(s.node_selector) > 0,
            ".nodeSelector",
        ),
        # A structural schema cannot constrain map keys; the Pod's nodeSelector must be valid labels.
        CelRule(
            f"self.nodeSelector.all(k, k.matches('{QUALIFIED_NAME}') && k.indexOf('/') <= {PREFIX_MAX})",
            "nodeSelector keys must be label keys: [prefix/]name, the prefix a DNS subdomain of at most "
            "253 characters, the name at most 63 letters, digits, '-', '_' or '.', alphanumeric at both ends",
            lambda s: all(is_qualified_name(k) for k in s.node_selector),
            ".nodeSelector",
        ),
        CelRule(
            "!has(self.profiles) || "
            f"self.profiles.map(p, has(p.buckets) ? size(p.buckets) : 0).sum() <= {PROFILE_BUCKETS_TOTAL}",
            f"profiles must have at most {PROFILE_BUCKETS_TOTAL} buckets together",
            lambda s: sum(len(p.buckets) for p in s.profiles) <= PROFILE_BUCKETS_TOTAL,
            ".profiles",
        ),
    )


class AcceleratorClassStatus(Spec):
    """Observed capacity and use, written by the operator."""

    observed_generation: int | None = Field(None, ge=0, description="The metadata.generation last acted on.")
    nodes: int = Field(0, ge=0, description="Matching nodes.")
    ready_nodes: int = Field(0, ge=0, description="Matching Ready, schedulable nodes.")
    devices_total: int = Field(0, ge=0, description="Devices on the Ready nodes the plan counts.")
    devices_used: int = Field(0, ge=0, description="Devices the planned replicas hold.")
    watts: int = Field(0, ge=0, description="Planned power of the class's replicas, W.")
    power_budget_watts: int | None = Field(
        None,
        ge=0,
        description="The budget of the class's power domain the last plan honoured; kept so that a "
        "deleted FleetPolicy cannot silently lift it.",
    )
    conditions: Conditions = Field(default_factory=list)


class AcceleratorClass(Spec):
    """One kind of accelerator node pool, its figures, price and power domain."""

    # The class's name is a label value on replicas (inferfleet.dev/accelerator-class), is what pools'
    # placement.allowedClasses name (a DNS-1123 label) and the tail of "<pool>-<class>" Deployments.
    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        name_rule(
            DNS1123_LABEL,
            "metadata.name must be at most 63 lower-case letters, digits and '-', beginning and ending "
            "with a letter or digit (no '.'): it is a label value on replicas and part of their "
            "Deployment's name",
        ),
    )

    api_version: Literal["inferfleet.dev/v1alpha1"] = API_VERSION
    kind: Literal["AcceleratorClass"] = "AcceleratorClass"
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: AcceleratorClassSpec
    status: AcceleratorClassStatus | None = None
