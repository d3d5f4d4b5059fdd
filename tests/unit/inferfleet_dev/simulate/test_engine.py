"""The engine: exact step arithmetic on small cases, capacity against the roofline, the TTFT knee,
and the speed factor."""

from __future__ import annotations

import random

import pytest

from inferfleet.core.types import AcceleratorClass, Pool
from inferfleet_dev.simulate.calibrate import calibrate
from inferfleet_dev.simulate.engine import Replica, Request, StepModel, VirtualClock
from inferfleet_dev.simulate.record import quantile

AUTOSCALING_MODEL = StepModel(alpha=0.008, beta=0.0002, gamma=0.00004)  # AUTOSCALING.md §4
AUTOSCALING_SATURATION = 64 / (256 * (0.008 + 64 * 0.0002) + 64 * 512 * 0.00004)  # 9.65 req/s


class Log:
    def __init__(self) -> None:
        self.done: list[Request] = []
        self.itl_tokens = 0

    def first_token(self, req: Request) -> None:
        assert req.first_token is not None

    def finished(self, req: Request) -> None:
        self.done.append(req)

    def decode_step(self, seconds: float, sequences: int) -> None:
        self.itl_tokens += sequences


def poisson(replica: Replica, rate: float, seconds: float, n_in: int, n_out: int, seed: int = 1) -> Log:
    """Drive ``replica`` with Poisson arrivals for ``seconds`` of virtual time (bounded by count)."""
    log = Log()
    replica.observers.append(log)
    rng, clock = random.Random(seed), VirtualClock()
    for _ in range(int(rate * seconds * 3) + 10):
        clock.sleep_until(clock.now() + rng.expovariate(rate))
        if clock.now() > seconds:
            break
        replica.advance(clock.now())
        replica.submit(Request(clock.now(), n_in, n_out))
    replica.advance(seconds)
    return log


def served_rps(log: Log, start: float, end: float) -> float:
    return sum(start < r.finish <= end for r in log.done if r.finish is not None) / (end - start)


def p95_ttft(log: Log, after: float) -> float:
    got = quantile((r.ttft for r in log.done if r.arrival > after), 0.95)
    assert got is not None
    return got


def test_a_lone_request_takes_its_prefill_step_then_one_decode_step_per_token() -> None:
    m = StepModel(alpha=0.01, beta=0.001, gamma=0.0001)
    r = Replica(m)
    req = Request(0.0, 1000, 5)
    r.submit(req)
    r.advance(100.0)
    assert req.scheduled == 0.0
    assert req.first_token == pytest.approx(m.step(0, 1000))
    assert req.finish == pytest.approx(m.step(0, 1000) + 4 * m.step(1, 0))
    assert (r.running, r.waiting, r.kv_usage) == (0, 0, 0.0)


def test_prefill_is_chunked_by_the_token_budget() -> None:
    m = StepModel(alpha=0.01, beta=0.0, gamma=0.0001)
    r = Replica(m, token_budget=2048)
    req = Request(0.0, 5000, 1)
    r.submit(req)
    r.advance(10.0)
    assert req.first_token == pytest.approx(m.step(0, 2048) * 2 + m.step(0, 904))
    assert req.finish == req.first_token  # one output token: done with the prefill


def test_admission_is_fcfs_up_to_max_num_seqs_and_the_kv_cache() -> None:
    m = StepModel(alpha=0.01, beta=0.0, gamma=0.0)
    r = Replica(m, max_num_seqs=2)
    reqs = [Request(0.0, 10, 3) for _ in range(3)]
    for q in reqs:
        r.submit(q)
    r.advance(0.0)
    assert (r.running, r.waiting) == (2, 1)
    r.advance(1.0)
    assert reqs[2].scheduled == pytest.approx(reqs[0].finish)  # admitted when a slot freed
    small = Replica(m, kv_capacity_tokens=25)
    assert not small.submit(Request(0.0, 20, 10))  # can never fit: rejected, not queued forever
    a, b = Request(0.0, 10, 5), Request(0.0, 10, 5)
    assert small.submit(a) and small.submit(b)
    small.advance(0.0)
    assert (small.running, small.waiting) == (1, 1)  # b waits for a's KV room
    assert 0.0 < small.kv_usage <= 1.0
    small.advance(1.0)
    assert b.scheduled == pytest.approx(a.finish)


def test_saturation_matches_the_autoscaling_measurement() -> None:
    r = Replica(AUTOSCALING_MODEL, max_num_seqs=64)
    log = poisson(r, 2.0 * AUTOSCALING_SATURATION, 300.0, 512, 256)
    assert served_rps(log, 100.0, 300.0) == pytest.approx(AUTOSCALING_SATURATION, rel=0.03)


@pytest.mark.parametrize(
    ("pool", "cls", "seconds"),
    [
        ("chat/chat-70b", "h100", 120.0),
        ("chat/chat-70b", "mi300x", 120.0),
        ("code/code-completion-8b", "cerebras-cs3", 5.0),
        ("batch/summarise-batch", "h100", 900.0),
    ],
)
def test_capacity_at_saturation_is_the_roofline_rate(
    pools: dict[str, Pool], classes: dict[str, AcceleratorClass], pool: str, cls: str, seconds: float
) -> None:
    p = pools[pool]
    cal = calibrate(p, classes[cls])
    assert cal.estimate is not None
    r = Replica(cal.step, max_num_seqs=cal.estimate.batch, kv_capacity_tokens=cal.kv_capacity_tokens)
    log = poisson(r, 1.5 * cal.estimate.rps, seconds, p.workload.input_tokens, p.workload.output_tokens)
    assert served_rps(log, seconds / 3, seconds) == pytest.approx(cal.estimate.rps, rel=0.10)


def test_p95_ttft_has_its_knee_between_085_and_09_utilisation() -> None:
    p95 = {}
    for rho in (0.3, 0.85, 0.9, 0.95):
        r = Replica(AUTOSCALING_MODEL, max_num_seqs=64)
        log = poisson(r, rho * AUTOSCALING_SATURATION, 1500.0, 512, 256, seed=3)
        p95[rho] = p95_ttft(log, after=100.0)
    assert p95[0.3] < 0.07  # measured here: 52 ms
    assert p95[0.85] < 0.15  # 85 ms
    assert p95[0.9] > 2 * p95[0.85]  # 550 ms: past the knee
    assert p95[0.95] > 1.0  # 3.9 s


def test_the_speed_factor_slows_p95_by_about_the_factor() -> None:
    tpot, ttft = {}, {}
    for speed in (1.0, 1.5):
        r = Replica(AUTOSCALING_MODEL, max_num_seqs=64, speed=speed)
        log = poisson(r, 0.1 * AUTOSCALING_SATURATION, 900.0, 512, 256, seed=5)
        tpot[speed] = quantile((t for q in log.done if (t := q.tpot) is not None), 0.95)
        ttft[speed] = p95_ttft(log, after=60.0)
    assert tpot[1.0] is not None and tpot[1.5] is not None
    assert tpot[1.5] / tpot[1.0] == pytest.approx(1.5, rel=0.15)
    assert ttft[1.5] / ttft[1.0] == pytest.approx(1.5, rel=0.15)
