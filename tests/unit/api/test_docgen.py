"""docs/api.md: generated from the models, with a catalogue of every condition type, condition reason
and event reason the operator writes (test_models.py fails when the committed file is stale)."""

from __future__ import annotations

import re

import pytest
import yaml

from inferfleet.api import docgen
from inferfleet.api.conditions import EVENT_DOCS, REASON_DOCS, TYPE_DOCS, ConditionType, EventReason, Reason
from inferfleet.core.observed import MetricsProblem
from inferfleet.core.types import PlanStatus


@pytest.mark.parametrize(
    ("members", "docs"),
    [(ConditionType, TYPE_DOCS), (Reason, REASON_DOCS), (EventReason, EVENT_DOCS)],
    ids=["condition-types", "condition-reasons", "event-reasons"],
)
def test_every_value_is_explained(members: type, docs: dict[object, str]) -> None:
    assert [m for m in members if not docs.get(m)] == [], "add a sentence for each in api/conditions.py"


def section(text: str, title: str) -> str:
    return text.split(f"### {title}\n", 1)[1].split("\n#", 1)[0]


def test_the_catalogue_lists_each_value_once_in_its_section() -> None:
    text = docgen.render()
    for title, members in (
        ("Condition types", ConditionType),
        ("Condition reasons", Reason),
        ("Event reasons", EventReason),
    ):
        listed = re.findall(r"^\| `(\w+)` \|", section(text, title), re.M)
        assert listed == [m.value for m in members], title


def test_reasons_from_the_core_are_in_the_catalogue() -> None:
    """MetricsAvailable's reasons are the reader's problems; Placed's are the plan statuses."""
    reasons = section(docgen.render(), "Condition reasons")
    assert all(f"`{p.value}`" in reasons for p in MetricsProblem)
    assert all(f"`{s.value}`" in reasons for s in PlanStatus)


def test_the_vllm_example_is_a_valid_server_template_and_reaches_the_pod() -> None:
    from examples import example

    from inferfleet.api.acceleratorclass import AcceleratorClass
    from inferfleet.api.inferencepool import InferencePool
    from inferfleet.api.validation import validate_object
    from inferfleet.reconcile import children

    doc = example("InferencePool", "chat-70b")
    doc["spec"]["server"] = yaml.safe_load(docgen.VLLM_SERVER_EXAMPLE)["server"]
    pool = validate_object(InferencePool, doc, "docs/api.md")
    dep = children.build_deployment(
        pool, AcceleratorClass.model_validate(example("AcceleratorClass", "h100")), 1, 4
    )
    spec = dep["spec"]["template"]["spec"]
    assert spec["serviceAccountName"] == "vllm"
    assert spec["volumes"][0] == {
        "name": "inferfleet-shm",
        "emptyDir": {"medium": "Memory", "sizeLimit": "32Gi"},
    }
    assert docgen.VLLM_SERVER_EXAMPLE.splitlines()[1] in docgen.render()
