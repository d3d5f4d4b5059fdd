"""Children checked by the API server before the plan counts them: a server-side dry run.

Owns ``Verifier``: which of a round's child applies need a dry run (a template the server has not
accepted yet: scaling alone never needs one), the dry runs themselves (through the ``Writer``), and
the refusals that keep a pool's Deployment on a class out of the plan (``Refusal.invalid``: 400, 403
or 422, i.e. the object or an admission policy, not a transient).  A refusal stands until its pool
or class changes (a new generation) or ``retry_s`` has passed (an admission policy can change
without either), then the option is planned and dry-run again.  Real applies the server refused
the same way count as refusals too, so a child that slipped through (a race with a policy change)
is not re-planned every round.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from inferfleet.api import labels
from inferfleet.reconcile.ports import Obj, Refusal, Snapshot, Writer

__all__ = ["Verifier", "template_hash"]

RETRY_S = 30.0
KNOWN_MAX = 20_000  # templates remembered as accepted (a few per pool)


def template_hash(obj: Obj) -> str:
    """What the server judges of a child, less what scaling changes (replicas) and our hash."""
    body: dict[str, Any] = json.loads(json.dumps(obj))
    body.get("spec", {}).pop("replicas", None)
    body.get("metadata", {}).get("annotations", {}).pop(labels.SPEC_HASH, None)
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:20]


@dataclasses.dataclass(frozen=True)
class _Standing:
    refusal: Refusal
    at: float
    generations: tuple[object, object]  # (pool, class) metadata.generation when refused


def _generations(snapshot: Snapshot, pool: str, cls: str | None) -> tuple[object, object]:
    def gen(objs: Iterable[Obj], match: Callable[[Mapping[str, Any]], bool]) -> object:
        return next(
            ((o.get("metadata") or {}).get("generation") for o in objs if match(o.get("metadata") or {})),
            None,
        )

    ns, _, name = pool.partition("/")
    return (
        gen(snapshot.pools, lambda m: m.get("namespace") == ns and m.get("name") == name),
        gen(snapshot.classes, lambda m: m.get("name") == cls),
    )


class Verifier:
    """Dry runs before counting, and the refusals that stand."""

    def __init__(
        self,
        writer: Writer,
        words: Callable[[Exception], str],
        *,
        retry_s: float = RETRY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._writer = writer
        self._words = words
        self.retry_s = retry_s
        self._clock = clock
        self._known: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._standing: dict[tuple[str, str], _Standing] = {}

    def standing(self, snapshot: Snapshot) -> list[Refusal]:
        """The refusals that still keep options out of the plan (expired or outdated ones dropped)."""
        now = self._clock()
        for key, s in list(self._standing.items()):
            fresh = now - s.at < self.retry_s
            if (
                not fresh
                or _generations(snapshot, s.refusal.pool, s.refusal.accelerator_class) != s.generations
            ):
                del self._standing[key]
        return [s.refusal for _, s in sorted(self._standing.items())]

    def due_s(self) -> float | None:
        """Seconds until the first standing refusal expires (its option is then tried again)."""
        if not self._standing:
            return None
        first = min(s.at for s in self._standing.values())
        return max(first + self.retry_s - self._clock(), 0.0) + 0.5

    def record(self, refusals: Sequence[Refusal], snapshot: Snapshot) -> None:
        """Real applies the server refused as invalid stand like dry-run refusals."""
        for r in refusals:
            if r.invalid and r.accelerator_class is not None:
                key = (r.pool, r.accelerator_class)
                self._standing[key] = _Standing(r, self._clock(), _generations(snapshot, *key))

    def check(
        self,
        children: Sequence[Obj],
        snapshot: Snapshot,
        run: Callable[[Callable[[Obj], None], list[Obj]], list[Exception | None]],
    ) -> list[Refusal]:
        """Dry-run the Deployments whose template the server has not accepted yet (``run`` maps a
        function over items in parallel, returning each one's exception or None); returns the new
        refusals (they stand from now on), and remembers what was accepted."""
        todo = [c for c in children if c.get("kind") == "Deployment" and template_hash(c) not in self._known]
        if not todo:
            return []
        new: list[Refusal] = []
        for child, exc in zip(todo, run(self._writer.dry_run, todo), strict=True):
            meta = child.get("metadata") or {}
            child_labels = meta.get("labels") or {}
            if exc is None:
                self._known[template_hash(child)] = None
                while len(self._known) > KNOWN_MAX:
                    self._known.popitem(last=False)
                continue
            refusal = Refusal(
                f"{meta.get('namespace')}/{child_labels.get(labels.POOL)}",
                "Deployment",
                str(meta.get("name")),
                "apply",
                self._words(exc),
                child_labels.get(labels.ACCELERATOR_CLASS),
                getattr(exc, "status", None),
                dry_run=True,
            )
            if refusal.invalid:
                new.append(refusal)
        self.record(new, snapshot)
        return new
