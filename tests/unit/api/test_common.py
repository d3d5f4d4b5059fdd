"""Quantities: the one parser of every resource field, and its agreement with the CRD's schema
(the pattern the API server checks strings against, the minimum it checks integers against)."""

from __future__ import annotations

import decimal
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inferfleet.api.common import QUANTITY_PATTERN, parse_quantity, parse_size

D = decimal.Decimal


@pytest.mark.parametrize(
    ("written", "value"),
    [
        pytest.param(4, D(4), id="an-integer"),
        pytest.param("0.5", D("0.5"), id="a-fraction"),
        pytest.param(".5", D("0.5"), id="no-leading-digit"),
        pytest.param("5.", D(5), id="a-trailing-point"),
        pytest.param("+1", D(1), id="a-plus-sign"),
        pytest.param("500m", D("0.5"), id="millis"),
        pytest.param("1n", D("1e-9"), id="nanos"),
        pytest.param("64G", D(64 * 10**9), id="decimal-giga"),
        pytest.param("1.5Gi", D(1536 * 2**20), id="binary-gibi"),
        pytest.param("1E", D(10**18), id="exa-not-an-exponent"),
        pytest.param("12E3", D(12000), id="an-upper-case-exponent"),
        pytest.param("2e-3", D("0.002"), id="a-negative-exponent"),
        pytest.param("1Ei", D(2**60), id="exbi"),
    ],
)
def test_quantities_parse_as_kubernetes_reads_them(written: Any, value: decimal.Decimal) -> None:
    assert parse_quantity(written) == value


@pytest.mark.parametrize(
    ("written", "words"),
    [
        pytest.param(0.5, 'write fractional quantities as strings ("0.5")', id="a-yaml-float"),
        pytest.param(True, "not a boolean", id="a-boolean"),
        pytest.param(-1, "must not be negative", id="a-negative-integer"),
        pytest.param(2**63, "must be at most 9223372036854775807", id="past-int64"),
        pytest.param("-1", "must be a non-negative quantity", id="a-negative-string"),
        pytest.param("32GB", "must be a non-negative quantity", id="gb"),
        pytest.param("1e1.5", "must be a non-negative quantity", id="a-fractional-exponent"),
        pytest.param("1e100", "must be a non-negative quantity", id="a-three-digit-exponent"),
        pytest.param("1" * 33, "at most 32 characters", id="too-long"),
        pytest.param("", "must be a non-negative quantity", id="empty"),
    ],
)
def test_what_is_no_quantity_is_refused_with_words(written: Any, words: str) -> None:
    with pytest.raises(ValueError, match=re.escape(words)):
        parse_quantity(written)


def test_sizes_are_quantities_in_bytes() -> None:
    assert parse_size("80Gi") == 80 * 2**30
    assert parse_size("44G") == 44e9


QUANTITY_ALPHABET = "0123456789.+-eEiKMGTPnumk "


@given(st.text(alphabet=QUANTITY_ALPHABET, max_size=12))
def test_the_parser_accepts_exactly_what_the_crd_pattern_matches(text: str) -> None:
    """Strings: the API server checks the pattern (and maxLength 32); the parser is its twin."""
    matches = re.fullmatch(QUANTITY_PATTERN.removeprefix("^").removesuffix("$"), text) is not None
    try:
        parse_quantity(text)
        parsed = True
    except ValueError:
        parsed = False
    assert parsed == matches, text


@given(st.integers(min_value=-(2**40), max_value=2**70))
def test_integers_are_quantities_when_not_negative_and_an_int64(value: int) -> None:
    """Integers: the API server checks minimum 0, and reads JSON past int64 as no integer."""
    if value < 0 or value >= 2**63:
        with pytest.raises(ValueError):
            parse_quantity(value)
    else:
        assert parse_quantity(value) == value
