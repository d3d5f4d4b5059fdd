"""Performance model: devices per replica and sustainable requests/s per replica at an SLO.

An analytic roofline over the hardware figures (docs/performance-model.md has the derivation and
the check against published speeds), overridden exactly where a class carries a measured profile.

Per decode step at batch B on d devices (bandwidth and FLOPs summed over the devices, derated by
BANDWIDTH_EFFICIENCY and COMPUTE_EFFICIENCY):

    step(B) = max((weights + B x KV bytes at average context) / bandwidth, 2 x params x B / flops)
              + layers x layer_latency
    prefill = 2 x params x input_tokens / flops            (compute-bound, batched)
    TPOT(B) = step(B) + B x prefill / output_tokens        (prefills stall the decode batch)
    TTFT(B) = step(B) + max(prefill, weights / bandwidth) + layers x layer_latency
    rps(B)  = B / (output_tokens x step(B) + B x prefill)

All are linear pieces in B, so the largest B meeting the SLO and the KV memory has a closed form.
The figures are used as p95 directly (see the doc). FP8/INT weights use ``tflops_fp8`` when the
hardware has an 8-bit path, else the BF16 rate; FP32 runs at half the BF16 rate.

Device count: the smallest power of two that holds the weights and KV cache (``sizing``), then every
larger power of two up to the node size is tried and the one with the most req/s per device wins
(fewest devices on ties), so a TPOT that one GPU cannot meet is met by tensor parallelism.
"""

from __future__ import annotations

import math
from functools import lru_cache

from inferfleet.core import sizing
from inferfleet.core.reference import REFERENCE_HARDWARE
from inferfleet.core.types import SLO, AcceleratorClass, Estimate, Hardware, ModelSpec, Unfit, Workload

__all__ = [
    "BANDWIDTH_EFFICIENCY",
    "COMPUTE_EFFICIENCY",
    "TP_SCALING_PER_DOUBLING",
    "REFERENCE_HARDWARE",
    "decode_tokens_per_s_per_user",
    "effective_tflops",
    "estimate",
    "estimate_on_devices",
    "format_seconds",
]

BANDWIDTH_EFFICIENCY = 0.75  # achieved fraction of peak memory bandwidth in decode
COMPUTE_EFFICIENCY = 0.50  # achieved fraction of dense peak FLOPs in batched matmuls
TP_SCALING_PER_DOUBLING = 0.90  # bandwidth and FLOPs kept per doubling of devices (all-reduces)
_TP_EXPONENT = math.log2(TP_SCALING_PER_DOUBLING)
_EIGHT_BIT_OR_LESS = frozenset({"fp8", "int8", "int4", "fp4"})


def effective_tflops(hw: Hardware, precision: str) -> float:
    """Dense TFLOPs the model's precision runs at on this hardware (before efficiency)."""
    if precision in _EIGHT_BIT_OR_LESS and hw.tflops_fp8 is not None:
        return hw.tflops_fp8
    if precision == "fp32":
        return hw.tflops_bf16 / 2.0
    return hw.tflops_bf16


def format_seconds(seconds: float) -> str:
    """Human latency: '45 ms', '1.2 s', '350 us'."""
    if seconds >= 1.0:
        return f"{seconds:.3g} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds * 1e6:.3g} us"


def _bad_figures(model: ModelSpec, workload: Workload, hw: Hardware) -> str | None:
    if model.parameters_b <= 0:
        return "the model has no parameters"
    if hw.memory_gib <= 0 or hw.memory_bandwidth_tbps <= 0 or hw.tflops_bf16 <= 0:
        return "the class lacks memory, bandwidth or FLOPs figures"
    if workload.input_tokens < 0 or workload.output_tokens < 0 or workload.input_tokens + workload.output_tokens == 0:
        return "the workload has no tokens"
    if workload.input_tokens + workload.output_tokens > model.context_length:
        return (
            f"requests of {workload.input_tokens + workload.output_tokens} tokens exceed the model's "
            f"{model.context_length}-token context"
        )
    return None


def _slo_miss(what: str, predicted: float, target: float, devices: int) -> Unfit:
    return Unfit(
        f"predicted {what} {format_seconds(predicted)} at batch 1 on {devices} device"
        f"{'s' if devices != 1 else ''} exceeds the {format_seconds(target)} SLO"
    )


