"""What-if flags: parsed into overrides, each name checked, with messages naming the flag."""

from __future__ import annotations

import pytest
from examples import example_docs

from inferfleet.api.acceleratorclass import AcceleratorClass
from inferfleet.api.inferencepool import InferencePool
from inferfleet.plan.whatif import UsageError, overrides
from inferfleet.translate.problem import Fleet


def _fleet() -> Fleet:
    docs = example_docs()
    return Fleet(
        [InferencePool.model_validate(d) for d in docs if d["kind"] == "InferencePool"],
        [AcceleratorClass.model_validate(d) for d in docs if d["kind"] == "AcceleratorClass"],
    )


def test_flags_become_overrides_in_api_units() -> None:
    fleet = _fleet()
    pool = fleet.pools[0]
    key = f"{pool.metadata['namespace']}/{pool.metadata['name']}"
    domain = fleet.classes[0].spec.power_domain
    cls = str(fleet.classes[0].metadata["name"])
    got = overrides(fleet, power_budget=[f"{domain}=12.5"], price=[f"{cls}=3"], demand=[f"{key}=7"])
    assert got.budgets_kilowatts == {domain: 12.5}
    assert got.prices == {cls: 3.0}
    assert got.demand_rps == {key: 7.0}


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        pytest.param(
            {"power_budget": ["hall-z=1"]},
            "--power-budget hall-z: no AcceleratorClass is in power domain",
            id="unknown-domain",
        ),
        pytest.param(
            {"price": ["h900=1"]}, "--price h900: no such AcceleratorClass (known: ", id="unknown-class"
        ),
        pytest.param(
            {"demand": ["x/y=1"]}, "--demand x/y: no such InferencePool (known: ", id="unknown-pool"
        ),
        pytest.param({"price": ["h100"]}, "expected KEY=NUMBER", id="no-number"),
        pytest.param({"price": ["h100=-2"]}, "expected KEY=NUMBER with a non-negative number", id="negative"),
        pytest.param({"price": ["h100=nan"]}, "non-negative number", id="nan"),
        pytest.param({"demand": ["chat/chat-70b=inf"]}, "non-negative number", id="infinite"),
        pytest.param(
            {"time_limit_s": 0.0}, "--time-limit 0: must be a positive number", id="zero-time-limit"
        ),
    ],
)
def test_bad_flags_are_refused_naming_the_flag(flags: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=None) as err:
        overrides(_fleet(), **flags)  # type: ignore[arg-type]
    assert message in str(err.value)
