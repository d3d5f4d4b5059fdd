"""Leader election on a coordination.k8s.io/v1 Lease, like client-go's leaderelection.

Owns: the pure decision (``decide``: given what this replica last saw of the Lease, the monotonic
clock and its identity, what to do next), and ``LeaderElector``, a daemon thread that reads the Lease
every retry period, creates, acquires or renews it with optimistic concurrency (resourceVersion),
and releases it on ``stop()`` so a successor takes over at once.

Safety: remote timestamps are never trusted (clocks differ).  A follower counts a lease as expired
only when its record has not changed for ``lease_duration_s`` of the follower's own monotonic clock,
measured from when it *received* the change; a leader counts itself leader only until
``renew_deadline_s`` after it *started* its last successful renewal.  The renewal happened between
those two instants, so with renew_deadline < lease_duration two replicas never lead at once.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Final, Literal
from urllib.parse import quote

import kubernetes.client

from inferfleet.kube.client import APIError, Conflict, NotFound, request
from inferfleet.reconcile.ports import Obj

__all__ = ["Action", "LeaderElector", "LeaseRecord", "decide", "must_step_down", "record_of"]

log = logging.getLogger(__name__)

Action = Literal["create", "acquire", "renew", "wait", "step_down"]
JITTER: Final = 1.2  # followers poll every retry_period x U(1, JITTER)


@dataclasses.dataclass(frozen=True)
class LeaseRecord:
    """The parts of a Lease's spec the election reads."""

    holder: str  # "" when released
    lease_duration_s: float | None = None  # the holder's claim; None: use ours
    transitions: int = 0


def must_step_down(*, leading: bool, renewed_at: float | None, now: float, renew_deadline_s: float) -> bool:
    """A leader that has not renewed within the renew deadline is no longer leader."""
    return leading and (renewed_at is None or now - renewed_at >= renew_deadline_s)


def decide(
    *,
    identity: str,
    record: LeaseRecord | None,
    changed_at: float,
    now: float,
    leading: bool,
    renewed_at: float | None,
    lease_duration_s: float,
    renew_deadline_s: float,
) -> Action:
    """What to do after reading the Lease (``record`` None: it does not exist).

    ``changed_at``: when this replica received the record as it is now (monotonic);
    ``renewed_at``: when this replica started its last successful create/acquire/renew.
    """
    if must_step_down(leading=leading, renewed_at=renewed_at, now=now, renew_deadline_s=renew_deadline_s):
        return "step_down"
    if record is None:
        return "create"
    if record.holder == identity:
        return "renew"
    if leading:
        return "step_down"  # someone else holds it: we lost it
    if not record.holder:
        return "acquire"  # released by its last holder
    if now - changed_at >= (record.lease_duration_s or lease_duration_s):
        return "acquire"
    return "wait"


def record_of(lease: Obj) -> LeaseRecord:
    spec = lease.get("spec") or {}
    duration = spec.get("leaseDurationSeconds")
    return LeaseRecord(
        holder=str(spec.get("holderIdentity") or ""),
        lease_duration_s=float(duration) if duration else None,
        transitions=int(spec.get("leaseTransitions") or 0),
    )


