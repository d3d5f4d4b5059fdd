"""API objects to the core's: a pool's request mix (shares from weights, each bucket at its largest
request that fits the context, the typical request as the mix's mean, the routing)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from examples import example

from inferfleet.api.inferencepool import InferencePool
from inferfleet.core import types as core
from inferfleet.translate.objects import to_core_pool


def with_mix(routing: str | None, *buckets: dict[str, int], context: int = 8192) -> InferencePool:
    doc: dict[str, Any] = copy.deepcopy(example("InferencePool", "chat-70b"))
    doc["spec"]["model"]["contextLength"] = context
    doc["spec"]["demand"]["requestMix"] = list(buckets)
    if routing is not None:
        doc["spec"]["demand"]["routing"] = routing
    return InferencePool.model_validate(doc)


def test_without_a_mix_the_pool_is_its_typical_request() -> None:
    pool = to_core_pool(InferencePool.model_validate(example("InferencePool", "chat-70b")))
    assert pool.buckets == () and pool.routing is core.Routing.MIXED
    assert pool.workload == core.Workload(1024, 256)


def test_weights_become_shares_and_each_bucket_is_planned_at_its_largest_request() -> None:
    pool = to_core_pool(
        with_mix(
            "SizeAware",
            {"maxInputTokens": 512, "maxOutputTokens": 256, "weight": 3},
            {"minInputTokens": 512, "maxInputTokens": 100_000, "maxOutputTokens": 256, "weight": 1},
        )
    )
    assert pool.routing is core.Routing.SIZE_AWARE
    assert pool.buckets == (
        core.Bucket(core.Workload(512, 256), 0.75),
        core.Bucket(core.Workload(8192 - 256, 256), 0.25),  # the longest that fits the context
    )
    assert pool.workload == core.Workload(round(0.75 * 512 + 0.25 * 7936), 256)


@pytest.mark.parametrize("routing", [None, "Mixed"])
def test_mixed_routing_is_the_default(routing: str | None) -> None:
    pool = to_core_pool(with_mix(routing, {"maxInputTokens": 512, "maxOutputTokens": 0, "weight": 1}))
    assert pool.routing is core.Routing.MIXED and pool.buckets == (core.Bucket(core.Workload(512, 0), 1.0),)
