"""Soak benchmark: the operator for 30 minutes (default) on the real local control plane under
autoscaled load, with the chaos suite's faults injected one after another.

Prints (never asserts): unhandled exceptions in the operator's log (tracebacks, by type), the time
from the last fault to the fleet matching the plan again, the operator's RSS at start and end and
its slope (MB/hour, least squares within each operator process), the budget invariant checked on
every pod and node change (samples, violations, max overshoot in W), and what each fault did.

Setup: a dev cluster (``--cluster``, default ``soak``), the examples (classes, FleetPolicy with its
binding budgets and 5 s rounds, the four pools, autoscaled: spec demand a tenth of the example's as
the floor), the fleet simulator offering the example loads (embeddings a tenth: CPU) stepped every
``--load-every`` seconds to 0.5-1.5x, a real Prometheus scraping it every 2 s, the operator
(``--prometheus-url``) reaching the API server through the chaos suite's freezable TCP proxy.

Faults (tests/chaos): ``kill`` (SIGKILL, restarted 1 s later), ``freeze`` (SIGSTOP the API server
for ``--freeze-seconds``; every other one 55 s, long enough for nodes to read NotReady after it),
``restart`` (the API server), ``proxy`` (the operator's socket frozen past its liveness bound),
``class`` (every node of the class with the most replicas NotReady past the grace period), ``policy``
(FleetPolicy deleted for 20 s, then restored) and ``budget`` (hall-b 30 <-> 24 kW); one every
``--fault-every`` seconds, each fault once per round in a seeded order, none in the last
``--quiet-minutes`` (the load back to nominal there: convergence is measured from its start).

    ./scripts/bench soak                      # 30 minutes
    ./scripts/bench soak --minutes 5 --fault-every 30 --cluster helper --port-base 30000 --keep
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import random
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for extra in (ROOT / "benchmarks", ROOT / "tests" / "integration", ROOT / "tests" / "chaos"):
    sys.path.insert(0, str(extra))

from chaos_faults import ApiServer, Kubelets, set_not_ready, wait_nodes  # noqa: E402
from chaos_fleet import audit, chaos_policy, churn, divergence, set_policy_spec, uids  # noqa: E402
from chaos_power import Budgets, Invariant, LivePower, budgets_of, class_power  # noqa: E402
from operator_proc import OperatorProcess, free_port  # noqa: E402
from test_health import FreezableProxy, health, proxied_kubeconfig  # noqa: E402
from test_operator import CLASS_LABEL, GROUP, Kube, _apply, examples  # noqa: E402

from inferfleet_dev import demo, prometheus  # noqa: E402
from inferfleet_dev.cluster import Cluster, default_fleet_file  # noqa: E402
from soak.figures import RssSample, loads, per_process, rss_slope, schedule, tracebacks  # noqa: E402

FAULTS = ("kill", "freeze", "restart", "proxy", "class", "policy", "budget")
GRACE_S, STABILIZATION_S = 10, 20  # planning.nodeNotReadyGraceSeconds / nodeReturnStabilizationSeconds
API_BOUND_S, PROBE_S = 8, 1  # --api-unreachable-seconds, --api-probe-seconds
AUTOSCALING = {"scaleDownStabilizationSeconds": 60, "tolerancePercent": 10}
TRANSITION_S = 60.0  # after a budget change both budgets are allowed this long


def say(msg: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---- the load ------------------------------------------------------------------------------------
class Simulator:
    """``inferfleet simulate run`` on a free loopback port."""

    def __init__(self, cluster: Cluster, log: Path, loads_now: dict[str, float], seed: int) -> None:
        import subprocess

        self.port = free_port()
        argv = [
            sys.executable, "-m", "inferfleet_dev", "simulate", "run", f"--kubeconfig={cluster.kubeconfig}",
            f"--port={self.port}", "--startup-seconds=default=5", "--poll-seconds=0.5", f"--seed={seed}",
            *(f"--rps={k}={v:g}" for k, v in sorted(loads_now.items())),
        ]  # fmt: skip
        env = {**cluster.env(), "PYTHONPATH": str(ROOT / "operator")}
        self._log = log.open("ab")
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        deadline = time.monotonic() + 30
        while True:
            try:
                self.state()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the simulator did not start; log {log}") from None
                time.sleep(0.2)

    def state(self) -> dict[str, Any]:
        url = f"http://127.0.0.1:{self.port}/control/state?window=30"
        with urllib.request.urlopen(url, timeout=5) as rsp:
            doc: dict[str, Any] = json.loads(rsp.read())
            return doc

    def set_load(self, pool: str, rps: float) -> None:
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/control/load",
            data=json.dumps({"pool": pool, "rps": rps}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10):
            pass

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except Exception:
            self.proc.kill()
        self._log.close()


def _autoscaled_pools() -> tuple[list[dict[str, Any]], dict[str, float]]:
    """The example pools, autoscaled with a tenth of their demand as the floor; the loads to offer."""
    pools, nominal = [], {}
    for example in examples("InferencePool"):
        pool = copy.deepcopy(example)
        demand = pool["spec"]["demand"]
        rps = float(demand["requestsPerSecond"])
        offered = rps / 10 if rps > 500 else rps  # thousands of tiny requests a second cost CPU
        demand["requestsPerSecond"] = max(1, round(offered / 10))
        demand["autoscaling"] = AUTOSCALING
        pools.append(pool)
        nominal[f"{pool['metadata']['namespace']}/{pool['metadata']['name']}"] = offered
    return pools, nominal


# ---- the run ---------------------------------------------------------------------------------------
class Soak:
    def __init__(self, args: argparse.Namespace, cluster: Cluster, logs: Path) -> None:
        self.args = args
        self.cluster = cluster
        self.logs = logs
        self.rng = random.Random(args.seed)
        self.t0 = time.monotonic()
        self.rss: list[RssSample] = []
        self.done: list[str] = []  # what each fault did
        self.health_failures = 0
        self.starts: dict[int, float] = {}  # operator pid -> when it started (elapsed s)
        self.replaced: list[str] = []  # Deployments of live pools deleted and created again
        self._stop = threading.Event()

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    # -- background: RSS and /healthz every 10 s, the load steps ------------------------------
    def sample_rss(self, op: OperatorProcess) -> None:
        while not self._stop.wait(10.0):
            pid = op.proc.pid if op.proc is not None and op.alive else None
            if pid is None:
                continue
            with contextlib.suppress(OSError, ValueError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        mb = int(line.split()[1]) / 1024
                        self.rss.append(RssSample(self.elapsed(), pid, mb, self.starts.get(pid, 0.0)))
            if health(op, "/healthz")[0] == 500:
                self.health_failures += 1

    def step_load(self, sim: Simulator, steps: list[tuple[float, dict[str, float]]]) -> None:
        for at, rates in steps[1:]:
            if self._stop.wait(max(0.0, at - self.elapsed())):
                return
            for pool, rps in rates.items():
                with contextlib.suppress(OSError):
                    sim.set_load(pool, rps)

    # -- faults ---------------------------------------------------------------------------------
    def start(self, op: OperatorProcess) -> None:
        op.start(timeout=60)
        assert op.proc is not None
        self.starts[op.proc.pid] = self.elapsed()

    def fault(
        self, name: str, op: OperatorProcess, proxy: FreezableProxy, kube: Kube, live: LivePower
    ) -> str:
        a = self.args
        if name == "kill":
            op.kill()
            time.sleep(1.0)
            self.start(op)
            return "operator SIGKILLed, restarted"
        if name == "freeze":
            seconds = a.freeze_seconds if self.done.count("freeze") % 2 == 0 else 55.0
            with ApiServer(self.cluster).frozen():
                time.sleep(seconds)
            return f"API server frozen {seconds:.0f}s"
        if name == "restart":
            return f"API server restarted (down {ApiServer(self.cluster).restart():.1f}s)"
        if name == "proxy":
            proxy.freeze()
            try:
                time.sleep(API_BOUND_S + 4)
            finally:
                proxy.thaw()
            return f"operator's API socket frozen {API_BOUND_S + 4}s"
        if name == "class":
            deps = kube.deployments()
            per_class: dict[str, int] = {}
            for d in deps:
                cls = d.metadata.labels.get(CLASS_LABEL, "")
                per_class[cls] = per_class.get(cls, 0) + (d.spec.replicas or 0)
            cls = max(per_class, key=lambda c: per_class[c]) if per_class else "h100"
            nodes = [n.metadata.name for n in kube.nodes_of(cls)]
            try:
                set_not_ready(kube.core, nodes, True)
                wait_nodes(kube.core, nodes, ready=False)
                time.sleep(GRACE_S + 10)
            finally:
                set_not_ready(kube.core, nodes, False)
            wait_nodes(kube.core, nodes, ready=True)
            return f"{cls} ({len(nodes)} nodes) NotReady {GRACE_S + 10}s"
        if name == "policy":
            spec = kube.cluster_object("fleetpolicies", "default")["spec"]
            self.cluster.kubectl("delete", f"fleetpolicies.{GROUP}", "default")
            try:
                time.sleep(20)
            finally:
                set_policy_spec(kube, self.cluster, spec)
            return "FleetPolicy deleted 20s, restored"
        if name == "budget":
            spec = kube.cluster_object("fleetpolicies", "default")["spec"]
            now = budgets_of({"spec": spec})
            new = {**now, "hall-b": 24_000.0 if now.get("hall-b", 0) >= 30_000 else 30_000.0}
            live.invariant.budgets.set(time.monotonic(), new)
            spec["powerDomains"] = [{"name": d, "budgetKilowatts": w / 1000} for d, w in sorted(new.items())]
            set_policy_spec(kube, self.cluster, spec)
            return f"budget hall-b {now.get('hall-b', 0) / 1000:g} -> {new['hall-b'] / 1000:g} kW"
        raise ValueError(name)

    def converged_fleet(self, kube: Kube, namespaces: list[str]) -> str | None:
        for ns in namespaces:
            why, _read = divergence(kube, ns)
            if why is not None:
                return f"{ns}: {why}"
        return None

    def run(self) -> int:
        a, cluster = self.args, self.cluster
        total, quiet = a.minutes * 60.0, a.quiet_minutes * 60.0
        demo.install_crds(cluster)
        pools, nominal = _autoscaled_pools()
        policy = chaos_policy()
        policy["spec"]["planning"].update(
            nodeNotReadyGraceSeconds=GRACE_S,
            nodeReturnStabilizationSeconds=STABILIZATION_S,
            autoscalingIntervalSeconds=5,
        )
        namespaces = sorted({p["metadata"]["namespace"] for p in pools})
        for ns in namespaces:
            cluster.kubectl("create", "namespace", ns, check=False)
        with cluster.api_client() as api:
            kube = Kube(api)
            _apply(cluster, examples("AcceleratorClass"))
            set_policy_spec(kube, cluster, policy["spec"])
            steps = loads(total, quiet, a.load_every, nominal, a.seed)
            plan = schedule(total, quiet, a.fault_every, a.faults.split(","), a.seed)
            sim = Simulator(cluster, self.logs / "simulator.log", steps[0][1], a.seed)
            prom = prometheus.Prometheus(
                self.logs / "prometheus",
                free_port(),
                [prometheus.simulator_target(f"127.0.0.1:{sim.port}")],
                scrape_interval_s=2.0,
            )
            prom.start(timeout=60)
            proxy = FreezableProxy(("127.0.0.1", cluster.ports.apiserver))
            op = OperatorProcess(
                proxied_kubeconfig(cluster, proxy, self.logs / "kubeconfig-proxied"),
                self.logs / "operator.log",
                "soak",
                extra_args=[
                    f"--prometheus-url={prom.url}",
                    "--prometheus-window=30s",
                    f"--api-probe-seconds={PROBE_S}",
                    f"--api-unreachable-seconds={API_BOUND_S}",
                ],
            )
            headroom = float(policy["spec"].get("sloHeadroomPercent", 20))
            budgets = Budgets(TRANSITION_S)
            budgets.set(time.monotonic(), budgets_of(policy))
            live = LivePower(
                cluster.api_client, class_power(examples("AcceleratorClass"), headroom), Invariant(budgets)
            )
            threads: list[threading.Thread] = []
            try:
                with live, Kubelets(cluster.api_client) as kubelets:
                    self.t0 = time.monotonic()
                    self.start(op)
                    _apply(cluster, pools)
                    for target, args_ in ((self.sample_rss, (op,)), (self.step_load, (sim, steps))):
                        threads.append(threading.Thread(target=target, args=args_, daemon=True))
                        threads[-1].start()
                    say(
                        f"{len(pools)} autoscaled pools, loads {nominal}; {len(plan)} faults every "
                        f"{a.fault_every:g}s over {total / 60 - a.quiet_minutes:g} min, "
                        f"then {a.quiet_minutes:g} min quiet"
                    )
                    for step in plan:
                        if self._stop.wait(max(0.0, step.at - self.elapsed())):
                            break
                        began, before = time.monotonic(), uids(kube)
                        what = self.fault(step.fault, op, proxy, kube, live)
                        self.done.append(step.fault)
                        say(f"+{self.elapsed():6.0f}s {what} ({time.monotonic() - began:.0f}s)")
                        self.replaced += [f"{step.fault}: {r}" for r in churn(before, uids(kube), kube)]
                    faults_end = max(self.elapsed(), total - quiet)
                    self._stop.wait(max(0.0, total - quiet - self.elapsed()))
                    quiet_start, before_quiet = time.monotonic(), uids(kube)
                    converged_after, why = None, "not checked"
                    while time.monotonic() - quiet_start < quiet or converged_after is None:
                        why = self.converged_fleet(kube, namespaces) or ""
                        if not why and converged_after is None:
                            converged_after = time.monotonic() - quiet_start
                        if time.monotonic() - quiet_start > max(quiet, 600):
                            break
                        time.sleep(0.5)
                    self.replaced += [f"(quiet end) {r}" for r in churn(before_quiet, uids(kube), kube)]
                    end_audit = audit(kube)
                    revived = kubelets.revived
            finally:
                self._stop.set()
                for t in threads:
                    t.join(15)
                op.stop()
                proxy.close()
                prom.stop()
                sim.stop()
                for pool in pools:  # the fleet is the planner's whole world: leave none of ours behind
                    meta = pool["metadata"]
                    cluster.kubectl(
                        "delete", f"inferencepools.{GROUP}", meta["name"], "-n", meta["namespace"],
                        "--ignore-not-found", "--wait=false", check=False,
                    )  # fmt: skip
            self.report(op, live, converged_after, why, end_audit, revived, faults_end)
        return 0

    def report(
        self,
        op: OperatorProcess,
        live: LivePower,
        converged_after: float | None,
        why: str,
        found: Any,
        revived: int,
        faults_end: float,
    ) -> None:
        with (self.logs / "rss.csv").open("w") as fh:
            fh.write("t,pid,mb,started\n")
            fh.writelines(f"{s.t:.1f},{s.pid},{s.mb:.2f},{s.started:.1f}\n" for s in self.rss)
        log = op.log_path.read_text(errors="replace")
        kinds = tracebacks(log)
        starts = sum(1 for line in log.splitlines() if line.startswith("==== ") and " start " in line)
        warmup = self.args.rss_warmup_seconds
        slope = rss_slope(self.rss, warmup)
        procs = per_process(self.rss, warmup)
        done = ", ".join(f"{f} x{self.done.count(f)}" for f in FAULTS if f in self.done)
        lines = [
            f"soak: {self.args.minutes:g} min; faults until +{faults_end:.0f}s: {done or 'none'}",
            f"  unhandled exceptions in the operator's log (tracebacks): {sum(kinds.values())}"
            + (f" ({', '.join(f'{k} x{n}' for k, n in kinds.most_common())})" if kinds else ""),
            f"  operator processes: {starts}; /healthz 500 in {self.health_failures} of its 10 s samples",
            "  converged after the faults stopped (load back at nominal): "
            + ("never (still: " + why + ")" if converged_after is None else f"{converged_after:.1f}s"),
        ]
        if self.rss:
            fit = "n/a" if slope is None else f"{slope:+.1f} MB/hour"
            first = next((s for s in self.rss if s.t - s.started >= warmup), self.rss[0])
            lines.append(
                f"  operator RSS: start {first.mb:.0f} MB (+{first.t:.0f}s), end {self.rss[-1].mb:.0f} MB "
                f"(max {max(s.mb for s in self.rss):.0f}); slope {fit} (least squares within each "
                f"process, {len(self.rss)} samples, each process's first {warmup:.0f} s left out)"
            )
        for proc in procs[:3]:
            fit = "n/a" if proc.slope is None else f"{proc.slope:+.1f} MB/hour"
            lines.append(
                f"    process {proc.pid}: {proc.span_s:.0f} s after its warm-up, {proc.first_mb:.1f} -> "
                f"{proc.last_mb:.1f} MB, slope {fit}"
            )
        lines += [
            f"  budget invariant: {live.invariant.summary()}",
            f"  UID churn (Deployments of live pools deleted and created again): {len(self.replaced)}",
            *(f"    {r}" for r in self.replaced),
            f"  end: {found.deployments} Deployments, {found.services} Services, "
            f"{len(found.duplicates)} duplicates, {len(found.orphans)} orphans; watch re-lists "
            f"{live.relists}; pods reported Ready again for kwok {revived}",
            *(f"    {line}" for line in (*found.duplicates, *found.orphans)),
        ]
        print("\n" + "\n".join(lines), flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument(
        "--quiet-minutes", type=float, default=None, help="fault-free end (default: 10%%, at least 2)"
    )
    ap.add_argument("--fault-every", type=float, default=60.0, help="seconds between fault starts")
    ap.add_argument("--faults", default=",".join(FAULTS), help=f"comma-separated, of {','.join(FAULTS)}")
    ap.add_argument("--freeze-seconds", type=float, default=20.0)
    ap.add_argument("--load-every", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rss-warmup-seconds", type=float, default=120.0, help="of each operator process")
    ap.add_argument("--cluster", default="soak")
    ap.add_argument("--port-base", type=int, default=None)
    ap.add_argument("--keep", action="store_true", help="leave the cluster running")
    args = ap.parse_args(argv)
    if args.quiet_minutes is None:
        args.quiet_minutes = max(2.0, args.minutes / 10)
    unknown = set(args.faults.split(",")) - set(FAULTS)
    if unknown:
        ap.error(f"unknown fault(s): {', '.join(sorted(unknown))}")
    cluster = Cluster(args.cluster, port_base=args.port_base)
    cluster.up(default_fleet_file())
    logs = cluster.logs_dir / f"soak-{time.strftime('%Y%m%d-%H%M%S')}"
    logs.mkdir(parents=True)
    say(f"cluster {args.cluster} up; logs in {logs}")
    try:
        return Soak(args, cluster, logs).run()
    finally:
        with contextlib.suppress(Exception), cluster.api_client() as api:
            core = Kube(api).core
            set_not_ready(core, [n.metadata.name for n in core.list_node().items], False)
        if not args.keep:
            cluster.down()


if __name__ == "__main__":
    raise SystemExit(main())
