"""Kubernetes' CEL library for ``x-kubernetes-validations`` rules, on the cel-expr-python engine.

Upstream's rules run in cel-go with the standard macros, the ``strings`` extension and the
libraries of ``k8s.io/apiserver/pkg/cel/library``. The engine brings the macros, ``strings``
(including ``format``), ``math`` and ``optional``; this module adds the Kubernetes functions as
one engine extension: lists (``isSorted``, ``sum``, ``min``, ``max``, ``indexOf``,
``lastIndexOf``), regex (``find``, ``findAll``), ``url()``, ``quantity()``, ``ip()`` and
``cidr()``.

The engine cannot carry opaque Python objects, so URLs, quantities, IPs and CIDRs are small
tagged maps (``{"@kubelab.cel": "url", "value": ...}``): their methods check the tag and fail
with ``no such overload`` on anything else, as cel-go's dispatch does. Regexes are RE2 (the
``re2`` module), the syntax and linear-time guarantee upstream gets from Go's ``regexp``, so
no rule can backtrack the server into a hang.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import re2
from cel_expr_python import cel
from cel_expr_python.ext import ext_math, ext_optional, ext_strings

_TAG = "@kubelab.cel"
_STATUS_PREFIX = re.compile(r"^[A-Z_]+: ")
_STATUS_SUFFIX = re.compile(r" \[[A-Z_]+\]$")
_MISSING_KEY = re.compile(r'Key not found in map : "(.*)"$')
_T = cel.Type
_LIST = _T.List(_T.DYN)
_OPAQUE = _T.Map(_T.STRING, _T.DYN)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class NoSuchOverloadError(TypeError):
    """A library method applied to a value of the wrong kind (cel-go's ``no such overload``)."""

    def __init__(self) -> None:
        super().__init__("no such overload")


def _tagged(kind: str, value: Any) -> dict[str, Any]:
    return {_TAG: kind, "value": value}


def _untag(kind: str, value: Any) -> Any:
    if not isinstance(value, dict) or value.get(_TAG) != kind:
        raise NoSuchOverloadError()
    return value["value"]


# --- lists ----------------------------------------------------------------------------------------


def _is_sorted(items: list[Any]) -> bool:
    return all(items[i] <= items[i + 1] for i in range(len(items) - 1))


def _sum(items: list[Any]) -> Any:
    total: Any = 0
    for item in items:
        total = total + item
    return total


def _min(items: list[Any]) -> Any:
    if not items:
        raise ValueError("min called on empty list")
    return min(items)


def _max(items: list[Any]) -> Any:
    if not items:
        raise ValueError("max called on empty list")
    return max(items)


def _index_of(items: list[Any], wanted: Any) -> int:
    for index, item in enumerate(items):
        if _same(item, wanted):
            return index
    return -1


def _last_index_of(items: list[Any], wanted: Any) -> int:
    for index in range(len(items) - 1, -1, -1):
        if _same(items[index], wanted):
            return index
    return -1


def _same(a: Any, b: Any) -> bool:
    """CEL equality: booleans never equal numbers (Python's ``True == 1`` does not hold in CEL)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


# --- regex ----------------------------------------------------------------------------------------


_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # a bad pattern is the rule author's error, answered in the response


@lru_cache(maxsize=256)
def _regex(pattern: str) -> Any:
    try:
        return re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else exc
        raise ValueError(f"error parsing regexp: {reason}") from exc


def _find(text: str, pattern: str) -> str:
    match = _regex(pattern).search(text)
    return "" if match is None else match.group(0)


def _find_all(text: str, pattern: str) -> list[str]:
    return [match.group(0) for match in _regex(pattern).finditer(text)]


def _find_all_limited(text: str, pattern: str, limit: int) -> list[str]:
    if limit == 0:
        return []
    found = _find_all(text, pattern)
    return found if limit < 0 else found[:limit]


# --- url ------------------------------------------------------------------------------------------


def _parse_url(text: str) -> dict[str, Any]:
    """Go's ``url.ParseRequestURI``: absolute URLs or absolute paths, no fragments."""
    if not text or "#" in text or any(ch.isspace() for ch in text):
        raise ValueError(f"URL parse error during conversion from string: {text!r}")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"URL parse error during conversion from string: {exc}") from exc
    if not parts.scheme and not text.startswith("/"):
        raise ValueError(f"URL parse error during conversion from string: {text!r}: invalid URI for request")
    host = parts.netloc.rsplit("@", 1)[-1]
    return _tagged(
        "url",
        {
            "scheme": parts.scheme,
            "host": host,
            "hostname": parts.hostname or "",
            "port": "" if port is None else str(port),
            "path": parts.path,
            "query": parts.query,
        },
    )


