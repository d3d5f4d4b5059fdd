"""``PrometheusReader``: the only runtime code that speaks to Prometheus (``GET /api/v1/query``).

Owns the HTTP side: the base URL (a path prefix is kept), a bearer token file re-read when it
changes, a CA file, the timeout (client socket and the server's ``timeout`` parameter), the mapping
of transport failures to ``PrometheusUnreachable``, and one evaluation: every signal queried once
for all pools (``by (namespace, pool)``, at the caller's ``now``), a few at a time, plus one query
per pool that has its own ``requestRateQuery``; ``assemble`` turns the answers into ``Observed``.
Standard library only (``urllib.request``).
"""

from __future__ import annotations

import concurrent.futures
import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

from inferfleet.core.observed import MetricsProblem, Observed
from inferfleet.observe.assemble import Limits, PoolQuery, Result, assemble
from inferfleet.observe.parse import QueryError, Sample, parse_answer
from inferfleet.observe.queries import (
    DEFAULT_QUERIES,
    MIX_SIGNALS,
    Signal,
    duration_seconds,
    render,
    render_override,
)

__all__ = ["PrometheusReader"]

_BURST_OF = {
    Signal.FIRST_TOKENS: Signal.BURST_FIRST_TOKENS,
    Signal.QUEUE_GROWTH: Signal.BURST_QUEUE_GROWTH,
}
_MAX_BODY = 64 * 1024 * 1024  # 1,000 pools x 10 signals is ~1 MB; anything near this is not an answer


