"""The watch cache: every source a plan reads, kept current by LIST + WATCH, snapshotted per round.

Owns: ``Store`` (one source's objects by namespace/name, the resourceVersion to watch from, and the
rule for which events matter: added, deleted, or modified in what ``Source.fingerprint`` covers, so
node heartbeats and a pod going Pending -> Running do not wake the planner) and ``WatchCache`` (one
thread per source: LIST, then WATCH from the list's resourceVersion with bookmarks; a relist on 410
Gone, a reconnect with back-off on other errors, a full relist every ``relist_s`` as a guard against
drift; ``snapshot()`` builds a ``Snapshot`` from one consistent copy of every store, taken under one
lock) and the facts a liveness check needs (``health()``: when each store last heard from the API
server, and a cheap periodic probe of the API server itself, a LIST with ``limit=1`` of nodes, whose
resourceVersion says whether the cluster has moved on since a quiet store's last event). What to
read, the selectors and the arithmetic come from ``kube/snapshot.py``, which ``read_snapshot`` uses
for one-shot reads: the two cannot disagree on what a plan sees.

Threads, not asyncio: the Kubernetes client is synchronous, and kopf's event loop must never block.
Objects in a snapshot are shared with the cache (each event replaces an object whole, never edits
it): readers must treat them as read-only, as the pure reconcile layer does.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Final

import kubernetes.client

from inferfleet.kube.client import APIError, NotFound, TransientAPIError, WatchStream, request, watch
from inferfleet.kube.snapshot import CRDsMissing, RequestFn, Source, build_snapshot, list_source, sources
from inferfleet.reconcile.ports import Obj, Snapshot

__all__ = ["CacheHealth", "CacheNotSynced", "Expired", "Store", "WatchCache"]

log = logging.getLogger("inferfleet.informer")

RELIST_S: Final = 600.0  # full relist of each source: a guard against drift, not a correctness need
WATCH_S: Final = 300  # timeoutSeconds of one WATCH; the API server ends it, we reconnect from there
SYNC_TIMEOUT_S: Final = 60.0  # how long snapshot() waits for the first sync of every store
BACKOFF_S: Final = (0.5, 30.0)  # reconnect delay after an error: first, most (doubling)
PROBE_S: Final = 10.0  # period of the API probe (0: no probe)
PROBE_TIMEOUT: Final = (5.0, 10.0)  # (connect, read) of one probe: a frozen API server fails it fast
WatchFn = Callable[..., Iterable[Obj]]  # inferfleet.kube.client.watch, or a fake of it
ChangeFn = Callable[[str], None]


class CacheNotSynced(TransientAPIError):  # noqa: N818 - a state, like CRDsMissing
    """The cache cannot give a snapshot yet: some store has not been listed once (or it stopped)."""


class Expired(Exception):  # noqa: N818 - the API's own word (410 Gone, "too old resource version")
    """The resourceVersion a watch asked for is gone from the API server's history: relist."""


