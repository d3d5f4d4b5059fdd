"""The soak benchmark's pure pieces: the RSS slope fit over restarted processes, the traceback
count of the operator's log, the fault and load schedule, and the power invariant it shares with
the chaos suite (tests/chaos/chaos_power.py: live watts from pods on Ready nodes, what a domain may
draw around a budget change, violations and the largest overshoot)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
for extra in (ROOT / "benchmarks", ROOT / "tests" / "chaos"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from chaos_power import Budgets, ClassPower, Invariant, budgets_of, class_power, live_watts  # noqa: E402

from soak.figures import RssSample, loads, per_process, rss_slope, schedule, tracebacks  # noqa: E402


# ---- RSS slope ----------------------------------------------------------------------------------
def _line(
    pid: int, started: float, start: float, stop: float, mb0: float, per_hour: float
) -> list[RssSample]:
    return [
        RssSample(t, pid, mb0 + per_hour * (t - start) / 3600.0, started)
        for t in (start + 10.0 * i for i in range(int((stop - start) / 10.0) + 1))
    ]


def test_a_steady_leak_is_its_slope_per_hour() -> None:
    assert rss_slope(_line(1, 0.0, 60.0, 1800.0, 150.0, 12.0)) == pytest.approx(12.0)


def test_restarts_each_get_their_own_intercept_so_the_drop_is_not_a_fall() -> None:
    # three processes, each growing 6 MB/h from a fresh ~150 MB: pooled naively the drops would
    # pull the slope negative; within each process it is 6
    samples = (
        _line(1, 0.0, 60.0, 600.0, 160.0, 6.0)
        + _line(2, 600.0, 660.0, 1200.0, 150.0, 6.0)
        + _line(3, 1200.0, 1260.0, 1800.0, 155.0, 6.0)
    )
    assert rss_slope(samples) == pytest.approx(6.0)


def test_the_warm_up_of_each_process_is_left_out() -> None:
    warm = [RssSample(t, 7, 40.0 + t, 0.0) for t in (0.0, 10.0, 20.0, 30.0)]  # filling caches
    flat = _line(7, 0.0, 60.0, 900.0, 180.0, 0.0)
    assert rss_slope(warm + flat) == pytest.approx(0.0)


def test_no_slope_without_two_samples_of_one_process_after_warm_up() -> None:
    assert rss_slope([]) is None
    assert rss_slope([RssSample(100.0, 1, 150.0, 0.0), RssSample(200.0, 2, 150.0, 150.0)]) is None


def test_each_process_after_its_warm_up_longest_lived_first() -> None:
    samples = _line(1, 0.0, 0.0, 300.0, 100.0, 36.0) + _line(2, 300.0, 300.0, 1200.0, 90.0, 0.0)
    first, second = per_process(samples, warmup_s=120.0)
    assert (first.pid, first.span_s, first.first_mb, first.last_mb) == (2, 780.0, 90.0, 90.0)
    assert first.slope == pytest.approx(0.0)
    assert (second.pid, second.span_s) == (1, 180.0) and second.slope == pytest.approx(36.0)
    assert second.first_mb == pytest.approx(101.2) and second.last_mb == pytest.approx(103.0)


# ---- tracebacks ---------------------------------------------------------------------------------
LOG = """\
2026-12-02 03:24:08,042 INFO inferfleet.runtime: started
2026-12-02 03:24:09,000 ERROR inferfleet.informer: change callback failed (pods)
Traceback (most recent call last):
  File "/x/informer.py", line 397, in _notify
    self._on_change(why)
KeyError: 'metadata'
2026-12-02 03:24:10,000 ERROR inferfleet.lease: leader election: unexpected error
Traceback (most recent call last):
  File "/x/lease.py", line 183, in run
    raise ApiException(status=500)
kubernetes.client.exceptions.ApiException: (500)
Reason: Internal Server Error

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "/x/lease.py", line 190, in run
    raise RuntimeError("gave up")
