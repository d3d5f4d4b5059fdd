"""The chaos FleetPolicy, and reading the fleet after a fault: has it converged, is anything
duplicated or orphaned, which Deployments were replaced.

Owns ``divergence`` (what still differs between a namespace and the operator's last plan, None
once it is what runs: every pool's status observed its generation and the FleetPolicy's too, each
placement has its Deployment at the planned replicas, all Ready and none extra; a Deployment of a
class the plan no longer uses may remain at 0 replicas, since the operator scales a dropped class to
0 instead of deleting it), ``converged`` and ``wait_converged`` (the same as a predicate, and a wait
that fails saying what differed), ``audit`` (our Deployments and Services cluster-wide: duplicates
per (pool, class) and per pool, orphans whose pool is gone or not their owner, Deployments running
replicas no plan asks for), ``replicas`` and ``uids`` (per (namespace, pool, class)), ``churn``
(the Deployments of pools still there whose UID changed: deleted and created again);
``set_demand``; ``chaos_policy`` (the example FleetPolicy with 5 s rounds), ``patch_policy`` (a
merge patch of its spec) and ``set_policy_spec`` (exactly a spec, by PUT); ``moves`` /
``hold_still`` (what changed in a namespace's Deployments since a reading, polled over a window),
``cluster_events`` and ``condition`` (on cluster-scoped objects).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException
from test_operator import (
    CLASS_LABEL,
    GROUP,
    MANAGED,
    POOL_LABEL,
    VERSION,
    Kube,
    _apply,
    conditions,
    examples,
    placements,
)

from inferfleet_dev.cluster import Cluster

__all__ = [
    "PLANNING_INTERVAL_S",
    "Audit",
    "audit",
    "chaos_policy",
    "churn",
    "cluster_events",
    "condition",
    "converged",
    "divergence",
    "hold_still",
    "moves",
    "patch_policy",
    "replicas",
    "set_demand",
    "set_policy_spec",
    "uids",
    "wait_converged",
]

PLANNING_INTERVAL_S = 5  # the FleetPolicy's planning.intervalSeconds in the chaos suite (the API's minimum)

Key = tuple[str, str, str]  # namespace, pool, class


def _key(dep: Any) -> Key:
    labels = dep.metadata.labels or {}
    return dep.metadata.namespace, labels.get(POOL_LABEL, ""), labels.get(CLASS_LABEL, "")


def divergence(kube: Kube, namespace: str) -> tuple[str | None, dict[str, Any]]:
    """What still differs between the namespace's cluster state and the operator's plan (None:
    converged), and what was read: pools, Deployments, policy."""
    policy = kube.cluster_object("fleetpolicies", "default")
    read: dict[str, Any] = {"policy": policy}
    if (policy.get("status") or {}).get("observedGeneration") != policy["metadata"]["generation"]:
        return "the FleetPolicy's status has not observed its generation", read
    pools = read["pools"] = {p["metadata"]["name"]: p for p in kube.pools(namespace)}
    deps = read["deployments"] = kube.deployments(namespace)
    if not pools:
        return "no pools", read
    for dep in deps:
        _ns, pool_name, cls = _key(dep)
        pool = pools.get(pool_name)
        if pool is None:
            return f"Deployment {dep.metadata.name}: its pool is gone (not yet collected)", read
        want = placements(pool).get(cls, {}).get("replicas", 0)
        spec, status = dep.spec.replicas or 0, dep.status
        have = (status.replicas or 0, status.ready_replicas or 0, status.updated_replicas or 0)
        if spec != want:
            return f"Deployment {dep.metadata.name}: {spec} replicas, the plan says {want}", read
        if status.observed_generation != dep.metadata.generation or have != (spec, spec, spec):
            return f"Deployment {dep.metadata.name}: {spec} wanted, (all, ready, updated) = {have}", read
    have_keys = {_key(d)[1:] for d in deps}
    for name, pool in pools.items():
        status = pool.get("status") or {}
        if status.get("observedGeneration") != pool["metadata"]["generation"]:
            return f"pool {name}: status has not observed its generation", read
        if "Placed" not in conditions(pool):
            return f"pool {name}: no Placed condition", read
        for cls, pl in placements(pool).items():
            if (name, cls) not in have_keys:
                return f"pool {name}: placement on {cls} has no Deployment", read
            if pl["readyReplicas"] != pl["replicas"]:
                return f"pool {name}: status says {pl['readyReplicas']}/{pl['replicas']} Ready on {cls}", read
    return None, read


def converged(kube: Kube, namespace: str) -> dict[str, Any] | None:
    """The namespace's pools and Deployments once the cluster matches the operator's plan; None before."""
    why, read = divergence(kube, namespace)
    return read if why is None else None


def wait_converged(
    kube: Kube,
    namespace: str,
    timeout: float,
    what: str,
    also: Callable[[], bool] = lambda: True,
) -> dict[str, Any]:
    """Poll until ``also()`` and converged; fail the test saying what still differed."""
    deadline = time.monotonic() + timeout
    while True:
        why: str | None = "the extra condition is not met yet"
        if also():
            why, read = divergence(kube, namespace)
            if why is None:
                return read
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}: {why}")
        time.sleep(0.25)


def replicas(kube: Kube, namespace: str | None = None) -> dict[Key, int]:
    return {_key(d): d.spec.replicas or 0 for d in kube.deployments(namespace)}


def uids(kube: Kube, namespace: str | None = None) -> dict[Key, str]:
    return {_key(d): d.metadata.uid for d in kube.deployments(namespace)}


def churn(before: Mapping[Key, str], after: Mapping[Key, str], kube: Kube) -> list[str]:
    """Deployments of pools that still exist whose UID changed or that vanished."""
    alive = {(p["metadata"]["namespace"], p["metadata"]["name"]) for p in kube.pools()}
    out = []
    for key, uid in before.items():
        if key[:2] not in alive:
            continue
        now = after.get(key)
        if now != uid:
            out.append(f"{'/'.join(key)}: {uid[:8]} -> {now[:8] if now else 'deleted'}")
    return out


@dataclasses.dataclass
class Audit:
    deployments: int
    services: int
    duplicates: list[str]
    orphans: list[str]


def audit(kube: Kube) -> Audit:
    """Our Deployments and Services in every namespace against the pools that exist."""
    pools = {(p["metadata"]["namespace"], p["metadata"]["name"]): p for p in kube.pools()}
    deps = kube.deployments()
    services = kube.core.list_service_for_all_namespaces(label_selector=MANAGED).items
    duplicates, orphans = [], []
    for what, count in Counter(_key(d) for d in deps).items():
        if count > 1:
            duplicates.append(f"{count} Deployments for {'/'.join(what)}")
    for (ns, pool), count in Counter(
        (s.metadata.namespace, (s.metadata.labels or {}).get(POOL_LABEL)) for s in services
    ).items():
        if count > 1:
            duplicates.append(f"{count} Services for {ns}/{pool}")
    for obj, kind in [*((d, "Deployment") for d in deps), *((s, "Service") for s in services)]:
        if obj.metadata.deletion_timestamp is not None:
            continue  # being collected
        ns, name = obj.metadata.namespace, obj.metadata.name
        pool = pools.get((ns, (obj.metadata.labels or {}).get(POOL_LABEL, "")))
        owners = [o.uid for o in obj.metadata.owner_references or [] if o.controller]
        if pool is None:
            orphans.append(f"{kind} {ns}/{name}: its pool does not exist")
        elif owners != [pool["metadata"]["uid"]]:
            orphans.append(f"{kind} {ns}/{name}: owned by {owners}, not by its pool")
        elif kind == "Deployment":
            cls = (obj.metadata.labels or {}).get(CLASS_LABEL, "")
            if (obj.spec.replicas or 0) > 0 and cls not in placements(pool):
                orphans.append(
                    f"Deployment {ns}/{name}: {obj.spec.replicas} replicas on {cls}, not in the plan"
                )
    return Audit(len(deps), len(services), duplicates, orphans)


def chaos_policy() -> dict[str, Any]:
    """The example FleetPolicy with planning rounds every PLANNING_INTERVAL_S."""
    policy = copy.deepcopy(examples("FleetPolicy")[0])
    policy["spec"].setdefault("planning", {})["intervalSeconds"] = PLANNING_INTERVAL_S
    return policy


def set_demand(kube: Kube, namespace: str, pool: str, rps: float) -> None:
    """A pool's ``spec.demand.requestsPerSecond``."""
    body = {"spec": {"demand": {"requestsPerSecond": rps}}}
    kube.custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, "inferencepools", pool, body)


