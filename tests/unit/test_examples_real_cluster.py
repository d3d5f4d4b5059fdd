"""examples/real-cluster/: every object is valid as the API models (and their CEL twins) judge it;
each AcceleratorClass names the data/accelerators.csv row its figures come from, and its hardware
figures are that row's (or differ only where its comment says why); the node labels and extended
resources are the ones docs/real-cluster.md cites; and the folder plans the example pools.
(tests/integration/test_examples_real_cluster.py applies the same objects to the real API server.)"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from inferfleet.api.acceleratorclass import AcceleratorClass
from inferfleet.api.common import parse_size
from inferfleet.api.kinds import BY_KIND
from inferfleet.api.validation import validate_object
from inferfleet.translate import inventory

ROOT = Path(__file__).resolve().parents[2]
FOLDER = ROOT / "examples" / "real-cluster"
GIB, GB = 2**30, 10**9


def _chunks() -> list[tuple[str, str, dict[str, Any]]]:
    """(file name, the document's text, the document) for every object of the folder."""
    out = []
    for path in sorted(FOLDER.glob("*.yaml")):
        for text in re.split(r"^---\n", path.read_text(), flags=re.M):
            doc = yaml.safe_load(text)
            if doc:
                out.append((path.name, text, doc))
    return out


def _rows() -> dict[str, dict[str, str]]:
    with (ROOT / "data" / "accelerators.csv").open() as f:
        return {row["name"]: row for row in csv.DictReader(f)}


CLASSES = [(name, text, doc) for name, text, doc in _chunks() if doc["kind"] == "AcceleratorClass"]


def test_the_folder_holds_a_class_per_vendor_and_the_policy() -> None:
    kinds = [doc["kind"] for _, _, doc in _chunks()]
    assert kinds.count("FleetPolicy") == 1 and len(CLASSES) >= 7
    resources = {doc["spec"]["resourceName"] for _, _, doc in CLASSES}
    assert {"nvidia.com/gpu", "amd.com/gpu", "aws.amazon.com/neuron", "google.com/tpu"} <= resources


@pytest.mark.parametrize(
    ("file", "text", "doc"), _chunks(), ids=[f"{f}:{d['metadata']['name']}" for f, _, d in _chunks()]
)
def test_every_object_is_valid(file: str, text: str, doc: dict[str, Any]) -> None:
    validate_object(BY_KIND[doc["kind"]].model, doc, f"{file}: {doc['kind']} {doc['metadata']['name']}")


def test_every_class_draws_on_a_listed_power_domain() -> None:
    (policy,) = [doc for _, _, doc in _chunks() if doc["kind"] == "FleetPolicy"]
    assert policy["metadata"]["name"] == "default"
    domains = {d["name"] for d in policy["spec"]["powerDomains"]}
    assert {doc["spec"]["powerDomain"] for _, _, doc in CLASSES} <= domains


# Where a class departs from its row, and the comment that says so.
DEPARTURES = {
    ("cerebras-cs3", "bf16Tflops"): "SPARSE peak, so dense is taken as half",
}


@pytest.mark.parametrize(("file", "text", "doc"), CLASSES, ids=[d["metadata"]["name"] for _, _, d in CLASSES])
def test_the_figures_are_the_cited_rows(file: str, text: str, doc: dict[str, Any]) -> None:
    m = re.search(r'# figures: data/accelerators\.csv "([^"]+)"', text)
    assert m, f"{file}: {doc['metadata']['name']} cites no data/accelerators.csv row"
    row = _rows()[m.group(1)]
    name = doc["metadata"]["name"]
    hw = validate_object(AcceleratorClass, doc, file).spec.hardware
    comment = " ".join(line.strip("# ") for line in text.splitlines() if line.lstrip().startswith("#"))

    def check(field: str, ours: float, theirs: str, scale: float = 1.0) -> None:
        if not theirs:
            return  # not in the row: the comment marks the class's figure as an estimate
        if (name, field) in DEPARTURES:
            assert DEPARTURES[(name, field)] in comment, (name, field)
            return
        assert ours == pytest.approx(float(theirs) * scale, rel=0.02), (name, field, ours, theirs)

    # memory: the row's GiB column in the unit the class writes (Gi, G or Mi)
    memory = parse_size(doc["spec"]["hardware"]["memory"])
    assert memory / GIB == pytest.approx(float(row["mem_gib"]), rel=0.02) or memory / GB == pytest.approx(
        float(row["mem_gib"]), rel=0.02
    ), (name, memory, row["mem_gib"])
    # bandwidth: TB/s -> GB/s; the row's Inferentia2 figure is GiB/s (820 GiB/s = 880 GB/s)
    bandwidth = float(row["mem_bw_tbs"]) * (GIB / GB if "GiB/s" in row["notes"] else 1.0)
    check("memoryBandwidthGBps", hw.memory_bandwidth_g_bps, str(bandwidth), 1000)
    check("bf16Tflops", hw.bf16_tflops, row["bf16_tflops"])
    check("fp8Tflops", hw.fp8_tflops or 0, row["fp8_tflops"])
    check("powerBusyWatts", hw.power_busy_watts, row["power_w"])
    if not row["power_w"]:
        assert "[E]" in comment or "estimate" in comment, name


# The node labels and resources docs/real-cluster.md cites, per class.
SELECTORS = {
    "h100-sxm": ({"nvidia.com/gpu.product", "nvidia.com/gpu.count"}, "nvidia.com/gpu"),
    "l4-gke": ({"cloud.google.com/gke-accelerator"}, "nvidia.com/gpu"),
    "mi300x": ({"amd.com/gpu.device-id"}, "amd.com/gpu"),
    "inferentia2": ({"node.kubernetes.io/instance-type"}, "aws.amazon.com/neuron"),
    "tpu-v5e-2x4": (
        {"cloud.google.com/gke-tpu-accelerator", "cloud.google.com/gke-tpu-topology"},
        "google.com/tpu",
    ),
    "cerebras-cs3": ({"inferfleet.dev/accelerator"}, "cerebras.net/wse"),
    "groq-lpu": ({"inferfleet.dev/accelerator"}, "groq.com/lpu"),
}


def test_each_class_selects_by_the_labels_the_doc_cites() -> None:
    found = {
        doc["metadata"]["name"]: (set(doc["spec"]["nodeSelector"]), doc["spec"]["resourceName"])
        for _, _, doc in CLASSES
    }
    assert found == SELECTORS
    guide = (ROOT / "docs" / "real-cluster.md").read_text()
    for labels, resource in SELECTORS.values():
        assert all(f"`{label}" in guide for label in labels) and f"`{resource}`" in guide, (labels, resource)
    for name in SELECTORS:
        assert f"`{name}`" in guide, name


def test_the_folder_plans_the_example_pools() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "inferfleet",
            "plan",
            "-f",
            str(FOLDER),
            "-f",
            "examples/30-pools.yaml",
            "-o",
            "json",
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT / "operator")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["solver"]["status"] == "Optimal"
    assert doc["pools"] and all(p["placements"] for p in doc["pools"]), doc["pools"]
    assert {d["name"] for d in doc["domains"]} == {"site-gpu", "site-cloud", "site-systems"}


