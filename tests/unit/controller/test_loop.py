"""The planning loop with a fake writer: phase order, a failed reduction holds increases back,
the policy's interval, leadership, and back-off after a failing round."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from examples import ROOT, example_docs

from inferfleet.api.simulatedfleet import load_fleet, node_manifests
from inferfleet.controller.loop import PlanningLoop
from inferfleet.core import types as core
from inferfleet.kube.client import APIRejected
from inferfleet.reconcile.ports import Obj, Snapshot


class FakeWriter:
    def __init__(self, fail_reductions: bool = False) -> None:
        self.calls: list[tuple[str, str]] = []
        self.dry_runs: list[str] = []
        self.fail_reductions = fail_reductions
        self.lock = threading.Lock()

    def apply(self, obj: Obj) -> None:
        replicas = obj.get("spec", {}).get("replicas")
        if self.fail_reductions and obj["kind"] == "Deployment" and replicas == 0:
            raise RuntimeError("422 refused")
        with self.lock:
            self.calls.append(("apply", obj["kind"]))

    def dry_run(self, obj: Obj) -> None:
        with self.lock:
            self.dry_runs.append(obj["metadata"]["name"])

    def delete(self, kind: str, namespace: str, name: str) -> None:
        if self.fail_reductions:
            raise RuntimeError("403 forbidden")
        with self.lock:
            self.calls.append(("delete", kind))

    def patch_status(self, kind: str, namespace: str | None, name: str, status: Obj) -> None:
        with self.lock:
            self.calls.append(("status", kind))

    def event(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        with self.lock:
            self.calls.append(("event", reason))


class Metrics:
    def __init__(self) -> None:
        self.errors: list[str] = []
        self.plans = 0

    def record_plan(self, plan: core.Plan, duration_s: float, ready: Mapping[tuple[str, str], int]) -> None:
        self.plans += 1

    def record_error(self, stage: str) -> None:
        self.errors.append(stage)

    def record_observed(self, observed: Mapping[str, Any]) -> None:
        pass

    def record_energy(self, per_pool: Mapping[str, Any], fleet: Any) -> None:
        self.energy = (dict(per_pool), fleet)


def _snapshot(deployments: list[Obj] | None = None, interval: int | None = None) -> Snapshot:
    docs = example_docs()
    policy = next(d for d in docs if d["kind"] == "FleetPolicy")
    if interval is not None:
        policy["spec"].setdefault("planning", {})["intervalSeconds"] = interval
    return Snapshot(
        pools=[d for d in docs if d["kind"] == "InferencePool"],
        classes=[d for d in docs if d["kind"] == "AcceleratorClass"],
        policy=policy,
        nodes=node_manifests(load_fleet(ROOT / "examples/simulated-fleet/fleet.yaml")),
        foreign_used={},
        deployments=deployments or [],
        services=[],
    )


def _phases(calls: list[tuple[str, str]]) -> list[str]:
    order: list[str] = []
    for verb, _ in calls:
        if not order or order[-1] != verb:
            order.append(verb)
    return order


def test_a_fresh_fleet_is_written_increases_then_statuses_then_events() -> None:
    writer, metrics = FakeWriter(), Metrics()
    loop = PlanningLoop(_snapshot, writer, metrics)
    decision = loop.reconcile_once()
    loop.stop()
    assert decision.writes == len(writer.calls) > 0
    assert _phases(writer.calls) == ["apply", "status", "event"]
    assert metrics.plans == 1 and metrics.errors == []


def test_reductions_and_deletions_come_before_increases() -> None:
    first = PlanningLoop(_snapshot, FakeWriter())
    placed = first.reconcile_once()
    first.stop()
    running = [dict(o, status={"readyReplicas": 1}) for o in placed.increases if o["kind"] == "Deployment"]
    # a stranger Deployment of a pool on a class the plan no longer uses must be deleted, and one
    # pool's replicas are set too high so the plan reduces them
    extra = dict(running[0], metadata=dict(running[0]["metadata"], name="gone"))
    extra["metadata"]["labels"] = dict(
        extra["metadata"]["labels"], **{"inferfleet.dev/accelerator-class": "l4x"}
    )
    high = dict(running[1], spec=dict(running[1]["spec"], replicas=running[1]["spec"]["replicas"] + 5))
    writer = FakeWriter()
    loop = PlanningLoop(lambda: _snapshot([extra, high, *running[2:]]), writer)
    decision = loop.reconcile_once()
    loop.stop()
    assert decision.reductions and decision.deletes
    verbs = [v for v, _ in writer.calls]
    last_reduction = max(i for i, (v, k) in enumerate(writer.calls) if v == "delete")
    first_increase = min(
        (i for i, (v, k) in enumerate(writer.calls) if v == "apply" and i > len(decision.reductions)),
        default=len(verbs),
    )
    assert verbs[: len(decision.reductions)] == ["apply"] * len(decision.reductions)
    assert last_reduction < first_increase


def test_a_refused_reduction_holds_every_increase_back() -> None:
    first = PlanningLoop(_snapshot, FakeWriter())
    placed = first.reconcile_once()
    first.stop()
    running = [dict(o, status={"readyReplicas": 1}) for o in placed.increases if o["kind"] == "Deployment"]
    # a deployment of a class no pool should use any more, kept at 0 by a failing writer
    docs = _snapshot(running)
    writer = FakeWriter(fail_reductions=True)
    pools = [dict(p) for p in docs.pools]
    for p in pools:  # no demand at all: every Deployment is removed (and the writer refuses)
        p["spec"] = dict(p["spec"], demand=dict(p["spec"]["demand"], requestsPerSecond=0), minReplicas=0)
    snap = Snapshot(pools, docs.classes, docs.policy, docs.nodes, {}, running, [])
    loop = PlanningLoop(lambda: snap, writer, Metrics())
    with pytest.raises(RuntimeError, match="increases deferred"):
        loop.reconcile_once()
    loop.stop()
    assert writer.calls == []  # no increase, no status claiming a placement that did not happen


def test_the_policys_interval_sets_the_resync_period() -> None:
    loop = PlanningLoop(lambda: _snapshot(interval=17), FakeWriter())
    loop.reconcile_once()
    loop.stop()
    assert loop.resync_s == 17.0


def _run_briefly(loop: PlanningLoop, seconds: float = 0.6) -> None:
    loop.start()
    time.sleep(seconds)
    loop.stop()


def test_a_follower_never_writes() -> None:
    writer = FakeWriter()
    reads: list[int] = []

    def read() -> Snapshot:
        reads.append(1)
        return _snapshot()

    _run_briefly(PlanningLoop(read, writer, is_leader=lambda: False, debounce_s=0.01, max_delay_s=0.05))
    assert writer.calls == [] and reads == []


def test_a_failing_round_is_counted_and_retried() -> None:
    metrics = Metrics()
    attempts: list[float] = []

    def read() -> Any:
        attempts.append(time.monotonic())
        raise ConnectionError("API server unreachable")

    _run_briefly(PlanningLoop(read, FakeWriter(), metrics, debounce_s=0.01, max_delay_s=0.05), 1.6)
    assert metrics.errors and set(metrics.errors) == {"plan"}
    assert len(attempts) >= 2  # retried after the 1 s back-off


class RefusingWriter(FakeWriter):
    """The API server refuses every Deployment of one pool (as for an env name it rejects), or only
    those on ``classes``; ``dry_runs_pass``: its dry runs accept them (a policy that changed between
    the dry run and the write)."""

    def __init__(
        self,
        pool: str,
        refuse_status: bool = False,
        classes: frozenset[str] | None = None,
        dry_runs_pass: bool = False,
        unreachable: bool = False,
    ) -> None:
        super().__init__()
        self.pool, self.refuse_status, self.unreachable = pool, refuse_status, unreachable
        self.classes, self.dry_runs_pass = classes, dry_runs_pass
        self.statuses: dict[str, Obj] = {}
        self.events: list[tuple[str, str]] = []
        self.applied: list[str] = []

    def _refuse(self, obj: Obj) -> None:
        obj_labels = obj["metadata"]["labels"]
        if obj["kind"] != "Deployment" or obj_labels["inferfleet.dev/pool"] != self.pool:
            return
        if self.classes is None or obj_labels["inferfleet.dev/accelerator-class"] in self.classes:
            raise APIRejected(
                'Deployment.apps "x" is invalid: spec.template.spec.containers[0].env[1].name: '
                'Duplicate value: "A"',
                status=422,
            )

    def dry_run(self, obj: Obj) -> None:
        if not self.dry_runs_pass:
            self._refuse(obj)
        super().dry_run(obj)

    def apply(self, obj: Obj) -> None:
        self._refuse(obj)
        with self.lock:
            self.applied.append(obj["metadata"]["name"])
        super().apply(obj)

    def patch_status(self, kind: str, namespace: str | None, name: str, status: Obj) -> None:
        if self.refuse_status and kind == "InferencePool":
            raise APIRejected("status.placements[0].acceleratorClass: Too long", status=422)
        if self.unreachable and kind == "InferencePool":
            raise ConnectionRefusedError(111, "Connection refused")
        with self.lock:
            self.statuses[f"{kind}/{name}"] = status

    def event(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        with self.lock:
            self.events.append((f"{obj['kind']}/{obj['metadata']['name']}", f"{reason}: {message}"))


def _reading_back(writer: RefusingWriter) -> Callable[[], Snapshot]:
    """The snapshot with the statuses the loop wrote, read back like the API server would."""
    base = _snapshot()

    def read() -> Snapshot:
        pools = [
            dict(p, status=writer.statuses.get(f"InferencePool/{p['metadata']['name']}", {}))
            for p in base.pools
        ]
        return Snapshot(pools, base.classes, base.policy, base.nodes, {}, [], [])

    return read


def _placed(writer: RefusingWriter, pool: str) -> dict[str, Any]:
    return next(c for c in writer.statuses[f"InferencePool/{pool}"]["conditions"] if c["type"] == "Placed")


def test_a_child_refused_in_a_dry_run_is_never_written_and_is_said_in_status_and_one_event() -> None:
    writer = RefusingWriter("chat-70b")
    read = _reading_back(writer)
    loop = PlanningLoop(read, writer)
    for _ in range(4):  # each round re-plans around the refused classes until none is left
        loop.reconcile_once()
    loop.stop()
    standing = loop.verifier.standing(read())
    assert standing and all(r.dry_run and r.invalid and r.pool == "chat/chat-70b" for r in standing)
    assert not [n for n in writer.applied if n.startswith("chat-70b-")]  # refused before any write
    placed = _placed(writer, "chat-70b")
    assert (placed["status"], placed["reason"]) == ("False", "ApplyFailed")
    assert "refused to apply Deployment" in placed["message"] and "Duplicate value" in placed["message"]
    refusals = [m for o, m in writer.events if o == "InferencePool/chat-70b" and m.startswith("ApplyFailed")]
    assert len(refusals) == 1
    assert not [m for o, m in writer.events if o == "InferencePool/chat-70b" and m.startswith("Placed")]
    assert (
        _placed(writer, "summarise-batch")["reason"] != "ApplyFailed"
    )  # one pool's refusal is not another's


def test_a_class_refused_in_a_dry_run_is_left_out_and_the_pool_placed_on_others() -> None:
    first = PlanningLoop(_snapshot, FakeWriter()).reconcile_once()
    assert first.plan is not None
    used = next(pp for pp in first.plan.pools if pp.key == "chat/chat-70b")
    smallest = min((p for p in used.placements if p.replicas), key=lambda p: p.replicas)
    refused = {smallest.accelerator_class}  # the others can carry the pool without it
    writer = RefusingWriter("chat-70b", classes=frozenset(refused))
    loop = PlanningLoop(_reading_back(writer), writer)
    decision = loop.reconcile_once()
    loop.reconcile_once()
    loop.stop()
    assert decision.plan is not None
    again = next(pp for pp in decision.plan.pools if pp.key == "chat/chat-70b")
    now_on = {p.accelerator_class for p in again.placements if p.replicas}
    assert now_on and not now_on & refused  # its devices and watts are counted where it can run
    placed = _placed(writer, "chat-70b")
    assert (
        placed["status"] == "True"
        and "left out" in placed["message"]
        and "Duplicate value" in placed["message"]
    )
    said = [m for o, m in writer.events if o == "InferencePool/chat-70b" and m.startswith("ApplyFailed")]
    assert len(said) == 1


def test_a_write_refused_after_its_dry_run_passed_stands_like_a_dry_run_refusal() -> None:
    writer = RefusingWriter("chat-70b", dry_runs_pass=True)
    read = _reading_back(writer)
    loop = PlanningLoop(read, writer)
    loop.reconcile_once()
    assert {(r.pool, r.kind, r.verb) for r in loop.refused} == {("chat/chat-70b", "Deployment", "apply")}
    assert "Duplicate value" in loop.refused[0].message and "422" in loop.refused[0].message
    standing = loop.verifier.standing(read())
    assert {r.name for r in standing} == {r.name for r in loop.refused}
    written = len(writer.applied)
    loop.reconcile_once()  # the refused class is not re-planned next round
    loop.stop()
    assert not set(writer.applied[written:]) & {r.name for r in standing}


def test_a_refused_status_becomes_one_event() -> None:
    writer = RefusingWriter("nobody", refuse_status=True)
    loop = PlanningLoop(_snapshot, writer)
    loop.reconcile_once()
    loop.reconcile_once()
    loop.stop()
    said = [m for _, m in writer.events if m.startswith("StatusRefused")]
    pools = {p["metadata"]["name"] for p in _snapshot().pools}
    assert len(said) == len(pools) and all("Too long" in m for m in said)


def test_a_status_write_that_gets_no_answer_is_not_said_to_be_refused() -> None:
    writer = RefusingWriter("nobody", unreachable=True)
    loop = PlanningLoop(_snapshot, writer)
    loop.reconcile_once()
    loop.stop()
    assert not [m for _, m in writer.events if m.startswith("StatusRefused")]
    assert not [k for k in writer.statuses if k.startswith("InferencePool/")]  # nothing was written
    assert [m for _, m in writer.events if m.startswith("Placed")]  # the round went on


def test_a_round_that_reads_a_snapshot_older_than_its_own_statuses_says_nothing_twice() -> None:
    writer = FakeWriter()
    loop = PlanningLoop(_snapshot, writer)  # statuses never read back: every round sees the old ones
    loop.reconcile_once()
    first = [c for c in writer.calls if c[0] == "event"]
    loop.reconcile_once()
    loop.stop()
    assert first and [c for c in writer.calls if c[0] == "event"] == first


class PinRefusingWriter(RefusingWriter):
    """Every pin is refused (as an admission policy on pods would)."""

    def pin(self, namespace: str, name: str, node: str | None) -> None:
        raise APIRejected(f'pods "{name}" is forbidden: pinning denied by policy', status=403)


def test_a_refused_pin_is_said_in_the_pools_status_not_only_in_a_log() -> None:
    from inferfleet.api import labels

    writer = PinRefusingWriter("nobody")
    base = _reading_back(writer)
    first = PlanningLoop(base, FakeWriter()).reconcile_once()
    assert first.plan is not None
    cls = next(
        p.accelerator_class
        for pp in first.plan.pools
        if pp.key == "chat/chat-70b"
        for p in pp.placements
        if p.replicas
    )
    gated = {
        "metadata": {
            "name": "chat-70b-x-1",
            "namespace": "chat",
            "labels": {
                labels.POOL: "chat-70b",
                labels.ACCELERATOR_CLASS: cls,
                labels.MANAGED_BY: labels.MANAGER,
            },
        },
        "spec": {"schedulingGates": [{"name": labels.PLACEMENT_GATE}]},
        "status": {"phase": "Pending"},
    }

    def read() -> Snapshot:
        snap = base()
        return Snapshot(snap.pools, snap.classes, snap.policy, snap.nodes, {}, [], [], pending_pods=[gated])

    loop = PlanningLoop(read, writer)
    loop.reconcile_once()
    assert [(r.pool, r.kind, r.verb) for r in loop.refused] == [("chat/chat-70b", "Pod", "pin")]
    loop.reconcile_once()  # the next round says it
    loop.stop()
    placed = _placed(writer, "chat-70b")
    assert (placed["status"], placed["reason"]) == ("False", "ApplyFailed")
    assert "refused to pin Pod chat-70b-x-1" in placed["message"] and "denied by policy" in placed["message"]
    assert [m for o, m in writer.events if o == "InferencePool/chat-70b" and m.startswith("ApplyFailed")]


class ReplicaSetWriter(FakeWriter):
    """A Deployment applied makes its gated replicas at once (the ReplicaSet controller, fast);
    pins are recorded and the pinned pods leave the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.pods: dict[str, Obj] = {}
        self.pins: list[tuple[str, str | None]] = []

    def apply(self, obj: Obj) -> None:
        from inferfleet.api import labels

        super().apply(obj)
        if obj["kind"] != "Deployment":
            return
        meta = obj["metadata"]
        with self.lock:
            for i in range(obj["spec"]["replicas"]):
                name = f"{meta['name']}-{i}"
                self.pods.setdefault(
                    name,
                    {
                        "metadata": {"name": name, "namespace": meta["namespace"], "labels": meta["labels"]},
                        "spec": {"schedulingGates": [{"name": labels.PLACEMENT_GATE}]},
                        "status": {"phase": "Pending"},
                    },
                )

    def pin(self, namespace: str, name: str, node: str | None) -> None:
        from inferfleet.api import labels

        with self.lock:
            self.calls.append(("pin", name))
            self.pins.append((name, node))
            self.pods[name]["spec"] = {"nodeSelector": {labels.HOSTNAME: node}}


