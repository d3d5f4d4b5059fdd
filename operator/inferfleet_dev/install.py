"""Idempotent installer for the local control plane's binaries.

Owns: building (from the Go module proxy) or finding kube-apiserver, kube-controller-manager,
kube-scheduler, kubectl, etcd, kwok, kwokctl and helm; caching them outside the repo under
``~/.cache/inferfleet/bin/<tool>-<version>/`` (or ``$INFERFLEET_CACHE``); checking each binary's
``--version`` (kwok: ``--version``; kubectl: ``version --client``; helm: ``version --short``) against
the pin; and kwok's stage definitions (``kwok_stages()``).  Binaries a user already has are taken
from ``$INFERFLEET_ASSETS`` (a directory, in the spirit of envtest's ``KUBEBUILDER_ASSETS``; it may
also hold ``kwok-stages.yaml``).  A failed build keeps its log in ``~/.cache/inferfleet/logs/``.

Stdlib only, so it runs before anything else is installed:
``python -m inferfleet_dev.install`` (or ``inferfleet dev-cluster install``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

__all__ = [
    "ETCD_VERSION",
    "HELM_VERSION",
    "KUBERNETES_VERSION",
    "KWOK_VERSION",
    "InstallError",
    "Tool",
    "CLUSTER_TOOLS",
    "cache_root",
    "ensure",
    "ensure_all",
    "ensure_binaries",
    "kwok_stages",
    "main",
    "tool_path",
]

KUBERNETES_VERSION = "v1.36.3"
ETCD_VERSION = "v3.6.14"
KWOK_VERSION = "v0.8.0"
HELM_VERSION = "v4.2.4"
PROMETHEUS_VERSION = "2.42.0"  # Debian's package, unpacked by inferfleet_dev.prometheus (not built)

KUBE_BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
# What a local dev cluster needs (helm and kwokctl are for users and the e2e tests).
CLUSTER_TOOLS = ("etcd", *KUBE_BINARIES, "kwok")
# kwok's default "fast" stages plus the node-not-ready chaos stage, from the kwok module.
KWOK_STAGE_FILES = (
    "node/fast/node-initialize.yaml",
    "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
    "node/chaos/node-not-ready.yaml",
    "pod/fast/pod-ready.yaml",
    "pod/fast/pod-complete.yaml",
    "pod/fast/pod-delete.yaml",
)


class InstallError(RuntimeError):
    """A binary could not be built or found; the message names it and the log file."""


@dataclasses.dataclass(frozen=True)
class Tool:
    """One binary: its name, pinned version and the ``--version`` text proving it is that one."""

    name: str
    version: str
    group: str  # binaries built together share a group (one go build)

    @property
    def expect(self) -> str:
        return self.version.lstrip("v")


TOOLS: dict[str, Tool] = {
    **{name: Tool(name, KUBERNETES_VERSION, "kubernetes") for name in KUBE_BINARIES},
    "etcd": Tool("etcd", ETCD_VERSION, "etcd"),
    "kwok": Tool("kwok", KWOK_VERSION, "kwok"),
    "kwokctl": Tool("kwokctl", KWOK_VERSION, "kwok"),
    "helm": Tool("helm", HELM_VERSION, "helm"),
    "prometheus": Tool("prometheus", PROMETHEUS_VERSION, "prometheus"),
    "promtool": Tool("promtool", PROMETHEUS_VERSION, "prometheus"),
}


def log(msg: str) -> None:
    print(f"[inferfleet-install] {msg}", file=sys.stderr, flush=True)


def cache_root() -> Path:
    root = os.environ.get("INFERFLEET_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "inferfleet"


def _bin_dir(tool: Tool) -> Path:
    return cache_root() / "bin" / f"{tool.group}-{tool.version}"


def tool_path(name: str) -> Path:
    """Where ``name`` is (user asset) or will be (cache) without building or checking it."""
    tool = TOOLS[name]
    assets = os.environ.get("INFERFLEET_ASSETS")
    if assets and (Path(assets) / name).is_file():
        return Path(assets) / name
    return _bin_dir(tool) / name


_VERSION_ARGS: dict[str, tuple[str, ...]] = {
    "kubectl": ("version", "--client"),
    "helm": ("version", "--short"),
}


def _version_of(path: Path, tool: Tool) -> str:
    args = [str(path), *_VERSION_ARGS.get(tool.name, ("--version",))]
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout + out.stderr


def _stamp(path: Path) -> str:
    st = path.stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


def _verified(path: Path, tool: Tool) -> bool:
    """The binary exists, runs, and its version output names exactly the pinned version.

    A passed check is remembered in ``<binary>.verified`` (size and mtime), so a warm start does
    not execute eight binaries again; replacing the binary invalidates it.
    """
    if not (path.is_file() and os.access(path, os.X_OK)):
        return False
    marker = path.with_name(path.name + ".verified")
    with contextlib.suppress(OSError):
        if marker.read_text() == f"{tool.version} {_stamp(path)}":
            return True
    pattern = rf"(?<![\d.])v?{re.escape(tool.expect)}(?![\d])"
    if re.search(pattern, _version_of(path, tool)) is None:
        return False
    if cache_root() in path.parents:  # never write into a user's $INFERFLEET_ASSETS
        with contextlib.suppress(OSError):
            marker.write_text(f"{tool.version} {_stamp(path)}")
    return True


def _user_asset(tool: Tool) -> Path | None:
    assets = os.environ.get("INFERFLEET_ASSETS")
    if not assets:
        return None
    candidate = Path(assets) / tool.name
    if not candidate.is_file():
        return None
    if not _verified(candidate, tool):
        log(f"warning: {candidate} does not report {tool.version}; using it anyway (user-provided)")
    return candidate


def _run_logged(cmd: Sequence[str], cwd: Path, logfile: Path, env: dict[str, str]) -> None:
    """Run ``cmd`` with output appended to ``logfile``; print a heartbeat every 30 s while it runs."""
    if shutil.which(cmd[0], path=env.get("PATH")) is None:
        raise InstallError(
            f"'{cmd[0]}' not found on PATH: building needs Go >= 1.26 "
            "(or put prebuilt binaries in $INFERFLEET_ASSETS)"
        )
    logfile.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    with logfile.open("a") as fh:
        fh.write(f"$ {' '.join(cmd)}\n")
        fh.flush()
        with subprocess.Popen(cmd, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT, env=env) as proc:
            while True:
                try:
                    rc = proc.wait(timeout=30)
                    break
                except subprocess.TimeoutExpired:
                    elapsed = time.monotonic() - start
                    log(f"  ... still running {cmd[0]} {cmd[1]} ({elapsed:.0f}s; log {logfile})")
    if rc != 0:
        tail = logfile.read_text(errors="replace").splitlines()[-25:]
        raise InstallError(
            f"command failed ({rc}): {' '.join(cmd)}\n  log kept at {logfile}\n  " + "\n  ".join(tail)
        )


def _go_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("CGO_ENABLED", "0")
    env.setdefault("GOFLAGS", "-mod=mod")
    env.setdefault("GOTOOLCHAIN", "local")
    return env


def _go_mod_info(module: str, version: str, work: Path, env: dict[str, str]) -> dict[str, str]:
    out = subprocess.run(
        ["go", "mod", "download", "-json", f"{module}@{version}"],
        cwd=work,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if out.returncode != 0:
        raise InstallError(f"cannot download {module}@{version}: {out.stdout}{out.stderr}")
    info: dict[str, str] = json.loads(out.stdout)
    return info


def _kube_ldflags(version: str) -> str:
    major, minor = version.lstrip("v").split(".")[:2]
    date = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    flags = ["-s", "-w"]
    for pkg in ("k8s.io/client-go/pkg/version", "k8s.io/component-base/version"):
        flags += [
            f"-X {pkg}.gitVersion={version}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitCommit=0000000000000000000000000000000000000000",
            f"-X {pkg}.gitTreeState=clean",
            f"-X {pkg}.buildDate={date}",
        ]
    return " ".join(flags)


def _build_kubernetes(dest: Path, logfile: Path) -> None:
    work = cache_root() / "build" / f"kubernetes-{KUBERNETES_VERSION}"
    work.mkdir(parents=True, exist_ok=True)
    env = _go_env()
    if not (work / "go.mod").exists():
        (work / "go.mod").write_text("module inferfleet.dev/kubebuild\n\ngo 1.26.0\n")
    info = _go_mod_info("k8s.io/kubernetes", KUBERNETES_VERSION, work, env)
    upstream = Path(info["GoMod"]).read_text()
    go_line = re.search(r"^go (\S+)$", upstream, re.M)
    godebug = re.search(r"^godebug (.+)$", upstream, re.M)
    staging = sorted(set(re.findall(r"^\s*(k8s\.io/[\w.-]+) => \./staging/", upstream, re.M)))
    if not staging:
        raise InstallError("could not read the staging module list from k8s.io/kubernetes go.mod")
    staging_version = "v0." + KUBERNETES_VERSION.lstrip("v").split(".", 1)[1]
    lines = [
        "module inferfleet.dev/kubebuild",
        "",
        f"go {go_line.group(1) if go_line else '1.26.0'}",
        "",
    ]
    if godebug:
        lines += [f"godebug {godebug.group(1)}", ""]
    lines += [f"require k8s.io/kubernetes {KUBERNETES_VERSION}", "", "replace ("]
    lines += [f"\t{m} => {m} {staging_version}" for m in staging]
    lines += [")", ""]
    (work / "go.mod").write_text("\n".join(lines))
    tools = "".join(f'\t_ "k8s.io/kubernetes/cmd/{b}"\n' for b in KUBE_BINARIES)
    (work / "tools.go").write_text(f"//go:build tools\n\npackage tools\n\nimport (\n{tools})\n")
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [
        "go",
        "build",
        "-trimpath",
        "-tags",
        "selinux,notest,grpcnotrace",
        "-ldflags",
        _kube_ldflags(KUBERNETES_VERSION),
        "-o",
        str(dest) + "/",
        *[f"k8s.io/kubernetes/cmd/{b}" for b in KUBE_BINARIES],
    ]
    _run_logged(cmd, work, logfile, env)


def _go_install(packages: Sequence[str], dest: Path, logfile: Path, ldflags: str = "") -> None:
    env = _go_env()
    env.pop("GOFLAGS", None)
    env["GOBIN"] = str(dest)
    dest.mkdir(parents=True, exist_ok=True)
    cmd = ["go", "install", "-trimpath"]
    if ldflags:
        cmd += ["-ldflags", ldflags]
    _run_logged([*cmd, *packages], dest, logfile, env)


def _build_etcd(dest: Path, logfile: Path) -> None:
    work = cache_root() / "build" / f"etcd-{ETCD_VERSION}"
    work.mkdir(parents=True, exist_ok=True)
    (work / "go.mod").write_text(
        f"module inferfleet.dev/etcdbuild\n\ngo 1.26.0\n\nrequire go.etcd.io/etcd/server/v3 {ETCD_VERSION}\n"
    )
    (work / "tools.go").write_text(
        '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n'
    )
    dest.mkdir(parents=True, exist_ok=True)
    _run_logged(
        [
            "go",
            "build",
            "-trimpath",
            "-ldflags",
            "-s -w",
            "-o",
            str(dest / "etcd"),
            "go.etcd.io/etcd/server/v3",
        ],
        work,
        logfile,
        _go_env(),
    )


def _build_group(group: str, dest: Path, logfile: Path) -> None:
    if group == "kubernetes":
        _build_kubernetes(dest, logfile)
    elif group == "etcd":
        _build_etcd(dest, logfile)
    elif group == "kwok":
        ver = KWOK_VERSION
        _go_install(
            [f"sigs.k8s.io/kwok/cmd/kwok@{ver}", f"sigs.k8s.io/kwok/cmd/kwokctl@{ver}"],
            dest,
            logfile,
            ldflags=f"-s -w -X sigs.k8s.io/kwok/pkg/consts.Version={ver.lstrip('v')}",
        )
        kwok_stages()
    elif group == "helm":
        ver = HELM_VERSION
        _go_install(
            [f"helm.sh/helm/v4/cmd/helm@{ver}"],
            dest,
            logfile,
            ldflags=f"-s -w -X helm.sh/helm/v4/internal/version.version={ver}",
        )
    elif group == "prometheus":
        from inferfleet_dev import prometheus  # apt-get download + dpkg -x: see that module

        prometheus.download(dest, logfile)
    else:  # pragma: no cover - TOOLS is closed
        raise InstallError(f"unknown tool group {group}")


def ensure(name: str) -> Path:
    """Return the path of a verified binary, building it into the cache if needed."""
    tool = TOOLS[name]
    user = _user_asset(tool)
    if user is not None:
        return user
    dest = _bin_dir(tool)
    path = dest / tool.name
    if _verified(path, tool):
        return path
    with _build_lock(tool):  # another process (a parallel run) may be building it: wait, then look again
        if _verified(path, tool):
            return path
        return _build(tool, dest, path)


@contextlib.contextmanager
def _build_lock(tool: Tool) -> Iterator[None]:
    """An exclusive lock per (group, version) in the cache, held while building."""
    locks = cache_root() / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    with (locks / f"{tool.group}-{tool.version}.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build(tool: Tool, dest: Path, path: Path) -> Path:
    logfile = cache_root() / "logs" / f"{tool.group}-{tool.version}.log"
    log(f"building {tool.group} {tool.version} (log: {logfile}) ...")
    start = time.monotonic()
    _build_group(tool.group, dest, logfile)
    log(f"built {tool.group} {tool.version} in {time.monotonic() - start:.0f}s")
    if not _verified(path, tool):
        raise InstallError(
            f"{tool.name}: built, but '{path} --version' does not report {tool.version}: "
            f"{_version_of(path, tool)[:300]!r}; log kept at {logfile}"
        )
    return path


def ensure_all(names: Sequence[str] | None = None) -> dict[str, Path]:
    """Ensure every named tool (default: all); returns name -> absolute path."""
    start = time.monotonic()
    paths: dict[str, Path] = {}
    for name in names or list(TOOLS):
        t0 = time.monotonic()
        paths[name] = ensure(name)
        log(f"{name:24s} {TOOLS[name].version:8s} ok ({time.monotonic() - t0:.1f}s) {paths[name]}")
    log(f"all binaries ready in {time.monotonic() - start:.1f}s; cache {cache_root()}")
    return paths


def ensure_binaries(names: Sequence[str] = CLUSTER_TOOLS, quiet: bool = False) -> dict[str, Path]:
    """Ensure what a dev cluster needs; cheap (one ``--version`` per binary) when cached."""
    if quiet and all(_verified(tool_path(n), TOOLS[n]) or _user_asset_exists(n) for n in names):
        return {n: tool_path(n) for n in names}
    return ensure_all(names)


def _user_asset_exists(name: str) -> bool:
    assets = os.environ.get("INFERFLEET_ASSETS")
    return bool(assets) and (Path(str(assets)) / name).is_file()


def kwok_stages() -> Path:
    """A kwok ``--config`` file with the default fast node/pod stages and the node-not-ready stage.

    Taken from ``$INFERFLEET_ASSETS/kwok-stages.yaml`` if present, else assembled once from the
    kwok module (``go mod download``) and cached next to the kwok binary.
    """
    assets = os.environ.get("INFERFLEET_ASSETS")
    if assets and (Path(assets) / "kwok-stages.yaml").is_file():
        return Path(assets) / "kwok-stages.yaml"
    target = _bin_dir(TOOLS["kwok"]) / "kwok-stages.yaml"
    if target.is_file():
        return target
    work = cache_root() / "build"
    work.mkdir(parents=True, exist_ok=True)
    env = _go_env()
    env.pop("GOFLAGS", None)
    if shutil.which("go") is None:
        raise InstallError(
            "kwok stage definitions are missing and 'go' is not on PATH to fetch them; "
            "put kwok-stages.yaml in $INFERFLEET_ASSETS"
        )
    info = _go_mod_info("sigs.k8s.io/kwok", KWOK_VERSION, work, env)
    stage_dir = Path(info["Dir"]) / "kustomize" / "stage"
    docs = []
    for rel in KWOK_STAGE_FILES:
        try:
            docs.append(
                f"# from sigs.k8s.io/kwok@{KWOK_VERSION} kustomize/stage/{rel}\n"
                + (stage_dir / rel).read_text().strip()
                + "\n"
            )
        except OSError as exc:
            raise InstallError(f"kwok stage file missing: {stage_dir / rel}: {exc}") from None
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.write_text("---\n".join(docs))
    tmp.replace(target)
    return target


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        paths = ensure_all(args or None)
    except InstallError as exc:
        log(f"error: {exc}")
        return 1
    if shutil.which("go") is None and not paths:  # pragma: no cover
        log("go not found on PATH")
    for name, path in paths.items():
        print(f"{name}={path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
