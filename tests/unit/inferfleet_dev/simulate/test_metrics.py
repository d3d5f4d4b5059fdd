"""The exposition parses as Prometheus text with vLLM's exact names, types, default buckets and our
labels, agrees with the ground truth, and its counters never decrease."""

from __future__ import annotations

import math

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from inferfleet.core.types import AcceleratorClass, Pool
from inferfleet_dev.simulate.metrics import TPOT_BUCKETS, TTFT_BUCKETS, token_buckets
from inferfleet_dev.simulate.sim import Pod, Simulation

TYPES = {
    "vllm:time_to_first_token_seconds": "histogram",
    "vllm:request_time_per_output_token_seconds": "histogram",
    "vllm:inter_token_latency_seconds": "histogram",
    "vllm:e2e_request_latency_seconds": "histogram",
    "vllm:request_prompt_tokens": "histogram",
    "vllm:request_generation_tokens": "histogram",
    "vllm:prompt_tokens": "counter",  # exposed as vllm:prompt_tokens_total
    "vllm:generation_tokens": "counter",
    "vllm:request_success": "counter",
    "vllm:num_requests_running": "gauge",
    "vllm:num_requests_waiting": "gauge",
    "vllm:kv_cache_usage_perc": "gauge",
}
LABELS = {"model_name", "engine", "namespace", "pod", "pool", "accelerator_class"}


def fleet(pools: dict[str, Pool], classes: dict[str, AcceleratorClass], rps: float = 40.0) -> Simulation:
    sim = Simulation(seed=4)
    pods = [Pod("chat", f"chat-70b-{c}-0", "chat-70b", c, ready_at=0.0) for c in ("h100", "mi300x")]
    sim.sync(pools, classes, pods)
    sim.set_load("chat/chat-70b", rps)
    return sim


def families(text: str) -> dict[str, tuple[str, list[Sample]]]:
    return {f.name: (f.type, list(f.samples)) for f in text_string_to_metric_families(text)}


def test_names_types_buckets_and_labels_are_vllms(
    pools: dict[str, Pool], classes: dict[str, AcceleratorClass]
) -> None:
    sim = fleet(pools, classes)
    sim.advance(60.0)
    text = sim.metrics_text()
    assert text is not None
    got = families(text)
    assert {name: kind for name, (kind, _) in got.items() if name in TYPES} == TYPES
    assert "# TYPE vllm:prompt_tokens_total counter" in text
    assert "vllm:request_success_total{" in text
    for name, (_, samples) in got.items():
        for s in samples:
            assert set(s.labels) >= LABELS, (name, s.labels)
            assert s.labels["engine"] == "0"
            assert s.labels["model_name"] == "meta-llama/Llama-3.1-70B-Instruct"
            assert (s.labels["namespace"], s.labels["pool"]) == ("chat", "chat-70b")
            assert s.labels["pod"] == f"chat-70b-{s.labels['accelerator_class']}-0"
    assert {s.labels["pod"] for s in got["vllm:num_requests_running"][1]} == {
        "chat-70b-h100-0",
        "chat-70b-mi300x-0",
    }
    assert {s.labels["finished_reason"] for s in got["vllm:request_success"][1]} == {"stop"}

    def les(name: str, pod: str = "chat-70b-h100-0") -> list[float]:
        return [
            float(s.labels["le"])
            for s in got[name][1]
            if s.name.endswith("_bucket") and s.labels["pod"] == pod
        ]

    assert les("vllm:time_to_first_token_seconds") == [*TTFT_BUCKETS, math.inf]
    assert 2.0 not in TTFT_BUCKETS and 2560.0 in TTFT_BUCKETS
    assert les("vllm:request_time_per_output_token_seconds") == [*TPOT_BUCKETS, math.inf]
    assert les("vllm:inter_token_latency_seconds") == [*TPOT_BUCKETS, math.inf]
    assert les("vllm:request_prompt_tokens") == [*token_buckets(8192), math.inf]
    assert token_buckets(8192)[-3:] == (1000.0, 2000.0, 5000.0)


def value(text: str, family: str, sample: str, pod: str, **labels: str) -> float:
    for s in families(text)[family][1]:
        if (
            s.name == sample
            and s.labels["pod"] == pod
            and all(s.labels.get(k) == v for k, v in labels.items())
        ):
            return float(s.value)
    raise LookupError(sample)


def test_histograms_agree_with_the_ground_truth(
    pools: dict[str, Pool], classes: dict[str, AcceleratorClass]
) -> None:
    sim = fleet(pools, classes, rps=60.0)  # past both replicas' capacity: requests queue
    sim.advance(40.0)
    text = sim.metrics_text()
    assert text is not None
    done = sim.recorder.window(40.0, 1e9)
    assert len(done) > 100
    for pod in ("chat-70b-h100-0", "chat-70b-mi300x-0"):
        mine = [d for d in done if d.pod == pod]
        success = value(text, "vllm:request_success", "vllm:request_success_total", pod)
        assert success == len(mine)
        e2e = value(text, "vllm:e2e_request_latency_seconds", "vllm:e2e_request_latency_seconds_sum", pod)
        assert e2e == pytest.approx(sum(d.finish - d.arrival for d in mine))
        gen = value(text, "vllm:generation_tokens", "vllm:generation_tokens_total", pod)
        assert gen == sum(d.n_out for d in mine)
        ttft_count = value(
            text, "vllm:time_to_first_token_seconds", "vllm:time_to_first_token_seconds_count", pod
        )
        assert ttft_count >= success  # counted at the first token, before the finish
        waiting = value(text, "vllm:num_requests_waiting", "vllm:num_requests_waiting", pod)
        assert waiting > 0  # overloaded: a queue
    queued = [d for d in done if d.ttft > 1.0]
    assert queued, "TTFT counts from arrival, queueing included"


def test_counters_never_decrease(pools: dict[str, Pool], classes: dict[str, AcceleratorClass]) -> None:
    sim = fleet(pools, classes, rps=20.0)
    last: dict[tuple[str, str, str], float] = {}
    for t in range(5, 65, 5):
        sim.advance(float(t))
        if t == 30:
            sim.set_load("chat/chat-70b", 2.0)  # load drops: counters still only grow
        text = sim.metrics_text()
        assert text is not None
        for f in text_string_to_metric_families(text):
            for s in f.samples:
                if f.type == "counter" or s.name.endswith(("_bucket", "_count", "_sum")):
                    key = (s.name, s.labels["pod"], s.labels.get("le", ""))
                    assert s.value >= last.get(key, 0.0), key
                    last[key] = s.value
    assert last[("vllm:request_success_total", "chat-70b-h100-0", "")] > 0
