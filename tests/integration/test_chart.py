"""The Helm chart on the real control plane: it installs into a namespace that enforces the
"restricted" Pod Security Standard and its operator Deployment becomes available (2 replicas on
different kwok nodes, PDB in force); the real operator, run locally with nothing but a token of the
chart's ServiceAccount, places a pool, moves it between classes and elects itself leader without a
single denied request, while the authorizer refuses what the chart does not grant; the CRDs install
and upgrade as templates and are kept by `helm uninstall`, which leaves no RBAC behind.

The chart's operator pods are kwok fakes (no images here), so the operator itself runs as a local
process under the ServiceAccount's identity. Cluster-scoped objects get unique names (classes,
RBAC per release) or are left as found (the "default" FleetPolicy, the CRDs).
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from inferfleet.api import crdgen
from inferfleet.kube.client import NotFound, request
from inferfleet_dev import install
from inferfleet_dev.cluster import Cluster

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "inferfleet"
TEST_NS_LABEL = "inferfleet.dev/test-namespace"  # conftest deletes leftovers with it at session start
GROUP = "/apis/inferfleet.dev/v1alpha1"
CRD_NAMES = sorted(k.name for k in crdgen.KINDS)
# The accelerator nodes are tainted per class and the fleet has no untainted node: the operator
# pods tolerate the accelerator taint (a real install would use system nodes).
TOLERATE_FLEET = {
    "tolerations": [{"key": "inferfleet.dev/accelerator", "operator": "Exists", "effect": "NoSchedule"}]
}
RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/warn": "restricted",
}
# A denied request, as the API server words it (logged by our client and by kopf), or kopf's own
# warning when it cannot list/watch something.
DENIED = re.compile(r"forbidden|HTTP 403|not enough permissions", re.IGNORECASE)
NOT_RBAC = re.compile(r"because it is being terminated")  # a namespace being deleted: not RBAC


# -- helpers ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def helm_bin() -> Path:
    try:
        return install.ensure_binaries(("helm",), quiet=True)["helm"]
    except install.InstallError as exc:  # never a skip: the chart test is part of the suite
        pytest.fail(f"helm {install.HELM_VERSION} could not be built or found: {exc}", pytrace=False)


def helm(
    helm_bin: Path, cluster: Cluster, *args: str, check: bool = True, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(helm_bin), *args],
        capture_output=True,
        text=True,
        env=cluster.env(),
        timeout=timeout,
        check=False,
    )
    if check and proc.returncode != 0:
        pytest.fail(f"helm {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}", pytrace=False)
    return proc


def kubectl_json(cluster: Cluster, *args: str) -> Any:
    return json.loads(cluster.kubectl(*args, "-o", "json").stdout)


def values_file(tmp: Path, name: str, values: dict[str, Any]) -> str:
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(values))
    return str(path)


def create_namespace(cluster: Cluster, prefix: str, labels: dict[str, str] | None = None) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:5]}"
    body = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {TEST_NS_LABEL: "true", **(labels or {})}},
    }
    cluster.kubectl("create", "-f", "-", input=json.dumps(body))
    return name


def example(kind: str, name: str) -> dict[str, Any]:
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc["kind"] == kind and doc["metadata"]["name"] == name:
                return copy.deepcopy(dict(doc))
    raise LookupError(f"{kind} {name}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def sa_kubeconfig(cluster: Cluster, namespace: str, service_account: str, path: Path) -> Path:
    """A kubeconfig whose only credential is a short-lived token of the ServiceAccount."""
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    context = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])["context"]
    server = next(c for c in admin["clusters"] if c["name"] == context["cluster"])["cluster"]
    token = cluster.kubectl(
        "create", "token", service_account, "-n", namespace, "--duration=20m"
    ).stdout.strip()
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "sa",
                "clusters": [{"name": "c", "cluster": server}],
                "users": [{"name": "sa", "user": {"token": token}}],
                "contexts": [
                    {"name": "sa", "context": {"cluster": "c", "user": "sa", "namespace": namespace}}
                ],
            }
        )
    )
    return path


def can_i(cluster: Cluster, kubeconfig: Path, *args: str) -> bool:
    proc = subprocess.run(
        [str(cluster.kubectl_path), f"--kubeconfig={kubeconfig}", "auth", "can-i", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.stdout.strip() in ("yes", "no"), proc.stdout + proc.stderr
    return proc.stdout.strip() == "yes"


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in (obj.get("status") or {}).get("conditions") or () if c["type"] == type_), {})


def ensure_crds(cluster: Cluster) -> None:
    """Put the CRDs back if a failed test let `helm uninstall` take them (other tests need them)."""
    present = {c["metadata"]["name"] for c in kubectl_json(cluster, "get", "crd")["items"]}
    if set(CRD_NAMES) <= present:
        return
    files = [f"-f={ROOT / 'crds' / name}.yaml" for name in CRD_NAMES]
    cluster.kubectl("apply", "--server-side", "--force-conflicts", *files)
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", *files, timeout=90)


# -- the installed chart ------------------------------------------------------------------------


class Release:
    def __init__(self, name: str, namespace: str) -> None:
        self.name = name
        self.namespace = namespace
        self.fullname = f"{name}-inferfleet"


@pytest.fixture(scope="module")
def release(
    cluster: Cluster, crds: list[Path], helm_bin: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Release]:
    """The chart with default values (CRDs left to the session's `crds` fixture, which applied the
    same files with kubectl) in a namespace enforcing the restricted Pod Security Standard."""
    assert crds, "crds/*.yaml missing"
    # unique release names: cluster-scoped RBAC of a crashed earlier run cannot clash
    rel = Release(f"chart-{uuid.uuid4().hex[:5]}", create_namespace(cluster, "it-chart", RESTRICTED))
    values = values_file(
        tmp_path_factory.mktemp("chart"), "values", {"crds": {"enabled": False}, **TOLERATE_FLEET}
    )
    try:
        helm(
            helm_bin,
            cluster,
            "install",
            rel.name,
            str(CHART),
            "-n",
            rel.namespace,
            "-f",
            values,
            "--wait",
            "--timeout=120s",
        )
        yield rel
    finally:
        helm(
            helm_bin,
            cluster,
            "uninstall",
            rel.name,
            "-n",
            rel.namespace,
            "--ignore-not-found",
            "--wait",
            check=False,
        )
        cluster.kubectl(
            "delete", "namespace", rel.namespace, "--wait=false", "--ignore-not-found", check=False
        )


def test_operator_deployment_is_available_spread_and_restricted(
    cluster: Cluster, release: Release, wait_for: Callable[..., Any]
) -> None:
    ns = release.namespace
    deployment = kubectl_json(cluster, "-n", ns, "get", "deployment", release.fullname)
    assert deployment["spec"]["replicas"] == 2
    assert deployment["status"].get("availableReplicas") == 2, deployment["status"]
    pods = kubectl_json(cluster, "-n", ns, "get", "pods", "-l", f"app.kubernetes.io/instance={release.name}")[
        "items"
    ]
    assert len(pods) == 2
    assert len({p["spec"]["nodeName"] for p in pods}) == 2, "anti-affinity: the replicas share a node"
    # admitted in a namespace that enforces "restricted": the hardened pod passed Pod Security
    assert (
        kubectl_json(cluster, "get", "namespace", ns)["metadata"]["labels"][
            "pod-security.kubernetes.io/enforce"
        ]
        == "restricted"
    )
    env = {
        e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in pods[0]["spec"]["containers"][0]["env"]
    }
    assert env == {"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace"}

    def pdb_allows_one() -> bool:
        pdb = kubectl_json(cluster, "-n", ns, "get", "pdb", release.fullname)
        return (pdb.get("status") or {}).get("disruptionsAllowed") == 1

    wait_for(pdb_allows_one, timeout=30, what="the PodDisruptionBudget to allow exactly one disruption")
    service = kubectl_json(
        cluster,
        "-n",
        ns,
        "get",
        "endpointslices",
        "-l",
        f"kubernetes.io/service-name={release.fullname}-metrics",
    )["items"]
    assert sum(len(s.get("endpoints") or ()) for s in service) == 2, "metrics Service selects both pods"


def test_rendered_chart_is_accepted_by_the_api_server_and_pod_security(
    cluster: Cluster, release: Release, helm_bin: Path
) -> None:
    """Everything the chart renders with crds.enabled=true, applied as a server-side dry run in the
    restricted namespace: no rejection and no Pod Security warning; a weakened securityContext
    does get the warning (the check is not vacuous)."""

    def dry_run(*sets: str) -> subprocess.CompletedProcess[str]:
        args = ["template", "dry", str(CHART), "-n", release.namespace, "--set", "crds.enabled=true"]
        for value in sets:
            args += ["--set", value]
        manifest = helm(helm_bin, cluster, *args).stdout
        return cluster.kubectl(
            "apply",
            "--server-side",
            "--dry-run=server",
            "--force-conflicts",
            "--field-manager=chart-dry-run",
            "-n",
            release.namespace,
            "-f",
            "-",
            input=manifest,
            check=False,
        )

    ok = dry_run()
    assert ok.returncode == 0, ok.stderr
    applied = ok.stdout
    for crd in CRD_NAMES:
        assert f"customresourcedefinition.apiextensions.k8s.io/{crd} serverside-applied" in applied
    assert "deployment.apps/dry-inferfleet serverside-applied (server dry run)" in applied
    assert "PodSecurity" not in ok.stderr, ok.stderr
    # every optional part on: the NetworkPolicy, the TLS volume, free-form scheduling, extra env
    full = dry_run(
        "networkPolicy.enabled=true",
        "networkPolicy.apiServerCIDRs[0]=10.96.0.1/32",
        "metrics.secure.enabled=true",
        "metrics.secure.tlsSecretName=inferfleet-metrics-tls",
        "image.digest=sha256:" + "0" * 64,
        "logFormat=json",
        "affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight=1",
        "affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].preference"
        ".matchExpressions[0].key=node-role.kubernetes.io/system",
        "affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].preference"
        ".matchExpressions[0].operator=Exists",
        "topologySpreadConstraints[0].topologyKey=kubernetes.io/hostname",
        "topologySpreadConstraints[0].maxSkew=1",
        "topologySpreadConstraints[0].whenUnsatisfiable=ScheduleAnyway",
        "extraEnv[0].name=NODE_NAME",
        "extraEnv[0].valueFrom.fieldRef.fieldPath=spec.nodeName",
        "extraArgs[0]=--api-probe-seconds=5",
    )
    assert full.returncode == 0, full.stderr
    assert "networkpolicy.networking.k8s.io/dry-inferfleet serverside-applied" in full.stdout
    assert (
        "clusterrole.rbac.authorization.k8s.io/dry-inferfleet-metrics-auth serverside-applied" in full.stdout
    )
    assert "PodSecurity" not in full.stderr, full.stderr
    weak = dry_run("securityContext.allowPrivilegeEscalation=true")
    assert 'would violate PodSecurity "restricted:latest"' in weak.stderr, weak.stderr
    assert "allowPrivilegeEscalation" in weak.stderr


def test_service_account_may_do_exactly_what_the_operator_needs(
    cluster: Cluster, release: Release, tmp_path: Path
) -> None:
    kubeconfig = sa_kubeconfig(cluster, release.namespace, release.fullname, tmp_path / "sa.kubeconfig")
    ns, other = release.namespace, "default"
    allowed = [
        ("list", "inferencepools.inferfleet.dev", "-A"),
        ("watch", "inferencepools.inferfleet.dev", "-A"),
        ("patch", "inferencepools.inferfleet.dev", "--subresource=status", "-n", other),
        ("update", "inferencepools.inferfleet.dev", "--subresource=finalizers", "-n", other),
        ("list", "acceleratorclasses.inferfleet.dev"),
        ("watch", "fleetpolicies.inferfleet.dev"),
        ("patch", "acceleratorclasses.inferfleet.dev", "--subresource=status"),
        ("patch", "fleetpolicies.inferfleet.dev", "--subresource=status"),
        ("list", "nodes"),
        ("watch", "nodes"),
        ("list", "pods", "-A"),
        ("watch", "pods", "-A"),
        ("create", "deployments.apps", "-n", other),
        ("patch", "deployments.apps", "-n", other),
        ("delete", "deployments.apps", "-n", other),
        ("watch", "deployments.apps", "-A"),
        ("create", "services", "-n", other),
        ("patch", "services", "-n", other),
        ("list", "services", "-A"),
        ("watch", "services", "-A"),
        ("delete", "services", "-n", other),  # a class Service of a size-aware pool
        ("create", "configmaps", "-n", other),  # a size-aware pool's routing
        ("patch", "configmaps", "-n", other),
        ("delete", "configmaps", "-n", other),
        ("watch", "configmaps", "-A"),
        ("create", "events", "-n", other),
        ("patch", "events", "-n", other),  # an event told again: its count raised
        ("patch", "pods", "-n", other),  # pin a gated replica to its planned node
        ("delete", "pods", "-n", other),  # give up a pin the scheduler cannot honour
        ("create", "leases.coordination.k8s.io", "-n", ns),
        ("get", "leases.coordination.k8s.io/inferfleet-operator", "-n", ns),
        ("update", "leases.coordination.k8s.io/inferfleet-operator", "-n", ns),
    ]
    denied = [
        ("get", "secrets", "-n", ns),
        ("list", "secrets", "-A"),
        ("create", "pods", "-n", other),
        ("update", "pods", "-n", other),
        ("get", "pods", "-n", other),
        ("patch", "nodes"),
        ("update", "deployments.apps", "-n", other),
        ("update", "configmaps", "-n", other),
        ("update", "inferencepools.inferfleet.dev", "-n", other),
        ("delete", "inferencepools.inferfleet.dev", "-n", other),
        ("create", "acceleratorclasses.inferfleet.dev"),
        ("patch", "acceleratorclasses.inferfleet.dev"),
        ("list", "customresourcedefinitions.apiextensions.k8s.io"),
        ("delete", "customresourcedefinitions.apiextensions.k8s.io"),
        ("list", "namespaces"),
        ("get", "leases.coordination.k8s.io/some-other-lease", "-n", ns),
        ("create", "leases.coordination.k8s.io", "-n", other),
        ("list", "leases.coordination.k8s.io", "-n", ns),
        ("bind", "clusterroles.rbac.authorization.k8s.io"),
        ("escalate", "roles.rbac.authorization.k8s.io"),
        ("impersonate", "users"),
        ("create", "serviceaccounts/token", "-n", ns),
        ("create", "tokenreviews.authentication.k8s.io"),  # only with metrics.secure
        ("create", "subjectaccessreviews.authorization.k8s.io"),
        ("*", "*"),
    ]
    wrong = [" ".join(a) for a in allowed if not can_i(cluster, kubeconfig, *a)]
    assert not wrong, f"the chart's ServiceAccount may not: {wrong}"
    wrong = [" ".join(a) for a in denied if can_i(cluster, kubeconfig, *a)]
    assert not wrong, f"the chart's ServiceAccount may (but should not): {wrong}"


TEST_LABEL = "inferfleet.dev/it-chart"


@pytest.fixture
def fleet(cluster: Cluster, kube_api: Any, release: Release) -> Iterator[dict[str, str]]:
    """Two classes over two l4 nodes each (unique names; a node two classes match counts for one
    only, so each gets its own, labelled for the test), the example "default" FleetPolicy unless one
    exists, and a namespace for the example embedding pool (created by the test)."""
    tag = uuid.uuid4().hex[:5]
    classes = [f"it-chart-a-{tag}", f"it-chart-b-{tag}"]
    halves = {classes[0]: ["l4-0", "l4-1"], classes[1]: ["l4-2", "l4-3"]}
    pool_ns = create_namespace(cluster, "it-chart-pools")
    created_policy = False

    def label(node: str, value: str | None) -> None:
        body = {"metadata": {"labels": {TEST_LABEL: value}}}
        request(
            kube_api, "PATCH", f"/api/v1/nodes/{node}", body=body, content_type="application/merge-patch+json"
        )

    try:
        for name in classes:
            for node in halves[name]:
                label(node, name)
            cls = example("AcceleratorClass", "l4")
            cls["metadata"] = {"name": name}
            cls["spec"]["nodeSelector"] = {**cls["spec"]["nodeSelector"], TEST_LABEL: name}
            request(kube_api, "POST", f"{GROUP}/acceleratorclasses", body=cls)
        try:
            request(kube_api, "GET", f"{GROUP}/fleetpolicies/default")
        except NotFound:
            request(kube_api, "POST", f"{GROUP}/fleetpolicies", body=example("FleetPolicy", "default"))
            created_policy = True
        yield {"a": classes[0], "b": classes[1], "namespace": pool_ns}
    finally:
        # the pool first (no finalizers: gone at once), so no later operator sees it in a
        # namespace that is still terminating
        cluster.kubectl("-n", pool_ns, "delete", "inferencepools.inferfleet.dev", "--all", check=False)
        cluster.kubectl("delete", "namespace", pool_ns, "--wait=false", "--ignore-not-found", check=False)
        for name in classes:
            with contextlib.suppress(NotFound):
                request(kube_api, "DELETE", f"{GROUP}/acceleratorclasses/{name}")
            for node in halves[name]:
                label(node, None)
        if created_policy:
            with contextlib.suppress(NotFound):
                request(kube_api, "DELETE", f"{GROUP}/fleetpolicies/default")


@contextlib.contextmanager
def operator_process(
    kubeconfig: Path, lease_namespace: str, identity: str, log: Path, ports: tuple[int, int]
) -> Iterator[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "operator"), env.get("PYTHONPATH")]))
    cmd = [
        sys.executable,
        "-m",
        "inferfleet",
        "run",
        f"--kubeconfig={kubeconfig}",
        "--leader-elect",
        f"--lease-namespace={lease_namespace}",
        f"--identity={identity}",
        f"--metrics-port={ports[0]}",
        f"--health-port={ports[1]}",
        "--log-level=info",
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        try:
            yield proc
        finally:
            proc.send_signal(signal.SIGINT)  # kopf's graceful stop: the Lease is released
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def denials(log: Path) -> list[str]:
    text = log.read_text(errors="replace") if log.exists() else ""
    return [line for line in text.splitlines() if DENIED.search(line) and not NOT_RBAC.search(line)]


def http_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:  # loopback: our own operator
            return int(resp.status), resp.read().decode()
    except OSError:
        return 0, ""


def test_operator_runs_as_the_service_account_without_a_denied_request(
    cluster: Cluster,
    kube_api: Any,
    release: Release,
    fleet: dict[str, str],
    tmp_path: Path,
    wait_for: Callable[..., Any],
) -> None:
    ns = fleet["namespace"]
    kubeconfig = sa_kubeconfig(cluster, release.namespace, release.fullname, tmp_path / "sa.kubeconfig")
    identity = f"chart-it-{uuid.uuid4().hex[:5]}"
    log = tmp_path / "operator.log"
    metrics_port, health_port = free_port(), free_port()
    pool = example("InferencePool", "embed")
    pool["metadata"]["namespace"] = ns
    pool["spec"]["placement"] = {"allowedClasses": [fleet["a"]]}
    pool_path = f"{GROUP}/namespaces/{ns}/inferencepools/embed"
    managed = "app.kubernetes.io/managed-by=inferfleet"

    def deployments() -> set[str]:
        """Our Deployments that run replicas (a class the pool leaves is scaled to 0, not deleted)."""
        items = kubectl_json(cluster, "-n", ns, "get", "deployments", "-l", managed)["items"]
        return {d["metadata"]["name"] for d in items if d["spec"]["replicas"]}

    def placed_on(cls: str) -> Callable[[], bool]:
        def check() -> bool:
            denied = denials(log)
            if denied:  # fail now, with the reason, rather than time out
                pytest.fail("denied requests:\n" + "\n".join(denied[:10]), pytrace=False)
            obj = request(kube_api, "GET", pool_path)
            status = obj.get("status") or {}
            return (
                condition(obj, "Placed").get("status") == "True"
                and status.get("observedGeneration") == obj["metadata"]["generation"]
                and {p["acceleratorClass"] for p in status.get("placements") or ()} == {cls}
                and deployments() == {f"embed-{cls}"}
            )

        return check

    request(kube_api, "POST", f"{GROUP}/namespaces/{ns}/inferencepools", body=pool)
    with operator_process(kubeconfig, release.namespace, identity, log, (metrics_port, health_port)) as proc:
        # create: plan, server-side apply of a Deployment and a Service, statuses, events
        wait_for(placed_on(fleet["a"]), timeout=90, what=f"pool placed on {fleet['a']}")
        lease = request(
            kube_api,
            "GET",
            f"/apis/coordination.k8s.io/v1/namespaces/{release.namespace}/leases/inferfleet-operator",
        )
        assert lease["spec"]["holderIdentity"] == identity
        service = kubectl_json(cluster, "-n", ns, "get", "service", "embed")
        assert service["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "inferfleet"
        # move: the operator scales the old class's Deployment to 0 and applies the new one
        request(
            kube_api,
            "PATCH",
            pool_path,
            content_type="application/merge-patch+json",
            body={"spec": {"placement": {"allowedClasses": [fleet["b"]]}}},
        )
        wait_for(placed_on(fleet["b"]), timeout=90, what=f"pool moved to {fleet['b']}")
        cls = request(kube_api, "GET", f"{GROUP}/acceleratorclasses/{fleet['b']}")
        assert (cls.get("status") or {}).get("readyNodes", 0) > 0, cls.get("status")
        policy = request(kube_api, "GET", f"{GROUP}/fleetpolicies/default")
        assert (policy.get("status") or {}).get("lastPlan"), policy.get("status")
        events = kubectl_json(
            cluster, "-n", ns, "get", "events", "--field-selector", "reportingComponent=inferfleet"
        )["items"]
        assert events, "no events from the operator"
        # the probe and the metrics the chart's liveness/readiness checks and Service point at
        assert http_get(f"http://127.0.0.1:{health_port}/healthz")[0] == 200
        code, body = http_get(f"http://127.0.0.1:{metrics_port}/metrics")
        assert code == 200 and "inferfleet_leader 1.0" in body
        assert proc.poll() is None, "the operator exited"
    denied = denials(log)
    assert not denied, "denied requests:\n" + "\n".join(denied[:20])
    text = log.read_text(errors="replace")
    assert "is now leader" in text and "plan applied" in text, text[-3000:]
    assert "Traceback" not in text, text[-3000:]


def test_crds_upgrade_with_the_release_and_survive_uninstall_which_leaves_no_rbac(
    cluster: Cluster, crds: list[Path], helm_bin: Path, tmp_path: Path
) -> None:
    """A release that owns the CRDs (adopting the session's, as a user adopts kubectl-applied
    ones): `helm upgrade` reaches them (templates, not crds/), keep protects them on uninstall."""
    ns = create_namespace(cluster, "it-chart-crds")
    name = f"crds-{uuid.uuid4().hex[:5]}"
    values = values_file(
        tmp_path, "values", {"crds": {"enabled": True, "keep": True}, "replicaCount": 1, **TOLERATE_FLEET}
    )

    def keep_annotations() -> dict[str, str | None]:
        return {
            c["metadata"]["name"]: (c["metadata"].get("annotations") or {}).get("helm.sh/resource-policy")
            for c in kubectl_json(cluster, "get", "crd", *CRD_NAMES)["items"]
        }

    def leftovers() -> list[str]:
        kinds = "clusterroles,clusterrolebindings,roles,rolebindings,serviceaccounts"
        found = kubectl_json(cluster, "get", kinds, "-A", "-l", f"app.kubernetes.io/instance={name}")["items"]
        return [f"{o['kind']}/{o['metadata']['name']}" for o in found]

    try:
        helm(
            helm_bin,
            cluster,
            "install",
            name,
            str(CHART),
            "-n",
            ns,
            "-f",
            values,
            "--take-ownership",
            "--force-conflicts",
        )
        for crd in kubectl_json(cluster, "get", "crd", *CRD_NAMES)["items"]:
            meta = crd["metadata"]
            assert meta["annotations"]["meta.helm.sh/release-name"] == name
            assert meta["labels"]["app.kubernetes.io/managed-by"] == "Helm"
        assert keep_annotations() == dict.fromkeys(CRD_NAMES, "keep")
        assert leftovers(), "the release created no RBAC?"
        helm(
            helm_bin, cluster, "upgrade", name, str(CHART), "-n", ns, "-f", values, "--set", "crds.keep=false"
        )
        assert keep_annotations() == dict.fromkeys(CRD_NAMES), "helm upgrade did not update the CRDs"
        helm(helm_bin, cluster, "upgrade", name, str(CHART), "-n", ns, "-f", values)
        assert keep_annotations() == dict.fromkeys(CRD_NAMES, "keep")
        out = helm(helm_bin, cluster, "uninstall", name, "-n", ns, "--wait").stdout
        assert "kept due to the resource policy" in out, out
        present = {c["metadata"]["name"] for c in kubectl_json(cluster, "get", "crd")["items"]}
        assert set(CRD_NAMES) <= present, "helm uninstall deleted the CRDs despite crds.keep"
        assert leftovers() == [], "helm uninstall left RBAC behind"
    finally:
        helm(helm_bin, cluster, "uninstall", name, "-n", ns, "--ignore-not-found", "--wait", check=False)
        ensure_crds(cluster)
        cluster.kubectl("delete", "namespace", ns, "--wait=false", "--ignore-not-found", check=False)
