"""Mélange side by side (issue 11): Mélange's own solver and inferfleet's planner on the same profiles.

Cases: the published Mélange example (``melange/config/example.json``: A10G and A100-80GB, a 2x2
request-size histogram at 30 req/s), and AIBrix's simulator profiles (llama2-7b on A100 and A40,
8 output x 5 input buckets, max req/s at a p99 e2e SLO of 5 s, $1.0 and $0.3 an hour) with the
request mixes of AIBrix's autoscaling workload traces (each request counted in the smallest
profile bucket covering its prompt and output lengths; longer ones in the last bucket), at each
trace's mean and peak-second rate.

Per case: Mélange's solver (PuLP + CBC, ``MelangeSolver.run()`` from its own source, in a throw-away
venv under ``~/.cache/inferfleet/melange-venv`` that this script creates; never a project
dependency) and ``inferfleet.core.planner.solve`` on one pool whose demand is the case's buckets:
size-aware routing (the split in the global MILP), mixed routing (every replica sees the whole
mix: the mixture's rate), and the typical request (the bucket of the mean request, today's model).
Then the same with the global plan's own constraints on, which Mélange cannot express: the class
the unconstrained size-aware plan uses most capped at half its replicas there (nodes), and a power
budget of what that plan draws (A10G 150 W, A100 400 W, A40 300 W a GPU), so that the rest must
move to a class that draws more per req/s or be shed.  A bucket no GPU serves at the
SLO is left out on both sides (said per case); Mélange's profile zeros (no rate) become 1e-6
req/s there (its solver divides by the rate).

Last, the mixed-routing capacity model against the fleet simulator at an SLO: one L4 replica of
llama-8b (the simulator's engine, calibrated from the roofline), Poisson arrivals for 300 s, the
highest rate whose p95 TTFT (2 s) and p95 TPOT (80 ms) hold (bisection), for 200/50-token requests
alone, 3000/400 alone, their mixes at 20/50/80% short, and the mean request of each mix; beside
``mixture_rps`` of the two rates alone.

Figures only: nothing is asserted.  Run::

    ./scripts/bench melange [--melange DIR] [--aibrix DIR] [--slice-factors 1,8]

``DIR`` is a checkout (or a bare mirror) of tyler-griggs/melange-release and vllm-project/aibrix;
the defaults are the library mirrors under /work/.mirror.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from inferfleet.core.mix import mixture_rps
from inferfleet.core.planner import solve
from inferfleet.core.reference import REFERENCE_HARDWARE
from inferfleet.core.types import (
    SLO,
    AcceleratorClass,
    Bucket,
    Hardware,
    ModelSpec,
    Option,
    Plan,
    Policy,
    Pool,
    Problem,
    Routing,
    Workload,
)
from inferfleet_dev.simulate.calibrate import calibrate
from inferfleet_dev.simulate.engine import Replica, Request

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "inferfleet"
VENV = CACHE / "melange-venv"
# Mélange's requirements.txt pins pulp 2.8.0; its util.py imports pandas
PINS = ("pulp==2.8.0", "pandas==2.2.3")
MIRRORS = Path("/work/.mirror")
WATTS = {
    "A10G": 150.0,
    "A100-80GB": 400.0,
    "simulator-llama2-7b-a100": 400.0,
    "simulator-llama2-7b-a40": 300.0,
}
HW = Hardware(memory_bytes=80e9, memory_bandwidth_bytes_per_s=2e12, flops_bf16=3e14)
TRACES = ("5s", "8min_up_and_down")
NO_RATE = 1e-6

RUNNER = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
from melange.solver import MelangeSolver
case = json.load(sys.stdin)
t0 = time.perf_counter()
got = MelangeSolver(case["workload_distribution"], case["total_request_rate"], case["gpu_info"],
                    case["slice_factor"]).run()
print(json.dumps({"solution": got, "seconds": time.perf_counter() - t0}))
"""


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    gpus: dict[str, tuple[float, list[list[float]]]]  # name -> ($/h, max req/s per bucket [i][j])
    shares: list[list[float]]  # [i][j], summing to 1
    rate: float
    sizes: list[tuple[int, int]]  # per flattened bucket: representative (input, output) tokens
    typical: tuple[int, int]  # (i, j) of the typical request's bucket
    dropped: float = 0.0  # share left out (no GPU serves it)


# --------------------------------------------------------------------------------------------------
# sources
# --------------------------------------------------------------------------------------------------


def _read(src: Path, path: str) -> str:
    """A file of a checkout, or of a bare mirror's HEAD."""
    if (src / path).is_file():
        return (src / path).read_text()
    out = subprocess.run(
        ["git", f"--git-dir={src}", "show", f"HEAD:{path}"], check=True, capture_output=True, text=True
    )
    return out.stdout


