"""The InferencePool kind (namespaced): one model served under latency SLOs.

Owns the spec users write (model, server pod template, SLO, demand, placement, priority, replica
bounds), the env names the operator sets on every replica (``RESERVED_ENV``: a pool may not set them)
and the status the operator reports (conditions, per-class placement, totals, selector).
Fully qualified name ``inferencepools.inferfleet.dev``; the Gateway API Inference Extension has its
own InferencePool kind, so scripts should always use the qualified name.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Final, Literal

from pydantic import BeforeValidator, Field, PlainSerializer, WithJsonSchema

from inferfleet.api import API_VERSION
from inferfleet.api.common import DNS1035_LABEL, CelRule, Decimal, Name, Quantity, Spec, name_rule
from inferfleet.api.conditions import Conditions
from inferfleet.api.energy import EnergyStatus
from inferfleet.api.podtemplate import (
    SHM_PATH,
    SHM_VOLUME,
    ContainerSecurityContext,
    EnvFromSource,
    EnvVar,
    LocalObjectReference,
    PodSecurityContext,
    Probe,
    SharedMemory,
    SubdomainName,
    Volume,
    VolumeMount,
)

__all__ = [
    "ACCELERATOR_CLASS_ENV",
    "ARGS_TOTAL_LENGTH",
    "ARG_MAX_LENGTH",
    "ENV_TOTAL_LENGTH",
    "POOL_ENV",
    "RESERVED_ENV",
    "STARTUP_FAILURE_THRESHOLD",
    "Autoscaling",
    "Demand",
    "EnvVar",
    "InferencePool",
    "InferencePoolSpec",
    "InferencePoolStatus",
    "LastChange",
    "ModelRef",
    "PlacementPolicy",
    "PlacementStatus",
    "RequestBucket",
    "ServerTemplate",
    "SLOSpec",
]

# The environment the operator sets on every replica's server container (reconcile/children.py);
# a pool's own env may not set these names.
POOL_ENV: Final = "INFERFLEET_POOL"  # value: the InferencePool's name
ACCELERATOR_CLASS_ENV: Final = "INFERFLEET_ACCELERATOR_CLASS"  # value: the replica's AcceleratorClass
RESERVED_ENV: Final = (POOL_ENV, ACCELERATOR_CLASS_ENV)

# Totals that keep the largest valid pool well under the 256 KiB of annotations in which client-side
# kubectl apply keeps it (api/sizing.py measures it; a unit test holds it there): one argument or
# value may be long (an inline chat template), not all of them.
ARGS_TOTAL_LENGTH: Final = 16384  # characters over all of server.args
ARG_MAX_LENGTH: Final = 8192  # characters of one argument
ENV_TOTAL_LENGTH: Final = 16384  # characters over server.env's names and values
STARTUP_FAILURE_THRESHOLD: Final = 180  # the default startup probe's checks, 10 s apart: 30 minutes

_PARAMS = re.compile(r"^([0-9]{1,5}(?:\.[0-9]{1,3})?)([MBT])$")
_PARAM_FACTOR = {"M": 1e-3, "B": 1.0, "T": 1e3}


def _parse_parameters(value: Any) -> float:
    if isinstance(value, str):
        match = _PARAMS.match(value)
        if match:
            billions = float(match.group(1)) * _PARAM_FACTOR[match.group(2)]
            if billions > 0:
                return billions
    raise ValueError(f'must be a parameter count such as "8B", "70B", "560M" or "1.8T", got {value!r}')


def _format_parameters(value: float) -> str:
    return f"{value:g}B" if value >= 1 else f"{value * 1000:g}M"


Parameters = Annotated[
    float,
    BeforeValidator(_parse_parameters),
    PlainSerializer(_format_parameters, return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^[0-9]{1,5}(\.[0-9]{1,3})?[MBT]$", "maxLength": 12}),
]

Precision = Literal["fp32", "bf16", "fp16", "fp8", "int8", "int4", "fp4"]


class ModelRef(Spec):
    """The model served."""

    name: str = Field(
        min_length=1, max_length=253, description="Model identifier, e.g. meta-llama/Llama-3.1-70B-Instruct."
    )
    parameters: Parameters = Field(description='Parameter count: "8B", "70B", "560M".')
    precision: Precision = Field("bf16", description="Weight precision; decides memory fit and FLOP rate.")
    context_length: int = Field(8192, ge=128, le=2_097_152, description="Maximum context length in tokens.")
    layers: int | None = Field(
        None, ge=1, le=1000, description="Transformer layers; estimated from parameters when unset."
    )
    kv_bytes_per_token: int | None = Field(
        None,
        ge=1,
        le=67_108_864,
        description="KV-cache bytes per token (all layers, K and V); estimated when unset.",
    )

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        # the pattern admits "0B"; offline, parsing refuses it first (naming the same field)
        CelRule(
            "!self.parameters.matches('^[0.]+[MBT]$')",
            "parameters must be more than zero",
            lambda m: m.parameters > 0,
            ".parameters",
        ),
    )


class ServerTemplate(Spec):
    """The model server container every replica runs (e.g. vLLM's OpenAI server), and the parts of
    its Pod a real deployment sets (api/podtemplate.py: faithful subsets of the core/v1 shapes)."""

    image: str = Field(min_length=1, max_length=1024, description="Container image of the model server.")
    args: list[Annotated[str, Field(max_length=ARG_MAX_LENGTH)]] = Field(
        default_factory=list,
        max_length=128,
        description=f"Arguments to the server; at most {ARGS_TOTAL_LENGTH} characters together.",
    )
    port: int = Field(8000, ge=1, le=65535, description="Port the server listens on (HTTP).")
    env: list[EnvVar] = Field(
        default_factory=list,
        max_length=64,
        description=f"Environment variables; at most {ENV_TOTAL_LENGTH} characters of names and values "
        "together (a valueFrom counts the name and key it reads).",
    )
    env_from: list[EnvFromSource] = Field(
        default_factory=list, max_length=8, description="ConfigMaps and Secrets whose keys become variables."
    )
    cpu: Quantity = Field("4", description='CPU request per replica, a quantity: 4, "0.5", "500m".')
    memory: Quantity = Field(
        "32Gi", description='Memory request per replica, a quantity: "32Gi", "64G", "1.5Gi".'
    )
    volumes: list[Volume] = Field(
        default_factory=list, max_length=8, description="Volumes of the replica's Pod."
    )
    volume_mounts: list[VolumeMount] = Field(
        default_factory=list, max_length=8, description="Volumes mounted into the server container."
    )
    shared_memory: SharedMemory | None = Field(
        None,
        description=f"The memory-backed emptyDir at {SHM_PATH} (volume {SHM_VOLUME}); unset: mounted, "
        "with no size limit.",
    )
    readiness_probe: Probe | None = Field(
        None,
        description="When a replica takes traffic; unset: HTTP GET /health on the server port every 10 s "
        "(vLLM answers once the model is loaded).",
    )
    startup_probe: Probe | None = Field(
        None,
        description=f"How long a replica may take to start; unset: HTTP GET /health on the server port "
        f"every 10 s, for up to {STARTUP_FAILURE_THRESHOLD * 10 // 60} minutes (large models load slowly).",
    )
    image_pull_secrets: list[LocalObjectReference] = Field(
        default_factory=list,
        max_length=8,
        description="Secrets for pulling the image from a private registry.",
    )
    service_account_name: SubdomainName | None = Field(
        None, description="ServiceAccount the replicas run as; unset: the namespace's default."
    )
    priority_class_name: SubdomainName | None = Field(
        None, description="PriorityClass of the replicas (scheduling priority and preemption)."
    )
    runtime_class_name: SubdomainName | None = Field(
        None, description="RuntimeClass of the replicas (e.g. nvidia, for the NVIDIA container runtime)."
    )
    pod_security_context: PodSecurityContext | None = Field(
        None, description="The replica Pod's securityContext (user, groups, fsGroup, seccomp)."
    )
    security_context: ContainerSecurityContext | None = Field(
        None, description="The server container's securityContext (privilege escalation, capabilities, ...)."
    )

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        # Server-side apply keys a container's env by name: a duplicate fails every apply.
        CelRule(
            "!has(self.env) || self.env.all(e, self.env.exists_one(f, f.name == e.name))",
            "env names must be unique",
            lambda s: len({e.name for e in s.env}) == len(s.env),
            ".env",
        ),
        CelRule(
            "!has(self.env) || self.env.all(e, !(e.name in [{}]))".format(
                ", ".join(f"'{n}'" for n in RESERVED_ENV)
            ),
            f"env must not set {' or '.join(RESERVED_ENV)}: the operator sets them on every replica",
            lambda s: not any(e.name in RESERVED_ENV for e in s.env),
            ".env",
        ),
        CelRule(
            f"!has(self.args) || self.args.map(a, size(a)).sum() <= {ARGS_TOTAL_LENGTH}",
            f"args must be at most {ARGS_TOTAL_LENGTH} characters together",
            lambda s: sum(map(len, s.args)) <= ARGS_TOTAL_LENGTH,
            ".args",
        ),
        # a valueFrom's value is the name and key it reads
        CelRule(
            "!has(self.env) || self.env.map(e, size(e.name) + (has(e.value) ? size(e.value) : 0)"
            + "".join(
                f" + (has(e.valueFrom) && has(e.valueFrom.{ref}) ? "
                f"size(e.valueFrom.{ref}.name) + size(e.valueFrom.{ref}.key) : 0)"
                for ref in ("secretKeyRef", "configMapKeyRef")
            )
            + f").sum() <= {ENV_TOTAL_LENGTH}",
            f"env names and values must be at most {ENV_TOTAL_LENGTH} characters together",
            lambda s: sum(e.length() for e in s.env) <= ENV_TOTAL_LENGTH,
            ".env",
        ),
        # A Pod refuses two volumes of one name, and the operator adds its own shared-memory volume.
        CelRule(
            "!has(self.volumes) || self.volumes.all(v, self.volumes.exists_one(w, w.name == v.name))",
            "volumes must have unique names",
            lambda s: len({v.name for v in s.volumes}) == len(s.volumes),
            ".volumes",
        ),
        CelRule(
            f"!has(self.volumes) || self.volumes.all(v, v.name != '{SHM_VOLUME}')",
            f"volumes must not be named {SHM_VOLUME}: the operator mounts it at {SHM_PATH}",
            lambda s: all(v.name != SHM_VOLUME for v in s.volumes),
            ".volumes",
        ),
        CelRule(
            "!has(self.volumeMounts) || self.volumeMounts.all(m, has(self.volumes) && "
            "self.volumes.exists(v, v.name == m.name))",
            "each of volumeMounts must name one of volumes",
            lambda s: all(any(v.name == m.name for v in s.volumes) for m in s.volume_mounts),
            ".volumeMounts",
        ),
        CelRule(
            "!has(self.volumeMounts) || "
            "self.volumeMounts.all(m, self.volumeMounts.exists_one(n, n.mountPath == m.mountPath))",
            "volumeMounts must have unique mountPaths",
            lambda s: len({m.mount_path for m in s.volume_mounts}) == len(s.volume_mounts),
            ".volumeMounts",
        ),
        CelRule(
            "!has(self.volumeMounts) || (has(self.sharedMemory) && !self.sharedMemory.enabled) || "
            f"self.volumeMounts.all(m, m.mountPath != '{SHM_PATH}')",
            f"volumeMounts must not use {SHM_PATH} while sharedMemory is enabled (the operator mounts it)",
            lambda s: (
                (s.shared_memory is not None and not s.shared_memory.enabled)
                or all(m.mount_path != SHM_PATH for m in s.volume_mounts)
            ),
            ".volumeMounts",
        ),
        # A startup probe passes once: the Pod refuses any other successThreshold.
        CelRule(
            "!has(self.startupProbe) || !has(self.startupProbe.successThreshold) || "
            "self.startupProbe.successThreshold == 1",
            "startupProbe.successThreshold must be 1",
            lambda s: s.startup_probe is None or s.startup_probe.success_threshold in (None, 1),
            ".startupProbe.successThreshold",
        ),
    )


class SLOSpec(Spec):
    """Latency objectives at the 95th percentile."""

    ttft_p95_milliseconds: int | None = Field(
        None, ge=1, le=600_000, description="p95 time to first token, milliseconds."
    )
    tpot_p95_milliseconds: int | None = Field(
        None, ge=1, le=60_000, description="p95 time per output token, milliseconds."
    )

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            "has(self.ttftP95Milliseconds) || has(self.tpotP95Milliseconds)",
            "an SLO needs ttftP95Milliseconds, tpotP95Milliseconds or both",
            lambda s: s.ttft_p95_milliseconds is not None or s.tpot_p95_milliseconds is not None,
        ),
    )


class Autoscaling(Spec):
    """Follow measured demand (Prometheus) instead of the static request rate."""

    enabled: bool = Field(
        True,
        description="Follow the measured request rate while set (the default once autoscaling is given); "
        "false keeps these settings but plans requestsPerSecond.",
    )
    scale_down_stabilization_seconds: int = Field(
        300, ge=0, le=86_400, description="How long demand must stay lower before replicas are removed."
    )
    request_rate_query: str | None = Field(
        None,
        max_length=4096,
        description="PromQL for requests/s; {namespace} and {pool} are substituted. Default: vLLM metrics.",
    )
    tolerance_percent: int = Field(
        10, ge=0, le=100, description="Changes of measured demand within this band are ignored (noise)."
    )


MAX_INPUT_TOKENS: Final = 2_097_152
MAX_OUTPUT_TOKENS: Final = 131_072
REQUEST_MIX_BUCKETS: Final = 16  # buckets of one pool's request mix


def _out_top(b: str) -> str:
    """CEL: a bucket's output range's top, an output range of (0, 0] (embeddings) taken as (0, 1]."""
    return f"({b}.maxOutputTokens + ({b}.maxOutputTokens == 0 ? 1 : 0))"


def _overlap(a: str, b: str) -> str:
    """CEL: buckets ``a`` and ``b`` share some request size."""
    return (
        f"{a}.minInputTokens < {b}.maxInputTokens && {b}.minInputTokens < {a}.maxInputTokens && "
        f"{a}.minOutputTokens < {_out_top(b)} && {b}.minOutputTokens < {_out_top(a)}"
    )


def _area(b: str) -> str:
    return f"({b}.maxInputTokens - {b}.minInputTokens) * ({_out_top(b)} - {b}.minOutputTokens)"


class RequestBucket(Spec):
    """One size of request in the pool's demand: input and output lengths in (min, max] tokens (a
    min of 0 takes 0 too), and its weight among the pool's requests."""

    min_input_tokens: int = Field(
        0, ge=0, le=MAX_INPUT_TOKENS, description="Input tokens above this (0: from none)."
    )
    max_input_tokens: int = Field(ge=1, le=MAX_INPUT_TOKENS, description="Input tokens up to this.")
    min_output_tokens: int = Field(
        0, ge=0, le=MAX_OUTPUT_TOKENS, description="Output tokens above this (0: from none)."
    )
    max_output_tokens: int = Field(
        ge=0, le=MAX_OUTPUT_TOKENS, description="Output tokens up to this (0 with a min of 0: embeddings)."
    )
    weight: int = Field(
        ge=1,
        le=1_000_000,
        description="The bucket's share of the pool's requests, relative to the other buckets' weights "
        "(percentages, or req/s, as HTTPRoute backend weights): share = weight / sum of weights.",
    )

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            "self.minInputTokens < self.maxInputTokens",
            "minInputTokens must be less than maxInputTokens",
            lambda b: b.min_input_tokens < b.max_input_tokens,
            ".minInputTokens",
        ),
        CelRule(
            "self.minOutputTokens < self.maxOutputTokens || self.maxOutputTokens == 0",
            "minOutputTokens must be less than maxOutputTokens",
            lambda b: b.min_output_tokens < b.max_output_tokens or b.max_output_tokens == 0,
            ".minOutputTokens",
        ),
    )

    @property
    def output_top(self) -> int:
        return self.max_output_tokens + (1 if self.max_output_tokens == 0 else 0)

    def overlaps(self, other: RequestBucket) -> bool:
        return (
            self.min_input_tokens < other.max_input_tokens
            and other.min_input_tokens < self.max_input_tokens
            and self.min_output_tokens < other.output_top
            and other.min_output_tokens < self.output_top
        )

    @property
    def area(self) -> int:
        return (self.max_input_tokens - self.min_input_tokens) * (self.output_top - self.min_output_tokens)


