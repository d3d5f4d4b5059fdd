"""One evaluation's query results -> an ``Observed`` per pool.  Pure: no I/O, no clock.

Owns ``PoolQuery`` (what the caller knows of a pool: its key, an own request-rate query, its Ready
replicas per class), ``Limits`` (sample age, minimum requests behind a percentile, sanity bounds)
and the rules that turn samples into values: the load is the first-token rate plus the queue's
growth (or the pool's own query); a failed, empty, stale, NaN or absurd load is ``rps=None`` with
the problem; fewer reporting pods than Ready ones keeps the value and says ``PartialCoverage``; a
NaN percentile or one resting on too few requests is "no sample", never 0 and never a breach.  The
burst load (the same over the short window) and the per-class queue and KV cache are extras: when
they cannot be read they are ``None`` with a detail, and the long-window reading still stands; so
are a request-mix pool's token-length histograms.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

from inferfleet.core.mixfit import Histogram
from inferfleet.core.observed import ClassSample, MetricsProblem, Observed
from inferfleet.observe.parse import DETAIL_LIMIT, QueryError, Sample
from inferfleet.observe.queries import CLASS_SIGNALS, Signal

__all__ = ["Limits", "PoolQuery", "Result", "assemble"]

Result = list[Sample] | QueryError
Key = tuple[str, str]
_GUARDS = (Signal.WAITING, Signal.KV_USAGE)  # their failure is a detail, not a problem


@dataclasses.dataclass(frozen=True)
class PoolQuery:
    """A pool to read: ``key`` is "namespace/name"; ``ready`` the Ready replicas per class."""

    namespace: str
    name: str
    ready: Mapping[str, int] = dataclasses.field(default_factory=dict)
    rate_query: str | None = None  # spec.demand.autoscaling.requestRateQuery ({namespace}, {pool})
    mix: bool = False  # the pool has a request mix: read its token-length histograms

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclasses.dataclass(frozen=True)
class Limits:
    max_sample_age_s: float = 120.0  # older: StaleSamples
    min_requests: float = 20.0  # fewer in the window: no latency sample (not a breach)
    max_rps: float = 1e6  # beyond: AbsurdValue
    max_latency_s: float = 86_400.0
    max_tokens: float = 1e8


class _Notes:
    """The first problem found (it names the condition) and every detail (for status and events)."""

    def __init__(self) -> None:
        self.problem: MetricsProblem | None = None
        self.details: list[str] = []

    def add(self, problem: MetricsProblem | None, detail: str) -> None:
        if self.problem is None:
            self.problem = problem
        self.details.append(detail)

    def error(self, err: QueryError, prefix: str = "", *, fatal: bool = True) -> None:
        """A failed query; one like it already noted (same server message) is not repeated.  Not
        ``fatal``: a detail only (an extra signal; the reading still stands)."""
        problem = err.problem if fatal else None
        if any(err.message in d for d in self.details):
            if self.problem is None:
                self.problem = problem
            return
        self.add(problem, prefix + err.detail)

    @property
    def detail(self) -> str:
        return "; ".join(self.details)[:DETAIL_LIMIT]


class _Index:
    """Results by signal, then (namespace, pool), then accelerator class for class signals."""

    def __init__(self, results: Mapping[Signal, Result], queries: Mapping[Signal, str]) -> None:
        self.queries = queries
        self.errors: dict[Signal, QueryError] = {}
        self.pool: dict[Signal, dict[Key, Sample]] = {}
        self.cls: dict[Signal, dict[Key, dict[str, Sample]]] = {}
        for signal, result in results.items():
            if isinstance(result, QueryError):
                self.errors[signal] = result
                continue
            keyed = [(s.labels.get("namespace"), s.labels.get("pool"), s) for s in result]
            if result and not any(ns and pool for ns, pool, _ in keyed):
                self.errors[signal] = QueryError(
                    MetricsProblem.WRONG_SHAPE,
                    queries.get(signal, ""),
                    "no namespace and pool labels on the result (aggregate by (namespace, pool))",
                )
            elif signal in CLASS_SIGNALS:
                by_class = self.cls.setdefault(signal, {})
                for ns, pool, s in keyed:
                    by_class.setdefault((ns or "", pool or ""), {})[s.labels.get("accelerator_class", "")] = s
            else:
                self.pool[signal] = {(ns or "", pool or ""): s for ns, pool, s in keyed}

    def get(self, signal: Signal, key: Key) -> Sample | QueryError | None:
        return self.errors.get(signal) or self.pool.get(signal, {}).get(key)

    def classes(self, signal: Signal, key: Key) -> Mapping[str, Sample] | QueryError:
        return self.errors.get(signal) or self.cls.get(signal, {}).get(key, {})


def _check(value: float, what: str, bound: float, notes: _Notes) -> float | None:
    if not math.isfinite(value):
        notes.add(MetricsProblem.NOT_A_NUMBER, f"{what} is {value}")
        return None
    if value < 0 or value > bound:
        notes.add(MetricsProblem.ABSURD, f"{what} is {value:g} (outside 0..{bound:g})")
        return None
    return value


def _load(
    pool: PoolQuery, idx: _Index, override: tuple[str, Result] | None, limits: Limits, notes: _Notes
) -> tuple[float | None, float | None]:
    """(rps, sample age); rps None whenever it cannot be trusted (the problem noted first)."""
    key = (pool.namespace, pool.name)
    if override is not None:
        query, result = override
        if isinstance(result, QueryError):
            notes.error(result, "requestRateQuery: ")
            return None, None
        if len(result) != 1:
            problem = MetricsProblem.EMPTY if not result else MetricsProblem.WRONG_SHAPE
            notes.add(
                problem, f"requestRateQuery gave {len(result)} series, needs 1 (sum it) (query: {query})"
            )
            return None, None
        raw: Sample | QueryError | None = result[0]
    else:
        raw = idx.get(Signal.FIRST_TOKENS, key)
    if isinstance(raw, QueryError):
        notes.error(raw)
        return None, None
    if raw is None:
        notes.add(
            MetricsProblem.EMPTY, f"no series for {pool.key} (query: {idx.queries[Signal.FIRST_TOKENS]})"
        )
        return None, None
    rps = _check(raw.value, "request rate", limits.max_rps, notes)
    age_sample = idx.get(Signal.SAMPLE_AGE, key)
    age: float | None = None
    if isinstance(age_sample, QueryError):
        notes.error(age_sample)
        return None, None
    if age_sample is not None:
        age = _check(max(0.0, age_sample.value), "sample age", math.inf, notes)
        if age is None:
            return None, None
        if age > limits.max_sample_age_s:
            notes.add(
                MetricsProblem.STALE, f"newest sample is {age:.0f}s old (> {limits.max_sample_age_s:g}s)"
            )
            return None, age
    elif override is None:
        notes.add(
            MetricsProblem.EMPTY,
            f"no current sample for {pool.key}: its pods stopped reporting "
            f"(query: {idx.queries[Signal.SAMPLE_AGE]})",
        )
        return None, None
    if rps is None or override is not None:
        return rps, age
    growth = idx.get(Signal.QUEUE_GROWTH, key)
    if isinstance(growth, QueryError):
        notes.error(growth, "queue growth unknown, load is a lower bound: ")
    elif growth is None:
        notes.add(None, "no queue gauge: load is the first-token rate alone")
    elif not growth.finite:
        notes.add(MetricsProblem.NOT_A_NUMBER, f"queue growth is {growth.value}: load is a lower bound")
    else:
        rps = max(0.0, rps + growth.value)  # a draining queue cannot make arrivals negative
    return rps, age


def _burst(
    pool: PoolQuery, idx: _Index, override: tuple[str, Result] | None, limits: Limits, notes: _Notes
) -> float | None:
    """The load over the short window, or None (a detail noted, never a problem: it only speeds
    up scaling up, and the long window still decides)."""
    key = (pool.namespace, pool.name)
    if override is not None:
        query, result = override
        if isinstance(result, QueryError) or len(result) != 1 or not result[0].finite:
            notes.add(None, f"requestRateQuery over the burst window gave no single number (query: {query})")
            return None
        return result[0].value if 0 <= result[0].value <= limits.max_rps else None
    first = idx.get(Signal.BURST_FIRST_TOKENS, key)
    if isinstance(first, QueryError):
        notes.error(first, "burst window: ", fatal=False)
        return None
    if first is None or not first.finite or not 0 <= first.value <= limits.max_rps:
        return None
    growth = idx.get(Signal.BURST_QUEUE_GROWTH, key)
    extra = growth.value if isinstance(growth, Sample) and growth.finite else 0.0
    return max(0.0, first.value + extra)


def _gauge(found: Mapping[str, Sample] | QueryError, cls: str, bound: float) -> float | None:
    """A saturation gauge of one class, or None when it was not read or makes no sense."""
    if isinstance(found, QueryError):
        return None
    sample = found.get(cls)
    if sample is None or not sample.finite or not 0 <= sample.value <= bound:
        return None
    return sample.value


def _mean_tokens(idx: _Index, signal: Signal, key: Key, limits: Limits, notes: _Notes) -> float | None:
    sample = idx.get(signal, key)
    if isinstance(sample, QueryError):
        notes.error(sample)
        return None
    if sample is None or math.isnan(sample.value):
        return None  # no request finished in the window: no mean, not zero
    return _check(sample.value, str(signal), limits.max_tokens, notes)


def _latency(
    found: Mapping[str, Sample] | QueryError, cls: str, enough: bool, limits: Limits, notes: _Notes
) -> float | None:
    if isinstance(found, QueryError):
        return None  # noted once per pool by _classes
    sample = found.get(cls)
    if sample is None or math.isnan(sample.value) or not enough:
        return None  # idle (0/0) or too few requests: no sample, not a breach
    return _check(sample.value, f"p95 on {cls}", limits.max_latency_s, notes)


def _classes(pool: PoolQuery, idx: _Index, limits: Limits, notes: _Notes) -> tuple[ClassSample, ...]:
    key = (pool.namespace, pool.name)
    found = {s: idx.classes(s, key) for s in CLASS_SIGNALS}
    names = set(pool.ready)
    for signal, by_class in found.items():
        if isinstance(by_class, QueryError):
            if signal in _GUARDS:
                notes.error(by_class, "saturation guard unknown: ", fatal=False)
            else:
                notes.error(by_class)
        else:
            names.update(c for c in by_class if c)
    out = []
    for cls in sorted(names):
        req = found[Signal.REQUESTS]
        raw = req.get(cls) if not isinstance(req, QueryError) else None
        requests = raw.value if raw is not None and raw.finite and raw.value >= 0 else 0.0
        pods = found[Signal.CLASS_PODS]
        n = pods.get(cls) if not isinstance(pods, QueryError) else None
        enough = requests >= limits.min_requests
        out.append(
            ClassSample(
                accelerator_class=cls,
                ttft_p95_s=_latency(found[Signal.TTFT_P95], cls, enough, limits, notes),
                tpot_p95_s=_latency(found[Signal.TPOT_P95], cls, enough, limits, notes),
                requests=requests,
                series=int(n.value) if n is not None and n.finite else 0,
                waiting=_gauge(found[Signal.WAITING], cls, limits.max_rps * 3600),
                kv_usage=_gauge(found[Signal.KV_USAGE], cls, 1.5),
            )
        )
    return tuple(out)


def _histogram(result: Result | None, what: str, notes: _Notes) -> Histogram | None:
    """A ``sum by (namespace, pool, le)`` histogram of one pool, or None (a detail, not a problem:
    without it the mix stays as planned and the load still stands)."""
    if result is None:
        return None
    if isinstance(result, QueryError):
        notes.error(result, f"request mix unknown ({what}): ", fatal=False)
        return None
    points = []
    for sample in result:
        try:
            edge = float(sample.labels.get("le", ""))
        except ValueError:
            continue
        if not math.isnan(sample.value):
            points.append((edge, max(0.0, sample.value)))
    if not points:
        notes.add(None, f"request mix unknown: no {what} histogram for the pool")
        return None
    points.sort()
    counts, top = [], 0.0
    for _, count in points:  # cumulative counts never fall (increase() can jitter by a sample)
        top = max(top, count)
        counts.append(top)
    return Histogram(tuple(e for e, _ in points), tuple(counts))


def _series(idx: _Index, key: Key, notes: _Notes) -> int:
    sample = idx.get(Signal.PODS, key)
    if isinstance(sample, QueryError):
        notes.error(sample)
        return 0
    return int(sample.value) if sample is not None and sample.finite else 0


def _coverage(pool: PoolQuery, series: int, classes: Sequence[ClassSample], notes: _Notes) -> None:
    want = sum(pool.ready.values())
    if series < want:
        notes.add(MetricsProblem.PARTIAL, f"{series} of {want} Ready pods report")
    for c in classes:
        ready = pool.ready.get(c.accelerator_class, 0)
        if c.series < ready:
            notes.add(
                MetricsProblem.PARTIAL, f"{c.accelerator_class}: {c.series} of {ready} Ready pods report"
            )


def assemble(
    pools: Sequence[PoolQuery],
    results: Mapping[Signal, Result],
    queries: Mapping[Signal, str],
    overrides: Mapping[str, tuple[str, Result]],
    now: float,
    limits: Limits | None = None,
    *,
    burst_overrides: Mapping[str, tuple[str, Result]] | None = None,
    mixes: Mapping[str, Mapping[Signal, Result]] | None = None,
    window_s: float = 120.0,
    burst_window_s: float = 30.0,
) -> dict[str, Observed]:
    """``Observed`` per pool key from the batch ``results`` (and the pools' own rate queries, over
    the long window and, in ``burst_overrides``, the short one)."""
    limits = limits or Limits()
    idx = _Index(results, queries)
    out: dict[str, Observed] = {}
    for pool in pools:
        key = (pool.namespace, pool.name)
        notes = _Notes()
        rps, age = _load(pool, idx, overrides.get(pool.key), limits, notes)
        own_burst = (burst_overrides or {}).get(pool.key)
        burst = None
        if rps is not None and (pool.key not in overrides or own_burst is not None):
            burst = _burst(pool, idx, own_burst, limits, notes)
        input_tokens = _mean_tokens(idx, Signal.INPUT_TOKENS, key, limits, notes)
        output_tokens = _mean_tokens(idx, Signal.OUTPUT_TOKENS, key, limits, notes)
        series = _series(idx, key, notes)
        classes = _classes(pool, idx, limits, notes)
        _coverage(pool, series, classes, notes)
        mix = (mixes or {}).get(pool.key, {})
        lengths = (
            (
                _histogram(mix.get(Signal.INPUT_LENGTHS), "prompt-length", notes),
                _histogram(mix.get(Signal.OUTPUT_LENGTHS), "generated-length", notes),
            )
            if pool.mix
            else (None, None)
        )
        out[pool.key] = Observed(
            at=now,
            rps=rps,
            burst_rps=burst,
            problem=notes.problem,
            detail=notes.detail,
            classes=classes,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            sample_age_s=age,
            series=series,
            window_s=window_s,
            burst_window_s=burst_window_s,
            input_lengths=lengths[0],
            output_lengths=lengths[1],
        )
    return out
