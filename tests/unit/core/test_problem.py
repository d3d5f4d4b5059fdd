"""The Problem builder: pool x class -> Options at planned utilisation, or the reason why not."""

from __future__ import annotations

import dataclasses
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inferfleet.core.cost import replica_dollars_per_hour
from inferfleet.core.performance import estimate
from inferfleet.core.power import replica_watts
from inferfleet.core.problem import NOT_ALLOWED, build_problem, planned_utilisation
from inferfleet.core.reference import reference_class
from inferfleet.core.sanity import llama_8b, llama_70b
from inferfleet.core.types import SLO, AcceleratorClass, Estimate, ModelSpec, Policy, Pool, Profile, Workload

POLICY = Policy(electricity_per_kwh=0.12, pue=1.4, headroom=1.25)
SLO_CHAT = SLO(ttft_s=2.0, tpot_s=0.05)
CHAT = Workload(1000, 200)
H100 = dataclasses.replace(reference_class("H100-SXM5-80GB"), name="h100")
L4 = dataclasses.replace(reference_class("L4"), name="l4")
CEREBRAS = dataclasses.replace(reference_class("Cerebras CS-3"), name="cerebras", node_free_devices=())


LLAMA_8B_FP8 = llama_8b("fp8")
BIG_PROFILE = dataclasses.replace(H100, profiles=(Profile("llama-3.1-8b", devices=16, rps=9.0),))


def _pool(key: str, model: ModelSpec = LLAMA_8B_FP8, **kw: object) -> Pool:
    return Pool(key=key, model=model, slo=SLO_CHAT, workload=CHAT, demand_rps=10.0, **kw)  # type: ignore[arg-type]


def test_pools_and_classes_are_sorted_and_every_pair_is_answered() -> None:
    problem = build_problem([_pool("ns/zeta"), _pool("ns/alpha")], [L4, H100, CEREBRAS], POLICY)
    assert [p.key for p in problem.pools] == ["ns/alpha", "ns/zeta"]
    assert [c.name for c in problem.classes] == ["cerebras", "h100", "l4"]
    for pool in problem.pools:
        answered = [o.accelerator_class for o in problem.options[pool.key]] + list(problem.unfit[pool.key])
        assert sorted(answered) == ["cerebras", "h100", "l4"]
        assert [o.accelerator_class for o in problem.options[pool.key]] == sorted(
            o.accelerator_class for o in problem.options[pool.key]
        )


def test_an_option_is_the_estimate_priced_at_planned_utilisation() -> None:
    problem = build_problem([_pool("ns/chat")], [H100], POLICY)
    (option,) = problem.options["ns/chat"]
    est = estimate(llama_8b("fp8"), CHAT, SLO_CHAT, H100)
    assert isinstance(est, Estimate)
    watts = replica_watts(est.devices, H100.hardware, 1 / 1.25)
    assert (option.devices, option.rps, option.ttft_s, option.tpot_s) == (
        est.devices,
        est.rps,
        est.ttft_s,
        est.tpot_s,
    )
    assert option.watts == pytest.approx(watts)
    assert option.dollars_per_hour == pytest.approx(
        replica_dollars_per_hour(est.devices, 12.29, watts, POLICY)
    )
    assert option.preferred is False


@pytest.mark.parametrize(
    ("headroom", "utilisation"),
    [
        pytest.param(1.25, 0.8, id="headroom-1.25-plans-replicas-at-80-percent"),
        pytest.param(2.0, 0.5, id="headroom-2-plans-at-half-load"),
        pytest.param(1.0, 1.0, id="no-headroom-plans-at-full-load"),
        pytest.param(0.5, 1.0, id="headroom-below-1-never-exceeds-full-load"),
    ],
)
def test_planned_utilisation(headroom: float, utilisation: float) -> None:
    assert planned_utilisation(Policy(headroom=headroom)) == pytest.approx(utilisation)


