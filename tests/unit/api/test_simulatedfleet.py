"""The SimulatedFleet kind: the example's exact shape, the Nodes it renders, clear messages for bad input."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from inferfleet.api import labels
from inferfleet.api.simulatedfleet import (
    KNOWN_RESOURCES,
    FleetError,
    SimulatedFleet,
    load_fleet,
    node_manifests,
    parse_fleet,
)

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "simulated-fleet" / "fleet.yaml"

EXPECTED = {  # class: (nodes, devices/node, resource, power domain, zone)
    "h100": (4, 8, "nvidia.com/gpu", "hall-a", "zone-a"),
    "h200": (2, 8, "nvidia.com/gpu", "hall-a", "zone-a"),
    "l4": (4, 8, "nvidia.com/gpu", "hall-b", "zone-b"),
    "mi300x": (2, 8, "amd.com/gpu", "hall-b", "zone-b"),
    "cerebras-cs3": (2, 4, "cerebras.net/wse", "hall-b", "zone-b"),
    "groq": (1, 576, "groq.com/lpu", "hall-b", "zone-b"),
    "inferentia2": (2, 12, "aws.amazon.com/neuron", "hall-a", "zone-a"),
    "tpu-v5e": (2, 8, "google.com/tpu", "hall-a", "zone-a"),
}


def _doc() -> dict[str, Any]:
    raw: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    return copy.deepcopy(raw)


def _error(doc: object) -> str:
    with pytest.raises(FleetError) as info:
        parse_fleet(doc, "fleet.yaml")
    return str(info.value)


def test_example_fleet_is_exactly_the_specified_fleet() -> None:
    fleet = load_fleet(EXAMPLE)
    got = {
        p.accelerator_class: (p.count, p.devices_per_node, p.resource, p.power_domain, p.zone)
        for p in fleet.pools
    }
    assert got == EXPECTED
    assert fleet.node_count() == 19
    assert fleet.name == "inferfleet-demo"


def test_nodes_carry_labels_annotation_taint_and_capacity() -> None:
    nodes = {n["metadata"]["name"]: n for n in node_manifests(load_fleet(EXAMPLE))}
    groq = nodes["groq-0"]
    assert (
        groq["metadata"]["labels"].items()
        >= {
            "inferfleet.dev/accelerator-class": "groq",
            "inferfleet.dev/power-domain": "hall-b",
            "topology.kubernetes.io/zone": "zone-b",
            "inferfleet.dev/sim-pool": "groq",
            "app.kubernetes.io/managed-by": "inferfleet-sim",
            "kubernetes.io/hostname": "groq-0",
            "type": "kwok",
        }.items()
    )
    assert groq["metadata"]["annotations"] == {"kwok.x-k8s.io/node": "fake"}
    assert groq["spec"]["taints"] == [
        {"key": "inferfleet.dev/accelerator", "value": "groq", "effect": "NoSchedule"}
    ]
    assert groq["status"]["capacity"] == {"cpu": "192", "memory": "2Ti", "pods": "110", "groq.com/lpu": "576"}
    assert groq["status"]["allocatable"] == groq["status"]["capacity"]
    assert {f"h100-{i}" for i in range(4)} <= set(nodes)


def test_the_label_keys_are_the_api_labels() -> None:
    """The rendered keys are the spelled-out ones above and the constants the operator selects on."""
    node = node_manifests(load_fleet(EXAMPLE))[0]
    keys = {
        labels.ACCELERATOR_CLASS,
        labels.POWER_DOMAIN,
        labels.ZONE,
        labels.NODE_GROUP,
        labels.MANAGED_BY,
    }
    assert keys <= node["metadata"]["labels"].keys()
    assert node["metadata"]["labels"][labels.MANAGED_BY] == labels.SIM_MANAGER
    assert labels.KWOK_NODE in node["metadata"]["annotations"]
    assert node["spec"]["taints"][0]["key"] == labels.ACCELERATOR_TAINT


def test_scale_multiplies_every_group() -> None:
    nodes = node_manifests(load_fleet(EXAMPLE), scale=10)
    assert len(nodes) == 190
    assert len({n["metadata"]["name"] for n in nodes}) == 190
    assert sum(n["metadata"]["labels"]["inferfleet.dev/accelerator-class"] == "groq" for n in nodes) == 10
    with pytest.raises(ValueError, match="scale must be >= 1, got 0"):
        node_manifests(load_fleet(EXAMPLE), scale=0)


def test_rendering_is_pure_and_nodes_do_not_share_state() -> None:
    fleet = load_fleet(EXAMPLE)
    first = node_manifests(fleet)
    first[0]["metadata"]["labels"]["x"] = "y"
    first[0]["status"]["capacity"]["cpu"] = "1"
    first[0]["spec"]["taints"][0]["value"] = "other"
    again = node_manifests(fleet)
    assert "x" not in again[0]["metadata"]["labels"]
    assert again[0]["status"]["capacity"]["cpu"] == "192"
    assert first[1]["status"]["capacity"]["cpu"] == "192"
    assert first[1]["spec"]["taints"][0]["value"] == "h100"


def test_optional_fields_capacity_layers_and_extra_taints() -> None:
    doc = _doc()
    doc["spec"]["capacity"] = {"cpu": 96, "memory": "1Ti"}  # a YAML number is a quantity too
    doc["spec"]["pools"][0].update(
        capacity={"pods": "250"},
        labels={"example.com/rack": "r1"},
        annotations={"note": "any text, even with spaces"},
        taints=[{"key": "example.com/maintenance", "effect": "NoExecute"}],
    )
    del doc["spec"]["pools"][1]["acceleratorClass"]
    fleet = parse_fleet(doc)
    nodes = node_manifests(fleet)
    h100 = nodes[0]
    assert h100["status"]["capacity"] == {"cpu": "96", "memory": "1Ti", "pods": "250", "nvidia.com/gpu": "8"}
    assert h100["metadata"]["labels"]["example.com/rack"] == "r1"
    assert h100["metadata"]["annotations"]["note"] == "any text, even with spaces"
    assert h100["spec"]["taints"][1] == {"key": "example.com/maintenance", "effect": "NoExecute"}
    assert fleet.pools[1].accelerator_class == "h200"  # defaults to the group's name
    assert nodes[4]["status"]["capacity"]["pods"] == "110"  # h200: the default, not h100's override


@pytest.mark.parametrize(
    ("resource", "fragment"),
    [
        ("gpu", "'gpu' has no domain prefix"),
        ("kubernetes.io/gpu", "'kubernetes.io/gpu': the kubernetes.io domain is reserved"),
        ("requests.example.com/gpu", "prefix 'requests.' is reserved"),
        ("nvidia.con/gpu", "unknown extended resource 'nvidia.con/gpu'"),
        ("nvidia.com/", "'nvidia.com/': '' is not a valid resource name"),
        ("Nvidia.com/gpu", "prefix 'Nvidia.com' is not a fully-qualified domain"),
        (8, "Input should be a valid string, got 8"),
    ],
)
def test_bad_resource_names_name_group_field_and_value(resource: object, fragment: str) -> None:
    doc = _doc()
    doc["spec"]["pools"][5]["resource"] = resource
    msg = _error(doc)
    assert msg.startswith("fleet.yaml: pools[5] (groq): field 'resource': "), msg
    assert fragment in msg


def test_custom_resource_is_allowed_only_when_declared() -> None:
    doc = _doc()
    doc["spec"]["pools"][5].update(resource="example.com/npu", customResource=True)
    assert parse_fleet(doc).pools[5].resource == "example.com/npu"
    assert "example.com/npu" not in KNOWN_RESOURCES
    doc["spec"]["pools"][5]["customResource"] = False
    assert "set 'customResource: true'" in _error(doc)


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("count", -1, "field 'count': Input should be greater than or equal to 0, got -1"),
        ("count", "four", "field 'count': Input should be a valid integer, got 'four'"),
        ("count", "4", "field 'count': Input should be a valid integer, got '4'"),  # strict, as the API
        ("count", True, "field 'count': Input should be a valid integer, got True"),
        ("devicesPerNode", 0, "field 'devicesPerNode': Input should be greater than or equal to 1, got 0"),
        ("zone", "zone a", "field 'zone': 'zone a' is not a valid label value"),
        ("zone", None, "field 'zone': Input should be a valid string, got None"),
        ("powerDomain", "", "field 'powerDomain': String should have at least 1 character, got ''"),
        ("acceleratorClass", "x" * 64, "field 'acceleratorClass': String should have at most 63 characters"),
        ("devicesPerNod", 8, "field 'devicesPerNod': unknown field"),
        ("customResource", "yes", "field 'customResource': Input should be a valid boolean, got 'yes'"),
        (
            "taints",
            [{"key": "a", "effect": "Sometimes"}],
            "field 'taints[0].effect': Input should be 'NoSchedule', 'PreferNoSchedule' or 'NoExecute', "
            "got 'Sometimes'",
        ),
        ("taints", [{"key": "-a", "effect": "NoSchedule"}], "field 'taints[0].key': name part '-a' must"),
        ("taints", [{"key": "a", "value": "b c", "effect": "NoSchedule"}], "'b c' is not a valid label"),
        ("labels", {"team": 3}, "field 'labels.team': Input should be a valid string, got 3"),
        ("labels", {"team": "a b"}, "field 'labels.team': 'a b' is not a valid label value"),
        ("labels", {"-team": "a"}, "field 'labels': key '-team': name part '-team' must begin and end"),
        ("labels", {"Bad_/team": "a"}, "field 'labels': key 'Bad_/team' is not a valid label key"),
        ("annotations", {"note": 3}, "field 'annotations.note': Input should be a valid string, got 3"),
        ("capacity", {"cpu": "lots"}, "field 'capacity.cpu': 'lots' is not a Kubernetes quantity"),
        ("capacity", {"nvidia.com/gpu": "8"}, "field 'capacity': key 'nvidia.com/gpu': only cpu, memory"),
        ("name", "L4!", "field 'name': 'L4!' is not a DNS label"),
        ("name", "a" * 51, "field 'name': String should have at most 50 characters, got 'aaaa"),
    ],
)
def test_bad_group_fields_name_group_field_and_value(field: str, value: object, expected: str) -> None:
    doc = _doc()
    doc["spec"]["pools"][2][field] = value
    msg = _error(doc)
    assert expected in msg, msg
    name = value if field == "name" else "l4"
    assert msg.startswith(f"fleet.yaml: pools[2] ({name}): "), msg
    assert "\n" not in msg, msg  # one problem, one line
    assert "Traceback" not in msg


def test_a_missing_field_and_every_problem_are_reported() -> None:
    doc = _doc()
    del doc["spec"]["pools"][2]["zone"]
    doc["spec"]["pools"][3]["count"] = -2
    assert _error(doc).splitlines() == [
        "fleet.yaml: pools[2] (l4): field 'zone': required field is missing",
        "fleet.yaml: pools[3] (mi300x): field 'count': Input should be greater than or equal to 0, got -2",
    ]


def test_duplicate_group_name() -> None:
    doc = _doc()
    doc["spec"]["pools"][1]["name"] = "h100"
    expected = "fleet.yaml: field 'spec.pools': duplicate node group name 'h100' in pools[0] and pools[1]"
    assert expected in _error(doc)


def test_duplicate_class_taint_is_reported() -> None:
    doc = _doc()
    doc["spec"]["pools"][0]["taints"] = [
        {"key": "inferfleet.dev/accelerator", "value": "x", "effect": "NoSchedule"}
    ]
    assert "pools[0] (h100): field 'taints': duplicate taint inferfleet.dev/accelerator:NoSchedule" in _error(
        doc
    )


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d.update(kind="Fleet"), "fleet.yaml: field 'kind': Input should be 'SimulatedFleet', got"),
        (
            lambda d: d.update(apiVersion="v1"),
            "field 'apiVersion': Input should be 'sim.inferfleet.dev/v1alpha1', got 'v1'",
        ),
        (lambda d: d["spec"].update(pools=[]), "field 'spec.pools': List should have at least 1 item"),
        (lambda d: d["spec"].update(pool=[]), "field 'spec.pool': unknown field"),
        (lambda d: d.update(spec=3), "field 'spec': Input should be a valid dictionary"),
        (lambda d: d["spec"]["pools"].__setitem__(0, "h100"), "pools[0]: Input should be a valid dictionary"),
    ],
)
def test_bad_document_shape(mutate: Any, expected: str) -> None:
    doc = _doc()
    mutate(doc)
    assert expected in _error(doc)


def test_file_level_errors(tmp_path: Path) -> None:
    bad_yaml = tmp_path / "fleet.yaml"
    bad_yaml.write_text("spec: [unclosed\n")
    with pytest.raises(FleetError, match=r"^fleet\.yaml: not valid YAML"):
        load_fleet(bad_yaml)
    two = tmp_path / "two.yaml"
    two.write_text(EXAMPLE.read_text() + "\n---\n" + EXAMPLE.read_text())
    with pytest.raises(FleetError, match="expected exactly one SimulatedFleet document, found 2"):
        load_fleet(two)
    with pytest.raises(FleetError, match="cannot read"):
        load_fleet(tmp_path / "missing.yaml")
    assert "fleet.yaml: expected a mapping with apiVersion/kind/spec, got list" in _error(["not", "a", "map"])


def test_a_fleet_round_trips_through_its_api_form() -> None:
    fleet = load_fleet(EXAMPLE)
    again = SimulatedFleet.model_validate(fleet.to_api())
    assert node_manifests(again) == node_manifests(fleet)
