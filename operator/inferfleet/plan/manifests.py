"""Reading the YAML users ``kubectl apply``: files, directories, multi-document streams.

Owns turning paths into validated API objects with errors that name the file, the object and the
field (``examples/pools.yaml: InferencePool chat/chat-70b: spec.slo.ttftP95Milliseconds: ...``).
Directories are read like ``kubectl apply -f DIR``: their ``*.yaml``, ``*.yml`` and ``*.json`` files,
not recursively; ``-`` reads standard input (``<stdin>`` in messages).  Documents of other kinds
(Namespaces, Nodes, SimulatedFleets, ...) are kept aside for whoever can use them.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

from inferfleet.api import GROUP
from inferfleet.api.acceleratorclass import AcceleratorClass
from inferfleet.api.fleetpolicy import FleetPolicy
from inferfleet.api.inferencepool import InferencePool
from inferfleet.api.kinds import BY_KIND
from inferfleet.api.validation import ManifestError, object_name, validate_object
from inferfleet.translate.inventory import NodeInfo, node_info_from_manifest

__all__ = ["Manifests", "load", "nodes_from_documents"]


@dataclasses.dataclass
class Manifests:
    pools: list[InferencePool] = dataclasses.field(default_factory=list)
    classes: list[AcceleratorClass] = dataclasses.field(default_factory=list)
    policies: list[FleetPolicy] = dataclasses.field(default_factory=list)
    others: list[dict[str, Any]] = dataclasses.field(default_factory=list)


STDIN = Path("<stdin>")  # ``-f -``: told apart from a file of that name by identity


def _files(paths: Iterable[str | Path]) -> list[Path]:
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if str(raw) == "-":
            out.append(STDIN)
        elif path.is_dir():
            out.extend(
                sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml", ".json") and p.is_file())
            )
        elif path.is_file():
            out.append(path)
        else:
            raise ManifestError([f"{path}: no such file or directory"])
    return out


def load(paths: Iterable[str | Path], default_namespace: str = "default") -> Manifests:
    """Read and validate every document under the paths; collect every problem before failing."""
    out = Manifests()
    problems: list[str] = []
    seen: set[tuple[str, str, str]] = set()
    for file in _files(paths):
        try:
            docs = list(yaml.safe_load_all(sys.stdin.read() if file is STDIN else file.read_text()))
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
                problems.append(f"{where}: {object_name(doc)} is defined twice")
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


def nodes_from_documents(docs: Sequence[dict[str, Any]]) -> list[NodeInfo] | None:
    """Nodes given with the manifests (Node objects, or a SimulatedFleet); None if there are none."""
    from inferfleet.api import simulatedfleet

    nodes: list[dict[str, Any]] = [d for d in docs if d.get("kind") == "Node"]
    for doc in docs:
        if doc.get("kind") != simulatedfleet.KIND:
            continue
        try:
            fleet = simulatedfleet.parse_fleet(doc, source=simulatedfleet.KIND)
            nodes.extend(simulatedfleet.node_manifests(fleet))
        except simulatedfleet.FleetError as exc:
            raise ManifestError(exc.problems) from exc
    if not nodes:
        return None
    return [node_info_from_manifest(n) for n in nodes]
