"""kopf handlers: they only notice that the fleet changed and wake the planning loop.

Owns the watches (InferencePools, AcceleratorClasses, FleetPolicies, our Deployments, Nodes), the
filter that ignores node heartbeats, startup and cleanup.  Only ``on.event`` handlers: kopf adds no
finalizers and writes nothing, so the operator being down never blocks a deletion.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

import kopf

from inferfleet.api import GROUP, VERSION, labels
from inferfleet.api.kinds import BY_KIND
from inferfleet.controller.runtime import Runtime

__all__ = ["RUNTIME"]

RUNTIME = Runtime()
log = logging.getLogger("inferfleet.handlers")
_node_fingerprints: dict[str, str] = {}


@kopf.on.startup()
def _startup(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.request_timeout = 30
    RUNTIME.start()


@kopf.on.cleanup()
def _cleanup(**_: Any) -> None:
    RUNTIME.stop()


@kopf.on.probe(id="planner")
def _probe(**_: Any) -> dict[str, Any]:
    return RUNTIME.health()


@kopf.on.event(GROUP, VERSION, BY_KIND["InferencePool"].plural)
def _pool_changed(type: str, name: str, namespace: str | None, **_: Any) -> None:
    RUNTIME.mark_dirty(f"InferencePool {namespace}/{name} {type}")


@kopf.on.event(GROUP, VERSION, BY_KIND["AcceleratorClass"].plural)
def _class_changed(type: str, name: str, **_: Any) -> None:
    RUNTIME.mark_dirty(f"AcceleratorClass {name} {type}")


@kopf.on.event(GROUP, VERSION, BY_KIND["FleetPolicy"].plural)
def _policy_changed(type: str, name: str, **_: Any) -> None:
    RUNTIME.mark_dirty(f"FleetPolicy {name} {type}")


@kopf.on.event("apps", "v1", "deployments", labels={labels.MANAGED_BY: labels.MANAGER})
def _deployment_changed(type: str, name: str, namespace: str | None, **_: Any) -> None:
    RUNTIME.mark_dirty(f"Deployment {namespace}/{name} {type}")


def node_fingerprint(body: kopf.Body) -> str:
    """What of a node matters to placement: labels, allocatable, Ready, cordon."""
    status = body.get("status", {})
    ready = [c.get("status") for c in status.get("conditions", []) or [] if c.get("type") == "Ready"]
    relevant = [
        dict(body.get("metadata", {}).get("labels", {}) or {}),
        status.get("allocatable"),
        ready,
        body.get("spec", {}).get("unschedulable", False),
    ]
    return hashlib.sha256(json.dumps(relevant, sort_keys=True, default=str).encode()).hexdigest()


@kopf.on.event("", "v1", "nodes")
def _node_changed(type: str, name: str, body: kopf.Body, **_: Any) -> None:
    if type == "DELETED":
        _node_fingerprints.pop(name, None)
        RUNTIME.mark_dirty(f"Node {name} deleted")
        return
    fp = node_fingerprint(body)
    if _node_fingerprints.get(name) != fp:
        _node_fingerprints[name] = fp
        RUNTIME.mark_dirty(f"Node {name} changed")
