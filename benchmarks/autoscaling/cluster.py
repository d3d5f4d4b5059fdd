"""The API server without Kubernetes: the example objects, the simulated fleet's nodes, and the
Deployments and statuses the operator's ``decide`` writes, kept as plain dicts.

Owns building the benchmark's fleet from ``examples/`` (only the pools asked for, each made
autoscaled with a low static floor, or pinned at a fixed demand for the static comparison fleets),
the ``Snapshot`` a round reads, and applying a ``Decision`` (statuses written, Deployments applied
or deleted) so the next round reads back what this one wrote: the status round trip the operator
relies on (the policy's state lives in ``status.autoscaling``).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from inferfleet.api import labels
from inferfleet.api.simulatedfleet import load_fleet, node_manifests
from inferfleet.reconcile.decide import Decision
from inferfleet.reconcile.ports import Snapshot

ROOT = Path(__file__).resolve().parents[2]

Obj = dict[str, Any]


def example_docs() -> list[Obj]:
    out: list[Obj] = []
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        out += [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    for i, d in enumerate(out):
        d["metadata"].update(uid=f"uid-{i}", generation=1)
    return [d for d in out if d["kind"] in ("InferencePool", "AcceleratorClass", "FleetPolicy")]


def pool_key(doc: Mapping[str, Any]) -> str:
    return f"{doc['metadata'].get('namespace', 'default')}/{doc['metadata']['name']}"


def _quantity(rps: float) -> int | str:
    """A rate as the API wants it: an integer, or a decimal string (Kubernetes specs avoid floats)."""
    value = round(rps, 3)
    return int(value) if value == int(value) else f"{value:g}"


def fleet_docs(
    pools: Sequence[str],
    *,
    floors: Mapping[str, float],
    stabilization_s: int = 300,
    fixed_demand: Mapping[str, float] | None = None,
    churn: float | None = None,
) -> list[Obj]:
    """The example classes and policy and the ``pools`` (keys) asked for.  Autoscaled with
    ``floors`` as spec demand, or (``fixed_demand``) static at that demand, autoscaling off;
    ``churn`` replaces the FleetPolicy's $ per replica move."""
    docs = example_docs()
    known = {pool_key(d) for d in docs if d["kind"] == "InferencePool"}
    missing = sorted(set(pools) - known)
    if missing:
        raise SystemExit(f"no such example pool: {', '.join(missing)} (have {', '.join(sorted(known))})")
    out = []
    for d in docs:
        if d["kind"] == "FleetPolicy" and churn is not None:
            d["spec"]["churnDollarsPerReplicaMove"] = _quantity(churn)
        if d["kind"] == "InferencePool":
            key = pool_key(d)
            if key not in pools:
                continue
            demand = d["spec"]["demand"]
            if fixed_demand is not None:
                demand["requestsPerSecond"] = _quantity(fixed_demand[key])
                demand.pop("autoscaling", None)
            else:
                demand["requestsPerSecond"] = _quantity(floors[key])
                demand["autoscaling"] = {"scaleDownStabilizationSeconds": stabilization_s}
        out.append(d)
    return out


class Cluster:
    """What the API server would hold; ``decide`` reads a snapshot and this applies its writes."""

    def __init__(self, docs: list[Obj]) -> None:
        self.docs = copy.deepcopy(docs)
        self.nodes = node_manifests(load_fleet(ROOT / "examples/simulated-fleet/fleet.yaml"))
        self.deployments: dict[tuple[str, str], Obj] = {}
        self.writes = 0

    @property
    def pool_docs(self) -> list[Obj]:
        return [d for d in self.docs if d["kind"] == "InferencePool"]

    @property
    def class_docs(self) -> list[Obj]:
        return [d for d in self.docs if d["kind"] == "AcceleratorClass"]

    def snapshot(self, ready: Mapping[tuple[str, str], int], live: Mapping[tuple[str, str], int]) -> Snapshot:
        deps = []
        for d in self.deployments.values():
            key = self.replica_key(d)
            deps.append(dict(d, status={"replicas": live.get(key, 0), "readyReplicas": ready.get(key, 0)}))
        return Snapshot(
            pools=self.pool_docs,
            classes=self.class_docs,
            policy=next((d for d in self.docs if d["kind"] == "FleetPolicy"), None),
            nodes=self.nodes,
            foreign_used={},
            deployments=deps,
            services=[],
            live_replicas=dict(live),
        )

    @staticmethod
    def replica_key(dep: Mapping[str, Any]) -> tuple[str, str]:
        lab = dep["metadata"].get("labels") or {}
        return f"{dep['metadata']['namespace']}/{lab[labels.POOL]}", str(lab[labels.ACCELERATOR_CLASS])

    def apply(self, d: Decision) -> None:
        """The cluster after the round: statuses written, Deployments applied, deletes done."""
        for s in d.statuses:
            for doc in self.docs:
                if (
                    doc["kind"] == s.kind
                    and doc["metadata"]["name"] == s.name
                    and doc["metadata"].get("namespace") == s.namespace
                ):
                    doc["status"] = copy.deepcopy(s.status)
            self.writes += 1
        for obj in d.reductions + d.increases:
            if obj["kind"] == "Deployment":
                self.deployments[(obj["metadata"]["namespace"], obj["metadata"]["name"])] = obj
            self.writes += 1
        for kind, ns, name in d.deletes:
            if kind == "Deployment":
                self.deployments.pop((ns, name), None)
            self.writes += 1

    def replicas(self) -> dict[tuple[str, str], int]:
        """Replicas the Deployments ask for, per (pool key, class)."""
        out: dict[tuple[str, str], int] = {}
        for d in self.deployments.values():
            if int(d["spec"]["replicas"]) > 0:
                out[self.replica_key(d)] = int(d["spec"]["replicas"])
        return out

    def pool_status(self, key: str) -> Obj:
        doc = next(d for d in self.pool_docs if pool_key(d) == key)
        status: Obj = doc.get("status") or {}
        return status
