"""Plots of a one-axis sweep (``inferfleet plan --sweep ... --plot DIR``), drawn from the sweep's JSON
document (``plan.sweepreport``), so the plots and the table cannot disagree.

Owns three figures, each written as PNG and SVG (``sweep-<figure>.png`` and ``.svg``):

* ``cost``: dollars per million output tokens against the axis (for ``demand``: the fleet's demand
  in requests per second), one line for the mixed plan and one per single-class fleet (the pools
  that class can run, all on it, no budgets or node limits), the points where a class enters or
  leaves the mixed plan marked;
* ``power``: the plan's kW and its output tokens per joule;
* ``mix``: each class's share of the plan's $/h, stacked.

matplotlib is imported only here and only when plotting; it is not a runtime dependency
(``check`` says how to get it).  SVGs carry no date and fixed ids, so regenerating them for docs
only changes them when the figures change.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

from inferfleet.plan.whatif import UsageError

__all__ = ["FIGURES", "check", "write"]

FIGURES = ("cost", "power", "mix")


def check(directory: str) -> None:
    """Fail before any plan is made if the plots could not be written."""
    if importlib.util.find_spec("matplotlib") is None:
        raise UsageError(
            "--plot needs matplotlib, which is not installed: pip install matplotlib "
            "(or install inferfleet with its dev extra)"
        )
    path = Path(directory)
    if path.exists() and not path.is_dir():
        raise UsageError(f"--plot {directory}: not a directory")
    parent = path if path.exists() else next((p for p in path.parents if p.exists()), Path("."))
    if not os.access(parent, os.W_OK):
        raise UsageError(f"--plot {directory}: not writable")


def _x(doc: dict[str, Any]) -> tuple[list[float], str, bool]:
    axis = doc["axes"][0]
    if axis["kind"] == "demand":
        return [p["demandRequestsPerSecond"] for p in doc["points"]], "fleet demand (requests/s)", True
    name = axis["name"]
    return [p["values"][name] for p in doc["points"]], f"{name} ({axis['unit']})", False


def _at(doc: dict[str, Any], value: float) -> float:
    """Where an axis value falls on the x axis of the plots."""
    axis = doc["axes"][0]
    points = doc["points"]
    if axis["kind"] != "demand":
        return value
    # demand scales linearly with the factor: take the ratio from the first point
    first = points[0]
    factor = first["values"][axis["name"]]
    return first["demandRequestsPerSecond"] * value / factor if factor else value


def _save(fig: Any, directory: Path, name: str) -> list[Path]:
    out = []
    for ext in ("png", "svg"):
        path = directory / f"sweep-{name}.{ext}"
        meta: dict[str, Any] = {"Date": None} if ext == "svg" else {"Software": None}
        fig.savefig(path, format=ext, dpi=110, metadata=meta, bbox_inches="tight")
        out.append(path)
    return out


def _cost(
    plt: Any, doc: dict[str, Any], x: list[float], label: str, logx: bool, directory: Path
) -> list[Path]:
    fig, ax = plt.subplots(figsize=(8.5, 5.0))
    mixed = [p["dollarsPerMillionOutputTokens"] for p in doc["points"]]
    names = sorted({s["class"] for p in doc["points"] for s in p["singleClass"]})
    drawn = [y for y in mixed if y]
    for name in names:
        ys, elsewhere = [], 0
        for p in doc["points"]:
            s = next((s for s in p["singleClass"] if s["class"] == name), None)
            ys.append(None if s is None else s["dollarsPerMillionOutputTokens"])
            if s is not None:
                elsewhere = max(elsewhere, len(s["elsewhere"]))
        if all(y is None for y in ys):
            continue
        drawn += [y for y in ys if y]
        tag = f" (+{elsewhere} pool{'s' if elsewhere > 1 else ''} it cannot run)" if elsewhere else ""
        ax.plot(x, [float("nan") if y is None else y for y in ys], lw=1.2, alpha=0.8, label=f"{name}{tag}")
    ax.plot(x, [float("nan") if y is None else y for y in mixed], color="black", lw=2.6, label="mixed plan")
    entries = [b for b in doc["breakEven"] if b["kind"] == "uses"]
    for i, b in enumerate(entries):
        bx = _at(doc, b["value"])
        ax.axvline(bx, color="grey", lw=0.6, ls=":")
        ax.annotate(
            f"{b['class']} {'in' if b['direction'] == 'starts' else 'out'}",
            (bx, 0.04 + 0.07 * (i % 6)),
            xycoords=("data", "axes fraction"),
            fontsize=7,
            ha="left",
            color="dimgrey",
        )
    if logx:
        ax.set_xscale("log")
    ax.set_xlim(min(x), max(x))  # the axis's range even where no line has a value
    if drawn:
        ax.set_yscale("log")
    else:  # e.g. only embedding pools: nothing to put on a per-output-token scale
        ax.text(0.5, 0.5, "no output tokens at any point", transform=ax.transAxes, ha="center")
    ax.set_xlabel(label)
    ax.set_ylabel("$ per million output tokens")
    ax.set_title(
        "$ per million output tokens: the mixed plan (within budgets; dotted: a class enters or leaves it)\n"
        "vs one class per fleet (no budgets or node limits; pools it cannot run on their cheapest class)",
        fontsize=8,
    )
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    paths = _save(fig, directory, "cost")
    plt.close(fig)
    return paths


def _power(
    plt: Any, doc: dict[str, Any], x: list[float], label: str, logx: bool, directory: Path
) -> list[Path]:
    fig, ax = plt.subplots(figsize=(8.5, 4.5))
    ax.plot(x, [p["kilowatts"] for p in doc["points"]], color="tab:red", lw=2, label="kW (devices)")
    ax.set_ylabel("kW", color="tab:red")
    other = ax.twinx()
    tpj = [p["outputTokensPerJoule"] for p in doc["points"]]
    other.plot(
        x, [float("nan") if y is None else y for y in tpj], color="tab:blue", lw=2, label="output tokens/J"
    )
    other.set_ylabel("output tokens per joule", color="tab:blue")
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(label)
    ax.set_title("Power and energy efficiency of the mixed plan")
    ax.grid(True, which="both", alpha=0.25)
    paths = _save(fig, directory, "power")
    plt.close(fig)
    return paths


def _mix(
    plt: Any, doc: dict[str, Any], x: list[float], label: str, logx: bool, directory: Path
) -> list[Path]:
    fig, ax = plt.subplots(figsize=(8.5, 4.5))
    names = sorted({c["name"] for p in doc["points"] for c in p["classes"]})
    shares = [
        [next((c["share"] for c in p["classes"] if c["name"] == name), 0.0) for p in doc["points"]]
        for name in names
    ]
    if names:
        ax.stackplot(x, shares, labels=names, alpha=0.85)
    if logx:
        ax.set_xscale("log")
    ax.set_ylim(0, 1)
    ax.set_xlabel(label)
    ax.set_ylabel("share of the plan's $/h")
    ax.set_title("Class mix of the mixed plan")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    paths = _save(fig, directory, "mix")
    plt.close(fig)
    return paths


def write(doc: dict[str, Any], directory: str) -> list[Path]:
    """Write every figure of a one-axis sweep document into ``directory``; the paths written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.hashsalt"] = "inferfleet"
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    x, label, logx = _x(doc)
    paths: list[Path] = []
    for draw in (_cost, _power, _mix):
        paths += draw(plt, doc, x, label, logx, out)
    return paths
