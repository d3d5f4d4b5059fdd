"""What would change: a plan against what runs now, as typed facts (pure).

Owns ``compute`` and the facts it returns (``Delta``): per pool and class the replicas now and
planned; per power domain watts and $/h now and planned, and whether its budget binds; the
constraints that bind and the pools they bind; the replicas that would move (per pool, the
replicas leaving classes and those joining others: ``moved`` counts them as the churn penalty
does, min(removed, added)); node by node when both sides are known; and the child writes the
operator would make.  Sentences are the report's (``plan.livereport``).

"Now" is valued with the figures the operator recorded for what runs (``per_replica_now``); a
class with none recorded (a replica the operator did not plan) is valued as the plan values it,
and failing that at zero, and named in ``unvalued``.  Planned figures are summed per placement
rounded as status rounds them (watts to the watt, dollars to the cent), so that a plan equal to
what runs shows no delta at all.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping, Sequence
from typing import Any

from inferfleet.api import labels
from inferfleet.core import types as core

__all__ = ["Delta", "DomainDelta", "Move", "NodeMove", "ReplicaDelta", "Write", "WriteVerb", "compute"]

Key = tuple[str, str]  # ("namespace/pool", class)


@dataclasses.dataclass(frozen=True, order=True)
class ReplicaDelta:
    pool: str
    accelerator_class: str
    current: int
    planned: int

    @property
    def delta(self) -> int:
        return self.planned - self.current


@dataclasses.dataclass(frozen=True)
class Move:
    """One pool's replicas leaving classes and joining others (a pure rescale is not a move)."""

    pool: str
    removed: Mapping[str, int]  # class -> replicas fewer
    added: Mapping[str, int]  # class -> replicas more

    @property
    def moved(self) -> int:
        return min(sum(self.removed.values()), sum(self.added.values()))


@dataclasses.dataclass(frozen=True, order=True)
class NodeMove:
    """Replicas of one pool and class fewer or more on one node (node-exact plans only)."""

    pool: str
    accelerator_class: str
    node: str
    current: int
    planned: int


@dataclasses.dataclass(frozen=True)
class DomainDelta:
    name: str
    budget_watts: float | None
    current_watts: float
    planned_watts: float
    current_dollars_per_hour: float
    planned_dollars_per_hour: float
    binding: bool  # the plan is held by this domain's budget (a pool lists power:<domain>)


class WriteVerb(enum.StrEnum):
    APPLY = "apply"
    DELETE = "delete"


@dataclasses.dataclass(frozen=True, order=True)
class Write:
    """A write of a child the operator would make; replicas are None for anything but a
    Deployment's apply."""

    verb: WriteVerb
    kind: str
    namespace: str
    name: str
    accelerator_class: str | None = None
    replicas_before: int | None = None
    replicas_after: int | None = None


@dataclasses.dataclass(frozen=True)
class Delta:
    replicas: tuple[ReplicaDelta, ...]  # every (pool, class) running now or planned
    moves: tuple[Move, ...]
    node_moves: tuple[NodeMove, ...]
    domains: tuple[DomainDelta, ...]
    binding: tuple[tuple[core.Binding, tuple[str, ...]], ...]  # constraint -> the pools it binds
    writes: tuple[Write, ...]
    unvalued: tuple[Key, ...]  # running with no recorded or planned figures (valued at zero)

    @property
    def changed(self) -> bool:
        """The operator would write a child, or the replicas differ from what runs."""
        return bool(self.writes) or any(r.delta for r in self.replicas)

    @property
    def current_watts(self) -> float:
        return sum(d.current_watts for d in self.domains)

    @property
    def planned_watts(self) -> float:
        return sum(d.planned_watts for d in self.domains)

    @property
    def current_dollars_per_hour(self) -> float:
        return sum(d.current_dollars_per_hour for d in self.domains)

    @property
    def planned_dollars_per_hour(self) -> float:
        return sum(d.planned_dollars_per_hour for d in self.domains)


def _planned(plan: core.Plan) -> dict[Key, core.Placement]:
    return {
        (pp.key, pl.accelerator_class): pl for pp in plan.pools for pl in pp.placements if pl.replicas > 0
    }


def _replicas(
    current: Mapping[str, Mapping[str, int]], planned: Mapping[Key, core.Placement]
) -> list[ReplicaDelta]:
    keys = {(pool, cls) for pool, by_class in current.items() for cls, n in by_class.items() if n > 0}
    keys |= set(planned)
    return sorted(
        ReplicaDelta(
            pool,
            cls,
            int(current.get(pool, {}).get(cls, 0)),
            planned[(pool, cls)].replicas if (pool, cls) in planned else 0,
        )
        for pool, cls in keys
    )


def _moves(replicas: Sequence[ReplicaDelta]) -> list[Move]:
    by_pool: dict[str, tuple[dict[str, int], dict[str, int]]] = {}
    for r in replicas:
        if r.delta:
            removed, added = by_pool.setdefault(r.pool, ({}, {}))
            (added if r.delta > 0 else removed)[r.accelerator_class] = abs(r.delta)
    return [
        Move(pool, removed, added) for pool, (removed, added) in sorted(by_pool.items()) if removed and added
    ]


