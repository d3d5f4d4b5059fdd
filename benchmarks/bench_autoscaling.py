"""Autoscaling benchmark: the operator's loop closed over the fleet simulator, in virtual time.

Prints (never asserts) per scenario: recovery after a 3x load step (sliding 30 s ground-truth p95
TTFT and TPOT back within the SLO; target <= 60 s), replica reversals under a +-30% square wave over
10 minutes (target: none the stabilisation window does not allow), and a compressed diurnal day's
share of requests within the SLO (target >= 99%), cost and energy against static fleets planned
for the peak and for the mean (target >= 30% cheaper than the peak-sized fleet).

Every evaluation runs the operator's real ``decide()`` on a synthetic Snapshot (the example
objects, the simulated fleet's nodes, the Deployments and statuses the previous rounds wrote), with
an ``Observed`` per pool from the simulator's arrivals as Prometheus ``rate()`` would read them.

    ./scripts/bench autoscaling                                  # all three scenarios
    ./scripts/bench autoscaling --scenario step --pools chat/chat-70b
    ./scripts/bench autoscaling --scenario diurnal --plot        # writes docs/autoscaling-day.png
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the helpers in benchmarks/autoscaling/

from autoscaling.loop import Timing
from autoscaling.scenarios import DEFAULT_POOLS, SPEC_RPS, Options, diurnal, square, step

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PLOT = ROOT / "docs/autoscaling-day.png"


def _s(x: float | None) -> str:
    return "never" if x is None else f"{x:.0f} s"


def _ev(n: int | None) -> str:
    return "never" if n is None else f"+{n} eval"


def _ms(x: float) -> str:
    return f"{x * 1000:.0f}"


def report_step(opt: Options, wall: float, real_time: bool = False) -> None:
    f = step(opt, at=60.0, after=180.0, real_time=True) if real_time else step(opt)
    print(
        f"\n1{'r (real clock)' if real_time else ''}. 3x step at t={f.at:.0f} s "
        f"(scrape {opt.timing.scrape_s:g} s, start-up "
        f"{opt.timing.startup_s:g} s, eval {opt.timing.eval_s:g} s), {time.perf_counter() - wall:.1f} s wall"
    )
    print(
        f"{'pool':24} {'rps':>11} {'replicas':>9} {'demand up':>9} {'replicas up':>11} {'recovery':>9} "
        f"{'worst p95 TTFT/TPOT ms':>23} {'SLO ms':>10} {'lost':>5}"
    )
    for key in opt.pools:
        nominal = opt.nominal()[key]
        slo_ttft, slo_tpot = f.run.slos[key]
        print(
            f"{key:24} {nominal / 3:5.1f}->{nominal:<5.1f} {f.replicas[key][0]:>3}->{f.replicas[key][1]:<4}"
            f" {_ev(f.first_demand_evals[key]):>9} {_ev(f.first_increase_evals[key]):>11}"
            f" {_s(f.recovery_s[key]):>9}"
            f" {_ms(f.worst[key][0]):>11}/{_ms(f.worst[key][1]):<11}"
            f" {_ms(slo_ttft)}/{_ms(slo_tpot) if slo_tpot else '-':<5} {f.run.lost[key]:>5}"
        )
    _factors(f.run)
    print(
        "   recovery: from the step until the sliding 30 s p95 TTFT and TPOT of finished requests stay"
        " within the SLO; lost: in flight on replicas removed"
    )


def _factors(run: object) -> None:
    last = run.rounds[-1]  # type: ignore[attr-defined]
    learnt = {k: v for k, v in last.factors.items() if v != (1.0, 1.0)}
    if learnt:
        words = ", ".join(
            f"{p.split('/')[1]}@{c} TTFT x{a:g} TPOT x{b:g}" for (p, c), (a, b) in sorted(learnt.items())
        )
        print(f"   correction factors at the end: {words}")


def report_square(opt: Options, wall: float) -> None:
    f = square(opt)
    print(
        f"\n2. +-30% square wave, period 120 s, 10 min (stabilisation window {opt.stabilization_s} s), "
        f"{time.perf_counter() - wall:.1f} s wall"
    )
    print(f"{'pool':24} {'rps':>11} {'reversals':>9} {'in window':>9} {'demand rev':>10}  replicas per class")
    for key in opt.pools:
        m = opt.nominal()[key] * 0.7
        seq = [",".join(f"{c}={n}" for c, n in counts.items() if n) for _, counts in f.counts[key]]
        compact = [s for i, s in enumerate(seq) if i == 0 or s != seq[i - 1]]
        print(
            f"{key:24} {m * 0.7:5.1f}<>{m * 1.3:<5.1f} {f.reversals[key]:>9} {f.inside_window[key]:>9}"
            f" {f.demand_reversals[key]:>10}  {' -> '.join(compact)}"
        )


def report_diurnal(opt: Options, day_s: float, plot: Path | None, wall: float) -> None:
    f = diurnal(opt, day_s=day_s)
    scale = 86_400.0 / day_s
    print(
        f"\n3. diurnal day in {day_s:g} virtual s (trough 20% of peak; $ and kWh x{scale:g} to a 24 h day), "
        f"{time.perf_counter() - wall:.1f} s wall"
    )
    print(
        f"{'fleet':14} {'req in SLO':>10} {'p95 in SLO':>10} {'$/day':>9} {'kWh/day':>9} {'vs peak $':>9} "
        f"{'dropped+lost':>12} {'wall s':>7}"
    )
    peak = f.fleets[1]
    for fl in f.fleets:
        dropped = sum(fl.run.dropped.values()) + sum(fl.run.lost.values())
        saving = (fl.dollars / peak.dollars - 1) * 100
        print(
            f"{fl.name:14} {fl.share_within * 100:9.2f}% {fl.windows_within * 100:9.1f}%"
            f" {fl.dollars * scale:9.0f} {fl.kwh * scale:9.0f} {saving:+8.1f}% {dropped:>12} {fl.wall_s:7.1f}"
        )
    _factors(f.fleets[0].run)
    if plot is not None:
        from autoscaling.plot import plot_day

        plot_day(f, plot)
        print(f"   plot: {plot}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--scenario",
        default="step,square,diurnal",
        help="comma-separated: step,square,diurnal; also step-real-time (4 min of wall clock)",
    )
    ap.add_argument(
        "--pools", default=",".join(DEFAULT_POOLS), help=f"example pools, of {','.join(SPEC_RPS)}"
    )
    ap.add_argument("--load", type=float, default=0.5, help="nominal load = the example's demand x this")
    ap.add_argument("--eval-seconds", type=float, default=15.0)
    ap.add_argument("--scrape-seconds", type=float, default=5.0)
    ap.add_argument("--window-seconds", type=float, default=60.0, help="the rate() window")
    ap.add_argument(
        "--burst-seconds", type=float, default=None, help="the burst window (default: window / 4; 0: off)"
    )
    ap.add_argument("--lag-seconds", type=float, default=5.0, help="age of the newest usable scrape")
    ap.add_argument("--startup-seconds", type=float, default=10.0, help="model start-up per new replica")
    ap.add_argument("--stabilization-seconds", type=int, default=300)
    ap.add_argument("--day-seconds", type=float, default=1440.0, help="virtual seconds of the diurnal day")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--churn", type=float, default=None, help="$ per replica move (default: the example policy's)"
    )
    ap.add_argument(
        "--routing",
        choices=("least-outstanding", "weighted"),
        default="least-outstanding",
        help="the simulator's own routing, or capacity-weighted (a gateway given the plan's weights)",
    )
    ap.add_argument(
        "--plot",
        nargs="?",
        const=DEFAULT_PLOT,
        type=Path,
        default=None,
        metavar="PATH",
        help=f"write the diurnal day's PNG (default {DEFAULT_PLOT.relative_to(ROOT)})",
    )
    args = ap.parse_args(argv)
    scenarios = [s.strip() for s in args.scenario.split(",") if s.strip()]
    if args.plot is not None and "diurnal" not in scenarios:
        scenarios.append("diurnal")
    unknown = set(scenarios) - {"step", "square", "diurnal", "step-real-time"}
    if unknown:
        ap.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    timing = Timing(
        args.eval_seconds,
        args.scrape_seconds,
        args.window_seconds,
        args.lag_seconds,
        args.startup_seconds,
        burst_s=args.window_seconds / 4 if args.burst_seconds is None else args.burst_seconds,
    )
    opt = Options(
        pools=tuple(p.strip() for p in args.pools.split(",") if p.strip()),
        load=args.load,
        timing=timing,
        stabilization_s=args.stabilization_seconds,
        seed=args.seed,
        weighted=args.routing == "weighted",
        churn=args.churn,
    )
    print(
        f"pools {', '.join(opt.pools)}; nominal req/s "
        f"{', '.join(f'{k}={v:g}' for k, v in opt.nominal().items())}; "
        f"loop: decide() every {timing.eval_s:g} s (rate window {timing.window_s:g} s, "
        f"burst window {timing.burst_s:g} s, lag {timing.lag_s:g} s); routing {args.routing}"
    )
    for name in scenarios:
        wall = time.perf_counter()
        if name == "step":
            report_step(opt, wall)
        elif name == "step-real-time":
            report_step(opt, wall, real_time=True)
        elif name == "square":
            report_square(opt, wall)
        else:
            report_diurnal(opt, args.day_seconds, args.plot, wall)
    return 0


if __name__ == "__main__":
    sys.exit(main())
