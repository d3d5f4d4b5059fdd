"""Failures the operator meets show in status and events, on the real control plane.

A write the API server refuses (here a ValidatingAdmissionPolicy that denies the pool's
Deployments: what an admission webhook, a quota or a policy engine does on a real cluster) makes
the pool Placed=False, reason ApplyFailed, with the server's words, and one ApplyFailed event, not
one per round; removing the cause heals it.  Replicas the scheduler can never place (more memory
than any node has) make the pool Ready=False, reason Unschedulable, with the scheduler's message.
"""

# ruff: noqa: F811 - pytest fixtures imported from test_operator are parameters here
from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from test_operator import (  # noqa: F401
    Kube,
    conditions,
    fleet,
    kube,
    operator,
    operator_log_on_failure,
    operators,
    pool_ns,
    shared_operator,
    small_pool,
)

from inferfleet_dev.cluster import Cluster

pytestmark = [pytest.mark.integration]


def _policy(namespace: str) -> list[dict[str, Any]]:
    name = f"deny-deployments-{namespace}"
    return [
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": name},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {
                    "resourceRules": [
                        {
                            "apiGroups": ["apps"],
                            "apiVersions": ["v1"],
                            "operations": ["CREATE", "UPDATE"],
                            "resources": ["deployments"],
                        }
                    ],
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
                },
                "validations": [
                    {"expression": "false", "message": "deployments are frozen in this namespace"}
                ],
            },
        },
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": name},
            "spec": {"policyName": name, "validationActions": ["Deny"]},
        },
    ]


@pytest.fixture
def frozen(cluster: Cluster, pool_ns: str, wait_for: Callable[..., Any]) -> Iterator[list[dict[str, Any]]]:
    objs = _policy(pool_ns)
    cluster.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": objs}))
    # the policy takes effect asynchronously: wait until a Deployment is refused
    probe = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "probe", "namespace": pool_ns},
        "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "template": {
                "metadata": {"labels": {"a": "b"}},
                "spec": {"containers": [{"name": "c", "image": "i"}]},
            },
        },
    }

    def refused() -> bool:
        out = cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(probe), check=False)
        return out.returncode != 0 and "frozen" in out.stderr

    wait_for(refused, timeout=30, what="the admission policy to refuse Deployments")
    yield objs
    for obj in objs:
        cluster.kubectl(
            "delete", obj["kind"].lower(), obj["metadata"]["name"], "--ignore-not-found", check=False
        )