RuntimeError: gave up
2026-12-02 03:24:11,000 WARNING inferfleet.loop: planning round failed: boom (retrying in 1s)
"""


def test_every_traceback_is_counted_by_its_exception_type_chained_ones_too() -> None:
    assert tracebacks(LOG) == {
        "KeyError": 1,
        "kubernetes.client.exceptions.ApiException": 1,
        "RuntimeError": 1,
    }
    assert tracebacks("2026 INFO all quiet\n2026 WARNING planning round failed: x\n") == {}
    assert tracebacks("Traceback (most recent call last):\n  File 'x', line 1\n") == {
        "(unterminated traceback)": 1
    }


# ---- schedule -------------------------------------------------------------------------------------
def test_every_fault_comes_once_a_round_and_none_in_the_quiet_end() -> None:
    faults = ["kill", "freeze", "restart", "proxy"]
    steps = schedule(30 * 60.0, 240.0, 45.0, faults, seed=3)
    assert [s.at for s in steps] == [45.0 * i for i in range(1, len(steps) + 1)]
    assert steps[-1].at <= 30 * 60.0 - 240.0 < steps[-1].at + 45.0
    for r in range(len(steps) // len(faults)):
        assert sorted(s.fault for s in steps[r * 4 : r * 4 + 4]) == sorted(faults)
    assert steps == schedule(30 * 60.0, 240.0, 45.0, faults, seed=3)  # repeatable
    assert schedule(60.0, 30.0, 45.0, faults, seed=3) == []


def test_loads_wander_within_half_and_half_again_and_end_at_nominal() -> None:
    nominal = {"chat/chat-70b": 20.0, "search/embed": 200.0}
    steps = loads(600.0, 120.0, 60.0, nominal, seed=1)
    assert steps[0] == (0.0, nominal) and steps[-1] == (480.0, nominal)
    for _at, rates in steps[1:-1]:
        for key, rps in rates.items():
            assert 0.5 * nominal[key] <= rps <= 1.5 * nominal[key]


# ---- the power invariant ------------------------------------------------------------------------
def _class(name: str, domain: str, idle: float, busy: float) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "powerDomain": domain,
            "resourceName": "nvidia.com/gpu",
            "hardware": {"powerIdleWatts": idle, "powerBusyWatts": busy},
        },
    }


def _pod(name: str, cls: str, devices: int, node: str | None, phase: str = "Running") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "ns", "labels": {"inferfleet.dev/accelerator-class": cls}},
        "spec": {
            "nodeName": node,
            "containers": [{"resources": {"limits": {"nvidia.com/gpu": str(devices)}}}],
        },
        "status": {"phase": phase},
    }


def test_watts_per_device_are_idle_plus_the_busy_share_at_the_planned_utilisation() -> None:
    power = class_power([_class("h100", "hall-a", 100.0, 700.0)], headroom_percent=20.0)
    h100 = power["h100"]
    assert (h100.domain, h100.resource) == ("hall-a", "nvidia.com/gpu") and list(power) == ["h100"]
    assert h100.watts_per_device == pytest.approx(100.0 + 600.0 / 1.2)


def test_live_watts_count_bound_pods_on_ready_nodes_terminating_or_not() -> None:
    power = {
        "h100": ClassPower("hall-a", "nvidia.com/gpu", 600.0),
        "l4": ClassPower("hall-b", "nvidia.com/gpu", 50.0),
    }
    pods = [
        _pod("a", "h100", 8, "n1"),
        _pod("b", "h100", 8, "n2"),  # its node is NotReady: unknown, not counted
        _pod("c", "h100", 8, None),  # not bound: holds nothing
        _pod("d", "l4", 1, "n3", phase="Succeeded"),
        _pod("e", "l4", 2, "n3"),
        _pod("f", "other", 4, "n1"),  # a class we do not know
    ]
    ready = {"n1": True, "n2": False, "n3": True}
    assert live_watts(pods, ready, power) == {"hall-a": 4800.0, "hall-b": 100.0}


def test_after_a_budget_change_the_larger_of_old_and_new_holds_for_the_transition() -> None:
    budgets = Budgets(transition_s=60.0)
    budgets.set(0.0, {"hall-a": 10_000.0, "hall-b": 30_000.0})
    budgets.set(100.0, {"hall-a": 14_000.0, "hall-b": 22_000.0})
    assert budgets.allowed(-1.0) == {}
    assert budgets.allowed(50.0) == {"hall-a": 10_000.0, "hall-b": 30_000.0}
    assert budgets.allowed(130.0) == {"hall-a": 14_000.0, "hall-b": 30_000.0}
    assert budgets.allowed(161.0) == {"hall-a": 14_000.0, "hall-b": 22_000.0}
    forever = Budgets(transition_s=float("inf"))
    forever.set(0.0, {"hall-b": 30_000.0})
    forever.set(10.0, {"hall-b": 20_000.0})
    assert forever.allowed(1e9) == {"hall-b": 30_000.0}


def test_a_domain_unbudgeted_at_any_moment_of_the_span_is_unconstrained() -> None:
    budgets = Budgets(transition_s=60.0)
    budgets.set(0.0, {"hall-a": 10_000.0})
    budgets.set(10.0, {"hall-a": 8_000.0, "hall-b": 5_000.0})
    assert budgets.allowed(20.0) == {"hall-a": 10_000.0}
    assert budgets.allowed(71.0) == {"hall-a": 8_000.0, "hall-b": 5_000.0}


def test_the_invariant_counts_violations_and_keeps_the_largest_overshoot() -> None:
    budgets = Budgets(transition_s=0.0)
    budgets.set(0.0, {"hall-a": 10_000.0})
    inv = Invariant(budgets)
    assert inv.check(1.0, {"hall-a": 10_000.4, "hall-c": 99_999.0}, "within rounding; hall-c unbudgeted")
    assert not inv.check(2.0, {"hall-a": 10_300.0}, "pod x added")
    assert not inv.check(3.0, {"hall-a": 11_000.0}, "pod y added")
    assert inv.check(4.0, {"hall-a": 9_000.0}, "pod x gone")
    assert (inv.samples, inv.violations, inv.max_overshoot_w) == (4, 2, 1000.0)
    assert "pod y added" in inv.worst and inv.peak_w["hall-a"] == 11_000.0
    assert "4 samples, 2 violations, max overshoot 1000 W" in inv.summary()


def test_a_policy_s_budgets_in_watts() -> None:
    policy = {
        "spec": {
            "powerDomains": [
                {"name": "hall-a", "budgetKilowatts": 10},
                {"name": "b", "budgetKilowatts": "2.5"},
            ]
        }
    }
    assert budgets_of(policy) == {"hall-a": 10_000.0, "b": 2_500.0}
    assert budgets_of(None) == {} == budgets_of({"spec": {}})
