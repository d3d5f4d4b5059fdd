"""The performance model: memory fit, SLO limits, profiles, and the published-figure sanity table."""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inferfleet.core import sizing
from inferfleet.core.performance import (
    decode_tokens_per_s_per_user,
    effective_flops,
    estimate,
    estimate_on_devices,
)
from inferfleet.core.reference import REFERENCE_DEVICES_PER_NODE, REFERENCE_HARDWARE, reference_class
from inferfleet.core.sanity import (
    PER_USER_ANCHORS,
    THROUGHPUT_ANCHORS,
    Anchor,
    embed,
    llama_8b,
    llama_70b,
    markdown,
    predicted_per_user,
    predicted_throughput,
)
from inferfleet.core.types import (
    SLO,
    AcceleratorClass,
    Estimate,
    ModelSpec,
    Precision,
    Profile,
    ProfilePoint,
    Unfit,
    Workload,
)
from inferfleet.core.units import TERA

DOC = Path(__file__).resolve().parents[3] / "docs" / "performance-model.md"
CHAT = Workload(1000, 200)
H100 = reference_class("H100-SXM5-80GB")
L4 = reference_class("L4")


def _est(model: ModelSpec, workload: Workload, slo: SLO, cls: AcceleratorClass) -> Estimate:
    got = estimate(model, workload, slo, cls)
    assert isinstance(got, Estimate), got
    return got


def _unfit(model: ModelSpec, workload: Workload, slo: SLO, cls: AcceleratorClass) -> str:
    got = estimate(model, workload, slo, cls)
    assert isinstance(got, Unfit), got
    return got.reason


# --------------------------------------------------------------------------------------------------
# Sanity against published figures
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "anchor",
    [pytest.param(a, id=f"{a.id}-near-{a.published:.0f}-tok-s") for a in PER_USER_ANCHORS if a.asserted],
)
def test_per_user_decode_speed_is_within_2x_of_published(anchor: Anchor) -> None:
    _, predicted = predicted_per_user(anchor)
    assert anchor.published / 2 <= predicted <= anchor.published * 2


@pytest.mark.parametrize(
    "anchor", [pytest.param(a, id=f"{a.id}-near-{a.published:.0f}-tok-s") for a in THROUGHPUT_ANCHORS]
)
def test_max_throughput_is_within_2x_of_tensorrt_llm(anchor: Anchor) -> None:
    _, tokens_per_s = predicted_throughput(anchor)
    assert anchor.published / 2 <= tokens_per_s <= anchor.published * 2


def test_the_docs_table_is_the_generated_one() -> None:
    doc = DOC.read_text(encoding="utf-8")
    assert doc == embed(doc, markdown()), (
        "run: PYTHONPATH=operator python -m inferfleet.core.performance --write docs/performance-model.md"
    )


def test_embed_refuses_a_doc_without_markers() -> None:
    with pytest.raises(ValueError, match="markers"):
        embed("no markers here", "table")


def test_reference_hardware_covers_the_fleet_and_has_power() -> None:
    wanted = {"H100-SXM5-80GB", "H200-SXM-141GB", "L4", "MI300X", "Cerebras CS-3", "Groq LPU",
              "Inferentia2", "TPU-v5e", "A100-SXM4-80GB", "L40S", "B200"}  # fmt: skip
    assert wanted <= set(REFERENCE_HARDWARE)
    for name, hw in REFERENCE_HARDWARE.items():
        assert 0 < hw.power_idle_watts < hw.power_busy_watts, name
        assert hw.layer_latency_s > 0, name
        assert name in REFERENCE_DEVICES_PER_NODE


# --------------------------------------------------------------------------------------------------
# Sizing
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params_b", "layers"),
    [
        pytest.param(8.0, 32, id="8b-has-32-layers"),
        pytest.param(70.0, 80, id="70b-has-80-layers"),
        pytest.param(405.0, 126, id="405b-has-126-layers"),
        pytest.param(1.0, 16, id="1b-has-16-layers"),
        pytest.param(0.01, 12, id="tiny-models-clamp-to-12"),
        pytest.param(2000.0, 126, id="huge-models-clamp-to-126"),
    ],
)
def test_layer_estimate_follows_the_llama_family(params_b: float, layers: int) -> None:
    assert sizing.estimated_layers(params_b) == layers


