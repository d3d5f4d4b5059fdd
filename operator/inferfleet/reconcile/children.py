"""Children of InferencePools: one Deployment per (pool, class), one Service per pool (a size-aware
pool's class Services and routing ConfigMap: reconcile/routing.py).

Owns the manifests (pure ``build_*`` functions over API objects: the pool's server template carried
into the Pod, with the operator's env, the /dev/shm volume and default probes), their names, labels and
ownerReferences, the spec hash that lets a round skip writes when nothing changed, what exists now
(``index``: phase 2 of a round) and the difference between a plan's children and what exists
(``diff``: phase 4; a class a pool no longer uses is scaled to 0, and a Deployment is deleted only
when its class is gone; a gone pool's children are garbage-collected).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from inferfleet.api import API_VERSION, labels
from inferfleet.api.acceleratorclass import AcceleratorClass
from inferfleet.api.inferencepool import (
    ACCELERATOR_CLASS_ENV,
    POOL_ENV,
    STARTUP_FAILURE_THRESHOLD,
    InferencePool,
    ServerTemplate,
)
from inferfleet.api.podtemplate import SHM_PATH, SHM_VOLUME, Probe, SharedMemory
from inferfleet.core import types as core
from inferfleet.reconcile.ports import Obj, Refusal
from inferfleet.reconcile.validate import Objects, key_of, meta

__all__ = [
    "ChildWrites",
    "Existing",
    "build_deployment",
    "build_service",
    "child_labels",
    "deployment_name",
    "devices_per_replica",
    "diff",
    "excluded",
    "index",
    "owner",
    "pool_and_class",
    "spec_hash",
    "with_hash",
]


def deployment_name(pool: str, accelerator_class: str) -> str:
    """``<pool>-<class>``, shortened with a stable hash when over 63 characters."""
    name = f"{pool}-{accelerator_class}"
    if len(name) <= 63:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[:54].rstrip('-')}-{digest}"


def owner(pool: InferencePool) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "InferencePool",
        "name": pool.metadata["name"],
        "uid": pool.metadata.get("uid", ""),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def child_labels(pool: InferencePool, extra: Mapping[str, str]) -> dict[str, str]:
    name = str(pool.metadata["name"])
    return {
        labels.NAME: "inference-server",
        labels.INSTANCE: name,
        labels.COMPONENT: "model-server",
        labels.PART_OF: labels.PRODUCT,
        labels.MANAGED_BY: labels.MANAGER,
        labels.POOL: name,
        **extra,
    }


def spec_hash(obj: Mapping[str, Any]) -> str:
    """Hash of what we own in a child (everything but the hash annotation itself)."""
    body = json.loads(json.dumps(obj, sort_keys=True))
    body.get("metadata", {}).get("annotations", {}).pop(labels.SPEC_HASH, None)
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def with_hash(obj: dict[str, Any]) -> dict[str, Any]:
    obj["metadata"].setdefault("annotations", {})[labels.SPEC_HASH] = spec_hash(obj)
    return obj


def _env(server: ServerTemplate, pool_name: str, class_name: str) -> list[dict[str, Any]]:
    # as a Pod spells it: a value, or valueFrom (a value beside it is refused by the CRD, and would be
    # by the Pod: carried as written, never dropped)
    own = [
        {
            "name": e.name,
            **({"value": e.value} if e.value or e.value_from is None else {}),
            **({"valueFrom": e.value_from.to_api()} if e.value_from else {}),
        }
        for e in server.env
    ]
    return [
        *own,
        {"name": POOL_ENV, "value": pool_name},
        {"name": ACCELERATOR_CLASS_ENV, "value": class_name},
    ]


def _probe(probe: Probe | None, default: Mapping[str, Any]) -> dict[str, Any]:
    """A probe as the Pod takes it; a check without a port probes the server's (named) port."""
    if probe is None:
        return {"httpGet": {"path": "/health", "port": "http"}, **default}
    out = probe.to_api()
    for check in ("httpGet", "tcpSocket"):
        if check in out:
            out[check].setdefault("port", "http")
    return out


def _shm(server: ServerTemplate) -> SharedMemory:
    return server.shared_memory or SharedMemory()


def _volumes(server: ServerTemplate) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The Pod's volumes and the container's mounts: the shared memory first, then the pool's."""
    volumes = [v.to_api() for v in server.volumes]
    mounts = [m.to_api() for m in server.volume_mounts]
    shm = _shm(server)
    if shm.enabled:
        empty_dir: dict[str, Any] = {"medium": "Memory"}
        if shm.size_limit is not None:
            empty_dir["sizeLimit"] = shm.size_limit
        volumes.insert(0, {"name": SHM_VOLUME, "emptyDir": empty_dir})
        mounts.insert(0, {"name": SHM_VOLUME, "mountPath": SHM_PATH})
    return volumes, mounts


