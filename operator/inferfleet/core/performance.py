"""Performance model: devices per replica and sustainable requests/s per replica at an SLO.

``estimate`` is what the Problem builder calls for every pool x class. It sizes the replica from
memory (``sizing``), runs the analytic roofline (``roofline``; the equations and their check against
published speeds are in docs/performance-model.md), and lets measured profiles override it exactly
where they cover the workload.

Device count: the smallest power of two that holds the weights and KV cache; then every larger power
of two up to the node size is tried and the one with the most req/s per device wins (the fewest
devices on ties). So a TPOT that one GPU cannot meet is met by tensor parallelism, and a model whose
minimal fit leaves little KV room gets the degree that serves it cheapest per device.

The roofline's latencies are used as p95 directly: they are deterministic step times at the
largest batch the SLO allows, and the planner loads a replica to only 1 / headroom of that rate.
"""

from __future__ import annotations

from functools import lru_cache

from inferfleet.core import sizing
from inferfleet.core.reference import REFERENCE_HARDWARE
from inferfleet.core.roofline import (
    BANDWIDTH_EFFICIENCY,
    COMPUTE_EFFICIENCY,
    TP_SCALING_PER_DOUBLING,
    Operating,
    batch1_step_s,
    effective_flops,
    format_seconds,
    shape_of,
    solve,
)
from inferfleet.core.types import (
    SLO,
    AcceleratorClass,
    Estimate,
    Hardware,
    ModelSpec,
    Unfit,
    UnfitKind,
    Workload,
)
from inferfleet.core.units import GIB

__all__ = [
    "BANDWIDTH_EFFICIENCY",
    "COMPUTE_EFFICIENCY",
    "REFERENCE_HARDWARE",
    "TP_SCALING_PER_DOUBLING",
    "decode_tokens_per_s_per_user",
    "effective_flops",
    "estimate",
    "estimate_on_devices",
    "format_seconds",
]


def _bad_figures(model: ModelSpec, workload: Workload, hw: Hardware) -> Unfit | None:
    why = _missing_figures(model, workload, hw)
    return None if why is None else Unfit(UnfitKind.FIGURES, why)


def _missing_figures(model: ModelSpec, workload: Workload, hw: Hardware) -> str | None:
    if model.parameters_b <= 0:
        return "the model has no parameters"
    if hw.memory_bytes <= 0 or hw.memory_bandwidth_bytes_per_s <= 0 or hw.flops_bf16 <= 0:
        return "the class lacks memory, bandwidth or FLOPs figures"
    tokens = workload.input_tokens + workload.output_tokens
    if workload.input_tokens < 0 or workload.output_tokens < 0 or workload.input_tokens == 0:
        return "the workload has no input tokens"
    if tokens > model.context_length:
        return f"requests of {tokens} tokens exceed the model's {model.context_length}-token context"
    return None


def _estimate(op: Operating, devices: int) -> Estimate:
    return Estimate(devices, op.rps, op.ttft_s, op.tpot_s, op.batch)


@lru_cache(maxsize=16384)
def _analytic(
    model: ModelSpec, workload: Workload, slo: SLO, hw: Hardware, fit: tuple[int, int | None]
) -> Estimate | Unfit:
    """The analytic estimate; ``fit`` = (devices per node, exact devices or None for the best)."""
    per_node, devices = fit
    bad = _bad_figures(model, workload, hw)
    if bad is not None:
        return bad
    shape = shape_of(model, hw)
    n_in, n_out = workload.input_tokens, workload.output_tokens
    if devices is not None:
        if not 1 <= devices <= per_node:
            return Unfit(UnfitKind.NODE_SIZE, f"the profile uses {devices} devices; nodes have {per_node}")
        got = solve(shape, devices, n_in, n_out, ttft_slo=slo.ttft_s, tpot_slo=slo.tpot_s)
        return got if isinstance(got, Unfit) else _estimate(got, devices)
    tokens = sizing.fit_tokens(model, workload)
    need = sizing.min_devices(model, hw, tokens)
    if need > per_node:
        return Unfit(
            UnfitKind.MEMORY,
            f"needs {need} devices of {hw.memory_bytes / GIB:.3g} GiB for {shape.weights / GIB:.1f} GiB "
            f"of weights and a {tokens}-token KV cache; nodes have {per_node}",
        )
    best: Operating | None = None
    best_devices = 0
    last = Unfit(UnfitKind.SLO, "no device count meets the SLO")
    d = need
    while d <= per_node:
        got = solve(shape, d, n_in, n_out, ttft_slo=slo.ttft_s, tpot_slo=slo.tpot_s)
        if isinstance(got, Unfit):
            last = got
        elif best is None or got.rps * best_devices > best.rps * d * (1.0 + 1e-9):
            best, best_devices = got, d
        d *= 2
    return last if best is None else _estimate(best, best_devices)


