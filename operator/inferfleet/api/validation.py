"""Validating API objects: one object against its pydantic model, with messages people can act on.

Owns ``validate_object`` (used for files by the offline planner and for cluster objects by the
operator) and ``describe_errors``, which turns pydantic errors into ``field.path: message`` lines
with the API's camelCase names, prefixed by where the object came from and its kind and name
(``examples/pools.yaml: InferencePool chat/chat-70b: spec.slo.ttftP95Milliseconds: ...``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

__all__ = ["ManifestError", "describe_errors", "object_name", "validate_object"]

_DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
M = TypeVar("M", bound=BaseModel)


class ManifestError(Exception):
    """One or more problems in the given manifests; ``str()`` is the user-facing message."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


def describe_errors(exc: ValidationError) -> list[str]:
    """pydantic errors as ``field.path: message`` using the API's camelCase names."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in err["loc"]).replace(".[", "[")
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field (strict field validation, as kubectl apply)"
        elif err["type"] == "missing":
            msg = "required field is missing"
        lines.append(f"{loc or '(object)'}: {msg}")
    return lines


def object_name(doc: dict[str, Any]) -> str:
    meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    assert isinstance(meta, dict)
    name = meta.get("name", "<unnamed>")
    namespace = meta.get("namespace")
    return (
        f"{doc.get('kind')} {namespace}/{name}"
        if doc.get("kind") == "InferencePool"
        else f"{doc.get('kind')} {name}"
    )


def validate_object(model: type[M], doc: dict[str, Any], where: str) -> M:
    """Validate one object; raise ManifestError naming where, the object and each bad field."""
    label = f"{where}: {object_name(doc)}"
    meta = doc.get("metadata")
    problems: list[str] = []
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
        problems.append(f"{label}: metadata.name: required field is missing")
    elif not _DNS1123.match(meta["name"]) or len(meta["name"]) > 253:
        problems.append(f"{label}: metadata.name: must be a lower-case DNS-1123 name, got {meta['name']!r}")
    try:
        obj = model.model_validate(doc)
    except ValidationError as exc:
        problems.extend(f"{label}: {line}" for line in describe_errors(exc))
    if problems:
        raise ManifestError(problems)
    return obj
