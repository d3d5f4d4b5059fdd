"""The CRDs on the real API server: they install, accept the examples, reject bad objects with our
messages (OpenAPI bounds and CEL rules), and show what kubectl users expect.  The admission rules
(env, tolerations, node selector keys, names) are checked three ways: the API server and
``inferfleet plan`` agree on each, and the children the operator would build of the object are
refused by the API server exactly when the object is."""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from inferfleet.api import crdgen, podtemplate
from inferfleet.api.acceleratorclass import AcceleratorClass, AcceleratorClassSpec, Toleration
from inferfleet.api.inferencepool import InferencePool, ServerTemplate
from inferfleet.api.kinds import BY_KIND
from inferfleet.api.validation import ManifestError, validate_object
from inferfleet.reconcile import children
from inferfleet_dev.cluster import Cluster

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def docs(kind: str) -> list[dict[str, Any]]:
    out = []
    for path in sorted(
        [*(ROOT / "examples").glob("*.yaml"), *(ROOT / "examples/request-mix").glob("*.yaml")]
    ):
        out += [d for d in yaml.safe_load_all(path.read_text()) if d and d["kind"] == kind]
    return out


def apply(cluster: Cluster, obj: dict[str, Any], *extra: str) -> tuple[int, str]:
    proc = cluster.kubectl("apply", "--dry-run=server", *extra, "-f", "-", input=json.dumps(obj), check=False)
    return proc.returncode, proc.stdout + proc.stderr


def test_examples_are_accepted_by_the_api_server(cluster: Cluster, crds: list[Path]) -> None:
    assert len(crds) == 3
    for kind in ("AcceleratorClass", "FleetPolicy"):
        for obj in docs(kind):
            rc, out = apply(cluster, obj)
            assert rc == 0, out
    for original in docs("InferencePool"):
        obj = copy.deepcopy(original)
        obj["metadata"]["namespace"] = "default"
        rc, out = apply(cluster, obj)
        assert rc == 0, out


def bad_pool(path: str, value: Any) -> dict[str, Any]:
    obj = copy.deepcopy(docs("InferencePool")[0])
    obj["metadata"]["namespace"] = "default"
    node = obj
    *parents, last = path.split(".")
    for key in parents:
        node = node[key]
    node[last] = value
    return obj


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        pytest.param(
            "spec.minReplicas", 99, "minReplicas must not exceed maxReplicas", id="cel-min-above-max"
        ),
        pytest.param(
            "spec.slo",
            {},
            "an SLO needs ttftP95Milliseconds, tpotP95Milliseconds or both",
            id="cel-empty-slo",
        ),
        pytest.param(
            "spec.slo.tpotP95Milliseconds", 0, "should be greater than or equal to 1", id="bound-zero-tpot"
        ),
        pytest.param("spec.model.parameters", "lots", "spec.model.parameters", id="pattern-parameters"),
        pytest.param(
            "spec.demand.requestsPerSecond", "-3", "spec.demand.requestsPerSecond", id="negative-demand"
        ),
        pytest.param(
            "spec.placement",
            {"allowedClasses": ["h100"], "preferredClasses": ["groq"]},
            "every preferred class must also be allowed",
            id="cel-preferred-not-allowed",
        ),
        pytest.param("spec.model.precision", "fp7", "Unsupported value", id="enum-precision"),
    ],
)
def test_api_server_rejects_bad_pool_with_our_message(
    cluster: Cluster, crds: list[Path], path: str, value: Any, message: str
) -> None:
    rc, out = apply(cluster, bad_pool(path, value))
    assert rc != 0
    assert message in out, out


def test_unknown_field_is_rejected_by_strict_field_validation(cluster: Cluster, crds: list[Path]) -> None:
    rc, out = apply(cluster, bad_pool("spec.model.flavour", "x"))
    assert rc != 0 and 'unknown field "spec.model.flavour"' in out, out


def test_class_and_policy_rules(cluster: Cluster, crds: list[Path]) -> None:
    cls = copy.deepcopy(docs("AcceleratorClass")[0])
    cls["spec"]["price"] = {"dollarsPerDeviceHour": "1", "capitalDollarsPerDevice": 5}
    rc, out = apply(cluster, cls)
    assert rc != 0 and "set exactly one of dollarsPerDeviceHour and capitalDollarsPerDevice" in out, out
    pol = copy.deepcopy(docs("FleetPolicy")[0])
    pol["spec"]["electricity"]["pue"] = "7"
    rc, out = apply(cluster, pol)
    assert rc != 0 and "pue must be between 1.0 and 3.0" in out, out


