"""The power invariant of the chaos suite and the soak: the watts that the pods of ours bound to Ready
nodes draw, per power domain, never exceed what the budgets allow at that moment.

Owns the pure pieces (``ClassPower`` per class from its hardware, ``live_watts`` from pods and
nodes as plain API dicts, ``Budgets``: what a domain may draw at time t, and ``Invariant``: every
sample checked, violations counted, the largest overshoot kept) and ``LivePower``, which feeds
``Invariant`` from a LIST + WATCH of our pods and of the nodes: every event of either is one sample
(checked against the state after it), in the order this process received them.

What a pod draws: the devices its first container asks for (the class's extended resource) x
(idle + (busy - idle) x u) with u = 1 / (1 + sloHeadroom%), as the planner sizes a replica
(docs/performance-model.md); from the moment it is bound to a node until it is gone (terminating
pods still draw), and only while that node is Ready (a NotReady node's draw is unknown, and the
operator is right to plan its replicas elsewhere once the node is lost).

What a domain may draw: after a budget change both the old and the new budget for
``transition_s`` (reductions are applied before increases, so the fleet passes through
max(old, new) at worst), then the new one; a FleetPolicy deleted changes nothing here (the last
budgets hold: that is the operator's contract too).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = [
    "OURS",
    "Budgets",
    "ClassPower",
    "Invariant",
    "LivePower",
    "budgets_of",
    "class_power",
    "live_watts",
    "node_ready",
]

OURS = "app.kubernetes.io/managed-by=inferfleet"
CLASS_LABEL = "inferfleet.dev/accelerator-class"
TOLERANCE_W = 0.5  # rounding: the operator's figures are whole watts
Obj = Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class ClassPower:
    domain: str
    resource: str
    watts_per_device: float


def class_power(classes: Iterable[Obj], headroom_percent: float) -> dict[str, ClassPower]:
    """Each AcceleratorClass's domain, extended resource and watts per busy-at-u device."""
    u = 1.0 / (1.0 + headroom_percent / 100.0)
    out = {}
    for c in classes:
        spec, hw = c["spec"], c["spec"]["hardware"]
        watts = float(hw["powerIdleWatts"]) + (float(hw["powerBusyWatts"]) - float(hw["powerIdleWatts"])) * u
        out[c["metadata"]["name"]] = ClassPower(str(spec["powerDomain"]), str(spec["resourceName"]), watts)
    return out


def budgets_of(policy: Obj | None) -> dict[str, float]:
    """A FleetPolicy's budgets in watts by domain ({} for none)."""
    domains = ((policy or {}).get("spec") or {}).get("powerDomains") or []
    return {str(d["name"]): float(d["budgetKilowatts"]) * 1000.0 for d in domains}


