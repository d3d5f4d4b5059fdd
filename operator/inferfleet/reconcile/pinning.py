"""Replicas held at the gate until each is pinned to the node the plan packed it on (pure).

Owns how the plan's node-by-node packing (``core.packing``) is realised: every replica starts with
the ``inferfleet.dev/placement`` scheduling gate, so the scheduler leaves it alone; each round, gated
replicas get a planned node with room (``Pin``: the operator adds ``kubernetes.io/hostname`` to
their nodeSelector and lifts the gate, which Kubernetes allows while a pod is gated), and the
scheduler then binds them there.  This is how Kueue's topology-aware scheduling ungates pods; it
keeps the stock scheduler and makes its arrival order irrelevant.  A pinned replica the scheduler
still cannot place after ``PIN_TIMEOUT_S`` (its node went away, or filled up behind the plan's back)
is deleted (``Unpin``), and its ReplicaSet makes a fresh gated one that the next round pins again.

Also owns ``assignment``: per (pool, class) and node, the replicas the plan puts there, from the
plan and the problem's nodes, with incumbents kept where they run.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from inferfleet.api import labels
from inferfleet.core import packing
from inferfleet.core import types as core
from inferfleet.reconcile.ports import Obj

__all__ = ["PIN_TIMEOUT_S", "Assignment", "Pin", "Unpin", "assignment", "counts", "pins"]

PIN_TIMEOUT_S = 60.0
Key = tuple[str, str]  # ("namespace/pool", class)


@dataclasses.dataclass(frozen=True)
class Pin:
    """Lift a replica's gate, pinning it to ``node`` (None: lift only, the scheduler chooses)."""

    namespace: str
    name: str
    node: str | None


@dataclasses.dataclass(frozen=True)
class Unpin:
    namespace: str
    name: str
    node: str
    why: str  # the scheduler's message, or why the packing moves it


@dataclasses.dataclass(frozen=True)
class Assignment:
    """The plan node by node: (pool, class) -> node -> replicas; replicas that fit on no node; and
    running replicas to take off a node to make room (``core.packing``)."""

    per_node: dict[Key, dict[str, int]]
    unplaced: dict[Key, int]
    moves: dict[Key, dict[str, int]]


def counts(placed: Mapping[Key, Mapping[str, Sequence[str]]]) -> dict[Key, dict[str, int]]:
    return {k: {n: len(pods) for n, pods in nodes.items()} for k, nodes in placed.items()}


def assignment(
    plan: core.Plan,
    problem: core.Problem,
    placed: Mapping[Key, Mapping[str, Sequence[str]]],
    pending: Sequence[Obj] = (),
) -> Assignment:
    """Every class whose nodes are known, packed (a class without node names is not pinned); the
    incumbents are the bound replicas and those pinned but not bound yet."""
    by_class: dict[str, dict[Key, tuple[int, int]]] = {}
    for pp in plan.pools:
        for pl in pp.placements:
            if pl.replicas > 0:
                by_class.setdefault(pl.accelerator_class, {})[(pp.key, pl.accelerator_class)] = (
                    pl.replicas,
                    pl.devices // pl.replicas,
                )
    out = Assignment({}, {}, {})
    running = counts(placed)
    for pod in pending:
        owner, host = _key(pod), _pinned_to(pod)
        if owner is not None and host is not None and not _gated(pod):
            running.setdefault(owner, {})[host] = running.get(owner, {}).get(host, 0) + 1
    for cls in problem.classes:
        demand = by_class.get(cls.name)
        if not demand or not cls.node_names:
            continue
        nodes = list(zip(cls.node_names, cls.node_free_devices, strict=True))
        packed = packing.pack(demand, nodes, {k: running.get(k, {}) for k in demand})
        out.per_node.update(packed.per_node)
        out.unplaced.update(packed.unplaced)
        out.moves.update(packed.moves)
    return out


def _order(pod: Obj) -> tuple[str, str]:
    meta = pod.get("metadata") or {}
    return str(meta.get("namespace")), str(meta.get("name"))


