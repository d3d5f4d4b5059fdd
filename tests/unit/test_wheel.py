"""What ships: the wheel holds the runtime package ``inferfleet`` and the licence, never the dev harness
``inferfleet_dev``; installed alone into a fresh venv (with what it declares, at the lock's versions,
and not the checkout) its ``inferfleet`` entry point runs: ``--version``, help, a plan of the
examples; and building ``inferfleet``'s parser (what ``inferfleet plan`` pays) imports neither kopf
nor the Kubernetes client nor the dev harness.

The wheel is built from a copy of the checkout (setuptools writes ``build/`` and ``*.egg-info`` next
to the sources) with ``uv build`` (on PATH through scripts/env.sh), or pip when it and setuptools
and wheel are installed.  Without either it skips, except under CI=true, where it fails.
"""

from __future__ import annotations

import importlib.util
import json
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
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    src, out = tmp / "src", tmp / "out"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
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
    return wheels[0]


@pytest.fixture(scope="module")
def wheel_files(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as zf:
        return zf.namelist()


def test_wheel_ships_the_licence(wheel: Path, wheel_files: list[str]) -> None:
    (licence,) = [f for f in wheel_files if f.endswith(".dist-info/licenses/LICENSE")]
    with zipfile.ZipFile(wheel) as zf:
        assert zf.read(licence) == (ROOT / "LICENSE").read_bytes()
        (metadata,) = [f for f in wheel_files if f.endswith(".dist-info/METADATA")]
        headers = zf.read(metadata).decode().split("\n\n", 1)[0].splitlines()
    assert "License-Expression: Apache-2.0" in headers and "License-File: LICENSE" in headers


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding the lock's runtime set (from uv's cache, offline) and the wheel."""
    uv = shutil.which("uv")
    if uv is None:
        if _in_ci():
            pytest.fail("uv is not on PATH (scripts/env.sh puts it there)", pytrace=False)
        pytest.skip("uv is not on PATH; run through ./scripts/test")
    tmp = tmp_path_factory.mktemp("venv")
    venv = tmp / "venv"
    for cmd, env in (
        # the lock's runtime set (no dev extra, not the project), as scripts/env.sh makes its venv
        (
            [uv, "sync", "--quiet", "--frozen", "--offline", "--no-dev", "--no-install-project",
             "--no-python-downloads", "--python", sys.executable, "--project", str(ROOT)],
            {"UV_PROJECT_ENVIRONMENT": str(venv)},
        ),
        # then the wheel alone
        ([uv, "pip", "install", "--quiet", "--no-deps", "--python", str(venv / "bin" / "python"),
          str(wheel)], {}),
    ):  # fmt: skip
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=240, check=False, env={**os.environ, **env}
        )
        assert proc.returncode == 0, f"{' '.join(cmd)}:\n{proc.stderr[-3000:]}"
    return venv


def _entry_point(venv: Path, *argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(
        [str(venv / "bin" / "inferfleet"), *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_entry_point_runs_from_the_installed_wheel(installed: Path, tmp_path: Path) -> None:
    proc = _entry_point(installed, "version", "-o", "json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["version"] == "0.1.0" and doc["commit"] is None  # not a checkout: unknown
    assert all(doc["libraries"].values()), doc["libraries"]  # kopf, kubernetes, pydantic, highspy there
    where = subprocess.run(
        [str(installed / "bin" / "python"), "-c", "import inferfleet; print(inferfleet.__file__)"],
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert Path(where.stdout.strip()).is_relative_to(installed), (
        where.stdout
    )  # the wheel's, not the checkout's
    (line,) = _entry_point(installed, "--version", cwd=tmp_path).stdout.splitlines()
    assert line.startswith("inferfleet 0.1.0 (commit unknown; Python "), line
    usage = _entry_point(installed, cwd=tmp_path)
    assert usage.returncode == 0 and usage.stdout.startswith("usage: inferfleet "), usage.stderr
    assert "dev-cluster" not in usage.stdout  # the dev harness's commands are not in the wheel


def test_the_installed_wheel_plans_the_examples(installed: Path, tmp_path: Path) -> None:
    proc = _entry_point(installed, "plan", "-f", str(ROOT / "examples"), "-o", "json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["solver"]["status"] == "Optimal" and doc["pools"], doc["solver"]


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
