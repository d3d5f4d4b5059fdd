"""The Kubernetes I/O layer against the real API server: the snapshot and its foreign device
arithmetic, server-side apply, status patches, events, error mapping, and Lease leader election
(exclusive, fast hand-over on release, takeover within 20 s when the leader dies).

Cluster-scoped objects (classes, a node, the "default" FleetPolicy) get unique names or are left
as found, so these tests can share the cluster with others."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s
from kubernetes.config import ConfigException

from inferfleet.kube import client as kube_client
from inferfleet.kube.client import APIRejected, NotFound, TransientAPIError, make_api_client, request
from inferfleet.kube.lease import LeaderElector
from inferfleet.kube.snapshot import CRDsMissing, read_snapshot
from inferfleet.kube.writer import KubeWriter, NotLeader
from inferfleet_dev.cluster import Cluster

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
GROUP = "/apis/inferfleet.dev/v1alpha1"
MANAGED = {"app.kubernetes.io/managed-by": "inferfleet"}


def example(kind: str) -> dict[str, Any]:
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == kind:
                return copy.deepcopy(dict(doc))
    raise LookupError(kind)


def pod(name: str, node: str | None, gpus: int, labels: dict[str, str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "containers": [
            {
                "name": "server",
                "image": "registry.invalid/inference:1",
                "resources": {
                    "requests": {"nvidia.com/gpu": str(gpus), "cpu": "1"},
                    "limits": {"nvidia.com/gpu": str(gpus)},
                },
            }
        ],
        "tolerations": [{"operator": "Exists"}],
        "terminationGracePeriodSeconds": 0,
    }
    if node is None:
        spec["nodeSelector"] = {"inferfleet.dev/no-such-label": "x"}  # stays Pending, unbound
    else:
        spec["nodeName"] = node
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": spec,
    }


def deployment(
    namespace: str,
    name: str,
    replicas: int = 0,
    labels: dict[str, str] | None = None,
    image: str = "registry.invalid/inference:1",
) -> dict[str, Any]:
    selector = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": {**selector, **(labels or MANAGED)}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": selector},
                "spec": {"containers": [{"name": "server", "image": image}]},
            },
        },
    }


@pytest.fixture
def node(kube_api: Any) -> Iterator[str]:
    """A fake accelerator node of our own (tainted, so nothing else lands on it)."""
    name = f"it-kubeio-{uuid.uuid4().hex[:6]}"
    request(
        kube_api,
        "POST",
        "/api/v1/nodes",
        body={
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "annotations": {"kwok.x-k8s.io/node": "fake"},
                "labels": {"inferfleet.dev/accelerator-class": "it-h100", "type": "kwok"},
            },
            "spec": {"taints": [{"key": "inferfleet.dev/test-only", "value": "x", "effect": "NoSchedule"}]},
            "status": {
                "capacity": {"nvidia.com/gpu": "8", "cpu": "32", "memory": "256Gi", "pods": "110"},
                "allocatable": {"nvidia.com/gpu": "8", "cpu": "32", "memory": "256Gi", "pods": "110"},
            },
        },
    )
    yield name
    request(kube_api, "DELETE", f"/api/v1/nodes/{name}")


@pytest.fixture
def accelerator_class(kube_api: Any, crds: list[Path]) -> Iterator[dict[str, Any]]:
    obj = example("AcceleratorClass")
    obj["metadata"] = {"name": f"it-kubeio-{uuid.uuid4().hex[:6]}"}
    created: dict[str, Any] = request(kube_api, "POST", f"{GROUP}/acceleratorclasses", body=obj)
    yield created
    request(kube_api, "DELETE", f"{GROUP}/acceleratorclasses/{obj['metadata']['name']}")


@pytest.fixture
def inference_pool(kube_api: Any, crds: list[Path], namespace: str) -> dict[str, Any]:
    obj = example("InferencePool")
    obj["metadata"] = {"name": "chat", "namespace": namespace}
    created: dict[str, Any] = request(
        kube_api, "POST", f"{GROUP}/namespaces/{namespace}/inferencepools", body=obj
    )
    return created


@pytest.fixture
def writer(kube_api: Any) -> KubeWriter:
    return KubeWriter(kube_api, reporting_instance="it-kubeio")


def _get(api: Any, path: str) -> dict[str, Any] | None:
    try:
        got: dict[str, Any] = request(api, "GET", path)
    except NotFound:
        return None
    return got


# ------------------------------------------------------------------------------------------------
# client and snapshot
# ------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _client(kubeconfig: str | None = None) -> Iterator[Any]:
    api: Any = make_api_client(kubeconfig)  # Any: the client's type stubs know no close()
    try:
        yield api
    finally:
        api.close()


def test_make_api_client_from_a_path_then_from_the_environment(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with _client(str(cluster.kubeconfig)) as api:
        assert api.configuration.connection_pool_maxsize == 32
        assert request(api, "GET", "/version")["gitVersion"].startswith("v1.")
    monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig))
    with _client() as api:
        assert request(api, "GET", "/api/v1/namespaces/default")["metadata"]["name"] == "default"
    monkeypatch.delenv("KUBECONFIG")
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(ConfigException, match="no Kubernetes configuration"), _client():
        pass


def test_snapshot_reads_the_fleet_and_counts_only_foreign_devices(
    kube_api: Any,
    node: str,
    accelerator_class: dict[str, Any],
    inference_pool: dict[str, Any],
    wait_for: Callable[..., Any],
) -> None:
    namespace = inference_pool["metadata"]["namespace"]
    writer = KubeWriter(kube_api)
    pods = f"/api/v1/namespaces/{namespace}/pods"
    request(kube_api, "POST", pods, body=pod("foreign-a", node, 1))
    request(kube_api, "POST", pods, body=pod("foreign-b", node, 2, {"app.kubernetes.io/managed-by": "helm"}))
    request(kube_api, "POST", pods, body=pod("ours", node, 3, MANAGED))  # re-planned, not foreign
    request(kube_api, "POST", pods, body=pod("unbound", None, 1))  # holds nothing yet
    job_pod = pod("finished", node, 2)  # a Job's pod: kwok completes it, and then it frees its devices
    job_pod["spec"]["restartPolicy"] = "Never"
    request(
        kube_api,
        "POST",
        f"/apis/batch/v1/namespaces/{namespace}/jobs",
        body={
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "finished"},
            "spec": {"backoffLimit": 0, "template": {"spec": job_pod["spec"]}},
        },
    )
    writer.apply(deployment(namespace, "ours"))
    request(
        kube_api,
        "POST",
        f"/apis/apps/v1/namespaces/{namespace}/deployments",
        body=deployment(namespace, "theirs", labels={"team": "other"}),
    )

    def settled() -> Any:
        snap = read_snapshot(kube_api)
        job_pods = request(kube_api, "GET", pods, query=[("labelSelector", "job-name=finished")])["items"]
        done = bool(job_pods) and all(p["status"].get("phase") == "Succeeded" for p in job_pods)
        return snap if done and snap.foreign_used.get(node) == {"nvidia.com/gpu": 3} else None

    snap = wait_for(settled, timeout=30, what="foreign usage of 3 GPUs (1 + 2) on the test node")

    assert node in {n["metadata"]["name"] for n in snap.nodes}
    assert accelerator_class["metadata"]["name"] in {c["metadata"]["name"] for c in snap.classes}
    assert (namespace, "chat") in {(p["metadata"]["namespace"], p["metadata"]["name"]) for p in snap.pools}
    ours = {(d["metadata"]["namespace"], d["metadata"]["name"]) for d in snap.deployments}
    assert (namespace, "ours") in ours and (namespace, "theirs") not in ours
    for obj in [*snap.pools, *snap.deployments, *snap.nodes]:
        assert obj["apiVersion"] and obj["kind"], "items carry apiVersion and kind (events need them)"
        assert "managedFields" not in obj["metadata"]

    scoped = read_snapshot(kube_api, namespace)
    assert {p["metadata"]["namespace"] for p in scoped.pools} == {namespace}
    assert {d["metadata"]["namespace"] for d in scoped.deployments} == {namespace}
    assert scoped.foreign_used.get(node) == {"nvidia.com/gpu": 3}, "pods are read cluster-wide regardless"


def test_snapshot_policy_is_the_one_named_default(kube_api: Any, crds: list[Path]) -> None:
    path = f"{GROUP}/fleetpolicies/default"
    existing = _get(kube_api, path)
    if existing is not None:  # another test's: leave it alone, but it must be the one returned
        policy = read_snapshot(kube_api).policy or {}
        assert policy.get("metadata", {}).get("uid") == existing["metadata"]["uid"]
        return
    assert read_snapshot(kube_api).policy is None
    other = example("FleetPolicy")
    other["metadata"] = {"name": f"it-kubeio-{uuid.uuid4().hex[:6]}"}
    with pytest.raises(APIRejected, match="must be named default"):  # it would be ignored: refused
        request(kube_api, "POST", f"{GROUP}/fleetpolicies", body=other)
    try:
        assert read_snapshot(kube_api).policy is None
        request(
            kube_api,
            "POST",
            f"{GROUP}/fleetpolicies",
            body={**example("FleetPolicy"), "metadata": {"name": "default"}},
        )
        default = read_snapshot(kube_api).policy
        assert default is not None and default["metadata"]["name"] == "default"
    finally:
        if _get(kube_api, path) is not None:
            request(kube_api, "DELETE", path)


def test_missing_crds_are_named_with_how_to_install_them(
    kube_api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    unserved = {k: dataclasses.replace(v, version="v0nosuchversion") for k, v in kube_client.BY_KIND.items()}
    monkeypatch.setattr(kube_client, "BY_KIND", unserved)  # every CR list now 404s
    with pytest.raises(CRDsMissing) as err:
        read_snapshot(kube_api)
    assert err.value.missing == [
        "acceleratorclasses.inferfleet.dev",
        "fleetpolicies.inferfleet.dev",
        "inferencepools.inferfleet.dev",
    ]
    assert "kubectl apply --server-side -f crds/" in str(err.value)


# ------------------------------------------------------------------------------------------------
# writer
# ------------------------------------------------------------------------------------------------


def _stable_rv(api: Any, path: str, wait_for: Callable[..., Any]) -> str:
    """resourceVersion once the controllers have stopped writing status (unchanged for 1 s)."""

    def settled() -> str | None:
        before = (_get(api, path) or {}).get("metadata", {}).get("resourceVersion")
        time.sleep(1.0)
        after = (_get(api, path) or {}).get("metadata", {}).get("resourceVersion")
        return after if before == after else None

    rv: str = wait_for(settled, timeout=30, what=f"{path} to settle")
    return rv


def test_apply_is_server_side_idempotent_and_takes_fields_back(
    kube_api: Any, namespace: str, writer: KubeWriter, wait_for: Callable[..., Any]
) -> None:
    path = f"/apis/apps/v1/namespaces/{namespace}/deployments/llm"
    writer.apply(deployment(namespace, "llm"))
    rv = _stable_rv(kube_api, path, wait_for)

    writer.apply(deployment(namespace, "llm"))
    after = request(kube_api, "GET", path)
    assert after["metadata"]["resourceVersion"] == rv, "a no-op apply must not write"
    managers = {(m["manager"], m["operation"]) for m in after["metadata"]["managedFields"]}
    assert ("inferfleet", "Apply") in managers

    # someone else scales it; force=True takes the field back on our next apply
    request(
        kube_api,
        "PATCH",
        f"{path}/scale",
        content_type="application/merge-patch+json",
        body={"spec": {"replicas": 2}},
        query=[("fieldManager", "kubectl")],
    )
    writer.apply(deployment(namespace, "llm"))
    assert request(kube_api, "GET", path)["spec"]["replicas"] == 0

    writer.apply(deployment(namespace, "llm", image="registry.invalid/inference:2"))
    changed = request(kube_api, "GET", path)
    assert changed["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.invalid/inference:2"

    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "llm", "namespace": namespace, "labels": MANAGED},
        "spec": {"selector": {"app": "llm"}, "ports": [{"name": "http", "port": 8000}]},
    }
    writer.apply(service)
    writer.apply(service)
    assert (
        request(kube_api, "GET", f"/api/v1/namespaces/{namespace}/services/llm")["spec"]["ports"][0]["port"]
        == 8000
    )
    assert writer.writes[("Deployment", "apply")] == 4
    assert writer.writes[("Service", "apply")] == 2


def test_delete_is_background_and_404_is_fine(
    kube_api: Any, namespace: str, writer: KubeWriter, wait_for: Callable[..., Any]
) -> None:
    writer.apply(deployment(namespace, "gone"))
    writer.delete("Deployment", namespace, "gone")
    wait_for(
        lambda: _get(kube_api, f"/apis/apps/v1/namespaces/{namespace}/deployments/gone") is None,
        timeout=30,
        what="the deployment to disappear",
    )
    writer.delete("Deployment", namespace, "gone")
    writer.delete("Service", namespace, "never-existed")
    assert writer.writes[("Deployment", "delete")] == 2


def test_status_patch_lands_on_the_status_subresource_as_a_merge(
    kube_api: Any, inference_pool: dict[str, Any], accelerator_class: dict[str, Any], writer: KubeWriter
) -> None:
    ns, name = inference_pool["metadata"]["namespace"], inference_pool["metadata"]["name"]
    path = f"{GROUP}/namespaces/{ns}/inferencepools/{name}"
    writer.patch_status(
        "InferencePool", ns, name, {"observedGeneration": 1, "replicas": 3, "placementSummary": "h100=3"}
    )
    writer.patch_status("InferencePool", ns, name, {"replicas": 4})
    got = request(kube_api, "GET", path)
    assert got["status"]["replicas"] == 4
    assert got["status"]["placementSummary"] == "h100=3", "a merge patch keeps fields it does not name"
    assert got["spec"] == inference_pool["spec"]
    assert got["metadata"]["generation"] == inference_pool["metadata"]["generation"], "status: a subresource"

    cls = accelerator_class["metadata"]["name"]
    writer.patch_status("AcceleratorClass", None, cls, {"observedGeneration": 1})
    assert request(kube_api, "GET", f"{GROUP}/acceleratorclasses/{cls}")["status"]["observedGeneration"] == 1
    assert writer.writes[("InferencePool", "patch_status")] == 2


def test_events_are_created_about_namespaced_and_cluster_objects(
    kube_api: Any, inference_pool: dict[str, Any], accelerator_class: dict[str, Any], writer: KubeWriter
) -> None:
    ns = inference_pool["metadata"]["namespace"]
    writer.event(inference_pool, "Warning", "PowerLimited", "power budget binds: " + "é" * 2000)
    events = request(
        kube_api,
        "GET",
        f"/api/v1/namespaces/{ns}/events",
        query=[("fieldSelector", "involvedObject.name=chat")],
    )["items"]
    [event] = [e for e in events if e["reason"] == "PowerLimited"]
    assert event["type"] == "Warning"
    assert event["involvedObject"]["uid"] == inference_pool["metadata"]["uid"]
    assert event["involvedObject"]["kind"] == "InferencePool"
    assert event["reportingComponent"] == "inferfleet" and event["source"]["component"] == "inferfleet"
    assert event["count"] == 1 and event["eventTime"] and event["lastTimestamp"]
    assert len(event["message"].encode()) <= 1024 and event["message"].endswith("...")

    cls = accelerator_class["metadata"]["name"]
    writer.event(accelerator_class, "Normal", "Observed", "nodes counted")
    cluster_events = request(
        kube_api,
        "GET",
        "/api/v1/namespaces/default/events",
        query=[("fieldSelector", f"involvedObject.name={cls}")],
    )["items"]
    assert [e["reason"] for e in cluster_events] == ["Observed"]
    assert writer.writes[("Event", "create")] == 2


def test_write_errors_are_classified_and_fenced(kube_api: Any, namespace: str) -> None:
    writer = KubeWriter(kube_api)
    bad = deployment(namespace, "bad")
    bad["spec"]["selector"] = {"matchLabels": {"app": "something-else"}}
    with pytest.raises(APIRejected, match="selector"):
        writer.apply(bad)
    with pytest.raises(APIRejected, match="selector") as refused:  # a dry run refuses it the same way
        writer.dry_run(bad)
    assert refused.value.status == 422
    writer.dry_run(deployment(namespace, "dry"))  # accepted, and nothing stored
    assert _get(kube_api, f"/apis/apps/v1/namespaces/{namespace}/deployments/dry") is None
    assert writer.writes[("Deployment", "dry_run")] == 1 and not writer.writes[("Deployment", "apply")]

    fenced = KubeWriter(kube_api, is_leader=lambda: False)
    with pytest.raises(NotLeader):
        fenced.apply(deployment(namespace, "fenced"))
    assert _get(kube_api, f"/apis/apps/v1/namespaces/{namespace}/deployments/fenced") is None
    assert not fenced.writes

    cfg = k8s.Configuration()
    cfg.host = "https://127.0.0.1:1"  # nothing listens: connection refused
    cfg.retries = 0
    dead: Any = k8s.ApiClient(cfg)
    try:
        with pytest.raises(TransientAPIError):
            KubeWriter(dead).delete("Deployment", namespace, "x")
    finally:
        dead.close()


# ------------------------------------------------------------------------------------------------
# leader election
# ------------------------------------------------------------------------------------------------


class Watch:
    """Samples two electors every 5 ms; records overlaps and when each first led."""

    def __init__(self, a: LeaderElector, b: LeaderElector) -> None:
        self.a, self.b = a, b
        self.both = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            a, b = self.a.is_leader(), self.b.is_leader()
            self.both += a and b
            self.samples += 1
            time.sleep(0.005)

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _electors(api: Any, namespace: str, log: list[str]) -> tuple[LeaderElector, LeaderElector]:
    name = f"it-lease-{uuid.uuid4().hex[:6]}"

    def make(identity: str) -> LeaderElector:
        return LeaderElector(
            api,
            name=name,
            namespace=namespace,
            identity=identity,
            on_started_leading=lambda: log.append(f"{identity} started"),
            on_stopped_leading=lambda: log.append(f"{identity} stopped"),
        )

    return make("replica-a"), make("replica-b")


def _time_until(predicate: Callable[[], bool], timeout: float) -> float:
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            pytest.fail(f"not within {timeout} s")
        time.sleep(0.01)
    return time.monotonic() - start


def test_one_leader_and_release_hands_over_at_once(kube_api: Any, namespace: str) -> None:
    log: list[str] = []
    a, b = _electors(kube_api, namespace, log)
    try:
        a.start()
        _time_until(a.is_leader, timeout=10)
        b.start()
        with Watch(a, b) as watch:
            time.sleep(5)  # b campaigns for a few retry periods while a renews
            assert a.is_leader() and not b.is_leader()
            stopped = time.monotonic()
            a.stop()  # releases the lease
            _time_until(b.is_leader, timeout=10)
            handover = time.monotonic() - stopped
        print(f"\nlease hand-over after release: {handover:.2f} s ({watch.samples} samples, 0 overlaps)")
        assert watch.both == 0
        assert handover <= 5.0
        lease = request(
            kube_api, "GET", f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{a.name}"
        )
        assert lease["spec"]["holderIdentity"] == "replica-b"
        assert lease["spec"]["leaseTransitions"] >= 1
        assert log == ["replica-a started", "replica-a stopped", "replica-b started"]
    finally:
        a.stop()
        b.stop()


def test_a_dead_leader_is_replaced_within_20_seconds(kube_api: Any, namespace: str) -> None:
    log: list[str] = []
    a, b = _electors(kube_api, namespace, log)
    try:
        a.start()
        _time_until(a.is_leader, timeout=10)
        b.start()
        time.sleep(3)
        with Watch(a, b) as watch:
            died = time.monotonic()
            a.stop(release=False)  # the renew thread stops; the Lease still names a
            _time_until(b.is_leader, timeout=25)
            takeover = time.monotonic() - died
        print(f"\nlease takeover after the leader died: {takeover:.2f} s ({watch.samples} samples)")
        assert watch.both == 0
        assert takeover <= 20.0
        # a's last renewal was at most one retry period (+ jitter) before it died: b respected it
        assert takeover >= a.lease_duration_s - a.retry_period_s * 1.2 - 0.5
    finally:
        a.stop()
        b.stop()