@pytest.mark.parametrize(
    ("model", "kv_bytes"),
    [
        pytest.param(ModelSpec("m", 8.0), 128 * 1024, id="8b-16-bit-kv-is-128-kib-per-token"),
        pytest.param(ModelSpec("m", 70.0), 320 * 1024, id="70b-16-bit-kv-is-320-kib-per-token"),
        pytest.param(ModelSpec("m", 70.0, "fp8"), 320 * 1024, id="fp8-weights-keep-a-16-bit-kv-cache"),
        pytest.param(ModelSpec("m", 8.0, "fp32"), 256 * 1024, id="fp32-doubles-the-kv-cache"),
        pytest.param(ModelSpec("m", 8.0, layers=10), 40 * 1024, id="given-layers-are-used"),
        pytest.param(ModelSpec("m", 8.0, kv_bytes_per_token=1000), 1000, id="given-kv-bytes-win"),
    ],
)
def test_kv_bytes_per_token(model: ModelSpec, kv_bytes: int) -> None:
    assert sizing.kv_bytes_per_token(model) == kv_bytes


@pytest.mark.parametrize(
    ("model", "system", "devices"),
    [
        pytest.param(llama_8b("bf16"), "H100-SXM5-80GB", 1, id="8b-bf16-fits-one-h100"),
        pytest.param(llama_70b("bf16"), "H100-SXM5-80GB", 2, id="70b-bf16-needs-2-h100s"),
        pytest.param(llama_70b("fp8"), "H100-SXM5-80GB", 1, id="70b-fp8-squeezes-into-one-h100"),
        pytest.param(llama_70b("bf16"), "L4", 8, id="70b-bf16-needs-8-l4s"),
        pytest.param(llama_70b("bf16"), "Cerebras CS-3", 4, id="70b-bf16-needs-4-cerebras-systems"),
        pytest.param(llama_70b("fp8"), "Groq LPU", 512, id="70b-fp8-needs-512-groq-chips"),
        pytest.param(llama_8b("fp8"), "Groq LPU", 64, id="8b-fp8-needs-64-groq-chips"),
    ],
)
def test_memory_fit_rounds_up_to_a_power_of_two(model: ModelSpec, system: str, devices: int) -> None:
    hw = REFERENCE_HARDWARE[system]
    assert sizing.min_devices(model, hw, sizing.fit_tokens(model, CHAT)) == devices


@pytest.mark.parametrize(
    ("model", "system", "expected"),
    [
        pytest.param(
            ModelSpec("llama-405b", 405.0),
            "H100-SXM5-80GB",
            "needs 16 devices of 80 GiB",
            id="405b-bf16-exceeds-an-h100-node",
        ),
        pytest.param(
            llama_70b("bf16"),
            "Groq LPU",
            "needs 1024 devices of 0.214 GiB",
            id="70b-bf16-exceeds-a-groq-rack",
        ),
        pytest.param(
            llama_70b("bf16"), "TPU-v5e", "needs 16 devices of 16 GiB", id="70b-bf16-exceeds-a-tpu-v5e-host"
        ),
    ],
)
def test_models_larger_than_a_node_are_unfit_with_the_figures(
    model: ModelSpec, system: str, expected: str
) -> None:
    reason = _unfit(model, CHAT, SLO(), reference_class(system))
    assert expected in reason
    assert f"nodes have {REFERENCE_DEVICES_PER_NODE[system]}" in reason


# --------------------------------------------------------------------------------------------------
# SLOs, device choice and shapes of work
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "slo", "cls", "pattern"),
    [
        pytest.param(
            llama_70b("bf16"), SLO(tpot_s=0.020), L4,
            r"^predicted TPOT 1\d\d ms at batch 1 on 8 devices exceeds the 20 ms SLO$",
            id="70b-on-l4s-misses-a-20ms-tpot",
        ),
        pytest.param(
            llama_8b("bf16"), SLO(ttft_s=0.001), H100,
            r"^predicted TTFT [\d.]+ ms at batch 1 on 8 devices exceeds the 1 ms SLO$",
            id="8b-cannot-answer-in-1ms",
        ),
        pytest.param(
            llama_8b("bf16"), SLO(tpot_s=0.0005), reference_class("Cerebras CS-3"),
            r"^predicted TPOT 6\d\d us at batch 1 on 4 devices exceeds the 500 us SLO$",
            id="cerebras-layer-latency-bounds-tpot",
        ),
    ],
)  # fmt: skip
def test_slo_misses_name_the_prediction_and_the_slo(
    model: ModelSpec, slo: SLO, cls: AcceleratorClass, pattern: str
) -> None:
    reason = _unfit(model, CHAT, slo, cls)
    assert re.match(pattern, reason), reason


