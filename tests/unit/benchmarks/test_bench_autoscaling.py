"""The autoscaling benchmark's closed loop on tiny scenarios (virtual time, seconds of CPU): a 3x
step is planned within two evaluations and the ground-truth p95 comes back under the SLO; a +-30%
square wave inside the stabilisation window never takes replicas back down, while the same wave
with no window does (so the count can see a reversal)."""

from __future__ import annotations

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[3] / "benchmarks"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

from autoscaling.scenarios import Options, reversals, square, step  # noqa: E402

POOL = "batch/summarise-batch"  # small replicas (1 device): a step needs more of them at once


def test_reversals_counts_direction_changes_and_those_inside_the_window() -> None:
    series = [(0.0, 1.0), (15.0, 2.0), (30.0, 2.0), (45.0, 1.0), (400.0, 3.0)]
    assert reversals(series, 300.0) == (2, 1)  # down 30 s after the up; up 355 s after the down
    assert reversals([(0.0, 1.0), (15.0, 2.0), (30.0, 3.0)], 300.0) == (0, 0)


def test_a_3x_step_is_planned_within_two_evaluations_and_p95_returns_under_the_slo() -> None:
    opt = Options(pools=(POOL,), load=0.3)
    f = step(opt, at=60.0, after=300.0)
    before, after = f.replicas[POOL]
    assert after > before
    first = f.first_increase_evals[POOL]
    assert first is not None and first <= 2
    assert f.recovery_s[POOL] is not None  # back within the SLO, and still there at the end
    last = f.run.samples[-1]
    slo_ttft, slo_tpot = f.run.slos[POOL]
    assert last.ttft_p95[POOL] is not None and last.ttft_p95[POOL] <= slo_ttft
    assert last.tpot_p95[POOL] is not None and slo_tpot is not None and last.tpot_p95[POOL] <= slo_tpot
    demands = [r.demand[POOL] for r in f.run.rounds]
    assert max(demands) > 2.5 * demands[0]  # the measured demand followed the step


def test_a_square_wave_inside_the_stabilisation_window_takes_nothing_back() -> None:
    held = square(Options(pools=(POOL,), load=0.3, stabilization_s=300), minutes=6.0)
    assert held.inside_window[POOL] == 0
    assert held.demand_reversals[POOL] == 0
    assert max(r.demand[POOL] for r in held.run.rounds) > min(r.demand[POOL] for r in held.run.rounds)
    free = square(Options(pools=(POOL,), load=0.3, stabilization_s=0), minutes=6.0)
    assert free.demand_reversals[POOL] >= 2  # without the window the wave is followed down and up
