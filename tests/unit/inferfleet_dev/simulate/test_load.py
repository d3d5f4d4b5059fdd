"""Load profiles give the rates they promise, Poisson arrivals follow them, and token lengths keep
their mean."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from inferfleet_dev.simulate.load import (
    Arrivals,
    Constant,
    Diurnal,
    Ramp,
    Square,
    Step,
    TokenDist,
    Trace,
    profile_from,
    tokens_from,
)


def count(profile_spec: dict[str, object], start: float, end: float, seed: int = 7) -> float:
    """Arrivals per second in [start, end) of a profile started at 100 s on the clock."""
    arrivals = Arrivals(profile_from(profile_spec), random.Random(seed), start=100.0)
    times = arrivals.until(100.0 + end)
    return sum(100.0 + start <= t < 100.0 + end for t in times) / (end - start)


def test_profiles_from_mappings_have_the_right_rates(tmp_path: Path) -> None:
    assert profile_from(12.5) == Constant(12.5)
    step = profile_from({"kind": "step", "before": 2, "at": 30, "rps": 6})
    assert (step.rate(29.9), step.rate(30.0), step.peak()) == (2.0, 6.0, 6.0)
    ramp = profile_from({"kind": "ramp", "start": 0, "end": 10, "seconds": 100})
    assert [ramp.rate(t) for t in (-1, 50, 200)] == [0.0, 5.0, 10.0]
    square = profile_from({"kind": "square", "low": 1, "high": 9, "period": 20})
    assert [square.rate(t) for t in (0, 9.9, 10, 19.9, 20)] == [1.0, 1.0, 9.0, 9.0, 1.0]
    day = profile_from({"kind": "diurnal", "low": 2, "high": 10, "daySeconds": 60})
    assert isinstance(day, Diurnal)
    assert day.rate(0) == pytest.approx(2.0) and day.rate(30) == pytest.approx(10.0)
    assert day.rate(15) == pytest.approx(6.0) and day.rate(60) == pytest.approx(2.0)
    trace = tmp_path / "trace.csv"
    trace.write_text("time,rps\n0,1\n10,4\n# a comment\n5,2\n")
    got = profile_from({"kind": "csv", "file": "trace.csv"}, base=tmp_path)
    assert got == Trace((0.0, 5.0, 10.0), (1.0, 2.0, 4.0))
    assert [got.rate(t) for t in (-1, 0, 7, 99)] == [0.0, 1.0, 2.0, 4.0]


@pytest.mark.parametrize(
    "spec",
    [
        {"kind": "wave", "rps": 1},
        {"kind": "step", "rps": 1},
        {"kind": "square", "low": 1, "high": 2, "period": 0},
        {"kind": "constant", "rps": -1},
        {"kind": "diurnal", "low": 1, "high": 2, "daySeconds": 0},
    ],
)
def test_bad_profiles_are_refused_with_a_reason(spec: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"."):
        profile_from(spec)


def test_a_bad_csv_row_names_its_line(tmp_path: Path) -> None:
    trace = tmp_path / "t.csv"
    trace.write_text("0,1\n5,lots\n")
    with pytest.raises(ValueError, match=r"t.csv:2: expected 'time,rps'"):
        Trace.from_csv(trace)


def test_poisson_arrivals_follow_step_square_diurnal_and_csv(tmp_path: Path) -> None:
    step = {"kind": "step", "before": 5, "at": 200, "rps": 20}
    assert count(step, 0, 200) == pytest.approx(5, rel=0.1)
    assert count(step, 200, 400) == pytest.approx(20, rel=0.1)
    square = {"kind": "square", "low": 2, "high": 18, "period": 40}
    assert count(square, 0, 400) == pytest.approx(10, rel=0.1)
    lows = Arrivals(profile_from(square), random.Random(3), 0.0).until(400.0)
    in_high = sum((t % 40) >= 20 for t in lows) / len(lows)
    assert in_high == pytest.approx(0.9, abs=0.04)
    day = {"kind": "diurnal", "low": 0, "high": 20, "daySeconds": 400}
    assert count(day, 0, 400) == pytest.approx(10, rel=0.1)  # the mean of the sinusoid
    assert count(day, 150, 250) > 3 * count(day, 0, 50)
    (tmp_path / "t.csv").write_text("0,3\n100,30\n200,0\n")
    trace = {"kind": "csv", "file": str(tmp_path / "t.csv")}
    assert count(trace, 0, 100) == pytest.approx(3, rel=0.2)
    assert count(trace, 100, 200) == pytest.approx(30, rel=0.1)
    assert count(trace, 200, 1000) == 0.0


def test_arrivals_are_seeded_and_incremental() -> None:
    a = Arrivals(Ramp(0, 10, 50), random.Random(1), 0.0)
    b = Arrivals(Ramp(0, 10, 50), random.Random(1), 0.0)
    pieces = a.until(10.0) + a.until(10.0) + a.until(60.0)
    assert pieces == b.until(60.0)
    assert pieces == sorted(pieces) and all(0 < t <= 60 for t in pieces)
    assert Arrivals(Constant(0), random.Random(1), 0.0).until(1e9) == []
    assert Arrivals(Step(1, 0, 0), random.Random(1), 0.0).until(1e6) == []  # peak > 0, rate 0: ends


def test_token_lengths_keep_their_mean_and_bounds() -> None:
    rng = random.Random(2)
    assert TokenDist("fixed").draw(rng, 512) == 512
    assert TokenDist("fixed").draw(rng, 0) == 0  # embeddings: no output tokens
    for dist in (tokens_from({"kind": "uniform", "spread": 0.5}), tokens_from({"kind": "lognormal"})):
        xs = [dist.draw(rng, 512, high=4096) for _ in range(4000)]
        assert sum(xs) / len(xs) == pytest.approx(512, rel=0.05)
        assert min(xs) >= 1 and max(xs) <= 4096 and len(set(xs)) > 50
    assert max(TokenDist("lognormal", sigma=2.0).draw(rng, 512, high=600) for _ in range(200)) == 600
    with pytest.raises(ValueError, match="unknown token distribution"):
        tokens_from({"kind": "zipf"})


def test_square_wave_describes_itself() -> None:
    assert Square(1, 2, 10).describe() == {"kind": "square", "low": 1, "high": 2, "period": 10}
