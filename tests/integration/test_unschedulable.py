"""The scheduler's feedback, on the real control plane: replicas the plan puts on a class whose
nodes cannot run them (CPU no node of it has) are reported with the scheduler's words, and after
``planning.unschedulableReplanSeconds`` re-planned elsewhere; every replica then runs, none is
Pending, and the class is held off (its Deployment scaled to 0, not deleted).
"""

# ruff: noqa: F811 - pytest fixtures imported from test_operator are parameters here
from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from test_operator import (  # noqa: F401
    CLASS_LABEL,
    GROUP,
    POOL_LABEL,
    Kube,
    conditions,
    examples,
    fleet,
    kube,
    operator,
    operator_log_on_failure,
    operators,
    policy_restored,
    pool_ns,
    shared_operator,
    small_pool,
)

from inferfleet.api.simulatedfleet import node_manifests, parse_fleet
from inferfleet_dev.cluster import Cluster
from inferfleet_dev.nodes import apply_nodes, wait_nodes_ready

pytestmark = [pytest.mark.integration]

CRAMPED, ROOMY = "cramped", "roomy"  # cramped is cheaper, but its nodes have 2 CPUs
REPLAN_S = 10


def _nodes() -> list[dict[str, Any]]:
    def group(name: str, cpu: str) -> dict[str, Any]:
        return {
            "name": name,
            "acceleratorClass": name,
            "count": 2,
            "devicesPerNode": 8,
            "resource": "aws.amazon.com/neuron",
            "powerDomain": "hall-b",
            "zone": "zone-u",
            "capacity": {"cpu": cpu, "memory": "512Gi", "pods": "110"},
        }

    doc = {
        "apiVersion": "sim.inferfleet.dev/v1alpha1",
        "kind": "SimulatedFleet",
        "metadata": {"name": "unsched"},
        "spec": {"pools": [group(CRAMPED, "2"), group(ROOMY, "64")]},
    }
    return node_manifests(parse_fleet(doc))


def _class(name: str, price: str) -> dict[str, Any]:
    cls = copy.deepcopy(
        next(c for c in examples("AcceleratorClass") if c["metadata"]["name"] == "inferentia2")
    )
    cls["metadata"] = {"name": name}
    cls["spec"]["nodeSelector"] = {CLASS_LABEL: name}
    cls["spec"]["tolerations"] = [
        {"key": "inferfleet.dev/accelerator", "operator": "Equal", "value": name, "effect": "NoSchedule"}
    ]
    cls["spec"]["devicesPerNode"] = 8
    cls["spec"]["powerDomain"] = "hall-b"
    cls["spec"]["price"] = {"dollarsPerDeviceHour": price}
    cls["spec"]["profiles"] = [{"model": "unsched/m", "devices": 2, "requestsPerSecond": 1}]
    return cls


@pytest.fixture
def two_classes(
    kube: Kube, kube_api: Any, fleet: dict[str, Any], pool_ns: str, wait_for: Callable[..., Any]
) -> Iterator[None]:
    nodes = _nodes()
    names = [n["metadata"]["name"] for n in nodes]
    apply_nodes(kube_api, nodes, prune=False)
    wait_nodes_ready(kube_api, names, timeout=60)
    for name, price in ((CRAMPED, "0.10"), (ROOMY, "0.90")):
        kube.custom.create_cluster_custom_object(GROUP, "v1alpha1", "acceleratorclasses", _class(name, price))
    try:
        yield
    finally:
        for pool in kube.pools(pool_ns):
            kube.custom.delete_namespaced_custom_object(
                GROUP, "v1alpha1", pool_ns, "inferencepools", pool["metadata"]["name"]
            )
        wait_for(lambda: not kube.pods(pool_ns, POOL_LABEL), timeout=60, what="the test's replicas gone")
        for name in (CRAMPED, ROOMY):
            kube.custom.delete_cluster_custom_object(GROUP, "v1alpha1", "acceleratorclasses", name)
        for name in names:
            kube.core.delete_node(name)


def _explain(kube: Kube, namespace: str) -> None:
    """What the cluster shows when a wait fails: the pool's status, its pods, its ReplicaSets' events."""
    print(json.dumps(kube.pool(namespace, "needs-cpu").get("status"), indent=1)[:3000])
    for pod in kube.core.list_namespaced_pod(namespace).items:
        conds = [(c.type, c.status, c.reason, c.message) for c in pod.status.conditions or ()]
        print(pod.metadata.name, pod.status.phase, pod.spec.node_name, pod.spec.node_selector, conds)
    for e in kube.core.list_namespaced_event(namespace).items:
        print(e.involved_object.kind, e.involved_object.name, e.reason, (e.message or "")[:300])


