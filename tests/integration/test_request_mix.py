"""A size-aware pool end to end on the real control plane: the operator splits its request mix across
classes, makes a Service per class and the routing ConfigMap, and the fleet simulator, routing each
request as a router reading that ConfigMap would, sends each bucket's requests to the classes in the
plan's shares; switched to Mixed routing, the class Services and the table go and the pool's
Service stays.  Autoscaled, with a real Prometheus scraping the simulator, the mix planned follows
the traffic's (vLLM's token-length histograms), not the spec's weights.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException
from operator_proc import OperatorProcess
from test_autoscaling_e2e import Simulator, autoscaling_operator, prometheus  # noqa: F401
from test_operator import (  # noqa: F401
    GROUP,
    POOLS,
    VERSION,
    Kube,
    fleet,
    kube,
    operator,
    operators,
    policy_restored,
    pool_ns,
    shared_operator,
    small_pool,
)

from inferfleet.api import labels
from inferfleet.api.routing import ROUTING_KEY, RoutingTable, routing_name
from inferfleet_dev.cluster import Cluster

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

RPS = 20.0
MIX = [
    {"maxInputTokens": 256, "maxOutputTokens": 64, "weight": 50},
    {"minInputTokens": 256, "maxInputTokens": 4096, "maxOutputTokens": 64, "weight": 50},
]


@pytest.fixture
def simulator(cluster: Cluster, tmp_path: Path) -> Iterator[Simulator]:
    sim = Simulator(cluster.kubeconfig, tmp_path / "simulator.log", startup="default=0")
    yield sim
    sim.stop()


def table_of(k: Kube, namespace: str, pool: str) -> RoutingTable | None:
    try:
        cm = k.core.read_namespaced_config_map(routing_name(pool), namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return RoutingTable.model_validate_json(cm.data[ROUTING_KEY])


def class_services(k: Kube, namespace: str) -> dict[str, Any]:
    items = k.core.list_namespaced_service(namespace, label_selector=labels.ACCELERATOR_CLASS).items
    return {s.metadata.name: s for s in items}


def test_the_simulator_routing_by_the_published_table_gives_each_class_its_planned_share(
    kube: Kube,  # noqa: F811
    pool_ns: str,  # noqa: F811
    operator: OperatorProcess,  # noqa: F811
    simulator: Simulator,
    wait_for: Callable[..., Any],
) -> None:
    pool = small_pool(
        "mix",
        pool_ns,
        slo={"ttftP95Milliseconds": 2000, "tpotP95Milliseconds": 60},
        demand={"requestsPerSecond": RPS, "routing": "SizeAware", "requestMix": MIX},
        placement={"allowedClasses": ["l4", "h100"]},
    )
    kube.create_pool(pool)

    def split() -> dict[str, Any] | None:
        status = kube.pool(pool_ns, "mix").get("status") or {}
        placements = status.get("placements") or []
        ready = {c["type"]: c["status"] for c in status.get("conditions") or []}.get("Ready")
        table = table_of(kube, pool_ns, "mix")
        if ready != "True" or table is None or len(placements) < 2:
            return None
        return {"status": status, "table": table}

    got = wait_for(split, timeout=90, what="the size-aware pool Ready on two classes, with its routing table")
    status, table = got["status"], got["table"]
    routed = {p["acceleratorClass"]: p["bucketRequestsPerSecond"] for p in status["placements"]}
    assert sorted(routed) == ["h100", "l4"], status["placements"]
    assert table.service == "mix" and [len(b.backends) > 0 for b in table.buckets] == [True, True]
    for i, bucket in enumerate(table.buckets):  # the table says what the status says
        total = sum(r[i] for r in routed.values())
        for b in bucket.backends:
            assert abs(b.share - routed[b.accelerator_class][i] / total) < 1e-3

    # a Service per class, selecting exactly that class's replicas
    services = class_services(kube, pool_ns)
    assert sorted(services) == ["mix-h100", "mix-l4"]
    for cls in ("h100", "l4"):
        selector = ",".join(f"{k}={v}" for k, v in services[f"mix-{cls}"].spec.selector.items())
        pods = kube.core.list_namespaced_pod(pool_ns, label_selector=selector).items
        assert pods and {p.metadata.labels[labels.ACCELERATOR_CLASS] for p in pods} == {cls}
        assert len(pods) == next(p["replicas"] for p in status["placements"] if p["acceleratorClass"] == cls)

    # load, routed by the table as a router would route it
    key = f"{pool_ns}/mix"
    wait_for(
        lambda: (
            (simulator.state()["pools"].get(key) or {}).get("serving", 0) == status["replicas"]
            and simulator.state()["pools"][key]["routingTable"]
        ),
        timeout=60,
        what="the simulator serving every replica with the routing table",
    )
    simulator.set_load(key, RPS)
    time.sleep(45)
    state = simulator.state()["pools"][key]
    counts: dict[str, list[int]] = state["routedByBucket"]
    assert state["dropped"] == 0
    for i, bucket in enumerate(table.buckets):
        n = sum(c[i] for c in counts.values())
        assert n > 300, f"bucket {i}: only {n} requests"
        for b in bucket.backends:
            share = counts.get(b.accelerator_class, [0, 0])[i] / n
            # four and a half standard deviations of a binomial share, and rounding
            tol = 4.5 * math.sqrt(b.share * (1 - b.share) / n) + 0.01
            assert abs(share - b.share) <= tol, (i, b.accelerator_class, share, b.share, counts)
        unplanned = {c for c, v in counts.items() if v[i]} - {b.accelerator_class for b in bucket.backends}
        assert not unplanned, f"bucket {i} reached {unplanned}, which the plan gave none of it"

    # Mixed routing: every replica serves the whole mix; the class Services and the table go
    kube.custom.patch_namespaced_custom_object(
        GROUP, VERSION, pool_ns, POOLS, "mix", {"spec": {"demand": {"routing": "Mixed"}}}
    )
    wait_for(
        lambda: table_of(kube, pool_ns, "mix") is None and not class_services(kube, pool_ns),
        timeout=60,
        what="the routing ConfigMap and the class Services deleted",
    )
    assert kube.core.read_namespaced_service("mix", pool_ns).spec.selector == {labels.POOL: "mix"}
    placements = kube.pool(pool_ns, "mix")["status"]["placements"]
    assert all("bucketRequestsPerSecond" not in p for p in placements), json.dumps(placements)


@pytest.fixture
def no_shared_operator(shared_operator: OperatorProcess) -> None:  # noqa: F811
    """The module's operator (the first test's) stopped: it would hold the leader lease."""
    if shared_operator.alive:
        shared_operator.stop()


def test_an_autoscaled_pool_plans_the_mix_its_traffic_has(
    no_shared_operator: None,
    kube: Kube,  # noqa: F811
    pool_ns: str,  # noqa: F811
    autoscaling_operator: OperatorProcess,  # noqa: F811
    simulator: Simulator,
    wait_for: Callable[..., Any],
) -> None:
    # bucket edges on vLLM's histogram edges (1, 2, 5 x 10^k): the measured shares are exact
    mix = [
        {"maxInputTokens": 200, "maxOutputTokens": 50, "weight": 1},
        {"minInputTokens": 200, "maxInputTokens": 2000, "maxOutputTokens": 50, "weight": 1},
    ]
    pool = small_pool(
        "mixauto",
        pool_ns,
        demand={
            "requestsPerSecond": 4,
            "routing": "SizeAware",
            "requestMix": mix,
            # a mix held within 5 points of the last measured one; 15 s windows of ~8 req/s measure a
            # share to about +-0.04 (binomial), so the plan is within 0.1 of the traffic's
            "autoscaling": {"scaleDownStabilizationSeconds": 15, "tolerancePercent": 5},
        },
        placement={"allowedClasses": ["l4", "h100"]},
    )
    kube.create_pool(pool)
    key = f"{pool_ns}/mixauto"

    def planned() -> tuple[list[float], list[float]] | None:
        status = kube.pool(pool_ns, "mixauto").get("status") or {}
        measured = (status.get("autoscaling") or {}).get("requestMix")
        placements = [p for p in status.get("placements") or [] if p.get("bucketRequestsPerSecond")]
        if not measured or not placements:
            return None
        routed = [sum(p["bucketRequestsPerSecond"][i] for p in placements) for i in range(2)]
        return [b["share"] for b in measured], routed

    def near(target: list[float]) -> tuple[list[float], list[float]] | None:
        got = planned()
        if got is None or max(abs(a - b) for a, b in zip(got[0], target, strict=True)) > 0.1:
            return None
        return got

    wait_for(
        lambda: (simulator.state()["pools"].get(key) or {}).get("serving", 0) > 0,
        timeout=60,
        what="the simulator serving the pool",
    )
    for weights, target in (([9, 1], [0.9, 0.1]), ([2, 8], [0.2, 0.8])):
        simulator.set_load(key, 8.0, mix=weights)
        shares, routed = wait_for(
            lambda target=target: near(target), timeout=120, what=f"the planned mix near {target}"
        )
        assert abs(sum(shares) - 1) < 1e-3
        # the plan routes each bucket its measured share of the demand
        total = sum(routed)
        assert total > 0 and all(abs(r / total - s) < 0.01 for r, s in zip(routed, shares, strict=True))
        table = table_of(kube, pool_ns, "mixauto")
        assert (
            table is not None and table.generation == kube.pool(pool_ns, "mixauto")["metadata"]["generation"]
        )
