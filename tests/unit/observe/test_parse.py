"""Decoding ``/api/v1/query`` answers: vectors and their special values, and each failure's problem."""

from __future__ import annotations

import json
import math

import pytest

from inferfleet.core.observed import MetricsProblem
from inferfleet.observe.parse import QueryError, parse_answer


def _body(kind: str, result: object) -> bytes:
    return json.dumps({"status": "success", "data": {"resultType": kind, "result": result}}).encode()


def test_vector_with_special_values() -> None:
    rows = [
        {"metric": {"pool": "p", "v": str(i)}, "value": [12.5, v]}
        for i, v in enumerate(("1.5", "NaN", "+Inf", "-Inf"))
    ]
    samples = parse_answer(200, _body("vector", rows), "q")
    assert [s.labels["v"] for s in samples] == ["0", "1", "2", "3"] and samples[0].at == 12.5
    assert samples[0].value == 1.5 and math.isnan(samples[1].value) and samples[2].value == math.inf
    assert [s.finite for s in samples] == [True, False, False, False]


def test_scalar_only_where_allowed() -> None:
    assert parse_answer(200, _body("scalar", [1, "3"]), "q", scalar_ok=True)[0].value == 3.0
    with pytest.raises(QueryError) as err:
        parse_answer(200, _body("scalar", [1, "3"]), "q")
    assert err.value.problem is MetricsProblem.WRONG_SHAPE


@pytest.mark.parametrize(
    ("status", "body", "problem", "words"),
    [
        (
            400,
            b'{"status":"error","errorType":"bad_data","error":"parse error"}',
            MetricsProblem.BAD_QUERY,
            "bad_data: parse error",
        ),
        (
            422,
            b'{"status":"error","errorType":"execution","error":"boom"}',
            MetricsProblem.BAD_QUERY,
            "execution: boom",
        ),
        (503, b"unavailable", MetricsProblem.HTTP_ERROR, "HTTP 503: unavailable"),
        (401, b"", MetricsProblem.HTTP_ERROR, "HTTP 401: (empty body)"),
        (200, b"not json", MetricsProblem.HTTP_ERROR, "not a Prometheus API answer"),
        (200, b'{"status":"error"}', MetricsProblem.HTTP_ERROR, "not a Prometheus API answer"),
        (200, _body("matrix", []), MetricsProblem.WRONG_SHAPE, "a matrix"),
        (200, _body("string", [1, "x"]), MetricsProblem.WRONG_SHAPE, "a string"),
        (
            200,
            _body("vector", [{"metric": {}, "value": [1]}]),
            MetricsProblem.WRONG_SHAPE,
            "not a [timestamp, value]",
        ),
        (200, _body("vector", ["x"]), MetricsProblem.WRONG_SHAPE, "not a vector element"),
    ],
)
def test_failures(status: int, body: bytes, problem: MetricsProblem, words: str) -> None:
    with pytest.raises(QueryError) as err:
        parse_answer(status, body, "sum(rate(x[1m]))")
    assert err.value.problem is problem and words in err.value.detail
    assert err.value.detail.endswith("(query: sum(rate(x[1m])))")
