"""Desired children: names, labels, placement fields, owner references, and the change hash."""

from __future__ import annotations

import pytest
from examples import example

from inferfleet.api.acceleratorclass import AcceleratorClass
from inferfleet.api.inferencepool import InferencePool
from inferfleet.reconcile import children


def pool() -> InferencePool:
    doc = example("InferencePool", "chat-70b")
    doc["metadata"]["uid"] = "1234"
    return InferencePool.model_validate(doc)


def h100() -> AcceleratorClass:
    return AcceleratorClass.model_validate(example("AcceleratorClass", "h100"))


def test_deployment_lands_on_the_class_nodes_with_its_devices() -> None:
    dep = children.build_deployment(pool(), h100(), replicas=3, devices=2)
    spec = dep["spec"]["template"]["spec"]
    assert dep["metadata"]["name"] == "chat-70b-h100"
    assert dep["metadata"]["namespace"] == "chat"
    assert dep["spec"]["replicas"] == 3
    assert spec["nodeSelector"] == {"inferfleet.dev/accelerator-class": "h100"}
    assert spec["tolerations"] == [
        {"key": "inferfleet.dev/accelerator", "operator": "Equal", "value": "h100", "effect": "NoSchedule"}
    ]
    container = spec["containers"][0]
    assert container["resources"]["requests"]["nvidia.com/gpu"] == "2"
    assert container["resources"]["limits"] == {"nvidia.com/gpu": "2"}
    assert container["image"] == "vllm/vllm-openai:v0.8.5"


def test_children_carry_labels_and_owner() -> None:
    dep = children.build_deployment(pool(), h100(), 1, 2)
    labels = dep["metadata"]["labels"]
    assert labels["inferfleet.dev/pool"] == "chat-70b"
    assert labels["inferfleet.dev/accelerator-class"] == "h100"
    assert labels["app.kubernetes.io/managed-by"] == "inferfleet"
    owner = dep["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("InferencePool", "1234", True)
    assert (
        dep["spec"]["selector"]["matchLabels"].items()
        <= dep["spec"]["template"]["metadata"]["labels"].items()
    )


def test_service_selects_every_class() -> None:
    svc = children.build_service(pool())
    assert svc["spec"]["selector"] == {"inferfleet.dev/pool": "chat-70b"}
    assert svc["spec"]["ports"][0]["port"] == 8000


@pytest.mark.parametrize(
    ("replicas", "devices", "same"),
    [
        pytest.param(3, 2, True, id="identical-spec-same-hash"),
        pytest.param(4, 2, False, id="replicas-change-hash"),
        pytest.param(3, 4, False, id="devices-change-hash"),
    ],
)
def test_hash_tracks_the_spec(replicas: int, devices: int, same: bool) -> None:
    a = children.build_deployment(pool(), h100(), 3, 2)
    b = children.build_deployment(pool(), h100(), replicas, devices)
    assert (a["metadata"]["annotations"] == b["metadata"]["annotations"]) is same


def test_long_names_are_shortened_stably() -> None:
    name = children.deployment_name("p" * 60, "cerebras-cs3")
    assert len(name) <= 63
    assert name == children.deployment_name("p" * 60, "cerebras-cs3")
    assert name != children.deployment_name("p" * 60, "groq")
