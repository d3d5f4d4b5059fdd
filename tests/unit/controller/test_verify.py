"""``Verifier``: dry runs only for templates the server has not accepted, refusals that stand
until they expire or their pool or class changes (pure, with a fake writer and clock)."""

from __future__ import annotations

import copy
from typing import Any

from examples import example

from inferfleet.api.acceleratorclass import AcceleratorClass
from inferfleet.api.inferencepool import InferencePool
from inferfleet.controller.verify import Verifier, shape_hash, template_hash
from inferfleet.kube.client import APIRejected, TransientAPIError
from inferfleet.reconcile import children
from inferfleet.reconcile.ports import Obj, Snapshot


def child(pool: str = "p", cls: str = "h100", replicas: int = 1, image: str = "i:1") -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": f"{pool}-{cls}",
            "namespace": "ns",
            "labels": {"inferfleet.dev/pool": pool, "inferfleet.dev/accelerator-class": cls},
            "annotations": {"inferfleet.dev/spec-hash": str(replicas)},
        },
        "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"image": image}]}}},
    }


def snapshot(pool_generation: int = 1, class_generation: int = 1) -> Snapshot:
    pool = {"metadata": {"name": "p", "namespace": "ns", "generation": pool_generation}}
    cls = {"metadata": {"name": "h100", "generation": class_generation}}
    return Snapshot([pool], [cls], None, [], {}, [], [])


class Writer:
    def __init__(self, error: Exception | None = None) -> None:
        self.error, self.dry_runs = error, 0

    def dry_run(self, obj: Obj) -> None:
        self.dry_runs += 1
        if self.error is not None:
            raise self.error


def serial(fn: Any, items: list[Obj]) -> list[Exception | None]:
    out: list[Exception | None] = []
    for item in items:
        try:
            fn(item)
            out.append(None)
        except Exception as exc:
            out.append(exc)
    return out


def verifier(writer: Writer, clock: list[float]) -> Verifier:
    return Verifier(writer, str, retry_s=30, clock=lambda: clock[0])  # type: ignore[arg-type]


def test_scaling_alone_never_needs_another_dry_run() -> None:
    writer, clock = Writer(), [0.0]
    v = verifier(writer, clock)
    assert template_hash(child(replicas=1)) == template_hash(child(replicas=5))
    assert template_hash(child()) != template_hash(child(image="i:2"))
    assert v.check([child(replicas=1)], snapshot(), serial) == []
    assert v.check([child(replicas=5)], snapshot(), serial) == []
    assert writer.dry_runs == 1
    v.check([child(image="i:2")], snapshot(), serial)
    assert writer.dry_runs == 2


def test_a_refusal_stands_until_it_expires_or_the_pool_or_class_changes() -> None:
    writer, clock = Writer(APIRejected("spec.x: Invalid value", status=422)), [0.0]
    v = verifier(writer, clock)
    [refusal] = v.check([child()], snapshot(), serial)
    assert (
        refusal.invalid and refusal.dry_run and (refusal.pool, refusal.accelerator_class) == ("ns/p", "h100")
    )
    assert v.standing(snapshot()) == [refusal] and v.due_s() == 30.5
    clock[0] = 29
    assert v.standing(snapshot()) == [refusal]
    assert v.standing(snapshot(pool_generation=2)) == []  # the pool changed: try again
    v.record([refusal], snapshot())
    assert v.standing(snapshot(class_generation=2)) == []  # the class changed: try again
    v.record([refusal], snapshot())
    clock[0] = 60
    assert v.standing(snapshot()) == [] and v.due_s() is None  # expired: try again


def test_transient_failures_and_services_do_not_stand() -> None:
    writer, clock = Writer(TransientAPIError("timed out", status=503)), [0.0]
    v = verifier(writer, clock)
    service = copy.deepcopy(child())
    service["kind"] = "Service"
    assert v.check([child(), service], snapshot(), serial) == []
    assert writer.dry_runs == 1  # the Service is not dry-run; the Deployment is tried again next time
    v.check([child()], snapshot(), serial)
    assert writer.dry_runs == 2 and v.standing(snapshot()) == []


