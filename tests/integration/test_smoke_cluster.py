"""Smoke tests proving the dev cluster is real: scheduler placement, Pending on no fit, cordon,
garbage collection, and node readiness as the control plane sees it."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client

from inferfleet_dev.cluster import Cluster

pytestmark = pytest.mark.integration

CLASS_LABEL = "inferfleet.dev/accelerator-class"


def _pod_spec(cls: str, resource: str, count: int) -> dict[str, Any]:
    return {
        "nodeSelector": {CLASS_LABEL: cls},
        "tolerations": [
            {"key": "inferfleet.dev/accelerator", "operator": "Equal", "value": cls, "effect": "NoSchedule"}
        ],
        "containers": [
            {
                "name": "server",
                "image": "registry.invalid/inference:1",
                "resources": {"requests": {resource: str(count)}, "limits": {resource: str(count)}},
            }
        ],
        "terminationGracePeriodSeconds": 0,
    }


def _deployment(name: str, replicas: int, spec: dict[str, Any]) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": spec},
        },
    }


def _ready(pod: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or []))


def _pods(core: Any, ns: str, app: str) -> list[Any]:
    return list(core.list_namespaced_pod(ns, label_selector=f"app={app}").items)


def _wait_available(apps: Any, ns: str, name: str, replicas: int, wait_for: Callable[..., Any]) -> None:
    def available() -> bool:
        d = apps.read_namespaced_deployment(name, ns)
        return (d.status.available_replicas or 0) == replicas

    wait_for(available, timeout=60, what=f"deployment {name} to have {replicas} available replicas")


def test_cluster_is_a_real_control_plane(cluster: Cluster) -> None:
    assert cluster.kubeconfig.is_file()
    version = cluster.kubectl("version", "-o", "json").stdout
    assert '"gitVersion": "v1.36' in version
    status = cluster.status()
    assert status.state == "running"
    assert {s.accelerator_class for s in status.classes} >= {"h100", "groq", "tpu-v5e"}


def test_deployment_is_scheduled_on_matching_class_and_becomes_ready(
    kube_api: Any, namespace: str, wait_for: Callable[..., Any]
) -> None:
    core: Any = client.CoreV1Api(kube_api)
    apps: Any = client.AppsV1Api(kube_api)
    apps.create_namespaced_deployment(
        namespace, _deployment("llm", 3, _pod_spec("h100", "nvidia.com/gpu", 4))
    )
    _wait_available(apps, namespace, "llm", 3, wait_for)
    pods = _pods(core, namespace, "llm")
    assert len(pods) == 3
    for pod in pods:
        node = core.read_node(pod.spec.node_name)
        assert node.metadata.labels[CLASS_LABEL] == "h100", pod.spec.node_name
        assert pod.status.phase == "Running" and _ready(pod)
    events = core.list_namespaced_event(namespace, field_selector="reason=Scheduled").items
    assert any(
        e.source.component == "default-scheduler" or e.reporting_component == "default-scheduler"
        for e in events
    )


def test_pod_larger_than_any_node_stays_pending_with_failed_scheduling(
    kube_api: Any, namespace: str, wait_for: Callable[..., Any]
) -> None:
    core: Any = client.CoreV1Api(kube_api)
    core.create_namespaced_pod(
        namespace, {"metadata": {"name": "too-big"}, "spec": _pod_spec("h100", "nvidia.com/gpu", 9)}
    )

    def failed_scheduling() -> Any:
        events = core.list_namespaced_event(
            namespace, field_selector="involvedObject.name=too-big,reason=FailedScheduling"
        ).items
        return events[0] if events else None

    def unschedulable() -> Any:
        pod = core.read_namespaced_pod("too-big", namespace)
        cond = [c for c in pod.status.conditions or [] if c.type == "PodScheduled"]
        return pod if cond and cond[0].status == "False" and cond[0].reason == "Unschedulable" else None

    event = wait_for(failed_scheduling, timeout=30, what="a FailedScheduling event")
    assert "Insufficient nvidia.com/gpu" in event.message
    pod = wait_for(unschedulable, timeout=30, what="PodScheduled=False (Unschedulable)")
    assert pod.status.phase == "Pending" and not pod.spec.node_name


@pytest.fixture
def cordoned(kube_api: Any) -> Iterator[str]:
    core: Any = client.CoreV1Api(kube_api)
    node = "inferentia2-0"
    core.patch_node(node, {"spec": {"unschedulable": True}})
    yield node
    core.patch_node(node, {"spec": {"unschedulable": None}})


def test_cordoned_node_receives_no_new_pods(
    kube_api: Any, namespace: str, cordoned: str, wait_for: Callable[..., Any]
) -> None:
    core: Any = client.CoreV1Api(kube_api)
    apps: Any = client.AppsV1Api(kube_api)
    apps.create_namespaced_deployment(
        namespace, _deployment("neuron", 4, _pod_spec("inferentia2", "aws.amazon.com/neuron", 2))
    )
    _wait_available(apps, namespace, "neuron", 4, wait_for)
    nodes = {p.spec.node_name for p in _pods(core, namespace, "neuron")}
    assert cordoned not in nodes
    assert nodes == {"inferentia2-1"}


def test_deleting_a_deployment_garbage_collects_replicasets_and_pods(
    kube_api: Any, namespace: str, wait_for: Callable[..., Any]
) -> None:
    core: Any = client.CoreV1Api(kube_api)
    apps: Any = client.AppsV1Api(kube_api)
    apps.create_namespaced_deployment(namespace, _deployment("gc", 2, _pod_spec("l4", "nvidia.com/gpu", 1)))
    _wait_available(apps, namespace, "gc", 2, wait_for)
    assert apps.list_namespaced_replica_set(namespace, label_selector="app=gc").items
    apps.delete_namespaced_deployment("gc", namespace, propagation_policy="Background")

    def all_gone() -> bool:
        rs = apps.list_namespaced_replica_set(namespace, label_selector="app=gc").items
        return not rs and not _pods(core, namespace, "gc")

    wait_for(all_gone, timeout=60, what="ReplicaSets and pods of the deleted deployment to be collected")


@pytest.fixture
def dedicated_node(kube_api: Any, wait_for: Callable[..., Any]) -> Iterator[str]:
    """A kwok node outside the fleet, so failing it affects no other test."""
    core: Any = client.CoreV1Api(kube_api)
    name = f"it-chaos-{uuid.uuid4().hex[:6]}"
    capacity = {"cpu": "8", "memory": "64Gi", "pods": "10"}
    core.create_node(
        {
            "metadata": {
                "name": name,
                "labels": {"type": "kwok", "inferfleet.dev/test-node": "true"},
                "annotations": {"kwok.x-k8s.io/node": "fake"},
            },
            "spec": {
                "taints": [{"key": "inferfleet.dev/test-node", "value": "true", "effect": "NoSchedule"}]
            },
            "status": {"capacity": capacity, "allocatable": capacity},
        }
    )
    wait_for(lambda: _node_ready(core, name) == "True", timeout=30, what=f"node {name} Ready")
    yield name
    core.delete_node(name)


def _node_ready(core: Any, name: str) -> str:
    node = core.read_node(name)
    return next((c.status for c in node.status.conditions or [] if c.type == "Ready"), "Unknown")


def test_node_made_not_ready_is_seen_and_tainted_by_the_control_plane(
    kube_api: Any, dedicated_node: str, wait_for: Callable[..., Any]
) -> None:
    core: Any = client.CoreV1Api(kube_api)
    # kwok's node-not-ready chaos stage: the label makes kwok report Ready=False
    core.patch_node(dedicated_node, {"metadata": {"labels": {"node-not-ready.stage.kwok.x-k8s.io": "true"}}})
    wait_for(lambda: _node_ready(core, dedicated_node) == "False", timeout=30, what="node Ready=False")

    def not_ready_taint() -> bool:
        taints = core.read_node(dedicated_node).spec.taints or []
        return any(t.key == "node.kubernetes.io/not-ready" for t in taints)

    wait_for(not_ready_taint, timeout=30, what="the node lifecycle controller's not-ready taint")
    # and back: removing the label lets kwok's node-initialize stage mark it Ready again
    core.patch_node(dedicated_node, {"metadata": {"labels": {"node-not-ready.stage.kwok.x-k8s.io": None}}})
    wait_for(lambda: _node_ready(core, dedicated_node) == "True", timeout=30, what="node Ready again")
    wait_for(lambda: not not_ready_taint(), timeout=30, what="the not-ready taint to be removed")
