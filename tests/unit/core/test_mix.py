"""core.mix: bucket checks, per-bucket rates on a class, the mixture's rate and the best split."""

from __future__ import annotations

import dataclasses
import math
import random

import numpy as np
import pytest

from inferfleet.core.mix import best_split, bucket_rates, check_buckets, mixture_rps, split_and_margins
from inferfleet.core.performance import estimate, estimate_on_devices
from inferfleet.core.problem import build_problem
from inferfleet.core.reference import REFERENCE_HARDWARE
from inferfleet.core.types import (
    SLO,
    AcceleratorClass,
    Bucket,
    Estimate,
    ModelSpec,
    Policy,
    Pool,
    Profile,
    ProfilePoint,
    Routing,
    Unfit,
    Workload,
)
from inferfleet_dev.simulate.calibrate import calibrate
from inferfleet_dev.simulate.engine import Replica, Request

H100 = AcceleratorClass("h100", REFERENCE_HARDWARE["H100-SXM5-80GB"], 8, 3.0, "dc", node_free_devices=(8, 8))
MODEL = ModelSpec("llama-8b", 8.0)
SHORT, LONG = Workload(200, 100), Workload(4000, 500)


def pool(*buckets: Bucket, routing: Routing = Routing.SIZE_AWARE, slo: SLO | None = None) -> Pool:
    return Pool("ns/p", MODEL, slo or SLO(0.5, 0.05), SHORT, 10.0, buckets=buckets, routing=routing)


def test_mixture_is_the_share_weighted_harmonic_mean() -> None:
    # 30% at 10 req/s, 70% at 2 req/s: 0.03 + 0.35 = 0.38 replica-seconds a request
    assert mixture_rps([0.3, 0.7], [10.0, 2.0]) == pytest.approx(1 / 0.38)
    assert mixture_rps([1.0], [7.3]) == 7.3  # one bucket: its own rate, exactly
    assert mixture_rps([0.5, 0.5], [4.0, 0.0]) == 0.0  # a bucket no replica serves