def test_kubectl_explain_and_short_names(cluster: Cluster, crds: list[Path]) -> None:
    out = cluster.kubectl("explain", "inferencepools.inferfleet.dev.spec.slo").stdout
    assert "Latency objectives at the 95th percentile" in out
    assert "ttftP95Milliseconds" in out
    out = cluster.kubectl("api-resources", "--api-group=inferfleet.dev", "-o", "wide").stdout
    assert "ifp" in out and "accelclass" in out and "fleetpol" in out
    assert "infpool" not in out


def test_kubectl_explain_describes_the_new_fields_and_the_status(cluster: Cluster, crds: list[Path]) -> None:
    """kubectl explain is never blank: the server template's Pod fields and every status field."""
    for path, words in (
        ("inferencepools.inferfleet.dev.spec.server.sharedMemory", "/dev/shm"),
        ("inferencepools.inferfleet.dev.spec.server.env.valueFrom", "Secret"),
        ("inferencepools.inferfleet.dev.spec.server.cpu", "quantity"),
        ("inferencepools.inferfleet.dev.spec.demand.autoscaling", "Prometheus"),
        ("fleetpolicies.inferfleet.dev.status.lastPlan.gap", "gap"),
        ("acceleratorclasses.inferfleet.dev.status.conditions.reason", "CamelCase"),
    ):
        out = cluster.kubectl("explain", path).stdout
        assert words in out, out


def test_server_side_defaults(cluster: Cluster, crds: list[Path]) -> None:
    pol = copy.deepcopy(docs("FleetPolicy")[0])
    pol["spec"].pop("electricity")
    rc, out = apply(cluster, pol, "-o", "json")
    assert rc == 0, out
    applied = json.loads(out)
    assert applied["spec"]["sloHeadroomPercent"] == 20


# --- Admission: what the CRDs can refuse of objects whose children could never be created --------

SUBDOMAIN_253 = ".".join(["a" * 63] * 3) + "." + "a" * 61  # the longest key prefix allowed
KEY = "inferfleet.dev/accelerator"
UNIQUE = "env names must be unique"
RESERVED = "env must not set INFERFLEET_POOL or INFERFLEET_ACCELERATOR_CLASS"
POOL_NAME = "metadata.name must be at most 63 lower-case letters, digits and '-', beginning with a letter"
CLASS_NAME = "metadata.name must be at most 63 lower-case letters, digits and '-', beginning and ending"
EXISTS_VALUE = "value must be empty when operator is Exists"
NO_KEY = "key may be unset only with operator Exists"
SECONDS = "tolerationSeconds needs effect NoExecute"
PREFIX = "key's prefix (before '/') must be at most 253 characters"
SELECTOR = "nodeSelector keys must be label keys"
VALUE_BESIDE = "value must be empty when valueFrom is set"
ONE_SOURCE = "valueFrom needs exactly one of secretKeyRef, configMapKeyRef and fieldRef"
ENV_FROM = "envFrom needs exactly one of configMapRef and secretRef"
UNIQUE_VOLUMES = "volumes must have unique names"
SHM_NAME = "volumes must not be named inferfleet-shm"
ONE_VOLUME_SOURCE = "a volume takes at most one of emptyDir, configMap, secret and persistentVolumeClaim"
MOUNT_OF = "each of volumeMounts must name one of volumes"
UNIQUE_PATHS = "volumeMounts must have unique mountPaths"
AT_SHM = "volumeMounts must not use /dev/shm while sharedMemory is enabled"
SUB_PATH = "subPath must be a relative path without '..'"
ONE_CHECK = "a probe needs exactly one of httpGet and tcpSocket"
STARTUP_ONCE = "startupProbe.successThreshold must be 1"
SECCOMP = "localhostProfile must be set with type Localhost, and only then"
SYS_ADMIN = "allowPrivilegeEscalation cannot be false while capabilities.add has CAP_SYS_ADMIN"
OURS = (
    UNIQUE,
    RESERVED,
    POOL_NAME,
    CLASS_NAME,
    EXISTS_VALUE,
    NO_KEY,
    SECONDS,
    PREFIX,
    SELECTOR,
    VALUE_BESIDE,
    ONE_SOURCE,
    ENV_FROM,
    UNIQUE_VOLUMES,
    SHM_NAME,
    ONE_VOLUME_SOURCE,
    MOUNT_OF,
    UNIQUE_PATHS,
    AT_SHM,
    SUB_PATH,
    ONE_CHECK,
    STARTUP_ONCE,
    SECCOMP,
    SYS_ADMIN,
)
FROM_SECRET = {"secretKeyRef": {"name": "hf", "key": "token"}}
EMPTY_AB = [{"name": "a", "emptyDir": {}}, {"name": "b", "emptyDir": {}}]
MODELS: dict[str, type[BaseModel]] = {"InferencePool": InferencePool, "AcceleratorClass": AcceleratorClass}