def _is_url(text: str) -> bool:
    try:
        _parse_url(text)
    except ValueError:
        return False
    return True


def _url_part(name: str) -> Callable[[Any], str]:
    def part(url: Any) -> str:
        return str(_untag("url", url)[name])

    return part


def _url_query(url: Any) -> dict[str, list[str]]:
    query: dict[str, list[str]] = {}
    raw = str(_untag("url", url)["query"])
    for key, value in parse_qsl(raw, keep_blank_values=True):
        query.setdefault(key, []).append(value)
    return query


# --- quantity -------------------------------------------------------------------------------------


def _parse_quantity(text: str) -> Any:
    # validation.py (which imports the CEL rules) defines Quantity; importing it here at module
    # level would be circular.
    from control.resources.validation import InvalidQuantityError, Quantity

    try:
        return Quantity.parse(text)
    except InvalidQuantityError as exc:
        raise ValueError(f"quantities must match the regular expression: {exc}") from exc


def _quantity(text: str) -> dict[str, Any]:
    return _tagged("quantity", str(_parse_quantity(text)))


def _is_quantity(text: str) -> bool:
    try:
        _parse_quantity(text)
    except ValueError:
        return False
    return True


def _q(value: Any) -> Any:
    return _parse_quantity(_untag("quantity", value))


