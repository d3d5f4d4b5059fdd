"""The operator's autoscaling loop without Kubernetes, in virtual time, closed over the simulator.

Owns one run: every ``eval_s`` the real ``decide()`` (validation, the autoscaling phase with the
pure policy and calibration, the bridge ``problem_from``, the planner, children diff, gate, status)
reads a synthetic ``Snapshot`` with an ``Observed`` per pool made from the simulator, the cluster
applies its writes (the next round reads the status back), and the simulated fleet follows the
Deployments' replica counts: a new replica serves ``startup_s`` after it is created, a removed one
stops at once (its in-flight requests are counted as lost).

What the policy reads is what Prometheus would give, not the truth: the offered load is the
arrivals counter scraped every ``scrape_s`` and read as ``(c[last] - c[last - window]) / window``
with the newest usable scrape ``lag_s`` old; per-class p95 TTFT/TPOT come from the requests that
finished in the window (exact quantiles; Prometheus would interpolate inside histogram buckets).
The ground truth (every finished request, per pool, against its SLO; a sliding p95) is kept apart.
"""

from __future__ import annotations

import bisect
import collections
import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any

from autoscaling.cluster import Cluster, Obj, pool_key
from inferfleet.api.acceleratorclass import AcceleratorClass as ApiClass
from inferfleet.api.inferencepool import InferencePool as ApiPool
from inferfleet.core import planner
from inferfleet.core.observed import ClassSample, MetricsProblem, Observed
from inferfleet.reconcile.autoscaling import timestamp
from inferfleet.reconcile.decide import Decision, decide
from inferfleet.translate.objects import to_core_class, to_core_pool
from inferfleet_dev.simulate.engine import RealClock, Request
from inferfleet_dev.simulate.load import Profile
from inferfleet_dev.simulate.record import Done, Recorder, Tap, quantile
from inferfleet_dev.simulate.sim import Pod, Simulation

T0 = 1_796_083_200.0  # 2026-12-01T00:00:00Z: virtual time 0 as the operator's clock reads it


@dataclasses.dataclass(frozen=True)
class Timing:
    eval_s: float = 15.0
    scrape_s: float = 5.0
    window_s: float = 60.0
    lag_s: float = 5.0
    startup_s: float = 10.0
    truth_window_s: float = 30.0  # the sliding p95 of the ground truth
    sample_s: float = 1.0  # how often that p95 is sampled
    burst_s: float = 15.0  # the burst window (the operator's default: a quarter of the window); 0: off


class _FirstTokens(Tap):
    """The recorder's tap, also noting each first token when it happens."""

    def __init__(self, truth: _Truth, pod: str, accelerator_class: str) -> None:
        super().__init__(truth, pod, accelerator_class)
        self.truth = truth

    def first_token(self, req: Request) -> None:
        assert req.first_token is not None
        firsts = self.truth.first_tokens.setdefault(req.pool, collections.deque())
        firsts.append((req.first_token, req.first_token - req.arrival))
        while firsts and firsts[0][0] < req.first_token - self.truth.keep_seconds:
            firsts.popleft()


class _Truth(Recorder):
    """The recorder, plus a count of every finished request within its pool's SLO, and every first
    token when it happens (the TTFT users see now, not when their request finishes)."""

    def __init__(self, slos: Mapping[str, tuple[float, float | None]], keep_s: float) -> None:
        super().__init__(keep_seconds=keep_s)
        self.slos = slos
        self.finished: dict[str, int] = {k: 0 for k in slos}
        self.within: dict[str, int] = {k: 0 for k in slos}
        self.first_tokens: dict[str, collections.deque[tuple[float, float]]] = {}

    def observer(self, pod: str, accelerator_class: str) -> Tap:
        return _FirstTokens(self, pod, accelerator_class)

    def add(self, d: Done) -> None:
        super().add(d)
        ttft_slo, tpot_slo = self.slos[d.pool]
        tpot = d.tpot
        self.finished[d.pool] += 1
        if d.ttft <= ttft_slo and (tpot_slo is None or tpot is None or tpot <= tpot_slo):
            self.within[d.pool] += 1