def test_the_figures_ship_in_the_repository_and_nothing_points_outside() -> None:
    assert (ROOT / "data" / "accelerators.csv").is_file() and (ROOT / "data" / "README.md").is_file()
    outside = "shared" + "/data"  # the research copy beside the checkout, which a clone does not have
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    ).stdout.split("\0")
    pointing = [
        f
        for f in filter(None, tracked)
        if (ROOT / f).is_file() and outside in (ROOT / f).read_text(errors="replace")
    ]
    assert pointing == []
    for cited in ("examples/10-accelerator-classes.yaml", "docs/performance-model.md"):
        assert "data/accelerators.csv" in (ROOT / cited).read_text(), cited


def _node(name: str, labels: dict[str, str], allocatable: dict[str, str] | None, **capacity: str) -> Any:
    status: dict[str, Any] = {
        "conditions": [{"type": "Ready", "status": "True"}],
        "capacity": {"cpu": "192", **capacity},
    }
    if allocatable is not None:
        status["allocatable"] = {"cpu": "190", **allocatable}
    return {"metadata": {"name": name, "labels": labels}, "status": status}


def _class(name: str) -> AcceleratorClass:
    (doc,) = [d for _, _, d in CLASSES if d["metadata"]["name"] == name]
    return validate_object(AcceleratorClass, doc, name)