def _covers_from_zero(mix: list[RequestBucket]) -> bool:
    """The buckets tile a rectangle from (0, 0): no gap, given that none overlap."""
    if not mix:
        return True
    top_in = max(b.max_input_tokens for b in mix)
    top_out = max(b.output_top for b in mix)
    return (
        min(b.min_input_tokens for b in mix) == 0
        and min(b.min_output_tokens for b in mix) == 0
        and sum(b.area for b in mix) == top_in * top_out
    )


class Demand(Spec):
    """The traffic the pool must serve at its SLO."""

    requests_per_second: Decimal = Field(
        description="Expected requests/s (the floor when autoscaling follows metrics)."
    )
    input_tokens: int = Field(512, ge=1, le=2_097_152, description="Typical input tokens per request.")
    output_tokens: int = Field(
        256, ge=0, le=131_072, description="Typical output tokens per request (0 for embedding models)."
    )
    request_mix: list[RequestBucket] = Field(
        default_factory=list,
        max_length=REQUEST_MIX_BUCKETS,
        description="The requests as a mix of sizes (buckets tiling input x output lengths from 0, no "
        "overlap, no gap; a longer request counts in the bucket at the edge it passes), instead of "
        "inputTokens and outputTokens; each bucket is planned at its largest request "
        "(docs/request-mix.md).",
    )
    # no server-side default: an operator of a version before this field must not see it set
    routing: Literal["Mixed", "SizeAware"] | None = Field(
        None,
        description="With a requestMix: Mixed (unset), every replica serves the whole mix (the pool's "
        "Service spreads requests); SizeAware, the plan sends each bucket to the classes where it is "
        "cheapest, and a router sends each request to its class's Service by the routing ConfigMap "
        "<pool>-routing (docs/request-mix.md).",
    )
    autoscaling: Autoscaling | None = Field(
        None,
        description="Plan the request rate measured in Prometheus (the operator's --prometheus-url) instead "
        "of requestsPerSecond, which stays the floor; unset: requestsPerSecond is planned. Without a "
        "Prometheus the pool says MetricsAvailable=False (NoMetricsSource) and plans requestsPerSecond "
        "(docs/autoscaling.md).",
    )

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        # every bucket overlaps itself only (a duplicate overlaps its twin)
        CelRule(
            "!has(self.requestMix) || self.requestMix.all(a, "
            f"self.requestMix.filter(b, {_overlap('a', 'b')}).size() == 1)",
            "requestMix buckets must not overlap: each request size belongs to one bucket",
            lambda d: all(sum(a.overlaps(b) for b in d.request_mix) == 1 for a in d.request_mix),
            ".requestMix",
        ),
        CelRule(
            "!has(self.requestMix) || size(self.requestMix) == 0 || "
            "(self.requestMix.map(b, b.minInputTokens).min() == 0 && "
            "self.requestMix.map(b, b.minOutputTokens).min() == 0 && "
            f"self.requestMix.map(b, {_area('b')}).sum() == "
            "self.requestMix.map(b, b.maxInputTokens).max() * "
            f"self.requestMix.map(b, {_out_top('b')}).max())",
            "requestMix buckets must leave no gap: together they cover every input length from 0 to the "
            "largest maxInputTokens with every output length from 0 to the largest maxOutputTokens",
            lambda d: _covers_from_zero(d.request_mix),
            ".requestMix",
        ),
    )


