"""The CRDs on the real API server: they install, accept the examples, reject bad objects with our
messages (OpenAPI bounds and CEL rules), and show what kubectl users expect."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from inferfleet_dev.cluster import Cluster

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def docs(kind: str) -> list[dict[str, Any]]:
    out = []
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        out += [d for d in yaml.safe_load_all(path.read_text()) if d and d["kind"] == kind]
    return out


def apply(cluster: Cluster, obj: dict[str, Any], *extra: str) -> tuple[int, str]:
    proc = cluster.kubectl("apply", "--dry-run=server", *extra, "-f", "-", input=json.dumps(obj), check=False)
    return proc.returncode, proc.stdout + proc.stderr


def test_examples_are_accepted_by_the_api_server(cluster: Cluster, crds: list[Path]) -> None:
    assert len(crds) == 3
    for kind in ("AcceleratorClass", "FleetPolicy"):
        for obj in docs(kind):
            rc, out = apply(cluster, obj)
            assert rc == 0, out
    for original in docs("InferencePool"):
        obj = copy.deepcopy(original)
        obj["metadata"]["namespace"] = "default"
        rc, out = apply(cluster, obj)
        assert rc == 0, out


def bad_pool(path: str, value: Any) -> dict[str, Any]:
    obj = copy.deepcopy(docs("InferencePool")[0])
    obj["metadata"]["namespace"] = "default"
    node = obj
    *parents, last = path.split(".")
    for key in parents:
        node = node[key]
    node[last] = value
    return obj


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        pytest.param(
            "spec.minReplicas", 99, "minReplicas must not exceed maxReplicas", id="cel-min-above-max"
        ),
        pytest.param(
            "spec.slo",
            {},
            "an SLO needs ttftP95Milliseconds, tpotP95Milliseconds or both",
            id="cel-empty-slo",
        ),
        pytest.param(
            "spec.slo.tpotP95Milliseconds", 0, "should be greater than or equal to 1", id="bound-zero-tpot"
        ),
        pytest.param("spec.model.parameters", "lots", "spec.model.parameters", id="pattern-parameters"),
        pytest.param(
            "spec.demand.requestsPerSecond", "-3", "spec.demand.requestsPerSecond", id="negative-demand"
        ),
        pytest.param(
            "spec.placement",
            {"allowedClasses": ["h100"], "preferredClasses": ["groq"]},
            "every preferred class must also be allowed",
            id="cel-preferred-not-allowed",
        ),
        pytest.param("spec.model.precision", "fp7", "Unsupported value", id="enum-precision"),
    ],
)
def test_api_server_rejects_bad_pool_with_our_message(
    cluster: Cluster, crds: list[Path], path: str, value: Any, message: str
) -> None:
    rc, out = apply(cluster, bad_pool(path, value))
    assert rc != 0
    assert message in out, out


def test_unknown_field_is_rejected_by_strict_field_validation(cluster: Cluster, crds: list[Path]) -> None:
    rc, out = apply(cluster, bad_pool("spec.model.flavour", "x"))
    assert rc != 0 and 'unknown field "spec.model.flavour"' in out, out


def test_class_and_policy_rules(cluster: Cluster, crds: list[Path]) -> None:
    cls = copy.deepcopy(docs("AcceleratorClass")[0])
    cls["spec"]["price"] = {"dollarsPerDeviceHour": "1", "capitalDollarsPerDevice": 5}
    rc, out = apply(cluster, cls)
    assert rc != 0 and "set exactly one of dollarsPerDeviceHour and capitalDollarsPerDevice" in out, out
    pol = copy.deepcopy(docs("FleetPolicy")[0])
    pol["spec"]["electricity"]["pue"] = "7"
    rc, out = apply(cluster, pol)
    assert rc != 0 and "pue must be between 1.0 and 3.0" in out, out


def test_kubectl_explain_and_short_names(cluster: Cluster, crds: list[Path]) -> None:
    out = cluster.kubectl("explain", "inferencepools.inferfleet.dev.spec.slo").stdout
    assert "Latency objectives at the 95th percentile" in out
    assert "ttftP95Milliseconds" in out
    out = cluster.kubectl("api-resources", "--api-group=inferfleet.dev", "-o", "wide").stdout
    assert "ifp" in out and "accelclass" in out and "fleetpol" in out
    assert "infpool" not in out


def test_server_side_defaults(cluster: Cluster, crds: list[Path]) -> None:
    pol = copy.deepcopy(docs("FleetPolicy")[0])
    pol["spec"].pop("electricity")
    rc, out = apply(cluster, pol, "-o", "json")
    assert rc == 0, out
    applied = json.loads(out)
    assert applied["spec"]["sloHeadroomPercent"] == 20
