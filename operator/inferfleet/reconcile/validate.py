"""Phase 1 of a round: the cluster's objects validated into the API models.

Owns ``Objects``: the FleetPolicy (or why it is invalid), the valid AcceleratorClasses and
InferencePools by name and key, and the problems of the invalid ones (an invalid object is
reported, and its running children are left exactly as they are; a class whose power domain the
policy does not list is one of them, by the bridge's ``unlisted_domain``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from inferfleet.api.acceleratorclass import AcceleratorClass
from inferfleet.api.fleetpolicy import FleetPolicy
from inferfleet.api.inferencepool import InferencePool
from inferfleet.api.validation import ManifestError, validate_object
from inferfleet.reconcile.ports import Obj, Snapshot
from inferfleet.translate.problem import unlisted_domain

__all__ = ["Objects", "key_of", "meta", "validate"]


@dataclasses.dataclass(frozen=True)
class Objects:
    policy: FleetPolicy | None
    policy_problem: str | None  # set: the FleetPolicy is invalid and planning pauses
    classes: dict[str, AcceleratorClass]
    class_problems: dict[str, str]
    pools: dict[str, InferencePool]  # by "namespace/name"
    pool_problems: dict[str, str]
    pool_raw: dict[str, Obj]  # every pool as read, valid or not

    @property
    def problems(self) -> list[str]:
        return [*self.class_problems.values(), *self.pool_problems.values()]

    def frozen(self, pool_key: str, cls: str) -> bool:
        """Children of an invalid pool or class: never touched, their devices not re-planned."""
        return pool_key in self.pool_problems or cls in self.class_problems


def meta(obj: Obj) -> dict[str, Any]:
    out: dict[str, Any] = obj.get("metadata") or {}
    return out


def key_of(obj: Obj) -> str:
    m = meta(obj)
    return f"{m.get('namespace', 'default')}/{m.get('name')}"


_KEPT_METADATA = ("name", "namespace", "uid", "generation", "labels", "annotations")


def _strip(obj: Obj) -> Obj:
    """The object without server-set fields (status, and metadata the server writes), for
    validation: labels, annotations and any unknown top-level field are judged as the API server
    and ``plan`` judge them."""
    m = meta(obj)
    return {
        **{k: v for k, v in obj.items() if k != "status"},
        "metadata": {k: m[k] for k in _KEPT_METADATA if k in m},
    }


def validate(snapshot: Snapshot) -> Objects:
    policy: FleetPolicy | None = None
    policy_problem = None
    if snapshot.policy is not None:
        try:
            policy = validate_object(FleetPolicy, _strip(snapshot.policy), "cluster")
        except ManifestError as exc:
            policy_problem = f"{exc}; planning is paused and nothing running is changed until it is fixed"
    classes: dict[str, AcceleratorClass] = {}
    class_problems: dict[str, str] = {}
    for raw in snapshot.classes:
        name = str(meta(raw).get("name"))
        try:
            classes[name] = validate_object(AcceleratorClass, _strip(raw), "cluster")
        except ManifestError as exc:
            class_problems[name] = str(exc)
            continue
        if (unlisted := unlisted_domain(classes[name], policy)) is not None:
            del classes[name]
            class_problems[name] = unlisted
    pool_raw = {key_of(p): p for p in snapshot.pools}
    pools: dict[str, InferencePool] = {}
    pool_problems: dict[str, str] = {}
    for key, raw in pool_raw.items():
        try:
            pools[key] = validate_object(InferencePool, _strip(raw), "cluster")
        except ManifestError as exc:
            pool_problems[key] = str(exc)
    return Objects(policy, policy_problem, classes, class_problems, pools, pool_problems, pool_raw)
