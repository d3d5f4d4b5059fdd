"""What ``inferfleet plan --live`` reads back from the cluster's objects (pure, raw API JSON in).

Owns three readings of what the operator left in the cluster, so that the live plan is the
operator's own computation and its "now" is what runs:

- ``recorded_demand``: the demand the operator last planned each autoscaled pool with
  (``status.autoscaling.demandRequestsPerSecond``), which the live plan uses instead of metrics (it
  reads no Prometheus); pools that are pinned (``spec.replicas``), not autoscaled, or not yet
  evaluated are planned with their own demand, as the operator plans them;
- ``running``: replicas per pool and class as our Deployments ask for them now;
- ``per_replica``: watts and $/h of one replica per pool and class, as the operator recorded them
  in the pools' ``status.placements`` (what runs now is valued with the operator's own figures).

Reading the cluster itself (``kube.snapshot.read_snapshot``) is the CLI's job: this layer imports
no adapter.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from inferfleet.api import labels
from inferfleet.api.inferencepool import InferencePool

__all__ = ["per_replica", "recorded_demand", "running"]

Obj = Mapping[str, Any]


def _meta(obj: Obj) -> Mapping[str, Any]:
    meta: Mapping[str, Any] = obj.get("metadata") or {}
    return meta


def recorded_demand(pools: Mapping[str, InferencePool], raw: Mapping[str, Obj]) -> dict[str, float]:
    """Pool key -> the demand the operator's last evaluation planned it with, for every autoscaled,
    unpinned pool it has evaluated (``raw``: the pools as read, by key, with their status)."""
    out: dict[str, float] = {}
    for key, pool in sorted(pools.items()):
        auto = pool.spec.demand.autoscaling
        if auto is None or not auto.enabled or pool.spec.replicas is not None:
            continue
        block = ((raw.get(key) or {}).get("status") or {}).get("autoscaling")
        if not isinstance(block, Mapping) or not block.get("lastEvaluationTime"):
            continue  # never evaluated (or no metrics source): the pool's own demand, as the operator
        demand = block.get("demandRequestsPerSecond")
        if isinstance(demand, int | float) and not isinstance(demand, bool) and demand >= 0:
            out[key] = float(demand)
    return out


def _pool_and_class(dep: Obj) -> tuple[str, str] | None:
    dep_labels = _meta(dep).get("labels") or {}
    pool, cls = dep_labels.get(labels.POOL), dep_labels.get(labels.ACCELERATOR_CLASS)
    if not pool or not cls:
        return None
    return f"{_meta(dep).get('namespace')}/{pool}", str(cls)


def running(deployments: Iterable[Obj]) -> dict[str, dict[str, int]]:
    """Pool key -> class -> replicas our Deployments ask for now (classes at 0 left out)."""
    out: dict[str, dict[str, int]] = {}
    for dep in deployments:
        owner = _pool_and_class(dep)
        replicas = int((dep.get("spec") or {}).get("replicas") or 0)
        if owner is not None and replicas > 0:
            out.setdefault(owner[0], {})[owner[1]] = replicas
    return out


def per_replica(pools: Iterable[Obj]) -> dict[tuple[str, str], tuple[float, float]]:
    """(pool key, class) -> (watts, $/h) of one replica, from the pools' ``status.placements``."""
    out: dict[tuple[str, str], tuple[float, float]] = {}
    for pool in pools:
        key = f"{_meta(pool).get('namespace')}/{_meta(pool).get('name')}"
        for p in (pool.get("status") or {}).get("placements") or ():
            if not isinstance(p, Mapping) or not p.get("acceleratorClass"):
                continue
            replicas = int(p.get("replicas") or 0)
            if replicas > 0:
                watts, dollars = float(p.get("watts") or 0), float(p.get("dollarsPerHour") or 0)
                out[(key, str(p["acceleratorClass"]))] = (watts / replicas, dollars / replicas)
    return out