def _node_moves(
    now: Mapping[Key, Mapping[str, int]],
    planned: Mapping[Key, Mapping[str, int]],
    replicas: Sequence[ReplicaDelta],
) -> list[NodeMove]:
    """Per node, for the (pool, class) pairs whose planned nodes are known, and those planned at
    zero (every replica goes); a class the plan does not place node by node is left out."""
    gone = {(r.pool, r.accelerator_class) for r in replicas if r.planned == 0}
    out = []
    for key in sorted(set(now) | set(planned)):
        if key not in planned and key not in gone:
            continue
        here, there = now.get(key, {}), planned.get(key, {})
        for node in sorted(set(here) | set(there)):
            a, b = int(here.get(node, 0)), int(there.get(node, 0))
            if a != b:
                out.append(NodeMove(key[0], key[1], node, a, b))
    return out


def _domains(
    plan: core.Plan,
    replicas: Sequence[ReplicaDelta],
    planned: Mapping[Key, core.Placement],
    per_replica_now: Mapping[Key, tuple[float, float]],
    domain_of: Mapping[str, str],
) -> tuple[list[DomainDelta], list[Key]]:
    binding = {b.subject for pp in plan.pools for b in pp.binding if b.kind is core.BindingKind.POWER}
    budgets = {d.name: d.budget_watts for d in plan.domains}
    sums: dict[str, list[float]] = {d.name: [0.0, 0.0, 0.0, 0.0] for d in plan.domains}
    unvalued: list[Key] = []
    for r in replicas:
        key = (r.pool, r.accelerator_class)
        domain = domain_of.get(r.accelerator_class, "-")  # "-": a class that is gone
        row = sums.setdefault(domain, [0.0, 0.0, 0.0, 0.0])
        if r.current:
            if key in per_replica_now:
                watts, dollars = per_replica_now[key]
            elif key in planned:
                pl = planned[key]
                watts, dollars = pl.watts / pl.replicas, pl.dollars_per_hour / pl.replicas
            else:
                watts, dollars = 0.0, 0.0
                unvalued.append(key)
            row[0] += watts * r.current
            row[2] += dollars * r.current
        if key in planned:  # rounded per placement as status rounds it: no change shows no delta
            row[1] += round(planned[key].watts)
            row[3] += round(planned[key].dollars_per_hour, 2)
    domains = [
        DomainDelta(name, budgets.get(name), w_now, w_plan, usd_now, usd_plan, name in binding)
        for name, (w_now, w_plan, usd_now, usd_plan) in sorted(sums.items())
    ]
    return domains, unvalued


def _binding(plan: core.Plan) -> list[tuple[core.Binding, tuple[str, ...]]]:
    pools: dict[core.Binding, list[str]] = {}
    for pp in plan.pools:
        for b in pp.binding:
            pools.setdefault(b, []).append(pp.key)
    return [(b, tuple(sorted(keys))) for b, keys in sorted(pools.items())]


def _writes(
    applies: Sequence[Mapping[str, Any]],
    deletes: Sequence[tuple[str, str, str]],
    current: Mapping[str, Mapping[str, int]],
) -> list[Write]:
    out = []
    for obj in applies:
        meta = obj.get("metadata") or {}
        namespace, name, kind = str(meta.get("namespace")), str(meta.get("name")), str(obj.get("kind"))
        if kind != "Deployment":
            out.append(Write(WriteVerb.APPLY, kind, namespace, name))
            continue
        obj_labels = meta.get("labels") or {}
        cls = str(obj_labels.get(labels.ACCELERATOR_CLASS) or "")
        before = current.get(f"{namespace}/{obj_labels.get(labels.POOL)}", {}).get(cls, 0)
        after = int((obj.get("spec") or {}).get("replicas") or 0)
        out.append(Write(WriteVerb.APPLY, kind, namespace, name, cls, int(before), after))
    out += [Write(WriteVerb.DELETE, kind, namespace, name) for kind, namespace, name in deletes]
    return sorted(out)


def compute(
    plan: core.Plan,
    current: Mapping[str, Mapping[str, int]],
    domain_of: Mapping[str, str],
    *,
    per_replica_now: Mapping[Key, tuple[float, float]] | None = None,
    applies: Sequence[Mapping[str, Any]] = (),
    deletes: Sequence[tuple[str, str, str]] = (),
    nodes_now: Mapping[Key, Mapping[str, int]] | None = None,
    nodes_planned: Mapping[Key, Mapping[str, int]] | None = None,
) -> Delta:
    """The plan against what runs now.  ``current``: pool key -> class -> replicas now;
    ``domain_of``: class -> power domain; ``per_replica_now``: (watts, $/h) of one replica as
    recorded for what runs; ``applies``/``deletes``: the child writes the operator would make;
    ``nodes_now``/``nodes_planned``: replicas per node, when both are known (else no node moves)."""
    planned = _planned(plan)
    replicas = _replicas(current, planned)
    domains, unvalued = _domains(plan, replicas, planned, per_replica_now or {}, domain_of)
    node_moves = (
        _node_moves(nodes_now, nodes_planned, replicas)
        if nodes_now is not None and nodes_planned is not None
        else []
    )
    return Delta(
        replicas=tuple(replicas),
        moves=tuple(_moves(replicas)),
        node_moves=tuple(node_moves),
        domains=tuple(domains),
        binding=tuple(_binding(plan)),
        writes=tuple(_writes(applies, deletes, current)),
        unvalued=tuple(unvalued),
    )
