"""The operator's metrics: values set from a core Plan, label sets of vanished pools, classes and
domains removed, counters, and the HTTP endpoint serving the dedicated registry."""

from __future__ import annotations

import importlib.metadata
import socket
import urllib.request

import pytest
from prometheus_client import REGISTRY as GLOBAL_REGISTRY
from prometheus_client import CollectorRegistry

from inferfleet.core.types import ClassUse, DomainUse, Placement, Plan, PlanStatus, PoolPlan, SolverStats
from inferfleet.metrics.exporter import OperatorMetrics, split_pool_key, start_metrics_server


def placement(cls: str, replicas: int, watts: float = 1000.0) -> Placement:
    return Placement(
        accelerator_class=cls,
        replicas=replicas,
        devices=replicas,
        watts=watts,
        dollars_per_hour=2.0 * replicas,
        rps_capacity=10.0 * replicas,
        ttft_s=0.2,
        tpot_s=0.02,
    )


def pool(key: str, *placements: Placement, demand: float = 10.0, status: PlanStatus = "Placed") -> PoolPlan:
    return PoolPlan(key=key, placements=placements, demand_rps=demand, served_rps=demand * 0.9, status=status)


def plan(
    pools: tuple[PoolPlan, ...],
    domains: tuple[DomainUse, ...] = (),
    classes: tuple[ClassUse, ...] = (),
    status: str = "Optimal",
    gap: float = 0.0,
) -> Plan:
    return Plan(
        pools=pools,
        domains=domains,
        classes=classes,
        watts=5000.0,
        dollars_per_hour=42.5,
        solver=SolverStats(status=status, objective=1.0, bound=1.0, gap=gap, seconds=0.1, method="milp"),
    )


@pytest.fixture
def metrics() -> OperatorMetrics:
    return OperatorMetrics(CollectorRegistry(), clock=lambda: 1_700_000_000.0, runtime=False)