def test_tensor_parallelism_rescues_a_tpot_one_gpu_cannot_meet() -> None:
    model, slo = llama_70b("fp8"), SLO(tpot_s=0.020)
    assert isinstance(estimate_on_devices(model, CHAT, slo, H100, 1), Unfit)
    got = _est(model, CHAT, slo, H100)
    assert got.devices >= 2
    assert got.tpot_s <= 0.020


def test_a_small_model_stays_on_one_gpu_when_the_slo_allows() -> None:
    assert _est(llama_8b("fp8"), CHAT, SLO(ttft_s=2.0, tpot_s=0.05), H100).devices == 1


def test_the_batch_is_the_largest_meeting_the_documented_tpot() -> None:
    """Re-derive TPOT(B), TPOT(B + 1) and rps(B) from the equations in docs/performance-model.md."""
    model, slo, (n_in, n_out) = llama_8b("fp8"), SLO(tpot_s=0.05), (CHAT.input_tokens, CHAT.output_tokens)
    got = _est(model, CHAT, slo, H100)
    scale = got.devices * math.pow(0.9, math.log2(got.devices))
    bandwidth = scale * 3.35e12 * 0.75
    flops = scale * 1979e12 * 0.5
    params, weights, kv = 8.03e9, 8.03e9, 131072
    prefill = 2 * params * n_in / flops

    def step(b: int) -> float:
        return max((weights + b * kv * (n_in + n_out / 2)) / bandwidth, 2 * params * b / flops) + 32 * 5e-6

    def tpot(b: int) -> float:
        return step(b) + b * prefill / n_out

    assert tpot(got.batch) <= 0.05 < tpot(got.batch + 1)
    assert got.tpot_s == pytest.approx(tpot(got.batch))
    assert got.rps == pytest.approx(got.batch / (n_out * step(got.batch) + got.batch * prefill))
    assert got.ttft_s == pytest.approx(step(got.batch) + max(prefill, weights / bandwidth) + 32 * 5e-6)


def test_no_slo_means_the_kv_cache_bounds_the_batch() -> None:
    got = estimate_on_devices(llama_8b("fp8"), Workload(128, 128), SLO(), H100, 1)
    assert isinstance(got, Estimate)
    free = sizing.usable_bytes_per_device(H100.hardware) - sizing.weight_bytes(llama_8b("fp8"))
    assert got.batch == math.floor(free / (131072 * 256))


@pytest.mark.parametrize(
    ("slo", "devices"),
    [
        pytest.param(SLO(ttft_s=0.2), 1, id="embeddings-fit-one-gpu-under-a-200ms-ttft"),
        pytest.param(SLO(), 1, id="embeddings-without-slo-stay-on-one-gpu-as-tp-costs"),
    ],
)
def test_embedding_models_are_prefill_only(slo: SLO, devices: int) -> None:
    model = ModelSpec("bge-large", 0.335, "bf16", 512)
    got = _est(model, Workload(400, 0), slo, H100)
    assert got.tpot_s == 0.0
    assert got.rps > 0
    assert got.devices == devices
    if slo.ttft_s is not None:
        assert got.ttft_s <= slo.ttft_s


def test_embeddings_with_an_impossible_ttft_are_unfit() -> None:
    reason = _unfit(ModelSpec("bge-large", 0.335, "bf16", 512), Workload(400, 0), SLO(ttft_s=1e-5), H100)
    assert reason.startswith("predicted TTFT")


@pytest.mark.parametrize(
    ("model", "workload", "hw_change", "fragment"),
    [
        pytest.param(llama_8b("bf16"), Workload(8000, 1000), {}, "exceed the model's 8192-token context",
                     id="requests-longer-than-the-context"),
        pytest.param(llama_8b("bf16"), Workload(0, 100), {}, "no input tokens", id="empty-prompts"),
        pytest.param(ModelSpec("m", 0.0), CHAT, {}, "no parameters", id="a-model-without-parameters"),
        pytest.param(llama_8b("bf16"), CHAT, {"memory_bandwidth_bytes_per_s": 0.0}, "lacks memory, bandwidth",
                     id="a-class-without-bandwidth"),
    ],
)  # fmt: skip
def test_impossible_inputs_are_unfit_not_errors(
    model: ModelSpec, workload: Workload, hw_change: dict[str, float], fragment: str
) -> None:
    cls = dataclasses.replace(H100, hardware=dataclasses.replace(H100.hardware, **hw_change))
    assert fragment in _unfit(model, workload, SLO(), cls)