# ---- one dry run per shape ----------------------------------------------------------------------
def pool_child(pool: str, namespace: str = "ns", image: str = "i:1", cls: str = "h100") -> Obj:
    """A Deployment as ``reconcile.children.build_deployment`` spells one: the pool's name in its
    name, labels, selector, owner reference and environment."""
    pool_labels = {"inferfleet.dev/pool": pool, "app.kubernetes.io/instance": pool}
    pod_labels = {**pool_labels, "inferfleet.dev/accelerator-class": cls}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": f"{pool}-{cls}",
            "namespace": namespace,
            "labels": pod_labels,
            "annotations": {"inferfleet.dev/spec-hash": pool},
            "ownerReferences": [{"kind": "InferencePool", "name": pool, "uid": f"uid-of-{pool}"}],
        },
        "spec": {
            "replicas": 1,
            "selector": {
                "matchLabels": {"inferfleet.dev/pool": pool, "inferfleet.dev/accelerator-class": cls}
            },
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": {
                    "containers": [
                        {"image": image, "env": [{"name": "INFERFLEET_POOL", "value": pool}]},
                    ]
                },
            },
        },
    }


class Named(Writer):
    """Refuses (422) the children of the images in ``refused``, naming the child as the server does."""

    def __init__(self, refused: set[str]) -> None:
        super().__init__()
        self.refused = refused
        self.names: list[str] = []

    def dry_run(self, obj: Obj) -> None:
        self.dry_runs += 1
        self.names.append(obj["metadata"]["name"])
        if obj["spec"]["template"]["spec"]["containers"][0]["image"] in self.refused:
            name = obj["metadata"]["name"]
            raise APIRejected(f'Deployment.apps "{name}" is invalid: image refused', status=422)


def test_pools_of_one_template_share_one_dry_run_and_the_verdict_stands_for_later_pools() -> None:
    writer, clock = Named(set()), [0.0]
    v = verifier(writer, clock)
    assert v.check([pool_child(f"pool-{i:04d}") for i in range(50)], snapshot(), serial) == []
    assert writer.dry_runs == 1
    assert v.check([pool_child("pool-0777")], snapshot(), serial) == []  # a later pool of the shape
    assert writer.dry_runs == 1


def test_what_admission_may_judge_differently_is_another_shape() -> None:
    writer, clock = Named(set()), [0.0]
    v = verifier(writer, clock)
    base = pool_child("pool-0001")
    others = {
        "another namespace (quota, pod security)": pool_child("pool-0001", namespace="other"),
        "another image": pool_child("pool-0001", image="i:2"),
        "another class": pool_child("pool-0001", cls="mi300x"),
        "a longer name (label and name length limits)": pool_child("pool-00001"),
        "a letter where a digit was (DNS-1035 first characters)": pool_child("pool-a001"),
    }
    v.check([base], snapshot(), serial)
    for why, other in others.items():
        before = writer.dry_runs
        v.check([other], snapshot(), serial)
        assert writer.dry_runs == before + 1, why


def test_a_refused_shape_refuses_every_pool_of_it_each_in_its_own_names() -> None:
    writer, clock = Named({"bad:1"}), [0.0]
    v = verifier(writer, clock)
    todo = [
        pool_child("pool-0001", image="bad:1"),
        pool_child("pool-0002", image="bad:1"),
        pool_child("pool-0003"),
    ]
    refusals = v.check(todo, snapshot(), serial)
    assert writer.dry_runs == 2  # one per shape
    assert [(r.pool, r.name, r.message) for r in refusals] == [
        ("ns/pool-0001", "pool-0001-h100", 'Deployment.apps "pool-0001-h100" is invalid: image refused'),
        ("ns/pool-0002", "pool-0002-h100", 'Deployment.apps "pool-0002-h100" is invalid: image refused'),
    ]
    assert all(r.invalid and r.dry_run and r.accelerator_class == "h100" for r in refusals)
    v.check([pool_child("pool-0004", image="bad:1")], snapshot(), serial)
    assert writer.dry_runs == 3  # a refused shape is not remembered as accepted: judged again


def test_the_operators_own_deployments_of_two_pools_of_one_template_are_one_shape() -> None:
    # the builder, not a hand-made manifest: a new field carrying the pool's name shows up here
    def built(name: str, uid: str, namespace: str = "chat") -> Obj:
        doc = example("InferencePool", "chat-70b")
        doc["metadata"].update(name=name, uid=uid, namespace=namespace)
        cls = AcceleratorClass.model_validate(example("AcceleratorClass", "h100"))
        return children.build_deployment(InferencePool.model_validate(doc), cls, 2, 2)

    assert shape_hash(built("chat-70b", "1234")) == shape_hash(built("chat-71c", "5678"))
    assert shape_hash(built("chat-70b", "1234")) != shape_hash(built("chat-70b", "1234", "other"))
    assert template_hash(built("chat-70b", "1234")) != template_hash(built("chat-71c", "5678"))