def _key(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace")
    return f"{namespace}/{meta.get('name')}" if namespace else str(meta.get("name"))


def _resource_version(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


class Store:
    """One source's objects and where its watch stands.  Not locked itself: ``WatchCache`` holds
    one lock over every store, so a snapshot never sees half of an event applied."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.objects: dict[str, Obj] = {}
        self.fingerprints: dict[str, str] = {}
        self.version = ""  # resourceVersion to watch from; "" means list first
        self.synced = False  # listed at least once
        self.attempted = False  # a LIST has been answered (items, or a 404)
        self.missing = False  # our CRD is not installed (the last LIST was a 404)
        self.listed_at = 0.0  # monotonic time of the last successful LIST
        self.heard_at: float | None = None  # when the API server last answered: a LIST, WATCH or event
        self._fingerprint = source.fingerprint or _resource_version  # None: every change matters

    def replace(self, items: Iterable[Obj], version: str) -> str | None:
        """A LIST's result (prepared objects) replaces the store; what changed, if anything matters."""
        objects = {_key(obj): obj for obj in items}
        fingerprints = {key: self._fingerprint(obj) for key, obj in objects.items()}
        added = len(objects.keys() - self.objects.keys())
        removed = len(self.objects.keys() - objects.keys())
        changed = sum(
            1 for key, fp in fingerprints.items() if key in self.fingerprints and self.fingerprints[key] != fp
        )
        self.objects, self.fingerprints, self.version = objects, fingerprints, version
        if not (added or removed or changed):
            return None
        return f"{self.source.name} relisted: {added} added, {removed} removed, {changed} changed"

    def apply(self, event: Obj) -> str | None:
        """One watch event (ADDED, MODIFIED, DELETED, BOOKMARK); why it matters, or None."""
        kind = event.get("type")
        obj = event.get("object") or {}
        version = _resource_version(obj)
        if kind == "BOOKMARK":  # nothing changed; the stream is at this version now
            self.version = version or self.version
            return None
        if kind not in ("ADDED", "MODIFIED", "DELETED"):
            return None
        self.version = version or self.version
        key = _key(obj)
        if kind == "DELETED":
            self.fingerprints.pop(key, None)
            return f"{self.source.name} {key} deleted" if self.objects.pop(key, None) is not None else None
        obj = self.source.prepare(obj)
        fp = self._fingerprint(obj)
        before = self.fingerprints.get(key)
        self.objects[key], self.fingerprints[key] = obj, fp
        if before is None:
            return f"{self.source.name} {key} added"
        return f"{self.source.name} {key} changed" if before != fp else None


@dataclasses.dataclass(frozen=True)
class CacheHealth:
    """What the cache knows of its own liveness, times on the cache's clock (None: never).

    ``quiet_store`` is the store that has heard from the API server least recently and
    ``quiet_since`` when it last did; ``moved_on`` says whether the last probe's resourceVersion
    differs from that store's (resourceVersions are compared for equality only: a LIST's is the
    cluster-wide revision, so a difference means something was written since the store's last
    event or bookmark)."""

    synced: bool
    started_at: float
    quiet_store: str | None
    quiet_since: float | None
    moved_on: bool
    probe_ok_at: float | None
    probe_error: str | None


class WatchCache:
    """The sources of one operator (``namespace``: None for all), watched from ``start()`` to
    ``stop()``.  ``on_change(why)`` is called (from a cache thread) for every change that matters
    once every store has synced, and once when they all first have."""

    def __init__(
        self,
        api: kubernetes.client.ApiClient,
        namespace: str | None = None,
        *,
        on_change: ChangeFn | None = None,
        relist_s: float = RELIST_S,
        watch_s: int = WATCH_S,
        sync_timeout_s: float = SYNC_TIMEOUT_S,
        backoff_s: tuple[float, float] = BACKOFF_S,
        probe_s: float = PROBE_S,
        request_fn: RequestFn = request,
        watch_fn: WatchFn = watch,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._api = api
        self.stores = {src.name: Store(src) for src in sources(namespace)}
        self._on_change = on_change or (lambda _why: None)
        self.relist_s = relist_s
        self._watch_s = watch_s
        self._sync_timeout_s = sync_timeout_s
        self._backoff_s = backoff_s
        self._request = request_fn
        self._watch = watch_fn
        self._clock = clock
        self._probe_s = probe_s
        self._started_at = clock()
        self._probe_ok_at: float | None = None
        self._probe_version = ""
        self._probe_error: str | None = None
        self._cond = threading.Condition()  # guards every store and the fields below
        self._stop = threading.Event()
        self._streams: dict[str, Any] = {}
        self._threads: list[threading.Thread] = []
        self._all_synced = False

    # --- lifecycle ---
    def start(self) -> None:
        self._started_at = self._clock()
        for store in self.stores.values():
            thread = threading.Thread(
                target=self._run, args=(store,), name=f"inferfleet-watch-{store.source.name}", daemon=True
            )
            self._threads.append(thread)
            thread.start()
        if self._probe_s > 0:
            thread = threading.Thread(target=self._probe_loop, name="inferfleet-api-probe", daemon=True)
            self._threads.append(thread)
            thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop every watch (open streams are closed, so no thread stays blocked in a read)."""
        self._stop.set()
        with self._cond:
            streams = list(self._streams.values())
            self._cond.notify_all()
        for stream in streams:
            with contextlib.suppress(Exception):
                stream.close()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    # --- readers (any thread) ---
    def synced(self) -> bool:
        with self._cond:
            return self._all_synced

    def health(self) -> CacheHealth:
        with self._cond:
            heard = [(s.heard_at, name) for name, s in self.stores.items()]
            never = [name for at, name in heard if at is None]
            quiet_store = never[0] if never else min(heard)[1] if heard else None
            quiet = self.stores[quiet_store] if quiet_store is not None else None
            return CacheHealth(
                synced=self._all_synced,
                started_at=self._started_at,
                quiet_store=quiet_store,
                quiet_since=quiet.heard_at if quiet is not None else None,
                moved_on=quiet is not None
                and bool(self._probe_version)
                and self._probe_version != quiet.version,
                probe_ok_at=self._probe_ok_at,
                probe_error=self._probe_error,
            )

    def probe(self) -> None:
        """One cheap request to the API server through the operator's own client: a LIST of one
        node.  Any answer from the server (even a refusal) shows it reachable; a timeout, a
        connection error or a 5xx does not."""
        src = self.stores["Node"].source if "Node" in self.stores else next(iter(self.stores.values())).source
        try:
            page = self._request(self._api, "GET", src.path(), query=[("limit", "1")], timeout=PROBE_TIMEOUT)
        except TransientAPIError as exc:
            with self._cond:
                self._probe_error = str(exc)
            log.warning("API probe failed: %s", exc)
            return
        except APIError as exc:  # the server answered: reachable, the answer is not ours to judge
            page = None
            log.debug("API probe refused: %s", exc)
        version = str(((page or {}).get("metadata") or {}).get("resourceVersion") or "")
        with self._cond:
            self._probe_ok_at = self._clock()
            self._probe_version = version or self._probe_version
            self._probe_error = None

    def _probe_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.probe()
            except Exception:  # keep probing whatever one attempt did
                log.exception("API probe crashed")
            self._stop.wait(self._probe_s)

    def snapshot(self, timeout: float | None = None) -> Snapshot:
        """The fleet as the cache has it now.  Waits (``timeout``, default ``sync_timeout_s``) until
        every store has been listed once; raises ``CRDsMissing`` while one of our CRDs is not
        installed and ``CacheNotSynced`` when the wait runs out (or the cache stops)."""
        deadline = time.monotonic() + (self._sync_timeout_s if timeout is None else timeout)
        ours = [s for s in self.stores.values() if s.source.crd]
        with self._cond:
            while True:
                remaining = deadline - time.monotonic()
                missing = [str(s.source.crd) for s in ours if s.missing]
                # every CRD that is missing, named at once (once each of ours has been asked)
                if missing and (all(s.attempted for s in ours) or remaining <= 0):
                    raise CRDsMissing(missing)
                if self._all_synced and not missing:
                    break
                if remaining <= 0 or self._stop.is_set():
                    waiting = ", ".join(name for name, s in self.stores.items() if not s.synced)
                    why = "stopped" if self._stop.is_set() else "not synced yet"
                    raise CacheNotSynced(f"watch cache {why}: still listing {waiting}")
                self._cond.wait(remaining)
            got = {name: list(store.objects.values()) for name, store in self.stores.items()}
        return build_snapshot(got)  # sorting and arithmetic on the copies, outside the lock

    # --- one source ---
    def _run(self, store: Store) -> None:
        delay = self._backoff_s[0]
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.run_once(store)
            except Expired:
                log.info("%s: resourceVersion expired; relisting", store.source.name)
                continue
            except NotFound as exc:
                level = logging.DEBUG if store.missing else logging.WARNING
                log.log(level, "%s: %s (retrying in %.1fs)", store.source.name, exc, delay)
            except Exception as exc:  # keep watching whatever one attempt did
                log.warning("%s: watch failed: %s (retrying in %.1fs)", store.source.name, exc, delay)
            else:
                if time.monotonic() - started >= 1.0:  # a normal end (timeoutSeconds): reconnect now
                    delay = self._backoff_s[0]
                    continue
            self._stop.wait(delay)
            delay = min(delay * 2, self._backoff_s[1])

    def run_once(self, store: Store) -> None:
        """LIST when there is no resourceVersion to resume from or a relist is due, then WATCH until
        the server ends the stream, the relist falls due, or the cache stops.  Raises ``Expired``
        (the store is then marked for a relist), ``NotFound`` (CRD not installed) or ``APIError``."""
        if not store.version or self._clock() - store.listed_at >= self.relist_s:
            self._relist(store)
        if self._stop.is_set():
            return
        src = store.source
        query = [
            *src.query(),
            ("resourceVersion", store.version),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", str(self._watch_s)),
        ]
        try:
            stream = self._watch(self._api, src.path(), query=query, timeout=(5.0, self._watch_s + 30.0))
        except APIError as exc:
            if exc.status == 410:
                self._expire(store)
                raise Expired(str(exc)) from exc
            raise
        with self._cond:
            self._streams[src.name] = stream
            store.heard_at = self._clock()
        try:
            if self._stop.is_set():
                return
            for event in stream:
                if event.get("type") == "ERROR":
                    self._error_event(store, event.get("object") or {})
                with self._cond:
                    store.heard_at = self._clock()
                    why = store.apply(event)
                    notify = why is not None and self._all_synced
                if notify and why is not None:
                    self._changed(why)
                if self._stop.is_set() or self._clock() - store.listed_at >= self.relist_s:
                    return
        finally:
            with self._cond:
                self._streams.pop(src.name, None)
            if isinstance(stream, WatchStream):
                stream.close()

    def _relist(self, store: Store) -> None:
        src = store.source
        try:
            items, version = list_source(self._api, src, self._request)
        except NotFound:
            if src.crd:
                with self._cond:
                    store.heard_at = self._clock()  # an answer: the watch is not stuck, the CRD is absent
                    store.missing = store.attempted = True
                    self._cond.notify_all()
            raise
        with self._cond:
            why = store.replace(items, version)
            store.listed_at = store.heard_at = self._clock()
            store.missing = False
            store.synced = store.attempted = True
            first = not self._all_synced and all(s.synced for s in self.stores.values())
            self._all_synced = self._all_synced or first
            notify = why if (why is not None and self._all_synced and not first) else None
            self._cond.notify_all()
        if first:
            log.info(
                "watch cache synced: %s", ", ".join(f"{len(s.objects)} {n}" for n, s in self.stores.items())
            )
            self._changed("watch cache synced")
        elif notify is not None:
            self._changed(notify)

    def _expire(self, store: Store) -> None:
        with self._cond:
            store.version = ""

    def _error_event(self, store: Store, status: Obj) -> None:
        code = status.get("code")
        if code == 410:
            self._expire(store)
            raise Expired(str(status.get("message") or "410 Gone"))
        raise TransientAPIError(
            f"WATCH {store.source.name}: ERROR {code}: {status.get('message')}",
            status=code if isinstance(code, int) else None,
        )

    def _changed(self, why: str) -> None:
        try:
            self._on_change(why)
        except Exception:
            log.exception("change callback failed (%s)", why)