@pytest.mark.parametrize(
    ("system", "precision", "tflops"),
    [
        pytest.param("H100-SXM5-80GB", "fp8", 1979, id="h100-fp8-uses-the-fp8-rate"),
        pytest.param("H100-SXM5-80GB", "int4", 1979, id="h100-int4-uses-the-8-bit-rate"),
        pytest.param("A100-SXM4-80GB", "fp8", 312, id="a100-fp8-falls-back-to-bf16"),
        pytest.param("H100-SXM5-80GB", "bf16", 989, id="h100-bf16"),
        pytest.param("H100-SXM5-80GB", "fp32", 494.5, id="fp32-runs-at-half-bf16"),
    ],
)
def test_precision_picks_the_compute_rate(system: str, precision: str, tflops: float) -> None:
    assert effective_flops(REFERENCE_HARDWARE[system], precision) == tflops * TERA


# --------------------------------------------------------------------------------------------------
# Measured profiles
# --------------------------------------------------------------------------------------------------

BUCKETS = (ProfilePoint(512, 128, 10.0), ProfilePoint(2048, 512, 4.0), ProfilePoint(1024, 256, 7.0))


def _profiled(*profiles: Profile) -> AcceleratorClass:
    return dataclasses.replace(H100, profiles=profiles)


@pytest.mark.parametrize(
    ("profile", "workload", "rps", "source"),
    [
        pytest.param(Profile("llama-3.1-8b", rps=42.0), CHAT, 42.0, "profile", id="a-single-rate-overrides"),
        pytest.param(Profile("llama-3.1-8b", points=BUCKETS), CHAT, 7.0, "profile",
                     id="the-smallest-covering-bucket-answers"),
        pytest.param(Profile("llama-3.1-8b", points=BUCKETS), Workload(100, 100), 10.0, "profile",
                     id="short-requests-use-the-smallest-bucket"),
        pytest.param(Profile("llama-3.1-8b", points=BUCKETS), Workload(4000, 100), None, "analytic",
                     id="uncovered-shapes-fall-back-to-analytic"),
        pytest.param(Profile("other-model", rps=42.0), CHAT, None, "analytic",
                     id="other-models-profiles-are-ignored"),
    ],
)  # fmt: skip
def test_profiles_override_exactly_where_given(
    profile: Profile, workload: Workload, rps: float | None, source: str
) -> None:
    model, slo = llama_8b("fp8"), SLO(ttft_s=2.0, tpot_s=0.05)
    got = _est(model, workload, slo, _profiled(profile))
    assert got.source == source
    if rps is not None:
        assert got.rps == rps
        assert (got.ttft_s, got.tpot_s) == (2.0, 0.05)
    else:
        assert got == _est(model, workload, slo, H100)


def test_profile_devices_override_the_device_count() -> None:
    got = _est(
        llama_8b("fp8"), CHAT, SLO(tpot_s=0.05), _profiled(Profile("llama-3.1-8b", devices=2, rps=50.0))
    )
    assert (got.devices, got.rps, got.source) == (2, 50.0, "profile")


def test_profile_devices_also_fix_the_analytic_fallback() -> None:
    cls = _profiled(Profile("llama-3.1-8b", devices=4, points=BUCKETS))
    got = _est(llama_8b("fp8"), Workload(4000, 100), SLO(tpot_s=0.05), cls)
    assert (got.devices, got.source) == (4, "analytic")


@pytest.mark.parametrize(
    ("profile", "fragment"),
    [
        pytest.param(Profile("llama-3.1-8b", devices=16, rps=50.0), "profile uses 16 devices; nodes have 8",
                     id="profile-larger-than-a-node"),
        pytest.param(Profile("llama-3.1-8b", rps=0.0), "gives 0 req/s", id="profile-with-zero-rate"),
    ],
)  # fmt: skip
def test_unusable_profiles_are_unfit(profile: Profile, fragment: str) -> None:
    assert fragment in _unfit(llama_8b("fp8"), CHAT, SLO(), _profiled(profile))


# --------------------------------------------------------------------------------------------------
# Batch-1 speed
# --------------------------------------------------------------------------------------------------


def test_decode_speed_needs_the_model_to_fit_a_node() -> None:
    with pytest.raises(ValueError, match="needs 16 devices"):
        decode_tokens_per_s_per_user(ModelSpec("llama-405b", 405.0), H100)


def test_decode_speed_defaults_to_the_memory_fit() -> None:
    model = llama_70b("bf16")
    assert decode_tokens_per_s_per_user(model, H100) == decode_tokens_per_s_per_user(model, H100, 2)


