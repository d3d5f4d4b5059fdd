"""The one planning loop: coalesce changes, read a snapshot, plan, apply the difference.

Owns the timing (debounce, periodic resync, back-off after errors), leader gating (only the leader
plans and writes) and executing a ``Decision`` in a budget-safe order: reductions, then deletions,
then increases, then statuses and events.  Children the server has not accepted before are first
dry-run (``verify``): one it refuses leaves the plan before its devices and watts are counted, and
the round re-plans.  Replicas the round's increases created are pinned at its end
(``_pin_late``), not a round later; those it pinned are shown pinned until the cache has heard of
it (``_snapshot``).  A child write that fails becomes a ``Refusal`` the next
round (planned at once) says in the pool's status and events; a refused status becomes an event
(once per message).  It keeps the nodes' readiness memory from round to round (``readiness``: a
blip moves nothing, a return waits); a restart rebuilds it from the nodes' conditions.  Runs in its
own thread because the Kubernetes client is synchronous; kopf handlers only call ``mark_dirty``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal, Protocol

from inferfleet.api import API_VERSION, labels
from inferfleet.api.conditions import EventReason
from inferfleet.controller.verify import Verifier
from inferfleet.core import planner
from inferfleet.core import types as core
from inferfleet.core.energy import Energy
from inferfleet.core.observed import Observed
from inferfleet.kube.writer import NotLeader
from inferfleet.reconcile import pinning
from inferfleet.reconcile.decide import decide
from inferfleet.reconcile.decision import Decision, StatusWrite
from inferfleet.reconcile.ports import Obj, Refusal, Snapshot, Writer
from inferfleet.reconcile.stuck import Stuck
from inferfleet.translate.readiness import Seen

__all__ = ["LoopMetrics", "PlanningLoop"]

log = logging.getLogger("inferfleet.loop")


class LoopMetrics(Protocol):
    def record_plan(
        self, plan: core.Plan, duration_s: float, ready: Mapping[tuple[str, str], int]
    ) -> None: ...
    def record_error(self, stage: str) -> None: ...
    def record_observed(self, observed: Mapping[str, Observed]) -> None: ...
    def record_energy(self, per_pool: Mapping[str, Energy], fleet: Energy | None) -> None: ...


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class PlanningLoop:
    """Plans when something changed (debounced) and at least every ``resync_s``."""

    def __init__(
        self,
        read_snapshot: Callable[[], Snapshot],
        writer: Writer,
        metrics: LoopMetrics | None = None,
        *,
        is_leader: Callable[[], bool] = lambda: True,
        observe: Callable[[Snapshot], Mapping[str, Observed] | None] = lambda _s: None,
        debounce_s: float = 0.3,
        max_delay_s: float = 1.0,
        resync_s: float = 60.0,
        workers: int = 8,
        solve: Callable[[core.Problem], core.Plan] = planner.solve,
    ) -> None:
        self._read = read_snapshot
        self._writer = writer
        self._metrics = metrics
        self._is_leader = is_leader
        self._observe = observe
        self._debounce_s = debounce_s
        self._max_delay_s = max_delay_s
        self.resync_s = resync_s
        self._deferral_s = 1.0
        self._solve = solve
        self._dirty = threading.Event()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="inferfleet-apply")
        self._thread: threading.Thread | None = None
        self.last_decision: Decision | None = None
        self.last_success: float | None = None
        self.refused: tuple[Refusal, ...] = ()  # the child writes of the last round that failed
        self.seen: dict[str, Seen] | None = None  # nodes' readiness as the last round left it
        self.stuck: dict[tuple[str, str], Stuck] | None = None  # the scheduler's feedback, likewise
        self.verifier = Verifier(writer, _words)
        self._status_refused: dict[tuple[str, str | None, str], str] = {}  # said once per message
        self._said: dict[tuple[str, str, str, str, str], float] = {}  # event -> when it was recorded
        self._pinned: dict[tuple[str, str], tuple[str | None, float]] = {}  # pod -> (node, when)
        self._pins_lock = threading.Lock()

    # --- called from kopf handlers (any thread) ---
    def mark_dirty(self, why: str = "") -> None:
        log.debug("fleet changed: %s", why)
        self._dirty.set()

    # --- lifecycle ---
    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="inferfleet-planner", daemon=True)
        self._thread.start()
        self.mark_dirty("start")

    def stop(self) -> None:
        self._stop.set()
        self._dirty.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._pool.shutdown(wait=True)

    def run(self) -> None:
        backoff = 1.0
        while not self._stop.is_set():
            due = self.verifier.due_s()  # a refused child is tried again when its refusal expires
            triggered = self._dirty.wait(timeout=self.resync_s if due is None else min(self.resync_s, due))
            if self._stop.is_set():
                break
            if triggered:
                self._settle()
            self._dirty.clear()
            if not self._is_leader():
                continue
            try:
                decision = self.reconcile_once()
                backoff = 1.0
                if decision.deferred:  # pods still terminating: finish the move shortly
                    self._stop.wait(self._deferral_s)
                    self._dirty.set()
            except Exception as exc:  # keep planning whatever one round did
                log.warning("planning round failed: %s (retrying in %.0fs)", exc, backoff)
                if self._metrics:
                    self._metrics.record_error("plan")
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)
                self._dirty.set()

    def _settle(self) -> None:
        """Wait until changes stop arriving for debounce_s, at most max_delay_s."""
        first = time.monotonic()
        while time.monotonic() - first < self._max_delay_s:
            self._dirty.clear()
            if not self._dirty.wait(timeout=self._debounce_s):
                return

    # --- one round ---
    def reconcile_once(self) -> Decision:
        start = time.monotonic()
        snapshot = self._snapshot()
        observed = self._observe(snapshot)
        if observed is not None and self._metrics:
            self._metrics.record_observed(observed)
        decision = self._decide(snapshot, observed)
        self.seen = decision.seen
        self.stuck = decision.stuck
        if decision.resync_s:
            self.resync_s = decision.resync_s
        for problem in decision.problems:
            log.warning("%s", problem)
        if decision.deferred:
            log.info(
                "increases in %s wait until removed pods are gone (power budget)",
                ", ".join(decision.deferred),
            )
        refused: list[Refusal] = []
        try:
            self._execute(decision, snapshot, refused)
        finally:
            self.verifier.record(refused, snapshot)
            if set(refused) != set(self.refused):  # news: the next round says it in status and events
                self.mark_dirty("a child write failed" if refused else "refused writes went through")
            self.refused = tuple(sorted(refused, key=lambda r: (r.pool, r.kind, r.name)))
        self.last_decision = decision
        self.last_success = time.time()
        if decision.plan is not None and self._metrics:
            self._metrics.record_plan(decision.plan, time.monotonic() - start, decision.ready)
            self._metrics.record_energy(decision.energy, decision.fleet_energy)
        if decision.writes:
            log.info(
                "plan applied in %.2fs: %d reductions, %d deletions, %d increases, %d statuses, %d events",
                time.monotonic() - start,
                len(decision.reductions),
                len(decision.deletes),
                len(decision.increases),
                len(decision.statuses),
                len(decision.events),
            )
        return decision

    def _decide(self, snapshot: Snapshot, observed: Mapping[str, Observed] | None) -> Decision:
        """Decide, then dry-run the children whose template the server has not accepted yet; one it
        refuses leaves the plan (its devices and watts are not counted) and the round re-plans, at
        most MAX_REPLANS times; children still refused after that are not written this round."""
        now = _now()
        for attempt in range(MAX_REPLANS + 1):
            known = {(r.pool, r.kind, r.name): r for r in (*self.refused, *self.verifier.standing(snapshot))}
            refusals = [known[k] for k in sorted(known)]
            decision = decide(snapshot, now, self._solve, observed, refusals, self.seen, held=self.stuck)
            new = self.verifier.check(decision.reductions + decision.increases, snapshot, self._map)
            if not new:
                return decision
            log.info("the API server refused %d child(ren) in a dry run; re-planning without them", len(new))
            if attempt == MAX_REPLANS:
                out = {(r.pool, r.accelerator_class) for r in new}
                decision.reductions = [c for c in decision.reductions if _pool_class(c) not in out]
                decision.increases = [c for c in decision.increases if _pool_class(c) not in out]
                self.mark_dirty("children refused in a dry run after re-planning")
        return decision

    def _map(self, fn: Callable[[Obj], None], items: list[Obj]) -> list[Exception | None]:
        """``fn`` over ``items`` on the writer threads; each one's exception, or None."""

        def quiet(item: Obj) -> Exception | None:
            try:
                fn(item)
            except Exception as exc:
                return exc
            return None

        return list(self._pool.map(quiet, items))

    def _phase(
        self,
        fn: Callable[[Any], None],
        items: list[Any],
        stage: str,
        failed: Callable[[Any, Exception], None] | None = None,
    ) -> None:
        """Run one phase's writes in parallel; the phase completes before the next begins."""
        failures = 0
        for item, fut in [(item, self._pool.submit(fn, item)) for item in items]:
            try:
                fut.result()
            except Exception as exc:
                failures += 1
                log.warning("%s failed: %s", stage, exc)
                if self._metrics:
                    self._metrics.record_error(stage)
                if failed is not None and not isinstance(exc, NotLeader):
                    failed(item, exc)
        if failures and stage in ("reduce", "delete"):
            # Increases wait for every reduction: never risk going over a budget in between.
            raise RuntimeError(f"{failures} {stage} write(s) failed; increases deferred to the next round")

    def _execute(self, d: Decision, snapshot: Snapshot, refused: list[Refusal]) -> None:
        w = self._writer
        owners = _owners(snapshot)

        def child(verb: Literal["apply", "delete"]) -> Callable[[Any, Exception], None]:
            def note(item: Any, exc: Exception) -> None:
                kind, namespace, name = (
                    item
                    if verb == "delete"
                    else (item["kind"], item["metadata"].get("namespace"), item["metadata"]["name"])
                )
                pool = _pool_of(item) if verb == "apply" else owners.get((kind, namespace, name))
                if pool is not None:
                    cls = _pool_class(item)[1] if verb == "apply" and kind == "Deployment" else None
                    code = getattr(exc, "status", None)
                    refused.append(Refusal(pool, kind, name, verb, _words(exc), cls, code))

            return note

        def status_refused(s: StatusWrite, exc: Exception) -> None:
            if getattr(exc, "status", None) is None:
                # no answer from the API server (connection refused, timeout): nothing refused; the
                # status still differs next round and is written then, and /healthz says it
                log.warning("status of %s %s not written: %s", s.kind, s.name, _words(exc))
                return
            key, words = (s.kind, s.namespace, s.name), _words(exc)
            if self._status_refused.get(key) == words:
                return  # said already
            self._status_refused[key] = words
            ref = {
                "apiVersion": API_VERSION,
                "kind": s.kind,
                "metadata": {"name": s.name, "namespace": s.namespace},
            }
            with contextlib.suppress(Exception):  # the event is the only place left to say it
                w.event(
                    ref, "Warning", EventReason.STATUS_REFUSED, f"the API server refused the status: {words}"
                )

        self._phase(w.apply, d.reductions, "reduce", child("apply"))
        self._phase(lambda item: w.delete(*item), d.deletes, "delete", child("delete"))
        self._phase(w.apply, d.increases, "apply", child("apply"))  # already in order: biggest first

        def pod(verb: Literal["pin", "delete"]) -> Callable[[Any, Exception], None]:
            def note(item: Any, exc: Exception) -> None:  # said in the pool's status next round
                pool = owners.get(("Pod", item.namespace, item.name))
                if pool is not None:
                    refused.append(
                        Refusal(pool, "Pod", item.name, verb, _words(exc), None, getattr(exc, "status", None))
                    )

            return note

        self._phase(self._pin, d.pins, "pin", pod("pin"))
        self._phase(lambda u: w.delete("Pod", u.namespace, u.name), d.unpins, "unpin", pod("delete"))

        def write_status(s: StatusWrite) -> None:
            w.patch_status(s.kind, s.namespace, s.name, s.status)
            self._status_refused.pop((s.kind, s.namespace, s.name), None)  # a later refusal is news

        self._phase(write_status, d.statuses, "status", status_refused)
        # a placement change whose child writes were refused did not happen: not said
        failed_pools = {r.pool for r in refused}
        events = [e for e in d.events if not (e.reason in _CHANGES and _key(e.obj) in failed_pools)]
        self._phase(lambda e: w.event(e.obj, e.type, e.reason, e.message), self._fresh(events), "event")
        self._phase(self._pin, self._pin_late(d), "pin", pod("pin"))

    def _pin_late(self, d: Decision) -> list[pinning.Pin]:
        """The gated replicas of this round's increases that exist by its end, pinned to the nodes
        the round planned: a fresh read of the cache, so their ReplicaSets' pods are pinned now
        rather than a round later (at thousands of pools a round lasts minutes)."""
        grown = {_pool_class(c) for c in d.increases}
        if not grown or not d.assignment:
            return []
        try:
            snapshot = self._snapshot()
        except Exception as exc:  # the next round pins them instead
            log.warning("no late pins this round: %s", exc)
            return []
        tried = {(p.namespace, p.name) for p in d.pins}  # a pin refused this round is not retried in it
        pending = [
            p
            for p in snapshot.pending_pods
            if _pool_class(p) in grown and not (_where(p) in tried and _gated(p))
        ]
        wanted = pinning.Assignment({k: n for k, n in d.assignment.items() if k in grown}, {}, {})
        late, _unpins = pinning.pins(wanted, snapshot.placed, pending, time.time())  # unpins: next round
        return late

    def _pin(self, p: pinning.Pin) -> None:
        self._writer.pin(p.namespace, p.name, p.node)
        with self._pins_lock:
            self._pinned[(p.namespace, p.name)] = (p.node, time.monotonic())

    def _snapshot(self) -> Snapshot:
        """The cache's snapshot, with the replicas this loop pinned shown pinned while the cache
        still has them at the gate: a pin the watch has not delivered yet (it lags when the API
        server is busy) is never made twice (the second would change an ungated pod's
        nodeSelector, which the API server refuses) and its node's room stays taken."""
        at = time.monotonic()
        snapshot = self._read()
        gated = {_where(p) for p in snapshot.pending_pods if _gated(p)}
        with self._pins_lock:
            for key, (_node, when) in list(self._pinned.items()):
                if at - when > PIN_MEMORY_S or (when < at and key not in gated):  # heard, or gone
                    del self._pinned[key]
            memory = dict(self._pinned)
        if not memory:
            return snapshot
        pods: list[Obj] = []
        for pod in snapshot.pending_pods:
            where = _where(pod)
            if where not in memory or where not in gated:
                pods.append(pod)
                continue
            node = memory[where][0]
            spec = dict(pod.get("spec") or {})
            spec["schedulingGates"] = [
                g for g in spec.get("schedulingGates") or () if g.get("name") != labels.PLACEMENT_GATE
            ]
            if node is not None:
                spec["nodeSelector"] = {**(spec.get("nodeSelector") or {}), labels.HOSTNAME: node}
            pods.append({**pod, "spec": spec})
        return dataclasses.replace(snapshot, pending_pods=pods)

    def _fresh(self, events: list[Any]) -> list[Any]:
        """Events less those recorded in the last EVENT_REPEAT_S: a round whose snapshot predates its
        own last status write would say a transition again (client-go's event correlator dedupes
        the same way)."""
        now = time.monotonic()
        self._said = {k: t for k, t in self._said.items() if now - t < EVENT_REPEAT_S}
        out = []
        for e in events:
            meta = e.obj.get("metadata") or {}
            key = (
                str(e.obj.get("kind")),
                str(meta.get("namespace")),
                str(meta.get("name")),
                str(e.reason),
                e.message,
            )
            if key not in self._said:
                self._said[key] = now
                out.append(e)
        return out