@dataclasses.dataclass(frozen=True)
class Change:
    """One change to the first example of a kind, and what the API server says of it.

    ``refused_at``: the field the server names (None: accepted); ``message`` is in its answer and,
    for our CEL rules, in ``inferfleet plan``'s.  ``children``: the object's Deployment and Service,
    as the operator builds them, are refused exactly when the object is; False where offline
    validation stops before the rules (a pattern), or where the rule is consistency (said there)."""

    kind: str
    changes: dict[str, Any]
    refused_at: str | None = None
    message: str = ""
    children: bool = True


def pool(changes: dict[str, Any], refused_at: str | None = None, message: str = "") -> Change:
    return Change("InferencePool", changes, refused_at, message, message in ("", *OURS))


def accelerator_class(
    changes: dict[str, Any], refused_at: str | None = None, message: str = "", *, children: bool = True
) -> Change:
    return Change("AcceleratorClass", changes, refused_at, message, children and message in ("", *OURS))


def tolerating(*items: dict[str, Any], refused_at: str | None = None, message: str = "") -> Change:
    return accelerator_class({"spec.tolerations": list(items)}, refused_at, message)


def volumes(items: list[dict[str, Any]], mounts: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"spec.server.volumes": items, "spec.server.volumeMounts": mounts or []}


def env(*names: str) -> dict[str, Any]:
    return {"spec.server.env": [{"name": n, "value": str(i)} for i, n in enumerate(names)]}


