"""What one plan reads from the API, and the arithmetic on it: sources, one-shot reads, snapshots.

Owns: ``SOURCES``/``sources`` (the collections a plan needs: pools, classes, the "default"
FleetPolicy, nodes, bound unfinished pods, our pending pods, Deployments, Services and ConfigMaps;
their paths, selectors, the trimming of pods to what the arithmetic reads and the fingerprint of
what in an object matters to a plan, e.g. not a node's heartbeat), ``list_source`` (one paginated
LIST as raw JSON), ``read_snapshot`` (every source LISTed once, in parallel: for one-shot readers;
the operator reads the watch cache of ``kube/informer.py``, which shares all of this),
``build_snapshot`` and the arithmetic of devices that pods we do not manage hold on each node.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import decimal
import hashlib
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

import kubernetes.client
from kubernetes.utils import parse_quantity

from inferfleet.api import API_VERSION, labels
from inferfleet.api.kinds import BY_KIND, POLICY_NAME
from inferfleet.kube.client import NotFound, custom_path, request
from inferfleet.reconcile.ports import Obj, Snapshot

__all__ = [
    "CRDsMissing",
    "Source",
    "build_snapshot",
    "foreign_usage",
    "list_source",
    "live_replicas",
    "placed_on_nodes",
    "node_fingerprint",
    "pending_pod_fingerprint",
    "pod_requests",
    "read_snapshot",
    "sources",
]

# Pods that hold devices: bound to a node and not finished.  The API server filters; the same
# rules are applied again client-side (cheap), so the arithmetic never depends on the selector.
BOUND_UNFINISHED: Final = "spec.nodeName!=,status.phase!=Succeeded,status.phase!=Failed"
# Our pods the scheduler has not bound: why they wait is what the plan did not model.
UNBOUND_PENDING: Final = "spec.nodeName=,status.phase=Pending"
PAGE: Final = 5000  # objects per LIST page; one page at fleet scale, bounded memory beyond it
LIST_TIMEOUT: Final = (5.0, 60.0)
TERMINAL: Final = ("Succeeded", "Failed")


class CRDsMissing(RuntimeError):  # noqa: N818 - names the condition; callers match on it
    """Our CustomResourceDefinitions are not installed, so the API has no such resource."""

    def __init__(self, missing: Iterable[str]) -> None:
        self.missing = sorted(missing)
        names = ", ".join(self.missing)
        super().__init__(
            f"CustomResourceDefinition(s) not installed: {names}. Install them with "
            "`kubectl apply --server-side -f crds/` from the inferfleet repository, or install the "
            "Helm chart with crds.enabled=true."
        )


RequestFn = Callable[..., Any]  # inferfleet.kube.client.request, or a fake of it


@dataclasses.dataclass(frozen=True)
class Source:
    """One collection a plan reads: where it is, which of its objects, and what of them matters.

    ``path`` is computed per call (the paths of our kinds come from the kinds registry).  ``crd``:
    the CRD's name when the kind is ours (a 404 then means "not installed").  ``trim``: the part of
    an object that is kept (default: all but managedFields).  ``fingerprint``: what of an object
    matters to a plan; a modification that leaves it unchanged does not wake the planner (None:
    every modification matters)."""

    name: str
    api_version: str
    kind: str
    path: Callable[[], str]
    labels: str | None = None
    fields: str | None = None
    crd: str | None = None
    trim: Callable[[Obj], Obj] | None = None
    fingerprint: Callable[[Obj], str] | None = None

    def query(self) -> list[tuple[str, str]]:
        query = []
        if self.labels:
            query.append(("labelSelector", self.labels))
        if self.fields:
            query.append(("fieldSelector", self.fields))
        return query

    def prepare(self, item: Obj) -> Obj:
        """An object as the API sent it -> as it is kept: apiVersion/kind filled in, managedFields
        dropped (nothing downstream reads them; they are a third of the bytes), trimmed."""
        item.setdefault("apiVersion", self.api_version)
        item.setdefault("kind", self.kind)
        (item.get("metadata") or {}).pop("managedFields", None)
        return self.trim(item) if self.trim is not None else item


def _hash(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def node_fingerprint(node: Obj) -> str:
    """What of a node matters to placement: labels, allocatable (or capacity), Ready, cordon.  Not
    heartbeats (``lastHeartbeatTime`` changes every few seconds on every node)."""
    status = node.get("status") or {}
    ready = [c.get("status") for c in status.get("conditions") or [] if c.get("type") == "Ready"]
    return _hash(
        [
            dict((node.get("metadata") or {}).get("labels") or {}),
            status.get("allocatable"),
            status.get("capacity"),
            ready,
            (node.get("spec") or {}).get("unschedulable", False),
        ]
    )


def custom_fingerprint(obj: Obj) -> str:
    """Our own kinds: their spec (generation), labels, annotations, deletion.  Not their status: we
    write it, and what a plan reads back from it never calls for another plan."""
    meta = obj.get("metadata") or {}
    return _hash(
        [meta.get("generation"), meta.get("labels"), meta.get("annotations"), meta.get("deletionTimestamp")]
    )


def service_fingerprint(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    return _hash([meta.get("labels"), meta.get("annotations"), obj.get("spec")])


def config_map_fingerprint(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    return _hash([meta.get("labels"), meta.get("annotations"), obj.get("data")])


def trim_node(node: Obj) -> Obj:
    """A node less its image list (tens of kB per node on real clusters; no plan reads it)."""
    (node.get("status") or {}).pop("images", None)
    return node


_POD_LABELS: Final = (labels.MANAGED_BY, labels.POOL, labels.ACCELERATOR_CLASS)


def _pod_identity(pod: Obj) -> Obj:
    """A pod's kind, name, namespace and the labels that say whose it is."""
    meta = pod.get("metadata") or {}
    pod_labels = meta.get("labels") or {}
    return {
        "apiVersion": pod.get("apiVersion", "v1"),
        "kind": pod.get("kind", "Pod"),
        "metadata": {
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "labels": {k: pod_labels[k] for k in _POD_LABELS if k in pod_labels},
        },
    }


