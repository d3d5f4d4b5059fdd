"""API objects to core dataclasses, one object at a time.

Owns the mapping from pydantic API objects (``inferfleet.api``) to the pure core's types
(``inferfleet.core.types``), so the core survives API version changes, and the unit conversions on
that way (kW to W, GiB, GB/s).  Capacity comes from ``translate.inventory``; the whole problem is
assembled by ``translate.problem``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from inferfleet.api.acceleratorclass import AcceleratorClass as ApiClass
from inferfleet.api.acceleratorclass import InterconnectSpec
from inferfleet.api.fleetpolicy import FleetPolicy as ApiPolicy
from inferfleet.api.inferencepool import InferencePool as ApiPool
from inferfleet.api.inferencepool import InferencePoolSpec
from inferfleet.core import cost
from inferfleet.core import types as core
from inferfleet.core.roofline import INTERCONNECT_DEFAULTS, Interconnect, LinkedHardware
from inferfleet.core.units import GIGA, KILO, MICRO, MILLI, TERA

__all__ = ["buckets", "pool_key", "to_core_class", "to_core_policy", "to_core_pool", "watts"]


def pool_key(pool: ApiPool) -> str:
    """``namespace/name``: how the core and the reports name a pool."""
    return f"{pool.metadata.get('namespace', 'default')}/{pool.metadata['name']}"


def watts(kilowatts: float) -> float:
    """The API's kilowatts as the core's watts."""
    return kilowatts * KILO


def _interconnect(spec: InterconnectSpec | None) -> Interconnect | None:
    """The core interconnect: the kind's defaults with the figures the object gives."""
    if spec is None:
        return None
    base = INTERCONNECT_DEFAULTS[spec.kind]
    return Interconnect(
        spec.kind,
        base.bandwidth_bytes_per_s if spec.bandwidth_g_bps is None else spec.bandwidth_g_bps * GIGA,
        base.step_latency_s if spec.latency_microseconds is None else spec.latency_microseconds * MICRO,
    )


def to_core_class(
    cls: ApiClass, node_free_devices: tuple[int, ...], node_names: tuple[str, ...] = ()
) -> core.AcceleratorClass:
    spec = cls.spec
    hw = spec.hardware
    price = spec.price
    if price.dollars_per_device_hour is not None:
        hourly = price.dollars_per_device_hour
    else:
        assert price.capital_dollars_per_device is not None  # CEL: exactly one is set
        hourly = cost.amortised_hourly_price(price.capital_dollars_per_device, price.lifetime_years)
    return core.AcceleratorClass(
        name=str(cls.metadata["name"]),
        hardware=LinkedHardware(
            memory_bytes=float(hw.memory),
            memory_bandwidth_bytes_per_s=hw.memory_bandwidth_g_bps * GIGA,
            flops_bf16=float(hw.bf16_tflops) * TERA,
            flops_fp8=float(hw.fp8_tflops) * TERA if hw.fp8_tflops is not None else None,
            power_idle_watts=float(hw.power_idle_watts),
            power_busy_watts=float(hw.power_busy_watts),
            layer_latency_s=hw.layer_latency_microseconds * MICRO,
            interconnect=_interconnect(hw.interconnect),
        ),
        devices_per_node=spec.devices_per_node,
        price_per_device_hour=hourly,
        power_domain=spec.power_domain,
        node_free_devices=node_free_devices,
        node_names=node_names,
        profiles=tuple(
            core.Profile(
                model=p.model,
                devices=p.devices,
                rps=p.requests_per_second,
                points=tuple(
                    core.ProfilePoint(b.input_tokens, b.output_tokens, b.requests_per_second)
                    for b in p.buckets
                ),
            )
            for p in spec.profiles
        ),
    )


