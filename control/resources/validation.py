"""Validation for built-in kinds, as kube-apiserver's strategies do it.

Every error here surfaces in a 422 that users read through kubectl
(``The Deployment "web" is invalid: spec.selector: Required value``), so field paths,
error types and detail strings follow upstream's validation code word for word:
apimachinery's ObjectMeta and name/label/selector rules, pkg/apis/*/validation for each
group, and the registry strategies' extra update rules (e.g. an apps/v1 selector is
immutable). Errors are collected, not raised, and returned in upstream's order, so a
request with three mistakes gets three causes.

Objects arrive as decoded JSON already defaulted (``control.resources.defaults``) and
already type-checked against the OpenAPI schema, so the code reads plain dicts and lists
but never trusts them blindly: a value of the wrong shape is treated as absent rather
than crashing validation.

Kubelab-specific choices (each also noted where it happens):

- Go renders some bad values with ``%#v`` (``map[string]string{"app":"web"}``); maps,
  string lists and label selectors are rendered the same way, other structured values
  as compact JSON.
- The pod update ``Forbidden`` message lists the changed fields instead of Go's
  ``cmp.Diff`` output.
- Endpoints/EndpointSlice addresses may be loopback: kubelab's pod network lives in
  127.0.0.0/8 (DESIGN.md), which upstream's non-special-IP rule would reject.

The module also defines :class:`Quantity` (resource.Quantity: parse, compare, canonical
form), which validation needs for resource limits and defaulting needs for a pod's QoS.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import math
import re
import zoneinfo
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any
from urllib.parse import urlsplit

import orjson

from control.resources import certificates, cron, hpa_conversion
from control.resources.admission_cel import ExpressionType, expression_error
from control.resources.crd_cel import validate_rules, validate_schema_rules
from control.resources.crd_validation import validate_custom_resource
from control.resources.registry import FieldError, NameRule, ResourceType, field_error

Obj = dict[str, Any]
Errors = list[FieldError]

# --- resource quantities ------------------------------------------------------------

QUANTITY_FORMAT_ERROR = (
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
)
_QUANTITY_RE = re.compile(r"^([+-]?)([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(.*)$")
_BINARY_SUFFIXES = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL_SUFFIXES = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_DECIMAL_BY_EXPONENT = {exponent: suffix for suffix, exponent in _DECIMAL_SUFFIXES.items()}
_BINARY_BY_POWER = {power // 10: suffix for suffix, power in _BINARY_SUFFIXES.items()}
_EXPONENT_SUFFIX_RE = re.compile(r"^[eE]([+-]?[0-9]+)$")


class InvalidQuantityError(ValueError):
    """A string that is not a resource.Quantity (upstream rejects it when decoding)."""


@dataclass(frozen=True)
class Quantity:
    """An exact resource quantity (``500m``, ``1.5Gi``, ``1e3``) with its original format."""

    value: Fraction
    format: str  # "BinarySI", "DecimalSI" or "DecimalExponent"

    @classmethod
    def parse(cls, raw: Any) -> Quantity:
        if isinstance(raw, bool) or raw is None:
            raise InvalidQuantityError(QUANTITY_FORMAT_ERROR)
        if isinstance(raw, int | float):
            if isinstance(raw, float) and not math.isfinite(raw):
                raise InvalidQuantityError(QUANTITY_FORMAT_ERROR)
            return cls(Fraction(raw), "DecimalSI")
        text = str(raw)
        match = _QUANTITY_RE.match(text)
        if match is None:
            raise InvalidQuantityError(QUANTITY_FORMAT_ERROR)
        sign, number, suffix = match.groups()
        if not re.fullmatch(r"[eEinumkKMGTP]*[-+]?[0-9]*", suffix):
            raise InvalidQuantityError(QUANTITY_FORMAT_ERROR)
        value = Fraction(number)
        if suffix in _BINARY_SUFFIXES:
            value *= 2 ** _BINARY_SUFFIXES[suffix]
            fmt = "BinarySI"
        elif suffix in _DECIMAL_SUFFIXES:
            value *= Fraction(10) ** _DECIMAL_SUFFIXES[suffix]
            fmt = "DecimalSI"
        else:
            exponent = _EXPONENT_SUFFIX_RE.match(suffix)
            if exponent is None:
                raise InvalidQuantityError("unable to parse quantity's suffix")
            value *= Fraction(10) ** int(exponent.group(1))
            fmt = "DecimalExponent"
        return cls(-value if sign == "-" else value, fmt)

    def compare(self, other: Quantity) -> int:
        return (self.value > other.value) - (self.value < other.value)

    def add(self, other: Quantity) -> Quantity:
        return Quantity(self.value + other.value, self.format)

    def is_zero(self) -> bool:
        return self.value == 0

    def is_integer(self) -> bool:
        return self.value.denominator == 1

    def __str__(self) -> str:
        """The canonical form, as upstream's Quantity.String()."""
        value = self.value
        if value == 0:
            return "0"
        sign = "-" if value < 0 else ""
        magnitude = abs(value)
        fmt = self.format
        if fmt == "BinarySI" and (magnitude < 1024 or magnitude.denominator != 1):
            fmt = "DecimalSI"
        if fmt == "BinarySI":
            number, power = int(magnitude), 0
            while number % 1024 == 0 and power < 6:
                number //= 1024
                power += 1
            return f"{sign}{number}{_BINARY_BY_POWER.get(power, '')}"
        scaled, exponent = magnitude, 0
        while scaled.denominator != 1 and exponent > -9:
            scaled *= 10
            exponent -= 1
        mantissa = math.ceil(scaled)
        while mantissa % 10 == 0:
            mantissa //= 10
            exponent += 1
        shift = exponent % 3
        mantissa *= 10**shift
        exponent -= shift
        if fmt == "DecimalExponent":
            return f"{sign}{mantissa}" + (f"e{exponent}" if exponent else "")
        if exponent > 18:
            mantissa *= 10 ** (exponent - 18)
            exponent = 18
        return f"{sign}{mantissa}{_DECIMAL_BY_EXPONENT[exponent]}"


# --- error constructors and value rendering ---------------------------------------------


class _GoValue:
    """A bad value printed as Go's ``%#v`` would (the registry renders it with str())."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"_GoValue({self.text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _GoValue) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)


def _go_quote(value: Any) -> str:
    return orjson.dumps(str(value)).decode()


def go_string_map(value: Any) -> _GoValue:
    """``map[string]string{"a":"b"}`` (keys sorted, as Go prints maps)."""
    if not isinstance(value, dict):
        return _GoValue("map[string]string(nil)")
    body = ", ".join(f"{_go_quote(k)}:{_go_quote(value[k])}" for k in sorted(value))
    return _GoValue("map[string]string{" + body + "}")


def go_string_list(value: Any) -> _GoValue:
    """``[]string{"a", "b"}``."""
    if not isinstance(value, list):
        return _GoValue("[]string(nil)")
    return _GoValue("[]string{" + ", ".join(_go_quote(item) for item in value) + "}")


def go_label_selector(selector: Any) -> _GoValue:
    """``v1.LabelSelector{MatchLabels:..., MatchExpressions:...}`` as in upstream messages."""
    selector = selector if isinstance(selector, dict) else {}
    labels = selector.get("matchLabels")
    match_labels = go_string_map(labels).text if isinstance(labels, dict) else "map[string]string(nil)"
    expressions = selector.get("matchExpressions")
    if isinstance(expressions, list) and expressions:
        items = []
        for expr in expressions:
            expr = expr if isinstance(expr, dict) else {}
            values = expr.get("values")
            rendered = go_string_list(values).text[len("[]string") :] if isinstance(values, list) else "(nil)"
            items.append(
                "v1.LabelSelectorRequirement{"
                f"Key:{_go_quote(expr.get('key') or '')}, "
                f"Operator:{_go_quote(expr.get('operator') or '')}, Values:[]string{rendered}}}"
            )
        match_expressions = "[]v1.LabelSelectorRequirement{" + ", ".join(items) + "}"
    else:
        match_expressions = "[]v1.LabelSelectorRequirement(nil)"
    return _GoValue(f"v1.LabelSelector{{MatchLabels:{match_labels}, MatchExpressions:{match_expressions}}}")


def go_int_or_string(value: Any) -> _GoValue:
    """``intstr.IntOrString{Type:1, IntVal:0, StrVal:"25%"}`` (its String() has a pointer receiver)."""
    if isinstance(value, str):
        return _GoValue(f"intstr.IntOrString{{Type:1, IntVal:0, StrVal:{_go_quote(value)}}}")
    return _GoValue(f'intstr.IntOrString{{Type:0, IntVal:{_int(value)}, StrVal:""}}')


def _go_json(value: Any) -> _GoValue:
    """Structured values Go would print as structs: rendered as compact JSON."""
    return _GoValue(orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode())


def _go_time(value: Any) -> Any:
    """RFC 3339 timestamps rendered as Go's time.Time String() (``2025-01-02 03:04:05 +0000 UTC``)."""
    if isinstance(value, str):
        match = re.fullmatch(r"(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(\.\d+)?Z", value)
        if match:
            return _GoValue(f"{match.group(1)} {match.group(2)}{match.group(3) or ''} +0000 UTC")
    if value is None:
        return None
    return value


def _required(path: str, detail: str = "") -> FieldError:
    return field_error("FieldValueRequired", path, detail)


def _invalid(path: str, value: Any, detail: str) -> FieldError:
    return field_error("FieldValueInvalid", path, detail, value=value)


def _forbidden(path: str, detail: str) -> FieldError:
    return field_error("FieldValueForbidden", path, detail)


def _duplicate(path: str, value: Any) -> FieldError:
    return field_error("FieldValueDuplicate", path, value=value)


def _not_found(path: str, value: Any, detail: str = "") -> FieldError:
    return field_error("FieldValueNotFound", path, detail, value=value)


def _not_supported(path: str, value: Any, supported: Iterable[str]) -> FieldError:
    quoted = ", ".join(_go_quote(item) for item in supported)
    detail = f"supported values: {quoted}" if quoted else ""
    return field_error("FieldValueNotSupported", path, detail, value=value)


def _too_long(path: str, max_length: int) -> FieldError:
    return field_error("FieldValueTooLong", path, f"may not be more than {max_length} bytes")


def _too_many(path: str, actual: int, maximum: int) -> FieldError:
    return field_error("FieldValueTooMany", path, f"must have at most {maximum} items", value=actual)


# --- reading decoded JSON defensively ------------------------------------------------------