CHANGES = [
    # env: server-side apply keys a container's env by name, so a duplicate fails every apply
    pytest.param(pool(env("A", "A"), "spec.server.env", UNIQUE), id="env-name-twice"),
    pytest.param(pool(env("A", "a")), id="env-names-differ-in-case"),
    pytest.param(pool(env("INFERFLEET_POOL"), "spec.server.env", RESERVED), id="env-sets-the-pool"),
    pytest.param(
        pool(env("X", "INFERFLEET_ACCELERATOR_CLASS"), "spec.server.env", RESERVED), id="env-sets-the-class"
    ),
    pytest.param(pool(env("INFERFLEET_POOL_ID")), id="env-near-a-reserved-name"),
    # pool names: the Service's name (a DNS-1035 label) and a label value
    pytest.param(pool({"metadata.name": "p" * 64}, "metadata.name", POOL_NAME), id="pool-name-64-long"),
    pytest.param(pool({"metadata.name": "p" * 63}), id="pool-name-63-long"),
    pytest.param(pool({"metadata.name": "chat.70b"}, "metadata.name", POOL_NAME), id="pool-name-dotted"),
    pytest.param(
        # Service names are DNS-1035 labels before Kubernetes 1.35 (RelaxedServiceNameValidation);
        # the chart supports 1.30 and later
        Change("InferencePool", {"metadata.name": "70b-chat"}, "metadata.name", POOL_NAME, children=False),
        id="pool-name-digit-first",
    ),
    pytest.param(pool({"metadata.name": "chat-70b-v2"}), id="pool-name-a-dns-1035-label"),
    # class names: a label value, and the tail of "<pool>-<class>" Deployment names (hashed past 63)
    pytest.param(
        accelerator_class({"metadata.name": "c" * 64}, "metadata.name", CLASS_NAME), id="class-name-64-long"
    ),
    pytest.param(accelerator_class({"metadata.name": "c" * 63}), id="class-name-63-long"),
    pytest.param(accelerator_class({"metadata.name": "4090"}), id="class-name-digit-first"),
    pytest.param(
        # a '.' where "chat-70b-<class>" is cut to 54 characters: the Deployment is named "….-<hash>"
        accelerator_class({"metadata.name": "c" * 44 + "." + "d" * 10}, "metadata.name", CLASS_NAME),
        id="class-name-dot-at-the-cut",
    ),
    pytest.param(
        # its children could be made, but no placement.allowedClasses (DNS-1123 labels) could name it
        accelerator_class({"metadata.name": "h100.sxm"}, "metadata.name", CLASS_NAME, children=False),
        id="class-name-dotted",
    ),
    # tolerations, as a Pod checks them
    pytest.param(
        tolerating(
            {"key": KEY, "operator": "Exists", "value": "h100"},
            refused_at="spec.tolerations[0].value",
            message=EXISTS_VALUE,
        ),
        id="toleration-exists-with-a-value",
    ),
    pytest.param(tolerating({"key": KEY, "operator": "Exists"}), id="toleration-exists"),
    pytest.param(
        tolerating({"value": "h100"}, refused_at="spec.tolerations[0].key", message=NO_KEY),
        id="toleration-no-key-equal",
    ),
    pytest.param(
        tolerating({"key": KEY, "value": "h100"}, {"operator": "Exists"}), id="toleration-no-key-exists"
    ),
    pytest.param(
        tolerating(
            {"key": KEY, "operator": "Exists", "effect": "NoSchedule", "tolerationSeconds": 30},
            refused_at="spec.tolerations[0].tolerationSeconds",
            message=SECONDS,
        ),
        id="toleration-seconds-with-no-schedule",
    ),
    pytest.param(
        tolerating(
            {"key": KEY, "operator": "Exists", "tolerationSeconds": 30},
            refused_at="spec.tolerations[0].tolerationSeconds",
            message=SECONDS,
        ),
        id="toleration-seconds-with-every-effect",
    ),
    pytest.param(
        tolerating({"key": KEY, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30}),
        id="toleration-seconds-with-no-execute",
    ),
    pytest.param(
        tolerating(
            {"key": KEY, "operator": "Exists", "effect": "NoEvict"},
            refused_at="spec.tolerations[0].effect",
            message="Unsupported value",
        ),
        id="toleration-unknown-effect",
    ),
    pytest.param(
        tolerating(
            {"key": KEY, "operator": "In", "value": "h100"},
            refused_at="spec.tolerations[0].operator",
            message="Unsupported value",
        ),
        id="toleration-unknown-operator",
    ),
    pytest.param(
        tolerating(
            {"key": "-accelerator", "operator": "Exists"},
            refused_at="spec.tolerations[0].key",
            message="should match",
        ),
        id="toleration-key-starts-with-a-dash",
    ),
    pytest.param(
        tolerating(
            {"key": "inferfleet..dev/accelerator", "operator": "Exists"},
            refused_at="spec.tolerations[0].key",
            message="should match",
        ),
        id="toleration-key-prefix-not-a-subdomain",
    ),
    pytest.param(
        tolerating(
            {"key": "k" * 64, "operator": "Exists"},
            refused_at="spec.tolerations[0].key",
            message="should match",
        ),
        id="toleration-key-name-64-long",
    ),
    pytest.param(tolerating({"key": "k" * 63, "operator": "Exists"}), id="toleration-key-name-63-long"),
    pytest.param(
        tolerating(
            {"key": f"{SUBDOMAIN_253}a/k", "operator": "Exists"},
            refused_at="spec.tolerations[0].key",
            message=PREFIX,
        ),
        id="toleration-key-prefix-254-long",
    ),
    pytest.param(
        tolerating({"key": f"{SUBDOMAIN_253}/k", "operator": "Exists"}), id="toleration-key-prefix-253-long"
    ),
    # nodeSelector keys: copied onto every replica, where they must be label keys
    pytest.param(
        accelerator_class(
            {"spec.nodeSelector": {f"{SUBDOMAIN_253}a/k": "h100"}}, "spec.nodeSelector", SELECTOR
        ),
        id="selector-key-prefix-254-long",
    ),
    pytest.param(
        accelerator_class({"spec.nodeSelector": {"-class": "h100"}}, "spec.nodeSelector", SELECTOR),
        id="selector-key-starts-with-a-dash",
    ),
    pytest.param(
        accelerator_class({"spec.nodeSelector": {f"{SUBDOMAIN_253}/k": "h100"}}),
        id="selector-key-prefix-253-long",
    ),
    # the server template's Pod rules (issue 13): each refuses exactly what the Pod would refuse
    pytest.param(
        pool(
            {"spec.server.env": [{"name": "X", "value": "1", "valueFrom": FROM_SECRET}]},
            "spec.server.env[0].value",
            VALUE_BESIDE,
        ),
        id="env-value-and-value-from",
    ),
    pytest.param(pool({"spec.server.env": [{"name": "X", "valueFrom": FROM_SECRET}]}), id="env-value-from"),
    pytest.param(
        pool(
            {
                "spec.server.env": [
                    {"name": "X", "valueFrom": {**FROM_SECRET, "fieldRef": {"fieldPath": "metadata.uid"}}}
                ]
            },
            "spec.server.env[0].valueFrom",
            ONE_SOURCE,
        ),
        id="env-value-from-two-sources",
    ),
    pytest.param(
        pool(
            {"spec.server.env": [{"name": "X", "valueFrom": {}}]}, "spec.server.env[0].valueFrom", ONE_SOURCE
        ),
        id="env-value-from-nothing",
    ),
    pytest.param(
        pool(
            {"spec.server.envFrom": [{"configMapRef": {"name": "a"}, "secretRef": {"name": "b"}}]},
            "spec.server.envFrom[0]",
            ENV_FROM,
        ),
        id="env-from-both-sources",
    ),
    pytest.param(
        pool({"spec.server.envFrom": [{"prefix": "P_", "secretRef": {"name": "b"}}]}), id="env-from"
    ),
    pytest.param(
        pool(
            volumes([{"name": "a", "emptyDir": {}}, {"name": "a", "emptyDir": {}}]),
            "spec.server.volumes",
            UNIQUE_VOLUMES,
        ),
        id="volume-name-twice",
    ),
    pytest.param(
        pool(volumes([{"name": podtemplate.SHM_VOLUME, "emptyDir": {}}]), "spec.server.volumes", SHM_NAME),
        id="volume-named-like-the-shm",
    ),
    pytest.param(
        pool(
            volumes([{"name": "a", "emptyDir": {}, "secret": {"secretName": "s"}}]),
            "spec.server.volumes[0]",
            ONE_VOLUME_SOURCE,
        ),
        id="volume-with-two-sources",
    ),
    pytest.param(pool(volumes([{"name": "a"}])), id="volume-with-no-source-is-an-empty-dir"),
    pytest.param(
        pool(volumes([], [{"name": "a", "mountPath": "/a"}]), "spec.server.volumeMounts", MOUNT_OF),
        id="mount-of-no-volume",
    ),
    pytest.param(
        pool(
            volumes(EMPTY_AB, [{"name": "a", "mountPath": "/d"}, {"name": "b", "mountPath": "/d"}]),
            "spec.server.volumeMounts",
            UNIQUE_PATHS,
        ),
        id="two-mounts-at-one-path",
    ),
    pytest.param(
        pool(volumes(EMPTY_AB, [{"name": "a", "mountPath": "/dev/shm"}]), "spec.server.volumeMounts", AT_SHM),
        id="mount-at-dev-shm-beside-the-operators",
    ),
    pytest.param(
        pool(
            {
                **volumes(EMPTY_AB, [{"name": "a", "mountPath": "/dev/shm"}]),
                "spec.server.sharedMemory": {"enabled": False},
            }
        ),
        id="own-dev-shm-with-shared-memory-off",
    ),
    pytest.param(
        pool(
            volumes(EMPTY_AB, [{"name": "a", "mountPath": "/d", "subPath": "x/../../etc"}]),
            "spec.server.volumeMounts[0].subPath",
            SUB_PATH,
        ),
        id="sub-path-climbing-out",
    ),
    pytest.param(
        pool(
            volumes(EMPTY_AB, [{"name": "a", "mountPath": "/d", "subPath": "/etc"}]),
            "spec.server.volumeMounts[0].subPath",
            SUB_PATH,
        ),
        id="sub-path-absolute",
    ),
    pytest.param(
        pool(volumes(EMPTY_AB, [{"name": "a", "mountPath": "/d", "subPath": "x/..y/z"}])),
        id="sub-path-with-dots-in-a-name",
    ),
    pytest.param(
        pool({"spec.server.readinessProbe": {"periodSeconds": 5}}, "spec.server.readinessProbe", ONE_CHECK),
        id="readiness-probe-with-no-check",
    ),
    pytest.param(
        pool(
            {"spec.server.startupProbe": {"httpGet": {"path": "/health"}, "tcpSocket": {}}},
            "spec.server.startupProbe",
            ONE_CHECK,
        ),
        id="startup-probe-with-two-checks",
    ),
    pytest.param(
        pool(
            {"spec.server.startupProbe": {"httpGet": {"path": "/health"}, "successThreshold": 2}},
            "spec.server.startupProbe.successThreshold",
            STARTUP_ONCE,
        ),
        id="startup-probe-success-threshold-2",
    ),
    pytest.param(
        pool({"spec.server.readinessProbe": {"httpGet": {"path": "/v1/models"}, "successThreshold": 2}}),
        id="readiness-probe-success-threshold-2",
    ),
    # quantities: what the pattern admits, every Pod admits too
    *(
        pytest.param(pool({"spec.server.cpu": q, "spec.server.memory": q}), id=f"quantity-{q}")
        for q in ("2e3", "0.5", ".5", "5.", "+1", "1e-3", "500m", "1.5Gi", "64G", "999Ei", "1n", "12E")
    ),
    pytest.param(pool({"spec.server.sharedMemory": {"sizeLimit": "16Gi"}}), id="shared-memory-limited"),
    *(
        pytest.param(pool(volumes(EMPTY_AB, [{"name": "a", "mountPath": path}])), id=f"mount-path-{path}")
        for path in ("/a/../b", "/a:b", "/", "/a//b/", "/~user/x@1")
    ),
    pytest.param(
        pool(
            {"spec.server.podSecurityContext": {"seccompProfile": {"type": "Localhost"}}},
            "spec.server.podSecurityContext.seccompProfile.localhostProfile",
            SECCOMP,
        ),
        id="seccomp-localhost-without-a-profile",
    ),
    pytest.param(
        pool(
            {
                "spec.server.securityContext": {
                    "seccompProfile": {"type": "RuntimeDefault", "localhostProfile": "p.json"}
                }
            },
            "spec.server.securityContext.seccompProfile.localhostProfile",
            SECCOMP,
        ),
        id="seccomp-profile-beside-runtime-default",
    ),
    pytest.param(
        pool(
            {
                "spec.server.securityContext": {
                    "seccompProfile": {"type": "Localhost", "localhostProfile": "p.json"}
                }
            }
        ),
        id="seccomp-localhost-with-its-profile",
    ),
    pytest.param(
        pool(
            {
                "spec.server.securityContext": {
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"add": ["CAP_SYS_ADMIN"]},
                }
            },
            "spec.server.securityContext.allowPrivilegeEscalation",
            SYS_ADMIN,
        ),
        id="no-escalation-with-cap-sys-admin",
    ),
    pytest.param(
        pool(
            {
                "spec.server.securityContext": {
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"]},
                },
                "spec.server.podSecurityContext": {"runAsNonRoot": True, "runAsUser": 1000, "fsGroup": 1000},
            }
        ),
        id="security-contexts-as-restricted-asks",
    ),
    pytest.param(
        pool(
            {
                "spec.server.securityContext": {
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"add": ["SYS_ADMIN"]},
                }
            }
        ),
        id="no-escalation-with-sys-admin-spelt-without-cap",
    ),
]


