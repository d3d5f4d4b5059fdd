"""Demand as a mix of request sizes: the bucket checks, a replica's rates per bucket, the mixture's
rate, and the best split of a size-aware pool's buckets over given replicas.

A pool may give its demand as buckets (:class:`~inferfleet.core.types.Bucket`: a representative
request and a share of the pool's req/s).  Per class, every bucket is rated at one device count
(:func:`bucket_rates`): each bucket's own estimate (a measured profile's covering bucket, else the
roofline), then the buckets whose best device count differs are rated again analytically at the
largest count any bucket needs (a replica has one shape whatever it serves).

Capacity of a replica that sees a mix (docs/performance-model.md, "Request mixes"): a request of
bucket ``b`` takes ``1 / rps_b`` of a replica's second at its SLO-bound operating point, so a replica
serving ``x_b`` req/s of each bucket is within its capacity while ``sum_b x_b / rps_b <= 1``
(Mélange's load model).  Mixed routing sends every replica the whole mix (``x_b = s_b * rate``),
so its rate is exactly ``1 / sum_b (s_b / rps_b)`` (:func:`mixture_rps`), the share-weighted
harmonic mean, never the typical request's.  The assumption: the time a replica spends on a
bucket's requests at that bucket's SLO batch is additive across buckets.  Batches differ per bucket;
a short request decoding beside a long prompt's prefill sees a longer step than in its own
bucket's measurement, which this model does not see (chunked prefill bounds it).

Size-aware routing: the plan chooses ``x[b, j]``, the fraction of bucket ``b`` sent to column ``j``,
within ``sum_b x[b, j] * need_b / rps[b, j] <= n_j``; :func:`best_split` gives the split that serves
the most for fixed replica counts (an LP, in HiGHS).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from inferfleet.core.highs import INF, Solver, SparseModel
from inferfleet.core.performance import estimate, estimate_on_devices
from inferfleet.core.types import (
    SLO,
    AcceleratorClass,
    Bucket,
    Estimate,
    Pool,
    Routing,
    Unfit,
    UnfitKind,
)

__all__ = [
    "SHARE_TOL",
    "best_split",
    "bucket_rates",
    "check_buckets",
    "mixture_rps",
    "size_aware",
    "split_and_margins",
]

FloatArray = npt.NDArray[np.float64]
SHARE_TOL = 1e-6  # shares may miss 1 by this much


def size_aware(pool: Pool) -> bool:
    """Whether the plan splits the pool's buckets across classes (two or more, size-aware)."""
    return pool.routing is Routing.SIZE_AWARE and len(pool.buckets) > 1


def check_buckets(pool: Pool) -> None:
    """ValueError naming the pool and bucket when the buckets are not a distribution of sizes."""
    total = 0.0
    seen: dict[tuple[int, int], int] = {}
    for i, b in enumerate(pool.buckets):
        where = f"pool {pool.key}: bucket {i} ({b.workload.input_tokens} in, {b.workload.output_tokens} out)"
        if not math.isfinite(b.share) or b.share <= 0:
            raise ValueError(f"{where}: share must be a positive number, got {b.share!r}")
        if b.workload.input_tokens <= 0 or b.workload.output_tokens < 0:
            raise ValueError(f"{where}: needs input tokens > 0 and output tokens >= 0")
        key = (b.workload.input_tokens, b.workload.output_tokens)
        if key in seen:
            raise ValueError(f"{where}: the same request size as bucket {seen[key]}")
        seen[key] = i
        total += b.share
    if pool.buckets and abs(total - 1.0) > SHARE_TOL:
        raise ValueError(f"pool {pool.key}: bucket shares sum to {total:.6g}, not 1")


def mixture_rps(shares: Sequence[float], rates: Sequence[float]) -> float:
    """Req/s of a replica that sees every bucket in its share: ``1 / sum_b (s_b / rps_b)`` (0 when a
    bucket with a share has no rate)."""
    live = [(s, r) for s, r in zip(shares, rates, strict=True) if s > 0]
    if len(live) == 1:  # one bucket: its own rate, to the last bit
        return max(live[0][1], 0.0)
    load = 0.0
    for s, r in live:
        if s <= 0:
            continue
        if r <= 0:
            return 0.0
        load += s / r
    return 1.0 / load if load > 0 else 0.0


def _label(b: Bucket, i: int) -> str:
    return f"bucket {i} ({b.workload.input_tokens} in, {b.workload.output_tokens} out)"