class PlacementPolicy(Spec):
    """Where replicas may go."""

    allowed_classes: list[Name] | None = Field(
        None, max_length=64, description="AcceleratorClasses replicas may use; unset means any."
    )
    preferred_classes: list[Name] = Field(
        default_factory=list, max_length=64, description="Preferred classes when cost is (nearly) equal."
    )


class InferencePoolSpec(Spec):
    """Desired state of an InferencePool."""

    model: ModelRef
    server: ServerTemplate
    slo: SLOSpec
    demand: Demand
    placement: PlacementPolicy = Field(default_factory=PlacementPolicy)
    priority: int = Field(
        0, ge=0, le=1_000_000, description="Higher is more important; the lowest is shed first."
    )
    min_replicas: int = Field(0, ge=0, le=10_000, description="Replicas kept even at zero demand.")
    max_replicas: int = Field(100, ge=1, le=10_000, description="Upper bound on replicas over all classes.")
    replicas: int | None = Field(
        None,
        ge=0,
        le=10_000,
        description="When set (e.g. by kubectl scale or an HPA), the total replica count is pinned to it; "
        "the planner still chooses the classes. Unset: sized from demand.",
    )

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            "self.minReplicas <= self.maxReplicas",
            "minReplicas must not exceed maxReplicas",
            lambda s: s.min_replicas <= s.max_replicas,
            ".minReplicas",
        ),
        CelRule(
            "!has(self.replicas) || self.replicas <= self.maxReplicas",
            "replicas must not exceed maxReplicas",
            lambda s: s.replicas is None or s.replicas <= s.max_replicas,
            ".replicas",
        ),
        CelRule(
            "!has(self.placement) || !has(self.placement.allowedClasses) || "
            "!has(self.placement.preferredClasses) || "
            "self.placement.preferredClasses.all(c, c in self.placement.allowedClasses)",
            "every preferred class must also be allowed",
            lambda s: (
                s.placement.allowed_classes is None
                or all(c in s.placement.allowed_classes for c in s.placement.preferred_classes)
            ),
            ".placement.preferredClasses",
        ),
        CelRule(
            "!has(self.demand.requestMix) || "
            "self.demand.requestMix.all(b, b.minInputTokens + b.maxOutputTokens < self.model.contextLength)",
            "every requestMix bucket must hold a request within model.contextLength: minInputTokens + "
            "maxOutputTokens below it",
            lambda s: all(
                b.min_input_tokens + b.max_output_tokens < s.model.context_length
                for b in s.demand.request_mix
            ),
            ".demand.requestMix",
        ),
    )


