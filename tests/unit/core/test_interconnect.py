"""Tensor-parallel cost: the all-reduce term per interconnect kind, and what it does to sizing."""

from __future__ import annotations

import dataclasses
import math

import pytest

from inferfleet.core.performance import decode_tokens_per_s_per_user, estimate_on_devices
from inferfleet.core.reference import reference_class
from inferfleet.core.roofline import (
    DEFAULT_INTERCONNECT,
    INTERCONNECT_DEFAULTS,
    Interconnect,
    LinkedHardware,
    batch1_step_s,
    interconnect_of,
    shape_of,
    sync_seconds,
)
from inferfleet.core.sanity import llama_8b
from inferfleet.core.types import SLO, Estimate, Hardware, Unfit, UnfitKind, Workload


def _with_link(system: str, link: Interconnect) -> LinkedHardware:
    hw = reference_class(system).hardware
    fields = {f.name: getattr(hw, f.name) for f in dataclasses.fields(Hardware)}
    return LinkedHardware(**fields, interconnect=link)


def test_one_device_pays_no_all_reduce() -> None:
    shape = shape_of(llama_8b("bf16"), reference_class("H100-SXM5-80GB").hardware)
    assert sync_seconds(shape, 1) == (0.0, 0.0)


@pytest.mark.parametrize(
    ("devices", "steps"),
    [
        pytest.param(2, 1, id="tp2-one-step"),
        pytest.param(4, 2, id="tp4-two-steps"),
        pytest.param(8, 3, id="tp8-three-steps"),
    ],
)
def test_the_latency_term_is_two_all_reduces_per_layer_of_log2_steps(devices: int, steps: int) -> None:
    shape = shape_of(llama_8b("bf16"), reference_class("H100-SXM5-80GB").hardware)
    fixed, per_token = sync_seconds(shape, devices)
    assert fixed == pytest.approx(2 * 32 * steps * INTERCONNECT_DEFAULTS["NVLink"].step_latency_s)
    hidden = math.sqrt(8.03e9 / (12 * 32))
    moved = 2 * (devices - 1) / devices * hidden * 2
    assert per_token == pytest.approx(2 * 32 * moved / INTERCONNECT_DEFAULTS["NVLink"].bandwidth_bytes_per_s)


def test_small_models_stop_speeding_up_at_high_degrees() -> None:
    h100 = reference_class("H100-SXM5-80GB")
    speeds = [decode_tokens_per_s_per_user(llama_8b("bf16"), h100, d) for d in (1, 2, 4, 8)]
    assert speeds == sorted(speeds)
    assert speeds[3] / speeds[0] < 2.5  # the bandwidth alone would give 8 x 0.9^3 = 5.8x


def test_an_8b_model_on_8_mi300x_no_longer_runs_at_2_ms_per_token() -> None:
    """Issue 10's case: TP 8 is now slower than TP 2 (the all-reduces' latency alone is 1.9 ms)."""
    mi300x = reference_class("MI300X")
    step = {d: 1.0 / decode_tokens_per_s_per_user(llama_8b("fp8"), mi300x, d) for d in (2, 8)}
    assert step[8] > 2.0e-3 and step[8] > step[2]
    slo = SLO(ttft_s=0.5, tpot_s=0.002)
    got = estimate_on_devices(llama_8b("fp8"), Workload(1000, 100), slo, mi300x, 8)
    assert isinstance(got, Unfit) and got.kind is UnfitKind.SLO


@pytest.mark.parametrize(
    ("kind", "slower_than"),
    [pytest.param("PCIe", "NVLink", id="pcie-cards-pay-more-than-nvlink")],
)
def test_a_slower_fabric_gives_a_slower_step(kind: str, slower_than: str) -> None:
    model = llama_8b("bf16")
    fast = shape_of(model, _with_link("L4", INTERCONNECT_DEFAULTS[slower_than]))
    slow = shape_of(model, _with_link("L4", INTERCONNECT_DEFAULTS[kind]))
    assert batch1_step_s(slow, 4, 1000) > batch1_step_s(fast, 4, 1000)


@pytest.mark.parametrize("kind", ["OnWafer", "RealScale"])
def test_wafer_and_scheduled_fabrics_add_no_latency(kind: str) -> None:
    shape = shape_of(llama_8b("fp8"), _with_link("Groq LPU", INTERCONNECT_DEFAULTS[kind]))
    assert sync_seconds(shape, 64)[0] == 0.0


def test_hardware_naming_no_interconnect_pays_no_all_reduce() -> None:
    """Objects written before the field plan as they did."""
    plain = Hardware(80e9, 3.35e12, 989e12)
    assert interconnect_of(plain) == DEFAULT_INTERCONNECT
    assert interconnect_of(LinkedHardware(80e9, 3.35e12, 989e12)) == DEFAULT_INTERCONNECT
    assert sync_seconds(shape_of(llama_8b("bf16"), plain), 8) == (0.0, 0.0)


def test_the_batched_step_pays_the_per_token_all_reduce_bytes() -> None:
    """On 8 devices a 1 GB/s link (all else equal) serves fewer req/s at the same SLO."""
    model, workload, slo = llama_8b("bf16"), Workload(1000, 200), SLO(ttft_s=1.0, tpot_s=0.05)
    base = reference_class("H100-SXM5-80GB")
    thin_link = Interconnect("NVLink", 10e9, 10e-6)
    thin = dataclasses.replace(base, hardware=_with_link("H100-SXM5-80GB", thin_link))
    fast = estimate_on_devices(model, workload, slo, base, 8)
    slow = estimate_on_devices(model, workload, slo, thin, 8)
    assert isinstance(fast, Estimate) and isinstance(slow, Estimate)
    assert slow.rps < fast.rps
