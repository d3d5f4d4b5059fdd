"""Validating API objects: one object against its pydantic model, with messages people can act on.

Owns ``validate_object`` (used for files by the offline planner and for cluster objects by the
operator) and ``describe_errors``, which turns pydantic errors into ``field.path: message`` lines
with the API's camelCase names, prefixed by where the object came from and its kind and name
(``examples/pools.yaml: InferencePool chat/chat-70b: spec.slo.ttftP95Milliseconds: ...``).  It
refuses what the API server refuses: types are read strictly (``"8000"`` is no port, ``true`` no
priority), a CEL rule is reported at the field the server names (its ``fieldPath``), and the
metadata the server checks for every object (namespace, label keys and values, annotation keys
and their total size) is checked too.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from inferfleet.api.acceleratorclass import LABEL_VALUE, is_qualified_name
from inferfleet.api.common import CEL_ERROR

__all__ = ["ManifestError", "describe_errors", "object_name", "validate_object"]

_DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_LABEL_VALUE = re.compile(LABEL_VALUE)
ANNOTATIONS_MAX_BYTES = 256 * 1024  # of all of an object's annotations, keys and values
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
        if err["type"] == CEL_ERROR and (field_path := (err.get("ctx") or {}).get("field_path")):
            loc = f"{loc}{field_path}".lstrip(".")  # where the API server reports the rule
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


def _metadata_problems(meta: dict[str, Any]) -> list[str]:
    """What the API server checks of every object's metadata, beyond the name."""
    problems: list[str] = []
    namespace = meta.get("namespace")
    if namespace is not None and (not isinstance(namespace, str) or not _DNS1123_LABEL.match(namespace)):
        problems.append(f"metadata.namespace: must be a lower-case DNS-1123 label, got {namespace!r}")
    labels = meta.get("labels") or {}
    annotations = meta.get("annotations") or {}
    for part, entries in (("labels", labels), ("annotations", annotations)):
        if not isinstance(entries, dict) or not all(isinstance(v, str) for v in entries.values()):
            problems.append(f"metadata.{part}: must map keys to strings")
            continue
        for key in entries:
            if not isinstance(key, str) or not is_qualified_name(key):
                problems.append(f"metadata.{part}: {key!r} is not a valid key ([prefix/]name)")
    if isinstance(labels, dict):
        for key, value in labels.items():
            if isinstance(value, str) and not (len(value) <= 63 and _LABEL_VALUE.match(value)):
                problems.append(f"metadata.labels: the value of {key!r} is not a valid label value")
    if isinstance(annotations, dict):
        size = sum(len(str(k).encode()) + len(str(v).encode()) for k, v in annotations.items())
        if size > ANNOTATIONS_MAX_BYTES:
            problems.append(
                f"metadata.annotations: must have at most {ANNOTATIONS_MAX_BYTES} bytes together, got {size}"
            )
    return problems


def validate_object(model: type[M], doc: dict[str, Any], where: str) -> M:
    """Validate one object as the API server would (strict types); raise ManifestError naming
    where, the object and each bad field."""
    label = f"{where}: {object_name(doc)}"
    meta = doc.get("metadata")
    problems: list[str] = []
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
        problems.append(f"{label}: metadata.name: required field is missing")
    elif not _DNS1123.match(meta["name"]) or len(meta["name"]) > 253:
        problems.append(f"{label}: metadata.name: must be a lower-case DNS-1123 name, got {meta['name']!r}")
    if isinstance(meta, dict):
        problems.extend(f"{label}: {line}" for line in _metadata_problems(meta))
    try:
        obj = model.model_validate(doc, strict=True)
    except ValidationError as exc:
        problems.extend(f"{label}: {line}" for line in describe_errors(exc))
    if problems:
        raise ManifestError(problems)
    return obj