def _pod_extras(server: ServerTemplate) -> dict[str, Any]:
    """The Pod-level fields the pool sets (none by default, so unchanged pools render as before)."""
    out: dict[str, Any] = {}
    if server.image_pull_secrets:
        out["imagePullSecrets"] = [s.to_api() for s in server.image_pull_secrets]
    if server.pod_security_context is not None:
        out["securityContext"] = server.pod_security_context.to_api()
    for key, value in (
        ("serviceAccountName", server.service_account_name),
        ("priorityClassName", server.priority_class_name),
        ("runtimeClassName", server.runtime_class_name),
    ):
        if value is not None:
            out[key] = value
    return out


def build_deployment(
    pool: InferencePool, cls: AcceleratorClass, replicas: int, devices: int
) -> dict[str, Any]:
    """The Deployment running ``replicas`` of the pool's server on ``cls``, ``devices`` each."""
    name = str(pool.metadata["name"])
    class_name = str(cls.metadata["name"])
    server = pool.spec.server
    resources = {"cpu": server.cpu, "memory": server.memory, cls.spec.resource_name: str(devices)}
    pod_labels = child_labels(pool, {labels.ACCELERATOR_CLASS: class_name})
    selector = {labels.POOL: name, labels.ACCELERATOR_CLASS: class_name}
    volumes, mounts = _volumes(server)
    container: dict[str, Any] = {
        "name": "server",
        "image": server.image,
        "args": list(server.args),
        "ports": [{"name": "http", "containerPort": server.port, "protocol": "TCP"}],
        "env": _env(server, name, class_name),
        "resources": {"requests": dict(resources), "limits": {cls.spec.resource_name: str(devices)}},
        "readinessProbe": _probe(server.readiness_probe, {"periodSeconds": 10}),
        "startupProbe": _probe(
            server.startup_probe, {"periodSeconds": 10, "failureThreshold": STARTUP_FAILURE_THRESHOLD}
        ),
    }
    if server.env_from:
        container["envFrom"] = [e.to_api() for e in server.env_from]
    if mounts:
        container["volumeMounts"] = mounts
    if server.security_context is not None:
        container["securityContext"] = server.security_context.to_api()
    pod_spec: dict[str, Any] = {
        "nodeSelector": dict(cls.spec.node_selector),
        "tolerations": [t.to_api() for t in cls.spec.tolerations],
        "containers": [container],
        "terminationGracePeriodSeconds": 30,
        # held until the operator pins it to its planned node (reconcile.pinning)
        "schedulingGates": [{"name": labels.PLACEMENT_GATE}],
        **_pod_extras(server),
    }
    if volumes:
        pod_spec["volumes"] = volumes
    return with_hash(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": deployment_name(name, class_name),
                "namespace": pool.metadata.get("namespace", "default"),
                "labels": pod_labels,
                "ownerReferences": [owner(pool)],
            },
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": selector},
                "template": {"metadata": {"labels": pod_labels}, "spec": pod_spec},
                # no surge: a replica beyond the plan would draw power and devices it never counted;
                # a template change replaces replicas one at a time, each in its predecessor's slot
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}},
            },
        }
    )


def build_service(pool: InferencePool) -> dict[str, Any]:
    """One Service selecting every replica of the pool across classes (Gateway API can route to it)."""
    name = str(pool.metadata["name"])
    return with_hash(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": name,
                "namespace": pool.metadata.get("namespace", "default"),
                "labels": child_labels(pool, {}),
                "ownerReferences": [owner(pool)],
            },
            "spec": {
                "selector": {labels.POOL: name},
                "ports": [
                    {"name": "http", "port": pool.spec.server.port, "targetPort": "http", "protocol": "TCP"}
                ],
            },
        }
    )


