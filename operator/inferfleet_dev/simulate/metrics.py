"""vLLM-compatible Prometheus text exposition of simulated replicas (names, types, default buckets).

Owns the series one vLLM V1 engine exports (shared/AUTOSCALING.md §1), as a real fleet shows them
after a PodMonitor's relabelling: every series carries ``model_name``, ``engine="0"``,
``namespace``, ``pod``, ``pool`` and ``accelerator_class``.  ``ReplicaSeries`` is an engine
observer that keeps one replica's counters and histograms; ``render`` writes the text format
(version 0.0.4) for all replicas, one family block per metric.  Written directly (the runtime's
import contract keeps prometheus_client inside ``inferfleet.metrics``); tests parse it with
``prometheus_client.parser``.  TTFT counts from arrival (queueing included) when the first token
comes out; the other request histograms when the request finishes.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

from inferfleet_dev.simulate.engine import Replica, Request

__all__ = [
    "FAMILIES",
    "TOKEN_BUCKETS",
    "TPOT_BUCKETS",
    "TTFT_BUCKETS",
    "Histogram",
    "ReplicaSeries",
    "render",
    "token_buckets",
]

TTFT_BUCKETS: Final = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0,
                       7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0)  # fmt: skip
TPOT_BUCKETS: Final = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
                       10.0, 20.0, 40.0, 80.0)  # fmt: skip
E2E_BUCKETS: Final = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0,
                      120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0)  # fmt: skip


def token_buckets(max_model_len: int) -> tuple[float, ...]:
    """vLLM's token buckets: 1, 2, 5 x 10^k up to ``max_model_len``."""
    out: list[float] = []
    exponent = 0
    while True:
        for m in (1, 2, 5):
            value = m * 10**exponent
            if value > max_model_len:
                return tuple(out)
            out.append(float(value))
        exponent += 1


TOKEN_BUCKETS: Final = token_buckets(8192)  # the default; ReplicaSeries takes the model's length

# name as exposed (without _total for counters) -> (type, help, buckets)
FAMILIES: Final[Mapping[str, tuple[str, str, Sequence[float]]]] = {
    "vllm:time_to_first_token_seconds": ("histogram", "Histogram of time to first token in seconds.",
                                         TTFT_BUCKETS),
    "vllm:request_time_per_output_token_seconds": ("histogram", "Histogram of time_per_output_token_seconds "
                                                   "per request.", TPOT_BUCKETS),
    "vllm:inter_token_latency_seconds": ("histogram", "Histogram of inter-token latency in seconds.",
                                         TPOT_BUCKETS),
    "vllm:e2e_request_latency_seconds": ("histogram", "Histogram of e2e request latency in seconds.",
                                         E2E_BUCKETS),
    "vllm:request_queue_time_seconds": ("histogram", "Histogram of time spent in WAITING phase for request.",
                                        E2E_BUCKETS),
    "vllm:request_prompt_tokens": ("histogram", "Number of prefill tokens processed.", TOKEN_BUCKETS),
    "vllm:request_generation_tokens": ("histogram", "Number of generation tokens processed.",
                                       TOKEN_BUCKETS),
    "vllm:prompt_tokens": ("counter", "Number of prefill tokens processed.", ()),
    "vllm:generation_tokens": ("counter", "Number of generation tokens processed.", ()),
    "vllm:request_success": ("counter", "Count of successfully processed requests.", ()),
    "vllm:num_requests_running": ("gauge", "Number of requests in model execution batches.", ()),
    "vllm:num_requests_waiting": ("gauge", "Number of requests waiting to be processed.", ()),
    "vllm:kv_cache_usage_perc": ("gauge", "KV-cache usage. 1 means 100 percent usage.", ()),
}  # fmt: skip