def trim_pod(pod: Obj) -> Obj:
    """What ``foreign_usage`` and ``live_replicas`` read of a pod, nothing else: a few percent of
    its bytes, so holding every bound pod of the cluster in the watch cache stays cheap."""
    spec = pod.get("spec") or {}
    identity = _pod_identity(pod)
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        identity["metadata"]["deletionTimestamp"] = pod["metadata"]["deletionTimestamp"]

    def resources(container: Obj, *keys: str) -> Obj:
        kept = {"resources": container.get("resources") or {}}
        kept.update({k: container[k] for k in keys if k in container})
        return kept

    return {
        **identity,
        "spec": {
            "nodeName": spec.get("nodeName"),
            "containers": [resources(c) for c in spec.get("containers") or ()],
            "initContainers": [resources(c, "restartPolicy") for c in spec.get("initContainers") or ()],
            "overhead": spec.get("overhead") or {},
        },
        "status": {"phase": (pod.get("status") or {}).get("phase")},
    }


def trim_pending_pod(pod: Obj) -> Obj:
    """An unbound pod of ours: who it belongs to, its scheduling gates and the node it is pinned to
    (``reconcile.pinning``), and the scheduler's PodScheduled condition."""
    spec = pod.get("spec") or {}
    scheduled = [
        {k: c.get(k) for k in ("type", "status", "reason", "message", "lastTransitionTime")}
        for c in (pod.get("status") or {}).get("conditions") or ()
        if c.get("type") == "PodScheduled"
    ]
    host = (spec.get("nodeSelector") or {}).get(labels.HOSTNAME)
    return {
        **_pod_identity(pod),
        "spec": {
            "schedulingGates": [{"name": g.get("name")} for g in spec.get("schedulingGates") or ()],
            "nodeSelector": {labels.HOSTNAME: host} if host else {},
        },
        "status": {"phase": (pod.get("status") or {}).get("phase"), "conditions": scheduled},
    }


