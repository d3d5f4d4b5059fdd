"""Node capacity for any replica size (core/patterns.py): the exact packing check against an
exhaustive search, maximal patterns, and the packing columns a plan's counts imply."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inferfleet.core.patterns import (
    PATTERN_CAP,
    class_supply,
    fits,
    is_chain,
    maximal_patterns,
    pack,
    supply_values,
)

SIZES = (1, 2, 3, 4, 5, 6, 8, 12)


def exhaustive(counts: Mapping[int, int], free: Sequence[int]) -> bool:
    items = sorted((s for s, k in counts.items() for _ in range(k)), reverse=True)
    left = list(free)

    def place(i: int) -> bool:
        if i == len(items):
            return True
        tried = set()
        for n, room in enumerate(left):
            if room >= items[i] and room not in tried:
                tried.add(room)
                left[n] -= items[i]
                if place(i + 1):
                    return True
                left[n] += items[i]
        return False

    return place(0)


instances = st.tuples(
    st.dictionaries(st.sampled_from(SIZES), st.integers(0, 4), min_size=1, max_size=3),
    st.lists(st.one_of(st.sampled_from((8, 12)), st.integers(0, 12)), min_size=1, max_size=4),
)


@settings(max_examples=300, deadline=None)
@given(instances)
def test_pack_finds_a_packing_exactly_when_one_exists(case: tuple[dict[int, int], list[int]]) -> None:
    counts, free = case
    got = pack(counts, free)
    assert (got is not None) == exhaustive(counts, free)
    assert fits([s for s, k in counts.items() for _ in range(k)], free) == (got is not None)
    if got is not None:
        assert len(got) == len(free)
        for node, room in zip(got, free, strict=True):
            assert sum(s * k for s, k in node.items()) <= room
        for s, k in counts.items():
            assert sum(node.get(s, 0) for node in got) == k


@settings(max_examples=200, deadline=None)
@given(instances)
def test_the_packing_columns_of_counts_that_pack_satisfy_their_rows(
    case: tuple[dict[int, int], list[int]],
) -> None:
    counts, free = case
    sizes = sorted(counts)
    if is_chain(sizes) or not exhaustive(counts, free):
        return
    supply = class_supply(0, free, sizes)
    x = supply_values(supply, [counts[s] for s in sizes])
    assert x is not None
    room = np.bincount(supply.group, weights=supply.use * x, minlength=len(supply.group_cap))
    assert np.all(room <= supply.group_cap + 1e-9)
    assert np.all(supply.holds.T @ x >= np.array([counts[s] for s in sizes]) - 1e-9)


@pytest.mark.parametrize(
    ("sizes", "chain"),
    [((1, 2, 4, 8), True), ((2, 6, 12), True), ((4,), True), ((2, 3), False), ((3, 6, 8), False)],
    ids=["powers of two", "2 | 6 | 12", "one size", "2 and 3", "3, 6 and 8"],
)
def test_threshold_rows_only_for_a_divisibility_chain(sizes: tuple[int, ...], chain: bool) -> None:
    assert is_chain(sizes) is chain


def test_two_four_device_replicas_fill_an_eight_device_node_that_a_three_device_row_would_cap() -> None:
    assert pack({4: 2, 3: 2}, [8, 6]) is not None  # 4 + 4 | 3 + 3
    assert pack({4: 2, 3: 3}, [8, 8]) is None  # 17 devices on 16


def test_more_patterns_than_the_cap_become_one_column_per_node_and_size() -> None:
    sizes = [3, 5, 7, 11]
    assert maximal_patterns(sizes, 576) is None
    supply = class_supply(0, [576, 576, 2], sizes)
    assert supply.kind == "nodes" and supply.n_cols == 2 * len(sizes)
    x = supply_values(supply, [10, 10, 10, 10])
    assert x is not None and np.all(supply.holds.T @ x >= 10)
    assert len(maximal_patterns([3, 5], 8) or []) <= PATTERN_CAP
