"""Conditions, for every kind: the one ``Condition`` model and ``Conditions`` list type, and the
vocabulary of condition types, reasons and event reasons the operator writes.

Owns the metav1.Condition shape (with upstream's patterns for ``type`` and ``reason``), the list
schema shared by every kind's ``status.conditions`` (a list-map keyed by ``type``), and the
``StrEnum``s that are the only spelling of each type and reason: code compares these values, never
sentences.
"""

from __future__ import annotations

import enum
from typing import Annotated, Any, Literal

from pydantic import Field, WithJsonSchema

from inferfleet.api.common import Spec

__all__ = [
    "EVENT_DOCS",
    "REASON_DOCS",
    "TYPE_DOCS",
    "Condition",
    "ConditionType",
    "Conditions",
    "EventReason",
    "Reason",
    "condition_schema",
]

TYPE_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)
REASON_PATTERN = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"
MAX_CONDITIONS = 16
MAX_MESSAGE = 32768


class ConditionType(enum.StrEnum):
    READY = "Ready"
    PLACED = "Placed"
    POWER_LIMITED = "PowerLimited"
    CAPACITY_LIMITED = "CapacityLimited"
    VALID = "Valid"
    METRICS_AVAILABLE = "MetricsAvailable"
    SLO_AT_RISK = "SLOAtRisk"
    POWER_BUDGET = "PowerBudget"  # AcceleratorClass: its power domain's budget is known
    NODES_READY = "NodesReady"  # AcceleratorClass: its nodes' readiness as the plan counts it
    NODES_HEALTHY = "NodesHealthy"  # FleetPolicy: no fleet-wide NotReady (a control-plane problem)
    NODES_SHARED = "NodesShared"  # AcceleratorClass: another class matches some of its nodes
    CAPACITY_MATCHES_NODES = "CapacityMatchesNodes"  # AcceleratorClass with spec.capacity: nodes back it


class Reason(enum.StrEnum):
    """Condition reasons (one CamelCase word each)."""

    ALL_REPLICAS_READY = "AllReplicasReady"
    REPLICAS_NOT_READY = "ReplicasNotReady"
    NOT_PLACED = "NotPlaced"
    # Placed: the plan status of the pool (core PlanStatus values)
    PLACED = "Placed"
    PARTIALLY_SHED = "PartiallyShed"
    SHED = "Shed"
    UNPLACEABLE = "Unplaceable"
    POWER_BUDGET_BINDING = "PowerBudgetBinding"
    WITHIN_BUDGET = "WithinBudget"
    CAPACITY_BINDING = "CapacityBinding"
    CAPACITY_AVAILABLE = "CapacityAvailable"
    SPEC_VALID = "SpecValid"
    INVALID_SPEC = "InvalidSpec"
    NO_READY_NODES = "NoReadyNodes"
    NODES_READY = "NodesReady"
    OVER_BUDGET = "OverBudget"
    PLANNED = "Planned"
    # MetricsAvailable (False: the core's MetricsProblem values, e.g. PrometheusUnreachable)
    METRICS_READ = "MetricsRead"
    NO_METRICS_SOURCE = "NoMetricsSource"
    # SLOAtRisk
    SLO_BREACHED = "SLOBreached"
    WITHIN_SLO = "WithinSLO"
    NO_LATENCY_SAMPLE = "NoLatencySample"
    # Placed/Ready False: the API server refused a child (Deployment, Service) of the pool
    APPLY_FAILED = "ApplyFailed"
    # Ready False: replicas the scheduler cannot place, for a reason the plan did not model
    UNSCHEDULABLE = "Unschedulable"
    # Ready False: a ReplicaSet cannot create the pods (a missing ServiceAccount, a quota, a policy)
    REPLICA_FAILURE = "ReplicaFailure"
    # PowerBudget (AcceleratorClass)
    BUDGET_KNOWN = "BudgetKnown"
    UNBUDGETED = "Unbudgeted"  # no FleetPolicy lists budgets, or the policy lists none
    UNKNOWN_POWER_DOMAIN = "UnknownPowerDomain"  # the class names a domain the policy does not list
    POLICY_MISSING = "PolicyMissing"  # the FleetPolicy was deleted: the last budgets hold
    # NodesReady (AcceleratorClass) and NodesHealthy (FleetPolicy)
    ALL_NODES_READY = "AllNodesReady"
    WITHIN_GRACE = "WithinGrace"  # NotReady for less than the grace period: replicas held
    NODES_LOST = "NodesLost"  # NotReady beyond the grace period: their replicas are re-planned
    RETURNING = "Returning"  # Ready again, not used until the stabilization window has passed
    MASS_NOT_READY = "MassNotReady"  # most nodes of every zone NotReady: nothing counted lost
    # NodesShared (AcceleratorClass)
    EXCLUSIVE = "Exclusive"
    OVERLAPS_OTHER_CLASSES = "OverlapsOtherClasses"
    # CapacityMatchesNodes (AcceleratorClass with a capacity override)
    OVERRIDE_WITHIN_NODES = "OverrideWithinNodes"
    OVERRIDE_BEYOND_NODES = "OverrideBeyondNodes"


