"""The routing table's rule: which bucket a request counts in, and which Service it goes to."""

from __future__ import annotations

import random
from collections import Counter

from inferfleet.api.routing import Backend, RouteBucket, RoutingTable, routing_name


def bucket(lo_in: int, hi_in: int, lo_out: int, hi_out: int, *backends: tuple[str, float]) -> RouteBucket:
    return RouteBucket(
        min_input_tokens=lo_in,
        max_input_tokens=hi_in,
        min_output_tokens=lo_out,
        max_output_tokens=hi_out,
        backends=tuple(Backend(accelerator_class=c, service=f"p-{c}", share=s) for c, s in backends),
    )


TABLE = RoutingTable(
    pool="p",
    service="p",
    port=8000,
    generation=1,
    buckets=(
        bucket(0, 512, 0, 128, ("l4", 1.0)),
        bucket(512, 4096, 0, 128, ("h100", 0.75), ("l4", 0.25)),
        bucket(0, 4096, 128, 1024),  # nothing planned: the pool's Service
    ),
)


def test_a_request_counts_in_the_bucket_holding_its_lengths_clamped_into_the_table() -> None:
    assert TABLE.bucket_of(0, 0) == 0 and TABLE.bucket_of(512, 128) == 0
    assert TABLE.bucket_of(513, 128) == 1 and TABLE.bucket_of(100_000, 1) == 1
    assert TABLE.bucket_of(10, 129) == 2 and TABLE.bucket_of(10**6, 10**6) == 2
    assert RoutingTable(pool="p", service="p", port=1, generation=0, buckets=()).bucket_of(1, 1) is None


def test_requests_go_to_the_bucket_s_services_by_share_or_to_the_pool_s() -> None:
    rng = random.Random(3)
    assert {TABLE.pick(100, 100, rng) for _ in range(50)} == {"p-l4"}
    got = Counter(TABLE.pick(1000, 64, rng) for _ in range(4000))
    assert set(got) == {"p-h100", "p-l4"} and abs(got["p-l4"] / 4000 - 0.25) < 0.03
    assert TABLE.pick(100, 500, rng) == "p"


def test_embedding_buckets_hold_no_output() -> None:
    table = RoutingTable(
        pool="e", service="e", port=1, generation=0, buckets=(bucket(0, 128, 0, 0), bucket(128, 512, 0, 0))
    )
    assert table.bucket_of(100, 0) == 0 and table.bucket_of(129, 0) == 1


def test_the_config_map_is_named_after_the_pool() -> None:
    assert routing_name("chat") == "chat-routing"