class PlacementStatus(Spec):
    """Replicas of the pool on one accelerator class."""

    accelerator_class: str = Field(max_length=63, description="The AcceleratorClass.")
    replicas: int = Field(ge=0, description="Planned replicas on the class.")
    ready_replicas: int = Field(0, ge=0, description="Ready replicas on the class.")
    devices: int = Field(ge=0, description="Devices over all replicas.")
    watts: int = Field(ge=0, description="Planned power over all replicas.")
    dollars_per_hour: float = Field(ge=0, description="Cost of the replicas on the class, $/h.")
    ttft_p95_milliseconds: float = Field(ge=0, description="Predicted p95 TTFT.")
    tpot_p95_milliseconds: float = Field(ge=0, description="Predicted p95 TPOT.")
    requests_per_second: float = Field(0, ge=0, description="Planned capacity over all replicas at the SLO.")
    bucket_requests_per_second: list[float] | None = Field(
        None,
        max_length=REQUEST_MIX_BUCKETS,
        description="SizeAware pools: the req/s of each requestMix bucket (in its order) the plan routes "
        "to the class (the routing ConfigMap's weights).",
    )


class Recommendation(Spec):
    """One measured demand the stabilisation window remembers."""

    time: str = Field(max_length=64, description="When it was measured (RFC 3339).")
    requests_per_second: float = Field(ge=0, description="The demand measured then, req/s.")


