"""Chaos-suite fixtures: the fleet the scenarios run on and the rules they run under.

The session's ``cluster``, ``kube_api``, ``namespace``, ``crds`` and ``wait_for`` come from
tests/conftest.py (one control plane shared with tests/integration).  Here: ``chaos_fleet``
(module: the example AcceleratorClasses and a FleetPolicy ``default`` with the examples' budgets,
which bind, and 5 s planning rounds; what was there before is put back), ``chaos_ns`` (the test's
namespace; its pools are deleted and their children waited away afterwards, because the planner
sees the whole fleet), ``kube``, ``policy_patch`` (merge-patch FleetPolicy ``default`` for one
test, its spec put back afterwards), ``live_power`` (``LivePower`` over the fleet's classes: the
power invariant sampled on every pod or node change) and ``kubelets`` (pods reported Ready again
once their node is back, which kwok does not do).

Every test under tests/chaos is marked ``integration`` and ``chaos`` (by the collection hook
below, whether its module says so or not): they follow the integration rules (``CI=true`` never
skips; a cluster that cannot start stops the run) and ``INFERFLEET_SKIP_CHAOS=1`` skips only these,
outside CI (in CI it stops the run).  The scenarios
are bounded in time: each waits with explicit timeouts, the suite takes a few minutes.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # chaos_power, chaos_faults, chaos_fleet

from chaos_faults import Kubelets
from chaos_fleet import chaos_policy, patch_policy, set_policy_spec
from chaos_power import Budgets, Invariant, LivePower, budgets_of, class_power
from kubernetes.client.exceptions import ApiException
from test_operator import (
    GROUP,
    TEST_NS_LABEL,
    Kube,
    _apply,
    _as_manifest,
    delete_pools,
    examples,
)

from inferfleet_dev.cluster import Cluster

HERE = Path(__file__).resolve().parent


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "chaos: fault injection on the real control plane (tests/chaos)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test under tests/chaos is ``chaos`` and ``integration`` (marked or not: the
    integration hook in tests/conftest.py, which runs after this one, then applies its CI rules);
    INFERFLEET_SKIP_CHAOS skips them outside CI and stops the run in CI."""
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            for name in ("chaos", "integration"):
                if not item.get_closest_marker(name):
                    item.add_marker(name)
    chaos = [item for item in items if item.get_closest_marker("chaos")]
    if not chaos or os.environ.get("INFERFLEET_SKIP_CHAOS", "") not in ("1", "true", "yes"):
        return
    if _in_ci():
        pytest.exit("INFERFLEET_SKIP_CHAOS is set but CI=true: the chaos suite may not be skipped in CI", 1)
    for item in chaos:
        item.add_marker(pytest.mark.skip(reason="INFERFLEET_SKIP_CHAOS=1"))


@pytest.fixture
def kube(kube_api: Any) -> Kube:
    return Kube(kube_api)


@pytest.fixture(scope="module")
def chaos_fleet(
    cluster: Cluster, crds: list[Path], kube_api: Any, wait_for: Callable[..., Any]
) -> Iterator[dict[str, Any]]:
    """The example classes and the chaos FleetPolicy ``default``; afterwards what was there before."""
    kube = Kube(kube_api)
    ours = [*examples("AcceleratorClass"), chaos_policy()]
    before: list[tuple[str, str, dict[str, Any] | None]] = []
    for obj in ours:
        plural = "fleetpolicies" if obj["kind"] == "FleetPolicy" else "acceleratorclasses"
        try:
            found: dict[str, Any] | None = _as_manifest(kube.cluster_object(plural, obj["metadata"]["name"]))
        except ApiException as exc:
            if exc.status != 404:
                raise
            found = None
        before.append((plural, obj["metadata"]["name"], found))

    def no_test_pools() -> bool:  # leftovers of an earlier test or run, deleted with their namespaces
        test_ns = {n.metadata.name for n in kube.core.list_namespace(label_selector=TEST_NS_LABEL).items}
        return not any(p["metadata"]["namespace"] in test_ns for p in kube.pools())

    wait_for(no_test_pools, timeout=90, what="InferencePools of earlier test namespaces to be deleted")
    _apply(cluster, ours[:-1])
    set_policy_spec(kube, cluster, ours[-1]["spec"])
    yield {"classes": examples("AcceleratorClass"), "policy": ours[-1]}
    for plural, name, manifest in before:
        if plural == "fleetpolicies":
            if manifest is None:
                cluster.kubectl("delete", f"{plural}.{GROUP}", name, "--ignore-not-found", check=False)
            else:
                set_policy_spec(kube, cluster, manifest["spec"])
        elif manifest is None:
            cluster.kubectl("delete", f"{plural}.{GROUP}", name, "--ignore-not-found", check=False)
        else:
            _apply(cluster, [manifest])


@pytest.fixture
def chaos_ns(
    namespace: str, kube: Kube, chaos_fleet: dict[str, Any], wait_for: Callable[..., Any]
) -> Iterator[str]:
    """The test's namespace; afterwards its pools are deleted and their children waited away."""
    yield namespace
    delete_pools(kube, namespace, wait_for, timeout=90)


@pytest.fixture
def policy_patch(cluster: Cluster, kube: Kube, chaos_fleet: dict[str, Any]) -> Iterator[Callable[..., None]]:
    """``policy_patch(spec)`` merge-patches FleetPolicy ``default``; afterwards its spec is what it
    was (re-created if the test deleted it)."""
    original = kube.cluster_object("fleetpolicies", "default")["spec"]
    yield lambda spec: patch_policy(cluster, spec)
    set_policy_spec(kube, cluster, original)


@pytest.fixture
def live_power(cluster: Cluster, kube: Kube, chaos_fleet: dict[str, Any]) -> Callable[..., LivePower]:
    """``live_power(transition_s)``: a LivePower (use it as a context manager) whose Budgets start
    with the FleetPolicy's budgets now; record later changes with ``.invariant.budgets.set``."""

    def make(transition_s: float = float("inf")) -> LivePower:
        policy = kube.cluster_object("fleetpolicies", "default")
        budgets = Budgets(transition_s)
        budgets.set(time.monotonic(), budgets_of(policy))
        power = class_power(chaos_fleet["classes"], float(policy["spec"].get("sloHeadroomPercent", 20)))
        return LivePower(cluster.api_client, power, Invariant(budgets))

    return make


@pytest.fixture
def kubelets(cluster: Cluster) -> Iterator[Kubelets]:
    """The kubelets' part kwok leaves out: pods marked NotReady while their node was NotReady are
    reported Ready once it is back (see chaos_faults); for tests that make nodes NotReady."""
    with Kubelets(cluster.api_client) as k:
        yield k


@pytest.fixture(autouse=True)
def one_operator_at_a_time(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each chaos test starts its own operator (leader election off); the module's ``operators``
    keeps them, so stop them after each test, or the next test's operator plans beside this one
    and every write and event is made twice."""
    yield
    if "operators" in request.fixturenames:
        request.getfixturevalue("operators").stop_all()
