"""Correction factors: learnt from evidence only, clamped, and used by the planner."""

from __future__ import annotations

import dataclasses

from inferfleet.core.correction import MAX, Factor, update
from inferfleet.core.observed import ClassSample
from inferfleet.core.performance import estimate
from inferfleet.core.problem import build_problem
from inferfleet.core.reference import reference_class
from inferfleet.core.types import SLO, ModelSpec, Policy, Pool, Workload

SAMPLE = ClassSample("h100", ttft_p95_s=0.3, tpot_p95_s=0.045, requests=500, series=2)


def test_a_class_half_again_as_slow_converges_to_one_and_a_half() -> None:
    f = Factor()
    for _ in range(12):
        f = update(f, SAMPLE, 0.2, 0.03, utilisation=0.8, all_serving=True)
    assert abs(f.ttft - 1.5) < 1e-3 and abs(f.tpot - 1.5) < 1e-3 and f.updates == 12


def test_no_evidence_teaches_nothing() -> None:
    f = Factor(1.2, 1.3, 4)
    assert update(f, SAMPLE, 0.2, 0.03, utilisation=0.8, all_serving=False) == f  # a replica is loading
    assert update(f, SAMPLE, 0.2, 0.03, utilisation=0.2, all_serving=True) == f  # lightly loaded
    assert update(f, SAMPLE, 0.2, 0.03, utilisation=0.97, all_serving=True) == f  # queueing past the knee
    few = dataclasses.replace(SAMPLE, requests=5)
    assert update(f, few, 0.2, 0.03, utilisation=0.8, all_serving=True) == f
    none = dataclasses.replace(SAMPLE, ttft_p95_s=None, tpot_p95_s=None)
    assert update(f, none, 0.2, 0.03, utilisation=0.8, all_serving=True) == f
    # the window still holds the time before the last scaling: a transient, not a speed
    assert update(f, SAMPLE, 0.2, 0.03, utilisation=0.8, all_serving=True, settled=False) == f


def test_ttft_is_not_learnt_while_requests_stand_queued() -> None:
    f = Factor(1.2, 1.3, 4)
    queued = update(f, SAMPLE, 0.2, 0.03, utilisation=0.8, all_serving=True, queue_per_replica=3.0)
    assert queued.ttft == 1.2 and queued.tpot > 1.3 and queued.updates == 5  # TPOT still is
    drained = update(f, SAMPLE, 0.2, 0.03, utilisation=0.8, all_serving=True, queue_per_replica=0.1)
    assert drained.ttft > 1.2


def test_factors_are_clamped_to_one_and_max() -> None:
    fast = dataclasses.replace(SAMPLE, ttft_p95_s=0.01, tpot_p95_s=0.001)
    slow = dataclasses.replace(SAMPLE, ttft_p95_s=100.0, tpot_p95_s=100.0)
    f = Factor()
    for _ in range(20):
        f = update(f, fast, 0.2, 0.03, utilisation=0.9, all_serving=True)
    assert (f.ttft, f.tpot) == (1.0, 1.0)
    for _ in range(20):
        f = update(f, slow, 0.2, 0.03, utilisation=0.9, all_serving=True)
    assert (f.ttft, f.tpot) == (MAX, MAX)


def test_the_planner_plans_a_slow_class_as_slow() -> None:
    h100 = reference_class("H100-SXM5-80GB")
    model, work, slo = (
        ModelSpec("llama-3.1-70b", 70.6, "fp8"),
        Workload(512, 256),
        SLO(ttft_s=2.0, tpot_s=0.05),
    )
    pool = Pool("a/p", model, slo, work, demand_rps=20.0)
    plain = build_problem([pool], [h100], Policy()).options["a/p"][0]
    slow = build_problem([dataclasses.replace(pool, slo_factors={h100.name: (1.5, 1.5)})], [h100], Policy())
    corrected = slow.options["a/p"][0]
    # less served per device (here a larger tensor-parallel replica is needed): dearer per req/s
    assert corrected.rps / corrected.devices < plain.rps / plain.devices
    # planned as if the SLO were 1.5x tighter on the model
    tight = estimate(model, work, SLO(ttft_s=2.0 / 1.5, tpot_s=0.05 / 1.5), h100)
    assert corrected.rps == getattr(tight, "rps", None)
