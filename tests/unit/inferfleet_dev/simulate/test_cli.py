"""``python -m inferfleet_dev simulate``: bad input is one line on stderr and exit 2, never a
traceback; set-load, fault and state work against a running simulator."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from inferfleet.core.types import AcceleratorClass, Pool
from inferfleet_dev.simulate import cli
from inferfleet_dev.simulate.server import SimServer
from inferfleet_dev.simulate.sim import Pod, Simulation

ROOT = Path(__file__).resolve().parents[4]


def simulate(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "operator")}
    return subprocess.run(
        [sys.executable, "-m", "inferfleet_dev", "simulate", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def url(pools: dict[str, Pool], classes: dict[str, AcceleratorClass]) -> Iterator[str]:
    sim = Simulation()
    sim.sync(pools, classes, [Pod("chat", "a", "chat-70b", "h100", 0.0)])
    server = SimServer(sim, lambda: 1.0, port=0).start()
    yield server.url
    server.stop()


def one_line_error(proc: subprocess.CompletedProcess[str], message: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("inferfleet simulate: error: "), proc.stderr
    assert message in lines[0]
    assert "Traceback" not in proc.stderr


def in_process(capsys: pytest.CaptureFixture[str], *args: str) -> subprocess.CompletedProcess[str]:
    """The same command line in this process (cheaper than a subprocess for the parsing cases)."""
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(required=True))
    ns = parser.parse_args(["simulate", *args])
    rc = ns.func(ns)
    out = capsys.readouterr()
    return subprocess.CompletedProcess(args, rc, out.out, out.err)


def test_bad_input_is_one_line_and_exit_2_in_a_subprocess(url: str, tmp_path: Path) -> None:
    one_line_error(
        simulate("set-load", "chat-70b=3", "--url", url), "expected NAMESPACE/POOL=RPS, got 'chat-70b=3'"
    )
    one_line_error(simulate("set-load", "chat/nope=3", "--url", url), "unknown pool 'chat/nope'")
    one_line_error(simulate("state", "--url", "http://127.0.0.1:1"), "cannot reach the simulator at")
    one_line_error(simulate("run", "--kubeconfig", str(tmp_path / "none")), "no kubeconfig at")


def test_more_bad_input(url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return in_process(capsys, *args)

    one_line_error(run("set-load", "chat/chat-70b=lots", "--url", url), "with a number")
    one_line_error(run("set-load", "chat/chat-70b=-2", "--url", url), "finite number >= 0")
    one_line_error(run("set-load", "chat/=2", "--url", url), "expected NAMESPACE/POOL=RPS")
    one_line_error(run("fault", "slow-class", "--url", url), "slow-class needs --class and --factor")
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    one_line_error(
        run("run", "--kubeconfig", str(kubeconfig), "--rps", "nope"), "expected NAMESPACE/POOL=RPS"
    )
    one_line_error(
        run("run", "--kubeconfig", str(kubeconfig), "--startup-seconds", "h100=soon"), "--startup-seconds"
    )
    one_line_error(run("run", "--kubeconfig", str(kubeconfig), "--speed", "h100=0"), "factors must be > 0")
    one_line_error(
        run("run", "--kubeconfig", str(kubeconfig), "--max-num-seqs", "lots"),
        "expected a number or 'planner'",
    )
    profile = tmp_path / "profile.yaml"
    profile.write_text("pools: {chat/chat-70b: {kind: wave}}\n")
    one_line_error(run("run", "--kubeconfig", str(kubeconfig), "--profile", str(profile)), "unknown profile")
    profile.write_text("pools: [1, 2]\n")
    one_line_error(
        run("run", "--kubeconfig", str(kubeconfig), "--profile", str(profile)), "expected a mapping"
    )


def test_set_load_fault_and_state_against_a_simulator(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    proc = simulate("set-load", "chat/chat-70b=7.5", "--url", url)
    assert proc.returncode == 0 and proc.stdout == "chat/chat-70b: 7.5 req/s\n"
    proc = in_process(capsys, "fault", "slow-class", "--class", "h100", "--factor", "2", "--url", url)
    assert proc.returncode == 0 and '"slow": {"h100": 2.0}' in proc.stdout
    proc = in_process(capsys, "state", "--url", url)
    assert proc.returncode == 0 and '"offeredRps": 7.5' in proc.stdout


def test_a_port_in_use_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: k, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: c, context: {cluster: k, user: u}}]\n"
    )
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = in_process(capsys, "run", "--kubeconfig", str(kubeconfig), "--port", str(port))
    one_line_error(proc, f"cannot listen on 127.0.0.1:{port}")
