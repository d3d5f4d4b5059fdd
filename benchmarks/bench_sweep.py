"""Sweep benchmark (issue 12): how long ``inferfleet plan --sweep`` takes at fleet scale, and whether
break-even volumes move the right way when hardware gets faster per watt.

1. **Sweep time**: 50 demand points (0.1x to 10x) over 1,000 pools (the four example pools x 250
   namespaces, demands spread 0.5x-1.5x) on the eight example classes with 250x their budgets and
   a capacity override per class, through the same path as the CLI (manifests, the bridge, the
   planner; break-even bisection off).  Per point time limits from ``--time-limits`` (the CLI's
   ``--time-limit``).  The planner takes no warm start: every point is solved afresh; the bridge
   reuses its cached performance estimates.
2. **Faster per watt**: the example fleet, and the same fleet with every class drawing 1/1.2 of its
   watts (20% better performance per watt).  "A 20% better performance per watt serves 20% more
   requests in the same halls": the demand at which the power-bound fleet starts to shed should
   move up by ~1.2x, and a class made faster per watt alone should enter the plan at a lower or
   equal volume.  Found by bisection on the demand axis (``plan.breakeven.bisect``).

Figures only: nothing is asserted.  Run::

    ./scripts/bench sweep [--points 50] [--pools 1000] [--time-limits 0.25,1]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from inferfleet.plan import breakeven, manifests, sweep
from inferfleet.translate.problem import Fleet, Overrides

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def _docs() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        out += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return out


def _fleet_of(docs: list[dict[str, Any]]) -> Fleet:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "fleet.yaml").write_text(yaml.safe_dump_all(docs))
        m = manifests.load([tmp])
    return Fleet(m.pools, m.classes, m.policies, manifests.nodes_from_documents(m.others))


def big_fleet(n_pools: int) -> Fleet:
    """``n_pools`` pools: the example pools copied into namespaces, demands spread 0.5x-1.5x."""
    docs = _docs()
    pools = [d for d in docs if d["kind"] == "InferencePool"]
    copies = max(1, n_pools // len(pools))
    out = [d for d in docs if d["kind"] not in ("InferencePool", "Namespace")]
    for d in out:
        if d["kind"] == "AcceleratorClass":
            d["spec"]["capacity"] = {"nodes": 40 * copies}
        if d["kind"] == "FleetPolicy":
            for domain in d["spec"]["powerDomains"]:
                domain["budgetKilowatts"] = domain["budgetKilowatts"] * copies
    for i in range(copies):
        for pool in pools:
            doc = copy.deepcopy(pool)
            doc["metadata"]["namespace"] = f"team-{i:04d}"
            rps = (
                Decimal(str(pool["spec"]["demand"]["requestsPerSecond"])) * Decimal(50 + (i * 37) % 101) / 100
            )
            doc["spec"]["demand"]["requestsPerSecond"] = str(rps)
            out.append(doc)
    return _fleet_of(out)


def sweep_time(n_pools: int, n_points: int, limit: float) -> None:
    t0 = time.perf_counter()
    fleet = big_fleet(n_pools)
    built = time.perf_counter() - t0
    base = Overrides(time_limit_s=limit)
    axes = sweep.parse_axes([f"demand=0.1:10:{n_points}"], fleet, base)
    t1 = time.perf_counter()
    planner = sweep.Planner(fleet, base, axes)
    result = sweep.run(planner)
    total = time.perf_counter() - t1
    solver_s = [p.plan.solver.seconds for p in result.points]
    gaps = [p.plan.solver.gap for p in result.points]
    methods = sorted({p.plan.solver.method for p in result.points})
    solver = statistics.median(solver_s)
    print(
        f"  {len(fleet.pools)} pools x {len(fleet.classes)} classes, {n_points} points, "
        f"time limit {limit:g} s: {total:.1f} s ({total / n_points:.2f} s a point; solver median "
        f"{solver:.2f} s, the rest the bridge and the figures); gap median "
        f"{100 * statistics.median(gaps):.2f}% max {100 * max(gaps):.2f}%; methods {', '.join(methods)}; "
        f"manifests read in {built:.1f} s",
        flush=True,
    )


def _sheds(point: sweep.Point) -> bool:
    return bool(point.shed_rps)


def _scaled(docs: list[dict[str, Any]], classes: set[str] | None, factor: float) -> list[dict[str, Any]]:
    out = copy.deepcopy(docs)
    for d in out:
        if d["kind"] == "AcceleratorClass" and (classes is None or d["metadata"]["name"] in classes):
            hw = d["spec"]["hardware"]
            for key in ("powerIdleWatts", "powerBusyWatts"):
                hw[key] = round(hw[key] * factor)
    return out


def _first(fleet: Fleet, state: Any, low: float, high: float, points: int = 12) -> float | None:
    """The demand factor where ``state`` first turns true (bisection between sweep points)."""
    axes = sweep.parse_axes([f"demand={low}:{high}:{points}"], fleet, Overrides())
    planner = sweep.Planner(fleet, Overrides(), axes)
    result = sweep.run(planner)
    for lo, hi in zip(result.points, result.points[1:], strict=False):
        if not state(lo) and state(hi):
            below, above = breakeven.bisect(planner, lo, hi, state)
            return (below.values[0] * above.values[0]) ** 0.5
    return None


def faster_per_watt(gain: float) -> None:
    docs = _docs()
    base, better = _fleet_of(docs), _fleet_of(_scaled(docs, None, 1 / gain))
    shed_base = _first(base, _sheds, 0.2, 5.0)
    shed_better = _first(better, _sheds, 0.2, 5.0)
    print(f"  every class {gain:g}x better per watt (watts / {gain:g}):")
    if shed_base and shed_better:
        ratio = shed_better / shed_base
        print(
            f"    the power-bound fleet starts to shed at {shed_base:.3f}x the examples' demand, "
            f"{shed_better:.3f}x when faster per watt: x{ratio:.3f} (published rule: x{gain:g}); "
            f"moved the right way: {'yes' if ratio > 1 else 'NO'}"
        )
    for cls in ("h200", "l4"):
        one = _fleet_of(_scaled(docs, {cls}, 1 / gain))
        before = _first(base, lambda p, c=cls: breakeven.uses(p, c), 0.2, 2.0)
        after = _first(one, lambda p, c=cls: breakeven.uses(p, c), 0.2, 2.0)
        if before is None or after is None:
            print(
                f"    {cls} alone {gain:g}x better per watt: enters at {before} -> {after} (not in 0.2x-2x)"
            )
            continue
        right = "yes" if after <= before * (1 + breakeven.REL_TOL) else "NO"
        print(
            f"    {cls} alone {gain:g}x better per watt: enters the plan at {before:.3f}x -> {after:.3f}x "
            f"the examples' demand; moved the right way (earlier or the same): {right}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=50)
    parser.add_argument("--pools", type=int, default=1000)
    parser.add_argument("--time-limits", default="0.25,1", help="per point, comma-separated seconds")
    parser.add_argument("--gain", type=float, default=1.2, help="performance-per-watt factor")
    parser.add_argument("--skip-time", action="store_true")
    args = parser.parse_args(argv)
    if not args.skip_time:
        print("sweep time (demand axis, no break-even bisection):", flush=True)
        for limit in (float(x) for x in args.time_limits.split(",")):
            sweep_time(args.pools, args.points, limit)
    print("break-even volumes against performance per watt (the example fleet):", flush=True)
    faster_per_watt(args.gain)
    return 0


if __name__ == "__main__":
    sys.exit(main())
