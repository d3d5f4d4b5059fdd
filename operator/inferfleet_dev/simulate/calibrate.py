"""Step-time constants of a (model, accelerator class) from the project's roofline.

Owns the bridge from the planner's performance model to the engine: the devices per replica come
from ``core.performance.estimate`` (the planner's choice; without an SLO fit, the estimate without
an SLO, else the memory fit), then ``core.roofline.shape_of`` gives the per-device constants, scaled
to that device count exactly as the roofline scales them (sum over devices, derated per doubling):

    alpha = weights / bandwidth + layers x layer latency + sync (one pass over the weights)
    beta  = KV bytes per token x (n_in + n_out / 2) / bandwidth + sync_token  (one sequence)
    gamma = 2 x params / FLOP rate + sync_token                  (per token of compute)

with ``sync`` and ``sync_token`` the tensor-parallel all-reduces (``roofline.sync_seconds``: zero on
one device or without an interconnect), on both sides of the max as in the roofline.

and the KV cache room in tokens.  At batch B the engine then serves the roofline's
``B / (n_out x step(B) + B x prefill)``.
"""

from __future__ import annotations

import dataclasses
import math

from inferfleet.core import sizing
from inferfleet.core.performance import estimate
from inferfleet.core.roofline import TP_SCALING_PER_DOUBLING, shape_of, sync_seconds
from inferfleet.core.types import SLO, AcceleratorClass, Estimate, Pool
from inferfleet_dev.simulate.engine import StepModel

__all__ = ["Calibration", "calibrate"]


@dataclasses.dataclass(frozen=True)
class Calibration:
    """What a replica of ``pool`` on ``cls`` runs with."""

    step: StepModel
    devices: int
    kv_capacity_tokens: float
    estimate: Estimate | None  # the planner's estimate at the pool's SLO (None: unfit there)


def _devices(pool: Pool, cls: AcceleratorClass) -> tuple[int, Estimate | None]:
    at_slo = estimate(pool.model, pool.workload, pool.slo, cls)
    if isinstance(at_slo, Estimate):
        return at_slo.devices, at_slo
    free = estimate(pool.model, pool.workload, SLO(), cls)
    if isinstance(free, Estimate):
        return free.devices, None
    need = sizing.min_devices(pool.model, cls.hardware, sizing.fit_tokens(pool.model, pool.workload))
    return max(1, min(need, cls.devices_per_node)), None


def calibrate(pool: Pool, cls: AcceleratorClass) -> Calibration:
    """The engine constants of ``pool``'s model on one replica of ``cls``."""
    devices, est = _devices(pool, cls)
    shape = shape_of(pool.model, cls.hardware)
    scale = devices * math.pow(devices, math.log2(TP_SCALING_PER_DOUBLING))
    bandwidth, flops = shape.bandwidth * scale, shape.flops * scale
    mean_context = pool.workload.input_tokens + pool.workload.output_tokens / 2.0
    sync, sync_token = sync_seconds(shape, devices)
    fixed = shape.fixed + sync
    step = StepModel(
        alpha=shape.weights / bandwidth + fixed,
        beta=shape.kv_token * mean_context / bandwidth + sync_token,
        gamma=2.0 * shape.params / flops + sync_token,
        fixed=fixed,
    )
    free = devices * shape.usable - shape.weights
    kv_tokens = max(0.0, math.floor(free / shape.kv_token)) if shape.kv_token > 0 else math.inf
    return Calibration(step, devices, kv_tokens, est)
