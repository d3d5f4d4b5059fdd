"""The request mix measured from token-length histograms, and its damping."""

from __future__ import annotations

import math
import random

import pytest

from inferfleet.core.mixfit import Histogram, Range, cdf, follow, measured_shares

EDGES = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0, math.inf)


def histogram(lengths: list[int], edges: tuple[float, ...] = EDGES) -> Histogram:
    """Cumulative counts as vLLM exposes them (le = each edge)."""
    return Histogram(edges, tuple(float(sum(n <= e for n in lengths)) for e in edges))


def test_cdf_is_exact_at_edges_and_linear_between() -> None:
    h = histogram([100] * 30 + [150] * 10 + [400] * 60)
    assert cdf(h, 100) == 30 and cdf(h, 200) == 40 and cdf(h, 500) == 100
    assert cdf(h, 350) == pytest.approx(40 + 60 * 0.5)
    assert cdf(h, 10**6) == 100 and cdf(h, -1) == 0


def test_shares_on_histogram_edges_are_exact() -> None:
    rng = random.Random(5)
    prompts = [rng.randint(1, 200) for _ in range(700)] + [rng.randint(201, 2000) for _ in range(300)]
    outputs = [rng.randint(1, 50) for _ in range(1000)]
    buckets = [Range(0, 200, 0, 50), Range(200, 2000, 0, 50)]
    shares = measured_shares(buckets, histogram(prompts), histogram(outputs))
    assert shares == pytest.approx((0.7, 0.3))


def test_longer_requests_count_in_the_edge_bucket_and_a_grid_multiplies() -> None:
    prompts = [100] * 50 + [9000] * 50  # 9000 is past the last bucket: the top one takes it
    outputs = [20] * 80 + [300] * 20
    grid = [Range(0, 200, 0, 50), Range(0, 200, 50, 500), Range(200, 2000, 0, 50), Range(200, 2000, 50, 500)]
    shares = measured_shares(grid, histogram(prompts), histogram(outputs))
    assert shares == pytest.approx((0.4, 0.1, 0.4, 0.1))  # independence: 0.5 x 0.8, ...
    assert sum(shares or ()) == pytest.approx(1.0)


def test_embeddings_have_no_output_dimension() -> None:
    shares = measured_shares(
        [Range(0, 100, 0, 0), Range(100, 500, 0, 0)], histogram([50] * 60 + [300] * 40), histogram([0] * 100)
    )
    assert shares == pytest.approx((0.6, 0.4))


def test_too_few_requests_measure_nothing() -> None:
    buckets = [Range(0, 200, 0, 50), Range(200, 2000, 0, 50)]
    assert measured_shares(buckets, histogram([100] * 49), histogram([10] * 49)) is None
    assert measured_shares(buckets, Histogram((), ()), Histogram((), ())) is None


def test_follow_keeps_the_plan_within_the_tolerance() -> None:
    assert follow(None, None, 0.1) is None
    assert follow(None, (0.7, 0.3), 0.1) == (0.7, 0.3)
    assert follow((0.5, 0.5), (0.55, 0.45), 0.1) == (0.5, 0.5)  # noise
    assert follow((0.5, 0.5), (0.9, 0.1), 0.1) == (0.9, 0.1)
    assert follow((0.5, 0.5), None, 0.1) == (0.5, 0.5)  # no reading: as planned
    assert follow((0.5, 0.5), (0.2, 0.3, 0.5), 0.1) == (0.2, 0.3, 0.5)  # other buckets
