"""Offered load: rate profiles over time, Poisson arrivals from them, and request token lengths.

Owns the profile kinds (constant, step, ramp, square wave, diurnal sinusoid with a compressible
day, CSV trace of ``time,rps`` held piecewise constant), their parsing from JSON/YAML mappings
(``profile_from``), the non-homogeneous Poisson arrival process (thinning against the profile's
peak, seeded RNG) and token-length distributions (fixed, uniform, lognormal around the pool's
``spec.demand`` figures).  Profile time is seconds since the profile was set.
"""

from __future__ import annotations

import bisect
import csv
import dataclasses
import math
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "Arrivals",
    "Constant",
    "Diurnal",
    "Profile",
    "Ramp",
    "Square",
    "Step",
    "TokenDist",
    "Trace",
    "profile_from",
    "tokens_from",
]


class Profile:
    """Offered requests/s as a function of profile time."""

    def rate(self, t: float) -> float:
        raise NotImplementedError

    def peak(self) -> float:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        fields: dict[str, Any] = dataclasses.asdict(self) if dataclasses.is_dataclass(self) else {}
        return {"kind": type(self).__name__.lower(), **fields}


@dataclasses.dataclass(frozen=True)
class Constant(Profile):
    rps: float

    def rate(self, t: float) -> float:
        return self.rps

    def peak(self) -> float:
        return self.rps


@dataclasses.dataclass(frozen=True)
class Step(Profile):
    before: float
    at: float
    rps: float

    def rate(self, t: float) -> float:
        return self.before if t < self.at else self.rps

    def peak(self) -> float:
        return max(self.before, self.rps)


@dataclasses.dataclass(frozen=True)
class Ramp(Profile):
    start: float
    end: float
    seconds: float

    def rate(self, t: float) -> float:
        frac = min(1.0, max(0.0, t / self.seconds)) if self.seconds > 0 else 1.0
        return self.start + (self.end - self.start) * frac

    def peak(self) -> float:
        return max(self.start, self.end)


@dataclasses.dataclass(frozen=True)
class Square(Profile):
    low: float
    high: float
    period: float  # seconds; low for the first half of each period

    def rate(self, t: float) -> float:
        return self.low if (t % self.period) < self.period / 2.0 else self.high

    def peak(self) -> float:
        return max(self.low, self.high)


@dataclasses.dataclass(frozen=True)
class Diurnal(Profile):
    low: float
    high: float
    day_seconds: float = 86400.0  # compress a day for tests and demos

    def rate(self, t: float) -> float:  # trough at t = 0 (midnight), peak at half a day
        phase = 2.0 * math.pi * t / self.day_seconds
        return self.low + (self.high - self.low) * (1.0 - math.cos(phase)) / 2.0

    def peak(self) -> float:
        return max(self.low, self.high)


@dataclasses.dataclass(frozen=True)
class Trace(Profile):
    """Piecewise-constant rates from ``(time, rps)`` points; the last rate holds afterwards."""

    times: tuple[float, ...]
    rates: tuple[float, ...]

    def rate(self, t: float) -> float:
        i = bisect.bisect_right(self.times, t) - 1
        return self.rates[i] if i >= 0 else 0.0

    def peak(self) -> float:
        return max(self.rates, default=0.0)

    @classmethod
    def from_csv(cls, path: Path) -> Trace:
        points: list[tuple[float, float]] = []
        with path.open(newline="", encoding="utf-8") as f:
            for n, row in enumerate(csv.reader(f), start=1):
                if not row or row[0].strip().startswith("#"):
                    continue
                try:
                    points.append((float(row[0]), float(row[1])))
                except (ValueError, IndexError):
                    if n == 1:
                        continue  # a header line
                    raise ValueError(f"{path}:{n}: expected 'time,rps', got {','.join(row)!r}") from None
        if not points:
            raise ValueError(f"{path}: no (time, rps) rows")
        points.sort()
        return cls(tuple(p[0] for p in points), tuple(p[1] for p in points))