# Nodes as their vendors' tools label them (docs/real-cluster.md cites each label): the classes count
# the devices of their own nodes only, from allocatable, less what other pods hold.
GFD_H100 = {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3", "nvidia.com/gpu.count": "8"}
GFD_A100 = {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB", "nvidia.com/gpu.count": "8"}
GKE_TPU = {
    "cloud.google.com/gke-tpu-accelerator": "tpu-v5-lite-podslice",
    "cloud.google.com/gke-tpu-topology": "2x4",
}


@pytest.mark.parametrize(
    ("cls", "nodes", "free"),
    [
        ("h100-sxm", [_node("h1", GFD_H100, {"nvidia.com/gpu": "8"}, **{"nvidia.com/gpu": "8"})], (8,)),
        ("h100-sxm", [_node("a1", GFD_A100, {"nvidia.com/gpu": "8"}, **{"nvidia.com/gpu": "8"})], ()),
        ("mi300x", [_node("m1", {"amd.com/gpu.device-id": "74a1"}, {"amd.com/gpu": "8"})], (8,)),
        (
            "inferentia2",
            [
                _node(
                    "i1",
                    {"node.kubernetes.io/instance-type": "inf2.48xlarge"},
                    {"aws.amazon.com/neuron": "12"},
                )
            ],
            (12,),
        ),
        ("tpu-v5e-2x4", [_node("t1", GKE_TPU, {"google.com/tpu": "8"})], (8,)),
        ("tpu-v5e-2x4", [_node("t2", {**GKE_TPU, "cloud.google.com/gke-tpu-topology": "4x4"}, {})], ()),
        # the hand-labelled node: capacity patched, allocatable not (yet): counted from allocatable
        (
            "cerebras-cs3",
            [_node("c1", {"inferfleet.dev/accelerator": "cerebras-cs3"}, {}, **{"cerebras.net/wse": "4"})],
            (),
        ),
        (
            "cerebras-cs3",
            [_node("c2", {"inferfleet.dev/accelerator": "cerebras-cs3"}, {"cerebras.net/wse": "4"})],
            (4,),
        ),
        # a node with no allocatable at all (a manifest): its capacity counts
        (
            "groq-lpu",
            [_node("g1", {"inferfleet.dev/accelerator": "groq-lpu"}, None, **{"groq.com/lpu": "576"})],
            (576,),
        ),
    ],
    ids=[
        "gfd-h100",
        "gfd-a100-is-not-h100",
        "amd-labeller-mi300x",
        "inf2-48xlarge",
        "gke-tpu-2x4",
        "gke-tpu-4x4-is-another-shape",
        "patched-capacity-only-counts-nothing",
        "patched-allocatable-counts",
        "no-allocatable-capacity-counts",
    ],
)
def test_real_nodes_count_as_the_guide_says(cls: str, nodes: list[Any], free: tuple[int, ...]) -> None:
    infos = [inventory.node_info_from_manifest(n) for n in nodes]
    assert inventory.class_capacity(_class(cls), infos).free == free


def test_devices_other_pods_hold_are_not_counted() -> None:
    node = inventory.node_info_from_manifest(
        _node("h1", GFD_H100, {"nvidia.com/gpu": "8"}), foreign_used={"nvidia.com/gpu": 3}
    )
    assert inventory.class_capacity(_class("h100-sxm"), [node]).free == (5,)
