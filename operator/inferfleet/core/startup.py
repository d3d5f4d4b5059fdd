"""Learnt model start-up time per (pool, class) (pure): how long a new replica takes from being
planned to serving (pod scheduled, image pulled, weights loaded, first scrape).

Owns ``Startup`` (persisted in ``status.autoscaling.classes[]``) and ``observe``: at each
evaluation, a class with more replicas planned than serving starts a measurement at the previous
evaluation (the round whose plan asked for them); when every planned replica serves, the sample is
the midpoint between the previous evaluation and now, less that start, so its error is at most
half an evaluation interval either way (a class that grew and already serves at the next
evaluation started within it: half an interval).  Samples blend into an exponentially weighted mean.  A
replica that stops serving (a crash, a lost node) is measured the same way: what is learnt is the
time to serving, which is what capacity on the way means.
"""

from __future__ import annotations

import dataclasses

__all__ = ["ALPHA", "Startup", "observe"]

ALPHA = 0.5  # weight of a new sample


@dataclasses.dataclass(frozen=True)
class Startup:
    seconds: float | None = None  # the learnt mean; None before the first sample
    samples: int = 0
    since: float | None = None  # a measurement in progress: when the missing replicas were planned
    planned: int = 0  # replicas planned at the last evaluation


def observe(prev: Startup, planned: int, serving: int, previous_eval: float | None, now: float) -> Startup:
    """The class's start-up state after one evaluation."""
    if planned > serving:
        if prev.since is not None:
            return dataclasses.replace(prev, planned=planned)
        start = previous_eval if previous_eval is not None else now
        return dataclasses.replace(prev, since=start, planned=planned)
    if prev.since is not None:
        seen = (previous_eval + now) / 2 if previous_eval is not None and previous_eval >= prev.since else now
        return _learn(prev, max(0.0, seen - prev.since), planned)
    if planned > prev.planned and previous_eval is not None:  # grew, and serves already
        return _learn(prev, max(0.0, now - previous_eval) / 2, planned)
    return dataclasses.replace(prev, planned=planned) if planned != prev.planned else prev


def _learn(prev: Startup, sample: float, planned: int) -> Startup:
    mean = sample if prev.seconds is None else (1 - ALPHA) * prev.seconds + ALPHA * sample
    return Startup(mean, prev.samples + 1, None, planned)
