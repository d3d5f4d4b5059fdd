"""Inventory: which nodes count as capacity for a class, by name."""

from __future__ import annotations

from typing import Any

from examples import example

from inferfleet.api.acceleratorclass import AcceleratorClass
from inferfleet.translate import inventory


def _node(name: str, labels: dict[str, str], gpus: int, ready: str = "True", **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": spec,
        "status": {
            "allocatable": {"nvidia.com/gpu": str(gpus)},
            "conditions": [{"type": "Ready", "status": ready}],
        },
    }


def _h100() -> AcceleratorClass:
    return AcceleratorClass.model_validate(example("AcceleratorClass", "h100"))


def test_capacity_is_the_free_devices_of_ready_schedulable_matching_nodes_by_name() -> None:
    cls = _h100()
    sel = dict(cls.spec.node_selector)
    nodes = [
        _node("b", sel, 8),
        _node("a", sel, 8),
        _node("down", sel, 8, ready="False"),
        _node("cordoned", sel, 8, unschedulable=True),
        _node("other", {"x": "y"}, 8),
    ]
    infos = [
        inventory.node_info_from_manifest(n, {"nvidia.com/gpu": 3} if n["metadata"]["name"] == "b" else {})
        for n in nodes
    ]
    cap = inventory.class_capacity(cls, infos)
    assert cap.names == ("a", "b")
    assert cap.free == (8, 5)


def test_a_node_without_conditions_counts_as_ready() -> None:
    assert inventory.is_ready({"metadata": {"name": "n"}})
    assert not inventory.is_ready(_node("n", {}, 1, ready="Unknown"))


def test_without_takes_devices_from_the_largest_nodes_and_drops_empty_ones() -> None:
    cap = inventory.Capacity((8, 2, 4), ("a", "b", "c"))
    left = inventory.without(cap, 9)
    assert left == inventory.Capacity((2, 3), ("b", "c"))
    assert inventory.without(cap, 0) == cap
    assert inventory.without(cap, 100) == inventory.Capacity()


def _renamed(cls: AcceleratorClass, name: str, selector: dict[str, str]) -> AcceleratorClass:
    raw = example("AcceleratorClass", "h100")
    raw["metadata"]["name"] = name
    raw["spec"]["nodeSelector"] = selector
    return AcceleratorClass.model_validate(raw)


def test_a_node_two_classes_match_counts_once_for_the_more_specific_selector() -> None:
    base = _h100()
    sel = dict(base.spec.node_selector)
    broad = _renamed(base, "a-broad", sel)  # first by name, but fewer keys
    narrow = _renamed(base, "z-narrow", {**sel, "tier": "gold"})
    infos = [
        inventory.node_info_from_manifest(_node("gold-0", {**sel, "tier": "gold"}, 8)),
        inventory.node_info_from_manifest(_node("plain-0", sel, 8)),
    ]
    owners = inventory.node_owners([broad, narrow], infos)
    assert owners == {("gold-0", "nvidia.com/gpu"): "z-narrow", ("plain-0", "nvidia.com/gpu"): "a-broad"}
    assert inventory.class_capacity(broad, infos, owners).names == ("plain-0",)
    assert inventory.class_capacity(narrow, infos, owners).names == ("gold-0",)
    total = sum(inventory.class_capacity(c, infos, owners).free[0] for c in (broad, narrow))
    assert total == 16  # counted once: without owners the shared node would count twice (24)
    assert inventory.overlaps([broad, narrow], infos) == {
        "a-broad": {"z-narrow": ("gold-0",)},
        "z-narrow": {"a-broad": ("gold-0",)},
    }


def test_equally_specific_classes_split_by_name_and_other_devices_do_not_overlap() -> None:
    base = _h100()
    sel = dict(base.spec.node_selector)
    first, second = _renamed(base, "b-first", sel), _renamed(base, "c-second", sel)
    infos = [inventory.node_info_from_manifest(_node("n", sel, 8))]
    assert inventory.node_owners([second, first], infos) == {("n", "nvidia.com/gpu"): "b-first"}
    raw = example("AcceleratorClass", "h100")
    raw["metadata"]["name"], raw["spec"]["resourceName"] = "other-device", "example.com/npu"
    other = AcceleratorClass.model_validate(raw)
    assert inventory.overlaps([first, other], infos) == {}
