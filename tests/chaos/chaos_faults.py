"""Faults the chaos suite and the soak inject into the local control plane.

Owns ``ApiServer`` (the cluster's kube-apiserver process as ``inferfleet_dev`` recorded it in the
cluster's state.json: SIGSTOP/SIGCONT it, or restart it with the same command line and record the
new process, so ``dev-cluster status|down`` still know it) and ``not_ready`` (nodes made NotReady
through kwok's ``node-not-ready`` chaos stage, which inferfleet_dev installs: label the node, kwok
writes Ready=False within ~1-2 s and keeps the lease alive, so the node-lifecycle controller agrees;
removing the label lets kwok's node-initialize stage make it Ready again at once; the
``node.kubernetes.io/not-ready`` taints go once the controller sees it Ready).

Why the label (measured here): NotReady within 1.1 s, Ready and untainted again 0.2 s after the
label goes; a status patch of Ready=False is undone at once (kwok's node-initialize stage selects
every node that is not Ready).

And ``Kubelets``, a stand-in for what kwok does not do: when a node is NotReady (by the label, or
Unknown after the API server was frozen for longer than the controller-manager's 50 s node-monitor
grace period), the node-lifecycle controller marks its pods NotReady; a real kubelet reports them
Ready again once its node is back, kwok never does (its pod-ready stage only acts on Pending pods),
so without the stand-in those replicas would stay NotReady for good.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import ssl
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from chaos_power import OURS, node_ready

from inferfleet_dev import procs
from inferfleet_dev.cluster import Cluster
from inferfleet_dev.components import health_endpoints

__all__ = [
    "NOT_READY_LABEL",
    "ApiServer",
    "Kubelets",
    "not_ready",
    "report_ready",
    "set_not_ready",
    "wait_nodes",
]

NOT_READY_LABEL = "node-not-ready.stage.kwok.x-k8s.io"
NOT_READY_TAINT = "node.kubernetes.io/not-ready"
APISERVER = "kube-apiserver"


class ApiServer:
    """The cluster's kube-apiserver process."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.state_file = cluster.state_dir / "state.json"

    def info(self) -> procs.ProcInfo:
        state = json.loads(self.state_file.read_text())
        for raw in state.get("processes", []):
            info = procs.ProcInfo.from_json(raw)
            if info.name == APISERVER:
                if not procs.alive(info):
                    raise RuntimeError(
                        f"{APISERVER} pid {info.pid} recorded in {self.state_file} is not running"
                    )
                return info
        raise RuntimeError(f"no {APISERVER} recorded in {self.state_file}")

    @property
    def pid(self) -> int:
        return self.info().pid

    def freeze(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """SIGSTOP for the block; SIGCONT however it ends."""
        pid = self.pid
        os.kill(pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(pid, signal.SIGCONT)

    def healthy(self) -> bool:
        url, _tls = health_endpoints(self.cluster.ports)[APISERVER]
        return procs.probe(url, self._tls())[0]

    def _tls(self) -> ssl.SSLContext:
        pki = self.cluster.state_dir / "pki"
        ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
        return ctx

    def restart(self, timeout: float = 60.0) -> float:
        """SIGTERM (as a rolling restart does; SIGKILL after 5 s, since a graceful stop waits up to
        60 s for in-flight requests here), start the same command line again, wait until /readyz
        answers; the seconds from the stop to ready."""
        old = self.info()
        argv = Path(f"/proc/{old.pid}/cmdline").read_bytes().decode().split("\0")[:-1]
        start = time.monotonic()
        procs.stop(old, timeout=5)
        procs.wait_ports_free({APISERVER: self.cluster.ports.apiserver}, timeout=20)
        new = procs.spawn(APISERVER, argv, Path(old.log))
        self._record(new)
        url, _tls = health_endpoints(self.cluster.ports)[APISERVER]
        procs.wait_healthy(new, url, self._tls(), timeout)
        return time.monotonic() - start

    def _record(self, new: procs.ProcInfo) -> None:
        state = json.loads(self.state_file.read_text())
        state["processes"] = [
            new.to_json() if raw.get("name") == APISERVER else raw for raw in state.get("processes", [])
        ]
        tmp = self.state_file.with_suffix(".chaos.tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.state_file)


def _taints(node: Any) -> set[str]:
    return {t["key"] for t in (node.get("spec") or {}).get("taints") or []}


def _nodes(core: Any, names: Sequence[str]) -> list[dict[str, Any]]:
    listed = json.loads(core.list_node(_preload_content=False, _request_timeout=10).data)["items"]
    wanted = set(names)
    return [n for n in listed if n["metadata"]["name"] in wanted]


def wait_nodes(core: Any, names: Sequence[str], *, ready: bool, timeout: float = 60.0) -> float:
    """Wait until every node of ``names`` is Ready (and untainted) or NotReady; the seconds it took."""
    start = time.monotonic()
    while True:
        nodes = _nodes(core, names)
        if ready:
            done = all(node_ready(n) and NOT_READY_TAINT not in _taints(n) for n in nodes)
        else:
            done = not any(node_ready(n) for n in nodes)
        if done and len(nodes) == len(names):
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            state = {n["metadata"]["name"]: (node_ready(n), sorted(_taints(n))) for n in nodes}
            raise TimeoutError(f"nodes not {'Ready' if ready else 'NotReady'} after {timeout:.0f}s: {state}")
        time.sleep(0.2)


def set_not_ready(core: Any, names: Sequence[str], on: bool) -> None:
    patch = {"metadata": {"labels": {NOT_READY_LABEL: "true" if on else None}}}
    for name in names:
        core.patch_node(name, patch)


@contextlib.contextmanager
def not_ready(core: Any, names: Sequence[str], timeout: float = 60.0) -> Iterator[float]:
    """``names`` NotReady for the block (yields the seconds kwok took); Ready again afterwards."""
    try:
        set_not_ready(core, names, True)
        yield wait_nodes(core, names, ready=False, timeout=timeout)
    finally:
        set_not_ready(core, names, False)
        wait_nodes(core, names, ready=True, timeout=timeout)


def report_ready(core: Any) -> int:
    """Pods of ours Running on a Ready node, not terminating, but Ready=False (the node-lifecycle
    controller's mark while their node was NotReady): reported Ready again, as their kubelet would.
    Returns how many."""
    nodes = json.loads(core.list_node(_preload_content=False, _request_timeout=10).data)["items"]
    ready = {n["metadata"]["name"] for n in nodes if node_ready(n)}
    pods = json.loads(
        core.list_pod_for_all_namespaces(
            label_selector=OURS, _preload_content=False, _request_timeout=10
        ).data
    )["items"]
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    revived = 0
    for pod in pods:
        meta, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
        conds = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
        if (
            meta.get("deletionTimestamp")
            or status.get("phase") != "Running"
            or spec.get("nodeName") not in ready
            or conds.get("Ready") != "False"
        ):
            continue
        body = {
            "status": {
                "conditions": [
                    {"type": t, "status": "True", "lastTransitionTime": now}
                    for t in ("Ready", "ContainersReady")
                ]
            }
        }
        with contextlib.suppress(Exception):  # gone meanwhile: nothing to report
            core.patch_namespaced_pod_status(meta["name"], meta["namespace"], body)
            revived += 1
    return revived


class Kubelets:
    """``report_ready`` every ``period_s`` in a thread while the block runs (errors, e.g. while the
    API server is frozen, are retried next period); ``revived`` counts the pods reported."""

    def __init__(self, api_client: Any, period_s: float = 1.0) -> None:
        self._api_client = api_client
        self.period_s = period_s
        self.revived = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kubelets", daemon=True)

    def _run(self) -> None:
        from kubernetes import client

        with self._api_client() as api:
            core = client.CoreV1Api(api)
            while not self._stop.wait(self.period_s):
                with contextlib.suppress(Exception):
                    self.revived += report_ready(core)

    def __enter__(self) -> Kubelets:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(20)