def unschedulable(pods: Iterable[Obj]) -> dict[tuple[str, str], tuple[int, str]]:
    """("namespace/pool", class) -> (our pods the scheduler marked Unschedulable, its message)."""
    out: dict[tuple[str, str], tuple[int, str]] = {}
    for pod in pods:
        meta = pod.get("metadata") or {}
        pod_labels = meta.get("labels") or {}
        pool, cls = pod_labels.get(labels.POOL), pod_labels.get(labels.ACCELERATOR_CLASS)
        why = next(
            (
                str(c.get("message") or c.get("reason") or "")
                for c in (pod.get("status") or {}).get("conditions") or ()
                if c.get("type") == "PodScheduled"
                and c.get("status") == "False"
                and c.get("reason") == "Unschedulable"
            ),
            None,
        )
        if not pool or not cls or why is None:
            continue
        key = (f"{meta.get('namespace')}/{pool}", str(cls))
        n, first = out.get(key, (0, why))
        out[key] = (n + 1, first)
    return out


def pod_fingerprint(pod: Obj) -> str:
    """A trimmed pod, less its phase while it runs (Pending -> Running changes no device count)."""
    phase = (pod.get("status") or {}).get("phase")
    return _hash([pod.get("metadata"), pod.get("spec"), phase in TERMINAL])


def pending_pod_fingerprint(pod: Obj) -> str:
    """A trimmed unbound pod whole: its gate lifted, its pin, the scheduler's verdict all matter
    (the trimmed pod keeps no resourceVersion, so the default fingerprint would never change)."""
    return _hash([pod.get("metadata"), pod.get("spec"), pod.get("status")])


def sources(namespace: str | None = None) -> tuple[Source, ...]:
    """The collections one plan needs.  ``namespace`` limits pools, Deployments and Services to one
    namespace; nodes and the pods that use them are always read cluster-wide (any pod on a node
    holds its devices).  Pods are one collection, ours and others' alike, split client-side by the
    managed-by label: the same objects as two selectors, in one LIST or WATCH instead of two."""

    def ours(kind: str, **kw: Any) -> Source:
        return Source(
            kind,
            API_VERSION,
            kind,
            lambda: custom_path(kind, namespace if BY_KIND[kind].namespaced else None),
            crd=BY_KIND[kind].name,
            fingerprint=custom_fingerprint,
            **kw,
        )

    return (
        ours("InferencePool"),
        ours("AcceleratorClass"),
        ours("FleetPolicy", fields=f"metadata.name={POLICY_NAME}"),
        Source("Node", "v1", "Node", lambda: "/api/v1/nodes", trim=trim_node, fingerprint=node_fingerprint),
        Source(
            "Pod",
            "v1",
            "Pod",
            lambda: "/api/v1/pods",
            fields=BOUND_UNFINISHED,
            trim=trim_pod,
            fingerprint=pod_fingerprint,
        ),
        Source(
            "PendingPod",
            "v1",
            "Pod",
            lambda: _ns_path("/api/v1", namespace, "pods"),
            labels=labels.OURS,
            fields=UNBOUND_PENDING,
            trim=trim_pending_pod,
            fingerprint=pending_pod_fingerprint,
        ),
        Source(
            "Deployment",
            "apps/v1",
            "Deployment",
            lambda: _ns_path("/apis/apps/v1", namespace, "deployments"),
            labels=labels.OURS,
        ),
        Source(
            "Service",
            "v1",
            "Service",
            lambda: _ns_path("/api/v1", namespace, "services"),
            labels=labels.OURS,
            fingerprint=service_fingerprint,
        ),
        Source(
            "ConfigMap",
            "v1",
            "ConfigMap",
            lambda: _ns_path("/api/v1", namespace, "configmaps"),
            labels=labels.OURS,
            fingerprint=config_map_fingerprint,
        ),
    )


