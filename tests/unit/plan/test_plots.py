"""``plan.plots``: the three figures from a sweep document, PNG and SVG, also for a fleet with no
output tokens (embeddings only) and for linear axes; ``check`` refuses what could not be written."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from inferfleet.plan import plots
from inferfleet.plan.whatif import UsageError


def _doc(kind: str, per_m: float | None, tpj: float | None) -> dict[str, Any]:
    name = "demand" if kind == "demand" else "electricity"
    values = [0.1, 1.0, 10.0] if kind == "demand" else [0.0, 0.5, 1.0]
    points = [
        {
            "values": {name: v},
            "demandRequestsPerSecond": 100.0 * (i + 1),
            "dollarsPerMillionOutputTokens": None if per_m is None else per_m / (i + 1),
            "kilowatts": 10.0 + i,
            "outputTokensPerJoule": tpj,
            "classes": [{"name": "h100", "share": 0.7}, {"name": "l4", "share": 0.3}],
            "singleClass": [
                {"class": "h100", "pools": 1, "elsewhere": ["a/b"], "dollarsPerMillionOutputTokens": per_m}
            ],
        }
        for i, v in enumerate(values)
    ]
    return {
        "axes": [{"name": name, "kind": kind, "unit": "x" if kind == "demand" else "$/kWh"}],
        "points": points,
        "breakEven": [{"kind": "uses", "class": "l4", "direction": "starts", "value": values[1]}],
    }


@pytest.mark.parametrize(
    ("kind", "per_m", "tpj"),
    [
        pytest.param("demand", 2.0, 0.5, id="demand-log-axis"),
        pytest.param("electricity", 2.0, 0.5, id="linear-axis-from-zero"),
        pytest.param("demand", None, 0.0, id="no-output-tokens"),
        pytest.param("demand", None, None, id="nothing-placed"),
    ],
)
def test_every_figure_is_written_as_png_and_svg(
    tmp_path: Path, kind: str, per_m: float | None, tpj: float | None
) -> None:
    written = plots.write(_doc(kind, per_m, tpj), str(tmp_path / "out"))
    names = sorted(p.name for p in written)
    assert names == sorted(f"sweep-{f}.{e}" for f in plots.FIGURES for e in ("png", "svg"))
    for path in written:
        assert path.stat().st_size > 1000
    assert "<dc:date>" not in (tmp_path / "out" / "sweep-cost.svg").read_text()


def test_the_same_document_draws_the_same_svg(tmp_path: Path) -> None:
    doc = _doc("demand", 2.0, 0.5)
    plots.write(doc, str(tmp_path / "a"))
    plots.write(doc, str(tmp_path / "b"))
    for name in plots.FIGURES:
        assert (tmp_path / "a" / f"sweep-{name}.svg").read_text() == (
            tmp_path / "b" / f"sweep-{name}.svg"
        ).read_text()


def test_check_refuses_a_file_and_a_missing_matplotlib(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken = tmp_path / "taken"
    taken.write_text("")
    with pytest.raises(UsageError, match="not a directory"):
        plots.check(str(taken))
    plots.check(str(tmp_path / "new" / "dir"))  # made when written
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a)
    )
    with pytest.raises(
        UsageError, match="--plot needs matplotlib, which is not installed: pip install matplotlib"
    ):
        plots.check(str(tmp_path))
