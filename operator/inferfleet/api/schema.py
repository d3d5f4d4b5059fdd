"""Turn pydantic JSON Schema into a Kubernetes structural OpenAPI v3 schema.

Owns the fix-ups the API server needs: ``$ref`` inlined, ``Optional[X]`` (``anyOf [X, null]``) made
plain ``X``, no ``title``, ``const`` as a one-value ``enum``, no ``additionalProperties: false`` beside
``properties`` (the server prunes unknown fields; kubectl's strict validation rejects them),
``propertyNames`` dropped, ``patternProperties`` folded into ``additionalProperties``, int-or-string
defaults never floats, and each model's CEL rules attached as ``x-kubernetes-validations``.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel

from inferfleet.api.common import Spec

__all__ = ["root_rules", "structural_schema"]

_DROP = {"title", "propertyNames", "discriminator"}


def _cel_by_title(model: type[BaseModel], out: dict[str, list[dict[str, Any]]]) -> None:
    """Collect CEL rules of a model and of every nested model, keyed by the model's schema title."""
    if issubclass(model, Spec) and model.cel_rules:
        out[model.__name__] = [r.schema() for r in model.cel_rules]
    for field in model.model_fields.values():
        for arg in _nested_models(field.annotation):
            if arg.__name__ not in out:
                _cel_by_title(arg, out)


def _nested_models(annotation: Any) -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = []
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        found.append(annotation)
    for arg in getattr(annotation, "__args__", ()) or ():
        found.extend(_nested_models(arg))
    return found


def _fix(node: Any, defs: dict[str, Any], rules: dict[str, list[dict[str, Any]]]) -> Any:
    if isinstance(node, list):
        return [_fix(n, defs, rules) for n in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    pattern_props = node.pop("patternProperties", None)
    if isinstance(pattern_props, dict) and pattern_props and "additionalProperties" not in node:
        # dict[ConstrainedKey, V]: structural schemas have no patternProperties; keep the value schema.
        node["additionalProperties"] = next(iter(pattern_props.values()))
    if "$ref" in node:
        name = node.pop("$ref").rsplit("/", 1)[-1]
        merged = {**copy.deepcopy(defs[name]), **node}  # sibling keys (description, default) win
        return _fix(merged, defs, rules)
    any_of = node.get("anyOf")
    if isinstance(any_of, list):
        non_null = [s for s in any_of if s != {"type": "null"}]
        if len(non_null) < len(any_of):  # Optional[X]
            node.pop("anyOf")
            if node.get("default", 0) is None:
                node.pop("default")
            if len(non_null) == 1:
                return _fix({**non_null[0], **node}, defs, rules)
            node["anyOf"] = non_null
    title = node.get("title")
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP:
            continue
        if key == "const":
            out["enum"] = [value]
        elif key == "additionalProperties" and value is False:
            continue
        elif key == "properties":
            out[key] = {k: _fix(v, defs, rules) for k, v in value.items()}
        elif key == "default" and value is None:
            continue
        else:
            out[key] = _fix(value, defs, rules)
    if isinstance(title, str) and title in rules and out.get("type") == "object":
        out["x-kubernetes-validations"] = rules[title]
    if out.get("type") == "object" and "additionalProperties" in out and not out["additionalProperties"]:
        out.pop("additionalProperties")
    if "anyOf" in out and out.get("x-kubernetes-int-or-string"):
        # int-or-string: the anyOf branches must not carry anything but the type, and a default
        # must be an integer or a string (never a float).
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
        default = out.get("default")
        if isinstance(default, float):
            out["default"] = int(default) if default.is_integer() else f"{default:g}"
    return out


def root_rules(model: type[BaseModel]) -> list[dict[str, Any]]:
    """The CEL rules of an object's own model (not of its spec or status), for the schema root."""
    return [r.schema() for r in model.cel_rules] if issubclass(model, Spec) else []


def structural_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The structural schema of a pydantic model, ready for a CRD's openAPIV3Schema."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    rules: dict[str, list[dict[str, Any]]] = {}
    _cel_by_title(model, rules)
    fixed: dict[str, Any] = _fix(raw, defs, rules)
    return fixed
