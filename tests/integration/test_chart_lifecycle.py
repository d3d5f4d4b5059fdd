"""The chart's life on the real control plane, as a platform team runs it: the previous chart version
(the newest commit whose Chart.yaml version differs from this one, extracted with `git archive`,
with that commit's operator) installed into a namespace enforcing the "restricted" Pod Security
Standard places live pools; `helm upgrade` to this chart, with this operator taking over, rolls no
model Deployment (same ReplicaSets, pod-template-hash unchanged); `helm uninstall` with the pools
still live does what the chart README says (operator, RBAC and Services gone; pools, their model
Deployments and the Lease left; no finalizers), and the namespaces then delete without getting stuck.

Every operator here runs as a local process with a token of the release's ServiceAccount (the
chart's pods are kwok fakes), so its RBAC is the chart's. The figures (install and upgrade time,
rollouts, leftovers, namespace deletion time) are printed: `pytest -s` shows them.
``INFERFLEET_UPGRADE_FROM=<commit>`` upgrades from another commit instead. The CRDs are this
version's throughout (the session's), so an operator older than a defaulted CRD field sees that
field and, reading strictly, refuses the object (78258b4 and a473de0 do, for
spec.planning.unschedulableHoldSeconds): such a version cannot be the "previous" one here.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_chart import (
    RESTRICTED,
    TOLERATE_FLEET,
    condition,
    create_namespace,
    denials,
    free_port,
    helm,
    helm_bin,
    kubectl_json,
    sa_kubeconfig,
    values_file,
)

from inferfleet.kube.client import NotFound, request
from inferfleet_dev.cluster import Cluster

pytestmark = pytest.mark.integration

__all__ = ["helm_bin"]  # the fixture, shared with test_chart

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "inferfleet"
GROUP = "/apis/inferfleet.dev/v1alpha1"
LABEL = "inferfleet.dev/it-lifecycle"
NODES = ["l4-0", "l4-1", "l4-2", "l4-3"]
MANAGED = "app.kubernetes.io/managed-by=inferfleet"


def git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
    ).stdout


def previous_version() -> tuple[str, str]:
    """(commit, chart version) of the newest commit whose chart version differs from this one's;
    $INFERFLEET_UPGRADE_FROM names another commit to upgrade from (e.g. an older release)."""
    current = yaml.safe_load((CHART / "Chart.yaml").read_text())["version"]
    chosen = os.environ.get("INFERFLEET_UPGRADE_FROM")
    if chosen:
        commit = git("rev-parse", chosen).strip()
        return commit, str(yaml.safe_load(git("show", f"{commit}:charts/inferfleet/Chart.yaml"))["version"])
    for commit in git("log", "--format=%H", "--", "charts/inferfleet").split():
        version = yaml.safe_load(git("show", f"{commit}:charts/inferfleet/Chart.yaml"))["version"]
        if version != current:
            return commit, str(version)
    shallow = git("rev-parse", "--is-shallow-repository").strip() == "true"
    why = " (a shallow clone: `git fetch --unshallow`)" if shallow else ""
    pytest.fail(f"no commit has a chart version other than {current}{why}", pytrace=False)


def extract(commit: str, into: Path) -> Path:
    """The chart, the operator and the examples of ``commit`` under ``into``."""
    into.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "archive", commit, "charts/inferfleet", "operator", "examples"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True, timeout=60)
    return into


@contextlib.contextmanager
def operator(
    code: Path, kubeconfig: Path, lease_namespace: str, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """The operator of the checkout at ``code`` (its operator/ on PYTHONPATH), as the release's SA."""
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST")}
    env["PYTHONPATH"] = str(code / "operator")
    cmd = [
        sys.executable,
        "-m",
        "inferfleet",
        "run",
        f"--kubeconfig={kubeconfig}",
        "--leader-elect",
        f"--lease-namespace={lease_namespace}",
        f"--identity=lifecycle-{uuid.uuid4().hex[:5]}",
        f"--metrics-port={free_port()}",
        f"--health-port={free_port()}",
        "--log-level=info",
    ]
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=code)
        try:
            yield proc
        finally:
            proc.send_signal(signal.SIGINT)  # the Lease is released: the next one leads at once
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def example(root: Path, kind: str, name: str) -> dict[str, Any]:
    """An object of ``root``'s examples/ (the previous version's: what its users applied)."""
    for path in sorted((root / "examples").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc["kind"] == kind and doc["metadata"]["name"] == name:
                return dict(doc)
    raise LookupError(f"{kind} {name} in {root}/examples")


def timed(fn: Callable[[], Any]) -> float:
    start = time.monotonic()
    fn()
    return time.monotonic() - start


class Fleet:
    """A class over four l4 nodes labelled for this test, the "default" policy if none, two pools."""

    def __init__(self, kube_api: Any, cluster: Cluster, examples: Path) -> None:
        self.api, self.cluster, self.examples = kube_api, cluster, examples
        self.cls = f"it-life-{uuid.uuid4().hex[:5]}"
        self.namespace = create_namespace(cluster, "it-life-pools")
        self.pools = ["embed", "embed-two"]
        self.created_policy = False

    def label(self, value: str | None) -> None:
        for node in NODES:
            request(
                self.api,
                "PATCH",
                f"/api/v1/nodes/{node}",
                body={"metadata": {"labels": {LABEL: value}}},
                content_type="application/merge-patch+json",
            )

    def create(self) -> None:
        self.label(self.cls)
        cls = example(self.examples, "AcceleratorClass", "l4")
        cls["metadata"] = {"name": self.cls}
        cls["spec"]["nodeSelector"] = {**cls["spec"]["nodeSelector"], LABEL: self.cls}
        request(self.api, "POST", f"{GROUP}/acceleratorclasses", body=cls)
        try:
            request(self.api, "GET", f"{GROUP}/fleetpolicies/default")
        except NotFound:
            request(
                self.api,
                "POST",
                f"{GROUP}/fleetpolicies",
                body=example(self.examples, "FleetPolicy", "default"),
            )
            self.created_policy = True
        for name in self.pools:
            pool = example(self.examples, "InferencePool", "embed")
            pool["metadata"] = {"name": name, "namespace": self.namespace}
            pool["spec"]["placement"] = {"allowedClasses": [self.cls]}
            pool["spec"]["demand"]["requestsPerSecond"] = 500
            request(self.api, "POST", f"{GROUP}/namespaces/{self.namespace}/inferencepools", body=pool)

    def placed(self) -> bool:
        for name in self.pools:
            obj = request(self.api, "GET", f"{GROUP}/namespaces/{self.namespace}/inferencepools/{name}")
            if condition(obj, "Placed").get("status") != "True":
                return False
        deployments = self.deployments()
        return len(deployments) == len(self.pools) and all(
            (d.get("status") or {}).get("readyReplicas") == d["spec"]["replicas"] > 0 for d in deployments
        )

    def deployments(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = kubectl_json(
            self.cluster, "-n", self.namespace, "get", "deployments", "-l", MANAGED
        )["items"]
        return [d for d in items if d["spec"]["replicas"]]

    def rollout_state(self) -> dict[str, tuple[str, int, frozenset[str]]]:
        """Deployment name -> (uid, generation, its ReplicaSets' pod-template-hash values)."""
        sets = kubectl_json(self.cluster, "-n", self.namespace, "get", "replicasets")["items"]
        out = {}
        for d in self.deployments():
            uid = d["metadata"]["uid"]
            hashes = frozenset(
                rs["metadata"]["labels"]["pod-template-hash"]
                for rs in sets
                if any(o["uid"] == uid for o in rs["metadata"].get("ownerReferences") or ())
            )
            out[d["metadata"]["name"]] = (uid, d["metadata"]["generation"], hashes)
        return out

    def cleanup(self) -> None:
        self.cluster.kubectl(
            "delete", "namespace", self.namespace, "--wait=false", "--ignore-not-found", check=False
        )
        with contextlib.suppress(NotFound):
            request(self.api, "DELETE", f"{GROUP}/acceleratorclasses/{self.cls}")
        self.label(None)
        if self.created_policy:
            with contextlib.suppress(NotFound):
                request(self.api, "DELETE", f"{GROUP}/fleetpolicies/default")


def gone(cluster: Cluster, namespace: str) -> Callable[[], bool]:
    def check() -> bool:
        proc = cluster.kubectl("get", "namespace", namespace, "--ignore-not-found", "-o", "name", check=False)
        return proc.stdout.strip() == ""

    return check


def test_install_restricted_upgrade_without_rollouts_and_uninstall_with_live_pools(
    cluster: Cluster,
    kube_api: Any,
    crds: list[Path],
    helm_bin: Path,
    tmp_path: Path,
    wait_for: Callable[..., Any],
) -> None:
    commit, version = previous_version()
    old = extract(commit, tmp_path / "previous")
    ns = create_namespace(cluster, "it-life", RESTRICTED)
    name = f"life-{uuid.uuid4().hex[:5]}"
    fullname = f"{name}-inferfleet"
    values = values_file(tmp_path, "values", {"crds": {"enabled": False}, **TOLERATE_FLEET})
    log = tmp_path / "operator.log"
    fleet = Fleet(kube_api, cluster, old)  # the objects as users of the previous version wrote them
    figures: dict[str, Any] = {"previous": f"{version} ({commit[:7]})"}

    def install(chart: Path, verb: str) -> None:
        helm(helm_bin, cluster, verb, name, str(chart), "-n", ns, "-f", values, "--wait", "--timeout=180s")

    try:
        # 1. the previous version, into a namespace enforcing "restricted"
        figures["install_s"] = round(timed(lambda: install(old / "charts" / "inferfleet", "install")), 1)
        fleet.create()
        kubeconfig = sa_kubeconfig(cluster, ns, fullname, tmp_path / "sa.kubeconfig")
        with operator(old, kubeconfig, ns, log):
            wait_for(fleet.placed, timeout=120, what="the previous operator to place both pools")
        before = fleet.rollout_state()
        assert len(before) == 2 and all(hashes for _, _, hashes in before.values()), before

        # 2. upgrade to this chart; this operator takes over from the previous one
        figures["upgrade_s"] = round(timed(lambda: install(CHART, "upgrade")), 1)
        deployment = kubectl_json(cluster, "-n", ns, "get", "deployment", fullname)
        assert deployment["status"].get("availableReplicas") == 2, "the upgraded operator is not available"
        assert deployment["metadata"]["labels"]["helm.sh/chart"] != f"inferfleet-{version}"
        kubeconfig = sa_kubeconfig(cluster, ns, fullname, tmp_path / "sa-new.kubeconfig")
        mark = log.stat().st_size
        with operator(ROOT, kubeconfig, ns, log) as proc:

            def planned() -> bool:
                text = log.read_bytes()[mark:].decode(errors="replace")
                if "Traceback" in text or proc.poll() is not None:  # fail now, with its words
                    pytest.fail(f"this operator failed:\n{text[-4000:]}", pytrace=False)
                return "plan applied" in text

            try:
                wait_for(planned, timeout=90, what="this operator to lead and plan")
            except BaseException:
                print(log.read_bytes()[mark:].decode(errors="replace")[-4000:])
                raise
            time.sleep(8)  # a few more rounds (the debounce and deferrals) to write what it would
            assert proc.poll() is None, "the operator exited"
            after = fleet.rollout_state()
        rolled = sorted(d for d in before if d not in after or after[d][::2] != before[d][::2])
        figures["rollouts_on_upgrade"] = len(rolled)
        figures["spec_writes_on_upgrade"] = sum(1 for d in before if after.get(d, (0, 0))[1] != before[d][1])
        assert not rolled, f"the upgrade rolled model Deployments: {rolled}\nbefore {before}\nafter {after}"
        assert not denials(log), "denied requests:\n" + "\n".join(denials(log)[:10])

        # 3. uninstall with the pools live: what the chart README promises
        helm(helm_bin, cluster, "uninstall", name, "-n", ns, "--wait", "--timeout=120s")
        release = kubectl_json(
            cluster,
            "get",
            "deployments,services,serviceaccounts,roles,rolebindings,poddisruptionbudgets,networkpolicies",
            "-n",
            ns,
            "-l",
            f"app.kubernetes.io/instance={name}",
        )["items"]
        cluster_rbac = kubectl_json(
            cluster, "get", "clusterroles,clusterrolebindings", "-l", f"app.kubernetes.io/instance={name}"
        )["items"]
        figures["release_leftovers"] = len(release) + len(cluster_rbac)
        assert release == [] and cluster_rbac == [], [o["metadata"]["name"] for o in release + cluster_rbac]
        assert fleet.rollout_state() == after, "uninstalling touched the model Deployments"
        pools = [
            request(kube_api, "GET", f"{GROUP}/namespaces/{fleet.namespace}/inferencepools/{p}")
            for p in fleet.pools
        ]
        stuck = [p["metadata"]["name"] for p in pools if p["metadata"].get("finalizers")]
        stuck += [d["metadata"]["name"] for d in fleet.deployments() if d["metadata"].get("finalizers")]
        figures["finalizers_left"] = len(stuck)
        assert not stuck, f"finalizers left on {stuck}"
        lease = request(
            kube_api, "GET", f"/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/inferfleet-operator"
        )
        assert lease["metadata"].get("labels", {}).get("app.kubernetes.io/managed-by") != "Helm"
        for d in fleet.deployments():  # owned by their pool: garbage-collected with it
            assert {o["kind"] for o in d["metadata"]["ownerReferences"]} == {"InferencePool"}

        # 4. nothing stuck: the pools' namespace and the release namespace delete at once
        cluster.kubectl("delete", "namespace", fleet.namespace, "--wait=false")
        cluster.kubectl("delete", "namespace", ns, "--wait=false")
        start = time.monotonic()
        wait_for(gone(cluster, fleet.namespace), timeout=120, what=f"namespace {fleet.namespace} to go")
        wait_for(gone(cluster, ns), timeout=120, what=f"namespace {ns} to go")
        figures["namespaces_deleted_s"] = round(time.monotonic() - start, 1)
    finally:
        print(f"\nchart lifecycle figures: {figures}")
        helm(helm_bin, cluster, "uninstall", name, "-n", ns, "--ignore-not-found", "--wait", check=False)
        fleet.cleanup()
        cluster.kubectl("delete", "namespace", ns, "--wait=false", "--ignore-not-found", check=False)
    text = log.read_text(errors="replace")
    assert "Traceback" not in text, text[-3000:]
