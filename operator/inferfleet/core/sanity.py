"""Sanity anchors: published speeds the performance model must reproduce, and the doc's tables.

``markdown()`` renders the predicted-vs-published tables that docs/performance-model.md embeds
(``python -m inferfleet.core.performance`` prints them; a unit test fails when the doc drifts).
Published figures are those of data/README.md.
"""

from __future__ import annotations

import dataclasses

from inferfleet.core import sizing
from inferfleet.core.performance import decode_tokens_per_s_per_user, estimate_on_devices
from inferfleet.core.reference import reference_class
from inferfleet.core.types import SLO, Estimate, ModelSpec, Precision, Workload

__all__ = [
    "PER_USER_ANCHORS",
    "THROUGHPUT_ANCHORS",
    "Anchor",
    "llama2_7b",
    "llama_70b",
    "llama_8b",
    "embed",
    "markdown",
    "predicted_per_user",
    "predicted_throughput",
]


def llama_8b(precision: Precision) -> ModelSpec:
    """Llama 3.1 8B: 32 layers, 8 KV heads x 128 dims -> 128 KiB/token of 16-bit KV cache."""
    return ModelSpec("llama-3.1-8b", 8.03, precision, 8192, layers=32, kv_bytes_per_token=131072)


def llama_70b(precision: Precision) -> ModelSpec:
    """Llama 3.1 70B: 80 layers, 8 KV heads x 128 dims -> 320 KiB/token of 16-bit KV cache."""
    return ModelSpec("llama-3.1-70b", 70.6, precision, 8192, layers=80, kv_bytes_per_token=327680)


def llama2_7b() -> ModelSpec:
    """Llama 2 7B: 32 layers, 32 KV heads x 128 dims (no GQA) -> 512 KiB/token of 16-bit KV cache."""
    return ModelSpec("llama-2-7b", 6.74, "bf16", 4096, layers=32, kv_bytes_per_token=524288)


@dataclasses.dataclass(frozen=True)
class Anchor:
    """One published figure: a model on a reference system, as deployed."""

    id: str
    system: str  # key of REFERENCE_HARDWARE
    model: ModelSpec
    devices: int | None  # None: the memory fit decides
    published: float
    note: str = ""
    asserted: bool = True  # False: shown for context, outside the 2x check


PER_USER_ANCHORS: tuple[Anchor, ...] = (
    Anchor("cerebras-8b-bf16", "Cerebras CS-3", llama_8b("bf16"), None, 1837),
    Anchor("cerebras-70b-bf16", "Cerebras CS-3", llama_70b("bf16"), None, 445, "at launch"),
    Anchor(
        "cerebras-70b-bf16-later",
        "Cerebras CS-3",
        llama_70b("bf16"),
        None,
        2100,
        "later software (speculative decoding); not asserted",
        asserted=False,
    ),
    Anchor("groq-8b-fp8", "Groq LPU", llama_8b("fp8"), None, 751, "8-bit weights (TruePoint)"),
    Anchor("groq-70b-fp8", "Groq LPU", llama_70b("fp8"), None, 250, "8-bit weights (TruePoint)"),
    Anchor("h100-8b-fp8", "H100-SXM5-80GB", llama_8b("fp8"), 1, 288, "providers serve FP8"),
    Anchor("h100-70b-fp8-tp2", "H100-SXM5-80GB", llama_70b("fp8"), 2, 71, "TP=2 as deployed"),
    Anchor(
        "h100-8b-bf16",
        "H100-SXM5-80GB",
        llama_8b("bf16"),
        1,
        288,
        "BF16 instead; not asserted",
        asserted=False,
    ),
    Anchor(
        "h100-70b-fp8-1gpu",
        "H100-SXM5-80GB",
        llama_70b("fp8"),
        None,
        71,
        "memory-fit minimum, one GPU; not asserted",
        asserted=False,
    ),
    # Tensor-parallel scaling at batch 1: NVIDIA NeMo Framework, "Llama-2 Results, Inference
    # Performance", configuration 1 (128 input / 20 output tokens, batch 1), average latency in ms on
    # 1/2/4/8 GPUs (docs.nvidia.com/nemo-framework/user-guide/latest/performance/llama.html);
    # published = 20 tokens / latency (the latency includes the 128-token prefill).
    *(
        Anchor(
            f"nemo-{system[:4].lower()}-7b-tp{tp}",
            system,
            llama2_7b(),
            tp,
            round(20_000 / latency_ms),
            f"NeMo, TP={tp}, {latency_ms} ms per 128/20 request",
        )
        for system, latencies in (
            ("H100-SXM5-80GB", (153.8, 128.6, 107.4, 97.6)),
            ("A100-SXM4-80GB", (234.0, 171.7, 143.7, 136.5)),
        )
        for tp, latency_ms in zip((1, 2, 4, 8), latencies, strict=True)
    ),
)

