"""Children that realise a size-aware pool's split: a Service per class and the routing ConfigMap.

Owns, for a pool whose plan routes requestMix buckets to classes (placements carry ``bucket_rps``):
one Service per class with replicas (``<pool>-<class>``, the Deployment's name, selecting the pool's
and the class's labels) and the ConfigMap ``<pool>-routing`` holding the ``RoutingTable``
(inferfleet.api.routing) built from the plan; and which of those that exist are no longer wanted
(a class that left the plan, a pool no longer size-aware): they are deleted.  Pure: manifests in,
writes out (``extend``, beside ``children.diff``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from inferfleet.api import labels
from inferfleet.api.inferencepool import InferencePool
from inferfleet.api.routing import ROUTING_KEY, Backend, RouteBucket, RoutingTable, routing_name
from inferfleet.core import types as core
from inferfleet.reconcile.children import ChildWrites, child_labels, deployment_name, owner, same, with_hash
from inferfleet.reconcile.ports import Obj
from inferfleet.reconcile.validate import key_of, meta

__all__ = ["build_class_service", "build_routing", "extend", "routing_table", "size_aware_children"]


def build_class_service(pool: InferencePool, accelerator_class: str) -> dict[str, Any]:
    """The Service of the pool's replicas on one class (a router's backend for the class)."""
    name = str(pool.metadata["name"])
    return with_hash(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": deployment_name(name, accelerator_class),
                "namespace": pool.metadata.get("namespace", "default"),
                "labels": child_labels(pool, {labels.ACCELERATOR_CLASS: accelerator_class}),
                "ownerReferences": [owner(pool)],
            },
            "spec": {
                "selector": {labels.POOL: name, labels.ACCELERATOR_CLASS: accelerator_class},
                "ports": [
                    {"name": "http", "port": pool.spec.server.port, "targetPort": "http", "protocol": "TCP"}
                ],
            },
        }
    )


def routing_table(pool: InferencePool, plan: core.PoolPlan) -> RoutingTable:
    """Per bucket, each class's share of the requests the plan routes it (by its routed req/s)."""
    name = str(pool.metadata["name"])
    placed = [p for p in plan.placements if p.replicas > 0 and p.bucket_rps]
    buckets = []
    for i, b in enumerate(pool.spec.demand.request_mix):
        routed = [(p.accelerator_class, p.bucket_rps[i]) for p in placed if p.bucket_rps[i] > 0]
        total = sum(r for _, r in routed)
        buckets.append(
            RouteBucket(
                min_input_tokens=b.min_input_tokens,
                max_input_tokens=b.max_input_tokens,
                min_output_tokens=b.min_output_tokens,
                max_output_tokens=b.max_output_tokens,
                backends=tuple(
                    Backend(
                        accelerator_class=cls, service=deployment_name(name, cls), share=round(r / total, 4)
                    )
                    for cls, r in routed
                ),
            )
        )
    return RoutingTable(
        pool=name,
        service=name,
        port=pool.spec.server.port,
        generation=int(pool.metadata.get("generation") or 0),
        buckets=tuple(buckets),
    )


def build_routing(pool: InferencePool, plan: core.PoolPlan) -> dict[str, Any]:
    """The routing ConfigMap of a size-aware pool."""
    table = routing_table(pool, plan)
    return with_hash(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": routing_name(str(pool.metadata["name"])),
                "namespace": pool.metadata.get("namespace", "default"),
                "labels": child_labels(pool, {}),
                "ownerReferences": [owner(pool)],
            },
            "data": {ROUTING_KEY: json.dumps(table.model_dump(by_alias=True), indent=1, sort_keys=True)},
        }
    )


def size_aware_children(pool: InferencePool, plan: core.PoolPlan) -> list[Obj]:
    """The class Services and the routing ConfigMap the pool's plan needs (none unless it splits)."""
    placed = [p for p in plan.placements if p.replicas > 0 and p.bucket_rps]
    if not placed:
        return []
    return [*(build_class_service(pool, p.accelerator_class) for p in placed), build_routing(pool, plan)]


def extend(
    writes: ChildWrites,
    plan: core.Plan,
    pools: Mapping[str, InferencePool],
    services: Sequence[Obj],
    config_maps: Sequence[Obj],
) -> None:
    """Add to ``writes`` the applies and deletions that bring size-aware pools' class Services and
    routing ConfigMaps to the plan; a pool not planned this round keeps what it has."""
    planned = {pp.key for pp in plan.pools if pp.key in pools}
    have = {("Service", key_of(s)): s for s in services} | {("ConfigMap", key_of(c)): c for c in config_maps}
    wanted: set[tuple[str, str]] = set()
    for pp in plan.pools:
        if pp.key not in planned:
            continue
        for obj in size_aware_children(pools[pp.key], pp):
            key = (str(obj["kind"]), key_of(obj))
            wanted.add(key)
            if key not in have or not same(have[key], obj):
                writes.increases.append(obj)
    for (kind, name_key), obj in sorted(have.items()):
        obj_labels = meta(obj).get("labels") or {}
        pool = obj_labels.get(labels.POOL)
        namespace = str(meta(obj).get("namespace"))
        if pool is None or f"{namespace}/{pool}" not in planned or (kind, name_key) in wanted:
            continue
        if kind == "Service" and labels.ACCELERATOR_CLASS not in obj_labels:
            continue  # the pool's own Service
        writes.deletes.append((kind, namespace, str(meta(obj).get("name"))))
