"""The API models: strict validation with messages naming the field, CEL rules mirrored in Python,
and the generated CRDs in sync with the models."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from examples import ROOT, example

from inferfleet.api import crdgen
from inferfleet.api.acceleratorclass import AcceleratorClass
from inferfleet.api.fleetpolicy import FleetPolicy
from inferfleet.api.inferencepool import InferencePool
from inferfleet.api.validation import ManifestError, validate_object


def with_change(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    *parents, last = path.split(".")
    node = out
    for key in parents:
        node = node.setdefault(key, {})
    if value is DELETE:
        node.pop(last, None)
    else:
        node[last] = value
    return out


DELETE = object()


def test_crds_match_models() -> None:
    assert crdgen.write_all(ROOT, check=True) == [], "run `inferfleet crds` to regenerate"


def test_every_example_is_valid() -> None:
    pool = validate_object(InferencePool, example("InferencePool", "chat-70b"), "x.yaml")
    assert pool.spec.model.parameters == 70.0
    cls = validate_object(AcceleratorClass, example("AcceleratorClass", "groq"), "x.yaml")
    assert cls.spec.hardware.memory == 230 * 2**20
    pol = validate_object(FleetPolicy, example("FleetPolicy", "default"), "x.yaml")
    assert pol.spec.electricity.pue == 1.3


def test_round_trip_keeps_the_users_notation() -> None:
    doc = example("InferencePool", "embed")
    api = validate_object(InferencePool, doc, "x").to_api()
    assert api["spec"]["model"]["parameters"] == "335M"
    assert api["spec"]["demand"]["requestsPerSecond"] == 3000


BAD_POOLS = [
    pytest.param(
        "spec.slo.ttftP95Milliseconds",
        0,
        "spec.slo.ttftP95Milliseconds: Input should be greater",
        id="zero-ttft",
    ),
    pytest.param(
        "spec.model.parameters",
        "seventy",
        "spec.model.parameters: must be a parameter count",
        id="bad-params",
    ),
    pytest.param(
        "spec.demand.requestsPerSecond",
        -5,
        "spec.demand.requestsPerSecond: must not be negative",
        id="negative-demand",
    ),
    pytest.param(
        "spec.demand.requestsPerSecond", 2.5, 'write fractional numbers as strings ("2.5")', id="float-demand"
    ),
    pytest.param("spec.model.flavour", "x", "spec.model.flavour: unknown field", id="unknown-field"),
    pytest.param(
        "spec.minReplicas",
        80,
        "spec.minReplicas: minReplicas must not exceed maxReplicas",
        id="min-above-max",
    ),
    pytest.param("spec.slo", {}, "spec.slo: an SLO needs ttftP95Milliseconds", id="empty-slo"),
    pytest.param("spec.server", DELETE, "spec.server: required field is missing", id="no-server"),
    pytest.param(
        "metadata.name", "Chat_70B", "metadata.name: must be a lower-case DNS-1123 name", id="bad-name"
    ),
    pytest.param(
        "spec.model.precision", "fp7", "spec.model.precision: Input should be", id="unknown-precision"
    ),
]


@pytest.mark.parametrize(("path", "value", "message"), BAD_POOLS)
def test_bad_pool_gets_a_message_naming_object_and_field(path: str, value: Any, message: str) -> None:
    doc = with_change(example("InferencePool", "chat-70b"), path, value)
    with pytest.raises(ManifestError) as err:
        validate_object(InferencePool, doc, "pools.yaml")
    text = str(err.value)
    assert text.startswith("pools.yaml: InferencePool chat/")
    assert message in text


BAD_CLASSES = [
    pytest.param(
        "spec.price",
        {"dollarsPerDeviceHour": 1, "capitalDollarsPerDevice": 5},
        "set exactly one of",
        id="two-prices",
    ),
    pytest.param(
        "spec.hardware.powerIdleWatts",
        9000,
        "powerIdleWatts must not exceed powerBusyWatts",
        id="idle-above-busy",
    ),
    pytest.param(
        "spec.hardware.memory", "lots", "spec.hardware.memory: must be a non-negative quantity", id="bad-size"
    ),
    pytest.param(
        "spec.resourceName",
        "gpu",
        "spec.resourceName: String should match pattern",
        id="unqualified-resource",
    ),
    pytest.param("spec.nodeSelector", {}, "nodeSelector needs at least one label", id="empty-selector"),
    pytest.param(
        "spec.devicesPerNode",
        0,
        "spec.devicesPerNode: Input should be greater than or equal to 1",
        id="no-devices",
    ),
]


@pytest.mark.parametrize(("path", "value", "message"), BAD_CLASSES)
def test_bad_class_gets_a_message(path: str, value: Any, message: str) -> None:
    doc = with_change(example("AcceleratorClass", "h100"), path, value)
    with pytest.raises(ManifestError, match="AcceleratorClass h100") as err:
        validate_object(AcceleratorClass, doc, "classes.yaml")
    assert message in str(err.value)


def test_duplicate_power_domains_are_rejected() -> None:
    doc = example("FleetPolicy", "default")
    doc["spec"]["powerDomains"].append({"name": "hall-a", "budgetKilowatts": 1})
    with pytest.raises(ManifestError, match="power domain names must be unique"):
        validate_object(FleetPolicy, doc, "p.yaml")


def test_generated_schema_is_structural() -> None:
    """No construct the API server refuses in a structural schema."""

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            assert "$ref" not in node and "title" not in node and "const" not in node, path
            assert node.get("additionalProperties") is not False, path
            if "properties" in node or "items" in node:
                assert "type" in node, path
            for key, value in node.items():
                walk(value, f"{path}.{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{path}[{i}]")

    for kind in crdgen.KINDS:
        walk(crdgen.crd(kind), kind.kind)


def test_short_name_avoids_gateway_inference_extension() -> None:
    pool = next(k for k in crdgen.KINDS if k.kind == "InferencePool")
    assert "infpool" not in pool.short_names
    assert crdgen.crd(pool)["spec"]["names"]["categories"] == ["inferfleet"]


def test_api_reference_matches_models() -> None:
    from inferfleet.api import docgen

    assert docgen.write(ROOT, check=True) == [], "run `inferfleet crds` to regenerate docs/api.md"


INTERCONNECTS = [
    pytest.param(None, ("Unset", 0.0, 0.0), id="unset-means-no-all-reduce-cost"),
    pytest.param({"kind": "PCIe"}, ("PCIe", 32e9, 15e-6), id="kind-alone-takes-its-defaults"),
    pytest.param(
        {"kind": "InfinityFabric", "bandwidthGBps": 400, "latencyMicroseconds": "12.5"},
        ("InfinityFabric", 400e9, 12.5e-6),
        id="given-figures-override-the-kind",
    ),
    pytest.param({"kind": "OnWafer"}, ("OnWafer", 0.0, 0.0), id="on-wafer-costs-nothing"),
]


@pytest.mark.parametrize(("interconnect", "expected"), INTERCONNECTS)
def test_interconnect_reaches_the_core_with_kind_defaults(
    interconnect: dict[str, Any] | None, expected: tuple[str, float, float]
) -> None:
    from inferfleet.core.roofline import interconnect_of
    from inferfleet.translate.objects import to_core_class

    doc = copy.deepcopy(example("AcceleratorClass", "h100"))
    doc["spec"]["hardware"].pop("interconnect", None)
    if interconnect is not None:
        doc["spec"]["hardware"]["interconnect"] = interconnect
    cls = validate_object(AcceleratorClass, doc, "classes.yaml")
    link = interconnect_of(to_core_class(cls, (8,)).hardware)
    assert (link.kind, link.bandwidth_bytes_per_s, link.step_latency_s) == pytest.approx(expected)


def test_unknown_interconnect_kind_is_rejected() -> None:
    doc = with_change(example("AcceleratorClass", "h100"), "spec.hardware.interconnect", {"kind": "Ethernet"})
    with pytest.raises(ManifestError, match="AcceleratorClass h100") as err:
        validate_object(AcceleratorClass, doc, "classes.yaml")
    assert "interconnect.kind" in str(err.value)
