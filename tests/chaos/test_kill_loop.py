"""Scenario 1, the kill loop: the operator SIGKILLed again and again in the middle of transitions
(pools being created, a power budget lowered in one hall and raised in the other, pools resized),
restarted at once each time (one replica, no leader election, so no lease to wait for).

The power the fleet's pods draw on Ready nodes is checked on every pod and node change throughout
(``LivePower``): never above max(old budget, new budget) in any domain.  Afterwards: not one
duplicate or orphan Deployment or Service, the cluster matching the last plan within
``CONVERGE_S`` of the last restart (the figure printed), and within the new budgets.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from typing import Any

import pytest
from chaos_fleet import audit, converged, patch_policy, set_demand, wait_converged
from chaos_power import LivePower
from operator_proc import Operators
from test_operator import Kube, example_pool, operator_log_on_failure, operators  # noqa: F401

from inferfleet_dev.cluster import Cluster

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

CONVERGE_S = 90.0  # from the last restart to the cluster matching the plan
FIRST_WRITE_S = 10.0  # how long a started operator is given to begin writing before it is killed anyway
SEED = int(os.environ.get("INFERFLEET_CHAOS_SEED", "9"))


def test_sigkill_mid_transition_leaves_no_duplicates_or_orphans_and_never_exceeds_a_budget(
    operators: Operators,  # noqa: F811
    kube: Kube,
    chaos_ns: str,
    cluster: Cluster,
    live_power: Callable[..., LivePower],
    wait_for: Callable[..., Any],
) -> None:
    rng = random.Random(SEED)
    op = operators.new("chaos-kill")
    with live_power() as live:
        old = live.invariant.budgets.changes[0][1]
        new = {**old, "hall-a": old["hall-a"] + 4000, "hall-b": old["hall-b"] - 8000}

        def create(*names: str) -> None:
            for name in names:
                kube.create_pool(example_pool(name, chaos_ns))

        def budget() -> None:
            live.invariant.budgets.set(time.monotonic(), new)  # from now on max(old, new) is allowed
            domains = [{"name": d, "budgetKilowatts": w / 1000} for d, w in sorted(new.items())]
            patch_policy(cluster, {"powerDomains": domains})

        steps: list[tuple[str, Callable[[], None]]] = [
            ("create chat-70b and summarise-batch", lambda: create("chat-70b", "summarise-batch")),
            ("create code-completion-8b and embed", lambda: create("code-completion-8b", "embed")),
            ("budgets hall-a +4 kW, hall-b -8 kW", budget),
            ("chat-70b 40 -> 64 req/s", lambda: set_demand(kube, chaos_ns, "chat-70b", 64)),
            ("embed 3000 -> 1200 req/s", lambda: set_demand(kube, chaos_ns, "embed", 1200)),
            ("summarise-batch 20 -> 32 req/s", lambda: set_demand(kube, chaos_ns, "summarise-batch", 32)),
        ]
        kills = []
        for what, act in steps:
            act()
            started = time.monotonic()
            op.start()
            up = time.monotonic() - started
            while sum(op.writes().values()) == 0 and time.monotonic() - started < FIRST_WRITE_S:
                time.sleep(0.05)
            writes = sum(op.writes().values())
            time.sleep(rng.uniform(0.0, 1.0))
            mid = converged(kube, chaos_ns) is None
            writes = max(writes, sum(op.writes().values()))
            op.kill()
            kills.append((what, up, time.monotonic() - started, writes, mid))
        restarted = time.monotonic()
        op.start()
        state = wait_converged(kube, chaos_ns, CONVERGE_S, "the plan applied after the last restart")
        convergence = time.monotonic() - restarted
        final = live.watts()
        invariant = live.invariant
    found = audit(kube)
    print(f"\nkill loop (seed {SEED}): {len(kills)} SIGKILLs")
    for what, up, alive, writes, mid in kills:
        print(
            f"  after '{what}': metrics up {up:.1f}s, killed {alive:.1f}s after start, "
            f"{writes:.0f} writes, {'mid-transition' if mid else 'already converged'}"
        )
    print(
        f"  converged {convergence:.1f}s after the last restart; {found.deployments} Deployments, "
        f"{found.services} Services, {len(found.duplicates)} duplicates, {len(found.orphans)} orphans; "
        f"power: {invariant.summary()}; watch re-lists {live.relists}"
    )
    placed = {name: p["status"].get("placementSummary") for name, p in state["pools"].items()}
    print(f"  final placement {placed}")
    assert found.duplicates == [] and found.orphans == [], (found.duplicates, found.orphans)
    assert invariant.violations == 0, invariant.summary()
    for domain, watts in final.items():
        assert watts <= new.get(domain, float("inf")) + 0.5, f"{domain} {watts:.0f} W over the new budget"
    assert sum(1 for *_x, mid in kills if mid) >= len(kills) // 2, "most kills should land mid-transition"
