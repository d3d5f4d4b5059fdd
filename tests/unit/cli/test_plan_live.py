"""``inferfleet plan --live`` without a cluster: the operator's rounds are run in memory (``decide``,
its writes applied to the objects as the API server would hold them), then the live plan reads that
state through the CLI (the read itself stubbed) and must reproduce it, or predict the next round
under a what-if.  Bad flags and kubeconfigs exit 2 with one line.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from examples import ROOT, example_docs

from inferfleet.api.simulatedfleet import load_fleet, node_manifests
from inferfleet.cli import main
from inferfleet.cli import plan as plan_cli
from inferfleet.core import planner
from inferfleet.core.observed import Observed
from inferfleet.reconcile.autoscaling import seconds, timestamp
from inferfleet.reconcile.decide import Decision, decide
from inferfleet.reconcile.ports import Snapshot

NODES = node_manifests(load_fleet(ROOT / "examples/simulated-fleet/fleet.yaml"))
T0 = "2026-12-01T10:00:00Z"


class FakeCluster:
    """The objects as the API server would hold them after each of the operator's rounds."""

    def __init__(self, docs: list[dict[str, Any]]) -> None:
        self.docs = docs
        self.deployments: dict[str, dict[str, Any]] = {}
        self.services: dict[str, dict[str, Any]] = {}
        self.clock = seconds(T0)

    def snapshot(self) -> Snapshot:
        policies = [d for d in self.docs if d["kind"] == "FleetPolicy"]
        return Snapshot(
            pools=[d for d in self.docs if d["kind"] == "InferencePool"],
            classes=[d for d in self.docs if d["kind"] == "AcceleratorClass"],
            policy=policies[0] if policies else None,
            nodes=NODES,
            foreign_used={},
            deployments=list(self.deployments.values()),
            services=list(self.services.values()),
        )

    def now(self) -> str:
        self.clock += 15
        return timestamp(self.clock)

    def round(self, observed: dict[str, Observed] | None = None) -> Decision:
        """One operator round, its writes applied (every replica Ready at once)."""
        d = decide(self.snapshot(), self.now(), planner.solve, observed)
        for s in d.statuses:
            for doc in self.docs:
                if doc["kind"] == s.kind and doc["metadata"]["name"] == s.name:
                    doc["status"] = copy.deepcopy(s.status)
        for obj in d.reductions + d.increases:
            name = f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"
            kept = copy.deepcopy(obj)
            if obj["kind"] == "Deployment":
                kept["status"] = {"readyReplicas": obj["spec"]["replicas"]}
                self.deployments[name] = kept
            else:
                self.services[name] = kept
        for _, namespace, name in d.deletes:
            self.deployments.pop(f"{namespace}/{name}", None)
        return d

    def settle(self, observed: dict[str, Observed] | None = None, rounds: int = 6) -> None:
        for _ in range(rounds):
            d = self.round(observed)
            if not (d.reductions or d.increases or d.deletes):
                return  # statuses of autoscaled pools change every round (the evaluation time)
        raise AssertionError("the operator did not settle")

    def placements(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Pool key -> class -> the status placement (less readyReplicas), as the live plan words it."""
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for doc in self.docs:
            if doc["kind"] != "InferencePool":
                continue
            key = f"{doc['metadata']['namespace']}/{doc['metadata']['name']}"
            out[key] = {p["acceleratorClass"]: _as_plan(p) for p in doc["status"]["placements"]}
        return out


def _as_plan(p: dict[str, Any]) -> dict[str, Any]:
    renamed = {"acceleratorClass": "class"}
    return {renamed.get(k, k): v for k, v in p.items() if k != "readyReplicas"}


def live(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, cluster: FakeCluster, *flags: str
) -> dict[str, Any]:
    snap = cluster.snapshot()
    read = {"server": "https://fake", "context": None, "readAt": cluster.now()}
    monkeypatch.setattr(plan_cli, "_read_cluster", lambda _args: (copy.deepcopy(snap), read))
    rc = main(["plan", "--live", "-o", "json", *flags])
    out, err = capsys.readouterr()
    assert rc == 0, err
    doc: dict[str, Any] = json.loads(out)
    return doc


def planned(doc: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    return {f"{p['namespace']}/{p['name']}": {x["class"]: x for x in p["placements"]} for p in doc["pools"]}


@pytest.fixture
def settled() -> FakeCluster:
    cluster = FakeCluster(example_docs())
    cluster.settle()
    return cluster


def test_a_settled_fleet_reports_no_change_and_reproduces_every_status_placement(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, settled: FakeCluster
) -> None:
    doc = live(capsys, monkeypatch, settled)
    assert doc["schema"] == "inferfleet.dev/plan-live/v1"
    assert doc["changed"] is False and doc["writes"] == [] and doc["moves"] == []
    assert planned(doc) == settled.placements()
    assert all(r["delta"] == 0 for p in doc["pools"] for r in p["replicas"])
    t = doc["totals"]
    assert (t["deltaWatts"], t["deltaDollarsPerHour"]) == (0, 0)
    status_watts = sum(d["status"]["watts"] for d in settled.docs if d["kind"] == "InferencePool")
    assert t["currentWatts"] == pytest.approx(status_watts, abs=2)


def test_a_lower_budget_predicts_exactly_what_the_operator_then_does(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, settled: FakeCluster
) -> None:
    doc = live(capsys, monkeypatch, settled, "--power-budget", "hall-b=20")
    assert doc["changed"] is True and doc["writes"]
    assert doc["whatIf"]["powerBudgetKilowatts"] == {"hall-b": 20.0}
    hall_b = next(d for d in doc["domains"] if d["name"] == "hall-b")
    assert hall_b["plannedWatts"] <= 20_000 < hall_b["currentWatts"]
    assert hall_b["budgetWatts"] == 20_000 and hall_b["deltaWatts"] < 0
    policy = next(d for d in settled.docs if d["kind"] == "FleetPolicy")
    policy["spec"]["powerDomains"] = [
        {"name": "hall-a", "budgetKilowatts": 10},
        {"name": "hall-b", "budgetKilowatts": 20},
    ]
    settled.settle()
    assert settled.placements() == planned(doc)
    assert live(capsys, monkeypatch, settled)["changed"] is False


def test_table_and_yaml_say_the_same(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, settled: FakeCluster
) -> None:
    snap = settled.snapshot()
    read = {"server": "https://fake", "context": "lab", "readAt": T0}
    monkeypatch.setattr(plan_cli, "_read_cluster", lambda _args: (snap, read))
    assert main(["plan", "--live", "-o", "yaml", "--power-budget", "hall-b=20"]) == 0
    doc = yaml.safe_load(capsys.readouterr().out)
    assert doc["schema"] == "inferfleet.dev/plan-live/v1" and doc["cluster"]["context"] == "lab"
    assert main(["plan", "--live", "--power-budget", "hall-b=20"]) == 0
    table = capsys.readouterr().out
    for text in (
        "Live plan of https://fake",
        "--power-budget hall-b=20",
        "POWER-DOMAIN",
        "DELTA-KW",
        "Write:",
    ):
        assert text in table, table
    for move in doc["moves"]:
        assert f"Move: {move['pool']}:" in table


def test_autoscaled_demand_is_replayed_from_status_not_the_static_floor(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = example_docs()
    for d in docs:
        if d["kind"] == "FleetPolicy":
            d["spec"].pop("powerDomains", None)  # capacity alone shapes the plan
        if d["kind"] == "InferencePool" and d["metadata"]["name"] == "chat-70b":
            d["spec"]["demand"]["requestsPerSecond"] = 4
            d["spec"]["demand"]["autoscaling"] = {}
    cluster = FakeCluster(docs)
    load = {"chat/chat-70b": Observed(at=cluster.clock, rps=30.0)}
    cluster.settle(load)
    pool = next(d for d in cluster.docs if d["metadata"]["name"] == "chat-70b")
    assert pool["status"]["autoscaling"]["demandRequestsPerSecond"] == 30.0
    doc = live(capsys, monkeypatch, cluster)
    assert doc["changed"] is False
    assert planned(doc) == cluster.placements()
    chat = next(p for p in doc["pools"] if p["name"] == "chat-70b")
    assert chat["demandRequestsPerSecond"] == 30.0
    # the same flag the operator would obey: a what-if demand replaces the recorded one
    lower = live(capsys, monkeypatch, cluster, "--demand", "chat/chat-70b=4")
    assert lower["changed"] is True
    assert sum(r["delta"] for p in lower["pools"] if p["name"] == "chat-70b" for r in p["replicas"]) < 0


def test_children_of_an_invalid_pool_are_left_alone_and_not_a_change(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, settled: FakeCluster
) -> None:
    pool = next(d for d in settled.docs if d["metadata"]["name"] == "embed")
    pool["spec"]["model"]["parameters"] = "a lot"
    doc = live(capsys, monkeypatch, settled)
    assert doc["changed"] is False, doc["writes"]
    assert any("search/embed" in p for p in doc["problems"]), doc["problems"]


def test_a_missing_policy_pauses_planning_and_nothing_would_change(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, settled: FakeCluster
) -> None:
    settled.docs = [d for d in settled.docs if d["kind"] != "FleetPolicy"]
    doc = live(capsys, monkeypatch, settled)
    assert doc["changed"] is False and doc["pools"] == [] and "paused" in doc["paused"]


def test_what_if_names_are_checked_against_the_cluster(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, settled: FakeCluster
) -> None:
    snap = settled.snapshot()
    monkeypatch.setattr(plan_cli, "_read_cluster", lambda _args: (snap, {"server": "s", "readAt": T0}))
    assert main(["plan", "--live", "--price", "h900=3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --price h900: no such AcceleratorClass (known: ") and err.count("\n") == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["plan"], "error: -f/--filename is required (or --live", id="files-or-live"),
        pytest.param(
            ["plan", "-f", "x", "--context", "c"], "error: --context needs --live", id="context-alone"
        ),
        pytest.param(
            ["plan", "--live", "-f", "examples"], "-f/--filename cannot be combined", id="live-and-files"
        ),
        pytest.param(
            ["plan", "--live", "--measurements", "m.yaml"],
            "--measurements cannot be combined",
            id="live-and-replay",
        ),
        pytest.param(
            ["plan", "--live", "--kubeconfig", "/nonexistent"], "/nonexistent: no such file", id="no-file"
        ),
    ],
)
def test_bad_flags_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and message in err and err.count("\n") == 1, err


def _kubeconfig(tmp_path: Path, server: str = "https://127.0.0.1:1", **extra: Any) -> str:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "lab",
        "clusters": [{"name": "c", "cluster": {"server": server, "insecure-skip-tls-verify": True}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "lab", "context": {"cluster": "c", "user": "u"}}],
        **extra,
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        pytest.param(
            lambda p: _kubeconfig(p, **{"current-context": ""}), "error: kubeconfig: ", id="no-context"
        ),
        pytest.param(
            lambda p: (p / "k").write_text("a: [") and str(p / "k"), "error: kubeconfig: ", id="bad-yaml"
        ),
        pytest.param(_kubeconfig, "error: cannot read the cluster at https://127.0.0.1:1", id="down"),
    ],
)
def test_a_kubeconfig_or_cluster_that_cannot_be_used_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, setup: Any, message: str
) -> None:
    assert main(["plan", "--live", "--kubeconfig", setup(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith(message) and err.count("\n") == 1, err


def test_an_unknown_context_exits_2_naming_it(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["plan", "--live", "--kubeconfig", _kubeconfig(tmp_path), "--context", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: kubeconfig: ") and "nope" in err and err.count("\n") == 1, err


def test_the_offline_plan_prints_yaml_too(capsys: pytest.CaptureFixture[str]) -> None:
    fleet = str(ROOT / "examples" / "simulated-fleet")
    assert main(["plan", "-f", str(ROOT / "examples"), "-f", fleet, "-o", "yaml"]) == 0
    doc = yaml.safe_load(capsys.readouterr().out)
    assert doc["schema"] == "inferfleet.dev/plan/v1" and len(doc["pools"]) == 4


def test_overrides_reach_decide_on_top_of_the_rounds_own(settled: FakeCluster) -> None:
    """``decide(overrides=...)``: the what-if budget binds in the operator's own computation."""
    from inferfleet.translate.problem import Overrides

    d = decide(settled.snapshot(), T0, planner.solve, overrides=Overrides(budgets_kilowatts={"hall-b": 20}))
    assert d.plan is not None
    hall_b = next(x for x in d.plan.domains if x.name == "hall-b")
    assert hall_b.budget_watts == 20_000 and hall_b.used_watts <= 20_000