def _rates(hw: Hardware, precision: str, devices: int) -> tuple[float, float]:
    """(bytes/s, FLOP/s) that ``devices`` devices deliver, after efficiency and TP scaling."""
    scale = devices ** _TP_EXPONENT * devices
    return (
        scale * hw.memory_bandwidth_tbps * 1e12 * BANDWIDTH_EFFICIENCY,
        scale * effective_tflops(hw, precision) * 1e12 * COMPUTE_EFFICIENCY,
    )


def _solve(model: ModelSpec, workload: Workload, slo: SLO, hw: Hardware, devices: int) -> Estimate | Unfit:
    """The largest batch meeting the SLO and KV memory on exactly ``devices`` devices."""
    params = model.parameters_b * 1e9
    weights = sizing.weight_bytes(model)
    kv_token = sizing.kv_bytes_per_token(model)
    n_in, n_out = workload.input_tokens, workload.output_tokens
    bandwidth, flops = _rates(hw, model.precision, devices)
    fixed = sizing.layers(model) * hw.layer_latency_us * 1e-6
    weight_read = weights / bandwidth
    free = devices * sizing.usable_bytes_per_device(hw) - weights
    capacity = math.floor(free / (kv_token * (n_in + n_out))) if free > 0 else 0
    if capacity < 1:
        return Unfit(
            f"{weights / sizing.GIB:.1f} GiB of weights leave no room for the KV cache on "
            f"{devices} device(s) of {hw.memory_gib:g} GiB"
        )
    prefill = 2.0 * params * n_in / flops
    if n_out == 0:
        return _solve_prefill_only(slo, devices, capacity, prefill, weight_read, fixed)
    kv_read = kv_token * (n_in + n_out / 2.0) / bandwidth  # per sequence, at average context
    compute = 2.0 * params / flops  # per sequence per step
    stall = prefill / n_out  # prefill time charged to each output token
    alone = max(prefill, weight_read) + fixed  # a lone request's prefill

    def step(b: int) -> float:
        return max(weight_read + kv_read * b, compute * b) + fixed

    def tpot(b: int) -> float:
        return step(b) + b * stall

    limit = float(capacity)
    if slo.tpot_s is not None:
        room = slo.tpot_s - fixed
        limit = min(limit, (room - weight_read) / (kv_read + stall), room / (compute + stall))
    if slo.ttft_s is not None:
        room = slo.ttft_s - fixed - alone
        limit = min(limit, (room - weight_read) / kv_read, room / compute)
    batch = max(0, math.floor(limit))
    while batch >= 1 and (
        (slo.tpot_s is not None and tpot(batch) > slo.tpot_s)
        or (slo.ttft_s is not None and step(batch) + alone > slo.ttft_s)
    ):
        batch -= 1  # floating-point edge of the closed form
    if batch < 1:
        if slo.tpot_s is not None and tpot(1) > slo.tpot_s:
            return _slo_miss("TPOT", tpot(1), slo.tpot_s, devices)
        return _slo_miss("TTFT", step(1) + alone, slo.ttft_s or 0.0, devices)
    rps = batch / (n_out * step(batch) + batch * prefill)
    return Estimate(devices, rps, step(batch) + alone, tpot(batch), batch)


def _solve_prefill_only(
    slo: SLO, devices: int, capacity: int, prefill: float, weight_read: float, fixed: float
) -> Estimate | Unfit:
    """Embedding models: batches of k requests; one waits for the running batch, then runs (2 x)."""

    def batch_time(k: int) -> float:
        return max(weight_read, prefill * k) + fixed

    limit = float(capacity)
    if slo.ttft_s is not None:
        limit = min(limit, (slo.ttft_s / 2.0 - fixed) / prefill) if prefill > 0 else limit
        if 2.0 * batch_time(1) > slo.ttft_s:
            limit = 0.0
    k = max(0, math.floor(limit))
    while k >= 1 and slo.ttft_s is not None and 2.0 * batch_time(k) > slo.ttft_s:
        k -= 1
    if k < 1:
        return _slo_miss("TTFT", 2.0 * batch_time(1), slo.ttft_s or 0.0, devices)
    return Estimate(devices, k / batch_time(k), 2.0 * batch_time(k), 0.0, k)