class EventReason(enum.StrEnum):
    """Reasons of the Events the operator records."""

    PLACED = "Placed"
    MOVED = "Moved"
    RESCALED = "Rescaled"
    PARTIALLY_SHED = "PartiallyShed"
    SHED = "Shed"
    UNPLACEABLE = "Unplaceable"
    INVALID_SPEC = "InvalidSpec"
    DEMAND_CHANGED = "DemandChanged"  # the autoscaler changed the demand a pool is planned for
    METRICS_UNAVAILABLE = "MetricsUnavailable"
    SLO_AT_RISK = "SLOAtRisk"
    APPLY_FAILED = "ApplyFailed"  # the API server refused a child of the object
    STATUS_REFUSED = "StatusRefused"  # the API server refused the object's status
    UNSCHEDULABLE = "Unschedulable"  # replicas Pending with the scheduler's message
    REPLANNED = "Replanned"  # replicas unschedulable too long on a class: placed elsewhere
    REPLICA_FAILURE = "ReplicaFailure"  # a ReplicaSet cannot create the pool's pods
    UNKNOWN_POWER_DOMAIN = "UnknownPowerDomain"
    POLICY_MISSING = "PolicyMissing"
    NODES_LOST = "NodesLost"  # nodes of a class NotReady beyond the grace period
    NODES_RETURNED = "NodesReturned"  # lost nodes Ready again for the stabilization window
    MASS_NOT_READY = "MassNotReady"
    NODES_SHARED = "NodesShared"  # a class's nodes are matched by another class too
    CAPACITY_BEYOND_NODES = "CapacityBeyondNodes"  # spec.capacity counts more nodes than match


