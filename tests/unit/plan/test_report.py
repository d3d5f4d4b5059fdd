"""The plan document against its schema in docs/plan-output.md: the documented example has exactly
the fields the report writes (top level, pools, placements, energy), so the docs cannot drift."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from inferfleet.core.compare import Comparison
from inferfleet.plan import manifests, offline, report
from inferfleet.translate.problem import Fleet, Overrides

ROOT = Path(__file__).resolve().parents[3]


def _documented() -> dict[str, Any]:
    text = (ROOT / "docs" / "plan-output.md").read_text()
    block = re.search(r"```jsonc\n(.*?)```", text, re.S)
    assert block, "docs/plan-output.md has a jsonc example"
    body = re.sub(r"/\*.*?\*/", "", block.group(1), flags=re.S)
    body = re.sub(r"//[^\n]*", "", body)
    doc: dict[str, Any] = json.loads(body)
    return doc


@pytest.fixture(scope="module")
def written() -> dict[str, Any]:
    m = manifests.load([ROOT / "examples", ROOT / "examples" / "simulated-fleet"])
    fleet = Fleet(m.pools, m.classes, m.policies, manifests.nodes_from_documents(m.others))
    solved = offline.solve_fleet(fleet, Overrides())
    return report.document(solved.plan, solved.problem, (), Comparison(None, None, 0.0))


def test_the_documented_example_has_the_fields_the_report_writes(written: dict[str, Any]) -> None:
    docs = _documented()
    assert set(docs) == set(written)
    assert set(docs["pools"][0]) == set(written["pools"][0])
    assert set(docs["pools"][0]["placements"][0]) == set(written["pools"][0]["placements"][0])
    assert set(docs["pools"][0]["energy"]) == set(written["pools"][0]["energy"]) == set(written["energy"])
    assert set(docs["totals"]) == set(written["totals"])
    assert set(docs["solver"]) == set(written["solver"])
    assert docs["schema"] == written["schema"] == report.SCHEMA_VERSION


def test_the_documented_energy_example_is_arithmetic_that_holds() -> None:
    e = _documented()["pools"][0]["energy"]
    assert e["outputTokensPerJoule"] == pytest.approx(e["outputTokensPerSecond"] / e["watts"], abs=1e-4)
    assert e["kilowattHoursPerDay"] == pytest.approx(e["watts"] * 24 / 1000, abs=0.05)
    dollars = e["hardwareDollarsPerHour"] + e["energyDollarsPerHour"]
    assert e["dollarsPerMillionOutputTokens"] == pytest.approx(
        dollars / (e["outputTokensPerSecond"] * 3600) * 1e6, abs=1e-3
    )