class _Sim(Simulation):
    """The simulator with an arrivals counter per pool (what ``rate()`` of vLLM's counters reads)
    and, optionally, capacity-weighted routing: the replica with the fewest outstanding requests per
    req/s of planned capacity (``Estimate.rps``), as a gateway told the plan's weights would do.
    The simulator's own routing is least outstanding, blind to capacity."""

    def __init__(self, *, weighted: bool = False, **kw: Any) -> None:
        super().__init__(**kw)
        self.arrived: dict[str, int] = {}
        self.weighted = weighted

    def _dispatch(self, a: float, key: str) -> None:
        self.arrived[key] = self.arrived.get(key, 0) + 1
        if not self.weighted:
            super()._dispatch(a, key)
            return
        pool = self.pools.get(key)
        serving = [r for r in self.replicas.values() if r.pod.pool_key == key and r.serving_from <= a]
        if pool is None or not serving:
            self.loads[key].dropped += 1
            return
        for r in serving:
            r.engine.advance(a)

        def load(r: Any) -> float:
            est = r.calibration.estimate
            return (r.engine.outstanding + 1) / (est.rps if est is not None and est.rps > 0 else 1.0)

        chosen = min(serving, key=load)
        n_in = self.tokens.draw(self.rng, pool.workload.input_tokens, high=pool.model.context_length)
        room = max(0, pool.model.context_length - n_in)
        n_out = self.tokens.draw(self.rng, pool.workload.output_tokens, high=room) if room else 0
        chosen.engine.submit(Request(a, n_in, n_out, pool=key))


@dataclasses.dataclass
class Round:
    """One evaluation, as recorded."""

    t: float
    measured: dict[str, float | None]
    demand: dict[str, float]
    signal: dict[str, str]
    replicas: dict[tuple[str, str], int]  # after the round's writes
    dollars_per_hour: float
    kilowatts: float
    domains: dict[str, tuple[float, float | None]]  # name -> (kW used, budget kW)
    factors: dict[tuple[str, str], tuple[float, float]]
    decide_s: float


@dataclasses.dataclass
class Sample:
    t: float
    offered: dict[str, float]  # the profile's rate now (truth)
    ttft_p95: dict[str, float | None]
    tpot_p95: dict[str, float | None]
    serving: dict[tuple[str, str], int]


@dataclasses.dataclass
class Run:
    rounds: list[Round]
    samples: list[Sample]
    finished: dict[str, int]
    within: dict[str, int]
    dropped: dict[str, int]  # arrivals with no serving replica
    lost: dict[str, int]  # in flight on a replica when it was removed
    slos: dict[str, tuple[float, float | None]]
    seconds: float  # virtual
    wall_s: float = 0.0


