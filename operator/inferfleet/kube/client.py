"""Making the Kubernetes API client, the one raw request path, and the API error vocabulary.

Owns: ``make_api_client`` (kubeconfig or in-cluster, tuned connection pool and retries), ``request``
(one HTTP call as raw JSON, no model classes: fast, and exact about content types), ``watch`` (one
WATCH as a stream of raw JSON events, closable from another thread), ``request_counts`` (every call
this process made, by verb and resource, for the probe and the benchmark), the error types
every caller sees (``TransientAPIError``: retry next round; ``APIRejected``: the API said no, with its
message), and the paths of our custom resources.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

import kubernetes.client
import urllib3
from kubernetes import config as kube_config
from kubernetes.client.exceptions import ApiException

from inferfleet.api.kinds import BY_KIND

__all__ = [
    "APIError",
    "APIRejected",
    "Conflict",
    "NotFound",
    "Timeout",
    "TransientAPIError",
    "WatchStream",
    "custom_path",
    "make_api_client",
    "parse_json",
    "request",
    "request_counts",
    "use_kubeconfig",
    "watch",
]


# (connect, read) seconds.  Writes and small reads are quick on a healthy API server; a LIST of a
# few thousand objects takes well under a second locally, so a generous read timeout only bounds
# the pathological case.
Timeout = float | tuple[float, float]
DEFAULT_TIMEOUT: Final[tuple[float, float]] = (5.0, 30.0)
# Connections kept per API server: the planning loop's writers (8), the watch cache's streams (one
# per source, 8), its probe and the lease renewals, with room to spare.  Smaller than the concurrency
# and urllib3 discards what does not fit: every later request then opens (TLS) a new connection.
# Measured at 1,000 pools: 16 writers instead of 8 did not settle faster (the API server's CPU binds).
POOL_MAXSIZE: Final = 32


class APIError(Exception):
    """An API call failed.  ``status`` is the HTTP status (None: no response at all)."""

    def __init__(self, message: str, *, status: int | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class TransientAPIError(APIError):
    """429, 5xx, timeouts and connection errors: nothing wrong with the request; try again later."""


class APIRejected(APIError):  # noqa: N818 - names what happened; callers match on it
    """The API server refused the request (4xx): invalid object, forbidden, not found, conflict."""


class NotFound(APIRejected):
    """404: the object (or its resource type) does not exist."""


class Conflict(APIRejected):
    """409: already exists, or the resourceVersion we sent is stale."""


def make_api_client(
    kubeconfig: str | None = None,
    *,
    context: str | None = None,
    pool_maxsize: int = POOL_MAXSIZE,
    retries: int = 2,
) -> kubernetes.client.ApiClient:
    """An ApiClient from ``kubeconfig``, else $KUBECONFIG / ~/.kube/config, else in-cluster;
    ``context``: a context of that kubeconfig instead of its current one.

    ``retries`` bounds urllib3's retries of connection errors (reads of idempotent requests
    too); statuses are never retried here, the planning loop retries next round.  Close it
    (``api.close()``) when done.
    """
    cfg: Any = kubernetes.client.Configuration()  # the stubs lack several attributes set below
    home_config = Path("~/.kube/config").expanduser()
    # read $KUBECONFIG now: the library's default was fixed when it was imported
    path = kubeconfig or os.environ.get("KUBECONFIG") or (str(home_config) if home_config.is_file() else None)
    if path:  # may be a ':'-separated list, merged like kubectl does
        kube_config.load_kube_config(
            config_file=path, context=context, client_configuration=cfg, persist_config=False
        )
    elif context is not None:
        raise kube_config.ConfigException(f"context {context!r}: no kubeconfig to find it in")
    elif os.environ.get("KUBERNETES_SERVICE_HOST"):
        kube_config.load_incluster_config(client_configuration=cfg)
    else:
        raise kube_config.ConfigException(
            "no Kubernetes configuration: pass --kubeconfig, set $KUBECONFIG, create ~/.kube/config, "
            "or run in a pod with a service account"
        )
    cfg.connection_pool_maxsize = pool_maxsize
    cfg.retries = urllib3.Retry(
        total=retries, connect=retries, read=retries, status=0, backoff_factor=0.2, raise_on_status=False
    )
    if hasattr(cfg, "keep_alive"):  # TCP keepalive: notice a vanished API server on idle connections
        cfg.keep_alive = True
    api: Any = kubernetes.client.ApiClient(cfg)
    api.user_agent = "inferfleet-operator"
    client: kubernetes.client.ApiClient = api
    return client


def custom_path(
    kind: str, namespace: str | None = None, name: str | None = None, subresource: str | None = None
) -> str:
    """URL path of one of our custom resources (a collection when name is None)."""
    info = BY_KIND[kind]
    path = f"/apis/{info.group}/{info.version}"
    if info.namespaced and namespace is not None:
        path += f"/namespaces/{quote(namespace, safe='')}"
    path += f"/{info.plural}"
    if name is not None:
        path += f"/{quote(name, safe='')}"
    if subresource is not None:
        path += f"/{subresource}"
    return path


def request(
    api: kubernetes.client.ApiClient,
    method: str,
    path: str,
    *,
    query: Sequence[tuple[str, str]] = (),
    body: Any = None,
    content_type: str | None = None,
    timeout: Timeout = DEFAULT_TIMEOUT,
) -> Any:
    """One API call; returns the response body parsed from JSON (None when empty).

    Raises ``TransientAPIError``, ``NotFound``, ``Conflict`` or ``APIRejected``.
    """
    _count(method, path)
    headers = {"Accept": "application/json"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    try:
        status, data = _call(api, method, path, list(query), headers, body, timeout)
    except ApiException as exc:  # the legacy client raises on non-2xx itself
        raise _error(exc.status, exc.reason or "", exc.body) from exc
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise TransientAPIError(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
    if not 200 <= status <= 299:
        raise _error(status, "", data)
    return parse_json(data) if data else None


class WatchStream:
    """One open WATCH: iterate for its events (``{"type": ..., "object": {...}}``, raw JSON), in the
    order the API server sent them; the iteration ends when the server closes the stream
    (``timeoutSeconds``).  ``close()`` may be called from another thread and ends a blocked read."""

    def __init__(self, response: Any, what: str) -> None:
        self._response = response
        self._what = what
        self._lock = threading.Lock()
        self._closed = False

    def __iter__(self) -> Iterator[dict[str, Any]]:
        try:
            yield from _events(self._response.stream(None, decode_content=True))
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            if self._closed:
                return
            raise TransientAPIError(f"WATCH {self._what}: {type(exc).__name__}: {exc}") from exc
        else:
            self._end(reuse=True)  # read to its end: the connection can serve another request
        finally:
            self._end(reuse=False)

    def close(self) -> None:
        self._end(reuse=False)

    def _end(self, *, reuse: bool) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        with contextlib.suppress(Exception):
            if reuse:
                self._response.release_conn()
                return
            # a half-read stream: unblock a read in another thread (urllib3 >= 2.3), never pool it
            if hasattr(self._response, "shutdown"):
                self._response.shutdown()
            self._response.close()

    def __enter__(self) -> WatchStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _events(chunks: Iterable[bytes]) -> Iterator[dict[str, Any]]:
    """Newline-delimited JSON events out of arbitrarily cut chunks."""
    pending = b""
    for chunk in chunks:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if line.strip():
                yield json.loads(line)
    if pending.strip():
        yield json.loads(pending)


def watch(
    api: kubernetes.client.ApiClient,
    path: str,
    *,
    query: Sequence[tuple[str, str]] = (),
    timeout: Timeout = DEFAULT_TIMEOUT,
) -> WatchStream:
    """Open a WATCH of the collection at ``path`` (``watch=true`` is added to ``query``).

    ``timeout``'s read part must exceed the longest quiet spell (``timeoutSeconds``, or the
    bookmark period with ``allowWatchBookmarks``).  Raises what ``request`` raises when the API
    server answers with an error instead of a stream (410 Gone included: an expired resourceVersion).
    """
    _count("WATCH", path)
    headers = {"Accept": "application/json"}
    params = [*query, ("watch", "true")]
    try:
        response = _open_stream(api, path, params, headers, timeout)
    except ApiException as exc:
        raise _error(exc.status, exc.reason or "", exc.body) from exc
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise TransientAPIError(f"WATCH {path}: {type(exc).__name__}: {exc}") from exc
    status = int(response.status)
    if not 200 <= status <= 299:
        try:
            data = response.read()
        finally:
            response.release_conn()
        raise _error(status, "", data)
    return WatchStream(response, path)


def _open_stream(
    api: Any, path: str, query: list[tuple[str, str]], headers: dict[str, str], timeout: Timeout
) -> Any:
    """The unread urllib3 response of a GET (both layouts of ``call_api``)."""
    if hasattr(api, "param_serialize"):  # kubernetes >= 35: call_api never preloads the body
        req = api.param_serialize(
            method="GET",
            resource_path=path,
            query_params=query,
            header_params=headers,
            auth_settings=["BearerToken"],
        )
        return api.call_api(*req, _request_timeout=timeout).response
    return api.call_api(
        path,
        "GET",
        query_params=query,
        header_params=headers,
        auth_settings=["BearerToken"],
        _preload_content=False,
        _return_http_data_only=True,
        _request_timeout=timeout,
    )


_counts_lock = threading.Lock()
_counts: dict[str, int] = {}


def _count(method: str, path: str) -> None:
    """Count one call as "VERB resource[/subresource]", the API server's own words: a GET of a
    collection is a LIST (``/api/v1/pods``), of one object a GET (``.../pods/NAME``)."""
    parts = [p for p in path.split("?", 1)[0].split("/") if p]
    rest = parts[2:] if parts[:1] == ["api"] else parts[3:]  # past /api/v1 or /apis/GROUP/VERSION
    if len(rest) >= 3 and rest[0] == "namespaces":  # namespaced: namespaces/NS/RESOURCE[/NAME[/SUB]]
        rest = rest[2:]
    resource = "/".join(rest[0:1] + rest[2:3]) or "?"
    verb = "LIST" if method == "GET" and len(rest) == 1 else method
    key = f"{verb} {resource}"
    with _counts_lock:
        _counts[key] = _counts.get(key, 0) + 1


def request_counts() -> dict[str, int]:
    """Every API call this process made through ``request`` and ``watch`` so far, by
    "VERB resource" (e.g. "LIST pods", "PATCH deployments", "WATCH nodes")."""
    with _counts_lock:
        return dict(sorted(_counts.items()))


_GC_PAUSE_BYTES: Final = 256 * 1024
_gc_lock = threading.Lock()
_gc_pausers = 0


def parse_json(data: bytes) -> Any:
    """Parse a response body; large bodies with the cyclic GC paused.

    Parsing a LIST of thousands of objects allocates ~10^5 containers, which triggers repeated GC
    passes over them: measured 4 MB of Deployments, 200 ms with the GC running, 95 ms paused
    (including the one collection after).  JSON makes no cycles, so deferring loses nothing.
    """
    if len(data) < _GC_PAUSE_BYTES:
        return json.loads(data)
    with _gc_paused():
        return json.loads(data)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    global _gc_pausers  # noqa: PLW0603 - process-wide by nature, like the GC itself
    with _gc_lock:
        # GC off and not by us: someone else's choice; leave it alone
        ours = _gc_pausers > 0 or gc.isenabled()
        if ours:
            _gc_pausers += 1
            gc.disable()
    try:
        yield
    finally:
        if ours:
            with _gc_lock:
                _gc_pausers -= 1
                if _gc_pausers == 0:
                    gc.enable()


def _call(
    api: Any,
    method: str,
    path: str,
    query: list[tuple[str, str]],
    headers: dict[str, str],
    body: Any,
    timeout: Timeout,
) -> tuple[int, bytes]:
    """The HTTP call through the client's auth and connection pool (``api`` is Any: the stubs
    describe neither layout of ``call_api``)."""
    if hasattr(api, "param_serialize"):  # kubernetes >= 35 (openapi-generator 7 layout)
        req = api.param_serialize(
            method=method,
            resource_path=path,
            query_params=query or None,
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        resp = api.call_api(*req, _request_timeout=timeout)
        data: bytes = resp.read()
        return int(resp.status), data
    raw = api.call_api(
        path,
        method,
        query_params=query,
        header_params=headers,
        body=body,
        auth_settings=["BearerToken"],
        _preload_content=False,
        _return_http_data_only=True,
        _request_timeout=timeout,
    )
    return int(raw.status), bytes(raw.data)


def _error(status: int | None, reason: str, body: Any) -> APIError:
    message = reason
    if isinstance(body, bytes | str) and body:
        try:
            parsed = json.loads(body)
            message = str(parsed.get("message") or message) if isinstance(parsed, dict) else message
        except ValueError:
            message = (body.decode(errors="replace") if isinstance(body, bytes) else body)[:500]
    message = f"HTTP {status}: {message}"
    if not status or status in (408, 429) or status >= 500:  # 0: the client failed below HTTP (TLS)
        return TransientAPIError(message, status=status, reason=reason)
    if status == 404:
        return NotFound(message, status=status, reason=reason)
    if status == 409:
        return Conflict(message, status=status, reason=reason)
    return APIRejected(message, status=status, reason=reason)


def use_kubeconfig(path: str) -> None:
    """Make ``path`` the default kubeconfig for everything in this process, kopf's login included.

    The client library reads ``$KUBECONFIG`` once, at import, into a module default; setting the
    variable later is not enough."""
    from kubernetes.config import kube_config

    os.environ["KUBECONFIG"] = path
    kube_config.KUBE_CONFIG_DEFAULT_LOCATION = path
