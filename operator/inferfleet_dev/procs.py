"""Background processes of the local control plane: spawn, health-wait, stop, and port checks.

Owns: starting a component detached in its own session (so ``down`` can kill its whole process
group and the CLI may exit while it runs), telling whether a recorded pid is still that component
(not a reused pid, not a zombie), waiting for a health URL with a timeout whose error carries the
component's log tail, and finding who holds a port.  Stdlib only.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import signal
import socket
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "ComponentError",
    "ProcInfo",
    "alive",
    "free_port_problems",
    "log_tail",
    "port_in_use",
    "spawn",
    "stop",
    "wait_healthy",
    "wait_ports_free",
    "who_listens",
]


class ComponentError(RuntimeError):
    """A component failed to start or become healthy; the message includes its log tail."""


@dataclasses.dataclass(frozen=True)
class ProcInfo:
    """A spawned component as recorded in the cluster state file."""

    name: str
    pid: int
    start_ticks: int  # /proc/<pid>/stat field 22: distinguishes a reused pid
    exe: str
    log: str

    def to_json(self) -> dict[str, object]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, object]) -> ProcInfo:
        return cls(
            name=str(raw["name"]),
            pid=int(str(raw["pid"])),
            start_ticks=int(str(raw["start_ticks"])),
            exe=str(raw["exe"]),
            log=str(raw["log"]),
        )


def _stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks) of a pid, or None if it does not exist."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw.rsplit(")", 1)[1].split()
    return fields[0], int(fields[19])


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def alive(info: ProcInfo) -> bool:
    """True if the recorded process is still running (same start time, not a zombie)."""
    _reap(info.pid)
    st = _stat(info.pid)
    return st is not None and st[0] not in ("Z", "X") and st[1] == info.start_ticks


def log_tail(path: Path | str, lines: int = 30) -> str:
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join("    " + line for line in text.splitlines()[-lines:])


def spawn(name: str, argv: Sequence[str], log: Path, env: dict[str, str] | None = None) -> ProcInfo:
    """Start ``argv`` detached (new session, stdin /dev/null, output appended to ``log``)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as fh:
        fh.write(f"\n==== {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(argv)}\n")
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, str(log), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    try:
        pid = os.posix_spawn(
            argv[0],
            list(argv),
            env if env is not None else dict(os.environ),
            file_actions=actions,
            setsid=True,
        )
    except OSError as exc:
        raise ComponentError(f"{name}: cannot start {argv[0]}: {exc}") from None
    st = _stat(pid)
    return ProcInfo(name=name, pid=pid, start_ticks=st[1] if st else 0, exe=argv[0], log=str(log))


def stop(info: ProcInfo, timeout: float = 10.0) -> None:
    """Terminate the component's process group (SIGTERM, then SIGKILL after ``timeout``)."""
    if not alive(info):
        return
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(info.pid, sig)
        except ProcessLookupError:
            return
        except PermissionError:
            os.kill(info.pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not alive(info):
                return
            time.sleep(0.05)
    if alive(info):
        raise ComponentError(f"{info.name} (pid {info.pid}) survived SIGKILL")


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            return exc.errno in (errno.EADDRINUSE, errno.EACCES)
    return False


def _listening_inodes(port: int) -> set[str]:
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if len(cols) > 9 and cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(cols[9])
    return inodes


def who_listens(port: int) -> str:
    """'pid N (command line)' of the process listening on ``port``, or '' if unknown."""
    inodes = _listening_inodes(port)
    if not inodes:
        return ""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                link = os.readlink(fd)
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                    return f"pid {proc.name} ({' '.join(cmd.split())[:120]})"
        except OSError:
            continue
    return ""


def free_port_problems(ports: dict[str, int]) -> list[str]:
    """One line per port already taken: which component wanted it and who holds it."""
    problems = []
    for component, port in ports.items():
        if port_in_use(port):
            holder = who_listens(port) or "another process"
            problems.append(f"port {port} (for {component}) on 127.0.0.1 is in use by {holder}")
    return problems


def wait_ports_free(ports: dict[str, int], timeout: float = 10.0) -> list[str]:
    """Poll until no port is taken (an exiting process may hold its sockets a moment longer)."""
    deadline = time.monotonic() + timeout
    while True:
        problems = free_port_problems(ports)
        if not problems or time.monotonic() > deadline:
            return problems
        time.sleep(0.1)


def probe(url: str, context: ssl.SSLContext | None, timeout: float = 2.0) -> tuple[bool, str]:
    """GET ``url``; (True, body) on HTTP 200."""
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as resp:
            body = resp.read(2000).decode(errors="replace")
            return resp.status == 200, body
    except urllib.error.HTTPError as exc:
        return False, f"HTTP {exc.code}: {exc.read(2000).decode(errors='replace')}"
    except (urllib.error.URLError, OSError, ssl.SSLError) as exc:
        return False, str(exc)


def wait_healthy(info: ProcInfo, url: str, context: ssl.SSLContext | None, timeout: float) -> float:
    """Poll ``url`` until 200; fail fast if the process dies.  Returns the seconds waited."""
    start = time.monotonic()
    last = ""
    while True:
        ok, last = probe(url, context)
        if ok:
            return time.monotonic() - start
        if not alive(info):
            raise ComponentError(f"{info.name} exited while starting (log {info.log}):\n{log_tail(info.log)}")
        if time.monotonic() - start > timeout:
            raise ComponentError(
                f"{info.name} not healthy after {timeout:.0f}s at {url} (last answer: {last[:300]}); "
                f"log {info.log}:\n{log_tail(info.log)}"
            )
        time.sleep(0.1)
