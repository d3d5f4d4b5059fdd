"""The metrics endpoint: ``/metrics`` over HTTP, or HTTPS with every request authorised.

Owns serving a registry (prometheus_client's WSGI app: text or OpenMetrics by the Accept header)
from a threaded server, TLS from a certificate and key file, and asking an injected
``authorize(token, path)`` before answering, as controller-runtime's secure metrics serving does
(``WithAuthenticationAndAuthorization``): no bearer token, or one the API server does not accept:
401; a requester who may not ``get`` the path: 403.  What the answer is made of (a TokenReview and
a SubjectAccessReview) is ``kube/access.py``'s; ``controller/runtime.py`` wires the two together.
"""

from __future__ import annotations

import logging
import socketserver
import ssl
import threading
import wsgiref.simple_server
from collections.abc import Callable, Iterable
from typing import Any, Final

from prometheus_client import CollectorRegistry, make_wsgi_app

__all__ = ["PATH", "Authorize", "MetricsServer", "bearer"]

log = logging.getLogger("inferfleet.metrics")

PATH: Final = "/metrics"
# (bearer token or None, request path) -> the HTTP status to answer with: 200 serves the metrics,
# anything else is answered with that status and no metrics (401, 403; 503 while it cannot tell)
Authorize = Callable[[str | None, str], int]
REQUEST_TIMEOUT_S: Final = 10.0  # a client that sends nothing for this long is dropped
_WORDS: Final = {
    401: "401 Unauthorized",
    403: "403 Forbidden",
    404: "404 Not Found",
    500: "500 Internal Server Error",
    503: "503 Service Unavailable",
}
StartResponse = Callable[..., Any]


class MetricsServer:
    """Serves ``registry`` on ``addr:port`` (port 0: any free one, see ``port``) in a daemon thread.

    ``certfile``/``keyfile``: HTTPS (TLS 1.2 or later) with that certificate; both or neither.
    ``authorize``: asked for every request (with ``Authorization: Bearer <token>``'s token).
    """

    def __init__(
        self,
        port: int,
        addr: str = "0.0.0.0",
        registry: CollectorRegistry | None = None,
        *,
        certfile: str | None = None,
        keyfile: str | None = None,
        authorize: Authorize | None = None,
    ) -> None:
        if (certfile is None) != (keyfile is None):
            raise ValueError("TLS needs both a certificate file and a key file")
        self.registry = registry if registry is not None else CollectorRegistry()
        self.authorize = authorize
        self._metrics = make_wsgi_app(self.registry)
        self._tls: ssl.SSLContext | None = None
        if certfile is not None and keyfile is not None:
            self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._tls.minimum_version = ssl.TLSVersion.TLSv1_2
            self._tls.load_cert_chain(certfile, keyfile)  # a bad file fails here, at start
        self._httpd = wsgiref.simple_server.make_server(
            addr, port, self.app, server_class=_Server, handler_class=_Quiet
        )
        if self._tls is not None:  # the handshake happens in the request's thread, not in accept()
            self._httpd.socket = self._tls.wrap_socket(
                self._httpd.socket, server_side=True, do_handshake_on_connect=False
            )
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def secure(self) -> bool:
        return self._tls is not None

    def start(self) -> MetricsServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="inferfleet-metrics", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def app(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """The WSGI application: the path, then the authorizer, then the metrics."""
        if environ.get("PATH_INFO") != PATH:
            return _plain(start_response, 404, "the metrics are at /metrics")
        if self.authorize is not None:
            try:
                status = self.authorize(bearer(environ.get("HTTP_AUTHORIZATION")), PATH)
            except Exception:  # the check failing must not serve the metrics, nor kill the server
                log.exception("metrics authorization failed")
                status = 500
            if status != 200:
                return _plain(start_response, status, "")
        body: Iterable[bytes] = self._metrics(environ, start_response)
        return body


def bearer(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (None: none)."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def _plain(start_response: StartResponse, status: int, text: str) -> list[bytes]:
    words = _WORDS.get(status, f"{status} Error")
    body = f"{words}{': ' + text if text else ''}\n".encode()
    headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
    if status == 401:
        headers.append(("WWW-Authenticate", 'Bearer realm="inferfleet metrics"'))
    start_response(words, headers)
    return [body]


class _Server(socketserver.ThreadingMixIn, wsgiref.simple_server.WSGIServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that fails the TLS handshake or hangs up: said at debug, not as a traceback."""
        log.debug("metrics connection from %s failed", client_address, exc_info=True)


class _Quiet(wsgiref.simple_server.WSGIRequestHandler):
    timeout = REQUEST_TIMEOUT_S

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("metrics %s: " + format, self.address_string(), *args)