def estimate_on_devices(
    model: ModelSpec, workload: Workload, slo: SLO, cls: AcceleratorClass, devices: int
) -> Estimate | Unfit:
    """The analytic estimate on exactly ``devices`` devices (no device search, no profiles)."""
    return _analytic(model, workload, slo, cls.hardware, (cls.devices_per_node, devices))


def _measured(model: ModelSpec, workload: Workload, cls: AcceleratorClass) -> tuple[float | None, int | None]:
    """(measured req/s for the workload or None, the profile's devices or None).

    A bucketed profile answers with the smallest bucket (fewest total tokens, then fewest input
    tokens) whose input and output lengths both cover the workload's.
    """
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
        bucket = min(covering, key=lambda p: (p.input_tokens + p.output_tokens, p.input_tokens, p.max_rps))
        return bucket.max_rps, profile.devices
    return None, None


def estimate(model: ModelSpec, workload: Workload, slo: SLO, cls: AcceleratorClass) -> Estimate | Unfit:
    """Devices per replica and sustainable req/s at the SLO of ``model`` on ``cls``, or why not.

    A measured profile of the model on the class (a single ``rps``, or the smallest bucket covering
    the workload) overrides the analytic rate (``source="profile"``), and its ``devices`` override the
    device count; latencies then are the SLO's (the rate was measured at it) or, without one, the
    analytic figures. Without a covering profile the result is analytic (``source="analytic"``).
    """
    measured, devices = _measured(model, workload, cls)
    analytic = _analytic(model, workload, slo, cls.hardware, (cls.devices_per_node, devices))
    if measured is None:
        return analytic
    if measured <= 0:
        return Unfit(UnfitKind.PROFILE, f"the measured profile gives {measured:g} req/s")
    if devices is None:
        if isinstance(analytic, Estimate):
            devices = analytic.devices
        else:
            devices = sizing.min_devices(model, cls.hardware, sizing.fit_tokens(model, workload))
    if not 1 <= devices <= cls.devices_per_node:
        return Unfit(
            UnfitKind.NODE_SIZE, f"the profile uses {devices} devices; nodes have {cls.devices_per_node}"
        )
    known = analytic if isinstance(analytic, Estimate) and analytic.devices == devices else None
    ttft = slo.ttft_s if slo.ttft_s is not None else (known.ttft_s if known else 0.0)
    tpot = slo.tpot_s if slo.tpot_s is not None else (known.tpot_s if known else 0.0)
    if workload.output_tokens == 0:
        tpot = 0.0
    return Estimate(devices, measured, ttft, tpot, known.batch if known else 1, source="profile")


def decode_tokens_per_s_per_user(
    model: ModelSpec, cls: AcceleratorClass, devices: int | None = None, context_tokens: int = 1000
) -> float:
    """Batch-1 decode speed (output tokens/s one user sees) at ``context_tokens`` of context.

    ``devices`` defaults to the memory fit of one full context; ValueError if that exceeds a node.
    """
    if devices is None:
        devices = sizing.min_devices(model, cls.hardware, model.context_length)
        if devices > cls.devices_per_node:
            raise ValueError(
                f"{model.name} needs {devices} devices; nodes of {cls.name} have {cls.devices_per_node}"
            )
    return 1.0 / batch1_step_s(shape_of(model, cls.hardware), devices, context_tokens)


if __name__ == "__main__":  # pragma: no cover - `python -m inferfleet.core.performance [--write DOC]`
    import sys
    from pathlib import Path

    from inferfleet.core.sanity import embed, markdown

    if sys.argv[1:2] == ["--write"]:
        doc = Path(sys.argv[2])
        doc.write_text(embed(doc.read_text(encoding="utf-8"), markdown()), encoding="utf-8")
    else:
        print(markdown(), end="")
