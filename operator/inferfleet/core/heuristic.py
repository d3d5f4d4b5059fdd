"""Fast placement without a solver: the greedy start, and the repair that makes any count vector fit.

``greedy`` walks pools from the highest priority down (bigger demand first within a priority) and
gives each the cheapest $/rps options that still fit the remaining power budgets and the actual
nodes (best fit on a histogram of free devices per class), so its result always packs.  ``repair``
takes replica counts from a relaxation or a time-limited solve, drops what breaks a budget or a
node packing (lowest priority first), and fills the gaps greedily.  Both are deterministic.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from inferfleet.core.formulation import Compiled

__all__ = ["Fleet", "greedy", "repair"]

FloatArray = npt.NDArray[np.float64]
EPS = 1e-9


class Fleet:
    """Remaining power per budgeted domain and free devices per class (a histogram of nodes)."""

    def __init__(self, comp: Compiled) -> None:
        self.comp = comp
        self.power = comp.budgets.astype(np.float64).copy()
        self.nodes: list[dict[int, int]] = []
        for cls in comp.problem.classes:
            hist: dict[int, int] = {}
            for f in cls.node_free_devices:
                if f > 0:
                    hist[f] = hist.get(f, 0) + 1
            self.nodes.append(hist)

    def fits(self, j: int) -> bool:
        comp = self.comp
        d = int(comp.class_domain[comp.col_class[j]])
        if d >= 0 and self.power[d] + EPS < comp.watts[j]:
            return False
        size = int(comp.devices[j])
        return any(f >= size and k > 0 for f, k in self.nodes[int(comp.col_class[j])].items())

    def place(self, j: int) -> bool:
        """Put one replica of column ``j`` on the best-fitting node; False if it does not fit."""
        comp = self.comp
        d = int(comp.class_domain[comp.col_class[j]])
        if d >= 0 and self.power[d] + EPS < comp.watts[j]:
            return False
        size = int(comp.devices[j])
        hist = self.nodes[int(comp.col_class[j])]
        best = min((f for f, k in hist.items() if f >= size and k > 0), default=None)
        if best is None:
            return False
        hist[best] -= 1
        if hist[best] == 0:
            del hist[best]
        if best - size > 0:
            hist[best - size] = hist.get(best - size, 0) + 1
        if d >= 0:
            self.power[d] -= comp.watts[j]
        return True


def _pool_order(comp: Compiled) -> npt.NDArray[np.int64]:
    return np.lexsort((np.arange(comp.n_pools), -comp.need, comp.level)).astype(np.int64)


def _columns_by_pool(comp: Compiled) -> list[npt.NDArray[np.int64]]:
    bounds = np.searchsorted(comp.col_pool, np.arange(comp.n_pools + 1))
    return [np.arange(bounds[p], bounds[p + 1], dtype=np.int64) for p in range(comp.n_pools)]


def _fill_pool(comp: Compiled, fleet: Fleet, p: int, cols: npt.NDArray[np.int64], n: FloatArray) -> None:
    """Add replicas to pool ``p`` until its demand and minimum are met or nothing more fits."""
    if len(cols) == 0:
        return
    cols = cols[comp.ub[cols] > 0]
    ratio = comp.cost[cols] / comp.rps[cols] * np.where(comp.preferred[cols], 0.999, 1.0)
    order = cols[np.lexsort((cols, ratio))]
    count = float(n[cols].sum())
    left = comp.need[p] - float(n[cols] @ comp.rps[cols])
    max_r = comp.max_r[p]
    for j in order:
        while left > EPS and count < max_r and n[j] < comp.ub[j]:
            if left < comp.rps[j]:
                # last replica: the cheapest single replica that covers the rest may beat this one
                cover = [k for k in order if comp.rps[k] >= left and n[k] < comp.ub[k] and fleet.fits(int(k))]
                if cover:
                    k = min(cover, key=lambda c: (comp.cost[c], c))
                    if comp.cost[k] < comp.cost[j] and fleet.place(int(k)):
                        n[k] += 1
                        count += 1
                        left -= comp.rps[k]
                        break
            if not fleet.place(int(j)):
                break
            n[j] += 1
            count += 1
            left -= comp.rps[j]
    by_cost = cols[np.lexsort((cols, comp.cost[cols]))]
    for j in by_cost:
        while count < comp.min_r[p] and count < max_r and n[j] < comp.ub[j] and fleet.place(int(j)):
            n[j] += 1
            count += 1


def greedy(comp: Compiled) -> FloatArray:
    """Replica counts per column: highest priority first, cheapest $/rps that fits."""
    n = np.zeros(comp.n_cols, dtype=np.float64)
    fleet = Fleet(comp)
    cols_of = _columns_by_pool(comp)
    for p in _pool_order(comp):
        _fill_pool(comp, fleet, int(p), cols_of[int(p)], n)
    return n


def repair(comp: Compiled, counts: FloatArray) -> FloatArray:
    """Integral counts that fit every budget and node, as close to ``counts`` as greedily possible.

    Replicas are kept in priority order (highest first, the cheaper $/rps first within a pool); what
    no longer fits is dropped, and the pools left short are then topped up greedily.
    """
    n = np.zeros(comp.n_cols, dtype=np.float64)
    want = np.floor(np.asarray(counts, dtype=np.float64) + 1e-6)
    fleet = Fleet(comp)
    # Place what is wanted in one first-fit-decreasing pass (bigger replicas first, then priority):
    # counts that satisfy the threshold rows always pack when sizes divide each other.
    cols = np.flatnonzero(want > 0)
    for j in cols[np.lexsort((cols, comp.level[comp.col_pool[cols]], -comp.devices[cols]))]:
        for _ in range(int(want[j])):
            if not fleet.place(int(j)):
                break
            n[j] += 1
    cols_of = _columns_by_pool(comp)
    order = _pool_order(comp)
    for p in order:
        _fill_pool(comp, fleet, int(p), cols_of[int(p)], n)
    return n
