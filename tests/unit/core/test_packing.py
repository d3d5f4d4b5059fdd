"""``pack``: replicas node by node, incumbents kept, biggest first into the tightest fit."""

from __future__ import annotations

import hypothesis.strategies as st
from hypothesis import given, settings

from inferfleet.core import patterns
from inferfleet.core.packing import pack


def test_mixed_sizes_on_12_device_nodes_leave_no_eight_stranded() -> None:
    # arrival order (4, 4, 4 on the first node) would strand an 8; biggest first does not
    nodes = [("n0", 12), ("n1", 12)]
    packed = pack({"small": (2, 4), "big": (2, 8)}, nodes)
    assert packed.unplaced == {}
    assert packed.per_node == {"big": {"n0": 1, "n1": 1}, "small": {"n0": 1, "n1": 1}}


def test_running_replicas_stay_where_they_are_up_to_the_planned_count() -> None:
    nodes = [("a", 8), ("b", 8), ("c", 8)]
    packed = pack({"p": (2, 4)}, nodes, {"p": {"c": 2, "a": 1}})
    assert packed.per_node == {"p": {"a": 1, "c": 1}}  # kept where they ran, by node name; none new


def test_what_fits_nowhere_is_unplaced_not_dropped() -> None:
    packed = pack({"huge": (3, 8)}, [("n0", 8), ("n1", 12)])
    assert packed.placed == 2 and packed.unplaced == {"huge": 1}


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(1, 16), min_size=1, max_size=6),
    st.dictionaries(
        st.sampled_from("abcd"), st.tuples(st.integers(0, 6), st.sampled_from([1, 2, 3, 4, 6, 8])), min_size=1
    ),
)
def test_never_over_a_node_and_every_replica_placed_or_counted(
    free: list[int], demand: dict[str, tuple[int, int]]
) -> None:
    nodes = [(f"n{i}", f) for i, f in enumerate(free)]
    packed = pack(demand, nodes)
    for node, cap in nodes:
        used = sum(packed.per_node.get(k, {}).get(node, 0) * demand[k][1] for k in demand)
        assert used <= cap
    for key, (count, _) in demand.items():
        assert sum(packed.per_node.get(key, {}).values()) + packed.unplaced.get(key, 0) == count


def test_small_replicas_spread_by_history_move_to_make_room_for_a_big_one() -> None:
    # the scheduler spread six 4-device replicas two per 12-device node: no node has 8 free
    nodes = [("n0", 12), ("n1", 12), ("n2", 12)]
    running = {"small": {"n0": 2, "n1": 2, "n2": 2}}
    packed = pack({"small": (6, 4), "big": (1, 8)}, nodes, running)
    assert packed.unplaced == {}
    assert packed.moves == {"small": {"n0": 1}}  # one move, off the first node
    assert packed.per_node == {"big": {"n0": 1}, "small": {"n0": 1, "n1": 3, "n2": 2}}


def test_no_move_when_the_moved_replicas_would_fit_nowhere() -> None:
    nodes = [("n0", 12), ("n1", 12)]
    packed = pack({"small": (6, 4), "big": (1, 8)}, nodes, {"small": {"n0": 3, "n1": 3}})
    assert packed.moves == {} and packed.unplaced == {"big": 1}


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(4, 16), min_size=1, max_size=5),
    st.lists(st.tuples(st.integers(0, 4), st.integers(0, 3)), min_size=1, max_size=5),
    st.integers(0, 3),
)
def test_moves_only_what_runs_and_never_overfills(
    free: list[int], small_where: list[tuple[int, int]], big: int
) -> None:
    nodes = [(f"n{i}", f) for i, f in enumerate(free)]
    running: dict[str, dict[str, int]] = {"small": {}}
    for i, n in small_where:
        if i < len(nodes) and n:
            running["small"][nodes[i][0]] = running["small"].get(nodes[i][0], 0) + n
    count = sum(running["small"].values())
    demand = {"small": (count, 2), "big": (big, 4)}
    packed = pack(demand, nodes, running)
    for node, cap in nodes:
        used = sum(packed.per_node.get(k, {}).get(node, 0) * demand[k][1] for k in demand)
        assert used <= cap
    for node, n in packed.moves.get("small", {}).items():
        assert n <= running["small"].get(node, 0)  # only running replicas move
    assert "big" not in packed.moves
    for key, (want, _) in demand.items():
        assert sum(packed.per_node.get(key, {}).values()) + packed.unplaced.get(key, 0) == want


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from([6, 8, 10, 12]), min_size=1, max_size=4),
    st.dictionaries(
        st.sampled_from("abcdef"), st.tuples(st.integers(1, 4), st.sampled_from([2, 3, 4, 5, 6])), min_size=1
    ),
)
def test_whenever_an_exact_packing_exists_every_replica_is_placed(
    free: list[int], demand: dict[str, tuple[int, int]]
) -> None:
    nodes = [(f"n{i}", f) for i, f in enumerate(free)]
    sizes = [size for count, size in demand.values() for _ in range(count)]
    packed = pack(demand, nodes)
    assert (packed.unplaced == {}) == patterns.fits(sizes, free)
    for node, cap in nodes:
        assert sum(packed.per_node.get(k, {}).get(node, 0) * demand[k][1] for k in demand) <= cap


def test_odd_sizes_the_greedy_cannot_pack_use_the_exact_packing() -> None:
    # best fit decreasing puts both 5s on one 12-device node and strands a 3; 5+4+3 twice fits
    nodes = [("n0", 12), ("n1", 12)]
    demand = {"five": (2, 5), "four": (2, 4), "three": (2, 3)}
    packed = pack(demand, nodes)
    assert packed.unplaced == {}
    for node, cap in nodes:
        assert sum(packed.per_node.get(k, {}).get(node, 0) * demand[k][1] for k in demand) == cap
