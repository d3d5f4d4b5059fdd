"""``dev-cluster``'s command line without a cluster: bad input is one message and exit 1; nothing starts."""

from __future__ import annotations

import argparse
import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from inferfleet_dev import devcluster

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "simulated-fleet" / "fleet.yaml"


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    devcluster.register(parser.add_subparsers(required=True))
    args = parser.parse_args(argv)
    rc: int = args.func(args)
    return rc


def test_cli_reports_a_bad_fleet_without_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("INFERFLEET_CACHE", str(tmp_path / "cache"))
    doc: dict[str, Any] = copy.deepcopy(yaml.safe_load(EXAMPLE.read_text()))
    doc["spec"]["pools"][5]["resource"] = "groq.con/lpu"
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(yaml.safe_dump(doc))
    assert _run(["dev-cluster", "up", "--fleet", str(fleet), "--name", "unit"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("inferfleet dev-cluster: error: fleet.yaml: pools[5] (groq): field 'resource': ")
    assert "unknown extended resource 'groq.con/lpu'" in err
    assert "Traceback" not in err
    assert not (tmp_path / "cache" / "clusters" / "unit" / "state.json").exists()


def test_cli_refuses_a_bad_scale_and_an_unknown_tool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("INFERFLEET_CACHE", str(tmp_path / "cache"))
    assert _run(["dev-cluster", "up", "--scale", "0", "--name", "unit"]) == 1
    assert "--scale must be >= 1, got 0" in capsys.readouterr().err
    assert _run(["dev-cluster", "install", "kubelet"]) == 1
    assert "unknown tool(s) kubelet; known: " in capsys.readouterr().err
    assert not (tmp_path / "cache" / "clusters" / "unit").exists()


def test_python_m_inferfleet_dev_is_the_runtime_command_plus_dev_cluster() -> None:
    env = {"PYTHONPATH": str(ROOT / "operator"), "PATH": "/usr/bin:/bin"}
    dev = subprocess.run(
        [sys.executable, "-m", "inferfleet_dev", "--help"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    runtime = subprocess.run(
        [sys.executable, "-m", "inferfleet", "--help"], capture_output=True, text=True, env=env, check=False
    )
    assert dev.returncode == 0 and runtime.returncode == 0, dev.stderr + runtime.stderr
    for command in ("plan", "crds", "run"):
        assert command in dev.stdout and command in runtime.stdout
    assert "dev-cluster" in dev.stdout
    assert "dev-cluster" not in runtime.stdout