def bucket_rates(pool: Pool, slo: SLO, cls: AcceleratorClass) -> tuple[Estimate, tuple[float, ...]] | Unfit:
    """A replica of the pool on ``cls``: its shape and mixture rate, and its req/s per bucket.

    Mixed routing: unfit when any bucket is (every replica sees every bucket).  Size-aware: a
    bucket the class cannot serve at the SLO gets rate 0; unfit only when none can be served.
    Latencies are the worst of the buckets'; the estimate's rate is :func:`mixture_rps`.
    """
    first: list[Estimate | Unfit] = [estimate(pool.model, b.workload, slo, cls) for b in pool.buckets]
    fitted = [e for e in first if isinstance(e, Estimate)]
    if not fitted:
        return next(e for e in first if isinstance(e, Unfit))
    devices = max(e.devices for e in fitted)
    ests: list[Estimate | Unfit] = []
    for b, e in zip(pool.buckets, first, strict=True):
        if isinstance(e, Estimate) and (e.devices == devices or e.source == "profile"):
            ests.append(e)
        else:  # rated at the replica's shape (a bucket that needed fewer devices, or none fitted)
            ests.append(estimate_on_devices(pool.model, b.workload, slo, cls, devices))
    rates = tuple(e.rps if isinstance(e, Estimate) else 0.0 for e in ests)
    if pool.routing is Routing.MIXED or len(pool.buckets) == 1:
        for i, (b, e) in enumerate(zip(pool.buckets, ests, strict=True)):
            if isinstance(e, Unfit):
                return Unfit(e.kind, f"{_label(b, i)}: {e.reason}")
    ok = [e for e in ests if isinstance(e, Estimate)]
    if not ok:  # pragma: no cover - the device count came from a bucket that fitted
        return Unfit(UnfitKind.SLO, "no bucket can be served at the SLO")
    mix = mixture_rps([b.share for b in pool.buckets], rates)
    sources = {e.source for e in ok}
    est = Estimate(
        devices=devices,
        rps=mix,
        ttft_s=max(e.ttft_s for e in ok),
        tpot_s=max(e.tpot_s for e in ok),
        batch=max(e.batch for e in ok),
        source="profile" if sources == {"profile"} else "analytic",
    )
    return est, rates


_SOLVERS: list[Solver] = []


def _solver() -> Solver:
    """One HiGHS instance for these small LPs, reused (each pass_model replaces the last model)."""
    if not _SOLVERS:
        _SOLVERS.append(Solver({"threads": 1, "random_seed": 1729}))
    return _SOLVERS[0]


def best_split(shares: FloatArray, load: FloatArray, counts: FloatArray) -> tuple[FloatArray, float]:
    """The split of one pool's buckets over its columns that serves the most, for fixed replicas.

    ``shares[b]`` the buckets' shares, ``load[b, j]`` the replicas column ``j`` needs for all of
    bucket ``b`` (``inf`` where it cannot serve it), ``counts[j]`` its replicas.  Returns ``y[b, j]``
    (the fraction of bucket ``b`` on column ``j``) and the fraction of the pool's requests served.
    """
    y, served, _ = split_and_margins(shares, load, counts)
    return y, served


def split_and_margins(
    shares: FloatArray, load: FloatArray, counts: FloatArray
) -> tuple[FloatArray, float, FloatArray]:
    """:func:`best_split`, and per column the served fraction one more replica adds at most (the
    LP's dual value of its capacity; the served fraction is concave in each count, so ``k`` more
    replicas add at most ``k`` times it).  A column without replicas is tried at a tiny capacity."""
    nb, nc = load.shape
    y = np.zeros((nb, nc), dtype=np.float64)
    margins = np.zeros(nc, dtype=np.float64)
    cap = np.where(counts > 0, counts, 1e-9).astype(np.float64)
    ok = np.isfinite(load)
    bs, cs = np.nonzero(ok)
    if len(bs) == 0:
        return y, 0.0, margins
    k = len(bs)
    # rows: one per bucket (sum_j y <= 1), one per column (sum_b load y <= n)
    rows = np.concatenate([bs, nb + cs]).astype(np.int64)
    cols = np.concatenate([np.arange(k), np.arange(k)]).astype(np.int64)
    vals = np.concatenate([np.ones(k), load[bs, cs]])
    order = np.lexsort((rows, cols))
    start = np.zeros(k + 1, dtype=np.int64)
    np.cumsum(np.bincount(cols, minlength=k), out=start[1:])
    model = SparseModel(
        col_cost=-shares[bs],
        col_lower=np.zeros(k),
        col_upper=np.ones(k),
        row_lower=np.full(nb + nc, -INF),
        row_upper=np.concatenate([np.ones(nb), cap]),
        start=start,
        index=rows[order],
        value=vals[order],
    )
    h = _solver()
    h.pass_model(model)
    res = h.run(10.0)
    if not res.ok:  # pragma: no cover - the LP is feasible (y = 0) and bounded
        return y, 0.0, margins
    margins = np.abs(h.row_duals()[nb:])
    v = np.clip(res.values, 0.0, 1.0)
    v[counts[cs] <= 0] = 0.0  # the tiny capacity of a column without replicas
    # keep every column within its replicas despite the LP's tolerances
    use = np.bincount(cs, weights=load[bs, cs] * v, minlength=nc)
    scale = np.where(use > counts, counts / np.maximum(use, 1e-300), 1.0)
    v = v * scale[cs]
    per = np.bincount(bs, weights=v, minlength=nb)
    v = v / np.maximum(per[bs], 1.0)
    y[bs, cs] = v
    return y, float(np.clip(shares @ y.sum(axis=1), 0.0, 1.0)), margins
