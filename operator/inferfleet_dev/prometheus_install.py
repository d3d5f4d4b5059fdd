"""Fetching Debian's Prometheus package into the cache: ``apt-get download`` + ``dpkg -x``, never a daemon.

Owns ``PrometheusError``, the check of apt's candidate version against the pin, and ``download``
(called by ``inferfleet_dev.install`` for its ``prometheus`` group: ``prometheus`` and ``promtool``
copied into ``~/.cache/inferfleet/bin/prometheus-<version>/``, which the installer then verifies
with ``--version``).  Stdlib only, like the installer.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from inferfleet_dev import install

__all__ = ["BINARIES", "PROMETHEUS_VERSION", "PrometheusError", "download"]

PROMETHEUS_VERSION = install.PROMETHEUS_VERSION  # Debian bookworm: 2.42.0+ds-5+deb12u1
BINARIES = ("prometheus", "promtool")


class PrometheusError(install.InstallError):
    """Prometheus could not be installed, started or made to scrape its targets; the message says why."""


def _candidate() -> str:
    """Debian's candidate version of the prometheus package, checked against the pin."""
    try:
        out = subprocess.run(
            ["apt-cache", "policy", "prometheus"], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PrometheusError(
            f"cannot ask apt for the prometheus package ({exc}); this needs a Debian-like system, or put "
            "prometheus and promtool (release tarball from prometheus.io) in $INFERFLEET_ASSETS"
        ) from None
    found = re.search(r"Candidate:\s*(\S+)", out.stdout)
    if found is None or found.group(1) == "(none)":
        raise PrometheusError(
            "apt knows no candidate for 'prometheus' (run 'apt-get update' once), "
            f"apt-cache said: {(out.stdout + out.stderr).strip()[:300]!r}"
        )
    version = found.group(1)
    if not version.startswith(PROMETHEUS_VERSION + "+") and version != PROMETHEUS_VERSION:
        raise PrometheusError(
            f"apt offers prometheus {version}, the harness is pinned to {PROMETHEUS_VERSION}; "
            "update PROMETHEUS_VERSION in inferfleet_dev/prometheus.py deliberately"
        )
    return version


def _logged(cmd: Sequence[str], cwd: Path, logfile: Path) -> None:
    with logfile.open("a") as log:
        log.write(f"$ {' '.join(cmd)}\n")
        log.flush()
        try:
            proc = subprocess.run(cmd, cwd=cwd, stdout=log, stderr=log, timeout=600, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PrometheusError(f"{cmd[0]} failed: {exc}; log {logfile}") from None
    if proc.returncode != 0:
        tail = logfile.read_text(errors="replace").splitlines()[-10:]
        raise PrometheusError(
            f"{' '.join(cmd)} exited {proc.returncode}; log {logfile}:\n  " + "\n  ".join(tail)
        )


def download(dest: Path, logfile: Path) -> None:
    """``apt-get download`` the pinned package and unpack its two binaries into ``dest``."""
    version = _candidate()
    logfile.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="inferfleet-prometheus-") as tmp:
        work = Path(tmp)
        os.chmod(work, 0o755)  # apt's _apt user may read it (else apt warns and runs unsandboxed)
        _logged(["apt-get", "download", f"prometheus={version}"], work, logfile)
        debs = sorted(work.glob("prometheus_*.deb"))
        if not debs:
            raise PrometheusError(f"apt-get download left no .deb in {work}; log {logfile}")
        _logged(["dpkg", "-x", str(debs[0]), str(work / "root")], work, logfile)
        staged = work / "stage"
        staged.mkdir()
        for name in BINARIES:
            shutil.copy2(work / "root" / "usr" / "bin" / name, staged / name)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(dest, ignore_errors=True)
        shutil.move(str(staged), str(dest))
