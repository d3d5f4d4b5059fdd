"""The ``inferfleet`` command's manners, run as a process with stdout parsed: no arguments print the usage
and exit 0; ``--help`` lists the exit statuses; each status listed is what the commands really return
(crds --check with and without drift, bad flags, bad input, a bad context, an interruption)."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from inferfleet.cli import EXIT_STATUSES, main

ROOT = Path(__file__).resolve().parents[3]


def _cli(*argv: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "operator")}
    return subprocess.run(
        [sys.executable, "-m", "inferfleet", *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _exit_table(help_text: str) -> dict[int, str]:
    """The ``exit status:`` block of the help: code -> its (unwrapped) text."""
    block = help_text.split("\nexit status:\n", 1)[1]
    table: dict[int, str] = {}
    code = None
    for line in block.splitlines():
        m = re.match(r"  (\d+)\s+(.*)", line)
        if m:
            code = int(m.group(1))
            table[code] = m.group(2)
        elif code is not None and line.startswith(" " * 7):
            table[code] += " " + line.strip()
    return table


def test_no_arguments_print_the_usage_and_exit_0() -> None:
    proc = _cli()
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert proc.stdout.startswith("usage: inferfleet ")
    commands = re.findall(r"^    (\w[\w-]*) ", proc.stdout, re.M)
    assert commands == ["plan", "crds", "run", "version"]


def test_help_lists_every_exit_status() -> None:
    proc = _cli("--help")
    assert proc.returncode == 0, proc.stderr
    assert _exit_table(proc.stdout) == EXIT_STATUSES


def test_a_missing_command_after_a_flag_is_still_bad_usage() -> None:
    proc = _cli("--no-such-flag")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.splitlines()[-1] == "inferfleet: error: the following arguments are required: COMMAND"


@pytest.mark.parametrize(
    ("argv", "status"),
    [
        (["plan", "--no-such-flag"], 2),
        (["plan"], 2),  # -f is required without --live
        (["plan", "-f", "no/such/dir"], 2),
        (["plan", "--kubeconfig", "x"], 2),  # needs --live
        (["run", "--context", "nowhere", "--kubeconfig", "/no/such/kubeconfig"], 2),
        (["run", "--leader-elect-retry-period", "20"], 2),  # retry < renew deadline < lease duration
        (["crds", "--check", "--root", "/no/such/checkout"], 2),
        (["version"], 0),
        (["plan", "-f", "examples/", "-o", "json"], 0),
    ],
    ids=[
        "an-unknown-flag",
        "a-missing-required-flag",
        "manifests-that-are-not-there",
        "a-flag-without-the-one-it-needs",
        "a-kubeconfig-that-cannot-be-read",
        "leader-election-timings-that-conflict",
        "a-root-that-is-no-checkout",
        "version",
        "a-plan",
    ],
)
def test_commands_return_the_listed_statuses(argv: list[str], status: int) -> None:
    proc = _cli(*argv)
    assert proc.returncode == status, proc.stderr
    assert status in EXIT_STATUSES
    if status == 2:
        assert "Traceback" not in proc.stderr and proc.stderr.strip(), proc.stderr


def test_crds_check_exits_1_on_drift_and_0_without(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    drifted = _cli("crds", "--check", "--root", str(root))
    assert drifted.returncode == 1, drifted.stderr
    listed = [line.strip() for line in drifted.stderr.splitlines()[1:]]
    assert "docs/api.md" in listed and any(p.startswith("crds/") for p in listed), listed
    assert not (root / "crds").exists()  # --check writes nothing
    written = _cli("crds", "--root", str(root))
    assert written.returncode == 0, written.stderr
    assert sorted(line.removeprefix("wrote ") for line in written.stdout.splitlines()) == sorted(listed)
    clean = _cli("crds", "--check", "--root", str(root))
    assert clean.returncode == 0, clean.stderr
    assert clean.stdout.strip() == "CRDs, the chart's copy and docs/api.md are up to date."


def test_an_interruption_exits_130() -> None:
    def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
        def interrupted(args: argparse.Namespace) -> int:
            raise KeyboardInterrupt

        sub.add_parser("interrupted").set_defaults(func=interrupted)

    assert main(["interrupted"], extra=(register,)) == 130


def test_plan_prints_a_size_aware_pool_s_split_per_bucket() -> None:
    """The request-mix example, planned as a user runs it: JSON on stdout, the split per bucket
    summing to the demand, and the table's split line."""
    files = ["-f", "examples/00-namespaces.yaml", "-f", "examples/10-accelerator-classes.yaml"]
    proc = _cli("plan", *files, "-f", "examples/request-mix", "-o", "json")
    assert proc.returncode == 0, proc.stderr
    pool = next(p for p in json.loads(proc.stdout)["pools"] if p["name"] == "chat-8b-mix")
    split = {p["class"]: p["bucketRequestsPerSecond"] for p in pool["placements"]}
    assert len(split) >= 2 and all(len(r) == 3 for r in split.values())
    assert abs(sum(map(sum, split.values())) - 30) < 0.01, "every req/s of the mix is routed somewhere"
    table = _cli("plan", *files, "-f", "examples/request-mix")
    assert "size-aware split, req/s per requestMix bucket:" in table.stdout