class ClassMeasurement(Spec):
    """Measured latency of the pool on one class, and the correction factors learnt from it."""

    accelerator_class: str = Field(max_length=63, description="The AcceleratorClass measured.")
    ttft_p95_milliseconds: float | None = Field(
        None, ge=0, description="Measured p95 TTFT (none: too few requests)."
    )
    tpot_p95_milliseconds: float | None = Field(None, ge=0, description="Measured p95 TPOT.")
    requests: float = Field(0, ge=0, description="Requests completed on the class in the window.")
    waiting: float | None = Field(None, ge=0, description="Requests queued on the class's replicas.")
    kv_cache_usage: float | None = Field(None, ge=0, description="The fullest replica's KV cache, 0-1.")
    ttft_correction: float = Field(1.0, ge=1, le=4, description="Measured / predicted p95 TTFT, learnt.")
    tpot_correction: float = Field(1.0, ge=1, le=4, description="Measured / predicted p95 TPOT, learnt.")
    updates: int = Field(0, ge=0, description="Evaluations the correction factors learnt from.")
    startup_seconds: float | None = Field(
        None, ge=0, description="Learnt time from a replica being planned to serving (model start-up)."
    )
    startup_samples: int = Field(0, ge=0, description="Start-ups the learnt time rests on.")
    starting_since: str | None = Field(
        None, max_length=64, description="Replicas planned but not serving since (a start-up being measured)."
    )
    planned_replicas: int = Field(
        0, ge=0, description="Replicas planned on the class at the last evaluation."
    )


