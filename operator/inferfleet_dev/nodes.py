"""The fake accelerator nodes on the API server: apply, prune, wait Ready, summarise, delete.

Owns: the only Kubernetes-client code of ``inferfleet_dev``.  Nodes are created with their status
(capacity/allocatable, as a kubelet registers them); on re-apply their labels, annotations and
taints are patched and their status subresource corrected; managed nodes that left the fleet are
deleted.  Summaries group nodes by accelerator class for ``dev-cluster status``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import kubernetes.client
from kubernetes import config
from kubernetes.client.exceptions import ApiException

from inferfleet.api import labels
from inferfleet.api.simulatedfleet import KWOK_FAKE

__all__ = [
    "ApplyResult",
    "ClassSummary",
    "api_client",
    "apply_nodes",
    "delete_managed_nodes",
    "summarise",
    "wait_nodes_ready",
]

MANAGED_SELECTOR = f"{labels.MANAGED_BY}={labels.SIM_MANAGER}"
_WORKERS = 8  # below the client's connection pool size (5 x CPUs)
_SYSTEM_TAINT_PREFIXES = ("node.kubernetes.io/", "node.cloudprovider.kubernetes.io/")


class NodeError(RuntimeError):
    """The API server refused a node, or nodes did not become Ready in time."""


@dataclasses.dataclass
class ApplyResult:
    created: list[str] = dataclasses.field(default_factory=list)
    updated: list[str] = dataclasses.field(default_factory=list)
    unchanged: list[str] = dataclasses.field(default_factory=list)
    deleted: list[str] = dataclasses.field(default_factory=list)

    def describe(self) -> str:
        return (
            f"{len(self.created)} created, {len(self.updated)} updated, "
            f"{len(self.unchanged)} unchanged, {len(self.deleted)} deleted"
        )


@dataclasses.dataclass
class ClassSummary:
    """Nodes of one accelerator class as the API server sees them."""

    accelerator_class: str
    nodes: int = 0
    ready: int = 0
    cordoned: int = 0
    resource: str = ""
    devices_per_node: str = ""
    devices_allocatable: int = 0
    power_domains: set[str] = dataclasses.field(default_factory=set)
    zones: set[str] = dataclasses.field(default_factory=set)


@contextmanager
def api_client(kubeconfig: Path) -> Iterator[Any]:
    """A kubernetes ApiClient for ``kubeconfig``, closed on exit."""
    api: Any = config.new_client_from_config(config_file=str(kubeconfig), persist_config=False)
    try:
        yield api
    finally:
        api.close()


def _is_ready(node: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in (node.status.conditions or []))


def _patch_for(existing: Any, want: dict[str, Any]) -> dict[str, Any] | None:
    meta = want["metadata"]
    labels = existing.metadata.labels or {}
    annotations = existing.metadata.annotations or {}
    system = [t.to_dict() for t in (existing.spec.taints or []) if t.key.startswith(_SYSTEM_TAINT_PREFIXES)]
    taints = want["spec"]["taints"] + [
        {k: v for k, v in t.items() if v is not None and k in ("key", "value", "effect")} for t in system
    ]
    current = [
        {k: v for k, v in t.to_dict().items() if v is not None and k in ("key", "value", "effect")}
        for t in (existing.spec.taints or [])
    ]
    patch: dict[str, Any] = {}
    if any(labels.get(k) != v for k, v in meta["labels"].items()) or any(
        annotations.get(k) != v for k, v in meta["annotations"].items()
    ):
        patch["metadata"] = {"labels": meta["labels"], "annotations": meta["annotations"]}
    key = lambda t: (t["key"], t.get("value", ""), t["effect"])  # noqa: E731
    if sorted(map(key, current)) != sorted(map(key, taints)):
        patch["spec"] = {"taints": taints}
    return patch or None


def _status_differs(existing: Any, want: dict[str, Any]) -> bool:
    have = existing.status.capacity or {}
    return any(have.get(k) != v for k, v in want["status"]["capacity"].items())


def _apply_one(core: Any, want: dict[str, Any], node: Any | None) -> str:
    """Create or correct one node; returns "created", "updated" or "unchanged"."""
    name = want["metadata"]["name"]
    try:
        if node is None:
            core.create_node(want)
            return "created"
        have, annotations = node.metadata.labels or {}, node.metadata.annotations or {}
        if (
            have.get(labels.MANAGED_BY) != labels.SIM_MANAGER
            and annotations.get(labels.KWOK_NODE) != KWOK_FAKE
        ):
            raise NodeError(f"node {name!r} exists and is not a simulated node; refusing to touch it")
        patch = _patch_for(node, want)
        if patch:
            core.patch_node(name, patch)
        status = _status_differs(node, want)
        if status:
            core.patch_node_status(name, {"status": want["status"]})
        return "updated" if patch or status else "unchanged"
    except ApiException as exc:
        raise NodeError(f"node {name}: API server said {exc.status} {exc.reason}: {exc.body}") from None


def apply_nodes(api: Any, manifests: list[dict[str, Any]], prune: bool = True) -> ApplyResult:
    """Create or correct every node; delete managed nodes not in ``manifests`` when ``prune``.

    Requests run on a few threads: 190 nodes take ~2 s instead of ~7 s one by one.
    """
    core: Any = kubernetes.client.CoreV1Api(api)
    existing = {n.metadata.name: n for n in core.list_node().items}
    result = ApplyResult()
    wanted = {m["metadata"]["name"] for m in manifests}
    stale = [
        name
        for name, node in existing.items()
        if prune
        and name not in wanted
        and (node.metadata.labels or {}).get(labels.MANAGED_BY) == labels.SIM_MANAGER
    ]
    with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
        outcomes = pool.map(
            lambda m: (m["metadata"]["name"], _apply_one(core, m, existing.get(m["metadata"]["name"]))),
            manifests,
        )
        for name, outcome in outcomes:
            getattr(result, outcome).append(name)
        for name in pool.map(lambda n: _delete(core, n), stale):
            result.deleted.append(name)
    return result


def _delete(core: Any, name: str) -> str:
    try:
        core.delete_node(name)
    except ApiException as exc:
        if exc.status != 404:
            raise NodeError(f"node {name}: delete failed: {exc.status} {exc.reason}") from None
    return name


def delete_managed_nodes(api: Any) -> list[str]:
    core: Any = kubernetes.client.CoreV1Api(api)
    names = [n.metadata.name for n in core.list_node(label_selector=MANAGED_SELECTOR).items]
    with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
        return list(pool.map(lambda n: _delete(core, n), names))


def wait_nodes_ready(api: Any, names: list[str], timeout: float) -> float:
    """Wait until every named node is Ready; returns the seconds waited."""
    core: Any = kubernetes.client.CoreV1Api(api)
    start = time.monotonic()
    pending = set(names)
    while pending:
        nodes = core.list_node(label_selector=MANAGED_SELECTOR).items
        pending = set(names) - {n.metadata.name for n in nodes if _is_ready(n)}
        if not pending:
            break
        if time.monotonic() - start > timeout:
            some = ", ".join(sorted(pending)[:5])
            raise NodeError(
                f"{len(pending)} node(s) not Ready after {timeout:.0f}s (e.g. {some}); "
                "is kwok running? see its log"
            )
        time.sleep(0.2)
    return time.monotonic() - start


def summarise(api: Any) -> list[ClassSummary]:
    """Per accelerator class: node count, readiness, device resource and allocatable totals."""
    core: Any = kubernetes.client.CoreV1Api(api)
    by_class: dict[str, ClassSummary] = {}
    for node in core.list_node().items:
        have = node.metadata.labels or {}
        cls = have.get(labels.ACCELERATOR_CLASS, "(none)")
        s = by_class.setdefault(cls, ClassSummary(cls))
        s.nodes += 1
        s.ready += _is_ready(node)
        s.cordoned += bool(node.spec.unschedulable)
        s.power_domains.add(have.get(labels.POWER_DOMAIN, "-"))
        s.zones.add(have.get(labels.ZONE, "-"))
        alloc = node.status.allocatable or {}
        for res, qty in sorted(alloc.items()):
            if "/" in res and not res.startswith(("hugepages-", "kubernetes.io/")):
                s.resource = res
                s.devices_per_node = qty
                if qty.isdigit():
                    s.devices_allocatable += int(qty)
    return [by_class[k] for k in sorted(by_class)]
