"""Roofline arithmetic: decode step, TTFT, TPOT and the largest batch meeting an SLO on d devices.

Per decode step at batch B on d devices (bandwidth and FLOPs summed over the devices, derated by
BANDWIDTH_EFFICIENCY, COMPUTE_EFFICIENCY and TP_SCALING_PER_DOUBLING per doubling of d):

    step(B) = max((weights + B x KV bytes at average context) / bandwidth, 2 x params x B / flops)
              + layers x layer_latency
    prefill = 2 x params x input_tokens / flops            (compute-bound, batched)
    TPOT(B) = step(B) + B x prefill / output_tokens        (prefills stall the decode batch)
    TTFT(B) = step(B) + max(prefill, weights / bandwidth) + layers x layer_latency
    rps(B)  = B / (output_tokens x step(B) + B x prefill)

Every term is linear in B (or a max of two), so the largest B meeting the SLO and the KV memory has
a closed form. Embedding models (no output tokens) run prefill batches of k requests; a request
waits for the running batch and then runs in the next, so TTFT = 2 x batch time.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from inferfleet.core import sizing
from inferfleet.core.types import Hardware, ModelSpec, Unfit, UnfitKind
from inferfleet.core.units import GIB

__all__ = [
    "BANDWIDTH_EFFICIENCY",
    "COMPUTE_EFFICIENCY",
    "TP_SCALING_PER_DOUBLING",
    "Operating",
    "Shape",
    "batch1_step_s",
    "effective_flops",
    "format_seconds",
    "shape_of",
    "solve",
]

BANDWIDTH_EFFICIENCY = 0.75  # achieved fraction of peak memory bandwidth in decode
COMPUTE_EFFICIENCY = 0.50  # achieved fraction of dense peak FLOPs in batched matmuls
TP_SCALING_PER_DOUBLING = 0.90  # bandwidth and FLOPs kept per doubling of devices (all-reduces)
_TP_EXPONENT = math.log2(TP_SCALING_PER_DOUBLING)
_EIGHT_BIT_OR_LESS = frozenset({"fp8", "int8", "int4", "fp4"})


def effective_flops(hw: Hardware, precision: str) -> float:
    """Dense FLOP/s a precision runs at: the FP8 rate for <= 8-bit weights when the hardware has
    one (else BF16, no speed-up), half the BF16 rate for FP32 (TF32 tensor cores)."""
    if precision in _EIGHT_BIT_OR_LESS and hw.flops_fp8 is not None:
        return hw.flops_fp8
    if precision == "fp32":
        return hw.flops_bf16 / 2.0
    return hw.flops_bf16


def format_seconds(seconds: float) -> str:
    """Human latency: '45 ms', '1.2 s', '350 us'."""
    if seconds >= 1.0:
        return f"{seconds:.3g} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds * 1e6:.3g} us"


class Shape(NamedTuple):
    """A model on one device of some hardware: the constants the roofline needs."""

    params: float  # parameters
    weights: float  # bytes
    kv_token: float  # KV-cache bytes per token
    fixed: float  # s per forward pass: layers x layer latency
    usable: float  # bytes of memory per device for weights + KV
    bandwidth: float  # derated bytes/s per device
    flops: float  # derated FLOP/s per device at the model's precision


class Operating(NamedTuple):
    """The operating point at the largest batch meeting the SLO."""

    rps: float
    ttft_s: float
    tpot_s: float
    batch: int


def shape_of(model: ModelSpec, hw: Hardware) -> Shape:
    """The roofline constants of ``model`` on ``hw``."""
    return Shape(
        params=model.parameters_b * 1e9,
        weights=sizing.weight_bytes(model),
        kv_token=sizing.kv_bytes_per_token(model),
        fixed=sizing.layers(model) * hw.layer_latency_s,
        usable=sizing.usable_bytes_per_device(hw),
        bandwidth=hw.memory_bandwidth_bytes_per_s * BANDWIDTH_EFFICIENCY,
        flops=effective_flops(hw, model.precision) * COMPUTE_EFFICIENCY,
    )


def _scale(devices: int) -> float:
    return float(devices) * math.pow(devices, _TP_EXPONENT)


def batch1_step_s(s: Shape, devices: int, context_tokens: int) -> float:
    """Seconds per decode step of one sequence at ``context_tokens`` of context."""
    scale = _scale(devices)
    memory = (s.weights + s.kv_token * context_tokens) / (s.bandwidth * scale)
    return max(memory, 2.0 * s.params / (s.flops * scale)) + s.fixed


def _miss(what: str, predicted: float, target: float, devices: int) -> Unfit:
    plural = "s" if devices != 1 else ""
    return Unfit(
        UnfitKind.SLO,
        f"predicted {what} {format_seconds(predicted)} at batch 1 on {devices} device{plural} "
        f"exceeds the {format_seconds(target)} SLO",
    )


def solve(
    s: Shape, devices: int, n_in: int, n_out: int, *, ttft_slo: float | None, tpot_slo: float | None
) -> Operating | Unfit:
    """The operating point on exactly ``devices`` devices, or why there is none."""
    scale = _scale(devices)
    bandwidth, flops = s.bandwidth * scale, s.flops * scale
    fixed = s.fixed
    weight_read = s.weights / bandwidth
    free = devices * s.usable - s.weights
    capacity = math.floor(free / (s.kv_token * (n_in + n_out))) if free > 0 else 0
    if capacity < 1:
        gib = s.weights / GIB
        return Unfit(
            UnfitKind.MEMORY, f"{gib:.1f} GiB of weights leave no room for a KV cache on {devices} device(s)"
        )
    prefill = 2.0 * s.params * n_in / flops
    if n_out == 0:
        return _solve_prefill_only(devices, capacity, prefill, weight_read, fixed, ttft_slo=ttft_slo)
    kv_read = s.kv_token * (n_in + n_out / 2.0) / bandwidth  # per sequence, at average context
    compute = 2.0 * s.params / flops  # per sequence per step
    stall = prefill / n_out  # prefill time charged to each output token
    alone = max(prefill, weight_read) + fixed  # a lone request's prefill
    limit = float(capacity)
    if tpot_slo is not None:
        room = tpot_slo - fixed
        limit = min(limit, (room - weight_read) / (kv_read + stall), room / (compute + stall))
    if ttft_slo is not None:
        room = ttft_slo - fixed - alone
        limit = min(limit, (room - weight_read) / kv_read, room / compute)
    batch = max(1, math.floor(limit))
    while True:
        step = max(weight_read + kv_read * batch, compute * batch) + fixed
        tpot = step + batch * stall
        tpot_bad = tpot_slo is not None and tpot > tpot_slo
        if not tpot_bad and (ttft_slo is None or step + alone <= ttft_slo):
            return Operating(batch / (n_out * step + batch * prefill), step + alone, tpot, batch)
        if batch == 1:
            if tpot_bad:
                return _miss("TPOT", tpot, tpot_slo or 0.0, devices)
            return _miss("TTFT", step + alone, ttft_slo or 0.0, devices)
        batch -= 1  # the floating-point edge of the closed form


def _solve_prefill_only(
    devices: int, capacity: int, prefill: float, weight_read: float, fixed: float, *, ttft_slo: float | None
) -> Operating | Unfit:
    limit = float(capacity)
    if ttft_slo is not None:
        if 2.0 * (weight_read + fixed) > ttft_slo:  # no batch size helps: one pass is too slow
            limit = 1.0
        limit = min(limit, (ttft_slo / 2.0 - fixed) / prefill)
    k = max(1, math.floor(limit))
    while True:
        batch_time = max(weight_read, prefill * k) + fixed
        if ttft_slo is None or 2.0 * batch_time <= ttft_slo:
            return Operating(k / batch_time, 2.0 * batch_time, 0.0, k)
        if k == 1:
            return _miss("TTFT", 2.0 * batch_time, ttft_slo, devices)
        k -= 1