def test_replicas_that_cannot_schedule_on_a_class_are_replanned_elsewhere_and_all_run(
    operator: Any,
    kube: Kube,
    cluster: Cluster,
    pool_ns: str,
    two_classes: None,
    policy_restored: dict[str, Any],
    wait_for: Callable[..., Any],
) -> None:
    planning = {**policy_restored["spec"].get("planning", {}), "unschedulableReplanSeconds": REPLAN_S}
    cluster.kubectl(
        "patch",
        f"fleetpolicies.{GROUP}",
        "default",
        "--type=merge",
        "-p",
        json.dumps({"spec": {"planning": planning}}),
    )
    pool = small_pool(
        "needs-cpu",
        pool_ns,
        model={"name": "unsched/m", "parameters": "8B", "precision": "bf16", "contextLength": 8192},
        server={"image": "registry.invalid/inference:1", "cpu": "4", "memory": "8Gi"},
        demand={"requestsPerSecond": "2.5", "inputTokens": 512, "outputTokens": 128},
        placement={"allowedClasses": [CRAMPED, ROOMY]},
    )
    start = time.monotonic()
    kube.create_pool(pool)

    def said_unschedulable() -> dict[str, Any] | None:
        p = kube.pool(pool_ns, "needs-cpu")
        ready = conditions(p).get("Ready", {})
        return p if ready.get("reason") == "Unschedulable" else None

    try:
        first = wait_for(said_unschedulable, timeout=60, what="Ready=False, Unschedulable on the cheap class")
    except BaseException:
        _explain(kube, pool_ns)
        raise
    assert {pl["acceleratorClass"] for pl in first["status"]["placements"]} == {CRAMPED}
    assert "Insufficient cpu" in conditions(first)["Ready"]["message"]
    said_at = time.monotonic() - start

    def all_running_elsewhere() -> list[Any] | None:
        p = kube.pool(pool_ns, "needs-cpu")
        if {pl["acceleratorClass"] for pl in (p.get("status") or {}).get("placements", [])} != {ROOMY}:
            return None
        pods = kube.pods(pool_ns, f"{POOL_LABEL}=needs-cpu")
        ok = pods and all(x.status.phase == "Running" and x.metadata.deletion_timestamp is None for x in pods)
        return pods if ok and len(pods) == p["status"]["replicas"] else None

    pods = wait_for(all_running_elsewhere, timeout=90, what="every replica Running on the roomy class")
    took = time.monotonic() - start
    print(
        f"\nUnschedulable said {said_at:.1f}s after create; "
        f"all {len(pods)} Running on {ROOMY} after {took:.1f}s"
    )
    assert took >= REPLAN_S  # not before the bound (and, with a round due then, soon after it)
    for pod in pods:
        assert kube.core.read_node(pod.spec.node_name).metadata.labels[CLASS_LABEL] == ROOMY
    assert not [x for x in kube.pods(pool_ns, POOL_LABEL) if x.status.phase == "Pending"]
    final = kube.pool(pool_ns, "needs-cpu")
    placed = conditions(final)["Placed"]
    assert placed["status"] == "True" and f"{CRAMPED}: " in placed["message"], placed
    assert "could not be scheduled" in placed["message"] and "Insufficient cpu" in placed["message"]
    wait_for(
        lambda: conditions(kube.pool(pool_ns, "needs-cpu"))["Ready"]["status"] == "True",
        timeout=30,
        what="Ready=True once every replica runs",
    )
    replanned = kube.events(pool_ns, "needs-cpu", "Replanned")
    assert (
        len(replanned) == 1 and (replanned[0].count or 1) == 1 and "Insufficient cpu" in replanned[0].message
    )
    held = kube.apps.read_namespaced_deployment(f"needs-cpu-{CRAMPED}", pool_ns)
    assert held.spec.replicas == 0  # scaled, not deleted
    time.sleep(5)  # held: nothing goes back in the next rounds
    again = kube.pool(pool_ns, "needs-cpu")
    assert {pl["acceleratorClass"] for pl in again["status"]["placements"]} == {ROOMY}
    assert len(kube.events(pool_ns, "needs-cpu", "Replanned")) == 1