# What each type and reason means, for the catalogue in docs/api.md (api/docgen.py; a unit test
# holds every member documented).
TYPE_DOCS: dict[ConditionType, str] = {
    ConditionType.READY: (
        "InferencePool: every planned replica is Ready; AcceleratorClass: Ready nodes match it; "
        "FleetPolicy: the last plan is within the budgets "
        "(any kind, False InvalidSpec: the object is invalid)."
    ),
    ConditionType.PLACED: "InferencePool: the plan serves the pool's demand (reason: how much of it).",
    ConditionType.POWER_LIMITED: "InferencePool: a power budget binds the pool's placement.",
    ConditionType.CAPACITY_LIMITED: "InferencePool: node capacity binds the pool's placement.",
    ConditionType.VALID: "InferencePool: the spec passed the operator's validation.",
    ConditionType.METRICS_AVAILABLE: "InferencePool with autoscaling: its metrics could be read and used.",
    ConditionType.SLO_AT_RISK: "InferencePool: a measured p95 latency is above the SLO.",
    ConditionType.POWER_BUDGET: "AcceleratorClass: the budget of its power domain is known.",
    ConditionType.NODES_READY: "AcceleratorClass: its nodes are Ready as the plan counts them.",
    ConditionType.NODES_HEALTHY: (
        "FleetPolicy: no fleet-wide NotReady (which would be a control-plane problem)."
    ),
    ConditionType.NODES_SHARED: "AcceleratorClass: another class's selector matches some of its nodes.",
    ConditionType.CAPACITY_MATCHES_NODES: (
        "AcceleratorClass with spec.capacity: matching nodes back the override."
    ),
}
REASON_DOCS: dict[Reason, str] = {
    Reason.ALL_REPLICAS_READY: "Ready: every planned replica is Ready.",
    Reason.REPLICAS_NOT_READY: "Ready: some planned replicas are not Ready yet.",
    Reason.NOT_PLACED: "Ready/Placed: nothing is planned for the pool.",
    Reason.PLACED: "Placed: the whole demand is served at the SLO.",
    Reason.PARTIALLY_SHED: "Placed: part of the demand is shed (power or capacity, lowest priority first).",
    Reason.SHED: "Placed: the whole demand is shed.",
    Reason.UNPLACEABLE: "Placed: no allowed class can serve the model at its SLO.",
    Reason.POWER_BUDGET_BINDING: "PowerLimited: a power domain's budget binds.",
    Reason.WITHIN_BUDGET: "PowerLimited False: every budget has room.",
    Reason.CAPACITY_BINDING: "CapacityLimited: a class's nodes are full.",
    Reason.CAPACITY_AVAILABLE: "CapacityLimited False: capacity has room.",
    Reason.SPEC_VALID: "Valid: the spec is valid.",
    Reason.INVALID_SPEC: (
        "Ready/Valid False: the message names each bad field; running children are left as they are."
    ),
    Reason.NO_READY_NODES: "Ready False (AcceleratorClass): no Ready, schedulable node matches nodeSelector.",
    Reason.NODES_READY: "Ready (AcceleratorClass): matching nodes are Ready.",
    Reason.OVER_BUDGET: "Ready False (FleetPolicy): the planned power is over a budget.",
    Reason.PLANNED: "Ready (FleetPolicy): the last plan is within every budget.",
    Reason.METRICS_READ: "MetricsAvailable: the metrics were read and used.",
    Reason.NO_METRICS_SOURCE: "MetricsAvailable False: the operator runs without --prometheus-url.",
    Reason.SLO_BREACHED: "SLOAtRisk: a measured p95 is above the SLO.",
    Reason.WITHIN_SLO: "SLOAtRisk False: measured p95s are within the SLO.",
    Reason.NO_LATENCY_SAMPLE: "SLOAtRisk Unknown: too few requests to measure a p95.",
    Reason.APPLY_FAILED: "Placed/Ready False: the API server refused a child (Deployment, Service).",
    Reason.REPLICA_FAILURE: (
        "Ready False: a ReplicaSet cannot create the pods (missing ServiceAccount, quota, admission)."
    ),
    Reason.UNSCHEDULABLE: (
        "Ready False: replicas the scheduler cannot place, for a reason the plan did not model."
    ),
    Reason.BUDGET_KNOWN: "PowerBudget: the FleetPolicy lists the class's power domain.",
    Reason.UNBUDGETED: "PowerBudget: no FleetPolicy lists budgets; the class is planned without one.",
    Reason.UNKNOWN_POWER_DOMAIN: "PowerBudget False: the class names a domain the policy does not list.",
    Reason.POLICY_MISSING: "PowerBudget False: the FleetPolicy was deleted; the last budgets hold.",
    Reason.ALL_NODES_READY: "NodesReady/NodesHealthy: every node is Ready.",
    Reason.WITHIN_GRACE: (
        "NodesReady: nodes NotReady for less than the grace period; their replicas are held."
    ),
    Reason.NODES_LOST: (
        "NodesReady False: nodes NotReady beyond the grace period; their replicas are re-planned."
    ),
    Reason.RETURNING: "NodesReady: nodes Ready again, not used until the stabilization window has passed.",
    Reason.MASS_NOT_READY: "NodesHealthy False: most nodes of every zone NotReady; nothing is counted lost.",
    Reason.EXCLUSIVE: "NodesShared False: no other class matches the class's nodes.",
    Reason.OVERLAPS_OTHER_CLASSES: "NodesShared: nodes are counted for the more specific selector.",
    Reason.OVERRIDE_WITHIN_NODES: "CapacityMatchesNodes: the Ready matching nodes back spec.capacity.",
    Reason.OVERRIDE_BEYOND_NODES: "CapacityMatchesNodes False: spec.capacity counts more nodes than match.",
}
EVENT_DOCS: dict[EventReason, str] = {
    EventReason.PLACED: "A pool's replicas were placed.",
    EventReason.MOVED: "Replicas moved from one class to another.",
    EventReason.RESCALED: "A pool's replica count changed on a class.",
    EventReason.PARTIALLY_SHED: "Part of a pool's demand is shed.",
    EventReason.SHED: "A pool's whole demand is shed.",
    EventReason.UNPLACEABLE: "No allowed class can serve the pool at its SLO.",
    EventReason.INVALID_SPEC: "An object is invalid (the message names each field).",
    EventReason.DEMAND_CHANGED: "The autoscaler changed the demand a pool is planned for.",
    EventReason.METRICS_UNAVAILABLE: "A pool's metrics could not be read or used.",
    EventReason.SLO_AT_RISK: "A measured p95 latency is above the pool's SLO.",
    EventReason.APPLY_FAILED: "The API server refused a child of the object.",
    EventReason.STATUS_REFUSED: "The API server refused the object's status.",
    EventReason.UNSCHEDULABLE: "Replicas are Pending with the scheduler's message.",
    EventReason.REPLANNED: "Replicas unschedulable too long on a class were placed elsewhere.",
    EventReason.REPLICA_FAILURE: "A ReplicaSet cannot create the pool's pods (the controller's words).",
    EventReason.UNKNOWN_POWER_DOMAIN: "A class names a power domain the policy does not list.",
    EventReason.POLICY_MISSING: "The FleetPolicy was deleted; the last budgets hold.",
    EventReason.NODES_LOST: "Nodes of a class NotReady beyond the grace period.",
    EventReason.NODES_RETURNED: "Lost nodes Ready again for the stabilization window.",
    EventReason.MASS_NOT_READY: "Most nodes NotReady at once: held as a control-plane problem.",
    EventReason.NODES_SHARED: "A class's nodes are matched by another class too.",
    EventReason.CAPACITY_BEYOND_NODES: "spec.capacity counts more nodes than match.",
}


