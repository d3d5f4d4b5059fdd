"""The one bridge: validated API objects (+ nodes, + what runs now, + what-if overrides, + measured
demand) to the core ``Problem``.

Owns ``problem_from``, the single place where every input of a plan enters: ``inferfleet plan``
and the operator's ``decide`` both call it, so the offline planner replays what the operator
decides.  Also owns the rules both share: which FleetPolicy is used, what capacity means when no
nodes are known, how devices held by frozen children are taken out, what an ``allowedClasses``
entry naming an undefined class becomes (an unfit entry, and a note), and that a class whose power
domain the policy does not list gets nothing (``unlisted_domain``; the operator freezes it).
Notes are typed; their ``text`` is for people.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping, Sequence

from inferfleet.api.acceleratorclass import AcceleratorClass
from inferfleet.api.fleetpolicy import FleetPolicy
from inferfleet.api.inferencepool import InferencePool
from inferfleet.api.kinds import POLICY_NAME
from inferfleet.core import types as core
from inferfleet.core.problem import build_problem
from inferfleet.translate import inventory, objects

__all__ = [
    "Bridged",
    "Fleet",
    "Note",
    "NoteKind",
    "Overrides",
    "Running",
    "choose_policy",
    "overlap_words",
    "problem_from",
    "unlisted_domain",
]


class NoteKind(enum.StrEnum):
    SEVERAL_POLICIES = "SeveralPolicies"
    NO_POLICY = "NoPolicy"
    CAPACITY_UNKNOWN = "CapacityUnknown"
    UNDEFINED_CLASS = "UndefinedClass"
    UNLISTED_DOMAIN = "UnlistedDomain"
    OVERLAPPING_CLASSES = "OverlappingClasses"


@dataclasses.dataclass(frozen=True)
class Note:
    """Something the plan assumed that its reader should know; ``subject`` names the object."""

    kind: NoteKind
    subject: str
    text: str

    def __str__(self) -> str:
        return self.text


@dataclasses.dataclass(frozen=True)
class Fleet:
    """The API objects of one plan, already validated.  ``nodes`` None: no nodes are known (the
    offline planner without Node documents); capacity then comes from overrides or is unbounded."""

    pools: Sequence[InferencePool]
    classes: Sequence[AcceleratorClass]
    policies: Sequence[FleetPolicy] = ()
    nodes: Sequence[inventory.NodeInfo] | None = None


@dataclasses.dataclass(frozen=True)
class Running:
    """What runs now: replicas per pool key and class (the churn baseline), and devices per class
    held by children the operator must leave alone (their pool or class is invalid)."""

    current: Mapping[str, Mapping[str, int]] = dataclasses.field(default_factory=dict)
    frozen_devices: Mapping[str, int] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Overrides:
    """Changes on the way to the core: what-if flags, or the autoscaler's demand.  Names must exist
    (``inferfleet.plan.whatif`` checks them with messages naming the flag)."""

    budgets_kilowatts: Mapping[str, float] = dataclasses.field(default_factory=dict)  # domain -> kW
    prices: Mapping[str, float] = dataclasses.field(default_factory=dict)  # class -> $/device-hour
    demand_rps: Mapping[str, float] = dataclasses.field(default_factory=dict)  # pool key -> req/s
    time_limit_s: float | None = None
    # pool key -> class -> measured (TTFT, TPOT) correction factors (the autoscaler's calibration)
    slo_factors: Mapping[str, Mapping[str, tuple[float, float]]] = dataclasses.field(default_factory=dict)
    # pool key -> class -> the API server's words refusing the pool's Deployment there (not planned)
    refused: Mapping[str, Mapping[str, str]] = dataclasses.field(default_factory=dict)
    # pool key -> class -> (replicas at most, why): the scheduler could not place more there
    capped: Mapping[str, Mapping[str, tuple[int, str]]] = dataclasses.field(default_factory=dict)
    electricity_per_kwh: float | None = None  # $/kWh in place of the policy's (plan --electricity)
    # pool key -> its request mix's shares as measured (the autoscaler), in place of the weights
    mix_shares: Mapping[str, tuple[float, ...]] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Bridged:
    problem: core.Problem
    policy: FleetPolicy | None  # the FleetPolicy the plan used
    notes: tuple[Note, ...]


def choose_policy(policies: Sequence[FleetPolicy]) -> tuple[FleetPolicy | None, list[Note]]:
    """The policy named ``default`` when several are given (else the first), with notes."""
    if not policies:
        text = "no FleetPolicy given: no power budgets, default electricity price and PUE"
        return None, [Note(NoteKind.NO_POLICY, "", text)]
    if len(policies) == 1:
        return policies[0], []
    names = [str(p.metadata["name"]) for p in policies]
    chosen = next((p for p in policies if p.metadata["name"] == POLICY_NAME), policies[0])
    name = str(chosen.metadata["name"])
    text = f"several FleetPolicies ({', '.join(names)}); using {name!r}"
    return chosen, [Note(NoteKind.SEVERAL_POLICIES, name, text)]


def unlisted_domain(cls: AcceleratorClass, policy: FleetPolicy | None) -> str | None:
    """Why nothing may be placed on a class: the policy lists power domains, not the class's, and
    does not allow unlisted ones (a misspelt domain must not lift a budget); None: it may."""
    if policy is None or not policy.spec.power_domains or policy.spec.unlisted_power_domains == "Unbudgeted":
        return None
    listed = sorted(d.name for d in policy.spec.power_domains)
    if cls.spec.power_domain in listed:
        return None
    return (
        f"AcceleratorClass {cls.metadata.get('name')}: spec.powerDomain {cls.spec.power_domain!r} is not "
        f"listed in FleetPolicy {policy.metadata.get('name')} ({', '.join(listed)}), so nothing new is "
        "placed on the class (running replicas are left as they are); fix spec.powerDomain, add the "
        "domain to the policy, or set the policy's spec.unlistedPowerDomains: Unbudgeted"
    )


def overlap_words(cls: str, other: str, shared: Sequence[str]) -> str:
    """The sentence for two classes matching the same nodes (for notes and class status)."""
    shown = ", ".join(shared[:5]) + (f" and {len(shared) - 5} more" if len(shared) > 5 else "")
    return (
        f"classes {cls} and {other} both match {len(shared)} node(s) ({shown}) for the same device: each "
        "node counts once, for the class with the more specific nodeSelector (then the first by name)"
    )


def _classes(
    fleet: Fleet, policy: FleetPolicy | None, running: Running, overrides: Overrides, notes: list[Note]
) -> list[core.AcceleratorClass]:
    out = []
    owners = inventory.node_owners(fleet.classes, fleet.nodes)
    for a, others in sorted(inventory.overlaps(fleet.classes, fleet.nodes).items()):
        for b, shared in sorted(others.items()):
            if a < b:
                notes.append(Note(NoteKind.OVERLAPPING_CLASSES, a, overlap_words(a, b, shared)))
    for cls in sorted(fleet.classes, key=lambda c: str(c.metadata["name"])):
        name = str(cls.metadata["name"])
        if (unlisted := unlisted_domain(cls, policy)) is not None:
            notes.append(Note(NoteKind.UNLISTED_DOMAIN, name, unlisted))
            out.append(objects.to_core_class(cls, (), ()))  # known to pools, with no capacity
            continue
        capacity = inventory.class_capacity(cls, fleet.nodes, owners)
        if cls.spec.capacity is None and fleet.nodes is None:
            text = f"class {name}: capacity unknown (no nodes given, no spec.capacity); assumed unbounded"
            notes.append(Note(NoteKind.CAPACITY_UNKNOWN, name, text))
            capacity = inventory.unbounded(cls.spec.devices_per_node)
        capacity = inventory.without(capacity, running.frozen_devices.get(name, 0))
        core_cls = objects.to_core_class(cls, capacity.free, capacity.names)
        if name in overrides.prices:
            core_cls = dataclasses.replace(core_cls, price_per_device_hour=overrides.prices[name])
        out.append(core_cls)
    return out


def _undefined_classes(
    problem: core.Problem, pools: Sequence[InferencePool], known: set[str], notes: list[Note]
) -> core.Problem:
    """An allowedClasses entry naming no AcceleratorClass: an unfit entry (so status and reports
    say why the pool cannot use it) and a note."""
    unfit = {k: dict(v) for k, v in problem.unfit.items()}
    for pool in pools:
        key = objects.pool_key(pool)
        for name in sorted(set(pool.spec.placement.allowed_classes or ()) - known):
            unfit.setdefault(key, {})[name] = core.Unfit(
                core.UnfitKind.UNDEFINED, f"AcceleratorClass {name!r} does not exist"
            )
            text = f"InferencePool {key}: allowed class {name!r} is not defined"
            notes.append(Note(NoteKind.UNDEFINED_CLASS, key, text))
    return dataclasses.replace(problem, unfit=unfit)


def _refused(problem: core.Problem, refused: Mapping[str, Mapping[str, str]]) -> core.Problem:
    """Options the API server refuses leave the problem, as unfit entries with its words: the plan
    never counts devices and watts for a child that cannot be created."""
    if not refused:
        return problem
    options = {
        k: tuple(o for o in opts if o.accelerator_class not in refused.get(k, {}))
        for k, opts in problem.options.items()
    }
    unfit = {k: dict(v) for k, v in problem.unfit.items()}
    for key, classes in refused.items():
        for cls, words in classes.items():
            unfit.setdefault(key, {})[cls] = core.Unfit(
                core.UnfitKind.REFUSED, f"the API server refuses its Deployment there: {words}"
            )
    return dataclasses.replace(problem, options=options, unfit=unfit)


def _capped(problem: core.Problem, capped: Mapping[str, Mapping[str, tuple[int, str]]]) -> core.Problem:
    """Options whose replicas the scheduler could not place (``reconcile.stuck``): capped at the
    replicas that did schedule, and left out (unfit, with the words) when none did."""
    if not capped:
        return problem
    options: dict[str, tuple[core.Option, ...]] = {}
    unfit = {k: dict(v) for k, v in problem.unfit.items()}
    for key, opts in problem.options.items():
        caps = capped.get(key, {})
        kept = []
        for o in opts:
            cap = caps.get(o.accelerator_class)
            if cap is None:
                kept.append(o)
            elif cap[0] > 0:
                kept.append(dataclasses.replace(o, max_replicas=cap[0]))
            else:
                unfit.setdefault(key, {})[o.accelerator_class] = core.Unfit(
                    core.UnfitKind.UNSCHEDULABLE, cap[1]
                )
        options[key] = tuple(kept)
    return dataclasses.replace(problem, options=options, unfit=unfit)


def problem_from(fleet: Fleet, running: Running | None = None, overrides: Overrides | None = None) -> Bridged:
    """The core Problem of a fleet, with the policy it used and what it had to assume."""
    running = running or Running()
    overrides = overrides or Overrides()
    policy, notes = choose_policy(fleet.policies)
    core_policy = objects.to_core_policy(policy, time_limit_s=overrides.time_limit_s)
    if overrides.electricity_per_kwh is not None:
        core_policy = dataclasses.replace(core_policy, electricity_per_kwh=overrides.electricity_per_kwh)
    if overrides.budgets_kilowatts:
        budgets = {d: objects.watts(kw) for d, kw in overrides.budgets_kilowatts.items()}
        core_policy = dataclasses.replace(
            core_policy, domain_budgets_watts={**core_policy.domain_budgets_watts, **budgets}
        )
    classes = _classes(fleet, policy, running, overrides, notes)
    pools = [
        objects.to_core_pool(
            p,
            running.current.get(objects.pool_key(p)),
            overrides.demand_rps.get(objects.pool_key(p)),
            overrides.slo_factors.get(objects.pool_key(p)),
            overrides.mix_shares.get(objects.pool_key(p)),
        )
        for p in fleet.pools
    ]
    problem = build_problem(pools, classes, core_policy)
    known = {str(c.metadata["name"]) for c in fleet.classes}
    problem = _undefined_classes(problem, fleet.pools, known, notes)
    return Bridged(_capped(_refused(problem, overrides.refused), overrides.capped), policy, tuple(notes))