def devices_per_replica(dep: Mapping[str, Any]) -> int:
    """Extended-resource devices one replica of a Deployment requests (0 for anything else)."""
    try:
        limits = dep["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
        return sum(int(v) for k, v in limits.items() if "/" in k)
    except (KeyError, IndexError, TypeError, ValueError):
        return 0


@dataclasses.dataclass(frozen=True)
class Existing:
    """Our Deployments as they are: by (pool key, class), their replicas (the churn baseline of
    re-planned ones), ready replicas, and devices held by frozen ones per class."""

    deployments: dict[tuple[str, str], Obj]
    current: dict[str, dict[str, int]]  # pool key -> class -> replicas (re-planned children only)
    ready: dict[tuple[str, str], int]
    frozen_devices: dict[str, int]


def pool_and_class(dep: Obj) -> tuple[str, str] | None:
    """("namespace/pool", class) of one of our children, from its labels; None if it has no pool."""
    dep_labels = meta(dep).get("labels") or {}
    pool = dep_labels.get(labels.POOL)
    if pool is None:
        return None
    return f"{meta(dep).get('namespace')}/{pool}", dep_labels.get(labels.ACCELERATOR_CLASS) or ""


def index(deployments: Sequence[Obj], objects: Objects) -> Existing:
    current: dict[str, dict[str, int]] = defaultdict(dict)
    existing: dict[tuple[str, str], Obj] = {}
    ready: dict[tuple[str, str], int] = {}
    frozen: dict[str, int] = defaultdict(int)
    for dep in deployments:
        owner = pool_and_class(dep)
        if owner is None:
            continue
        pool_key, cls = owner
        replicas = int((dep.get("spec") or {}).get("replicas") or 0)
        existing[owner] = dep
        ready[owner] = int((dep.get("status") or {}).get("readyReplicas") or 0)
        if objects.frozen(pool_key, cls):
            frozen[cls] += replicas * devices_per_replica(dep)
        else:
            current[pool_key][cls] = replicas
    return Existing(existing, dict(current), ready, dict(frozen))


def excluded(refused: Sequence[Refusal], existing: Existing) -> dict[str, dict[str, str]]:
    """Pool key -> class -> the server's words, for the Deployments it refuses as invalid that do
    not run yet: the plan leaves those options out (a refused update of a running Deployment keeps
    what runs, and its devices and watts stay counted)."""
    out: dict[str, dict[str, str]] = defaultdict(dict)
    for r in refused:
        if (
            r.invalid
            and r.accelerator_class
            and not existing.current.get(r.pool, {}).get(r.accelerator_class)
        ):
            out[r.pool][r.accelerator_class] = r.message
    return dict(out)


@dataclasses.dataclass
class ChildWrites:
    reductions: list[Obj] = dataclasses.field(default_factory=list)  # applies that lower replicas
    increases: list[Obj] = dataclasses.field(default_factory=list)  # applies that add or keep replicas
    deletes: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)  # (kind, namespace, name)


def same(have: Obj, desired: Obj) -> bool:
    """The child as it exists already is the desired one (spec hash, and replicas for Deployments)."""
    ann = meta(have).get("annotations") or {}
    if ann.get(labels.SPEC_HASH) != meta(desired)["annotations"][labels.SPEC_HASH]:
        return False
    if desired.get("kind") == "Deployment":
        return bool((have.get("spec") or {}).get("replicas") == desired["spec"]["replicas"])
    return True


def diff(plan: core.Plan, objects: Objects, existing: Existing, services: Sequence[Obj]) -> ChildWrites:
    """The applies and deletions that bring our children to the plan; unchanged children: no write."""
    out = ChildWrites()
    have_services = {key_of(s): s for s in services}
    wanted: set[tuple[str, str]] = set()
    for pp in plan.pools:
        pool = objects.pools[pp.key]
        for pl in pp.placements:
            if pl.replicas <= 0:
                continue
            wanted.add((pp.key, pl.accelerator_class))
            desired = build_deployment(
                pool, objects.classes[pl.accelerator_class], pl.replicas, pl.devices // pl.replicas
            )
            have = existing.deployments.get((pp.key, pl.accelerator_class))
            if have is not None and same(have, desired):
                continue
            before = int(((have or {}).get("spec") or {}).get("replicas") or 0)
            (out.reductions if pl.replicas < before else out.increases).append(desired)
        svc = build_service(pool)
        have_svc = have_services.get(pp.key)
        if have_svc is None or not same(have_svc, svc):
            out.increases.append(svc)
    for (pool_key, cls), dep in sorted(existing.deployments.items()):
        if (pool_key, cls) in wanted or objects.frozen(pool_key, cls):
            continue
        if pool_key not in objects.pools:  # pool gone: garbage collection removes its children
            continue
        if cls not in objects.classes:  # class gone: nothing left to scale it on
            out.deletes.append(("Deployment", str(meta(dep).get("namespace")), str(meta(dep).get("name"))))
            continue
        # Scaled, never deleted: the Deployment (its history, its UID, what watches it) stays, and a
        # class that comes back into the plan is scaled up again rather than recreated.
        pool, devices = objects.pools[pool_key], max(devices_per_replica(dep), 1)
        idle = build_deployment(pool, objects.classes[cls], 0, devices)
        if not same(dep, idle):
            out.reductions.append(idle)
    return out