def value(m: OperatorMetrics, name: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(name, labels)


def planned(m: OperatorMetrics, pool_key: str, cls: str) -> float | None:
    namespace, name = pool_key.split("/")
    return value(m, "inferfleet_pool_replicas", namespace=namespace, pool=name, accelerator_class=cls)


def ready(m: OperatorMetrics, pool_key: str, cls: str) -> float | None:
    namespace, name = pool_key.split("/")
    return value(m, "inferfleet_pool_ready_replicas", namespace=namespace, pool=name, accelerator_class=cls)


FIRST = plan(
    pools=(
        pool("chat/llama", placement("h100", 3), placement("mi300x", 2), demand=12.0),
        pool("code/small", placement("l4", 4), demand=40.0, status="PartiallyShed"),
    ),
    domains=(DomainUse("hall-a", 20_000.0, 9_000.0), DomainUse("hall-b", None, 1_500.0)),
    classes=(ClassUse("h100", 64, 3, 2100.0), ClassUse("l4", 32, 4, 288.0)),
    gap=0.015,
)


def test_record_plan_sets_every_gauge_from_the_plan(metrics: OperatorMetrics) -> None:
    metrics.record_plan(FIRST, 0.42, ready={("chat/llama", "h100"): 2, ("code/small", "l4"): 4})

    assert planned(metrics, "chat/llama", "h100") == 3
    assert planned(metrics, "chat/llama", "mi300x") == 2
    assert ready(metrics, "chat/llama", "h100") == 2
    assert ready(metrics, "chat/llama", "mi300x") == 0, "planned but nothing Ready yet reads 0, not absent"
    demand = value(metrics, "inferfleet_pool_demand_requests_per_second", namespace="code", pool="small")
    assert demand == 40.0
    assert value(metrics, "inferfleet_domain_power_watts", power_domain="hall-a") == 9000.0
    assert value(metrics, "inferfleet_domain_power_budget_watts", power_domain="hall-a") == 20000.0
    assert value(metrics, "inferfleet_domain_power_budget_watts", power_domain="hall-b") is None, (
        "a domain without a budget exports no budget"
    )
    assert value(metrics, "inferfleet_class_devices_used", accelerator_class="l4") == 4
    assert value(metrics, "inferfleet_fleet_power_watts") == 5000.0
    assert value(metrics, "inferfleet_fleet_cost_dollars_per_hour") == 42.5
    assert value(metrics, "inferfleet_plan_gap_ratio") == 0.015
    assert value(metrics, "inferfleet_plans_total", result="Optimal") == 1
    assert value(metrics, "inferfleet_plan_duration_seconds_count") == 1
    assert value(metrics, "inferfleet_plan_duration_seconds_sum") == 0.42
    assert value(metrics, "inferfleet_plan_duration_seconds_bucket", le="0.5") == 1
    assert value(metrics, "inferfleet_plan_duration_seconds_bucket", le="0.25") == 0
    assert value(metrics, "inferfleet_last_successful_plan_timestamp_seconds") == 1_700_000_000.0
    assert value(metrics, "inferfleet_pools_shed") == 1
    assert value(metrics, "inferfleet_pools", status="Placed") == 1
    assert value(metrics, "inferfleet_pools", status="Shed") == 0


def test_vanished_pools_classes_and_domains_are_removed(metrics: OperatorMetrics) -> None:
    metrics.record_plan(FIRST, 0.1, ready={("chat/llama", "h100"): 3})
    second = plan(
        pools=(pool("chat/llama", placement("h100", 5)),),  # code/small deleted; llama left mi300x
        domains=(DomainUse("hall-a", 20_000.0, 7_000.0),),
        classes=(ClassUse("h100", 64, 5, 3500.0),),
        status="TimeLimit",
    )
    metrics.record_plan(second, 0.1, ready={("chat/llama", "h100"): 5})

    assert planned(metrics, "chat/llama", "h100") == 5
    assert planned(metrics, "chat/llama", "mi300x") is None, "llama left mi300x"
    assert ready(metrics, "chat/llama", "mi300x") is None
    assert planned(metrics, "code/small", "l4") is None, "code/small was deleted"
    assert ready(metrics, "code/small", "l4") is None
    for gone in (
        ("inferfleet_pool_demand_requests_per_second", {"namespace": "code", "pool": "small"}),
        ("inferfleet_domain_power_watts", {"power_domain": "hall-b"}),
        ("inferfleet_class_devices", {"accelerator_class": "l4"}),
    ):
        assert value(metrics, gone[0], **gone[1]) is None, gone
    assert value(metrics, "inferfleet_plans_total", result="Optimal") == 1
    assert value(metrics, "inferfleet_plans_total", result="TimeLimit") == 1
    assert value(metrics, "inferfleet_pools_shed") == 0


def test_draining_replicas_read_zero_planned_until_they_are_gone(metrics: OperatorMetrics) -> None:
    moved = plan(pools=(pool("chat/llama", placement("h100", 4)),))
    metrics.record_plan(moved, 0.1, ready={("chat/llama", "h100"): 1, ("chat/llama", "mi300x"): 2})
    assert planned(metrics, "chat/llama", "mi300x") == 0
    assert ready(metrics, "chat/llama", "mi300x") == 2

    metrics.record_ready({("chat/llama", "h100"): 4})  # the old Deployment is gone
    assert ready(metrics, "chat/llama", "mi300x") is None
    assert ready(metrics, "chat/llama", "h100") == 4


def test_errors_writes_and_leadership_are_counted(metrics: OperatorMetrics) -> None:
    metrics.record_error("snapshot")
    metrics.record_error("snapshot")
    metrics.record_error("apply")
    metrics.record_write("Deployment", "apply")
    metrics.set_leader(True)
    assert value(metrics, "inferfleet_reconcile_errors_total", stage="snapshot") == 2
    assert value(metrics, "inferfleet_reconcile_errors_total", stage="apply") == 1
    assert value(metrics, "inferfleet_api_writes_total", kind="Deployment", verb="apply") == 1
    assert value(metrics, "inferfleet_leader") == 1
    metrics.set_leader(False)
    assert value(metrics, "inferfleet_leader") == 0


def test_metrics_live_on_a_dedicated_registry(metrics: OperatorMetrics) -> None:
    metrics.set_leader(True)
    assert GLOBAL_REGISTRY.get_sample_value("inferfleet_leader") is None
    OperatorMetrics(CollectorRegistry())  # a second instance does not clash with the first


@pytest.mark.parametrize(
    ("key", "want"),
    [
        ("chat/llama", ("chat", "llama")),
        ("no-namespace", ("", "no-namespace")),
    ],
    ids=["namespace and name", "bare name"],
)
def test_split_pool_key(key: str, want: tuple[str, str]) -> None:
    assert split_pool_key(key) == want


def test_metrics_server_serves_the_registry(metrics: OperatorMetrics) -> None:
    metrics.record_write("Service", "apply")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start_metrics_server(port, addr="127.0.0.1", registry=metrics.registry)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        body = resp.read().decode()
    assert 'inferfleet_api_writes_total{kind="Service",verb="apply"} 1.0' in body
    assert "python_gc_objects_collected_total" not in body, "runtime=False: no runtime collectors"


def test_the_served_registry_has_build_info_and_the_runtime_collectors_but_no_created_series() -> None:
    import platform

    from prometheus_client import generate_latest

    import inferfleet

    m = OperatorMetrics(CollectorRegistry())
    m.record_write("Deployment", "apply")
    m.plan_duration.observe(0.2)
    text = generate_latest(m.registry).decode()
    names = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if not line.startswith("#")}
    for family in ("process_cpu_seconds_total", "process_resident_memory_bytes", "python_info"):
        assert family in names, family
    assert "python_gc_objects_collected_total" in names
    assert not [n for n in names if n.endswith("_created")], "a _created series is exported"
    labels = {
        "version": inferfleet.__version__,
        "python": platform.python_version(),
        "kopf": importlib.metadata.version("kopf"),
        "highspy": importlib.metadata.version("highspy"),
    }
    assert m.registry.get_sample_value("inferfleet_build_info", labels) == 1.0
    assert GLOBAL_REGISTRY.get_sample_value("inferfleet_build_info", labels) is None


