"""``KubeWriter``: every write the operator makes, through the Kubernetes API, counted and fenced.

Owns: server-side apply of our Deployments, Services and ConfigMaps (and its dry run), their deletion, lifting
a replica's placement gate (``pin``) or deleting it, merge patches of our custom resources' status
subresource, and core/v1 Events: a repeat of an Event told within the window patches its ``count``
and ``lastTimestamp`` instead of creating another, and each object's Events are rate-limited (the
policy and its bounded memory: ``kube/events.py``).  Every write first asks ``is_leader``
(when given) and refuses with ``NotLeader`` if this replica does not hold the lease.
"""

from __future__ import annotations

import collections
import contextlib
import datetime
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Final, Literal, Protocol
from urllib.parse import quote

import kubernetes.client

from inferfleet.api import labels
from inferfleet.kube import events as correlation
from inferfleet.kube.client import (
    APIRejected,
    NotFound,
    TransientAPIError,
    custom_path,
    request,
)
from inferfleet.reconcile.ports import ChildKind, Obj

__all__ = [
    "APIRejected",
    "KubeWriter",
    "NotLeader",
    "TransientAPIError",
    "WriteRecorder",
    "build_event",
    "event_key",
    "repeat_patch",
]

log = logging.getLogger("inferfleet.writer")

APPLY: Final = "application/apply-patch+yaml"
MERGE_PATCH: Final = "application/merge-patch+json"
EVENT_MESSAGE_BYTES: Final = 1024  # the API server's limit on an Event's message (note)
EVENT_ACTION: Final = "Reconcile"  # required with eventTime: every event comes from a planning round
CLUSTER_EVENT_NAMESPACE: Final = "default"  # where Events about cluster-scoped objects go
_CHILD_PATHS: Final = {
    "Deployment": ("/apis/apps/v1", "deployments"),
    "Service": ("/api/v1", "services"),
    "ConfigMap": ("/api/v1", "configmaps"),
    "Pod": ("/api/v1", "pods"),
}
STRATEGIC_MERGE_PATCH: Final = "application/strategic-merge-patch+json"
_CHILD_API_VERSIONS: Final = {"Deployment": "apps/v1", "Service": "v1", "ConfigMap": "v1"}


class WriteRecorder(Protocol):
    """What the writer needs of the metrics (``inferfleet.metrics.exporter.OperatorMetrics``)."""

    def record_write(self, kind: str, verb: str) -> None: ...


class NotLeader(RuntimeError):  # noqa: N818 - names the condition; callers match on it
    """This replica does not hold the leader lease, so it must not write."""


