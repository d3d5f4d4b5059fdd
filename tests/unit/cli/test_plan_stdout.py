"""``inferfleet plan -o json`` run the way users run it, as a process: stdout is the JSON document and
nothing else (no solver banner before it, nothing on stderr from HiGHS either), and the document is
the plan of the examples."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[3]
BANNER = "HiGHS"  # "Running HiGHS 1.x ...: Copyright (c) ..." and the notices line after it


def _env() -> dict[str, str]:
    env = dict(os.environ)
    operator = str(ROOT / "operator")
    env["PYTHONPATH"] = os.pathsep.join([operator, *filter(None, [env.get("PYTHONPATH")])])
    return env


def _run(argv: list[str]) -> dict[str, Any]:
    proc = subprocess.run(
        argv, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert BANNER not in proc.stderr, proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)  # fails on any line before or after the document
    return doc


def _example_pools() -> set[tuple[str, str]]:
    pools = set()
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc["kind"] == "InferencePool":
                pools.add((doc["metadata"]["namespace"], doc["metadata"]["name"]))
    return pools


def _check_plan(doc: dict[str, Any]) -> None:
    assert doc["schema"] == "inferfleet.dev/plan/v1"
    assert {(p["namespace"], p["name"]) for p in doc["pools"]} == _example_pools()
    assert doc["solver"]["status"] == "Optimal" and doc["solver"]["method"] == "milp"
    served = sum(p["servedRequestsPerSecond"] for p in doc["pools"])
    assert served > 0 and all(p["placements"] for p in doc["pools"]), doc["pools"]


def test_python_m_inferfleet_plan_prints_only_json() -> None:
    doc = _run(
        [
            sys.executable,
            "-m",
            "inferfleet",
            "plan",
            "-f",
            "examples",
            "-f",
            "examples/simulated-fleet",
            "-o",
            "json",
        ]
    )
    _check_plan(doc)
    assert {d["name"] for d in doc["domains"]} == {"hall-a", "hall-b"}


def test_scripts_inferfleet_plan_prints_only_json() -> None:
    doc = _run([str(ROOT / "scripts" / "inferfleet"), "plan", "-f", "examples/", "-o", "json"])
    _check_plan(doc)