class _FileWatch:
    """A small file re-read only when its size or mtime changes (a rotated token, a renewed CA)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._text = ""
        self._lock = threading.Lock()

    def read(self) -> tuple[str, bool]:
        """(content, changed since the last read); raises OSError if it cannot be read."""
        st = self.path.stat()
        stamp = (st.st_size, st.st_mtime_ns)
        with self._lock:
            if stamp == self._stamp:
                return self._text, False
            self._text = self.path.read_text().strip()
            self._stamp = stamp
            return self._text, True


class PrometheusReader:
    """Reads every pool's signals from one Prometheus.  Thread-safe; holds no connection open."""

    def __init__(
        self,
        url: str,
        *,
        engine: str = "vllm",
        window: str = "2m",
        burst_window: str = "30s",
        queries: Mapping[str, str] | None = None,
        token_file: Path | str | None = None,
        ca_file: Path | str | None = None,
        timeout: float = 5.0,
        limits: Limits | None = None,
        parallel: int = 4,
    ) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"Prometheus URL must be http(s)://host[:port][/prefix], got {url!r}")
        if engine not in DEFAULT_QUERIES:
            raise ValueError(f"unknown engine {engine!r}; known: {', '.join(DEFAULT_QUERIES)}")
        templates = dict(DEFAULT_QUERIES[engine])
        for name, template in (queries or {}).items():
            if name not in Signal.__members__.values():
                raise ValueError(f"unknown signal {name!r} in queries; known: {', '.join(Signal)}")
            templates[Signal(name)] = template
        for long, short in _BURST_OF.items():  # an overridden load signal: its burst twin follows
            if long in (queries or {}) and short not in (queries or {}):
                if "{window}" in templates[long]:
                    templates[short] = (
                        templates[long]
                        .replace("{window}", "{burst}")
                        .replace("{window_seconds}", "{burst_seconds}")
                    )
                else:  # a fixed range: no burst reading (the long one still decides)
                    del templates[short]
        self.url = url.rstrip("/")
        self.templates: Mapping[Signal, str] = templates
        self.window = window
        self.burst_window = burst_window
        self.window_s = duration_seconds(window)
        self.burst_window_s = duration_seconds(burst_window)
        self.timeout = timeout
        self.limits = limits or Limits()
        self.parallel = max(1, parallel)
        self._token = _FileWatch(Path(token_file)) if token_file else None
        self._ca = _FileWatch(Path(ca_file)) if ca_file else None
        self._ssl: ssl.SSLContext | None = None

    # -- one query --------------------------------------------------------------------------
    def _headers(self, query: str) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self._token is not None:
            try:
                token, _ = self._token.read()
            except OSError as exc:
                raise QueryError(MetricsProblem.HTTP_ERROR, query, f"bearer token file: {exc}") from None
            headers["Authorization"] = f"Bearer {token}"
        return headers

    def _context(self, query: str) -> ssl.SSLContext | None:
        if self._ca is None:
            return None
        try:
            _, changed = self._ca.read()
        except OSError as exc:
            raise QueryError(MetricsProblem.UNREACHABLE, query, f"CA file: {exc}") from None
        if changed or self._ssl is None:
            self._ssl = ssl.create_default_context(cafile=str(self._ca.path))
        return self._ssl

    def query(self, promql: str, at: float, *, scalar_ok: bool = False) -> list[Sample]:
        """The instant vector of ``promql`` evaluated at ``at``; raises QueryError."""
        timeout = f"{round(self.timeout * 1000)}ms"  # the server gives up too (it takes no "5.0s")
        params = urllib.parse.urlencode({"query": promql, "time": f"{at:.3f}", "timeout": timeout})
        request = urllib.request.Request(f"{self.url}/api/v1/query?{params}", headers=self._headers(promql))
        context = self._context(promql)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=context) as resp:
                status, body = resp.status, resp.read(_MAX_BODY)
        except urllib.error.HTTPError as exc:
            status, body = exc.code, exc.read(64 * 1024)
            exc.close()
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, TimeoutError):
                reason = f"no answer within {self.timeout:g}s"
            raise QueryError(MetricsProblem.UNREACHABLE, promql, f"{self.url}: {reason}") from None
        return parse_answer(status, body, promql, scalar_ok=scalar_ok)

    def _run(self, promql: str, at: float, scalar_ok: bool = False) -> Result:
        try:
            return self.query(promql, at, scalar_ok=scalar_ok)
        except QueryError as exc:
            return exc

    # -- one evaluation ---------------------------------------------------------------------
    def batch_queries(self) -> dict[Signal, str]:
        """The query of every signal for all pools at once."""
        return {
            s: render(t, window=self.window, burst=self.burst_window)
            for s, t in self.templates.items()
            if s not in MIX_SIGNALS
        }

    def mix_queries(self, pool: PoolQuery) -> dict[Signal, str]:
        """The token-length histograms of one pool with a request mix (none if the engine has none)."""
        return {
            s: render(self.templates[s], window=self.window, namespace=pool.namespace, pool=pool.name)
            for s in MIX_SIGNALS
            if s in self.templates
        }

    def observe(self, pools: Sequence[PoolQuery], now: float) -> dict[str, Observed]:
        """``Observed`` per pool key; never raises for what Prometheus answers (or does not)."""
        batch = self.batch_queries()
        own, own_burst = {}, {}
        for p in pools:
            if p.rate_query:
                args = {"namespace": p.namespace, "pool": p.name}
                own[p.key] = render_override(p.rate_query, window=self.window, **args)
                if "{window}" in p.rate_query:
                    own_burst[p.key] = render_override(p.rate_query, window=self.burst_window, **args)
        with concurrent.futures.ThreadPoolExecutor(self.parallel, thread_name_prefix="prometheus") as pool:
            batch_futures = {s: pool.submit(self._run, q, now) for s, q in batch.items()}
            own_futures = {k: (q, pool.submit(self._run, q, now, True)) for k, q in own.items()}
            burst_futures = {k: (q, pool.submit(self._run, q, now, True)) for k, q in own_burst.items()}
            mix_futures = {
                p.key: {s: pool.submit(self._run, q, now) for s, q in self.mix_queries(p).items()}
                for p in pools
                if p.mix
            }
            results = {s: f.result() for s, f in batch_futures.items()}
            mixes = {k: {s: f.result() for s, f in fs.items()} for k, fs in mix_futures.items()}
            overrides = {k: (q, f.result()) for k, (q, f) in own_futures.items()}
            bursts = {k: (q, f.result()) for k, (q, f) in burst_futures.items()}
        return assemble(
            pools,
            results,
            batch,
            overrides,
            now,
            self.limits,
            burst_overrides=bursts,
            mixes=mixes,
            window_s=self.window_s,
            burst_window_s=self.burst_window_s,
        )
