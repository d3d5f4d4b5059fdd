"""``inferfleet plan --sweep`` run as users run it, a process with its stdout parsed: JSON and YAML
documents with nothing before or after them, points equal to the plain plans at the same flags, the
table with its break-even points, the plots, and bad input (exit 2, one line, nothing on stdout)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
FILES = ["-f", "examples", "-f", "examples/simulated-fleet"]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "operator"), *filter(None, [env.get("PYTHONPATH")])])
    return env


def _plan(*args: str, code: str | None = None) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "inferfleet", "plan", *args]
    if code is not None:  # run the CLI after some set-up of the interpreter
        argv = [
            sys.executable,
            "-c",
            f"{code}\nfrom inferfleet.cli import main\nraise SystemExit(main({['plan', *args]!r}))",
        ]
    return subprocess.run(
        argv, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=280, check=False
    )


def _doc(*args: str) -> dict[str, Any]:
    proc = _plan(*args)
    assert proc.returncode == 0, proc.stderr
    assert "HiGHS" not in proc.stderr, proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)  # fails on any line before or after the document
    return doc


def test_json_points_equal_the_plain_plans_at_the_same_flags() -> None:
    doc = _doc(*FILES, "--sweep", "price.h200=2:8:3", "-o", "json")
    assert doc["schema"] == "inferfleet.dev/plan-sweep/v1"
    assert [a["name"] for a in doc["axes"]] == ["price.h200"]
    assert len(doc["points"]) == 3
    for point in doc["points"]:
        price = point["values"]["price.h200"]
        plain = _doc(*FILES, "--price", f"h200={price!r}", "-o", "json")
        assert point["dollarsPerHour"] == plain["totals"]["dollarsPerHour"]
        assert point["kilowatts"] == pytest.approx(plain["totals"]["watts"] / 1000, abs=0.001)
        energy = plain["energy"]
        for key in ("dollarsPerMillionOutputTokens", "outputTokensPerJoule", "hardwareDollarsPerHour"):
            assert point[key] == pytest.approx(energy[key], abs=0.01), key
        replicas: dict[str, int] = {}
        for pool in plain["pools"]:
            for p in pool["placements"]:
                replicas[p["class"]] = replicas.get(p["class"], 0) + p["replicas"]
        assert {c["name"]: c["replicas"] for c in point["classes"]} == replicas
        assert sum(c["share"] for c in point["classes"]) == pytest.approx(1.0, abs=0.001)


def test_demand_points_equal_plain_plans_with_every_pools_demand_scaled() -> None:
    base = {
        f"{p['namespace']}/{p['name']}": p["demandRequestsPerSecond"]
        for p in _doc(*FILES, "-o", "json")["pools"]
    }
    doc = _doc(*FILES, "--sweep", "demand=0.5:2:2", "--no-break-even", "-o", "json")
    assert doc["breakEven"] == []
    for point in doc["points"]:
        factor = point["values"]["demand"]
        flags = [f for key, rps in base.items() for f in ("--demand", f"{key}={rps * factor!r}")]
        plain = _doc(*FILES, *flags, "-o", "json")
        assert point["dollarsPerHour"] == plain["totals"]["dollarsPerHour"]
        assert point["demandRequestsPerSecond"] == pytest.approx(sum(base.values()) * factor, rel=1e-6)


def test_yaml_is_the_same_document() -> None:
    args = [*FILES, "--sweep", "electricity=0:0.2:2", "--no-break-even"]
    proc = _plan(*args, "-o", "yaml")
    assert proc.returncode == 0, proc.stderr
    from_yaml = yaml.safe_load(proc.stdout)
    from_json = _doc(*args, "-o", "json")
    for doc in (from_yaml, from_json):
        doc.pop("seconds")
        for p in doc["points"]:
            p["solver"].pop("seconds")
    assert from_yaml == from_json


def test_the_issues_command_prints_the_table_and_writes_the_plots(tmp_path: Path) -> None:
    """``inferfleet plan -f examples/ --sweep demand=0.1:100:30`` (issue 12's "done when")."""
    proc = _plan("-f", "examples/", "--sweep", "demand=0.1:100:30", "--plot", str(tmp_path / "plots"))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "Sweep demand (x the manifests' demand, log-spaced, 30 points)"
    assert lines[1].split()[:4] == ["DEMAND", "REQ/S", "OUT-TOK/S", "$/H"]
    rows = lines[2:32]
    assert rows[0].split()[0] == "0.1x" and rows[-1].split()[0] == "100x"
    assert "Break-even points (demand, each between two plans that differ there):" in lines
    assert any("h200 enters the plan" in line for line in lines), proc.stdout
    assert any(line.startswith("    binding just above: the power budget of hall-b") for line in lines)
    written = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert written == sorted(f"sweep-{n}.{e}" for n in ("cost", "power", "mix") for e in ("png", "svg"))
    for name in ("cost", "power", "mix"):
        assert (tmp_path / "plots" / f"sweep-{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        svg = (tmp_path / "plots" / f"sweep-{name}.svg").read_text()
        assert svg.lstrip().startswith("<?xml") and "</svg>" in svg and "<dc:date>" not in svg
    assert "wrote " in proc.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ["--sweep", "price.h900=1:2:3"],
            "error: --sweep price.h900=1:2:3: no such AcceleratorClass 'h900'",
            id="unknown-class",
        ),
        pytest.param(
            ["--sweep", "budget.hall-z=1:2:3"],
            "no AcceleratorClass is in power domain 'hall-z'",
            id="unknown-domain",
        ),
        pytest.param(
            ["--sweep", "slo.chat/nope.ttft=100:200:3"],
            "no such InferencePool 'chat/nope'",
            id="unknown-pool",
        ),
        pytest.param(["--sweep", "demand=5:1:3"], "the range 5:1 is empty or reversed", id="reversed-range"),
        pytest.param(["--sweep", "demand=1:1:3"], "the range 1:1 is empty or reversed", id="empty-range"),
        pytest.param(
            ["--sweep", "demand=0.001:1e7:3"], "outside what a demand axis can mean", id="absurd-range"
        ),
        pytest.param(
            ["--sweep", "demand=1:2:500"], "N 500 must be a whole number from 2 to 200", id="too-many-points"
        ),
        pytest.param(
            ["--sweep", "demand=1:2:15", "--sweep", "electricity=0:1:15"],
            "15 x 15 = 225 points; at most 200",
            id="grid-too-big",
        ),
        pytest.param(
            ["--sweep", "demand=1:2:2", "--sweep", "electricity=0:1:2", "--plot", "x"],
            "--plot draws one axis",
            id="plot-two-axes",
        ),
        pytest.param(["--plot", "x"], "--plot needs --sweep", id="plot-without-sweep"),
        pytest.param(
            ["--electricity", "-1"],
            "--electricity -1: expected $/kWh from 0 to 10",
            id="negative-electricity",
        ),
    ],
)
def test_bad_input_exits_2_with_one_line_and_prints_nothing(args: list[str], message: str) -> None:
    proc = _plan(*FILES, *args, "-o", "json")
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stdout == ""
    assert message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_sweep_with_live_is_refused() -> None:
    proc = _plan("--live", "--sweep", "demand=1:2:2")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip() == "error: --sweep plans from files: it cannot be combined with --live"


def test_plot_without_matplotlib_says_how_to_get_it_before_planning(tmp_path: Path) -> None:
    proc = _plan(
        *FILES,
        "--sweep",
        "demand=1:2:2",
        "--plot",
        str(tmp_path),
        code="import sys; sys.modules['matplotlib'] = None",
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert "--plot needs matplotlib, which is not installed: pip install matplotlib" in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_plot_into_a_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.write_text("")
    proc = _plan(*FILES, "--sweep", "demand=1:2:2", "--plot", str(target))
    assert proc.returncode == 2 and proc.stdout == ""
    assert f"--plot {target}: not a directory" in proc.stderr