def _map(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _maps(value: Any) -> list[Obj]:
    return [item if isinstance(item, dict) else {} for item in _list(value)]


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    return int(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _prune(value: Any) -> Any:
    """Drop zero values so JSON compares as Go's semantic DeepEqual compares structs
    (absent, null, "", 0, false, {} and [] all read back as the zero value)."""
    if isinstance(value, dict):
        pruned = {}
        for key, item in value.items():
            item = _prune(item)
            if not _is_zero(item):
                pruned[key] = item
        return pruned
    if isinstance(value, list):
        return [_prune(item) for item in value]
    return value


def _is_zero(value: Any) -> bool:
    if value is None or value is False:
        return True
    if isinstance(value, str | dict | list):
        return not value
    return _is_int(value) and value == 0


def _equal(a: Any, b: Any) -> bool:
    """Semantic equality: the two values are equal once zero values are pruned."""
    if a == b or (_is_zero(a) and _is_zero(b)):
        return True
    if isinstance(a, dict) or isinstance(b, dict):
        if not (isinstance(a, dict) or _is_zero(a)) or not (isinstance(b, dict) or _is_zero(b)):
            return False
        a, b = a or {}, b or {}
        return all(_equal(a.get(key), b.get(key)) for key in a.keys() | b.keys())
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    return False


# --- name and string formats (k8s.io/apimachinery/pkg/util/validation) ------------------

DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN_FMT = DNS1123_LABEL_FMT + "(\\." + DNS1123_LABEL_FMT + ")*"
DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
LABEL_VALUE_FMT = "(" + QUALIFIED_NAME_FMT + ")?"
CONFIG_MAP_KEY_FMT = "[-._a-zA-Z0-9]+"
WILDCARD_DNS1123_SUBDOMAIN_FMT = "\\*\\." + DNS1123_SUBDOMAIN_FMT
PERCENT_FMT = "[0-9]+%"
HTTP_HEADER_NAME_FMT = "[-A-Za-z0-9]+"
C_IDENTIFIER_FMT = "[A-Za-z_][A-Za-z0-9_]*"

_DNS1123_LABEL_RE = re.compile("^" + DNS1123_LABEL_FMT + "$")
_DNS1123_SUBDOMAIN_RE = re.compile("^" + DNS1123_SUBDOMAIN_FMT + "$")
_DNS1035_LABEL_RE = re.compile("^" + DNS1035_LABEL_FMT + "$")
_QUALIFIED_NAME_RE = re.compile("^" + QUALIFIED_NAME_FMT + "$")
_LABEL_VALUE_RE = re.compile("^" + LABEL_VALUE_FMT + "$")
_CONFIG_MAP_KEY_RE = re.compile("^" + CONFIG_MAP_KEY_FMT + "$")
_WILDCARD_RE = re.compile("^" + WILDCARD_DNS1123_SUBDOMAIN_FMT + "$")
_PERCENT_RE = re.compile("^" + PERCENT_FMT + "$")
_HTTP_HEADER_NAME_RE = re.compile("^" + HTTP_HEADER_NAME_FMT + "$")
_HTTP_PATH_RE = re.compile(r"^[A-Za-z0-9/\-._~%!$&'()*+,;=:]+$")
_PORT_NAME_CHARSET_RE = re.compile("^[-a-z0-9]+$")


def regex_error(message: str, fmt: str, *examples: str) -> str:
    """Upstream's RegexError: the message, examples and the regex, in its exact wording."""
    if not examples:
        return f"{message} (regex used for validation is '{fmt}')"
    shown = " or ".join(f"'{example}', " for example in examples)
    return f"{message} (e.g. {shown}regex used for validation is '{fmt}')"


def _max_len_error(length: int) -> str:
    return f"must be no more than {length} characters"


def _inclusive_range_error(low: int, high: int) -> str:
    return f"must be between {low} and {high}, inclusive"


def is_dns1123_label(value: str) -> list[str]:
    errors = []
    if len(value) > 63:
        errors.append(_max_len_error(63))
    if not _DNS1123_LABEL_RE.match(value):
        if _DNS1123_SUBDOMAIN_RE.match(value):
            errors.append("must not contain dots")
        else:
            errors.append(
                regex_error(
                    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
                    "and must start and end with an alphanumeric character",
                    DNS1123_LABEL_FMT,
                    "my-name",
                    "123-abc",
                )
            )
    return errors


def is_dns1123_subdomain(value: str) -> list[str]:
    errors = []
    if len(value) > 253:
        errors.append(_max_len_error(253))
    if not _DNS1123_SUBDOMAIN_RE.match(value):
        errors.append(
            regex_error(
                "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                "and must start and end with an alphanumeric character",
                DNS1123_SUBDOMAIN_FMT,
                "example.com",
            )
        )
    return errors


def is_dns1035_label(value: str) -> list[str]:
    errors = []
    if len(value) > 63:
        errors.append(_max_len_error(63))
    if not _DNS1035_LABEL_RE.match(value):
        errors.append(
            regex_error(
                "a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
                "start with an alphabetic character, and end with an alphanumeric character",
                DNS1035_LABEL_FMT,
                "my-name",
                "abc-123",
            )
        )
    return errors


def is_wildcard_dns1123_subdomain(value: str) -> list[str]:
    errors = []
    if len(value) > 253:
        errors.append(_max_len_error(253))
    if not _WILDCARD_RE.match(value):
        errors.append(
            regex_error(
                "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must "
                "consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character",
                WILDCARD_DNS1123_SUBDOMAIN_FMT,
                "*.example.com",
            )
        )
    return errors


_QUALIFIED_NAME_MSG = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"


def is_qualified_name(value: str) -> list[str]:
    errors: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errors.append("prefix part must be non-empty")
        else:
            errors.extend("prefix part " + msg for msg in is_dns1123_subdomain(prefix))
    else:
        return [
            "a qualified name "
            + regex_error(_QUALIFIED_NAME_MSG, QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errors.append("name part must be non-empty")
    elif len(name) > 63:
        errors.append("name part " + _max_len_error(63))
    if not _QUALIFIED_NAME_RE.match(name):
        errors.append(
            "name part "
            + regex_error(_QUALIFIED_NAME_MSG, QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
        )
    return errors


def is_valid_label_value(value: str) -> list[str]:
    errors = []
    if len(value) > 63:
        errors.append(_max_len_error(63))
    if not _LABEL_VALUE_RE.match(value):
        errors.append(
            regex_error(
                "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
                "and must start and end with an alphanumeric character",
                LABEL_VALUE_FMT,
                "MyValue",
                "my_value",
                "12345",
            )
        )
    return errors


def _has_chdir_prefix(value: str) -> list[str]:
    if value == ".":
        return ["must not be '.'"]
    if value == "..":
        return ["must not be '..'"]
    if value.startswith(".."):
        return ["must not start with '..'"]
    return []


def is_config_map_key(value: str) -> list[str]:
    errors = []
    if len(value) > 253:
        errors.append(_max_len_error(253))
    if not _CONFIG_MAP_KEY_RE.match(value):
        errors.append(
            regex_error(
                "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
                CONFIG_MAP_KEY_FMT,
                "key.name",
                "KEY_NAME",
                "key-name",
            )
        )
    return errors + _has_chdir_prefix(value)


def is_relaxed_env_var_name(value: str) -> list[str]:
    """RelaxedEnvironmentVariableValidation (beta, on in 1.33): printable ASCII but '='."""
    errors = []
    if not value:
        errors.append("environment variable name must be non-empty")
    if any(ord(ch) > 126 or ord(ch) < 32 or ch == "=" for ch in value):
        errors.append(
            "a valid environment variable name must consist only of printable ASCII characters other than '='"
        )
    return errors


def is_valid_port_num(port: int) -> list[str]:
    return [] if 1 <= port <= 65535 else [_inclusive_range_error(1, 65535)]


def is_valid_port_name(port: str) -> list[str]:
    errors = []
    if len(port) > 15:
        errors.append(_max_len_error(15))
    if not _PORT_NAME_CHARSET_RE.match(port):
        errors.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not re.search("[a-z]", port):
        errors.append("must contain at least one letter (a-z)")
    if "--" in port:
        errors.append("must not contain consecutive hyphens")
    if port and (port[0] == "-" or port[-1] == "-"):
        errors.append("must not begin or end with a hyphen")
    return errors


def is_valid_percent(value: str) -> list[str]:
    if _PERCENT_RE.match(value):
        return []
    return [
        regex_error(
            "a valid percent string must be a numeric string followed by an ending '%'",
            PERCENT_FMT,
            "1%",
            "93%",
        )
    ]


def is_valid_path_segment_name(name: str) -> list[str]:
    if name in (".", ".."):
        return [f"may not be '{name}'"]
    return [f"may not contain '{bad}'" for bad in ("/", "%") if bad in name]


def _mask_trailing_dash(name: str) -> str:
    if len(name) > 1 and name.endswith("-"):
        return name[:-2] + "a"
    return name


NameFn = Callable[[str, bool], list[str]]


def name_is_dns_subdomain(name: str, prefix: bool) -> list[str]:
    return is_dns1123_subdomain(_mask_trailing_dash(name) if prefix else name)


def name_is_dns_label(name: str, prefix: bool) -> list[str]:
    return is_dns1123_label(_mask_trailing_dash(name) if prefix else name)


def name_is_dns1035_label(name: str, prefix: bool) -> list[str]:
    return is_dns1035_label(_mask_trailing_dash(name) if prefix else name)


def name_is_path_segment(name: str, prefix: bool) -> list[str]:
    if prefix:
        return [f"may not contain '{bad}'" for bad in ("/", "%") if bad in name]
    return is_valid_path_segment_name(name)


_NAME_FUNCTIONS: dict[NameRule, NameFn] = {
    NameRule.DNS1123_SUBDOMAIN: name_is_dns_subdomain,
    NameRule.DNS1123_LABEL: name_is_dns_label,
    NameRule.PATH_SEGMENT: name_is_path_segment,
}


def _parse_ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """Go's ParseIPSloppy: also accepts IPv4 octets with leading zeros."""
    if not value or "%" in value:
        return None
    if ":" not in value:
        parts = value.split(".")
        if len(parts) != 4 or not all(
            part.isdigit() and part.isascii() and int(part) <= 255 for part in parts
        ):
            return None
        return ipaddress.IPv4Address(".".join(str(int(part)) for part in parts))
    try:
        return ipaddress.IPv6Address(value)
    except ValueError:
        return None


def _is_valid_ip(path: str, value: str) -> Errors:
    """IsValidIPForLegacyField as 1.33 runs it (StrictIPCIDRValidation is off)."""
    if _parse_ip(value) is None:
        return [_invalid(path, value, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")]
    return []


def _parse_cidr(value: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    address, _, prefix = value.partition("/")
    ip = _parse_ip(address)
    if ip is None or not prefix.isdigit() or not prefix.isascii():
        return None
    try:
        return ipaddress.ip_network(f"{ip}/{int(prefix)}", strict=False)
    except ValueError:
        return None


def _is_valid_cidr(path: str, value: str) -> Errors:
    if _parse_cidr(value) is None:
        return [_invalid(path, value, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)")]
    return []


# --- ObjectMeta (k8s.io/apimachinery/pkg/api/validation, pkg/apis/core/validation) ------

TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024
_STANDARD_FINALIZERS = frozenset({"kubernetes", "orphan", "foregroundDeletion"})


def _validate_labels(labels: Any, path: str) -> Errors:
    errors: Errors = []
    for key, value in _map(labels).items():
        errors.extend(_invalid(path, key, msg) for msg in is_qualified_name(key))
        errors.extend(_invalid(path, value, msg) for msg in is_valid_label_value(_str(value)))
    return errors


def _validate_label_name(name: str, path: str) -> Errors:
    return [_invalid(path, name, msg) for msg in is_qualified_name(name)]


def _validate_annotations(annotations: Any, path: str) -> Errors:
    errors: Errors = []
    total = 0
    for key, value in _map(annotations).items():
        errors.extend(_invalid(path, key, msg) for msg in is_qualified_name(key.lower()))
        total += len(key.encode()) + len(_str(value).encode())
    if total > TOTAL_ANNOTATION_SIZE_LIMIT:
        errors.append(_too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT))
    return errors


def _validate_owner_references(references: Any, path: str) -> Errors:
    errors: Errors = []
    first_controller = ""
    for ref in _maps(references):
        api_version = _str(ref.get("apiVersion"))
        kind = _str(ref.get("kind"))
        version = api_version.rsplit("/", 1)[-1] if api_version.count("/") <= 1 else ""
        if not version:
            errors.append(_invalid(f"{path}.apiVersion", api_version, "version must not be empty"))
        if not kind:
            errors.append(_invalid(f"{path}.kind", kind, "kind must not be empty"))
        if not _str(ref.get("name")):
            errors.append(_invalid(f"{path}.name", _str(ref.get("name")), "name must not be empty"))
        if not _str(ref.get("uid")):
            errors.append(_invalid(f"{path}.uid", _str(ref.get("uid")), "uid must not be empty"))
        if api_version == "v1" and kind == "Event":
            errors.append(_invalid(path, _go_json(ref), "/v1, Kind=Event is disallowed from being an owner"))
        if ref.get("controller") is True:
            current = f"{kind}/{_str(ref.get('name'))}"
            if first_controller:
                errors.append(
                    _invalid(
                        path,
                        _go_json(references),
                        "Only one reference can have Controller set to true. "
                        f'Found "true" in references for {first_controller} and {current}',
                    )
                )
            else:
                first_controller = current
    return errors


def _validate_finalizers(finalizers: Any, path: str, *, kube: bool) -> Errors:
    names = [_str(item) for item in _list(finalizers)]
    errors: Errors = []
    for name in names:
        errors.extend(_invalid(path, name, msg) for msg in is_qualified_name(name))
    if "orphan" in names and "foregroundDeletion" in names:
        errors.append(
            _invalid(
                path, go_string_list(names), "finalizer orphan and foregroundDeletion cannot be both set"
            )
        )
    if kube:
        errors.extend(_validate_kube_finalizer_names(names, path))
    return errors


def _validate_kube_finalizer_names(names: list[str], path: str) -> Errors:
    return [
        _invalid(f"{path}[{i}]", name, "name is neither a standard finalizer name nor is it fully qualified")
        for i, name in enumerate(names)
        if "/" not in name and name not in _STANDARD_FINALIZERS
    ]


def _validate_field_manager(manager: str, path: str) -> Errors:
    errors: Errors = []
    if len(manager) > 128:
        errors.append(_too_long(path, 128))
    for i, ch in enumerate(manager):
        if not ch.isprintable():
            errors.append(_invalid(path, manager, f"invalid character U+{ord(ch):04X} (at position {i})"))
    return errors


def _validate_managed_fields(entries: Any, path: str) -> Errors:
    errors: Errors = []
    for i, entry in enumerate(_maps(entries)):
        item = f"{path}[{i}]"
        operation = _str(entry.get("operation"))
        if operation not in ("Apply", "Update"):
            errors.append(_invalid(f"{item}.operation", operation, "must be `Apply` or `Update`"))
        fields_type = _str(entry.get("fieldsType"))
        if fields_type and fields_type != "FieldsV1":
            errors.append(_invalid(f"{item}.fieldsType", fields_type, "must be `FieldsV1`"))
        errors.extend(_validate_field_manager(_str(entry.get("manager")), f"{item}.manager"))
        if len(_str(entry.get("subresource"))) > 256:
            errors.append(_too_long(f"{item}.subresource", 256))
    return errors


def validate_object_meta(
    meta: Any, *, namespaced: bool, name_fn: NameFn, path: str = "metadata", kube_finalizers: bool = True
) -> Errors:
    """ValidateObjectMeta on create (the name was already generated from generateName)."""
    meta = _map(meta)
    errors: Errors = []
    generate_name = _str(meta.get("generateName"))
    if generate_name:
        errors.extend(
            _invalid(f"{path}.generateName", generate_name, msg) for msg in name_fn(generate_name, True)
        )
    name = _str(meta.get("name"))
    if not name:
        errors.append(_required(f"{path}.name", "name or generateName is required"))
    else:
        errors.extend(_invalid(f"{path}.name", name, msg) for msg in name_fn(name, False))
    namespace = _str(meta.get("namespace"))
    if namespaced:
        if not namespace:
            errors.append(_required(f"{path}.namespace"))
        else:
            errors.extend(
                _invalid(f"{path}.namespace", namespace, msg) for msg in name_is_dns_label(namespace, False)
            )
    elif namespace:
        errors.append(_forbidden(f"{path}.namespace", "not allowed on this type"))
    generation = _int(meta.get("generation"))
    if generation < 0:
        errors.append(_invalid(f"{path}.generation", generation, "must be greater than or equal to 0"))
    # Each check below finds nothing in an absent field; most objects have few of them set.
    if meta.get("labels") is not None:
        errors.extend(_validate_labels(meta["labels"], f"{path}.labels"))
    if meta.get("annotations") is not None:
        errors.extend(_validate_annotations(meta["annotations"], f"{path}.annotations"))
    if meta.get("ownerReferences") is not None:
        errors.extend(_validate_owner_references(meta["ownerReferences"], f"{path}.ownerReferences"))
    finalizers = meta.get("finalizers")
    if finalizers is not None:
        errors.extend(_validate_finalizers(finalizers, f"{path}.finalizers", kube=False))
    if meta.get("managedFields") is not None:
        errors.extend(_validate_managed_fields(meta["managedFields"], f"{path}.managedFields"))
    if kube_finalizers and finalizers is not None:
        names = [_str(item) for item in _list(finalizers)]
        errors.extend(_validate_kube_finalizer_names(names, f"{path}.finalizers"))
    return errors


def _immutable(new: Any, old: Any, path: str, *, render: Callable[[Any], Any] | None = None) -> Errors:
    if _equal(new, old):
        return []
    value = render(new) if render is not None else _render(new)
    return [_invalid(path, value, "field is immutable")]


def _render(value: Any) -> Any:
    """A bad value as a FieldError carries it: scalars as they are, structures Go-style."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return _go_json(value)


def validate_object_meta_update(
    new: Any, old: Any, *, path: str = "metadata", kube_finalizers: bool = True
) -> Errors:
    """ValidateObjectMetaUpdate: identity fields are immutable, the rest still well-formed."""
    new, old = _map(new), _map(old)
    errors: Errors = []
    if old.get("deletionTimestamp"):
        added = sorted(
            set(map(_str, _list(new.get("finalizers")))) - set(map(_str, _list(old.get("finalizers"))))
        )
        if added:
            errors.append(
                _forbidden(
                    f"{path}.finalizers",
                    "no new finalizers can be added if the object is being deleted, "
                    f"found new finalizers {go_string_list(added)}",
                )
            )
    resource_version = _str(new.get("resourceVersion"))
    if not resource_version:
        errors.append(
            _invalid(f"{path}.resourceVersion", resource_version, "must be specified for an update")
        )
    new_generation = _int(new.get("generation"))
    if new_generation < _int(old.get("generation")):
        errors.append(_invalid(f"{path}.generation", new_generation, "must not be decremented"))
    for key in ("name", "namespace", "uid"):
        errors.extend(_immutable(_str(new.get(key)), _str(old.get(key)), f"{path}.{key}"))
    for key in ("creationTimestamp", "deletionTimestamp"):
        errors.extend(_immutable(new.get(key), old.get(key), f"{path}.{key}", render=_go_time))
    errors.extend(
        _immutable(
            new.get("deletionGracePeriodSeconds"),
            old.get("deletionGracePeriodSeconds"),
            f"{path}.deletionGracePeriodSeconds",
        )
    )
    errors.extend(_validate_labels(new.get("labels"), f"{path}.labels"))
    errors.extend(_validate_annotations(new.get("annotations"), f"{path}.annotations"))
    errors.extend(_validate_owner_references(new.get("ownerReferences"), f"{path}.ownerReferences"))
    errors.extend(_validate_managed_fields(new.get("managedFields"), f"{path}.managedFields"))
    if kube_finalizers:
        names = [_str(item) for item in _list(new.get("finalizers"))]
        errors.extend(_validate_kube_finalizer_names(names, f"{path}.finalizers"))
    return errors


def _nonnegative(value: Any, path: str) -> Errors:
    number = _int(value)
    if number < 0:
        return [_invalid(path, number, "must be greater than or equal to 0")]
    return []


# --- label selectors --------------------------------------------------------------------

_SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def validate_label_selector(selector: Any, path: str) -> Errors:
    if not isinstance(selector, dict):
        return []
    errors = _validate_labels(selector.get("matchLabels"), f"{path}.matchLabels")
    for i, expr in enumerate(_maps(selector.get("matchExpressions"))):
        item = f"{path}.matchExpressions[{i}]"
        operator = _str(expr.get("operator"))
        values = _list(expr.get("values"))
        if operator in ("In", "NotIn"):
            if not values:
                errors.append(
                    _required(f"{item}.values", "must be specified when `operator` is 'In' or 'NotIn'")
                )
        elif operator in ("Exists", "DoesNotExist"):
            if values:
                errors.append(
                    _forbidden(
                        f"{item}.values", "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
                    )
                )
        else:
            errors.append(_invalid(f"{item}.operator", operator, "not a valid selector operator"))
        errors.extend(_validate_label_name(_str(expr.get("key")), f"{item}.key"))
        for j, value in enumerate(values):
            errors.extend(
                _invalid(f"{item}.values[{j}]", value, msg) for msg in is_valid_label_value(_str(value))
            )
    return errors


@dataclass(frozen=True)
class _Selector:
    """A parsed metav1.LabelSelector; ``nothing`` is LabelSelectorAsSelector(nil)."""

    requirements: tuple[tuple[str, str, frozenset[str]], ...]
    nothing: bool = False

    def empty(self) -> bool:
        return not self.nothing and not self.requirements

    def matches(self, labels: Obj) -> bool:
        if self.nothing:
            return False
        for key, operator, values in self.requirements:
            present = key in labels
            value = _str(labels.get(key))
            if operator == "In" and not (present and value in values):
                return False
            if operator == "NotIn" and present and value in values:
                return False
            if operator == "Exists" and not present:
                return False
            if operator == "DoesNotExist" and present:
                return False
        return True


def _selector_from(selector: Any) -> _Selector | None:
    """LabelSelectorAsSelector: ``None`` when the selector cannot be built (invalid)."""
    if not isinstance(selector, dict):
        return _Selector((), nothing=True)
    requirements: list[tuple[str, str, frozenset[str]]] = []
    for key, value in _map(selector.get("matchLabels")).items():
        if is_qualified_name(key) or is_valid_label_value(_str(value)):
            return None
        requirements.append((key, "In", frozenset({_str(value)})))
    for expr in _maps(selector.get("matchExpressions")):
        key, operator = _str(expr.get("key")), _str(expr.get("operator"))
        values = [_str(v) for v in _list(expr.get("values"))]
        if operator not in _SELECTOR_OPERATORS or is_qualified_name(key):
            return None
        if (operator in ("In", "NotIn")) != bool(values) or any(is_valid_label_value(v) for v in values):
            return None
        requirements.append((key, operator, frozenset(values)))
    return _Selector(tuple(requirements))


# --- pods: volumes ------------------------------------------------------------------------

FILE_MODE_ERROR = "must be a number between 0 and 0777 (octal), both inclusive"
# JSON key -> the field name upstream uses in its "more than 1 volume type" error.
_VOLUME_SOURCES: dict[str, str] = {
    "emptyDir": "emptyDir",
    "hostPath": "hostPath",
    "gitRepo": "gitRepo",
    "gcePersistentDisk": "gcePersistentDisk",
    "awsElasticBlockStore": "awsElasticBlockStore",
    "secret": "secret",
    "nfs": "nfs",
    "iscsi": "iscsi",
    "glusterfs": "glusterfs",
    "flocker": "flocker",
    "persistentVolumeClaim": "persistentVolumeClaim",
    "rbd": "rbd",
    "cinder": "cinder",
    "cephfs": "cephFS",
    "quobyte": "quobyte",
    "downwardAPI": "downwarAPI",  # sic: upstream's typo
    "fc": "fc",
    "flexVolume": "flexVolume",
    "configMap": "configMap",
    "azureFile": "azureFile",
    "vsphereVolume": "vsphereVolume",
    "photonPersistentDisk": "photonPersistentDisk",
    "portworxVolume": "portworxVolume",
    "azureDisk": "azureDisk",
    "storageos": "storageos",
    "projected": "projected",
    "scaleIO": "scaleIO",
    "csi": "csi",
    "ephemeral": "ephemeral",
    "image": "image",
}
_HOST_PATH_TYPES = (
    "",
    "BlockDevice",
    "CharDevice",
    "Directory",
    "DirectoryOrCreate",
    "File",
    "FileOrCreate",
    "Socket",
)
_VOLUME_FIELD_PATHS = (
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
)
_ENV_FIELD_PATHS = (
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
)
# What ConvertDownwardAPIFieldLabel accepts for v1 pods.
_DOWNWARD_API_LABELS = frozenset(
    {
        "metadata.annotations",
        "metadata.labels",
        "metadata.name",
        "metadata.namespace",
        "metadata.uid",
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.serviceAccountName",
        "spec.schedulerName",
        "status.phase",
        "status.hostIP",
        "status.hostIPs",
        "status.podIP",
        "status.podIPs",
    }
)
_RESOURCE_FIELD_PATHS = (
    "limits.cpu",
    "limits.ephemeral-storage",
    "limits.memory",
    "requests.cpu",
    "requests.ephemeral-storage",
    "requests.memory",
)


def _validate_file_mode(mode: Any, path: str) -> Errors:
    if mode is not None and _is_int(mode) and not 0 <= mode <= 0o777:
        return [_invalid(path, mode, FILE_MODE_ERROR)]
    return []


def _path_no_backsteps(target: str, path: str) -> Errors:
    if ".." in target.replace("\\", "/").split("/"):
        return [_invalid(path, target, "must not contain '..'")]
    return []


def _local_descending_path(target: str, path: str) -> Errors:
    errors: Errors = []
    if target.startswith("/"):
        errors.append(_invalid(path, target, "must be a relative path"))
    return errors + _path_no_backsteps(target, path)


def _local_non_reserved_path(target: str, path: str) -> Errors:
    errors = _local_descending_path(target, path)
    if target.startswith("..") and not target.startswith("../"):
        errors.append(_invalid(path, target, "must not start with '..'"))
    return errors


def _validate_key_to_path(item: Obj, path: str) -> Errors:
    errors: Errors = []
    if not _str(item.get("key")):
        errors.append(_required(f"{path}.key"))
    target = _str(item.get("path"))
    if not target:
        errors.append(_required(f"{path}.path"))
    errors.extend(_local_non_reserved_path(target, f"{path}.path"))
    return errors + _validate_file_mode(item.get("mode"), f"{path}.mode")


def _split_subscripted(field_path: str) -> tuple[str, str] | None:
    if not field_path.endswith("']"):
        return None
    parts = field_path[:-2].split("['", 1)
    if len(parts) < 2 or not parts[0]:
        return None
    return parts[0], parts[1]


def _validate_object_field_selector(selector: Obj, supported: tuple[str, ...], path: str) -> Errors:
    api_version = _str(selector.get("apiVersion"))
    if not api_version:
        return [_required(f"{path}.apiVersion")]
    field_path = _str(selector.get("fieldPath"))
    if not field_path:
        return [_required(f"{path}.fieldPath")]
    subscripted = _split_subscripted(field_path)
    conversion_error = ""
    if api_version != "v1":
        conversion_error = f"unsupported pod version: {api_version}"
    elif subscripted is not None:
        if subscripted[0] not in ("metadata.annotations", "metadata.labels"):
            conversion_error = f"field label does not support subscript: {field_path}"
    elif field_path not in _DOWNWARD_API_LABELS:
        conversion_error = f"field label not supported: {field_path}"
    if conversion_error:
        return [_invalid(f"{path}.fieldPath", field_path, f"error converting fieldPath: {conversion_error}")]
    if subscripted is not None:
        base, key = subscripted
        key = key.lower() if base == "metadata.annotations" else key
        return [_invalid(path, key, msg) for msg in is_qualified_name(key)]
    if field_path not in supported:
        return [_not_supported(f"{path}.fieldPath", field_path, supported)]
    return []


def _validate_resource_field_selector(selector: Obj, path: str, *, volume: bool) -> Errors:
    resource = _str(selector.get("resource"))
    if volume and not _str(selector.get("containerName")):
        return [_required(f"{path}.containerName")]
    if not resource:
        return [_required(f"{path}.resource")]
    if resource not in _RESOURCE_FIELD_PATHS and not resource.startswith(
        ("requests.hugepages-", "limits.hugepages-")
    ):
        return [_not_supported(f"{path}.resource", resource, _RESOURCE_FIELD_PATHS)]
    return []


def _validate_downward_api_file(item: Obj, path: str) -> Errors:
    errors: Errors = []
    target = _str(item.get("path"))
    if not target:
        errors.append(_required(f"{path}.path"))
    errors.extend(_local_non_reserved_path(target, f"{path}.path"))
    field_ref = item.get("fieldRef")
    resource_ref = item.get("resourceFieldRef")
    if isinstance(field_ref, dict):
        errors.extend(_validate_object_field_selector(field_ref, _VOLUME_FIELD_PATHS, f"{path}.fieldRef"))
        if resource_ref is not None:
            errors.append(
                _invalid(
                    path, "resource", "fieldRef and resourceFieldRef can not be specified simultaneously"
                )
            )
    elif isinstance(resource_ref, dict):
        errors.extend(
            _validate_resource_field_selector(resource_ref, f"{path}.resourceFieldRef", volume=True)
        )
    else:
        errors.append(_required(path, "one of fieldRef and resourceFieldRef is required"))
    return errors + _validate_file_mode(item.get("mode"), f"{path}.mode")


def _validate_projection_sources(projected: Obj, path: str) -> Errors:
    errors: Errors = []
    seen: set[str] = set()

    def claim(target: str, value: Any) -> None:
        if target in seen:
            errors.append(_invalid(path, value, "conflicting duplicate paths"))
        seen.add(target)

    for i, source in enumerate(_maps(projected.get("sources"))):
        source_path = f"{path}.sources[{i}]"
        count = 0
        for kind in ("secret", "configMap"):
            ref = source.get(kind)
            if not isinstance(ref, dict):
                continue
            count += 1
            if not _str(ref.get("name")):
                errors.append(_required(f"{source_path}.{kind}.name"))
            for j, item in enumerate(_maps(ref.get("items"))):
                errors.extend(_validate_key_to_path(item, f"{source_path}.{kind}.items[{j}]"))
                if _str(item.get("path")):
                    claim(_str(item.get("path")), _str(ref.get("name")))
        downward = source.get("downwardAPI")
        if isinstance(downward, dict):
            count += 1
            for item in _maps(downward.get("items")):
                errors.extend(_validate_downward_api_file(item, f"{source_path}.downwardAPI"))
                if _str(item.get("path")):
                    claim(_str(item.get("path")), _str(item.get("path")))
        token = source.get("serviceAccountToken")
        if isinstance(token, dict):
            count += 1
            expiration = _int(token.get("expirationSeconds"))
            if expiration < 600:
                errors.append(
                    _invalid(
                        f"{source_path}.serviceAccountToken.expirationSeconds",
                        expiration,
                        "may not specify a duration less than 10 minutes",
                    )
                )
            if expiration > 1 << 32:
                errors.append(
                    _invalid(
                        f"{source_path}.serviceAccountToken.expirationSeconds",
                        expiration,
                        "may not specify a duration larger than 2^32 seconds",
                    )
                )
            if not _str(token.get("path")):
                errors.append(_required(f"{path}.path"))
            else:
                errors.extend(_local_non_reserved_path(_str(token.get("path")), f"{path}.path"))
        if isinstance(source.get("clusterTrustBundle"), dict):
            count += 1
        if count > 1:
            errors.append(_forbidden(source_path, "may not specify more than 1 volume type per source"))
    return errors


def _validate_volume_source(volume: Obj, path: str) -> Errors:
    errors: Errors = []
    count = 0
    for key, error_name in _VOLUME_SOURCES.items():
        source = volume.get(key)
        if source is None:
            continue
        if count > 0:
            errors.append(_forbidden(f"{path}.{error_name}", "may not specify more than 1 volume type"))
            continue
        count += 1
        errors.extend(_validate_one_volume_source(key, _map(source), f"{path}.{key}"))
    if count == 0:
        errors.append(_required(path, "must specify a volume type"))
    return errors


def _nfs_errors(source: Obj, path: str) -> Errors:
    """ValidateNFSVolumeSource (pods' volumes and PersistentVolumes alike); an empty path is
    both required and not absolute, as upstream reports it."""
    errors: Errors = []
    if not _str(source.get("server")):
        errors.append(_required(f"{path}.server"))
    target = _str(source.get("path"))
    if not target:
        errors.append(_required(f"{path}.path"))
    if not target.startswith("/"):
        errors.append(_invalid(f"{path}.path", target, "must be an absolute path"))
    return errors


def _validate_one_volume_source(key: str, source: Obj, path: str) -> Errors:
    errors: Errors = []
    if key == "emptyDir":
        limit = source.get("sizeLimit")
        if limit is not None:
            try:
                if Quantity.parse(limit).value < 0:
                    errors.append(
                        _forbidden(f"{path}.sizeLimit", "SizeLimit field must be a valid resource quantity")
                    )
            except InvalidQuantityError as exc:
                errors.append(_invalid(f"{path}.sizeLimit", limit, str(exc)))
    elif key == "hostPath":
        target = _str(source.get("path"))
        if not target:
            return [_required(f"{path}.path")]
        errors.extend(_path_no_backsteps(target, f"{path}.path"))
        kind = source.get("type")
        if kind is not None and kind not in _HOST_PATH_TYPES:
            errors.append(_not_supported(f"{path}.type", kind, _HOST_PATH_TYPES))
    elif key == "gitRepo":
        if not _str(source.get("repository")):
            errors.append(_required(f"{path}.repository"))
        errors.extend(_local_descending_path(_str(source.get("directory")), f"{path}.directory"))
    elif key in ("secret", "configMap"):
        name_key = "secretName" if key == "secret" else "name"
        if not _str(source.get(name_key)):
            errors.append(_required(f"{path}.{name_key}"))
        mode = source.get("defaultMode")
        if _is_int(mode) and not 0 <= mode <= 0o777:
            errors.append(_invalid(f"{path}.defaultMode", mode, FILE_MODE_ERROR))
        for i, item in enumerate(_maps(source.get("items"))):
            errors.extend(_validate_key_to_path(item, f"{path}.items[{i}]"))
    elif key == "persistentVolumeClaim":
        if not _str(source.get("claimName")):
            errors.append(_required(f"{path}.claimName"))
    elif key == "nfs":
        errors.extend(_nfs_errors(source, path))
    elif key == "downwardAPI":
        mode = source.get("defaultMode")
        if _is_int(mode) and not 0 <= mode <= 0o777:
            errors.append(_invalid(f"{path}.defaultMode", mode, FILE_MODE_ERROR))
        for item in _maps(source.get("items")):
            errors.extend(_validate_downward_api_file(item, path))
    elif key == "projected":
        mode = source.get("defaultMode")
        if _is_int(mode) and not 0 <= mode <= 0o777:
            errors.append(_invalid(f"{path}.defaultMode", mode, FILE_MODE_ERROR))
        errors.extend(_validate_projection_sources(source, path))
    elif key == "csi" and not _str(source.get("driver")):
        errors.append(_required(f"{path}.driver"))
    return errors


def _validate_volumes(volumes: Any, path: str) -> tuple[dict[str, Obj], Errors]:
    errors: Errors = []
    valid: dict[str, Obj] = {}
    names: set[str] = set()
    for i, volume in enumerate(_maps(volumes)):
        item = f"{path}[{i}]"
        name = _str(volume.get("name"))
        volume_errors = _validate_volume_source(volume, item)
        if not name:
            volume_errors.append(_required(f"{item}.name"))
        else:
            volume_errors.extend(_invalid(f"{item}.name", name, msg) for msg in is_dns1123_label(name))
        if name in names:
            volume_errors.append(_duplicate(f"{item}.name", name))
        if volume_errors:
            errors.extend(volume_errors)
        else:
            names.add(name)
            valid[name] = volume
    return valid, errors


# --- pods: containers ------------------------------------------------------------------

_PROTOCOLS = ("SCTP", "TCP", "UDP")
_PULL_POLICIES = ("Always", "IfNotPresent", "Never")
_TERMINATION_MESSAGE_POLICIES = ("File", "FallbackToLogsOnError")
_STANDARD_CONTAINER_RESOURCES = frozenset({"cpu", "memory", "ephemeral-storage"})


def _is_native_resource(name: str) -> bool:
    return "/" not in name or "kubernetes.io/" in name


def _is_hugepages(name: str) -> bool:
    return name.startswith("hugepages-")


def _is_extended_resource(name: str) -> bool:
    if _is_native_resource(name) or name.startswith("requests."):
        return False
    return not is_qualified_name("requests." + name)


def _is_overcommit_allowed(name: str) -> bool:
    return _is_native_resource(name) and not _is_hugepages(name)


def _validate_container_resource_name(name: str, path: str) -> Errors:
    errors = [_invalid(path, name, msg) for msg in is_qualified_name(name)]
    if errors:
        return errors
    if "/" not in name:
        if name not in _STANDARD_RESOURCES and not _is_hugepages(name):
            errors.append(_invalid(path, name, "must be a standard resource type or fully qualified"))
        if name not in _STANDARD_CONTAINER_RESOURCES and not _is_hugepages(name):
            errors.append(_invalid(path, name, "must be a standard resource for containers"))
    elif not _is_native_resource(name) and not _is_extended_resource(name):
        errors.append(_invalid(path, name, "doesn't follow extended resource name standard"))
    return errors


def _validate_quantity_value(name: str, raw: Any, path: str) -> tuple[Quantity | None, Errors]:
    try:
        quantity = Quantity.parse(raw)
    except InvalidQuantityError as exc:
        return None, [_invalid(path, raw, str(exc))]
    errors: Errors = []
    if quantity.value < 0:
        errors.append(_invalid(path, str(quantity), "must be greater than or equal to 0"))
    if _is_extended_resource(name) and not quantity.is_integer():
        errors.append(_invalid(path, _GoValue(str(quantity)), "must be an integer"))
    return quantity, errors


def _validate_resource_requirements(resources: Any, path: str) -> Errors:
    resources = _map(resources)
    errors: Errors = []
    limits_path, requests_path = f"{path}.limits", f"{path}.requests"
    limits: dict[str, Quantity] = {}
    has_compute = False
    has_hugepages = False
    for name, raw in _map(resources.get("limits")).items():
        item = f"{limits_path}[{name}]"
        errors.extend(_validate_container_resource_name(name, item))
        quantity, quantity_errors = _validate_quantity_value(name, raw, item)
        errors.extend(quantity_errors)
        if quantity is not None:
            limits[name] = quantity
        has_hugepages = has_hugepages or _is_hugepages(name)
        has_compute = has_compute or name in ("cpu", "memory")
    for name, raw in _map(resources.get("requests")).items():
        item = f"{requests_path}[{name}]"
        errors.extend(_validate_container_resource_name(name, item))
        quantity, quantity_errors = _validate_quantity_value(name, raw, item)
        errors.extend(quantity_errors)
        limit = limits.get(name)
        if quantity is not None and limit is not None:
            if quantity.compare(limit) != 0 and not _is_overcommit_allowed(name):
                errors.append(
                    _invalid(requests_path, str(quantity), f"must be equal to {name} limit of {limit}")
                )
            elif quantity.compare(limit) > 0:
                errors.append(
                    _invalid(
                        requests_path, str(quantity), f"must be less than or equal to {name} limit of {limit}"
                    )
                )
        elif name not in _map(resources.get("limits")) and not _is_overcommit_allowed(name):
            errors.append(_required(limits_path, "Limit must be set for non overcommitable resources"))
        has_hugepages = has_hugepages or _is_hugepages(name)
        has_compute = has_compute or name in ("cpu", "memory")
    if has_hugepages and not has_compute:
        errors.append(_forbidden(path, "HugePages require cpu or memory"))
    return errors


def _validate_container_ports(ports: Any, path: str) -> Errors:
    errors: Errors = []
    names: set[str] = set()
    for i, port in enumerate(_maps(ports)):
        item = f"{path}[{i}]"
        name = _str(port.get("name"))
        if name:
            messages = is_valid_port_name(name)
            if messages:
                errors.extend(_invalid(f"{item}.name", name, msg) for msg in messages)
            elif name in names:
                errors.append(_duplicate(f"{item}.name", name))
            else:
                names.add(name)
        container_port = _int(port.get("containerPort"))
        if container_port == 0:
            errors.append(_required(f"{item}.containerPort"))
        else:
            errors.extend(
                _invalid(f"{item}.containerPort", container_port, m)
                for m in is_valid_port_num(container_port)
            )
        host_port = _int(port.get("hostPort"))
        if host_port:
            errors.extend(_invalid(f"{item}.hostPort", host_port, m) for m in is_valid_port_num(host_port))
        protocol = _str(port.get("protocol"))
        if not protocol:
            errors.append(_required(f"{item}.protocol"))
        elif protocol not in _PROTOCOLS:
            errors.append(_not_supported(f"{item}.protocol", protocol, _PROTOCOLS))
    return errors


def _validate_key_selector(selector: Obj, path: str) -> Errors:
    name = _str(selector.get("name"))
    errors = [_invalid(f"{path}.name", name, msg) for msg in name_is_dns_subdomain(name, False)]
    key = _str(selector.get("key"))
    if not key:
        errors.append(_required(f"{path}.key"))
    else:
        errors.extend(_invalid(f"{path}.key", key, msg) for msg in is_config_map_key(key))
    return errors


def _validate_env(env: Any, path: str) -> Errors:
    errors: Errors = []
    for i, var in enumerate(_maps(env)):
        item = f"{path}[{i}]"
        name = _str(var.get("name"))
        if not name:
            errors.append(_required(f"{item}.name"))
        else:
            errors.extend(_invalid(f"{item}.name", name, msg) for msg in is_relaxed_env_var_name(name))
        value_from = var.get("valueFrom")
        if not isinstance(value_from, dict):
            continue
        from_path = f"{item}.valueFrom"
        sources = 0
        if isinstance(value_from.get("fieldRef"), dict):
            sources += 1
            errors.extend(
                _validate_object_field_selector(
                    value_from["fieldRef"], _ENV_FIELD_PATHS, f"{from_path}.fieldRef"
                )
            )
        if isinstance(value_from.get("resourceFieldRef"), dict):
            sources += 1
            errors.extend(
                _validate_resource_field_selector(
                    value_from["resourceFieldRef"], f"{from_path}.resourceFieldRef", volume=False
                )
            )
        for key in ("configMapKeyRef", "secretKeyRef"):
            if isinstance(value_from.get(key), dict):
                sources += 1
                errors.extend(_validate_key_selector(value_from[key], f"{from_path}.{key}"))
        if sources == 0:
            errors.append(
                _invalid(
                    from_path,
                    "",
                    "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
                )
            )
        elif _str(var.get("value")):
            errors.append(_invalid(from_path, "", "may not be specified when `value` is not empty"))
        elif sources > 1:
            errors.append(_invalid(from_path, "", "may not have more than one field specified at a time"))
    return errors


def _validate_env_from(env_from: Any, path: str) -> Errors:
    errors: Errors = []
    for i, source in enumerate(_maps(env_from)):
        item = f"{path}[{i}]"
        prefix = _str(source.get("prefix"))
        if prefix:
            errors.extend(_invalid(f"{item}.prefix", prefix, msg) for msg in is_relaxed_env_var_name(prefix))
        sources = 0
        for key in ("configMapRef", "secretRef"):
            ref = source.get(key)
            if not isinstance(ref, dict):
                continue
            sources += 1
            name = _str(ref.get("name"))
            if not name:
                errors.append(_required(f"{item}.{key}.name"))
            else:
                errors.extend(
                    _invalid(f"{item}.{key}.name", name, msg) for msg in name_is_dns_subdomain(name, True)
                )
        if sources == 0:
            errors.append(_invalid(path, "", "must specify one of: `configMapRef` or `secretRef`"))
        elif sources > 1:
            errors.append(_invalid(path, "", "may not have more than one field specified at a time"))
    return errors


def _validate_volume_mounts(mounts: Any, volumes: dict[str, Obj], container: Obj, path: str) -> Errors:
    errors: Errors = []
    mount_points: set[str] = set()
    device_names = {_str(d.get("name")) for d in _maps(container.get("volumeDevices"))}
    device_paths = {_str(d.get("devicePath")) for d in _maps(container.get("volumeDevices"))}
    privileged = _map(container.get("securityContext")).get("privileged") is True
    for i, mount in enumerate(_maps(mounts)):
        item = f"{path}[{i}]"
        name = _str(mount.get("name"))
        mount_path = _str(mount.get("mountPath"))
        if not name:
            errors.append(_required(f"{item}.name"))
        if name not in volumes:
            errors.append(_not_found(f"{item}.name", name))
        if not mount_path:
            errors.append(_required(f"{item}.mountPath"))
        if mount_path in mount_points:
            errors.append(_invalid(f"{item}.mountPath", mount_path, "must be unique"))
        mount_points.add(mount_path)
        if name in device_names:
            errors.append(_invalid(f"{item}.name", name, "must not already exist in volumeDevices"))
        if mount_path in device_paths:
            errors.append(
                _invalid(f"{item}.mountPath", mount_path, "must not already exist as a path in volumeDevices")
            )
        sub_path = _str(mount.get("subPath"))
        sub_path_expr = _str(mount.get("subPathExpr"))
        if name in volumes and "image" in volumes[name]:
            if sub_path:
                errors.append(_invalid(f"{item}.subPath", sub_path, "not allowed in image volume sources"))
            if sub_path_expr:
                errors.append(
                    _invalid(f"{item}.subPathExpr", sub_path_expr, "not allowed in image volume sources")
                )
        if sub_path:
            errors.extend(_local_descending_path(sub_path, f"{path}.subPath"))
        if sub_path_expr:
            if sub_path:
                errors.append(
                    _invalid(
                        f"{item}.subPathExpr", sub_path_expr, "subPathExpr and subPath are mutually exclusive"
                    )
                )
            errors.extend(_local_descending_path(sub_path_expr, f"{path}.subPathExpr"))
        propagation = mount.get("mountPropagation")
        if propagation is not None:
            supported = ("Bidirectional", "HostToContainer", "None")
            if propagation not in supported:
                errors.append(_not_supported(f"{path}.mountPropagation", propagation, supported))
            if propagation == "Bidirectional" and not privileged:
                errors.append(
                    _forbidden(
                        f"{path}.mountPropagation",
                        "Bidirectional mount propagation is available only to privileged containers",
                    )
                )
        recursive = mount.get("recursiveReadOnly")
        if recursive is not None and recursive != "Disabled":
            if recursive in ("Enabled", "IfPossible"):
                if mount.get("readOnly") is not True:
                    errors.append(
                        _forbidden(f"{path}.recursiveReadOnly", "may only be specified when readOnly is true")
                    )
                if propagation not in (None, "None"):
                    errors.append(
                        _forbidden(
                            f"{path}.recursiveReadOnly",
                            "may only be specified when mountPropagation is None or not specified",
                        )
                    )
            else:
                errors.append(
                    _not_supported(
                        f"{path}.recursiveReadOnly", recursive, ("Disabled", "Enabled", "IfPossible")
                    )
                )
    return errors


def _validate_volume_devices(devices: Any, volumes: dict[str, Obj], container: Obj, path: str) -> Errors:
    errors: Errors = []
    mounts = {_str(m.get("name")): _str(m.get("mountPath")) for m in _maps(container.get("volumeMounts"))}
    names: set[str] = set()
    paths: set[str] = set()
    for i, device in enumerate(_maps(devices)):
        item = f"{path}[{i}]"
        name, device_path = _str(device.get("name")), _str(device.get("devicePath"))
        volume = volumes.get(name)
        if not name:
            errors.append(_required(f"{item}.name"))
        if name in names:
            errors.append(_invalid(f"{item}.name", name, "must be unique"))
        if volume is not None and "persistentVolumeClaim" not in volume and "ephemeral" not in volume:
            errors.append(
                _invalid(
                    f"{item}.name",
                    name,
                    "can only use volume source type of PersistentVolumeClaim or Ephemeral for block mode",
                )
            )
        if volume is None:
            errors.append(_not_found(f"{item}.name", name))
        if not device_path:
            errors.append(_required(f"{item}.devicePath"))
        if device_path in paths:
            errors.append(_invalid(f"{item}.devicePath", device_path, "must be unique"))
        if device_path and _path_no_backsteps(device_path, item):
            errors.append(_invalid(f"{item}.devicePath", device_path, "can not contain backsteps ('..')"))
        else:
            paths.add(device_path)
        if name in mounts:
            errors.append(_invalid(f"{item}.name", name, "must not already exist in volumeMounts"))
        if device_path in mounts.values():
            errors.append(
                _invalid(
                    f"{item}.devicePath", device_path, "must not already exist as a path in volumeMounts"
                )
            )
        if name:
            names.add(name)
    return errors


def _validate_port_num_or_name(port: Any, path: str) -> Errors:
    if _is_int(port):
        return [_invalid(path, port, msg) for msg in is_valid_port_num(port)]
    if isinstance(port, str):
        return [_invalid(path, port, msg) for msg in is_valid_port_name(port)]
    return [_invalid(path, 0, msg) for msg in is_valid_port_num(0)]


def _validate_handler(handler: Obj, grace_period: int | None, path: str, *, probe: bool) -> Errors:
    kinds = ("exec", "httpGet", "tcpSocket", "grpc") if probe else ("exec", "httpGet", "tcpSocket", "sleep")
    errors: Errors = []
    count = 0
    for kind in kinds:
        action = handler.get(kind)
        if not isinstance(action, dict):
            continue
        if count > 0:
            errors.append(_forbidden(f"{path}.{kind}", "may not specify more than 1 handler type"))
            continue
        count += 1
        action_path = f"{path}.{kind}"
        if kind == "exec":
            if not _list(action.get("command")):
                errors.append(_required(f"{action_path}.command"))
        elif kind == "httpGet":
            if not _str(action.get("path")):
                errors.append(_required(f"{action_path}.path"))
            errors.extend(_validate_port_num_or_name(action.get("port"), f"{action_path}.port"))
            scheme = _str(action.get("scheme"))
            if scheme not in ("HTTP", "HTTPS"):
                errors.append(_not_supported(f"{action_path}.scheme", scheme, ("HTTP", "HTTPS")))
            for header in _maps(action.get("httpHeaders")):
                header_name = _str(header.get("name"))
                if not _HTTP_HEADER_NAME_RE.match(header_name):
                    errors.append(
                        _invalid(
                            f"{action_path}.httpHeaders",
                            header_name,
                            regex_error(
                                "a valid HTTP header must consist of alphanumeric characters or '-'",
                                HTTP_HEADER_NAME_FMT,
                                "X-Header-Name",
                            ),
                        )
                    )
        elif kind == "tcpSocket":
            errors.extend(_validate_port_num_or_name(action.get("port"), f"{action_path}.port"))
        elif kind == "grpc":
            errors.extend(_validate_port_num_or_name(_int(action.get("port")), f"{action_path}.port"))
        else:
            seconds = _int(action.get("seconds"))
            if grace_period is not None and not 0 <= seconds <= grace_period:
                errors.append(
                    _invalid(
                        action_path,
                        seconds,
                        f"must be non-negative and less than terminationGracePeriodSeconds ({grace_period})",
                    )
                )
    if count == 0:
        errors.append(_required(path, "must specify a handler type"))
    return errors


def _validate_probe(probe: Any, grace_period: int | None, path: str, kind: str) -> Errors:
    if not isinstance(probe, dict):
        return []
    errors = _validate_handler(probe, grace_period, path, probe=True)
    for key in (
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
    ):
        errors.extend(_nonnegative(probe.get(key), f"{path}.{key}"))
    grace = probe.get("terminationGracePeriodSeconds")
    if _is_int(grace) and grace <= 0:
        errors.append(_invalid(f"{path}.terminationGracePeriodSeconds", grace, "must be greater than 0"))
    if kind in ("liveness", "startup") and _int(probe.get("successThreshold")) != 1:
        errors.append(_invalid(f"{path}.successThreshold", _int(probe.get("successThreshold")), "must be 1"))
    if kind == "readiness" and grace is not None:
        errors.append(
            _invalid(f"{path}.terminationGracePeriodSeconds", grace, "must not be set for readinessProbes")
        )
    return errors


def _validate_lifecycle(lifecycle: Any, grace_period: int | None, path: str) -> Errors:
    errors: Errors = []
    for hook in ("postStart", "preStop"):
        handler = _map(lifecycle).get(hook)
        if isinstance(handler, dict):
            errors.extend(_validate_handler(handler, grace_period, f"{path}.{hook}", probe=False))
    return errors


def _validate_seccomp_profile(profile: Any, path: str) -> Errors:
    if not isinstance(profile, dict):
        return []
    errors: Errors = []
    kind = _str(profile.get("type"))
    if not kind:
        errors.append(_required(f"{path}.type", "type is required when seccompProfile is set"))
    elif kind not in ("Localhost", "RuntimeDefault", "Unconfined"):
        errors.append(_not_supported(f"{path}.type", kind, ("Localhost", "RuntimeDefault", "Unconfined")))
    localhost = profile.get("localhostProfile")
    if kind == "Localhost":
        if localhost is None:
            errors.append(_required(f"{path}.localhostProfile", "must be set when seccomp type is Localhost"))
        else:
            errors.extend(_local_descending_path(_str(localhost), f"{path}.localhostProfile"))
    elif localhost is not None:
        errors.append(
            _invalid(
                f"{path}.localhostProfile",
                _go_json(profile),
                "can only be set when seccomp type is Localhost",
            )
        )
    return errors


def _validate_apparmor_profile(profile: Any, path: str) -> Errors:
    if not isinstance(profile, dict):
        return []
    kind = _str(profile.get("type"))
    localhost = profile.get("localhostProfile")
    if kind == "Localhost":
        if localhost is None or not _str(localhost).strip():
            if localhost is not None and _str(localhost) != _str(localhost).strip():
                return [_invalid(f"{path}.localhostProfile", localhost, "must not be padded with whitespace")]
            return [_required(f"{path}.localhostProfile", "must be set when AppArmor type is Localhost")]
        if _str(localhost) != _str(localhost).strip():
            return [_invalid(f"{path}.localhostProfile", localhost, "must not be padded with whitespace")]
        return []
    if kind in ("RuntimeDefault", "Unconfined"):
        if localhost is not None:
            return [
                _invalid(
                    f"{path}.localhostProfile", localhost, "can only be set when AppArmor type is Localhost"
                )
            ]
        return []
    if not kind:
        return [_required(f"{path}.type", "type is required when appArmorProfile is set")]
    return [_not_supported(f"{path}.type", kind, ("Localhost", "RuntimeDefault", "Unconfined"))]


_MAX_ID = 2**31 - 1


def _validate_id(value: Any, path: str) -> Errors:
    if value is None:
        return []
    number = _int(value)
    if not 0 <= number <= _MAX_ID:
        return [_invalid(path, number, _inclusive_range_error(0, _MAX_ID))]
    return []


def _validate_security_context(context: Any, path: str, *, host_users: bool) -> Errors:
    if not isinstance(context, dict):
        return []
    errors = _validate_id(context.get("runAsUser"), f"{path}.runAsUser")
    errors.extend(_validate_id(context.get("runAsGroup"), f"{path}.runAsGroup"))
    proc_mount = context.get("procMount")
    if proc_mount is not None:
        if proc_mount not in ("Default", "Unmasked"):
            errors.append(_not_supported(f"{path}.procMount", proc_mount, ("Default", "Unmasked")))
        if host_users and proc_mount == "Unmasked":
            errors.append(
                _invalid(f"{path}.procMount", proc_mount, "`hostUsers` must be false to use `Unmasked`")
            )
    errors.extend(_validate_seccomp_profile(context.get("seccompProfile"), f"{path}.seccompProfile"))
    if context.get("allowPrivilegeEscalation") is False:
        if context.get("privileged") is True:
            errors.append(
                _invalid(
                    path,
                    _go_json(context),
                    "cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
                )
            )
        for capability in _list(_map(context.get("capabilities")).get("add")):
            if capability == "CAP_SYS_ADMIN":
                errors.append(
                    _invalid(
                        path,
                        _go_json(context),
                        "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN",
                    )
                )
    errors.extend(_validate_apparmor_profile(context.get("appArmorProfile"), f"{path}.appArmorProfile"))
    return errors


def _validate_resize_policy(policies: Any, path: str, restart_policy: str) -> Errors:
    errors: Errors = []
    seen: set[str] = set()
    for i, policy in enumerate(_maps(policies)):
        resource = _str(policy.get("resourceName"))
        if resource in seen:
            errors.append(_duplicate(f"{path}[{i}]", resource))
        seen.add(resource)
        if not resource:
            errors.append(_required(path))
        elif resource not in ("cpu", "memory"):
            errors.append(_not_supported(path, resource, ("cpu", "memory")))
        restart = _str(policy.get("restartPolicy"))
        if not restart:
            errors.append(_required(path))
        elif restart not in ("NotRequired", "RestartContainer"):
            errors.append(_not_supported(path, restart, ("NotRequired", "RestartContainer")))
        if restart_policy == "Never" and restart != "NotRequired":
            errors.append(_invalid(path, restart, "must be 'NotRequired' when `restartPolicy` is 'Never'"))
    return errors


def _validate_container_common(
    container: Obj, volumes: dict[str, Obj], path: str, *, host_users: bool, restart_policy: str
) -> Errors:
    errors: Errors = []
    name = _str(container.get("name"))
    if not name:
        errors.append(_required(f"{path}.name"))
    else:
        errors.extend(_invalid(f"{path}.name", name, msg) for msg in is_dns1123_label(name))
    if not _str(container.get("image")):
        errors.append(_required(f"{path}.image"))
    policy = _str(container.get("terminationMessagePolicy"))
    if not policy:
        errors.append(_required(f"{path}.terminationMessagePolicy"))
    elif policy not in _TERMINATION_MESSAGE_POLICIES:
        errors.append(
            _not_supported(f"{path}.terminationMessagePolicy", policy, _TERMINATION_MESSAGE_POLICIES)
        )
    errors.extend(_validate_container_ports(container.get("ports"), f"{path}.ports"))
    errors.extend(_validate_env(container.get("env"), f"{path}.env"))
    errors.extend(_validate_env_from(container.get("envFrom"), f"{path}.envFrom"))
    errors.extend(
        _validate_volume_mounts(container.get("volumeMounts"), volumes, container, f"{path}.volumeMounts")
    )
    errors.extend(
        _validate_volume_devices(container.get("volumeDevices"), volumes, container, f"{path}.volumeDevices")
    )
    pull_policy = _str(container.get("imagePullPolicy"))
    if not pull_policy:
        errors.append(_required(f"{path}.imagePullPolicy"))
    elif pull_policy not in _PULL_POLICIES:
        errors.append(_not_supported(f"{path}.imagePullPolicy", pull_policy, _PULL_POLICIES))
    errors.extend(_validate_resource_requirements(container.get("resources"), f"{path}.resources"))
    errors.extend(
        _validate_resize_policy(container.get("resizePolicy"), f"{path}.resizePolicy", restart_policy)
    )
    errors.extend(
        _validate_security_context(
            container.get("securityContext"), f"{path}.securityContext", host_users=host_users
        )
    )
    return errors


def _host_port_conflicts(containers: list[Obj], path: str) -> Errors:
    errors: Errors = []
    seen: set[str] = set()
    for i, container in enumerate(containers):
        for j, port in enumerate(_maps(container.get("ports"))):
            host_port = _int(port.get("hostPort"))
            if not host_port:
                continue
            key = f"{_str(port.get('protocol'))}/{_str(port.get('hostIP'))}/{host_port}"
            if key in seen:
                errors.append(_duplicate(f"{path}[{i}].ports[{j}].hostPort", key))
            seen.add(key)
    return errors


def _validate_containers(
    containers: Any,
    volumes: dict[str, Obj],
    grace_period: int | None,
    path: str,
    *,
    host_users: bool,
    restart_policy: str,
) -> Errors:
    items = _maps(containers)
    if not items:
        return [_required(path)]
    errors: Errors = []
    names: set[str] = set()
    for i, container in enumerate(items):
        item = f"{path}[{i}]"
        errors.extend(
            _validate_container_common(
                container, volumes, item, host_users=host_users, restart_policy=restart_policy
            )
        )
        name = _str(container.get("name"))
        if name in names:
            errors.append(_duplicate(f"{item}.name", name))
        else:
            names.add(name)
        if isinstance(container.get("lifecycle"), dict):
            errors.extend(_validate_lifecycle(container["lifecycle"], grace_period, f"{item}.lifecycle"))
        errors.extend(
            _validate_probe(container.get("livenessProbe"), grace_period, f"{item}.livenessProbe", "liveness")
        )
        errors.extend(
            _validate_probe(
                container.get("readinessProbe"), grace_period, f"{item}.readinessProbe", "readiness"
            )
        )
        errors.extend(
            _validate_probe(container.get("startupProbe"), grace_period, f"{item}.startupProbe", "startup")
        )
        if container.get("restartPolicy") is not None:
            errors.append(_forbidden(f"{item}.restartPolicy", "may not be set for non-init containers"))
    return errors + _host_port_conflicts(items, path)


def _validate_init_containers(
    containers: Any,
    regular: Any,
    volumes: dict[str, Obj],
    grace_period: int | None,
    path: str,
    *,
    host_users: bool,
    restart_policy: str,
) -> Errors:
    errors: Errors = []
    names = {_str(c.get("name")) for c in _maps(regular)}
    for i, container in enumerate(_maps(containers)):
        item = f"{path}[{i}]"
        errors.extend(
            _validate_container_common(
                container, volumes, item, host_users=host_users, restart_policy=restart_policy
            )
        )
        restart_policy = container.get("restartPolicy")
        restart_always = restart_policy == "Always"
        if restart_policy is not None and not restart_always:
            errors.append(_not_supported(f"{item}.restartPolicy", restart_policy, ("Always",)))
        name = _str(container.get("name"))
        if name in names:
            errors.append(_duplicate(f"{item}.name", name))
        elif name:
            names.add(name)
        errors.extend(_host_port_conflicts([container], path))
        if restart_always:
            if isinstance(container.get("lifecycle"), dict):
                errors.extend(_validate_lifecycle(container["lifecycle"], grace_period, f"{item}.lifecycle"))
            errors.extend(
                _validate_probe(
                    container.get("livenessProbe"), grace_period, f"{item}.livenessProbe", "liveness"
                )
            )
            errors.extend(
                _validate_probe(
                    container.get("readinessProbe"), grace_period, f"{item}.readinessProbe", "readiness"
                )
            )
            errors.extend(
                _validate_probe(
                    container.get("startupProbe"), grace_period, f"{item}.startupProbe", "startup"
                )
            )
        else:
            for key in ("lifecycle", "livenessProbe", "readinessProbe", "startupProbe"):
                if container.get(key) is not None:
                    errors.append(
                        _forbidden(
                            f"{item}.{key}", "may not be set for init containers without restartPolicy=Always"
                        )
                    )
    return errors


# --- pods: the pod spec -------------------------------------------------------------------

_RESTART_POLICIES = ("Always", "OnFailure", "Never")
_DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
_TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
_NODE_SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt")
_SYSCTL_RE = re.compile(r"^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$")
MIRROR_POD_ANNOTATION = "kubernetes.io/config.mirror"
POD_DELETION_COST_ANNOTATION = "controller.kubernetes.io/pod-deletion-cost"
_UPDATABLE_POD_FIELDS = (
    "`spec.containers[*].image`",
    "`spec.initContainers[*].image`",
    "`spec.activeDeadlineSeconds`",
    "`spec.tolerations` (only additions to existing tolerations)",
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
)


def _validate_node_selector_requirement(requirement: Obj, path: str, *, check_values: bool = True) -> Errors:
    errors: Errors = []
    operator = _str(requirement.get("operator"))
    values = _list(requirement.get("values"))
    if operator in ("In", "NotIn"):
        if not values:
            errors.append(_required(f"{path}.values", "must be specified when `operator` is 'In' or 'NotIn'"))
    elif operator in ("Exists", "DoesNotExist"):
        if values:
            errors.append(
                _forbidden(
                    f"{path}.values", "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
                )
            )
    elif operator in ("Gt", "Lt"):
        if len(values) != 1:
            errors.append(
                _required(f"{path}.values", "must be specified single value when `operator` is 'Lt' or 'Gt'")
            )
    else:
        errors.append(_invalid(f"{path}.operator", operator, "not a valid selector operator"))
    errors.extend(_validate_label_name(_str(requirement.get("key")), f"{path}.key"))
    if check_values:
        for i, value in enumerate(values):
            errors.extend(
                _invalid(f"{path}.values[{i}]", value, msg) for msg in is_valid_label_value(_str(value))
            )
    return errors


def _validate_node_selector_term(term: Obj, path: str, *, check_values: bool = True) -> Errors:
    errors: Errors = []
    for j, requirement in enumerate(_maps(term.get("matchExpressions"))):
        errors.extend(
            _validate_node_selector_requirement(
                requirement, f"{path}.matchExpressions[{j}]", check_values=check_values
            )
        )
    for j, requirement in enumerate(_maps(term.get("matchFields"))):
        item = f"{path}.matchFields[{j}]"
        operator = _str(requirement.get("operator"))
        values = _list(requirement.get("values"))
        if operator in ("In", "NotIn"):
            if len(values) != 1:
                errors.append(
                    _required(
                        f"{item}.values",
                        "must be only one value when `operator` is 'In' or 'NotIn' for node field selector",
                    )
                )
        else:
            errors.append(_invalid(f"{item}.operator", operator, "not a valid selector operator"))
        key = _str(requirement.get("key"))
        if key != "metadata.name":
            errors.append(_invalid(f"{item}.key", key, "not a valid field selector key"))
        else:
            for k, value in enumerate(values):
                errors.extend(
                    _invalid(f"{item}.values[{k}]", value, m)
                    for m in name_is_dns_subdomain(_str(value), False)
                )
    return errors


def _validate_affinity_term(term: Obj, path: str) -> Errors:
    errors = validate_label_selector(term.get("labelSelector"), f"{path}.labelSelector")
    errors.extend(validate_label_selector(term.get("namespaceSelector"), f"{path}.namespaceSelector"))
    for name in _list(term.get("namespaces")):
        errors.extend(
            _invalid(f"{path}.namespace", name, msg) for msg in name_is_dns_label(_str(name), False)
        )
    for key in ("matchLabelKeys", "mismatchLabelKeys"):
        keys = _list(term.get(key))
        if keys and not isinstance(term.get("labelSelector"), dict):
            errors.append(_forbidden(f"{path}.{key}", "must not be specified when labelSelector is not set"))
            continue
        for i, label in enumerate(keys):
            errors.extend(_validate_label_name(_str(label), f"{path}.{key}[{i}]"))
    topology_key = _str(term.get("topologyKey"))
    if not topology_key:
        errors.append(_required(f"{path}.topologyKey", "can not be empty"))
    return errors + _validate_label_name(topology_key, f"{path}.topologyKey")


def _validate_affinity(affinity: Any, path: str) -> Errors:
    affinity = _map(affinity)
    errors: Errors = []
    node = affinity.get("nodeAffinity")
    if isinstance(node, dict):
        node_path = f"{path}.nodeAffinity"
        required = node.get("requiredDuringSchedulingIgnoredDuringExecution")
        if isinstance(required, dict):
            terms_path = f"{node_path}.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms"
            terms = _maps(required.get("nodeSelectorTerms"))
            if not terms:
                errors.append(_required(terms_path, "must have at least one node selector term"))
            for i, term in enumerate(terms):
                errors.extend(_validate_node_selector_term(term, f"{terms_path}[{i}]"))
        for i, preferred in enumerate(_maps(node.get("preferredDuringSchedulingIgnoredDuringExecution"))):
            item = f"{node_path}.preferredDuringSchedulingIgnoredDuringExecution[{i}]"
            weight = _int(preferred.get("weight"))
            if not 0 < weight <= 100:
                errors.append(_invalid(f"{item}.weight", weight, "must be in the range 1-100"))
            # Preferred terms tolerate invalid label values (they may still match nothing).
            errors.extend(
                _validate_node_selector_term(
                    _map(preferred.get("preference")), f"{item}.preference", check_values=False
                )
            )
    for kind in ("podAffinity", "podAntiAffinity"):
        pod = affinity.get(kind)
        if not isinstance(pod, dict):
            continue
        kind_path = f"{path}.{kind}"
        for i, term in enumerate(_maps(pod.get("requiredDuringSchedulingIgnoredDuringExecution"))):
            errors.extend(
                _validate_affinity_term(
                    term, f"{kind_path}.requiredDuringSchedulingIgnoredDuringExecution[{i}]"
                )
            )
        for i, weighted in enumerate(_maps(pod.get("preferredDuringSchedulingIgnoredDuringExecution"))):
            item = f"{kind_path}.preferredDuringSchedulingIgnoredDuringExecution[{i}]"
            weight = _int(weighted.get("weight"))
            if not 0 < weight <= 100:
                errors.append(_invalid(f"{item}.weight", weight, "must be in the range 1-100"))
            errors.extend(
                _validate_affinity_term(_map(weighted.get("podAffinityTerm")), f"{item}.podAffinityTerm")
            )
    return errors


def _validate_tolerations(tolerations: Any, path: str) -> Errors:
    errors: Errors = []
    for i, toleration in enumerate(_maps(tolerations)):
        item = f"{path}[{i}]"
        key = _str(toleration.get("key"))
        operator = _str(toleration.get("operator"))
        effect = _str(toleration.get("effect"))
        value = _str(toleration.get("value"))
        if key:
            errors.extend(_validate_label_name(key, f"{item}.key"))
        if not key and operator != "Exists":
            errors.append(
                _invalid(
                    f"{item}.operator",
                    operator,
                    'operator must be Exists when `key` is empty, which means "match all values and all keys"',
                )
            )
        if toleration.get("tolerationSeconds") is not None and effect != "NoExecute":
            errors.append(
                _invalid(
                    f"{item}.effect", effect, "effect must be 'NoExecute' when `tolerationSeconds` is set"
                )
            )
        if operator in ("Equal", ""):
            messages = is_valid_label_value(value)
            if messages:
                errors.append(_invalid(f"{item}.operator", value, ";".join(messages)))
        elif operator == "Exists":
            if value:
                errors.append(
                    _invalid(f"{item}.operator", value, "value must be empty when `operator` is 'Exists'")
                )
        else:
            errors.append(_not_supported(f"{item}.operator", operator, ("Equal", "Exists")))
        if effect and effect not in _TAINT_EFFECTS:
            errors.append(_not_supported(f"{item}.effect", effect, _TAINT_EFFECTS))
    return errors


def _validate_dns_config(config: Any, dns_policy: str, path: str) -> Errors:
    if dns_policy == "None":
        if not isinstance(config, dict):
            return [_required(path, "must provide `dnsConfig` when `dnsPolicy` is None")]
        if not _list(config.get("nameservers")):
            return [
                _required(
                    f"{path}.nameservers", "must provide at least one DNS nameserver when `dnsPolicy` is None"
                )
            ]
    if not isinstance(config, dict):
        return []
    errors: Errors = []
    nameservers = _list(config.get("nameservers"))
    if len(nameservers) > 3:
        errors.append(
            _invalid(
                f"{path}.nameservers", go_string_list(nameservers), "must not have more than 3 nameservers"
            )
        )
    for i, server in enumerate(nameservers):
        errors.extend(_is_valid_ip(f"{path}.nameservers[{i}]", _str(server)))
    searches = [_str(s) for s in _list(config.get("searches"))]
    if len(searches) > 32:
        errors.append(
            _invalid(f"{path}.searches", go_string_list(searches), "must not have more than 32 search paths")
        )
    if len(" ".join(searches)) > 2048:
        errors.append(
            _invalid(
                f"{path}.searches",
                go_string_list(searches),
                "must not have more than 2048 characters (including spaces) in the search list",
            )
        )
    for i, search in enumerate(searches):
        if search == ".":
            continue
        # RelaxedDNSSearchValidation (on in 1.33) also allows '_' and a trailing dot.
        trimmed = search.removesuffix(".")
        errors.extend(
            _invalid(f"{path}.searches[{i}]", trimmed, msg) for msg in _dns_subdomain_with_underscore(trimmed)
        )
    for i, option in enumerate(_maps(config.get("options"))):
        if not _str(option.get("name")):
            errors.append(_required(f"{path}.options[{i}]", "must not be empty"))
    return errors


def _dns_subdomain_with_underscore(value: str) -> list[str]:
    errors = []
    if len(value) > 253:
        errors.append(_max_len_error(253))
    label = "_?[a-z0-9]([-_a-z0-9]*[a-z0-9])?"
    if not re.fullmatch(label + "(\\." + label + ")*", value):
        errors.append(
            regex_error(
                "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '_', '-' or '.', "
                "and must start and end with an alphanumeric character",
                DNS1123_SUBDOMAIN_FMT,
                "example.com",
            )
        )
    return errors


def _validate_topology_spread(constraints: Any, path: str) -> Errors:
    errors: Errors = []
    items = _maps(constraints)
    for i, constraint in enumerate(items):
        item = f"{path}[{i}]"
        max_skew = _int(constraint.get("maxSkew"))
        if max_skew <= 0:
            errors.append(_invalid(f"{item}.maxSkew", max_skew, "must be greater than zero"))
        topology_key = _str(constraint.get("topologyKey"))
        if not topology_key:
            errors.append(_required(f"{item}.topologyKey", "can not be empty"))
        action = _str(constraint.get("whenUnsatisfiable"))
        if action not in ("DoNotSchedule", "ScheduleAnyway"):
            errors.append(
                _not_supported(f"{item}.whenUnsatisfiable", action, ("DoNotSchedule", "ScheduleAnyway"))
            )
        for other in items[i + 1 :]:
            if (
                _str(other.get("topologyKey")) == topology_key
                and _str(other.get("whenUnsatisfiable")) == action
            ):
                errors.append(
                    _duplicate(f"{item}.{{topologyKey, whenUnsatisfiable}}", f"{{{topology_key}, {action}}}")
                )
                break
        min_domains = constraint.get("minDomains")
        if min_domains is not None:
            if _int(min_domains) <= 0:
                errors.append(_invalid(f"{item}.minDomains", _int(min_domains), "must be greater than zero"))
            if action != "DoNotSchedule":
                errors.append(
                    _invalid(
                        f"{item}.minDomains",
                        _int(min_domains),
                        f"can only use minDomains if whenUnsatisfiable=DoNotSchedule, not {action}",
                    )
                )
        for key in ("nodeAffinityPolicy", "nodeTaintsPolicy"):
            policy = constraint.get(key)
            if policy is not None and policy not in ("Honor", "Ignore"):
                errors.append(_not_supported(f"{item}.{key}", policy, ("Honor", "Ignore")))
        match_keys = _list(constraint.get("matchLabelKeys"))
        selector = constraint.get("labelSelector")
        if match_keys:
            selector_keys = set(_map(_map(selector).get("matchLabels")))
            selector_keys.update(_str(e.get("key")) for e in _maps(_map(selector).get("matchExpressions")))
            if not isinstance(selector, dict):
                errors.append(
                    _forbidden(
                        f"{item}.matchLabelKeys", "must not be specified when labelSelector is not set"
                    )
                )
            for j, key in enumerate(match_keys):
                errors.extend(_validate_label_name(_str(key), f"{item}.matchLabelKeys[{j}]"))
                if _str(key) in selector_keys:
                    errors.append(
                        _invalid(
                            f"{item}.matchLabelKeys[{j}]",
                            key,
                            "exists in both matchLabelKeys and labelSelector",
                        )
                    )
        errors.extend(validate_label_selector(selector, f"{item}.labelSelector"))
    return errors


def _validate_pod_security_context(spec: Obj, path: str) -> Errors:
    context = spec.get("securityContext")
    if not isinstance(context, dict):
        return []
    errors = _validate_id(context.get("fsGroup"), f"{path}.fsGroup")
    errors.extend(_validate_id(context.get("runAsUser"), f"{path}.runAsUser"))
    errors.extend(_validate_id(context.get("runAsGroup"), f"{path}.runAsGroup"))
    for i, gid in enumerate(_list(context.get("supplementalGroups"))):
        errors.extend(_validate_id(gid, f"{path}.supplementalGroups[{i}]"))
    if spec.get("shareProcessNamespace") is True and spec.get("hostPID") is True:
        errors.append(
            _invalid(
                f"{path}.shareProcessNamespace",
                True,
                "ShareProcessNamespace and HostPID cannot both be enabled",
            )
        )
    names: set[str] = set()
    for i, sysctl in enumerate(_maps(context.get("sysctls"))):
        item = f"{path}.sysctls[{i}].name"
        name = _str(sysctl.get("name"))
        if not name:
            errors.append(_required(item))
        elif len(name) > 253 or not _SYSCTL_RE.match(name):
            errors.append(
                _invalid(item, name, f"must have at most 253 characters and match regex {_SYSCTL_RE.pattern}")
            )
        elif name in names:
            errors.append(_duplicate(item, name))
        if spec.get("hostNetwork") is True and name.startswith("net."):
            errors.append(_invalid(item, name, "may not be specified when 'hostNetwork' is true"))
        if spec.get("hostIPC") is True and (
            name.startswith(("kernel.shm", "kernel.msg", "kernel.sem", "fs.mqueue."))
        ):
            errors.append(_invalid(item, name, "may not be specified when 'hostIPC' is true"))
        names.add(name)
    policy = context.get("fsGroupChangePolicy")
    if policy is not None and policy not in ("Always", "OnRootMismatch"):
        errors.append(_not_supported(f"{path}.fsGroupChangePolicy", policy, ("Always", "OnRootMismatch")))
    errors.extend(_validate_seccomp_profile(context.get("seccompProfile"), f"{path}.seccompProfile"))
    errors.extend(_validate_apparmor_profile(context.get("appArmorProfile"), f"{path}.appArmorProfile"))
    groups_policy = context.get("supplementalGroupsPolicy")
    if groups_policy is not None and groups_policy not in ("Merge", "Strict"):
        errors.append(_not_supported(f"{path}.supplementalGroupsPolicy", groups_policy, ("Merge", "Strict")))
    selinux = context.get("seLinuxChangePolicy")
    if selinux is not None and selinux not in ("MountOption", "Recursive"):
        errors.append(_not_supported(f"{path}.seLinuxChangePolicy", selinux, ("MountOption", "Recursive")))
    return errors


def _validate_pod_spec(spec: Any, path: str, *, is_pod: bool) -> Errors:
    """ValidatePodSpec, for pods (``is_pod``) and the templates of workload kinds."""
    spec = _map(spec)
    errors: Errors = []
    grace = spec.get("terminationGracePeriodSeconds")
    if grace is None:
        errors.append(_required(f"{path}.terminationGracePeriodSeconds"))
    grace_period = _int(grace) if grace is not None else None
    host_users = _map(spec.get("securityContext")).get("hostUsers") is not False
    restart_policy = _str(spec.get("restartPolicy"))
    volumes, volume_errors = _validate_volumes(spec.get("volumes"), f"{path}.volumes")
    errors.extend(volume_errors)
    errors.extend(
        _validate_containers(
            spec.get("containers"),
            volumes,
            grace_period,
            f"{path}.containers",
            host_users=host_users,
            restart_policy=restart_policy,
        )
    )
    errors.extend(
        _validate_init_containers(
            spec.get("initContainers"),
            spec.get("containers"),
            volumes,
            grace_period,
            f"{path}.initContainers",
            host_users=host_users,
            restart_policy=restart_policy,
        )
    )
    errors.extend(
        _validate_ephemeral_containers(spec, volumes, f"{path}.ephemeralContainers", host_users=host_users)
    )
    if spec.get("hostNetwork") is True:
        for i, container in enumerate(_maps(spec.get("containers"))):
            for j, port in enumerate(_maps(container.get("ports"))):
                host_port, container_port = _int(port.get("hostPort")), _int(port.get("containerPort"))
                if (is_pod or host_port != 0) and host_port != container_port:
                    errors.append(
                        _invalid(
                            f"{path}.containers[{i}].ports[{j}].hostPort",
                            host_port,
                            "must match `containerPort` when `hostNetwork` is true",
                        )
                    )
    if not restart_policy:
        errors.append(_required(f"{path}.restartPolicy"))
    elif restart_policy not in _RESTART_POLICIES:
        errors.append(_not_supported(f"{path}.restartPolicy", restart_policy, _RESTART_POLICIES))
    dns_policy = _str(spec.get("dnsPolicy"))
    if not dns_policy:
        errors.append(_required(f"{path}.dnsPolicy"))
    elif dns_policy not in _DNS_POLICIES:
        errors.append(_not_supported(f"{path}.dnsPolicy", dns_policy, _DNS_POLICIES))
    errors.extend(_validate_labels(spec.get("nodeSelector"), f"{path}.nodeSelector"))
    errors.extend(_validate_pod_security_context(spec, f"{path}.securityContext"))
    for i, secret in enumerate(_maps(spec.get("imagePullSecrets"))):
        if set(secret) - {"name"}:
            errors.append(_invalid(f"{path}.imagePullSecrets[{i}]", _go_json(secret), "only name may be set"))
    errors.extend(_validate_affinity(spec.get("affinity"), f"{path}.affinity"))
    errors.extend(_validate_dns_config(spec.get("dnsConfig"), dns_policy, f"{path}.dnsConfig"))
    for i, gate in enumerate(_maps(spec.get("readinessGates"))):
        condition = _str(gate.get("conditionType"))
        errors.extend(
            _invalid(f"{path}.readinessGates[{i}].conditionType", condition, m)
            for m in is_qualified_name(condition)
        )
    seen_gates: set[str] = set()
    for i, gate in enumerate(_maps(spec.get("schedulingGates"))):
        name = _str(gate.get("name"))
        errors.extend(_invalid(f"{path}.schedulingGates[{i}]", name, msg) for msg in is_qualified_name(name))
        if name in seen_gates:
            errors.append(_duplicate(f"{path}.schedulingGates[{i}]", name))
        seen_gates.add(name)
    errors.extend(
        _validate_topology_spread(spec.get("topologySpreadConstraints"), f"{path}.topologySpreadConstraints")
    )
    if not host_users:
        for key, field in (("hostNetwork", "hostNetwork"), ("hostPID", "HostPID"), ("hostIPC", "HostIPC")):
            if spec.get(key) is True:
                errors.append(_forbidden(f"{path}.{field}", "when `pod.Spec.HostUsers` is false"))
    for key, name_fn in (("serviceAccountName", name_is_dns_subdomain), ("nodeName", name_is_dns_subdomain)):
        value = _str(spec.get(key))
        if value:
            errors.extend(_invalid(f"{path}.{key}", value, msg) for msg in name_fn(value, False))
    deadline = spec.get("activeDeadlineSeconds")
    if deadline is not None and not 1 <= _int(deadline) <= _MAX_ID:
        errors.append(
            _invalid(f"{path}.activeDeadlineSeconds", _int(deadline), _inclusive_range_error(1, _MAX_ID))
        )
    for key in ("hostname", "subdomain"):
        value = _str(spec.get(key))
        if value:
            errors.extend(_invalid(f"{path}.{key}", value, msg) for msg in is_dns1123_label(value))
    errors.extend(_validate_tolerations(spec.get("tolerations"), f"{path}.tolerations"))
    for i, alias in enumerate(_maps(spec.get("hostAliases"))):
        errors.extend(_is_valid_ip(f"{path}.hostAliases[{i}].ip", _str(alias.get("ip"))))
        for j, hostname in enumerate(_list(alias.get("hostnames"))):
            errors.extend(
                _invalid(f"{path}.hostAliases[{i}].hostnames[{j}]", hostname, m)
                for m in is_dns1123_subdomain(_str(hostname))
            )
    for key in ("priorityClassName",):
        value = _str(spec.get(key))
        if value:
            errors.extend(
                _invalid(f"{path}.{key}", value, msg) for msg in name_is_dns_subdomain(value, False)
            )
    runtime_class = spec.get("runtimeClassName")
    if runtime_class is not None:
        errors.extend(
            _invalid(f"{path}.runtimeClassName", runtime_class, m)
            for m in name_is_dns_subdomain(_str(runtime_class), False)
        )
    preemption = spec.get("preemptionPolicy")
    if preemption is not None:
        errors.extend(_validate_preemption_policy(preemption, f"{path}.preemptionPolicy"))
    pod_os = spec.get("os")
    if isinstance(pod_os, dict):
        os_name = _str(pod_os.get("name"))
        if not os_name:
            errors.append(_required(f"{path}.os.name"))
        elif os_name not in ("linux", "windows"):
            errors.append(_not_supported(f"{path}.os.name", os_name, ("linux", "windows")))
    return errors


def _validate_preemption_policy(policy: Any, path: str) -> Errors:
    if policy in ("PreemptLowerPriority", "Never"):
        return []
    if policy == "":
        return [_required(path)]
    return [_not_supported(path, policy, ("PreemptLowerPriority", "Never"))]


def _validate_ephemeral_containers(
    spec: Obj, volumes: dict[str, Obj], path: str, *, host_users: bool
) -> Errors:
    errors: Errors = []
    others = {_str(c.get("name")) for key in ("containers", "initContainers") for c in _maps(spec.get(key))}
    names = set(others)
    restart_policy = _str(spec.get("restartPolicy"))
    allowed = {
        "name", "image", "command", "args", "workingDir", "envFrom", "env", "volumeMounts", "volumeDevices",
        "terminationMessagePath", "terminationMessagePolicy", "imagePullPolicy", "securityContext", "stdin",
        "stdinOnce", "tty", "targetContainerName",
    }  # fmt: skip
    for i, container in enumerate(_maps(spec.get("ephemeralContainers"))):
        item = f"{path}[{i}]"
        errors.extend(
            _validate_container_common(
                container, volumes, item, host_users=host_users, restart_policy=restart_policy
            )
        )
        image = _str(container.get("image"))
        if len(image) != len(image.strip()):
            errors.append(_invalid(f"{item}.image", image, "must not have leading or trailing whitespace"))
        name = _str(container.get("name"))
        if name in names:
            errors.append(_duplicate(f"{item}.name", name))
        else:
            names.add(name)
        target = _str(container.get("targetContainerName"))
        if target and target not in others:
            errors.append(_not_found(f"{item}.targetContainerName", target))
        for key, value in container.items():
            if key not in allowed and not _is_zero(_prune(value)):
                errors.append(_forbidden(f"{item}.{key}", "cannot be set for an Ephemeral Container"))
        for j, mount in enumerate(_maps(container.get("volumeMounts"))):
            for key in ("subPath", "subPathExpr"):
                if _str(mount.get(key)):
                    errors.append(
                        _forbidden(
                            f"{item}.volumeMounts[{j}].{key}", "cannot be set for an Ephemeral Container"
                        )
                    )
    return errors


def _validate_pod_annotations(annotations: Any, spec: Obj, path: str) -> Errors:
    """ValidatePodSpecificAnnotations (mirror pods and the deletion cost)."""
    annotations = _map(annotations)
    errors: Errors = []
    if MIRROR_POD_ANNOTATION in annotations and not _str(spec.get("nodeName")):
        errors.append(
            _invalid(
                f"{path}[{MIRROR_POD_ANNOTATION}]",
                annotations[MIRROR_POD_ANNOTATION],
                "must set spec.nodeName if mirror pod annotation is set",
            )
        )
    if POD_DELETION_COST_ANNOTATION in annotations:
        raw = _str(annotations[POD_DELETION_COST_ANNOTATION])
        if not re.fullmatch(r"[+-]?[0-9]+", raw) or not -(2**31) <= int(raw) < 2**31:
            errors.append(_invalid(f"{path}[{POD_DELETION_COST_ANNOTATION}]", raw, "must be a 32bit integer"))
    return errors


def _validate_pod_template_spec(template: Any, path: str) -> Errors:
    """ValidatePodTemplateSpec (note upstream reports template labels at ``<path>.labels``)."""
    template = _map(template)
    metadata = _map(template.get("metadata"))
    spec = _map(template.get("spec"))
    errors = _validate_labels(metadata.get("labels"), f"{path}.labels")
    errors.extend(_validate_annotations(metadata.get("annotations"), f"{path}.annotations"))
    errors.extend(_validate_pod_annotations(metadata.get("annotations"), spec, f"{path}.annotations"))
    errors.extend(_validate_pod_spec(spec, f"{path}.spec", is_pod=False))
    if _list(spec.get("ephemeralContainers")):
        errors.append(
            _forbidden(f"{path}.spec.ephemeralContainers", "ephemeral containers not allowed in pod template")
        )
    return errors


def _validate_pod_template(obj: Obj, old: Obj | None, rt: ResourceType) -> Errors:
    """ValidatePodTemplate and ValidatePodTemplateUpdate: the ObjectMeta (a pod's name rule), then
    ``template`` as any workload's pod template spec, on create and on update alike (it is mutable)."""
    if old is not None:
        errors = validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
    else:
        errors = validate_object_meta(obj.get("metadata"), namespaced=True, name_fn=name_is_dns_subdomain)
    return errors + _validate_pod_template_spec(obj.get("template"), "template")


def _validate_pod_metadata_and_spec(obj: Obj) -> Errors:
    metadata, spec = _map(obj.get("metadata")), _map(obj.get("spec"))
    errors = validate_object_meta(metadata, namespaced=True, name_fn=name_is_dns_subdomain)
    errors.extend(_validate_pod_annotations(metadata.get("annotations"), spec, "metadata.annotations"))
    errors.extend(_validate_pod_spec(spec, "spec", is_pod=True))
    if not _str(spec.get("serviceAccountName")):
        for i, volume in enumerate(_maps(spec.get("volumes"))):
            for j, source in enumerate(_maps(_map(volume.get("projected")).get("sources"))):
                if source.get("serviceAccountToken") is not None:
                    errors.append(
                        _forbidden(
                            f"spec.volumes[{i}].projected.sources[{j}].serviceAccountToken",
                            "must not be specified when serviceAccountName is not set",
                        )
                    )
    for key in ("containers", "initContainers"):
        for i, container in enumerate(_maps(spec.get(key))):
            image = _str(container.get("image"))
            if len(image) != len(image.strip()):
                errors.append(
                    _invalid(f"spec.{key}[{i}].image", image, "must not have leading or trailing whitespace")
                )
    return errors


def _validate_pod(obj: Obj, old: Obj | None, rt: ResourceType) -> Errors:
    if old is not None:
        return _validate_pod_update(obj, old)
    errors = _validate_pod_metadata_and_spec(obj)
    spec = _map(obj.get("spec"))
    if _list(spec.get("ephemeralContainers")):
        errors.append(_forbidden("spec.ephemeralContainers", "cannot be set on create"))
    if _str(spec.get("nodeName")) and _list(spec.get("schedulingGates")):
        errors.append(
            _forbidden("spec.nodeName", "cannot be set until all schedulingGates have been cleared")
        )
    return errors


def validate_ephemeral_containers_update(new: Obj, old: Obj) -> list[FieldError]:
    """ValidatePodEphemeralContainersUpdate (pods/ephemeralcontainers): the pod as a whole, and
    existing ephemeral containers neither removed nor changed (new ones may be added)."""
    errors = validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    errors.extend(_validate_pod_metadata_and_spec(new))
    errors.extend(_validate_pod_annotation_updates(new, old))
    if MIRROR_POD_ANNOTATION in _map(_map(old.get("metadata")).get("annotations")):
        return [_forbidden("", "static pods do not support ephemeral containers")]
    path = "spec.ephemeralContainers"
    by_name = {_str(c.get("name")): c for c in _maps(_map(new.get("spec")).get("ephemeralContainers"))}
    for existing in _maps(_map(old.get("spec")).get("ephemeralContainers")):
        name = _str(existing.get("name"))
        if name not in by_name:
            errors.append(_forbidden(path, f'existing ephemeral containers "{name}" may not be removed\n'))
        elif not _equal(existing, by_name[name]):
            errors.append(
                _forbidden(f"{path}[{name}]", f'existing ephemeral containers "{name}" may not be changed\n')
            )
    return errors


def _validate_pod_annotation_updates(new: Obj, old: Obj) -> Errors:
    new_annotations = _map(_map(new.get("metadata")).get("annotations"))
    old_annotations = _map(_map(old.get("metadata")).get("annotations"))
    path = "metadata.annotations"
    errors: Errors = []
    if (
        MIRROR_POD_ANNOTATION in old_annotations
        and new_annotations.get(MIRROR_POD_ANNOTATION) != old_annotations[MIRROR_POD_ANNOTATION]
    ):
        errors.append(
            _forbidden(f"{path}[{MIRROR_POD_ANNOTATION}]", "may not remove or update mirror pod annotation")
        )
    if MIRROR_POD_ANNOTATION in new_annotations and MIRROR_POD_ANNOTATION not in old_annotations:
        errors.append(_forbidden(f"{path}[{MIRROR_POD_ANNOTATION}]", "may not add mirror pod annotation"))
    return errors + _validate_pod_annotations(new_annotations, _map(new.get("spec")), path)


def _changed_paths(old: Any, new: Any, path: str) -> list[str]:
    """Leaf paths where two JSON values differ (for the pod update message)."""
    return _changed_pruned_paths(_prune(old), _prune(new), path)


def _changed_pruned_paths(old: Any, new: Any, path: str) -> list[str]:
    if old == new:
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        paths: list[str] = []
        for key in sorted(set(old) | set(new)):
            paths.extend(_changed_pruned_paths(old.get(key), new.get(key), f"{path}.{key}"))
        return paths
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        paths = []
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            paths.extend(_changed_pruned_paths(a, b, f"{path}[{i}]"))
        return paths
    return [path]


def _validate_pod_update(new: Obj, old: Obj) -> Errors:
    errors = validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    errors.extend(_validate_pod_metadata_and_spec(new))
    errors.extend(_validate_pod_annotation_updates(new, old))
    new_spec, old_spec = _map(new.get("spec")), _map(old.get("spec"))
    for key in ("containers", "initContainers"):
        new_containers, old_containers = _maps(new_spec.get(key)), _maps(old_spec.get(key))
        if len(new_containers) != len(old_containers):
            errors.append(_forbidden(f"spec.{key}", "pod updates may not add or remove containers"))
            return errors
        for i, container in enumerate(new_containers):
            image = _str(container.get("image"))
            if not image:
                errors.append(_required(f"spec.{key}[{i}].image"))
            if len(image.strip()) != len(image):
                errors.append(
                    _invalid(f"spec.{key}[{i}].image", image, "must not have leading or trailing whitespace")
                )
    new_deadline, old_deadline = new_spec.get("activeDeadlineSeconds"), old_spec.get("activeDeadlineSeconds")
    if new_deadline is not None:
        if not 0 <= _int(new_deadline) <= _MAX_ID:
            errors.append(
                _invalid("spec.activeDeadlineSeconds", _int(new_deadline), _inclusive_range_error(0, _MAX_ID))
            )
            return errors
        if old_deadline is not None and _int(old_deadline) < _int(new_deadline):
            errors.append(
                _invalid(
                    "spec.activeDeadlineSeconds",
                    _int(new_deadline),
                    "must be less than or equal to previous value",
                )
            )
            return errors
    elif old_deadline is not None:
        errors.append(
            _invalid(
                "spec.activeDeadlineSeconds", None, "must not update from a positive integer to nil value"
            )
        )
    errors.extend(_validate_only_added_tolerations(new_spec.get("tolerations"), old_spec.get("tolerations")))
    old_gates = {_str(g.get("name")) for g in _maps(old_spec.get("schedulingGates"))}
    for i, gate in enumerate(_maps(new_spec.get("schedulingGates"))):
        name = _str(gate.get("name"))
        if name not in old_gates:
            errors.append(
                _forbidden(
                    f"spec.schedulingGates[{i}].name",
                    f"only deletion is allowed, but found new scheduling gate '{name}'",
                )
            )
    if _equal(new_spec, old_spec):
        return errors
    munged = orjson.loads(orjson.dumps(new_spec))
    for key in ("containers", "initContainers"):
        for container, old_container in zip(_maps(munged.get(key)), _maps(old_spec.get(key)), strict=False):
            container["image"] = old_container.get("image")
    for key in ("activeDeadlineSeconds", "schedulingGates", "tolerations"):
        munged.pop(key, None)
        if key in old_spec:
            munged[key] = old_spec[key]
    old_grace = old_spec.get("terminationGracePeriodSeconds")
    if _is_int(old_grace) and old_grace < 0 and munged.get("terminationGracePeriodSeconds") == 1:
        munged["terminationGracePeriodSeconds"] = old_grace
    if old_gates:
        selector_errors = _validate_node_selector_mutation(
            munged.get("nodeSelector"), old_spec.get("nodeSelector")
        )
        errors.extend(selector_errors)
        munged.pop("nodeSelector", None)
        if "nodeSelector" in old_spec:
            munged["nodeSelector"] = old_spec["nodeSelector"]
    if not _equal(munged, old_spec):
        changed = "\n".join(_changed_paths(old_spec, munged, "spec"))
        errors.append(
            _forbidden(
                "spec",
                f"pod updates may not change fields other than {','.join(_UPDATABLE_POD_FIELDS)}\n{changed}",
            )
        )
    return errors


def _validate_node_selector_mutation(new: Any, old: Any) -> Errors:
    new_selector = _map(new)
    for key, value in _map(old).items():
        if new_selector.get(key) != value:
            return [
                _invalid(
                    "spec.nodeSelector",
                    go_string_map(new_selector),
                    "only additions to spec.nodeSelector are allowed (no mutations or deletions)",
                )
            ]
    return []


def _validate_only_added_tolerations(new: Any, old: Any) -> Errors:
    new_items = _maps(new)
    for old_toleration in _maps(old):
        stripped = {k: v for k, v in old_toleration.items() if k != "tolerationSeconds"}
        if not any(
            _equal(stripped, {k: v for k, v in t.items() if k != "tolerationSeconds"}) for t in new_items
        ):
            return [
                _forbidden(
                    "spec.tolerations", "existing toleration can not be modified except its tolerationSeconds"
                )
            ]
    return _validate_tolerations(new, "spec.tolerations")


def _validate_pod_status_update(new: Obj, old: Obj) -> Errors:
    errors = validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    errors.extend(_validate_pod_annotation_updates(new, old))
    status, old_status = _map(new.get("status")), _map(old.get("status"))
    for i, condition in enumerate(_maps(status.get("conditions"))):
        kind = _str(condition.get("type"))
        if kind not in ("PodScheduled", "Ready", "Initialized"):
            errors.extend(
                _invalid(f"metadata.conditions[{i}].Type", kind, msg) for msg in is_qualified_name(kind)
            )
    if _str(_map(new.get("spec")).get("nodeName")) != _str(_map(old.get("spec")).get("nodeName")):
        errors.append(_forbidden("status.nodeName", "may not be changed directly"))
    nominated = _str(status.get("nominatedNodeName"))
    if nominated and nominated != _str(old_status.get("nominatedNodeName")):
        errors.extend(
            _invalid("status.nominatedNodeName", nominated, msg)
            for msg in name_is_dns_subdomain(nominated, False)
        )
    errors.extend(
        _immutable(_str(status.get("qosClass")), _str(old_status.get("qosClass")), "status.qosClass")
    )
    restart_policy = _str(_map(old.get("spec")).get("restartPolicy"))
    for key, policy in (("containerStatuses", restart_policy), ("ephemeralContainerStatuses", "Never")):
        errors.extend(
            _validate_container_state_transition(
                status.get(key), old_status.get(key), f"status.{key}", policy
            )
        )
    if restart_policy != "Always":
        restartable = {
            _str(c.get("name"))
            for c in _maps(_map(old.get("spec")).get("initContainers"))
            if c.get("restartPolicy") == "Always"
        }
        errors.extend(
            _validate_container_state_transition(
                status.get("initContainerStatuses"),
                old_status.get("initContainerStatuses"),
                "status.initContainerStatuses",
                restart_policy,
                skip=restartable,
            )
        )
    errors.extend(_validate_status_ips(status, "podIPs"))
    host_ips = _maps(status.get("hostIPs"))
    if host_ips and _str(status.get("hostIP")) != _str(host_ips[0].get("ip")):
        errors.append(
            _invalid("status.hostIPs[0].ip", _str(host_ips[0].get("ip")), "must be equal to `hostIP`")
        )
    errors.extend(_validate_status_ips(status, "hostIPs"))
    return errors


def _validate_container_state_transition(
    new: Any, old: Any, path: str, restart_policy: str, *, skip: set[str] | None = None
) -> Errors:
    if restart_policy == "Always":
        return []
    errors: Errors = []
    new_statuses = _maps(new)
    for i, old_status in enumerate(_maps(old)):
        terminated = _map(old_status.get("state")).get("terminated")
        if not isinstance(terminated, dict):
            continue
        if _int(terminated.get("exitCode")) != 0 and restart_policy == "OnFailure":
            continue
        if skip and _str(old_status.get("name")) in skip:
            continue
        for new_status in new_statuses:
            if new_status.get("name") == old_status.get("name") and not isinstance(
                _map(new_status.get("state")).get("terminated"), dict
            ):
                errors.append(
                    _forbidden(f"{path}[{i}].state", "may not be transitioned to non-terminated state")
                )
    return errors


def _validate_status_ips(status: Obj, key: str) -> Errors:
    path = f"status.{key}"
    ips = [_str(item.get("ip")) for item in _maps(status.get(key))]
    errors: Errors = []
    for i, ip in enumerate(ips):
        errors.extend(
            _is_valid_ip(f"{path}[{i}]", ip) if key == "podIPs" else _is_valid_ip(f"{path}[{i}].ip", ip)
        )
    if len(ips) > 1 and not errors:
        parsed = [_parse_ip(ip) for ip in ips]
        versions = {ip.version for ip in parsed if ip is not None}
        if len(versions) != 2 or len(ips) > 2:
            errors.append(
                _invalid(
                    path, _go_json(status.get(key)), "may specify no more than one IP for each IP family"
                )
            )
        seen: set[str] = set()
        for i, item in enumerate(_maps(status.get(key))):
            if _str(item.get("ip")) in seen:
                errors.append(_duplicate(f"{path}[{i}]", _go_json(item)))
            seen.add(_str(item.get("ip")))
    return errors


# --- core/v1: services and endpoints -------------------------------------------------------

_SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
MAX_CLIENT_IP_AFFINITY_SECONDS = 86400


def _go_service_port_key(protocol: str, port: int) -> _GoValue:
    return _GoValue(
        f'core.ServicePort{{Name:"", Protocol:{_go_quote(protocol)}, AppProtocol:(*string)(nil), Port:{port}, '
        'TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}'
    )


def _is_headless(spec: Obj) -> bool:
    return _list(spec.get("clusterIPs")) == ["None"]


def _externally_accessible(spec: Obj) -> bool:
    kind = _str(spec.get("type"))
    return kind in ("LoadBalancer", "NodePort") or (
        kind == "ClusterIP" and bool(_list(spec.get("externalIPs")))
    )


def _needs_health_check(spec: Obj) -> bool:
    return _str(spec.get("type")) == "LoadBalancer" and spec.get("externalTrafficPolicy") == "Local"


def _validate_non_special_ip(value: str, path: str) -> Errors:
    """ValidateNonSpecialIP, except that loopback is allowed (kubelab's pods live in 127/8)."""
    ip = _parse_ip(value)
    if ip is None:
        return [_invalid(path, value, "must be a valid IP address")]
    errors: Errors = []
    if ip.is_unspecified:
        errors.append(_invalid(path, value, f"may not be unspecified ({value})"))
    if ip.is_link_local:
        errors.append(_invalid(path, value, "may not be in the link-local range (169.254.0.0/16, fe80::/10)"))
    link_local_multicast = (ip.version == 4 and ip in ipaddress.ip_network("224.0.0.0/24")) or (
        ip.version == 6 and ip.is_multicast and (int(ip) >> 112) & 0xF == 2
    )
    if link_local_multicast:
        errors.append(
            _invalid(path, value, "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)")
        )
    return errors


def _validate_service_port(port: Obj, *, require_name: bool, names: set[str], path: str) -> Errors:
    errors: Errors = []
    name = _str(port.get("name"))
    if require_name and not name:
        errors.append(_required(f"{path}.name"))
    elif name:
        errors.extend(_invalid(f"{path}.name", name, msg) for msg in is_dns1123_label(name))
        if name in names:
            errors.append(_duplicate(f"{path}.name", name))
        else:
            names.add(name)
    number = _int(port.get("port"))
    errors.extend(_invalid(f"{path}.port", number, msg) for msg in is_valid_port_num(number))
    protocol = _str(port.get("protocol"))
    if not protocol:
        errors.append(_required(f"{path}.protocol"))
    elif protocol not in _PROTOCOLS:
        errors.append(_not_supported(f"{path}.protocol", protocol, _PROTOCOLS))
    errors.extend(_validate_port_num_or_name(port.get("targetPort"), f"{path}.targetPort"))
    app_protocol = port.get("appProtocol")
    if app_protocol is not None:
        errors.extend(
            _invalid(f"{path}.appProtocol", app_protocol, m) for m in is_qualified_name(_str(app_protocol))
        )
    return errors


def _validate_cluster_ips(spec: Obj) -> Errors:
    """ValidateServiceClusterIPsRelatedFields."""
    if _str(spec.get("type")) == "ExternalName":
        return []
    errors: Errors = []
    cluster_ip = _str(spec.get("clusterIP"))
    cluster_ips = [_str(ip) for ip in _list(spec.get("clusterIPs"))]
    families = [_str(f) for f in _list(spec.get("ipFamilies"))]
    if cluster_ip:
        if not cluster_ips:
            errors.append(_required("spec.clusterIPs"))
        elif cluster_ips[0] != cluster_ip:
            errors.append(
                _invalid("spec.clusterIPs", go_string_list(cluster_ips), "first value must match `clusterIP`")
            )
    elif cluster_ips:
        errors.append(
            _invalid(
                "spec.clusterIPs",
                go_string_list(cluster_ips),
                "must be empty when `clusterIP` is not specified",
            )
        )
    seen: set[str] = set()
    for i, family in enumerate(families):
        if family not in ("IPv4", "IPv6"):
            errors.append(_not_supported(f"spec.ipFamilies[{i}]", family, ("IPv4", "IPv6")))
        if family in seen:
            errors.append(_duplicate(f"spec.ipFamilies[{i}]", family))
        seen.add(family)
    policy = spec.get("ipFamilyPolicy")
    if policy is not None and policy not in ("PreferDualStack", "RequireDualStack", "SingleStack"):
        errors.append(
            _not_supported(
                "spec.ipFamilyPolicy", policy, ("PreferDualStack", "RequireDualStack", "SingleStack")
            )
        )
    invalid_ips = False
    for i, ip in enumerate(cluster_ips):
        if i == 0 and ip == "None":
            if len(cluster_ips) > 1:
                invalid_ips = True
                errors.append(
                    _invalid(
                        "spec.clusterIPs",
                        go_string_list(cluster_ips),
                        "'None' must be the first and only value",
                    )
                )
            continue
        ip_errors = _is_valid_ip(f"spec.clusterIPs[{i}]", ip)
        invalid_ips = invalid_ips or bool(ip_errors)
        errors.extend(ip_errors)
    if len(cluster_ips) > 2:
        errors.append(
            _invalid("spec.clusterIPs", go_string_list(cluster_ips), "may only hold up to 2 values")
        )
    if invalid_ips:
        return errors
    if len(cluster_ips) > 1:
        versions = {ip.version for ip in map(_parse_ip, cluster_ips) if ip is not None}
        if len(versions) != 2:
            errors.append(
                _invalid(
                    "spec.clusterIPs",
                    go_string_list(cluster_ips),
                    "may specify no more than one IP for each IP family",
                )
            )
    if not _is_headless(spec) and cluster_ips and families:
        for i, ip in enumerate(cluster_ips[: len(families)]):
            parsed = _parse_ip(ip)
            if parsed is None:
                continue
            if families[i] == "IPv4" and parsed.version == 6:
                errors.append(
                    _invalid(
                        f"spec.clusterIPs[{i}]",
                        ip,
                        f"expected an IPv4 value as indicated by `ipFamilies[{i}]`",
                    )
                )
            if families[i] == "IPv6" and parsed.version == 4:
                errors.append(
                    _invalid(
                        f"spec.clusterIPs[{i}]",
                        ip,
                        f"expected an IPv6 value as indicated by `ipFamilies[{i}]`",
                    )
                )
    return errors


def _validate_service_spec(obj: Obj) -> Errors:
    metadata, spec = _map(obj.get("metadata")), _map(obj.get("spec"))
    errors: Errors = []
    annotations = _map(metadata.get("annotations"))
    hints = "service.kubernetes.io/topology-aware-hints"
    mode = "service.kubernetes.io/topology-mode"
    if mode in annotations and hints in annotations and annotations[mode] != annotations[hints]:
        errors.append(
            _invalid(
                f"metadata.annotations[{mode}]",
                annotations[mode],
                f"must match annotations[{hints}] when both are specified",
            )
        )
    kind = _str(spec.get("type"))
    ports = _maps(spec.get("ports"))
    headless = _is_headless(spec)
    if not ports and not headless and kind != "ExternalName":
        errors.append(_required("spec.ports"))
    if kind in ("LoadBalancer", "NodePort") and headless:
        errors.append(_invalid("spec.clusterIPs[0]", "None", f"may not be set to 'None' for {kind} services"))
    elif kind == "ExternalName":
        if _list(spec.get("clusterIPs")):
            errors.append(_forbidden("spec.clusterIPs", "may not be set for ExternalName services"))
        if _list(spec.get("ipFamilies")):
            errors.append(_forbidden("spec.ipFamilies", "may not be set for ExternalName services"))
        if spec.get("ipFamilyPolicy") is not None:
            errors.append(_forbidden("spec.ipFamilyPolicy", "may not be set for ExternalName services"))
        cname = _str(spec.get("externalName")).removesuffix(".")
        if cname:
            errors.extend(_invalid("spec.externalName", cname, msg) for msg in is_dns1123_subdomain(cname))
        else:
            errors.append(_required("spec.externalName"))
    names: set[str] = set()
    for i, port in enumerate(ports):
        errors.extend(
            _validate_service_port(port, require_name=len(ports) > 1, names=names, path=f"spec.ports[{i}]")
        )
    if spec.get("selector") is not None:
        errors.extend(_validate_labels(spec.get("selector"), "spec.selector"))
    affinity = _str(spec.get("sessionAffinity"))
    if not affinity:
        errors.append(_required("spec.sessionAffinity"))
    elif affinity not in ("ClientIP", "None"):
        errors.append(_not_supported("spec.sessionAffinity", affinity, ("ClientIP", "None")))
    config = spec.get("sessionAffinityConfig")
    if affinity == "ClientIP":
        config_path = "spec.sessionAffinityConfig"
        client_ip = _map(config).get("clientIP")
        if not isinstance(config, dict):
            errors.append(_required(config_path, "when session affinity type is ClientIP"))
        elif not isinstance(client_ip, dict):
            errors.append(_required(f"{config_path}.clientIP", "when session affinity type is ClientIP"))
        elif client_ip.get("timeoutSeconds") is None:
            errors.append(
                _required(f"{config_path}.clientIP.timeoutSeconds", "when session affinity type is ClientIP")
            )
        elif not 0 < _int(client_ip.get("timeoutSeconds")) <= MAX_CLIENT_IP_AFFINITY_SECONDS:
            errors.append(
                _invalid(
                    f"{config_path}.clientIP.timeoutSeconds",
                    _int(client_ip.get("timeoutSeconds")),
                    f"must be greater than 0 and less than {MAX_CLIENT_IP_AFFINITY_SECONDS}",
                )
            )
    elif affinity == "None" and config is not None:
        errors.append(
            _forbidden("spec.sessionAffinityConfig", "must not be set when session affinity is None")
        )
    errors.extend(_validate_cluster_ips(spec))
    for i, ip in enumerate(_list(spec.get("externalIPs"))):
        ip_errors = _is_valid_ip(f"spec.externalIPs[{i}]", _str(ip))
        errors.extend(ip_errors or _validate_non_special_ip(_str(ip), f"spec.externalIPs[{i}]"))
    if not kind:
        errors.append(_required("spec.type"))
    elif kind not in _SERVICE_TYPES:
        errors.append(_not_supported("spec.type", kind, _SERVICE_TYPES))
    if kind == "ClusterIP":
        for i, port in enumerate(ports):
            if _int(port.get("nodePort")):
                errors.append(
                    _forbidden(f"spec.ports[{i}].nodePort", "may not be used when `type` is 'ClusterIP'")
                )
    node_ports: set[tuple[str, int]] = set()
    for i, port in enumerate(ports):
        node_port = _int(port.get("nodePort"))
        if not node_port:
            continue
        key = (_str(port.get("protocol")), node_port)
        if key in node_ports:
            errors.append(_duplicate(f"spec.ports[{i}].nodePort", node_port))
        node_ports.add(key)
    service_ports: set[tuple[str, int]] = set()
    for i, port in enumerate(ports):
        key = (_str(port.get("protocol")), _int(port.get("port")))
        if key in service_ports:
            errors.append(_duplicate(f"spec.ports[{i}]", _go_service_port_key(*key)))
        service_ports.add(key)
    ranges = _list(spec.get("loadBalancerSourceRanges"))
    if ranges:
        if kind != "LoadBalancer":
            errors.append(
                _forbidden("spec.LoadBalancerSourceRanges", "may only be used when `type` is 'LoadBalancer'")
            )
        for i, value in enumerate(ranges):
            errors.extend(_is_valid_cidr(f"spec.LoadBalancerSourceRanges[{i}]", _str(value).strip()))
    if spec.get("allocateLoadBalancerNodePorts") is not None and kind != "LoadBalancer":
        errors.append(
            _forbidden("spec.allocateLoadBalancerNodePorts", "may only be used when `type` is 'LoadBalancer'")
        )
    if kind == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        errors.append(_required("allocateLoadBalancerNodePorts"))
    errors.extend(_validate_load_balancer_class(spec, None))
    errors.extend(_validate_traffic_policies(spec))
    return errors


def _validate_load_balancer_class(spec: Obj, old_spec: Obj | None) -> Errors:
    errors: Errors = []
    lb_class = spec.get("loadBalancerClass")
    is_lb = _str(spec.get("type")) == "LoadBalancer"
    same_type = old_spec is not None and is_lb and _str(old_spec.get("type")) == "LoadBalancer"
    if same_type and old_spec is not None and lb_class != old_spec.get("loadBalancerClass"):
        errors.append(_invalid("spec.loadBalancerClass", lb_class, "may not change once set"))
    if is_lb:
        if lb_class is not None:
            errors.extend(
                _invalid("spec.loadBalancerClass", lb_class, m) for m in is_qualified_name(_str(lb_class))
            )
    elif lb_class is not None:
        errors.append(_forbidden("spec.loadBalancerClass", "may only be used when `type` is 'LoadBalancer'"))
    return errors


def _validate_traffic_policies(spec: Obj) -> Errors:
    errors: Errors = []
    external = _str(spec.get("externalTrafficPolicy"))
    if not _externally_accessible(spec):
        if external:
            errors.append(
                _invalid(
                    "spec.externalTrafficPolicy",
                    external,
                    "may only be set for externally-accessible services",
                )
            )
    elif not external:
        errors.append(_required("spec.externalTrafficPolicy"))
    elif external not in ("Cluster", "Local"):
        errors.append(_not_supported("spec.externalTrafficPolicy", external, ("Cluster", "Local")))
    health = _int(spec.get("healthCheckNodePort"))
    if not _needs_health_check(spec):
        if health:
            errors.append(
                _invalid(
                    "spec.healthCheckNodePort",
                    health,
                    "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
                )
            )
    elif not health:
        errors.append(_required("spec.healthCheckNodePort"))
    else:
        errors.extend(_invalid("spec.healthCheckNodePort", health, msg) for msg in is_valid_port_num(health))
    internal = spec.get("internalTrafficPolicy")
    if internal is None:
        if _str(spec.get("type")) in ("NodePort", "LoadBalancer", "ClusterIP"):
            errors.append(_required("spec.internalTrafficPolicy"))
    elif internal not in ("Cluster", "Local"):
        errors.append(_not_supported("spec.internalTrafficPolicy", internal, ("Cluster", "Local")))
    distribution = spec.get("trafficDistribution")
    if distribution is not None and distribution != "PreferClose":
        errors.append(_not_supported("spec.trafficDistribution", distribution, ("PreferClose",)))
    return errors


def _validate_cluster_ip_changes(spec: Obj, old_spec: Obj) -> Errors:
    if "ExternalName" in (_str(spec.get("type")), _str(old_spec.get("type"))):
        return []
    errors: Errors = []
    new_ips, old_ips = _list(spec.get("clusterIPs")), _list(old_spec.get("clusterIPs"))
    rendered = go_string_list(new_ips)
    if not (_is_headless(spec) and _is_headless(old_spec)):
        if len(old_ips) == len(new_ips):
            for i, ip in enumerate(old_ips):
                if ip != new_ips[i]:
                    errors.append(_invalid(f"spec.clusterIPs[{i}]", rendered, "may not change once set"))
        elif len(old_ips) > len(new_ips):
            if not new_ips:
                errors.append(_invalid("spec.clusterIPs[0]", rendered, "primary clusterIP can not be unset"))
            elif new_ips[0] != old_ips[0]:
                errors.append(_invalid("spec.clusterIPs[0]", rendered, "may not change once set"))
            if len(new_ips) == 1 and spec.get("ipFamilyPolicy") != "SingleStack":
                errors.append(
                    _invalid(
                        "spec.ipFamilyPolicy",
                        spec.get("ipFamilyPolicy"),
                        "must be set to 'SingleStack' when releasing the secondary clusterIP",
                    )
                )
        elif old_ips and new_ips[0] != old_ips[0]:
            errors.append(_invalid("spec.clusterIPs[0]", rendered, "may not change once set"))
    if _is_headless(spec) != _is_headless(old_spec) or _is_headless(spec):
        return errors
    new_families, old_families = _list(spec.get("ipFamilies")), _list(old_spec.get("ipFamilies"))
    rendered_families = _GoValue("[]core.IPFamily{" + ", ".join(_go_quote(f) for f in new_families) + "}")
    if len(old_families) == len(new_families):
        if any(family != new_families[i] for i, family in enumerate(old_families)):
            errors.append(_invalid("spec.ipFamilies[0]", rendered_families, "may not change once set"))
    elif len(old_families) > len(new_families):
        if not new_ips:
            errors.append(
                _invalid("spec.ipFamilies[0]", rendered_families, "primary ipFamily can not be unset")
            )
        if new_families and new_families[0] != old_families[0]:
            errors.append(_invalid("spec.ipFamilies[0]", rendered, "may not change once set"))
        if len(new_families) == 1 and spec.get("ipFamilyPolicy") != "SingleStack":
            errors.append(
                _invalid(
                    "spec.ipFamilyPolicy",
                    spec.get("ipFamilyPolicy"),
                    "must be set to 'SingleStack' when releasing the secondary ipFamily",
                )
            )
    elif old_families and new_families and new_families[0] != old_families[0]:
        errors.append(_invalid("spec.ipFamilies[0]", rendered, "may not change once set"))
    return errors


def _validate_service(obj: Obj, old: Obj | None, rt: ResourceType) -> Errors:
    if old is None:
        errors = validate_object_meta(obj.get("metadata"), namespaced=True, name_fn=name_is_dns1035_label)
        return errors + _validate_service_spec(obj)
    spec, old_spec = _map(obj.get("spec")), _map(old.get("spec"))
    errors = validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
    errors.extend(_validate_cluster_ip_changes(spec, old_spec))
    errors.extend(_validate_load_balancer_class(spec, old_spec))
    health_check_changed = _int(spec.get("healthCheckNodePort")) != _int(old_spec.get("healthCheckNodePort"))
    if _needs_health_check(old_spec) and _needs_health_check(spec) and health_check_changed:
        errors.append(_forbidden("spec.healthCheckNodePort", "field is immutable"))
    errors.extend(validate_object_meta(obj.get("metadata"), namespaced=True, name_fn=name_is_dns1035_label))
    return errors + _validate_service_spec(obj)


def _validate_load_balancer_status(status: Any, path: str, *, is_lb: bool) -> Errors:
    ingress = _maps(_map(status).get("ingress"))
    if not is_lb and ingress:
        return [_forbidden(f"{path}.ingress", "may only be used when `spec.type` is 'LoadBalancer'")]
    errors: Errors = []
    for i, item in enumerate(ingress):
        item_path = f"{path}.ingress[{i}]"
        ip = _str(item.get("ip"))
        if ip:
            errors.extend(_is_valid_ip(f"{item_path}.ip", ip))
        mode = item.get("ipMode")
        if mode is None and ip:
            errors.append(_required(f"{item_path}.ipMode", "must be specified when `ip` is set"))
        elif mode is not None and not ip:
            errors.append(_forbidden(f"{item_path}.ipMode", "may not be specified when `ip` is not set"))
        elif mode is not None and mode not in ("Proxy", "VIP"):
            errors.append(_not_supported(f"{item_path}.ipMode", mode, ("Proxy", "VIP")))
        hostname = _str(item.get("hostname"))
        if hostname:
            errors.extend(
                _invalid(f"{item_path}.hostname", hostname, msg) for msg in is_dns1123_subdomain(hostname)
            )
            if _parse_ip(hostname) is not None:
                errors.append(
                    _invalid(f"{item_path}.hostname", hostname, "must be a DNS name, not an IP address")
                )
    return errors


def _validate_endpoint_address(address: Obj, path: str) -> Errors:
    ip = _str(address.get("ip"))
    errors = _is_valid_ip(f"{path}.ip", ip)
    hostname = _str(address.get("hostname"))
    if hostname:
        errors.extend(_invalid(f"{path}.hostname", hostname, msg) for msg in is_dns1123_label(hostname))
    node_name = address.get("nodeName")
    if node_name is not None:
        errors.extend(
            _invalid(f"{path}.nodeName", node_name, m) for m in name_is_dns_subdomain(_str(node_name), False)
        )
    return errors + _validate_non_special_ip(ip, f"{path}.ip")


def _validate_endpoint_port(port: Obj, *, require_name: bool, path: str) -> Errors:
    errors: Errors = []
    name = _str(port.get("name"))
    if require_name and not name:
        errors.append(_required(f"{path}.name"))
    elif name:
        errors.extend(_invalid(f"{path}.name", name, msg) for msg in is_dns1123_label(name))
    number = _int(port.get("port"))
    errors.extend(_invalid(f"{path}.port", number, msg) for msg in is_valid_port_num(number))
    protocol = _str(port.get("protocol"))
    if not protocol:
        errors.append(_required(f"{path}.protocol"))
    elif protocol not in _PROTOCOLS:
        errors.append(_not_supported(f"{path}.protocol", protocol, _PROTOCOLS))
    app_protocol = port.get("appProtocol")
    if app_protocol is not None:
        errors.extend(
            _invalid(f"{path}.appProtocol", app_protocol, m) for m in is_qualified_name(_str(app_protocol))
        )
    return errors


def _validate_endpoints(obj: Obj, old: Obj | None, rt: ResourceType) -> Errors:
    errors = validate_object_meta_update(obj.get("metadata"), old.get("metadata")) if old is not None else []
    errors.extend(validate_object_meta(obj.get("metadata"), namespaced=True, name_fn=name_is_dns_subdomain))
    for i, subset in enumerate(_maps(obj.get("subsets"))):
        path = f"subsets[{i}]"
        addresses, not_ready = _maps(subset.get("addresses")), _maps(subset.get("notReadyAddresses"))
        if not addresses and not not_ready:
            errors.append(_required(path, "must specify `addresses` or `notReadyAddresses`"))
        for j, address in enumerate(addresses):
            errors.extend(_validate_endpoint_address(address, f"{path}.addresses[{j}]"))
        for j, address in enumerate(not_ready):
            errors.extend(_validate_endpoint_address(address, f"{path}.notReadyAddresses[{j}]"))
        ports = _maps(subset.get("ports"))
        for j, port in enumerate(ports):
            errors.extend(
                _validate_endpoint_port(port, require_name=len(ports) > 1, path=f"{path}.ports[{j}]")
            )
    return errors


# --- core/v1: configuration and identity -------------------------------------------------------

MAX_SECRET_SIZE = 1024 * 1024
_BASE64_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")


def _decode_base64(value: str) -> tuple[bytes | None, str]:
    """Standard base64 as Go decodes []byte fields: the bytes, or Go's error message."""
    text = value.replace("\r", "").replace("\n", "")
    try:
        return base64.b64decode(text, validate=True), ""
    except (binascii.Error, ValueError):
        for i, ch in enumerate(text):
            if ch not in _BASE64_ALPHABET and ch != "=":
                return None, f"illegal base64 data at input byte {i}"
        position = text.find("=")
        offset = position if position >= 0 and len(text) % 4 == 0 else len(text) - len(text) % 4
        return None, f"illegal base64 data at input byte {max(offset, 0)}"


def _json_error(data: bytes) -> str:
    """A short json.Unmarshal-style error for a value that is not a JSON object."""
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        stripped = data.strip()
        if not stripped:
            return "unexpected end of JSON input"
        return f"invalid character {chr(stripped[0])!r} looking for beginning of value"
    if not isinstance(parsed, dict):
        return "json: cannot unmarshal into Go value of type map[string]interface {}"
    return ""


def _validate_config_map(obj: Obj, old: Obj | None, rt: ResourceType) -> Errors:
    errors: Errors = []
    if old is not None:
        errors.extend(validate_object_meta_update(obj.get("metadata"), old.get("metadata")))
        if old.get("immutable") is True:
            if obj.get("immutable") is not True:
                errors.append(_forbidden("immutable", "field is immutable when `immutable` is set"))
            for key in ("data", "binaryData"):
                if _map(obj.get(key)) != _map(old.get(key)):
                    errors.append(_forbidden(key, "field is immutable when `immutable` is set"))
    errors.extend(validate_object_meta(obj.get("metadata"), namespaced=True, name_fn=name_is_dns_subdomain))
    data, binary = _map(obj.get("data")), _map(obj.get("binaryData"))
    total = 0
    for key, value in data.items():
        errors.extend(_invalid(f"data[{key}]", key, msg) for msg in is_config_map_key(key))
        if key in binary:
            errors.append(_invalid(f"data[{key}]", key, "duplicate of key present in binaryData"))
        total += len(_str(value).encode())
    for key, value in binary.items():
        errors.extend(_invalid(f"binaryData[{key}]", key, msg) for msg in is_config_map_key(key))
        decoded, problem = _decode_base64(_str(value))
        if decoded is None:
            errors.append(_invalid(f"binaryData[{key}]", "<binary data redacted>", problem))
        else:
            total += len(decoded)
    if total > MAX_SECRET_SIZE:
        errors.append(_too_long("", MAX_SECRET_SIZE))
    return errors


_SECRET_REQUIRED_KEYS = {
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
}


def _validate_secret(obj: Obj, old: Obj | None, rt: ResourceType) -> Errors:
    errors: Errors = []
    if old is not None:
        errors.extend(validate_object_meta_update(obj.get("metadata"), old.get("metadata")))
        errors.extend(_immutable(_str(obj.get("type")), _str(old.get("type")), "type"))
        if old.get("immutable") is True:
            if obj.get("immutable") is not True:
                errors.append(_forbidden("immutable", "field is immutable when `immutable` is set"))
            if _map(obj.get("data")) != _map(old.get("data")):
                errors.append(_forbidden("data", "field is immutable when `immutable` is set"))
    metadata = _map(obj.get("metadata"))
    errors.extend(validate_object_meta(metadata, namespaced=True, name_fn=name_is_dns_subdomain))
    data: dict[str, bytes] = {}
    total = 0
    for key, value in _map(obj.get("data")).items():
        errors.extend(_invalid(f"data[{key}]", key, msg) for msg in is_config_map_key(key))
        decoded, problem = _decode_base64(_str(value))
        if decoded is None:
            errors.append(_invalid(f"data[{key}]", "<secret contents redacted>", problem))
            continue
        data[key] = decoded
        total += len(decoded)
    if total > MAX_SECRET_SIZE:
        errors.append(_too_long("data", MAX_SECRET_SIZE))
    kind = _str(obj.get("type"))
    if kind == "kubernetes.io/service-account-token":
        annotation = "kubernetes.io/service-account.name"
        if not _str(_map(metadata.get("annotations")).get(annotation)):
            errors.append(_required(f"metadata.annotations[{annotation}]"))
    elif kind in ("kubernetes.io/dockercfg", "kubernetes.io/dockerconfigjson"):
        key = ".dockercfg" if kind == "kubernetes.io/dockercfg" else ".dockerconfigjson"
        if key not in data:
            errors.append(_required(f"data[{key}]"))
        else:
            problem = _json_error(data[key])
            if problem:
                errors.append(_invalid(f"data[{key}]", "<secret contents redacted>", problem))
    elif kind == "kubernetes.io/basic-auth":
        if "username" not in data and "password" not in data:
            errors.append(_required("data[username]"))
            errors.append(_required("data[password]"))
    elif kind == "kubernetes.io/ssh-auth":
        if not data.get("ssh-privatekey"):
            errors.append(_required("data[ssh-privatekey]"))
    elif kind == "kubernetes.io/tls":
        errors.extend(_required(f"data[{key}]") for key in ("tls.crt", "tls.key") if key not in data)
    return errors


def _validate_service_account(obj: Obj, old: Obj | None, rt: ResourceType) -> Errors:
    errors = validate_object_meta_update(obj.get("metadata"), old.get("metadata")) if old is not None else []
    return errors + validate_object_meta(obj.get("metadata"), namespaced=True, name_fn=name_is_dns_subdomain)


def _validate_namespace(obj: Obj, old: Obj | None, rt: ResourceType) -> Errors:
    if old is not None:
        return validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
    errors = validate_object_meta(obj.get("metadata"), namespaced=False, name_fn=name_is_dns_label)
    for finalizer in _list(_map(obj.get("spec")).get("finalizers")):
        name = _str(finalizer)
        errors.extend(_invalid("spec.finalizers", name, msg) for msg in is_qualified_name(name))
        if "/" not in name and name not in _STANDARD_FINALIZERS:
            errors.append(
                _invalid(
                    "spec.finalizers",
                    name,
                    "name is neither a standard finalizer name nor is it fully qualified",
                )
            )
    return errors


def _validate_namespace_status(obj: Obj, old: Obj) -> Errors:
    errors = validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
    phase = _str(_map(obj.get("status")).get("phase"))
    if not _map(obj.get("metadata")).get("deletionTimestamp"):
        if phase != "Active":
            errors.append(
                _invalid("status.Phase", phase, "may only be 'Active' if `deletionTimestamp` is empty")
            )
    elif phase != "Terminating":
        errors.append(
            _invalid("status.Phase", phase, "may only be 'Terminating' if `deletionTimestamp` is not empty")
        )
    return errors


def _validate_taints(taints: Any, path: str) -> Errors:
    errors: Errors = []
    seen: dict[str, set[str]] = {}
    for i, taint in enumerate(_maps(taints)):
        item = f"{path}[{i}]"
        key, value, effect = _str(taint.get("key")), _str(taint.get("value")), _str(taint.get("effect"))
        errors.extend(_validate_label_name(key, f"{item}.key"))
        messages = is_valid_label_value(value)
        if messages:
            errors.append(_invalid(f"{item}.value", value, ";".join(messages)))
        if not effect:
            errors.append(_required(f"{item}.effect"))
        elif effect not in _TAINT_EFFECTS:
            errors.append(_not_supported(f"{item}.effect", effect, _TAINT_EFFECTS))
        if key in seen.get(effect, set()):
            errors.append(
                field_error(
                    "FieldValueDuplicate",
                    item,
                    "taints must be unique by key and effect pair",
                    value=_go_json(taint),
                )
            )
            continue
        seen.setdefault(effect, set()).add(key)
    return errors


def _validate_node_resources(status: Obj) -> Errors:
    errors: Errors = []
    for kind in ("capacity", "allocatable"):
        for name, raw in _map(status.get(kind)).items():
            _, quantity_errors = _validate_quantity_value(name, raw, f"status.{kind}.{name}")
            errors.extend(quantity_errors)
    return errors


def _validate_node(obj: Obj, old: Obj | None, rt: ResourceType) -> Errors:
    spec, status = _map(obj.get("spec")), _map(obj.get("status"))
    if old is not None:
        return _validate_node_update(obj, old)
    errors = validate_object_meta(obj.get("metadata"), namespaced=False, name_fn=name_is_dns_subdomain)
    if _list(spec.get("taints")):
        errors.extend(_validate_taints(spec.get("taints"), "metadata.taints"))
    errors.extend(_validate_node_resources(status))
    cidrs = [_str(c) for c in _list(spec.get("podCIDRs"))]
    for i, cidr in enumerate(cidrs):
        errors.extend(_is_valid_cidr(f"spec.podCIDRs[{i}]", cidr))
    if len(cidrs) > 1:
        versions = {network.version for network in map(_parse_cidr, cidrs) if network is not None}
        if len(versions) != 2 or len(cidrs) > 2:
            errors.append(
                _invalid(
                    "spec.podCIDRs",
                    go_string_list(cidrs),
                    "may specify no more than one CIDR for each IP family",
                )
            )
        seen: set[str] = set()
        for i, cidr in enumerate(cidrs):
            if cidr in seen:
                errors.append(_duplicate(f"spec.podCIDRs[{i}]", cidr))
            seen.add(cidr)
    return errors


def _validate_node_update(obj: Obj, old: Obj) -> Errors:
    spec, old_spec = _map(obj.get("spec")), _map(old.get("spec"))
    status = _map(obj.get("status"))
    errors = validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
    errors.extend(_validate_node_resources(status))
    seen: set[tuple[str, str]] = set()
    for i, address in enumerate(_maps(status.get("addresses"))):
        key = (_str(address.get("type")), _str(address.get("address")))
        if key in seen:
            errors.append(
                _duplicate(
                    f"status.addresses[{i}]",
                    _GoValue(f"core.NodeAddress{{Type:{_go_quote(key[0])}, Address:{_go_quote(key[1])}}}"),
                )
            )
        seen.add(key)
    old_cidrs = _list(old_spec.get("podCIDRs"))
    if old_cidrs and old_cidrs != _list(spec.get("podCIDRs")):
        message = 'node updates may not change podCIDR except from "" to valid'
        if len(old_cidrs) != len(_list(spec.get("podCIDRs"))):
            errors.append(_forbidden("spec.podCIDRs", message))
        else:
            errors.extend(
                _forbidden("spec.podCIDRs", message)
                for a, b in zip(old_cidrs, _list(spec.get("podCIDRs")), strict=True)
                if a != b
            )
    old_provider = _str(old_spec.get("providerID"))
    if old_provider and old_provider != _str(spec.get("providerID")):
        errors.append(
            _forbidden("spec.providerID", 'node updates may not change providerID except from "" to valid')
        )
    if _list(spec.get("taints")):
        errors.extend(_validate_taints(spec.get("taints"), "metadata.taints"))
    if _str(spec.get("externalID")) != _str(old_spec.get("externalID")):
        errors.append(_forbidden("spec.externalID", "may not be updated"))
    return errors


def _validate_binding(obj: Obj, old: Obj | None, rt: ResourceType) -> Errors:
    target = _map(obj.get("target"))
    errors: Errors = []
    kind = _str(target.get("kind"))
    if kind and kind != "Node":
        errors.append(_not_supported("target.kind", kind, ("Node", "<empty>")))
    if not _str(target.get("name")):
        errors.append(_required("target.name"))
    return errors


# --- events (core/v1 and events.k8s.io/v1) -----------------------------------------------------

# events.k8s.io/v1 field -> the core/v1 field upstream validates (and names in errors).
_EVENTS_V1_FIELDS = {
    "regarding": "involvedObject",
    "note": "message",
    "deprecatedFirstTimestamp": "firstTimestamp",
    "deprecatedLastTimestamp": "lastTimestamp",
    "deprecatedCount": "count",
    "deprecatedSource": "source",
}


def _as_core_event(obj: Obj, group: str) -> Obj:
    if group != "events.k8s.io":
        return obj
    return {_EVENTS_V1_FIELDS.get(key, key): value for key, value in obj.items()}


def _legacy_validate_event(event: Obj, *, reporting_field: str) -> Errors:
    errors: Errors = []
    namespace = _str(_map(event.get("metadata")).get("namespace"))
    involved_namespace = _str(_map(event.get("involvedObject")).get("namespace"))
    mismatch = _invalid("involvedObject.namespace", involved_namespace, "does not match event.namespace")
    if not event.get("eventTime"):
        if not involved_namespace:
            if namespace not in ("", "default"):
                errors.append(mismatch)
        elif namespace != involved_namespace:
            errors.append(mismatch)
    else:
        if not involved_namespace and namespace not in ("default", "kube-system"):
            errors.append(mismatch)
        controller = _str(event.get("reportingController") or event.get("reportingComponent"))
        if not controller:
            errors.append(_required(reporting_field))
        errors.extend(_invalid(reporting_field, controller, msg) for msg in is_qualified_name(controller))
        for key, limit, required in (
            ("reportingInstance", 128, True),
            ("action", 128, True),
            ("reason", 128, True),
            ("message", 1024, False),
        ):
            value = _str(event.get(key))
            if required and not value:
                errors.append(_required(key))
            if len(value) > limit:
                errors.append(_invalid(key, "", f"can have at most {limit} characters"))
    errors.extend(_invalid("namespace", namespace, msg) for msg in is_dns1123_subdomain(namespace))
    return errors


def _validate_event_series(event: Obj) -> Errors:
    series = event.get("series")
    if not isinstance(series, dict):
        return []
    errors: Errors = []
    if _int(series.get("count")) < 2:
        errors.append(_invalid("series.count", "", "should be at least 2"))
    if not series.get("lastObservedTime"):
        errors.append(_required("series.lastObservedTime"))
    return errors


def _validate_event(obj: Obj, old: Obj | None, rt: ResourceType) -> Errors:
    event = _as_core_event(obj, rt.group)
    meta = obj.get("metadata")
    if rt.group != "events.k8s.io":
        # core/v1 keeps the legacy rules; the generic ObjectMeta checks follow.
        errors = _legacy_validate_event(event, reporting_field="reportingComponent")
        generic = validate_object_meta(
            meta, namespaced=True, name_fn=name_is_path_segment, kube_finalizers=False
        )
        if old is not None:
            generic.extend(validate_object_meta_update(meta, old.get("metadata"), kube_finalizers=False))
            return generic + errors
        return errors if errors else generic
    errors = _legacy_validate_event(event, reporting_field="reportingController")
    if old is None:
        errors.extend(validate_object_meta(meta, namespaced=True, name_fn=name_is_dns_subdomain))
        errors.extend(_validate_event_series(event))
        if not event.get("eventTime"):
            errors.append(_required("eventTime"))
        kind = _str(event.get("type"))
        if kind not in ("Normal", "Warning"):
            errors.append(_invalid("type", "", f"has invalid value: {kind}"))
        for key in ("firstTimestamp", "lastTimestamp", "count"):
            if event.get(key):
                errors.append(_invalid(key, "", "needs to be unset"))
        source = _map(event.get("source"))
        if _str(source.get("component")) or _str(source.get("host")):
            errors.append(_invalid("source", "", "needs to be unset"))
        return errors
    old_event = _as_core_event(old, rt.group)
    errors.extend(validate_object_meta_update(meta, old.get("metadata")))
    if not _equal(event.get("series"), old_event.get("series")):
        errors.extend(_validate_event_series(event))
    immutable = (
        "involvedObject", "reason", "message", "source", "firstTimestamp", "lastTimestamp", "count", "reason",
        "type", "eventTime", "action", "related", "reportingController", "reportingInstance",
    )  # fmt: skip
    for key in immutable:  # upstream checks "reason" twice, so a changed reason is reported twice
        errors.extend(_immutable(event.get(key), old_event.get(key), key))
    return errors


# --- apps/v1 ----------------------------------------------------------------------------------


def _validate_int_or_percent(value: Any, path: str) -> Errors:
    if isinstance(value, str):
        return [_invalid(path, go_int_or_string(value), msg) for msg in is_valid_percent(value)]
    if _is_int(value):
        return _nonnegative(value, path)
    return [_invalid(path, _render(value), "must be an integer or percentage (e.g '5%')")]


def _int_or_percent_value(value: Any) -> int:
    if isinstance(value, str):
        return int(value[:-1]) if not is_valid_percent(value) else 0
    return _int(value)


def _not_more_than_100_percent(value: Any, path: str) -> Errors:
    if isinstance(value, str) and not is_valid_percent(value) and int(value[:-1]) > 100:
        return [_invalid(path, go_int_or_string(value), "must not be greater than 100%")]
    return []


def _validate_workload_selector(spec: Obj, kind: str, path: str = "spec") -> tuple[_Selector | None, Errors]:
    """Selector required, valid, non-empty; returns the parsed selector for template matching."""
    selector = spec.get("selector")
    errors: Errors = []
    if not isinstance(selector, dict):
        errors.append(_required(f"{path}.selector"))
    else:
        errors.extend(validate_label_selector(selector, f"{path}.selector"))
        if not _map(selector.get("matchLabels")) and not _list(selector.get("matchExpressions")):
            errors.append(
                _invalid(
                    f"{path}.selector", go_label_selector(selector), f"empty selector is invalid for {kind}"
                )
            )
    return _selector_from(selector), errors


def _selector_mismatch(selector: _Selector, template: Obj, path: str) -> Errors:
    labels = _map(_map(template.get("metadata")).get("labels"))
    if not selector.empty() and not selector.matches(labels):
        return [
            _invalid(
                f"{path}.metadata.labels",
                go_string_map(_map(template.get("metadata")).get("labels")),
                "`selector` does not match template `labels`",
            )
        ]
    return []


def _validate_template_for_replica_set(template: Obj, selector: _Selector, kind: str, path: str) -> Errors:
    """ValidatePodTemplateSpecForReplicaSet (Deployments and ReplicaSets)."""
    errors = _selector_mismatch(selector, template, path)
    errors.extend(_validate_pod_template_spec(template, path))
    spec = _map(template.get("spec"))
    restart_policy = _str(spec.get("restartPolicy"))
    if restart_policy != "Always":
        errors.append(_not_supported(f"{path}.spec.restartPolicy", restart_policy, ("Always",)))
    if spec.get("activeDeadlineSeconds") is not None:
        errors.append(
            _forbidden(
                f"{path}.spec.activeDeadlineSeconds", f"activeDeadlineSeconds in {kind} is not Supported"
            )
        )
    return errors


def _validate_deployment(obj: Obj, old: Obj | None, rt: ResourceType) -> Errors:
    spec = _map(obj.get("spec"))
    if old is None:
        errors = validate_object_meta(obj.get("metadata"), namespaced=True, name_fn=name_is_dns_subdomain)
    else:
        errors = validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
    errors.extend(_nonnegative(spec.get("replicas"), "spec.replicas"))
    selector, selector_errors = _validate_workload_selector(spec, "deployment")
    errors.extend(selector_errors)
    if selector is None:
        errors.append(
            _invalid("spec.selector", go_label_selector(spec.get("selector")), "invalid label selector")
        )
    else:
        errors.extend(
            _validate_template_for_replica_set(
                _map(spec.get("template")), selector, "ReplicaSet", "spec.template"
            )
        )
    strategy = _map(spec.get("strategy"))
    kind = _str(strategy.get("type"))
    rolling = strategy.get("rollingUpdate")
    if kind == "Recreate":
        if rolling is not None:
            errors.append(
                _forbidden(
                    "spec.strategy.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'"
                )
            )
    elif kind == "RollingUpdate":
        if not isinstance(rolling, dict):
            errors.append(
                _required("spec.strategy.rollingUpdate", "this should be defaulted and never be nil")
            )
        else:
            path = "spec.strategy.rollingUpdate"
            unavailable, surge = rolling.get("maxUnavailable"), rolling.get("maxSurge")
            errors.extend(_validate_int_or_percent(unavailable, f"{path}.maxUnavailable"))
            errors.extend(_validate_int_or_percent(surge, f"{path}.maxSurge"))
            if _int_or_percent_value(unavailable) == 0 and _int_or_percent_value(surge) == 0:
                errors.append(
                    _invalid(
                        f"{path}.maxUnavailable",
                        go_int_or_string(unavailable),
                        "may not be 0 when `maxSurge` is 0",
                    )
                )
            errors.extend(_not_more_than_100_percent(unavailable, f"{path}.maxUnavailable"))
    else:
        errors.append(_not_supported("spec.strategy", _go_json(strategy), ("Recreate", "RollingUpdate")))
    errors.extend(_nonnegative(spec.get("minReadySeconds"), "spec.minReadySeconds"))
    if spec.get("revisionHistoryLimit") is not None:
        errors.extend(_nonnegative(spec.get("revisionHistoryLimit"), "spec.revisionHistoryLimit"))
    deadline = spec.get("progressDeadlineSeconds")
    if deadline is not None:
        errors.extend(_nonnegative(deadline, "spec.progressDeadlineSeconds"))
        if _int(deadline) <= _int(spec.get("minReadySeconds")):
            errors.append(
                _invalid(
                    "spec.progressDeadlineSeconds", _int(deadline), "must be greater than minReadySeconds"
                )
            )
    if old is not None:
        errors.extend(
            _immutable(
                spec.get("selector"),
                _map(old.get("spec")).get("selector"),
                "spec.selector",
                render=go_label_selector,
            )
        )
    return errors


def _validate_replica_set(obj: Obj, old: Obj | None, rt: ResourceType) -> Errors:
    spec = _map(obj.get("spec"))
    if old is None:
        errors = validate_object_meta(obj.get("metadata"), namespaced=True, name_fn=name_is_dns_subdomain)
    else:
        errors = validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
    errors.extend(_nonnegative(spec.get("replicas"), "spec.replicas"))
    errors.extend(_nonnegative(spec.get("minReadySeconds"), "spec.minReadySeconds"))
    selector, selector_errors = _validate_workload_selector(
        spec, "deployment"
    )  # sic: upstream says "deployment"
    errors.extend(selector_errors)
    if selector is None:
        errors.append(
            _invalid("spec.selector", go_label_selector(spec.get("selector")), "invalid label selector")
        )
    else:
        errors.extend(
            _validate_template_for_replica_set(
                _map(spec.get("template")), selector, "ReplicaSet", "spec.template"
            )
        )
    if old is not None:
        errors.extend(
            _immutable(
                spec.get("selector"),
                _map(old.get("spec")).get("selector"),
                "spec.selector",
                render=go_label_selector,
            )
        )
    return errors


def _validate_daemon_set_spec(spec: Obj) -> Errors:
    errors = validate_label_selector(spec.get("selector"), "spec.selector")
    selector = _selector_from(spec.get("selector"))
    template = _map(spec.get("template"))
    if selector is not None and not selector.matches(_map(_map(template.get("metadata")).get("labels"))):
        errors.append(
            _invalid(
                "spec.template.metadata.labels",
                go_string_map(_map(template.get("metadata")).get("labels")),
                "`selector` does not match template `labels`",
            )
        )
    raw_selector = spec.get("selector")
    if (
        isinstance(raw_selector, dict)
        and not _map(raw_selector.get("matchLabels"))
        and not _list(raw_selector.get("matchExpressions"))
    ):
        errors.append(
            _invalid(
                "spec.selector", go_label_selector(raw_selector), "empty selector is invalid for daemonset"
            )
        )
    errors.extend(_validate_pod_template_spec(template, "spec.template"))
    pod_spec = _map(template.get("spec"))
    restart_policy = _str(pod_spec.get("restartPolicy"))
    if restart_policy != "Always":
        errors.append(_not_supported("spec.template.spec.restartPolicy", restart_policy, ("Always",)))
    if pod_spec.get("activeDeadlineSeconds") is not None:
        errors.append(
            _forbidden(
                "spec.template.spec.activeDeadlineSeconds",
                "activeDeadlineSeconds in DaemonSet is not Supported",
            )
        )
    errors.extend(_nonnegative(spec.get("minReadySeconds"), "spec.minReadySeconds"))
    strategy = _map(spec.get("updateStrategy"))
    kind = _str(strategy.get("type"))
    if kind == "RollingUpdate":
        rolling = strategy.get("rollingUpdate")
        path = "spec.updateStrategy.rollingUpdate"
        if not isinstance(rolling, dict):
            errors.append(_required(path))
        else:
            unavailable, surge = rolling.get("maxUnavailable"), rolling.get("maxSurge")
            errors.extend(_validate_int_or_percent(unavailable, f"{path}.maxUnavailable"))
            errors.extend(_validate_int_or_percent(surge, f"{path}.maxSurge"))
            errors.extend(_not_more_than_100_percent(unavailable, f"{path}.maxUnavailable"))
            errors.extend(_not_more_than_100_percent(surge, f"{path}.maxSurge"))
            has_unavailable = _int_or_percent_value(unavailable) != 0
            has_surge = _int_or_percent_value(surge) != 0
            if has_unavailable and has_surge:
                errors.append(
                    _invalid(
                        f"{path}.maxSurge",
                        go_int_or_string(surge),
                        "may not be set when maxUnavailable is non-zero",
                    )
                )
            elif not has_unavailable and not has_surge:
                errors.append(_required(f"{path}.maxUnavailable", "cannot be 0 when maxSurge is 0"))
    elif kind != "OnDelete":
        errors.append(
            _not_supported("spec.updateStrategy", _go_json(strategy), ("RollingUpdate", "OnDelete"))
        )
    if spec.get("revisionHistoryLimit") is not None:
        errors.extend(_nonnegative(spec.get("revisionHistoryLimit"), "spec.revisionHistoryLimit"))
    return errors


def _validate_daemon_set(obj: Obj, old: Obj | None, rt: ResourceType) -> Errors:
    spec = _map(obj.get("spec"))
    if old is None:
        errors = validate_object_meta(obj.get("metadata"), namespaced=True, name_fn=name_is_dns_subdomain)
        return errors + _validate_daemon_set_spec(spec)
    errors = validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
    errors.extend(_validate_daemon_set_spec(spec))
    return errors + _immutable(
        spec.get("selector"), _map(old.get("spec")).get("selector"), "spec.selector", render=go_label_selector
    )


_STATEFUL_SET_MUTABLE = (
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "revisionHistoryLimit",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
)


def _validate_stateful_set_spec(spec: Obj) -> Errors:
    errors: Errors = []
    policy = _str(spec.get("podManagementPolicy"))
    if not policy:
        errors.append(_required("spec.podManagementPolicy"))
    elif policy not in ("OrderedReady", "Parallel"):
        errors.append(_invalid("spec.podManagementPolicy", policy, "must be 'OrderedReady' or 'Parallel'"))
    strategy = _map(spec.get("updateStrategy"))
    kind = _str(strategy.get("type"))
    rolling = strategy.get("rollingUpdate")
    if not kind:
        errors.append(_required("spec.updateStrategy"))
    elif kind == "OnDelete":
        if rolling is not None:
            errors.append(
                _invalid(
                    "spec.updateStrategy.rollingUpdate",
                    _go_json(rolling),
                    "only allowed for updateStrategy 'RollingUpdate'",
                )
            )
    elif kind == "RollingUpdate":
        if isinstance(rolling, dict):
            path = "spec.updateStrategy.rollingUpdate"
            errors.extend(_nonnegative(rolling.get("partition"), f"{path}.partition"))
            unavailable = rolling.get("maxUnavailable")
            if unavailable is not None:
                errors.extend(_validate_int_or_percent(unavailable, f"{path}.maxUnavailable"))
                if _int_or_percent_value(unavailable) == 0:
                    errors.append(
                        _invalid(f"{path}.maxUnavailable", go_int_or_string(unavailable), "cannot be 0")
                    )
                errors.extend(_not_more_than_100_percent(unavailable, f"{path}.maxUnavailable"))
    else:
        errors.append(
            _invalid("spec.updateStrategy", _go_json(strategy), "must be 'RollingUpdate' or 'OnDelete'")
        )
    retention = spec.get("persistentVolumeClaimRetentionPolicy")
    if isinstance(retention, dict):
        for key in ("whenDeleted", "whenScaled"):
            value = _str(retention.get(key))
            if value not in ("Retain", "Delete"):
                errors.append(
                    _not_supported(
                        f"spec.persistentVolumeClaimRetentionPolicy.{key}", value, ("Retain", "Delete")
                    )
                )
    errors.extend(_nonnegative(spec.get("replicas"), "spec.replicas"))
    errors.extend(_nonnegative(spec.get("minReadySeconds"), "spec.minReadySeconds"))
    if isinstance(spec.get("ordinals"), dict):
        errors.extend(_nonnegative(spec["ordinals"].get("start"), "spec.ordinals.start"))
    selector_errors: Errors
    selector, selector_errors = _validate_workload_selector(spec, "statefulset")
    errors.extend(selector_errors)
    template = _map(spec.get("template"))
    if selector is None:
        errors.append(_invalid("spec.selector", go_label_selector(spec.get("selector")), ""))
    else:
        errors.extend(_selector_mismatch(selector, template, "spec.template"))
        metadata = _map(template.get("metadata"))
        errors.extend(_validate_labels(metadata.get("labels"), "spec.template.labels"))
        errors.extend(_validate_annotations(metadata.get("annotations"), "spec.template.annotations"))
        errors.extend(
            _validate_pod_annotations(
                metadata.get("annotations"), _map(template.get("spec")), "spec.template.annotations"
            )
        )
    pod_spec = _map(template.get("spec"))
    restart_policy = _str(pod_spec.get("restartPolicy"))
    if restart_policy != "Always":
        errors.append(_not_supported("spec.template.spec.restartPolicy", restart_policy, ("Always",)))
    if pod_spec.get("activeDeadlineSeconds") is not None:
        errors.append(
            _forbidden(
                "spec.template.spec.activeDeadlineSeconds",
                "activeDeadlineSeconds in StatefulSet is not Supported",
            )
        )
    return errors


def _validate_stateful_set(obj: Obj, old: Obj | None, rt: ResourceType) -> Errors:
    spec = _map(obj.get("spec"))
    if old is None:
        errors = validate_object_meta(obj.get("metadata"), namespaced=True, name_fn=name_is_dns_label)
        return errors + _validate_stateful_set_spec(spec)
    errors = validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
    errors.extend(_validate_stateful_set_spec(spec))
    old_spec = _map(old.get("spec"))
    fixed_new = {k: v for k, v in spec.items() if k not in _STATEFUL_SET_MUTABLE}
    fixed_old = {k: v for k, v in old_spec.items() if k not in _STATEFUL_SET_MUTABLE}
    if not _equal(fixed_new, fixed_old):
        allowed = ", ".join(f"'{name}'" for name in _STATEFUL_SET_MUTABLE[:-1])
        errors.append(
            _forbidden(
                "spec",
                f"updates to statefulset spec for fields other than {allowed} and '{_STATEFUL_SET_MUTABLE[-1]}' are forbidden",
            )
        )
    return errors


def _validate_controller_revision(obj: Obj, old: Obj | None, rt: ResourceType) -> Errors:
    errors = validate_object_meta_update(obj.get("metadata"), old.get("metadata")) if old is not None else []
    errors.extend(validate_object_meta(obj.get("metadata"), namespaced=True, name_fn=name_is_dns_subdomain))
    if obj.get("data") is None:
        errors.append(_required("data", "data is mandatory"))
    errors.extend(_nonnegative(obj.get("revision"), "revision"))
    if old is not None:
        errors.extend(_immutable(obj.get("data"), old.get("data"), "data"))
    return errors


def _validate_replica_counts(status: Obj, pairs: Iterable[tuple[str, str, str]]) -> Errors:
    errors: Errors = []
    for key, bound, message in pairs:
        if _int(status.get(key)) > _int(status.get(bound)):
            errors.append(_invalid(f"status.{key}", _int(status.get(key)), message))
    return errors


def _validate_workload_status(rt: ResourceType, obj: Obj, old: Obj) -> Errors:
    """The apps/v1 *StatusUpdate validators (and core/v1 ReplicationController's, which checks
    the same counters as a ReplicaSet's): counters are non-negative and consistent."""
    status, old_status = _map(obj.get("status")), _map(old.get("status"))
    meta_errors = validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
    fields = {
        "Deployment": ("observedGeneration", "replicas", "updatedReplicas", "readyReplicas", "availableReplicas", "unavailableReplicas", "collisionCount"),
        "ReplicaSet": ("replicas", "fullyLabeledReplicas", "readyReplicas", "availableReplicas", "observedGeneration"),
        "ReplicationController": ("replicas", "fullyLabeledReplicas", "readyReplicas", "availableReplicas", "observedGeneration"),
        "StatefulSet": ("replicas", "readyReplicas", "currentReplicas", "updatedReplicas", "availableReplicas", "observedGeneration", "collisionCount"),
        "DaemonSet": ("currentNumberScheduled", "numberMisscheduled", "desiredNumberScheduled", "numberReady", "observedGeneration", "updatedNumberScheduled", "numberAvailable", "numberUnavailable", "collisionCount"),
    }[rt.kind]  # fmt: skip
    errors: Errors = []
    for key in fields:
        errors.extend(_nonnegative(status.get(key), f"status.{key}"))
    over = "cannot be greater than status.replicas"
    if rt.kind == "Deployment":
        errors.extend(
            _validate_replica_counts(
                status,
                (
                    ("updatedReplicas", "replicas", over),
                    ("readyReplicas", "replicas", over),
                    ("availableReplicas", "replicas", over),
                    ("availableReplicas", "readyReplicas", "cannot be greater than readyReplicas"),
                ),
            )
        )
    elif rt.kind in ("ReplicaSet", "ReplicationController"):
        errors.extend(
            _validate_replica_counts(
                status,
                (
                    ("fullyLabeledReplicas", "replicas", over),
                    ("readyReplicas", "replicas", over),
                    ("availableReplicas", "replicas", over),
                    ("availableReplicas", "readyReplicas", "cannot be greater than readyReplicas"),
                ),
            )
        )
    elif rt.kind == "StatefulSet":
        errors.extend(
            _validate_replica_counts(
                status,
                (
                    ("readyReplicas", "replicas", over),
                    ("currentReplicas", "replicas", over),
                    ("updatedReplicas", "replicas", over),
                    ("availableReplicas", "replicas", over),
                    ("availableReplicas", "readyReplicas", "cannot be greater than status.readyReplicas"),
                ),
            )
        )
    if rt.kind == "StatefulSet":
        errors.extend(meta_errors)
    else:
        errors = meta_errors + errors
    old_collisions, new_collisions = old_status.get("collisionCount"), status.get("collisionCount")
    if (
        rt.kind not in ("ReplicaSet", "ReplicationController")
        and old_collisions is not None
        and (new_collisions is None or _int(new_collisions) < _int(old_collisions))
    ):
        errors.append(_invalid("status.collisionCount", _int(new_collisions), "cannot be decremented"))
    return errors


# --- core/v1 ReplicationController --------------------------------------------------------------
# pkg/apis/core/validation: ValidateReplicationController(Update/StatusUpdate). The selector is a
# plain label map: only required to be non-empty (its keys and values are checked through the
# template labels it must match), and unlike apps/v1 it may change on update.

GCE_PD_READ_ONLY = (
    "must be true for replicated pods > 1; GCE PD can only be mounted on multiple machines if it is read-only"
)


def _selector_from_set(labels: Obj) -> _Selector:
    """labels.Set(m).AsSelector(): one equality requirement per key (empty map: empty selector)."""
    return _Selector(tuple((key, "In", frozenset({_str(value)})) for key, value in sorted(labels.items())))


def _validate_read_only_persistent_disks(volumes: Any, path: str) -> Errors:
    """ValidateReadOnlyPersistentDisks: a GCE PD shared by several replicas must be read-only."""
    errors: Errors = []
    for i, volume in enumerate(_maps(volumes)):
        disk = volume.get("gcePersistentDisk")
        if isinstance(disk, dict) and disk.get("readOnly") is not True:
            errors.append(_invalid(f"{path}[{i}].gcePersistentDisk.readOnly", False, GCE_PD_READ_ONLY))
    return errors


def _validate_template_for_replication_controller(template: Any, *, selector: Obj, replicas: int) -> Errors:
    """ValidatePodTemplateSpecForRC."""
    path = "spec.template"
    if not isinstance(template, dict):
        return [_required(path)]
    errors = _selector_mismatch(_selector_from_set(selector), template, path)
    errors.extend(_validate_pod_template_spec(template, path))
    spec = _map(template.get("spec"))
    if replicas > 1:
        errors.extend(_validate_read_only_persistent_disks(spec.get("volumes"), f"{path}.spec.volumes"))
    restart_policy = _str(spec.get("restartPolicy"))
    if restart_policy != "Always":
        errors.append(_not_supported(f"{path}.spec.restartPolicy", restart_policy, ("Always",)))
    deadline = spec.get("activeDeadlineSeconds")
    if deadline is not None:
        errors.append(_invalid(f"{path}.spec.activeDeadlineSeconds", deadline, "must not be specified"))
    return errors


def _validate_replication_controller(obj: Obj, old: Obj | None, rt: ResourceType) -> Errors:
    spec = _map(obj.get("spec"))
    if old is None:
        errors = validate_object_meta(obj.get("metadata"), namespaced=True, name_fn=name_is_dns_subdomain)
    else:
        errors = validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
    errors.extend(_nonnegative(spec.get("minReadySeconds"), "spec.minReadySeconds"))
    selector = _map(spec.get("selector"))
    if not selector:
        errors.append(_required("spec.selector"))
    errors.extend(_nonnegative(spec.get("replicas"), "spec.replicas"))
    errors.extend(
        _validate_template_for_replication_controller(
            spec.get("template"), selector=selector, replicas=_int(spec.get("replicas"))
        )
    )
    return errors


# --- batch/v1 ---------------------------------------------------------------------------------


def cron_schedule_error(schedule: str) -> str:
    """Why robfig/cron's ParseStandard rejects ``schedule`` ("" when it parses)."""
    try:
        cron.parse(schedule)
    except cron.CronError as exc:
        return str(exc)
    return ""


def _validate_job_spec(spec: Obj, path: str) -> Errors:
    """validateJobSpec: the parts shared by Jobs and CronJob job templates."""
    errors: Errors = []
    for key in (
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
        "ttlSecondsAfterFinished",
        "backoffLimitPerIndex",
    ):
        if spec.get(key) is not None:
            errors.extend(_nonnegative(spec.get(key), f"{path}.{key}"))
    if spec.get("maxFailedIndexes") is not None:
        errors.extend(_nonnegative(spec.get("maxFailedIndexes"), f"{path}.maxFailedIndexes"))
        if spec.get("backoffLimitPerIndex") is None:
            errors.append(_required(f"{path}.backoffLimitPerIndex", "when maxFailedIndexes is specified"))
    managed_by = spec.get("managedBy")
    if managed_by is not None:
        errors.extend(_domain_prefixed_path(_str(managed_by), f"{path}.managedBy"))
        if len(_str(managed_by)) > 63:
            errors.append(_too_long(f"{path}.managedBy", 63))
    mode = spec.get("completionMode")
    indexed = mode == "Indexed"
    if mode is not None:
        if mode not in ("NonIndexed", "Indexed"):
            errors.append(_not_supported(f"{path}.completionMode", mode, ("NonIndexed", "Indexed")))
        if indexed:
            if spec.get("completions") is None:
                errors.append(_required(f"{path}.completions", "when completion mode is Indexed"))
            if _int(spec.get("parallelism")) > 100000:
                errors.append(
                    _invalid(
                        f"{path}.parallelism",
                        _int(spec.get("parallelism")),
                        "must be less than or equal to 100000 when completion mode is Indexed",
                    )
                )
    if not indexed:
        for key in ("backoffLimitPerIndex", "maxFailedIndexes"):
            if spec.get(key) is not None:
                errors.append(
                    _invalid(f"{path}.{key}", _int(spec.get(key)), "requires indexed completion mode")
                )
    if spec.get("successPolicy") is not None and not indexed:
        errors.append(
            _invalid(
                f"{path}.successPolicy", _go_json(spec["successPolicy"]), "requires indexed completion mode"
            )
        )
    policy = spec.get("podFailurePolicy")
    if isinstance(policy, dict):
        rules = _maps(policy.get("rules"))
        if len(rules) > 20:
            errors.append(_too_many(f"{path}.podFailurePolicy.rules", len(rules), 20))
        actions = ("Count", "FailIndex", "FailJob", "Ignore")
        for i, rule in enumerate(rules):
            action = _str(rule.get("action"))
            if action not in actions:
                errors.append(_not_supported(f"{path}.podFailurePolicy.rules[{i}].action", action, actions))
    replacement = spec.get("podReplacementPolicy")
    if replacement is not None:
        if policy is not None:
            if replacement != "Failed":
                errors.append(_not_supported(f"{path}.podReplacementPolicy", replacement, ("Failed",)))
        elif replacement not in ("Failed", "TerminatingOrFailed"):
            errors.append(
                _not_supported(f"{path}.podReplacementPolicy", replacement, ("Failed", "TerminatingOrFailed"))
            )
    errors.extend(_validate_pod_template_spec(spec.get("template"), f"{path}.template"))
    restart_policy = _str(_map(_map(spec.get("template")).get("spec")).get("restartPolicy"))
    restart_path = f"{path}.template.spec.restartPolicy"
    if restart_policy in ("Always", ""):
        errors.append(_required(restart_path, 'valid values: "OnFailure", "Never"'))
    elif restart_policy not in ("OnFailure", "Never"):
        errors.append(_not_supported(restart_path, restart_policy, ("OnFailure", "Never")))
    elif spec.get("podFailurePolicy") is not None and restart_policy != "Never":
        errors.append(
            _invalid(
                restart_path, restart_policy, 'only "Never" is supported when podFailurePolicy is specified'
            )
        )
    return errors


def _domain_prefixed_path(value: str, path: str) -> Errors:
    if not value:
        return [_required(path)]
    host, slash, rest = value.partition("/")
    if not slash or not host or not rest:
        return [_invalid(path, value, 'must be a domain-prefixed path (such as "acme.io/foo")')]
    errors = [_invalid(path, host, msg) for msg in is_dns1123_subdomain(host)]
    if not _HTTP_PATH_RE.match(rest):
        return [*errors, _invalid(path, rest, regex_error("Invalid path", _HTTP_PATH_RE.pattern[1:-1]))]
    return errors


def _expected_job_labels(job: Obj, *, prefixed: bool) -> Errors:
    """validateGeneratedSelector: the generated labels are on the template and selected."""
    spec, metadata = _map(job.get("spec")), _map(job.get("metadata"))
    if spec.get("manualSelector") is True or not isinstance(spec.get("selector"), dict):
        return []
    errors: Errors = []
    uid, name = _str(metadata.get("uid")), _str(metadata.get("name"))
    if not uid:
        errors.append(_required("metadata.uid"))
    labels = _map(_map(_map(spec.get("template")).get("metadata")).get("labels"))
    expected = {"controller-uid": uid, "job-name": name}
    if prefixed:
        expected.update({"batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": name})
    for key, value in expected.items():
        path = f"spec.template.metadata.labels[{key}]"
        if key not in labels:
            errors.append(_required(path, f"must be '{value}'"))
        elif labels[key] != value:
            errors.append(_invalid(path, go_string_map(labels), f"must be '{value}'"))
    selector = _selector_from(spec.get("selector"))
    if selector is not None and not selector.matches(expected):
        errors.append(
            _invalid(
                "spec.selector", go_label_selector(spec.get("selector")), "`selector` not auto-generated"
            )
        )
    return errors


def _validate_full_job_spec(spec: Obj) -> Errors:
    """ValidateJobSpec: the shared rules plus a required selector that matches the template."""
    errors = _validate_job_spec(spec, "spec")
    selector = spec.get("selector")
    if not isinstance(selector, dict):
        errors.append(_required("spec.selector"))
    else:
        errors.extend(validate_label_selector(selector, "spec.selector"))
    parsed = _selector_from(selector)
    template_meta = _map(_map(spec.get("template")).get("metadata"))
    if parsed is not None and not parsed.matches(_map(template_meta.get("labels"))):
        errors.append(
            _invalid(
                "spec.template.metadata.labels",
                go_string_map(template_meta.get("labels")),
                "`selector` does not match template `labels`",
            )
        )
    return errors


def _validate_job(obj: Obj, old: Obj | None, rt: ResourceType) -> Errors:
    spec = _map(obj.get("spec"))
    prefixed = True
    if old is not None:
        old_labels = _map(_map(_map(_map(old.get("spec")).get("template")).get("metadata")).get("labels"))
        prefixed = (
            "batch.kubernetes.io/job-name" in old_labels
            and "batch.kubernetes.io/controller-uid" in old_labels
        )
    errors = validate_object_meta(obj.get("metadata"), namespaced=True, name_fn=name_is_dns_subdomain)
    errors.extend(_expected_job_labels(obj, prefixed=prefixed))
    errors.extend(_validate_full_job_spec(spec))
    name = _str(_map(obj.get("metadata")).get("name"))
    completions = spec.get("completions")
    if spec.get("completionMode") == "Indexed" and _int(completions) > 0:
        hostname = f"{name}-{_int(completions) - 1}"
        if is_dns1123_label(hostname):
            errors.append(
                _invalid(
                    "metadata.name", name, f"will not able to create pod with invalid DNS label: {hostname}"
                )
            )
    if old is None:
        return errors
    # ValidateJobUpdate runs after ValidateJob and validates the spec a second time.
    old_spec = _map(old.get("spec"))
    errors.extend(validate_object_meta_update(obj.get("metadata"), old.get("metadata")))
    errors.extend(_validate_full_job_spec(spec))
    if spec.get("completionMode") == "Indexed" and completions != old_spec.get("completions"):
        if completions is not None and completions != spec.get("parallelism"):
            errors.append(
                _invalid(
                    "spec.completions",
                    _int(completions),
                    "can only be modified in tandem with spec.parallelism",
                )
            )
    else:
        errors.extend(_immutable(completions, old_spec.get("completions"), "spec.completions"))
    errors.extend(
        _immutable(spec.get("selector"), old_spec.get("selector"), "spec.selector", render=go_label_selector)
    )
    errors.extend(_immutable(spec.get("template"), _job_template_baseline(old, spec), "spec.template"))
    for key in ("completionMode", "podFailurePolicy", "backoffLimitPerIndex", "managedBy", "successPolicy"):
        errors.extend(_immutable(spec.get(key), old_spec.get(key), f"spec.{key}"))
    return errors


def _job_template_baseline(old: Obj, spec: Obj) -> Obj:
    """The old template the new one must equal: a suspended Job that never started may
    change its scheduling directives, labels and annotations."""
    old_spec = _map(old.get("spec"))
    baseline = orjson.loads(orjson.dumps(_map(old_spec.get("template"))))
    if old_spec.get("suspend") is not True or _map(old.get("status")).get("startTime"):
        return baseline
    template = _map(spec.get("template"))
    new_pod_spec, old_pod_spec = _map(template.get("spec")), _map(baseline.get("spec"))
    for key in ("nodeSelector", "tolerations", "schedulingGates"):
        old_pod_spec.pop(key, None)
        if key in new_pod_spec:
            old_pod_spec[key] = new_pod_spec[key]
    affinity = dict(_map(old_pod_spec.get("affinity")))
    affinity.pop("nodeAffinity", None)
    if _map(new_pod_spec.get("affinity")).get("nodeAffinity") is not None:
        affinity["nodeAffinity"] = new_pod_spec["affinity"]["nodeAffinity"]
    old_pod_spec["affinity"] = affinity
    baseline["spec"] = old_pod_spec
    old_meta, new_meta = _map(baseline.get("metadata")), _map(template.get("metadata"))
    for key in ("labels", "annotations"):
        old_meta.pop(key, None)
        if key in new_meta:
            old_meta[key] = new_meta[key]
    baseline["metadata"] = old_meta
    return baseline


def _validate_job_status(obj: Obj, old: Obj) -> Errors:
    errors = validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
    status = _map(obj.get("status"))
    for key in ("active", "succeeded", "failed", "terminating", "ready"):
        if status.get(key) is not None:
            errors.extend(_nonnegative(status.get(key), f"status.{key}"))
    return errors


def _validate_cron_job(obj: Obj, old: Obj | None, rt: ResourceType) -> Errors:
    spec = _map(obj.get("spec"))
    old_spec = _map(old.get("spec")) if old is not None else None
    if old is None:
        errors = validate_object_meta(obj.get("metadata"), namespaced=True, name_fn=name_is_dns_subdomain)
    else:
        errors = validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
    schedule = _str(spec.get("schedule"))
    if not schedule:
        errors.append(_required("spec.schedule"))
    else:
        problem = cron_schedule_error(schedule)
        if problem:
            errors.append(_invalid("spec.schedule", schedule, problem))
        tz_allowed = old_spec is not None and "TZ" in _str(old_spec.get("schedule"))
        if tz_allowed and "TZ" in schedule and spec.get("timeZone") is not None:
            errors.append(
                _invalid(
                    "spec.schedule", schedule, "cannot use both timeZone field and TZ or CRON_TZ in schedule"
                )
            )
        elif not tz_allowed and "TZ" in schedule:
            errors.append(
                _invalid(
                    "spec.schedule",
                    schedule,
                    "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
                )
            )
    if spec.get("startingDeadlineSeconds") is not None:
        errors.extend(_nonnegative(spec.get("startingDeadlineSeconds"), "spec.startingDeadlineSeconds"))
    time_zone = spec.get("timeZone")
    if time_zone is not None and (old_spec is None or old_spec.get("timeZone") != time_zone):
        errors.extend(_validate_time_zone(_str(time_zone)))
    policy = _str(spec.get("concurrencyPolicy"))
    if not policy:
        errors.append(_required("spec.concurrencyPolicy"))
    elif policy not in ("Allow", "Forbid", "Replace"):
        errors.append(_not_supported("spec.concurrencyPolicy", policy, ("Allow", "Forbid", "Replace")))
    job_spec = _map(_map(spec.get("jobTemplate")).get("spec"))
    errors.extend(_validate_job_spec(job_spec, "spec.jobTemplate.spec"))
    if job_spec.get("selector") is not None:
        errors.append(
            _invalid(
                "spec.jobTemplate.spec.selector",
                go_label_selector(job_spec["selector"]),
                "`selector` will be auto-generated",
            )
        )
    if job_spec.get("manualSelector") is True:
        errors.append(_not_supported("spec.jobTemplate.spec.manualSelector", True, ("nil", "false")))
    for key in ("successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
        if spec.get(key) is not None:
            errors.extend(_nonnegative(spec.get(key), f"spec.{key}"))
    name = _str(_map(obj.get("metadata")).get("name"))
    if old is None and len(name) > 52:
        errors.append(_invalid("metadata.name", name, "must be no more than 52 characters"))
    return errors


def _validate_time_zone(time_zone: str) -> Errors:
    path = "spec.timeZone"
    if not time_zone:
        return [_invalid(path, "", "timeZone must be nil or non-empty string")]
    for part in time_zone.split("/"):
        if part in (".", "..") or part.startswith("-") or not re.fullmatch(r"[A-Za-z.\-_0-9+]{1,14}", part):
            return [_invalid(path, time_zone, f"unknown time zone {time_zone}")]
    if time_zone.lower() == "local":
        return [
            _invalid(
                path,
                time_zone,
                "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
            )
        ]
    try:
        zoneinfo.ZoneInfo(time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return [_invalid(path, time_zone, f"unknown time zone {time_zone}")]
    return []


# --- networking.k8s.io/v1 ------------------------------------------------------------------------

_PATH_TYPES = ("Exact", "ImplementationSpecific", "Prefix")


def _validate_ingress_backend(backend: Obj, path: str) -> Errors:
    service, resource = backend.get("service"), backend.get("resource")
    if isinstance(service, dict) and isinstance(resource, dict):
        return [_invalid(path, "", "cannot set both resource and service backends")]
    if isinstance(resource, dict):
        return _validate_typed_local_reference(resource, f"{path}.resource")
    if not isinstance(service, dict):
        return [_invalid(path, "", "resource or service backend is required")]
    errors: Errors = []
    name = _str(service.get("name"))
    if not name:
        errors.append(_required(f"{path}.service.name"))
    else:
        errors.extend(
            _invalid(f"{path}.service.name", name, msg) for msg in name_is_dns1035_label(name, False)
        )
    port = _map(service.get("port"))
    port_name, number = _str(port.get("name")), _int(port.get("number"))
    if port_name and number:
        errors.append(_invalid(path, "", "cannot set both port name & port number"))
    elif port_name:
        errors.extend(
            _invalid(f"{path}.service.port.name", port_name, msg) for msg in is_valid_port_name(port_name)
        )
    elif number:
        errors.extend(
            _invalid(f"{path}.service.port.number", number, msg) for msg in is_valid_port_num(number)
        )
    else:
        errors.append(_required(path, "port name or number is required"))
    return errors


def _validate_typed_local_reference(reference: Obj, path: str) -> Errors:
    errors: Errors = []
    api_group = reference.get("apiGroup")
    if api_group is not None:
        errors.extend(
            _invalid(f"{path}.apiGroup", api_group, msg) for msg in is_dns1123_subdomain(_str(api_group))
        )
    for key in ("kind", "name"):
        value = _str(reference.get(key))
        if not value:
            errors.append(_required(f"{path}.{key}", f"{key} is required"))
        else:
            errors.extend(_invalid(f"{path}.{key}", value, msg) for msg in is_valid_path_segment_name(value))
    return errors


def _validate_ingress_spec(spec: Obj, *, allow_invalid_secret_name: bool) -> Errors:
    errors: Errors = []
    rules = _maps(spec.get("rules"))
    default_backend = spec.get("defaultBackend")
    if not rules and not isinstance(default_backend, dict):
        errors.append(
            _invalid(
                "spec", _go_json(spec.get("rules")), "either `defaultBackend` or `rules` must be specified"
            )
        )
    if isinstance(default_backend, dict):
        errors.extend(_validate_ingress_backend(default_backend, "spec.defaultBackend"))
    for i, rule in enumerate(rules):
        item = f"spec.rules[{i}]"
        host = _str(rule.get("host"))
        if host:
            if _parse_ip(host) is not None:
                errors.append(_invalid(f"{item}.host", host, "must be a DNS name, not an IP address"))
            if "*" in host:
                errors.extend(
                    _invalid(f"{item}.host", host, msg) for msg in is_wildcard_dns1123_subdomain(host)
                )
            else:
                errors.extend(_invalid(f"{item}.host", host, msg) for msg in is_dns1123_subdomain(host))
        http = rule.get("http")
        if not isinstance(http, dict):
            continue
        paths = _maps(http.get("paths"))
        if not paths:
            errors.append(_required(f"{item}.http.paths"))
        for j, http_path in enumerate(paths):
            errors.extend(_validate_http_ingress_path(http_path, f"{item}.http.paths[{j}]"))
    for i, tls in enumerate(_maps(spec.get("tls"))):
        for j, host in enumerate(_list(tls.get("hosts"))):
            host_path = f"spec.tls[{i}].hosts[{j}]"
            check = is_wildcard_dns1123_subdomain if "*" in _str(host) else is_dns1123_subdomain
            errors.extend(_invalid(host_path, host, msg) for msg in check(_str(host)))
        secret = _str(tls.get("secretName"))
        if secret and not allow_invalid_secret_name:
            errors.extend(
                _invalid(f"spec.tls[{i}].secretName", secret, msg)
                for msg in name_is_dns_subdomain(secret, False)
            )
    class_name = spec.get("ingressClassName")
    if class_name is not None:
        errors.extend(
            _invalid("spec.ingressClassName", class_name, m)
            for m in name_is_dns_subdomain(_str(class_name), False)
        )
    return errors


def _validate_http_ingress_path(http_path: Obj, path: str) -> Errors:
    path_type = http_path.get("pathType")
    if path_type is None:
        return [_required(f"{path}.pathType", "pathType must be specified")]
    errors: Errors = []
    value = _str(http_path.get("path"))
    if path_type in ("Exact", "Prefix"):
        if not value.startswith("/"):
            errors.append(_invalid(f"{path}.path", value, "must be an absolute path"))
        if value:
            for sequence in ("//", "/./", "/../", "%2f", "%2F"):
                if sequence in value:
                    errors.append(_invalid(f"{path}.path", value, f"must not contain '{sequence}'"))
            for suffix in ("/..", "/."):
                if value.endswith(suffix):
                    errors.append(_invalid(f"{path}.path", value, f"cannot end with '{suffix}'"))
    elif path_type == "ImplementationSpecific":
        if value and not value.startswith("/"):
            errors.append(_invalid(f"{path}.path", value, "must be an absolute path"))
    else:
        errors.append(_not_supported(f"{path}.pathType", path_type, _PATH_TYPES))
    return errors + _validate_ingress_backend(_map(http_path.get("backend")), f"{path}.backend")


def _validate_ingress(obj: Obj, old: Obj | None, rt: ResourceType) -> Errors:
    spec = _map(obj.get("spec"))
    if old is None:
        errors = validate_object_meta(obj.get("metadata"), namespaced=True, name_fn=name_is_dns_subdomain)
        errors.extend(_validate_ingress_spec(spec, allow_invalid_secret_name=False))
        annotations = _map(_map(obj.get("metadata")).get("annotations"))
        if "kubernetes.io/ingress.class" in annotations and spec.get("ingressClassName") is not None:
            errors.append(
                _invalid(
                    "annotations.kubernetes.io/ingress.class",
                    annotations["kubernetes.io/ingress.class"],
                    "can not be set when the class field is also set",
                )
            )
        return errors
    old_secrets = [_str(t.get("secretName")) for t in _maps(_map(old.get("spec")).get("tls"))]
    allow_invalid = any(name and name_is_dns_subdomain(name, False) for name in old_secrets)
    errors = validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
    errors.extend(validate_object_meta(obj.get("metadata"), namespaced=True, name_fn=name_is_dns_subdomain))
    return errors + _validate_ingress_spec(spec, allow_invalid_secret_name=allow_invalid)


def _validate_ingress_class(obj: Obj, old: Obj | None, rt: ResourceType) -> Errors:
    errors: Errors = []
    spec = _map(obj.get("spec"))
    if old is not None:
        errors.extend(validate_object_meta_update(obj.get("metadata"), old.get("metadata")))
        errors.extend(
            _immutable(
                _str(spec.get("controller")), _str(_map(old.get("spec")).get("controller")), "spec.controller"
            )
        )
    errors.extend(validate_object_meta(obj.get("metadata"), namespaced=False, name_fn=name_is_dns_subdomain))
    controller = _str(spec.get("controller"))
    if len(controller) > 250:
        errors.append(_too_long("spec.controller", 250))
    errors.extend(_domain_prefixed_path(controller, "spec.controller"))
    parameters = spec.get("parameters")
    if isinstance(parameters, dict):
        path = "spec.parameters"
        errors.extend(_validate_typed_local_reference(parameters, path))
        scope = parameters.get("scope")
        namespace = parameters.get("namespace")
        if scope is None:
            errors.append(_required(f"{path}.scope"))
        elif scope not in ("Cluster", "Namespace"):
            errors.append(_not_supported(f"{path}.scope", scope, ("Cluster", "Namespace")))
        elif scope == "Namespace":
            if namespace is None:
                errors.append(_required(f"{path}.namespace", "`parameters.scope` is set to 'Namespace'"))
            else:
                errors.extend(
                    _invalid(f"{path}.namespace", namespace, m)
                    for m in name_is_dns_label(_str(namespace), False)
                )
        elif namespace is not None:
            errors.append(_forbidden(f"{path}.namespace", "`parameters.scope` is set to 'Cluster'"))
    return errors


def _validate_network_policy_port(port: Obj, path: str) -> Errors:
    errors: Errors = []
    protocol = port.get("protocol")
    if protocol is not None and protocol not in ("TCP", "UDP", "SCTP"):
        errors.append(_not_supported(f"{path}.protocol", protocol, ("TCP", "UDP", "SCTP")))
    number, end_port = port.get("port"), port.get("endPort")
    if number is None:
        if end_port is not None:
            errors.append(
                _invalid(
                    f"{path}.endPort", _int(end_port), "may not be specified when `port` is not specified"
                )
            )
    elif _is_int(number):
        errors.extend(_invalid(f"{path}.port", number, msg) for msg in is_valid_port_num(number))
        if end_port is not None:
            if _int(end_port) < number:
                errors.append(_invalid(f"{path}.endPort", number, "must be greater than or equal to `port`"))
            errors.extend(
                _invalid(f"{path}.endPort", _int(end_port), msg) for msg in is_valid_port_num(_int(end_port))
            )
    else:
        if end_port is not None:
            errors.append(
                _invalid(f"{path}.endPort", _int(end_port), "may not be specified when `port` is non-numeric")
            )
        errors.extend(_invalid(f"{path}.port", number, msg) for msg in is_valid_port_name(_str(number)))
    return errors


def _validate_network_policy_peer(peer: Obj, path: str) -> Errors:
    errors: Errors = []
    count = 0
    for key in ("podSelector", "namespaceSelector"):
        if isinstance(peer.get(key), dict):
            count += 1
            errors.extend(validate_label_selector(peer[key], f"{path}.{key}"))
    block = peer.get("ipBlock")
    if isinstance(block, dict):
        count += 1
        cidr = _str(block.get("cidr"))
        network = _parse_cidr(cidr)
        if not cidr:
            errors.append(_required(f"{path}.ipBlock.cidr"))
        elif network is None:
            errors.append(_invalid(f"{path}.ipBlock.cidr", cidr, "not a valid CIDR"))
        else:
            for i, excluded in enumerate(_list(block.get("except"))):
                except_path = f"{path}.ipBlock.except[{i}]"
                except_network = _parse_cidr(_str(excluded))
                if except_network is None:
                    errors.append(_invalid(except_path, excluded, "not a valid CIDR"))
                    break
                if (
                    except_network.version != network.version
                    or except_network.network_address not in network
                    or network.prefixlen >= except_network.prefixlen
                ):
                    errors.append(_invalid(except_path, excluded, "must be a strict subset of `cidr`"))
    if count == 0:
        errors.append(_required(path, "must specify a peer"))
    elif count > 1 and isinstance(block, dict):
        errors.append(_forbidden(path, "may not specify both ipBlock and another peer"))
    return errors


def _validate_network_policy(obj: Obj, old: Obj | None, rt: ResourceType) -> Errors:
    if old is None:
        errors = validate_object_meta(obj.get("metadata"), namespaced=True, name_fn=name_is_dns_subdomain)
    else:
        errors = validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
    spec = _map(obj.get("spec"))
    errors.extend(validate_label_selector(_map(spec.get("podSelector")), "spec.podSelector"))
    for direction, peers in (("ingress", "from"), ("egress", "to")):
        for i, rule in enumerate(_maps(spec.get(direction))):
            rule_path = f"spec.{direction}[{i}]"
            for j, port in enumerate(_maps(rule.get("ports"))):
                errors.extend(_validate_network_policy_port(port, f"{rule_path}.ports[{j}]"))
            for j, peer in enumerate(_maps(rule.get(peers))):
                errors.extend(_validate_network_policy_peer(peer, f"{rule_path}.{peers}[{j}]"))
    policy_types = _list(spec.get("policyTypes"))
    if len(policy_types) > 2:
        errors.append(
            _invalid(
                "spec.policyTypes", go_string_list(policy_types), "may not specify more than two policyTypes"
            )
        )
        return errors
    for i, policy_type in enumerate(policy_types):
        if policy_type not in ("Ingress", "Egress"):
            errors.append(_not_supported(f"spec.policyTypes[{i}]", policy_type, ("Ingress", "Egress")))
    return errors


# --- discovery.k8s.io/v1 ----------------------------------------------------------------------------

_ADDRESS_TYPES = ("FQDN", "IPv4", "IPv6")


def _validate_endpoint_slice(obj: Obj, old: Obj | None, rt: ResourceType) -> Errors:
    errors: Errors = []
    if old is not None:
        errors.extend(validate_object_meta_update(obj.get("metadata"), old.get("metadata")))
    errors.extend(validate_object_meta(obj.get("metadata"), namespaced=True, name_fn=name_is_dns_subdomain))
    address_type = _str(obj.get("addressType"))
    if not address_type:
        errors.append(_required("addressType"))
    elif address_type not in _ADDRESS_TYPES:
        errors.append(_not_supported("addressType", address_type, _ADDRESS_TYPES))
    endpoints = _maps(obj.get("endpoints"))
    if len(endpoints) > 1000:
        errors.append(_too_many("endpoints", len(endpoints), 1000))
        endpoints = []
    for i, endpoint in enumerate(endpoints):
        item = f"endpoints[{i}]"
        addresses = _list(endpoint.get("addresses"))
        if not addresses:
            errors.append(_required(f"{item}.addresses", "must contain at least 1 address"))
        elif len(addresses) > 100:
            errors.append(_too_many(f"{item}.addresses", len(addresses), 100))
        for j, address in enumerate(addresses):
            address_path = f"{item}.addresses[{j}]"
            text = _str(address)
            ip = _parse_ip(text)
            if address_type in ("IPv4", "IPv6"):
                want = 4 if address_type == "IPv4" else 6
                if ip is None or ip.version != want:
                    errors.append(_invalid(address_path, text, f"must be a valid {address_type} address"))
                else:
                    errors.extend(_validate_non_special_ip(text, address_path))
            elif address_type == "FQDN":
                errors.extend(_fully_qualified_domain_name(text, address_path))
        node_name = endpoint.get("nodeName")
        if node_name is not None:
            errors.extend(
                _invalid(f"{item}.nodeName", node_name, m)
                for m in name_is_dns_subdomain(_str(node_name), False)
            )
        topology = _map(endpoint.get("deprecatedTopology"))
        if len(topology) > 16:
            errors.append(_too_many(f"{item}.deprecatedTopology", len(topology), 16))
        errors.extend(_validate_labels(topology, f"{item}.deprecatedTopology"))
        hostname = endpoint.get("hostname")
        if hostname is not None:
            errors.extend(
                _invalid(f"{item}.hostname", hostname, msg) for msg in is_dns1123_label(_str(hostname))
            )
        zones = _maps(_map(endpoint.get("hints")).get("forZones"))
        if len(zones) > 8:
            errors.append(_too_many(f"{item}.hints.forZones", len(zones), 8))
    ports = _maps(obj.get("ports"))
    if len(ports) > 20000:
        errors.append(_too_many("ports", len(ports), 20000))
        ports = []
    names: set[str] = set()
    for i, port in enumerate(ports):
        item = f"ports[{i}]"
        name = _str(port.get("name"))
        if name:
            errors.extend(_invalid(f"{item}.name", name, msg) for msg in is_dns1123_label(name))
        if name in names:
            errors.append(_duplicate(f"{item}.name", name))
        names.add(name)
        protocol = port.get("protocol")
        if protocol is None:
            errors.append(_required(f"{item}.protocol"))
        elif protocol not in _PROTOCOLS:
            errors.append(_not_supported(f"{item}.protocol", protocol, _PROTOCOLS))
        app_protocol = port.get("appProtocol")
        if app_protocol is not None:
            errors.extend(
                _invalid(f"{item}.appProtocol", app_protocol, m)
                for m in is_qualified_name(_str(app_protocol))
            )
    if old is not None:
        errors.extend(_immutable(address_type, _str(old.get("addressType")), "addressType"))
    return errors


def _fully_qualified_domain_name(name: str, path: str) -> Errors:
    if not name:
        return [_required(path)]
    trimmed = name.removesuffix(".")
    messages = is_dns1123_subdomain(trimmed)
    if messages:
        return [_invalid(path, trimmed, ",".join(messages))]
    if len(trimmed.split(".")) < 2:
        return [_invalid(path, trimmed, "should be a domain with at least two segments separated by dots")]
    for label in trimmed.split("."):
        messages = is_dns1123_label(label)
        if messages:
            return [_invalid(path, label, ",".join(messages))]
    return []


# --- rbac.authorization.k8s.io/v1 -----------------------------------------------------------------------

RBAC_GROUP = "rbac.authorization.k8s.io"


def _validate_policy_rule(rule: Obj, path: str, *, namespaced: bool) -> Errors:
    errors: Errors = []
    if not _list(rule.get("verbs")):
        errors.append(_required(f"{path}.verbs", "verbs must contain at least one value"))
    urls = _list(rule.get("nonResourceURLs"))
    if urls:
        if namespaced:
            errors.append(
                _invalid(
                    f"{path}.nonResourceURLs",
                    go_string_list(urls),
                    "namespaced rules cannot apply to non-resource URLs",
                )
            )
        if _list(rule.get("apiGroups")) or _list(rule.get("resources")) or _list(rule.get("resourceNames")):
            errors.append(
                _invalid(
                    f"{path}.nonResourceURLs",
                    go_string_list(urls),
                    "rules cannot apply to both regular resources and non-resource URLs",
                )
            )
        return errors
    if not _list(rule.get("apiGroups")):
        errors.append(_required(f"{path}.apiGroups", "resource rules must supply at least one api group"))
    if not _list(rule.get("resources")):
        errors.append(_required(f"{path}.resources", "resource rules must supply at least one resource"))
    return errors


def _validate_role(obj: Obj, old: Obj | None, rt: ResourceType) -> Errors:
    namespaced = rt.kind == "Role"
    errors = validate_object_meta(obj.get("metadata"), namespaced=namespaced, name_fn=name_is_path_segment)
    for i, rule in enumerate(_maps(obj.get("rules"))):
        errors.extend(_validate_policy_rule(rule, f"rules[{i}]", namespaced=namespaced))
    aggregation = obj.get("aggregationRule")
    if not namespaced and isinstance(aggregation, dict):
        selectors = _list(aggregation.get("clusterRoleSelectors"))
        if not selectors:
            errors.append(
                _required(
                    "aggregationRule.clusterRoleSelectors",
                    "at least one clusterRoleSelector required if aggregationRule is non-nil",
                )
            )
        for i, selector in enumerate(_maps(selectors)):
            selector_path = f"aggregationRule.clusterRoleSelectors[{i}]"
            errors.extend(validate_label_selector(selector, selector_path))
            if _selector_from(selector) is None:
                errors.append(_invalid(selector_path, go_label_selector(selector), "invalid label selector."))
    if old is not None:
        errors.extend(validate_object_meta_update(obj.get("metadata"), old.get("metadata")))
    return errors


def _validate_subject(subject: Obj, path: str, *, namespaced: bool) -> Errors:
    errors: Errors = []
    name = _str(subject.get("name"))
    if not name:
        errors.append(_required(f"{path}.name"))
    kind, api_group = _str(subject.get("kind")), _str(subject.get("apiGroup"))
    if kind == "ServiceAccount":
        if name:
            errors.extend(_invalid(f"{path}.name", name, msg) for msg in name_is_dns_subdomain(name, False))
        if api_group:
            errors.append(_not_supported(f"{path}.apiGroup", api_group, ("",)))
        if not namespaced and not _str(subject.get("namespace")):
            errors.append(_required(f"{path}.namespace"))
    elif kind in ("User", "Group"):
        if api_group != RBAC_GROUP:
            errors.append(_not_supported(f"{path}.apiGroup", api_group, (RBAC_GROUP,)))
    else:
        errors.append(_not_supported(f"{path}.kind", kind, ("ServiceAccount", "User", "Group")))
    return errors


def _validate_role_binding(obj: Obj, old: Obj | None, rt: ResourceType) -> Errors:
    namespaced = rt.kind == "RoleBinding"
    errors = validate_object_meta(obj.get("metadata"), namespaced=namespaced, name_fn=name_is_path_segment)
    role_ref = _map(obj.get("roleRef"))
    api_group = _str(role_ref.get("apiGroup"))
    if api_group != RBAC_GROUP:
        errors.append(_not_supported("roleRef.apiGroup", api_group, (RBAC_GROUP,)))
    kinds = ("Role", "ClusterRole") if namespaced else ("ClusterRole",)
    kind = _str(role_ref.get("kind"))
    if kind not in kinds:
        errors.append(_not_supported("roleRef.kind", kind, kinds))
    name = _str(role_ref.get("name"))
    if not name:
        errors.append(_required("roleRef.name"))
    else:
        errors.extend(_invalid("roleRef.name", name, msg) for msg in is_valid_path_segment_name(name))
    for i, subject in enumerate(_maps(obj.get("subjects"))):
        errors.extend(_validate_subject(subject, f"subjects[{i}]", namespaced=namespaced))
    if old is not None:
        errors.extend(validate_object_meta_update(obj.get("metadata"), old.get("metadata")))
        old_ref = _map(old.get("roleRef"))
        if any(_str(role_ref.get(k)) != _str(old_ref.get(k)) for k in ("apiGroup", "kind", "name")):
            rendered = _GoValue(
                f"rbac.RoleRef{{APIGroup:{_go_quote(api_group)}, Kind:{_go_quote(kind)}, Name:{_go_quote(name)}}}"
            )
            errors.append(_invalid("roleRef", rendered, "cannot change roleRef"))
    return errors


# --- coordination, scheduling, storage, policy --------------------------------------------------------


def _validate_lease(obj: Obj, old: Obj | None, rt: ResourceType) -> Errors:
    if old is None:
        errors = validate_object_meta(
            obj.get("metadata"), namespaced=True, name_fn=name_is_dns_subdomain, kube_finalizers=False
        )
    else:
        errors = validate_object_meta_update(obj.get("metadata"), old.get("metadata"), kube_finalizers=False)
    spec = _map(obj.get("spec"))
    duration = spec.get("leaseDurationSeconds")
    if duration is not None and _int(duration) <= 0:
        errors.append(_invalid("spec.leaseDurationSeconds", _int(duration), "must be greater than 0"))
    transitions = spec.get("leaseTransitions")
    if transitions is not None and _int(transitions) < 0:
        errors.append(
            _invalid("spec.leaseTransitions", _int(transitions), "must be greater than or equal to 0")
        )
    return errors


def _go_toleration(toleration: Obj) -> _GoValue:
    """A ``core.Toleration`` as ``%#v`` prints it. A set ``tolerationSeconds`` is a pointer, which Go
    prints as its address; kubelab prints the value there instead (``(*int64)(300)``)."""
    seconds = toleration.get("tolerationSeconds")
    pointer = "(*int64)(nil)" if seconds is None else f"(*int64)({_int(seconds)})"
    fields = ", ".join(
        f"{name}:{_go_quote(_str(toleration.get(key)))}"
        for name, key in (("Key", "key"), ("Operator", "operator"), ("Value", "value"), ("Effect", "effect"))
    )
    return _GoValue(f"core.Toleration{{{fields}, TolerationSeconds:{pointer}}}")


def _validate_runtime_class(obj: Obj, old: Obj | None, rt: ResourceType) -> Errors:
    """pkg/apis/node/validation: ValidateRuntimeClass on create and update, then (update)
    ValidateRuntimeClassUpdate. ``overhead.podFixed`` is checked as container limits, so its
    errors name ``overhead.limits[<resource>]``, as upstream's reuse of that code does."""
    errors = validate_object_meta(obj.get("metadata"), namespaced=False, name_fn=name_is_dns_subdomain)
    handler = _str(obj.get("handler"))
    errors.extend(_invalid("handler", handler, message) for message in name_is_dns_label(handler, False))
    overhead = obj.get("overhead")
    if isinstance(overhead, dict):
        errors.extend(_validate_resource_requirements({"limits": overhead.get("podFixed")}, "overhead"))
    scheduling = obj.get("scheduling")
    if isinstance(scheduling, dict):
        if scheduling.get("nodeSelector") is not None:
            errors.extend(_validate_labels(scheduling.get("nodeSelector"), "scheduling.nodeSelector"))
        tolerations = _maps(scheduling.get("tolerations"))
        errors.extend(_validate_tolerations(tolerations, "scheduling.tolerations"))
        seen: set[tuple[str, str, str, str]] = set()
        for i, toleration in enumerate(tolerations):
            get = toleration.get
            list_key = (_str(get("key")), _str(get("operator")), _str(get("value")), _str(get("effect")))
            if list_key in seen:
                errors.append(_duplicate(f"scheduling.tolerations[{i}]", _go_toleration(toleration)))
            seen.add(list_key)
    if old is not None:
        errors.extend(validate_object_meta_update(obj.get("metadata"), old.get("metadata")))
        errors.extend(_immutable(handler, _str(old.get("handler")), "handler"))
    return errors


HIGHEST_USER_DEFINABLE_PRIORITY = 1_000_000_000
_SYSTEM_PRIORITY_CLASSES = {"system-node-critical": 2_000_001_000, "system-cluster-critical": 2_000_000_000}


def _validate_priority_class(obj: Obj, old: Obj | None, rt: ResourceType) -> Errors:
    name = _str(_map(obj.get("metadata")).get("name"))
    value = _int(obj.get("value"))
    if old is not None:
        errors = validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
        if value != _int(old.get("value")):
            errors.append(_forbidden("value", "may not be changed in an update."))
        return errors + _immutable(
            obj.get("preemptionPolicy"), old.get("preemptionPolicy"), "preemptionPolicy"
        )
    errors = validate_object_meta(obj.get("metadata"), namespaced=False, name_fn=name_is_dns_subdomain)
    if name.startswith("system-"):
        known = _SYSTEM_PRIORITY_CLASSES.get(name)
        reason = ""
        if known is None:
            reason = f"{name} is not a known system priority class"
        elif value != known:
            reason = f"value of {name} PriorityClass must be {known}"
        elif obj.get("globalDefault") is True:
            reason = f"globalDefault of {name} PriorityClass must be false"
        if reason:
            errors.append(
                _forbidden(
                    "metadata.name",
                    f"priority class names with 'system-' prefix are reserved for system use only. error: {reason}",
                )
            )
    elif value > HIGHEST_USER_DEFINABLE_PRIORITY:
        errors.append(
            _forbidden(
                "value",
                f"maximum allowed value of a user defined priority is {HIGHEST_USER_DEFINABLE_PRIORITY}",
            )
        )
    if obj.get("preemptionPolicy") is not None:
        errors.extend(_validate_preemption_policy(obj.get("preemptionPolicy"), "preemptionPolicy"))
    return errors


def _validate_storage_class(obj: Obj, old: Obj | None, rt: ResourceType) -> Errors:
    if old is not None:
        errors = validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
        if _map(obj.get("parameters")) != _map(old.get("parameters")):
            errors.append(_forbidden("parameters", "updates to parameters are forbidden."))
        if _str(obj.get("provisioner")) != _str(old.get("provisioner")):
            errors.append(_forbidden("provisioner", "updates to provisioner are forbidden."))
        if _str(obj.get("reclaimPolicy")) != _str(old.get("reclaimPolicy")):
            errors.append(_forbidden("reclaimPolicy", "updates to reclaimPolicy are forbidden."))
        return errors + _immutable(
            obj.get("volumeBindingMode"), old.get("volumeBindingMode"), "volumeBindingMode"
        )
    errors = validate_object_meta(obj.get("metadata"), namespaced=False, name_fn=name_is_dns_subdomain)
    provisioner = _str(obj.get("provisioner"))
    if not provisioner:
        errors.append(_required("provisioner"))
    else:
        errors.extend(
            _invalid("provisioner", provisioner.lower(), m) for m in is_qualified_name(provisioner.lower())
        )
    parameters = _map(obj.get("parameters"))
    if len(parameters) > 512:
        errors.append(_too_long("parameters", 512))
    else:
        total = 0
        for key, value in parameters.items():
            if not key:
                errors.append(_invalid("parameters", key, "field can not be empty."))
            total += len(key.encode()) + len(_str(value).encode())
        if total > 256 * 1024:
            errors.append(_too_long("parameters", 256 * 1024))
    reclaim = _str(obj.get("reclaimPolicy"))
    if reclaim and reclaim not in ("Delete", "Retain"):
        errors.append(_not_supported("reclaimPolicy", reclaim, ("Delete", "Retain")))
    mode = obj.get("volumeBindingMode")
    if mode is None:
        errors.append(_required("volumeBindingMode"))
    elif mode not in ("Immediate", "WaitForFirstConsumer"):
        errors.append(_not_supported("volumeBindingMode", mode, ("Immediate", "WaitForFirstConsumer")))
    for i, term in enumerate(_maps(obj.get("allowedTopologies"))):
        seen: set[str] = set()
        for j, expression in enumerate(_maps(term.get("matchLabelExpressions"))):
            expression_path = f"allowedTopologies[{i}].matchLabelExpressions[{j}]"
            values = _list(expression.get("values"))
            if not values:
                errors.append(_required(f"{expression_path}.values"))
            unique: set[str] = set()
            for k, value in enumerate(values):
                if _str(value) in unique:
                    errors.append(_duplicate(f"{expression_path}.values[{k}]", value))
                unique.add(_str(value))
            key = _str(expression.get("key"))
            errors.extend(_validate_label_name(key, f"{expression_path}.key"))
            if key in seen:
                errors.append(_duplicate(f"{expression_path}.key", key))
            seen.add(key)
    return errors


def _validate_pod_disruption_budget(obj: Obj, old: Obj | None, rt: ResourceType) -> Errors:
    errors: Errors = []
    if old is None:
        errors.extend(
            validate_object_meta(obj.get("metadata"), namespaced=True, name_fn=name_is_dns_subdomain)
        )
    else:
        errors.extend(validate_object_meta_update(obj.get("metadata"), old.get("metadata")))
    spec = _map(obj.get("spec"))
    min_available, max_unavailable = spec.get("minAvailable"), spec.get("maxUnavailable")
    if min_available is not None and max_unavailable is not None:
        errors.append(_invalid("spec", _go_json(spec), "minAvailable and maxUnavailable cannot be both set"))
    for key, value in (("minAvailable", min_available), ("maxUnavailable", max_unavailable)):
        if value is not None:
            errors.extend(_validate_int_or_percent(value, f"spec.{key}"))
            errors.extend(_not_more_than_100_percent(value, f"spec.{key}"))
    errors.extend(validate_label_selector(spec.get("selector"), "spec.selector"))
    policy = spec.get("unhealthyPodEvictionPolicy")
    if policy is not None and policy not in ("AlwaysAllow", "IfHealthyBudget"):
        errors.append(
            _not_supported("spec.unhealthyPodEvictionPolicy", policy, ("AlwaysAllow", "IfHealthyBudget"))
        )
    return errors


def _validate_conditions(conditions: Any, path: str) -> Errors:
    """metav1.Condition lists (ValidateConditions)."""
    errors: Errors = []
    seen: set[str] = set()
    for i, condition in enumerate(_maps(conditions)):
        item = f"{path}[{i}]"
        kind = _str(condition.get("type"))
        if kind in seen:
            errors.append(_duplicate(f"{item}.type", kind))
        seen.add(kind)
        errors.extend(_validate_label_name(kind, f"{item}.type"))
        status = _str(condition.get("status"))
        if status not in ("False", "True", "Unknown"):
            errors.append(_not_supported(f"{item}.status", status, ("False", "True", "Unknown")))
        if _int(condition.get("observedGeneration")) < 0:
            errors.append(
                _invalid(
                    f"{item}.observedGeneration",
                    _int(condition.get("observedGeneration")),
                    "must be greater than or equal to zero",
                )
            )
        if not condition.get("lastTransitionTime"):
            errors.append(_required(f"{item}.lastTransitionTime", "must be set"))
        reason = _str(condition.get("reason"))
        if not reason:
            errors.append(_required(f"{item}.reason", "must be set"))
        elif len(reason) > 1024:
            errors.append(_too_long(f"{item}.reason", 1024))
        elif not re.fullmatch(r"[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?", reason):
            errors.append(
                _invalid(
                    f"{item}.reason",
                    reason,
                    regex_error(
                        "a condition reason must start with alphabetic character, optionally followed by a string "
                        "of alphanumeric characters or '_,:', and must end with an alphanumeric character or '_'",
                        "[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?",
                        "my_name",
                        "MY_NAME",
                        "MyName",
                        "ReasonA,ReasonB",
                        "ReasonA:ReasonB",
                    ),
                )
            )
        if len(_str(condition.get("message"))) > 32 * 1024:
            errors.append(_too_long(f"{item}.message", 32 * 1024))
    return errors


def _validate_pdb_status(obj: Obj, old: Obj) -> Errors:
    errors = validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
    status = _map(obj.get("status"))
    for key in ("disruptionsAllowed", "currentHealthy", "desiredHealthy", "expectedPods"):
        errors.extend(_nonnegative(status.get(key), f"status.{key}"))
    return errors + _validate_conditions(status.get("conditions"), "status.conditions")


# --- autoscaling/v2 ------------------------------------------------------------------------------------

_METRIC_TYPES = ("ContainerResource", "External", "Object", "Pods", "Resource")
_METRIC_SOURCE_FIELDS = {
    "Object": "object",
    "Pods": "pods",
    "Resource": "resource",
    "External": "external",
    "ContainerResource": "containerResource",
}


def _validate_metric_target(target: Any, path: str) -> Errors:
    target = _map(target)
    kind = _str(target.get("type"))
    errors: Errors = []
    if not kind:
        errors.append(_required(f"{path}.type", "must specify a metric target type"))
    elif kind not in ("AverageValue", "Utilization", "Value"):
        errors.append(_not_supported(f"{path}.type", kind, ("AverageValue", "Utilization", "Value")))
    utilization = target.get("averageUtilization")
    if utilization is not None and _int(utilization) < 1:
        errors.append(_invalid(f"{path}.averageUtilization", _int(utilization), "must be greater than 0"))
    for key in ("value", "averageValue"):
        raw = target.get(key)
        if raw is None:
            continue
        try:
            if Quantity.parse(raw).value <= 0:
                errors.append(_invalid(f"{path}.{key}", _render(raw), "must be positive"))
        except InvalidQuantityError as exc:
            errors.append(_invalid(f"{path}.{key}", raw, str(exc)))
    return errors


def _validate_metric(metric: Obj, path: str) -> Errors:
    errors: Errors = []
    kind = _str(metric.get("type"))
    if not kind:
        errors.append(_required(f"{path}.type", "must specify a metric source type"))
    if kind not in _METRIC_TYPES:
        errors.append(_not_supported(f"{path}.type", kind, _METRIC_TYPES))
    present = [field for field in _METRIC_SOURCE_FIELDS.values() if isinstance(metric.get(field), dict)]
    for field in present[:1]:
        source = metric[field]
        source_path = f"{path}.{field}"
        if field in ("resource", "containerResource") and not _str(source.get("name")):
            errors.append(_required(f"{source_path}.name", "must specify a resource name"))
        if field == "containerResource" and not _str(source.get("container")):
            errors.append(_required(f"{source_path}.container", "must specify a container"))
        if field in ("pods", "object", "external") and not _str(_map(source.get("metric")).get("name")):
            errors.append(_required(f"{source_path}.metric.name", "must specify a metric name"))
        errors.extend(_validate_metric_target(source.get("target"), f"{source_path}.target"))
    expected = _METRIC_SOURCE_FIELDS.get(kind)
    if expected is not None and expected not in present:
        errors.append(
            _required(f"{path}.{expected}", "must populate information for the given metric source")
        )
    if len(present) > 1:
        for field in present:
            if field != expected:
                errors.append(_forbidden(f"{path}.{field}", "must populate the given metric source only"))
    return errors


def _validate_hpa(obj: Obj, old: Obj | None, rt: ResourceType) -> Errors:
    if rt.version == "v1":
        # Upstream validates the internal object converted from v1, so v1 writes are checked
        # (and their errors named) as v2's: spec.metrics[0].resource.target.averageUtilization.
        obj = hpa_conversion.to_v2(obj)
        old = None if old is None else hpa_conversion.to_v2(old)
    if old is None:
        errors = validate_object_meta(obj.get("metadata"), namespaced=True, name_fn=name_is_dns_subdomain)
    else:
        errors = validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
    spec = _map(obj.get("spec"))
    min_replicas, max_replicas = spec.get("minReplicas"), _int(spec.get("maxReplicas"))
    if min_replicas is not None and _int(min_replicas) < 1:
        errors.append(_invalid("spec.minReplicas", _int(min_replicas), "must be greater than or equal to 1"))
    if max_replicas < 1:
        errors.append(_invalid("spec.maxReplicas", max_replicas, "must be greater than 0"))
    if min_replicas is not None and max_replicas < _int(min_replicas):
        errors.append(
            _invalid("spec.maxReplicas", max_replicas, "must be greater than or equal to `minReplicas`")
        )
    target = _map(spec.get("scaleTargetRef"))
    for key in ("kind", "name"):
        value = _str(target.get(key))
        if not value:
            errors.append(_required(f"spec.scaleTargetRef.{key}"))
        else:
            errors.extend(
                _invalid(f"spec.scaleTargetRef.{key}", value, m) for m in is_valid_path_segment_name(value)
            )
    for i, metric in enumerate(_maps(spec.get("metrics"))):
        errors.extend(_validate_metric(metric, f"spec.metrics[{i}]"))
    behavior = spec.get("behavior")
    for direction in ("scaleUp", "scaleDown"):
        rules = _map(_map(behavior).get(direction))
        if not rules:
            continue
        rules_path = f"spec.behavior.{direction}"
        window = rules.get("stabilizationWindowSeconds")
        if window is not None and not 0 <= _int(window) <= 3600:
            errors.append(
                _invalid(
                    f"{rules_path}.stabilizationWindowSeconds", _int(window), _inclusive_range_error(0, 3600)
                )
            )
        select = rules.get("selectPolicy")
        if select is not None and select not in ("Disabled", "Max", "Min"):
            errors.append(_not_supported(f"{rules_path}.selectPolicy", select, ("Disabled", "Max", "Min")))
        policies = _maps(rules.get("policies"))
        if not policies and select != "Disabled":
            errors.append(_required(f"{rules_path}.policies", "must specify at least one Policy"))
        for j, policy in enumerate(policies):
            policy_path = f"{rules_path}.policies[{j}]"
            kind = _str(policy.get("type"))
            if kind not in ("Percent", "Pods"):
                errors.append(_not_supported(f"{policy_path}.type", kind, ("Percent", "Pods")))
            if _int(policy.get("value")) <= 0:
                errors.append(
                    _invalid(f"{policy_path}.value", _int(policy.get("value")), "must be greater than zero")
                )
            period = _int(policy.get("periodSeconds"))
            if period <= 0:
                errors.append(_invalid(f"{policy_path}.periodSeconds", period, "must be greater than zero"))
            elif period > 1800:
                errors.append(
                    _invalid(f"{policy_path}.periodSeconds", period, "must be less than or equal to 1800")
                )
    return errors


def _validate_hpa_status(obj: Obj, old: Obj) -> Errors:
    errors = validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
    status = _map(obj.get("status"))
    for key in ("currentReplicas", "desiredReplicas"):
        errors.extend(_nonnegative(status.get(key), f"status.{key}"))
    return errors


# --- apiextensions.k8s.io/v1 and apiregistration.k8s.io/v1 -----------------------------------------

_PROTECTED_GROUP_SUFFIXES = (".k8s.io", ".kubernetes.io")
API_APPROVAL_ANNOTATION = "api-approved.kubernetes.io"


def _dns1035_joined(value: str) -> str:
    return ",".join(is_dns1035_label(value))


def _validate_crd_names(names: Obj, path: str) -> Errors:
    errors: Errors = []
    for key in ("plural", "singular", "kind", "listKind"):
        if not _str(names.get(key)):
            errors.append(_required(f"{path}.{key}"))
    for key in ("plural", "singular"):
        value = _str(names.get(key))
        if value and _dns1035_joined(value):
            errors.append(_invalid(f"{path}.{key}", value, _dns1035_joined(value)))
    for key in ("kind", "listKind"):
        value = _str(names.get(key))
        if value and _dns1035_joined(value.lower()):
            errors.append(
                _invalid(
                    f"{path}.{key}",
                    value,
                    "may have mixed case, but should otherwise match: " + _dns1035_joined(value.lower()),
                )
            )
    for i, short_name in enumerate(_list(names.get("shortNames"))):
        if _dns1035_joined(_str(short_name)):
            errors.append(_invalid(f"{path}.shortNames[{i}]", short_name, _dns1035_joined(_str(short_name))))
    kind = _str(names.get("kind"))
    if kind and kind == _str(names.get("listKind")):
        errors.append(_invalid(f"{path}.listKind", kind, "kind and listKind may not be the same"))
    for i, category in enumerate(_list(names.get("categories"))):
        if _dns1035_joined(_str(category)):
            errors.append(_invalid(f"{path}.categories[{i}]", category, _dns1035_joined(_str(category))))
    return errors


def _validate_crd_version_schema(version: Obj, path: str) -> Errors:
    schema = _map(version.get("schema")).get("openAPIV3Schema")
    if not isinstance(schema, dict):
        return [_required(f"{path}.schema.openAPIV3Schema", "schemas are required")]
    kind = schema.get("type")
    if not kind:
        return [_required(f"{path}.schema.openAPIV3Schema.type", "must not be empty at the root")]
    if kind != "object":
        return [_invalid(f"{path}.schema.openAPIV3Schema.type", kind, "must be object at the root")]
    return []


def _validate_crd_rules(versions: list[Obj]) -> Errors:
    """The ``x-kubernetes-validations`` of the versions' schemas. Where every version has the same
    schema, upstream's internal form holds it once as ``spec.validation`` and errors name that."""
    schemas = [_map(version.get("schema")).get("openAPIV3Schema") for version in versions]
    if schemas and all(isinstance(schema, dict) and schema == schemas[0] for schema in schemas):
        return validate_schema_rules(schemas[0], path="spec.validation.openAPIV3Schema")
    errors: Errors = []
    for i, schema in enumerate(schemas):
        if isinstance(schema, dict):
            errors.extend(validate_schema_rules(schema, path=f"spec.versions[{i}].schema.openAPIV3Schema"))
    return errors


def _validate_crd(obj: Obj, old: Obj | None, rt: ResourceType) -> Errors:
    spec = _map(obj.get("spec"))
    names = _map(spec.get("names"))
    group = _str(spec.get("group"))
    required_name = f"{_str(names.get('plural'))}.{group}"

    def crd_name(name: str, prefix: bool) -> list[str]:
        messages = name_is_dns_subdomain(name, prefix)
        if name != required_name:
            messages.append('must be spec.names.plural+"."+spec.group')
        return messages

    if old is None:
        errors = validate_object_meta(
            obj.get("metadata"), namespaced=False, name_fn=crd_name, kube_finalizers=False
        )
    else:
        errors = validate_object_meta_update(obj.get("metadata"), old.get("metadata"), kube_finalizers=False)
    if not group:
        errors.append(_required("spec.group"))
    elif is_dns1123_subdomain(group):
        errors.append(_invalid("spec.group", group, ",".join(is_dns1123_subdomain(group))))
    elif len(group.split(".")) < 2:
        errors.append(_invalid("spec.group", group, "should be a domain with at least one dot"))
    scope = _str(spec.get("scope"))
    if not scope:
        errors.append(_required("spec.scope"))
    elif scope not in ("Cluster", "Namespaced"):
        errors.append(_not_supported("spec.scope", scope, ("Cluster", "Namespaced")))
    versions = _maps(spec.get("versions"))
    storage_count = 0
    seen: set[str] = set()
    unique = True
    for i, version in enumerate(versions):
        version_path = f"spec.versions[{i}]"
        storage_count += 1 if version.get("storage") is True else 0
        name = _str(version.get("name"))
        unique = unique and name not in seen
        seen.add(name)
        if _dns1035_joined(name):
            errors.append(_invalid(f"{version_path}.name", name, _dns1035_joined(name)))
        errors.extend(_validate_crd_version_schema(version, version_path))
    errors.extend(_validate_crd_rules(versions))
    if not unique:
        errors.append(
            _invalid("spec.versions", _go_json(spec.get("versions")), "must contain unique version names")
        )
    if storage_count != 1:
        errors.append(
            _invalid(
                "spec.versions",
                _go_json(spec.get("versions")),
                "must have exactly one version marked as storage version",
            )
        )
    errors.extend(_validate_crd_names(names, "spec.names"))
    conversion = _map(spec.get("conversion"))
    strategy = _str(conversion.get("strategy"))
    if strategy not in ("None", "Webhook"):
        errors.append(_not_supported("spec.conversion.strategy", strategy, ("None", "Webhook")))
    elif strategy == "None" and conversion.get("webhook") is not None:
        errors.append(
            _forbidden("spec.conversion.webhook", "should not be set when strategy is not set to Webhook")
        )
    elif strategy == "Webhook" and not isinstance(_map(conversion.get("webhook")).get("clientConfig"), dict):
        errors.append(
            _required("spec.conversion.webhook.clientConfig", "required when strategy is set to Webhook")
        )
    stored = [_str(v) for v in _list(_map(obj.get("status")).get("storedVersions"))]
    if not stored:
        errors.append(
            _invalid("status.storedVersions", go_string_list(stored), "must have at least one stored version")
        )
    else:
        declared = {_str(v.get("name")) for v in versions}
        errors.extend(
            _invalid(f"status.storedVersions[{i}]", v, "must appear in spec.versions")
            for i, v in enumerate(stored)
            if v not in declared
        )
        storage = [_str(v.get("name")) for v in versions if v.get("storage") is True]
        if storage and storage[0] not in stored:
            errors.append(
                _invalid(
                    "status.storedVersions",
                    go_string_list(stored),
                    f"must have the storage version {storage[0]}",
                )
            )
    if group.endswith(_PROTECTED_GROUP_SUFFIXES) or group in ("k8s.io", "kubernetes.io"):
        annotations = _map(_map(obj.get("metadata")).get("annotations"))
        if API_APPROVAL_ANNOTATION not in annotations:
            errors.append(
                _required(
                    f"metadata.annotations[{API_APPROVAL_ANNOTATION}]",
                    f'protected groups must have approval annotation "{API_APPROVAL_ANNOTATION}", '
                    "see https://github.com/kubernetes/enhancements/pull/1111",
                )
            )
    if old is not None:
        old_spec = _map(old.get("spec"))
        errors.extend(_immutable(group, _str(old_spec.get("group")), "spec.group"))
        errors.extend(_immutable(scope, _str(old_spec.get("scope")), "spec.scope"))
    return errors


def _validate_api_service(obj: Obj, old: Obj | None, rt: ResourceType) -> Errors:
    spec = _map(obj.get("spec"))
    group, version = _str(spec.get("group")), _str(spec.get("version"))
    required_name = f"{version}.{group}"

    def api_service_name(name: str, prefix: bool) -> list[str]:
        minimal = is_valid_path_segment_name(name)
        if minimal:
            return minimal
        return [] if name == required_name else [f'must be `spec.version+"."+spec.group`: "{required_name}"']

    errors: Errors = []
    if old is not None:
        errors.extend(
            validate_object_meta_update(obj.get("metadata"), old.get("metadata"), kube_finalizers=False)
        )
    errors.extend(
        validate_object_meta(
            obj.get("metadata"), namespaced=False, name_fn=api_service_name, kube_finalizers=False
        )
    )
    if not group and version != "v1":
        errors.append(_required("spec.group", "only v1 may have an empty group and it better be legacy kube"))
    if group:
        errors.extend(_invalid("spec.group", group, msg) for msg in is_dns1123_subdomain(group))
    errors.extend(_invalid("spec.version", version, msg) for msg in is_dns1035_label(version))
    group_priority = _int(spec.get("groupPriorityMinimum"))
    if not 0 < group_priority <= 20000:
        errors.append(
            _invalid("spec.groupPriorityMinimum", group_priority, "must be positive and less than 20000")
        )
    version_priority = _int(spec.get("versionPriority"))
    if not 0 < version_priority <= 1000:
        errors.append(
            _invalid("spec.versionPriority", version_priority, "must be positive and less than 1000")
        )
    ca_bundle = _str(spec.get("caBundle"))
    insecure = spec.get("insecureSkipTLSVerify") is True
    service = spec.get("service")
    if not isinstance(service, dict):
        if ca_bundle:
            decoded, _ = _decode_base64(ca_bundle)
            size = len(decoded) if decoded is not None else len(ca_bundle)
            errors.append(
                _invalid("spec.caBundle", f"{size} bytes", "local APIServices may not have a caBundle")
            )
        if insecure:
            errors.append(
                _invalid(
                    "spec.insecureSkipTLSVerify", True, "local APIServices may not have insecureSkipTLSVerify"
                )
            )
        return errors
    for key in ("namespace", "name"):
        if not _str(service.get(key)):
            errors.append(_required(f"spec.service.{key}"))
    port = _int(service.get("port"))
    port_errors = is_valid_port_num(port)
    if port_errors:
        errors.append(_invalid("spec.service.port", port, "port is not valid: " + ", ".join(port_errors)))
    if insecure and ca_bundle:
        errors.append(_invalid("spec.insecureSkipTLSVerify", True, "may not be true if caBundle is present"))
    return errors


def _validate_api_service_status(obj: Obj, old: Obj) -> Errors:
    errors = validate_object_meta_update(obj.get("metadata"), old.get("metadata"), kube_finalizers=False)
    for i, condition in enumerate(_maps(_map(obj.get("status")).get("conditions"))):
        status = _str(condition.get("status"))
        if status not in ("True", "False", "Unknown"):
            errors.append(
                _not_supported(f"status.conditions[{i}].status", status, ("True", "False", "Unknown"))
            )
        kind = _str(condition.get("type"))
        if kind != "Available":
            errors.append(_not_supported(f"status.conditions[{i}].type", kind, ("Available",)))
    return errors


# --- authorization.k8s.io/v1 and authentication.k8s.io/v1: reviews -------------------------------------
# pkg/apis/authorization/validation. Reviews are questions, never stored: their metadata must be
# empty (managedFields aside; a LocalSubjectAccessReview may carry its namespace), and an access
# review asks about exactly one of a resource or a non-resource request. TokenReview,
# SelfSubjectReview and SelfSubjectRulesReview have no field rules upstream (their handlers check
# what they need), so they get none here either, not even ObjectMeta's name rule.

AUTHORIZATION_GROUP = "authorization.k8s.io"
AUTHENTICATION_GROUP = "authentication.k8s.io"


def _go_non_resource_attributes(attributes: Obj) -> _GoValue:
    """``authorization.NonResourceAttributes{Path:"/api", Verb:"get"}``, as Go's ``%#v`` prints it."""
    return _GoValue(
        f"authorization.NonResourceAttributes{{Path:{_go_quote(_str(attributes.get('path')))}, "
        f"Verb:{_go_quote(_str(attributes.get('verb')))}}}"
    )


def _metadata_is_empty(metadata: Any, *, allowed: tuple[str, ...] = ()) -> bool:
    """Go's ``DeepEqual(metav1.ObjectMeta{}, meta)`` with managedFields (and ``allowed``) cleared."""
    ignored = ("managedFields", *allowed)
    return all(_is_zero(_prune(value)) for key, value in _map(metadata).items() if key not in ignored)


def _validate_selector_attributes(selector: Any, path: str) -> Errors:
    """A fieldSelector or labelSelector in resourceAttributes: ``rawSelector`` or
    ``requirements``, exactly one of them."""
    if selector is None:
        return []
    selector = _map(selector)
    raw = _str(selector.get("rawSelector"))
    requirements = _list(selector.get("requirements"))
    if raw and requirements:
        return [_invalid(f"{path}.rawSelector", raw, "may not specified at the same time as requirements")]
    if not raw and not requirements:
        return [
            _required(
                f"{path}.requirements", f"when {path} is specified, requirements or rawSelector is required"
            )
        ]
    return []


def _validate_access_review_spec(spec: Obj, *, subject: bool) -> Errors:
    """ValidateSubjectAccessReviewSpec (``subject``) or ValidateSelfSubjectAccessReviewSpec."""
    errors: Errors = []
    resource = spec.get("resourceAttributes")
    non_resource = spec.get("nonResourceAttributes")
    if resource is not None and non_resource is not None:
        errors.append(
            _invalid(
                "spec.nonResourceAttributes",
                _go_non_resource_attributes(_map(non_resource)),
                "cannot be specified in combination with resourceAttributes",
            )
        )
    if resource is None and non_resource is None:
        errors.append(
            _invalid(
                "spec.resourceAttributes",
                "null",  # Go prints the nil nonResourceAttributes pointer as the string "null"
                "exactly one of nonResourceAttributes or resourceAttributes must be specified",
            )
        )
    if subject and not _str(spec.get("user")) and not _list(spec.get("groups")):
        errors.append(
            _invalid("spec.user", _str(spec.get("user")), "at least one of user or group must be specified")
        )
    if resource is not None:
        attributes = _map(resource)
        for key in ("fieldSelector", "labelSelector"):
            errors.extend(
                _validate_selector_attributes(attributes.get(key), f"spec.resourceAttributes.{key}")
            )
    return errors


def _validate_subject_access_review(obj: Obj, old: Obj | None, rt: ResourceType) -> Errors:
    errors = _validate_access_review_spec(_map(obj.get("spec")), subject=rt.kind != "SelfSubjectAccessReview")
    if rt.kind != "LocalSubjectAccessReview":
        if not _metadata_is_empty(obj.get("metadata")):
            errors.append(_invalid("metadata", _go_json(obj.get("metadata")), "must be empty"))
        return errors
    metadata = _map(obj.get("metadata"))
    if not _metadata_is_empty(metadata, allowed=("namespace",)):
        errors.append(_invalid("metadata", _go_json(metadata), "must be empty except for namespace"))
    spec = _map(obj.get("spec"))
    resource = spec.get("resourceAttributes")
    if resource is not None:
        namespace = _str(_map(resource).get("namespace"))
        if namespace != _str(metadata.get("namespace")):
            errors.append(
                _invalid("spec.resourceAttributes.namespace", namespace, "must match metadata.namespace")
            )
    non_resource = spec.get("nonResourceAttributes")
    if non_resource is not None:
        errors.append(
            _invalid(
                "spec.nonResourceAttributes",
                _go_non_resource_attributes(_map(non_resource)),
                "disallowed on this kind of request",
            )
        )
    return errors


def _validate_without_rules(obj: Obj, old: Obj | None, rt: ResourceType) -> Errors:
    """Reviews upstream does not validate field by field (TokenReview, SelfSubjectReview,
    SelfSubjectRulesReview): nothing to report."""
    return []


# --- core/v1 PersistentVolume and PersistentVolumeClaim ---------------------------------------------
# pkg/apis/core/validation: ValidatePersistentVolume(Update), ValidatePersistentVolumeClaim(Update).

_ACCESS_MODES = ("ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod")  # sets.List: sorted
_VOLUME_MODES = ("Block", "Filesystem")
_RECLAIM_POLICIES = ("Delete", "Recycle", "Retain")
# The PersistentVolumeSource members, in the order upstream counts them.
_PERSISTENT_VOLUME_SOURCES = (
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "hostPath",
    "glusterfs",
    "flocker",
    "nfs",
    "rbd",
    "quobyte",
    "cephfs",
    "iscsi",
    "cinder",
    "fc",
    "flexVolume",
    "azureFile",
    "vsphereVolume",
    "photonPersistentDisk",
    "portworxVolume",
    "azureDisk",
    "scaleIO",
    "local",
    "storageos",
    "csi",
)
BETA_STORAGE_CLASS_ANNOTATION = "volume.beta.kubernetes.io/storage-class"
CLAIM_SPEC_IMMUTABLE = "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims"


def _validate_access_modes(modes: Any, path: str, *, required_detail: str) -> Errors:
    errors: Errors = []
    modes = _list(modes)
    if not modes:
        errors.append(_required(path, required_detail))
    once_pod = others = False
    for mode in modes:
        if mode not in _ACCESS_MODES:
            errors.append(_not_supported(path, mode, _ACCESS_MODES))
        elif mode == "ReadWriteOncePod":
            once_pod = True
        else:
            others = True
    if once_pod and others:
        errors.append(_forbidden(path, "may not use ReadWriteOncePod with other access modes"))
    return errors


def _validate_positive_storage(raw: Any, path: str) -> Errors:
    """ValidatePositiveQuantityValue, then (for a well-formed quantity) ValidateResourceQuantityValue."""
    try:
        quantity = Quantity.parse(raw)
    except InvalidQuantityError as exc:
        return [_invalid(path, raw, str(exc))]
    if quantity.value <= 0:
        return [_invalid(path, str(quantity), "must be greater than zero")]
    return []


def _validate_class_name(spec: Obj, path: str) -> Errors:
    name = _str(spec.get("storageClassName"))
    if not name:
        return []
    return [_invalid(path, name, msg) for msg in name_is_dns_subdomain(name, False)]


def _validate_persistent_volume_source(spec: Obj) -> Errors:
    errors: Errors = []
    present = [key for key in _PERSISTENT_VOLUME_SOURCES if isinstance(spec.get(key), dict)]
    if not present:
        return [_required("spec", "must specify a volume type")]
    for extra in present[1:]:
        errors.append(_forbidden(f"spec.{extra}", "may not specify more than 1 volume type"))
    key = present[0]
    source = spec[key]
    path = f"spec.{key}"
    if key in ("hostPath", "local"):
        target = _str(source.get("path"))
        if not target:
            errors.append(_required(f"{path}.path"))
        else:
            errors.extend(_path_no_backsteps(target, f"{path}.path"))
        kind = source.get("type")
        if key == "hostPath" and kind is not None and kind not in _HOST_PATH_TYPES:
            errors.append(_not_supported(f"{path}.type", kind, _HOST_PATH_TYPES))
        if key == "local" and not isinstance(spec.get("nodeAffinity"), dict):
            errors.append(_required("spec.nodeAffinity", "Local volume requires node affinity"))
    elif key == "nfs":
        errors.extend(_nfs_errors(source, path))
    elif key == "csi":
        if not _str(source.get("driver")):
            errors.append(_required(f"{path}.driver"))
        if not _str(source.get("volumeHandle")):
            errors.append(_required(f"{path}.volumeHandle"))
    return errors


def _validate_volume_node_affinity(affinity: Any) -> Errors:
    if not isinstance(affinity, dict):
        return []
    required = affinity.get("required")
    if not isinstance(required, dict):
        return [_required("spec.nodeAffinity.required", "must specify required node constraints")]
    terms_path = "spec.nodeAffinity.required.nodeSelectorTerms"
    terms = _maps(required.get("nodeSelectorTerms"))
    if not terms:
        return [_required(terms_path, "must have at least one node selector term")]
    errors: Errors = []
    for i, term in enumerate(terms):
        errors.extend(_validate_node_selector_term(term, f"{terms_path}[{i}]"))
    return errors


def _validate_persistent_volume(obj: Obj, old: Obj | None, rt: ResourceType) -> Errors:
    if old is not None:
        errors = validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
    else:
        errors = validate_object_meta(obj.get("metadata"), namespaced=False, name_fn=name_is_dns_subdomain)
    spec = _map(obj.get("spec"))
    errors.extend(_validate_access_modes(spec.get("accessModes"), "spec.accessModes", required_detail=""))
    capacity = _map(spec.get("capacity"))
    if not capacity:
        errors.append(_required("spec.capacity"))
    if "storage" not in capacity or len(capacity) > 1:
        rendered = _go_json(capacity) if capacity else _GoValue("core.ResourceList(nil)")
        errors.append(_not_supported("spec.capacity", rendered, ("storage",)))
    for name in sorted(capacity):
        errors.extend(_validate_positive_storage(capacity[name], f"spec.capacity[{name}]"))
    errors.extend(_validate_class_name(spec, "spec.storageClassName"))
    mode = spec.get("volumeMode")
    if mode is not None and mode not in _VOLUME_MODES:
        errors.append(_not_supported("spec.volumeMode", mode, _VOLUME_MODES))
    policy = _str(spec.get("persistentVolumeReclaimPolicy"))
    if policy and policy not in _RECLAIM_POLICIES:
        errors.append(_not_supported("spec.persistentVolumeReclaimPolicy", policy, _RECLAIM_POLICIES))
    errors.extend(_validate_volume_node_affinity(spec.get("nodeAffinity")))
    errors.extend(_validate_persistent_volume_source(spec))
    host_path = _map(spec.get("hostPath"))
    if host_path and policy == "Recycle" and _str(host_path.get("path")).rstrip("/") == "":
        errors.append(
            _forbidden(
                "spec.persistentVolumeReclaimPolicy", "may not be 'recycle' for a hostPath mount of '/'"
            )
        )
    if old is None:
        return errors
    old_spec = _map(old.get("spec"))
    new_source = {key: spec.get(key) for key in _PERSISTENT_VOLUME_SOURCES if spec.get(key) is not None}
    old_source = {
        key: old_spec.get(key) for key in _PERSISTENT_VOLUME_SOURCES if old_spec.get(key) is not None
    }
    if not _equal(new_source, old_source):
        changed = "\n".join(_changed_paths(old_source, new_source, "spec"))
        errors.append(
            _forbidden(
                "spec.persistentvolumesource",
                f"spec.persistentvolumesource is immutable after creation\n{changed}",
            )
        )
    errors.extend(_immutable(spec.get("volumeMode"), old_spec.get("volumeMode"), "volumeMode"))
    if old_spec.get("nodeAffinity") is not None and not _equal(
        spec.get("nodeAffinity"), old_spec.get("nodeAffinity")
    ):
        errors.append(_invalid("nodeAffinity", _render(spec.get("nodeAffinity")), "field is immutable"))
    return errors


def _validate_persistent_volume_claim(obj: Obj, old: Obj | None, rt: ResourceType) -> Errors:
    if old is not None:
        errors = validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
    else:
        errors = validate_object_meta(obj.get("metadata"), namespaced=True, name_fn=name_is_dns_subdomain)
    spec = _map(obj.get("spec"))
    errors.extend(
        _validate_access_modes(
            spec.get("accessModes"), "spec.accessModes", required_detail="at least 1 access mode is required"
        )
    )
    if spec.get("selector") is not None:
        errors.extend(validate_label_selector(spec.get("selector"), "spec.selector"))
    requests = _map(_map(spec.get("resources")).get("requests"))
    if "storage" not in requests:
        errors.append(_required("spec.resources[storage]"))
    else:
        errors.extend(_validate_positive_storage(requests["storage"], "spec.resources[storage]"))
    errors.extend(_validate_class_name(spec, "spec.storageClassName"))
    mode = spec.get("volumeMode")
    if mode is not None and mode not in _VOLUME_MODES:
        errors.append(_not_supported("spec.volumeMode", mode, _VOLUME_MODES))
    if old is None:
        return errors
    return errors + _validate_claim_spec_update(obj, old)


def _validate_claim_spec_update(obj: Obj, old: Obj) -> Errors:
    """The update rules: only a bound claim's storage request may grow, volumeName may be set
    once, a nil storageClassName may be set once (retroactive default StorageClass)."""
    spec = orjson.loads(orjson.dumps(_map(obj.get("spec"))))
    old_spec = orjson.loads(orjson.dumps(_map(old.get("spec"))))
    if not _str(old_spec.get("volumeName")):
        old_spec["volumeName"] = spec.get("volumeName")
    old_annotations = _map(_map(old.get("metadata")).get("annotations"))
    if (
        old_spec.get("storageClassName") is None
        and BETA_STORAGE_CLASS_ANNOTATION not in old_annotations
        and spec.get("storageClassName") is not None
    ):
        spec.pop("storageClassName")
    errors: Errors = []
    new_size, old_size = _storage_request(obj), _storage_request(old)
    if _str(_map(obj.get("status")).get("phase")) == "Bound":
        requests = _map(_map(spec.get("resources")).get("requests"))
        old_request = _map(_map(old_spec.get("resources")).get("requests")).get("storage")
        if requests and old_request is not None:
            requests["storage"] = old_request
    if not _equal(spec, old_spec):
        changed = "\n".join(_changed_paths(old_spec, spec, "spec"))
        errors.append(_forbidden("spec", f"{CLAIM_SPEC_IMMUTABLE}\n{changed}"))
    if new_size is not None and old_size is not None and new_size.compare(old_size) < 0:
        errors.append(
            _forbidden("spec.resources.requests.storage", "field can not be less than previous value")
        )
    errors.extend(
        _immutable(
            _map(obj.get("spec")).get("volumeMode"), _map(old.get("spec")).get("volumeMode"), "volumeMode"
        )
    )
    return errors


def _storage_request(claim: Obj) -> Quantity | None:
    raw = _map(_map(_map(claim.get("spec")).get("resources")).get("requests")).get("storage")
    try:
        return Quantity.parse(raw)
    except InvalidQuantityError:
        return None


# --- core/v1 ResourceQuota and LimitRange ----------------------------------------------------------
# pkg/apis/core/validation: ValidateResourceQuota(Update/StatusUpdate), ValidateLimitRange.
# helper.IsIntegerResourceName (with extended resources): whole numbers only.
INTEGER_QUOTA_RESOURCES = frozenset(
    {
        "pods",
        "services",
        "replicationcontrollers",
        "resourcequotas",
        "secrets",
        "configmaps",
        "persistentvolumeclaims",
        "services.nodeports",
        "services.loadbalancers",
    }
)
# helper.IsStandardQuotaResourceName: those counts, and compute and storage amounts.
STANDARD_QUOTA_RESOURCES = INTEGER_QUOTA_RESOURCES | {
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.storage",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
}
# helper.IsStandardResourceName: what a quota counts, and "storage".
_STANDARD_RESOURCES = STANDARD_QUOTA_RESOURCES | {"storage"}
QUOTA_SCOPES = (
    "Terminating",
    "NotTerminating",
    "BestEffort",
    "NotBestEffort",
    "PriorityClass",
    "CrossNamespacePodAffinity",
    "VolumeAttributesClass",
)
POD_COMPUTE_QUOTA_RESOURCES = frozenset(
    {"cpu", "limits.cpu", "memory", "limits.memory", "requests.cpu", "requests.memory"}
)
_EXISTS_ONLY_SCOPES = (
    "BestEffort",
    "NotBestEffort",
    "Terminating",
    "NotTerminating",
    "CrossNamespacePodAffinity",
)
_LIMIT_TYPES = ("Pod", "Container", "PersistentVolumeClaim")
_INVALID_QUOTA_RESOURCE = "must be a standard resource for quota"


def is_standard_quota_resource(name: str) -> bool:
    return name in STANDARD_QUOTA_RESOURCES or name.startswith(("hugepages-", "requests.hugepages-"))


def is_integer_quota_resource(name: str) -> bool:
    return name in INTEGER_QUOTA_RESOURCES or _is_extended_resource(name)


def quota_scope_valid_for_resource(scope: str, resource: str) -> bool:
    """helper.IsResourceQuotaScopeValidForResource."""
    if scope in (
        "Terminating",
        "NotTerminating",
        "NotBestEffort",
        "PriorityClass",
        "CrossNamespacePodAffinity",
    ):
        return resource == "pods" or resource in POD_COMPUTE_QUOTA_RESOURCES
    if scope == "BestEffort":
        return resource == "pods"
    if scope == "VolumeAttributesClass":
        return resource in ("persistentvolumeclaims", "requests.storage")
    return True


def _validate_resource_name(name: str, path: str) -> Errors:
    """validateResourceName: qualified, and standard when not fully qualified."""
    errors = [_invalid(path, name, msg) for msg in is_qualified_name(name)]
    if errors:
        return errors
    if (
        "/" not in name
        and name not in _STANDARD_RESOURCES
        and not name.startswith(("hugepages-", "requests.hugepages-"))
    ):
        errors.append(_invalid(path, name, "must be a standard resource type or fully qualified"))
    return errors


def _validate_quota_resource_name(name: str, path: str) -> Errors:
    errors = _validate_resource_name(name, path)
    if "/" not in name and not is_standard_quota_resource(name):
        errors.append(_invalid(path, name, _INVALID_QUOTA_RESOURCE))
    return errors


def _validate_quota_quantity(name: str, raw: Any, *, path: str) -> Errors:
    """ValidateResourceQuantityValue."""
    try:
        quantity = Quantity.parse(raw)
    except InvalidQuantityError as exc:
        return [_invalid(path, raw, str(exc))]
    errors: Errors = []
    if quantity.value < 0:
        errors.append(_invalid(path, str(quantity), "must be greater than or equal to 0"))
    if is_integer_quota_resource(name) and (quantity.value * 1000) % 1000 != 0:
        errors.append(_invalid(path, str(quantity), "must be an integer"))
    return errors


def _validate_quota_list(raw: Any, path: str) -> Errors:
    errors: Errors = []
    for name, value in sorted(_map(raw).items()):
        item = f"{path}[{name}]"
        errors.extend(_validate_quota_resource_name(name, item))
        errors.extend(_validate_quota_quantity(name, value, path=item))
    return errors


def _go_scopes(scopes: list[Any]) -> _GoValue:
    return _GoValue("[]core.ResourceQuotaScope{" + ", ".join(_go_quote(s) for s in scopes) + "}")


def _conflicting_scopes(scopes: set[str]) -> bool:
    return {"BestEffort", "NotBestEffort"} <= scopes or {"Terminating", "NotTerminating"} <= scopes


def _validate_quota_scopes(spec: Obj, hard: list[str]) -> Errors:
    scopes = _list(spec.get("scopes"))
    if not scopes:
        return []
    errors: Errors = []
    value = _go_scopes(scopes)
    for scope in scopes:
        if scope not in QUOTA_SCOPES:
            errors.append(_invalid("spec.scopes", value, "unsupported scope"))
        for resource in hard:
            if is_standard_quota_resource(resource) and not quota_scope_valid_for_resource(
                _str(scope), resource
            ):
                errors.append(_invalid("spec.scopes", value, "unsupported scope applied to resource"))
    if _conflicting_scopes({_str(scope) for scope in scopes}):
        errors.append(_invalid("spec.scopes", value, "conflicting scopes"))
    return errors


def _validate_scope_selector(spec: Obj, hard: list[str]) -> Errors:
    selector = spec.get("scopeSelector")
    if selector is None:
        return []
    path = "spec.scopeSelector.matchExpressions"
    errors: Errors = []
    seen: set[str] = set()
    rendered = _go_json(selector)
    for requirement in _maps(_map(selector).get("matchExpressions")):
        scope, operator = _str(requirement.get("scopeName")), _str(requirement.get("operator"))
        values = _list(requirement.get("values"))
        if scope not in QUOTA_SCOPES:
            errors.append(_invalid(f"{path}.scopeName", scope, "unsupported scope"))
        for resource in hard:
            if is_standard_quota_resource(resource) and not quota_scope_valid_for_resource(scope, resource):
                errors.append(_invalid(path, rendered, "unsupported scope applied to resource"))
        if scope in _EXISTS_ONLY_SCOPES and operator != "Exists":
            errors.append(
                _invalid(
                    f"{path}.operator",
                    operator,
                    "must be 'Exist' when scope is any of ResourceQuotaScopeTerminating, "
                    "ResourceQuotaScopeNotTerminating, ResourceQuotaScopeBestEffort, "
                    "ResourceQuotaScopeNotBestEffort or ResourceQuotaScopeCrossNamespacePodAffinity",
                )
            )
        if operator in ("In", "NotIn"):
            if not values:
                errors.append(
                    _required(
                        f"{path}.values",
                        "must be at least one value when `operator` is 'In' or 'NotIn' for scope selector",
                    )
                )
        elif operator in ("Exists", "DoesNotExist"):
            if values:
                errors.append(
                    _invalid(
                        f"{path}.values",
                        go_string_list(values),
                        "must be no value when `operator` is 'Exist' or 'DoesNotExist' for scope selector",
                    )
                )
        else:
            errors.append(_invalid(f"{path}.operator", operator, "not a valid selector operator"))
        seen.add(scope)
    if _conflicting_scopes(seen):
        errors.append(_invalid(path, rendered, "conflicting scopes"))
    return errors


def _validate_resource_quota_status(status: Any) -> Errors:
    status = _map(status)
    return _validate_quota_list(status.get("hard"), "status.hard") + _validate_quota_list(
        status.get("used"), "status.used"
    )


def _validate_resource_quota(obj: Obj, old: Obj | None, rt: ResourceType) -> Errors:
    if old is not None:
        errors = validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
    else:
        errors = validate_object_meta(obj.get("metadata"), namespaced=True, name_fn=name_is_dns_subdomain)
    spec = _map(obj.get("spec"))
    hard = sorted(_map(spec.get("hard")))
    errors.extend(_validate_quota_list(spec.get("hard"), "spec.hard"))
    errors.extend(_validate_quota_scopes(spec, hard))
    errors.extend(_validate_scope_selector(spec, hard))
    errors.extend(_validate_resource_quota_status(obj.get("status")))
    if old is not None:
        old_scopes = {_str(s) for s in _list(_map(old.get("spec")).get("scopes"))}
        if {_str(s) for s in _list(spec.get("scopes"))} != old_scopes:
            errors.append(
                _invalid("spec.scopes", _go_scopes(_list(spec.get("scopes"))), "field is immutable")
            )
    return errors


def _validate_resource_quota_status_update(obj: Obj, old: Obj) -> Errors:
    errors = validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
    return errors + _validate_resource_quota_status(obj.get("status"))


def _validate_limit_type(value: str, path: str) -> Errors:
    errors = [_invalid(path, value, msg) for msg in is_qualified_name(value)]
    if not errors and "/" not in value and value not in _LIMIT_TYPES:
        errors.append(_invalid(path, value, "must be a standard limit type or fully qualified"))
    return errors


def _limit_quantities(
    item: Obj, key: str, *, limit_type: str, path: str, errors: Errors
) -> dict[str, Quantity]:
    """The named ResourceList of one LimitRangeItem, its names validated as upstream does."""
    quantities: dict[str, Quantity] = {}
    for name, raw in sorted(_map(item.get(key)).items()):
        entry = f"{path}.{key}[{name}]"
        if limit_type in ("Pod", "Container"):
            errors.extend(_validate_container_resource_name(name, entry))
        else:
            errors.extend(_validate_resource_name(name, entry))
        try:
            quantities[name] = Quantity.parse(raw)
        except InvalidQuantityError as exc:
            errors.append(_invalid(entry, raw, str(exc)))
    return quantities


# ValidateLimitRange's ordering checks, in upstream's order: (smaller, larger, the field named, the
# field whose value is shown, the message). Upstream shows min's or max's value for two of them.
_LIMIT_ORDER = (
    ("min", "max", "min", "min", "min value {min} is greater than max value {max}"),
    (
        "min",
        "defaultRequest",
        "defaultRequest",
        "defaultRequest",
        "min value {min} is greater than default request value {defaultRequest}",
    ),
    (
        "defaultRequest",
        "max",
        "defaultRequest",
        "defaultRequest",
        "default request value {defaultRequest} is greater than max value {max}",
    ),
    (
        "defaultRequest",
        "default",
        "defaultRequest",
        "defaultRequest",
        "default request value {defaultRequest} is greater than default limit value {default}",
    ),
    ("min", "default", "default", "min", "min value {min} is greater than default value {default}"),
    ("default", "max", "default", "max", "default value {default} is greater than max value {max}"),
)


def _check_limit_range_keys(
    *, path: str, bounds: dict[str, dict[str, Quantity]], keys: list[str], errors: Errors
) -> None:
    """The ordering rules of one item: min <= defaultRequest <= default <= max, ratios."""
    low, high = bounds["min"], bounds["max"]
    default, request, ratio = bounds["default"], bounds["defaultRequest"], bounds["maxLimitRequestRatio"]
    for k in keys:
        for smaller, larger, field, shown, message in _LIMIT_ORDER:
            if (
                k in bounds[smaller]
                and k in bounds[larger]
                and bounds[smaller][k].compare(bounds[larger][k]) > 0
            ):
                values = {smaller: bounds[smaller][k], larger: bounds[larger][k]}
                errors.append(
                    _invalid(f"{path}.{field}[{k}]", str(bounds[shown][k]), message.format(**values))
                )
        if k in ratio and ratio[k].value < 1:
            errors.append(
                _invalid(
                    f"{path}.maxLimitRequestRatio[{k}]", str(ratio[k]), f"ratio {ratio[k]} is less than 1"
                )
            )
        if k in ratio and k in low and k in high and low[k].value > 0:
            max_over_min = high[k].value / low[k].value
            if ratio[k].value > max_over_min:
                errors.append(
                    _invalid(
                        f"{path}.maxLimitRequestRatio[{k}]",
                        str(ratio[k]),
                        f"ratio {ratio[k]} is greater than max/min = {float(max_over_min):f}",
                    )
                )
        if (
            not _is_overcommit_allowed(k)
            and k in default
            and k in request
            and default[k].compare(request[k]) != 0
        ):
            errors.append(
                _invalid(
                    f"{path}.defaultRequest[{k}]",
                    str(request[k]),
                    f"default value {default[k]} must equal to defaultRequest value {request[k]} in {k}",
                )
            )


def _validate_limit_range(obj: Obj, old: Obj | None, rt: ResourceType) -> Errors:
    if old is not None:
        errors = validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
    else:
        errors = validate_object_meta(obj.get("metadata"), namespaced=True, name_fn=name_is_dns_subdomain)
    seen_types: set[str] = set()
    for i, item in enumerate(_maps(_map(obj.get("spec")).get("limits"))):
        path = f"spec.limits[{i}]"
        limit_type = _str(item.get("type"))
        errors.extend(_validate_limit_type(limit_type, f"{path}.type"))
        if limit_type in seen_types:
            errors.append(_duplicate(f"{path}.type", limit_type))
        seen_types.add(limit_type)
        bounds = {
            "max": _limit_quantities(item, "max", limit_type=limit_type, path=path, errors=errors),
            "min": _limit_quantities(item, "min", limit_type=limit_type, path=path, errors=errors),
            "default": {},
            "defaultRequest": {},
        }
        if limit_type == "Pod":
            for key in ("default", "defaultRequest"):
                if _map(item.get(key)):
                    errors.append(_forbidden(f"{path}.{key}", "may not be specified when `type` is 'Pod'"))
        else:
            bounds["default"] = _limit_quantities(
                item, "default", limit_type=limit_type, path=path, errors=errors
            )
            bounds["defaultRequest"] = _limit_quantities(
                item, "defaultRequest", limit_type=limit_type, path=path, errors=errors
            )
        if (
            limit_type == "PersistentVolumeClaim"
            and "storage" not in bounds["min"]
            and "storage" not in bounds["max"]
        ):
            errors.append(
                _required(
                    f"{path}.limits",
                    "either minimum or maximum storage value is required, but neither was provided",
                )
            )
        bounds["maxLimitRequestRatio"] = _limit_quantities(
            item, "maxLimitRequestRatio", limit_type=limit_type, path=path, errors=errors
        )
        keys = sorted({name for quantities in bounds.values() for name in quantities})
        _check_limit_range_keys(path=path, bounds=bounds, keys=keys, errors=errors)
    return errors


# --- admissionregistration.k8s.io: webhook configurations -----------------------------------------
# pkg/apis/admissionregistration/validation and k8s.io/apiserver/pkg/util/webhook/validation.go.
# CEL expressions (matchConditions here, a policy's validations below) are compiled with
# control.resources.admission_cel; one that does not compile is refused as upstream's
# convertCELErrorToValidationError reports it: Invalid, the expression as the value.

_WEBHOOK_FAILURE_POLICIES = ("Fail", "Ignore")
_WEBHOOK_MATCH_POLICIES = ("Equivalent", "Exact")
_WEBHOOK_NO_SIDE_EFFECTS = ("None", "NoneOnDryRun")
_WEBHOOK_SIDE_EFFECTS = ("None", "NoneOnDryRun", "Some", "Unknown")
_WEBHOOK_OPERATIONS = ("*", "CONNECT", "CREATE", "DELETE", "UPDATE")
_WEBHOOK_REINVOCATION_POLICIES = ("IfNeeded", "Never")
_WEBHOOK_SCOPES = ("*", "Cluster", "Namespaced")
ADMISSION_REVIEW_VERSIONS = ("v1", "v1beta1")  # AcceptedAdmissionReviewVersions
_WEBHOOK_URL_FORM = "; desired format: https://host[/path]"


def _go_typed_list(type_name: str, items: list[str]) -> _GoValue:
    """``[]admissionregistration.ValidationAction{"Deny", "Warn"}``: Go's %#v of a named string slice."""
    return _GoValue(f"[]{type_name}{{" + ", ".join(_go_quote(item) for item in items) + "}")


def _go_string(value: str) -> _GoValue:
    """A string as Go's %q prints it: CEL expressions and messages often hold quotes and
    newlines, which upstream shows escaped (``"object.name == \\"a\\""``)."""
    return _GoValue(_go_quote(value))


def _expression_errors(
    expression: str, path: str, *, returns: ExpressionType, params: bool, value: str | None = None
) -> Errors:
    """validateCELCondition: the compiler's complaint as Invalid at ``path``. ``value`` is what
    the error shows when upstream compiles a trimmed expression but reports the original."""
    detail = expression_error(expression, returns=returns, params=params)
    shown = _go_string(expression if value is None else value)
    return [_invalid(path, shown, detail)] if detail else []


def _validate_match_conditions(conditions: Any, path: str, *, params: bool) -> Errors:
    """validateMatchConditions: at most 64, each named (a qualified name, unique) with an
    expression that compiles to a bool."""
    items = _maps(conditions)
    errors: Errors = [_too_many(path, len(items), 64)] if len(items) > 64 else []
    seen: set[str] = set()
    for i, condition in enumerate(items):
        item = f"{path}[{i}]"
        expression = _str(condition.get("expression")).strip()
        if not expression:
            errors.append(_required(f"{item}.expression"))
        else:
            errors.extend(
                _expression_errors(
                    expression, f"{item}.expression", returns=ExpressionType.BOOL, params=params
                )
            )
        name = _str(condition.get("name"))
        if not name:
            errors.append(_required(f"{item}.name"))
            continue
        errors.extend(_validate_label_name(name, f"{item}.name"))
        if name in seen:
            errors.append(_duplicate(f"{item}.name", name))
        seen.add(name)
    return errors


def _is_fully_qualified_name(name: str, path: str) -> Errors:
    if not name:
        return [_required(path)]
    problems = is_dns1123_subdomain(name)
    if problems:
        return [_invalid(path, name, ",".join(problems))]
    if len(name.split(".")) < 3:
        return [_invalid(path, name, "should be a domain with at least three segments separated by dots")]
    return []


def _validate_webhook_rule_resources(resources: list[str], path: str) -> Errors:
    """validateResources: subresources allowed, wildcards not mixed with what they cover."""
    errors: Errors = [] if resources else [_required(path)]
    wildcard_subresources: set[str] = set()  # x/*
    wildcard_resources: set[str] = set()  # */x
    double_wildcard = single_wildcard = plain_resource = False
    for i, entry in enumerate(resources):
        if not entry:
            errors.append(_required(f"{path}[{i}]"))
            continue
        double_wildcard = double_wildcard or entry == "*/*"
        single_wildcard = single_wildcard or entry == "*"
        resource, slash, subresource = entry.partition("/")
        if not slash:
            plain_resource = entry != "*"
            continue
        if resource in wildcard_subresources:
            errors.append(
                _invalid(f"{path}[{i}]", entry, f"if '{resource}/*' is present, must not specify {entry}")
            )
        if subresource in wildcard_resources:
            errors.append(
                _invalid(f"{path}[{i}]", entry, f"if '*/{subresource}' is present, must not specify {entry}")
            )
        if subresource == "*":
            wildcard_subresources.add(resource)
        if resource == "*":
            wildcard_resources.add(subresource)
    if len(resources) > 1 and double_wildcard:
        errors.append(
            _invalid(path, go_string_list(resources), "if '*/*' is present, must not specify other resources")
        )
    if single_wildcard and plain_resource:
        errors.append(
            _invalid(
                path,
                go_string_list(resources),
                "if '*' is present, must not specify other resources without subresources",
            )
        )
    return errors


def _validate_webhook_rule(rule: Obj, path: str) -> Errors:
    """validateRuleWithOperations."""
    errors: Errors = []
    operations = [_str(op) for op in _list(rule.get("operations"))]
    if not operations:
        errors.append(_required(f"{path}.operations"))
    if len(operations) > 1 and "*" in operations:
        errors.append(
            _invalid(
                f"{path}.operations",
                _go_typed_list("admissionregistration.OperationType", operations),
                "if '*' is present, must not specify other operations",
            )
        )
    for i, operation in enumerate(operations):
        if operation not in _WEBHOOK_OPERATIONS:
            errors.append(_not_supported(f"{path}.operations[{i}]", operation, _WEBHOOK_OPERATIONS))
    groups = [_str(g) for g in _list(rule.get("apiGroups"))]
    if not groups:
        errors.append(_required(f"{path}.apiGroups"))
    if len(groups) > 1 and "*" in groups:
        errors.append(
            _invalid(
                f"{path}.apiGroups",
                go_string_list(groups),
                "if '*' is present, must not specify other API groups",
            )
        )
    versions = [_str(v) for v in _list(rule.get("apiVersions"))]
    if not versions:
        errors.append(_required(f"{path}.apiVersions"))
    if len(versions) > 1 and "*" in versions:
        errors.append(
            _invalid(
                f"{path}.apiVersions",
                go_string_list(versions),
                "if '*' is present, must not specify other API versions",
            )
        )
    errors.extend(_required(f"{path}.apiVersions[{i}]") for i, version in enumerate(versions) if not version)
    errors.extend(
        _validate_webhook_rule_resources([_str(r) for r in _list(rule.get("resources"))], f"{path}.resources")
    )
    scope = rule.get("scope")
    if scope is not None and scope not in _WEBHOOK_SCOPES:
        errors.append(_not_supported(f"{path}.scope", scope, _WEBHOOK_SCOPES))
    return errors


def _validate_webhook_url(url: str, path: str) -> Errors:
    """ValidateWebhookURL with forceHttps."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        return [_required(path, f"url must be a valid URL: {exc}{_WEBHOOK_URL_FORM}")]
    errors: Errors = []
    if parts.scheme != "https":
        errors.append(
            _invalid(path, parts.scheme, "'https' is the only allowed URL scheme" + _WEBHOOK_URL_FORM)
        )
    host = parts.netloc.rpartition("@")[2]
    if not host:
        errors.append(_invalid(path, host, "host must be provided" + _WEBHOOK_URL_FORM))
    if "@" in parts.netloc:
        errors.append(
            _invalid(path, parts.netloc.rpartition("@")[0], "user information is not permitted in the URL")
        )
    if parts.fragment:
        errors.append(_invalid(path, parts.fragment, "fragments are not permitted in the URL"))
    if parts.query:
        errors.append(_invalid(path, parts.query, "query parameters are not permitted in the URL"))
    return errors


def _validate_webhook_service(service: Obj, path: str) -> Errors:
    """ValidateWebhookService."""
    errors: Errors = []
    if not _str(service.get("name")):
        errors.append(_required(f"{path}.name", "service name is required"))
    if not _str(service.get("namespace")):
        errors.append(_required(f"{path}.namespace", "service namespace is required"))
    port = _int(service.get("port"))
    port_errors = is_valid_port_num(port)
    if port_errors:
        errors.append(_invalid(f"{path}.port", port, "port is not valid: " + ", ".join(port_errors)))
    url_path = service.get("path")
    if not isinstance(url_path, str) or url_path in ("", "/"):
        return errors
    if url_path == "//":
        return [*errors, _invalid(f"{path}.path", url_path, "segment[0] may not be empty")]
    if not url_path.startswith("/"):
        errors.append(_invalid(f"{path}.path", url_path, "must start with a '/'"))
    to_check = url_path[1:]
    if to_check.endswith("/"):
        to_check = to_check[:-1]
    for i, step in enumerate(to_check.split("/")):
        if not step:
            errors.append(_invalid(f"{path}.path", url_path, f"segment[{i}] may not be empty"))
            continue
        errors.extend(
            _invalid(f"{path}.path", url_path, f"segment[{i}]: {msg}") for msg in is_dns1123_subdomain(step)
        )
    return errors


def _validate_webhook(
    webhook: Obj, path: str, *, mutating: bool, no_side_effects: bool, match_conditions: bool
) -> Errors:
    """validate{Validating,Mutating}Webhook; ``match_conditions`` False skips them (an update
    that left every webhook's matchConditions as they were)."""
    errors = _is_fully_qualified_name(_str(webhook.get("name")), f"{path}.name")
    for i, rule in enumerate(_maps(webhook.get("rules"))):
        errors.extend(_validate_webhook_rule(rule, f"{path}.rules[{i}]"))
    for key, supported in (
        ("failurePolicy", _WEBHOOK_FAILURE_POLICIES),
        ("matchPolicy", _WEBHOOK_MATCH_POLICIES),
    ):
        value = webhook.get(key)
        if value is not None and value not in supported:
            errors.append(_not_supported(f"{path}.{key}", value, supported))
    allowed = _WEBHOOK_NO_SIDE_EFFECTS if no_side_effects else _WEBHOOK_SIDE_EFFECTS
    side_effects = webhook.get("sideEffects")
    if side_effects is None:
        errors.append(_required(f"{path}.sideEffects", f"must specify one of {', '.join(allowed)}"))
    elif side_effects not in allowed:
        errors.append(_not_supported(f"{path}.sideEffects", side_effects, allowed))
    timeout = webhook.get("timeoutSeconds")
    if timeout is not None and not 1 <= _int(timeout) <= 30:
        errors.append(
            _invalid(
                f"{path}.timeoutSeconds", _int(timeout), "the timeout value must be between 1 and 30 seconds"
            )
        )
    for key in ("namespaceSelector", "objectSelector"):
        if webhook.get(key) is not None:
            errors.extend(validate_label_selector(webhook.get(key), f"{path}.{key}"))
    reinvocation = webhook.get("reinvocationPolicy")
    if mutating and reinvocation is not None and reinvocation not in _WEBHOOK_REINVOCATION_POLICIES:
        errors.append(
            _not_supported(f"{path}.reinvocationPolicy", reinvocation, _WEBHOOK_REINVOCATION_POLICIES)
        )
    client_config = _map(webhook.get("clientConfig"))
    url, service = client_config.get("url"), client_config.get("service")
    if (url is None) == (service is None):
        errors.append(_required(f"{path}.clientConfig", "exactly one of url or service is required"))
    elif url is not None:
        errors.extend(_validate_webhook_url(_str(url), f"{path}.clientConfig.url"))
    else:
        errors.extend(_validate_webhook_service(_map(service), f"{path}.clientConfig.service"))
    if match_conditions:
        errors.extend(
            _validate_match_conditions(
                webhook.get("matchConditions"), f"{path}.matchConditions", params=False
            )
        )
    return errors


def _validate_admission_review_versions(
    versions: list[Any], path: str, *, require_recognized: bool
) -> Errors:
    if not versions:
        return [_required(path, f"must specify one of {', '.join(ADMISSION_REVIEW_VERSIONS)}")]
    errors: Errors = []
    seen: set[str] = set()
    for i, version in enumerate(_str(v) for v in versions):
        if version in seen:
            errors.append(_invalid(f"{path}[{i}]", version, "duplicate version"))
            continue
        seen.add(version)
        errors.extend(_invalid(f"{path}[{i}]", version, msg) for msg in is_dns1035_label(version))
    if require_recognized and not seen & set(ADMISSION_REVIEW_VERSIONS):
        errors.append(
            _invalid(
                path,
                go_string_list([_str(v) for v in versions]),
                f"must include at least one of {', '.join(ADMISSION_REVIEW_VERSIONS)}",
            )
        )
    return errors


def _webhook_configuration_validator(*, mutating: bool) -> Validator:
    """Validate{Mutating,Validating}WebhookConfiguration[Update]: on update, the rules that
    the stored object already broke (side effects, unknown review versions, duplicate
    names) are not enforced, and matchConditions are checked only if they changed, as
    upstream's update options relax them."""

    def validate_configuration(obj: Obj, old: Obj | None, rt: ResourceType) -> Errors:
        errors: Errors = []
        if old is not None:
            errors.extend(validate_object_meta_update(obj.get("metadata"), old.get("metadata")))
        errors.extend(
            validate_object_meta(obj.get("metadata"), namespaced=False, name_fn=name_is_dns_subdomain)
        )
        old_hooks = _maps(old.get("webhooks")) if old is not None else []
        no_side_effects = all(h.get("sideEffects") in _WEBHOOK_NO_SIDE_EFFECTS for h in old_hooks)
        require_recognized = all(
            not h.get("admissionReviewVersions")
            or set(_list(h.get("admissionReviewVersions"))) & set(ADMISSION_REVIEW_VERSIONS)
            for h in old_hooks
        )
        old_names = [h.get("name") for h in old_hooks]
        unique_names = len(old_names) == len(set(old_names))
        hooks = _maps(obj.get("webhooks"))
        match_conditions = old is None or [h.get("matchConditions") for h in hooks] != [
            h.get("matchConditions") for h in old_hooks
        ]
        seen: set[str] = set()
        for i, webhook in enumerate(hooks):
            path = f"webhooks[{i}]"
            errors.extend(
                _validate_webhook(
                    webhook,
                    path,
                    mutating=mutating,
                    no_side_effects=no_side_effects,
                    match_conditions=match_conditions,
                )
            )
            errors.extend(
                _validate_admission_review_versions(
                    _list(webhook.get("admissionReviewVersions")),
                    f"{path}.admissionReviewVersions",
                    require_recognized=require_recognized,
                )
            )
            name = _str(webhook.get("name"))
            if unique_names and name:
                if name in seen:
                    errors.append(_duplicate(f"{path}.name", name))
                seen.add(name)
        return errors

    return validate_configuration


_validate_mutating_webhooks = _webhook_configuration_validator(mutating=True)
_validate_validating_webhooks = _webhook_configuration_validator(mutating=False)


# --- admissionregistration.k8s.io: ValidatingAdmissionPolicies and their bindings -------------------
# pkg/apis/admissionregistration/validation (validateValidatingAdmissionPolicySpec and friends).
# Unlike the webhook configurations' fields, failurePolicy, matchPolicy and the selectors are
# required here: defaulting fills them, so only a null written through a patch reaches these.
# One upstream quirk is kept because kubectl shows it: a validation's reason may not be
# Unauthorized although the API documentation lists it.

_POLICY_REASONS = ("Forbidden", "Invalid", "RequestEntityTooLarge")
_VALIDATION_ACTIONS = ("Audit", "Deny", "Warn")
_PARAMETER_NOT_FOUND_ACTIONS = ("Deny", "Allow")
_MAX_AUDIT_ANNOTATIONS = 20
_MAX_AUDIT_ANNOTATION_VALUE_EXPRESSION_LENGTH = 5 * 1024
_CEL_IDENTIFIER_RE = re.compile(r"[_a-zA-Z][_a-zA-Z0-9]*")
_CEL_RESERVED = frozenset(
    [
        "true",
        "false",
        "null",
        "in",
        "as",
        "break",
        "const",
        "continue",
        "else",
        "for",
        "function",
        "if",
        "import",
        "let",
        "loop",
        "package",
        "namespace",
        "return",
        "var",
        "void",
        "while",
    ]
)
_LINE_BREAK_RE = re.compile(r"[\n\r]+")  # the newline characters of CEL's grammar


def _validate_param_kind(param_kind: Obj, path: str) -> Errors:
    """validateParamKind: apiVersion as an APIService's group and version, kind a DNS-1035
    label in any case."""
    errors: Errors = []
    api_version = _str(param_kind.get("apiVersion"))
    if not api_version:
        errors.append(_required(f"{path}.apiVersion"))
    elif api_version.count("/") > 1:
        errors.append(
            _invalid(f"{path}.apiVersion", api_version, f"unexpected GroupVersion string: {api_version}")
        )
    else:
        group, _, version = api_version.rpartition("/")
        problems = is_dns1123_subdomain(group) if group else []
        if problems:
            errors.append(_invalid(f"{path}.apiVersion", group, ",".join(problems)))
        if not version:
            errors.append(_invalid(f"{path}.apiVersion", api_version, "version must be specified"))
        elif is_dns1035_label(version):
            errors.append(_invalid(f"{path}.apiVersion", version, ",".join(is_dns1035_label(version))))
    kind = _str(param_kind.get("kind"))
    if not kind:
        errors.append(_required(f"{path}.kind"))
    elif is_dns1035_label(kind.lower()):
        detail = "may have mixed case, but should otherwise match: " + ",".join(
            is_dns1035_label(kind.lower())
        )
        errors.append(_invalid(f"{path}.kind", kind, detail))
    return errors


def _validate_named_rule(rule: Obj, path: str) -> Errors:
    """validateNamedRuleWithOperations: unique path-segment resourceNames, then the rule."""
    errors: Errors = []
    seen: set[str] = set()
    for i, name in enumerate(_str(n) for n in _list(rule.get("resourceNames"))):
        item = f"{path}.resourceNames[{i}]"
        errors.extend(_invalid(item, name, msg) for msg in is_valid_path_segment_name(name))
        if name in seen:
            errors.append(_duplicate(item, name))
        seen.add(name)
    return errors + _validate_webhook_rule(rule, path)


def _validate_match_resources(match: Obj, path: str) -> Errors:
    """validateMatchResources (selectors validated strictly: the type postdates the lenient rule)."""
    errors: Errors = []
    policy = match.get("matchPolicy")
    if policy is None:
        errors.append(_required(f"{path}.matchPolicy"))
    elif policy not in _WEBHOOK_MATCH_POLICIES:
        errors.append(_not_supported(f"{path}.matchPolicy", policy, _WEBHOOK_MATCH_POLICIES))
    for key in ("namespaceSelector", "objectSelector"):
        if match.get(key) is None:
            errors.append(_required(f"{path}.{key}"))
        else:
            errors.extend(validate_label_selector(match.get(key), f"{path}.{key}"))
    for key in ("resourceRules", "excludeResourceRules"):
        for i, rule in enumerate(_maps(match.get(key))):
            errors.extend(_validate_named_rule(rule, f"{path}.{key}[{i}]"))
    return errors


def _validate_variable(variable: Obj, path: str, *, params: bool) -> Errors:
    """validateVariable: a CEL identifier naming an expression of any type (names need not be
    unique: upstream does not check)."""
    errors: Errors = []
    name = _str(variable.get("name"))
    if not name.strip():
        errors.append(_required(f"{path}.name", "name is not specified"))
    elif not _CEL_IDENTIFIER_RE.fullmatch(name) or name in _CEL_RESERVED:
        errors.append(_invalid(f"{path}.name", _go_string(name), "name is not a valid CEL identifier"))
    expression = _str(variable.get("expression"))
    if not expression.strip():
        errors.append(_required(f"{path}.expression", "expression is not specified"))
    else:
        errors.extend(
            _expression_errors(expression, f"{path}.expression", returns=ExpressionType.ANY, params=params)
        )
    return errors


def _validate_policy_validation(validation: Obj, path: str, *, params: bool) -> Errors:
    """validateValidation: a bool expression, an optional string messageExpression, a one-line
    message and a supported reason."""
    errors: Errors = []
    expression = _str(validation.get("expression"))
    if not expression.strip():
        errors.append(_required(f"{path}.expression", "expression is not specified"))
    else:
        errors.extend(
            _expression_errors(expression, f"{path}.expression", returns=ExpressionType.BOOL, params=params)
        )
    message_expression = _str(validation.get("messageExpression"))
    if message_expression and not message_expression.strip():
        errors.append(
            _invalid(
                f"{path}.messageExpression", _go_string(message_expression), "must be non-empty if specified"
            )
        )
    elif message_expression:
        errors.extend(
            _expression_errors(
                message_expression, f"{path}.messageExpression", returns=ExpressionType.STRING, params=params
            )
        )
    message = _str(validation.get("message"))
    if message and not message.strip():
        errors.append(
            _invalid(f"{path}.message", _go_string(message), "message must be non-empty if specified")
        )
    elif _LINE_BREAK_RE.search(message.strip()):
        errors.append(
            _invalid(f"{path}.message", _go_string(message), "message must not contain line breaks")
        )
    reason = validation.get("reason")
    if reason is not None and reason not in _POLICY_REASONS:
        errors.append(_not_supported(f"{path}.reason", reason, _POLICY_REASONS))
    return errors


def _validate_audit_annotation(annotation: Obj, path: str, *, policy_name: str, params: bool) -> Errors:
    """validateAuditAnnotation: ``<policy name>/<key>`` is the audit annotation's name, so it
    must be a qualified name; the value expression yields a string or null."""
    key = _str(annotation.get("key"))
    if policy_name:
        errors = _validate_label_name(f"{policy_name}/{key}", f"{path}.key")
    else:
        errors = [_invalid(f"{path}.key", key, "requires metadata.name be non-empty")]
    value_expression = _str(annotation.get("valueExpression"))
    trimmed = value_expression.strip()
    if not trimmed:
        errors.append(_required(f"{path}.valueExpression", "valueExpression is not specified"))
    elif len(trimmed.encode()) > _MAX_AUDIT_ANNOTATION_VALUE_EXPRESSION_LENGTH:
        errors.append(
            _required(
                f"{path}.valueExpression",
                f"must not exceed {_MAX_AUDIT_ANNOTATION_VALUE_EXPRESSION_LENGTH} bytes in length",
            )
        )
    else:
        errors.extend(
            _expression_errors(
                trimmed,
                f"{path}.valueExpression",
                returns=ExpressionType.STRING_OR_NULL,
                params=params,
                value=value_expression,
            )
        )
    return errors


def _go_audit_annotations(annotations: list[Obj]) -> _GoValue:
    """Go's %#v of the internal []AuditAnnotation, as the too-many error prints it."""
    items = (
        "admissionregistration.AuditAnnotation{"
        f"Key:{_go_quote(_str(a.get('key')))}, ValueExpression:{_go_quote(_str(a.get('valueExpression')))}}}"
        for a in annotations
    )
    return _GoValue("[]admissionregistration.AuditAnnotation{" + ", ".join(items) + "}")


def _validate_policy_spec(spec: Obj, *, policy_name: str, match_conditions: bool) -> Errors:
    """validateValidatingAdmissionPolicySpec. Expressions may use ``params`` only when the
    policy declares a paramKind."""
    errors: Errors = []
    failure_policy = spec.get("failurePolicy")
    if failure_policy is None:
        errors.append(_required("spec.failurePolicy"))
    elif failure_policy not in _WEBHOOK_FAILURE_POLICIES:
        errors.append(_not_supported("spec.failurePolicy", failure_policy, _WEBHOOK_FAILURE_POLICIES))
    params = spec.get("paramKind") is not None
    if params:
        errors.extend(_validate_param_kind(_map(spec.get("paramKind")), "spec.paramKind"))
    constraints = spec.get("matchConstraints")
    if constraints is None:
        errors.append(_required("spec.matchConstraints"))
    else:
        errors.extend(_validate_match_resources(_map(constraints), "spec.matchConstraints"))
        # at least one resourceRule gives the expressions a type to check against
        if not _list(_map(constraints).get("resourceRules")):
            errors.append(_required("spec.matchConstraints.resourceRules"))
    if match_conditions:
        errors.extend(
            _validate_match_conditions(spec.get("matchConditions"), "spec.matchConditions", params=params)
        )
    for i, variable in enumerate(_maps(spec.get("variables"))):
        errors.extend(_validate_variable(variable, f"spec.variables[{i}]", params=params))
    validations = _maps(spec.get("validations"))
    annotations = _maps(spec.get("auditAnnotations"))
    if not validations and not annotations:
        detail = "validations or auditAnnotations must contain at least one item"
        return [*errors, _required("spec.validations", detail), _required("spec.auditAnnotations", detail)]
    for i, validation in enumerate(validations):
        errors.extend(_validate_policy_validation(validation, f"spec.validations[{i}]", params=params))
    if len(annotations) > _MAX_AUDIT_ANNOTATIONS:
        errors.append(
            _invalid(
                "spec.auditAnnotations",
                _go_audit_annotations(annotations),
                f"must not have more than {_MAX_AUDIT_ANNOTATIONS} auditAnnotations",
            )
        )
    keys: set[str] = set()
    for i, annotation in enumerate(annotations):
        path = f"spec.auditAnnotations[{i}]"
        errors.extend(_validate_audit_annotation(annotation, path, policy_name=policy_name, params=params))
        key = _str(annotation.get("key"))
        if key in keys:
            errors.append(_duplicate(f"{path}.key", key))
        keys.add(key)
    return errors


def _validate_validating_admission_policy(obj: Obj, old: Obj | None, rt: ResourceType) -> Errors:
    """ValidateValidatingAdmissionPolicy[Update]. On update the matchConditions are checked only
    when they or the paramKind changed (upstream's ignoreMatchConditions)."""
    errors: Errors = []
    if old is not None:
        errors.extend(validate_object_meta_update(obj.get("metadata"), old.get("metadata")))
    metadata = obj.get("metadata")
    errors.extend(validate_object_meta(metadata, namespaced=False, name_fn=name_is_dns_subdomain))
    spec = _map(obj.get("spec"))
    old_spec = _map(old.get("spec")) if old is not None else None
    match_conditions = old_spec is None or any(
        spec.get(key) != old_spec.get(key) for key in ("paramKind", "matchConditions")
    )
    policy_name = _str(_map(metadata).get("name"))
    return errors + _validate_policy_spec(spec, policy_name=policy_name, match_conditions=match_conditions)


def _validate_validating_admission_policy_status(obj: Obj, old: Obj) -> Errors:
    """ValidateValidatingAdmissionPolicyStatusUpdate: the type checker's warnings and the
    conditions. A warning's fieldRef must be present; it is not parsed as a JSONPath (upstream
    runs client-go's parser on it), as the only writer is the type-checking controller."""
    errors = validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
    status = _map(obj.get("status"))
    warnings = _maps(_map(status.get("typeChecking")).get("expressionWarnings"))
    for i, warning in enumerate(warnings):
        path = f"status.typeChecking.expressionWarnings[{i}]"
        if not _str(warning.get("warning")):
            errors.append(_required(f"{path}.warning"))
        if not _str(warning.get("fieldRef")).strip():
            errors.append(_required(f"{path}.fieldRef"))
    return errors + _validate_conditions(status.get("conditions"), "status.conditions")


def _validate_param_ref(param_ref: Obj, path: str) -> Errors:
    """validateParamRef: a name or a selector (not both) and what to do when no param is found."""
    errors: Errors = []
    name = _str(param_ref.get("name"))
    selector = param_ref.get("selector")
    exclusive = "name and selector are mutually exclusive"
    if name:
        errors.extend(_invalid(f"{path}.name", name, msg) for msg in is_valid_path_segment_name(name))
        if selector is not None:
            errors.append(_forbidden(f"{path}.name", exclusive))
    if selector is not None:
        errors.extend(validate_label_selector(selector, f"{path}.selector"))
        if name:
            errors.append(_forbidden(f"{path}.selector", exclusive))
    if not name and selector is None:
        errors.append(_required(path, "one of name or selector must be specified"))
    action = param_ref.get("parameterNotFoundAction")
    if action is None or action == "":
        errors.append(_required(f"{path}.parameterNotFoundAction"))
    elif action not in _PARAMETER_NOT_FOUND_ACTIONS:
        errors.append(_not_supported(f"{path}.parameterNotFoundAction", action, _PARAMETER_NOT_FOUND_ACTIONS))
    return errors


def _validate_validation_actions(actions: list[Any], path: str) -> Errors:
    """validateValidationActions: unique, supported, never Deny with Warn, at least one."""
    errors: Errors = []
    seen: set[str] = set()
    for i, action in enumerate(_str(a) for a in actions):
        if action not in _VALIDATION_ACTIONS:
            errors.append(_not_supported(f"{path}[{i}]", action, _VALIDATION_ACTIONS))
        if action in seen:
            errors.append(_duplicate(f"{path}[{i}]", action))
        seen.add(action)
    if {"Deny", "Warn"} <= seen:
        errors.append(
            _invalid(
                path,
                _go_typed_list("admissionregistration.ValidationAction", [_str(a) for a in actions]),
                "must not contain both Deny and Warn (repeating the same validation failure "
                "information in the API response and headers serves no purpose)",
            )
        )
    if not seen:
        errors.append(_required(path, "at least one validation action is required"))
    return errors


def _validate_validating_admission_policy_binding(obj: Obj, old: Obj | None, rt: ResourceType) -> Errors:
    """ValidateValidatingAdmissionPolicyBinding[Update] (an update is checked as a create)."""
    errors: Errors = []
    if old is not None:
        errors.extend(validate_object_meta_update(obj.get("metadata"), old.get("metadata")))
    errors.extend(validate_object_meta(obj.get("metadata"), namespaced=False, name_fn=name_is_dns_subdomain))
    spec = _map(obj.get("spec"))
    policy_name = _str(spec.get("policyName"))
    if not policy_name:
        errors.append(_required("spec.policyName"))
    else:
        errors.extend(
            _invalid("spec.policyName", policy_name, msg) for msg in name_is_dns_subdomain(policy_name, False)
        )
    if spec.get("paramRef") is not None:
        errors.extend(_validate_param_ref(_map(spec.get("paramRef")), "spec.paramRef"))
    if spec.get("matchResources") is not None:
        errors.extend(_validate_match_resources(_map(spec.get("matchResources")), "spec.matchResources"))
    return errors + _validate_validation_actions(
        _list(spec.get("validationActions")), "spec.validationActions"
    )


# --- certificates.k8s.io ---------------------------------------------------------------------------------


def validate_signer_name(path: str, signer: str) -> Errors:
    """ValidateSignerName (pkg/apis/core/validation): ``<domain>/<path>``, the domain made of DNS-1123
    labels with at least one dot, the path of DNS-1123 subdomains, 571 characters at most."""
    if not signer:
        return [_required(path)]
    segments = signer.split("/")
    if len(segments) != 2:
        return [
            _invalid(
                path,
                signer,
                "must be a fully qualified domain and path of the form 'example.com/signer-name'",
            )
        ]
    domain, name = segments
    errors: Errors = []
    if len(domain) > 253:
        errors.append(_too_long(path, 253))
    labels = domain.split(".")
    for label in labels:
        problems = is_dns1123_label(label)
        if problems:
            errors += [_invalid(path, domain, f"validating label {_go_quote(label)}: {p}") for p in problems]
            break
    if len(labels) < 2:
        errors.append(
            _invalid(path, domain, "should be a domain with at least two segments separated by dots")
        )
    for label in name.split("."):
        problems = is_dns1123_subdomain(label)
        if problems:
            errors += [_invalid(path, name, f"validating label {_go_quote(label)}: {p}") for p in problems]
            break
    max_length = 253 + (253 + 63 + 1) + 1
    if len(signer) > max_length:
        errors.append(_too_long(path, max_length))
    return errors


def _validate_certificate_signing_request(obj: Obj, old: Obj | None, rt: ResourceType) -> Errors:
    """ObjectMeta here (any path-segment name), the kind's own rules in control.resources.certificates."""
    if old is None:
        errors = validate_object_meta(obj.get("metadata"), namespaced=False, name_fn=name_is_path_segment)
    else:
        errors = validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
    return errors + certificates.validate(obj, old, signer_name=validate_signer_name)


def _validate_certificate_signing_request_status(obj: Obj, old: Obj) -> Errors:
    errors = certificates.validate_status_update(obj, old, signer_name=validate_signer_name)
    return errors + validate_object_meta_update(obj.get("metadata"), old.get("metadata"))


def validate_approval_update(obj: Obj, *, old: Obj) -> list[FieldError]:
    """Every error upstream would report for a write to ``certificatesigningrequests/<name>/approval``."""
    errors = certificates.validate_approval_update(obj, old, signer_name=validate_signer_name)
    return errors + validate_object_meta_update(obj.get("metadata"), old.get("metadata"))


# --- dispatch and public entry points ------------------------------------------------------------------

Validator = Callable[[Obj, "Obj | None", ResourceType], Errors]
StatusValidator = Callable[[Obj, Obj], Errors]

_VALIDATORS: dict[tuple[str, str], Validator] = {
    ("", "Binding"): _validate_binding,
    ("", "ConfigMap"): _validate_config_map,
    ("", "Endpoints"): _validate_endpoints,
    ("", "Event"): _validate_event,
    ("", "Namespace"): _validate_namespace,
    ("", "Node"): _validate_node,
    ("", "PersistentVolume"): _validate_persistent_volume,
    ("", "LimitRange"): _validate_limit_range,
    ("", "PersistentVolumeClaim"): _validate_persistent_volume_claim,
    ("", "Pod"): _validate_pod,
    ("", "PodTemplate"): _validate_pod_template,
    ("", "ReplicationController"): _validate_replication_controller,
    ("", "ResourceQuota"): _validate_resource_quota,
    ("", "Secret"): _validate_secret,
    ("", "Service"): _validate_service,
    ("", "ServiceAccount"): _validate_service_account,
    ("apiregistration.k8s.io", "APIService"): _validate_api_service,
    ("apps", "ControllerRevision"): _validate_controller_revision,
    ("apps", "DaemonSet"): _validate_daemon_set,
    ("apps", "Deployment"): _validate_deployment,
    ("apps", "ReplicaSet"): _validate_replica_set,
    ("apps", "StatefulSet"): _validate_stateful_set,
    ("events.k8s.io", "Event"): _validate_event,
    ("autoscaling", "HorizontalPodAutoscaler"): _validate_hpa,
    ("batch", "CronJob"): _validate_cron_job,
    ("batch", "Job"): _validate_job,
    ("networking.k8s.io", "Ingress"): _validate_ingress,
    ("networking.k8s.io", "IngressClass"): _validate_ingress_class,
    ("networking.k8s.io", "NetworkPolicy"): _validate_network_policy,
    ("node.k8s.io", "RuntimeClass"): _validate_runtime_class,
    ("policy", "PodDisruptionBudget"): _validate_pod_disruption_budget,
    (RBAC_GROUP, "ClusterRole"): _validate_role,
    (RBAC_GROUP, "ClusterRoleBinding"): _validate_role_binding,
    (RBAC_GROUP, "Role"): _validate_role,
    (RBAC_GROUP, "RoleBinding"): _validate_role_binding,
    ("storage.k8s.io", "StorageClass"): _validate_storage_class,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): _validate_crd,
    ("scheduling.k8s.io", "PriorityClass"): _validate_priority_class,
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"): _validate_mutating_webhooks,
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"): _validate_validating_webhooks,
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"): _validate_validating_admission_policy,
    (
        "admissionregistration.k8s.io",
        "ValidatingAdmissionPolicyBinding",
    ): _validate_validating_admission_policy_binding,
    ("coordination.k8s.io", "Lease"): _validate_lease,
    (certificates.GROUP, "CertificateSigningRequest"): _validate_certificate_signing_request,
    ("discovery.k8s.io", "EndpointSlice"): _validate_endpoint_slice,
    (AUTHORIZATION_GROUP, "SubjectAccessReview"): _validate_subject_access_review,
    (AUTHORIZATION_GROUP, "SelfSubjectAccessReview"): _validate_subject_access_review,
    (AUTHORIZATION_GROUP, "LocalSubjectAccessReview"): _validate_subject_access_review,
    (AUTHORIZATION_GROUP, "SelfSubjectRulesReview"): _validate_without_rules,
    (AUTHENTICATION_GROUP, "SelfSubjectReview"): _validate_without_rules,
    (AUTHENTICATION_GROUP, "TokenReview"): _validate_without_rules,
}


def _name_function(rt: ResourceType) -> NameFn:
    return _NAME_FUNCTIONS.get(rt.name_rule, name_is_dns_subdomain)


def _validate_generic(obj: Obj, old: Obj | None, rt: ResourceType) -> Errors:
    """Kinds without rules of their own (custom resources): ObjectMeta, then the values the
    CRD's schema constrains."""
    if old is not None:
        errors = validate_object_meta_update(obj.get("metadata"), old.get("metadata"), kube_finalizers=False)
    else:
        errors = validate_object_meta(
            obj.get("metadata"), namespaced=rt.namespaced, name_fn=_name_function(rt), kube_finalizers=False
        )
    if rt.schema is not None:
        errors.extend(validate_custom_resource(rt.schema, obj))
        errors.extend(validate_rules(rt.schema, obj, old=old, found=errors))
    return errors


def _validate_custom_resource_status(rt: ResourceType, obj: Obj, old: Obj) -> Errors:
    """Upstream's status strategy checks the whole object: its schema and its CEL rules."""
    errors = validate_object_meta_update(obj.get("metadata"), old.get("metadata"), kube_finalizers=False)
    if rt.schema is not None:
        errors.extend(validate_custom_resource(rt.schema, obj))
        errors.extend(validate_rules(rt.schema, obj, old=old, found=errors))
    return errors


def validate(rt: ResourceType, obj: Obj, *, old: Obj | None = None) -> list[FieldError]:
    """Every error upstream would report for writing ``obj`` (``old`` given on update).

    ``obj`` is the decoded, defaulted request body; an empty list means it is valid.
    """
    validator = _VALIDATORS.get((rt.group, rt.kind), _validate_generic)
    return validator(obj, old, rt)


def _status_validator(rt: ResourceType) -> StatusValidator:
    key = (rt.group, rt.kind)
    if key == ("", "Pod"):
        return _validate_pod_status_update
    if key == ("", "Namespace"):
        return _validate_namespace_status
    if key == ("", "Node"):
        return _validate_node_update
    if key == ("", "Service"):
        return _validate_service_status
    if key == ("", "ResourceQuota"):
        return _validate_resource_quota_status_update
    if key == ("batch", "Job"):
        return _validate_job_status
    if key == ("networking.k8s.io", "Ingress"):
        return _validate_ingress_status
    if key == ("policy", "PodDisruptionBudget"):
        return _validate_pdb_status
    if key == ("autoscaling", "HorizontalPodAutoscaler"):
        return _validate_hpa_status
    if key == ("apiregistration.k8s.io", "APIService"):
        return _validate_api_service_status
    if key == (certificates.GROUP, "CertificateSigningRequest"):
        return _validate_certificate_signing_request_status
    if key == ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"):
        return _validate_validating_admission_policy_status
    if key == ("", "ReplicationController") or (
        rt.group == "apps" and rt.kind in ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet")
    ):
        return lambda obj, old: _validate_workload_status(rt, obj, old)
    if key not in _VALIDATORS and rt.schema is not None:
        return lambda obj, old: _validate_custom_resource_status(rt, obj, old)
    kube = rt.group not in ("apiextensions.k8s.io", "apiregistration.k8s.io") and key in _VALIDATORS
    return lambda obj, old: validate_object_meta_update(
        obj.get("metadata"), old.get("metadata"), kube_finalizers=kube
    )


def _validate_service_status(obj: Obj, old: Obj) -> Errors:
    errors = validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
    is_lb = _str(_map(obj.get("spec")).get("type")) == "LoadBalancer"
    return errors + _validate_load_balancer_status(
        _map(obj.get("status")).get("loadBalancer"), "status.loadBalancer", is_lb=is_lb
    )


def _validate_ingress_status(obj: Obj, old: Obj) -> Errors:
    errors = validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
    return errors + _validate_load_balancer_status(
        _map(obj.get("status")).get("loadBalancer"), "status.loadBalancer", is_lb=True
    )


def validate_status_update(rt: ResourceType, obj: Obj, *, old: Obj) -> list[FieldError]:
    """Every error upstream would report for a write to ``<kind>/status``.

    ``obj`` is the stored object with the new status; only metadata and status are checked.
    """
    return _status_validator(rt)(obj, old)
