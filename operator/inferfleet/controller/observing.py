"""Which pools to read metrics for, each round: the snapshot's autoscaled pools, with their Ready
replicas per class, handed to the Prometheus reader.

Owns ``Observer``, the ``observe`` callable the planning loop takes: it selects the pools whose
``spec.demand.autoscaling`` is on (pinned ones too: their autoscaling reports), counts their Ready
replicas per class from our Deployments (the coverage a reading is checked against), passes each
pool's own ``requestRateQuery`` and whether it has a request mix (its histograms are read), and
returns the reader's ``Observed`` per pool.  A reader that
fails as a whole still yields a typed problem per pool, never an exception that stops planning.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from inferfleet.core.observed import MetricsProblem, Observed
from inferfleet.observe import PoolQuery, PrometheusReader
from inferfleet.reconcile.children import pool_and_class
from inferfleet.reconcile.ports import Snapshot

__all__ = ["Observer", "pool_queries"]


def _autoscaled(pool: Mapping[str, Any]) -> tuple[bool, str | None]:
    spec = pool.get("spec") or {}
    auto = (spec.get("demand") or {}).get("autoscaling")
    if not isinstance(auto, dict) or auto.get("enabled") is False:
        return False, None
    query = auto.get("requestRateQuery")
    return True, query if isinstance(query, str) else None


def pool_queries(snapshot: Snapshot) -> list[PoolQuery]:
    """A query per autoscaled pool, with its Ready replicas per class."""
    ready: dict[tuple[str, str], dict[str, int]] = {}
    for dep in snapshot.deployments:
        owner = pool_and_class(dep)
        if owner is not None and owner[1]:
            namespace, _, name = owner[0].partition("/")
            count = int((dep.get("status") or {}).get("readyReplicas") or 0)
            ready.setdefault((namespace, name), {})[owner[1]] = count
    out = []
    for pool in snapshot.pools:
        on, query = _autoscaled(pool)
        if not on:
            continue
        meta = pool.get("metadata") or {}
        namespace, name = str(meta.get("namespace", "default")), str(meta.get("name"))
        mix = ((pool.get("spec") or {}).get("demand") or {}).get("requestMix")
        many = isinstance(mix, list) and len(mix) > 1
        out.append(PoolQuery(namespace, name, ready.get((namespace, name), {}), query, mix=many))
    return out


class Observer:
    """``observe(snapshot)`` for the planning loop, over one reader."""

    def __init__(self, reader: PrometheusReader, clock: Callable[[], float] = time.time) -> None:
        self._reader = reader
        self._clock = clock

    def __call__(self, snapshot: Snapshot) -> Mapping[str, Observed]:
        queries = pool_queries(snapshot)
        if not queries:
            return {}
        now = self._clock()
        try:
            return self._reader.observe(queries, now)
        except Exception as exc:  # the reader types its failures; anything else is still no data
            detail = f"reading Prometheus failed: {type(exc).__name__}: {exc}"[:1000]
            return {
                q.key: Observed(at=now, rps=None, problem=MetricsProblem.UNREACHABLE, detail=detail)
                for q in queries
            }