@pytest.mark.parametrize(
    ("pool", "cls", "fragment"),
    [
        pytest.param(_pool("ns/p", allowed_classes=frozenset({"l4"})), H100, NOT_ALLOWED.reason,
                     id="classes-outside-allowed-classes-are-unfit"),
        pytest.param(_pool("ns/p", ModelSpec("llama-405b", 405.0)), H100, "needs 16 devices of 80 GiB",
                     id="a-model-larger-than-a-node-is-unfit"),
        pytest.param(_pool("ns/p", llama_70b("bf16")), L4, "exceeds the 50 ms SLO",
                     id="a-class-too-slow-for-the-slo-is-unfit"),
        pytest.param(_pool("ns/p"), BIG_PROFILE, "nodes have 8", id="a-profile-larger-than-a-node-is-unfit"),
    ],
)  # fmt: skip
def test_unfit_pairs_record_why(pool: Pool, cls: AcceleratorClass, fragment: str) -> None:
    problem = build_problem([pool], [cls], POLICY)
    assert problem.options[pool.key] == ()
    assert fragment in problem.unfit[pool.key][cls.name].reason


def test_allowed_and_preferred_classes() -> None:
    pool = _pool(
        "ns/p", allowed_classes=frozenset({"h100", "cerebras"}), preferred_classes=frozenset({"cerebras"})
    )
    problem = build_problem([pool], [L4, H100, CEREBRAS], POLICY)
    assert {o.accelerator_class: o.preferred for o in problem.options["ns/p"]} == {
        "cerebras": True,
        "h100": False,
    }
    assert problem.unfit["ns/p"] == {"l4": NOT_ALLOWED}


def test_classes_without_free_capacity_still_yield_options() -> None:
    assert CEREBRAS.node_free_devices == ()
    (option,) = build_problem([_pool("ns/p")], [CEREBRAS], POLICY).options["ns/p"]
    assert option.accelerator_class == "cerebras"
    assert 1 <= option.devices <= CEREBRAS.devices_per_node


@pytest.mark.parametrize(
    ("pools", "classes", "match"),
    [
        pytest.param(
            [_pool("ns/a"), _pool("ns/a")], [H100], "duplicate pool key: ns/a", id="duplicate-pool-keys"
        ),
        pytest.param([_pool("ns/a")], [H100, H100], "duplicate class: h100", id="duplicate-class-names"),
    ],
)
def test_duplicates_are_rejected(pools: list[Pool], classes: list[AcceleratorClass], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build_problem(pools, classes, POLICY)


def test_an_empty_fleet_is_an_empty_problem() -> None:
    problem = build_problem([], [], POLICY)
    assert (problem.pools, problem.classes, dict(problem.options), dict(problem.unfit)) == ((), (), {}, {})
    assert problem.policy is POLICY


CLASS_NAMES = ("cerebras", "h100", "l4")


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([llama_8b("fp8"), llama_8b("bf16"), llama_70b("bf16"), llama_70b("fp8")]),
            st.one_of(st.none(), st.frozensets(st.sampled_from(CLASS_NAMES))),
        ),
        max_size=6,
    ),
    st.randoms(use_true_random=False),
)
def test_build_is_deterministic_and_partitions_every_pair(
    specs: list[tuple[ModelSpec, frozenset[str] | None]], rnd: random.Random
) -> None:
    pools = [_pool(f"ns/p{i}", model, allowed_classes=allowed) for i, (model, allowed) in enumerate(specs)]
    classes = [L4, H100, CEREBRAS]
    first = build_problem(pools, classes, POLICY)
    rnd.shuffle(pools)
    rnd.shuffle(classes)
    assert build_problem(pools, classes, POLICY) == first
    for pool in first.pools:
        fit = {o.accelerator_class for o in first.options[pool.key]}
        unfit = set(first.unfit[pool.key])
        assert fit | unfit == set(CLASS_NAMES) and not fit & unfit
        if pool.allowed_classes is not None:
            assert fit <= pool.allowed_classes
        for option in first.options[pool.key]:
            assert option.rps > 0 and option.watts > 0 and option.dollars_per_hour > 0
