"""``inferfleet plan --live`` on the real control plane, run as users run it (a process, stdout
parsed): with the operator running and settled it reports no change and reproduces every placement
the pools' status shows, exactly; with ``--power-budget`` it predicts what the operator then does
when the same budget is written to the FleetPolicy, exactly, per pool and class; and the chart's
read-only ClusterRole is all it needs, while it grants no write.

Uses the operator fixtures of ``test_operator`` (one operator process for the module, the example
classes and policy, a namespace per test whose pools are removed afterwards).
"""

# ruff: noqa: F811 - pytest fixtures imported from test_operator are parameters here
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_chart import can_i, sa_kubeconfig
from test_operator import (  # noqa: F401
    GROUP,
    Kube,
    example_pool,
    examples,
    fleet,
    kube,
    operator,
    operator_log_on_failure,
    operators,
    placements,
    policy_restored,
    pool_ns,
    shared_operator,
    wait_settled,
)

from inferfleet_dev import install
from inferfleet_dev.cluster import Cluster

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "inferfleet"


def plan_live(kubeconfig: Path, *flags: str) -> tuple[dict[str, Any], float]:
    """``python -m inferfleet plan --live -o json``: the document on stdout, and the wall time."""
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "operator"), env.get("PYTHONPATH")]))
    argv = [sys.executable, "-m", "inferfleet", "plan", "--live", f"--kubeconfig={kubeconfig}", "-o", "json"]
    start = time.monotonic()
    proc = subprocess.run(
        [*argv, *flags], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    took = time.monotonic() - start
    assert proc.returncode == 0, proc.stderr
    assert "HiGHS" not in proc.stderr, proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)  # nothing but the document on stdout
    return doc, took


def status_placements(kube: Kube, namespace: str) -> dict[str, dict[str, dict[str, Any]]]:
    """Pool -> class -> its status placement in the live plan's words (less readyReplicas)."""
    out = {}
    for pool in kube.pools(namespace):
        out[pool["metadata"]["name"]] = {
            cls: {
                ("class" if k == "acceleratorClass" else k): v for k, v in p.items() if k != "readyReplicas"
            }
            for cls, p in placements(pool).items()
        }
    return out


def planned(doc: dict[str, Any], namespace: str) -> dict[str, dict[str, dict[str, Any]]]:
    return {
        p["name"]: {x["class"]: x for x in p["placements"]}
        for p in doc["pools"]
        if p["namespace"] == namespace
    }


def place_examples(kube: Kube, namespace: str, wait_for: Callable[..., Any]) -> None:
    for pool in examples("InferencePool"):
        kube.create_pool(example_pool(pool["metadata"]["name"], namespace))
    wait_settled(kube, namespace, wait_for, timeout=90)


def policy_settled(kube: Kube) -> bool:
    policy = kube.cluster_object("fleetpolicies", "default")
    return bool((policy.get("status") or {}).get("observedGeneration") == policy["metadata"]["generation"])


def test_with_the_operator_settled_the_live_plan_changes_nothing_and_is_what_status_shows(
    cluster: Cluster, operator: Any, kube: Kube, pool_ns: str, wait_for: Callable[..., Any]
) -> None:
    place_examples(kube, pool_ns, wait_for)
    doc, took = plan_live(cluster.kubeconfig)
    solve = doc["solver"]["seconds"]
    print(f"\nplan --live, 4 pools over the example fleet: {took:.2f}s wall (process), solve {solve:.3f}s")
    assert doc["schema"] == "inferfleet.dev/plan-live/v1"
    assert doc["changed"] is False, (doc["writes"], doc["moves"])
    assert doc["writes"] == [] and doc["moves"] == [] and doc["gone"] == []
    assert doc["nodeMoves"] == []  # the packing keeps every bound replica where it runs
    assert {p["namespace"] for p in doc["pools"]} == {pool_ns}
    assert planned(doc, pool_ns) == status_placements(kube, pool_ns)
    assert all(r["delta"] == 0 for p in doc["pools"] for r in p["replicas"])
    totals = doc["totals"]
    assert totals["deltaWatts"] == 0 and totals["deltaDollarsPerHour"] == 0
    policy = kube.cluster_object("fleetpolicies", "default")
    used = {d["name"]: d["usedWatts"] for d in policy["status"]["domains"]}
    for d in doc["domains"]:  # the live plan's domains are the operator's
        assert d["plannedWatts"] == pytest.approx(used[d["name"]], abs=len(doc["pools"]) * 2), d


