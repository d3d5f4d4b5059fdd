"""Command lines, ports and health URLs of the dev cluster's components.

Owns: the loopback port plan (one base port, fixed offsets), and for etcd, kube-apiserver,
kube-controller-manager, kube-scheduler and kwok the exact flags they are started with and the URL
that says they are healthy.  Pure: builds lists and writes small config files, starts nothing.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import yaml

from inferfleet.api import labels
from inferfleet.api.simulatedfleet import KWOK_FAKE
from inferfleet_dev.pki import Pki

__all__ = [
    "COMPONENTS",
    "DEFAULT_PORT_BASE",
    "Component",
    "Ports",
    "control_plane",
    "health_endpoints",
    "kwok_component",
    "write_kwok_config",
]

DEFAULT_PORT_BASE = 17443  # below Linux's ephemeral range (32768+), away from 6443/8443/10250-10259
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
KWOK_ANNOTATION_SELECTOR = f"{labels.KWOK_NODE}={KWOK_FAKE}"


@dataclasses.dataclass(frozen=True)
class Ports:
    """All ports of one cluster, derived from ``base`` (the apiserver's port)."""

    base: int = DEFAULT_PORT_BASE

    @property
    def apiserver(self) -> int:
        return self.base

    @property
    def etcd_client(self) -> int:
        return self.base + 1

    @property
    def etcd_peer(self) -> int:
        return self.base + 2

    @property
    def controller_manager(self) -> int:
        return self.base + 3

    @property
    def scheduler(self) -> int:
        return self.base + 4

    @property
    def kwok(self) -> int:
        return self.base + 5

    def by_component(self, external: bool = False) -> dict[str, int]:
        if external:
            return {"kwok": self.kwok}
        return {
            "kube-apiserver": self.apiserver,
            "etcd (client)": self.etcd_client,
            "etcd (peer)": self.etcd_peer,
            "kube-controller-manager": self.controller_manager,
            "kube-scheduler": self.scheduler,
            "kwok": self.kwok,
        }


def health_endpoints(ports: Ports) -> dict[str, tuple[str, str]]:
    """Component name -> (health URL, TLS kind): "none" (plain http), "cluster" (verify with the
    cluster CA and present the admin certificate) or "self-signed" (do not verify)."""
    return {
        "etcd": (f"http://127.0.0.1:{ports.etcd_client}/health", "none"),
        "kube-apiserver": (f"https://127.0.0.1:{ports.apiserver}/readyz", "cluster"),
        "kube-controller-manager": (f"https://127.0.0.1:{ports.controller_manager}/healthz", "self-signed"),
        "kube-scheduler": (f"https://127.0.0.1:{ports.scheduler}/healthz", "self-signed"),
        "kwok": (f"http://127.0.0.1:{ports.kwok}/healthz", "none"),
    }


@dataclasses.dataclass(frozen=True)
class Component:
    name: str
    argv: list[str]


def _etcd(bins: dict[str, Path], ports: Ports, state: Path) -> Component:
    client = f"http://127.0.0.1:{ports.etcd_client}"
    peer = f"http://127.0.0.1:{ports.etcd_peer}"
    argv = [
        str(bins["etcd"]),
        "--name=node0",
        f"--data-dir={state / 'etcd-data'}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=node0={peer}",
        "--initial-cluster-state=new",
        "--unsafe-no-fsync=true",
        "--auto-compaction-retention=1",
        "--quota-backend-bytes=4294967296",
        "--log-level=warn",
    ]
    return Component("etcd", argv)


def _apiserver(bins: dict[str, Path], ports: Ports, pki: Pki) -> Component:
    argv = [
        str(bins["kube-apiserver"]),
        f"--etcd-servers=http://127.0.0.1:{ports.etcd_client}",
        "--bind-address=127.0.0.1",
        f"--secure-port={ports.apiserver}",
        f"--tls-cert-file={pki.server_cert}",
        f"--tls-private-key-file={pki.server_key}",
        f"--client-ca-file={pki.ca_cert}",
        # front-proxy settings: aggregated APIs (metrics adapters) work, components stop complaining
        f"--requestheader-client-ca-file={pki.ca_cert}",
        "--requestheader-allowed-names=inferfleet-admin",
        "--requestheader-username-headers=X-Remote-User",
        "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        f"--proxy-client-cert-file={pki.admin_cert}",
        f"--proxy-client-key-file={pki.admin_key}",
        f"--service-account-key-file={pki.sa_pub}",
        f"--service-account-signing-key-file={pki.sa_key}",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        "--service-cluster-ip-range=10.96.0.0/16",
        "--authorization-mode=Node,RBAC",
        "--allow-privileged=true",
        "--enable-priority-and-fairness=false",
        "--max-requests-inflight=0",
        "--max-mutating-requests-inflight=0",
        "--profiling=false",
        "--endpoint-reconciler-type=none",
    ]
    return Component("kube-apiserver", argv)


def _controller_manager(bins: dict[str, Path], ports: Ports, pki: Pki, kubeconfig: Path) -> Component:
    argv = [
        str(bins["kube-controller-manager"]),
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics",
        "--bind-address=127.0.0.1",
        f"--secure-port={ports.controller_manager}",
        "--leader-elect=false",
        f"--root-ca-file={pki.ca_cert}",
        f"--service-account-private-key-file={pki.sa_key}",
        "--kube-api-qps=1000",
        "--kube-api-burst=2000",
        "--concurrent-deployment-syncs=10",
        "--concurrent-replicaset-syncs=10",
    ]
    return Component("kube-controller-manager", argv)


def _scheduler(bins: dict[str, Path], ports: Ports, kubeconfig: Path, state: Path) -> Component:
    config = state / "kube-scheduler.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kubescheduler.config.k8s.io/v1",
                "kind": "KubeSchedulerConfiguration",
                "clientConnection": {"kubeconfig": str(kubeconfig), "qps": 1000, "burst": 2000},
                "leaderElection": {"leaderElect": False},
            }
        )
    )
    argv = [
        str(bins["kube-scheduler"]),
        f"--config={config}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics",
        "--bind-address=127.0.0.1",
        f"--secure-port={ports.scheduler}",
    ]
    return Component("kube-scheduler", argv)