def test_replicas_a_round_creates_are_pinned_by_its_end_to_the_nodes_it_planned() -> None:
    writer = ReplicaSetWriter()

    def read() -> Snapshot:
        snap = _snapshot()
        with writer.lock:
            pending = [dict(p) for p in writer.pods.values()]
        return Snapshot(snap.pools, snap.classes, snap.policy, snap.nodes, {}, [], [], pending_pods=pending)

    loop = PlanningLoop(read, writer)
    decision = loop.reconcile_once()
    loop.stop()
    assert decision.pins == []  # no pod existed when the round planned
    assert _phases(writer.calls) == ["apply", "status", "event", "pin"]
    assert sorted(n for n, _ in writer.pins) == sorted(writer.pods)  # every new replica, once
    room = {k: dict(nodes) for k, nodes in decision.assignment.items()}
    for name, node in writer.pins:
        labels_ = writer.pods[name]["metadata"]["labels"]
        key = (
            f"{writer.pods[name]['metadata']['namespace']}/{labels_['inferfleet.dev/pool']}",
            labels_["inferfleet.dev/accelerator-class"],
        )
        assert node is not None and room[key].get(node, 0) > 0, (name, node)
        room[key][node] -= 1
    # the next round finds them pinned: nothing pinned twice
    again = PlanningLoop(read, writer)
    assert again.reconcile_once().pins == []
    again.stop()


def test_a_pin_the_cache_has_not_shown_yet_is_never_made_twice_and_keeps_its_nodes_room() -> None:
    # at 5,000 pools the watch lagged behind the pins: the next round saw pinned pods still at the
    # gate and pinned them again elsewhere (422: an ungated pod's nodeSelector cannot change)
    writer = ReplicaSetWriter()
    stale: dict[str, Obj] = {}

    def read() -> Snapshot:
        snap = _snapshot()
        with writer.lock:
            for name, pod in writer.pods.items():
                stale.setdefault(name, dict(pod, spec=dict(pod["spec"])))  # as first heard: gated
            pending = list(stale.values())
        return Snapshot(snap.pools, snap.classes, snap.policy, snap.nodes, {}, [], [], pending_pods=pending)

    loop = PlanningLoop(read, writer)
    loop.reconcile_once()
    pinned = list(writer.pins)
    assert pinned and all(node is not None for _, node in pinned)
    second = loop.reconcile_once()
    loop.stop()
    assert second.pins == [] and writer.pins == pinned  # nothing pinned twice
