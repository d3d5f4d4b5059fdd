"""The Helm chart, rendered offline: `helm lint --strict`, then `helm template` with default and
non-default values, asserting what the chart promises (HA with leader election, hardened pods,
least-privilege RBAC without wildcards, CRDs iff crds.enabled and kept iff crds.keep, monitoring only
when asked for, a closed values schema, every value documented).

Needs the pinned helm (``inferfleet_dev.install``): with CI=true it is built when missing and the
tests never skip; elsewhere they skip, saying how to build it, when it is not there.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from inferfleet.api import crdgen
from inferfleet_dev import install

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "charts" / "inferfleet"
RELEASE, NAMESPACE = "rel", "inferfleet-system"
FULLNAME = f"{RELEASE}-inferfleet"
Obj = dict[str, Any]


def _in_ci() -> bool:  # as tests/integration/conftest.py
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


@pytest.fixture(scope="module")
def helm() -> Path:
    path = install.tool_path("helm")
    if not _in_ci() and not path.is_file():
        pytest.skip(
            f"helm {install.HELM_VERSION} not found at {path}; build it with "
            "`python -m inferfleet_dev.install helm` (with CI=true this test never skips)"
        )
    try:
        return install.ensure_binaries(("helm",), quiet=True)["helm"]
    except install.InstallError as exc:
        pytest.fail(f"helm {install.HELM_VERSION} could not be built or found: {exc}", pytrace=False)


def run_helm(helm: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(helm), *args], capture_output=True, text=True, timeout=60, check=False)
    if check and proc.returncode != 0:
        pytest.fail(f"helm {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}", pytrace=False)
    return proc


def render(helm: Path, *sets: str) -> list[Obj]:
    args = ["template", RELEASE, str(CHART), "--namespace", NAMESPACE]
    for value in sets:
        args += ["--set", value]
    return [doc for doc in yaml.safe_load_all(run_helm(helm, *args).stdout) if doc]


def one(objs: list[Obj], kind: str, name: str | None = None) -> Obj:
    found = [o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def kinds(objs: list[Obj]) -> list[str]:
    return sorted(o["kind"] for o in objs)


def container(objs: list[Obj]) -> Obj:
    spec = one(objs, "Deployment")["spec"]["template"]["spec"]
    assert [c["name"] for c in spec["containers"]] == ["operator"]
    result: Obj = spec["containers"][0]
    return result


def rules(objs: list[Obj]) -> dict[str, dict[str, list[str]]]:
    """Role/ClusterRole name -> "group/resource[names]" -> sorted verbs (all rules merged)."""
    out: dict[str, dict[str, list[str]]] = {}
    for obj in objs:
        if obj["kind"] not in ("ClusterRole", "Role"):
            continue
        table = out.setdefault(obj["metadata"]["name"], {})
        for rule in obj["rules"]:
            for url in rule.get("nonResourceURLs") or ():
                table[f"nonResource:{url}"] = sorted({*table.get(f"nonResource:{url}", []), *rule["verbs"]})
            for group in rule.get("apiGroups") or ():
                for resource in rule["resources"]:
                    names = f"[{','.join(rule['resourceNames'])}]" if rule.get("resourceNames") else ""
                    key = f"{group or 'core'}/{resource}{names}"
                    table[key] = sorted({*table.get(key, []), *rule["verbs"]})
    return out


# -- lint ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sets",
    [
        pytest.param([], id="defaults"),
        pytest.param(["metrics.serviceMonitor.enabled=true", "prometheusRule.enabled=true"], id="monitoring"),
        pytest.param(
            [
                "metrics.secure.enabled=true",
                "metrics.secure.tlsSecretName=inferfleet-metrics-tls",
                "metrics.serviceMonitor.enabled=true",
                "networkPolicy.enabled=true",
                "image.digest=sha256:" + "a" * 64,
                "logFormat=json",
            ],
            id="secure-metrics-network-policy-digest",
        ),
        pytest.param(
            ["watchNamespace=team-a", "replicaCount=1", "leaderElection.enabled=false", "crds.enabled=false"],
            id="one-namespace-single-replica",
        ),
    ],
)
def test_lint_strict_passes(helm: Path, sets: list[str]) -> None:
    args = ["lint", "--strict", str(CHART)]
    for value in sets:
        args += ["--set", value]
    proc = run_helm(helm, *args, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[WARNING]" not in proc.stdout and "[ERROR]" not in proc.stdout, proc.stdout


# -- defaults: HA, hardened, wired ---------------------------------------------------------------


def test_defaults_render_exactly_the_expected_objects(helm: Path) -> None:
    objs = render(helm)
    assert kinds(objs) == sorted(
        [
            "ClusterRole",
            "ClusterRole",
            "ClusterRole",  # the plan reader (rbac.planReader)
            "ClusterRoleBinding",
            "ClusterRoleBinding",
            "CustomResourceDefinition",
            "CustomResourceDefinition",
            "CustomResourceDefinition",
            "Deployment",
            "PodDisruptionBudget",
            "Role",
            "RoleBinding",
            "Service",
            "ServiceAccount",
        ]
    )
    for obj in objs:
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/instance"] == RELEASE
        assert labels["app.kubernetes.io/managed-by"] == "Helm", "never 'inferfleet': that marks children"
        if obj["kind"] not in ("ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"):
            assert obj["metadata"]["namespace"] == NAMESPACE


def test_defaults_are_highly_available_with_leader_election(helm: Path) -> None:
    objs = render(helm)
    deployment = one(objs, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    args = container(objs)["args"]
    assert args[0] == "run"
    assert "--leader-elect" in args and f"--lease-namespace={NAMESPACE}" in args
    assert one(objs, "PodDisruptionBudget")["spec"]["minAvailable"] == 1
    pod = deployment["spec"]["template"]["spec"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert one(objs, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"] == selector
    preferred = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert preferred[0]["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert preferred[0]["podAffinityTerm"]["labelSelector"]["matchLabels"] == selector
    assert "requiredDuringSchedulingIgnoredDuringExecution" not in pod["affinity"]["podAntiAffinity"]
    (spread,) = pod["topologySpreadConstraints"]
    assert spread["whenUnsatisfiable"] == "ScheduleAnyway"
    assert spread["labelSelector"]["matchLabels"] == selector


def test_pod_and_container_are_hardened(helm: Path) -> None:
    objs = render(helm)
    pod = one(objs, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = container(objs)["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] == 65532
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["privileged"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container(objs)["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
    (volume,) = pod["volumes"]
    assert volume["name"] == "tmp" and "emptyDir" in volume
    assert pod["automountServiceAccountToken"] is True
    assert pod["serviceAccountName"] == FULLNAME
    assert one(objs, "ServiceAccount")["automountServiceAccountToken"] is True


def test_container_resources_probes_env_and_image(helm: Path) -> None:
    objs = render(helm)
    c = container(objs)
    assert c["resources"] == {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}}
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"http-metrics": 8080, "http-health": 8081}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http-health"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http-health"}
    assert {"--metrics-port=8080", "--health-port=8081", "--log-level=info"} <= set(c["args"])
    env = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in c["env"]}
    assert env == {"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace"}
    app_version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    assert c["image"] == f"inferfleet:{app_version}"
    assert c["imagePullPolicy"] == "IfNotPresent"
    image = container(render(helm, "image.repository=registry.example/inferfleet", "image.tag=v9"))["image"]
    assert image == "registry.example/inferfleet:v9"


def test_metrics_service_selects_the_operator_pods(helm: Path) -> None:
    objs = render(helm)
    service = one(objs, "Service")
    assert service["metadata"]["name"] == f"{FULLNAME}-metrics"
    assert service["spec"]["selector"] == one(objs, "Deployment")["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"] == [
        {"name": "http-metrics", "port": 8080, "targetPort": "http-metrics", "protocol": "TCP"}
    ]


@pytest.mark.parametrize(
    ("sets", "present", "absent"),
    [
        pytest.param(["watchNamespace=team-a"], ["--namespace=team-a"], [], id="one-namespace"),
        pytest.param(["logLevel=debug"], ["--log-level=debug"], ["--log-level=info"], id="log-level"),
        pytest.param(
            ["metrics.port=9090", "health.port=9091"],
            ["--metrics-port=9090", "--health-port=9091"],
            ["--metrics-port=8080"],
            id="ports",
        ),
        pytest.param(
            ["replicaCount=1", "leaderElection.enabled=false"],
            ["--no-leader-elect"],
            ["--leader-elect"],
            id="single-replica-without-election",
        ),
    ],
)
def test_args_follow_values(helm: Path, sets: list[str], present: list[str], absent: list[str]) -> None:
    args = container(render(helm, *sets))["args"]
    assert set(present) <= set(args), args
    assert not set(absent) & set(args), args
    if "watchNamespace=team-a" not in sets:
        assert not any(a.startswith("--namespace") for a in args)


def test_more_than_one_replica_requires_leader_election(helm: Path) -> None:
    proc = run_helm(
        helm, "template", RELEASE, str(CHART), "--set", "leaderElection.enabled=false", check=False
    )
    assert proc.returncode != 0
    assert "replicaCount > 1 needs leaderElection.enabled=true" in proc.stderr


def test_single_replica_without_election_has_no_pdb_and_no_lease_role(helm: Path) -> None:
    objs = render(helm, "replicaCount=1", "leaderElection.enabled=false")
    assert "PodDisruptionBudget" not in kinds(objs)
    assert "Role" not in kinds(objs) and "RoleBinding" not in kinds(objs)


def test_tolerations_node_selector_and_hard_anti_affinity(helm: Path) -> None:
    objs = render(
        helm,
        "tolerations[0].key=dedicated",
        "tolerations[0].operator=Exists",
        "nodeSelector.kubernetes\\.io/os=linux",
        "podAntiAffinity=hard",
        "topologySpread.enabled=false",
    )
    pod = one(objs, "Deployment")["spec"]["template"]["spec"]
    assert pod["tolerations"] == [{"key": "dedicated", "operator": "Exists"}]
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert "requiredDuringSchedulingIgnoredDuringExecution" in pod["affinity"]["podAntiAffinity"]
    assert "topologySpreadConstraints" not in pod
    pod = one(render(helm, "podAntiAffinity=none"), "Deployment")["spec"]["template"]["spec"]
    assert "affinity" not in pod


# -- RBAC ---------------------------------------------------------------------------------------

# Exactly what the operator uses (operator/inferfleet/kube/: its watch cache and writes); a change
# here must be deliberate. tests/integration/test_chart.py runs the operator with only these.
EXPECTED_CLUSTER = {
    "inferfleet.dev/acceleratorclasses": ["list", "watch"],
    "inferfleet.dev/fleetpolicies": ["list", "watch"],
    "inferfleet.dev/acceleratorclasses/status": ["patch"],
    "inferfleet.dev/fleetpolicies/status": ["patch"],
    "core/nodes": ["list", "watch"],
    "core/pods": ["list", "watch"],
    "core/events": ["create", "patch"],
}
EXPECTED_WORKLOADS = {
    "inferfleet.dev/inferencepools": ["list", "watch"],
    "inferfleet.dev/inferencepools/status": ["patch"],
    "inferfleet.dev/inferencepools/finalizers": ["update"],
    "apps/deployments": ["create", "delete", "list", "patch", "watch"],
    "core/services": ["create", "delete", "list", "patch", "watch"],
    "core/configmaps": ["create", "delete", "list", "patch", "watch"],
    "core/pods": ["delete", "patch"],
}
EXPECTED_LEASE = {
    "coordination.k8s.io/leases": ["create"],
    "coordination.k8s.io/leases[inferfleet-operator]": ["get", "update"],
}


# `inferfleet plan --live`: one LIST of each collection of operator/inferfleet/kube/snapshot.py
EXPECTED_PLAN_READER = {
    f"{group}/{resource}": ["list"]
    for group, resource in [
        ("inferfleet.dev", "inferencepools"),
        ("inferfleet.dev", "acceleratorclasses"),
        ("inferfleet.dev", "fleetpolicies"),
        ("core", "nodes"),
        ("core", "pods"),
        ("core", "services"),
        ("apps", "deployments"),
    ]
}


def test_rbac_is_exactly_what_the_operator_uses(helm: Path) -> None:
    assert rules(render(helm)) == {
        FULLNAME: EXPECTED_CLUSTER,
        f"{FULLNAME}-workloads": EXPECTED_WORKLOADS,
        f"{FULLNAME}-leader-election": EXPECTED_LEASE,
        f"{FULLNAME}-plan-reader": EXPECTED_PLAN_READER,
    }


def test_the_plan_reader_is_read_only_bound_to_nobody_and_optional(helm: Path) -> None:
    objs = render(helm)
    role = one(objs, "ClusterRole", f"{FULLNAME}-plan-reader")
    assert {v for rule in role["rules"] for v in rule["verbs"]} == {"list"}
    bound = {o["roleRef"]["name"] for o in objs if o["kind"] in ("ClusterRoleBinding", "RoleBinding")}
    assert role["metadata"]["name"] not in bound
    assert f"{FULLNAME}-plan-reader" not in rules(render(helm, "rbac.planReader=false"))


@pytest.mark.parametrize(
    "sets",
    [
        [],
        ["watchNamespace=team-a"],
        ["prometheusRule.enabled=true"],
        ["metrics.secure.enabled=true", "metrics.secure.tlsSecretName=tls"],
    ],
)
def test_rbac_has_no_wildcards(helm: Path, sets: list[str]) -> None:
    for obj in render(helm, *sets):
        for rule in obj.get("rules") or ():
            for field in ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"):
                assert not any("*" in item for item in rule.get(field) or ()), (obj["metadata"]["name"], rule)
            # the one non-resource rule: who may scrape the authenticated metrics (bound to nobody)
            assert "nonResourceURLs" not in rule or (
                obj["metadata"]["name"] == f"{FULLNAME}-metrics-reader"
                and rule["nonResourceURLs"] == ["/metrics"]
            )
        if obj["kind"] in ("ClusterRoleBinding", "RoleBinding"):
            assert obj["subjects"] == [{"kind": "ServiceAccount", "name": FULLNAME, "namespace": NAMESPACE}]


def test_watch_namespace_binds_writes_in_that_namespace_only(helm: Path) -> None:
    objs = render(helm, "watchNamespace=team-a")
    binding = one(objs, "RoleBinding", f"{FULLNAME}-workloads")
    assert binding["metadata"]["namespace"] == "team-a"
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": f"{FULLNAME}-workloads",
    }
    assert [o["metadata"]["name"] for o in objs if o["kind"] == "ClusterRoleBinding"] == [FULLNAME]
    # kopf's scanning is off (it watches nothing), so no namespace or CRD access in either mode
    for mode in (objs, render(helm)):
        assert not {"core/namespaces", "apiextensions.k8s.io/customresourcedefinitions"} & set(
            rules(mode)[FULLNAME]
        )


def test_rbac_and_service_account_can_be_left_to_the_user(helm: Path) -> None:
    objs = render(helm, "rbac.create=false", "serviceAccount.create=false", "serviceAccount.name=mine")
    rbac = {"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "ServiceAccount"}
    assert not rbac & set(kinds(objs))
    assert one(objs, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "mine"


# -- CRDs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("enabled", "keep"), [(True, True), (True, False), (False, True), (False, False)])
def test_crds_present_iff_enabled_and_kept_iff_keep(helm: Path, enabled: bool, keep: bool) -> None:
    objs = render(helm, f"crds.enabled={str(enabled).lower()}", f"crds.keep={str(keep).lower()}")
    crds = [o for o in objs if o["kind"] == "CustomResourceDefinition"]
    expected = sorted(k.name for k in crdgen.KINDS) if enabled else []
    assert sorted(c["metadata"]["name"] for c in crds) == expected
    for crd in crds:
        annotations = crd["metadata"].get("annotations") or {}
        assert (annotations.get("helm.sh/resource-policy") == "keep") is keep


def test_chart_crds_are_the_generated_crds(helm: Path) -> None:
    """Same spec as crds/*.yaml (the drift test keeps both generated from the models)."""
    by_name = {o["metadata"]["name"]: o for o in render(helm) if o["kind"] == "CustomResourceDefinition"}
    for kind in crdgen.KINDS:
        plain = yaml.safe_load((ROOT / "crds" / f"{kind.name}.yaml").read_text())
        assert by_name[kind.name]["spec"] == plain["spec"]
        assert plain["metadata"]["labels"].items() <= by_name[kind.name]["metadata"]["labels"].items()
    assert not (CHART / "crds").exists(), "CRDs live in templates/crds/: Helm never upgrades crds/"


# -- monitoring ---------------------------------------------------------------------------------


def test_monitoring_is_rendered_only_when_enabled(helm: Path) -> None:
    assert not {"ServiceMonitor", "PrometheusRule"} & set(kinds(render(helm)))
    objs = render(
        helm,
        "metrics.serviceMonitor.enabled=true",
        "prometheusRule.enabled=true",
        "metrics.serviceMonitor.labels.release=kps",
        "prometheusRule.labels.release=kps",
    )
    monitor, rule = one(objs, "ServiceMonitor"), one(objs, "PrometheusRule")
    service = one(objs, "Service")
    assert monitor["metadata"]["labels"]["release"] == rule["metadata"]["labels"]["release"] == "kps"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == service["spec"]["ports"][0]["name"]
    assert endpoint["honorLabels"] is True  # the metrics' own namespace label is the pool's
    only = render(helm, "metrics.serviceMonitor.enabled=true")
    assert "ServiceMonitor" in kinds(only) and "PrometheusRule" not in kinds(only)


def test_model_servers_are_scraped_with_the_labels_the_default_queries_use(helm: Path) -> None:
    from inferfleet.api import labels
    from inferfleet.reconcile.children import build_deployment

    assert "PodMonitor" not in kinds(render(helm))
    objs = render(
        helm,
        "autoscaling.podMonitor.enabled=true",
        "autoscaling.prometheus.url=http://prometheus.monitoring:9090",
    )
    monitor = one(objs, "PodMonitor")
    assert "--prometheus-url=http://prometheus.monitoring:9090" in container(objs)["args"]
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    targets = {r["targetLabel"]: r["sourceLabels"][0] for r in endpoint["relabelings"]}
    assert targets == {
        "namespace": "__meta_kubernetes_namespace",
        "pod": "__meta_kubernetes_pod_name",
        "pool": "__meta_kubernetes_pod_label_inferfleet_dev_pool",
        "accelerator_class": "__meta_kubernetes_pod_label_inferfleet_dev_accelerator_class",
    }
    # the selector and the port match the pods the operator really creates
    from examples import example

    from inferfleet.api.acceleratorclass import AcceleratorClass
    from inferfleet.api.inferencepool import InferencePool

    pool = InferencePool.model_validate(example("InferencePool", "chat-70b"))
    cls = AcceleratorClass.model_validate(example("AcceleratorClass", "h100"))
    pod = build_deployment(pool, cls, 1, 2)["spec"]["template"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert endpoint["port"] in {p["name"] for p in pod["spec"]["containers"][0]["ports"]}
    assert {labels.POOL, labels.ACCELERATOR_CLASS} <= pod["metadata"]["labels"].keys()
    assert monitor["spec"]["namespaceSelector"] == {"any": True}


def test_alerts_cover_planning_power_and_errors_of_this_release(helm: Path) -> None:
    rule = one(
        render(helm, "prometheusRule.enabled=true", "prometheusRule.noSuccessfulPlanSeconds=900"),
        "PrometheusRule",
    )
    alerts = {r["alert"]: r for group in rule["spec"]["groups"] for r in group["rules"]}
    assert set(alerts) == {
        "InferfleetNoSuccessfulPlan",
        "InferfleetNoLeader",
        "InferfleetPowerOverBudget",
        "InferfleetReconcileErrors",
    }
    job = f'job="{FULLNAME}-metrics"'
    for name, alert in alerts.items():
        metrics = re.findall(r"(inferfleet_[a-z_]+)\{([^}]*)\}", alert["expr"])
        assert metrics, name
        assert all(selector == job for _, selector in metrics), (name, alert["expr"])
        assert alert["labels"]["severity"] in ("warning", "critical")
        assert alert["annotations"]["summary"] and alert["annotations"]["description"]
    assert "inferfleet_last_successful_plan_timestamp_seconds" in alerts["InferfleetNoSuccessfulPlan"]["expr"]
    assert alerts["InferfleetNoSuccessfulPlan"]["expr"].endswith("> 900")
    power = alerts["InferfleetPowerOverBudget"]["expr"]
    assert "inferfleet_domain_power_watts" in power and "inferfleet_domain_power_budget_watts" in power
    assert "rate(inferfleet_reconcile_errors_total" in alerts["InferfleetReconcileErrors"]["expr"]
    # Prometheus templates survive Helm's templating
    assert "{{ $labels.power_domain }}" in alerts["InferfleetPowerOverBudget"]["annotations"]["summary"]


def test_alert_metric_names_exist_in_the_exporter() -> None:
    exporter = (ROOT / "operator" / "inferfleet" / "metrics" / "exporter.py").read_text()
    text = (CHART / "templates" / "prometheusrule.yaml").read_text()
    for metric in set(re.findall(r"\b(inferfleet_[a-z_]+?)(?:_total)?\{", text)):
        assert f'"{metric}' in exporter, f"{metric} is not exported by the operator"


# -- values and schema --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param("foo=bar", "additional properties 'foo' not allowed", id="unknown-top-level"),
        pytest.param("image.registry=x", "additional properties 'registry' not allowed", id="unknown-nested"),
        pytest.param(
            "securityContext.capabilities.add2[0]=NET_ADMIN",
            "additional properties 'add2'",
            id="unknown-deep",
        ),
        pytest.param("replicaCount=two", "replicaCount", id="wrong-type"),
        pytest.param("logLevel=verbose", "logLevel", id="not-in-enum"),
        pytest.param("podAntiAffinity=always", "podAntiAffinity", id="bad-anti-affinity"),
        pytest.param(
            "tolerations[0].keyy=x", "additional properties 'keyy' not allowed", id="toleration-typo"
        ),
        pytest.param(
            "resources.requests.gpu=1", "additional properties 'gpu' not allowed", id="resource-typo"
        ),
        pytest.param("watchNamespace=Team_A", "watchNamespace", id="bad-namespace"),
    ],
)
def test_schema_rejects_bad_values(helm: Path, value: str, message: str) -> None:
    proc = run_helm(helm, "template", RELEASE, str(CHART), "--set", value, check=False)
    assert proc.returncode != 0, f"--set {value} was accepted"
    assert message in proc.stderr, proc.stderr


def _object_schemas(node: Any, path: str = "") -> Iterator[tuple[str, Obj]]:
    if isinstance(node, dict):
        if node.get("type") == "object":
            yield path or "(root)", node
        for key, child in node.items():
            if key == "properties":
                for name, prop in child.items():
                    yield from _object_schemas(prop, f"{path}.{name}".lstrip("."))
            elif key in ("items", "additionalProperties"):
                yield from _object_schemas(child, f"{path}[]")
            elif key in ("anyOf", "oneOf", "allOf"):
                for alt in child:
                    yield from _object_schemas(alt, path)


MAPS = {
    "serviceAccount.annotations",
    "podAnnotations",
    "podLabels",
    "nodeSelector",
    "metrics.service.annotations",
    "metrics.serviceMonitor.labels",
    "autoscaling.podMonitor.labels",
    "prometheusRule.labels",
}


# Kubernetes objects passed through verbatim (their own schema is the API server's: it answers a
# bad one with its message, which tests/integration/test_chart.py's server-side dry run sees)
KUBERNETES_OBJECTS = {
    "affinity.nodeAffinity",
    "affinity.podAffinity",
    "affinity.podAntiAffinity",
    "topologySpreadConstraints[].labelSelector",
    "extraEnv[].valueFrom",
    "networkPolicy.metricsFrom[]",
    "networkPolicy.extraEgress[]",
    "metrics.serviceMonitor.tlsConfig",
}


def test_schema_is_closed_at_every_object_level() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    seen = set()
    for path, node in _object_schemas(schema):
        seen.add(path)
        if path == "global":  # Helm's values shared by a parent chart: its keys are the parent's
            continue
        if path in MAPS:  # free keys, typed values
            assert node["additionalProperties"] == {"type": "string"}, path
        elif path in KUBERNETES_OBJECTS:
            assert "additionalProperties" not in node and "properties" not in node, path
        else:
            assert node.get("additionalProperties") is False, f"{path} is not closed"
    assert seen >= MAPS | KUBERNETES_OBJECTS


def _documented_keys(text: str) -> Iterator[tuple[str, bool, list[str]]]:
    """(dotted key, is a leaf, the comment lines just above it) for every key of values.yaml."""
    stack: list[tuple[int, str]] = []
    comments: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            comments.append(stripped)
            continue
        match = re.match(r"^( *)([A-Za-z][\w-]*):(.*)$", line)
        if not match:
            comments = []
            continue
        indent, key, rest = len(match.group(1)), match.group(2), match.group(3).split(" #")[0].strip()
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, key))
        yield ".".join(k for _, k in stack), rest != "", comments
        comments = []


def test_probes_are_liveness_on_healthz_and_readiness_on_readyz_with_the_operators_bounds(helm: Path) -> None:
    c = container(render(helm))
    assert c["livenessProbe"] == {
        "httpGet": {"path": "/healthz", "port": "http-health"},
        "initialDelaySeconds": 15,
        "periodSeconds": 20,
        "timeoutSeconds": 5,
        "failureThreshold": 3,
    }
    assert c["readinessProbe"] == {
        "httpGet": {"path": "/readyz", "port": "http-health"},
        "initialDelaySeconds": 5,
        "periodSeconds": 10,
        "timeoutSeconds": 3,
        "failureThreshold": 3,
    }
    bounds = [a for a in c["args"] if a.split("=")[0].endswith("-seconds")]
    assert bounds == [
        "--api-probe-seconds=10",
        "--api-unreachable-seconds=120",
        "--watch-silence-seconds=360",
    ]
    c = container(
        render(
            helm,
            "health.apiUnreachableSeconds=30,health.planStaleSeconds=240,livenessProbe.failureThreshold=5",
            "readinessProbe.periodSeconds=4",
        )
    )
    assert {"--api-unreachable-seconds=30", "--plan-stale-seconds=240"} <= set(c["args"])
    assert c["livenessProbe"]["failureThreshold"] == 5 and c["readinessProbe"]["periodSeconds"] == 4


def test_every_value_is_documented_by_a_comment_starting_with_its_key() -> None:
    text = (CHART / "values.yaml").read_text()
    values = yaml.safe_load(text)
    leaves = [(key, comments) for key, leaf, comments in _documented_keys(text) if leaf]
    assert len(leaves) > 40
    for key, comments in leaves:
        assert comments and comments[0].startswith(f"# {key} -- "), f"{key}: no '# {key} -- ...' comment"
        node: Any = values
        for part in key.split("."):
            node = node[part]  # the parser's path is a real path
    readme = (CHART / "README.md").read_text()
    documented = re.findall(r"^ *# ([\w.-]+) -- ", text, re.M)  # leaves and optional keys
    missing = [key for key in documented if f"`{key}`" not in readme]
    assert not missing, f"charts/inferfleet/README.md does not document {missing}"


def test_schema_and_values_name_the_same_keys() -> None:
    """Every value has a schema; a key only the schema knows is an optional one, documented in
    values.yaml by a commented-out example under its '# <key> -- ' comment."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    text = (CHART / "values.yaml").read_text()
    values = yaml.safe_load(text)

    def walk(vals: Any, sch: Obj, path: str) -> None:
        props = sch.get("properties")
        if not isinstance(vals, dict) or props is None:
            return
        where = path or "(root)"
        assert set(vals) <= set(props), f"{where}: {sorted(set(vals) - set(props))} not in the schema"
        if path == "affinity":  # a pod spec's affinity: its keys are Kubernetes', named in the comment
            return
        for optional in set(props) - set(vals) - {"global"}:
            key = f"{path}.{optional}".lstrip(".")
            assert re.search(rf"^ *# {re.escape(key)} -- .*\n *# {re.escape(optional)}: ", text, re.M), (
                f"{key} is in the schema but not documented in values.yaml"
            )
        for key, value in vals.items():
            walk(value, props[key], f"{path}.{key}".lstrip("."))

    walk(values, schema, "")


def test_notes_explain_the_next_steps(helm: Path) -> None:
    proc = run_helm(helm, "install", RELEASE, str(CHART), "--namespace", NAMESPACE, "--dry-run=client")
    notes = proc.stdout.split("NOTES:", 1)[1]
    assert "kubectl apply -f examples/" in notes
    assert "kubectl get inferencepools.inferfleet.dev -A" in notes
    assert f"Lease {NAMESPACE}/inferfleet-operator" in notes


# -- issue 13: digest, free-form scheduling, extra args/env, log format, leader election, checks ---

DIGEST = "sha256:" + "0123456789abcdef" * 4


def test_the_digest_wins_over_the_tag(helm: Path) -> None:
    assert container(render(helm, "image.tag=1.2.3"))["image"] == "inferfleet:1.2.3"
    image = container(render(helm, "image.tag=1.2.3", f"image.digest={DIGEST}"))["image"]
    assert image == f"inferfleet@{DIGEST}"


def test_free_form_affinity_replaces_the_preset(helm: Path) -> None:
    objs = render(
        helm,
        "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]"
        ".matchExpressions[0].key=node-role.kubernetes.io/system",
        "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]"
        ".matchExpressions[0].operator=Exists",
    )
    affinity = one(objs, "Deployment")["spec"]["template"]["spec"]["affinity"]
    assert list(affinity) == ["nodeAffinity"], "the podAntiAffinity preset is replaced, not merged"
    term = affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]
    assert term["matchExpressions"] == [{"key": "node-role.kubernetes.io/system", "operator": "Exists"}]


def test_free_form_topology_spread_replaces_the_preset_and_defaults_the_selector(helm: Path) -> None:
    objs = render(
        helm,
        "topologySpreadConstraints[0].topologyKey=kubernetes.io/hostname",
        "topologySpreadConstraints[0].maxSkew=1",
        "topologySpreadConstraints[0].whenUnsatisfiable=DoNotSchedule",
        "topologySpreadConstraints[1].topologyKey=topology.kubernetes.io/region",
        "topologySpreadConstraints[1].maxSkew=2",
        "topologySpreadConstraints[1].whenUnsatisfiable=ScheduleAnyway",
        "topologySpreadConstraints[1].labelSelector.matchLabels.team=a",
    )
    spread = one(objs, "Deployment")["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert [c["topologyKey"] for c in spread] == ["kubernetes.io/hostname", "topology.kubernetes.io/region"]
    selector = {"app.kubernetes.io/name": "inferfleet", "app.kubernetes.io/instance": RELEASE}
    assert spread[0]["labelSelector"] == {"matchLabels": selector}
    assert spread[1]["labelSelector"] == {"matchLabels": {"team": "a"}}, "a given selector is kept"
    assert spread[0]["whenUnsatisfiable"] == "DoNotSchedule"


def test_extra_args_and_env_come_after_the_charts_own(helm: Path) -> None:
    c = container(
        render(
            helm,
            "extraArgs[0]=--api-probe-seconds=5",
            "extraEnv[0].name=HTTPS_PROXY",
            "extraEnv[0].value=http://proxy:3128",
            "extraEnv[1].name=NODE",
            "extraEnv[1].valueFrom.fieldRef.fieldPath=spec.nodeName",
        )
    )
    assert c["args"][-1] == "--api-probe-seconds=5"
    assert [e["name"] for e in c["env"]] == ["POD_NAME", "POD_NAMESPACE", "HTTPS_PROXY", "NODE"]
    assert c["env"][3]["valueFrom"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}


def test_log_format_and_leader_election_timings_become_flags(helm: Path) -> None:
    args = container(render(helm))["args"]
    assert "--log-format=text" in args
    assert {
        "--leader-elect-lease-duration=15",
        "--leader-elect-renew-deadline=10",
        "--leader-elect-retry-period=2",
    } <= set(args)
    args = container(
        render(
            helm,
            "logFormat=json",
            "leaderElection.leaseDurationSeconds=30",
            "leaderElection.renewDeadlineSeconds=20",
            "leaderElection.retryPeriodSeconds=4",
        )
    )["args"]
    assert {"--log-format=json", "--leader-elect-lease-duration=30", "--leader-elect-retry-period=4"} <= set(
        args
    )
    args = container(render(helm, "replicaCount=1", "leaderElection.enabled=false"))["args"]
    assert not [a for a in args if a.startswith("--leader-elect-")], "no timings without an election"


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        pytest.param(
            ["leaderElection.renewDeadlineSeconds=20"],
            "leaderElection: need retryPeriodSeconds < renewDeadlineSeconds < leaseDurationSeconds, "
            "got 2, 20, 15",
            id="renew-past-the-lease",
        ),
        pytest.param(
            ["metrics.serviceMonitor.scrapeTimeout=31s"],
            "metrics.serviceMonitor.scrapeTimeout (31s) must not be longer than "
            "metrics.serviceMonitor.interval (30s)",
            id="scrape-timeout-past-interval",
        ),
        pytest.param(
            ["metrics.serviceMonitor.interval=1m", "metrics.serviceMonitor.scrapeTimeout=1m30s"],
            "scrapeTimeout (1m30s) must not be longer than metrics.serviceMonitor.interval (1m)",
            id="mixed-units",
        ),
        pytest.param(
            ["autoscaling.podMonitor.enabled=true", "autoscaling.podMonitor.interval=1m"],
            "autoscaling.prometheus.window (2m) must be at least 4 x autoscaling.podMonitor.interval (1m)",
            id="window-under-4-scrapes",
        ),
        pytest.param(
            ["autoscaling.podMonitor.enabled=true", "autoscaling.prometheus.burstWindow=20s"],
            "autoscaling.prometheus.burstWindow (20s) must be at least 2 x "
            "autoscaling.podMonitor.interval (15s)",
            id="burst-under-2-scrapes",
        ),
        pytest.param(
            ["metrics.secure.enabled=true"],
            "metrics.secure.enabled needs metrics.secure.tlsSecretName",
            id="secure-without-certificate",
        ),
        pytest.param([f"image.digest={DIGEST[:-1]}"], "/image/digest", id="short-digest"),
        pytest.param(["image.digest=latest"], "/image/digest", id="tag-as-digest"),
        pytest.param(["logFormat=xml"], "logFormat", id="unknown-log-format"),
        pytest.param(["extraArgs[0]=run"], "extraArgs", id="extra-arg-not-a-flag"),
        pytest.param(["extraEnv[0].value=x"], "name", id="env-without-name"),
        pytest.param(["topologySpreadConstraints[0].maxSkew=1"], "topologyKey", id="spread-without-key"),
        pytest.param(["affinity.nodeAffinty.x=y"], "nodeAffinty", id="affinity-typo"),
        pytest.param(["leaderElection.retryPeriodSeconds=0"], "retryPeriodSeconds", id="zero-retry"),
        pytest.param(
            ["networkPolicy.apiServerCIDRs[0]=10.0.0.1"], "apiServerCIDRs", id="cidr-without-prefix"
        ),
    ],
)
def test_bad_combinations_are_refused_naming_the_values(helm: Path, sets: list[str], message: str) -> None:
    args = ["template", RELEASE, str(CHART)]
    for value in sets:
        args += ["--set", value]
    proc = run_helm(helm, *args, check=False)
    assert proc.returncode != 0, f"{sets} was accepted"
    assert message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_equal_scrape_timeout_and_interval_is_accepted(helm: Path) -> None:
    objs = render(
        helm,
        "metrics.serviceMonitor.enabled=true",
        "metrics.serviceMonitor.interval=15s",
        "metrics.serviceMonitor.scrapeTimeout=15000ms",
    )
    assert one(objs, "ServiceMonitor")["spec"]["endpoints"][0]["scrapeTimeout"] == "15000ms"


def test_the_network_policy_is_off_by_default_and_narrow_when_on(helm: Path) -> None:
    assert "NetworkPolicy" not in kinds(render(helm))
    policy = one(
        render(
            helm,
            "networkPolicy.enabled=true",
            "networkPolicy.metricsFrom[0].namespaceSelector.matchLabels.kubernetes\\.io/metadata\\.name=monitoring",
            "networkPolicy.apiServerCIDRs[0]=10.96.0.1/32",
            "networkPolicy.extraEgress[0].ports[0].port=9090",
        ),
        "NetworkPolicy",
    )["spec"]
    assert policy["podSelector"]["matchLabels"]["app.kubernetes.io/instance"] == RELEASE
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    metrics, health = policy["ingress"]
    assert metrics["ports"] == [{"port": "http-metrics", "protocol": "TCP"}]
    assert metrics["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    ]
    assert health == {"ports": [{"port": "http-health", "protocol": "TCP"}]}
    api, dns, extra = policy["egress"]
    assert [p["port"] for p in api["ports"]] == [443, 6443] and api["to"] == [
        {"ipBlock": {"cidr": "10.96.0.1/32"}}
    ]
    assert {(p["port"], p["protocol"]) for p in dns["ports"]} == {(53, "UDP"), (53, "TCP")}
    assert extra == {"ports": [{"port": 9090}]}
    # the port names it allows are the container's
    pod = one(render(helm, "networkPolicy.enabled=true"), "Deployment")["spec"]["template"]["spec"]
    assert {"http-metrics", "http-health"} <= {p["name"] for p in pod["containers"][0]["ports"]}


def test_secure_metrics_serve_tls_from_the_secret_with_review_rbac_and_an_https_scrape(helm: Path) -> None:
    objs = render(
        helm,
        "metrics.secure.enabled=true",
        "metrics.secure.tlsSecretName=inferfleet-metrics-tls",
        "metrics.serviceMonitor.enabled=true",
        "metrics.serviceMonitor.tlsConfig.serverName=rel-inferfleet-metrics.inferfleet-system.svc",
        "networkPolicy.enabled=true",
    )
    deployment = one(objs, "Deployment")["spec"]["template"]["spec"]
    c = deployment["containers"][0]
    assert {
        "--metrics-secure",
        "--metrics-cert-file=/etc/inferfleet/metrics-tls/tls.crt",
        "--metrics-key-file=/etc/inferfleet/metrics-tls/tls.key",
    } <= set(c["args"])
    assert {"name": "metrics-tls", "mountPath": "/etc/inferfleet/metrics-tls", "readOnly": True} in c[
        "volumeMounts"
    ]
    volume = next(v for v in deployment["volumes"] if v["name"] == "metrics-tls")
    assert volume["secret"]["secretName"] == "inferfleet-metrics-tls"
    assert "https-metrics" in {p["name"] for p in c["ports"]}
    service = one(objs, "Service")["spec"]["ports"][0]
    assert service["name"] == service["targetPort"] == "https-metrics"
    endpoint = one(objs, "ServiceMonitor")["spec"]["endpoints"][0]
    assert endpoint["port"] == "https-metrics" and endpoint["scheme"] == "https"
    assert endpoint["bearerTokenFile"] == "/var/run/secrets/kubernetes.io/serviceaccount/token"
    assert endpoint["tlsConfig"] == {"serverName": "rel-inferfleet-metrics.inferfleet-system.svc"}
    assert one(objs, "NetworkPolicy")["spec"]["ingress"][0]["ports"][0]["port"] == "https-metrics"
    table = rules(objs)
    assert table[f"{FULLNAME}-metrics-auth"] == {
        "authentication.k8s.io/tokenreviews": ["create"],
        "authorization.k8s.io/subjectaccessreviews": ["create"],
    }
    assert table[f"{FULLNAME}-metrics-reader"] == {"nonResource:/metrics": ["get"]}
    bound = {o["roleRef"]["name"]: o for o in objs if o["kind"] == "ClusterRoleBinding"}
    assert bound[f"{FULLNAME}-metrics-auth"]["subjects"][0]["name"] == FULLNAME
    assert f"{FULLNAME}-metrics-reader" not in bound, "the reader is bound to nobody by the chart"
    plain = render(helm)
    assert f"{FULLNAME}-metrics-auth" not in rules(plain)
    assert "--metrics-secure" not in container(plain)["args"]
