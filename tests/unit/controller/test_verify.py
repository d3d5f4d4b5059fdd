"""``Verifier``: dry runs only for templates the server has not accepted, refusals that stand
until they expire or their pool or class changes (pure, with a fake writer and clock)."""

from __future__ import annotations

import copy
from typing import Any

from inferfleet.controller.verify import Verifier, template_hash
from inferfleet.kube.client import APIRejected, TransientAPIError
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
