"""The generated CRDs: every CEL rule reads only fields that are there.

The API server evaluates a rule on the object as stored, after defaulting: a rule reading an
optional field with no default fails with ``no such key`` on every object that leaves it out (a
FleetPolicy without ``spec.powerDomains`` was refused so).  Here each rule's ``self.<field>`` reads
are held to fields that are required, defaulted, or guarded by ``has(self.<field>)`` in the same
rule; tests/chaos/test_invalid_objects.py runs each rule on the real API server.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from inferfleet.api import crdgen
from inferfleet.api.kinds import KINDS

TABLE = Path(__file__).resolve().parents[2] / "chaos" / "invalid_objects.yaml"

_READ = re.compile(r"(?<![\w.])(self|[a-z])\.(\w+)\b(?!\()")  # a field read, not a method call
_ITERATED = re.compile(r"self\.(\w+)\.(?:all|exists|exists_one|map|filter)\(\s*([a-z])\s*,")


def rules() -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(where, schema of the object the rule is on, the rule) for every rule of every CRD."""

    def walk(node: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
        for rule in node.get("x-kubernetes-validations", []):
            yield path or "(root)", node, rule
        for name, child in node.get("properties", {}).items():
            yield from walk(child, f"{path}.{name}")
        if isinstance(node.get("items"), dict):
            yield from walk(node["items"], f"{path}[]")
        if isinstance(node.get("additionalProperties"), dict):
            yield from walk(node["additionalProperties"], f"{path}{{}}")

    for kind in KINDS:
        schema = crdgen.crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        yield from walk(schema, kind.kind)


def always_there(node: dict[str, Any], field: str) -> bool:
    child = node.get("properties", {}).get(field, {})
    return field in node.get("required", []) or "default" in child


def unguarded(node: dict[str, Any], rule: str) -> list[str]:
    """The optional fields a rule reads of ``self`` (or of a list item it iterates) without has()."""
    items: dict[str, dict[str, Any]] = {"self": node}
    for field, var in _ITERATED.findall(rule):  # a list's items, by the variable that iterates them
        items[var] = node.get("properties", {}).get(field, {}).get("items", {})
    out = []
    for var, field in _READ.findall(rule):
        schema = items.get(var)
        if schema is None or (var, field) == ("self", "metadata"):  # a map key; metadata.name
            continue
        if not always_there(schema, field) and f"has({var}.{field})" not in rule:
            out.append(f"{var}.{field}")
    return out


RULES = [pytest.param(node, rule, id=f"{where}: {rule['message'][:60]}") for where, node, rule in rules()]


def test_every_rule_is_found() -> None:
    assert len(RULES) >= 35


@pytest.mark.parametrize(("node", "rule"), RULES)
def test_every_rule_guards_the_optional_fields_it_reads(node: dict[str, Any], rule: dict[str, Any]) -> None:
    assert unguarded(node, rule["rule"]) == [], rule["rule"]


def test_the_guard_check_finds_the_bug_it_is_for() -> None:
    """The rule as it was (no has()) on a list without a default: found."""
    items = {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}
    node = {"type": "object", "properties": {"powerDomains": {"type": "array", "items": items}}}
    assert unguarded(node, "self.powerDomains.all(d, self.powerDomains.exists_one(e, e.name == d.name))") == [
        "self.powerDomains",
        "self.powerDomains",
    ]
    assert unguarded(node, "!has(self.powerDomains) || self.powerDomains.all(d, d.name != '')") == []


def _said(row: dict[str, Any]) -> list[str]:
    rules = row.get("rule", [])
    return [row["message"]] if row.get("message") else [rules] if isinstance(rules, str) else rules


def test_every_rule_has_a_refused_and_an_accepted_row_in_the_invalid_object_table() -> None:
    """tests/chaos/test_invalid_objects.py runs each row on the real API server, through ``plan``
    and through the operator's validation: a rule no row refuses, or none accepts, could disagree
    with its Python twin unseen (as the powerDomains rule did)."""
    rows = yaml.safe_load(TABLE.read_text())["rows"]
    missing = []
    for where, _node, rule in rules():
        kind = where.split(".")[0]
        own = [r for r in rows if r["kind"] == kind]
        refused = [r for r in own if r.get("field") and any(s in rule["message"] for s in _said(r))]
        accepted = [r for r in own if not r.get("field") and any(s in rule["message"] for s in _said(r))]
        if not refused or not accepted:
            missing.append(f"{where}: {rule['message']} (refused {len(refused)}, accepted {len(accepted)})")
    assert missing == []


def fields() -> Iterator[tuple[str, dict[str, Any]]]:
    """(path, schema) of every field of every CRD."""

    def walk(node: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
        for name, child in node.get("properties", {}).items():
            yield f"{path}.{name}", child
            yield from walk(child, f"{path}.{name}")
        for key, suffix in (("items", "[]"), ("additionalProperties", "{}")):
            if isinstance(node.get(key), dict):
                yield from walk(node[key], path + suffix)

    for kind in KINDS:
        yield from walk(crdgen.crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"], kind.kind)


def test_every_field_has_a_description_for_kubectl_explain() -> None:
    """All but metadata, whose schema is the API server's (it refuses a description there)."""
    every = [(path, node) for path, node in fields() if ".metadata" not in path]
    assert len(every) > 250
    assert [path for path, node in every if not node.get("description")] == []


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_every_kinds_conditions_are_a_list_map_with_upstream_patterns(kind: Any) -> None:
    status = crdgen.crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
    conditions = status["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    item = conditions["items"]
    assert set(item["required"]) == {"type", "status", "lastTransitionTime", "reason", "message"}
    # metav1.Condition's own markers (k8s.io/apimachinery/pkg/apis/meta/v1/types.go)
    assert item["properties"]["type"]["maxLength"] == 316
    assert item["properties"]["reason"]["pattern"] == "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"
    assert item["properties"]["type"]["pattern"].endswith("(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$")
