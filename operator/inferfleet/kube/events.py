"""How repeated Events are told: aggregated into one Event with a count, and rate-limited per object.

Owns the policy of client-go's event correlator, as pure code on an injected clock (seconds, any
origin) with its state bounded in size: the writer (``kube/writer.py``) asks ``Correlator.observe``
before each Event and does what it answers.

- **Aggregation** (client-go's ``EventAggregator``/``eventLogger``): an Event with the same involved
  object (kind, namespace, name, uid), type, reason and message as one told within ``window_s`` is
  not a new Event: the earlier one's ``count`` and ``lastTimestamp`` are patched.  Past the window
  the next one starts a new Event with count 1 (upstream: 10 minutes).
- **Rate limit** (client-go's ``EventSourceObjectSpamFilter``): a token bucket per involved object,
  ``burst`` tokens refilled one every ``refill_s``; every Event told about the object, created or
  patched, takes one; none left: dropped (upstream: burst 25, one per 5 minutes; ours are the same,
  so an object's events read as any Kubernetes component's).
- **Bounds**: at most ``max_entries`` remembered Events and as many buckets, least recently used
  forgotten first (upstream: 4096).  A forgotten Event is created anew; a forgotten bucket is full.
"""

from __future__ import annotations

import collections
import dataclasses
import enum
from typing import Final

__all__ = [
    "BURST",
    "MAX_ENTRIES",
    "REFILL_S",
    "WINDOW_S",
    "Action",
    "Correlator",
    "EventKey",
    "ObjectKey",
    "TokenBucket",
    "Verdict",
]

WINDOW_S: Final = 600.0  # client-go's defaultAggregateIntervalInSeconds
BURST: Final = 25  # client-go's defaultSpamBurst
REFILL_S: Final = 300.0  # client-go's defaultSpamQPS = 1/300
MAX_ENTRIES: Final = 4096  # client-go's maxLruCacheEntries

ObjectKey = tuple[str, str, str, str]  # (kind, namespace, name, uid) of the involved object


@dataclasses.dataclass(frozen=True)
class EventKey:
    """What makes two Events the same one told again."""

    obj: ObjectKey
    type: str
    reason: str
    message: str


class Action(enum.Enum):
    CREATE = "create"  # a new Event, count 1
    PATCH = "patch"  # the earlier Event ``name`` told again: count and lastTimestamp patched
    DROP = "drop"  # over the object's rate limit: not told


@dataclasses.dataclass(frozen=True)
class Verdict:
    action: Action
    name: str | None = None  # the Event to patch (PATCH)
    count: int = 1  # its count once told (CREATE: 1)
    first_seen: float | None = None  # when the Event was first told (PATCH)


@dataclasses.dataclass
class TokenBucket:
    """``burst`` tokens, one more every ``refill_s`` seconds (never above ``burst``)."""

    burst: int
    refill_s: float
    tokens: float
    at: float

    @classmethod
    def full(cls, burst: int, refill_s: float, now: float) -> TokenBucket:
        return cls(burst, refill_s, float(burst), now)

    def take(self, now: float) -> bool:
        """Take one token if there is one (after refilling up to ``now``)."""
        if now > self.at:
            self.tokens = min(float(self.burst), self.tokens + (now - self.at) / self.refill_s)
            self.at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@dataclasses.dataclass
class _Told:
    name: str
    count: int
    first: float
    last: float


class Correlator:
    """The memory of Events told recently and of each object's bucket (not thread-safe: the writer
    holds its lock around ``observe``/``created``/``forget``)."""

    def __init__(
        self,
        *,
        window_s: float = WINDOW_S,
        burst: int = BURST,
        refill_s: float = REFILL_S,
        max_entries: int = MAX_ENTRIES,
    ) -> None:
        if window_s <= 0 or burst < 1 or refill_s <= 0 or max_entries < 1:
            raise ValueError("need window_s > 0, burst >= 1, refill_s > 0 and max_entries >= 1")
        self.window_s = window_s
        self.burst = burst
        self.refill_s = refill_s
        self.max_entries = max_entries
        self._told: collections.OrderedDict[EventKey, _Told] = collections.OrderedDict()
        self._buckets: collections.OrderedDict[ObjectKey, TokenBucket] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._told)

    def buckets(self) -> int:
        return len(self._buckets)

    def observe(self, key: EventKey, now: float) -> Verdict:
        """What to do with ``key`` told at ``now``; a PATCH is counted here (the count it answers is
        the one to write), a CREATE once the writer calls ``created`` with the new Event's name."""
        if not self._bucket(key.obj, now).take(now):
            return Verdict(Action.DROP)
        told = self._told.get(key)
        if told is None or now - told.last > self.window_s:
            self._told.pop(key, None)
            return Verdict(Action.CREATE)
        told.count += 1
        told.last = now
        self._told.move_to_end(key)
        return Verdict(Action.PATCH, told.name, told.count, told.first)

    def created(self, key: EventKey, name: str, now: float) -> None:
        """The Event ``name`` was created for ``key`` (count 1)."""
        self._told[key] = _Told(name, 1, now, now)
        self._told.move_to_end(key)
        while len(self._told) > self.max_entries:
            self._told.popitem(last=False)

    def forget(self, key: EventKey) -> None:
        """The remembered Event is gone (expired by the API server's TTL, or deleted)."""
        self._told.pop(key, None)

    def _bucket(self, obj: ObjectKey, now: float) -> TokenBucket:
        bucket = self._buckets.get(obj)
        if bucket is None:
            bucket = TokenBucket.full(self.burst, self.refill_s, now)
            self._buckets[obj] = bucket
            while len(self._buckets) > self.max_entries:
                self._buckets.popitem(last=False)
        self._buckets.move_to_end(obj)
        return bucket
