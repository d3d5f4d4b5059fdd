"""``inferfleet version`` and ``inferfleet --version``: what is running — inferfleet's version, the git
commit it was built from when that is known, and the versions of Python and of the libraries whose
behaviour the operator depends on (kopf, the Kubernetes client, pydantic, HiGHS).

Owns gathering those facts (as a typed value) and printing them; nothing here imports kopf or the
client, so it answers in the time Python takes to start.  The commit comes from
``$INFERFLEET_GIT_COMMIT`` (the image sets it from its ``GIT_COMMIT`` build argument), else from git
when the package is imported from a checkout (``operator/inferfleet`` inside the work tree), else it
is unknown.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import yaml

import inferfleet

__all__ = ["LIBRARIES", "BuildInfo", "VersionAction", "build_info", "register", "summary"]

LIBRARIES = ("kopf", "kubernetes", "pydantic", "highspy")  # distribution names


@dataclasses.dataclass(frozen=True)
class BuildInfo:
    version: str
    commit: str | None  # None: not known
    python: str
    libraries: dict[str, str | None]  # distribution -> version (None: not installed)


def _installed(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git_commit() -> str | None:
    package = Path(inferfleet.__file__).resolve().parent
    try:
        proc = subprocess.run(
            ["git", "-C", str(package), "rev-parse", "--show-toplevel", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    lines = proc.stdout.split()
    # only this project's checkout: a wheel installed into a venv inside some other repository is not
    if proc.returncode != 0 or len(lines) != 2 or package != Path(lines[0]).resolve() / "operator/inferfleet":
        return None
    return lines[1]


def build_info() -> BuildInfo:
    return BuildInfo(
        version=inferfleet.__version__,
        commit=os.environ.get("INFERFLEET_GIT_COMMIT") or _git_commit(),
        python=platform.python_version(),
        libraries={name: _installed(name) for name in LIBRARIES},
    )


def summary(info: BuildInfo) -> str:
    """One line: ``inferfleet 0.1.0 (commit 1a2b3c4d5e6f; Python 3.11.2; kopf 1.45.2, ...)``."""
    libraries = ", ".join(f"{name} {version or 'not installed'}" for name, version in info.libraries.items())
    commit = info.commit[:12] if info.commit else "unknown"
    return f"inferfleet {info.version} (commit {commit}; Python {info.python}; {libraries})"


def _document(info: BuildInfo) -> dict[str, object]:
    return {
        "version": info.version,
        "commit": info.commit,
        "python": info.python,
        "libraries": dict(info.libraries),
    }


class VersionAction(argparse.Action):
    """``--version``: print the summary line and exit 0 (argparse's own action prints a fixed string)."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kwargs: object) -> None:
        super().__init__(
            option_strings, dest, nargs=0, default=argparse.SUPPRESS, help="print the version and exit"
        )

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
        print(summary(build_info()))
        parser.exit(0)


def _run(args: argparse.Namespace) -> int:
    info = build_info()
    if args.output == "json":
        print(json.dumps(_document(info), indent=2))
    elif args.output == "yaml":
        yaml.safe_dump(_document(info), sys.stdout, sort_keys=False)
    else:
        print(summary(info))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "version",
        help="print the version, the git commit and the versions of Python and the libraries",
        description="Print inferfleet's version, the git commit it was built from (when known) and the "
        "versions of Python, kopf, the Kubernetes client, pydantic and HiGHS (highspy).",
    )
    p.add_argument("-o", "--output", choices=("text", "json", "yaml"), default="text")
    p.set_defaults(func=_run)