@lru_cache(maxsize=16384)
def _analytic(
    model: ModelSpec, workload: Workload, slo: SLO, hw: Hardware, per_node: int, devices: int | None
) -> Estimate | Unfit:
    bad = _bad_figures(model, workload, hw)
    if bad is not None:
        return Unfit(bad)
    if devices is not None:
        if devices < 1:
            return Unfit(f"the profile uses {devices} devices")
        if devices > per_node:
            return Unfit(f"the profile uses {devices} devices; nodes have {per_node}")
        return _solve(model, workload, slo, hw, devices)
    tokens = sizing.fit_tokens(model, workload)
    need = sizing.min_devices(model, hw, tokens)
    if need > per_node:
        return Unfit(
            f"needs {need} devices of {hw.memory_gib:g} GiB for {sizing.weight_bytes(model) / sizing.GIB:.1f} "
            f"GiB of weights and a {tokens}-token KV cache; nodes have {per_node}"
        )
    best: Estimate | None = None
    last: Unfit | None = None
    d = need
    while d <= per_node:
        got = _solve(model, workload, slo, hw, d)
        if isinstance(got, Unfit):
            last = got
        elif best is None or got.rps * best.devices > best.rps * d * (1.0 + 1e-9):
            best = got
        d *= 2
    if best is not None:
        return best
    assert last is not None
    return last


def estimate_on_devices(
    model: ModelSpec, workload: Workload, slo: SLO, cls: AcceleratorClass, devices: int
) -> Estimate | Unfit:
    """The analytic estimate on exactly ``devices`` devices (no device search, no profiles)."""
    return _analytic(model, workload, slo, cls.hardware, cls.devices_per_node, devices)


def _profile_rps(model: ModelSpec, workload: Workload, cls: AcceleratorClass) -> tuple[float | None, int | None]:
    """(measured req/s covering the workload or None, profile devices or None)."""
    for profile in cls.profiles:
        if profile.model != model.name:
            continue
        if profile.rps is not None:
            return profile.rps, profile.devices
        covering = [
            p
            for p in profile.points
            if p.input_tokens >= workload.input_tokens and p.output_tokens >= workload.output_tokens
        ]
        if not covering:
            return None, profile.devices
        p = min(covering, key=lambda p: (p.input_tokens + p.output_tokens, p.input_tokens, p.max_rps))
        return p.max_rps, profile.devices
    return None, None


def estimate(model: ModelSpec, workload: Workload, slo: SLO, cls: AcceleratorClass) -> Estimate | Unfit:
    """Devices per replica and sustainable req/s at the SLO of ``model`` on ``cls``, or why not.

    A measured profile of the model on the class (a single ``rps``, or the smallest
    (input, output) bucket covering the workload) overrides the analytic rate; its ``devices``
    override the device count. Without a covering profile the result is analytic.
    """
    measured, devices = _profile_rps(model, workload, cls)
    analytic = _analytic(model, workload, slo, cls.hardware, cls.devices_per_node, devices)
    if measured is None:
        return analytic
    if measured <= 0:
        return Unfit(f"the measured profile gives {measured:g} req/s")
    if devices is None:
        if isinstance(analytic, Estimate):
            devices = analytic.devices
        else:
            devices = sizing.min_devices(model, cls.hardware, sizing.fit_tokens(model, workload))
    if devices > cls.devices_per_node:
        return Unfit(f"the profile uses {devices} devices; nodes have {cls.devices_per_node}")
    known = analytic if isinstance(analytic, Estimate) and analytic.devices == devices else None
    ttft = slo.ttft_s if slo.ttft_s is not None else (known.ttft_s if known else 0.0)
    tpot = slo.tpot_s if slo.tpot_s is not None else (known.tpot_s if known else 0.0)
    if workload.output_tokens == 0:
        tpot = 0.0
    return Estimate(devices, measured, ttft, tpot, known.batch if known else 1, source="profile")


def decode_tokens_per_s_per_user(
    model: ModelSpec, cls: AcceleratorClass, devices: int | None = None, context_tokens: int = 1000
) -> float:
    """Batch-1 decode speed (output tokens/s seen by one user) at ``context_tokens`` of context.

    ``devices`` defaults to the memory fit for one full context; ValueError if that exceeds a node.
    """
    hw = cls.hardware
    if devices is None:
        devices = sizing.min_devices(model, hw, model.context_length)
        if devices > cls.devices_per_node:
            raise ValueError(f"{model.name} needs {devices} devices; nodes of {cls.name} have {cls.devices_per_node}")
    bandwidth, flops = _rates(hw, model.precision, devices)
    memory = (sizing.weight_bytes(model) + sizing.kv_bytes_per_token(model) * context_tokens) / bandwidth
    compute = 2.0 * model.parameters_b * 1e9 / flops
    return 1.0 / (max(memory, compute) + sizing.layers(model) * hw.layer_latency_us * 1e-6)


if __name__ == "__main__":  # pragma: no cover - `python -m inferfleet.core.performance`
    from inferfleet.core.sanity import markdown

    print(markdown(), end="")
