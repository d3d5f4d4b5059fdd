"""The example manifests (examples/*.yaml) as fresh dicts, for unit tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def example_docs() -> list[dict[str, Any]]:
    """Every example object, freshly read, with a uid and generation as the API server would add."""
    out: list[dict[str, Any]] = []
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        out += [d for d in yaml.safe_load_all(path.read_text()) if d]
    for i, d in enumerate(out):
        d["metadata"].update(uid=f"uid-{i}", generation=1)
    return out


def example(kind: str, name: str) -> dict[str, Any]:
    """One example object by kind and name."""
    for doc in example_docs():
        if doc["kind"] == kind and doc["metadata"]["name"] == name:
            return doc
    raise LookupError(f"{kind} {name}")
