"""The server template carried into the Deployment's Pod: env with valueFrom and envFrom, volumes and
mounts with the memory-backed /dev/shm, probes with vLLM's /health by default, quantities, image pull
secrets, service account, priority and runtime class (tests/integration/test_crds.py applies the
result to the real API server)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from examples import example

from inferfleet.api.acceleratorclass import AcceleratorClass
from inferfleet.api.inferencepool import InferencePool
from inferfleet.reconcile import children

FULL_SERVER: dict[str, Any] = {
    "cpu": "500m",
    "memory": "1.5Gi",
    "env": [
        {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}}},
        {"name": "VLLM_LOGGING_LEVEL", "valueFrom": {"configMapKeyRef": {"name": "vllm", "key": "log"}}},
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "PLAIN", "value": "1"},
    ],
    "envFrom": [{"prefix": "VLLM_", "configMapRef": {"name": "vllm-settings", "optional": True}}],
    "volumes": [
        {"name": "cache", "persistentVolumeClaim": {"claimName": "model-cache", "readOnly": True}},
        {"name": "template", "configMap": {"name": "chat-template", "defaultMode": 420}},
    ],
    "volumeMounts": [
        {"name": "cache", "mountPath": "/root/.cache/huggingface", "readOnly": True},
        {"name": "template", "mountPath": "/templates", "subPath": "chat"},
    ],
    "sharedMemory": {"sizeLimit": "16Gi"},
    "readinessProbe": {"httpGet": {"path": "/v1/models"}, "periodSeconds": 5},
    "startupProbe": {"tcpSocket": {"port": 9000}, "failureThreshold": 30},
    "imagePullSecrets": [{"name": "registry"}],
    "serviceAccountName": "vllm",
    "priorityClassName": "inference-high",
    "runtimeClassName": "nvidia",
    "podSecurityContext": {
        "runAsNonRoot": True,
        "fsGroup": 1000,
        "seccompProfile": {"type": "RuntimeDefault"},
    },
    "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
}


def pool(server: dict[str, Any] | None = None) -> InferencePool:
    doc = example("InferencePool", "chat-70b")
    doc["metadata"]["uid"] = "1234"
    doc["spec"]["server"].update(copy.deepcopy(server or {}))
    return InferencePool.model_validate(doc, strict=True)


def h100() -> AcceleratorClass:
    return AcceleratorClass.model_validate(example("AcceleratorClass", "h100"))


def pod(server: dict[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = children.build_deployment(pool(server), h100(), 1, 1)["spec"]["template"]["spec"]
    return spec


def test_by_default_a_replica_gets_shared_memory_and_health_probes() -> None:
    spec = pod()
    (container,) = spec["containers"]
    assert spec["volumes"] == [{"name": "inferfleet-shm", "emptyDir": {"medium": "Memory"}}]
    assert container["volumeMounts"] == [{"name": "inferfleet-shm", "mountPath": "/dev/shm"}]
    assert container["readinessProbe"] == {
        "httpGet": {"path": "/health", "port": "http"},
        "periodSeconds": 10,
    }
    assert container["startupProbe"] == {
        "httpGet": {"path": "/health", "port": "http"},
        "periodSeconds": 10,
        "failureThreshold": 180,
    }
    for absent in ("imagePullSecrets", "serviceAccountName", "priorityClassName", "runtimeClassName"):
        assert absent not in spec
    assert "securityContext" not in spec and "securityContext" not in container
    assert "envFrom" not in container


def test_every_field_of_the_template_reaches_the_pod() -> None:
    spec = pod(FULL_SERVER)
    (container,) = spec["containers"]
    assert container["resources"]["requests"] == {"cpu": "500m", "memory": "1.5Gi", "nvidia.com/gpu": "1"}
    assert container["env"][:4] == FULL_SERVER["env"]
    assert [e["name"] for e in container["env"][4:]] == ["INFERFLEET_POOL", "INFERFLEET_ACCELERATOR_CLASS"]
    assert container["envFrom"] == FULL_SERVER["envFrom"]
    assert spec["volumes"] == [
        {"name": "inferfleet-shm", "emptyDir": {"medium": "Memory", "sizeLimit": "16Gi"}},
        *FULL_SERVER["volumes"],
    ]
    assert container["volumeMounts"] == [
        {"name": "inferfleet-shm", "mountPath": "/dev/shm"},
        *FULL_SERVER["volumeMounts"],
    ]
    assert container["readinessProbe"] == {
        "httpGet": {"path": "/v1/models", "port": "http"},
        "periodSeconds": 5,
    }
    assert container["startupProbe"] == {"tcpSocket": {"port": 9000}, "failureThreshold": 30}
    assert spec["imagePullSecrets"] == [{"name": "registry"}]
    assert spec["securityContext"] == FULL_SERVER["podSecurityContext"]
    assert container["securityContext"] == FULL_SERVER["securityContext"]
    assert (spec["serviceAccountName"], spec["priorityClassName"], spec["runtimeClassName"]) == (
        "vllm",
        "inference-high",
        "nvidia",
    )


def test_shared_memory_can_be_turned_off_and_dev_shm_mounted_by_the_pool() -> None:
    spec = pod(
        {
            "sharedMemory": {"enabled": False},
            "volumes": [{"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "2Gi"}}],
            "volumeMounts": [{"name": "shm", "mountPath": "/dev/shm"}],
        }
    )
    assert spec["volumes"] == [{"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "2Gi"}}]
    assert spec["containers"][0]["volumeMounts"] == [{"name": "shm", "mountPath": "/dev/shm"}]


def test_shared_memory_off_and_no_volumes_leaves_the_pod_without_any() -> None:
    spec = pod({"sharedMemory": {"enabled": False}})
    assert "volumes" not in spec and "volumeMounts" not in spec["containers"][0]


@pytest.mark.parametrize(
    ("written", "rendered"),
    [
        pytest.param(4, "4", id="an-integer"),
        pytest.param("0.5", "0.5", id="a-fraction-as-a-string"),
        pytest.param("500m", "500m", id="millicores"),
        pytest.param("2e3", "2e3", id="an-exponent"),
    ],
)
def test_cpu_quantities_are_copied_as_written(written: Any, rendered: str) -> None:
    requests = pod({"cpu": written})["containers"][0]["resources"]["requests"]
    assert requests["cpu"] == rendered


def test_an_unchanged_pool_keeps_its_hash_when_fields_are_only_defaulted() -> None:
    """Writing the defaults out changes nothing in the Deployment (no rollout for spelling them)."""
    plain = children.build_deployment(pool(), h100(), 1, 1)
    spelt = children.build_deployment(
        pool({"sharedMemory": {"enabled": True}, "cpu": 4, "memory": "32Gi"}), h100(), 1, 1
    )
    assert children.spec_hash(plain) == children.spec_hash(spelt)
