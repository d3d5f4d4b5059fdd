"""Scenario 3, a frozen network path: the operator reaches the API server only through a TCP proxy
(test_health's ``FreezableProxy``) that freezes every socket, open and new (connections stay up, no
byte moves), with pools under management.

``/healthz`` turns 500 (APIUnreachable) within the bound given by ``--api-unreachable-seconds``
(not before it), ``/readyz`` stays 200; the pool demand changed while frozen reaches the operator
once the proxy thaws (its watches carry on or re-list): the change is planned and applied,
``/healthz`` is 200 again, and no Deployment was replaced.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from chaos_fleet import churn, set_demand, uids, wait_converged
from chaos_power import LivePower
from operator_proc import Operators
from test_health import FreezableProxy, health, proxied_kubeconfig, proxy  # noqa: F401
from test_operator import Kube, example_pool, operator_log_on_failure, operators  # noqa: F401

from inferfleet_dev.cluster import Cluster

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

API_BOUND_S = 8.0  # --api-unreachable-seconds
PROBE_S = 1.0  # --api-probe-seconds
CONVERGE_S = 60.0


def test_a_frozen_proxy_fails_liveness_within_the_bound_and_the_operator_catches_up_after_the_thaw(
    operators: Operators,  # noqa: F811
    kube: Kube,
    chaos_ns: str,
    cluster: Cluster,
    proxy: FreezableProxy,  # noqa: F811
    live_power: Callable[..., LivePower],
    tmp_path: Path,
    wait_for: Callable[..., Any],
) -> None:
    op = operators.new(
        "chaos-proxy",
        extra_args=[
            f"--api-probe-seconds={PROBE_S}",
            f"--api-unreachable-seconds={API_BOUND_S}",
            "--plan-stale-seconds=600",  # only the API bound is under test here
        ],
    )
    op.kubeconfig = proxied_kubeconfig(cluster, proxy, tmp_path / "kubeconfig")
    op.start()
    for name in ("chat-70b", "embed"):
        kube.create_pool(example_pool(name, chaos_ns))
    wait_converged(kube, chaos_ns, CONVERGE_S, "the pools placed")
    wait_for(lambda: health(op, "/readyz")[0] == 200, timeout=30, what="/readyz 200 via the proxy")
    assert health(op, "/healthz")[0] == 200
    with live_power() as live:
        before = uids(kube, chaos_ns)
        proxy.freeze()
        frozen_at = time.monotonic()
        set_demand(kube, chaos_ns, "embed", 1500)
        seen: list[tuple[float, int | None]] = []
        body: dict[str, Any] = {}
        while time.monotonic() - frozen_at < API_BOUND_S + 15:
            status, body = health(op, "/healthz")
            seen.append((round(time.monotonic() - frozen_at, 2), status))
            if status not in (200, None):
                break
            time.sleep(0.25)
        failed_after = time.monotonic() - frozen_at
        ready_while_frozen = health(op, "/readyz")[0]
        time.sleep(2.0)  # a little longer frozen: the probe keeps failing
        proxy.thaw()
        thawed = time.monotonic()
        wait_for(lambda: health(op, "/healthz")[0] == 200, timeout=60, what="/healthz 200 after the thaw")
        recovered = time.monotonic() - thawed

        wait_converged(kube, chaos_ns, CONVERGE_S, "the demand changed while frozen applied")
        caught_up = time.monotonic() - thawed
        invariant = live.invariant
    replaced = churn(before, uids(kube, chaos_ns), kube)
    print(
        f"\nproxy frozen: /healthz {seen[-1][1]} after {failed_after:.1f}s (bound {API_BOUND_S:.0f}s, "
        f"probe {PROBE_S:.0f}s), /readyz {ready_while_frozen}; after the thaw /healthz 200 in "
        f"{recovered:.1f}s, the change made while frozen applied in {caught_up:.1f}s; UID churn "
        f"{len(replaced)}; power: {invariant.summary()}"
    )
    assert seen[-1][1] == 500, f"/healthz never failed during the freeze: {seen[-5:]}"
    assert [p["reason"] for p in body["problems"]] == ["APIUnreachable"], body
    assert failed_after >= API_BOUND_S - PROBE_S - 0.5, f"failed before the bound: {failed_after:.1f}s"
    assert failed_after <= API_BOUND_S + PROBE_S + 3, f"failed well after the bound: {failed_after:.1f}s"
    assert ready_while_frozen == 200, "readiness is not liveness"
    assert replaced == []
    assert invariant.violations == 0, invariant.summary()
