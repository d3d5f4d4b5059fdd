"""The one planning loop: coalesce changes, read a snapshot, plan, apply the difference.

Owns the timing (debounce, periodic resync, back-off after errors), leader gating (only the leader
plans and writes) and executing a ``Decision`` in a budget-safe order: reductions, then deletions,
then increases, then statuses and events.  Runs in its own thread because the Kubernetes client is
synchronous; kopf handlers only call ``mark_dirty``.
"""

from __future__ import annotations

import datetime
import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from inferfleet.core import planner
from inferfleet.core import types as core
from inferfleet.core.observed import Observed
from inferfleet.reconcile.decide import decide
from inferfleet.reconcile.decision import Decision
from inferfleet.reconcile.ports import Snapshot, Writer

__all__ = ["LoopMetrics", "PlanningLoop"]

log = logging.getLogger("inferfleet.loop")


class LoopMetrics(Protocol):
    def record_plan(
        self, plan: core.Plan, duration_s: float, ready: Mapping[tuple[str, str], int]
    ) -> None: ...
    def record_error(self, stage: str) -> None: ...
    def record_observed(self, observed: Mapping[str, Observed]) -> None: ...


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
            triggered = self._dirty.wait(timeout=self.resync_s)
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
        snapshot = self._read()
        observed = self._observe(snapshot)
        if observed is not None and self._metrics:
            self._metrics.record_observed(observed)
        decision = decide(snapshot, _now(), self._solve, observed)
        if decision.resync_s:
            self.resync_s = decision.resync_s
        for problem in decision.problems:
            log.warning("%s", problem)
        if decision.deferred:
            log.info(
                "increases in %s wait until removed pods are gone (power budget)",
                ", ".join(decision.deferred),
            )
        self._execute(decision)
        self.last_decision = decision
        self.last_success = time.time()
        if decision.plan is not None and self._metrics:
            self._metrics.record_plan(decision.plan, time.monotonic() - start, decision.ready)
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

    def _phase(self, fn: Callable[[Any], None], items: list[Any], stage: str) -> None:
        """Run one phase's writes in parallel; the phase completes before the next begins."""
        failures = 0
        for fut in [self._pool.submit(fn, item) for item in items]:
            try:
                fut.result()
            except Exception as exc:
                failures += 1
                log.warning("%s failed: %s", stage, exc)
                if self._metrics:
                    self._metrics.record_error(stage)
        if failures and stage in ("reduce", "delete"):
            # Increases wait for every reduction: never risk going over a budget in between.
            raise RuntimeError(f"{failures} {stage} write(s) failed; increases deferred to the next round")

    def _execute(self, d: Decision) -> None:
        w = self._writer
        self._phase(w.apply, d.reductions, "reduce")
        self._phase(lambda item: w.delete(*item), d.deletes, "delete")
        self._phase(w.apply, d.increases, "apply")  # already in order: biggest replicas first
        self._phase(lambda s: w.patch_status(s.kind, s.namespace, s.name, s.status), d.statuses, "status")
        self._phase(lambda e: w.event(e.obj, e.type, e.reason, e.message), d.events, "event")