class KubeWriter:
    """The ``inferfleet.reconcile.ports.Writer`` protocol over a kubernetes ApiClient.

    ``writes`` counts completed writes by (kind, verb); verbs are apply, delete, patch_status,
    create (a new Event) and patch (an Event told again); an Event over its object's rate limit is
    counted as ("Event", "dropped") though nothing is written.  ``metrics.record_write(kind, verb)``
    (e.g. an ``OperatorMetrics``) is called for each.  A delete that finds nothing (404) counts: the
    request was made and succeeded in effect.  ``correlator``: the Events' aggregation and rate
    limit (default: client-go's figures), on ``clock`` (monotonic seconds).
    """

    def __init__(
        self,
        api: kubernetes.client.ApiClient,
        field_manager: str = "inferfleet",
        *,
        is_leader: Callable[[], bool] | None = None,
        metrics: WriteRecorder | None = None,
        reporting_instance: str | None = None,
        correlator: correlation.Correlator | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api = api
        self.field_manager = field_manager
        self.is_leader = is_leader
        self.metrics = metrics
        self.reporting_instance = (reporting_instance or socket.gethostname())[:128]
        self.writes: collections.Counter[tuple[str, str]] = collections.Counter()
        self._lock = threading.Lock()
        self.correlator = correlator if correlator is not None else correlation.Correlator()
        self._clock = clock
        self._events_lock = threading.Lock()

    # -- Writer -------------------------------------------------------------------------------
    def apply(self, obj: Obj) -> None:
        self._apply(obj, dry_run=False)

    def dry_run(self, obj: Obj) -> None:
        self._apply(obj, dry_run=True)

    def _apply(self, obj: Obj, *, dry_run: bool) -> None:
        kind = obj.get("kind", "")
        if kind not in _CHILD_API_VERSIONS or obj.get("apiVersion") != _CHILD_API_VERSIONS[kind]:
            raise ValueError(
                "apply handles apps/v1 Deployment, v1 Service and v1 ConfigMap, "
                f"not {obj.get('apiVersion')}/{kind}"
            )
        meta = obj.get("metadata") or {}
        namespace, name = meta.get("namespace"), meta.get("name")
        if not namespace or not name:
            raise ValueError(f"{kind} to apply needs metadata.namespace and metadata.name")
        self._fence()
        request(
            self.api,
            "PATCH",
            _child_path(kind, namespace, name),
            body=obj,
            content_type=APPLY,
            query=[("fieldManager", self.field_manager), ("force", "true")]
            + ([("dryRun", "All")] if dry_run else []),
        )
        self._count(kind, "dry_run" if dry_run else "apply")

    def pin(self, namespace: str, name: str, node: str | None) -> None:
        """Lift the placement gate of one of our replicas, pinning it to ``node``: one strategic
        merge patch (the gate removed by its merge key, the hostname added to nodeSelector, which
        the API server allows while the pod is gated)."""
        spec: dict[str, object] = {"schedulingGates": [{"$patch": "delete", "name": labels.PLACEMENT_GATE}]}
        if node is not None:
            spec["nodeSelector"] = {labels.HOSTNAME: node}
        self._fence()
        with contextlib.suppress(NotFound):  # gone meanwhile: its ReplicaSet made another
            request(
                self.api,
                "PATCH",
                _child_path("Pod", namespace, name),
                body={"spec": spec},
                content_type=STRATEGIC_MERGE_PATCH,
                query=[("fieldManager", self.field_manager)],
            )
        self._count("Pod", "pin")

    def delete(self, kind: ChildKind, namespace: str, name: str) -> None:
        self._fence()
        with contextlib.suppress(NotFound):  # already gone: the desired state holds
            request(
                self.api,
                "DELETE",
                _child_path(kind, namespace, name),
                query=[("propagationPolicy", "Background")],
            )
        self._count(kind, "delete")

    def patch_status(
        self,
        kind: Literal["InferencePool", "AcceleratorClass", "FleetPolicy"],
        namespace: str | None,
        name: str,
        status: Obj,
    ) -> None:
        if kind == "InferencePool" and not namespace:
            raise ValueError("InferencePool status patch needs a namespace")
        self._fence()
        request(
            self.api,
            "PATCH",
            custom_path(kind, namespace, name, "status"),
            body={"status": status},
            content_type=MERGE_PATCH,
            query=[("fieldManager", self.field_manager)],
        )
        self._count(kind, "patch_status")

    def event(self, obj: Obj, type_: Literal["Normal", "Warning"], reason: str, message: str) -> None:
        """Tell an Event about ``obj``: a new one, or the same one told again (its count patched), or
        nothing when the object is over its rate limit."""
        self._fence()
        wall = datetime.datetime.now(datetime.UTC)
        body = build_event(obj, type_, reason, message, reporting_instance=self.reporting_instance, now=wall)
        key, now = event_key(body), self._clock()
        namespace = quote(body["metadata"]["namespace"], safe="")
        with self._events_lock:
            verdict = self.correlator.observe(key, now)
        if verdict.action is correlation.Action.DROP:
            log.debug("event %s about %s/%s dropped: over its rate limit", reason, key.obj[0], key.obj[2])
            self._count("Event", "dropped")
            return
        if verdict.action is correlation.Action.PATCH and verdict.name is not None:
            try:
                request(
                    self.api,
                    "PATCH",
                    f"/api/v1/namespaces/{namespace}/events/{quote(verdict.name, safe='')}",
                    body=repeat_patch(verdict.count, wall),
                    content_type=MERGE_PATCH,
                )
                self._count("Event", "patch")
                return
            except NotFound:  # expired (the API server keeps Events an hour) or deleted: tell anew
                with self._events_lock:
                    self.correlator.forget(key)
        request(self.api, "POST", f"/api/v1/namespaces/{namespace}/events", body=body)
        with self._events_lock:
            self.correlator.created(key, body["metadata"]["name"], now)
        self._count("Event", "create")

    # -- internals ----------------------------------------------------------------------------
    def _fence(self) -> None:
        if self.is_leader is not None and not self.is_leader():
            raise NotLeader("not the leader: refusing to write (another replica holds the lease)")

    def _count(self, kind: str, verb: str) -> None:
        with self._lock:
            self.writes[(kind, verb)] += 1
        if self.metrics is not None:
            self.metrics.record_write(kind, verb)


def build_event(
    obj: Obj, type_: str, reason: str, message: str, *, reporting_instance: str, now: datetime.datetime
) -> Obj:
    """A core/v1 Event about ``obj`` (pure; events about cluster-scoped objects go to "default")."""
    meta = obj.get("metadata") or {}
    name = str(meta.get("name", ""))
    involved: Obj = {"apiVersion": obj.get("apiVersion", ""), "kind": obj.get("kind", ""), "name": name}
    if meta.get("namespace"):
        involved["namespace"] = meta["namespace"]
    if meta.get("uid"):
        involved["uid"] = meta["uid"]
    now = now.astimezone(datetime.UTC)
    seconds = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": f"{name[:200]}.{int(now.timestamp() * 1e9):x}",
            "namespace": meta.get("namespace") or CLUSTER_EVENT_NAMESPACE,
        },
        "involvedObject": involved,
        "type": type_,
        "reason": reason,
        "message": _truncate(message, EVENT_MESSAGE_BYTES),
        "count": 1,
        "firstTimestamp": seconds,
        "lastTimestamp": seconds,
        "eventTime": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "action": EVENT_ACTION,
        "reportingComponent": "inferfleet",
        "reportingInstance": reporting_instance,
        "source": {"component": "inferfleet"},
    }


