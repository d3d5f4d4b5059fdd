"""The routing table of a size-aware InferencePool: the one format the operator publishes and a
router (or the fleet simulator) reads.

Owns the ConfigMap's name (``<pool>-routing``) and key (``routing.json``), the shape of the document
(``RoutingTable``: per requestMix bucket its token ranges and the classes' Services with the share of
the bucket's requests each should get, from the plan) and the rule a router follows (``pick``): a
request counts in the bucket holding its input length and its expected output length (the request's
``max_tokens``), clamped into the table's range; an empty bucket, or no table, means the pool's own
Service.  docs/request-mix.md tells users how to wire a router to it.
"""

from __future__ import annotations

import bisect
import random
from typing import Final

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ROUTING_KEY", "Backend", "RouteBucket", "RoutingTable", "routing_name"]

ROUTING_KEY: Final = "routing.json"  # the ConfigMap's data key


def routing_name(pool: str) -> str:
    """The routing ConfigMap of a pool (a pool name is at most 63 characters)."""
    return f"{pool}-routing"


class _Doc(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class Backend(_Doc):
    """One class's replicas: their Service and the share of the bucket's requests they should get."""

    accelerator_class: str = Field(alias="acceleratorClass")
    service: str
    share: float = Field(ge=0, le=1)


class RouteBucket(_Doc):
    """One requestMix bucket: lengths in (min, max] (a min of 0 takes 0 too) and where it goes."""

    min_input_tokens: int = Field(alias="minInputTokens", ge=0)
    max_input_tokens: int = Field(alias="maxInputTokens", ge=1)
    min_output_tokens: int = Field(alias="minOutputTokens", ge=0)
    max_output_tokens: int = Field(alias="maxOutputTokens", ge=0)
    backends: tuple[Backend, ...] = ()  # empty: the pool's Service (nothing planned for the bucket)

    def holds(self, input_tokens: int, output_tokens: int) -> bool:
        return _within(input_tokens, self.min_input_tokens, self.max_input_tokens) and _within(
            output_tokens, self.min_output_tokens, self.max_output_tokens
        )


def _within(n: int, low: int, high: int) -> bool:
    """``n`` in (low, high], or 0 when low is 0."""
    return (low < n or n == low == 0) and n <= high


class RoutingTable(_Doc):
    """What the routing ConfigMap holds (JSON, camelCase)."""

    pool: str  # the InferencePool's name (the ConfigMap's namespace)
    service: str  # the pool's Service: every replica
    port: int
    generation: int = Field(ge=0)  # the pool's metadata.generation the table was planned for
    buckets: tuple[RouteBucket, ...]

    def bucket_of(self, input_tokens: int, output_tokens: int) -> int | None:
        """The index of the bucket a request counts in (clamped into the table), None if none."""
        if not self.buckets:
            return None
        top_in = max(b.max_input_tokens for b in self.buckets)
        top_out = max(b.max_output_tokens for b in self.buckets)
        n_in, n_out = min(max(input_tokens, 0), top_in), min(max(output_tokens, 0), top_out)
        return next((i for i, b in enumerate(self.buckets) if b.holds(n_in, n_out)), None)

    def pick(self, input_tokens: int, output_tokens: int, rng: random.Random) -> str:
        """The Service a request goes to: a backend of its bucket drawn by share, else the pool's."""
        i = self.bucket_of(input_tokens, output_tokens)
        backends = [b for b in self.buckets[i].backends if b.share > 0] if i is not None else []
        if not backends:
            return self.service
        edges, total = [], 0.0
        for b in backends:
            total += b.share
            edges.append(total)
        return backends[min(bisect.bisect_right(edges, rng.random() * total), len(backends) - 1)].service
