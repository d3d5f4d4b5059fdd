"""Scenario 5, the budgets vanish: FleetPolicy ``default`` deleted while pools run under binding
budgets and their demand grows, then restored (issue 9: deleting it removed every budget; hall-a
rose to 17.4 kW against 10, hall-b to 36.8 against 30).

While it is gone: no increase anywhere (no Deployment gains a replica, live watts per domain never
above the budgets recorded before the deletion), every AcceleratorClass says ``PowerBudget=False,
PolicyMissing`` with one event.  Once it is back: planning resumes (the grown demand is
re-planned under the same binding budgets: more replicas, other classes or shed), the classes'
PowerBudget turns True again, the fleet converges within the budgets.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from chaos_fleet import cluster_events, condition, replicas, set_demand, wait_converged
from chaos_power import LivePower
from operator_proc import Operators
from test_operator import GROUP, Kube, example_pool, operator_log_on_failure, operators  # noqa: F401

from inferfleet_dev.cluster import Cluster

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

CONVERGE_S = 60.0
GONE_S = 10.0  # how long the policy stays deleted after every class has said so
GROWTH = {"chat-70b": 80, "summarise-batch": 40}  # req/s while the policy is gone (was 40 and 20)


def test_a_deleted_fleet_policy_adds_nothing_anywhere_and_planning_resumes_once_it_is_back(
    operators: Operators,  # noqa: F811
    kube: Kube,
    chaos_ns: str,
    cluster: Cluster,
    policy_patch: Callable[..., None],  # puts the policy back however the test ends
    live_power: Callable[..., LivePower],
    wait_for: Callable[..., Any],
) -> None:
    start = time.time()
    operators.new("chaos-policy").start()
    for name in ("chat-70b", "code-completion-8b", "summarise-batch", "embed"):
        kube.create_pool(example_pool(name, chaos_ns))
    wait_converged(kube, chaos_ns, CONVERGE_S, "the pools placed")
    policy = kube.cluster_object("fleetpolicies", "default")
    manifest = {"apiVersion": policy["apiVersion"], "kind": policy["kind"], "metadata": {"name": "default"}}
    manifest["spec"] = policy["spec"]
    classes = [
        c["metadata"]["name"]
        for c in kube.custom.list_cluster_custom_object(GROUP, "v1alpha1", "acceleratorclasses")["items"]
    ]
    with live_power() as live:  # the budgets now hold throughout: a deletion changes nothing
        before = replicas(kube, chaos_ns)
        cluster.kubectl("delete", f"fleetpolicies.{GROUP}", "default")
        deleted = time.monotonic()
        wait_for(
            lambda: all(
                condition(kube, "acceleratorclasses", c, "PowerBudget") == ("False", "PolicyMissing")
                for c in classes
            ),
            timeout=30,
            interval=0.25,
            what="PowerBudget=False, PolicyMissing on every class",
        )
        said = time.monotonic() - deleted
        for pool, rps in GROWTH.items():
            set_demand(kube, chaos_ns, pool, rps)
        increases: list[str] = []
        until = time.monotonic() + GONE_S
        while time.monotonic() < until:
            for key, n in replicas(kube, chaos_ns).items():
                if (
                    n > before.get(key, 0)
                    and (msg := f"{'/'.join(key[1:])}: {before.get(key, 0)} -> {n}") not in increases
                ):
                    increases.append(msg)
            time.sleep(0.25)
        gone_invariant = (live.invariant.samples, live.invariant.violations)
        cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest))
        restored = time.monotonic()

        state = wait_converged(  # re-planned for the grown demand: more replicas, others, or shed
            kube,
            chaos_ns,
            CONVERGE_S,
            "planning to resume once the policy is back",
            also=lambda: replicas(kube, chaos_ns) != before,
        )
        resumed_s = time.monotonic() - restored
        wait_for(
            lambda: all(
                (condition(kube, "acceleratorclasses", c, "PowerBudget") or ("",))[0] == "True"
                for c in classes
            ),
            timeout=30,
            interval=0.25,
            what="PowerBudget=True on every class again",
        )
        invariant = live.invariant
    events = {c: cluster_events(kube, "AcceleratorClass", "PolicyMissing", c, since=start) for c in classes}
    placed = {name: p["status"].get("placementSummary") for name, p in state["pools"].items()}
    print(
        f"\npolicy deleted: PolicyMissing on all {len(classes)} classes after {said:.1f}s; demand grown "
        f"({', '.join(f'{p}={r}' for p, r in GROWTH.items())}); {GONE_S:.0f}s later: increases "
        f"{increases or 'none'}; samples while gone {gone_invariant[0]} (violations {gone_invariant[1]}); "
        f"restored: re-planned and converged {resumed_s:.1f}s later -> {placed}; events per class "
        f"{sorted({len(e) for e in events.values()})}; power: {invariant.summary()}"
    )
    assert increases == [], increases
    assert invariant.violations == 0, invariant.summary()
    assert all(len(e) == 1 for e in events.values()), {c: [x.message for x in e] for c, e in events.items()}
