"""Scenario 4, a pool failure: every node of one accelerator class NotReady (kwok's node-not-ready
stage), then back (issue 9: when a failed pool's nodes came back, all three pools moved back within
1.3 s).

With ``planning.nodeNotReadyGraceSeconds`` = GRACE_S and ``nodeReturnStabilizationSeconds`` =
STABILIZATION_S (and no churn penalty, so the cheapest placement, the one before the failure, is
the plan once the class is usable again):

- within the grace period nothing moves (replicas and Deployment UIDs as before) and the class says
  ``NodesReady=False, WithinGrace``;
- after it, the replicas are re-planned on other classes and Ready there; the failed class's
  Deployment is scaled to 0, not deleted (same UID); the class says ``NodesReady=False, NodesLost``
  with one Warning event ``NodesLost``;
- once the nodes are Ready again the class says ``NodesReady=False, Returning`` and nothing moves
  back for the stabilization window; after it the class is ``NodesReady=True, AllNodesReady`` with
  one Normal event ``NodesReturned``, and the replicas return to it (the same Deployment).

The power invariant holds throughout.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from chaos_faults import Kubelets, set_not_ready, wait_nodes
from chaos_fleet import (
    PLANNING_INTERVAL_S,
    cluster_events,
    condition,
    hold_still,
    replicas,
    uids,
    wait_converged,
)
from chaos_power import LivePower
from operator_proc import Operators
from test_operator import Kube, example_pool, operator_log_on_failure, operators, placements  # noqa: F401

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

GRACE_S = 8
STABILIZATION_S = 15
CONVERGE_S = 60.0
POOL = "embed"


def _fmt(placed: dict[str, dict[str, Any]]) -> str:
    return ",".join(f"{c}={p['replicas']}" for c, p in sorted(placed.items())) or "nothing"


def test_a_class_whose_nodes_all_fail_is_left_after_the_grace_period_and_used_again_after_the_window(
    operators: Operators,  # noqa: F811
    kube: Kube,
    chaos_ns: str,
    policy_patch: Callable[..., None],
    live_power: Callable[..., LivePower],
    kubelets: Kubelets,
    wait_for: Callable[..., Any],
) -> None:
    start = time.time()
    policy_patch(
        {
            "churnDollarsPerReplicaMove": 0,
            "planning": {
                "nodeNotReadyGraceSeconds": GRACE_S,
                "nodeReturnStabilizationSeconds": STABILIZATION_S,
            },
        }
    )
    operators.new("chaos-class").start()
    kube.create_pool(example_pool(POOL, chaos_ns))
    state = wait_converged(kube, chaos_ns, CONVERGE_S, "embed placed")
    before = placements(state["pools"][POOL])
    lost = max(before, key=lambda c: before[c]["replicas"])
    nodes = [n.metadata.name for n in kube.nodes_of(lost)]
    key = (chaos_ns, POOL, lost)

    def on_lost() -> int | None:
        return replicas(kube, chaos_ns).get(key)

    with live_power() as live:
        uids0, replicas0 = uids(kube, chaos_ns), replicas(kube, chaos_ns)
        try:
            asked = time.monotonic()
            set_not_ready(kube.core, nodes, True)
            took = wait_nodes(kube.core, nodes, ready=False)
            down = live.first_transitions(nodes, asked)[0] or time.monotonic()
            # 1. within the grace period: held
            held = wait_for(
                lambda: condition(kube, "acceleratorclasses", lost, "NodesReady") == ("False", "WithinGrace"),
                timeout=GRACE_S,
                interval=0.25,
                what=f"{lost} NodesReady=False, WithinGrace",
            )
            moved_in_grace = hold_still(
                kube, chaos_ns, GRACE_S - 1 - (time.monotonic() - down), replicas0, uids0
            )
            # 2. after it: moved, and the class's Deployment scaled to 0
            wait_converged(
                kube,
                chaos_ns,
                GRACE_S + 3 * PLANNING_INTERVAL_S + CONVERGE_S,
                f"embed's replicas off {lost} and Ready elsewhere",
                also=lambda: on_lost() == 0,
            )
            moved_after = time.monotonic() - down
            away = placements(kube.pool(chaos_ns, POOL))
            lost_said = condition(kube, "acceleratorclasses", lost, "NodesReady")
            uids_away, replicas_away = uids(kube, chaos_ns), replicas(kube, chaos_ns)
        finally:
            set_not_ready(kube.core, nodes, False)
        wait_nodes(kube.core, nodes, ready=True)
        back = live.first_transitions(nodes, asked)[1] or time.monotonic()  # the first node Ready again
        # 3. back, within the stabilization window: nothing moves back
        returning = wait_for(
            lambda: condition(kube, "acceleratorclasses", lost, "NodesReady") == ("False", "Returning"),
            timeout=2 * PLANNING_INTERVAL_S,
            interval=0.25,
            what=f"{lost} NodesReady=False, Returning",
        )
        moved_in_window = hold_still(
            kube, chaos_ns, STABILIZATION_S - 0.5 - (time.monotonic() - back), replicas_away, uids_away
        )
        # 4. after it: used again
        wait_converged(
            kube,
            chaos_ns,
            STABILIZATION_S + 3 * PLANNING_INTERVAL_S + CONVERGE_S,
            f"replicas back on {lost} after the stabilization window",
            also=lambda: (on_lost() or 0) > 0,
        )
        moved_back = time.monotonic() - back
        ready_said = condition(kube, "acceleratorclasses", lost, "NodesReady")
        final = placements(kube.pool(chaos_ns, POOL))
        invariant = live.invariant
    lost_events = cluster_events(kube, "AcceleratorClass", "NodesLost", lost, since=start)
    returned_events = cluster_events(kube, "AcceleratorClass", "NodesReturned", lost, since=start)
    print(
        f"\n{lost} ({len(nodes)} nodes) NotReady in {took:.1f}s; "
        f"{_fmt(before)} -> "
        f"{_fmt(away)} {moved_after:.1f}s after NotReady "
        f"(grace {GRACE_S}s; moves within it: {moved_in_grace or 'none'}); back on {lost} {moved_back:.1f}s "
        f"after Ready again (window {STABILIZATION_S}s; moves within it: {moved_in_window or 'none'}) -> "
        f"{_fmt(final)}; events NodesLost "
        f"{len(lost_events)}, NodesReturned {len(returned_events)}; power: {invariant.summary()}"
    )
    assert held and returning
    assert moved_in_grace == [], moved_in_grace
    assert moved_after >= GRACE_S - 1, f"moved {moved_after:.1f}s after NotReady, inside the grace period"
    assert lost not in away and away, away
    assert uids_away[key] == uids0[key], "the failed class's Deployment was replaced, not scaled to 0"
    assert lost_said == ("False", "NodesLost"), lost_said
    assert moved_in_window == [], moved_in_window
    assert moved_back >= STABILIZATION_S - 1, f"moved back {moved_back:.1f}s after Ready, inside the window"
    assert ready_said == ("True", "AllNodesReady"), ready_said
    assert uids(kube, chaos_ns)[key] == uids0[key]
    assert [e.type for e in lost_events] == ["Warning"], [(e.type, e.message) for e in lost_events]
    assert [e.type for e in returned_events] == ["Normal"], [(e.type, e.message) for e in returned_events]
    assert invariant.violations == 0, invariant.summary()
