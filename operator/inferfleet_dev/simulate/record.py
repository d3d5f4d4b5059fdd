"""The ground truth: every finished request, in memory (p95 TTFT/TPOT over a window) and as JSONL.

Owns the simulator's own account of latency, computed from the requests themselves rather than
from histograms, so tests and people can compare what Prometheus says with what happened.  A
``Recorder`` keeps the requests that finished in the last ``keep_seconds`` and optionally appends
each one to a JSONL log (one object a line: pool, class, pod, arrival, first token, finish, tokens).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections import deque
from collections.abc import Iterable
from typing import IO

from inferfleet_dev.simulate.engine import Request

__all__ = ["Done", "Recorder", "Tap", "quantile"]


@dataclasses.dataclass(frozen=True, slots=True)
class Done:
    pool: str
    accelerator_class: str
    pod: str
    arrival: float
    first_token: float
    finish: float
    n_in: int
    n_out: int

    @property
    def ttft(self) -> float:
        return self.first_token - self.arrival

    @property
    def tpot(self) -> float | None:
        return (self.finish - self.first_token) / (self.n_out - 1) if self.n_out > 1 else None


def quantile(values: Iterable[float], q: float) -> float | None:
    """The ``q`` quantile (nearest rank) or None for no values."""
    xs = sorted(values)
    if not xs:
        return None
    return xs[min(len(xs) - 1, max(0, math.ceil(q * len(xs)) - 1))]


class Tap:
    """An engine observer that hands finished requests of one replica to the recorder."""

    def __init__(self, recorder: Recorder, pod: str, accelerator_class: str) -> None:
        self.recorder, self.pod, self.cls = recorder, pod, accelerator_class

    def first_token(self, req: Request) -> None:
        pass

    def decode_step(self, seconds: float, sequences: int) -> None:
        pass

    def finished(self, req: Request) -> None:
        assert req.first_token is not None and req.finish is not None
        self.recorder.add(
            Done(req.pool, self.cls, self.pod, req.arrival, req.first_token, req.finish, req.n_in, req.n_out)
        )


class Recorder:
    """Finished requests of the last ``keep_seconds`` (by finish time), and an optional JSONL log."""

    def __init__(self, keep_seconds: float = 300.0, log: IO[str] | None = None) -> None:
        self.keep_seconds = keep_seconds
        self.log = log
        self.done: deque[Done] = deque()
        self.total = 0

    def observer(self, pod: str, accelerator_class: str) -> Tap:
        return Tap(self, pod, accelerator_class)

    def add(self, d: Done) -> None:
        self.done.append(d)
        self.total += 1
        while self.done and self.done[0].finish < d.finish - self.keep_seconds:
            self.done.popleft()
        if self.log is not None:
            row = dataclasses.asdict(d)
            row["acceleratorClass"] = row.pop("accelerator_class")
            row["nIn"], row["nOut"] = row.pop("n_in"), row.pop("n_out")
            row["firstToken"] = row.pop("first_token")
            self.log.write(json.dumps(row, separators=(",", ":")) + "\n")

    def window(
        self, now: float, seconds: float, *, pool: str | None = None, accelerator_class: str | None = None
    ) -> list[Done]:
        return [
            d
            for d in self.done
            if d.finish >= now - seconds
            and (pool is None or d.pool == pool)
            and (accelerator_class is None or d.accelerator_class == accelerator_class)
        ]

    def p95(self, done: list[Done]) -> dict[str, float | int | None]:
        """Count, p95 TTFT and p95 TPOT (s) of ``done``."""
        return {
            "requests": len(done),
            "p95TtftSeconds": quantile((d.ttft for d in done), 0.95),
            "p95TpotSeconds": quantile((t for d in done if (t := d.tpot) is not None), 0.95),
        }
