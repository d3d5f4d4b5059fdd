"""Who may read the metrics: a bearer token checked with a TokenReview, its user authorised with a
SubjectAccessReview, as controller-runtime's secure metrics endpoint and kube-rbac-proxy do.

Owns the two API calls and a short, bounded memory of their answers (tokens are kept only as
SHA-256 digests).  The verdict is an HTTP status for ``metrics/server.py``: 200 allowed, 401 no
token or one the API server does not authenticate, 403 a user RBAC does not allow to ``get`` the
path (a ``nonResourceURLs: [/metrics]`` rule), 503 when the API server could not be asked (not
remembered: the next scrape asks again).  The operator's ServiceAccount needs ``create`` on
``tokenreviews`` and ``subjectaccessreviews`` (the chart grants them with ``metrics.secure``).
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Final

import kubernetes.client

from inferfleet.kube.client import APIRejected, TransientAPIError, request

__all__ = ["ALLOW_TTL_S", "DENY_TTL_S", "AccessReviewer", "Verdict"]

log = logging.getLogger("inferfleet.access")

ALLOW_TTL_S: Final = 60.0  # an allowed token is asked about again after this long
DENY_TTL_S: Final = 10.0  # ... a refused one sooner (a RoleBinding just created takes effect soon)
MAX_ENTRIES: Final = 1024
TOKEN_REVIEWS: Final = "/apis/authentication.k8s.io/v1/tokenreviews"
ACCESS_REVIEWS: Final = "/apis/authorization.k8s.io/v1/subjectaccessreviews"


@dataclasses.dataclass(frozen=True)
class Verdict:
    status: int  # 200, 401, 403 or 503
    user: str | None = None  # who the token belongs to (None: not authenticated)
    why: str = ""  # for the log


class AccessReviewer:
    """``check(token, path)`` -> ``Verdict``; thread-safe."""

    def __init__(
        self,
        api: kubernetes.client.ApiClient,
        *,
        verb: str = "get",
        allow_ttl_s: float = ALLOW_TTL_S,
        deny_ttl_s: float = DENY_TTL_S,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api = api
        self.verb = verb
        self.allow_ttl_s = allow_ttl_s
        self.deny_ttl_s = deny_ttl_s
        self.max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._memory: collections.OrderedDict[tuple[str, str], tuple[float, Verdict]] = (
            collections.OrderedDict()
        )
        self.reviews = 0  # API calls made (TokenReviews and SubjectAccessReviews)

    def status(self, token: str | None, path: str) -> int:
        """The HTTP status for ``metrics.server.Authorize``."""
        return self.check(token, path).status

    def check(self, token: str | None, path: str) -> Verdict:
        if not token:
            return Verdict(401, why="no bearer token")
        key, now = (hashlib.sha256(token.encode()).hexdigest(), path), self._clock()
        with self._lock:
            remembered = self._memory.get(key)
            if remembered is not None and remembered[0] > now:
                self._memory.move_to_end(key)
                return remembered[1]
        verdict = self._ask(token, path)
        if verdict.status in (200, 401, 403):
            ttl = self.allow_ttl_s if verdict.status == 200 else self.deny_ttl_s
            with self._lock:
                self._memory[key] = (now + ttl, verdict)
                self._memory.move_to_end(key)
                while len(self._memory) > self.max_entries:
                    self._memory.popitem(last=False)
        if verdict.status != 200:
            log.info("metrics request refused (%d): %s", verdict.status, verdict.why)
        return verdict

    def _ask(self, token: str, path: str) -> Verdict:
        try:
            review = self._post(TOKEN_REVIEWS, {"spec": {"token": token}})
            status = review.get("status") or {}
            if not status.get("authenticated"):
                return Verdict(401, why=str(status.get("error") or "token not authenticated"))
            user = status.get("user") or {}
            name = str(user.get("username", ""))
            spec: dict[str, Any] = {
                "user": name,
                "groups": list(user.get("groups") or ()),
                "nonResourceAttributes": {"path": path, "verb": self.verb},
            }
            if user.get("uid"):
                spec["uid"] = user["uid"]
            if user.get("extra"):
                spec["extra"] = user["extra"]
            access = self._post(ACCESS_REVIEWS, {"spec": spec}).get("status") or {}
        except (TransientAPIError, APIRejected) as exc:
            return Verdict(503, why=f"the API server could not review the request: {exc}")
        if access.get("allowed") and not access.get("denied"):
            return Verdict(200, name)
        why = access.get("reason") or access.get("evaluationError") or "RBAC allows no such request"
        return Verdict(403, name, f"{name} may not {self.verb} {path}: {why}")

    def _post(self, path: str, spec: dict[str, Any]) -> dict[str, Any]:
        kind = "TokenReview" if path == TOKEN_REVIEWS else "SubjectAccessReview"
        group = path.split("/")[2]
        body = {"apiVersion": f"{group}/v1", "kind": kind, **spec}
        self.reviews += 1
        answer: dict[str, Any] = request(self.api, "POST", path, body=body)
        return answer
