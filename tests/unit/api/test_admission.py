"""Admission rules: what the API server refuses because the operator could never create the object's
children (duplicate or reserved env names, tolerations a Pod refuses, node selector keys that are no
label keys, names too long or dotted for Services and labels), checked here through their Python
side, as ``inferfleet plan`` runs them; tests/integration/test_crds.py runs the CEL side."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from examples import example

from inferfleet.api import crdgen
from inferfleet.api.acceleratorclass import (
    QUALIFIED_NAME,
    AcceleratorClass,
    AcceleratorClassSpec,
    Toleration,
    is_qualified_name,
)
from inferfleet.api.common import DNS1035_LABEL, DNS1123_LABEL, CelRule, name_rule
from inferfleet.api.inferencepool import RESERVED_ENV, InferencePool, ServerTemplate
from inferfleet.api.kinds import BY_KIND
from inferfleet.api.validation import ManifestError, validate_object
from inferfleet.reconcile import children

SUBDOMAIN_253 = ".".join(["a" * 63] * 3) + "." + "a" * 61
KEY = "inferfleet.dev/accelerator"


def changed(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    *parents, last = path.split(".")
    node = out
    for key in parents:
        node = node[key]
    node[last] = value
    return out


def problems(model: Any, doc: dict[str, Any]) -> str | None:
    try:
        validate_object(model, doc, "x.yaml")
    except ManifestError as exc:
        return str(exc)
    return None


def env(*names: str) -> list[dict[str, str]]:
    return [{"name": n, "value": str(i)} for i, n in enumerate(names)]


POOLS = [
    pytest.param(
        "spec.server.env", env("A", "A"), "spec.server.env: env names must be unique", id="env-name-twice"
    ),
    pytest.param("spec.server.env", env("A", "a", "B"), None, id="env-names-differ-in-case"),
    pytest.param(
        "spec.server.env",
        env("INFERFLEET_POOL"),
        "spec.server.env: env must not set INFERFLEET_POOL or INFERFLEET_ACCELERATOR_CLASS",
        id="env-sets-the-pool",
    ),
    pytest.param(
        "spec.server.env",
        env("X", "INFERFLEET_ACCELERATOR_CLASS"),
        "env must not set INFERFLEET_POOL or INFERFLEET_ACCELERATOR_CLASS: the operator sets them",
        id="env-sets-the-class",
    ),
    pytest.param(
        "spec.server.env", env("INFERFLEET_POOL_ID", "MY_INFERFLEET_POOL"), None, id="env-near-reserved"
    ),
    pytest.param("metadata.name", "p" * 64, "metadata.name must be at most 63", id="name-64-long"),
    pytest.param("metadata.name", "p" * 63, None, id="name-63-long"),
    pytest.param("metadata.name", "chat.70b", "beginning with a letter", id="name-dotted"),
    pytest.param("metadata.name", "70b-chat", "beginning with a letter", id="name-digit-first"),
    pytest.param("metadata.name", "chat-70b-v2", None, id="name-a-dns-1035-label"),
]


@pytest.mark.parametrize(("path", "value", "message"), POOLS)
def test_pool_admission_rules(path: str, value: Any, message: str | None) -> None:
    said = problems(InferencePool, changed(example("InferencePool", "chat-70b"), path, value))
    if message is None:
        assert said is None, said
    else:
        assert said is not None and message in said, said


def tolerating(*items: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    return ("spec.tolerations", list(items))


EXISTS_VALUE = "value must be empty when operator is Exists"
NO_KEY = "key may be unset only with operator Exists"
SECONDS = "tolerationSeconds needs effect NoExecute"
PREFIX = "key's prefix (before '/') must be at most 253 characters"
SELECTOR = "spec.nodeSelector: nodeSelector keys must be label keys"
CLASS_NAME = "metadata.name must be at most 63 lower-case letters, digits and '-', beginning and ending"

CLASSES = [
    pytest.param(
        *tolerating({"key": KEY, "operator": "Exists", "value": "h100"}), EXISTS_VALUE, id="exists-value"
    ),
    pytest.param(*tolerating({"key": KEY, "operator": "Exists", "value": ""}), None, id="exists-empty-value"),
    pytest.param(*tolerating({"key": KEY, "operator": "Exists"}), None, id="exists"),
    pytest.param(*tolerating({"value": "h100"}), NO_KEY, id="no-key-equal"),
    pytest.param(*tolerating({"operator": "Exists"}), None, id="no-key-exists"),
    pytest.param(
        *tolerating({"key": KEY, "effect": "NoSchedule", "tolerationSeconds": 9}),
        SECONDS,
        id="seconds-no-schedule",
    ),
    pytest.param(*tolerating({"key": KEY, "tolerationSeconds": 9}), SECONDS, id="seconds-every-effect"),
    pytest.param(
        *tolerating({"key": KEY, "effect": "NoExecute", "tolerationSeconds": 9}),
        None,
        id="seconds-no-execute",
    ),
    pytest.param(
        *tolerating({"key": KEY, "effect": "NoEvict"}), "spec.tolerations[0].effect", id="unknown-effect"
    ),
    pytest.param(
        *tolerating({"key": KEY, "operator": "In"}), "spec.tolerations[0].operator", id="unknown-operator"
    ),
    pytest.param(
        *tolerating({"key": "-accelerator"}), "spec.tolerations[0].key: String should match", id="key-dash"
    ),
    pytest.param(
        *tolerating({"key": "a..b/c"}), "spec.tolerations[0].key: String should match", id="key-dot-dot"
    ),
    pytest.param(
        *tolerating({"key": "k" * 64}), "spec.tolerations[0].key: String should match", id="key-name-64"
    ),
    pytest.param(*tolerating({"key": "k" * 63}), None, id="key-name-63"),
    pytest.param(
        *tolerating({"key": f"{SUBDOMAIN_253}a/k"}), f"spec.tolerations[0].key: {PREFIX}", id="key-prefix-254"
    ),
    pytest.param(*tolerating({"key": f"{SUBDOMAIN_253}/k"}), None, id="key-prefix-253"),
    pytest.param("spec.nodeSelector", {f"{SUBDOMAIN_253}a/k": "x"}, SELECTOR, id="selector-key-prefix-254"),
    pytest.param("spec.nodeSelector", {"-class": "x"}, SELECTOR, id="selector-key-dash"),
    pytest.param("spec.nodeSelector", {"a/b/c": "x"}, SELECTOR, id="selector-key-two-slashes"),
    pytest.param(
        "spec.nodeSelector", {f"{SUBDOMAIN_253}/k": "x", "zone": "a"}, None, id="selector-keys-valid"
    ),
    pytest.param("metadata.name", "c" * 64, CLASS_NAME, id="name-64-long"),
    pytest.param("metadata.name", "c" * 63, None, id="name-63-long"),
    pytest.param("metadata.name", "h100.sxm", CLASS_NAME, id="name-dotted"),
    pytest.param("metadata.name", "4090", None, id="name-digit-first"),
]


@pytest.mark.parametrize(("path", "value", "message"), CLASSES)
def test_class_admission_rules(path: str, value: Any, message: str | None) -> None:
    said = problems(AcceleratorClass, changed(example("AcceleratorClass", "h100"), path, value))
    if message is None:
        assert said is None, said
    else:
        assert said is not None and message in said, said


@pytest.mark.parametrize(
    ("key", "valid"),
    [
        pytest.param("zone", True, id="bare-name"),
        pytest.param("topology.kubernetes.io/zone", True, id="prefixed"),
        pytest.param("a_b.C-d", True, id="name-with-underscore-dot-capital"),
        pytest.param("zone_", False, id="name-ends-with-underscore"),
        pytest.param("Example.com/zone", False, id="prefix-with-capital"),
        pytest.param("example.com/", False, id="empty-name"),
        pytest.param("/zone", False, id="empty-prefix"),
        pytest.param("zone\n", False, id="trailing-newline"),
        pytest.param(f"{SUBDOMAIN_253}/zone", True, id="prefix-253"),
        pytest.param(f"{SUBDOMAIN_253}a/zone", False, id="prefix-254"),
    ],
)
def test_qualified_names(key: str, valid: bool) -> None:
    assert is_qualified_name(key) is valid


def test_reserved_env_is_one_constant_in_rule_and_message() -> None:
    reserved = ServerTemplate.cel_rules[1]
    assert all(f"'{name}'" in reserved.rule and name in reserved.message for name in RESERVED_ENV)


def test_reserved_env_is_what_the_operator_sets_on_a_replica() -> None:
    pool = validate_object(InferencePool, example("InferencePool", "chat-70b"), "x")
    cls = validate_object(AcceleratorClass, example("AcceleratorClass", "h100"), "x")
    container = children.build_deployment(pool, cls, 1, 1)["spec"]["template"]["spec"]["containers"][0]
    assert {e["name"] for e in container["env"]} - {e.name for e in pool.spec.server.env} == set(RESERVED_ENV)


def test_name_rules_run_at_the_root_on_create_only() -> None:
    """At the root (where CEL reads metadata.name), with oldSelf optional: an object created before
    the rule keeps a writable status; the field is declared so fieldPath can name it."""
    for kind, pattern in (("InferencePool", DNS1035_LABEL), ("AcceleratorClass", DNS1123_LABEL)):
        schema = crdgen.crd(BY_KIND[kind])["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        (rule,) = schema["x-kubernetes-validations"]
        assert rule["rule"] == f"oldSelf.hasValue() || self.metadata.name.matches('{pattern}')"
        assert rule["optionalOldSelf"] is True and rule["fieldPath"] == ".metadata.name"
        assert schema["properties"]["metadata"]["properties"] == {"name": {"type": "string"}}


def test_an_object_without_a_name_is_left_to_validate_object() -> None:
    doc = example("InferencePool", "chat-70b")
    del doc["metadata"]["name"]
    with pytest.raises(ManifestError) as err:
        validate_object(InferencePool, doc, "x.yaml")
    assert err.value.problems == [
        "x.yaml: InferencePool chat/<unnamed>: metadata.name: required field is missing"
    ]


@pytest.mark.parametrize("pattern", ["^it's$", r"^a\.b$"])
def test_a_name_pattern_must_paste_into_a_cel_string(pattern: str) -> None:
    with pytest.raises(ValueError, match="plain CEL string literal"):
        name_rule(pattern, "x")


def test_patterns_pasted_into_cel_have_no_backslash_or_quote() -> None:
    for pattern in (QUALIFIED_NAME, DNS1035_LABEL, DNS1123_LABEL):
        assert "\\" not in pattern and "'" not in pattern


NEW_RULES = [
    pytest.param(rule, id=f"{model.__name__}-{i}")
    for model, rules in (
        (ServerTemplate, ServerTemplate.cel_rules),
        (Toleration, Toleration.cel_rules),
        (AcceleratorClassSpec, AcceleratorClassSpec.cel_rules),
        (InferencePool, InferencePool.cel_rules),
        (AcceleratorClass, AcceleratorClass.cel_rules),
    )
    for i, rule in enumerate(rules)
]


@pytest.mark.parametrize("rule", NEW_RULES)
def test_each_admission_rule_names_its_field(rule: CelRule) -> None:
    assert rule.field_path is not None
    assert rule.field_path.rsplit(".", 1)[-1] in rule.message, rule.message
