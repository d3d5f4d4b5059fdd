"""One simulated replica: a discrete-event continuous-batching engine (pure; time is passed in).

Owns the scheduling loop of a vLLM-like server and nothing else: FCFS admission up to
``max_num_seqs`` (and the KV cache: a request is admitted only when its input + output tokens
fit), chunked prefill under a token budget per step (decodes take one token of it each, then
partial prefills, then new admissions), and the step time

    step = max(alpha + beta x B_decode, fixed + gamma x B_decode) + gamma x prefill_tokens

(memory-bound decode, or compute-bound at large batches as the roofline's max(); ``alpha`` = weight
read + fixed per-pass latency, ``beta`` = KV read per sequence, ``gamma`` = 2 x params / FLOP rate),
times a speed factor (1.5 = every step takes 1.5x longer).  A request's last prefill chunk emits
its first token; it then needs ``n_out - 1`` decode steps.  Observers see first tokens, finishes
and decode steps (the metrics and the ground-truth recorder).  Also the two clocks.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import math
import time
from collections import deque
from collections.abc import Iterable
from typing import Protocol

__all__ = [
    "Observer",
    "RealClock",
    "Replica",
    "Request",
    "StepModel",
    "VirtualClock",
]


@dataclasses.dataclass(frozen=True)
class StepModel:
    """Seconds per engine step; see the module docstring."""

    alpha: float  # s per step: weights read + fixed per-pass latency
    beta: float  # s per decoding sequence (KV read at mean context)
    gamma: float  # s per token of compute (prefill tokens; decode when compute-bound)
    fixed: float = 0.0  # the per-pass latency inside alpha (the compute-bound branch keeps it)

    def step(self, decode: int, prefill_tokens: int) -> float:
        memory = self.alpha + self.beta * decode
        compute = self.fixed + self.gamma * decode
        return max(memory, compute) + self.gamma * prefill_tokens


@dataclasses.dataclass
class Request:
    """One request and what happened to it (times in the clock's seconds)."""

    arrival: float
    n_in: int
    n_out: int
    pool: str = ""
    scheduled: float | None = None  # admitted into the batch
    first_token: float | None = None
    finish: float | None = None

    @property
    def ttft(self) -> float:
        assert self.first_token is not None
        return self.first_token - self.arrival

    @property
    def tpot(self) -> float | None:
        """Mean time per output token after the first (None for a single output token)."""
        if self.finish is None or self.first_token is None or self.n_out < 2:
            return None
        return (self.finish - self.first_token) / (self.n_out - 1)


class Observer(Protocol):
    def first_token(self, req: Request) -> None: ...
    def finished(self, req: Request) -> None: ...
    def decode_step(self, seconds: float, sequences: int) -> None: ...


@dataclasses.dataclass
class _Seq:
    req: Request
    prefilled: int = 0
    finish_step: int = 0
    decode_from: int = 0  # the step its prefill finished in


@dataclasses.dataclass
class _Step:
    start: float
    end: float
    decode: int
    chunks: list[tuple[_Seq, int]]


class Replica:
    """The engine of one replica.  ``advance(t)`` runs it to time ``t``; a request arriving at ``a``
    is submitted after ``advance(a)`` (it joins the next step that starts at or after ``a``)."""

    def __init__(
        self,
        model: StepModel,
        *,
        max_num_seqs: int = 256,
        token_budget: int = 2048,
        kv_capacity_tokens: float = math.inf,
        speed: float = 1.0,
        now: float = 0.0,
        observers: Iterable[Observer] = (),
    ) -> None:
        if max_num_seqs < 1 or token_budget < 1 or speed <= 0:
            raise ValueError("max_num_seqs and token_budget must be >= 1 and speed > 0")
        self.model = model
        self.max_num_seqs = max_num_seqs
        self.token_budget = token_budget
        self.kv_capacity_tokens = kv_capacity_tokens
        self.speed = speed
        self.now = now
        self.observers = list(observers)
        self.rejected = 0  # requests larger than the whole KV cache
        self.busy_seconds = 0.0
        self._waiting: deque[Request] = deque()
        self._prefilling: deque[_Seq] = deque()
        self._decoding: list[tuple[int, int, _Seq]] = []  # (finish step, tie-break, seq)
        self._ids = itertools.count()
        self._steps = 0
        self._reserved = 0  # KV tokens promised to admitted sequences (input + output)
        self._kv_used = 0  # KV tokens allocated to admitted sequences (at schedule time, like vLLM)
        self._step: _Step | None = None

    # -- what the metrics read -------------------------------------------------------------------
    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @property
    def running(self) -> int:
        return len(self._prefilling) + len(self._decoding)

    @property
    def outstanding(self) -> int:
        return self.waiting + self.running

    def unanswered(self) -> list[float]:
        """Arrival times of the requests without a first token yet (queued or prefilling): what a
        ground truth of TTFT "now" must count before they finish."""
        return [r.arrival for r in self._waiting] + [q.req.arrival for q in self._prefilling]

    @property
    def kv_usage(self) -> float:
        if math.isinf(self.kv_capacity_tokens) or self.kv_capacity_tokens <= 0:
            return 0.0
        return min(1.0, self._kv_used / self.kv_capacity_tokens)

    # -- driving -----------------------------------------------------------------------------------
    def submit(self, req: Request) -> bool:
        """Queue ``req``; False (and counted in ``rejected``) when it can never fit the KV cache."""
        if req.n_in + req.n_out > self.kv_capacity_tokens:
            self.rejected += 1
            return False
        self._waiting.append(req)
        return True

    def advance(self, t: float) -> None:
        """Run every step that ends by ``t``; ``now`` then reads ``t`` when idle, else the start of
        the step in progress."""
        while True:
            if self._step is None and not self._start_step():
                self.now = max(self.now, t)
                return
            assert self._step is not None
            if self._step.end > t:
                return
            self._finish_step(self._step)

    def _start_step(self) -> bool:
        decode = len(self._decoding)
        budget = self.token_budget - decode
        chunks: list[tuple[_Seq, int]] = []
        for seq in self._prefilling:
            if budget <= 0:
                break
            take = min(budget, seq.req.n_in - seq.prefilled)
            chunks.append((seq, take))
            budget -= take
        while budget > 0 and self._waiting and self.running < self.max_num_seqs:
            req = self._waiting[0]
            if self._reserved + req.n_in + req.n_out > self.kv_capacity_tokens:
                break  # FCFS: the head waits for room, nobody overtakes it
            self._waiting.popleft()
            req.scheduled = self.now
            self._reserved += req.n_in + req.n_out
            seq = _Seq(req)
            self._prefilling.append(seq)
            take = min(budget, req.n_in)
            chunks.append((seq, take))
            budget -= take
        if decode == 0 and not chunks:
            return False
        self._steps += 1
        prefill = sum(take for _, take in chunks)
        self._kv_used += decode + prefill
        seconds = self.model.step(decode, prefill) * self.speed
        self.busy_seconds += seconds
        self._step = _Step(self.now, self.now + seconds, decode, chunks)
        return True

    def _finish_step(self, step: _Step) -> None:
        self.now = step.end
        self._step = None
        k = self._steps
        if step.decode:
            for obs in self.observers:
                obs.decode_step(step.end - step.start, step.decode)
            while self._decoding and self._decoding[0][0] == k:
                self._complete(heapq.heappop(self._decoding)[2])
        for seq, take in step.chunks:
            seq.prefilled += take
            if seq.prefilled < seq.req.n_in:
                continue
            self._prefilling.remove(seq)
            seq.req.first_token = step.end
            for obs in self.observers:
                obs.first_token(seq.req)
            if seq.req.n_out <= 1:
                self._complete(seq)
            else:
                seq.decode_from = k
                seq.finish_step = k + seq.req.n_out - 1
                heapq.heappush(self._decoding, (seq.finish_step, next(self._ids), seq))

    def _complete(self, seq: _Seq) -> None:
        req = seq.req
        req.finish = self.now
        self._reserved -= req.n_in + req.n_out
        decoded = self._steps - seq.decode_from if req.n_out > 1 else 0
        self._kv_used -= req.n_in + decoded
        for obs in self.observers:
            obs.finished(req)


class VirtualClock:
    """Simulated time that moves only when told: as fast as the CPU allows."""

    def __init__(self, start: float = 0.0) -> None:
        self.t = start

    def now(self) -> float:
        return self.t

    def sleep_until(self, t: float) -> None:
        self.t = max(self.t, t)


class RealClock:
    """Wall-clock seconds since the epoch (what Prometheus stamps scrapes with)."""

    def now(self) -> float:
        return time.time()

    def sleep_until(self, t: float) -> None:
        delay = t - time.time()
        if delay > 0:
            time.sleep(delay)
