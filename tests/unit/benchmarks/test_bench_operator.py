"""The operator benchmark's pure pieces: when the wait for settling calls a plateau, and the writes
read from the operator's /metrics text by kind and verb."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT / "benchmarks") not in sys.path:
    sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_operator import metric_sum, plateau_s, writes_by  # noqa: E402

METRICS = """\
# HELP inferfleet_api_writes_total Writes to the Kubernetes API by kind and verb.
# TYPE inferfleet_api_writes_total counter
inferfleet_api_writes_total{kind="Deployment",verb="apply"} 1000.0
inferfleet_api_writes_total{kind="Deployment",verb="dry_run"} 29.0
inferfleet_api_writes_total{kind="Pod",verb="pin"} 1018.0
inferfleet_plan_duration_seconds_count 7.0
"""


def test_short_rounds_keep_the_30_s_plateau() -> None:
    assert plateau_s(0.0) == 30.0
    assert plateau_s(12.0) == 30.0


def test_a_round_of_200_s_waits_twice_as_long_before_calling_it_a_plateau() -> None:
    # the 5,000-pool run stopped at 816/5000 when a 200 s round planned for 30 s before writing
    assert plateau_s(200.0) == 400.0


def test_writes_by_kind_and_verb_and_their_sum() -> None:
    assert writes_by(METRICS) == {"Deployment apply": 1000.0, "Deployment dry_run": 29.0, "Pod pin": 1018.0}
    assert metric_sum("inferfleet_api_writes_total", METRICS) == 2047.0
    assert metric_sum("inferfleet_plan_duration_seconds_count", METRICS) == 7.0
