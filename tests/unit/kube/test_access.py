"""``AccessReviewer``: a TokenReview, then a SubjectAccessReview of the authenticated user for the
non-resource path; verdicts remembered briefly (allowed longer than refused), bounded, keyed by a
digest; an API server that cannot answer is 503 and not remembered."""

from __future__ import annotations

from typing import Any

import pytest

from inferfleet.kube import access
from inferfleet.kube.access import ACCESS_REVIEWS, TOKEN_REVIEWS, AccessReviewer
from inferfleet.kube.client import APIRejected, TransientAPIError

USERS = {
    "reader-token": {"username": "system:serviceaccount:mon:prometheus", "uid": "u1", "groups": ["g"]},
    "nobody-token": {"username": "system:serviceaccount:mon:nobody", "groups": []},
}
ALLOWED = {"system:serviceaccount:mon:prometheus"}


class FakeAPI:
    def __init__(self) -> None:
        self.posts: list[tuple[str, dict[str, Any]]] = []
        self.down = False

    def __call__(self, _api: object, verb: str, path: str, body: Any = None, **_: Any) -> dict[str, Any]:
        assert verb == "POST"
        self.posts.append((path, body))
        if self.down:
            raise TransientAPIError("connection refused")
        if path == TOKEN_REVIEWS:
            assert body["kind"] == "TokenReview" and body["apiVersion"] == "authentication.k8s.io/v1"
            user = USERS.get(body["spec"]["token"])
            return {
                "status": {"authenticated": True, "user": user} if user else {"error": "invalid bearer token"}
            }
        assert path == ACCESS_REVIEWS and body["kind"] == "SubjectAccessReview"
        spec = body["spec"]
        assert spec["nonResourceAttributes"] == {"path": "/metrics", "verb": "get"}
        return {"status": {"allowed": spec["user"] in ALLOWED}}


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeAPI:
    api = FakeAPI()
    monkeypatch.setattr(access, "request", api)
    return api


def reviewer(clock: list[float], **kw: Any) -> AccessReviewer:
    return AccessReviewer(None, clock=lambda: clock[0], **kw)  # type: ignore[arg-type]


def test_no_token_is_401_without_asking(fake: FakeAPI) -> None:
    assert reviewer([0.0]).check(None, "/metrics").status == 401
    assert fake.posts == []


@pytest.mark.parametrize(
    ("token", "status", "reviews"),
    [("forged", 401, 1), ("nobody-token", 403, 2), ("reader-token", 200, 2)],
    ids=["unauthenticated", "authenticated-but-not-allowed", "allowed"],
)
def test_a_token_is_reviewed_then_its_user_authorised(
    fake: FakeAPI, token: str, status: int, reviews: int
) -> None:
    verdict = reviewer([0.0]).check(token, "/metrics")
    assert verdict.status == status and len(fake.posts) == reviews
    if reviews == 2:
        spec = fake.posts[1][1]["spec"]
        assert spec["user"] == USERS[token]["username"] and spec["groups"] == USERS[token]["groups"]


def test_verdicts_are_remembered_allowed_longer_than_refused(fake: FakeAPI) -> None:
    clock = [0.0]
    r = reviewer(clock, allow_ttl_s=60.0, deny_ttl_s=10.0)
    for _ in range(5):
        assert r.status("reader-token", "/metrics") == 200
        assert r.status("nobody-token", "/metrics") == 403
    assert r.reviews == 4
    clock[0] = 11.0
    assert r.status("nobody-token", "/metrics") == 403 and r.reviews == 6  # refused: asked again
    assert r.status("reader-token", "/metrics") == 200 and r.reviews == 6  # allowed: still remembered
    clock[0] = 61.0
    assert r.status("reader-token", "/metrics") == 200 and r.reviews == 8


def test_an_api_server_that_cannot_answer_is_503_and_not_remembered(fake: FakeAPI) -> None:
    r = reviewer([0.0])
    fake.down = True
    assert r.status("reader-token", "/metrics") == 503
    fake.down = False
    assert r.status("reader-token", "/metrics") == 200


def test_a_refused_review_request_is_503_with_the_servers_words(
    fake: FakeAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    def forbidden(*_a: Any, **_k: Any) -> Any:
        raise APIRejected("HTTP 403: tokenreviews.authentication.k8s.io is forbidden")

    monkeypatch.setattr(access, "request", forbidden)
    verdict = reviewer([0.0]).check("reader-token", "/metrics")
    assert verdict.status == 503 and "tokenreviews" in verdict.why


def test_memory_is_bounded_and_holds_no_tokens(fake: FakeAPI) -> None:
    r = reviewer([0.0], max_entries=2)
    for token in ("reader-token", "nobody-token", "forged"):
        r.check(token, "/metrics")
    assert len(r._memory) == 2
    assert not any("token" in key for key, _ in r._memory), "tokens are kept as digests only"
