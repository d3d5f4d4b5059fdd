"""The simulated-fleet file: the example's exact shape, and clear messages for bad input."""

from __future__ import annotations

import argparse
import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from inferfleet_dev import devcluster
from inferfleet_dev.fleet import FleetError, load_fleet, node_manifests, parse_fleet

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "simulated-fleet" / "fleet.yaml"

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


def test_nodes_carry_labels_annotation_taint_and_capacity() -> None:
    nodes = {n["metadata"]["name"]: n for n in node_manifests(load_fleet(EXAMPLE))}
    groq = nodes["groq-0"]
    assert (
        groq["metadata"]["labels"].items()
        >= {
            "inferfleet.dev/accelerator-class": "groq",
            "inferfleet.dev/power-domain": "hall-b",
            "topology.kubernetes.io/zone": "zone-b",
            "type": "kwok",
        }.items()
    )
    assert groq["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake"
    assert groq["spec"]["taints"] == [
        {"key": "inferfleet.dev/accelerator", "value": "groq", "effect": "NoSchedule"}
    ]
    assert groq["status"]["capacity"] == {"cpu": "192", "memory": "2Ti", "pods": "110", "groq.com/lpu": "576"}
    assert groq["status"]["allocatable"] == groq["status"]["capacity"]
    assert {f"h100-{i}" for i in range(4)} <= set(nodes)


def test_scale_multiplies_every_pool() -> None:
    nodes = node_manifests(load_fleet(EXAMPLE), scale=10)
    assert len(nodes) == 190
    assert len({n["metadata"]["name"] for n in nodes}) == 190
    assert sum(n["metadata"]["labels"]["inferfleet.dev/accelerator-class"] == "groq" for n in nodes) == 10


@pytest.mark.parametrize(
    ("resource", "fragment"),
    [
        ("gpu", "has no domain prefix"),
        ("kubernetes.io/gpu", "reserved"),
        ("nvidia.con/gpu", "unknown extended resource 'nvidia.con/gpu'"),
        ("nvidia.com/", "is not a valid resource name"),
        ("Nvidia.com/gpu", "is not a fully-qualified domain"),
        (8, "must be a non-empty string"),
    ],
)
def test_bad_resource_names_name_pool_and_field(resource: object, fragment: str) -> None:
    doc = _doc()
    doc["spec"]["pools"][5]["resource"] = resource
    msg = _error(doc)
    assert msg.startswith("fleet.yaml: pools[5] (groq): field 'resource': "), msg
    assert fragment in msg


def test_custom_resource_is_allowed_when_declared() -> None:
    doc = _doc()
    doc["spec"]["pools"][5].update(resource="example.com/npu", customResource=True)
    assert parse_fleet(doc).pools[5].resource == "example.com/npu"


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("count", -1, "pools[2] (l4): field 'count': must be >= 0"),
        ("count", "four", "pools[2] (l4): field 'count': must be an integer"),
        ("devicesPerNode", 0, "pools[2] (l4): field 'devicesPerNode': must be >= 1"),
        ("zone", "zone a", "pools[2] (l4): field 'zone': 'zone a' is not a valid label value"),
        ("zone", None, "pools[2] (l4): field 'zone': must be a non-empty string"),
        ("devicesPerNod", 8, "pools[2] (l4): field 'devicesPerNod': unknown field"),
        ("taints", [{"key": "a", "effect": "Sometimes"}], "field 'taints[0].effect': 'Sometimes' is not one"),
        ("labels", {"team": 3}, "field 'labels.team': value must be a string"),
        ("capacity", {"cpu": "lots"}, "field 'capacity.cpu': 'lots' is not a Kubernetes quantity"),
        ("capacity", {"nvidia.com/gpu": "8"}, "field 'capacity.nvidia.com/gpu': only cpu, memory"),
        ("name", "L4!", "field 'name': 'L4!' is not a DNS label"),
    ],
)
def test_bad_pool_fields(field: str, value: object, expected: str) -> None:
    doc = _doc()
    doc["spec"]["pools"][2][field] = value
    msg = _error(doc)
    assert expected in msg, msg
    assert msg.startswith("fleet.yaml: pools[2]")


def test_duplicate_pool_name() -> None:
    doc = _doc()
    doc["spec"]["pools"][1]["name"] = "h100"
    assert "pools[1] (h100): field 'name': duplicate pool name 'h100'" in _error(doc)


def test_duplicate_class_taint_is_reported() -> None:
    doc = _doc()
    doc["spec"]["pools"][0]["taints"] = [
        {"key": "inferfleet.dev/accelerator", "value": "x", "effect": "NoSchedule"}
    ]
    assert "pools[0] (h100): field 'taints': duplicate taint" in _error(doc)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d.update(kind="Fleet"), "fleet.yaml: field 'kind': must be 'SimulatedFleet'"),
        (lambda d: d.update(apiVersion="v1"), "field 'apiVersion': must be 'sim.inferfleet.dev/v1alpha1'"),
        (lambda d: d["spec"].update(pools=[]), "field 'spec.pools': must be a non-empty list"),
        (lambda d: d["spec"].update(pool=[]), "field 'spec.pool': unknown field"),
        (lambda d: d["spec"]["pools"].__setitem__(0, "h100"), "pools[0]: must be a mapping, got str"),
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
    assert "expected a mapping" in _error(["not", "a", "mapping"])


def test_cli_reports_a_bad_fleet_without_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("INFERFLEET_CACHE", str(tmp_path / "cache"))
    doc = _doc()
    doc["spec"]["pools"][5]["resource"] = "groq.con/lpu"
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(yaml.safe_dump(doc))
    parser = argparse.ArgumentParser()
    devcluster.register(parser.add_subparsers(required=True))
    args = parser.parse_args(["dev-cluster", "up", "--fleet", str(fleet), "--name", "unit"])
    assert args.func(args) == 1
    err = capsys.readouterr().err
    assert "fleet.yaml: pools[5] (groq): field 'resource': unknown extended resource 'groq.con/lpu'" in err
    assert "Traceback" not in err
    assert not (tmp_path / "cache" / "clusters" / "unit" / "state.json").exists()
