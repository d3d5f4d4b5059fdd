"""Which replicas exist: the Ready pods of our pools, their InferencePools and AcceleratorClasses.

Owns reading the API server for the simulator (raw JSON LISTs through ``inferfleet.kube.client``): pods
labelled ``inferfleet.dev/pool`` and ``inferfleet.dev/accelerator-class`` that are Ready and not
terminating (with the time their Ready condition turned True), the InferencePools and
AcceleratorClasses validated through the pydantic models and converted to the core's types, and the
routing ConfigMaps of size-aware pools (the simulator routes by them, as a router would).
``FleetWatcher`` polls every ``interval`` seconds in a thread and syncs the simulation; an API
error keeps the last picture (and is reported once), so a blip does not drop the fleet.
"""

from __future__ import annotations

import dataclasses
import sys
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from inferfleet.api import GROUP, VERSION
from inferfleet.api.acceleratorclass import AcceleratorClass as ApiClass
from inferfleet.api.inferencepool import InferencePool as ApiPool
from inferfleet.api.labels import ACCELERATOR_CLASS, OURS, POOL
from inferfleet.api.routing import ROUTING_KEY, RoutingTable, routing_name
from inferfleet.core.types import AcceleratorClass, Pool
from inferfleet.kube.client import request
from inferfleet.translate.objects import pool_key, to_core_class, to_core_pool
from inferfleet_dev.simulate.sim import Pod, Simulation

__all__ = ["FleetView", "FleetWatcher", "read_fleet", "ready_pods"]


@dataclasses.dataclass(frozen=True)
class FleetView:
    pools: dict[str, Pool]
    classes: dict[str, AcceleratorClass]
    pods: list[Pod]
    invalid: list[str]  # objects that failed validation, one line each
    routes: dict[str, RoutingTable] = dataclasses.field(default_factory=dict)  # size-aware pools


def _timestamp(value: str | None) -> float:
    if not value:
        return 0.0
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def ready_pods(items: list[dict[str, Any]]) -> list[Pod]:
    """The Ready, not-terminating pods among raw pod objects that carry both of our labels."""
    out = []
    for item in items:
        meta = item.get("metadata") or {}
        labels = meta.get("labels") or {}
        if meta.get("deletionTimestamp") or POOL not in labels or ACCELERATOR_CLASS not in labels:
            continue
        conditions = (item.get("status") or {}).get("conditions") or []
        ready = next((c for c in conditions if c.get("type") == "Ready"), None)
        if ready is None or ready.get("status") != "True":
            continue
        out.append(
            Pod(
                namespace=meta["namespace"],
                name=meta["name"],
                pool=labels[POOL],
                accelerator_class=labels[ACCELERATOR_CLASS],
                ready_at=_timestamp(ready.get("lastTransitionTime")),
            )
        )
    return out


def _list(api: Any, path: str, query: dict[str, str] | None = None) -> list[dict[str, Any]]:
    got = request(api, "GET", path, query=list((query or {}).items()), timeout=(5.0, 30.0))
    items: list[dict[str, Any]] = (got or {}).get("items") or []
    return items


def read_fleet(api: Any) -> FleetView:
    """One consistent-enough picture of the fleet (three LISTs) from a kubernetes ApiClient."""
    invalid: list[str] = []
    pools: dict[str, Pool] = {}
    for obj in _list(api, f"/apis/{GROUP}/{VERSION}/inferencepools"):
        try:
            api_pool = ApiPool.model_validate(obj)
            pools[pool_key(api_pool)] = to_core_pool(api_pool)
        except (ValidationError, ValueError) as exc:
            meta = obj.get("metadata") or {}
            first = str(exc).splitlines()[0]
            invalid.append(f"InferencePool {meta.get('namespace')}/{meta.get('name')}: {first}")
    classes: dict[str, AcceleratorClass] = {}
    for obj in _list(api, f"/apis/{GROUP}/{VERSION}/acceleratorclasses"):
        try:
            cls = to_core_class(ApiClass.model_validate(obj), ())
            classes[cls.name] = cls
        except (ValidationError, ValueError) as exc:
            invalid.append(f"AcceleratorClass {(obj.get('metadata') or {}).get('name')}: {exc}")
    pods = ready_pods(_list(api, "/api/v1/pods", {"labelSelector": f"{POOL},{ACCELERATOR_CLASS}"}))
    routes: dict[str, RoutingTable] = {}
    for obj in _list(api, "/api/v1/configmaps", {"labelSelector": f"{OURS},{POOL}"}):
        meta = obj.get("metadata") or {}
        key = f"{meta.get('namespace')}/{(meta.get('labels') or {}).get(POOL)}"
        if meta.get("name") != routing_name(key.partition("/")[2]):
            continue
        try:
            routes[key] = RoutingTable.model_validate_json((obj.get("data") or {}).get(ROUTING_KEY) or "")
        except ValidationError as exc:
            invalid.append(
                f"ConfigMap {meta.get('namespace')}/{meta.get('name')}: {str(exc).splitlines()[0]}"
            )
    return FleetView(pools, classes, pods, invalid, routes)


class FleetWatcher:
    """Polls the API server and syncs ``sim`` until ``stop()``; ``synced`` is set after each pass."""

    def __init__(
        self,
        sim: Simulation,
        api: Any,
        clock: Callable[[], float],
        interval: float = 0.5,
        log: Callable[[str], None] = lambda m: print(m, file=sys.stderr, flush=True),
    ) -> None:
        self.sim, self.api, self.clock, self.interval, self.log = sim, api, clock, interval, log
        self.synced = threading.Event()
        self.passes = 0
        self._stop = threading.Event()
        self._last_error = ""
        self._thread = threading.Thread(target=self._run, name="simulate-fleet", daemon=True)

    def start(self) -> FleetWatcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def poll_once(self) -> None:
        try:
            view = read_fleet(self.api)
        except Exception as exc:  # the API server is away: keep the last picture
            message = f"simulate: cannot read the fleet ({type(exc).__name__}: {exc}); keeping the last one"
            if message != self._last_error:
                self.log(message)
            self._last_error = message
            return
        self._last_error = ""
        with self.sim.lock:
            self.sim.advance(self.clock())
            self.sim.sync(view.pools, view.classes, view.pods, view.routes)
            self.sim.invalid = view.invalid
        self.passes += 1
        self.synced.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.poll_once()
            self._stop.wait(self.interval)