def test_a_refused_child_is_placed_false_with_the_server_s_words_and_one_event(
    kube: Kube,
    pool_ns: str,
    frozen: list[dict[str, Any]],
    operator: Any,
    cluster: Cluster,
    wait_for: Callable[..., Any],
) -> None:
    kube.create_pool(small_pool("frozen", pool_ns))

    def refused_in_status() -> dict[str, Any] | None:
        placed = conditions(kube.pool(pool_ns, "frozen")).get("Placed")
        return placed if placed and placed["reason"] == "ApplyFailed" else None

    placed = wait_for(refused_in_status, timeout=60, what="Placed=False, ApplyFailed")
    assert placed["status"] == "False"
    assert (
        "refused to apply Deployment" in placed["message"] and "frozen in this namespace" in placed["message"]
    )
    ready = conditions(kube.pool(pool_ns, "frozen"))["Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "ApplyFailed")
    time.sleep(8)  # several rounds (the operator retries the apply each round)
    said = kube.events(pool_ns, "frozen", "ApplyFailed")
    assert len(said) == 1 and "frozen in this namespace" in said[0].message, [e.message for e in said]
    assert kube.events(pool_ns, "frozen", "Placed") == []  # nothing was placed, nothing said so
    assert kube.deployments(pool_ns) == []

    for obj in frozen:  # the cause goes: the next rounds place the pool and say so
        cluster.kubectl("delete", obj["kind"].lower(), obj["metadata"]["name"])

    def placed_now() -> bool:
        got = conditions(kube.pool(pool_ns, "frozen")).get("Placed")
        return bool(got and got["status"] == "True" and kube.deployments(pool_ns))

    wait_for(placed_now, timeout=60, what="Placed=True once the policy is gone")


def test_replicas_no_node_can_hold_are_unschedulable_with_the_scheduler_s_message(
    kube: Kube, pool_ns: str, operator: Any, wait_for: Callable[..., Any]
) -> None:
    pool = small_pool(
        "huge", pool_ns, server={"image": "registry.invalid/inference:1", "memory": "9999999Gi"}
    )
    kube.create_pool(pool)

    def unschedulable() -> dict[str, Any] | None:
        ready = conditions(kube.pool(pool_ns, "huge")).get("Ready")
        return ready if ready and ready["reason"] == "Unschedulable" else None

    ready = wait_for(unschedulable, timeout=90, what="Ready=False, Unschedulable")
    assert ready["status"] == "False"
    assert "cannot be scheduled" in ready["message"] and "Insufficient memory" in ready["message"], ready
    # the event follows the status in the same round: wait for it rather than race it
    said = wait_for(lambda: kube.events(pool_ns, "huge", "Unschedulable"), timeout=30, what="the event")
    assert len(said) == 1 and "Insufficient memory" in said[0].message


def test_pods_a_replicaset_cannot_create_are_said_in_ready_with_the_controllers_words(
    kube: Kube, pool_ns: str, operator: Any, wait_for: Callable[..., Any]
) -> None:
    # the API server accepts the Deployment; its ReplicaSet cannot create a Pod naming a missing
    # ServiceAccount (the ServiceAccount admission plugin refuses it)
    pool = small_pool(
        "no-sa", pool_ns, server={"image": "registry.invalid/inference:1", "serviceAccountName": "missing"}
    )
    kube.create_pool(pool)

    def failing() -> dict[str, Any] | None:
        ready = conditions(kube.pool(pool_ns, "no-sa")).get("Ready")
        return ready if ready and ready["reason"] == "ReplicaFailure" else None

    ready = wait_for(failing, timeout=90, what="Ready=False, ReplicaFailure")
    assert ready["status"] == "False" and "cannot create pods" in ready["message"], ready
    assert "missing" in ready["message"], ready
    said = wait_for(lambda: kube.events(pool_ns, "no-sa", "ReplicaFailure"), timeout=30, what="the event")
    assert len(said) == 1 and (said[0].count or 1) == 1


def test_deleting_the_fleet_policy_pauses_planning_and_every_class_says_why(
    kube: Kube, pool_ns: str, operator: Any, cluster: Cluster, wait_for: Callable[..., Any]
) -> None:
    kube.create_pool(small_pool("steady", pool_ns))

    def placed() -> bool:
        got = conditions(kube.pool(pool_ns, "steady")).get("Placed")
        return bool(got and got["status"] == "True" and kube.deployments(pool_ns))

    wait_for(placed, timeout=60, what="the pool placed")
    policy = kube.cluster_object("fleetpolicies", "default")
    manifest = {k: policy[k] for k in ("apiVersion", "kind", "spec")}
    manifest["metadata"] = {"name": "default"}
    recorded = {
        c["metadata"]["name"]: (c.get("status") or {}).get("powerBudgetWatts")
        for c in kube.custom.list_cluster_custom_object("inferfleet.dev", "v1alpha1", "acceleratorclasses")[
            "items"
        ]
    }
    assert any(w for w in recorded.values()), recorded  # the budgets were recorded on the classes
    before = {d.metadata.name: d.spec.replicas for d in kube.deployments(pool_ns)}
    cluster.kubectl("delete", "fleetpolicies.inferfleet.dev", "default")
    try:

        def every_class_says_so() -> bool:
            items = kube.custom.list_cluster_custom_object("inferfleet.dev", "v1alpha1", "acceleratorclasses")
            return all(
                conditions(c).get("PowerBudget", {}).get("reason") == "PolicyMissing" for c in items["items"]
            )

        wait_for(every_class_says_so, timeout=30, what="PowerBudget=False, PolicyMissing on every class")
        # demand grows while the policy is gone: nothing is added (budgets fail closed)
        cluster.kubectl(
            "patch",
            "inferencepools.inferfleet.dev",
            "steady",
            "-n",
            pool_ns,
            "--type=merge",
            "-p",
            json.dumps({"spec": {"demand": {"requestsPerSecond": 40}}}),
        )
        time.sleep(6)
        assert {d.metadata.name: d.spec.replicas for d in kube.deployments(pool_ns)} == before
    finally:
        cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest))

    def resumed() -> bool:
        now = {d.metadata.name: d.spec.replicas for d in kube.deployments(pool_ns)}
        return sum(now.values()) > sum(before.values())

    wait_for(resumed, timeout=60, what="planning to resume once the policy is back")