def patch_policy(cluster: Cluster, spec: dict[str, Any]) -> None:
    cluster.kubectl(
        "patch", f"fleetpolicies.{GROUP}", "default", "--type=merge", "-p", json.dumps({"spec": spec})
    )


def set_policy_spec(kube: Kube, cluster: Cluster, spec: dict[str, Any]) -> None:
    """FleetPolicy ``default`` with exactly ``spec`` (PUT: fields not in it go), created if missing."""
    for _attempt in range(10):
        try:
            current = kube.cluster_object("fleetpolicies", "default")
        except ApiException as exc:
            if exc.status != 404:
                raise
            policy = {**chaos_policy(), "spec": copy.deepcopy(spec)}
            _apply(cluster, [policy])
            return
        current["spec"] = copy.deepcopy(spec)
        try:
            kube.custom.replace_cluster_custom_object(GROUP, VERSION, "fleetpolicies", "default", current)
            return
        except ApiException as exc:
            if exc.status != 409:  # the operator wrote its status in between: read again
                raise
    raise RuntimeError("FleetPolicy default: 10 conflicting writes in a row")


def moves(
    kube: Kube, namespace: str, replicas_before: Mapping[Key, int], uids_before: Mapping[Key, str]
) -> list[str]:
    """What differs from a reading of the namespace's Deployments: replicas changed, Deployments
    replaced (UID), gone or new ([] while the API server does not answer)."""
    try:
        deps = kube.deployments(namespace)
    except Exception:  # frozen or restarting: nothing to compare with
        return []
    now_replicas = {_key(d): d.spec.replicas or 0 for d in deps}
    now_uids = {_key(d): d.metadata.uid for d in deps}
    out = []
    for key in sorted({*replicas_before, *now_replicas}):
        name = "/".join(key[1:])
        if key not in now_replicas:
            out.append(f"{name}: deleted")
        elif key not in replicas_before:
            out.append(f"{name}: created with {now_replicas[key]}")
        elif now_uids[key] != uids_before[key]:
            out.append(f"{name}: replaced ({uids_before[key][:8]} -> {now_uids[key][:8]})")
        elif now_replicas[key] != replicas_before[key]:
            out.append(f"{name}: {replicas_before[key]} -> {now_replicas[key]} replicas")
    return out


