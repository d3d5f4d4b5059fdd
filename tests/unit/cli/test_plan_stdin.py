"""``inferfleet plan -f -``: manifests from standard input plan exactly as the same files do, and bad
ones are named ``<stdin>`` (exit 2, one line per problem, nothing on stdout)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "operator"), *filter(None, [env.get("PYTHONPATH")])])
    return env


def _doc(*args: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "inferfleet", "plan", *args],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


def _stdin_plan(text: str, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "inferfleet", "plan", "-f", "-", *args]
    return subprocess.run(
        argv, cwd=ROOT, env=_env(), input=text, capture_output=True, text=True, timeout=120, check=False
    )


def test_manifests_from_stdin_plan_as_the_files_do() -> None:
    text = "\n---\n".join(p.read_text() for p in sorted((ROOT / "examples").glob("*.yaml")))
    proc = _stdin_plan(text, "-o", "json")
    assert proc.returncode == 0, proc.stderr
    from_stdin = json.loads(proc.stdout)
    from_files = _doc("-f", "examples", "-o", "json")
    for doc in (from_stdin, from_files):
        doc.pop("solver")
    assert from_stdin == from_files


def test_bad_manifests_on_stdin_are_named_stdin() -> None:
    text = "apiVersion: inferfleet.dev/v1alpha1\nkind: InferencePool\nmetadata: {name: x}\nspec: {}\n"
    proc = _stdin_plan(text)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith(
        "error: <stdin>: InferencePool default/x: spec.model: required field is missing"
    )
    assert "Traceback" not in proc.stderr
