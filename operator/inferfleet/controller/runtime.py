"""The running operator's parts and their lifecycle: API client, watch cache, writer, metrics, leader
election and the planning loop.

Owns wiring them together from a ``Config`` and starting/stopping them in the right order (the
lease is released on stop so a standby takes over at once).  The watch cache feeds the loop: each
round snapshots it (no LISTs), and every change that matters marks the loop dirty.  A standby
replica keeps its cache warm too, so a takeover plans at once.  Configured by ``inferfleet run``
before kopf starts; the kopf handlers reach it through ``handlers.RUNTIME``, and the health port
through ``check`` (the facts gathered here, judged by ``controller/health.py``).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import time
from collections.abc import Callable
from typing import Any

from inferfleet.controller.health import Bounds, Facts, Verdict, assess
from inferfleet.controller.loop import PlanningLoop

__all__ = ["Config", "Runtime"]

log = logging.getLogger("inferfleet.runtime")


@dataclasses.dataclass(frozen=True)
class Config:
    kubeconfig: str | None = None
    namespace: str | None = None  # None: all namespaces
    metrics_port: int = 8080
    metrics_secure: bool = False  # HTTPS, every request's token and RBAC checked (kube/access.py)
    metrics_cert_file: str | None = None
    metrics_key_file: str | None = None
    leader_elect: bool = True
    lease_duration_s: float = 15.0
    renew_deadline_s: float = 10.0
    retry_period_s: float = 2.0
    lease_name: str = "inferfleet-operator"
    lease_namespace: str = "default"
    identity: str = dataclasses.field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    resync_s: float = 60.0
    relist_s: float = 600.0  # the watch cache's full relist of each source (a guard against drift)
    prometheus_url: str | None = None  # the metrics source of autoscaled pools (None: none)
    prometheus_token_file: str | None = None
    prometheus_ca_file: str | None = None
    prometheus_window: str = "2m"  # the rate/quantile window of the default queries
    prometheus_burst_window: str | None = None  # the short window for scaling up (None: window / 4)
    probe_s: float = 10.0  # period of the API probe that liveness reads (0: no probe)
    api_unreachable_s: float = 120.0  # liveness fails once the API has not answered the probe this long
    watch_silence_s: float = 360.0  # ... or a watch heard nothing this long while the API moved on
    plan_stale_s: float | None = (
        None  # ... or the leader planned nothing this long (None: max(3 x resync, 120))
    )

    def bounds(self) -> Bounds:
        return Bounds(
            api_unreachable_s=self.api_unreachable_s,
            watch_silence_s=self.watch_silence_s,
            plan_stale_s=self.plan_stale_s,
        )


class Runtime:
    def __init__(self) -> None:
        self.config = Config()
        self.loop: PlanningLoop | None = None
        self._parts: list[Any] = []
        self._elector: Any = None
        self._metrics: Any = None
        self._api: Any = None
        self._cache: Any = None
        self._launched_at = time.monotonic()
        self._leader_since: float | None = None  # monotonic

    def configure(self, config: Config) -> None:
        self.config = config

    def is_leader(self) -> bool:
        return self._elector is None or bool(self._elector.is_leader())

    def start(self) -> None:
        from inferfleet.kube.client import make_api_client
        from inferfleet.kube.informer import WatchCache
        from inferfleet.kube.lease import LeaderElector
        from inferfleet.kube.writer import KubeWriter
        from inferfleet.metrics.exporter import OperatorMetrics
        from inferfleet.metrics.server import MetricsServer

        cfg = self.config
        self._api = make_api_client(cfg.kubeconfig)
        self._metrics = OperatorMetrics()
        if cfg.metrics_port:
            authorize = None
            if cfg.metrics_secure:
                from inferfleet.kube.access import AccessReviewer

                authorize = AccessReviewer(self._api).status
            MetricsServer(
                cfg.metrics_port,
                registry=self._metrics.registry,
                certfile=cfg.metrics_cert_file,
                keyfile=cfg.metrics_key_file,
                authorize=authorize,
            ).start()
        writer = KubeWriter(self._api, is_leader=self.is_leader, metrics=self._metrics)
        cache = WatchCache(
            self._api, cfg.namespace, on_change=self.mark_dirty, relist_s=cfg.relist_s, probe_s=cfg.probe_s
        )
        self._cache = cache
        self.loop = PlanningLoop(
            cache.snapshot,
            writer,
            self._metrics,
            observe=self._observer(),
            is_leader=self.is_leader,
            resync_s=cfg.resync_s,
        )
        if cfg.leader_elect:
            self._elector = LeaderElector(
                self._api,
                name=cfg.lease_name,
                namespace=cfg.lease_namespace,
                identity=cfg.identity,
                lease_duration_s=cfg.lease_duration_s,
                renew_deadline_s=cfg.renew_deadline_s,
                retry_period_s=cfg.retry_period_s,
                on_started_leading=self._started_leading,
                on_stopped_leading=self._stopped_leading,
            )
        cache.start()  # its first sync marks the loop dirty
        self.loop.start()
        if self._elector is not None:
            self._elector.start()
        else:
            self._leader_since = time.monotonic()
            self._metrics.set_leader(True)
        log.info(
            "inferfleet operator started as %s (leader election %s)",
            cfg.identity,
            "on" if cfg.leader_elect else "off",
        )

    def _observer(self) -> Callable[[Any], Any]:
        """The loop's metrics source: Prometheus when configured, else none (autoscaled pools then
        report MetricsAvailable=False, NoMetricsSource)."""
        cfg = self.config
        if not cfg.prometheus_url:
            return lambda _snapshot: None
        from inferfleet.controller.observing import Observer
        from inferfleet.observe import PrometheusReader
        from inferfleet.observe.queries import burst_window

        reader = PrometheusReader(
            cfg.prometheus_url,
            window=cfg.prometheus_window,
            burst_window=cfg.prometheus_burst_window or burst_window(cfg.prometheus_window),
            token_file=cfg.prometheus_token_file,
            ca_file=cfg.prometheus_ca_file,
        )
        return Observer(reader)

    def _started_leading(self) -> None:
        log.info("%s became the leader", self.config.identity)
        self._leader_since = time.monotonic()
        if self._metrics is not None:
            self._metrics.set_leader(True)
        self.mark_dirty("became leader")

    def _stopped_leading(self) -> None:
        log.warning("%s is no longer the leader", self.config.identity)
        if self._metrics is not None:
            self._metrics.set_leader(False)

    def stop(self) -> None:
        if self._elector is not None:
            self._elector.stop()
        if self._cache is not None:  # first: a round waiting for the first sync gives up at once
            self._cache.stop()
        if self.loop is not None:
            self.loop.stop()
        if self._api is not None:
            self._api.close()

    def mark_dirty(self, why: str) -> None:
        if self.loop is not None:
            self.loop.mark_dirty(why)

    def facts(self) -> Facts:
        """What liveness and readiness are decided from, every time on the monotonic clock."""
        now = time.monotonic()
        cache, loop = self._cache, self.loop
        if cache is None or loop is None:
            return Facts(now=now, started_at=self._launched_at, started=False)
        ch = cache.health()
        last = loop.last_success  # wall clock: moved onto the monotonic one
        leader = self.is_leader()
        return Facts(
            now=now,
            started_at=ch.started_at,
            probing=self.config.probe_s > 0,
            synced=ch.synced,
            leader=leader,
            leader_since=self._leader_since if leader else None,
            last_round=None if last is None else now - (time.time() - last),
            resync_s=loop.resync_s,
            quiet_store=ch.quiet_store,
            quiet_since=ch.quiet_since,
            moved_on=ch.moved_on,
            probe_ok_at=ch.probe_ok_at,
            probe_error=ch.probe_error,
        )

    def check(self) -> tuple[Verdict, dict[str, Any]]:
        """The verdict of the health port, and the details it shows with it."""
        facts = self.facts()
        details = self.health()
        details["apiLastAnsweredSecondsAgo"] = (
            None if facts.probe_ok_at is None else round(facts.now - facts.probe_ok_at, 1)
        )
        details["quietestWatch"] = facts.quiet_store
        details["quietestWatchSilentSeconds"] = (
            None if facts.quiet_since is None else round(facts.now - facts.quiet_since, 1)
        )
        return assess(facts, self.config.bounds()), details

    def health(self) -> dict[str, Any]:
        from inferfleet.kube.client import request_counts

        last = self.loop.last_success if self.loop else None
        return {
            "leader": self.is_leader(),
            "cacheSynced": self._cache is not None and bool(self._cache.synced()),
            "lastPlanAgeSeconds": None if last is None else round(time.time() - last, 1),
            "apiRequests": request_counts(),  # by "VERB resource", since start (kopf's own not included)
        }
