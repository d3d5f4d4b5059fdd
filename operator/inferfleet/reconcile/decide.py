"""From a snapshot of the cluster to the writes that make it match a new plan (pure).

Owns ``decide``: validate the objects (an invalid one is reported and its running children are left
alone), translate to the core, plan, and diff the desired children and statuses against what
exists.  Writes come out ordered so power never goes over a budget in between: every reduction
(scale-down, delete) before any increase.  Nothing changed means no write at all.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import Any

from inferfleet import manifests, translate
from inferfleet.api import labels
from inferfleet.api.acceleratorclass import AcceleratorClass
from inferfleet.api.fleetpolicy import FleetPolicy
from inferfleet.api.inferencepool import InferencePool
from inferfleet.core import types as core
from inferfleet.core.problem import build_problem
from inferfleet.reconcile import children, status
from inferfleet.reconcile.ports import Obj, Snapshot

__all__ = ["Decision", "Event", "StatusWrite", "decide"]

Solver = Callable[[core.Problem], core.Plan]


@dataclasses.dataclass(frozen=True)
class StatusWrite:
    kind: str
    namespace: str | None
    name: str
    status: Obj


@dataclasses.dataclass(frozen=True)
class Event:
    obj: Obj
    type: str
    reason: str
    message: str


@dataclasses.dataclass
class Decision:
    plan: core.Plan | None = None
    reductions: list[Obj] = dataclasses.field(default_factory=list)  # applies that lower replicas
    deletes: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)  # (kind, namespace, name)
    increases: list[Obj] = dataclasses.field(default_factory=list)  # applies that add or keep replicas
    statuses: list[StatusWrite] = dataclasses.field(default_factory=list)
    events: list[Event] = dataclasses.field(default_factory=list)
    problems: list[str] = dataclasses.field(default_factory=list)
    # power domains whose increases wait until removed pods are gone (re-plan shortly)
    deferred: list[str] = dataclasses.field(default_factory=list)
    ready: dict[tuple[str, str], int] = dataclasses.field(default_factory=dict)  # (pool key, class) -> ready

    @property
    def writes(self) -> int:
        return (
            len(self.reductions)
            + len(self.deletes)
            + len(self.increases)
            + len(self.statuses)
            + len(self.events)
        )


def _meta(obj: Obj) -> dict[str, Any]:
    meta: dict[str, Any] = obj.get("metadata") or {}
    return meta


def _key(obj: Obj) -> str:
    meta = _meta(obj)
    return f"{meta.get('namespace', 'default')}/{meta.get('name')}"


def _strip(obj: Obj) -> Obj:
    """The object without server-set fields, for pydantic validation."""
    meta = _meta(obj)
    return {
        "apiVersion": obj.get("apiVersion"),
        "kind": obj.get("kind"),
        "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "generation") if k in meta},
        "spec": obj.get("spec"),
    }


def _status_differs(
    old: Mapping[str, Any] | None, new: Mapping[str, Any], ignore: tuple[str, ...] = ()
) -> bool:
    a = {k: v for k, v in (old or {}).items() if k not in ignore}
    b = {k: v for k, v in new.items() if k not in ignore and v is not None}
    return a != b


def _owned_by_pool(dep: Obj) -> tuple[str, str] | None:
    dep_labels = _meta(dep).get("labels") or {}
    pool = dep_labels.get(labels.POOL)
    cls = dep_labels.get(labels.ACCELERATOR_CLASS)
    if pool is None:
        return None
    return f"{_meta(dep).get('namespace')}/{pool}", cls or ""


def decide(
    snapshot: Snapshot, now: str, solve: Solver, demand: Mapping[str, float] | None = None
) -> Decision:
    """The writes that bring the cluster to a fresh plan.  ``demand`` overrides pools' static demand."""
    out = Decision()
    # ---- validate ----------------------------------------------------------------------------
    policy: FleetPolicy | None = None
    if snapshot.policy is not None:
        try:
            policy = manifests.validate_object(FleetPolicy, _strip(snapshot.policy), "cluster")
        except manifests.ManifestError as exc:
            msg = f"{exc}; planning is paused and nothing running is changed until it is fixed"
            out.problems.append(msg)
            prev = snapshot.policy.get("status") or {}
            gen = _meta(snapshot.policy).get("generation")
            new = {
                **prev,
                "observedGeneration": gen,
                "conditions": status.merge_conditions(
                    prev.get("conditions"), [status.condition("Ready", False, "InvalidSpec", msg, gen)], now
                ),
            }
            if _status_differs(prev, new):
                out.statuses.append(StatusWrite("FleetPolicy", None, "default", new))
                out.events.append(Event(snapshot.policy, "Warning", "InvalidSpec", msg))
            return out
    classes: dict[str, AcceleratorClass] = {}
    class_problems: dict[str, str] = {}
    for raw in snapshot.classes:
        name = str(_meta(raw).get("name"))
        try:
            classes[name] = manifests.validate_object(AcceleratorClass, _strip(raw), "cluster")
        except manifests.ManifestError as exc:
            class_problems[name] = str(exc)
    pools: dict[str, InferencePool] = {}
    pool_raw = {_key(p): p for p in snapshot.pools}
    pool_problems: dict[str, str] = {}
    for key, raw in pool_raw.items():
        try:
            pools[key] = manifests.validate_object(InferencePool, _strip(raw), "cluster")
        except manifests.ManifestError as exc:
            pool_problems[key] = str(exc)
    out.problems.extend([*class_problems.values(), *pool_problems.values()])

    # ---- existing children ---------------------------------------------------------------------
    current: dict[str, dict[str, int]] = defaultdict(dict)
    existing: dict[tuple[str, str], Obj] = {}
    frozen_devices: dict[str, int] = defaultdict(int)  # class -> devices held by children we must not touch
    for dep in snapshot.deployments:
        owner = _owned_by_pool(dep)
        if owner is None:
            continue
        pool_key, cls = owner
        replicas = int((dep.get("spec") or {}).get("replicas") or 0)
        existing[(pool_key, cls)] = dep
        out.ready[(pool_key, cls)] = int((dep.get("status") or {}).get("readyReplicas") or 0)
        if pool_key in pool_problems or cls in class_problems:
            frozen_devices[cls] += replicas * children.devices_per_replica(dep)
        else:
            current[pool_key][cls] = replicas

    # ---- plan --------------------------------------------------------------------------------
    nodes = [
        translate.node_info_from_manifest(n, snapshot.foreign_used.get(str(_meta(n).get("name")), {}))
        for n in snapshot.nodes
    ]
    core_classes = []
    for class_name, api_class in sorted(classes.items()):
        free = list(translate.class_capacity(api_class, nodes))
        _take(free, frozen_devices.get(class_name, 0))
        core_classes.append(translate.to_core_class(api_class, tuple(free)))
    core_pools = [
        translate.to_core_pool(p, current.get(k), demand.get(k) if demand else None)
        for k, p in sorted(pools.items())
    ]
    problem = build_problem(core_pools, core_classes, translate.to_core_policy(policy))
    problem = _note_missing_classes(problem, pools, set(classes))
    plan = solve(problem)
    out.plan = plan

    # ---- children ----------------------------------------------------------------------------
    wanted: set[tuple[str, str]] = set()
    for pp in plan.pools:
        pool = pools[pp.key]
        for pl in pp.placements:
            if pl.replicas <= 0:
                continue
            wanted.add((pp.key, pl.accelerator_class))
            desired = children.build_deployment(
                pool, classes[pl.accelerator_class], pl.replicas, pl.devices // pl.replicas
            )
            have = existing.get((pp.key, pl.accelerator_class))
            if have is not None and _same(have, desired):
                continue
            before = int(((have or {}).get("spec") or {}).get("replicas") or 0)
            (out.reductions if pl.replicas < before else out.increases).append(desired)
        svc = children.build_service(pool)
        have_svc = next((s for s in snapshot.services if _key(s) == pp.key), None)
        if have_svc is None or not _same(have_svc, svc):
            out.increases.append(svc)
    for (pool_key, cls), dep in sorted(existing.items()):
        if (pool_key, cls) in wanted or pool_key in pool_problems or cls in class_problems:
            continue
        if pool_key not in pools:  # pool gone: garbage collection removes its children
            continue
        out.deletes.append(("Deployment", str(_meta(dep).get("namespace")), str(_meta(dep).get("name"))))

    out.deferred = _gate_increases(out, plan, problem, snapshot.live_replicas)

    # ---- statuses and events -----------------------------------------------------------------
    for pp in plan.pools:
        raw = pool_raw[pp.key]
        meta = _meta(raw)
        new_counts = {p.accelerator_class: p.replicas for p in pp.placements if p.replicas > 0}
        old_counts = {c: n for c, n in current.get(pp.key, {}).items() if n > 0}
        change = status.describe_change(old_counts, new_counts, pp)
        ready = {c: out.ready.get((pp.key, c), 0) for c in new_counts}
        prev = raw.get("status") or {}
        new = status.pool_status(pp, ready, prev, meta.get("generation"), str(meta.get("name")), now, change)
        if _status_differs(prev, new):
            out.statuses.append(
                StatusWrite("InferencePool", meta.get("namespace"), str(meta.get("name")), new)
            )
        if change:
            reason = (
                "Moved" if "moved" in change else ("Placed" if change.startswith("placed") else "Rescaled")
            )
            out.events.append(Event(raw, "Normal", reason, change))
        prev_placed = next(
            (c.get("reason") for c in prev.get("conditions", []) if c.get("type") == "Placed"), None
        )
        if pp.status not in ("Placed", prev_placed):
            out.events.append(Event(raw, "Warning", pp.status, pp.reason or pp.status))
    for key, msg in pool_problems.items():
        raw = pool_raw[key]
        prev = raw.get("status") or {}
        new = status.pool_status_invalid(msg, prev, _meta(raw).get("generation"), now)
        if _status_differs(prev, new):
            out.statuses.append(
                StatusWrite("InferencePool", _meta(raw).get("namespace"), str(_meta(raw).get("name")), new)
            )
            out.events.append(Event(raw, "Warning", "InvalidSpec", msg))
    uses = {c.name: c for c in plan.classes}
    for raw in snapshot.classes:
        name = str(_meta(raw).get("name"))
        valid_class = classes.get(name)
        selector = valid_class.spec.node_selector if valid_class is not None else None
        matching = [n for n in nodes if selector is not None and translate.matches(selector, n.labels)]
        ready_nodes = sum(1 for n in matching if n.ready and n.schedulable)
        prev = raw.get("status") or {}
        new = status.class_status(
            uses.get(name),
            len(matching),
            ready_nodes,
            prev,
            _meta(raw).get("generation"),
            now,
            class_problems.get(name),
        )
        if _status_differs(prev, new):
            out.statuses.append(StatusWrite("AcceleratorClass", None, name, new))
            if name in class_problems:
                out.events.append(Event(raw, "Warning", "InvalidSpec", class_problems[name]))
    if snapshot.policy is not None:
        prev = snapshot.policy.get("status") or {}
        new = status.policy_status(
            plan, prev, _meta(snapshot.policy).get("generation"), now, plan.solver.seconds
        )
        if _status_differs(prev, new, ignore=("lastPlan",)):
            out.statuses.append(
                StatusWrite("FleetPolicy", None, str(_meta(snapshot.policy).get("name")), new)
            )
    return out


