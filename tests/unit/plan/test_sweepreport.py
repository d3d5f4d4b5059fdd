"""``plan.sweepreport``: the sweep document against its schema in docs/capacity-planning.md (the
documented example has exactly the fields written), and the table rendered from the document."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from inferfleet.plan import breakeven, manifests, sweep, sweepreport
from inferfleet.translate.problem import Fleet, Overrides

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def written() -> dict[str, Any]:
    m = manifests.load([ROOT / "examples", ROOT / "examples" / "simulated-fleet"])
    fleet = Fleet(m.pools, m.classes, m.policies, manifests.nodes_from_documents(m.others))
    axes = sweep.parse_axes(["demand=0.3:0.5:3"], fleet, Overrides())
    planner = sweep.Planner(fleet, Overrides(), axes)
    result = sweep.run(planner)
    found = breakeven.find(result, planner)
    return sweepreport.document(result, found, plans=planner.solves, seconds=1.0)


def _documented() -> dict[str, Any]:
    text = (ROOT / "docs" / "capacity-planning.md").read_text()
    block = re.search(r"```jsonc\n(.*?)```", text, re.S)
    assert block, "docs/capacity-planning.md has a jsonc example"
    doc: dict[str, Any] = json.loads(re.sub(r"//[^\n]*", "", block.group(1)))
    return doc


def test_the_documented_example_has_the_fields_the_report_writes(written: dict[str, Any]) -> None:
    docs = _documented()
    assert set(docs) == set(written)
    assert docs["schema"] == written["schema"] == sweepreport.SCHEMA_VERSION
    assert set(docs["axes"][0]) == set(written["axes"][0])
    point, mine = docs["points"][0], written["points"][0]
    assert set(point) == set(mine)
    for key in ("classes", "singleClass"):
        assert set(point[key][0]) == set(mine[key][0]), key
    assert set(point["solver"]) == set(mine["solver"])
    assert written["breakEven"], "h200 enters between 0.3x and 0.5x"
    assert set(docs["breakEven"][0]) == set(written["breakEven"][0])


def test_the_table_has_a_row_per_point_and_the_break_even_points_in_words(written: dict[str, Any]) -> None:
    text = sweepreport.render_table(written)
    lines = text.splitlines()
    assert lines[0] == "Sweep demand (x the manifests' demand, log-spaced, 3 points)"
    assert lines[1].split() == [
        "DEMAND",
        "REQ/S",
        "OUT-TOK/S",
        "$/H",
        "$/M-OUT-TOK",
        "KW",
        "OUT-TOK/J",
        "SHED-REQ/S",
        "MIX",
        "($/H",
        "SHARE)",
    ]
    assert [line.split()[0] for line in lines[2:5]] == ["0.3x", "0.387x", "0.5x"]
    assert "h200 enters the plan" in text
    assert f"{written['plans']} plans in 1.0 s" == lines[-1]
    for b in written["breakEven"]:
        assert b["event"] in text and b["bindingWords"] in text


def test_two_axes_print_both_values_and_no_break_even_section() -> None:
    doc = {
        "axes": [
            {"name": "electricity", "kind": "electricity", "unit": "$/kWh", "spacing": "linear", "points": 1},
            {"name": "budget.hall-a", "kind": "budget", "unit": "kW", "spacing": "linear", "points": 1},
        ],
        "points": [
            {
                "values": {"electricity": 0.1, "budget.hall-a": 12.5},
                "servedRequestsPerSecond": 1.0,
                "outputTokensPerSecond": 2.0,
                "dollarsPerHour": 3.0,
                "dollarsPerMillionOutputTokens": None,
                "kilowatts": 4.0,
                "outputTokensPerJoule": None,
                "shedRequestsPerSecond": 0.0,
                "classes": [{"name": "h100", "share": 1.0}],
            }
        ],
        "breakEven": [],
        "plans": 1,
        "seconds": 0.5,
    }
    text = sweepreport.render_table(doc)
    row = text.splitlines()[3].split()
    assert row[:2] == ["$0.1/kWh", "12.5"] and row[2] == "kW"
    assert "Break-even" not in text
    assert "h100 100%" in text