def read_snapshot(
    api: kubernetes.client.ApiClient,
    namespace: str | None = None,
    *,
    request_fn: RequestFn = request,
    without: frozenset[str] = frozenset(),
) -> Snapshot:
    """Everything one plan needs, as the API server says it is now: one LIST per source.

    For one-shot readers; the operator reads its watch cache (``kube/informer.py``) instead.
    ``request_fn``: ``kube.client.request`` or a stand-in with its signature (tests); ``without``:
    sources (by name) a reader does not need, e.g. the routing ConfigMaps no plan reads.
    Raises ``CRDsMissing``, ``TransientAPIError`` or ``APIRejected``.
    """
    # in parallel: the API server encodes one LIST while we parse another.  Locally (1,000 pools,
    # 2,000 Deployments and Pods, 200 Nodes; 2 cores shared with the API server) 4 threads read in
    # ~0.3-0.4 s against ~0.45 s one after another; more threads only contend for the GIL.
    wanted = [src for src in sources(namespace) if src.name not in without]
    with concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="snapshot") as pool:
        futures = {src: pool.submit(list_source, api, src, request_fn) for src in wanted}
        concurrent.futures.wait(futures.values())
    missing = [src.crd for src, fut in futures.items() if src.crd and isinstance(fut.exception(), NotFound)]
    if missing:
        raise CRDsMissing(missing)
    return build_snapshot({src.name: fut.result()[0] for src, fut in futures.items()})  # re-raises


def build_snapshot(got: Mapping[str, Sequence[Obj]]) -> Snapshot:
    """A Snapshot from each source's objects (by ``Source.name``), each list in (namespace, name)
    order whatever order it came in, so that plans do not depend on the order of events."""
    ordered = {name: sorted(items, key=_order) for name, items in got.items()}
    pods = ordered["Pod"]
    policies = ordered["FleetPolicy"]
    ours = [
        p
        for p in pods
        if (p.get("metadata", {}).get("labels") or {}).get(labels.MANAGED_BY) == labels.MANAGER
    ]
    return Snapshot(
        pools=ordered["InferencePool"],
        classes=ordered["AcceleratorClass"],
        policy=policies[0] if policies else None,
        nodes=ordered["Node"],
        foreign_used=foreign_usage(pods),
        deployments=ordered["Deployment"],
        services=ordered["Service"],
        config_maps=list(ordered.get("ConfigMap", ())),
        live_replicas=live_replicas(ours, ordered["Node"]),
        unschedulable=unschedulable(ordered.get("PendingPod", ())),
        placed=placed_on_nodes(ours),
        pending_pods=list(ordered.get("PendingPod", ())),
    )


def _order(obj: Obj) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))


def live_replicas(pods: Iterable[Obj], nodes: Iterable[Obj]) -> dict[tuple[str, str], int]:
    """("namespace/pool", class) -> our bound, unfinished pods (terminating too) on Ready nodes.

    A pod on a node that is not Ready is not counted: the node is down, so it draws no power (and
    such pods can stay Terminating until the node returns)."""
    ready = {
        str(n.get("metadata", {}).get("name"))
        for n in nodes
        if any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in n.get("status", {}).get("conditions", []) or []
        )
    }
    out: dict[tuple[str, str], int] = {}
    for pod in pods:
        meta = pod.get("metadata", {})
        pod_labels = meta.get("labels") or {}
        pool, cls = pod_labels.get(labels.POOL), pod_labels.get(labels.ACCELERATOR_CLASS)
        node = pod.get("spec", {}).get("nodeName")
        if not pool or not cls or node not in ready or pod.get("status", {}).get("phase") in TERMINAL:
            continue
        key = (f"{meta.get('namespace')}/{pool}", str(cls))
        out[key] = out.get(key, 0) + 1
    return out


def placed_on_nodes(pods: Iterable[Obj]) -> dict[tuple[str, str], dict[str, tuple[str, ...]]]:
    """("namespace/pool", class) -> node -> the names of our bound, unfinished pods there, less the
    terminating ones (their devices count as held, in ``foreign_usage``)."""
    out: dict[tuple[str, str], dict[str, tuple[str, ...]]] = {}
    for pod in pods:
        meta = pod.get("metadata", {})
        pod_labels = meta.get("labels") or {}
        pool, cls = pod_labels.get(labels.POOL), pod_labels.get(labels.ACCELERATOR_CLASS)
        node = pod.get("spec", {}).get("nodeName")
        if not pool or not cls or not node or pod.get("status", {}).get("phase") in TERMINAL:
            continue
        if meta.get("deletionTimestamp"):
            continue
        per_node = out.setdefault((f"{meta.get('namespace')}/{pool}", str(cls)), {})
        per_node[node] = (*per_node.get(node, ()), str(meta.get("name")))
    return out