@pytest.mark.parametrize(
    ("buckets", "message"),
    [
        ((Bucket(SHORT, 0.5), Bucket(LONG, 0.4)), "pool ns/p: bucket shares sum to 0.9, not 1"),
        ((Bucket(SHORT, 1.2), Bucket(LONG, -0.2)), "pool ns/p: bucket 1 (4000 in, 500 out): share must"),
        (
            (Bucket(SHORT, 0.5), Bucket(SHORT, 0.5)),
            "bucket 1 (200 in, 100 out): the same request size as bucket 0",
        ),
        ((Bucket(Workload(0, 10), 1.0),), "bucket 0 (0 in, 10 out): needs input tokens > 0"),
    ],
)
def test_bad_buckets_name_the_pool_and_bucket(buckets: tuple[Bucket, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_buckets(pool(*buckets))
    with pytest.raises(ValueError, match="pool ns/p"):
        build_problem([pool(*buckets)], [H100], Policy())


def test_bucket_rates_are_each_buckets_roofline_at_one_device_count() -> None:
    p = pool(Bucket(SHORT, 0.8), Bucket(LONG, 0.2))
    got = bucket_rates(p, p.slo, H100)
    assert not isinstance(got, Unfit)
    est, rates = got
    long_alone = estimate(MODEL, LONG, p.slo, H100)
    assert isinstance(long_alone, Estimate)
    assert est.devices >= long_alone.devices
    for b, r in zip(p.buckets, rates, strict=True):
        at = estimate_on_devices(MODEL, b.workload, p.slo, H100, est.devices)
        assert isinstance(at, Estimate)
        assert r == pytest.approx(at.rps)
    assert rates[0] > rates[1] > 0  # short requests are served faster
    assert est.rps == pytest.approx(1 / (0.8 / rates[0] + 0.2 / rates[1]))


def test_a_measured_bucket_overrides_the_roofline_for_that_bucket_only() -> None:
    prof = Profile("llama-8b", devices=1, points=(ProfilePoint(256, 128, 42.0),))
    cls = dataclasses.replace(H100, profiles=(prof,))
    p = pool(Bucket(SHORT, 0.5), Bucket(LONG, 0.5))
    got = bucket_rates(p, p.slo, cls)
    assert not isinstance(got, Unfit)
    _, rates = got
    assert rates[0] == 42.0  # the covering profile bucket
    roof = estimate_on_devices(MODEL, LONG, p.slo, cls, 1)
    assert isinstance(roof, Estimate) and rates[1] == pytest.approx(roof.rps)


def test_a_bucket_the_class_cannot_serve_is_zero_size_aware_and_unfit_mixed() -> None:
    # a TTFT no 30k-token prompt meets on one node; short requests still do
    huge = Workload(30000, 10)
    slo = SLO(ttft_s=0.05, tpot_s=0.05)
    model = ModelSpec("llama-8b", 8.0, context_length=32768)
    aware = dataclasses.replace(pool(Bucket(SHORT, 0.9), Bucket(huge, 0.1), slo=slo), model=model)
    got = bucket_rates(aware, slo, H100)
    assert not isinstance(got, Unfit)
    est, rates = got
    assert rates[0] > 0 and rates[1] == 0.0 and est.rps == 0.0
    mixed = dataclasses.replace(aware, routing=Routing.MIXED)
    unfit = bucket_rates(mixed, slo, H100)
    assert isinstance(unfit, Unfit)
    assert unfit.reason.startswith("bucket 1 (30000 in, 10 out): ")
    problem = build_problem([mixed, dataclasses.replace(aware, key="ns/q")], [H100], Policy())
    assert problem.unfit["ns/p"]["h100"].reason.startswith("bucket 1")
    (opt,) = problem.options["ns/q"]
    assert opt.bucket_rps == rates


def test_best_split_serves_the_most_within_each_columns_replicas() -> None:
    shares = np.array([0.5, 0.5])
    # column 0 serves only bucket 0 (2 replicas for all of it); column 1 both (4 and 1)
    load = np.array([[2.0, 4.0], [math.inf, 1.0]])
    y, served = best_split(shares, load, np.array([1.0, 1.0]))
    assert served == pytest.approx(0.5 * 0.5 + 0.5 * 1.0)  # bucket 1 on column 1 fills it
    assert y[1, 1] == pytest.approx(1.0) and y[1, 0] == 0.0
    use = (np.where(np.isfinite(load), load, 0.0) * y).sum(axis=0)
    assert (use <= np.array([1.0, 1.0]) + 1e-9).all()
    y, served = best_split(shares, load, np.array([2.0, 1.0]))
    assert served == pytest.approx(1.0)
    assert y.sum(axis=1) == pytest.approx([1.0, 1.0])
    _, none = best_split(shares, load, np.zeros(2))
    assert none == 0.0


def test_mixture_rate_is_the_simulated_replicas_at_saturation() -> None:
    """The load model behind the mixture (each request takes 1 / rps_b of a replica's second) against
    the fleet simulator's continuous-batching engine: a backlog of requests of one bucket, of the
    other, and of the mix, each run to completion on one replica (L4, llama-8b)."""
    cls = AcceleratorClass("L4", REFERENCE_HARDWARE["L4"], 8, 0.6, "dc", node_free_devices=(8,))
    cal = calibrate(Pool("ns/p", MODEL, SLO(), Workload(1000, 200), 1.0), cls)
    short, long = (200, 50), (3000, 400)

    def throughput(share_short: float, n: int = 2000) -> float:
        rng = random.Random(7)
        replica = Replica(cal.step, kv_capacity_tokens=cal.kv_capacity_tokens, max_num_seqs=64)
        reqs = [Request(0.0, *(short if rng.random() < share_short else long)) for _ in range(n)]
        for r in reqs:
            assert replica.submit(r)
        replica.advance(1e9)
        return n / max(r.finish or 0.0 for r in reqs)

    alone = throughput(1.0), throughput(0.0)
    assert alone[0] > 5 * alone[1]  # sizes that matter
    for s in (0.2, 0.5, 0.8):
        predicted = mixture_rps([s, 1 - s], list(alone))
        assert throughput(s) == pytest.approx(predicted, rel=0.05)


def test_margins_bound_what_one_more_replica_adds() -> None:
    rng = np.random.default_rng(5)
    for _ in range(40):
        nb, nc = 3, 3
        shares = rng.dirichlet(np.ones(nb))
        load = np.where(rng.random((nb, nc)) < 0.25, np.inf, rng.uniform(0.2, 4.0, (nb, nc)))
        counts = rng.integers(0, 3, nc).astype(np.float64)
        _, served, margins = split_and_margins(shares, load, counts)
        assert served == pytest.approx(best_split(shares, load, counts)[1])
        for j in range(nc):
            more = counts.copy()
            more[j] += 1
            gain = best_split(shares, load, more)[1] - served
            assert gain <= margins[j] + 1e-7, (j, gain, margins[j])
