"""Plans the cluster runs node by node, on the real control plane: replicas wait at the placement
gate until the operator pins each to the node the plan packed it on.

The fleet fragments: three 12-device nodes filled with nine 4-device replicas, scaled down to six
(the ReplicaSet takes one off each node, so two remain on each and no node has 8 devices free, as
history leaves a fleet), then an 8-device replica that fits on no node as they stand.  The
operator moves one small replica to make room, and every planned replica ends Running on its
planned node with nothing Pending.  Two classes match those nodes; each node counts once and both
classes say so.
"""

# ruff: noqa: F811 - pytest fixtures imported from test_operator are parameters here
from __future__ import annotations

import copy
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
    pool_ns,
    shared_operator,
    small_pool,
)

from inferfleet.api.simulatedfleet import node_manifests, parse_fleet
from inferfleet_dev.nodes import apply_nodes, wait_nodes_ready

pytestmark = [pytest.mark.integration]

CLASSES = ("frag", "frag-twin")  # same nodes: "frag" owns them (same selector, first by name)
DEVICES = 12


def _fleet_nodes() -> list[dict[str, Any]]:
    doc = {
        "apiVersion": "sim.inferfleet.dev/v1alpha1",
        "kind": "SimulatedFleet",
        "metadata": {"name": "frag"},
        "spec": {
            "capacity": {"cpu": "192", "memory": "2Ti", "pods": "110"},
            "pools": [
                {
                    "name": "frag",
                    "acceleratorClass": "frag",
                    "count": 3,
                    "devicesPerNode": DEVICES,
                    "resource": "aws.amazon.com/neuron",
                    "powerDomain": "hall-b",
                    "zone": "zone-f",
                }
            ],
        },
    }
    return node_manifests(parse_fleet(doc))


def _frag_class(name: str) -> dict[str, Any]:
    cls = copy.deepcopy(
        next(c for c in examples("AcceleratorClass") if c["metadata"]["name"] == "inferentia2")
    )
    cls["metadata"] = {"name": name}
    cls["spec"]["nodeSelector"] = {CLASS_LABEL: "frag"}
    cls["spec"]["tolerations"] = [
        {"key": "inferfleet.dev/accelerator", "operator": "Equal", "value": "frag", "effect": "NoSchedule"}
    ]
    cls["spec"]["powerDomain"] = "hall-b"
    cls["spec"]["profiles"] = [
        {"model": "frag/small", "devices": 4, "requestsPerSecond": 1},
        {"model": "frag/big", "devices": 8, "requestsPerSecond": 1},
    ]
    return cls


@pytest.fixture
def frag_fleet(
    kube: Kube, kube_api: Any, fleet: dict[str, Any], pool_ns: str, wait_for: Callable[..., Any]
) -> Iterator[list[str]]:
    """Three 12-device nodes and two classes matching them; afterwards the test's pools and their
    pods are gone before the nodes are (a node deleted under running pods strands them)."""
    nodes = _fleet_nodes()
    names = [n["metadata"]["name"] for n in nodes]
    apply_nodes(kube_api, nodes, prune=False)
    wait_nodes_ready(kube_api, names, timeout=60)
    for name in CLASSES:
        kube.custom.create_cluster_custom_object(GROUP, "v1alpha1", "acceleratorclasses", _frag_class(name))
    try:
        yield names
    finally:
        for pool in kube.pools(pool_ns):
            kube.custom.delete_namespaced_custom_object(
                GROUP, "v1alpha1", pool_ns, "inferencepools", pool["metadata"]["name"]
            )
        wait_for(lambda: not _pods(kube, pool_ns), timeout=60, what="the test's replicas gone")
        for name in CLASSES:
            kube.custom.delete_cluster_custom_object(GROUP, "v1alpha1", "acceleratorclasses", name)
        for name in names:
            kube.core.delete_node(name)


def _pool(name: str, namespace: str, model: str, rps: str | int) -> dict[str, Any]:
    return small_pool(
        name,
        namespace,
        model={"name": model, "parameters": "8B", "precision": "bf16", "contextLength": 8192},
        demand={"requestsPerSecond": rps, "inputTokens": 512, "outputTokens": 128},
        placement={"allowedClasses": list(CLASSES)},
    )


