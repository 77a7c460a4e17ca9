"""Quantity strings in the scheduler's units: exact, rounded up, and bad input refused."""

from __future__ import annotations

from fractions import Fraction

import pytest

from control.scheduler.quantity import QuantityError, milli_value, parse_quantity, value


@pytest.mark.parametrize(
    ("raw", "millis", "units"),
    [
        ("100m", 100, 1),
        ("1", 1000, 1),
        ("2.5", 2500, 3),
        ("0.5m", 1, 1),  # rounded up, as MilliValue()
        ("128Mi", 128 * 2**20 * 1000, 128 * 2**20),
        ("1Gi", 2**30 * 1000, 2**30),
        ("1.5Gi", 3 * 2**29 * 1000, 3 * 2**29),
        ("1e3", 1_000_000, 1000),
        ("1E3", 1_000_000, 1000),
        ("5e-3", 5, 1),
        ("1k", 1_000_000, 1000),
        ("1M", 10**9, 10**6),
        ("2G", 2 * 10**12, 2 * 10**9),
        ("1E", 10**21, 10**18),
        ("250u", 1, 1),
        ("3n", 1, 1),
        (".5", 500, 1),
        ("+2", 2000, 2),
        ("-1", -1000, -1),
        ("0", 0, 0),
        (2, 2000, 2),
        (0.25, 250, 1),
    ],
)
def test_values(raw, millis, units):
    assert milli_value(raw) == millis
    assert value(raw) == units


def test_parse_is_exact():
    assert parse_quantity("0.1") * 3 == Fraction(3, 10)
    assert parse_quantity("1Ki") == 1024


@pytest.mark.parametrize(
    "raw", ["", "abc", "1K", "1 Gi", "1Gib", "1ee3", "m", "--1", "1.2.3", None, True, [], float("inf")]
)
def test_bad_quantities_are_refused(raw):
    with pytest.raises(QuantityError):
        parse_quantity(raw)