def _q_operand(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return _parse_quantity(str(value))
    return _q(value)


def _q_result(quantity: Any) -> dict[str, Any]:
    return _tagged("quantity", str(quantity))


def _q_sign(value: Any) -> int:
    amount = _q(value).value
    return (amount > 0) - (amount < 0)


def _q_as_integer(value: Any) -> int:
    amount = _q(value).value
    if amount.denominator != 1 or not -(2**63) <= amount < 2**63:
        raise ValueError("cannot convert value to integer")
    return int(amount)


def _q_add(value: Any, other: Any) -> dict[str, Any]:
    return _q_result(_q(value).add(_q_operand(other)))


def _q_sub(value: Any, other: Any) -> dict[str, Any]:
    first, second = _q(value), _q_operand(other)
    return _q_result(type(first)(first.value - second.value, first.format))


# --- ip and cidr ----------------------------------------------------------------------------------


def _parse_ip(text: str) -> IPAddress:
    try:
        address = ipaddress.ip_address(text)
    except ValueError as exc:
        raise ValueError(f"IP Address {text!r} parse error during conversion from string: {exc}") from exc
    if isinstance(address, ipaddress.IPv6Address) and (address.ipv4_mapped or address.scope_id):
        raise ValueError(f"IP Address {text!r} with a zone or an IPv4-mapped form is not allowed")
    return address


def _ip(text: str) -> dict[str, Any]:
    return _tagged("ip", str(_parse_ip(text)))


def _is_ip(text: str) -> bool:
    try:
        _parse_ip(text)
    except ValueError:
        return False
    return True


def _address(value: Any) -> IPAddress:
    return ipaddress.ip_address(_untag("ip", value))


def _parse_cidr(text: str) -> tuple[IPAddress, IPNetwork]:
    try:
        interface = ipaddress.ip_interface(text)
    except ValueError as exc:
        raise ValueError(f"network address parse error during conversion from string: {exc}") from exc
    if "/" not in text:
        raise ValueError(f"network address parse error during conversion from string: {text!r}")
    return interface.ip, interface.network


def _cidr(text: str) -> dict[str, Any]:
    address, network = _parse_cidr(text)
    return _tagged("cidr", f"{address}/{network.prefixlen}")


def _is_cidr(text: str) -> bool:
    try:
        _parse_cidr(text)
    except ValueError:
        return False
    return True


def _cidr_parts(value: Any) -> tuple[IPAddress, IPNetwork]:
    return _parse_cidr(_untag("cidr", value))


def _contains_ip(value: Any, other: Any) -> bool:
    address = _parse_ip(other) if isinstance(other, str) else _address(other)
    return address in _cidr_parts(value)[1]


def _contains_cidr(value: Any, other: Any) -> bool:
    inner = _parse_cidr(other)[1] if isinstance(other, str) else _cidr_parts(other)[1]
    outer = _cidr_parts(value)[1]
    return inner.version == outer.version and inner.subnet_of(outer)


def _masked(value: Any) -> dict[str, Any]:
    return _tagged("cidr", str(_cidr_parts(value)[1]))


def _ip_test(test: Callable[[IPAddress], bool]) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        return test(_address(value))

    return check


def _global_unicast(address: IPAddress) -> bool:
    """Go's IsGlobalUnicast: not unspecified, loopback, link-local, multicast or broadcast."""
    return not (
        address.is_unspecified
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address == ipaddress.IPv4Address("255.255.255.255")
    )


def _link_local_multicast(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv4Address):
        return address in ipaddress.IPv4Network("224.0.0.0/24")
    return address.is_multicast and (address.packed[1] & 0x0F) == 0x02


def _string_of(value: Any) -> str:
    for kind in ("ip", "cidr", "quantity"):
        if isinstance(value, dict) and value.get(_TAG) == kind:
            return str(value["value"])
    raise NoSuchOverloadError()


# --- declarations ---------------------------------------------------------------------------------


def _overload(
    name: str,
    result: Any,
    parameters: Sequence[Any],
    impl: Callable[..., Any],
    *,
    member: bool = False,
) -> Any:
    return cel.Overload(name, result, list(parameters), is_member=member, impl=impl)


def _function(name: str, *overloads: Any) -> Any:
    return cel.FunctionDecl(name, list(overloads))


def kubernetes_library() -> Any:
    """The engine extension with Kubernetes' functions (lists, regex, url, quantity, ip, cidr)."""
    s, b, i, d, dyn = _T.STRING, _T.BOOL, _T.INT, _T.DOUBLE, _T.DYN
    member = {"member": True}
    functions = [
        _function("isSorted", _overload("list_is_sorted", b, [_LIST], _is_sorted, **member)),
        _function("sum", _overload("list_sum", dyn, [_LIST], _sum, **member)),
        _function("min", _overload("list_min", dyn, [_LIST], _min, **member)),
        _function("max", _overload("list_max", dyn, [_LIST], _max, **member)),
        _function(
            "indexOf",
            _overload("list_index_of", i, [_LIST, dyn], _index_of, **member),
        ),
        _function(
            "lastIndexOf",
            _overload("list_last_index_of", i, [_LIST, dyn], _last_index_of, **member),
        ),
        _function("find", _overload("string_find", s, [s, s], _find, **member)),
        _function(
            "findAll",
            _overload("string_find_all", _T.List(s), [s, s], _find_all, **member),
            _overload("string_find_all_n", _T.List(s), [s, s, i], _find_all_limited, **member),
        ),
        _function("url", _overload("string_to_url", _OPAQUE, [s], _parse_url)),
        _function("isURL", _overload("is_url_string", b, [s], _is_url)),
        *(
            _function(name, _overload(f"url_{name}", s, [_OPAQUE], _url_part(part), **member))
            for name, part in (
                ("getScheme", "scheme"),
                ("getHost", "host"),
                ("getHostname", "hostname"),
                ("getPort", "port"),
                ("getEscapedPath", "path"),
            )
        ),
        _function(
            "getQuery", _overload("url_get_query", _T.Map(s, _T.List(s)), [_OPAQUE], _url_query, **member)
        ),
        _function("quantity", _overload("string_to_quantity", _OPAQUE, [s], _quantity)),
        _function("isQuantity", _overload("is_quantity_string", b, [s], _is_quantity)),
        _function("sign", _overload("quantity_sign", i, [_OPAQUE], _q_sign, **member)),
        _function(
            "isInteger",
            _overload("quantity_is_integer", b, [_OPAQUE], lambda q: _q(q).is_integer(), **member),
        ),
        _function("asInteger", _overload("quantity_as_integer", i, [_OPAQUE], _q_as_integer, **member)),
        _function(
            "asApproximateFloat",
            _overload("quantity_as_float", d, [_OPAQUE], lambda q: float(_q(q).value), **member),
        ),
        _function("add", _overload("quantity_add", _OPAQUE, [_OPAQUE, dyn], _q_add, **member)),
        _function("sub", _overload("quantity_sub", _OPAQUE, [_OPAQUE, dyn], _q_sub, **member)),
        _function(
            "compareTo",
            _overload(
                "quantity_compare_to", i, [_OPAQUE, _OPAQUE], lambda a, c: _q(a).compare(_q(c)), **member
            ),
        ),
        _function(
            "isGreaterThan",
            _overload(
                "quantity_greater", b, [_OPAQUE, _OPAQUE], lambda a, c: _q(a).compare(_q(c)) > 0, **member
            ),
        ),
        _function(
            "isLessThan",
            _overload(
                "quantity_less", b, [_OPAQUE, _OPAQUE], lambda a, c: _q(a).compare(_q(c)) < 0, **member
            ),
        ),
        _function(
            "ip",
            _overload("string_to_ip", _OPAQUE, [s], _ip),
            _overload(
                "cidr_ip", _OPAQUE, [_OPAQUE], lambda c: _tagged("ip", str(_cidr_parts(c)[0])), **member
            ),
        ),
        _function("isIP", _overload("is_ip_string", b, [s], _is_ip)),
        _function("family", _overload("ip_family", i, [_OPAQUE], lambda a: _address(a).version, **member)),
        *(
            _function(name, _overload(f"ip_{name}", b, [_OPAQUE], _ip_test(test), **member))
            for name, test in (
                ("isUnspecified", lambda a: a.is_unspecified),
                ("isLoopback", lambda a: a.is_loopback),
                ("isLinkLocalMulticast", _link_local_multicast),
                ("isLinkLocalUnicast", lambda a: a.is_link_local and not a.is_multicast),
                ("isGlobalUnicast", _global_unicast),
            )
        ),
        _function("cidr", _overload("string_to_cidr", _OPAQUE, [s], _cidr)),
        _function("isCIDR", _overload("is_cidr_string", b, [s], _is_cidr)),
        _function("containsIP", _overload("cidr_contains_ip", b, [_OPAQUE, dyn], _contains_ip, **member)),
        _function(
            "containsCIDR", _overload("cidr_contains_cidr", b, [_OPAQUE, dyn], _contains_cidr, **member)
        ),
        _function(
            "prefixLength",
            _overload("cidr_prefix_length", i, [_OPAQUE], lambda c: _cidr_parts(c)[1].prefixlen, **member),
        ),
        _function("masked", _overload("cidr_masked", _OPAQUE, [_OPAQUE], _masked, **member)),
        _function("string", _overload("kubernetes_to_string", s, [_OPAQUE], _string_of)),
    ]
    return cel.CelExtension("kubernetes", functions)


def standard_extensions() -> list[Any]:
    """The extensions every Kubernetes CEL environment has: strings, math, optional and this
    module's Kubernetes library (CRD rules and admission expressions alike)."""
    return [ext_strings.ExtStrings(), ext_math.ExtMath(), ext_optional.ExtOptional(), kubernetes_library()]


def engine_text(exc: Exception | str) -> str:
    """The engine's message without its status code prefix and suffix (``INVALID_ARGUMENT: ...``)."""
    return _STATUS_SUFFIX.sub("", _STATUS_PREFIX.sub("", str(exc), count=1))


def is_no_such_overload(text: str) -> bool:
    return text.startswith(("No matching overloads", "no such overload"))


def cel_go_text(text: str) -> str:
    """A runtime error in cel-go's words (``no such key: x``, ``division by zero``)."""
    missing = _MISSING_KEY.match(text)
    if missing:
        return f"no such key: {missing.group(1)}"
    if is_no_such_overload(text):
        return "no such overload"
    if text == "divide by zero":
        return "division by zero"
    return text
