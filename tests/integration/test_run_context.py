"""``inferfleet run --context`` on the real control plane: with a kubeconfig whose *current* context
points at a closed port, the operator started with ``--context`` naming the test cluster's context
takes the Lease (its own client uses the context), its kopf side never tries the closed port (kopf's
login uses it too), and SIGTERM stops it with exit status 0, as ``inferfleet --help`` lists."""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from operator_proc import Operators

from inferfleet_dev.cluster import Cluster

pytestmark = pytest.mark.integration
CLOSED = "https://127.0.0.1:1"  # nothing listens on port 1


def _two_contexts(cluster: Cluster, path: Path) -> tuple[Path, str]:
    """The cluster's kubeconfig plus a context "unreachable" (made current); the real context's name."""
    config: dict[str, Any] = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    real = config["current-context"]
    (ctx,) = [c for c in config["contexts"] if c["name"] == real]
    (entry,) = [c for c in config["clusters"] if c["name"] == ctx["context"]["cluster"]]
    dead = copy.deepcopy(entry)
    dead["name"] = "unreachable"
    dead["cluster"]["server"] = CLOSED
    config["clusters"].append(dead)
    config["contexts"].append(
        {"name": "unreachable", "context": {**ctx["context"], "cluster": "unreachable"}}
    )
    config["current-context"] = "unreachable"
    path.write_text(yaml.safe_dump(config))
    return path, real


@pytest.fixture
def operators(cluster: Cluster, tmp_path: Path) -> Iterator[Operators]:
    kubeconfig, _ = _two_contexts(cluster, tmp_path / "kubeconfig")
    ops = Operators(kubeconfig, tmp_path)
    yield ops
    ops.stop_all()


def test_the_named_context_is_the_one_both_sides_use(
    cluster: Cluster, crds: list[Path], operators: Operators, namespace: str, tmp_path: Path
) -> None:
    _, real = _two_contexts(cluster, tmp_path / "unused")
    op = operators.new("ctx", leader_elect=True, lease_namespace=namespace, extra_args=["--context", real])
    op.start(timeout=60)
    deadline = time.monotonic() + 60
    while op.metric("inferfleet_leader") != 1.0:
        assert op.alive, op.log_tail()
        assert time.monotonic() < deadline, f"no leadership within 60 s:\n{op.log_tail()}"
        time.sleep(0.5)
    lease = cluster.kubectl("get", "lease", "inferfleet-operator", "-n", namespace, "-o", "yaml").stdout
    assert yaml.safe_load(lease)["spec"]["holderIdentity"] == "ctx"
    time.sleep(5)  # let kopf's watches run a while
    assert "127.0.0.1:1" not in op.log_tail(), op.log_tail()
    op.stop()
    assert op.proc is not None and op.proc.returncode == 0, op.log_tail()
