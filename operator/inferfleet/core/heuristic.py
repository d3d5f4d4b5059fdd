"""Fast placement without a solver: the greedy start, and the repair that makes any count vector fit.

``greedy`` walks pools from the highest priority down (bigger demand first within a priority) and
gives each the cheapest $/rps options that still fit the remaining power budgets and the actual
nodes (best fit on a histogram of free devices per class), so its result always packs.  ``repair``
takes replica counts from a relaxation or a solver, places them first-fit-decreasing (counts that
satisfy the threshold rows always pack when replica sizes divide each other; on a class with other
sizes the whole lot is packed exactly first, :func:`~inferfleet.core.patterns.pack`, so a solver's
plan that packs is kept as it is), rounds fractions up where the pool is short and fills what is
still missing greedily.  Both are deterministic.

A size-aware pool is filled by what its best split serves (:func:`_fill_split`): fractions
rounded up first, then, while short, replicas of the option that adds the most served demand per
dollar, as many at once as that option's first replica's gain says the rest needs (the served
fraction is concave in each option's count, so this never overshoots by more than one step).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from inferfleet.core.formulation import Compiled, pool_split, split_of
from inferfleet.core.patterns import is_chain, pack

__all__ = ["Fleet", "greedy", "repair"]

FloatArray = npt.NDArray[np.float64]
EPS = 1e-9


class Fleet:
    """Remaining power per budgeted domain and free devices per class (a histogram of nodes)."""

    def __init__(self, comp: Compiled) -> None:
        self.power = [float(b) for b in comp.budgets]
        self.nodes: list[dict[int, int]] = []
        for cls in comp.problem.classes:
            hist: dict[int, int] = {}
            for f in cls.node_free_devices:
                if f > 0:
                    hist[f] = hist.get(f, 0) + 1
            self.nodes.append(hist)
        self.dom = [int(comp.class_domain[c]) for c in comp.col_class]
        self.cls = comp.col_class.tolist()
        self.size = [int(d) for d in comp.devices]
        self.watts = comp.watts.tolist()

    def take(self, cls: int, left: list[int], domain: int, watts: float) -> None:
        """Replace class ``cls``'s nodes by ``left`` (their free devices after a packing) and draw
        ``watts`` from ``domain`` (-1: none)."""
        hist: dict[int, int] = {}
        for f in left:
            if f > 0:
                hist[f] = hist.get(f, 0) + 1
        self.nodes[cls] = hist
        if domain >= 0:
            self.power[domain] -= watts

    def place(self, j: int, count: int = 1) -> int:
        """Put up to ``count`` replicas of column ``j`` on the best-fitting nodes; how many fit."""
        d, size, w = self.dom[j], self.size[j], self.watts[j]
        if d >= 0 and w > 0:
            count = min(count, int((self.power[d] + EPS) // w))
        hist = self.nodes[self.cls[j]]
        placed = 0
        while placed < count:
            best = min((f for f in hist if f >= size), default=None)
            if best is None:
                break
            per_node = best // size
            nodes = hist[best]
            k = min(nodes, (count - placed) // per_node) if per_node else 0
            if k >= 1:  # fill k whole nodes
                take = k * per_node
                self._move(hist, best, best - per_node * size, k)
            else:  # one node, partly
                take = count - placed
                self._move(hist, best, best - take * size, 1)
            placed += take
        if d >= 0:
            self.power[d] -= placed * w
        return placed

    @staticmethod
    def _move(hist: dict[int, int], old: int, new: int, nodes: int) -> None:
        hist[old] -= nodes
        if hist[old] == 0:
            del hist[old]
        if new > 0:
            hist[new] = hist.get(new, 0) + nodes


class _Pools:
    """Per-pool column lists in plain Python (the loops below run per replica)."""

    def __init__(self, comp: Compiled) -> None:
        bounds = np.searchsorted(comp.col_pool, np.arange(comp.n_pools + 1)).tolist()
        self.cols = [range(bounds[p], bounds[p + 1]) for p in range(comp.n_pools)]
        self.cost = comp.cost.tolist()
        self.rps = comp.rps_fill.tolist()
        self.ub = comp.ub.tolist()
        fill = np.where(comp.rps_fill > 0, comp.rps_fill, np.inf)
        ratio = comp.cost / fill * np.where(comp.preferred, 0.999, 1.0)
        self.ratio = ratio.tolist()
        self.need = comp.need.tolist()
        self.min_r = comp.min_r.tolist()
        self.max_r = comp.max_r.tolist()
        self.order = np.lexsort((np.arange(comp.n_pools), -comp.need, comp.level)).tolist()


def _fill_pool(pools: _Pools, fleet: Fleet, p: int, n: FloatArray, first: list[int]) -> None:
    """Add replicas to pool ``p`` until its demand and minimum are met or nothing more fits.

    ``first`` are columns to round up by one replica before anything else (while still short).
    """
    cols = [j for j in pools.cols[p] if pools.ub[j] > 0 and pools.rps[j] > 0]
    if not cols:
        return
    cost, rps, ub = pools.cost, pools.rps, pools.ub
    have = [float(n[j]) for j in cols]
    count = sum(have)
    left = pools.need[p] - sum(h * rps[j] for h, j in zip(have, cols, strict=True))
    max_r = pools.max_r[p]

    def add(j: int, k: int) -> int:
        nonlocal count, left
        k = fleet.place(j, k) if k > 0 else 0
        n[j] += k
        count += k
        left -= k * rps[j]
        return k

    for j in first:
        if (left > EPS or count < pools.min_r[p]) and count < max_r and n[j] < ub[j]:
            add(j, 1)
    by_cost = sorted(cols, key=lambda c: (cost[c], c))
    for j in sorted(cols, key=lambda c: (pools.ratio[c], c)):
        while left > EPS and count < max_r and n[j] < ub[j]:
            if left < rps[j]:
                # last replica: a cheaper single replica that covers the rest beats this one
                for k in by_cost:
                    if cost[k] >= cost[j]:
                        break
                    if rps[k] >= left and n[k] < ub[k] and add(k, 1):
                        break
                if left <= EPS:
                    break
            whole = max(1, int(left // rps[j]))
            if add(j, int(min(whole, max_r - count, ub[j] - n[j]))) == 0:
                break
    for j in by_cost:
        while count < pools.min_r[p] and count < max_r and n[j] < ub[j]:
            if add(j, int(min(pools.min_r[p] - count, ub[j] - n[j]))) == 0:
                break


def _fill_split(comp: Compiled, pools: _Pools, fleet: Fleet, p: int, n: FloatArray, first: list[int]) -> None:
    """Add replicas to size-aware pool ``p`` until its best split serves its demand, its minimum is
    met, or nothing more fits (module notes); ``first`` are columns to round up by one first."""
    cols = [j for j in pools.cols[p] if pools.ub[j] > 0]
    count = float(sum(n[j] for j in cols))
    max_r, ub, cost = pools.max_r[p], pools.ub, pools.cost

    def add(j: int, k: int) -> int:
        nonlocal count
        k = fleet.place(j, k) if k > 0 else 0
        n[j] += k
        count += k
        return k

    now = pool_split(comp, p, n) if comp.need[p] > 0 else None
    for j in first:
        if now is None or now.served >= 1.0 - EPS or count >= max_r:
            break
        if n[j] < ub[j] and add(j, 1):
            now = pool_split(comp, p, n)
    stuck: set[int] = set()
    while now is not None and now.served < 1.0 - EPS and count < max_r:
        margin = dict(zip(now.cols.tolist(), now.margins.tolist(), strict=True))
        live = [j for j in cols if j not in stuck and n[j] < ub[j] and margin.get(j, 0.0) > EPS]
        if not live:
            break
        best = max(live, key=lambda j: (margin[j] / max(cost[j], 1e-12), -j))
        k = int(min(max(1.0, (1.0 - now.served) // margin[best]), max_r - count, ub[best] - n[best]))
        if add(best, k) == 0:
            stuck.add(best)
            continue
        before = now.served
        now = pool_split(comp, p, n)
        if now.served <= before + EPS:  # a dual above the real gain (a degenerate LP): not again
            stuck.add(best)
    for j in sorted(cols, key=lambda c: (cost[c], c)):
        while count < pools.min_r[p] and count < max_r and n[j] < ub[j]:
            if add(j, int(min(pools.min_r[p] - count, ub[j] - n[j]))) == 0:
                break


def greedy(comp: Compiled) -> FloatArray:
    """Replica counts per column: highest priority first, cheapest $/rps that fits."""
    n = np.zeros(comp.n_cols, dtype=np.float64)
    fleet = Fleet(comp)
    pools = _Pools(comp)
    aware = comp.aware()
    for p in pools.order:
        if aware[p]:
            _fill_split(comp, pools, fleet, p, n, [])
        else:
            _fill_pool(pools, fleet, p, n, [])
    return n


def repair(comp: Compiled, counts: FloatArray) -> FloatArray:
    """Integral counts that fit every budget and node, as close to ``counts`` as greedily possible.

    The whole part of ``counts`` is placed first-fit-decreasing (bigger replicas first, then higher
    priority); then, highest priority first, each short pool rounds its fractions up (largest first)
    and is topped up greedily.
    """
    counts = np.asarray(counts, dtype=np.float64)
    n = np.zeros(comp.n_cols, dtype=np.float64)
    want = np.floor(counts + 1e-6)
    fleet = Fleet(comp)
    cols = np.flatnonzero(want > 0)
    done = _pack_odd_classes(comp, fleet, want, n)
    cols = cols[~done[comp.col_class[cols]]]
    for j in cols[np.lexsort((cols, comp.level[comp.col_pool[cols]], -comp.devices[cols]))].tolist():
        n[j] = fleet.place(j, int(want[j]))
    frac = counts - want
    served = np.bincount(comp.col_pool, weights=n * comp.rps_fill, minlength=comp.n_pools)
    if comp.n_split:  # a size-aware pool serves what its best split does
        served = np.where(comp.aware(), split_of(comp, n)[1] * comp.need, served)
    count = np.bincount(comp.col_pool, weights=n, minlength=comp.n_pools)
    short = ((served < comp.need - EPS) | (count < comp.min_r)) & (count < comp.max_r)
    pools = _Pools(comp)
    aware = comp.aware()
    for p in pools.order:
        if not short[p]:
            continue
        up = [j for j in pools.cols[p] if frac[j] > 1e-6]
        up.sort(key=lambda j: (-frac[j], j))
        if aware[p]:
            _fill_split(comp, pools, fleet, p, n, up)
        else:
            _fill_pool(pools, fleet, p, n, up)
    return n


def _pack_odd_classes(comp: Compiled, fleet: Fleet, want: FloatArray, n: FloatArray) -> npt.NDArray[np.bool_]:
    """Place ``want`` in full on each class whose sizes are not a chain, where it packs exactly and
    its domain's power allows; which classes were placed so (``n`` and ``fleet`` updated)."""
    done = np.zeros(len(comp.problem.classes), dtype=np.bool_)
    for ci, cls in enumerate(comp.problem.classes):
        cols = np.flatnonzero((comp.col_class == ci) & (want > 0))
        if len(cols) == 0 or is_chain([int(d) for d in comp.devices[cols]]):
            continue
        counts: dict[int, int] = {}
        for j in cols.tolist():
            counts[int(comp.devices[j])] = counts.get(int(comp.devices[j]), 0) + int(want[j])
        domain = int(comp.class_domain[ci])
        watts = float(want[cols] @ comp.watts[cols])
        if domain >= 0 and watts > fleet.power[domain] + EPS:
            continue
        packing = pack(counts, cls.node_free_devices)
        if packing is None:
            continue
        left = [
            f - sum(s * k for s, k in node.items())
            for f, node in zip(cls.node_free_devices, packing, strict=True)
        ]
        fleet.take(ci, left, domain, watts)
        n[cols] = want[cols]
        done[ci] = True
    return done