class MeasuredBucket(Spec):
    """One requestMix bucket's share of the requests as measured (the token-length histograms)."""

    min_input_tokens: int = Field(0, ge=0, description="The bucket's minInputTokens.")
    max_input_tokens: int = Field(ge=0, description="The bucket's maxInputTokens.")
    min_output_tokens: int = Field(0, ge=0, description="The bucket's minOutputTokens.")
    max_output_tokens: int = Field(ge=0, description="The bucket's maxOutputTokens.")
    share: float = Field(ge=0, le=1, description="Its share of the requests, planned in place of its weight.")


class AutoscalingStatus(Spec):
    """What the autoscaler measured and decided: its state, so a restart or a new leader continues."""

    observed_requests_per_second: float | None = Field(None, ge=0, description="Measured offered load.")
    demand_requests_per_second: float = Field(0, ge=0, description="The demand the pool is planned for.")
    signal: str = Field("", max_length=32, description="The last evaluation's outcome, e.g. ScaleUp, Held.")
    metrics_problem: str | None = Field(None, max_length=64, description="Why metrics were unusable.")
    sample_age_seconds: float | None = Field(None, ge=0, description="Age of the newest metrics sample.")
    last_evaluation_time: str | None = Field(
        None, max_length=64, description="When demand was last evaluated."
    )
    last_scale_time: str | None = Field(None, max_length=64, description="When the demand last changed.")
    missing_since: str | None = Field(None, max_length=64, description="Since when metrics are unusable.")
    burst_requests_per_second: float | None = Field(
        None, ge=0, description="Measured offered load over the short window (scale-up only)."
    )
    consecutive_breaches: int = Field(
        0, ge=0, description="Settled evaluations in a row with a measured p95 above the SLO."
    )
    recommendations: list[Recommendation] = Field(
        default_factory=list, max_length=64, description="Measured demands within the stabilization window."
    )
    classes: list[ClassMeasurement] = Field(
        default_factory=list, max_length=64, description="Measured latency per class, and what was learnt."
    )
    request_mix: list[MeasuredBucket] | None = Field(
        None,
        max_length=REQUEST_MIX_BUCKETS,
        description="A pool with a requestMix: each bucket's share as measured from the token-length "
        "histograms and planned (a change within tolerancePercent is ignored); unset: the weights.",
    )