def node_ready(node: Obj) -> bool:
    """The Node-Ready rule the operator uses: Ready=True, or no conditions yet."""
    conditions = (node.get("status") or {}).get("conditions") or []
    if not conditions:
        return True
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _devices(pod: Obj, power: Mapping[str, ClassPower]) -> tuple[str, int] | None:
    """(class, devices) a pod of ours holds, or None while it holds nothing (unbound, finished)."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    cls = ((pod.get("metadata") or {}).get("labels") or {}).get(CLASS_LABEL)
    if not spec.get("nodeName") or status.get("phase") in ("Succeeded", "Failed") or cls not in power:
        return None
    containers = spec.get("containers") or [{}]
    limits = (containers[0].get("resources") or {}).get("limits") or {}
    return str(cls), int(str(limits.get(power[str(cls)].resource, "0")))


def live_watts(
    pods: Iterable[Obj], ready_nodes: Mapping[str, bool], power: Mapping[str, ClassPower]
) -> dict[str, float]:
    """Watts by power domain of ``pods`` bound to nodes that are Ready (unknown nodes: not Ready)."""
    out: dict[str, float] = {}
    for pod in pods:
        held = _devices(pod, power)
        if held is None or not ready_nodes.get(str(pod["spec"]["nodeName"]), False):
            continue
        cls, devices = held
        p = power[cls]
        out[p.domain] = out.get(p.domain, 0.0) + devices * p.watts_per_device
    return out


class Budgets:
    """Budget changes over time: ``allowed(t)`` is, per domain, the largest budget in force at any
    moment of [t - transition_s, t] (a domain missing from any budget in that span: unconstrained)."""

    def __init__(self, transition_s: float) -> None:
        self.transition_s = transition_s
        self.changes: list[tuple[float, dict[str, float]]] = []

    def set(self, t: float, budgets: Mapping[str, float]) -> None:
        self.changes.append((t, dict(budgets)))
        self.changes.sort(key=lambda c: c[0])

    def allowed(self, t: float) -> dict[str, float]:
        ends = [at for at, _ in self.changes[1:]] + [float("inf")]
        span = [
            b
            for (at, b), until in zip(self.changes, ends, strict=True)
            if at <= t < until + self.transition_s
        ]
        if not span:
            return {}
        domains = set.intersection(*(set(b) for b in span))
        return {d: max(b[d] for b in span) for d in domains}


@dataclasses.dataclass
class Invariant:
    """Every sample of live watts against ``budgets.allowed`` at its time."""

    budgets: Budgets
    samples: int = 0
    violations: int = 0
    max_overshoot_w: float = 0.0
    worst: str = ""
    peak_w: dict[str, float] = dataclasses.field(default_factory=dict)

    def check(self, t: float, watts: Mapping[str, float], what: str = "") -> bool:
        """Count one sample; False when a domain is over what it may draw."""
        self.samples += 1
        allowed = self.budgets.allowed(t)
        ok = True
        for domain, used in watts.items():
            self.peak_w[domain] = max(self.peak_w.get(domain, 0.0), used)
            limit = allowed.get(domain)
            if limit is None or used <= limit + TOLERANCE_W:
                continue
            ok = False
            over = used - limit
            if over > self.max_overshoot_w:
                self.max_overshoot_w = over
                self.worst = f"{domain} {used:.0f} W > allowed {limit:.0f} W after {what}"
        if not ok:
            self.violations += 1
        return ok

    def summary(self) -> str:
        peaks = ", ".join(f"{d} {w / 1000:.2f} kW" for d, w in sorted(self.peak_w.items()))
        worst = f"; worst: {self.worst}" if self.worst else ""
        return (
            f"{self.samples} samples, {self.violations} violations, max overshoot "
            f"{self.max_overshoot_w:.0f} W (peaks {peaks}){worst}"
        )


class LivePower:
    """LIST + WATCH of our pods and of all nodes (a thread each, re-listing after any error, e.g.
    while the API server is frozen or restarting); every change is checked by ``invariant``."""

    def __init__(
        self,
        api_client: Callable[[], contextlib.AbstractContextManager[Any]],
        power: Mapping[str, ClassPower],
        invariant: Invariant,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._api_client = api_client
        self.power = power
        self.invariant = invariant
        self.clock = clock
        self.pods: dict[str, Obj] = {}
        self.ready: dict[str, bool] = {}
        self.relists = 0
        self.errors: list[str] = []
        self.not_ready_since: dict[str, float] = {}  # nodes NotReady now, since (this clock)
        self.episodes: list[tuple[str, float, float]] = []  # (node, NotReady from, Ready again at)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._synced = {"pods": threading.Event(), "nodes": threading.Event()}
        self._threads = [
            threading.Thread(target=self._run, args=(kind,), name=f"live-{kind}", daemon=True)
            for kind in ("pods", "nodes")
        ]

    # -- reading -------------------------------------------------------------------------
    def watts(self) -> dict[str, float]:
        with self._lock:
            return live_watts(self.pods.values(), self.ready, self.power)

    def not_ready_nodes(self) -> list[str]:
        with self._lock:
            return sorted(n for n, ok in self.ready.items() if not ok)

    def not_ready_summary(self, since: float = 0.0) -> tuple[int, float]:
        """Nodes seen NotReady since ``since`` (ended episodes and current ones) and the longest
        episode in seconds."""
        now = self.clock()
        with self._lock:
            spans = [(n, a, b) for n, a, b in self.episodes if b >= since]
            spans += [(n, a, now) for n, a in self.not_ready_since.items()]
        return len({n for n, _a, _b in spans}), max((b - max(a, since) for _n, a, b in spans), default=0.0)

    def first_transitions(self, names: Iterable[str], since: float) -> tuple[float | None, float | None]:
        """Among ``names``, since ``since``: when the first went NotReady, and when the first of
        those became Ready again (None: not yet), by this process's clock, as the watch saw them."""
        wanted = set(names)
        with self._lock:
            spans: list[tuple[float, float | None]] = [
                (a, b) for n, a, b in self.episodes if n in wanted and b >= since
            ]
            spans += [(a, None) for n, a in self.not_ready_since.items() if n in wanted]
        ends = [b for _a, b in spans if b is not None]
        return min((a for a, _b in spans), default=None), min(ends, default=None)

    def _readiness(self, name: str, ready: bool | None) -> None:
        """Keep the NotReady episodes (None: the node is gone)."""
        if ready is False:
            self.not_ready_since.setdefault(name, self.clock())
        elif name in self.not_ready_since:
            self.episodes.append((name, self.not_ready_since.pop(name), self.clock()))

    # -- the watches ---------------------------------------------------------------------
    def _sample(self, what: str) -> None:
        self.invariant.check(self.clock(), live_watts(self.pods.values(), self.ready, self.power), what)

    def _apply(self, kind: str, event: str, obj: Obj) -> None:
        meta = obj.get("metadata") or {}
        with self._lock:
            if kind == "pods":
                key = f"{meta.get('namespace')}/{meta.get('name')}"
                before = _devices(self.pods[key], self.power) if key in self.pods else None
                if event == "DELETED":
                    self.pods.pop(key, None)
                else:
                    self.pods[key] = obj
                after = _devices(obj, self.power) if event != "DELETED" else None
                node = (obj.get("spec") or {}).get("nodeName")
                changed = before != after or (after is not None and node not in self.ready)
            else:
                name = str(meta.get("name"))
                was = self.ready.get(name)
                if event == "DELETED":
                    self.ready.pop(name, None)
                else:
                    self.ready[name] = node_ready(obj)
                changed = was != self.ready.get(name)
                self._readiness(name, self.ready.get(name))
            self._sample(
                f"{kind[:-1]} {meta.get('name')} {event.lower()}" + (" (changed)" if changed else "")
            )

    def _run(self, kind: str) -> None:
        from kubernetes import client, watch

        selector = OURS if kind == "pods" else ""
        while not self._stop.is_set():
            try:
                with self._api_client() as api:
                    core: Any = client.CoreV1Api(api)
                    lister = core.list_pod_for_all_namespaces if kind == "pods" else core.list_node
                    raw = lister(label_selector=selector, _preload_content=False, _request_timeout=10)
                    listed = json.loads(raw.data)
                    raw.release_conn()
                    with self._lock:
                        if kind == "pods":
                            self.pods = {
                                f"{p['metadata']['namespace']}/{p['metadata']['name']}": p
                                for p in listed["items"]
                            }
                        else:
                            self.ready = {n["metadata"]["name"]: node_ready(n) for n in listed["items"]}
                            for name in {*self.ready, *self.not_ready_since}:
                                self._readiness(name, self.ready.get(name))
                        self._sample(f"{kind} listed")
                    self._synced[kind].set()
                    rv = listed["metadata"]["resourceVersion"]
                    while not self._stop.is_set():
                        stream: Any = watch.Watch().stream(
                            lister,
                            label_selector=selector,
                            resource_version=rv,
                            timeout_seconds=5,
                            _request_timeout=15,
                            allow_watch_bookmarks=True,
                        )
                        with contextlib.closing(stream):  # the response closed even on an error
                            for ev in stream:
                                obj = ev["raw_object"]
                                if ev["type"] == "ERROR":
                                    raise RuntimeError(f"watch error: {obj}")
                                rv = obj["metadata"]["resourceVersion"]
                                if ev["type"] != "BOOKMARK":
                                    self._apply(kind, ev["type"], obj)
            except Exception as exc:  # frozen, restarting, 410 Gone: list again
                self.relists += 1
                self.errors.append(f"{kind}: {type(exc).__name__}: {str(exc)[:200]}")
                self._stop.wait(0.5)

    def __enter__(self) -> LivePower:
        for t in self._threads:
            t.start()
        for kind, synced in self._synced.items():
            if not synced.wait(30):
                raise RuntimeError(f"the {kind} watch did not list within 30 s: {self.errors[-3:]}")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(20)
