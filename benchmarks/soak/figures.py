"""What the soak reports, computed from plain samples (pure: no cluster, no clock).

Owns ``rss_slope`` (the operator's memory growth in MB per hour: one least-squares slope over
every operator process of the run, each with its own intercept, so a restart's drop to a fresh
process is not read as a fall, and the first ``warmup_s`` of each process, while caches fill, left
out; ``per_process``: each process's own first, last and slope), ``tracebacks`` (the exceptions the
operator logged with a stack: the exception line of each ``Traceback (most recent call last):``
block, counted), and ``schedule`` / ``loads`` (the faults in turn and the load steps, from a seed,
so a run can be repeated).
"""

from __future__ import annotations

import dataclasses
import random
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

__all__ = ["ProcessRss", "RssSample", "Step", "loads", "per_process", "rss_slope", "schedule", "tracebacks"]

TRACEBACK = "Traceback (most recent call last):"


@dataclasses.dataclass(frozen=True)
class RssSample:
    t: float  # seconds since the run began
    pid: int
    mb: float
    started: float  # when this process started, same clock


def rss_slope(samples: Iterable[RssSample], warmup_s: float = 60.0) -> float | None:
    """MB per hour: the slope shared by every process (within-process least squares), over the
    samples taken at least ``warmup_s`` after their process started; None with fewer than two such
    samples in any one process, or no spread in time."""
    by_pid: dict[int, list[RssSample]] = {}
    for s in samples:
        if s.t - s.started >= warmup_s:
            by_pid.setdefault(s.pid, []).append(s)
    num = den = 0.0
    for group in by_pid.values():
        if len(group) < 2:
            continue
        t_mean = sum(s.t for s in group) / len(group)
        y_mean = sum(s.mb for s in group) / len(group)
        num += sum((s.t - t_mean) * (s.mb - y_mean) for s in group)
        den += sum((s.t - t_mean) ** 2 for s in group)
    if den == 0.0:
        return None
    return num / den * 3600.0


@dataclasses.dataclass(frozen=True)
class ProcessRss:
    """One operator process's RSS after its warm-up: first and last sample, its own slope."""

    pid: int
    span_s: float
    first_mb: float
    last_mb: float
    slope: float | None  # MB per hour


def per_process(samples: Iterable[RssSample], warmup_s: float = 60.0) -> list[ProcessRss]:
    """Each process's samples after ``warmup_s``, longest-lived first."""
    by_pid: dict[int, list[RssSample]] = {}
    for s in samples:
        if s.t - s.started >= warmup_s:
            by_pid.setdefault(s.pid, []).append(s)
    out = [
        ProcessRss(pid, group[-1].t - group[0].t, group[0].mb, group[-1].mb, rss_slope(group, warmup_s))
        for pid, group in by_pid.items()
    ]
    return sorted(out, key=lambda p: -p.span_s)


def tracebacks(log: str) -> Counter[str]:
    """The exceptions logged with a traceback, by type (``KeyError``, ``urllib3.exceptions.ProtocolError``):
    for each ``Traceback (most recent call last):`` block, its first line that is not indented (the
    frames are) names the exception; a chained exception is its own block and counts too."""
    found: Counter[str] = Counter()
    lines = log.splitlines()
    for i, line in enumerate(lines):
        if not line.rstrip().endswith(TRACEBACK):
            continue
        for after in lines[i + 1 :]:
            if after.strip() and not after.startswith((" ", "\t")):
                found[after.split(":", 1)[0].strip()] += 1
                break
        else:
            found["(unterminated traceback)"] += 1
    return found


@dataclasses.dataclass(frozen=True)
class Step:
    at: float  # seconds since the run began
    fault: str


def schedule(total_s: float, quiet_s: float, every_s: float, faults: Sequence[str], seed: int) -> list[Step]:
    """One fault every ``every_s`` from ``every_s`` on, until ``total_s - quiet_s``: every fault of
    ``faults`` once per round, each round in an order drawn from ``seed``."""
    rng = random.Random(seed)
    out: list[Step] = []
    at, order = every_s, list(faults)
    while at <= total_s - quiet_s and faults:
        rng.shuffle(order)
        for fault in order:
            if at > total_s - quiet_s:
                break
            out.append(Step(at, fault))
            at += every_s
    return out


def loads(
    total_s: float, quiet_s: float, every_s: float, nominal: Mapping[str, float], seed: int
) -> list[tuple[float, dict[str, float]]]:
    """Load steps: at 0 the nominal rates, then every ``every_s`` each pool at nominal x U(0.5, 1.5)
    until ``total_s - quiet_s``, where the nominal rates come back and stay."""
    rng = random.Random(seed + 1)
    out = [(0.0, dict(nominal))]
    at = every_s
    while at < total_s - quiet_s:
        out.append((at, {k: round(v * rng.uniform(0.5, 1.5), 1) for k, v in nominal.items()}))
        at += every_s
    out.append((max(0.0, total_s - quiet_s), dict(nominal)))
    return out