def melange_source(src: Path) -> Path:
    """A directory holding Mélange's ``melange`` package (copied out of a mirror when needed)."""
    if (src / "melange" / "solver.py").is_file():
        return src
    dest = CACHE / "melange-src"
    for rel in ("melange/__init__.py", "melange/solver.py", "melange/lib/__init__.py", "melange/lib/util.py"):
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / rel).write_text(_read(src, rel))
    return dest


def ensure_venv() -> Path:
    py = VENV / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    probe = subprocess.run([str(py), "-c", "import pulp, pandas"], check=False, capture_output=True)
    if probe.returncode != 0:
        subprocess.run([str(py), "-m", "pip", "install", "-q", *PINS], check=True)
    return py


def run_melange(
    py: Path, src: Path, case: Case, slice_factor: int
) -> tuple[float | None, float, dict[str, int]]:
    gpu_info = {
        g: {"cost": cost, "tputs": [[t if t > 0 else NO_RATE for t in row] for row in tputs]}
        for g, (cost, tputs) in case.gpus.items()
    }
    payload = {
        "gpu_info": gpu_info,
        "workload_distribution": case.shares,
        "total_request_rate": case.rate,
        "slice_factor": slice_factor,
    }
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(RUNNER)
    try:
        out = subprocess.run(
            [str(py), f.name, str(src)], input=json.dumps(payload), capture_output=True, text=True, check=True
        )
    finally:
        os.unlink(f.name)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    sol = got["solution"]
    if sol is None:
        return None, got["seconds"], {}
    return float(sol.pop("cost")), float(got["seconds"]), {k: int(v) for k, v in sol.items()}


# --------------------------------------------------------------------------------------------------
# cases
# --------------------------------------------------------------------------------------------------


def melange_example(src: Path) -> Case:
    cfg = json.loads(_read(src, "melange/config/example.json"))
    gpus = {g: (float(v["cost"]), v["tputs"]) for g, v in cfg["gpu_info"].items()}
    dist = cfg["workload_distribution"]
    rows, cols = len(dist), len(dist[0])
    # the example gives no token lengths: placeholders, one per bucket (the rates are what count)
    sizes = [(100 * (i + 1), 100 * (j + 1)) for i in range(rows) for j in range(cols)]  # rows: input
    mean = max(((i, j) for i in range(rows) for j in range(cols)), key=lambda ij: dist[ij[0]][ij[1]])
    return Case("melange example", gpus, dist, float(cfg["total_request_rate"]), sizes, mean)