def _words(exc: Exception) -> str:
    """What the server said (status code first), bounded."""
    code = getattr(exc, "status", None)
    text = str(exc) or type(exc).__name__
    return (f"HTTP {code}: {text}" if code and str(code) not in text[:12] else text)[:1024]


_CHANGES = (EventReason.PLACED, EventReason.MOVED, EventReason.RESCALED)
EVENT_REPEAT_S = 60.0  # the same event about the same object, said again no sooner than this
MAX_REPLANS = 16  # re-plans in one round after dry runs refuse children: each leaves out at least
# one (pool, class) and a namespace-wide refusal takes one per allowed class; past it the next round goes on


def _pool_class(obj: Obj) -> tuple[str | None, str | None]:
    """(pool key, class) of one of our children, from its labels."""
    obj_labels = (obj.get("metadata") or {}).get("labels") or {}
    return _pool_of(obj), obj_labels.get(labels.ACCELERATOR_CLASS)


PIN_MEMORY_S = 300.0  # a pin the cache has not shown after this is forgotten (the pod re-read as it is)


def _where(pod: Obj) -> tuple[str, str]:
    meta = pod.get("metadata") or {}
    return str(meta.get("namespace")), str(meta.get("name"))


def _gated(pod: Obj) -> bool:
    gates = (pod.get("spec") or {}).get("schedulingGates") or ()
    return any(g.get("name") == labels.PLACEMENT_GATE for g in gates)


def _key(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace', 'default')}/{meta.get('name')}"


def _pool_of(obj: Obj) -> str | None:
    meta = obj.get("metadata") or {}
    name = (meta.get("labels") or {}).get(labels.POOL)
    return f"{meta.get('namespace', 'default')}/{name}" if name else None


def _owners(snapshot: Snapshot) -> dict[tuple[str, str | None, str], str]:
    """(kind, namespace, name) of our children -> their pool key."""
    out = {}
    for kind, objs in (
        ("Deployment", snapshot.deployments),
        ("Service", snapshot.services),
        ("ConfigMap", snapshot.config_maps),
        ("Pod", snapshot.pending_pods),
    ):
        for obj in objs:
            meta = obj.get("metadata") or {}
            pool = _pool_of(obj)
            if pool is not None:
                out[(kind, meta.get("namespace"), str(meta.get("name")))] = pool
    for (pool, _cls), nodes in snapshot.placed.items():  # bound replicas: the packing may move them
        for names in nodes.values():
            for name in names:
                out[("Pod", pool.partition("/")[0], name)] = pool
    return out
