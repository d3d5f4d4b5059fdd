"""``docs/metrics.md`` is generated from the exporter and kept in step with it (drift fails)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from prometheus_client import CollectorRegistry

from inferfleet.metrics.exporter import OperatorMetrics, families
from inferfleet.metrics.reference import render

ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "docs" / "metrics.md"


def test_docs_metrics_md_is_the_generated_reference() -> None:
    assert DOC.read_text() == render(), (
        "docs/metrics.md is stale: python -m inferfleet.metrics.reference > docs/metrics.md"
    )


def test_every_metric_is_in_the_reference_with_its_labels() -> None:
    text = render()
    for f in families(OperatorMetrics(CollectorRegistry(), runtime=False)):
        assert f"| `{f.name}` | {f.type} |" in text
        for label in f.labels:
            assert f"`{label}`" in text
    assert "process_*" in text and "python_gc_*" in text


def test_the_check_fails_on_a_stale_file_with_the_command_to_fix_it(tmp_path: Path) -> None:
    stale = tmp_path / "metrics.md"
    stale.write_text(render().replace("inferfleet_leader", "inferfleet_leeder"))
    cmd = [sys.executable, "-m", "inferfleet.metrics.reference", "--check"]
    bad = subprocess.run([*cmd, str(stale)], capture_output=True, text=True, timeout=60, check=False)
    assert bad.returncode == 1 and "python -m inferfleet.metrics.reference >" in bad.stderr
    good = subprocess.run([*cmd, str(DOC)], capture_output=True, text=True, timeout=60, check=False)
    assert good.returncode == 0, good.stderr