def test_observed_load_latency_and_problems_follow_the_last_round(metrics: OperatorMetrics) -> None:
    from inferfleet.core.observed import ClassSample, MetricsProblem, Observed

    ok = Observed(at=0.0, rps=12.5, classes=(ClassSample("h100", 0.2, 0.03, 100, 2),))
    down = Observed(at=0.0, rps=None, problem=MetricsProblem.UNREACHABLE)
    metrics.record_observed({"chat/a": ok, "chat/b": down})
    assert value(metrics, "inferfleet_pool_observed_requests_per_second", namespace="chat", pool="a") == 12.5
    assert value(metrics, "inferfleet_pool_observed_requests_per_second", namespace="chat", pool="b") is None
    tpot = value(
        metrics,
        "inferfleet_pool_observed_latency_p95_seconds",
        namespace="chat",
        pool="a",
        accelerator_class="h100",
        quantity="tpot",
    )
    assert tpot == 0.03
    problem = {"namespace": "chat", "pool": "b", "problem": "PrometheusUnreachable"}
    assert value(metrics, "inferfleet_pool_metrics_problem", **problem) == 1.0
    metrics.record_observed({"chat/b": Observed(at=1.0, rps=3.0)})  # recovered; a is gone
    assert value(metrics, "inferfleet_pool_metrics_problem", **problem) is None
    assert value(metrics, "inferfleet_pool_observed_requests_per_second", namespace="chat", pool="a") is None


def test_record_energy_sets_the_pool_and_fleet_energy_gauges_and_drops_vanished_pools(
    metrics: OperatorMetrics,
) -> None:
    from inferfleet.core.energy import Energy

    chat = Energy(2.0, 2048.0, 512.0, 1400.0, 1.3, 9.0, 0.2)
    embed = Energy(100.0, 25_600.0, 0.0, 300.0, 1.3, 1.0, 0.05)
    fleet = Energy(102.0, 27_648.0, 512.0, 1700.0, 1.3, 10.0, 0.25)
    metrics.record_energy({"chat/llama": chat, "search/embed": embed}, fleet)
    tpj = "inferfleet_pool_output_tokens_per_joule"
    assert value(metrics, tpj, namespace="chat", pool="llama") == 512.0 / 1400.0
    assert value(metrics, tpj, namespace="search", pool="embed") is None, "no output tokens: absent, not 0"
    dpm = value(metrics, "inferfleet_pool_dollars_per_million_output_tokens", namespace="chat", pool="llama")
    assert dpm == 9.2 / (512.0 * 3600.0) * 1e6
    assert value(metrics, "inferfleet_fleet_energy_dollars_per_hour") == 0.25
    assert value(metrics, "inferfleet_fleet_energy_kilowatt_hours_per_day") == 1.7 * 24 * 1.3
    metrics.record_energy({"search/embed": embed}, fleet)
    assert value(metrics, tpj, namespace="chat", pool="llama") is None  # the pool went
