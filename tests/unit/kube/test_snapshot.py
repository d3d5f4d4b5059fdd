"""The pure parts of ``kube/snapshot.py``: the devices a pod holds as the scheduler counts them,
the foreign usage per node, our live replicas, the trimming of pods (which must not change the
arithmetic), the node fingerprint, paginated LISTs and the order of a built snapshot."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from inferfleet.kube.snapshot import (
    build_snapshot,
    foreign_usage,
    list_source,
    live_replicas,
    node_fingerprint,
    pod_requests,
    sources,
    trim_node,
    trim_pod,
)

Obj = dict[str, Any]
GPU = "nvidia.com/gpu"
API: Any = None  # no client: the request function is a fake


def container(requests: Obj | None = None, limits: Obj | None = None, **extra: Any) -> Obj:
    resources: Obj = {}
    if requests is not None:
        resources["requests"] = requests
    if limits is not None:
        resources["limits"] = limits
    return {"name": "c", "image": "i", "resources": resources, **extra}


def pod(
    containers: list[Obj],
    *,
    node: str | None = "n1",
    phase: str = "Running",
    labels: Obj | None = None,
    init: list[Obj] | None = None,
    overhead: Obj | None = None,
) -> Obj:
    spec: Obj = {"containers": containers}
    if node:
        spec["nodeName"] = node
    if init is not None:
        spec["initContainers"] = init
    if overhead is not None:
        spec["overhead"] = overhead
    return {
        "metadata": {"name": "p", "namespace": "ns", "labels": labels or {}},
        "spec": spec,
        "status": {"phase": phase},
    }


def ours(pool: str, cls: str, node: str, phase: str = "Running") -> Obj:
    labels = {
        "app.kubernetes.io/managed-by": "inferfleet",
        "inferfleet.dev/pool": pool,
        "inferfleet.dev/accelerator-class": cls,
    }
    return pod([container(limits={GPU: "1"})], node=node, phase=phase, labels=labels)


def node(name: str, ready: str | None = "True", **status: Any) -> Obj:
    conditions = [] if ready is None else [{"type": "Ready", "status": ready, "lastHeartbeatTime": "t0"}]
    return {
        "metadata": {"name": name, "labels": {"a": "b"}},
        "spec": {},
        "status": {"conditions": conditions, **status},
    }


# --- pod_requests -------------------------------------------------------------------------------


def test_requests_sum_over_containers_and_default_to_limits_for_extended_resources() -> None:
    p = pod([container(requests={GPU: "2", "cpu": "4"}), container(limits={GPU: "1", "memory": "1Gi"})])
    assert pod_requests(p) == {GPU: 3}, "only names with a '/' count; cpu and memory are not devices"


def test_a_request_wins_over_its_limit() -> None:
    assert pod_requests(pod([container(requests={GPU: "2"}, limits={GPU: "4"})])) == {GPU: 2}


def test_init_containers_count_at_their_peak_and_sidecars_alongside_the_app() -> None:
    init = [
        container(limits={GPU: "1"}, restartPolicy="Always"),  # a sidecar: runs with everything after
        container(limits={GPU: "6"}),  # peak while it runs: 6 + the sidecar's 1
        container(limits={GPU: "2"}),
    ]
    assert pod_requests(pod([container(limits={GPU: "2"})], init=init)) == {GPU: 7}
    assert pod_requests(pod([container(limits={GPU: "8"})], init=init)) == {GPU: 9}, "app 8 + sidecar 1"


def test_pod_overhead_is_added_and_garbage_or_zero_quantities_are_ignored() -> None:
    p = pod(
        [container(limits={GPU: "1", "example.com/fpga": "not-a-number", "example.com/zero": "0"})],
        overhead={"example.com/nic": "500m"},
    )
    assert pod_requests(p) == {GPU: 1, "example.com/nic": 1}, "fractions round up; 0 and garbage drop"


# --- foreign_usage ------------------------------------------------------------------------------


def test_foreign_usage_sums_bound_unfinished_pods_not_ours_per_node() -> None:
    pods = [
        pod([container(limits={GPU: "2"})], node="n1"),
        pod([container(limits={GPU: "1"})], node="n1", phase="Pending"),
        pod([container(limits={GPU: "4"})], node="n2"),
        pod([container(limits={GPU: "8"})], node=None),  # unbound: holds nothing yet
        pod([container(limits={GPU: "8"})], node="n2", phase="Succeeded"),
        pod([container(limits={GPU: "8"})], node="n2", phase="Failed"),
        ours("chat", "h100", "n1"),  # ours: re-planned, not foreign
        pod([container(requests={"cpu": "1"})], node="n3"),  # no devices: no entry
    ]
    assert foreign_usage(pods) == {"n1": {GPU: 3}, "n2": {GPU: 4}}


# --- live_replicas ------------------------------------------------------------------------------


def test_live_replicas_count_our_bound_unfinished_pods_on_ready_nodes() -> None:
    nodes = [node("n1"), node("n2", ready="False"), node("n3")]
    pods = [
        ours("chat", "h100", "n1"),
        ours("chat", "h100", "n1", phase="Pending"),
        ours("chat", "l4", "n3"),
        ours("chat", "h100", "n2"),  # node down: draws no power
        ours("chat", "h100", "n1", phase="Succeeded"),
        ours("chat", "h100", "n9"),  # unknown node
        pod([container(limits={GPU: "1"})], labels={"inferfleet.dev/pool": "chat"}),  # no class label
    ]
    assert live_replicas(pods, nodes) == {("ns/chat", "h100"): 2, ("ns/chat", "l4"): 1}


def test_a_node_without_a_ready_condition_is_not_ready_for_live_replicas() -> None:
    assert live_replicas([ours("chat", "h100", "n1")], [node("n1", ready=None)]) == {}


# --- trim_pod -----------------------------------------------------------------------------------


@pytest.mark.parametrize("labels", [{}, {"app.kubernetes.io/managed-by": "someone-else"}])
def test_trimming_keeps_the_arithmetic_and_drops_the_rest(labels: Obj) -> None:
    init = [container(limits={GPU: "1"}, restartPolicy="Always", image="sidecar", env=[{"name": "A"}])]
    full = pod(
        [container(limits={GPU: "3"}, env=[{"name": "B"}])], labels=labels, init=init, overhead={GPU: "1"}
    )
    full["metadata"]["annotations"] = {"big": "x" * 1000}
    full["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
    mine = ours("chat", "h100", "n1")
    nodes = [node("n1")]
    trimmed = [trim_pod(copy.deepcopy(p)) for p in (full, mine)]
    assert foreign_usage(trimmed) == foreign_usage([full, mine]) == {"n1": {GPU: 5}}
    assert live_replicas(trimmed, nodes) == live_replicas([full, mine], nodes) == {("ns/chat", "h100"): 1}
    assert pod_requests(trimmed[0]) == pod_requests(full)
    assert "annotations" not in trimmed[0]["metadata"] and "conditions" not in trimmed[0]["status"]
    assert "env" not in trimmed[0]["spec"]["containers"][0]
    assert len(str(trimmed[0])) < len(str(full)) / 3


def test_a_kept_node_loses_its_image_list_and_nothing_placement_reads() -> None:
    full = node("n1", allocatable={GPU: "8"}, images=[{"names": ["registry/x:1"], "sizeBytes": 1}])
    kept = {s.name: s for s in sources()}["Node"].prepare(copy.deepcopy(full))
    assert "images" not in kept["status"]
    del full["status"]["images"]
    assert kept == {**full, "apiVersion": "v1", "kind": "Node"}
    assert trim_node({"metadata": {"name": "bare"}}) == {"metadata": {"name": "bare"}}


# --- node_fingerprint ---------------------------------------------------------------------------


def test_the_node_fingerprint_ignores_heartbeats_and_sees_what_placement_reads() -> None:
    base = node("n1", allocatable={GPU: "8"})
    heartbeat = copy.deepcopy(base)
    heartbeat["status"]["conditions"][0]["lastHeartbeatTime"] = "t1"
    heartbeat["metadata"]["resourceVersion"] = "999"
    assert node_fingerprint(heartbeat) == node_fingerprint(base)
    changes: list[Callable[[Obj], Any]] = [
        lambda n: n["status"].update(allocatable={GPU: "4"}),
        lambda n: n["status"]["conditions"][0].update(status="False"),
        lambda n: n["metadata"]["labels"].update(zone="b"),
        lambda n: n["spec"].update(unschedulable=True),
    ]
    for change in changes:
        changed = copy.deepcopy(base)
        change(changed)
        assert node_fingerprint(changed) != node_fingerprint(base)


# --- list_source and build_snapshot -------------------------------------------------------------


def test_a_paginated_list_follows_continue_tokens_and_keeps_the_first_pages_version() -> None:
    src = {s.name: s for s in sources("team-a")}["Deployment"]
    assert src.path() == "/apis/apps/v1/namespaces/team-a/deployments"
    pages = [
        {
            "metadata": {"resourceVersion": "10", "continue": "tok"},
            "items": [{"metadata": {"name": "a", "managedFields": [{}]}}],
        },
        {"metadata": {"resourceVersion": "12"}, "items": [{"metadata": {"name": "b"}}]},
    ]
    queries: list[dict[str, str]] = []

    def fake_request(_api: Any, method: str, path: str, *, query: Any, **_: Any) -> Obj:
        assert (method, path) == ("GET", src.path())
        queries.append(dict(query))
        return pages[len(queries) - 1]

    items, version = list_source(API, src, fake_request)
    assert version == "10"
    assert [i["metadata"]["name"] for i in items] == ["a", "b"]
    assert all(i["kind"] == "Deployment" and i["apiVersion"] == "apps/v1" for i in items)
    assert "managedFields" not in items[0]["metadata"]
    assert "continue" not in queries[0] and queries[1]["continue"] == "tok"
    assert queries[0]["labelSelector"] == "app.kubernetes.io/managed-by=inferfleet"


def test_namespace_mode_scopes_pools_and_children_but_never_nodes_or_pods() -> None:
    paths = {s.name: s.path() for s in sources("team-a")}
    assert "/namespaces/team-a/" in paths["InferencePool"]
    assert "/namespaces/team-a/" in paths["Service"]
    assert paths["Node"] == "/api/v1/nodes" and paths["Pod"] == "/api/v1/pods"
    assert "/namespaces/" not in paths["AcceleratorClass"] + paths["FleetPolicy"]
    assert {s.name: s for s in sources()}["FleetPolicy"].fields == "metadata.name=default"


def test_a_built_snapshot_is_ordered_and_splits_pods_into_ours_and_foreign() -> None:
    def named(ns: str | None, name: str) -> Obj:
        return {"metadata": {"name": name, **({"namespace": ns} if ns else {})}}

    got: dict[str, list[Obj]] = {s.name: [] for s in sources()}
    got["InferencePool"] = [named("b", "x"), named("a", "y"), named("a", "x")]
    got["Node"] = [node("n2"), node("n1")]
    got["Pod"] = [ours("chat", "h100", "n1"), pod([container(limits={GPU: "2"})], node="n2")]
    snap = build_snapshot(got)
    assert [(p["metadata"]["namespace"], p["metadata"]["name"]) for p in snap.pools] == [
        ("a", "x"),
        ("a", "y"),
        ("b", "x"),
    ]
    assert [n["metadata"]["name"] for n in snap.nodes] == ["n1", "n2"]
    assert snap.foreign_used == {"n2": {GPU: 2}}
    assert snap.live_replicas == {("ns/chat", "h100"): 1}
    assert snap.policy is None


def test_unbound_pods_of_ours_carry_the_scheduler_s_words() -> None:
    from inferfleet.kube.snapshot import trim_pending_pod, unschedulable

    def pending(name: str, pool: str, cls: str, reason: str, message: str) -> dict[str, Any]:
        return {
            "metadata": {
                "name": name,
                "namespace": "chat",
                "labels": {
                    "app.kubernetes.io/managed-by": "inferfleet",
                    "inferfleet.dev/pool": pool,
                    "inferfleet.dev/accelerator-class": cls,
                    "pod-template-hash": "x",
                },
            },
            "spec": {
                "containers": [{"name": "c", "image": "i", "env": [{"name": "A", "value": "b" * 1000}]}],
                "schedulingGates": [{"name": "inferfleet.dev/placement"}],
                "nodeSelector": {"inferfleet.dev/accelerator-class": cls, "kubernetes.io/hostname": "n1"},
            },
            "status": {
                "phase": "Pending",
                "conditions": [
                    {"type": "PodScheduled", "status": "False", "reason": reason, "message": message},
                ],
            },
        }

    why = "0/12 nodes are available: 12 Insufficient cpu."
    pods = [
        trim_pending_pod(pending("a", "llama", "h100", "Unschedulable", why)),
        trim_pending_pod(pending("b", "llama", "h100", "Unschedulable", why)),
        trim_pending_pod(pending("c", "llama", "l4", "SchedulingGated", "gated")),  # not the scheduler's no
    ]
    assert "pod-template-hash" not in pods[0]["metadata"]["labels"]
    assert pods[0]["spec"] == {  # what pinning reads, nothing else
        "schedulingGates": [{"name": "inferfleet.dev/placement"}],
        "nodeSelector": {"kubernetes.io/hostname": "n1"},
    }
    assert unschedulable(pods) == {("chat/llama", "h100"): (2, why)}