def test_a_misspelt_power_domain_freezes_the_class_and_a_second_policy_is_refused(
    kube: Kube, pool_ns: str, operator: Any, cluster: Cluster, wait_for: Callable[..., Any]
) -> None:
    second = {
        "apiVersion": "inferfleet.dev/v1alpha1",
        "kind": "FleetPolicy",
        "metadata": {"name": "staging"},
        "spec": {"powerDomains": []},
    }
    refused = cluster.kubectl("apply", "-f", "-", input=json.dumps(second), check=False)
    assert refused.returncode != 0 and "must be named default" in refused.stderr, refused.stderr

    kube.create_pool(small_pool("steady", pool_ns))
    wait_for(lambda: kube.deployments(pool_ns), timeout=60, what="the pool placed")
    dep = kube.deployments(pool_ns)[0]
    cls = dep.metadata.labels["inferfleet.dev/accelerator-class"]
    domain = kube.cluster_object("acceleratorclasses", cls)["spec"]["powerDomain"]
    patch = ["patch", "acceleratorclasses.inferfleet.dev", cls, "--type=merge", "-p"]
    cluster.kubectl(*patch, json.dumps({"spec": {"powerDomain": f"{domain}-typo"}}))
    try:

        def said() -> dict[str, Any] | None:
            got = conditions(kube.cluster_object("acceleratorclasses", cls)).get("PowerBudget")
            return got if got and got["reason"] == "UnknownPowerDomain" else None

        cond = wait_for(said, timeout=30, what=f"{cls}: PowerBudget=False, UnknownPowerDomain")
        assert (
            f"'{domain}-typo' is not listed" in cond["message"] and "nothing new is placed" in cond["message"]
        )
        # the event follows the status in the same round: wait for it rather than race it
        wait_for(lambda: kube.events("default", cls, "UnknownPowerDomain"), timeout=30, what="the event")
        kube.custom.patch_namespaced_custom_object(
            "inferfleet.dev",
            "v1alpha1",
            pool_ns,
            "inferencepools",
            "steady",
            {"spec": {"demand": {"requestsPerSecond": 20}}},
        )

        def grew_elsewhere() -> bool:
            others = [d for d in kube.deployments(pool_ns) if d.metadata.name != dep.metadata.name]
            return sum(d.spec.replicas for d in others) > 0

        wait_for(grew_elsewhere, timeout=60, what="the extra demand placed on other classes")
        kept = kube.apps.read_namespaced_deployment(dep.metadata.name, pool_ns)
        assert kept.metadata.uid == dep.metadata.uid and kept.spec.replicas == dep.spec.replicas
    finally:
        cluster.kubectl(*patch, json.dumps({"spec": {"powerDomain": domain}}))
    wait_for(
        lambda: (
            conditions(kube.cluster_object("acceleratorclasses", cls))["PowerBudget"]["reason"]
            == "BudgetKnown"
        ),
        timeout=30,
        what=f"{cls}: its budget known again",
    )