def _key(pod: Obj) -> Key | None:
    meta = pod.get("metadata") or {}
    pod_labels = meta.get("labels") or {}
    pool, cls = pod_labels.get(labels.POOL), pod_labels.get(labels.ACCELERATOR_CLASS)
    return (f"{meta.get('namespace')}/{pool}", str(cls)) if pool and cls else None


def _gated(pod: Obj) -> bool:
    return any(
        g.get("name") == labels.PLACEMENT_GATE for g in (pod.get("spec") or {}).get("schedulingGates") or ()
    )


def _pinned_to(pod: Obj) -> str | None:
    return ((pod.get("spec") or {}).get("nodeSelector") or {}).get(labels.HOSTNAME)


def _unschedulable_since(pod: Obj) -> tuple[float, str] | None:
    for c in (pod.get("status") or {}).get("conditions") or ():
        if (
            c.get("type") == "PodScheduled"
            and c.get("status") == "False"
            and c.get("reason") == "Unschedulable"
        ):
            try:
                t = datetime.datetime.fromisoformat(str(c.get("lastTransitionTime")).replace("Z", "+00:00"))
            except ValueError:
                return None
            return t.timestamp(), str(c.get("message") or "")
    return None


def pins(
    wanted: Assignment,
    placed: Mapping[Key, Mapping[str, Sequence[str]]],
    pending: Sequence[Obj],
    now: float,
    unpinned: Callable[[Key], bool] = lambda _k: False,
    timeout_s: float = PIN_TIMEOUT_S,
) -> tuple[list[Pin], list[Unpin]]:
    """The gated replicas to pin now (to planned nodes with room: planned, less bound, less pinned
    and not yet bound), the pinned ones to give up on (unschedulable for ``timeout_s``) and the
    running ones the packing moves to make room (deleted: their ReplicaSets make gated ones).
    Replicas of ``unpinned`` keys (a class with no known nodes, e.g. a capacity override; children
    the operator must leave alone) and of classes whose nodeSelector names a host already have
    their gate lifted with no pin."""
    bound = counts(placed)
    unpins: list[Unpin] = []
    for key, nodes in sorted(wanted.moves.items()):
        for node, n in sorted(nodes.items()):
            for name in sorted(placed.get(key, {}).get(node, ()))[:n]:
                why = "moved to make room for a bigger replica on this node"
                unpins.append(Unpin(key[0].split("/")[0], name, node, why))
                bound[key][node] -= 1
    room: dict[Key, dict[str, int]] = {
        k: {n: c - bound.get(k, {}).get(n, 0) for n, c in nodes.items()}
        for k, nodes in wanted.per_node.items()
    }
    out: list[Pin] = []
    gated: list[tuple[Key, Obj]] = []
    for pod in sorted(pending, key=_order):
        owner = _key(pod)
        if owner is None:
            continue
        meta: dict[str, Any] = pod.get("metadata") or {}
        host = _pinned_to(pod)
        if _gated(pod):
            if host is None and not unpinned(owner):
                gated.append((owner, pod))
            else:  # nothing to pin it to: the scheduler chooses, as without pinning
                out.append(Pin(str(meta.get("namespace")), str(meta.get("name")), None))
            continue
        if host is None:
            continue
        if owner in room and host in room[owner]:
            room[owner][host] -= 1
        stuck = _unschedulable_since(pod)
        if stuck is not None and now - stuck[0] >= timeout_s:
            unpins.append(Unpin(str(meta.get("namespace")), str(meta.get("name")), host, stuck[1]))
    for key, pod in gated:
        nodes = room.get(key, {})
        free = sorted((n for n, r in nodes.items() if r > 0), key=lambda n: (-nodes[n], n))
        if not free:
            continue  # no planned room (yet): it waits at the gate
        meta = pod.get("metadata") or {}
        out.append(Pin(str(meta.get("namespace")), str(meta.get("name")), free[0]))
        nodes[free[0]] -= 1
    return out, unpins