def _num(spec: Mapping[str, Any], key: str, default: float | None = None) -> float:
    value = spec.get(key, default)
    if value is None:
        raise ValueError(f"profile {spec.get('kind')!r} needs {key!r}")
    number = float(value)
    if number < 0 or math.isnan(number):
        raise ValueError(f"profile field {key!r} must be a number >= 0, got {value!r}")
    return number


def profile_from(spec: Mapping[str, Any] | float, base: Path | None = None) -> Profile:
    """A profile from a mapping like ``{"kind": "square", "low": 2, "high": 8, "period": 60}``."""
    if isinstance(spec, int | float):
        return Constant(_num({"rps": spec}, "rps"))
    kind = str(spec.get("kind", "constant"))
    if kind == "constant":
        return Constant(_num(spec, "rps"))
    if kind == "step":
        return Step(_num(spec, "before", 0.0), _num(spec, "at"), _num(spec, "rps"))
    if kind == "ramp":
        return Ramp(_num(spec, "start", 0.0), _num(spec, "end"), _num(spec, "seconds"))
    if kind == "square":
        period = _num(spec, "period")
        if period <= 0:
            raise ValueError("profile 'square' needs period > 0")
        return Square(_num(spec, "low"), _num(spec, "high"), period)
    if kind == "diurnal":
        day = _num(spec, "daySeconds", 86400.0)
        if day <= 0:
            raise ValueError("profile 'diurnal' needs daySeconds > 0")
        return Diurnal(_num(spec, "low"), _num(spec, "high"), day)
    if kind == "csv":
        path = Path(str(spec.get("file", "")))
        if base is not None and not path.is_absolute():
            path = base / path
        return Trace.from_csv(path)
    raise ValueError(f"unknown profile kind {kind!r} (constant, step, ramp, square, diurnal, csv)")


@dataclasses.dataclass(frozen=True)
class TokenDist:
    """Token lengths around ``mean``: fixed, uniform on [mean x (1 - spread), mean x (1 + spread)],
    or lognormal with that mean and ``sigma``; at least ``low`` and at most ``high``."""

    kind: str = "fixed"
    spread: float = 0.5
    sigma: float = 0.5

    def draw(self, rng: random.Random, mean: int, low: int = 1, high: int = 1 << 30) -> int:
        if self.kind == "fixed" or mean <= 0:
            value = float(mean)
        elif self.kind == "uniform":
            value = rng.uniform(mean * (1 - self.spread), mean * (1 + self.spread))
        else:
            value = rng.lognormvariate(math.log(mean) - self.sigma**2 / 2.0, self.sigma)
        return int(min(high, max(low if mean > 0 else 0, round(value))))


def tokens_from(spec: Mapping[str, Any] | None) -> TokenDist:
    spec = spec or {}
    kind = str(spec.get("kind", "fixed"))
    if kind not in ("fixed", "uniform", "lognormal"):
        raise ValueError(f"unknown token distribution {kind!r} (fixed, uniform, lognormal)")
    return TokenDist(kind, float(spec.get("spread", 0.5)), float(spec.get("sigma", 0.5)))


class Arrivals:
    """Poisson arrival times of a profile started at ``start`` (thinning against its peak)."""

    def __init__(self, profile: Profile, rng: random.Random, start: float) -> None:
        self.profile = profile
        self.rng = rng
        self.start = start
        self._peak = profile.peak()
        self._t = start
        self._candidate: float | None = None

    def until(self, t: float) -> list[float]:
        """Arrival times in (previous call, ``t``]; candidates are drawn no further than ``t``."""
        out: list[float] = []
        if self._peak <= 0:
            return out
        while True:
            if self._candidate is None:
                self._candidate = self._t + self.rng.expovariate(self._peak)
            if self._candidate > t:
                return out
            self._t, self._candidate = self._candidate, None
            if self.rng.random() * self._peak < self.profile.rate(self._t - self.start):
                out.append(self._t)

    def rate_now(self, t: float) -> float:
        return self.profile.rate(t - self.start)