def _micro_time() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    """Campaign for a Lease in a daemon thread; ``is_leader()`` is safe to call from any thread.

    Callbacks run on the elector's thread and must return quickly (start work elsewhere).
    """

    def __init__(
        self,
        api: kubernetes.client.ApiClient,
        name: str = "inferfleet-operator",
        *,
        namespace: str = "default",
        identity: str | None = None,
        lease_duration_s: float = 15,
        renew_deadline_s: float = 10,
        retry_period_s: float = 2,
        on_started_leading: Callable[[], None] | None = None,
        on_stopped_leading: Callable[[], None] | None = None,
    ) -> None:
        if not retry_period_s < renew_deadline_s < lease_duration_s:
            raise ValueError("need retry_period_s < renew_deadline_s < lease_duration_s")
        self.api = api
        self.name = name
        self.namespace = namespace
        self.identity = identity or f"{socket.gethostname()}_{uuid.uuid4()}"
        self.lease_duration_s = lease_duration_s
        self.renew_deadline_s = renew_deadline_s
        self.retry_period_s = retry_period_s
        self.on_started_leading = on_started_leading
        self.on_stopped_leading = on_stopped_leading
        self._path = (
            f"/apis/coordination.k8s.io/v1/namespaces/{quote(namespace, safe='')}"
            f"/leases/{quote(name, safe='')}"
        )
        # a request must fail well before the renew deadline so the loop can retry in time
        self._timeout = (min(2.0, retry_period_s), max(1.0, renew_deadline_s / 3))
        self._lock = threading.Lock()
        self._leading = False
        self._renewed_at: float | None = None
        self._lease: Obj | None = None  # last Lease read or written
        self._changed_at = 0.0
        self._stop = threading.Event()
        self._release_on_stop = True
        self._thread: threading.Thread | None = None

    # -- public ------------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("LeaderElector already started")
        self._thread = threading.Thread(target=self._run, name=f"leader-elector:{self.name}", daemon=True)
        self._thread.start()

    def stop(self, release: bool = True) -> None:
        """Stop campaigning; if leading, step down and (``release``) hand the Lease over at once."""
        self._release_on_stop = release
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()  # (from a callback on our own thread: the loop ends after it returns)

    def is_leader(self) -> bool:
        with self._lock:
            return self._leading and not must_step_down(
                leading=True,
                renewed_at=self._renewed_at,
                now=time.monotonic(),
                renew_deadline_s=self.renew_deadline_s,
            )

    def __enter__(self) -> LeaderElector:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the loop ----------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    wait = self._tick()
                except Exception:  # a bug must not end the campaign silently
                    log.exception("leader election: unexpected error")
                    self._check_deadline()
                    wait = self.retry_period_s
                self._stop.wait(wait)
        finally:
            if self._leading:
                self._step_down(release=self._release_on_stop)

    def _tick(self) -> float:
        """One round; returns seconds to wait before the next."""
        started = time.monotonic()
        try:
            lease = self._read()
        except APIError as exc:
            log.warning("leader election: cannot read Lease %s/%s: %s", self.namespace, self.name, exc)
            self._check_deadline()
            return self.retry_period_s
        now = time.monotonic()
        if lease is not None and (self._lease is None or _rv(lease) != _rv(self._lease)):
            self._changed_at = now
        self._lease = lease
        record = record_of(lease) if lease is not None else None
        action = decide(
            identity=self.identity,
            record=record,
            changed_at=self._changed_at,
            now=now,
            leading=self._leading,
            renewed_at=self._renewed_at,
            lease_duration_s=self.lease_duration_s,
            renew_deadline_s=self.renew_deadline_s,
        )
        if action == "step_down":
            self._step_down(release=False)
            return 0.0
        if action == "wait":
            expires_in = (
                self._changed_at
                + (record.lease_duration_s if record and record.lease_duration_s else self.lease_duration_s)
                - now
            )
            return max(0.05, min(self.retry_period_s * random.uniform(1.0, JITTER), expires_in))
        try:
            self._write(action, record)
        except Conflict:
            log.info("leader election: Lease %s/%s changed under us; re-reading", self.namespace, self.name)
            self._check_deadline()
            return 0.0 if not self._leading else self.retry_period_s / 4
        except APIError as exc:
            log.warning(
                "leader election: %s of Lease %s/%s failed: %s", action, self.namespace, self.name, exc
            )
            self._check_deadline()
            return self.retry_period_s
        self._won(started)
        return self.retry_period_s

    def _read(self) -> Obj | None:
        try:
            lease: Obj = request(self.api, "GET", self._path, timeout=self._timeout)
        except NotFound:
            return None
        return lease

    def _write(self, action: Action, record: LeaseRecord | None) -> None:
        now = _micro_time()
        if action == "create":
            body: Obj = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": {
                    "holderIdentity": self.identity,
                    "leaseDurationSeconds": int(self.lease_duration_s),
                    "acquireTime": now,
                    "renewTime": now,
                    "leaseTransitions": 0,
                },
            }
            self._lease = request(
                self.api, "POST", self._path.rsplit("/", 1)[0], body=body, timeout=self._timeout
            )
            return
        assert self._lease is not None and record is not None
        spec = dict(self._lease.get("spec") or {})
        if action == "acquire":
            spec.update(
                holderIdentity=self.identity, acquireTime=now, leaseTransitions=record.transitions + 1
            )  # as client-go: every change of holder
        spec.update(renewTime=now, leaseDurationSeconds=int(self.lease_duration_s))
        self._lease = self._put(spec)

    def _put(self, spec: Obj) -> Obj:
        assert self._lease is not None
        body = {**self._lease, "spec": spec}
        written: Obj = request(self.api, "PUT", self._path, body=body, timeout=self._timeout)
        return written

    def _won(self, started: float) -> None:
        with self._lock:
            was_leading = self._leading
            self._renewed_at = started  # the renewal landed after this instant
            self._leading = True
        if not was_leading:
            log.info(
                "leader election: %s is now leader of Lease %s/%s", self.identity, self.namespace, self.name
            )
            _call(self.on_started_leading)

    def _check_deadline(self) -> None:
        if must_step_down(
            leading=self._leading,
            renewed_at=self._renewed_at,
            now=time.monotonic(),
            renew_deadline_s=self.renew_deadline_s,
        ):
            log.warning(
                "leader election: could not renew Lease %s/%s within %.0f s; stepping down",
                self.namespace,
                self.name,
                self.renew_deadline_s,
            )
            self._step_down(release=False)

    def _step_down(self, *, release: bool) -> None:
        with self._lock:
            self._leading = False
            self._renewed_at = None
        if release:
            self._release()
        log.info("leader election: %s stopped leading Lease %s/%s", self.identity, self.namespace, self.name)
        _call(self.on_stopped_leading)

    def _release(self) -> None:
        """Empty the holder so a successor acquires at once (only if the Lease is still ours)."""
        if self._lease is None or record_of(self._lease).holder != self.identity:
            return
        now = _micro_time()
        spec = {
            **(self._lease.get("spec") or {}),
            "holderIdentity": "",
            "leaseDurationSeconds": 1,
            "acquireTime": now,
            "renewTime": now,
        }
        try:
            self._lease = self._put(spec)
        except APIError as exc:  # a conflict means it is no longer ours to release
            log.warning("leader election: could not release Lease %s/%s: %s", self.namespace, self.name, exc)


def _rv(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion", ""))


def _call(callback: Callable[[], None] | None) -> None:
    if callback is None:
        return
    try:
        callback()
    except Exception:  # a failing callback must not kill the election
        log.exception("leader election callback failed")
