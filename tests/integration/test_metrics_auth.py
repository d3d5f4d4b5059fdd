"""The authenticated metrics endpoint against the real API server: HTTPS, each request's bearer
token checked with a TokenReview and its user authorised with a SubjectAccessReview (get on the
non-resource URL /metrics). No token: 401; a token of a ServiceAccount without the RBAC: 403; with
a ClusterRole allowing it: 200; a token the server never issued: 401."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from test_chart import CHART, ROOT, free_port, sa_kubeconfig

from inferfleet.kube.access import AccessReviewer
from inferfleet.kube.client import NotFound, make_api_client, request
from inferfleet.metrics.exporter import OperatorMetrics
from inferfleet.metrics.server import MetricsServer
from inferfleet_dev import install
from inferfleet_dev.cluster import Cluster

pytestmark = pytest.mark.integration

RBAC = "/apis/rbac.authorization.k8s.io/v1"


def token_of(kube_api: Any, namespace: str, service_account: str) -> str:
    """A short-lived token of the ServiceAccount (the TokenRequest API: `kubectl create token`)."""
    answer = request(
        kube_api,
        "POST",
        f"/api/v1/namespaces/{namespace}/serviceaccounts/{service_account}/token",
        body={
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 600},
        },
    )
    token: str = answer["status"]["token"]
    return token


def get(url: str, token: str | None, trust: ssl.SSLContext) -> tuple[int, str]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=10, context=trust) as resp:
            return int(resp.status), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.fixture
def readers(kube_api: Any, namespace: str) -> Iterator[dict[str, str]]:
    """ServiceAccounts "reader" (bound to a ClusterRole allowing get /metrics) and "nobody"."""
    role = f"it-metrics-reader-{uuid.uuid4().hex[:5]}"
    for sa in ("reader", "nobody"):
        request(
            kube_api,
            "POST",
            f"/api/v1/namespaces/{namespace}/serviceaccounts",
            body={"metadata": {"name": sa}},
        )
    request(
        kube_api,
        "POST",
        f"{RBAC}/clusterroles",
        body={"metadata": {"name": role}, "rules": [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]},
    )
    request(
        kube_api,
        "POST",
        f"{RBAC}/clusterrolebindings",
        body={
            "metadata": {"name": role},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}],
        },
    )
    try:
        yield {sa: token_of(kube_api, namespace, sa) for sa in ("reader", "nobody")}
    finally:
        for kind in ("clusterrolebindings", "clusterroles"):
            with contextlib.suppress(NotFound):
                request(kube_api, "DELETE", f"{RBAC}/{kind}/{role}")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "tls.crt", d / "tls.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


def test_metrics_answer_401_without_a_token_403_without_rbac_and_200_with_it(
    kube_api: Any, readers: dict[str, str], certificate: tuple[Path, Path]
) -> None:
    metrics = OperatorMetrics(CollectorRegistry())
    metrics.set_leader(True)
    reviewer = AccessReviewer(kube_api)
    cert, key = certificate
    server = MetricsServer(
        0, "127.0.0.1", metrics.registry, certfile=str(cert), keyfile=str(key), authorize=reviewer.status
    ).start()
    trust = ssl.create_default_context(cafile=str(cert))
    url = f"https://127.0.0.1:{server.port}/metrics"
    try:
        assert get(url, None, trust)[0] == 401
        assert get(url, "not-a-token-the-server-issued", trust)[0] == 401
        code, body = get(url, readers["nobody"], trust)
        assert code == 403 and "inferfleet_" not in body
        code, body = get(url, readers["reader"], trust)
        assert code == 200, body
        assert "inferfleet_leader 1.0" in body and "inferfleet_build_info{" in body
        assert "process_cpu_seconds_total" in body and "_created" not in body
        verdict = reviewer.check(readers["nobody"], "/metrics")
        assert verdict.user is not None and verdict.user.endswith(":nobody")
        asked = reviewer.reviews
        for _ in range(5):  # a scrape every few seconds does not cost two API calls each
            assert get(url, readers["reader"], trust)[0] == 200
        assert reviewer.reviews == asked
    finally:
        server.stop()


def test_the_charts_rbac_is_enough_to_review_and_its_reader_role_to_scrape(
    cluster: Cluster, kube_api: Any, namespace: str, certificate: tuple[Path, Path], tmp_path: Path
) -> None:
    """The chart's own roles (rendered with metrics.secure): the operator's ServiceAccount bound to
    <release>-metrics-auth can make the reviews, and <release>-metrics-reader is what a scraper
    needs; without the reader binding the scraper gets 403."""
    release = f"it-ma-{uuid.uuid4().hex[:5]}"
    helm = str(install.ensure_binaries(("helm",), quiet=True)["helm"])
    rendered = subprocess.run(
        [helm, "template", release, str(CHART), "-n", namespace,
         "--set", "metrics.secure.enabled=true", "--set", "metrics.secure.tlsSecretName=tls",
         "--show-only", "templates/metrics-auth-rbac.yaml", "--show-only", "templates/serviceaccount.yaml"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    cluster.kubectl("apply", "-f", "-", input=rendered)
    reader = f"{release}-inferfleet-metrics-reader"
    try:
        request(
            kube_api,
            "POST",
            f"/api/v1/namespaces/{namespace}/serviceaccounts",
            body={"metadata": {"name": "scraper"}},
        )
        kubeconfig = sa_kubeconfig(
            cluster, namespace, f"{release}-inferfleet", tmp_path / "operator.kubeconfig"
        )
        with make_api_client(str(kubeconfig)) as as_operator:
            reviewer = AccessReviewer(as_operator, deny_ttl_s=0.001)
            scraper = token_of(kube_api, namespace, "scraper")
            assert reviewer.check(scraper, "/metrics").status == 403  # reviewed (not 503): RBAC enough
            request(
                kube_api,
                "POST",
                f"{RBAC}/clusterrolebindings",
                body={
                    "metadata": {"name": reader},
                    "roleRef": {
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": "ClusterRole",
                        "name": reader,
                    },
                    "subjects": [{"kind": "ServiceAccount", "name": "scraper", "namespace": namespace}],
                },
            )
            time.sleep(0.01)
            assert reviewer.check(scraper, "/metrics").status == 200
    finally:
        cluster.kubectl("delete", "-f", "-", "--ignore-not-found", input=rendered, check=False)
        with contextlib.suppress(NotFound):
            request(kube_api, "DELETE", f"{RBAC}/clusterrolebindings/{reader}")


def test_the_operator_run_with_metrics_secure_serves_https_to_an_authorised_token_only(
    cluster: Cluster, readers: dict[str, str], certificate: tuple[Path, Path], tmp_path: Path
) -> None:
    """`inferfleet run --metrics-secure` wires the reviewer into its endpoint (the health port stays
    plain HTTP for the kubelet's probes)."""
    cert, key = certificate
    metrics_port, health_port = free_port(), free_port()
    log = tmp_path / "operator.log"
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env["PYTHONPATH"] = str(ROOT / "operator")
    cmd = [
        sys.executable,
        "-m",
        "inferfleet",
        "run",
        f"--kubeconfig={cluster.kubeconfig}",
        "--no-leader-elect",
        f"--metrics-port={metrics_port}",
        f"--health-port={health_port}",
        "--metrics-secure",
        f"--metrics-cert-file={cert}",
        f"--metrics-key-file={key}",
        "--log-format=json",
    ]
    trust = ssl.create_default_context(cafile=str(cert))
    url = f"https://127.0.0.1:{metrics_port}/metrics"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        try:
            deadline = time.monotonic() + 60
            while True:
                with contextlib.suppress(urllib.error.URLError, ConnectionError):  # not listening yet
                    if get(url, None, trust)[0] == 401:
                        break
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "the secure endpoint never answered"
                time.sleep(0.2)
            assert get(url, readers["nobody"], trust)[0] == 403
            code, body = get(url, readers["reader"], trust)
            assert code == 200 and "inferfleet_leader 1.0" in body
            with urllib.request.urlopen(f"http://127.0.0.1:{health_port}/healthz", timeout=5) as rsp:
                assert rsp.status == 200
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    assert lines and all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    assert "Traceback" not in log.read_text()
