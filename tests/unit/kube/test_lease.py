"""The leader-election decision: given what a replica last saw of the Lease, its monotonic clock and
its identity, what it does next.  Table-driven; the thread and the API calls are tested against a
real API server in tests/integration/test_kube_io.py."""

from __future__ import annotations

import dataclasses

import pytest

from inferfleet.kube.lease import Action, LeaseRecord, decide, must_step_down, record_of

ME = "replica-a"
OTHER = "replica-b"
DURATION = 15.0
DEADLINE = 10.0


@dataclasses.dataclass(frozen=True)
class Case:
    id: str
    record: LeaseRecord | None
    want: Action
    changed_at: float = 100.0  # when this replica received the record as it is now
    now: float = 101.0
    leading: bool = False
    renewed_at: float | None = None


CASES = [
    Case("no lease yet: create it", record=None, want="create"),
    Case("lease held by another and fresh: respect it", record=LeaseRecord(OTHER, 15), want="wait"),
    Case(
        "lease held by another, unchanged for just under its duration: still wait",
        record=LeaseRecord(OTHER, 15),
        now=100.0 + 14.9,
        want="wait",
    ),
    Case(
        "expired lease (unchanged for its whole duration): take it over",
        record=LeaseRecord(OTHER, 15),
        now=100.0 + 15.0,
        want="acquire",
    ),
    Case(
        "the holder's own lease duration counts, not ours",
        record=LeaseRecord(OTHER, 30),
        now=100.0 + 20.0,
        want="wait",
    ),
    Case(
        "no duration on the record: ours counts",
        record=LeaseRecord(OTHER, None),
        now=100.0 + 15.0,
        want="acquire",
    ),
    Case(
        "released lease (holderIdentity empty) is taken immediately",
        record=LeaseRecord("", 1),
        now=100.0,
        want="acquire",
    ),
    Case(
        "own lease while leading: renew it",
        record=LeaseRecord(ME, 15),
        leading=True,
        renewed_at=99.0,
        want="renew",
    ),
    Case(
        "own lease after a restart of the loop (not leading yet): renew, which wins it back",
        record=LeaseRecord(ME, 15),
        leading=False,
        want="renew",
    ),
    Case(
        "renew failure past deadline steps down, though the record still names us",
        record=LeaseRecord(ME, 15),
        leading=True,
        renewed_at=101.0 - DEADLINE,
        want="step_down",
    ),
    Case(
        "renewed just inside the deadline: keep leading",
        record=LeaseRecord(ME, 15),
        leading=True,
        renewed_at=101.0 - DEADLINE + 0.01,
        want="renew",
    ),
    Case(
        "leading but another now holds the lease: step down at once",
        record=LeaseRecord(OTHER, 15),
        leading=True,
        renewed_at=100.5,
        want="step_down",
    ),
    Case(
        "leading but the lease was deleted: step down (recreate next round)",
        record=None,
        leading=True,
        renewed_at=None,
        want="step_down",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_decide(case: Case) -> None:
    got = decide(
        identity=ME,
        record=case.record,
        changed_at=case.changed_at,
        now=case.now,
        leading=case.leading,
        renewed_at=case.renewed_at,
        lease_duration_s=DURATION,
        renew_deadline_s=DEADLINE,
    )
    assert got == case.want


@pytest.mark.parametrize(
    ("leading", "renewed_ago", "want"),
    [
        (False, None, False),
        (True, None, True),
        (True, 9.99, False),
        (True, 10.0, True),
    ],
    ids=[
        "follower never steps down",
        "leader that never renewed steps down",
        "leader renewed inside the deadline stays",
        "leader at the deadline steps down",
    ],
)
def test_must_step_down(leading: bool, renewed_ago: float | None, want: bool) -> None:
    renewed_at = None if renewed_ago is None else 50.0 - renewed_ago
    assert must_step_down(leading=leading, renewed_at=renewed_at, now=50.0, renew_deadline_s=DEADLINE) is want


def test_leader_deadline_ends_before_any_follower_may_take_over() -> None:
    """The safety argument: a renewal starting at t lands at s >= t; a follower that receives it at
    r >= s may acquire from r + duration; the leader stops at t + deadline < t + duration <= r + duration."""
    t = 1000.0
    received = t + 0.3

    def follower(now: float) -> Action:
        return decide(
            identity=OTHER,
            record=LeaseRecord(ME, DURATION),
            changed_at=received,
            now=now,
            leading=False,
            renewed_at=None,
            lease_duration_s=DURATION,
            renew_deadline_s=DEADLINE,
        )

    assert not must_step_down(leading=True, renewed_at=t, now=t + DEADLINE - 0.01, renew_deadline_s=DEADLINE)
    assert must_step_down(leading=True, renewed_at=t, now=t + DEADLINE, renew_deadline_s=DEADLINE)
    assert follower(t + DEADLINE) == "wait"
    assert follower(received + DURATION - 0.01) == "wait"
    assert follower(received + DURATION) == "acquire"


@pytest.mark.parametrize(
    ("spec", "want"),
    [
        (
            {"holderIdentity": "a", "leaseDurationSeconds": 15, "leaseTransitions": 3},
            LeaseRecord("a", 15.0, 3),
        ),
        ({}, LeaseRecord("", None, 0)),
        ({"holderIdentity": None, "leaseDurationSeconds": 1}, LeaseRecord("", 1.0, 0)),
    ],
    ids=["full spec", "empty spec is a released lease", "null holder is a released lease"],
)
def test_record_of(spec: dict[str, object], want: LeaseRecord) -> None:
    assert record_of({"spec": spec}) == want
