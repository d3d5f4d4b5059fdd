"""The three scenarios of ``bench_autoscaling`` and the figures each is judged by.

Owns the load of each scenario (per pool, from a nominal rate = the example's
``spec.demand.requestsPerSecond`` x ``load``), the runs, and the figures: recovery after a 3x step
(sliding 30 s ground-truth p95 back within the SLO for good), replica reversals under a +-30% square
wave (and how many of them happened inside the stabilisation window), and the diurnal day's share
of requests within the SLO, cost and energy against static fleets sized for the peak and the mean.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Mapping, Sequence

from autoscaling.cluster import fleet_docs
from autoscaling.loop import Loop, Run, Timing
from inferfleet_dev.simulate.load import Diurnal, Square, Step

DEFAULT_POOLS = ("chat/chat-70b", "batch/summarise-batch")
SPEC_RPS = {  # examples/30-pools.yaml
    "chat/chat-70b": 40.0,
    "code/code-completion-8b": 150.0,
    "batch/summarise-batch": 20.0,
    "search/embed": 3000.0,
}


@dataclasses.dataclass(frozen=True)
class Options:
    pools: Sequence[str] = DEFAULT_POOLS
    load: float = 0.5  # nominal rate = the example's demand x this
    timing: Timing = dataclasses.field(default_factory=Timing)
    stabilization_s: int = 300
    seed: int = 1
    floor: float = 0.1  # the static floor (spec.demand) as a share of nominal
    churn: float | None = None  # $ per replica move instead of the example FleetPolicy's
    weighted: bool = False  # capacity-weighted routing instead of the simulator's least outstanding

    def nominal(self) -> dict[str, float]:
        return {k: SPEC_RPS[k] * self.load for k in self.pools}

    def docs(self, fixed: Mapping[str, float] | None = None) -> list[dict]:  # type: ignore[type-arg]
        floors = {k: v * self.floor for k, v in self.nominal().items()}
        return fleet_docs(
            self.pools,
            floors=floors,
            stabilization_s=self.stabilization_s,
            fixed_demand=fixed,
            churn=self.churn,
        )


def within(run: Run, key: str, ttft: float | None, tpot: float | None) -> bool:
    slo_ttft, slo_tpot = run.slos[key]
    return (ttft is None or ttft <= slo_ttft) and (tpot is None or slo_tpot is None or tpot <= slo_tpot)


# -- 1. step -------------------------------------------------------------------------------------
@dataclasses.dataclass
class StepFigures:
    run: Run
    at: float
    recovery_s: dict[str, float | None]  # None: not back within the SLO by the end of the run
    worst: dict[str, tuple[float, float]]  # max p95 TTFT / TPOT after the step, s
    first_increase_evals: dict[str, int | None]  # evaluations from the step to more planned replicas
    first_demand_evals: dict[str, int | None]  # evaluations from the step to a higher planned demand
    replicas: dict[str, tuple[int, int]]  # planned before the step, at the end


def step(
    opt: Options, *, at: float = 120.0, after: float = 240.0, factor: float = 3.0, real_time: bool = False
) -> StepFigures:
    nominal = opt.nominal()
    profiles = {k: Step(v / factor, at, v) for k, v in nominal.items()}
    loop = Loop(opt.docs(), profiles, opt.timing, seed=opt.seed, weighted=opt.weighted)
    run = loop.run(at + after, real_time=real_time)
    recovery: dict[str, float | None] = {}
    worst: dict[str, tuple[float, float]] = {}
    first: dict[str, int | None] = {}
    demand_first: dict[str, int | None] = {}
    replicas: dict[str, tuple[int, int]] = {}
    for key in opt.pools:
        after_step = [s for s in run.samples if s.t >= at]
        bad = [s.t for s in after_step if not within(run, key, s.ttft_p95[key], s.tpot_p95[key])]
        if not bad:
            recovery[key] = 0.0
        elif bad[-1] >= after_step[-1].t:
            recovery[key] = None
        else:
            recovery[key] = bad[-1] + opt.timing.sample_s - at
        worst[key] = (
            max((s.ttft_p95[key] or 0.0) for s in after_step),
            max((s.tpot_p95[key] or 0.0) for s in after_step),
        )
        total = [(r.t, sum(n for (k, _), n in r.replicas.items() if k == key)) for r in run.rounds]
        before = next(n for t, n in reversed(total) if t <= at)
        later = [i for i, (t, n) in enumerate(r for r in total if r[0] > at) if n > before]
        first[key] = later[0] + 1 if later else None
        d0 = next(r.demand[key] for r in reversed(run.rounds) if r.t <= at)
        up = [i for i, r in enumerate(r for r in run.rounds if r.t > at) if r.demand[key] > d0]
        demand_first[key] = up[0] + 1 if up else None
        replicas[key] = (before, total[-1][1])
    return StepFigures(run, at, recovery, worst, first, demand_first, replicas)


# -- 2. square wave --------------------------------------------------------------------------------
@dataclasses.dataclass
class SquareFigures:
    run: Run
    reversals: dict[str, int]  # per pool, over its classes: a count going up then down or down then up
    inside_window: dict[str, int]  # of those, the opposite move came within the stabilisation window
    demand_reversals: dict[str, int]  # the policy's demand itself
    counts: dict[str, list[tuple[float, dict[str, int]]]]


def reversals(series: Sequence[tuple[float, float]], window: float) -> tuple[int, int]:
    """(direction changes, those within ``window`` seconds of the previous move) of a series."""
    flips = inside = 0
    last_dir, last_t = 0, None
    for (_, a), (t, b) in itertools.pairwise(series):
        if b == a:
            continue
        d = 1 if b > a else -1
        if last_dir and d != last_dir:
            flips += 1
            if last_t is not None and t - last_t < window:
                inside += 1
        last_dir, last_t = d, t
    return flips, inside


def square(
    opt: Options, *, minutes: float = 10.0, period: float = 120.0, swing: float = 0.3, warm: float = 60.0
) -> SquareFigures:
    nominal = opt.nominal()
    mean = {k: v * 0.7 for k, v in nominal.items()}
    profiles = {k: Square(m * (1 - swing), m * (1 + swing), period) for k, m in mean.items()}
    run = Loop(opt.docs(), profiles, opt.timing, seed=opt.seed, weighted=opt.weighted).run(minutes * 60.0)
    flips, inside, demand_flips, counts = {}, {}, {}, {}
    w = float(opt.stabilization_s)
    for key in opt.pools:
        classes = sorted({c for r in run.rounds for (k, c) in r.replicas if k == key})
        f = i = 0
        for cls in classes:
            a, b = reversals([(r.t, r.replicas.get((key, cls), 0)) for r in run.rounds if r.t >= warm], w)
            f, i = f + a, i + b
        flips[key], inside[key] = f, i
        demand_flips[key] = reversals([(r.t, r.demand[key]) for r in run.rounds if r.t >= warm], w)[0]
        counts[key] = [
            (r.t, {c: r.replicas.get((key, c), 0) for c in classes}) for r in run.rounds if r.t >= warm
        ]
    return SquareFigures(run, flips, inside, demand_flips, counts)


# -- 3. diurnal day --------------------------------------------------------------------------------
@dataclasses.dataclass
class Fleet:
    name: str
    run: Run
    share_within: float  # finished requests within both SLO targets / all offered
    windows_within: float  # share of the sliding-p95 samples within the SLO, every pool
    dollars: float
    kwh: float
    wall_s: float


@dataclasses.dataclass
class DiurnalFigures:
    day_s: float
    fleets: list[Fleet]  # autoscaled, static at peak, static at mean


def _integrate(run: Run) -> tuple[float, float]:
    """$ and kWh of the plans over the run (each round's plan holds until the next)."""
    dollars = kwh = 0.0
    rounds = run.rounds
    for r, nxt in zip(rounds, [*rounds[1:], None], strict=False):
        dt = (nxt.t if nxt is not None else run.seconds) - r.t
        dollars += r.dollars_per_hour * dt / 3600.0
        kwh += r.kilowatts * dt / 3600.0
    return dollars, kwh


def _fleet(name: str, run: Run, keys: Sequence[str], wall: float) -> Fleet:
    offered = sum(run.finished[k] + run.dropped[k] + run.lost[k] for k in keys)
    ok = sum(run.within[k] for k in keys)
    samples = [s for s in run.samples if all(s.ttft_p95[k] is not None for k in keys)]
    good = sum(all(within(run, k, s.ttft_p95[k], s.tpot_p95[k]) for k in keys) for s in samples)
    dollars, kwh = _integrate(run)
    return Fleet(
        name,
        run,
        ok / offered if offered else 1.0,
        good / len(samples) if samples else 1.0,
        dollars,
        kwh,
        wall,
    )


def diurnal(opt: Options, *, day_s: float = 1440.0, low: float = 0.2) -> DiurnalFigures:
    nominal = opt.nominal()
    profiles = {k: Diurnal(v * low, v, day_s) for k, v in nominal.items()}
    timing = dataclasses.replace(opt.timing, sample_s=max(opt.timing.sample_s, opt.timing.scrape_s))
    fleets = []
    for name, fixed in (
        ("autoscaled", None),
        ("static, peak", dict(nominal)),
        ("static, mean", {k: v * (1 + low) / 2 for k, v in nominal.items()}),
    ):
        start = time.perf_counter()
        loop = Loop(
            opt.docs(fixed), profiles, timing, seed=opt.seed, static=fixed is not None, weighted=opt.weighted
        )
        run = loop.run(day_s)
        fleets.append(_fleet(name, run, opt.pools, time.perf_counter() - start))
    return DiurnalFigures(day_s, fleets)
