"""``inferfleet plan --measurements FILE`` replays what the autoscaler planned with (as a user runs
it: a subprocess, stdout parsed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]


def _plan(*extra: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "inferfleet", "plan", "-f", "examples", "-o", "json", *extra]
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)


def _pool(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return next(p for p in doc["pools"] if p["name"] == name)


def test_measured_demand_and_corrections_change_the_plan(tmp_path: Path) -> None:
    base = json.loads(_plan().stdout)
    file = tmp_path / "m.yaml"
    file.write_text("pools:\n  search/embed:\n    requestsPerSecond: 6000\n")
    more = json.loads(_plan("--measurements", str(file)).stdout)
    assert _pool(more, "embed")["demandRequestsPerSecond"] == 6000
    capacity = lambda d: sum(p["requestsPerSecond"] for p in _pool(d, "embed")["placements"])  # noqa: E731
    assert capacity(more) >= 6000 > capacity(base)
    slow_class = _pool(base, "embed")["placements"][0]["class"]
    file.write_text(f"pools:\n  search/embed:\n    corrections: {{{slow_class}: {{ttft: 3.5}}}}\n")
    slow = json.loads(_plan("--measurements", str(file)).stdout)
    per_device = lambda d, c: sum(  # noqa: E731
        p["requestsPerSecond"] / p["devices"] for p in _pool(d, "embed")["placements"] if p["class"] == c
    )
    assert per_device(slow, slow_class) < per_device(base, slow_class) or all(
        p["class"] != slow_class for p in _pool(slow, "embed")["placements"]
    )


def test_a_bad_measurements_file_exits_2_naming_the_field(tmp_path: Path) -> None:
    cases = {
        "pools:\n  nope/none:\n    requestsPerSecond: 1\n": "pools.nope/none: no such InferencePool",
        "pools:\n  search/embed:\n    requestsPerSecond: -1\n": "search/embed.requestsPerSecond: expected a",
        "pools:\n  search/embed:\n    corrections: {h100: {tpot: 0.5}}\n": "h100.tpot: expected a number >=",
        "pools:\n  search/embed:\n    rps: 1\n": "unknown field(s) rps",
        "[1, 2\n": "malformed YAML",
    }
    for text, message in cases.items():
        file = tmp_path / "bad.yaml"
        file.write_text(text)
        proc = _plan("--measurements", str(file))
        assert proc.returncode == 2, (text, proc.stderr)
        assert message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
        assert proc.stdout == ""
