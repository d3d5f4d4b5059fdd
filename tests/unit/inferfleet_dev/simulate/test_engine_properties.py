"""Properties of the engine on the virtual clock, for any step constants and request mix: FCFS,
the batch limit, every request finishing with ordered timestamps, work conserved, KV released."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from inferfleet_dev.simulate.engine import Replica, Request, StepModel

requests = st.lists(
    st.tuples(st.floats(0.0, 2.0), st.integers(1, 300), st.integers(0, 20)), min_size=1, max_size=40
)


class Tokens:
    def __init__(self) -> None:
        self.decoded = 0
        self.done = 0

    def first_token(self, req: Request) -> None:
        pass

    def finished(self, req: Request) -> None:
        self.done += 1

    def decode_step(self, seconds: float, sequences: int) -> None:
        assert seconds > 0
        self.decoded += sequences


@settings(max_examples=200, deadline=None)
@given(
    reqs=requests,
    alpha=st.floats(1e-4, 0.05),
    beta=st.floats(0.0, 0.01),
    gamma=st.floats(0.0, 1e-3),
    max_num_seqs=st.integers(1, 8),
    budget=st.integers(1, 512),
    kv=st.one_of(st.just(math.inf), st.integers(1, 2000).map(float)),
    speed=st.floats(0.5, 3.0),
)
def test_engine_invariants(
    reqs: list[tuple[float, int, int]],
    alpha: float,
    beta: float,
    gamma: float,
    max_num_seqs: int,
    budget: int,
    kv: float,
    speed: float,
) -> None:
    model = StepModel(alpha, beta, gamma)
    tokens = Tokens()
    r = Replica(model, max_num_seqs=max_num_seqs, token_budget=budget, kv_capacity_tokens=kv, speed=speed)
    r.observers.append(tokens)
    accepted: list[Request] = []
    for arrival, n_in, n_out in sorted(reqs):
        r.advance(arrival)
        assert r.running <= max_num_seqs
        req = Request(arrival, n_in, n_out)
        if r.submit(req):
            accepted.append(req)
        else:
            assert n_in + n_out > kv
    r.advance(1e9)
    assert (r.running, r.waiting, r.kv_usage, r._kv_used) == (0, 0, 0.0, 0)
    assert tokens.done == len(accepted)
    assert tokens.decoded == sum(max(0, q.n_out - 1) for q in accepted)
    assert all(q.scheduled is not None for q in accepted)
    scheduled = [q.scheduled or 0.0 for q in accepted]
    assert scheduled == sorted(scheduled)  # FCFS
    for q in accepted:
        assert q.scheduled is not None and q.first_token is not None and q.finish is not None
        assert q.arrival <= q.scheduled <= q.first_token <= q.finish
        floor = alpha * speed * (1 - 1e-9)
        assert q.first_token - q.scheduled >= math.ceil(q.n_in / budget) * floor
        assert q.finish - q.first_token >= max(0, q.n_out - 1) * floor
