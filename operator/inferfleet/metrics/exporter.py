"""The operator's own Prometheus metrics: definitions, updates from a plan, and the HTTP endpoint.

Owns: ``OperatorMetrics`` (every ``inferfleet_*`` series, on a dedicated CollectorRegistry, with the
typed methods the planning loop calls; ``inferfleet_build_info``; the process, platform and GC
collectors on the registry the operator serves), the process-wide default instance, ``families``
(what ``docs/metrics.md`` is generated from: ``python -m inferfleet.metrics.reference``) and
``start_metrics_server`` (plain HTTP; the authenticated HTTPS endpoint is ``metrics/server.py``).
Counters carry no ``_created`` twin (``disable_created_metrics``, process-wide, on import).
Gauges about things that can vanish (pools, classes, power domains) are rewritten whole on each
plan: label sets absent from the new plan are removed, so no gauge keeps reporting a deleted pool.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import platform
import threading
import time
from collections.abc import Callable, Mapping
from typing import Final

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    start_http_server,
)
from prometheus_client.metrics import MetricWrapperBase

import inferfleet
from inferfleet.core.energy import Energy
from inferfleet.core.observed import Observed
from inferfleet.core.types import Plan

__all__ = [
    "REGISTRY",
    "RUNTIME_FAMILIES",
    "Family",
    "OperatorMetrics",
    "build_versions",
    "default_metrics",
    "families",
    "split_pool_key",
    "start_metrics_server",
]

disable_created_metrics()  # type: ignore[no-untyped-call]  # no `_created` series beside each counter and histogram

REGISTRY: Final = CollectorRegistry(auto_describe=True)  # dedicated: not prometheus_client's global
PLAN_BUCKETS: Final = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
SHED_STATUSES: Final = frozenset({"PartiallyShed", "Shed"})
PLAN_STATUSES: Final = ("Placed", "PartiallyShed", "Shed", "Unplaceable")

Labels = tuple[str, ...]
# what the runtime collectors export (names by prefix; which series exist depends on the platform)
RUNTIME_FAMILIES: Final = (
    (
        "process_*",
        "ProcessCollector",
        "CPU seconds, resident and virtual memory, open and maximum file descriptors, start time (Linux)",
    ),
    ("python_info", "PlatformCollector", "the Python implementation and version"),
    ("python_gc_*", "GCCollector", "collections, objects collected and uncollectable, per generation"),
)


@dataclasses.dataclass(frozen=True)
class Family:
    """One metric the operator defines, as the reference documents it."""

    name: str  # as exposed (counters with their _total)
    type: str  # gauge, counter, histogram
    labels: Labels
    help: str


def build_versions() -> dict[str, str]:
    """The labels of ``inferfleet_build_info``: the operator's and its key dependencies' versions."""

    def version(dist: str) -> str:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return "unknown"

    return {
        "version": inferfleet.__version__,
        "python": platform.python_version(),
        "kopf": version("kopf"),
        "highspy": version("highspy"),
    }


def split_pool_key(key: str) -> tuple[str, str]:
    """ "namespace/name" -> (namespace, name)."""
    namespace, _, name = key.partition("/")
    return (namespace, name) if name else ("", namespace)


class _GaugeFamily:
    """A labelled gauge whose label sets are replaced whole (vanished ones removed)."""

    def __init__(self, gauge: Gauge) -> None:
        self.gauge = gauge
        self.present: set[Labels] = set()

    def replace(self, values: Mapping[Labels, float]) -> None:
        for labels in self.present - values.keys():
            self.gauge.remove(*labels)
        for labels, value in values.items():
            self.gauge.labels(*labels).set(value)
        self.present = set(values)


class OperatorMetrics:
    """Every metric the operator exports.  Thread-safe.

    ``runtime``: also register the process, platform and GC collectors on ``registry`` (the
    registry the operator serves; tests of the plan gauges leave them out)."""

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        clock: Callable[[], float] = time.time,
        runtime: bool = True,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self._clock = clock
        self._lock = threading.Lock()
        reg = self.registry
        if runtime:
            ProcessCollector(registry=reg)
            PlatformCollector(registry=reg)
            GCCollector(registry=reg)
        versions = build_versions()
        self.build_info = Gauge(
            "inferfleet_build_info",
            "Always 1; the labels name the operator's version and those of Python, kopf and HiGHS.",
            tuple(versions),
            registry=reg,
        )
        self.build_info.labels(**versions).set(1)
        pool_class = ("namespace", "pool", "accelerator_class")
        pool = ("namespace", "pool")
        self.pool_replicas = _GaugeFamily(
            Gauge(
                "inferfleet_pool_replicas",
                "Replicas planned for a pool on an accelerator class.",
                pool_class,
                registry=reg,
            )
        )
        self.pool_ready_replicas = _GaugeFamily(
            Gauge(
                "inferfleet_pool_ready_replicas",
                "Ready replicas of a pool on an accelerator class.",
                pool_class,
                registry=reg,
            )
        )
        self.pool_demand = _GaugeFamily(
            Gauge(
                "inferfleet_pool_demand_requests_per_second",
                "Demand the last plan was made for.",
                pool,
                registry=reg,
            )
        )
        self.pool_served = _GaugeFamily(
            Gauge(
                "inferfleet_pool_served_requests_per_second",
                "Capacity the last plan gives a pool (capped at demand x headroom).",
                pool,
                registry=reg,
            )
        )
        self.pools = _GaugeFamily(
            Gauge("inferfleet_pools", "Pools in the last plan by status.", ("status",), registry=reg)
        )
        self.pools_shed = Gauge(
            "inferfleet_pools_shed",
            "Pools whose demand the last plan could not fully serve (status PartiallyShed or Shed).",
            registry=reg,
        )
        self.domain_power = _GaugeFamily(
            Gauge(
                "inferfleet_domain_power_watts",
                "Planned power draw of a power domain.",
                ("power_domain",),
                registry=reg,
            )
        )
        self.domain_budget = _GaugeFamily(
            Gauge(
                "inferfleet_domain_power_budget_watts",
                "Power budget of a power domain (absent: none).",
                ("power_domain",),
                registry=reg,
            )
        )
        self.class_devices = _GaugeFamily(
            Gauge(
                "inferfleet_class_devices",
                "Devices available on an accelerator class's usable nodes.",
                ("accelerator_class",),
                registry=reg,
            )
        )
        self.class_devices_used = _GaugeFamily(
            Gauge(
                "inferfleet_class_devices_used",
                "Devices of an accelerator class the last plan uses.",
                ("accelerator_class",),
                registry=reg,
            )
        )
        self.fleet_power = Gauge(
            "inferfleet_fleet_power_watts", "Planned power of the whole fleet.", registry=reg
        )
        self.fleet_cost = Gauge(
            "inferfleet_fleet_cost_dollars_per_hour",
            "Planned cost of the whole fleet (hardware and energy).",
            registry=reg,
        )
        self.plan_duration = Histogram(
            "inferfleet_plan_duration_seconds",
            "Wall time of one plan (snapshot to decision).",
            buckets=PLAN_BUCKETS,
            registry=reg,
        )
        self.plan_gap = Gauge(
            "inferfleet_plan_gap_ratio",
            "Relative optimality gap the solver reported for the last plan.",
            registry=reg,
        )
        self.plans = Counter(
            "inferfleet_plans_total", "Plans made, by solver result.", ("result",), registry=reg
        )
        self.errors = Counter(
            "inferfleet_reconcile_errors_total",
            "Errors in the planning loop by stage.",
            ("stage",),
            registry=reg,
        )
        self.writes = Counter(
            "inferfleet_api_writes_total",
            "Writes to the Kubernetes API by kind and verb; verb dropped counts Events over their "
            "object's rate limit, not written.",
            ("kind", "verb"),
            registry=reg,
        )
        self.last_success = Gauge(
            "inferfleet_last_successful_plan_timestamp_seconds",
            "Unix time of the last successful plan.",
            registry=reg,
        )
        self.leader = Gauge("inferfleet_leader", "1 when this replica holds the leader lease.", registry=reg)
        self.observed_load = _GaugeFamily(
            Gauge(
                "inferfleet_pool_observed_requests_per_second",
                "Offered load of an autoscaled pool as measured (absent when it could not be read).",
                pool,
                registry=reg,
            )
        )
        self.observed_latency = _GaugeFamily(
            Gauge(
                "inferfleet_pool_observed_latency_p95_seconds",
                "Measured p95 latency of a pool on a class; quantity is ttft or tpot.",
                (*pool_class, "quantity"),
                registry=reg,
            )
        )
        self.metrics_problem = _GaugeFamily(
            Gauge(
                "inferfleet_pool_metrics_problem",
                "1 while an autoscaled pool's metrics are unusable, labelled with why.",
                (*pool, "problem"),
                registry=reg,
            )
        )
        self.pool_tokens_per_joule = _GaugeFamily(
            Gauge(
                "inferfleet_pool_output_tokens_per_joule",
                "Output tokens per joule of device energy at the planned load (absent: none).",
                pool,
                registry=reg,
            )
        )
        self.pool_dollars_per_million = _GaugeFamily(
            Gauge(
                "inferfleet_pool_dollars_per_million_output_tokens",
                "Hardware and energy $ per million output tokens at the planned load (absent: none).",
                pool,
                registry=reg,
            )
        )
        self.fleet_tokens_per_joule = Gauge(
            "inferfleet_fleet_output_tokens_per_joule",
            "Output tokens per joule of the whole fleet's device energy at the planned load.",
            registry=reg,
        )
        self.fleet_energy_cost = Gauge(
            "inferfleet_fleet_energy_dollars_per_hour",
            "The energy part of the fleet's planned cost (facility energy x electricity price).",
            registry=reg,
        )
        self.fleet_energy = Gauge(
            "inferfleet_fleet_energy_kilowatt_hours_per_day",
            "Facility energy per day at the planned load (device energy x PUE).",
            registry=reg,
        )
        self._planned: set[tuple[str, str]] = set()  # (pool key, class) in the last plan

    def record_plan(self, plan: Plan, duration_s: float, ready: Mapping[tuple[str, str], int]) -> None:
        """Set every plan gauge from ``plan``; ``ready`` maps (pool key, class) to Ready replicas."""
        replicas: dict[Labels, float] = {}
        demand: dict[Labels, float] = {}
        served: dict[Labels, float] = {}
        planned: set[tuple[str, str]] = set()
        for pool_plan in plan.pools:
            namespace, name = split_pool_key(pool_plan.key)
            demand[(namespace, name)] = pool_plan.demand_rps
            served[(namespace, name)] = pool_plan.served_rps
            for placement in pool_plan.placements:
                labels = (namespace, name, placement.accelerator_class)
                replicas[labels] = replicas.get(labels, 0) + placement.replicas
                planned.add((pool_plan.key, placement.accelerator_class))
        statuses = {status: 0.0 for status in PLAN_STATUSES}
        for pool_plan in plan.pools:
            statuses[pool_plan.status] = statuses.get(pool_plan.status, 0.0) + 1
        with self._lock:
            self._planned = planned
            # a class with Ready replicas but none planned is draining: say 0 planned, not nothing
            for key, accelerator_class in ready:
                replicas.setdefault((*split_pool_key(key), accelerator_class), 0)
            self.pool_replicas.replace(replicas)
            self._set_ready(ready)
            self.pool_demand.replace(demand)
            self.pool_served.replace(served)
            self.pools.replace({(status,): count for status, count in statuses.items()})
            self.pools_shed.set(sum(statuses.get(s, 0.0) for s in SHED_STATUSES))
            self.domain_power.replace({(d.name,): d.used_watts for d in plan.domains})
            self.domain_budget.replace(
                {(d.name,): d.budget_watts for d in plan.domains if d.budget_watts is not None}
            )
            self.class_devices.replace({(c.name,): c.devices_total for c in plan.classes})
            self.class_devices_used.replace({(c.name,): c.devices_used for c in plan.classes})
            self.fleet_power.set(plan.watts)
            self.fleet_cost.set(plan.dollars_per_hour)
            self.plan_gap.set(plan.solver.gap)
            self.plan_duration.observe(duration_s)
            self.plans.labels(plan.solver.status).inc()
            self.last_success.set(self._clock())

    def record_energy(self, per_pool: Mapping[str, Energy], fleet: Energy | None) -> None:
        """The plan's energy figures (``core.energy``): per pool, and for the fleet."""
        per_joule: dict[Labels, float] = {}
        per_million: dict[Labels, float] = {}
        for key, e in per_pool.items():
            labels = split_pool_key(key)
            if (tpj := e.output_tokens_per_joule) is not None and e.output_tokens_per_second > 0:
                per_joule[labels] = tpj
            if (dpm := e.dollars_per_million_output_tokens) is not None:
                per_million[labels] = dpm
        with self._lock:
            self.pool_tokens_per_joule.replace(per_joule)
            self.pool_dollars_per_million.replace(per_million)
            if fleet is not None:
                self.fleet_tokens_per_joule.set(fleet.output_tokens_per_joule or 0.0)
                self.fleet_energy_cost.set(fleet.energy_dollars_per_hour)
                self.fleet_energy.set(fleet.facility_kwh_per_day)

    def record_observed(self, observed: Mapping[str, Observed]) -> None:
        """Set the measurement gauges of autoscaled pools (what the autoscaler saw this round)."""
        load: dict[Labels, float] = {}
        latency: dict[Labels, float] = {}
        problems: dict[Labels, float] = {}
        for key, obs in observed.items():
            namespace, name = split_pool_key(key)
            if obs.rps is not None:
                load[(namespace, name)] = obs.rps
            if obs.problem is not None:
                problems[(namespace, name, str(obs.problem))] = 1.0
            for sample in obs.classes:
                for quantity, value in (("ttft", sample.ttft_p95_s), ("tpot", sample.tpot_p95_s)):
                    if value is not None:
                        latency[(namespace, name, sample.accelerator_class, quantity)] = value
        with self._lock:
            self.observed_load.replace(load)
            self.observed_latency.replace(latency)
            self.metrics_problem.replace(problems)

    def record_ready(self, ready: Mapping[tuple[str, str], int]) -> None:
        """Update Ready replicas between plans (label sets: the last plan's placements and ``ready``)."""
        with self._lock:
            self._set_ready(ready)

    def record_error(self, stage: str) -> None:
        """Count a failed stage of the loop, e.g. "snapshot", "plan", "apply", "status"."""
        self.errors.labels(stage).inc()

    def record_write(self, kind: str, verb: str) -> None:
        self.writes.labels(kind, verb).inc()

    def set_leader(self, leading: bool) -> None:
        self.leader.set(1 if leading else 0)

    def _set_ready(self, ready: Mapping[tuple[str, str], int]) -> None:
        keys = self._planned | set(ready)
        self.pool_ready_replicas.replace(
            {
                (*split_pool_key(key), accelerator_class): ready.get((key, accelerator_class), 0)
                for key, accelerator_class in keys
            }
        )


def families(metrics: OperatorMetrics) -> list[Family]:
    """Every ``inferfleet_*`` metric ``metrics`` defines, by name."""
    out = []
    for attr in vars(metrics).values():
        metric = attr.gauge if isinstance(attr, _GaugeFamily) else attr
        if isinstance(metric, MetricWrapperBase):
            kind = str(metric._type)
            suffix = "_total" if kind == "counter" else ""
            out.append(Family(metric._name + suffix, kind, tuple(metric._labelnames), metric._documentation))
    return sorted(out, key=lambda f: f.name)


_default: OperatorMetrics | None = None
_default_lock = threading.Lock()


def default_metrics() -> OperatorMetrics:
    """The process-wide instance, on ``REGISTRY`` (what ``start_metrics_server`` serves)."""
    global _default  # noqa: PLW0603 - one registry per process is the point
    with _default_lock:
        if _default is None:
            _default = OperatorMetrics(REGISTRY)
        return _default


def start_metrics_server(port: int, addr: str = "0.0.0.0", registry: CollectorRegistry = REGISTRY) -> None:
    """Serve ``registry`` (default: the operator's) on http://addr:port/metrics in a daemon thread."""
    start_http_server(port, addr=addr, registry=registry)
