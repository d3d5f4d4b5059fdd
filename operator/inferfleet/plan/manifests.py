"""Reading the YAML users ``kubectl apply``: files, directories, multi-document streams.

Owns turning paths into validated API objects with errors that name the file, the object and the
field (``examples/pools.yaml: InferencePool chat/chat-70b: spec.slo.ttftP95Milliseconds: ...``).
Directories are read like ``kubectl apply -f DIR``: their ``*.yaml``, ``*.yml`` and ``*.json`` files,
not recursively.  Documents of other kinds (Namespaces, Nodes, SimulatedFleets, ...) are kept aside
for whoever can use them.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from inferfleet.api import GROUP
from inferfleet.api.acceleratorclass import AcceleratorClass
from inferfleet.api.fleetpolicy import FleetPolicy
from inferfleet.api.inferencepool import InferencePool
from inferfleet.api.kinds import BY_KIND

__all__ = ["ManifestError", "Manifests", "describe_errors", "load", "validate_object"]

_DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
M = TypeVar("M", bound=BaseModel)


class ManifestError(Exception):
    """One or more problems in the given manifests; ``str()`` is the user-facing message."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


@dataclasses.dataclass
class Manifests:
    pools: list[InferencePool] = dataclasses.field(default_factory=list)
    classes: list[AcceleratorClass] = dataclasses.field(default_factory=list)
    policies: list[FleetPolicy] = dataclasses.field(default_factory=list)
    others: list[dict[str, Any]] = dataclasses.field(default_factory=list)


def _files(paths: Iterable[str | Path]) -> list[Path]:
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            out.extend(
                sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml", ".json") and p.is_file())
            )
        elif path.is_file():
            out.append(path)
        else:
            raise ManifestError([f"{path}: no such file or directory"])
    return out


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


def _object_name(doc: dict[str, Any]) -> str:
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
    label = f"{where}: {_object_name(doc)}"
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


def load(paths: Iterable[str | Path], default_namespace: str = "default") -> Manifests:
    """Read and validate every document under the paths; collect every problem before failing."""
    out = Manifests()
    problems: list[str] = []
    seen: set[tuple[str, str, str]] = set()
    for file in _files(paths):
        try:
            docs = list(yaml.safe_load_all(file.read_text()))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{file}:{mark.line + 1}:{mark.column + 1}" if mark else str(file)
            problems.append(f"{where}: malformed YAML: {getattr(exc, 'problem', None) or exc}")
            continue
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"{file}: cannot read: {exc}")
            continue
        for index, doc in enumerate(docs):
            if doc is None:
                continue
            where = f"{file}" if len(docs) == 1 else f"{file} (document {index + 1})"
            if not isinstance(doc, dict) or "kind" not in doc or "apiVersion" not in doc:
                problems.append(f"{where}: not a Kubernetes object (needs apiVersion and kind)")
                continue
            group = str(doc["apiVersion"]).split("/")[0]
            if group != GROUP:
                out.others.append(doc)
                continue
            info = BY_KIND.get(str(doc["kind"]))
            model = info.model if info else None
            if model is None:
                problems.append(
                    f"{where}: unknown kind {doc['kind']!r} in {GROUP} (known: {', '.join(BY_KIND)})"
                )
                continue
            if doc["kind"] == "InferencePool" and isinstance(doc.get("metadata"), dict):
                doc["metadata"].setdefault("namespace", default_namespace)
            try:
                obj = validate_object(model, doc, where)
            except ManifestError as exc:
                problems.extend(exc.problems)
                continue
            key = (str(doc["kind"]), str(obj.metadata.get("namespace", "")), str(obj.metadata["name"]))  # type: ignore[attr-defined]
            if key in seen:
                problems.append(f"{where}: {_object_name(doc)} is defined twice")
                continue
            seen.add(key)
            if isinstance(obj, InferencePool):
                out.pools.append(obj)
            elif isinstance(obj, AcceleratorClass):
                out.classes.append(obj)
            elif isinstance(obj, FleetPolicy):
                out.policies.append(obj)
    if problems:
        raise ManifestError(problems)
    return out
