"""Children checked by the API server before the plan counts them: a server-side dry run.

Owns ``Verifier``: which of a round's child applies need a dry run (a template the server has not
accepted yet: scaling alone never needs one), the dry runs themselves (through the ``Writer``), and
the refusals that keep a pool's Deployment on a class out of the plan (``Refusal.invalid``: 400, 403
or 422, i.e. the object or an admission policy, not a transient).  A refusal stands until its pool
or class changes (a new generation) or ``retry_s`` has passed (an admission policy can change
without either), then the option is planned and dry-run again.  Real applies the server refused
the same way count as refusals too, so a child that slipped through (a race with a policy change)
is not re-planned every round.

One dry run stands for a *shape* (``shape_hash``): children of different pools whose manifests
differ only in the Deployment's name, the pool's name where it is carried (labels, selector, the
owner reference, the pool's environment variable) and the owner's uid.  Names are masked character
by character (letters to ``a``, digits to ``0``, the rest kept), so names of one length and syntax
are one shape and every name rule of the API server judges them alike; the namespace is kept (quotas
and pod-security labels are per namespace).  An admission policy that judges names themselves is
the one thing a shape cannot see: a real apply it refuses is recorded like a dry-run refusal.  A
refused shape is a refusal of every child of it, each naming its own pool and Deployment.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from inferfleet.api import labels
from inferfleet.reconcile.ports import Obj, Refusal, Snapshot, Writer

__all__ = ["Verifier", "shape_hash", "template_hash"]

RETRY_S = 30.0
KNOWN_MAX = 20_000  # shapes remembered as accepted (at most a few per pool)


def template_hash(obj: Obj) -> str:
    """What the server judges of a child, less what scaling changes (replicas) and our hash."""
    body: dict[str, Any] = json.loads(json.dumps(obj))
    body.get("spec", {}).pop("replicas", None)
    body.get("metadata", {}).get("annotations", {}).pop(labels.SPEC_HASH, None)
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:20]


def _mask(name: str) -> str:
    """A name as its syntax: letters a, digits 0, the rest (``-``, ``.``) kept."""
    return re.sub(r"[0-9]", "0", re.sub(r"[^0-9.\-]", "a", name))


def _names(obj: Obj) -> tuple[str, str]:
    """(the child's name, its pool's name) as the manifest carries them."""
    meta = obj.get("metadata") or {}
    return str(meta.get("name") or ""), str((meta.get("labels") or {}).get(labels.POOL) or "")


def shape_hash(obj: Obj) -> str:
    """``template_hash`` with the child's and its pool's names masked (``_mask``) where they are
    carried and the owner's uid left out: one dry run judges every child of a shape."""
    body: dict[str, Any] = json.loads(json.dumps(obj))
    name, pool = _names(obj)
    meta = body.setdefault("metadata", {})
    if name:
        meta["name"] = _mask(name)
    for ref in meta.get("ownerReferences") or ():
        ref.pop("uid", None)
        if ref.get("name") == pool:
            ref["name"] = _mask(pool)
    spec = body.get("spec") or {}
    template = spec.get("template") or {}
    label_maps = [
        meta.get("labels"),
        (spec.get("selector") or {}).get("matchLabels"),
        (template.get("metadata") or {}).get("labels"),
    ]
    for found in label_maps:
        for key, value in (found or {}).items():
            if pool and value == pool:
                found[key] = _mask(pool)
    for container in (template.get("spec") or {}).get("containers") or ():
        for env in container.get("env") or ():
            if pool and env.get("value") == pool:
                env["value"] = _mask(pool)
    return template_hash(body)


def _renamed(words: str, before: tuple[str, str], after: tuple[str, str]) -> str:
    """The server's words about one child of a shape, said of another: its names swapped in."""
    swap = {b: a for b, a in zip(before, after, strict=True) if b}
    if not swap:
        return words
    pattern = "|".join(re.escape(b) for b in sorted(swap, key=len, reverse=True))
    return re.sub(pattern, lambda m: swap[m.group(0)], words)


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
        """Dry-run one Deployment of each shape the server has not accepted yet (``run`` maps a
        function over items in parallel, returning each one's exception or None); returns the new
        refusals, one per child of a refused shape (they stand from now on), and remembers the
        shapes accepted."""
        shapes: dict[str, list[Obj]] = {}
        for c in children:
            if c.get("kind") == "Deployment" and (key := shape_hash(c)) not in self._known:
                shapes.setdefault(key, []).append(c)
        if not shapes:
            return []
        firsts = [members[0] for members in shapes.values()]
        new: list[Refusal] = []
        for (key, members), exc in zip(shapes.items(), run(self._writer.dry_run, firsts), strict=True):
            if exc is None:
                self._known[key] = None
                while len(self._known) > KNOWN_MAX:
                    self._known.popitem(last=False)
                continue
            words = self._words(exc)
            for child in members:
                refusal = self._refusal(child, _renamed(words, _names(members[0]), _names(child)), exc)
                if refusal.invalid:
                    new.append(refusal)
        self.record(new, snapshot)
        return new

    @staticmethod
    def _refusal(child: Obj, words: str, exc: Exception) -> Refusal:
        meta = child.get("metadata") or {}
        child_labels = meta.get("labels") or {}
        return Refusal(
            f"{meta.get('namespace')}/{child_labels.get(labels.POOL)}",
            "Deployment",
            str(meta.get("name")),
            "apply",
            words,
            child_labels.get(labels.ACCELERATOR_CLASS),
            getattr(exc, "status", None),
            dry_run=True,
        )
