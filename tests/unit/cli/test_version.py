"""``inferfleet version`` and ``--version`` as processes, stdout parsed: inferfleet's own version (the one
pyproject.toml declares), Python's, the libraries' as installed, and the git commit — from the checkout,
from ``$INFERFLEET_GIT_COMMIT`` (the image's), or unknown outside a checkout."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import yaml

from inferfleet.cli.version import LIBRARIES

ROOT = Path(__file__).resolve().parents[3]


def _cli(*argv: str, operator: Path = ROOT / "operator", **env: str) -> str:
    base = {k: v for k, v in os.environ.items() if k != "INFERFLEET_GIT_COMMIT"}
    proc = subprocess.run(
        [sys.executable, "-m", "inferfleet", *argv],
        cwd=operator.parent,
        env={**base, "PYTHONPATH": str(operator), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    return proc.stdout


def _head() -> str | None:
    if shutil.which("git") is None:
        return None
    proc = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=False
    )
    return proc.stdout.strip() if proc.returncode == 0 else None


def _declared_version() -> str:
    version: str = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    return version


def test_version_json_says_what_runs() -> None:
    doc: dict[str, Any] = json.loads(_cli("version", "-o", "json"))
    assert doc["version"] == _declared_version()
    assert doc["python"] == platform.python_version()
    assert doc["libraries"] == {name: importlib.metadata.version(name) for name in LIBRARIES}
    assert doc["commit"] == _head()


def test_version_yaml_is_the_same_document() -> None:
    assert yaml.safe_load(_cli("version", "-o", "yaml")) == json.loads(_cli("version", "-o", "json"))


def test_dash_dash_version_is_one_line_with_the_same_facts() -> None:
    out = _cli("--version")
    (line,) = out.splitlines()
    m = re.fullmatch(r"inferfleet (\S+) \(commit (\S+); Python (\S+); (.*)\)", line)
    assert m, line
    assert m.group(1) == _declared_version() and m.group(3) == platform.python_version()
    head = _head()
    assert m.group(2) == (head[:12] if head else "unknown")
    libraries = dict(part.split(" ", 1) for part in m.group(4).split(", "))
    assert libraries == {name: importlib.metadata.version(name) for name in LIBRARIES}
    assert _cli("version") == out


def test_the_commit_from_the_environment_wins() -> None:
    doc = json.loads(_cli("version", "-o", "json", INFERFLEET_GIT_COMMIT="0123456789abcdef"))
    assert doc["commit"] == "0123456789abcdef"


def test_outside_a_checkout_the_commit_is_unknown(tmp_path: Path) -> None:
    operator = tmp_path / "operator"
    shutil.copytree(ROOT / "operator" / "inferfleet", operator / "inferfleet")
    doc = json.loads(_cli("version", "-o", "json", operator=operator))
    assert doc["commit"] is None
    assert "(commit unknown;" in _cli("--version", operator=operator)
