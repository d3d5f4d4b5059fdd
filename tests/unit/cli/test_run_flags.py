"""``inferfleet run``'s leader-election timings, metrics TLS and log format flags, as a subprocess:
a bad combination is one line on stderr and exit 2 before anything starts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "operator")}
    return subprocess.run(
        [sys.executable, "-m", "inferfleet", "run", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (
            ["--leader-elect-lease-duration=5"],
            "need --leader-elect-retry-period < --leader-elect-renew-deadline < "
            "--leader-elect-lease-duration, got 2, 10, 5",
        ),
        (["--leader-elect-retry-period=10"], "got 10, 10, 15"),
        (["--metrics-secure"], "--metrics-secure needs --metrics-cert-file and --metrics-key-file"),
        (
            ["--metrics-cert-file=/nonexistent/tls.crt"],
            "--metrics-cert-file and --metrics-key-file go together",
        ),
        (
            ["--metrics-cert-file=/nonexistent/tls.crt", "--metrics-key-file=/nonexistent/tls.key"],
            "--metrics-cert-file /nonexistent/tls.crt: no such file",
        ),
    ],
    ids=[
        "lease-shorter-than-renew",
        "retry-not-below-renew",
        "secure-without-tls",
        "cert-without-key",
        "missing-file",
    ],
)
def test_bad_combinations_are_one_line_and_exit_2(args: list[str], words: str) -> None:
    proc = run(*args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], proc.stderr


@pytest.mark.parametrize(
    ("flag", "words"),
    [
        ("--leader-elect-renew-deadline=-1", "must be more than 0 seconds, not -1"),
        ("--leader-elect-lease-duration=soon", "not a number of seconds: 'soon'"),
        ("--log-format=xml", "invalid choice: 'xml'"),
    ],
    ids=["negative", "not-a-number", "unknown-format"],
)
def test_bad_values_are_refused_by_the_parser(flag: str, words: str) -> None:
    proc = run(flag)
    assert proc.returncode == 2 and words in proc.stderr, proc.stderr


def test_help_lists_the_new_flags() -> None:
    out = run("--help").stdout
    for flag in (
        "--leader-elect-lease-duration",
        "--leader-elect-renew-deadline",
        "--leader-elect-retry-period",
        "--metrics-secure",
        "--metrics-cert-file",
        "--metrics-key-file",
        "--log-format",
    ):
        assert flag in out