def aibrix_cases(src: Path) -> list[Case]:
    base = "python/aibrix/aibrix/gpu_optimizer/optimizer/profiling/result"
    profiles = [json.loads(_read(src, f"{base}/simulator-llama2-7b-{g}.json")) for g in ("a100", "a40")]
    outs, ins = profiles[0]["indexes"]
    for p in profiles:
        assert p["indexes"] == [outs, ins], "the two profiles must share their buckets"
    gpus = {p["gpu"]: (float(p["cost"]), p["tputs"]) for p in profiles}
    cases = []
    for trace in TRACES:
        text = _read(src, f"benchmarks/scenarios/autoscaling/workload/{trace}.jsonl")
        counts = [[0.0] * len(ins) for _ in outs]
        per_second: dict[int, int] = {}
        stamps, total, sum_in, sum_out = [], 0, 0, 0
        for line in text.splitlines():
            if not line.strip():
                continue
            rec = json.loads(line)
            stamps.append(rec["timestamp"])
            for r in rec["requests"]:
                n_in, n_out = int(r["Prompt Length"]), int(r["Output Length"])
                i = next((k for k, o in enumerate(outs) if n_out <= o), len(outs) - 1)
                j = next((k for k, v in enumerate(ins) if n_in <= v), len(ins) - 1)
                counts[i][j] += 1
                total += 1
                sum_in += n_in
                sum_out += n_out
                per_second[rec["timestamp"] // 1000] = per_second.get(rec["timestamp"] // 1000, 0) + 1
        seconds = max(1e-3, (max(stamps) - min(stamps)) / 1000.0)
        # a bucket no GPU serves at the SLO is left out (its share said per case)
        dropped = 0.0
        for i in range(len(outs)):
            for j in range(len(ins)):
                if counts[i][j] and all(t[i][j] <= 0 for _, t in gpus.values()):
                    dropped += counts[i][j] / total
                    counts[i][j] = 0.0
        kept = sum(map(sum, counts))
        shares = [[c / kept for c in row] for row in counts]
        mean_in, mean_out = sum_in / total, sum_out / total
        typ = (
            next((k for k, o in enumerate(outs) if mean_out <= o), len(outs) - 1),
            next((k for k, v in enumerate(ins) if mean_in <= v), len(ins) - 1),
        )
        sizes = [(ins[j], outs[i]) for i in range(len(outs)) for j in range(len(ins))]
        for label, rate in (("mean", total / seconds), ("peak", float(max(per_second.values())))):
            cases.append(
                Case(
                    f"aibrix {trace} {label} {rate:.1f} req/s",
                    gpus,
                    shares,
                    rate * (1 - dropped),
                    sizes,
                    typ,
                    dropped,
                )
            )
    return cases


# --------------------------------------------------------------------------------------------------
# ours
# --------------------------------------------------------------------------------------------------


def problem_of(
    case: Case, mode: str, *, budget_w: float | None = None, caps: dict[str, int] | None = None
) -> Problem:
    """One pool of the case's demand; ``mode`` sizeAware, mixed or typical."""
    flat = [s for row in case.shares for s in row]
    live = [k for k, s in enumerate(flat) if s > 0]
    buckets = tuple(Bucket(Workload(*case.sizes[k]), flat[k]) for k in live)
    caps = caps or {}
    classes = []
    options = []
    for g, (cost, tputs) in case.gpus.items():
        rates = [t for row in tputs for t in row]
        per_bucket = tuple(float(rates[k]) for k in live)
        nodes = caps.get(g)
        free = (1,) * nodes if nodes is not None else (8,) * 1250
        classes.append(AcceleratorClass(g, HW, 8, cost, "dc", node_free_devices=free))
        if mode == "typical":
            i, j = case.typical
            rps = float(tputs[i][j])
            extra: dict[str, Any] = {}
        else:
            rps = mixture_rps([b.share for b in buckets], per_bucket)
            extra = {"bucket_rps": per_bucket} if mode == "sizeAware" else {}
        if rps <= 0 and mode != "sizeAware":
            continue  # a replica that must see a bucket it cannot serve
        options.append(Option(g, 1, rps, WATTS.get(g, 300.0), cost, **extra))
    pool = Pool(
        key="bench/llm",
        model=ModelSpec("llama2-7b", 7.0),
        slo=SLO(),
        workload=Workload(*case.sizes[case.typical[0] * len(case.shares[0]) + case.typical[1]]),
        demand_rps=case.rate,
        max_replicas=100_000,
        buckets=() if mode == "typical" else buckets,
        routing=Routing.SIZE_AWARE if mode == "sizeAware" else Routing.MIXED,
    )
    policy = Policy(
        domain_budgets_watts={"dc": budget_w} if budget_w is not None else {},
        headroom=1.0,
        electricity_per_kwh=0.0,
        time_limit_s=60.0,
    )
    return Problem((pool,), {pool.key: tuple(options)}, {pool.key: {}}, tuple(classes), policy)


def ours(problem: Problem) -> tuple[Plan, float]:
    t0 = time.perf_counter()
    plan = solve(problem, method="milp")
    return plan, time.perf_counter() - t0


def _fleet(plan: Plan) -> str:
    pp = plan.pools[0]
    where = "+".join(
        f"{pl.replicas}x{pl.accelerator_class.replace('simulator-llama2-7b-', '')}" for pl in pp.placements
    )
    shed = "" if pp.status == "Placed" else f" {pp.status} {pp.demand_rps - pp.served_rps:.2f} req/s"
    return (where or "-") + shed


def simulated_rate(sizes: list[tuple[tuple[int, int], float]], slo: SLO, seconds: float = 300.0) -> float:
    """The highest Poisson rate one simulated L4 replica of llama-8b serves within ``slo`` (p95 of the
    requests after the first fifth), by bisection; ``sizes`` are ((input, output), weight)."""
    cls = AcceleratorClass("L4", REFERENCE_HARDWARE["L4"], 8, 0.6, "dc", node_free_devices=(8,))
    cal = calibrate(Pool("sim/l4", ModelSpec("llama-8b", 8.0), SLO(), Workload(1000, 200), 1.0), cls)

    def p95(xs: list[float]) -> float:
        xs = sorted(xs)
        return xs[int(0.95 * (len(xs) - 1))]

    def holds(rate: float) -> bool:
        rng = random.Random(3)
        replica = Replica(cal.step, kv_capacity_tokens=cal.kv_capacity_tokens, max_num_seqs=256)
        t, reqs = 0.0, []
        while (t := t + rng.expovariate(rate)) <= seconds:
            n_in, n_out = rng.choices([sz for sz, _ in sizes], weights=[w for _, w in sizes])[0]
            req = Request(t, n_in, n_out)
            replica.advance(t)
            replica.submit(req)
            reqs.append(req)
        replica.advance(seconds * 3)
        kept = reqs[len(reqs) // 5 :]
        done = [r for r in kept if r.finish is not None]
        if not done or len(done) < 0.95 * len(kept):
            return False
        tpots = [v for r in done if (v := r.tpot) is not None]
        return p95([r.ttft for r in done]) <= (slo.ttft_s or math.inf) and (
            not tpots or p95(tpots) <= (slo.tpot_s or math.inf)
        )

    lo, hi = 0.01, 100.0
    for _ in range(18):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if holds(mid) else (lo, mid)
    return lo


def simulated_mixture() -> None:
    slo = SLO(ttft_s=2.0, tpot_s=0.08)
    short, long = (200, 50), (3000, 400)
    alone = simulated_rate([(short, 1.0)], slo), simulated_rate([(long, 1.0)], slo)
    print("\n== mixed routing against the simulator at an SLO (one L4, llama-8b, p95 TTFT 2 s, TPOT 80 ms)")
    print(f"200/50 alone {alone[0]:.3f} req/s, 3000/400 alone {alone[1]:.3f} req/s")
    print(
        f"{'short share':>11} {'mix simulated':>13} {'mixture_rps':>11} {'ratio':>6} "
        f"{'mean request simulated':>22}"
    )
    for s in (0.2, 0.5, 0.8):
        mix = simulated_rate([(short, s), (long, 1 - s)], slo)
        mean = (round(s * short[0] + (1 - s) * long[0]), round(s * short[1] + (1 - s) * long[1]))
        typical = simulated_rate([(mean, 1.0)], slo)
        predicted = mixture_rps([s, 1 - s], list(alone))
        print(f"{s:11.1f} {mix:13.3f} {predicted:11.3f} {mix / predicted:6.2f} {typical:22.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--melange", type=Path, default=MIRRORS / "tyler-griggs+melange-release" / "repo")
    ap.add_argument("--aibrix", type=Path, default=MIRRORS / "vllm-project+aibrix" / "repo")
    ap.add_argument("--slice-factors", default="1,8", help="Mélange's slice factors, comma-separated")
    args = ap.parse_args()
    py = ensure_venv()
    src = melange_source(args.melange)
    cases = [melange_example(args.melange), *aibrix_cases(args.aibrix)]
    factors = [int(v) for v in args.slice_factors.split(",")]
    print(f"Mélange: its solver from {args.melange}, slice factors {factors}, PuLP/CBC in {VENV}")
    head = (
        f"{'case':<40} "
        + " ".join(f"{f'Mélange/{f} $/h':>14} {'s':>6}" for f in factors)
        + f" | {'size-aware $/h':>14} {'s':>6} | {'mixed $/h':>9} {'s':>6} | {'typical $/h':>11} | "
        "fleets (Mélange/first; size-aware; mixed)"
    )
    print("\n== constraints off (no power budget, unbounded nodes)")
    print(head)
    offs = []
    for case in cases:
        mel = [run_melange(py, src, case, f) for f in factors]
        m_fleet = mel[0][2]
        aware, a_s = ours(problem_of(case, "sizeAware"))
        mixed, x_s = ours(problem_of(case, "mixed"))
        typical, _ = ours(problem_of(case, "typical"))
        offs.append((case, aware))
        m_txt = " ".join(f"{'infeasible' if c is None else f'{c:.2f}':>14} {t:6.3f}" for c, t, _ in mel)
        m_where = "+".join(f"{v}x{k.replace('simulator-llama2-7b-', '')}" for k, v in m_fleet.items() if v)
        print(
            f"{case.name:<40} {m_txt} | {aware.dollars_per_hour:14.2f} {a_s:6.3f} | "
            f"{mixed.dollars_per_hour:9.2f} {x_s:6.3f} | {typical.dollars_per_hour:11.2f} | "
            f"{m_where}; {_fleet(aware)}; {_fleet(mixed)}"
            + (f"  ({case.dropped:.1%} of requests served by no GPU left out)" if case.dropped else "")
        )
    print("\n== constraints on: the size-aware plan's most-used class at half, power at that plan's watts")
    print(
        f"{'case':<40} {'size-aware $/h':>14} {'s':>6} | {'mixed $/h':>9} {'s':>6} | "
        "fleets (size-aware; mixed)"
    )
    for case, off in offs:
        budget = off.watts
        top = max(off.pools[0].placements, key=lambda pl: pl.replicas)
        caps = {top.accelerator_class: max(1, top.replicas // 2)}
        aware, a_s = ours(problem_of(case, "sizeAware", budget_w=budget, caps=caps))
        mixed, x_s = ours(problem_of(case, "mixed", budget_w=budget, caps=caps))
        print(
            f"{case.name:<40} {aware.dollars_per_hour:14.2f} {a_s:6.3f} | "
            f"{mixed.dollars_per_hour:9.2f} {x_s:6.3f} | "
            f"{_fleet(aware)}; {_fleet(mixed)}"
        )
    print(f"\n(watts a GPU: {', '.join(f'{g} {w:.0f} W' for g, w in WATTS.items())})")
    simulated_mixture()


if __name__ == "__main__":
    main()
