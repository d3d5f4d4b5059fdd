"""Fixtures for every test on the real control plane (tests/integration, tests/chaos): one real local
control plane per run, a namespace per test.  They live here, above both folders, so that both share
one session ``cluster`` (a fixture defined in two conftests would start it twice).

Owns: the ``cluster`` (session; a ``inferfleet_dev.cluster.Cluster`` named ``inferfleet-test`` on
ports 24731-24736 or the next free block of six; reused between local runs when healthy; always
fresh and stopped at the end when ``CI=true``), ``kube_api`` (a session
``kubernetes.client.ApiClient``), ``namespace`` (created and deleted per test), ``crds``
(crds/*.yaml applied when present; request it in tests that need the CRDs) and ``wait_for``.

Environment: ``CI=true`` makes a cluster that cannot start fail the run (never skip);
``INFERFLEET_SKIP_INTEGRATION=1`` skips integration tests (outside CI only; tests/chaos is marked
``integration`` too, so it follows the same rules);
``INFERFLEET_TEST_CLUSTER`` / ``INFERFLEET_TEST_PORT_BASE`` override the name and ports;
``INFERFLEET_TEST_KEEP_CLUSTER=0|1`` overrides whether the cluster outlives the run.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from inferfleet_dev import install, procs
from inferfleet_dev.cluster import Cluster, ClusterError
from inferfleet_dev.components import Ports

ROOT = Path(__file__).resolve().parents[1]
FLEET_FILE = ROOT / "examples" / "simulated-fleet" / "fleet.yaml"
CRDS_DIR = ROOT / "crds"
CLUSTER_NAME = os.environ.get("INFERFLEET_TEST_CLUSTER", "inferfleet-test")
PORT_BASE = int(os.environ.get("INFERFLEET_TEST_PORT_BASE", "24731"))
TEST_NS_LABEL = "inferfleet.dev/test-namespace"

T = TypeVar("T")


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


def _skip_requested() -> bool:
    return os.environ.get("INFERFLEET_SKIP_INTEGRATION", "") in ("1", "true", "yes")


def _keep_cluster() -> bool:
    keep = os.environ.get("INFERFLEET_TEST_KEEP_CLUSTER")
    return (keep == "1") if keep is not None else not _in_ci()


def _abort(message: str) -> None:
    """A cluster that cannot start: stop the whole run loudly (CI and locally alike)."""
    hint = "" if _in_ci() else "\n(to skip integration tests locally: INFERFLEET_SKIP_INTEGRATION=1)"
    pytest.exit(f"integration cluster unavailable: {message}{hint}", returncode=1)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Build/verify binaries before any test runs, outside the per-test timeout."""
    if not any(item.get_closest_marker("integration") for item in items):
        return
    if _skip_requested():
        if _in_ci():
            _abort(
                "INFERFLEET_SKIP_INTEGRATION is set but CI=true: integration tests may not be skipped in CI"
            )
        skip = pytest.mark.skip(reason="INFERFLEET_SKIP_INTEGRATION=1")
        for item in items:
            if item.get_closest_marker("integration"):
                item.add_marker(skip)
        return
    try:
        install.ensure_binaries(quiet=True)
    except install.InstallError as exc:
        _abort(f"binaries could not be built or found: {exc}")


def wait_for(
    predicate: Callable[[], T | None], timeout: float = 30.0, interval: float = 0.2, what: str = "condition"
) -> T:
    """Poll ``predicate`` until it returns a truthy value; fail the test with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


@pytest.fixture(scope="session", name="wait_for")
def wait_for_fixture() -> Callable[..., Any]:
    return wait_for


def _free_port_base() -> int:
    """PORT_BASE, or the next block of six loopback ports nobody listens on."""
    if "INFERFLEET_TEST_PORT_BASE" in os.environ:
        return PORT_BASE  # explicit: a clash is reported, not worked around
    for base in range(PORT_BASE, PORT_BASE + 200, 10):
        if not procs.free_port_problems(Ports(base).by_component()):
            return base
    return PORT_BASE


def _start_cluster() -> Cluster:
    quiet: Callable[[str], None] = lambda _msg: None  # noqa: E731
    try:
        cluster = Cluster(CLUSTER_NAME, log=quiet)  # ports of a recorded cluster, if any
        if not _in_ci() and cluster.healthy():
            cluster.up(FLEET_FILE, timeout=120)  # reuse: re-applies the fleet
            return cluster
        cluster.down()  # CI always starts fresh; locally a leftover is cleared first
        cluster = Cluster(CLUSTER_NAME, port_base=_free_port_base(), log=quiet)
        cluster.up(FLEET_FILE, timeout=120)
    except Exception as exc:  # any failure to start is fatal for the run, never a skip
        _abort(f"{type(exc).__name__}: {exc}")
        raise  # unreachable: pytest.exit raised
    return cluster


@pytest.fixture(scope="session")
def crds(cluster: Cluster) -> list[Path]:
    """The CRDs of crds/*.yaml, applied (server-side) and Established; [] when there are none.

    A CRD the API server rejects errors the tests that use this fixture, with the server's reason.
    """
    files = sorted(CRDS_DIR.glob("*.yaml"))
    if not files:
        return []
    try:
        cluster.kubectl("apply", "--server-side", "--force-conflicts", *[f"-f={f}" for f in files])
        cluster.kubectl(
            "wait", "--for=condition=Established", "--timeout=60s", *[f"-f={f}" for f in files], timeout=90
        )
    except ClusterError as exc:
        pytest.fail(f"the API server rejected crds/*.yaml: {exc}", pytrace=False)
    return files


def _delete_stale_namespaces(cluster: Cluster) -> None:
    cluster.kubectl(
        "delete", "namespace", "-l", TEST_NS_LABEL, "--wait=false", "--ignore-not-found", check=False
    )


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """The session's running cluster (kubeconfig, kubectl_path, kubectl(), api_client(), env())."""
    c = _start_cluster()
    _delete_stale_namespaces(c)
    yield c
    if not _keep_cluster():
        c.down()


@pytest.fixture(scope="session")
def kube_api(cluster: Cluster) -> Iterator[Any]:
    """A kubernetes.client.ApiClient for the test cluster (closed at the end of the run)."""
    with cluster.api_client() as api:
        yield api


@pytest.fixture
def namespace(request: pytest.FixtureRequest, kube_api: Any) -> Iterator[str]:
    """A fresh namespace for one test, deleted afterwards (without waiting for finalization)."""
    core: Any = client.CoreV1Api(kube_api)
    base = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"it-{base}-{uuid.uuid4().hex[:5]}"
    core.create_namespace({"metadata": {"name": name, "labels": {TEST_NS_LABEL: "true"}}})

    def default_sa() -> bool:
        return any(sa.metadata.name == "default" for sa in core.list_namespaced_service_account(name).items)

    wait_for(default_sa, timeout=30, what=f"service account default in {name}")
    yield name
    try:
        core.delete_namespace(name, propagation_policy="Background")
    except ApiException as exc:
        if exc.status != 404:  # the test may have deleted it itself
            raise
