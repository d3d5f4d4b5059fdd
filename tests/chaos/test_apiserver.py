"""Scenario 2, the control plane: the kube-apiserver frozen (SIGSTOP for ``FREEZE_S``, then SIGCONT)
and, separately, restarted (SIGTERM, SIGKILL after 5 s, the same command line again); and every
node NotReady at once, which is what a control-plane outage looks like from the nodes (issue 9:
after a 60 s freeze nodes read NotReady for ~5 s and the operator deleted 11 of 25 Deployments,
recreating them 2 s later; ``INFERFLEET_CHAOS_FREEZE_SECONDS=60`` reproduces that freeze: here 10
nodes read NotReady, nothing moved).

After each fault: no Deployment of a pool that still exists is deleted and created again (UIDs
compared), nothing moves (replicas per (pool, class) as before) for longer than the NotReady grace
period plus two rounds after the last node came back, and a demand change made afterwards is
planned and applied (the operator's watches caught up); the power invariant holds throughout.
Every node NotReady (more than 55% of every zone): the FleetPolicy says ``NodesHealthy=False,
MassNotReady`` with one Warning event, no node is counted lost, nothing moves.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import pytest
from chaos_faults import ApiServer, Kubelets, not_ready
from chaos_fleet import (
    PLANNING_INTERVAL_S,
    churn,
    cluster_events,
    condition,
    hold_still,
    replicas,
    set_demand,
    uids,
    wait_converged,
)
from chaos_power import LivePower
from operator_proc import OperatorProcess, Operators
from test_operator import CLASS_LABEL, Kube, example_pool, operator_log_on_failure, operators  # noqa: F401

from inferfleet_dev.cluster import Cluster

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

FREEZE_S = float(os.environ.get("INFERFLEET_CHAOS_FREEZE_SECONDS", "30"))
GRACE_S = 10  # planning.nodeNotReadyGraceSeconds here
STABILIZATION_S = 15  # planning.nodeReturnStabilizationSeconds here
CONVERGE_S = 60.0


def _rounds(op: OperatorProcess) -> float:
    """Rounds the operator has completed (inferfleet_plans_total; -1 while it does not answer)."""
    value = op.metric("inferfleet_plans_total")
    return -1.0 if value is None else value


def _quiet_window(live: LivePower, since: float) -> float:
    """How long to watch for moves after a fault: two rounds, and if nodes read NotReady, until the
    grace period plus two rounds has passed since the longest of them began."""
    count, longest = live.not_ready_summary(since)
    base = 2.0 * PLANNING_INTERVAL_S + 1
    return base + (GRACE_S + longest if count else 0.0)


def test_a_frozen_then_restarted_api_server_deletes_and_recreates_nothing(
    operators: Operators,  # noqa: F811
    kube: Kube,
    chaos_ns: str,
    cluster: Cluster,
    policy_patch: Callable[..., None],
    live_power: Callable[..., LivePower],
    kubelets: Kubelets,
    wait_for: Callable[..., Any],
) -> None:
    policy_patch(
        {"planning": {"nodeNotReadyGraceSeconds": GRACE_S, "nodeReturnStabilizationSeconds": STABILIZATION_S}}
    )
    apiserver = ApiServer(cluster)
    op = operators.new("chaos-apiserver").start()
    for name in ("chat-70b", "code-completion-8b", "summarise-batch", "embed"):
        kube.create_pool(example_pool(name, chaos_ns))
    wait_converged(kube, chaos_ns, CONVERGE_S, "the pools placed")
    figures: list[str] = []
    with live_power() as live:
        uids0, replicas0 = uids(kube, chaos_ns), replicas(kube, chaos_ns)
        first = uids0
        rps = {"embed": 2000, "code-completion-8b": 100}
        for fault in ("freeze", "restart"):
            began = time.monotonic()
            if fault == "freeze":
                with apiserver.frozen():
                    time.sleep(FREEZE_S)
                what = f"frozen {FREEZE_S:.0f}s"
            else:
                what = f"restarted (down {apiserver.restart():.1f}s)"
            back, rounds = time.monotonic(), _rounds(op)

            def planned(done: float = rounds) -> bool:
                return _rounds(op) > done

            wait_converged(
                kube, chaos_ns, CONVERGE_S, f"a planning round after the API server {fault}", planned
            )
            settled = time.monotonic() - back
            window = _quiet_window(live, began)
            moved = hold_still(kube, chaos_ns, window - (time.monotonic() - back), replicas0, uids0)
            count, longest = live.not_ready_summary(began)
            pool, new_rps = rps.popitem()
            set_demand(kube, chaos_ns, pool, new_rps)
            changed = time.monotonic()
            wait_converged(kube, chaos_ns, CONVERGE_S, f"{pool}'s new demand applied after the {fault}")
            figures.append(
                f"API server {what}: {count} nodes read NotReady (longest {longest:.1f}s); a round and "
                f"the plan matched {settled:.1f}s after it answered; watched {window:.0f}s for moves: "
                f"{moved or 'none'}; {pool} -> {new_rps} req/s applied in {time.monotonic() - changed:.1f}s"
            )
            assert moved == [], f"after the API server {fault}: {moved}"
            uids0, replicas0 = uids(kube, chaos_ns), replicas(kube, chaos_ns)
        invariant = live.invariant
    replaced = churn(first, uids(kube, chaos_ns), kube)
    print("\n" + "\n".join(figures))
    print(
        f"  UID churn {len(replaced)}; power: {invariant.summary()}; watch re-lists {live.relists}; "
        f"pods reported Ready again for kwok {kubelets.revived}"
    )
    assert replaced == []
    assert invariant.violations == 0, invariant.summary()


def test_every_node_not_ready_at_once_is_a_control_plane_problem_and_moves_nothing(
    operators: Operators,  # noqa: F811
    kube: Kube,
    chaos_ns: str,
    policy_patch: Callable[..., None],
    live_power: Callable[..., LivePower],
    kubelets: Kubelets,
    wait_for: Callable[..., Any],
) -> None:
    grace, start = 5, time.time()
    policy_patch({"planning": {"nodeNotReadyGraceSeconds": grace, "nodeReturnStabilizationSeconds": 10}})
    operators.new("chaos-mass").start()
    for name in ("chat-70b", "embed"):
        kube.create_pool(example_pool(name, chaos_ns))
    wait_converged(kube, chaos_ns, CONVERGE_S, "the pools placed")
    listed = kube.core.list_node().items
    nodes = [n.metadata.name for n in listed]
    classes = sorted({(n.metadata.labels or {}).get(CLASS_LABEL, "") for n in listed} - {""})
    with live_power() as live:
        uids0, replicas0 = uids(kube, chaos_ns), replicas(kube, chaos_ns)
        with not_ready(kube.core, nodes) as took:
            down = time.monotonic()
            said = wait_for(
                lambda: (
                    condition(kube, "fleetpolicies", "default", "NodesHealthy") == ("False", "MassNotReady")
                ),
                timeout=3 * PLANNING_INTERVAL_S,
                interval=0.25,
                what="FleetPolicy NodesHealthy=False, MassNotReady",
            )
            noticed = time.monotonic() - down
            moved = hold_still(kube, chaos_ns, grace + 2 * PLANNING_INTERVAL_S + 1, replicas0, uids0)
            per_class = {c: condition(kube, "acceleratorclasses", c, "NodesReady") for c in classes}
        back = time.monotonic()
        wait_for(
            lambda: (condition(kube, "fleetpolicies", "default", "NodesHealthy") or ("",))[0] == "True",
            timeout=3 * PLANNING_INTERVAL_S,
            interval=0.25,
            what="FleetPolicy NodesHealthy=True once the nodes are back",
        )
        healed = time.monotonic() - back
        moved += hold_still(kube, chaos_ns, 2 * PLANNING_INTERVAL_S, replicas0, uids0)
        wait_converged(kube, chaos_ns, CONVERGE_S, "the pools Ready again as before")
        after_classes = {c: condition(kube, "acceleratorclasses", c, "NodesReady") for c in classes}
        invariant = live.invariant
    warnings = cluster_events(kube, "FleetPolicy", "MassNotReady", "default", since=start)
    print(
        f"\nall {len(nodes)} nodes NotReady ({took:.1f}s to take effect): MassNotReady on the FleetPolicy "
        f"{noticed:.1f}s later, {len(warnings)} event(s); moves while NotReady and after: {moved or 'none'}; "
        f"NodesHealthy again {healed:.1f}s after they came back; power: {invariant.summary()}"
    )
    assert said
    assert moved == []
    assert len(warnings) == 1 and warnings[0].type == "Warning", [(e.type, e.message) for e in warnings]
    assert all(v == ("False", "MassNotReady") for v in per_class.values()), per_class
    assert all(v == ("True", "AllNodesReady") for v in after_classes.values()), after_classes
    assert churn(uids0, uids(kube, chaos_ns), kube) == []
    assert invariant.violations == 0, invariant.summary()
