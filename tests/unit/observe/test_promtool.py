"""Every default query, as a recording rule, through ``promtool test rules`` on synthetic series.

The rules file is rendered from ``DEFAULT_QUERIES`` for one pool (chat/llama, window 1m, burst
window 30s), so the test data in testdata/vllm_rules_test.yml checks the queries the reader really
sends: the values of a three-pod, two-class pool, the idle case (NaN percentile and mean), an
empty vector, a counter reset and a stale series.  With ``CI=true`` promtool is installed if
missing and the test never skips.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from inferfleet.observe.queries import DEFAULT_QUERIES, Signal, render
from inferfleet_dev import install, prometheus

TESTDATA = Path(__file__).parent / "testdata"
TEST_FILE = TESTDATA / "vllm_rules_test.yml"


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


@pytest.fixture(scope="module")
def promtool() -> Path:
    path = install.tool_path("promtool")
    if path.is_file() and os.access(path, os.X_OK):
        return path
    if not _in_ci():
        pytest.skip(f"promtool not installed; install with: {prometheus.INSTALL_HINT}")
    try:
        return prometheus.ensure()["promtool"]
    except prometheus.PrometheusError as exc:
        pytest.fail(f"CI=true and promtool cannot be installed: {exc}", pytrace=False)


def _rules(engine: str, path: Path) -> Path:
    rules = [
        {
            "record": f"inferfleet:{signal}",
            "expr": render(t, window="1m", burst="30s", namespace="chat", pool="llama"),
        }
        for signal, t in DEFAULT_QUERIES[engine].items()
    ]
    path.write_text(json.dumps({"groups": [{"name": f"inferfleet-{engine}", "rules": rules}]}, indent=1))
    return path


def _run(promtool: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(promtool), *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def test_default_vllm_queries_on_synthetic_series(promtool: Path, tmp_path: Path) -> None:
    _rules("vllm", tmp_path / "rules.yml")
    shutil.copy(TEST_FILE, tmp_path / TEST_FILE.name)
    out = _run(promtool, "test", "rules", TEST_FILE.name, cwd=tmp_path)
    assert out.returncode == 0 and "SUCCESS" in out.stdout, out.stdout + out.stderr


def test_the_promtool_test_can_fail(promtool: Path, tmp_path: Path) -> None:
    _rules("vllm", tmp_path / "rules.yml")
    text = TEST_FILE.read_text().replace("value: 640", "value: 641")
    (tmp_path / TEST_FILE.name).write_text(text)
    out = _run(promtool, "test", "rules", TEST_FILE.name, cwd=tmp_path)
    assert out.returncode != 0 and "inferfleet:input_tokens" in out.stdout + out.stderr


def test_the_test_data_covers_every_signal() -> None:
    text = TEST_FILE.read_text()
    assert [s for s in Signal if f"inferfleet:{s}" not in text] == []


@pytest.mark.parametrize("engine", sorted(DEFAULT_QUERIES))
def test_every_engine_s_queries_parse(promtool: Path, tmp_path: Path, engine: str) -> None:
    rules = _rules(engine, tmp_path / f"{engine}.yml")
    out = _run(promtool, "check", "rules", rules.name, cwd=tmp_path)
    assert out.returncode == 0 and f"{len(DEFAULT_QUERIES[engine])} rules found" in out.stdout, (
        out.stdout + out.stderr
    )


def test_one_pool_s_queries_parse_whatever_its_names(promtool: Path, tmp_path: Path) -> None:
    """Names with '-' and '.' (a namespace, a pool): Python's re.escape would write ``\\-``, which
    PromQL's string parser refuses."""
    rules = [
        {
            "record": f"inferfleet:{s}",
            "expr": render(t, window="1m", burst="30s", namespace="it-a1", pool="chat-8b.v2"),
        }
        for s, t in DEFAULT_QUERIES["vllm"].items()
    ]
    path = tmp_path / "one.yml"
    path.write_text(json.dumps({"groups": [{"name": "one", "rules": rules}]}))
    out = _run(promtool, "check", "rules", path.name, cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
