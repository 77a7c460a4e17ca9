"""Resource quantities as the scheduler counts them: ``"100m"`` → 100 millicores, ``"1Gi"`` → bytes.

The scheduler may import only the client library and itself, so it carries its own reader of
``resource.Quantity`` strings rather than borrowing the API server's validator. It reads the
same grammar — an optional sign, a decimal number, then a binary-SI suffix (``Ki`` … ``Ei``),
a decimal-SI suffix (``n u m "" k M G T P E``) or a decimal exponent (``e3``, ``E-2``) — and
converts exactly (``Fraction``), rounding *up* as upstream's ``Value()`` and ``MilliValue()`` do,
so ``"0.5m"`` of CPU is one millicore and ``"1.5"`` bytes is two.

Pods and nodes repeat the same few strings endlessly, so parsing is memoised.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction
from functools import lru_cache

_NUMBER = re.compile(r"([+-]?)(\d+(?:\.\d*)?|\.\d+)(.*)", re.DOTALL)
_EXPONENT = re.compile(r"[eE]([+-]?\d+)")
_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_FORMAT = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"


class QuantityError(ValueError):
    """A value that is not a resource quantity."""


@lru_cache(maxsize=8192)
def _parse_text(text: str) -> Fraction:
    match = _NUMBER.fullmatch(text)
    if match is None:
        raise QuantityError(f"{_FORMAT}: {text!r}")
    sign, number, suffix = match.groups()
    value = Fraction(number)
    if suffix in _BINARY:
        value *= 2 ** _BINARY[suffix]
    elif suffix in _DECIMAL:
        value *= Fraction(10) ** _DECIMAL[suffix]
    else:
        exponent = _EXPONENT.fullmatch(suffix)
        if exponent is None:
            raise QuantityError(f"unable to parse quantity's suffix: {text!r}")
        value *= Fraction(10) ** int(exponent.group(1))
    return -value if sign == "-" else value


def parse_quantity(raw: object) -> Fraction:
    """The exact value of a quantity given as a string (or, leniently, a JSON number)."""
    if isinstance(raw, str):
        return _parse_text(raw)
    if isinstance(raw, int) and not isinstance(raw, bool):
        return Fraction(raw)
    if isinstance(raw, float) and math.isfinite(raw):
        return Fraction(raw)
    raise QuantityError(f"a quantity must be a string, got {raw!r}")


def value(raw: object) -> int:
    """Whole units, rounded up (bytes of memory, a count of pods): upstream's ``Quantity.Value()``."""
    return math.ceil(parse_quantity(raw))


def milli_value(raw: object) -> int:
    """Thousandths, rounded up (millicores of CPU): upstream's ``Quantity.MilliValue()``."""
    return math.ceil(parse_quantity(raw) * 1000)
