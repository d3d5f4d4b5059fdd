"""What the fleet has to offer: nodes as the planner sees them, and each class's free capacity.

Owns ``NodeInfo`` (labels, allocatable devices, readiness and the health the plan counts, devices
held by pods inferfleet does not own), the class-to-node matching rule, capacity per class (the
override wins; otherwise the free devices of usable, schedulable, matching nodes, with their names;
usable is ``readiness``'s rule: a NotReady node within its grace period still counts), which class
a node counts for when several match it (``node_owners``: counted once) and which classes overlap, the
stand-in for "no node limit", and the devices held by children the operator must not touch.  Nodes
arrive as plain dicts or records, so no Kubernetes client is needed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from inferfleet.api.acceleratorclass import AcceleratorClass as ApiClass
from inferfleet.core.types import UNBOUNDED_NODES
from inferfleet.translate.readiness import Health, is_ready

__all__ = [
    "Capacity",
    "NodeInfo",
    "class_capacity",
    "is_ready",
    "matches",
    "node_info_from_manifest",
    "node_owners",
    "overlaps",
    "unbounded",
    "without",
]


@dataclasses.dataclass(frozen=True)
class NodeInfo:
    """What the planner needs of a node: labels, allocatable devices, readiness now, the health the
    plan counts (``readiness.Health``; without memory: Ready or lost), and devices in use by pods
    that inferfleet does not own (its own replicas are re-planned, so they do not count)."""

    name: str
    labels: Mapping[str, str]
    allocatable: Mapping[str, int]
    ready: bool = True
    schedulable: bool = True
    foreign_used: Mapping[str, int] = dataclasses.field(default_factory=dict)
    health: Health | None = None

    @property
    def usable(self) -> bool:
        """The plan may count this node's devices (Ready, or NotReady within its grace period)."""
        return self.health.usable if self.health is not None else self.ready


@dataclasses.dataclass(frozen=True)
class Capacity:
    """Free devices per node of one class; ``names`` is empty when no real nodes stand behind it."""

    free: tuple[int, ...] = ()
    names: tuple[str, ...] = ()


def matches(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """A class's nodeSelector matches a node's labels (every key, equal value)."""
    return all(labels.get(k) == v for k, v in selector.items())


def _count(value: object) -> int:
    """An extended-resource count ("8", 8, "8k" is not a device count) -> int; garbage -> 0."""
    try:
        return int(str(value))
    except ValueError:
        return 0


def node_info_from_manifest(
    node: Mapping[str, Any], foreign_used: Mapping[str, int] | None = None, health: Health | None = None
) -> NodeInfo:
    """A Node object (as a dict, from a manifest or the API) -> NodeInfo.  A node without status
    (a manifest about to be created) is taken as Ready with allocatable = capacity; ``health``: what
    ``readiness`` says of it (None: Ready now or not)."""
    meta = node.get("metadata") or {}
    spec = node.get("spec") or {}
    status = node.get("status") or {}
    resources = status.get("allocatable") or status.get("capacity") or {}
    return NodeInfo(
        name=str(meta.get("name", "")),
        labels=dict(meta.get("labels") or {}),
        allocatable={str(k): _count(v) for k, v in resources.items()},
        ready=is_ready(node),
        schedulable=not spec.get("unschedulable", False),
        foreign_used=dict(foreign_used or {}),
        health=health,
    )


def _specificity(cls: ApiClass) -> tuple[int, str]:
    return (-len(cls.spec.node_selector), str(cls.metadata.get("name")))


def node_owners(classes: Sequence[ApiClass], nodes: Sequence[NodeInfo] | None) -> dict[tuple[str, str], str]:
    """(node, extended resource) -> the class whose capacity it counts for, when several classes
    match a node and ask for the same resource: the one with the most nodeSelector keys (the most
    specific), then the first by name.  Classes with a capacity override count no node."""
    out: dict[tuple[str, str], str] = {}
    counted = sorted((c for c in classes if c.spec.capacity is None), key=_specificity)
    for node in nodes or ():
        for cls in counted:
            key = (node.name, cls.spec.resource_name)
            if key not in out and matches(cls.spec.node_selector, node.labels):
                out[key] = str(cls.metadata.get("name"))
    return out


def overlaps(
    classes: Sequence[ApiClass], nodes: Sequence[NodeInfo] | None
) -> dict[str, dict[str, tuple[str, ...]]]:
    """Class -> other class -> the nodes both match for the same resource (either way round)."""
    out: dict[str, dict[str, list[str]]] = {}
    counted = [c for c in classes if c.spec.capacity is None]
    for node in sorted(nodes or (), key=lambda n: n.name):
        for a in counted:
            for b in counted:
                if a is b or a.spec.resource_name != b.spec.resource_name:
                    continue
                if matches(a.spec.node_selector, node.labels) and matches(b.spec.node_selector, node.labels):
                    name_a, name_b = str(a.metadata.get("name")), str(b.metadata.get("name"))
                    out.setdefault(name_a, {}).setdefault(name_b, []).append(node.name)
    return {a: {b: tuple(ns) for b, ns in others.items()} for a, others in out.items()}


def unbounded(devices_per_node: int) -> Capacity:
    """Capacity standing in for "no node limit"."""
    return Capacity((devices_per_node,) * UNBOUNDED_NODES)


def class_capacity(
    cls: ApiClass, nodes: Sequence[NodeInfo] | None, owners: Mapping[tuple[str, str], str] | None = None
) -> Capacity:
    """Free devices per usable node, by node name; the class's override wins; unknown nodes -> none;
    ``owners`` (``node_owners``): a node another class owns does not count here."""
    spec = cls.spec
    if spec.capacity is not None:
        return Capacity((spec.devices_per_node,) * spec.capacity.nodes)
    if nodes is None:
        return Capacity()
    name = str(cls.metadata.get("name"))
    free: list[int] = []
    names: list[str] = []
    for node in sorted(nodes, key=lambda n: n.name):
        if not (node.usable and node.schedulable and matches(spec.node_selector, node.labels)):
            continue
        if owners is not None and owners.get((node.name, spec.resource_name), name) != name:
            continue
        devices = node.allocatable.get(spec.resource_name, 0) - node.foreign_used.get(spec.resource_name, 0)
        if devices > 0:
            free.append(devices)
            names.append(node.name)
    return Capacity(tuple(free), tuple(names))


def without(capacity: Capacity, devices: int) -> Capacity:
    """Capacity less ``devices`` held by children the operator must not touch (an invalid pool's or
    class's running replicas), taken from the largest free nodes first."""
    free = list(capacity.free)
    while devices > 0 and free:
        i = max(range(len(free)), key=lambda j: free[j])
        if free[i] == 0:  # more held than there is (nodes went away): nothing left to take
            break
        used = min(free[i], devices)
        free[i] -= used
        devices -= used
    keep = [i for i, f in enumerate(free) if f > 0]
    names = tuple(capacity.names[i] for i in keep) if capacity.names else ()
    return Capacity(tuple(free[i] for i in keep), names)