def buckets(spec: InferencePoolSpec, shares: Sequence[float] | None = None) -> tuple[core.Bucket, ...]:
    """The pool's request mix for the planner: each bucket rated at its largest request that fits
    the model's context (its longest output after the longest input that leaves room for it;
    admission keeps one inside every bucket), share = its weight over the weights' sum, or
    ``shares`` (measured, one per bucket, summing to 1)."""
    mix, context = spec.demand.request_mix, spec.model.context_length
    total = sum(b.weight for b in mix)
    if shares is None or len(shares) != len(mix) or not 0.99 <= sum(shares) <= 1.01:
        shares = [b.weight / total for b in mix]
    else:
        shares = [s / sum(shares) for s in shares]
    return tuple(
        core.Bucket(
            core.Workload(min(b.max_input_tokens, context - b.max_output_tokens), b.max_output_tokens), share
        )
        for b, share in zip(mix, shares, strict=True)
    )


def _workload(spec: InferencePoolSpec, mix: tuple[core.Bucket, ...]) -> core.Workload:
    """The typical request: the spec's, or the share-weighted mean of the mix's (tokens/s figures)."""
    if not mix:
        return core.Workload(spec.demand.input_tokens, spec.demand.output_tokens)
    return core.Workload(
        max(1, round(sum(b.share * b.workload.input_tokens for b in mix))),
        round(sum(b.share * b.workload.output_tokens for b in mix)),
    )


def to_core_pool(
    pool: ApiPool,
    current: Mapping[str, int] | None = None,
    demand_rps: float | None = None,
    slo_factors: Mapping[str, tuple[float, float]] | None = None,
    mix_shares: Sequence[float] | None = None,
) -> core.Pool:
    """``demand_rps`` overrides the static demand (measured demand, or a what-if); ``slo_factors``
    are the measured (TTFT, TPOT) correction factors per class; ``mix_shares`` the request mix's
    measured shares."""
    spec = pool.spec
    model = spec.model
    demand = spec.demand.requests_per_second if demand_rps is None else demand_rps
    min_replicas, max_replicas = spec.min_replicas, spec.max_replicas
    if spec.replicas is not None:  # pinned by kubectl scale / an HPA: the count is fixed
        min_replicas = max_replicas = spec.replicas
        demand = 0.0
    return core.Pool(
        key=pool_key(pool),
        model=core.ModelSpec(
            name=model.name,
            parameters_b=model.parameters,
            precision=model.precision,
            context_length=model.context_length,
            layers=model.layers,
            kv_bytes_per_token=model.kv_bytes_per_token,
        ),
        slo=core.SLO(
            ttft_s=spec.slo.ttft_p95_milliseconds * MILLI if spec.slo.ttft_p95_milliseconds else None,
            tpot_s=spec.slo.tpot_p95_milliseconds * MILLI if spec.slo.tpot_p95_milliseconds else None,
        ),
        workload=_workload(spec, mix := buckets(spec, mix_shares)),
        buckets=mix,
        routing=core.Routing.SIZE_AWARE if spec.demand.routing == "SizeAware" else core.Routing.MIXED,
        demand_rps=demand,
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        priority=spec.priority,
        allowed_classes=frozenset(spec.placement.allowed_classes)
        if spec.placement.allowed_classes is not None
        else None,
        preferred_classes=frozenset(spec.placement.preferred_classes),
        slo_factors=dict(slo_factors or {}),
        current=dict(current or {}),
    )


def to_core_policy(policy: ApiPolicy | None, time_limit_s: float | None = None) -> core.Policy:
    if policy is None:  # no FleetPolicy: no budgets, the API's defaults for the rest
        return core.Policy(churn_dollars_per_replica=1.0)
    spec = policy.spec
    return core.Policy(
        domain_budgets_watts={d.name: watts(d.budget_kilowatts) for d in spec.power_domains},
        electricity_per_kwh=spec.electricity.dollars_per_kilowatt_hour,
        pue=spec.electricity.pue,
        headroom=1.0 + spec.slo_headroom_percent / 100.0,
        churn_dollars_per_replica=spec.churn_dollars_per_replica_move,
        time_limit_s=float(time_limit_s or spec.planning.solver_time_limit_seconds),
        carbon_g_per_kwh=float(spec.electricity.carbon_grams_per_kilowatt_hour)
        if spec.electricity.carbon_grams_per_kilowatt_hour is not None
        else None,
    )
