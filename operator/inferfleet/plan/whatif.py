"""What-if flags as data: ``--power-budget``, ``--price`` and ``--demand`` become ``Overrides``.

Owns parsing ``KEY=NUMBER`` pairs and checking that each names something in the manifests, with a
message naming the flag and what is known (``--price h200: no such AcceleratorClass (known: ...)``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from inferfleet.translate.objects import pool_key
from inferfleet.translate.problem import Fleet, Overrides

__all__ = ["UsageError", "overrides"]


class UsageError(Exception):
    """A what-if flag that names nothing in the manifests, or is malformed."""


def _pairs(values: Sequence[str] | None, flag: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in values or ():
        key, sep, number = item.partition("=")
        try:
            value = float(number)
        except ValueError:
            value = -1.0
        if not sep or not key or not 0 <= value < math.inf:
            raise UsageError(f"{flag} {item!r}: expected KEY=NUMBER with a non-negative number")
        out[key] = value
    return out


def _check(names: Sequence[str], known: set[str], flag: str, what: str) -> None:
    for name in names:
        if name not in known:
            raise UsageError(f"{flag} {name}: {what} (known: {', '.join(sorted(known)) or 'none'})")


def overrides(
    fleet: Fleet,
    *,
    power_budget: Sequence[str] | None = None,
    price: Sequence[str] | None = None,
    demand: Sequence[str] | None = None,
    time_limit_s: float | None = None,
) -> Overrides:
    """The flags' values, each checked against the fleet."""
    budgets = _pairs(power_budget, "--power-budget")
    domains = {c.spec.power_domain for c in fleet.classes}
    for domain in budgets:
        _check([domain], domains, "--power-budget", f"no AcceleratorClass is in power domain {domain!r}")
    prices = _pairs(price, "--price")
    class_names = {str(c.metadata["name"]) for c in fleet.classes}
    _check(list(prices), class_names, "--price", "no such AcceleratorClass")
    demands = _pairs(demand, "--demand")
    _check(list(demands), {pool_key(p) for p in fleet.pools}, "--demand", "no such InferencePool")
    if time_limit_s is not None and not time_limit_s > 0:
        raise UsageError(f"--time-limit {time_limit_s:g}: must be a positive number of seconds")
    return Overrides(budgets, prices, demands, time_limit_s)
