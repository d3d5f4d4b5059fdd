"""Desired children of an InferencePool: one Deployment per (pool, class), one Service per pool.

Owns the manifests (pure ``build_*`` functions over API objects), their names, labels and
ownerReferences, and the spec hash that lets the loop skip writes when nothing changed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from inferfleet.api import API_VERSION, labels
from inferfleet.api.acceleratorclass import AcceleratorClass
from inferfleet.api.inferencepool import InferencePool

__all__ = [
    "build_deployment",
    "build_service",
    "deployment_name",
    "devices_per_replica",
    "spec_hash",
]


def deployment_name(pool: str, accelerator_class: str) -> str:
    """``<pool>-<class>``, shortened with a stable hash when over 63 characters."""
    name = f"{pool}-{accelerator_class}"
    if len(name) <= 63:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[:54].rstrip('-')}-{digest}"


def _owner(pool: InferencePool) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "InferencePool",
        "name": pool.metadata["name"],
        "uid": pool.metadata.get("uid", ""),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _child_labels(pool: InferencePool, extra: Mapping[str, str]) -> dict[str, str]:
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


def _with_hash(obj: dict[str, Any]) -> dict[str, Any]:
    obj["metadata"].setdefault("annotations", {})[labels.SPEC_HASH] = spec_hash(obj)
    return obj


def build_deployment(
    pool: InferencePool, cls: AcceleratorClass, replicas: int, devices: int
) -> dict[str, Any]:
    """The Deployment running ``replicas`` of the pool's server on ``cls``, ``devices`` each."""
    name = str(pool.metadata["name"])
    class_name = str(cls.metadata["name"])
    server = pool.spec.server
    resources = {"cpu": server.cpu, "memory": server.memory, cls.spec.resource_name: str(devices)}
    pod_labels = _child_labels(pool, {labels.ACCELERATOR_CLASS: class_name})
    selector = {labels.POOL: name, labels.ACCELERATOR_CLASS: class_name}
    container: dict[str, Any] = {
        "name": "server",
        "image": server.image,
        "args": list(server.args),
        "ports": [{"name": "http", "containerPort": server.port, "protocol": "TCP"}],
        "env": [{"name": e.name, "value": e.value} for e in server.env]
        + [
            {"name": "INFERFLEET_POOL", "value": name},
            {"name": "INFERFLEET_ACCELERATOR_CLASS", "value": class_name},
        ],
        "resources": {"requests": dict(resources), "limits": {cls.spec.resource_name: str(devices)}},
        "readinessProbe": {"httpGet": {"path": "/health", "port": "http"}, "periodSeconds": 10},
    }
    return _with_hash(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": deployment_name(name, class_name),
                "namespace": pool.metadata.get("namespace", "default"),
                "labels": pod_labels,
                "ownerReferences": [_owner(pool)],
            },
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": selector},
                "template": {
                    "metadata": {"labels": pod_labels},
                    "spec": {
                        "nodeSelector": dict(cls.spec.node_selector),
                        "tolerations": [t.to_api() for t in cls.spec.tolerations],
                        "containers": [container],
                        "terminationGracePeriodSeconds": 30,
                    },
                },
            },
        }
    )


def build_service(pool: InferencePool) -> dict[str, Any]:
    """One Service selecting every replica of the pool across classes (Gateway API can route to it)."""
    name = str(pool.metadata["name"])
    return _with_hash(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": name,
                "namespace": pool.metadata.get("namespace", "default"),
                "labels": _child_labels(pool, {}),
                "ownerReferences": [_owner(pool)],
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
