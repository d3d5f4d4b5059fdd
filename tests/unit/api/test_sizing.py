"""Size bounds a user can apply: the largest valid object of every kind, built from its schema
(``api.sizing``), stays well under the 256 KiB of annotations in which client-side ``kubectl apply``
keeps it, so a bound raised too far fails here; one more of anything is refused, naming the field.
tests/integration/test_size_bounds.py applies the same objects to the API server both ways."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from inferfleet.api import sizing
from inferfleet.api.acceleratorclass import PROFILE_BUCKETS_TOTAL
from inferfleet.api.common import Spec
from inferfleet.api.inferencepool import ARGS_TOTAL_LENGTH, ENV_TOTAL_LENGTH
from inferfleet.api.simulatedfleet import MAX_ENTRIES, node_manifests, parse_fleet
from inferfleet.api.validation import ManifestError, validate_object


@functools.lru_cache(maxsize=16)
def _largest(kind: str, *, status: bool = False, escaped: bool = False) -> str:
    return json.dumps(sizing.largest_object(kind, status=status, escaped=escaped))


def largest(kind: str, *, status: bool = False, escaped: bool = False) -> dict[str, Any]:
    """A fresh copy of the largest object (built once per run: a second or so each)."""
    obj: dict[str, Any] = json.loads(_largest(kind, status=status, escaped=escaped))
    return obj


WELL_UNDER = 200 * 1024  # ASCII: any object a person would write, with room for their own annotations
STATUS_LIMIT = 1024 * 1024  # spec and status together, under etcd's 1.5 MiB request limit


@pytest.mark.parametrize("kind", sizing.KINDS)
def test_the_largest_object_is_well_under_the_annotation_limit(kind: str) -> None:
    obj = largest(kind)
    assert sizing.json_bytes(obj) < WELL_UNDER, f"{kind}: {sizing.json_bytes(obj)} bytes"


@pytest.mark.parametrize("kind", sizing.KINDS)
def test_even_with_every_free_character_escaped_it_fits(kind: str) -> None:
    """Free text of '<' (six bytes each in kubectl's JSON): the most any valid object can take."""
    obj = largest(kind, escaped=True)
    assert sizing.json_bytes(obj) < sizing.TOTAL_ANNOTATION_BYTES, f"{kind}: {sizing.json_bytes(obj)}"


@pytest.mark.parametrize("kind", ["InferencePool", "AcceleratorClass", "FleetPolicy"])
def test_with_status_at_its_largest_too_the_object_fits_etcd(kind: str) -> None:
    assert sizing.json_bytes(largest(kind, status=True)) < STATUS_LIMIT


def test_the_largest_object_is_at_every_maximum() -> None:
    pool = largest("InferencePool")
    server = pool["spec"]["server"]
    assert sum(map(len, server["args"])) == ARGS_TOTAL_LENGTH
    assert sum(len(e["name"]) + len(e["value"]) for e in server["env"]) == ENV_TOTAL_LENGTH
    assert len(pool["spec"]["placement"]["allowedClasses"]) == 64
    assert len(pool["metadata"]["name"]) == 63 and len(pool["metadata"]["namespace"]) == 63
    cls = largest("AcceleratorClass")
    assert sum(len(p["buckets"]) for p in cls["spec"]["profiles"]) == PROFILE_BUCKETS_TOTAL
    assert len(cls["spec"]["nodeSelector"]) == 16
    assert all(len(k) == 317 for k in cls["spec"]["nodeSelector"])
    fleet = largest("SimulatedFleet")
    groups = fleet["spec"]["pools"]
    assert sum(len(g["labels"]) + len(g["annotations"]) + len(g["taints"]) for g in groups) == MAX_ENTRIES


def test_the_largest_objects_are_what_plan_accepts() -> None:
    for kind in ("InferencePool", "AcceleratorClass", "FleetPolicy"):
        model = sizing.model_of(kind)
        validate_object(model, largest(kind), "largest.yaml")
    doc = largest("SimulatedFleet")
    for group in doc["spec"]["pools"]:
        group["count"] = 1  # each Node it makes: the same for all 10,000 of a group
    assert max(sizing.json_bytes(n) for n in node_manifests(parse_fleet(doc))) < 32 * 1024


def _append(path: str, item: Any) -> Callable[[dict[str, Any]], None]:
    def change(obj: dict[str, Any]) -> None:
        node: Any = obj
        for key in path.split("."):
            node = node[int(key)] if key.isdigit() else node[key]
        if isinstance(node, dict):
            node.update(item)
        else:
            node.append(item)

    return change


def _longer(path: str) -> Callable[[dict[str, Any]], None]:
    def change(obj: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = obj
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        node[int(last) if last.isdigit() else last] += "a"

    return change


BUCKET = {"inputTokens": 1, "outputTokens": 1, "requestsPerSecond": 1}
OVER = [
    pytest.param(
        "InferencePool",
        _append("spec.server.args", "x"),
        "spec.server.args: args must be at most 16384 characters together",
        id="pool-args-one-character-over",
    ),
    pytest.param(
        "InferencePool",
        _append("spec.server.env", {"name": "X"}),
        "spec.server.env: env names and values must be at most 16384 characters together",
        id="pool-env-one-character-over",
    ),
    pytest.param(
        "InferencePool", _longer("spec.server.args.0"), "spec.server.args[0]", id="pool-arg-one-too-long"
    ),
    pytest.param(
        "InferencePool",
        _append("spec.placement.allowedClasses", "z"),
        "spec.placement.allowedClasses: List should have at most 64 items",
        id="pool-65-allowed-classes",
    ),
    pytest.param(
        "InferencePool",
        _longer("spec.model.name"),
        "spec.model.name: String should have at most 253",
        id="pool-model-name-254",
    ),
    pytest.param(
        "InferencePool", _longer("metadata.name"), "metadata.name must be at most 63", id="pool-name-64"
    ),
    pytest.param(
        "AcceleratorClass",
        _append("spec.profiles.63.buckets", BUCKET),
        "spec.profiles: profiles must have at most 512 buckets together",
        id="class-513-buckets",
    ),
    pytest.param(
        "AcceleratorClass",
        _append("spec.nodeSelector", {"zone": "a"}),
        "spec.nodeSelector: Dictionary should have at most 16 items",
        id="class-17-selector-labels",
    ),
    pytest.param(
        "FleetPolicy",
        _append("spec.powerDomains", {"name": "z", "budgetKilowatts": 1}),
        "spec.powerDomains: List should have at most 64 items",
        id="policy-65-domains",
    ),
]


@pytest.mark.parametrize(("kind", "change", "message"), OVER)
def test_one_more_of_anything_is_refused_naming_the_field(
    kind: str, change: Callable[[dict[str, Any]], None], message: str
) -> None:
    obj = largest(kind)
    change(obj)
    with pytest.raises(ManifestError) as err:
        validate_object(sizing.model_of(kind), obj, "x.yaml")
    assert message in str(err.value), str(err.value)


def test_one_more_label_annotation_or_taint_over_the_fleet_is_refused() -> None:
    doc = largest("SimulatedFleet")
    doc["spec"]["pools"][-1]["labels"]["zone"] = "a"
    with pytest.raises(ValidationError, match=f"at most {MAX_ENTRIES} labels, annotations and taints"):
        sizing.model_of("SimulatedFleet").model_validate(doc)


@pytest.mark.parametrize(
    ("pattern", "limit", "expected"),
    [
        pytest.param(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", 63, "a" * 63, id="dns-label"),
        pytest.param(r"^[0-9]{1,12}(\.[0-9]{1,6})?$", 40, "9" * 12 + "." + "9" * 6, id="decimal"),
        pytest.param(r"^[0-9]{1,5}(\.[0-9]{1,3})?[MBT]$", 12, "99999.999B", id="parameters-pattern-shorter"),
        pytest.param(r"^(a|bcd)$", 5, "bcd", id="longest-branch"),
        pytest.param(".*", 4, "aaaa", id="free-text"),
    ],
)
def test_longest_match(pattern: str, limit: int, expected: str) -> None:
    assert sizing.longest_match(pattern, limit) == expected
    assert re.fullmatch(pattern.strip("^$"), expected)


def test_variants_differ_and_still_match() -> None:
    names = {sizing.longest_match(r"^[a-z]([-a-z0-9]*[a-z0-9])?$", 63, i) for i in range(200)}
    assert len(names) == 200
    assert all(len(n) == 63 and re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", n) for n in names)


def test_a_field_without_a_bound_is_named() -> None:
    class Loose(Spec):
        note: str
        tags: list[str]

    schema = Loose.model_json_schema(mode="validation")
    with pytest.raises(sizing.UnboundedError) as err:
        sizing.largest(schema, schema.pop("$defs", {}))
    assert err.value.paths == ["note (no maxLength)", "tags (no maxItems)", "tags[] (no maxLength)"]


def test_json_bytes_counts_what_kubectl_writes() -> None:
    """Go's JSON encoder writes UTF-8 and escapes '<', '>' and '&' (six bytes each)."""
    assert sizing.json_bytes({"a": "é<"}) == len('{"a":"é\\u003c"}'.encode())