def _gate_increases(
    out: Decision, plan: core.Plan, problem: core.Problem, live: Mapping[tuple[str, str], int]
) -> list[str]:
    """Hold back a budgeted domain's increases while pods being removed still run there.

    Writing reductions before increases is not enough: a scaled-down Deployment's pods draw power
    until they are gone.  During the move a domain may draw, per (pool, class), the larger of the
    pods alive now and the replicas planned; where that could exceed the budget, only reductions are
    applied now and the increases follow once the pods have terminated (the loop re-plans)."""
    domain_of = {c.name: c.power_domain for c in problem.classes}
    watts = {(k, o.accelerator_class): o.watts for k, opts in problem.options.items() for o in opts}
    planned = {(pp.key, pl.accelerator_class): pl.replicas for pp in plan.pools for pl in pp.placements}
    deferred = []
    for domain, budget in sorted(problem.policy.domain_budgets_watts.items()):
        keys = [k for k in set(live) | set(planned) if domain_of.get(k[1]) == domain]
        during = sum(max(live.get(k, 0), planned.get(k, 0)) * watts.get(k, 0.0) for k in keys)
        if during > budget + 1e-6:
            deferred.append(domain)
    if not deferred:
        return []
    keep = []
    for obj in out.increases:
        obj_labels = _meta(obj).get("labels") or {}
        cls = obj_labels.get(labels.ACCELERATOR_CLASS)
        key = (f"{_meta(obj).get('namespace')}/{obj_labels.get(labels.POOL)}", str(cls))
        adds_pods = obj["kind"] == "Deployment" and obj["spec"]["replicas"] > live.get(key, 0)
        if adds_pods and domain_of.get(str(cls)) in deferred:
            continue
        keep.append(obj)
    out.increases = keep
    return deferred


def _take(free: list[int], devices: int) -> None:
    """Remove devices held by frozen children from the largest free nodes first."""
    while devices > 0 and free:
        i = max(range(len(free)), key=lambda j: free[j])
        used = min(free[i], devices)
        free[i] -= used
        devices -= used
    free[:] = [f for f in free if f > 0]


def _same(have: Obj, desired: Obj) -> bool:
    ann = _meta(have).get("annotations") or {}
    want = _meta(desired)["annotations"][labels.SPEC_HASH]
    if ann.get(labels.SPEC_HASH) != want:
        return False
    if desired.get("kind") == "Deployment":
        return bool((have.get("spec") or {}).get("replicas") == desired["spec"]["replicas"])
    return True


def _note_missing_classes(
    problem: core.Problem, pools: Mapping[str, InferencePool], known: set[str]
) -> core.Problem:
    unfit = {k: dict(v) for k, v in problem.unfit.items()}
    changed = False
    for key, pool in pools.items():
        for name in pool.spec.placement.allowed_classes or ():
            if name not in known:
                unfit.setdefault(key, {})[name] = f"AcceleratorClass {name!r} does not exist"
                changed = True
    return dataclasses.replace(problem, unfit=unfit) if changed else problem
