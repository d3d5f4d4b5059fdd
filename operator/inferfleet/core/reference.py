"""Reference hardware: public figures of the accelerators a fleet mixes, for defaults and examples.

Memory, bandwidth, dense TFLOPs, rated power and prices come from ``data/accelerators.csv``
(row names in the comments; that file gives each figure's source). Everything marked ESTIMATE is
ours, with the reasoning next to it:

- **Idle watts** are not in the csv: ~15% of rated power for HBM GPUs (H100 SXM idles at roughly
  60-120 W), ~20% for small cards, more for systems with large static draw.
- **Busy watts** are the csv's rated board/system power (conservative for budgets: GPUs in decode
  draw well below it, e.g. an H200 measured at 137-300 W of 700 W).
- **layer latency (µs)** is a CALIBRATED constant of the performance model, not a datasheet figure: the
  fixed per-layer cost of one decode step (kernel launches and synchronisation on GPUs; fabric and
  pipeline hops on wafer-scale and LPU systems). Cerebras 20 us and Groq 45 us reproduce the
  published per-user speeds of Llama 3.1 8B/70B within 2x (docs/performance-model.md); 5 us on H100
  does the same for the GPU provider figures. Other accelerators reuse the GPU value, uncalibrated.
- **Dense FLOPs**: the csv's Cerebras 125 PF is a sparse peak; dense is taken as half (62.5 PF).
- **Interconnect**: each row names its kind and takes ``roofline.INTERCONNECT_DEFAULTS`` (NVLink on
  the SXM GPUs, PCIe on L4/L40S/A10G cards, Infinity Fabric, NeuronLink, ICI; Cerebras OnWafer and
  Groq RealScale add no all-reduce latency beyond their calibrated layer latency).
"""

from __future__ import annotations

from collections.abc import Mapping

from inferfleet.core.cost import amortised_hourly_price
from inferfleet.core.roofline import INTERCONNECT_DEFAULTS, LinkedHardware
from inferfleet.core.types import AcceleratorClass, Hardware
from inferfleet.core.units import GIB, MICRO, TERA

__all__ = [
    "REFERENCE_DEVICES_PER_NODE",
    "REFERENCE_HARDWARE",
    "REFERENCE_PRICE_PER_DEVICE_HOUR",
    "reference_class",
]

_GPU_LAYER_US = 5.0  # calibrated on H100 (see module docstring); reused uncalibrated elsewhere


def _hw(
    memory_bytes: float,
    tb_per_s: float,
    bf16_tflops: float,
    fp8_tflops: float | None,
    idle_w: float,
    busy_w: float,
    layer_us: float,
    link: str = "NVLink",
) -> Hardware:
    """A row of the datasheet table below, in its units (TB/s, TFLOP/s, µs), as core Hardware with
    the default figures of its interconnect kind (roofline.INTERCONNECT_DEFAULTS)."""
    return LinkedHardware(
        memory_bytes,
        tb_per_s * TERA,
        bf16_tflops * TERA,
        None if fp8_tflops is None else fp8_tflops * TERA,
        idle_w,
        busy_w,
        layer_us * MICRO,
        INTERCONNECT_DEFAULTS[link],
    )


