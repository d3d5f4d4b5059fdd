"""Size bounds a user can apply, on the real API server: the largest valid object of each kind
(``api.sizing``: every field at its maximum) is applied with client-side ``kubectl apply``, whose
``last-applied-configuration`` annotation holds the whole object, created and then patched, and with
``kubectl apply --server-side``; both succeed, in letters and digits and with every free character
one that JSON escapes.  One more of anything is refused with the field named, and an object that
is too big for client-side apply only because of its own annotations is refused client-side and
accepted server-side (the limit the bounds keep clear of is real)."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from inferfleet.api import sizing
from inferfleet_dev.cluster import Cluster

pytestmark = pytest.mark.integration
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
TEST_NS_LABEL = "inferfleet.dev/test-namespace"  # tests/conftest.py clears leftovers by it
RESOURCES = {
    "InferencePool": "inferencepools.inferfleet.dev",
    "AcceleratorClass": "acceleratorclasses.inferfleet.dev",
    "FleetPolicy": "fleetpolicies.inferfleet.dev",
}


@pytest.fixture
def long_namespace(cluster: Cluster) -> Iterator[str]:
    """A namespace with the longest name (63 characters), as the largest pool has."""
    name = f"size-{uuid.uuid4().hex[:8]}-".ljust(63, "n")
    cluster.kubectl("create", "namespace", name)
    cluster.kubectl("label", "namespace", name, f"{TEST_NS_LABEL}=true")
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


def kubectl(cluster: Cluster, obj: dict[str, Any], *args: str) -> tuple[int, str]:
    proc = cluster.kubectl(*args, "-f", "-", input=json.dumps(obj), check=False, timeout=120)
    return proc.returncode, proc.stdout + proc.stderr


def largest(kind: str, namespace: str, *, escaped: bool = False) -> dict[str, Any]:
    obj = sizing.largest_object(kind, escaped=escaped)
    if kind == "InferencePool":
        obj["metadata"]["namespace"] = namespace
    return obj


def stored(cluster: Cluster, obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj["metadata"]
    where = ["-n", meta["namespace"]] if "namespace" in meta else []
    out = cluster.kubectl("get", RESOURCES[obj["kind"]], meta["name"], *where, "-o", "json").stdout
    got: dict[str, Any] = json.loads(out)
    return got


def delete(cluster: Cluster, obj: dict[str, Any]) -> None:
    rc, out = kubectl(cluster, obj, "delete", "--ignore-not-found", "--wait=true")
    assert rc == 0, out


@pytest.mark.parametrize("escaped", [False, True], ids=["letters", "escaped"])
@pytest.mark.parametrize("kind", ["InferencePool", "AcceleratorClass"])
def test_the_largest_object_applies_client_side_and_server_side(
    cluster: Cluster, crds: list[Path], long_namespace: str, kind: str, escaped: bool
) -> None:
    obj = largest(kind, long_namespace, escaped=escaped)
    # what kubectl writes: the object with an empty annotations map, and a newline
    size = sizing.json_bytes({**obj, "metadata": {**obj["metadata"], "annotations": {}}}) + 1
    try:
        rc, out = kubectl(cluster, obj, "apply")
        assert rc == 0, out[:2000]
        annotation = stored(cluster, obj)["metadata"]["annotations"][LAST_APPLIED]
        assert len(annotation.encode()) == size  # json_bytes measures what kubectl stores
        again = copy.deepcopy(obj)
        again["spec"]["devicesPerNode" if kind == "AcceleratorClass" else "priority"] = 1
        rc, out = kubectl(cluster, again, "apply")  # the patch path: the annotation rewritten
        assert rc == 0, out[:2000]
        delete(cluster, obj)
        rc, out = kubectl(cluster, obj, "apply", "--server-side", "--field-manager=size-test")
        assert rc == 0, out[:2000]
        assert LAST_APPLIED not in stored(cluster, obj)["metadata"].get("annotations", {})
    finally:
        delete(cluster, obj)


@pytest.mark.parametrize("escaped", [False, True], ids=["letters", "escaped"])
def test_the_largest_fleet_policy_applies_both_ways(
    cluster: Cluster, crds: list[Path], escaped: bool
) -> None:
    """Against the dry run: the one FleetPolicy (named default) may be another test's."""
    obj = largest("FleetPolicy", "", escaped=escaped)
    for how in (["apply"], ["apply", "--server-side", "--field-manager=size-test", "--force-conflicts"]):
        rc, out = kubectl(cluster, obj, *how, "--dry-run=server")
        assert rc == 0, out[:2000]


def _args(obj: dict[str, Any]) -> None:
    obj["spec"]["server"]["args"].append("x")


def _arg(obj: dict[str, Any]) -> None:
    obj["spec"]["server"]["args"][0] += "x"


def _env(obj: dict[str, Any]) -> None:
    obj["spec"]["server"]["env"].append({"name": "X", "value": ""})


BUCKET = {"inputTokens": 1, "outputTokens": 1, "requestsPerSecond": 1}


def _buckets(obj: dict[str, Any]) -> None:
    obj["spec"]["profiles"][-1]["buckets"].append(BUCKET)


def _bucket(obj: dict[str, Any]) -> None:
    obj["spec"]["profiles"][0]["buckets"].append(BUCKET)


def _selector(obj: dict[str, Any]) -> None:
    obj["spec"]["nodeSelector"]["zone"] = "a"


def _domains(obj: dict[str, Any]) -> None:
    obj["spec"]["powerDomains"].append({"name": "z", "budgetKilowatts": 1})


OVER = [
    pytest.param("InferencePool", _args, "spec.server.args", "at most 16384 characters together", id="args"),
    pytest.param("InferencePool", _arg, "spec.server.args[0]", "", id="one-arg"),
    pytest.param("InferencePool", _env, "spec.server.env", "at most 16384 characters together", id="env"),
    pytest.param("AcceleratorClass", _buckets, "spec.profiles", "at most 512 buckets together", id="buckets"),
    pytest.param("AcceleratorClass", _bucket, "spec.profiles[0].buckets", "64", id="buckets-of-a-profile"),
    pytest.param("AcceleratorClass", _selector, "spec.nodeSelector", "16", id="node-selector"),
    pytest.param("FleetPolicy", _domains, "spec.powerDomains", "64", id="power-domains"),
]


@pytest.mark.parametrize(("kind", "change", "field", "message"), OVER)
def test_one_more_of_anything_is_refused_with_the_field_named(
    cluster: Cluster, crds: list[Path], long_namespace: str, kind: str, change: Any, field: str, message: str
) -> None:
    obj = largest(kind, long_namespace)
    change(obj)
    rc, out = kubectl(cluster, obj, "apply", "--server-side", "--field-manager=size-test", "--dry-run=server")
    assert rc != 0, f"the API server accepted {kind} over a bound"
    assert f"{field}: " in out and message in out, out[:2000]


def test_only_the_annotation_limit_stops_client_side_apply(
    cluster: Cluster, crds: list[Path], long_namespace: str
) -> None:
    """The limit is real: the largest pool with 200 KiB of its own annotation is refused client-side
    (its JSON goes into a second annotation) and accepted server-side."""
    obj = largest("InferencePool", long_namespace)
    obj["metadata"]["annotations"] = {"example.com/notes": "n" * 200 * 1024}
    rc, out = kubectl(cluster, obj, "apply", "--dry-run=server")
    assert rc != 0 and "metadata.annotations: Too long" in out, out[:2000]
    rc, out = kubectl(cluster, obj, "apply", "--server-side", "--field-manager=size-test", "--dry-run=server")
    assert rc == 0, out[:2000]