class Loop:
    """One closed-loop run over ``docs`` with a load profile per pool key."""

    def __init__(
        self,
        docs: list[Obj],
        profiles: Mapping[str, Profile],
        timing: Timing = Timing(),
        *,
        seed: int = 1,
        static: bool = False,
        weighted: bool = False,
        solve: Callable[..., Any] = planner.solve,
    ) -> None:
        self.timing = timing
        self.cluster = Cluster(docs)
        self.static = static
        self.solve = solve
        api_pools = {pool_key(d): ApiPool.model_validate(d) for d in self.cluster.pool_docs}
        self.pools = {k: to_core_pool(p) for k, p in api_pools.items()}
        self.classes = {
            str(d["metadata"]["name"]): to_core_class(ApiClass.model_validate(d), ())
            for d in self.cluster.class_docs
        }
        self.slos = {
            k: (p.slo.ttft_s if p.slo.ttft_s is not None else math.inf, p.slo.tpot_s)
            for k, p in self.pools.items()
        }
        keep = max(timing.window_s + timing.lag_s, timing.truth_window_s) + 2 * timing.eval_s
        self.truth = _Truth(self.slos, keep)
        self.sim = _Sim(
            weighted=weighted, startup_seconds={"default": timing.startup_s}, seed=seed, recorder=self.truth
        )
        self.profiles = dict(profiles)
        for key, prof in self.profiles.items():
            self.sim.set_load(key, prof)
        self.pods: dict[tuple[str, str], list[Pod]] = {}
        self._names = 0
        self.scrapes: list[tuple[float, dict[str, int]]] = []
        self.lost = {k: 0 for k in self.pools}
        self.rounds: list[Round] = []
        self.samples: list[Sample] = []

    # -- what Prometheus would say -------------------------------------------------------------
    def _rate(self, key: str, t: float, window_s: float | None = None) -> float | None:
        tm = self.timing
        times = [s[0] for s in self.scrapes]
        i = bisect.bisect_right(times, t - tm.lag_s + 1e-9) - 1
        if i < 1:
            return None
        last_t, last = self.scrapes[i]
        j = bisect.bisect_left(times, last_t - (window_s or tm.window_s) - 1e-9)
        first_t, first = self.scrapes[j]
        if last_t <= first_t:
            return None
        return (last.get(key, 0) - first.get(key, 0)) / (last_t - first_t)

    def observed(self, t: float) -> dict[str, Observed]:
        tm = self.timing
        out = {}
        for key, pool in self.pools.items():
            classes = []
            for cls in sorted({c for (k, c) in self.pods if k == key and self.pods[(k, c)]}):
                done = self.truth.window(t - tm.lag_s, tm.window_s, pool=key, accelerator_class=cls)
                live = [p for p in self.pods[(key, cls)] if self._serving(p, t)]
                serving = len(live)
                if not serving:
                    continue
                engines = [r.engine for p in live if (r := self.sim.replicas.get(p.key)) is not None]
                classes.append(
                    ClassSample(
                        cls,
                        quantile((d.ttft for d in done), 0.95) if len(done) >= 20 else None,
                        quantile((x for d in done if (x := d.tpot) is not None), 0.95)
                        if len(done) >= 20
                        else None,
                        float(len(done)),
                        serving,
                        waiting=float(sum(e.waiting for e in engines)),
                        kv_usage=max((e.kv_usage for e in engines), default=0.0),
                    )
                )
            rps = self._rate(key, t)
            out[key] = Observed(
                at=T0 + t,
                rps=rps,
                burst_rps=self._rate(key, t, tm.burst_s) if tm.burst_s else None,
                window_s=tm.window_s,
                burst_window_s=tm.burst_s,
                problem=None if rps is not None else MetricsProblem.EMPTY,
                classes=tuple(classes),
                input_tokens=float(pool.workload.input_tokens),
                output_tokens=float(pool.workload.output_tokens),
                sample_age_s=tm.lag_s,
                series=sum(c.series for c in classes),
            )
        return out

    # -- the fleet following the Deployments -----------------------------------------------------
    def _serving(self, pod: Pod, t: float) -> bool:
        return pod.ready_at + self.timing.startup_s <= t

    def _follow(self, want: Mapping[tuple[str, str], int], t: float, *, warm: bool = False) -> None:
        changed = False
        for key in sorted(set(want) | set(self.pods)):
            have = self.pods.setdefault(key, [])
            n = want.get(key, 0)
            while len(have) < n:
                self._names += 1
                ns, name = key[0].split("/")
                ready = t - self.timing.startup_s if warm else t
                have.append(Pod(ns, f"{name}-{key[1]}-{self._names}", name, key[1], ready))
                changed = True
            if len(have) > n:
                # a ReplicaSet removes pods not yet ready first, then the newest
                order = sorted(have, key=lambda p: (self._serving(p, t), p.ready_at))
                gone = order[: len(have) - n]
                for p in gone:
                    r = self.sim.replicas.get(p.key)
                    if r is not None:
                        self.lost[key[0]] += r.engine.outstanding
                self.pods[key] = [p for p in have if p not in gone]
                changed = True
        if changed:
            self.sim.sync(self.pools, self.classes, [p for ps in self.pods.values() for p in ps])

    def _counts(self, t: float) -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], int]]:
        live = {k: len(v) for k, v in self.pods.items() if v}
        ready = {k: sum(1 for p in v if self._serving(p, t)) for k, v in self.pods.items() if v}
        return ready, live

    # -- one round -------------------------------------------------------------------------------
    def _decide(self, t: float, observed: dict[str, Observed] | None) -> Decision:
        import time

        start = time.perf_counter()
        d: Decision | None = None
        for _ in range(3):  # an increase deferred by the power gate is re-planned at once
            ready, live = self._counts(t)
            d = decide(self.cluster.snapshot(ready, live), timestamp(T0 + t), self.solve, observed)
            self.cluster.apply(d)
            self._follow(self.cluster.replicas(), t, warm=not self.rounds)
            if not d.deferred:
                break
        assert d is not None and d.plan is not None
        plan = d.plan
        measured: dict[str, float | None] = {}
        demand: dict[str, float] = {}
        signal: dict[str, str] = {}
        factors: dict[tuple[str, str], tuple[float, float]] = {}
        for key in self.pools:
            block = self.cluster.pool_status(key).get("autoscaling") or {}
            measured[key] = block.get("observedRequestsPerSecond")
            demand[key] = float(self.cluster.pool_status(key).get("demandRequestsPerSecond") or 0.0)
            signal[key] = str(block.get("signal") or "Static")
            for c in block.get("classes") or []:
                factors[(key, c["acceleratorClass"])] = (c["ttftCorrection"], c["tpotCorrection"])
        self.rounds.append(
            Round(
                t,
                measured,
                demand,
                signal,
                self.cluster.replicas(),
                plan.dollars_per_hour,
                plan.watts / 1000.0,
                {
                    u.name: (
                        u.used_watts / 1000.0,
                        None if u.budget_watts is None else u.budget_watts / 1000.0,
                    )
                    for u in plan.domains
                },
                factors,
                time.perf_counter() - start,
            )
        )
        return d

    def start(self) -> None:
        """The fleet as it would be after running at the load of t = 0 for a while."""
        first = {
            k: Observed(at=T0, rps=p.rate(0.0), input_tokens=None, output_tokens=None)
            for k, p in self.profiles.items()
        }
        self._decide(0.0, None if self.static else first)

    def run(self, seconds: float, *, real_time: bool = False) -> Run:
        """Run ``seconds`` of virtual time; ``real_time``: paced by the wall clock (the engine's
        ``RealClock``), so the run takes as long as it simulates."""
        import time

        wall = time.perf_counter()
        clock, epoch = RealClock(), time.time()
        tm = self.timing
        self.start()
        self.scrapes.append((0.0, dict(self.sim.arrived)))
        step = math.gcd(int(tm.scrape_s), int(tm.eval_s), int(max(1, tm.sample_s)))
        t = 0.0
        while t < seconds:
            t += step
            if real_time:
                clock.sleep_until(epoch + t)
            self.sim.advance(t)
            if t % tm.scrape_s == 0:
                self.scrapes.append((t, dict(self.sim.arrived)))
                if len(self.scrapes) > 4 * (tm.window_s + tm.lag_s) / tm.scrape_s + 4:
                    del self.scrapes[0]
            if t % tm.sample_s == 0:
                self._sample(t)
            if t % tm.eval_s == 0 and not self.static:
                self._decide(t, self.observed(t))
        return Run(
            self.rounds,
            self.samples,
            dict(self.truth.finished),
            dict(self.truth.within),
            {k: v.dropped for k, v in self.sim.loads.items()},
            dict(self.lost),
            self.slos,
            seconds,
            time.perf_counter() - wall,
        )

    def _sample(self, t: float) -> None:
        ttft, tpot = {}, {}
        span = self.timing.truth_window_s
        for key in self.pools:
            # TTFT: first tokens of the window, plus requests still without one past the SLO (they
            # are breaches already); TPOT: requests finished in the window
            firsts = [x for at, x in self.truth.first_tokens.get(key, ()) if at >= t - span]
            slo = self.slos[key][0]
            late = [
                t - a
                for r in self.sim.replicas.values()
                if r.pod.pool_key == key
                for a in r.engine.unanswered()
                if t - a > slo
            ]
            ttft[key] = quantile(firsts + late, 0.95)
            done = self.truth.window(t, span, pool=key)
            tpot[key] = quantile((x for d in done if (x := d.tpot) is not None), 0.95)
        serving = {k: sum(1 for p in v if self._serving(p, t)) for k, v in self.pods.items() if v}
        self.samples.append(Sample(t, {k: p.rate(t) for k, p in self.profiles.items()}, ttft, tpot, serving))