REFERENCE_HARDWARE: Mapping[str, Hardware] = {
    # csv H100-SXM5-80GB; idle ESTIMATE ~14% of 700 W.
    "H100-SXM5-80GB": _hw(80 * GIB, 3.35, 989, 1979, 100, 700, _GPU_LAYER_US),
    # csv H200-SXM-141GB (same Hopper die as H100); idle ESTIMATE as H100.
    "H200-SXM-141GB": _hw(141 * GIB, 4.8, 989, 1979, 100, 700, _GPU_LAYER_US),
    # csv B200-HGX-180GB; idle ESTIMATE 15% of 1000 W.
    "B200": _hw(180 * GIB, 8.0, 2250, 4500, 150, 1000, _GPU_LAYER_US),
    # csv A100-SXM4-80GB, no FP8 path; idle ESTIMATE 15% of 400 W.
    "A100-SXM4-80GB": _hw(80 * GIB, 2.039, 312, None, 60, 400, _GPU_LAYER_US),
    # csv L40S (dense figures); idle ESTIMATE ~15% of 350 W.
    "L40S": _hw(48 * GIB, 0.864, 362, 733, 50, 350, _GPU_LAYER_US, "PCIe"),
    # csv L4 (dense = half the sparse datasheet figures); idle ESTIMATE ~22% of 72 W (16 W).
    "L4": _hw(24 * GIB, 0.3, 121, 242, 16, 72, _GPU_LAYER_US, "PCIe"),
    # csv A10G (A10 datasheet power and TFLOPs, an estimate for the AWS SKU); idle ESTIMATE 25 W.
    "A10G": _hw(24 * GIB, 0.6, 125, None, 25, 150, _GPU_LAYER_US, "PCIe"),
    # csv MI300X; idle ESTIMATE 20% of 750 W (large HBM3 stack count and Infinity Fabric).
    "MI300X": _hw(192 * GIB, 5.3, 1307, 2615, 150, 750, _GPU_LAYER_US, "InfinityFabric"),
    # csv Inferentia2 (per chip), cFP8 at the BF16 rate. Power not published: busy ESTIMATE 100 W
    # (a 190-TFLOPS die plus 32 GiB HBM, between an L4 at 72 W and an A10 at 150 W), idle 25 W.
    "Inferentia2": _hw(32 * GIB, 0.82, 190, 190, 25, 100, _GPU_LAYER_US, "NeuronLink"),
    # csv TPU-v5e (per chip), no FP8. Power not published: busy ESTIMATE 170 W (TPU v4 paper's
    # mean chip power; v5e is a smaller inference chip, so this leans high), idle 50 W.
    "TPU-v5e": _hw(16 * GIB, 0.819, 197, None, 50, 170, _GPU_LAYER_US, "ICI"),
    # csv Cerebras CS-3: one "device" is a whole system, 44 GB (41 GiB) on-wafer SRAM at 21 PB/s, dense
    # FP16 taken as half the 125 PF sparse peak; ~23 kW system. Idle ESTIMATE 50% (SRAM leakage,
    # pumps, fans and power conversion keep running). Layer latency CALIBRATED (20 us).
    "Cerebras CS-3": _hw(44e9, 21000, 62500, None, 11500, 23000, 20.0, "OnWafer"),
    # csv Groq LPU (per chip): 230 MB (0.214 GiB) SRAM, 80 TB/s, 188 FP16 TFLOPS; its INT8 path is
    # not used for FP8 weights (TruePoint keeps weights in 8 bits but computes wider).
    # Card power ~240 W typ / 375 W max [unverified]; busy ESTIMATE 375 W covers a share of hosts and
    # fabric too (a GroqNode of 8 cards is put at 3-4 kW), idle ESTIMATE 90 W. Layer latency
    # CALIBRATED (45 us).
    "Groq LPU": _hw(230e6, 80, 188, None, 90, 375, 45.0, "RealScale"),
}

# Devices on one node (or the unit a replica must fit in) for example AcceleratorClasses.
REFERENCE_DEVICES_PER_NODE: Mapping[str, int] = {
    "H100-SXM5-80GB": 8,  # p5.48xlarge / DGX H100
    "H200-SXM-141GB": 8,
    "B200": 8,
    "A100-SXM4-80GB": 8,
    "L40S": 8,  # g6e.48xlarge
    "L4": 8,  # g6.48xlarge
    "A10G": 8,  # g5.48xlarge
    "MI300X": 8,
    "Inferentia2": 12,  # inf2.48xlarge
    "TPU-v5e": 8,  # ct5lp-hightpu-8t
    "Cerebras CS-3": 4,  # a 4-system cluster (Llama 3.1 70B ran on four CS-3s at launch)
    "Groq LPU": 576,  # one rack-scale deployment (~576 chips per Llama-2-70B instance [S3 HN])
}

# $/device-hour for example AcceleratorClasses: the csv's price column where it has one.
REFERENCE_PRICE_PER_DEVICE_HOUR: Mapping[str, float] = {
    "H100-SXM5-80GB": 12.29,  # AWS p5 on-demand / 8 (pre-June-2025 list)
    "H200-SXM-141GB": 5.41,  # AWS capacity-block effective price
    "B200": 14.24,
    "A100-SXM4-80GB": 3.67,  # Mélange's figure
    "L40S": 1.86,
    "L4": 0.80,
    "A10G": 1.006,
    "MI300X": 1.71,
    "Inferentia2": 0.76,
    "TPU-v5e": 1.20,
    # ESTIMATE: ~$2.5M per system [S3], straight-line over 4 years.
    "Cerebras CS-3": amortised_hourly_price(2_500_000, 4),
    # ESTIMATE: ~$20k per GroqCard (widely quoted distributor listing, unverified) over 4 years.
    "Groq LPU": amortised_hourly_price(20_000, 4),
}


def reference_class(name: str, power_domain: str = "default") -> AcceleratorClass:
    """An AcceleratorClass with the reference figures of ``name`` (one empty node's worth free)."""
    per_node = REFERENCE_DEVICES_PER_NODE[name]
    return AcceleratorClass(
        name=name,
        hardware=REFERENCE_HARDWARE[name],
        devices_per_node=per_node,
        price_per_device_hour=REFERENCE_PRICE_PER_DEVICE_HOUR[name],
        power_domain=power_domain,
        node_free_devices=(per_node,),
    )