# TensorRT-LLM "Total Output Throughput" at 128 input / 128 output tokens, no latency limit.
THROUGHPUT_ANCHORS: tuple[Anchor, ...] = (
    Anchor("trtllm-h100-8b-fp8", "H100-SXM5-80GB", llama_8b("fp8"), 1, 28312),
    Anchor("trtllm-h200-70b-fp8", "H200-SXM-141GB", llama_70b("fp8"), 1, 3803),
    Anchor("trtllm-2xh100-70b-fp8", "H100-SXM5-80GB", llama_70b("fp8"), 2, 6378),
)
THROUGHPUT_WORKLOAD = Workload(128, 128)


def predicted_per_user(anchor: Anchor) -> tuple[int, float]:
    """(devices, batch-1 decode tokens/s per user) the model predicts for ``anchor``."""
    cls = reference_class(anchor.system)
    devices = anchor.devices or sizing.min_devices(anchor.model, cls.hardware, anchor.model.context_length)
    return devices, decode_tokens_per_s_per_user(anchor.model, cls, devices)


def predicted_throughput(anchor: Anchor) -> tuple[Estimate, float]:
    """(estimate, output tokens/s per replica) at max throughput, 128 in / 128 out, no SLO."""
    cls = reference_class(anchor.system)
    got = estimate_on_devices(anchor.model, THROUGHPUT_WORKLOAD, SLO(), cls, anchor.devices or 1)
    if not isinstance(got, Estimate):
        raise ValueError(f"{anchor.id}: {got.reason}")
    return got, got.rps * THROUGHPUT_WORKLOAD.output_tokens


def _n(x: float) -> str:
    return f"{x:,.0f}"


def markdown() -> str:
    """The predicted-vs-published tables, as embedded in docs/performance-model.md."""
    lines = [
        "Per-user decode speed (batch 1, 1,000 tokens of context), output tokens/s:",
        "",
        "| system | model | weights | devices | predicted | published | predicted / published | note |",
        "|---|---|---|---:|---:|---:|---:|---|",
    ]
    for a in PER_USER_ANCHORS:
        devices, speed = predicted_per_user(a)
        lines.append(
            f"| {a.system} | {a.model.name} | {a.model.precision} | {devices} | {_n(speed)} | "
            f"{_n(a.published)} | {speed / a.published:.2f} | {a.note} |"
        )
    lines += [
        "",
        "Aggregate throughput (TensorRT-LLM, 128 in / 128 out, no latency limit), output tokens/s:",
        "",
        "| system | model | weights | devices | batch | predicted | published | predicted / published |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for a in THROUGHPUT_ANCHORS:
        est, tokens = predicted_throughput(a)
        lines.append(
            f"| {a.system} | {a.model.name} | {a.model.precision} | {est.devices} | {est.batch} | "
            f"{_n(tokens)} | {_n(a.published)} | {tokens / a.published:.2f} |"
        )
    return "\n".join(lines) + "\n"


BEGIN_MARK = "<!-- BEGIN GENERATED: python -m inferfleet.core.performance -->"
END_MARK = "<!-- END GENERATED -->"


def embed(doc: str, tables: str) -> str:
    """``doc`` with the text between the GENERATED markers replaced by ``tables``."""
    head, sep, rest = doc.partition(BEGIN_MARK)
    _, sep2, tail = rest.partition(END_MARK)
    if not sep or not sep2:
        raise ValueError("the document lacks the GENERATED markers")
    return f"{head}{BEGIN_MARK}\n{tables}{END_MARK}{tail}"