class Histogram:
    """Cumulative-on-render bucket counts, sum and count (observations can carry a weight)."""

    def __init__(self, buckets: Sequence[float]) -> None:
        self.buckets = tuple(buckets)
        self.counts = [0] * (len(self.buckets) + 1)  # the last one is +Inf
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float, times: int = 1) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += times
        self.sum += value * times
        self.count += times

    def cumulative(self) -> list[int]:
        out, total = [], 0
        for c in self.counts:
            total += c
            out.append(total)
        return out


class ReplicaSeries:
    """One replica's vLLM series; an engine observer.  ``labels`` go on every sample."""

    def __init__(
        self, labels: Mapping[str, str], replica: Replica | None = None, max_model_len: int = 8192
    ) -> None:
        self.labels = dict(labels)
        self.replica = replica
        tokens = token_buckets(max_model_len)
        self.histograms = {
            name: Histogram(tokens if name.endswith("_tokens") else buckets)
            for name, (kind, _, buckets) in FAMILIES.items()
            if kind == "histogram"
        }
        self.prompt_tokens = 0
        self.generation_tokens = 0
        self.success = 0

    def first_token(self, req: Request) -> None:
        self.histograms["vllm:time_to_first_token_seconds"].observe(req.ttft)
        self.prompt_tokens += req.n_in

    def decode_step(self, seconds: float, sequences: int) -> None:
        self.histograms["vllm:inter_token_latency_seconds"].observe(seconds, sequences)

    def finished(self, req: Request) -> None:
        assert req.finish is not None and req.scheduled is not None
        h = self.histograms
        tpot = req.tpot
        if tpot is not None:
            h["vllm:request_time_per_output_token_seconds"].observe(tpot)
        h["vllm:e2e_request_latency_seconds"].observe(req.finish - req.arrival)
        h["vllm:request_queue_time_seconds"].observe(req.scheduled - req.arrival)
        h["vllm:request_prompt_tokens"].observe(req.n_in)
        h["vllm:request_generation_tokens"].observe(req.n_out)
        self.generation_tokens += req.n_out
        self.success += 1

    def gauges(self) -> dict[str, float]:
        r = self.replica
        return {
            "vllm:num_requests_running": float(r.running if r else 0),
            "vllm:num_requests_waiting": float(r.waiting if r else 0),
            "vllm:kv_cache_usage_perc": r.kv_usage if r else 0.0,
        }


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: Mapping[str, str], extra: Mapping[str, str] | None = None) -> str:
    items = {**labels, **(extra or {})}
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in items.items()) + "}"


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else f"{value:.1f}"


def _family(name: str, series: Sequence[ReplicaSeries]) -> Iterable[str]:
    kind, help_text, _ = FAMILIES[name]
    exposed = f"{name}_total" if kind == "counter" else name
    yield f"# HELP {exposed} {help_text}"
    yield f"# TYPE {exposed} {kind}"
    for s in series:
        if kind == "histogram":
            h = s.histograms[name]
            for le, total in zip((*h.buckets, math.inf), h.cumulative(), strict=True):
                yield f"{name}_bucket{_labels(s.labels, {'le': _number(le)})} {total:.1f}"
            yield f"{name}_sum{_labels(s.labels)} {_number(h.sum)}"
            yield f"{name}_count{_labels(s.labels)} {h.count:.1f}"
        elif kind == "counter":
            value = {
                "vllm:prompt_tokens": s.prompt_tokens,
                "vllm:generation_tokens": s.generation_tokens,
                "vllm:request_success": s.success,
            }[name]
            extra = {"finished_reason": "stop"} if name == "vllm:request_success" else None
            yield f"{exposed}{_labels(s.labels, extra)} {float(value):.1f}"
        else:
            yield f"{name}{_labels(s.labels)} {_number(s.gauges()[name])}"


def render(series: Sequence[ReplicaSeries]) -> str:
    """The exposition of ``series`` (every family present, even with no replicas)."""
    lines = [line for name in FAMILIES for line in _family(name, series)]
    return "\n".join(lines) + "\n"
