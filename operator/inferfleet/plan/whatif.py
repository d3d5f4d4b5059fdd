"""What-if flags as data: ``--power-budget``, ``--price``, ``--demand`` and ``--measurements``
become ``Overrides``.

Owns parsing ``KEY=NUMBER`` pairs and the measurements file, and checking that each names something
in the manifests, with a message naming the flag and what is known (``--price h200: no such
AcceleratorClass (known: ...)``).  A measurements file replays what the autoscaler planned with:
per pool the demand and the correction factors, as in the pool's ``status.autoscaling``::

    pools:
      chat/chat-70b:
        requestsPerSecond: 30
        corrections: {h100: {ttft: 1.2, tpot: 1.5}}
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from inferfleet.translate.objects import pool_key
from inferfleet.translate.problem import Fleet, Overrides

__all__ = ["UsageError", "measurements", "overrides"]


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


def _number(value: Any, where: str, low: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value < math.inf:
        raise UsageError(f"{where}: expected a number >= {low:g}, got {value!r}")
    return float(value)


def measurements(
    path: str, fleet: Fleet
) -> tuple[dict[str, float], dict[str, dict[str, tuple[float, float]]]]:
    """(demand per pool key, correction factors per pool key and class) from a measurements file."""
    try:
        doc = yaml.safe_load(Path(path).read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--measurements {path}: cannot read: {exc}") from None
    except yaml.YAMLError as exc:
        raise UsageError(f"--measurements {path}: malformed YAML: {exc}") from None
    pools = doc.get("pools") if isinstance(doc, dict) else None
    if not isinstance(pools, dict):
        raise UsageError(f"--measurements {path}: expected a mapping 'pools: {{namespace/name: ...}}'")
    keys = {pool_key(p) for p in fleet.pools}
    classes = {str(c.metadata["name"]) for c in fleet.classes}
    demand: dict[str, float] = {}
    factors: dict[str, dict[str, tuple[float, float]]] = {}
    for key, entry in pools.items():
        where = f"--measurements {path}: pools.{key}"
        if key not in keys:
            raise UsageError(f"{where}: no such InferencePool (known: {', '.join(sorted(keys))})")
        if not isinstance(entry, Mapping):
            raise UsageError(f"{where}: expected a mapping with requestsPerSecond and/or corrections")
        unknown = set(entry) - {"requestsPerSecond", "corrections"}
        if unknown:
            raise UsageError(f"{where}: unknown field(s) {', '.join(sorted(map(str, unknown)))}")
        if "requestsPerSecond" in entry:
            demand[str(key)] = _number(entry["requestsPerSecond"], f"{where}.requestsPerSecond")
        for cls, f in (entry.get("corrections") or {}).items():
            if cls not in classes:
                raise UsageError(f"{where}.corrections.{cls}: no such AcceleratorClass")
            if not isinstance(f, Mapping):
                raise UsageError(f"{where}.corrections.{cls}: expected {{ttft: F, tpot: F}}")
            pair = (
                _number(f.get("ttft", 1.0), f"{where}.corrections.{cls}.ttft", 1.0),
                _number(f.get("tpot", 1.0), f"{where}.corrections.{cls}.tpot", 1.0),
            )
            factors.setdefault(str(key), {})[str(cls)] = pair
    return demand, factors