def foreign_usage(pods: Iterable[Obj]) -> dict[str, dict[str, int]]:
    """node -> extended resource -> devices requested by bound, unfinished pods not managed by us,
    and by ours that are terminating (a moved replica, or one of a deleted pool: its devices stay
    held until it is gone, and no plan can use them before)."""
    used: dict[str, dict[str, int]] = {}
    for pod in pods:
        node = pod.get("spec", {}).get("nodeName")
        if not node or pod.get("status", {}).get("phase") in TERMINAL:
            continue
        ours = (pod.get("metadata", {}).get("labels") or {}).get(labels.MANAGED_BY) == labels.MANAGER
        if ours and not pod.get("metadata", {}).get("deletionTimestamp"):
            continue
        requests = pod_requests(pod)
        if requests:
            per_node = used.setdefault(node, {})
            for resource, count in requests.items():
                per_node[resource] = per_node.get(resource, 0) + count
    return used


def pod_requests(pod: Obj) -> dict[str, int]:
    """Extended resources (names with a '/') the pod holds, as the scheduler counts them.

    max(app containers + sidecars, each init container + the sidecars started before it), plus
    pod overhead.  Requests default to limits for extended resources.
    """
    spec = pod.get("spec", {})
    total: dict[str, int] = {}
    sidecars: dict[str, int] = {}
    init_peak: dict[str, int] = {}
    for container in spec.get("initContainers") or ():
        own = _container_requests(container)
        if container.get("restartPolicy") == "Always":  # a sidecar: runs alongside the app
            _add(sidecars, own)
        else:
            for resource, count in own.items():
                init_peak[resource] = max(init_peak.get(resource, 0), count + sidecars.get(resource, 0))
    for container in spec.get("containers") or ():
        _add(total, _container_requests(container))
    _add(total, sidecars)
    for resource, count in init_peak.items():
        total[resource] = max(total.get(resource, 0), count)
    _add(total, _extended(spec.get("overhead") or {}))
    return {resource: count for resource, count in total.items() if count > 0}


def _container_requests(container: Obj) -> dict[str, int]:
    resources = container.get("resources") or {}
    merged = dict(resources.get("limits") or {})
    merged.update(resources.get("requests") or {})
    return _extended(merged)


def _extended(quantities: Mapping[str, Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for resource, quantity in quantities.items():
        if "/" in resource:
            try:
                out[resource] = math.ceil(parse_quantity(quantity))
            except (ValueError, TypeError, decimal.InvalidOperation):
                continue  # the API server validates quantities; never fail a snapshot on one
    return out


def _add(into: dict[str, int], more: Mapping[str, int]) -> None:
    for resource, count in more.items():
        into[resource] = into.get(resource, 0) + count


def _ns_path(prefix: str, namespace: str | None, plural: str) -> str:
    return f"{prefix}/namespaces/{namespace}/{plural}" if namespace else f"{prefix}/{plural}"


def list_source(
    api: kubernetes.client.ApiClient, source: Source, request_fn: RequestFn = request
) -> tuple[list[Obj], str]:
    """Every object of a source (following continue tokens), prepared (``Source.prepare``), and
    the list's resourceVersion (to WATCH from).  Raises what ``request`` raises."""
    items: list[Obj] = []
    cont = ""
    version = ""
    path = source.path()
    while True:
        query = [("limit", str(PAGE)), *source.query()]
        if cont:
            query.append(("continue", cont))
        page = request_fn(api, "GET", path, query=query, timeout=LIST_TIMEOUT) or {}
        meta = page.get("metadata") or {}
        version = version or str(meta.get("resourceVersion") or "")  # pages share the first's
        items.extend(source.prepare(item) for item in page.get("items") or ())
        cont = meta.get("continue") or ""
        if not cont:
            return items, version
