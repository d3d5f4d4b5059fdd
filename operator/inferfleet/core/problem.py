"""The Problem builder: every pool x class turned into an Option (or the reason it is unfit).

For each pool (sorted by key) and class (sorted by name): classes outside the pool's
``allowed_classes`` are unfit ("not in allowedClasses"); otherwise ``performance.estimate`` sizes a
replica and rates it at the pool's SLO. A replica is costed at its planned utilisation, 1 /
``policy.headroom`` (the planner provisions capacity for demand x headroom, so a replica runs at
that fraction of its SLO rate). Classes with no free capacity still yield Options: capacity is the
planner's concern; only a replica larger than one whole node of the class is unfit.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence

from inferfleet.core.cost import replica_dollars_per_hour
from inferfleet.core.mix import bucket_rates, check_buckets, size_aware
from inferfleet.core.performance import estimate
from inferfleet.core.power import replica_watts
from inferfleet.core.types import (
    SLO,
    AcceleratorClass,
    Estimate,
    Option,
    Policy,
    Pool,
    Problem,
    Unfit,
    UnfitKind,
)

__all__ = ["NOT_ALLOWED", "build_problem", "corrected_slo", "planned_utilisation"]

NOT_ALLOWED = Unfit(UnfitKind.NOT_ALLOWED, "not in allowedClasses")


def corrected_slo(pool: Pool, accelerator_class: str) -> SLO:
    """The SLO a class is planned against: the pool's, divided by its measured correction factors."""
    ttft_f, tpot_f = pool.slo_factors.get(accelerator_class, (1.0, 1.0))
    if ttft_f == 1.0 and tpot_f == 1.0:
        return pool.slo
    return SLO(
        ttft_s=None if pool.slo.ttft_s is None else pool.slo.ttft_s / ttft_f,
        tpot_s=None if pool.slo.tpot_s is None else pool.slo.tpot_s / tpot_f,
    )


def planned_utilisation(policy: Policy) -> float:
    """Fraction of its SLO capacity a replica runs at when capacity is planned with headroom."""
    return 1.0 if policy.headroom <= 1.0 else 1.0 / policy.headroom


def _option(pool: Pool, cls: AcceleratorClass, est: Estimate, utilisation: float, policy: Policy) -> Option:
    watts = replica_watts(est.devices, cls.hardware, utilisation)
    return Option(
        accelerator_class=cls.name,
        devices=est.devices,
        rps=est.rps,
        watts=watts,
        dollars_per_hour=replica_dollars_per_hour(est.devices, cls.price_per_device_hour, watts, policy),
        ttft_s=est.ttft_s,
        tpot_s=est.tpot_s,
        preferred=cls.name in pool.preferred_classes,
    )


def build_problem(pools: Sequence[Pool], classes: Sequence[AcceleratorClass], policy: Policy) -> Problem:
    """The placement problem over all pools x classes, deterministic in its inputs' order."""
    sorted_pools = tuple(sorted(pools, key=lambda p: p.key))
    sorted_classes = tuple(sorted(classes, key=lambda c: c.name))
    pool_keys, class_names = [p.key for p in sorted_pools], [c.name for c in sorted_classes]
    for kind, names in (("pool key", pool_keys), ("class", class_names)):
        dupes = sorted(n for n, count in Counter(names).items() if count > 1)
        if dupes:
            raise ValueError(f"duplicate {kind}: {', '.join(dupes)}")
    utilisation = planned_utilisation(policy)
    options: dict[str, tuple[Option, ...]] = {}
    unfit: dict[str, dict[str, Unfit]] = {}
    for pool in sorted_pools:
        check_buckets(pool)
        fits: list[Option] = []
        why: dict[str, Unfit] = {}
        for cls in sorted_classes:
            if pool.allowed_classes is not None and cls.name not in pool.allowed_classes:
                why[cls.name] = NOT_ALLOWED
                continue
            if pool.buckets:  # demand as request sizes (core.mix)
                rated = bucket_rates(pool, corrected_slo(pool, cls.name), cls)
                if isinstance(rated, Unfit):
                    why[cls.name] = rated
                    continue
                opt = _option(pool, cls, rated[0], utilisation, policy)
                fits.append(dataclasses.replace(opt, bucket_rps=rated[1]) if size_aware(pool) else opt)
                continue
            est = estimate(pool.model, pool.workload, corrected_slo(pool, cls.name), cls)
            if not isinstance(est, Estimate):
                why[cls.name] = est
            elif est.devices > cls.devices_per_node:  # estimate ensures it; guard the contract
                why[cls.name] = Unfit(
                    UnfitKind.NODE_SIZE, f"needs {est.devices} devices; nodes have {cls.devices_per_node}"
                )
            else:
                fits.append(_option(pool, cls, est, utilisation, policy))
        options[pool.key] = tuple(fits)
        unfit[pool.key] = why
    return Problem(pools=sorted_pools, options=options, unfit=unfit, classes=sorted_classes, policy=policy)