def changed(change: Change) -> dict[str, Any]:
    """The first example of the change's kind (a pool in namespace default), changed."""
    obj = copy.deepcopy(docs(change.kind)[0])
    if change.kind == "InferencePool":
        obj["metadata"]["namespace"] = "default"
    for path, value in change.changes.items():
        *parents, last = path.split(".")
        node = obj
        for key in parents:
            node = node[key]
        node[last] = value
    return obj


def offline(kind: str, obj: dict[str, Any]) -> str | None:
    """What ``inferfleet plan`` says of the object: None when valid."""
    try:
        validate_object(MODELS[kind], obj, "x.yaml")
    except ManifestError as exc:
        return str(exc)
    return None


@pytest.mark.parametrize("change", CHANGES)
def test_the_api_server_and_plan_agree_on_each_admission_rule(
    cluster: Cluster, crds: list[Path], change: Change
) -> None:
    obj = changed(change)
    rc, out = apply(cluster, obj)
    said = offline(change.kind, obj)
    if change.refused_at is None:
        assert rc == 0, out
        assert said is None, said
        return
    assert rc != 0, f"the API server accepted {obj}"
    assert f"{change.refused_at}: " in out and change.message in out, out
    assert said is not None, "inferfleet plan accepted what the API server refuses"
    if change.message in OURS:
        assert change.message in said, said


