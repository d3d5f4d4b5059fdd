"""Model sizing: layers, weight and KV-cache bytes, and devices per replica from memory fit.

The heuristics here stand in for a model's config when the pool does not give it:

- **Layers** from the parameter count, interpolated (in log-parameters) between the Llama family's
  sizes: 1B -> 16, 3B -> 28, 8B -> 32, 70B -> 80, 405B -> 126 layers (clamped outside 0.1B-405B).
- **KV cache bytes per token** = layers x 4096 B x (element bytes / 2): every Llama-3 size uses
  grouped-query attention with 8 KV heads of 128 dimensions, so K and V take 8 x 128 x 2 = 2048
  elements per layer per token. Llama-3.1-8B: 32 x 4 KiB = 128 KiB/token; 70B: 80 x 4 KiB =
  320 KiB/token. The cache is kept at 16 bits whatever the weights' precision (vLLM's default for
  FP8 and INT checkpoints), 32 bits for FP32 models.
- **Memory fit**: weights + KV cache for ``max(4 sequences of (input + output) tokens, one full
  context)`` within 90% of device memory (the rest is activations, CUDA graphs, fragmentation),
  rounded up to a power of two (tensor-parallel degrees).
"""

from __future__ import annotations

import math

from inferfleet.core.types import BYTES_PER_PARAM, Hardware, ModelSpec, Workload

__all__ = [
    "KV_BYTES_PER_LAYER_PER_TOKEN",
    "MIN_CONCURRENT_SEQUENCES",
    "USABLE_MEMORY_FRACTION",
    "estimated_layers",
    "fit_tokens",
    "kv_bytes_per_token",
    "layers",
    "min_devices",
    "next_power_of_two",
    "usable_bytes_per_device",
    "weight_bytes",
]

USABLE_MEMORY_FRACTION = 0.90
MIN_CONCURRENT_SEQUENCES = 4
KV_BYTES_PER_LAYER_PER_TOKEN = 4096  # 8 KV heads x 128 dims x (K, V) x 2 bytes

# (billions of parameters, layers): BERT-base-ish, then Llama 3.2 1B/3B and Llama 3.1 8B/70B/405B.
_LAYER_ANCHORS: tuple[tuple[float, int], ...] = (
    (0.1, 12),
    (1.0, 16),
    (3.0, 28),
    (8.0, 32),
    (70.0, 80),
    (405.0, 126),
)


def estimated_layers(parameters_b: float) -> int:
    """Transformer layers of a dense model this size (log-linear between the Llama anchors)."""
    lo_p, lo_l = _LAYER_ANCHORS[0]
    if parameters_b <= lo_p:
        return lo_l
    for hi_p, hi_l in _LAYER_ANCHORS[1:]:
        if parameters_b <= hi_p:
            frac = math.log(parameters_b / lo_p) / math.log(hi_p / lo_p)
            return round(lo_l + frac * (hi_l - lo_l))
        lo_p, lo_l = hi_p, hi_l
    return _LAYER_ANCHORS[-1][1]


def layers(model: ModelSpec) -> int:
    """The model's layer count, given or estimated."""
    return model.layers if model.layers is not None else estimated_layers(model.parameters_b)


def kv_bytes_per_token(model: ModelSpec) -> float:
    """KV-cache bytes one token occupies, given or estimated (see the module docstring)."""
    if model.kv_bytes_per_token is not None:
        return float(model.kv_bytes_per_token)
    element_scale = 2.0 if model.precision == "fp32" else 1.0
    return float(layers(model) * KV_BYTES_PER_LAYER_PER_TOKEN) * element_scale


def weight_bytes(model: ModelSpec) -> float:
    """Bytes of weights: parameters x bytes per parameter at the model's precision."""
    return model.parameters_b * 1e9 * BYTES_PER_PARAM[model.precision]


def usable_bytes_per_device(hw: Hardware) -> float:
    """Device memory available for weights and KV cache."""
    return hw.memory_bytes * USABLE_MEMORY_FRACTION


def fit_tokens(model: ModelSpec, workload: Workload) -> int:
    """KV-cache tokens a replica must hold at least: a few requests, and one full context."""
    per_sequence = workload.input_tokens + workload.output_tokens
    return max(MIN_CONCURRENT_SEQUENCES * per_sequence, model.context_length)


def next_power_of_two(n: int) -> int:
    """The smallest power of two >= n (1 for n <= 1)."""
    return 1 if n <= 1 else 1 << (n - 1).bit_length()


def min_devices(model: ModelSpec, hw: Hardware, kv_tokens: int) -> int:
    """Fewest devices (a power of two) whose usable memory holds the weights plus ``kv_tokens``."""
    need = weight_bytes(model) + kv_tokens * kv_bytes_per_token(model)
    raw = math.ceil(need / usable_bytes_per_device(hw) - 1e-9)
    return next_power_of_two(raw)