def _pods(kube: Kube, namespace: str) -> list[Any]:
    return kube.pods(namespace, POOL_LABEL)


def _devices_by_node(kube: Kube, namespace: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for pod in _pods(kube, namespace):
        if pod.spec.node_name:
            limits = pod.spec.containers[0].resources.limits or {}
            out[pod.spec.node_name] = out.get(pod.spec.node_name, 0) + int(
                limits.get("aws.amazon.com/neuron", 0)
            )
    return out


def test_a_fragmenting_fleet_ends_with_every_replica_on_its_planned_node_and_none_pending(
    operator: Any, kube: Kube, pool_ns: str, frag_fleet: list[str], wait_for: Callable[..., Any]
) -> None:
    def running(pool: str, n: int) -> Callable[[], list[Any] | None]:
        def check() -> list[Any] | None:
            pods = [p for p in _pods(kube, pool_ns) if p.metadata.labels[POOL_LABEL] == pool]
            ok = len(pods) == n and all(p.status.phase == "Running" and p.spec.node_name for p in pods)
            return pods if ok else None

        return check

    # nine small replicas (7.5 req/s x 1.2 headroom, 1 req/s each) fill the nodes; six remain
    kube.create_pool(_pool("small", pool_ns, "frag/small", "7.5"))
    nine = wait_for(running("small", 9), timeout=120, what="nine 4-device replicas Running")
    first_on: dict[str, str] = {}
    for pod in sorted(nine, key=lambda p: p.metadata.name):
        first_on.setdefault(pod.spec.node_name, pod.metadata.name)
    for name in first_on.values():  # the ReplicaSet removes these first: one off each node
        kube.core.patch_namespaced_pod(
            name,
            pool_ns,
            {"metadata": {"annotations": {"controller.kubernetes.io/pod-deletion-cost": "-100"}}},
        )
    kube.custom.patch_namespaced_custom_object(
        GROUP, "v1alpha1", pool_ns, "inferencepools", "small", {"spec": {"demand": {"requestsPerSecond": 5}}}
    )
    small = wait_for(running("small", 6), timeout=90, what="six 4-device replicas Running")
    spread = _devices_by_node(kube, pool_ns)
    print(f"\nsmall replicas by node: {spread}")
    fragmented = sorted(spread.values()) == [8, 8, 8]  # no node has room for an 8-device replica
    start = time.monotonic()
    kube.create_pool(_pool("big", pool_ns, "frag/big", "0.5"))  # one 8-device replica
    big = wait_for(running("big", 1), timeout=120, what="the 8-device replica Running")
    settled = wait_for(running("small", 6), timeout=120, what="six small replicas Running again")
    took = time.monotonic() - start
    by_node = _devices_by_node(kube, pool_ns)
    moved = {p.metadata.name for p in small} - {p.metadata.name for p in settled}
    print(f"big Running after {took:.1f}s; small moved: {len(moved)}; devices by node: {by_node}")
    assert all(used <= DEVICES for used in by_node.values()) and sum(by_node.values()) == 32
    for pod in [*big, *settled]:  # each on the node it was pinned to
        assert pod.spec.node_selector.get("kubernetes.io/hostname") == pod.spec.node_name, pod.metadata.name
        assert not pod.spec.scheduling_gates
    assert not [p for p in _pods(kube, pool_ns) if p.status.phase == "Pending"]
    assert len(moved) == (1 if fragmented else 0)  # one move makes room; nothing else is disturbed

    for name, other in (CLASSES, CLASSES[::-1]):
        shared = conditions(kube.cluster_object("acceleratorclasses", name))["NodesShared"]
        assert shared["status"] == "True" and other in shared["message"], shared
    for pool in ("small", "big"):
        placed = {p["acceleratorClass"] for p in kube.pool(pool_ns, pool)["status"]["placements"]}
        assert placed == {"frag"}  # the twin owns no node: nothing planned on capacity counted twice
