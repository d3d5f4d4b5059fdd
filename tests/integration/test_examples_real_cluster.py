"""examples/real-cluster/ on the real API server: every object is accepted by a server-side dry run
(the CRDs' OpenAPI schemas and CEL rules), and a copy with a label value the server must refuse is
refused naming the field, so the dry run is a check that can fail."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from inferfleet_dev.cluster import Cluster

pytestmark = pytest.mark.integration
FOLDER = Path(__file__).resolve().parents[2] / "examples" / "real-cluster"


def _docs() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted(FOLDER.glob("*.yaml")):
        out += [(path.name, d) for d in yaml.safe_load_all(path.read_text()) if d]
    return out


def _dry_run(cluster: Cluster, obj: dict[str, Any]) -> tuple[int, str]:
    proc = cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(obj), check=False)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.mark.parametrize(("file", "doc"), _docs(), ids=[f"{f}:{d['metadata']['name']}" for f, d in _docs()])
def test_the_api_server_accepts_each_object(
    cluster: Cluster, crds: list[Path], file: str, doc: dict[str, Any]
) -> None:
    rc, out = _dry_run(cluster, doc)
    assert rc == 0, f"{file}: {out}"
    assert "(server dry run)" in out, out


def test_a_selector_value_no_label_may_have_is_refused(cluster: Cluster, crds: list[Path]) -> None:
    (h100,) = [d for _, d in _docs() if d["metadata"]["name"] == "h100-sxm"]
    bad = copy.deepcopy(h100)
    bad["spec"]["nodeSelector"]["nvidia.com/gpu.product"] = "NVIDIA H100 80GB HBM3"  # spaces, as nvidia-smi
    rc, out = _dry_run(cluster, bad)
    assert rc != 0, out
    assert "nodeSelector" in out, out
