"""Reading the serving engines' metrics from Prometheus into ``core.observed.Observed``.

Owns: the default PromQL per engine and signal (``queries``), decoding the HTTP API's answers into
samples or a typed ``MetricsProblem`` (``parse``), turning one evaluation's samples into an
``Observed`` per pool (``assemble``, pure), and ``PrometheusReader`` (``prometheus``), the only
runtime code that speaks HTTP to Prometheus.  Missing data is never zero: every failure is a
distinct problem with the query and the server's words in ``detail``.
"""

from inferfleet.observe.assemble import Limits, PoolQuery
from inferfleet.observe.parse import QueryError, Sample
from inferfleet.observe.prometheus import PrometheusReader
from inferfleet.observe.queries import DEFAULT_QUERIES, Signal, render

__all__ = [
    "DEFAULT_QUERIES",
    "Limits",
    "PoolQuery",
    "PrometheusReader",
    "QueryError",
    "Sample",
    "Signal",
    "render",
]
