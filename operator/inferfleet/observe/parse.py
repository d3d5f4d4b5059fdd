"""Decoding one answer of Prometheus's ``/api/v1/query`` into samples, or into a typed problem.

Owns ``Sample`` (labels, timestamp, value as Prometheus sent it: NaN and ±Inf included) and
``QueryError`` (a ``MetricsProblem`` with the query and the server's message), and the mapping from
HTTP status and body to them: 400/422 are a bad query (with the server's ``error`` text), any other
non-2xx an HTTP error, a body that is not the API's JSON an HTTP error, a matrix/string (or a scalar
where a vector is needed) the wrong shape.  Pure: bytes in, data out.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from typing import Any

from inferfleet.core.observed import MetricsProblem

__all__ = ["DETAIL_LIMIT", "QueryError", "Sample", "parse_answer"]

DETAIL_LIMIT = 1000  # characters of detail kept for status and events


@dataclasses.dataclass(frozen=True)
class Sample:
    """One element of an instant vector."""

    labels: Mapping[str, str]
    at: float  # evaluation timestamp (unix seconds)
    value: float  # may be NaN or ±Inf: callers decide what that means

    @property
    def finite(self) -> bool:
        return math.isfinite(self.value)


class QueryError(Exception):
    """A query that gave no usable vector: ``problem`` says which way, ``detail`` the query and why."""

    def __init__(self, problem: MetricsProblem, query: str, message: str) -> None:
        self.problem = problem
        self.query = query
        self.message = message
        super().__init__(self.detail)

    @property
    def detail(self) -> str:
        return f"{self.message} (query: {self.query})"[:DETAIL_LIMIT]


def _server_error(body: bytes) -> str:
    """The API's ``errorType: error`` if the body is its JSON, else the start of the body."""
    try:
        doc = json.loads(body)
    except ValueError:
        return body[:300].decode(errors="replace").strip() or "(empty body)"
    if isinstance(doc, dict) and "error" in doc:
        return f"{doc.get('errorType', 'error')}: {doc['error']}"
    return str(doc)[:300]


def _value(raw: Any, query: str) -> tuple[float, float]:
    """``[timestamp, "value"]`` -> floats ("NaN", "+Inf", "-Inf" included)."""
    try:
        at, text = raw
        return float(at), float(text)
    except (TypeError, ValueError):
        raise QueryError(
            MetricsProblem.WRONG_SHAPE, query, f"not a [timestamp, value] pair: {raw!r}"
        ) from None


def parse_answer(status: int, body: bytes, query: str, *, scalar_ok: bool = False) -> list[Sample]:
    """The instant vector in a ``/api/v1/query`` answer; raises QueryError for anything else."""
    if status in (400, 422):
        raise QueryError(MetricsProblem.BAD_QUERY, query, f"HTTP {status}: {_server_error(body)}")
    if not 200 <= status < 300:
        raise QueryError(MetricsProblem.HTTP_ERROR, query, f"HTTP {status}: {_server_error(body)}")
    try:
        doc = json.loads(body)
        data = doc["data"] if doc.get("status") == "success" else None
    except (ValueError, AttributeError, KeyError, TypeError):
        data = None
    if not isinstance(data, dict):
        raise QueryError(
            MetricsProblem.HTTP_ERROR, query, f"HTTP {status} but not a Prometheus API answer: {body[:200]!r}"
        )
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar" and scalar_ok:
        at, value = _value(result, query)
        return [Sample({}, at, value)]
    if kind != "vector" or not isinstance(result, list):
        raise QueryError(MetricsProblem.WRONG_SHAPE, query, f"a {kind} where an instant vector was needed")
    samples = []
    for item in result:
        if not isinstance(item, dict) or not isinstance(item.get("metric"), dict):
            raise QueryError(MetricsProblem.WRONG_SHAPE, query, f"not a vector element: {item!r}"[:300])
        at, value = _value(item.get("value"), query)
        samples.append(Sample(item["metric"], at, value))  # JSON object: str -> str
    return samples