def condition_schema() -> dict[str, Any]:
    """The standard metav1.Condition schema, for status.conditions."""
    return {
        "type": "object",
        "required": ["type", "status", "lastTransitionTime", "reason", "message"],
        "properties": {
            "type": {
                "type": "string",
                "maxLength": 316,
                "pattern": TYPE_PATTERN,
                "description": "Condition type, CamelCase.",
            },
            "status": {
                "type": "string",
                "enum": ["True", "False", "Unknown"],
                "description": "Whether the condition holds: True, False or Unknown.",
            },
            "observedGeneration": {
                "type": "integer",
                "format": "int64",
                "minimum": 0,
                "description": "The metadata.generation the condition was set for.",
            },
            "lastTransitionTime": {
                "type": "string",
                "format": "date-time",
                "description": "When status last changed (kept while it does not).",
            },
            "reason": {
                "type": "string",
                "maxLength": 1024,
                "minLength": 1,
                "pattern": REASON_PATTERN,
                "description": "Why, in one CamelCase word (the catalogue in docs/api.md lists each).",
            },
            "message": {
                "type": "string",
                "maxLength": MAX_MESSAGE,
                "description": "Why, in a sentence people can act on.",
            },
        },
    }


class Condition(Spec):
    """One condition (metav1.Condition)."""

    type: str = Field(max_length=316, pattern=TYPE_PATTERN)
    status: Literal["True", "False", "Unknown"]
    observed_generation: int | None = Field(None, ge=0)
    last_transition_time: str
    reason: str = Field(min_length=1, max_length=1024, pattern=REASON_PATTERN)
    message: str = Field(max_length=MAX_MESSAGE)


Conditions = Annotated[
    list[Condition],
    Field(max_length=MAX_CONDITIONS),
    WithJsonSchema(
        {
            "type": "array",
            "maxItems": MAX_CONDITIONS,
            "description": "The object's conditions (metav1.Condition), one per type.",
            "items": condition_schema(),
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        }
    ),
]
"""``status.conditions`` of every kind: at most 16, one per type."""