def hold_still(
    kube: Kube,
    namespace: str,
    seconds: float,
    replicas_before: Mapping[Key, int],
    uids_before: Mapping[Key, str],
    interval: float = 0.5,
) -> list[str]:
    """Poll ``moves`` for ``seconds``; every distinct difference seen, with when (s into the wait)."""
    start, seen, out = time.monotonic(), set(), []
    while time.monotonic() - start < seconds:
        for m in moves(kube, namespace, replicas_before, uids_before):
            if m not in seen:
                seen.add(m)
                out.append(f"+{time.monotonic() - start:.1f}s {m}")
        time.sleep(interval)
    return out


def cluster_events(
    kube: Kube, kind: str, reason: str, name: str | None = None, since: float = 0.0
) -> list[Any]:
    """Events about cluster-scoped objects of ``kind`` (the operator writes them to "default")
    created at or after ``since`` (Unix time; the API keeps whole seconds)."""
    fields = f"involvedObject.kind={kind},reason={reason}" + (f",involvedObject.name={name}" if name else "")
    items = kube.core.list_event_for_all_namespaces(field_selector=fields).items
    return [e for e in items if e.metadata.creation_timestamp.timestamp() >= int(since)]


def condition(kube: Kube, plural: str, name: str, kind: str) -> tuple[str, str] | None:
    """(status, reason) of condition ``kind`` on a cluster-scoped object of ours, or None."""
    found = conditions(kube.cluster_object(plural, name)).get(kind)
    return (found["status"], found["reason"]) if found else None
