"""Roofline arithmetic: decode step, TTFT, TPOT and the largest batch meeting an SLO on d devices.

Per decode step at batch B on d devices (bandwidth and FLOPs summed over the devices, derated by
BANDWIDTH_EFFICIENCY, COMPUTE_EFFICIENCY and TP_SCALING_PER_DOUBLING per doubling of d):

    step(B) = max((weights + B x KV bytes at average context) / bandwidth, 2 x params x B / flops)
              + layers x layer_latency + sync + B x sync_token
    prefill = 2 x params x input_tokens / flops + input_tokens x sync_token   (compute-bound, batched)
    TPOT(B) = step(B) + B x prefill / output_tokens        (prefills stall the decode batch)
    TTFT(B) = step(B) + max(prefill, weights / bandwidth) + layers x layer_latency + sync
    rps(B)  = B / (output_tokens x step(B) + B x prefill)

Tensor parallelism on d > 1 devices all-reduces the activations twice per layer (after attention
and after the MLP) over the class's interconnect (``Interconnect``: link bandwidth per device and
the latency of one all-reduce step; a tree or recursive-doubling all-reduce takes ceil(log2 d)
steps):

    sync       = 2 x layers x ceil(log2 d) x step_latency
    sync_token = 2 x layers x 2 (d - 1) / d x hidden x 2 B / link_bandwidth   (per token in the pass)
    hidden     = sqrt(params / (12 x layers))                               (dense transformer)

so small models stop speeding up at high degrees (the all-reduces' latency does not shrink with d).

Every term is linear in B (or a max of two), so the largest B meeting the SLO and the KV memory has
a closed form. Embedding models (no output tokens) run prefill batches of k requests; a request
waits for the running batch and then runs in the next, so TTFT = 2 x batch time.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import NamedTuple

from inferfleet.core import sizing
from inferfleet.core.types import Hardware, ModelSpec, Unfit, UnfitKind
from inferfleet.core.units import GIB

__all__ = [
    "BANDWIDTH_EFFICIENCY",
    "COMPUTE_EFFICIENCY",
    "DEFAULT_INTERCONNECT",
    "INTERCONNECT_DEFAULTS",
    "TP_SCALING_PER_DOUBLING",
    "Interconnect",
    "LinkedHardware",
    "Operating",
    "Shape",
    "batch1_step_s",
    "effective_flops",
    "format_seconds",
    "interconnect_of",
    "shape_of",
    "sync_seconds",
    "solve",
]

BANDWIDTH_EFFICIENCY = 0.75  # achieved fraction of peak memory bandwidth in decode
COMPUTE_EFFICIENCY = 0.50  # achieved fraction of dense peak FLOPs in batched matmuls
TP_SCALING_PER_DOUBLING = 0.90  # bandwidth and FLOPs kept per doubling of devices (all-reduces)
_TP_EXPONENT = math.log2(TP_SCALING_PER_DOUBLING)
_EIGHT_BIT_OR_LESS = frozenset({"fp8", "int8", "int4", "fp4"})
_ACTIVATION_BYTES = 2.0  # all-reduced activations are 16-bit whatever the weights' precision


@dataclasses.dataclass(frozen=True)
class Interconnect:
    """The fabric tensor parallelism all-reduces over, per device.

    ``kind`` names it (NVLink, InfinityFabric, PCIe, NeuronLink, ICI, RealScale, OnWafer);
    ``bandwidth_bytes_per_s`` is one device's link bandwidth in one direction; ``step_latency_s`` the
    latency of one step of a small-message all-reduce (ceil(log2 d) steps on d devices). A latency
    of 0 means no all-reduce cost beyond the layer latency (inside one wafer, or a compiler-scheduled
    fabric whose hops the calibrated layer latency already counts).
    """

    kind: str
    bandwidth_bytes_per_s: float
    step_latency_s: float


# Per-kind defaults. Bandwidths are per device, one direction; step latencies are ESTIMATES: 10 us
# on NVLink is calibrated on NeMo's batch-1 Llama-2-7B latencies on 1/2/4/8 H100s
# (docs/performance-model.md); the others reuse it (RCCL, Neuron and ICI collectives are no faster
# for small messages), PCIe pays more per hop. Sources in examples/10-accelerator-classes.yaml.
INTERCONNECT_DEFAULTS: Mapping[str, Interconnect] = {
    "NVLink": Interconnect("NVLink", 450e9, 10e-6),  # H100 NVLink 4: 900 GB/s both ways
    "InfinityFabric": Interconnect("InfinityFabric", 448e9, 10e-6),  # MI300X: 7 x 64 GB/s links
    "PCIe": Interconnect("PCIe", 32e9, 15e-6),  # Gen4 x16 (L4), through the host
    "NeuronLink": Interconnect("NeuronLink", 192e9, 10e-6),  # Inferentia2 NeuronLink-v2
    "ICI": Interconnect("ICI", 200e9, 10e-6),  # TPU v5e: 1,600 Gbps ICI per chip
    "RealScale": Interconnect("RealScale", 80e9, 0.0),  # Groq: scheduled hops, in layer latency
    "OnWafer": Interconnect("OnWafer", 0.0, 0.0),  # no all-reduce inside one wafer
}
# A class that names no interconnect keeps the model it had before the all-reduce term (no cost):
# existing objects plan as they did. Name the kind on every multi-device class.
DEFAULT_INTERCONNECT = Interconnect("Unset", 0.0, 0.0)


@dataclasses.dataclass(frozen=True)
class LinkedHardware(Hardware):
    """``Hardware`` with the interconnect its devices all-reduce over (None: DEFAULT_INTERCONNECT)."""

    interconnect: Interconnect | None = None


def interconnect_of(hw: Hardware) -> Interconnect:
    """The interconnect of ``hw``: its own, else DEFAULT_INTERCONNECT."""
    own = hw.interconnect if isinstance(hw, LinkedHardware) else None
    return own if own is not None else DEFAULT_INTERCONNECT


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
    layers: int = 0
    hidden: float = 0.0  # activation width, estimated from params and layers
    link_bandwidth: float = 0.0  # bytes/s per device, one direction (0: no per-byte cost)
    link_latency: float = 0.0  # s per all-reduce step


class Operating(NamedTuple):
    """The operating point at the largest batch meeting the SLO."""

    rps: float
    ttft_s: float
    tpot_s: float
    batch: int


def shape_of(model: ModelSpec, hw: Hardware) -> Shape:
    """The roofline constants of ``model`` on ``hw``."""
    n_layers = sizing.layers(model)
    params = model.parameters_b * 1e9
    link = interconnect_of(hw)
    return Shape(
        params=model.parameters_b * 1e9,
        weights=sizing.weight_bytes(model),
        kv_token=sizing.kv_bytes_per_token(model),
        fixed=sizing.layers(model) * hw.layer_latency_s,
        usable=sizing.usable_bytes_per_device(hw),
        bandwidth=hw.memory_bandwidth_bytes_per_s * BANDWIDTH_EFFICIENCY,
        flops=effective_flops(hw, model.precision) * COMPUTE_EFFICIENCY,
        layers=n_layers,
        hidden=math.sqrt(params / (12.0 * n_layers)) if n_layers > 0 else 0.0,
        link_bandwidth=link.bandwidth_bytes_per_s,
        link_latency=link.step_latency_s,
    )


def sync_seconds(s: Shape, devices: int) -> tuple[float, float]:
    """(s per forward pass, s per token in it) the tensor-parallel all-reduces add on ``devices``."""
    if devices <= 1:
        return 0.0, 0.0
    all_reduces = 2.0 * s.layers
    fixed = all_reduces * math.ceil(math.log2(devices)) * s.link_latency
    if s.link_bandwidth <= 0:
        return fixed, 0.0
    moved = 2.0 * (devices - 1) / devices * s.hidden * _ACTIVATION_BYTES
    return fixed, all_reduces * moved / s.link_bandwidth


def _scale(devices: int) -> float:
    return float(devices) * math.pow(devices, _TP_EXPONENT)


def batch1_step_s(s: Shape, devices: int, context_tokens: int) -> float:
    """Seconds per decode step of one sequence at ``context_tokens`` of context."""
    scale = _scale(devices)
    sync, sync_token = sync_seconds(s, devices)
    memory = (s.weights + s.kv_token * context_tokens) / (s.bandwidth * scale)
    return max(memory, 2.0 * s.params / (s.flops * scale)) + s.fixed + sync + sync_token


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
    sync, sync_token = sync_seconds(s, devices)
    fixed = s.fixed + sync  # per forward pass: layer latency and the all-reduces' latency
    weight_read = s.weights / bandwidth
    free = devices * s.usable - s.weights
    capacity = math.floor(free / (s.kv_token * (n_in + n_out))) if free > 0 else 0
    if capacity < 1:
        gib = s.weights / GIB
        return Unfit(
            UnfitKind.MEMORY, f"{gib:.1f} GiB of weights leave no room for a KV cache on {devices} device(s)"
        )
    prefill = 2.0 * s.params * n_in / flops + n_in * sync_token
    if n_out == 0:
        return _solve_prefill_only(devices, capacity, prefill, weight_read, fixed, ttft_slo=ttft_slo)
    # per sequence per step: its KV read at average context, its FLOPs, and its all-reduced bytes
    # (added to both sides of the max: communication does not overlap either)
    kv_read = s.kv_token * (n_in + n_out / 2.0) / bandwidth + sync_token
    compute = 2.0 * s.params / flops + sync_token
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
