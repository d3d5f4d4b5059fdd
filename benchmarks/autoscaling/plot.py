"""The diurnal day as a PNG: offered load, replicas per class (stacked), p95 against the SLO, kW
against the budget (matplotlib, from the dev extra; imported only when a plot is asked for)."""

from __future__ import annotations

from pathlib import Path

from autoscaling.scenarios import DiurnalFigures


def plot_day(fig_data: DiurnalFigures, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    auto = fig_data.fleets[0].run
    hours = 24.0 / fig_data.day_s
    pools = sorted(auto.slos)
    fig, axes = plt.subplots(4, 1, figsize=(11, 12), sharex=True)
    ax = axes[0]
    for key in pools:
        xs = [s.t * hours for s in auto.samples]
        (line,) = ax.plot(xs, [s.offered[key] for s in auto.samples], label=f"{key} offered")
        rounds = [r for r in auto.rounds if r.measured.get(key) is not None]
        ax.plot(
            [r.t * hours for r in rounds],
            [r.measured[key] for r in rounds],
            ":",
            color=line.get_color(),
            label=f"{key} measured (rate, 60 s)",
        )
        ax.step(
            [r.t * hours for r in auto.rounds],
            [r.demand[key] for r in auto.rounds],
            "--",
            where="post",
            color=line.get_color(),
            label=f"{key} planned demand",
        )
    ax.set_ylabel("req/s")
    ax.set_title(f"Autoscaled diurnal day (1 day = {fig_data.day_s:g} virtual s)")
    ax.legend(fontsize=7, ncol=2)

    ax = axes[1]
    keys = sorted({k for r in auto.rounds for k in r.replicas})
    xs = [r.t * hours for r in auto.rounds]
    ys = [[r.replicas.get(k, 0) for r in auto.rounds] for k in keys]
    ax.stackplot(xs, ys, labels=[f"{p.split('/')[1]} on {c}" for p, c in keys], step="post")
    ax.set_ylabel("replicas (planned)")
    ax.legend(fontsize=7, loc="upper left")

    ax = axes[2]
    for key in pools:
        ttft_slo, tpot_slo = auto.slos[key]
        xs = [s.t * hours for s in auto.samples]
        ax.plot(
            xs,
            [None if s.ttft_p95[key] is None else s.ttft_p95[key] / ttft_slo for s in auto.samples],
            label=f"{key} p95 TTFT / SLO",
        )
        if tpot_slo:
            ax.plot(
                xs,
                [None if s.tpot_p95[key] is None else s.tpot_p95[key] / tpot_slo for s in auto.samples],
                label=f"{key} p95 TPOT / SLO",
            )
    ax.axhline(1.0, color="red", lw=1, label="SLO")
    ax.set_ylabel("p95 (30 s) / SLO")
    ax.set_yscale("log")
    ax.legend(fontsize=7, ncol=2)

    ax = axes[3]
    xs = [r.t * hours for r in auto.rounds]
    domains = sorted({d for r in auto.rounds for d in r.domains})
    for d in domains:
        (line,) = ax.step(
            xs, [r.domains.get(d, (0.0, None))[0] for r in auto.rounds], where="post", label=f"{d} planned kW"
        )
        budget = next((r.domains[d][1] for r in auto.rounds if d in r.domains), None)
        if budget is not None:
            ax.axhline(budget, color=line.get_color(), ls="--", lw=1, label=f"{d} budget")
    ax.step(xs, [r.kilowatts for r in auto.rounds], where="post", color="black", lw=1, label="fleet kW")
    ax.set_ylabel("kW")
    ax.set_xlabel("hour of the day")
    ax.legend(fontsize=7, ncol=3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