def write_kwok_config(path: Path, stages: Path) -> Path:
    """kwok's ``--config``: more parallel workers than the default 4 (190 nodes Ready in ~2 s
    instead of ~7 s), then the stage definitions."""
    options = yaml.safe_dump(
        {
            "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
            "kind": "KwokConfiguration",
            "options": {
                "nodePlayStageParallelism": 16,
                "podPlayStageParallelism": 16,
                "nodeLeaseParallelism": 16,
            },
        }
    )
    path.write_text(options + "---\n" + stages.read_text())
    return path


def kwok_component(kwok: Path, stages: Path, ports: Ports, kubeconfig: Path) -> Component:
    """kwok managing only nodes annotated ``kwok.x-k8s.io/node=fake`` (safe on a real cluster)."""
    argv = [
        str(kwok),
        f"--kubeconfig={kubeconfig}",
        f"--config={stages}",
        "--manage-all-nodes=false",
        f"--manage-nodes-with-annotation-selector={KWOK_ANNOTATION_SELECTOR}",
        "--node-lease-duration-seconds=40",
        "--cidr=10.0.0.0/16",
        "--node-ip=10.255.0.1",
        f"--server-address=127.0.0.1:{ports.kwok}",
    ]
    return Component("kwok", argv)


def control_plane(
    bins: dict[str, Path], ports: Ports, pki: Pki, kubeconfig: Path, *, state: Path, stages: Path
) -> list[Component]:
    """The five components of a local cluster, in start order."""
    return [
        _etcd(bins, ports, state),
        _apiserver(bins, ports, pki),
        _controller_manager(bins, ports, pki, kubeconfig),
        _scheduler(bins, ports, kubeconfig, state),
        kwok_component(bins["kwok"], stages, ports, kubeconfig),
    ]
