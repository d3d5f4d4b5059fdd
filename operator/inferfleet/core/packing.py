"""Which node each planned replica runs on: the one packing routine of a class's nodes.

Owns ``pack``: given the replicas the plan puts on one class (per key, a count and the devices of
one replica), the class's nodes with their free devices, and where replicas of each key run now,
return per key and node how many replicas go there.  Replicas that run now stay where they are
(up to the planned count: moving a loaded model costs a reload); the rest are placed biggest first,
each on the fitting node with the least room left (best-fit decreasing), so large replicas are not
starved by small ones filling every node; one that still fits nowhere may move smaller running
replicas off a node (``moves``) when they fit elsewhere.  Should that greedy fall short (odd sizes),
the exact packing the planner counted on (``patterns.pack``) is used, incumbents keeping their
slots where they can.  Replicas that fit nowhere even then are returned as unplaced: the caller
says so rather than let them wait unexplained.  Pure and
deterministic: ties go by node name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Mapping, Sequence
from typing import Generic, TypeVar

from inferfleet.core import patterns

__all__ = ["Packing", "pack"]

K = TypeVar("K", bound=Hashable)


@dataclasses.dataclass(frozen=True)
class Packing(Generic[K]):
    per_node: dict[K, dict[str, int]]  # key -> node -> replicas
    unplaced: dict[K, int]  # key -> replicas that fit on no node
    # key -> node -> running replicas to take off that node (they go where per_node says): the
    # moves that make room for a bigger replica that fits nowhere else
    moves: dict[K, dict[str, int]] = dataclasses.field(default_factory=dict)

    @property
    def placed(self) -> int:
        return sum(n for nodes in self.per_node.values() for n in nodes.values())


def _best_fit(
    free: Mapping[str, int], size: int, order: Mapping[str, int], skip: str | None = None
) -> str | None:
    fits = [n for n, f in free.items() if f >= size and n != skip]
    return min(fits, key=lambda n: (free[n] - size, order[n])) if fits else None


def pack(
    demand: Mapping[K, tuple[int, int]],
    nodes: Sequence[tuple[str, int]],
    running: Mapping[K, Mapping[str, int]] | None = None,
) -> Packing[K]:
    """``demand``: key -> (replicas, devices per replica); ``nodes``: (name, free devices) of the
    class; ``running``: key -> node -> replicas there now (nodes not listed are not used).

    A replica that fits nowhere may move smaller running ones off one node to make room, when
    each of them fits elsewhere (the fewest moves, then node order): a move costs a reload, a
    replica Pending forever costs its demand."""
    free = {name: devices for name, devices in nodes}
    order = {name: i for i, (name, _) in enumerate(sorted(nodes))}
    per_node: dict[K, dict[str, int]] = {k: {} for k in demand}
    kept: dict[K, dict[str, int]] = {k: {} for k in demand}  # incumbents, by node
    left = {k: count for k, (count, _) in demand.items()}
    for key in sorted(demand, key=repr):  # incumbents first, where they are
        size = demand[key][1]
        for node, here in sorted((running or {}).get(key, {}).items()):
            if node not in free or size <= 0:
                continue
            keep = min(here, left[key], free[node] // size)
            if keep > 0:
                per_node[key][node] = kept[key][node] = keep
                free[node] -= keep * size
                left[key] -= keep
    unplaced: dict[K, int] = {}
    moves: dict[K, dict[str, int]] = {}
    for key in sorted(demand, key=lambda k: (-demand[k][1], repr(k))):  # biggest replicas first
        size = demand[key][1]
        for _ in range(left[key]):
            spot = _best_fit(free, size, order) or _make_room(
                size, free, order, kept, demand, per_node, moves
            )
            if spot is None:
                unplaced[key] = unplaced.get(key, 0) + 1
                continue
            per_node[key][spot] = per_node[key].get(spot, 0) + 1
            free[spot] -= size
    if unplaced:  # the greedy fell short (odd sizes): the exact packing the planner counted on
        exact = _exact(demand, nodes, kept)
        if exact is not None:
            return exact
    return Packing({k: v for k, v in per_node.items() if v}, unplaced, moves)


def _exact(
    demand: Mapping[K, tuple[int, int]], nodes: Sequence[tuple[str, int]], kept: Mapping[K, Mapping[str, int]]
) -> Packing[K] | None:
    """Every replica placed by ``patterns.pack`` (exact for any sizes), its slots given first to the
    replicas already there; the incumbents left without a slot move."""
    by_size: dict[int, int] = {}
    for count, size in demand.values():
        by_size[size] = by_size.get(size, 0) + count
    slots = patterns.pack(by_size, [f for _, f in nodes])
    if slots is None:
        return None
    left = {k: count for k, (count, _) in demand.items()}
    per_node: dict[K, dict[str, int]] = {k: {} for k in demand}
    open_slots = [(name, dict(node_slots)) for (name, _), node_slots in zip(nodes, slots, strict=True)]
    for name, node_slots in open_slots:  # incumbents keep their node where a slot of their size is
        for key in sorted(demand, key=repr):
            size = demand[key][1]
            take = min(kept.get(key, {}).get(name, 0), node_slots.get(size, 0), left[key])
            if take:
                per_node[key][name] = take
                node_slots[size] -= take
                left[key] -= take
    for name, node_slots in open_slots:
        for key in sorted(demand, key=repr):
            size = demand[key][1]
            take = min(node_slots.get(size, 0), left[key])
            if take:
                per_node[key][name] = per_node[key].get(name, 0) + take
                node_slots[size] -= take
                left[key] -= take
    moves: dict[K, dict[str, int]] = {}
    for key, where in kept.items():
        for name, n in where.items():
            if (gone := n - per_node.get(key, {}).get(name, 0)) > 0:
                moves.setdefault(key, {})[name] = gone
    return Packing({k: v for k, v in per_node.items() if v}, {}, moves)


def _make_room(
    size: int,
    free: dict[str, int],
    order: Mapping[str, int],
    kept: dict[K, dict[str, int]],
    demand: Mapping[K, tuple[int, int]],
    per_node: dict[K, dict[str, int]],
    moves: dict[K, dict[str, int]],
) -> str | None:
    """Free one node for a replica of ``size`` by moving smaller incumbents elsewhere; returns the
    node (the moves recorded, ``free`` and ``per_node`` updated) or None when no node can be freed."""
    best: tuple[int, int, str, list[tuple[K, str]]] | None = None
    for node in sorted(free, key=lambda n: order[n]):
        victims = sorted(
            (demand[k][1], repr(k), k)
            for k, nodes in kept.items()
            for _ in range(nodes.get(node, 0))
            if demand[k][1] < size
        )
        trial, room, chosen = dict(free), free[node], []
        for vsize, _, k in victims:
            if room >= size:
                break
            room += vsize
            chosen.append(k)
        if room < size:
            continue
        trial[node] = room - size
        targets = []
        for k in sorted(chosen, key=lambda k: -demand[k][1]):
            target = _best_fit(trial, demand[k][1], order, skip=node)
            if target is None:
                break
            trial[target] -= demand[k][1]
            targets.append((k, target))
        else:
            if best is None or (len(chosen), order[node]) < (best[0], best[1]):
                best = (len(chosen), order[node], node, targets)
    if best is None:
        return None
    _, _, node, targets = best
    for k, target in targets:
        vsize = demand[k][1]
        kept[k][node] -= 1
        per_node[k][node] -= 1
        if not per_node[k][node]:
            del per_node[k][node]
        moves.setdefault(k, {})[node] = moves.get(k, {}).get(node, 0) + 1
        free[node] += vsize
        per_node[k][target] = per_node[k].get(target, 0) + 1
        free[target] -= vsize
    return node
