"""Node capacity, exactly: which replica counts fit on a class's nodes, for any replica size.

A replica of ``d`` devices must fit on one node; the replicas of every pool on a class share its
nodes (``node_free_devices``).  Three exact encodings, chosen per class from the replica sizes that
can be placed on it (:func:`class_supply`):

* **threshold rows**, when the sizes form a divisibility chain (each divides the next larger one,
  as powers of two do): per size ``s``, ``sum_{d >= s} d n_d <= sum_i floor(f_i / s) s``.  Exact:
  placed largest first, a node's room in whole replicas of the next smaller size is what it was
  less what was placed, however the larger ones were placed (each size divides the next), so each
  size meets one aggregate condition.  Built by :mod:`~inferfleet.core.formulation`.
* **patterns**, otherwise, while the class has at most ``PATTERN_CAP`` of them: nodes grouped by
  free devices; per group every *maximal* pattern (how many replicas of each size one node holds
  with no room left for another); integer ``y_gp`` = nodes of group ``g`` packed as pattern ``p``,
  ``sum_p y_gp <= nodes in g``, and per size ``sum_gp a_ps y_gp >= replicas of size s``.  Exact
  (any packing is dominated by maximal patterns), and its relaxation is Gilmore and Gomory's.
* **per node**, when there are more patterns than that (many odd sizes on racks of hundreds of
  devices): integer ``x_is`` = replicas of size ``s`` on node ``i``, ``sum_s s x_is <= f_i``, per
  size ``sum_i x_is >= replicas of size s``.  Exact, with a weaker relaxation.

Patterns and per-node columns are :class:`Supply` columns: column ``k`` holds ``holds[k]`` replicas
of each size and uses ``use[k]`` of its group's capacity.  This module also owns the exact packing
check (:func:`pack`, :func:`fits`): per-node counts for given replicas, by best fit decreasing (exact
for a chain) and, when that fails on other sizes, the pattern model in HiGHS.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt

from inferfleet.core.highs import INF, Solver, SparseModel

__all__ = [
    "PATTERN_CAP",
    "Supply",
    "class_supply",
    "fits",
    "fits_greedily",
    "is_chain",
    "maximal_patterns",
    "pack",
    "supply_values",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
PATTERN_CAP = 4000  # maximal patterns per class above which its nodes are modelled one by one
PACK_SECONDS = 0.5  # an exact packing check this hard is taken as "does not pack"
# per node (in the class's node order): replicas by size; shared by a cache, so never mutated
Packing = tuple[Mapping[int, int], ...]


def is_chain(sizes: Sequence[int]) -> bool:
    """Whether every size divides the next larger one (threshold rows are then exact)."""
    distinct = sorted(set(sizes))
    return all(b % a == 0 for a, b in itertools.pairwise(distinct))


def maximal_patterns(sizes: Sequence[int], free: int, cap: int = PATTERN_CAP) -> list[tuple[int, ...]] | None:
    """Every maximal packing of one node with ``free`` devices, as counts aligned with ``sizes``
    (ascending, distinct); ``None`` when there are more than ``cap``.

    Maximal: the devices left are fewer than the smallest size that fits, so the count of the
    smallest fitting size follows from the others: one pattern per vector of the larger counts.
    """
    fitting = [i for i, s in enumerate(sizes) if s <= free]
    out: list[tuple[int, ...]] = []
    if not fitting:
        return out
    smallest, larger = fitting[0], fitting[:0:-1]  # the larger fitting sizes, largest first
    counts = [0] * len(sizes)

    def walk(k: int, left: int) -> bool:
        if k == len(larger):
            counts[smallest] = left // sizes[smallest]
            out.append(tuple(counts))
            return len(out) <= cap
        i = larger[k]
        for c in range(left // sizes[i], -1, -1):
            counts[i] = c
            if not walk(k + 1, left - c * sizes[i]):
                return False
        counts[i] = 0
        return True

    return out if walk(0, free) else None


@dataclasses.dataclass(frozen=True, eq=False)
class Supply:
    """The packing columns of one class (module notes).

    Column ``k`` holds ``holds[k, t]`` replicas of size ``sizes[t]`` and puts ``use[k]`` against
    its group's row, ``sum_k use_k col_k <= group_cap[group[k]]``.  Patterns: a group is the nodes
    with one free count, ``use`` 1 and ``group_cap`` their number.  Per node: a group is one node,
    ``use`` the size and ``group_cap`` its free devices.  ``group_nodes`` are the positions of each
    group's nodes in the class's ``node_free_devices``; ``index`` maps (group, pattern) to a column.
    """

    cls: int
    kind: Literal["patterns", "nodes"]
    sizes: tuple[int, ...]
    free: tuple[int, ...]  # the class's node_free_devices
    holds: IntArray  # (columns, sizes)
    group: IntArray
    use: FloatArray
    upper: FloatArray
    group_cap: FloatArray
    group_nodes: tuple[tuple[int, ...], ...]
    index: Mapping[tuple[int, tuple[int, ...]], int]

    @property
    def n_cols(self) -> int:
        return len(self.group)


def class_supply(cls: int, free: Sequence[int], sizes: Sequence[int]) -> Supply:
    """The packing columns of a class whose ``sizes`` (ascending, distinct) are not a chain."""
    by_free: dict[int, list[int]] = {}
    for i, f in enumerate(free):
        if f >= sizes[0]:
            by_free.setdefault(f, []).append(i)
    groups = sorted(by_free)
    patterns: list[list[tuple[int, ...]]] = []
    total = 0
    for f in groups:
        found = maximal_patterns(sizes, f, PATTERN_CAP - total)
        if found is None:
            break
        patterns.append(found)
        total += len(found)
    holds: list[tuple[int, ...]] = []
    group: list[int] = []
    use: list[float] = []
    upper: list[float] = []
    cap: list[float] = []
    index: dict[tuple[int, tuple[int, ...]], int] = {}
    if len(patterns) == len(groups):
        for g, (f, found) in enumerate(zip(groups, patterns, strict=True)):
            cap.append(float(len(by_free[f])))
            for p in found:
                index[(g, p)] = len(holds)
                holds.append(p)
                group.append(g)
                use.append(1.0)
                upper.append(float(len(by_free[f])))
        kind: Literal["patterns", "nodes"] = "patterns"
        group_nodes = tuple(tuple(by_free[f]) for f in groups)
    else:
        nodes = [i for i in range(len(free)) if free[i] >= sizes[0]]
        for g, i in enumerate(nodes):
            cap.append(float(free[i]))
            for t, s in enumerate(sizes):
                if s <= free[i]:
                    unit = tuple(1 if u == t else 0 for u in range(len(sizes)))
                    index[(g, unit)] = len(holds)
                    holds.append(unit)
                    group.append(g)
                    use.append(float(s))
                    upper.append(float(free[i] // s))
        kind = "nodes"
        group_nodes = tuple((i,) for i in nodes)
    return Supply(
        cls=cls,
        kind=kind,
        sizes=tuple(sizes),
        free=tuple(free),
        holds=np.array(holds, dtype=np.int64).reshape(len(holds), len(sizes)),
        group=np.array(group, dtype=np.int64),
        use=np.array(use, dtype=np.float64),
        upper=np.array(upper, dtype=np.float64),
        group_cap=np.array(cap, dtype=np.float64),
        group_nodes=group_nodes,
        index=index,
    )


def supply_values(supply: Supply, counts: Sequence[int]) -> FloatArray | None:
    """Values of the supply columns for a packing of ``counts[t]`` replicas of ``sizes[t]``
    (``None`` when they do not fit)."""
    packing = pack(dict(zip(supply.sizes, counts, strict=True)), supply.free)
    if packing is None:
        return None
    x = np.zeros(supply.n_cols, dtype=np.float64)
    for g, nodes in enumerate(supply.group_nodes):
        for i in nodes:
            held = [packing[i].get(s, 0) for s in supply.sizes]
            if supply.kind == "nodes":
                for t, k in enumerate(held):
                    if k:
                        unit = tuple(1 if u == t else 0 for u in range(len(supply.sizes)))
                        x[supply.index[(g, unit)]] = k
                continue
            # extend to a maximal pattern: add the largest replica that still fits until none does
            left = supply.free[i] - sum(k * s for k, s in zip(held, supply.sizes, strict=True))
            for t in range(len(supply.sizes) - 1, -1, -1):
                more = left // supply.sizes[t]
                held[t] += more
                left -= more * supply.sizes[t]
            x[supply.index[(g, tuple(held))]] += 1
    return x


def fits(sizes: Sequence[int], free: Sequence[int]) -> bool:
    """Whether replicas of ``sizes`` devices each fit on nodes with ``free`` devices (exact)."""
    counts: dict[int, int] = {}
    for s in sizes:
        counts[s] = counts.get(s, 0) + 1
    if is_chain(list(counts)):  # the threshold conditions, on a histogram (100k replicas: ms)
        hist: dict[int, int] = {}
        for f in free:
            if f > 0:
                hist[f] = hist.get(f, 0) + 1
        above = 0
        for s in sorted(counts, reverse=True):
            above += s * counts[s]
            if above > sum((f // s) * s * k for f, k in hist.items()):
                return False
        return True
    return pack(counts, free) is not None


def fits_greedily(counts: Mapping[int, int], free: Sequence[int]) -> bool:
    """Whether best fit decreasing packs ``counts[s]`` replicas of ``s`` devices (a sufficient
    condition; exact for a chain)."""
    key = tuple(sorted((s, k) for s, k in counts.items() if k > 0))
    return _best_fit(key, tuple(free)) is not None


def pack(counts: Mapping[int, int], free: Sequence[int], seconds: float = PACK_SECONDS) -> Packing | None:
    """Replicas by size on each node (the order of ``free``) holding ``counts[s]`` replicas of ``s``
    devices, or ``None`` when no packing exists (or none was found within ``seconds``, at most
    ``PACK_SECONDS``: best fit decreasing is tried first and solves all but odd mixes at once)."""
    key = tuple(sorted((s, k) for s, k in counts.items() if k > 0))
    nodes = tuple(free)
    known = _settled(key, nodes)
    if known is False:
        known = _SOLVED.get((key, nodes), False)
    if known is not False:
        return known
    found, settled = _solve(key, nodes, min(seconds, PACK_SECONDS))
    if settled:
        if len(_SOLVED) >= 4096:
            _SOLVED.clear()  # a bound on memory; safe from any thread (no iteration)
        _SOLVED[(key, nodes)] = found
    return found


_SOLVED: dict[tuple[tuple[tuple[int, int], ...], tuple[int, ...]], Packing | None] = {}


@functools.lru_cache(maxsize=4096)
def _settled(counts: tuple[tuple[int, int], ...], free: tuple[int, ...]) -> Packing | Literal[False] | None:
    """The answer without a solver where there is one (``False``: the solver must say)."""
    if not counts:
        return tuple({} for _ in free)
    if counts[-1][0] > max(free, default=0) or sum(s * k for s, k in counts) > sum(max(f, 0) for f in free):
        return None
    found = _best_fit(counts, free)
    if found is not None or is_chain([s for s, _ in counts]):
        return found  # best fit decreasing is exact for a chain
    return False


def _best_fit(counts: tuple[tuple[int, int], ...], free: tuple[int, ...]) -> Packing | None:
    """Largest replicas first, each onto a node with the least room that still holds it (nodes
    bucketed by room, so a replica costs one pass over the distinct room values)."""
    out: list[dict[int, int]] = [{} for _ in free]
    rooms: dict[int, list[int]] = {}
    for i in range(len(free) - 1, -1, -1):  # popped from the end: lowest index first
        if free[i] > 0:
            rooms.setdefault(free[i], []).append(i)
    for size, k in reversed(counts):
        for _ in range(k):
            best = min((f for f in rooms if f >= size), default=None)
            if best is None:
                return None
            nodes = rooms[best]
            i = nodes.pop()
            if not nodes:
                del rooms[best]
            if best > size:
                rooms.setdefault(best - size, []).append(i)
            out[i][size] = out[i].get(size, 0) + 1
    return tuple(out)


def _solve(
    counts: tuple[tuple[int, int], ...], free: tuple[int, ...], seconds: float
) -> tuple[Packing | None, bool]:
    """A packing from the class's supply columns with every replica of ``counts`` held, and whether
    HiGHS settled the question (found one, or proved there is none) within ``seconds``."""
    sizes = [s for s, _ in counts]
    supply = class_supply(0, free, sizes)
    n, t = supply.n_cols, len(sizes)
    # rows: groups (sum use x <= cap), then per size (sum holds x >= count)
    size_rows = len(supply.group_cap) + np.repeat(np.arange(t)[None, :], n, 0).ravel()
    rows = np.concatenate([supply.group, size_rows])
    cols = np.concatenate([np.arange(n), np.repeat(np.arange(n), t)])
    vals = np.concatenate([supply.use, supply.holds.ravel().astype(np.float64)])
    keep = vals != 0
    rows, cols, vals = rows[keep], cols[keep], vals[keep]
    order = np.lexsort((rows, cols))
    start = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(cols, minlength=n), out=start[1:])
    model = SparseModel(
        col_cost=np.zeros(n),
        col_lower=np.zeros(n),
        col_upper=supply.upper,
        row_lower=np.concatenate([np.full(len(supply.group_cap), -INF), [float(k) for _, k in counts]]),
        row_upper=np.concatenate([supply.group_cap, np.full(t, INF)]),
        start=start,
        index=rows[order].astype(np.int64),
        value=vals[order],
        n_int=n,
    )
    h = Solver({"threads": 1, "random_seed": 1729, "presolve": "off"})
    h.pass_model(model)
    res = h.run(seconds)
    if not res.ok:
        return None, res.status == "Infeasible"
    x = np.round(res.values).astype(np.int64)
    out: list[dict[int, int]] = [{} for _ in free]
    used = [False] * len(free)
    need = dict(counts)
    for (g, held), k in sorted(supply.index.items(), key=lambda kv: kv[1]):
        nodes = supply.group_nodes[g]
        for _ in range(int(x[k])):
            # patterns: the next node of the group without a pattern; per node: the group's node
            i = nodes[0] if supply.kind == "nodes" else next(i for i in nodes if not used[i])
            used[i] = True
            for s, c in zip(sizes, held, strict=True):
                take = min(c, need[s])
                if take:
                    out[i][s] = out[i].get(s, 0) + take
                    need[s] -= take
    return (tuple(out), True) if all(v == 0 for v in need.values()) else (None, False)
