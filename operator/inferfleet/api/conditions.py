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

__all__ = ["Condition", "ConditionType", "Conditions", "EventReason", "Reason", "condition_schema"]

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
    UNKNOWN_POWER_DOMAIN = "UnknownPowerDomain"
    POLICY_MISSING = "PolicyMissing"
    NODES_LOST = "NodesLost"  # nodes of a class NotReady beyond the grace period
    NODES_RETURNED = "NodesReturned"  # lost nodes Ready again for the stabilization window
    MASS_NOT_READY = "MassNotReady"
    NODES_SHARED = "NodesShared"  # a class's nodes are matched by another class too
    CAPACITY_BEYOND_NODES = "CapacityBeyondNodes"  # spec.capacity counts more nodes than match


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
            "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
            "observedGeneration": {"type": "integer", "format": "int64", "minimum": 0},
            "lastTransitionTime": {"type": "string", "format": "date-time"},
            "reason": {"type": "string", "maxLength": 1024, "minLength": 1, "pattern": REASON_PATTERN},
            "message": {"type": "string", "maxLength": MAX_MESSAGE},
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
            "items": condition_schema(),
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        }
    ),
]
"""``status.conditions`` of every kind: at most 16, one per type."""
