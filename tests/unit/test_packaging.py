"""Installs come from uv.lock: the lock matches pyproject.toml, scripts/env.sh and the Dockerfile pin
the same uv, and the image installs the lock's runtime set (hash-checked, no dev extra) rather than
resolving afresh.  (No Docker engine here: the Dockerfile is read, and its export command is run.)"""

from __future__ import annotations

import fnmatch
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
DEV_ONLY = {"pytest", "pytest-timeout", "hypothesis", "mypy", "ruff", "types-pyyaml", "import-linter"}


def _pyproject() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _lock() -> dict[str, object]:
    return tomllib.loads((ROOT / "uv.lock").read_text())


def _instructions() -> list[tuple[str, str]]:
    """(instruction, arguments) per Dockerfile instruction, continuation lines joined, comments dropped."""
    text = (ROOT / "Dockerfile").read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    out = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), " ".join(rest.split())))
    return out


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for ins in _instructions():
        if ins[0] == "FROM":
            stages.append([])
        stages[-1].append(ins)
    return stages


def _commands(stage: list[tuple[str, str]]) -> list[list[str]]:
    """Every shell command of the stage's RUN lines, as argv."""
    return [shlex.split(cmd) for word, args in stage if word == "RUN" for cmd in re.split(r"&&|;", args)]


def _uv_export_argv() -> list[str]:
    build = _stages()[0]
    found = [argv for argv in _commands(build) if argv[:2] == ["uv", "export"]]
    assert len(found) == 1, found
    return found[0]


def test_lock_records_exactly_the_declared_requirements() -> None:
    # what `uv lock --check` (scripts/check) enforces, here without uv: a stale lock fails
    project = _pyproject()["project"]
    assert isinstance(project, dict)
    declared = {
        (canonicalize_name(r.name), SpecifierSet(str(r.specifier)), "")
        for r in map(Requirement, project["dependencies"])
    } | {
        (canonicalize_name(r.name), SpecifierSet(str(r.specifier)), "dev")
        for r in map(Requirement, project["optional-dependencies"]["dev"])
    }
    lock = _lock()
    packages = lock["package"]
    assert isinstance(packages, list)
    me = next(p for p in packages if p["name"] == "inferfleet")
    locked = {
        (
            canonicalize_name(r["name"]),
            SpecifierSet(r.get("specifier", "")),
            "dev" if r.get("marker") == "extra == 'dev'" else r.get("marker", ""),
        )
        for r in me["metadata"]["requires-dist"]
    }
    assert locked == declared
    names = {p["name"] for p in packages}
    assert {"numpy", "highspy"} <= names


def test_lock_resolves_highspy_within_its_bound() -> None:
    project = _pyproject()["project"]
    assert isinstance(project, dict)
    (bound,) = [Requirement(r) for r in project["dependencies"] if Requirement(r).name == "highspy"]
    assert bound.specifier.contains("1.16.0") and not bound.specifier.contains("2.0")  # an upper bound
    packages = _lock()["package"]
    assert isinstance(packages, list)
    versions = [p["version"] for p in packages if p["name"] == "highspy"]
    assert versions and all(bound.specifier.contains(v) for v in versions)


def test_dockerfile_and_env_sh_pin_the_same_uv() -> None:
    env_sh = (ROOT / "scripts" / "env.sh").read_text()
    pinned = re.search(r"^UV_VERSION=(\S+)", env_sh, re.M)
    assert pinned, "scripts/env.sh pins no uv"
    build = _stages()[0]
    uv_installs = [
        a for argv in _commands(build) if argv[:2] == ["pip", "install"] for a in argv if a.startswith("uv")
    ]
    assert uv_installs == [f"uv=={pinned.group(1)}"]


def test_image_installs_the_locked_runtime_set_only() -> None:
    stages = _stages()
    assert len(stages) == 2, "a build stage and a runtime stage"
    build, final = stages
    copies = [args for word, args in build if word == "COPY"]
    assert any("uv.lock" in c.split() for c in copies), copies
    export = _uv_export_argv()
    assert "--frozen" in export  # the lock as committed, never re-resolved in the image
    assert not {"--extra", "--all-extras", "--all-groups"} & set(export) and "dev" not in export
    out = export[export.index("--output-file") + 1]
    pips = [argv for argv in _commands(build) if argv[:2] == ["pip", "install"]]
    from_lock = [argv for argv in pips if out in argv]
    assert (
        len(from_lock) == 1
        and "--require-hashes" in from_lock[0]
        and from_lock[0][from_lock[0].index(out) - 1] == "-r"
    )
    # every other pip install adds nothing unlocked: uv itself (pinned) or the project without deps
    for argv in pips:
        if argv in from_lock:
            continue
        positional = [a for a in argv[2:] if not a.startswith("-")]
        if positional == ["."]:
            assert "--no-deps" in argv, argv
        else:
            assert positional and all(re.fullmatch(r"uv==[\w.]+", a) for a in positional), argv
    assert [args for word, args in final if word == "COPY"] == ["--from=build /install /usr/local"]
    assert not any(word == "RUN" for word, _ in final)


@pytest.mark.skipif(shutil.which("uv") is None, reason="uv is put on PATH by scripts/env.sh")
def test_the_dockerfile_export_gives_runtime_packages_and_no_dev_ones() -> None:
    argv = _uv_export_argv()
    i = argv.index("--output-file")
    argv = [shutil.which("uv") or "uv", *argv[1:i], *argv[i + 2 :], "--no-hashes"]
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    pinned = {}
    for line in proc.stdout.splitlines():
        if line and not line.startswith((" ", "#")):
            req = Requirement(line)
            pinned[canonicalize_name(req.name)] = str(req.specifier)
    assert not DEV_ONLY & set(pinned), sorted(DEV_ONLY & set(pinned))
    project = _pyproject()["project"]
    assert isinstance(project, dict)
    runtime = {canonicalize_name(Requirement(r).name) for r in project["dependencies"]}
    assert runtime <= set(pinned), runtime - set(pinned)
    assert all(spec.startswith("==") for spec in pinned.values()), pinned
    assert "inferfleet" not in pinned  # the project is installed from source after


def _ignored(path: str) -> bool:
    """Whether .dockerignore keeps ``path`` out of the build context (last matching pattern wins)."""
    ignored = False
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate, pattern = line.startswith("!"), line.lstrip("!").rstrip("/")
        if fnmatch.fnmatch(path, pattern) or path.startswith(pattern + "/"):
            ignored = not negate
    return ignored


def test_everything_the_build_stage_copies_is_in_the_context() -> None:
    sources = [
        src
        for word, args in _stages()[0]
        if word == "COPY" and not args.startswith("--from")
        for src in args.split()[:-1]
    ]
    assert "uv.lock" in sources and "operator" in sources
    assert [s for s in sources if _ignored(s)] == []
    assert _ignored("tests") and _ignored(".git")  # and the rest stays out