def build_children(change: Change) -> list[dict[str, Any]]:
    """The Deployment (one replica on the example class) and Service the operator would apply."""
    docs_by_kind = {k: changed(change) if k == change.kind else changed(Change(k, {})) for k in MODELS}
    docs_by_kind["InferencePool"]["metadata"]["uid"] = "00000000-0000-4000-8000-000000000001"
    pool_obj = InferencePool.model_validate(docs_by_kind["InferencePool"])
    cls_obj = AcceleratorClass.model_validate(docs_by_kind["AcceleratorClass"])
    return [children.build_deployment(pool_obj, cls_obj, 1, 1), children.build_service(pool_obj)]


RULED: tuple[type[BaseModel], ...] = (
    InferencePool,
    ServerTemplate,
    AcceleratorClass,
    AcceleratorClassSpec,
    Toleration,
    podtemplate.EnvVar,
    podtemplate.EnvVarSource,
    podtemplate.EnvFromSource,
    podtemplate.Volume,
    podtemplate.VolumeMount,
    podtemplate.Probe,
    podtemplate.SeccompProfile,
    podtemplate.ContainerSecurityContext,
)


@pytest.mark.parametrize("change", [c for c in CHANGES if c.values[0].children])
def test_children_are_refused_exactly_when_the_object_is(
    cluster: Cluster, crds: list[Path], change: Change, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With our rules switched off offline, the operator builds the children of the object; the API
    server (server-side apply, as the operator writes) refuses them exactly when it refuses the object:
    each rule refuses only what could never run, and everything that could never run is refused."""
    for model in RULED:
        monkeypatch.setattr(model, "cel_rules", ())
    manifests = build_children(change)
    proc = cluster.kubectl(
        "apply",
        "--server-side",
        "--dry-run=server",
        "--field-manager=inferfleet",
        "-f",
        "-",
        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": manifests}),
        check=False,
    )
    refused = proc.returncode != 0
    assert refused == (change.refused_at is not None), proc.stdout + proc.stderr


def test_a_pool_named_before_the_rule_keeps_a_writable_status(
    cluster: Cluster, crds: list[Path], namespace: str, wait_for: Callable[..., Any]
) -> None:
    """Name rules run when an object is created (names are immutable): a pool made under a CRD
    without them can still have its status, labels and spec written, so the operator can report
    it invalid, while a new pool with such a name is refused."""
    crd = crdgen.crd(BY_KIND["InferencePool"])
    before = copy.deepcopy(crd)
    del before["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["x-kubernetes-validations"]
    old = copy.deepcopy(docs("InferencePool")[0])
    old["metadata"] = {"name": "70b-chat", "namespace": namespace}
    new = copy.deepcopy(old)
    new["metadata"]["name"] = "8b-chat"

    def ssa(obj: dict[str, Any]) -> None:
        cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=json.dumps(obj))

    try:
        ssa(before)
        wait_for(lambda: apply(cluster, old)[0] == 0, timeout=30, what="the CRD without name rules")
        cluster.kubectl("create", "-f", "-", input=json.dumps(old))
    finally:
        ssa(crd)
        wait_for(lambda: apply(cluster, new)[0] != 0, timeout=30, what="the CRD with name rules again")
    rc, out = apply(cluster, new)
    assert rc != 0 and POOL_NAME in out, out
    target = ("inferencepools.inferfleet.dev", "70b-chat", "-n", namespace)
    cluster.kubectl(
        "patch", *target, "--subresource=status", "--type=merge", "-p", '{"status": {"replicas": 0}}'
    )
    cluster.kubectl("label", *target, "team=chat")
    cluster.kubectl("patch", *target, "--type=merge", "-p", '{"spec": {"minReplicas": 2}}')
    assert offline("InferencePool", old) is not None  # and the operator finds it invalid


# --- the server template a real vLLM needs, through the real API server ---------------------------

VLLM_SERVER: dict[str, Any] = {
    "cpu": "500m",
    "memory": "1.5Gi",
    "env": [
        {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf-token", "key": "token"}}},
        {"name": "LOG", "valueFrom": {"configMapKeyRef": {"name": "vllm", "key": "log", "optional": True}}},
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "PLAIN", "value": "1"},
    ],
    "envFrom": [
        {"prefix": "VLLM_", "configMapRef": {"name": "vllm-settings"}},
        {"secretRef": {"name": "extra"}},
    ],
    "volumes": [
        {"name": "cache", "persistentVolumeClaim": {"claimName": "model-cache", "readOnly": True}},
        {"name": "template", "configMap": {"name": "chat-template", "defaultMode": 420}},
        {"name": "certs", "secret": {"secretName": "tls"}},
        {"name": "scratch", "emptyDir": {"sizeLimit": "10Gi"}},
    ],
    "volumeMounts": [
        {"name": "cache", "mountPath": "/root/.cache/huggingface", "readOnly": True},
        {"name": "template", "mountPath": "/templates", "subPath": "chat/v2"},
        {"name": "certs", "mountPath": "/etc/tls"},
        {"name": "scratch", "mountPath": "/scratch"},
    ],
    "sharedMemory": {"sizeLimit": "16Gi"},
    "readinessProbe": {"httpGet": {"path": "/v1/models"}, "periodSeconds": 5},
    "startupProbe": {"tcpSocket": {}, "failureThreshold": 360},
    "imagePullSecrets": [{"name": "registry"}],
    "serviceAccountName": "vllm",
    "priorityClassName": "inference-high",
    "runtimeClassName": "nvidia",
    "podSecurityContext": {"runAsNonRoot": True, "runAsUser": 1000, "fsGroup": 1000},
    "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
}


def applied_deployment(cluster: Cluster, namespace: str, name: str, server: dict[str, Any]) -> dict[str, Any]:
    """Create the pool, read it back as the operator reads it, apply its Deployment as the operator
    does (server-side, field manager inferfleet) and read that back."""
    obj = copy.deepcopy(docs("InferencePool")[0])
    obj["metadata"] = {"name": name, "namespace": namespace}
    obj["spec"]["server"].update(copy.deepcopy(server))
    cluster.kubectl("create", "-f", "-", input=json.dumps(obj))
    stored = json.loads(
        cluster.kubectl("get", "inferencepools.inferfleet.dev", name, "-n", namespace, "-o", "json").stdout
    )
    pool_obj = validate_object(InferencePool, {k: v for k, v in stored.items() if k != "status"}, "cluster")
    cls_obj = AcceleratorClass.model_validate(docs("AcceleratorClass")[0])
    dep = children.build_deployment(pool_obj, cls_obj, 1, 1)
    cluster.kubectl("apply", "--server-side", "--field-manager=inferfleet", "-f", "-", input=json.dumps(dep))
    got: dict[str, Any] = json.loads(
        cluster.kubectl("get", "deployment", dep["metadata"]["name"], "-n", namespace, "-o", "json").stdout
    )
    return got


def test_a_pool_with_every_server_field_yields_a_deployment_the_api_server_keeps(
    cluster: Cluster, crds: list[Path], namespace: str
) -> None:
    """Every field of the template reaches the Deployment's Pod, and the API server accepts it."""
    got = applied_deployment(cluster, namespace, "vllm-full", VLLM_SERVER)
    spec = got["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    assert container["resources"]["requests"]["cpu"] == "500m"
    assert container["resources"]["requests"]["memory"] == "1536Mi"  # the server's canonical form
    env = copy.deepcopy(container["env"][:4])
    assert env[2]["valueFrom"]["fieldRef"].pop("apiVersion") == "v1"  # defaulted by the server
    assert env == VLLM_SERVER["env"]
    assert container["envFrom"] == VLLM_SERVER["envFrom"]
    volumes_by_name = {v["name"]: v for v in spec["volumes"]}
    assert volumes_by_name["inferfleet-shm"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "16Gi"}
    assert volumes_by_name["cache"]["persistentVolumeClaim"] == {"claimName": "model-cache", "readOnly": True}
    assert volumes_by_name["certs"]["secret"]["secretName"] == "tls"
    assert [m["mountPath"] for m in container["volumeMounts"]] == [
        "/dev/shm",
        *(m["mountPath"] for m in VLLM_SERVER["volumeMounts"]),
    ]
    assert container["readinessProbe"]["httpGet"]["path"] == "/v1/models"
    assert container["readinessProbe"]["httpGet"]["port"] == "http"
    assert container["startupProbe"]["tcpSocket"] == {"port": "http"}
    assert container["startupProbe"]["failureThreshold"] == 360
    assert spec["securityContext"] == VLLM_SERVER["podSecurityContext"]
    assert container["securityContext"] == VLLM_SERVER["securityContext"]
    assert spec["imagePullSecrets"] == [{"name": "registry"}]
    assert (spec["serviceAccountName"], spec["priorityClassName"], spec["runtimeClassName"]) == (
        "vllm",
        "inference-high",
        "nvidia",
    )


def test_by_default_the_deployment_has_shared_memory_and_health_probes(
    cluster: Cluster, crds: list[Path], namespace: str
) -> None:
    spec = applied_deployment(cluster, namespace, "vllm-default", {})["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    assert spec["volumes"] == [{"name": "inferfleet-shm", "emptyDir": {"medium": "Memory"}}]
    assert container["volumeMounts"] == [{"name": "inferfleet-shm", "mountPath": "/dev/shm"}]
    for probe in ("readinessProbe", "startupProbe"):
        assert (
            container[probe]["httpGet"]["path"] == "/health" and container[probe]["httpGet"]["port"] == "http"
        )
    assert container["startupProbe"]["failureThreshold"] == 180


def test_quantities_the_upstream_pattern_admits_but_ours_refuses_are_refused_in_a_pod_too(
    cluster: Cluster, crds: list[Path]
) -> None:
    """Why the pattern is narrower than upstream's: a Deployment with these is refused."""
    obj = copy.deepcopy(docs("InferencePool")[0])
    obj["metadata"]["namespace"] = "default"
    dep = children.build_deployment(
        InferencePool.model_validate(obj), AcceleratorClass.model_validate(docs("AcceleratorClass")[0]), 1, 1
    )
    for value in ("1e1.5", "-1"):
        bad = copy.deepcopy(dep)
        bad["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"] = value
        proc = cluster.kubectl(
            "apply", "--server-side", "--dry-run=server", "-f", "-", input=json.dumps(bad), check=False
        )
        assert proc.returncode != 0, value
        rc, out = apply(cluster, changed(pool({"spec.server.cpu": value})))
        assert rc != 0 and "spec.server.cpu" in out, out


def test_the_api_server_and_the_quantity_parser_agree_on_random_strings(
    kube_api: Any, crds: list[Path]
) -> None:
    """Strings over a quantity's alphabet (seeded): the API server (schema: pattern, maxLength) and
    ``inferfleet plan`` (common.parse_quantity) accept exactly the same ones."""
    import random

    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    rng = random.Random(13)
    alphabet = "0123456789.+-eEiKMGTPnumk"
    samples = {"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 6))) for _ in range(300)}
    samples |= {"1" * 32, "1" * 33, "1e99", "1e100", "0.5", "500m", "1.5Gi"}
    custom = client.CustomObjectsApi(kube_api)
    disagreements, accepted = [], 0
    for text in sorted(samples):
        obj = changed(pool({"spec.server.cpu": text}))
        try:
            custom.create_namespaced_custom_object(
                "inferfleet.dev", "v1alpha1", "default", "inferencepools", obj, dry_run="All"
            )
            server_ok = True
        except ApiException as exc:
            server_ok = exc.status == 409  # AlreadyExists comes after validation
        said = offline("InferencePool", obj)
        accepted += server_ok
        if server_ok != (said is None):
            disagreements.append((text, server_ok, said))
    assert disagreements == []
    assert 20 < accepted < len(samples) - 20  # both kinds were tried
