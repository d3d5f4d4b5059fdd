"""``inferfleet run --context``: the context chosen is the one both kopf's login and the operator's client
load (each reads the kubeconfig through the client library with no context argument), and a context
that is not there, or no kubeconfig at all, is one line on stderr and exit 2 before anything starts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s
from kubernetes.config import kube_config

from inferfleet.cli.run import with_context
from inferfleet.kube.client import make_api_client

ROOT = Path(__file__).resolve().parents[3]


def _kubeconfig(tmp_path: Path, current: str = "alpha") -> Path:
    doc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": current,
        "clusters": [
            {"name": n, "cluster": {"server": f"https://{n}.example:{port}"}}
            for n, port in (("alpha", 6443), ("beta", 7443))
        ],
        "users": [{"name": "me", "user": {"token": "t0ken"}}],
        "contexts": [{"name": n, "context": {"cluster": n, "user": "me"}} for n in ("alpha", "beta")],
    }
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(doc))
    return path


def _loaded_host(config_file: str) -> str:
    """The server the client library picks with no context argument (what kopf's login does)."""
    cfg = k8s.Configuration()
    kube_config.load_kube_config(config_file=config_file, client_configuration=cfg, persist_config=False)
    return str(cfg.host)


@pytest.mark.parametrize(
    ("current", "chosen", "server"),
    [
        ("alpha", "beta", "https://beta.example:7443"),
        ("beta", "alpha", "https://alpha.example:6443"),
        ("alpha", "alpha", "https://alpha.example:6443"),
    ],
    ids=["a-non-current-context-wins", "either-way-round", "the-current-context-named-again"],
)
def test_the_chosen_context_is_what_the_library_loads(
    tmp_path: Path, current: str, chosen: str, server: str
) -> None:
    path = with_context(str(_kubeconfig(tmp_path, current)), chosen)
    assert _loaded_host(path) == server
    api = make_api_client(path)
    try:
        assert api.configuration.host == server
    finally:
        api.close()


def test_kubeconfig_from_the_environment_is_used_when_no_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(_kubeconfig(tmp_path)))
    assert _loaded_host(with_context(None, "beta")) == "https://beta.example:7443"


def _run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "inferfleet", "run", *argv],
        cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT / "operator")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_an_unknown_context_exits_2_naming_it_and_the_known_ones(tmp_path: Path) -> None:
    config = _kubeconfig(tmp_path)
    proc = _run(["--kubeconfig", str(config), "--context", "gamma"], dict(os.environ))
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    (line,) = proc.stderr.splitlines()
    assert line == f"error: --context gamma: no such context in {config} (it has: alpha, beta)"


def test_a_context_without_any_kubeconfig_exits_2(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST")}
    proc = _run(["--context", "beta"], {**env, "HOME": str(tmp_path)})
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.splitlines()
    assert line.startswith("error: --context beta: no kubeconfig to find it in"), line


def test_an_unreadable_kubeconfig_exits_2_naming_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    proc = _run(["--kubeconfig", str(missing), "--context", "beta"], dict(os.environ))
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.splitlines()
    assert line.startswith(f"error: kubeconfig {missing}: "), line