def test_a_lower_budget_predicts_exactly_what_the_operator_does_once_it_is_applied(
    cluster: Cluster,
    operator: Any,
    kube: Kube,
    pool_ns: str,
    policy_restored: dict[str, Any],
    wait_for: Callable[..., Any],
) -> None:
    place_examples(kube, pool_ns, wait_for)
    before = status_placements(kube, pool_ns)
    budgets = {d["name"]: d["budgetKilowatts"] for d in policy_restored["spec"]["powerDomains"]}
    lower = float(budgets["hall-b"]) * 2 / 3
    doc, took = plan_live(cluster.kubeconfig, "--power-budget", f"hall-b={lower:g}")
    print(f"\nplan --live --power-budget hall-b={lower:g}: {took:.2f}s wall")
    prediction = planned(doc, pool_ns)
    assert doc["changed"] is True and doc["writes"], doc
    assert prediction != before
    hall_b = next(d for d in doc["domains"] if d["name"] == "hall-b")
    assert hall_b["plannedWatts"] <= lower * 1000 < hall_b["currentWatts"], hall_b
    assert hall_b["binding"] is True and hall_b["deltaWatts"] < 0
    domains = [
        {**d, "budgetKilowatts": lower if d["name"] == "hall-b" else d["budgetKilowatts"]}
        for d in policy_restored["spec"]["powerDomains"]
    ]
    cluster.kubectl(
        "patch",
        f"fleetpolicies.{GROUP}",
        "default",
        "--type=merge",
        "-p",
        json.dumps({"spec": {"powerDomains": domains}}),
    )
    start = time.monotonic()
    wait_for(lambda: policy_settled(kube), timeout=60, what="the operator to plan the new budget")
    wait_settled(kube, pool_ns, wait_for, timeout=90, what="under the lower budget")
    print(f"operator settled under the lower budget {time.monotonic() - start:.1f}s after the patch")
    assert status_placements(kube, pool_ns) == prediction
    replicas = {d.metadata.name: d.spec.replicas for d in kube.deployments(pool_ns)}
    for w in doc["writes"]:  # the Deployments it said the operator would write, as written
        if w["kind"] == "Deployment" and w["verb"] == "apply":
            assert replicas.get(w["name"]) == w["replicasAfter"], (w, replicas)
    again, _ = plan_live(cluster.kubeconfig)
    assert again["changed"] is False, again["writes"]


@pytest.fixture
def plan_reader(cluster: Cluster, tmp_path: Path) -> Iterator[Path]:
    """The chart's plan-reader ClusterRole (rendered alone), bound to a fresh ServiceAccount: a
    kubeconfig with nothing but that ServiceAccount's token."""
    helm = install.ensure_binaries(("helm",), quiet=True)["helm"]
    release = f"live-{uuid.uuid4().hex[:5]}"
    rendered = subprocess.run(
        [str(helm), "template", release, str(CHART), "--show-only", "templates/plan-reader-role.yaml"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    role = yaml.safe_load(rendered)
    name = role["metadata"]["name"]
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": "default"}],
    }
    cluster.kubectl("create", "serviceaccount", name, "-n", "default")
    objs = {"apiVersion": "v1", "kind": "List", "items": [role, binding]}
    try:
        cluster.kubectl("apply", "-f", "-", input=json.dumps(objs))
        yield sa_kubeconfig(cluster, "default", name, tmp_path / "reader.kubeconfig")
    finally:
        cluster.kubectl("delete", "clusterrolebinding,clusterrole", name, "--ignore-not-found", check=False)
        cluster.kubectl("delete", "serviceaccount", name, "-n", "default", "--ignore-not-found", check=False)


def test_the_charts_read_only_role_is_all_the_live_plan_needs(
    cluster: Cluster, fleet: dict[str, Any], plan_reader: Path
) -> None:
    doc, _ = plan_live(plan_reader, "--power-budget", "hall-a=5")
    assert doc["schema"] == "inferfleet.dev/plan-live/v1" and doc["solver"]["status"]
    for verb, resource in [
        ("create", "deployments.apps"),
        ("patch", "deployments.apps"),
        ("delete", "pods"),
        ("patch", "inferencepools.inferfleet.dev"),
        ("patch", "fleetpolicies.inferfleet.dev"),
        ("create", "events"),
        ("watch", "pods"),
        ("get", "secrets"),
    ]:
        assert not can_i(cluster, plan_reader, verb, resource, "-A"), f"the plan reader may {verb} {resource}"