class LastChange(Spec):
    """The last change the operator made to the pool's replicas."""

    time: str = Field(max_length=64, description="When (RFC 3339).")
    reason: str = Field(max_length=4096, description="What changed and why, in a sentence.")


class InferencePoolStatus(Spec):
    """Observed state, written by the operator."""

    observed_generation: int | None = Field(None, ge=0, description="The metadata.generation last acted on.")
    conditions: Conditions = Field(default_factory=list)
    placements: list[PlacementStatus] = Field(
        default_factory=list, max_length=64, description="Replicas per accelerator class."
    )
    replicas: int = Field(0, ge=0, description="Planned replicas over all classes.")
    ready_replicas: int = Field(0, ge=0, description="Ready replicas over all classes.")
    watts: int = Field(0, ge=0, description="Planned power over all replicas, W.")
    dollars_per_hour: float = Field(0, ge=0, description="Cost of all replicas, $/h.")
    demand_requests_per_second: float = Field(0, ge=0, description="Demand the last plan used.")
    placement_summary: str = Field("", max_length=1024, description="e.g. h100=2,mi300x=1")
    selector: str = Field("", max_length=1024, description="Label selector of all replicas (scale).")
    last_change: LastChange | None = Field(None, description="The last change to the pool's replicas.")
    autoscaling: AutoscalingStatus | None = Field(
        None, description="The autoscaler's state (spec.demand.autoscaling.enabled)."
    )
    energy: EnergyStatus | None = Field(None, description="What the pool's plan draws and buys.")


class InferencePool(Spec):
    """One model served under latency SLOs, placed by inferfleet across accelerator classes."""

    # The pool's name is its Service's name and the value of its replicas' labels (app.kubernetes.io/
    # instance, inferfleet.dev/pool); its Deployments are "<pool>-<class>", shortened with a hash
    # past 63 characters (reconcile/children.py), so they need nothing more of the name.
    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        name_rule(
            DNS1035_LABEL,
            "metadata.name must be at most 63 lower-case letters, digits and '-', beginning with a "
            "letter and ending with a letter or digit: it names the pool's Service and labels its replicas",
        ),
    )

    api_version: Literal["inferfleet.dev/v1alpha1"] = API_VERSION
    kind: Literal["InferencePool"] = "InferencePool"
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: InferencePoolSpec
    status: InferencePoolStatus | None = None