def event_key(event: Obj) -> correlation.EventKey:
    """What makes an Event (as ``build_event`` makes it) the same one told again."""
    involved = event.get("involvedObject") or {}
    return correlation.EventKey(
        (
            str(involved.get("kind", "")),
            str(involved.get("namespace", "")),
            str(involved.get("name", "")),
            str(involved.get("uid", "")),
        ),
        str(event.get("type", "")),
        str(event.get("reason", "")),
        str(event.get("message", "")),
    )


def repeat_patch(count: int, now: datetime.datetime) -> Obj:
    """The merge patch of an Event told for the ``count``-th time at ``now``: ``count`` and
    ``lastTimestamp`` (what ``kubectl get events`` shows), and the ``series`` that events.k8s.io/v1
    readers see (count and last observation)."""
    now = now.astimezone(datetime.UTC)
    return {
        "count": count,
        "lastTimestamp": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "series": {"count": count, "lastObservedTime": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")},
    }


def _truncate(text: str, limit: int) -> str:
    """At most ``limit`` UTF-8 bytes (the API counts bytes), ending in "..." when cut."""
    raw = text.encode()
    if len(raw) <= limit:
        return text
    return raw[: limit - 3].decode(errors="ignore") + "..."


def _child_path(kind: str, namespace: str, name: str) -> str:
    prefix, plural = _CHILD_PATHS[kind]
    return f"{prefix}/namespaces/{quote(namespace, safe='')}/{plural}/{quote(name, safe='')}"
