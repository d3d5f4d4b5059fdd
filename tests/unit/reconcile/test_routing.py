"""A size-aware pool's class Services and routing ConfigMap: made from the plan by ``decide``,
unchanged when the plan is, removed when a class leaves or the pool stops splitting."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import yaml
from examples import ROOT

from inferfleet.api import labels
from inferfleet.api.routing import ROUTING_KEY, RoutingTable
from inferfleet.api.simulatedfleet import load_fleet, node_manifests
from inferfleet.core import planner
from inferfleet.reconcile.decide import Decision, decide
from inferfleet.reconcile.ports import Snapshot

MIX = ROOT / "examples/request-mix/chat-8b-mix.yaml"


def docs(routing: str = "SizeAware") -> list[dict[str, Any]]:
    """The example classes and the request-mix example pool alone (no budget binds)."""
    out = [d for d in yaml.safe_load_all((ROOT / "examples/10-accelerator-classes.yaml").read_text()) if d]
    pool = yaml.safe_load(Path(MIX).read_text())
    pool["spec"]["demand"]["routing"] = routing
    pool["metadata"].update(uid="u-1", generation=4)
    return [*out, pool]


def snapshot(objs: list[dict[str, Any]]) -> Snapshot:
    return Snapshot(
        pools=[d for d in objs if d["kind"] == "InferencePool"],
        classes=[d for d in objs if d["kind"] == "AcceleratorClass"],
        policy=None,
        nodes=node_manifests(load_fleet(ROOT / "examples/simulated-fleet/fleet.yaml"), 1),
        foreign_used={},
        deployments=[],
        services=[],
    )


def run(snap: Snapshot) -> Decision:
    return decide(snap, "2026-12-02T10:00:00Z", planner.solve)


def children_of(decision: Decision) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["kind"], o["metadata"]["name"]): o for o in decision.increases + decision.reductions}


def as_stored(decision: Decision, kind: str) -> list[dict[str, Any]]:
    return [copy.deepcopy(o) for o in decision.increases if o["kind"] == kind]


def test_the_split_becomes_a_service_per_class_and_a_routing_table_that_matches_the_status() -> None:
    first = run(snapshot(docs()))
    made = children_of(first)
    classes = sorted(name.removeprefix("chat-8b-mix-") for kind, name in made if kind == "Deployment")
    assert classes == ["h100", "l4"], "the example's plan splits its long prompts onto an L4 replica"
    for cls in classes:
        svc = made[("Service", f"chat-8b-mix-{cls}")]
        assert svc["spec"]["selector"] == {labels.POOL: "chat-8b-mix", labels.ACCELERATOR_CLASS: cls}
        assert svc["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    assert made[("Service", "chat-8b-mix")]["spec"]["selector"] == {labels.POOL: "chat-8b-mix"}
    table = RoutingTable.model_validate_json(made[("ConfigMap", "chat-8b-mix-routing")]["data"][ROUTING_KEY])
    assert table.generation == 4 and table.service == "chat-8b-mix" and table.port == 8000
    status = next(s.status for s in first.statuses if s.kind == "InferencePool")
    routed = {p["acceleratorClass"]: p["bucketRequestsPerSecond"] for p in status["placements"]}
    assert len(table.buckets) == 3 and all(len(r) == 3 for r in routed.values())
    for i, bucket in enumerate(table.buckets):
        total = sum(r[i] for r in routed.values())
        want = {c: r[i] / total for c, r in routed.items() if r[i] > 0}
        got = {b.accelerator_class: b.share for b in bucket.backends}
        assert got.keys() == want.keys() and all(abs(got[c] - want[c]) < 1e-3 for c in got)
        assert all(b.service == f"chat-8b-mix-{b.accelerator_class}" for b in bucket.backends)
    assert abs(sum(sum(r) for r in routed.values()) - 30) < 0.01, "all of the demand is routed"

    # applied and read back: the next round writes none of them again
    again = run(
        Snapshot(
            **{
                **snapshot(docs()).__dict__,
                "services": as_stored(first, "Service"),
                "config_maps": as_stored(first, "ConfigMap"),
            }
        )
    )
    assert not [o for o in again.increases if o["kind"] in ("Service", "ConfigMap")]
    assert again.deletes == []


def test_a_pool_that_stops_splitting_loses_its_class_services_and_table_but_keeps_its_service() -> None:
    first = run(snapshot(docs()))
    stored = {"services": as_stored(first, "Service"), "config_maps": as_stored(first, "ConfigMap")}
    mixed = run(Snapshot(**{**snapshot(docs("Mixed")).__dict__, **stored}))
    assert sorted(mixed.deletes) == [
        ("ConfigMap", "inference", "chat-8b-mix-routing"),
        *sorted(("Service", "inference", f"chat-8b-mix-{c}") for c in ("h100", "l4")),
    ]
    status = next(s.status for s in mixed.statuses if s.kind == "InferencePool")
    assert all("bucketRequestsPerSecond" not in p for p in status["placements"])


def test_an_invalid_pool_keeps_its_routing_children() -> None:
    first = run(snapshot(docs()))
    stored = {"services": as_stored(first, "Service"), "config_maps": as_stored(first, "ConfigMap")}
    broken = docs()
    broken[-1]["spec"]["demand"]["requestMix"][1]["minInputTokens"] = 100  # overlaps bucket 0
    decision = run(Snapshot(**{**snapshot(broken).__dict__, **stored}))
    assert decision.deletes == [] and not [o for o in decision.increases if o["kind"] == "ConfigMap"]
    status = next(s.status for s in decision.statuses if s.kind == "InferencePool")
    assert any("requestMix buckets must not overlap" in c["message"] for c in status["conditions"])


def test_the_table_is_json_a_router_can_read() -> None:
    made = children_of(run(snapshot(docs())))
    doc = json.loads(made[("ConfigMap", "chat-8b-mix-routing")]["data"][ROUTING_KEY])
    assert set(doc) == {"pool", "service", "port", "generation", "buckets"}
    assert set(doc["buckets"][0]) == {
        "minInputTokens",
        "maxInputTokens",
        "minOutputTokens",
        "maxOutputTokens",
        "backends",
    }
