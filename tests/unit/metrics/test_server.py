"""``MetricsServer``: the registry over HTTP, or over HTTPS with an authorizer asked per request
(401 without a token or with one it does not accept, 403 for a requester it refuses, 200 with the
metrics otherwise); anything but /metrics is 404; a failing authorizer serves nothing."""

from __future__ import annotations

import ssl
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from inferfleet.metrics.exporter import OperatorMetrics
from inferfleet.metrics.server import MetricsServer, bearer


def get(
    url: str, token: str | None = None, context: ssl.SSLContext | None = None
) -> tuple[int, str, dict[str, str]]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=5, context=context) as resp:
            return int(resp.status), resp.read().decode(), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), dict(exc.headers)


@pytest.fixture
def metrics() -> OperatorMetrics:
    m = OperatorMetrics(CollectorRegistry(), runtime=False)
    m.set_leader(True)
    return m


def decide(token: str | None, path: str) -> int:
    assert path == "/metrics"
    return {None: 401, "reader": 200, "nobody": 403, "api-down": 503}.get(token, 401)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (openssl, as a platform team's CA would sign one)."""
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "tls.crt", d / "tls.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def secure(
    metrics: OperatorMetrics, certificate: tuple[Path, Path]
) -> Iterator[tuple[MetricsServer, ssl.SSLContext]]:
    cert, key = certificate
    server = MetricsServer(
        0, "127.0.0.1", metrics.registry, certfile=str(cert), keyfile=str(key), authorize=decide
    ).start()
    trust = ssl.create_default_context(cafile=str(cert))
    yield server, trust
    server.stop()


def test_plain_http_serves_the_registry_at_metrics_only(metrics: OperatorMetrics) -> None:
    server = MetricsServer(0, "127.0.0.1", metrics.registry).start()
    try:
        code, body, headers = get(f"http://127.0.0.1:{server.port}/metrics")
        assert code == 200 and "inferfleet_leader 1.0" in body
        assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
        assert get(f"http://127.0.0.1:{server.port}/")[0] == 404
        assert not server.secure
    finally:
        server.stop()


def test_https_answers_401_without_a_token_403_when_refused_and_200_when_allowed(
    secure: tuple[MetricsServer, ssl.SSLContext],
) -> None:
    server, trust = secure
    url = f"https://127.0.0.1:{server.port}/metrics"
    code, body, headers = get(url, None, trust)
    assert (code, body.strip()) == (401, "401 Unauthorized") and headers["WWW-Authenticate"].startswith(
        "Bearer"
    )
    assert get(url, "forged", trust)[0] == 401
    assert get(url, "nobody", trust)[:2] == (403, "403 Forbidden\n")
    assert get(url, "api-down", trust)[0] == 503
    code, body, _ = get(url, "reader", trust)
    assert code == 200 and "inferfleet_leader 1.0" in body
    assert server.secure


def test_https_refuses_plain_http_and_untrusted_clients_fail_the_handshake(
    secure: tuple[MetricsServer, ssl.SSLContext],
) -> None:
    server, _ = secure
    with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
        urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5)
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        urllib.request.urlopen(f"https://127.0.0.1:{server.port}/metrics", timeout=5)
    # the server survives both
    assert get(f"https://127.0.0.1:{server.port}/metrics", "reader", secure[1])[0] == 200


def test_an_authorizer_that_fails_serves_nothing(metrics: OperatorMetrics) -> None:
    def broken(_token: str | None, _path: str) -> int:
        raise RuntimeError("boom")

    server = MetricsServer(0, "127.0.0.1", metrics.registry, authorize=broken).start()
    try:
        code, body, _ = get(f"http://127.0.0.1:{server.port}/metrics", "reader")
        assert code == 500 and "inferfleet_" not in body
    finally:
        server.stop()


def test_tls_needs_both_files(certificate: tuple[Path, Path]) -> None:
    with pytest.raises(ValueError, match="both a certificate file and a key file"):
        MetricsServer(0, "127.0.0.1", certfile=str(certificate[0]))


@pytest.mark.parametrize(
    ("header", "token"),
    [
        (None, None),
        ("", None),
        ("Bearer abc", "abc"),
        ("bearer  abc ", "abc"),
        ("Basic abc", None),
        ("Bearer", None),
    ],
    ids=["none", "empty", "bearer", "case-and-spaces", "basic", "no-token"],
)
def test_bearer_reads_the_token(header: str | None, token: str | None) -> None:
    assert bearer(header) == token