# --------------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------------

PRECISIONS: tuple[Precision, ...] = ("bf16", "fp8", "int4")
models = st.builds(
    lambda p, prec: ModelSpec("m", p, prec, 16384),
    st.sampled_from([0.5, 1.0, 3.0, 8.0, 13.0, 34.0, 70.0, 180.0]),
    st.sampled_from(PRECISIONS),
)
workloads = st.builds(Workload, st.integers(1, 8000), st.sampled_from([0, 1, 50, 200, 1000, 4000]))
classes = st.sampled_from(sorted(REFERENCE_HARDWARE)).map(reference_class)
maybe_seconds = st.one_of(st.none(), st.floats(0.002, 5.0))
slos = st.builds(SLO, maybe_seconds, maybe_seconds)


@settings(max_examples=150, deadline=None)
@given(models, workloads, slos, classes)
def test_every_estimate_is_positive_and_within_its_slo_and_node(
    model: ModelSpec, workload: Workload, slo: SLO, cls: AcceleratorClass
) -> None:
    got = estimate(model, workload, slo, cls)
    if isinstance(got, Unfit):
        assert got.reason
        return
    assert got.rps > 0 and got.batch >= 1
    assert got.devices & (got.devices - 1) == 0, "a power of two"
    assert 1 <= got.devices <= cls.devices_per_node
    if slo.ttft_s is not None:
        assert got.ttft_s <= slo.ttft_s
    if slo.tpot_s is not None and workload.output_tokens > 0:
        assert got.tpot_s <= slo.tpot_s


@settings(max_examples=120, deadline=None)
@given(
    models,
    workloads,
    classes,
    st.tuples(st.floats(0.002, 1.0), st.floats(0.1, 1.0), st.sampled_from([1, 2, 4, 8])),
)
def test_a_tighter_tpot_never_raises_the_rate_on_fixed_devices(
    model: ModelSpec, workload: Workload, cls: AcceleratorClass, knobs: tuple[float, float, int]
) -> None:
    tpot, shrink, devices = knobs
    devices = min(devices, cls.devices_per_node)
    loose = estimate_on_devices(model, workload, SLO(tpot_s=tpot), cls, devices)
    tight = estimate_on_devices(model, workload, SLO(tpot_s=tpot * shrink), cls, devices)
    if isinstance(loose, Unfit):
        assert isinstance(tight, Unfit)
    elif isinstance(tight, Estimate):
        assert tight.rps <= loose.rps * (1 + 1e-12)


@settings(max_examples=120, deadline=None)
@given(models, workloads, classes, slos, st.floats(0.1, 1.0))
def test_a_tighter_slo_never_raises_the_rate_per_device(
    model: ModelSpec, workload: Workload, cls: AcceleratorClass, slo: SLO, shrink: float
) -> None:
    tighter = SLO(
        slo.ttft_s * shrink if slo.ttft_s is not None else None,
        slo.tpot_s * shrink if slo.tpot_s is not None else None,
    )
    loose, tight = estimate(model, workload, slo, cls), estimate(model, workload, tighter, cls)
    if isinstance(loose, Unfit):
        assert isinstance(tight, Unfit)
    elif isinstance(tight, Estimate):
        assert tight.rps / tight.devices <= loose.rps / loose.devices * (1 + 1e-6)


@settings(max_examples=120, deadline=None)
@given(models, classes, st.sampled_from([1, 2, 4, 8, 16]), st.floats(1.0, 10.0))
def test_more_devices_or_bandwidth_never_slow_batch_1_decode(
    model: ModelSpec, cls: AcceleratorClass, devices: int, factor: float
) -> None:
    """More devices never slow decode where the fabric has no all-reduce latency (with one, a small
    model may get slower at high degrees: test_interconnect.py); more bandwidth never does."""
    unlinked = dataclasses.replace(cls, hardware=dataclasses.replace(cls.hardware, interconnect=None))
    base_unlinked = decode_tokens_per_s_per_user(model, unlinked, devices)
    assert decode_tokens_per_s_per_user(model, unlinked, devices * 2) >= base_unlinked
    base = decode_tokens_per_s_per_user(model, cls, devices)
    faster = dataclasses.replace(
        cls,
        hardware=dataclasses.replace(
            cls.hardware, memory_bandwidth_bytes_per_s=cls.hardware.memory_bandwidth_bytes_per_s * factor
        ),
    )
    assert decode_tokens_per_s_per_user(model, faster, devices) >= base
