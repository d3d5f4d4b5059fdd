"""What ships: the wheel holds the runtime package ``inferfleet`` and never the dev harness
``inferfleet_dev``; and building ``inferfleet``'s parser (what ``inferfleet plan`` pays) imports
neither kopf nor the Kubernetes client nor the dev harness.

The wheel is built from a copy of the checkout (setuptools writes ``build/`` and ``*.egg-info`` next
to the sources) with ``uv build`` (on PATH through scripts/env.sh), or pip when it and setuptools
and wheel are installed.  Without either it skips, except under CI=true, where it fails.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _in_ci() -> bool:  # as tests/integration/conftest.py
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


def _build_command(src: Path, out: Path) -> list[str] | None:
    uv = shutil.which("uv")
    if uv:
        return [uv, "build", "--wheel", "--quiet", "--out-dir", str(out), str(src)]
    if all(importlib.util.find_spec(m) for m in ("pip", "setuptools", "wheel")):
        return [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation"]
    return None


@pytest.fixture(scope="module")
def wheel_files(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    tmp = tmp_path_factory.mktemp("wheel")
    src, out = tmp / "src", tmp / "out"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(
        ROOT / "operator", src / "operator", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    cmd = _build_command(src, out)
    if cmd is None:
        if _in_ci():
            pytest.fail("no wheel builder: neither uv on PATH nor pip + setuptools + wheel", pytrace=False)
        pytest.skip("no wheel builder (uv, or pip + setuptools + wheel); run through ./scripts/test")
    if cmd[0] == sys.executable:
        cmd += ["-w", str(out), str(src)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, check=False, cwd=tmp)
    if proc.returncode != 0:
        pytest.fail(f"building the wheel failed ({' '.join(cmd)}):\n{proc.stderr[-3000:]}", pytrace=False)
    wheels = sorted(out.glob("inferfleet-*.whl"))
    assert len(wheels) == 1, wheels
    with zipfile.ZipFile(wheels[0]) as zf:
        return zf.namelist()


def test_wheel_ships_the_runtime_package(wheel_files: list[str]) -> None:
    sources = {
        p.relative_to(ROOT / "operator").as_posix() for p in (ROOT / "operator/inferfleet").rglob("*.py")
    }
    assert sources <= set(wheel_files), sorted(sources - set(wheel_files))
    assert "inferfleet/py.typed" in wheel_files
    assert any(f.endswith(".dist-info/entry_points.txt") for f in wheel_files)


def test_wheel_has_no_dev_harness(wheel_files: list[str]) -> None:
    tops = {f.split("/")[0] for f in wheel_files}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"inferfleet"}, tops
    assert not [f for f in wheel_files if "inferfleet_dev" in f or "/sim/" in f]


def test_building_the_parser_imports_no_kopf_kubernetes_or_dev_harness() -> None:
    code = (
        "import inferfleet.cli, sys; inferfleet.cli.build_parser(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('kopf','kubernetes','inferfleet_dev')))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "operator")}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]", proc.stdout
