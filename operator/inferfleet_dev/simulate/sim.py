"""The simulated fleet: replicas of pools on classes, their offered load, faults, and one time axis.

Owns which simulated replicas exist (``sync`` with what the API server shows: Ready pods, their
pools and classes), when each starts serving (Ready time + the class's model start-up time), how a
pool's arrivals are spread (least outstanding among its serving replicas, round-robin on ties; a
size-aware pool's first by its routing table to the Service of its bucket's class, drawn by share),
faults (a slow class, metrics withheld) and the state report.  Pure apart from the optional JSONL
log: ``advance(t)`` is driven by a virtual or a real clock from outside; callers hold ``lock``.
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
import random
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from inferfleet.api.routing import RoutingTable
from inferfleet.core.types import AcceleratorClass, Pool
from inferfleet.reconcile.children import deployment_name
from inferfleet_dev.simulate.calibrate import Calibration, calibrate
from inferfleet_dev.simulate.engine import Replica, Request
from inferfleet_dev.simulate.load import Arrivals, Constant, Profile, TokenDist
from inferfleet_dev.simulate.metrics import ReplicaSeries, render
from inferfleet_dev.simulate.record import Recorder

__all__ = ["Pod", "SimReplica", "Simulation", "per_class"]


def per_class(values: Mapping[str, float], cls: str, fallback: float) -> float:
    """``values[cls]``, else ``values["default"]``, else ``fallback``."""
    return values.get(cls, values.get("default", fallback))


@dataclasses.dataclass(frozen=True)
class Pod:
    """A Ready pod the simulator serves as one replica."""

    namespace: str
    name: str
    pool: str  # the InferencePool's name (same namespace)
    accelerator_class: str
    ready_at: float  # clock seconds its Ready condition turned True

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def pool_key(self) -> str:
        return f"{self.namespace}/{self.pool}"


@dataclasses.dataclass
class SimReplica:
    pod: Pod
    engine: Replica
    series: ReplicaSeries
    serving_from: float
    calibration: Calibration


@dataclasses.dataclass
class _Load:
    profile: Profile
    arrivals: Arrivals
    mix: list[float] | None = None  # weights of the pool's buckets (None: its shares)
    dropped: int = 0  # arrivals with no serving replica


class Simulation:
    def __init__(
        self,
        *,
        startup_seconds: Mapping[str, float] | None = None,
        speed: Mapping[str, float] | None = None,
        max_num_seqs: int | None = 256,  # None: the planner's batch for the (pool, class)
        token_budget: int = 2048,
        tokens: TokenDist | None = None,
        seed: int = 1,
        recorder: Recorder | None = None,
    ) -> None:
        self.lock = threading.RLock()
        self.startup_seconds = dict(startup_seconds or {})
        self.speed = dict(speed or {})
        self.slow: dict[str, float] = {}  # fault: class -> extra factor
        self.hidden: set[str] = set()  # fault: classes whose series are withheld ("*": all)
        self.max_num_seqs = max_num_seqs
        self.token_budget = token_budget
        self.tokens = tokens or TokenDist()
        self.rng = random.Random(seed)
        self.recorder = recorder or Recorder()
        self.pools: dict[str, Pool] = {}
        self.classes: dict[str, AcceleratorClass] = {}
        self.replicas: dict[str, SimReplica] = {}
        self._by_pool: dict[str, list[SimReplica]] = {}
        self.loads: dict[str, _Load] = {}
        self.unknown: dict[str, str] = {}  # pod key -> why it is not simulated
        self.invalid: list[str] = []  # API objects that failed validation (set by the fleet reader)
        self.routes: dict[str, RoutingTable] = {}
        # pool key -> class -> requests dispatched per bucket of the pool's mix (its order)
        self.routed: dict[str, dict[str, list[int]]] = {}
        self.now = 0.0
        self._rr = itertools.count()

    # -- the fleet -----------------------------------------------------------------------------
    def sync(
        self,
        pools: Mapping[str, Pool],
        classes: Mapping[str, AcceleratorClass],
        pods: Iterable[Pod],
        routes: Mapping[str, RoutingTable] | None = None,
    ) -> None:
        """Make the replicas exactly ``pods`` (those whose pool and class are known); ``routes``:
        the routing tables of size-aware pools, by pool key."""
        self.pools, self.classes = dict(pools), dict(classes)
        self.routes = dict(routes or {})
        wanted: dict[str, Pod] = {}
        self.unknown = {}
        for pod in pods:
            if pod.pool_key not in self.pools:
                self.unknown[pod.key] = f"no InferencePool {pod.pool_key}"
            elif pod.accelerator_class not in self.classes:
                self.unknown[pod.key] = f"no AcceleratorClass {pod.accelerator_class}"
            else:
                wanted[pod.key] = pod
        for key in [k for k in self.replicas if k not in wanted]:
            del self.replicas[key]
        for key, pod in wanted.items():
            have = self.replicas.get(key)
            if have is None or have.pod.pool_key != pod.pool_key or have.pod.ready_at != pod.ready_at:
                self.replicas[key] = self._make(pod)
        self._by_pool = {}
        for r in self.replicas.values():
            self._by_pool.setdefault(r.pod.pool_key, []).append(r)

    def _make(self, pod: Pod) -> SimReplica:
        pool, cls = self.pools[pod.pool_key], self.classes[pod.accelerator_class]
        cal = calibrate(pool, cls)
        budget = self.token_budget
        if pool.workload.output_tokens == 0 and cal.estimate is not None:  # embeddings: whole batches
            budget = max(budget, cal.estimate.batch * pool.workload.input_tokens)
        labels = {
            "model_name": pool.model.name,
            "engine": "0",
            "namespace": pod.namespace,
            "pod": pod.name,
            "pool": pod.pool,
            "accelerator_class": pod.accelerator_class,
        }
        seqs = self.max_num_seqs or (cal.estimate.batch if cal.estimate is not None else 256)
        engine = Replica(
            cal.step,
            max_num_seqs=seqs,
            token_budget=budget,
            kv_capacity_tokens=cal.kv_capacity_tokens,
            speed=self._speed(pod.accelerator_class),
            now=self.now,
        )
        series = ReplicaSeries(labels, engine, max_model_len=pool.model.context_length)
        engine.observers += [series, self.recorder.observer(pod.name, pod.accelerator_class)]
        serving_from = pod.ready_at + per_class(self.startup_seconds, pod.accelerator_class, 0.0)
        return SimReplica(pod, engine, series, serving_from, cal)

    def _speed(self, cls: str) -> float:
        return per_class(self.speed, cls, 1.0) * self.slow.get(cls, 1.0)

    # -- load and faults -------------------------------------------------------------------------
    def set_load(self, pool_key: str, profile: Profile | float, mix: list[float] | None = None) -> None:
        """The pool's offered load; ``mix``: weights of its requestMix buckets to draw sizes by (the
        traffic's own mix, which need not be the spec's)."""
        prof = Constant(float(profile)) if isinstance(profile, int | float) else profile
        rng = random.Random(self.rng.random())
        self.loads[pool_key] = _Load(prof, Arrivals(prof, rng, self.now), mix)

    def slow_class(self, cls: str, factor: float) -> None:
        self.slow[cls] = factor
        self._respeed()

    def stop_metrics(self, cls: str | None) -> None:
        self.hidden.add(cls or "*")

    def clear_faults(self) -> None:
        self.slow.clear()
        self.hidden.clear()
        self._respeed()

    def _respeed(self) -> None:
        for r in self.replicas.values():
            r.engine.speed = self._speed(r.pod.accelerator_class)

    # -- time ------------------------------------------------------------------------------------
    def advance(self, t: float) -> None:
        """Deliver every arrival up to ``t`` and run every replica to ``t``."""
        if t < self.now:
            return
        arrivals = sorted((a, key) for key, load in self.loads.items() for a in load.arrivals.until(t))
        for a, key in arrivals:
            self._dispatch(a, key)
        for r in self.replicas.values():
            r.engine.advance(t)
        self.now = t

    def _dispatch(self, a: float, key: str) -> None:
        pool = self.pools.get(key)
        serving = [r for r in self._by_pool.get(key, ()) if r.serving_from <= a]
        if pool is None or not serving:
            self.loads[key].dropped += 1
            return
        n_in, n_out, bucket = self._draw(pool, self.loads[key].mix)
        table = self.routes.get(key)
        if table is not None:  # a router reading the routing ConfigMap: the bucket's class Services
            service = table.pick(n_in, n_out, self.rng)
            if service != table.service:
                mine = [
                    r
                    for r in serving
                    if deployment_name(pool.key.partition("/")[2], r.pod.accelerator_class) == service
                ]
                serving = mine or serving  # a Service with no serving replica: the pool's
        for r in serving:
            r.engine.advance(a)
        least = min(r.engine.outstanding for r in serving)
        candidates = [r for r in serving if r.engine.outstanding == least]
        chosen = candidates[next(self._rr) % len(candidates)]
        if bucket is not None:
            counts = self.routed.setdefault(key, {}).setdefault(
                chosen.pod.accelerator_class, [0] * len(pool.buckets)
            )
            counts[bucket] += 1
        chosen.engine.submit(Request(a, n_in, n_out, pool=key))

    def _draw(self, pool: Pool, mix: list[float] | None = None) -> tuple[int, int, int | None]:
        """A request's token lengths (and its bucket, for a pool whose demand is a mix): around the
        pool's typical request, or a bucket's drawn by share (or by ``mix``, weights per bucket),
        never above the bucket's largest."""
        bucket, shape, cap = None, pool.workload, pool.model.context_length
        if pool.buckets:
            weights = (
                mix if mix is not None and len(mix) == len(pool.buckets) else [b.share for b in pool.buckets]
            )
            edges = list(itertools.accumulate(weights))
            bucket = min(bisect.bisect_right(edges, self.rng.random() * edges[-1]), len(edges) - 1)
            shape = pool.buckets[bucket].workload
            cap = shape.input_tokens
        n_in = self.tokens.draw(self.rng, shape.input_tokens, high=cap)
        room = max(0, pool.model.context_length - n_in)
        high = min(room, shape.output_tokens) if pool.buckets else room
        n_out = self.tokens.draw(self.rng, shape.output_tokens, high=high) if high else 0
        return n_in, n_out, bucket

    # -- reading ---------------------------------------------------------------------------------
    def metrics_text(self) -> str | None:
        """The exposition, or None when every series is withheld (the scrape fails)."""
        if "*" in self.hidden:
            return None
        shown = [r.series for r in self.replicas.values() if r.pod.accelerator_class not in self.hidden]
        return render(sorted(shown, key=lambda s: (s.labels["namespace"], s.labels["pod"])))

    def state(self, window_seconds: float = 60.0) -> dict[str, Any]:
        rec, now = self.recorder, self.now
        pools: dict[str, Any] = {}
        for key in sorted(set(self.pools) | set(self.loads)):
            load = self.loads.get(key)
            mine = self._by_pool.get(key, [])
            classes = sorted({r.pod.accelerator_class for r in mine})
            pools[key] = {
                "known": key in self.pools,
                "offeredRps": load.arrivals.rate_now(now) if load else 0.0,
                "profile": load.profile.describe() if load else None,
                "dropped": load.dropped if load else 0,
                "replicas": len(mine),
                "serving": sum(r.serving_from <= now for r in mine),
                **rec.p95(rec.window(now, window_seconds, pool=key)),
                "classes": {
                    c: rec.p95(rec.window(now, window_seconds, pool=key, accelerator_class=c))
                    for c in classes
                },
                # a mix's requests per class and bucket since the start, and whether a table routed them
                "routedByBucket": {c: list(v) for c, v in sorted(self.routed.get(key, {}).items())},
                "routingTable": key in self.routes,
            }
        replicas = {
            key: {
                "pool": r.pod.pool_key,
                "acceleratorClass": r.pod.accelerator_class,
                "serving": r.serving_from <= now,
                "servingFrom": r.serving_from,
                "devices": r.calibration.devices,
                "speed": r.engine.speed,
                "waiting": r.engine.waiting,
                "running": r.engine.running,
                "kvCacheUsage": r.engine.kv_usage,
                "rejected": r.engine.rejected,  # longer than the whole KV cache
            }
            for key, r in sorted(self.replicas.items())
        }
        faults = {"slow": dict(self.slow), "stopMetrics": sorted(self.hidden)}
        return {
            "time": now,
            "windowSeconds": window_seconds,
            "pools": pools,
            "replicas": replicas,
            "ignoredPods": dict(self.unknown),
            "invalidObjects": list(self.invalid),
            "faults": faults,
        }
