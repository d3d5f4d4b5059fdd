"""``inferfleet plan``: tables and JSON over the example manifests, what-if flags, and bad input
(exit 2, one line per problem naming file, object and field, never a traceback)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from inferfleet.cli import main

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = str(ROOT / "examples")
FLEET = str(ROOT / "examples" / "simulated-fleet")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    rc = main(["plan", *args])
    out, err = capsys.readouterr()
    return rc, out, err


def plan_json(capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, object]:
    rc, out, err = run(capsys, "-f", EXAMPLES, "-f", FLEET, "-o", "json", *extra)
    assert rc == 0, err
    doc: dict[str, object] = json.loads(out)
    return doc


def test_examples_give_a_mixed_placement_within_both_budgets(capsys: pytest.CaptureFixture[str]) -> None:
    doc = plan_json(capsys)
    assert doc["schema"] == "inferfleet.dev/plan/v1"
    pools = doc["pools"]
    assert isinstance(pools, list) and len(pools) == 4
    used = {p["class"] for pool in pools for p in pool["placements"]}
    assert len(used) >= 3, used  # a real mix of accelerators
    domains = {d["name"]: d for d in doc["domains"]}  # type: ignore[union-attr]
    assert set(domains) == {"hall-a", "hall-b"}
    for d in domains.values():
        assert d["usedWatts"] <= d["budgetWatts"]
    assert any(d["usedWatts"] > 0.95 * d["budgetWatts"] for d in domains.values())  # budgets bind
    totals = doc["totals"]
    assert isinstance(totals, dict)
    assert totals["watts"] == pytest.approx(sum(d["usedWatts"] for d in domains.values()), abs=2)
    assert doc["solver"]["status"] in ("Optimal", "TimeLimit", "Heuristic")  # type: ignore[index]


def test_table_output_names_pools_domains_and_totals(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "-f", EXAMPLES, "-f", FLEET)
    assert rc == 0
    for text in ("InferencePool chat/chat-70b", "POWER-DOMAIN", "hall-a", "Fleet:", "Solver:"):
        assert text in out


def test_what_if_budget_sheds_the_lowest_priority(capsys: pytest.CaptureFixture[str]) -> None:
    doc = plan_json(capsys, "--power-budget", "hall-a=2", "--power-budget", "hall-b=5")
    status = {p["name"]: p["status"] for p in doc["pools"]}  # type: ignore[union-attr]
    assert status["summarise-batch"] in ("Shed", "PartiallyShed")  # priority 10, the lowest
    for d in doc["domains"]:  # type: ignore[union-attr]
        assert d["usedWatts"] <= d["budgetWatts"]


def test_what_if_demand_takes_power_from_the_lower_priority(capsys: pytest.CaptureFixture[str]) -> None:
    """Budgets bind: more embedding demand (priority 50) is served by shedding more batch (priority 10)."""
    base = {p["name"]: p for p in plan_json(capsys)["pools"]}  # type: ignore[union-attr]
    more = {p["name"]: p for p in plan_json(capsys, "--demand", "search/embed=6000")["pools"]}  # type: ignore[union-attr]
    assert more["embed"]["demandRequestsPerSecond"] == 6000
    assert more["embed"]["servedRequestsPerSecond"] > base["embed"]["servedRequestsPerSecond"]
    assert (
        more["summarise-batch"]["servedRequestsPerSecond"]
        < base["summarise-batch"]["servedRequestsPerSecond"]
    )


def test_what_if_price_never_lowers_cost(capsys: pytest.CaptureFixture[str]) -> None:
    base = plan_json(capsys)["totals"]["dollarsPerHour"]  # type: ignore[index]
    dearer = plan_json(capsys, "--price", "mi300x=9")["totals"]["dollarsPerHour"]  # type: ignore[index]
    assert dearer > base


def test_without_nodes_capacity_is_assumed_and_said(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "-f", EXAMPLES, "-o", "json")
    assert rc == 0
    assert any("capacity unknown" in n for n in json.loads(out)["notes"])


BAD = [
    pytest.param(
        "spec:\n  slo: {ttftP95Milliseconds: -1}\n", "spec.slo.ttftP95Milliseconds", id="negative-slo"
    ),
    pytest.param("spec:\n  model: {colour: blue}\n", "spec.model.colour: unknown field", id="unknown-field"),
    pytest.param(
        "spec:\n  demand: {requestsPerSecond: 1.5}\n",
        'write fractional numbers as strings ("1.5")',
        id="float-in-spec",
    ),
]


def _bad_pool(tmp_path: Path, patch: str) -> Path:
    import yaml

    base = yaml.safe_load((ROOT / "examples" / "30-pools.yaml").read_text().split("---")[0])
    extra = yaml.safe_load(patch)

    def merge(a: dict[str, object], b: dict[str, object]) -> None:
        for k, v in b.items():
            if isinstance(v, dict) and isinstance(a.get(k), dict):
                merge(a[k], v)  # type: ignore[arg-type]
            else:
                a[k] = v

    merge(base, extra)
    d = tmp_path / "manifests"
    d.mkdir()
    for name in ("10-accelerator-classes.yaml", "20-fleet-policy.yaml"):
        shutil.copy(ROOT / "examples" / name, d / name)
    (d / "pools.yaml").write_text(yaml.safe_dump(base))
    return d


@pytest.mark.parametrize(("patch", "message"), BAD)
def test_bad_manifest_exits_2_naming_file_object_field(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, patch: str, message: str
) -> None:
    d = _bad_pool(tmp_path, patch)
    rc, out, err = run(capsys, "-f", str(d))
    assert rc == 2 and out == ""
    assert f"{d / 'pools.yaml'}: InferencePool chat/chat-70b: " in err
    assert message in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param("kind: [unclosed\n", "malformed YAML", id="malformed-yaml"),
        pytest.param("- just\n- a list\n", "not a Kubernetes object", id="not-an-object"),
        pytest.param(
            "apiVersion: inferfleet.dev/v1alpha1\nkind: InferenceThing\nmetadata: {name: x}\n",
            "unknown kind 'InferenceThing'",
            id="unknown-kind",
        ),
    ],
)
def test_unreadable_files_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: str, message: str
) -> None:
    (tmp_path / "x.yaml").write_text(content)
    rc, _, err = run(capsys, "-f", str(tmp_path / "x.yaml"))
    assert rc == 2 and message in err and "x.yaml" in err


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        pytest.param(
            ["--power-budget", "hall-z=5"], "no AcceleratorClass is in power domain 'hall-z'", id="domain"
        ),
        pytest.param(["--price", "a100=3"], "--price a100: no such AcceleratorClass", id="class"),
        pytest.param(["--demand", "chat/nope=3"], "--demand chat/nope: no such InferencePool", id="pool"),
        pytest.param(["--demand", "chat/chat-70b=lots"], "expected KEY=NUMBER", id="number"),
    ],
)
def test_what_if_flags_naming_nothing_exit_2(
    capsys: pytest.CaptureFixture[str], flag: list[str], message: str
) -> None:
    rc, _, err = run(capsys, "-f", EXAMPLES, *flag)
    assert rc == 2 and message in err


def test_missing_path_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = run(capsys, "-f", "/nonexistent/dir")
    assert rc == 2 and "no such file or directory" in err


def test_model_that_fits_no_class_is_a_report_not_a_crash(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    d = _bad_pool(tmp_path, "spec:\n  model: {parameters: 1800B, precision: bf16}\n")
    rc, out, _ = run(capsys, "-f", str(d), "-o", "json")
    assert rc == 0
    pool = json.loads(out)["pools"][0]
    assert pool["status"] == "Unplaceable"
    assert pool["unfit"] and all(pool["unfit"].values())


def test_a_misspelt_power_domain_gets_nothing_and_a_note_as_in_the_operator(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    d = tmp_path / "fleet"
    shutil.copytree(EXAMPLES, d, ignore=shutil.ignore_patterns("simulated-fleet"))
    classes = d / "10-accelerator-classes.yaml"
    text = classes.read_text()
    assert "powerDomain: hall-a" in text
    classes.write_text(text.replace("powerDomain: hall-a", "powerDomain: hal-a", 1))
    rc, out, err = run(capsys, "-f", str(d), "-f", FLEET, "-o", "json")
    assert rc == 0, err
    doc = json.loads(out)
    misspelt = next(n for n in doc["notes"] if "'hal-a' is not listed" in n)
    name = misspelt.split(":")[0].removeprefix("AcceleratorClass ")
    assert not [p for pool in doc["pools"] for p in pool["placements"] if p["class"] == name]
