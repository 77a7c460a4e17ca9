"""Value validation of custom resources against their CRD's ``openAPIV3Schema``.

Decoding already checks types and prunes unknown fields (``control.resources.schema``); this
module checks the *values*, as the apiextensions-apiserver's schema validator (kube-openapi's
``validate`` package) does: ``required``, ``enum``, ``minimum``/``maximum`` (and their exclusive
forms), ``multipleOf``, ``minLength``/``maxLength``, ``pattern``, ``format``, ``minItems``/
``maxItems``, ``uniqueItems``, ``minProperties``/``maxProperties``, the list-map and set
uniqueness of ``x-kubernetes-list-type``, and ``allOf``/``anyOf``/``oneOf``/``not``.

Errors are worded as upstream turns kube-openapi's results into field errors
(``kubeOpenAPIResultToFieldErrors``): ``spec.replicas: Invalid value: -1: spec.replicas in body
should be greater than or equal to 0``, ``spec.size: Unsupported value: "huge": supported values:
"small", "large"``, ``spec.name: Required value``, ``spec.tags: Too many: 4: must have at most 3
items``. ``metadata`` is left to ObjectMeta validation, as upstream does; CEL rules
(``x-kubernetes-validations``) are ``control.resources.crd_cel``'s.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
import uuid
from collections.abc import Callable, Mapping
from datetime import date, datetime
from functools import lru_cache
from typing import Any

import orjson

from control.resources.registry import FieldError, field_error

Schema = Mapping[str, Any]


def validate_custom_resource(schema: Schema, obj: Any) -> list[FieldError]:
    """Every value error of ``obj`` (a decoded, pruned custom resource) under ``schema``."""
    errors: list[FieldError] = []
    if not isinstance(obj, dict):
        return errors
    properties = schema.get("properties") or {}
    for name in schema.get("required") or ():
        if name not in obj and name not in ("apiVersion", "kind", "metadata"):
            errors.append(field_error("FieldValueRequired", name))
    for name, value in obj.items():
        if name in ("apiVersion", "kind", "metadata"):
            continue
        child = properties.get(name)
        if child is not None:
            _check(value, child, name, errors)
    return errors


def _check(value: Any, schema: Schema, path: str, errors: list[FieldError]) -> None:
    if value is None:
        return  # nulls are a type question (nullable), answered while decoding
    _check_here(value, schema, path, errors)
    if isinstance(value, dict):
        _check_object(value, schema, path, errors)
    elif isinstance(value, list):
        _check_array(value, schema, path, errors)
    _check_composition(value, schema, path, errors)


def _check_here(value: Any, schema: Schema, path: str, errors: list[FieldError]) -> None:
    """The keywords that look at the value itself (not its children)."""
    enum = schema.get("enum")
    if enum is not None and not any(_same(value, allowed) for allowed in enum):
        errors.append(
            field_error(
                "FieldValueNotSupported",
                path,
                "supported values: " + ", ".join(_quote_enum(item) for item in enum),
                value=value,
            )
        )
    if isinstance(value, bool):
        return
    if isinstance(value, int | float):
        _check_number(value, schema, path, errors)
    elif isinstance(value, str):
        _check_string(value, schema, path, errors)


def _check_number(value: float, schema: Schema, path: str, errors: list[FieldError]) -> None:
    maximum = schema.get("maximum")
    if maximum is not None:
        if schema.get("exclusiveMaximum") and value >= maximum:
            errors.append(_invalid(path, value, f"should be less than {_go_number(maximum)}"))
        elif value > maximum:
            errors.append(_invalid(path, value, f"should be less than or equal to {_go_number(maximum)}"))
    minimum = schema.get("minimum")
    if minimum is not None:
        if schema.get("exclusiveMinimum") and value <= minimum:
            errors.append(_invalid(path, value, f"should be greater than {_go_number(minimum)}"))
        elif value < minimum:
            errors.append(_invalid(path, value, f"should be greater than or equal to {_go_number(minimum)}"))
    factor = schema.get("multipleOf")
    if factor:
        quotient = value / factor
        if quotient != int(quotient):
            errors.append(_invalid(path, value, f"should be a multiple of {_go_number(factor)}"))


def _check_string(value: str, schema: Schema, path: str, errors: list[FieldError]) -> None:
    length = len(value)  # kube-openapi counts runes, as Python counts code points
    max_length = schema.get("maxLength")
    if max_length is not None and length > max_length:
        noun = "byte" if max_length == 1 else "bytes"
        errors.append(field_error("FieldValueTooLong", path, f"may not be more than {max_length} {noun}"))
    min_length = schema.get("minLength")
    if min_length is not None and length < min_length:
        errors.append(_invalid(path, value, f"should be at least {min_length} chars long"))
    pattern = schema.get("pattern")
    if pattern is not None and _compiled(pattern).search(value) is None:
        errors.append(_invalid(path, value, f"should match '{pattern}'"))
    fmt = schema.get("format")
    check = _FORMATS.get(fmt or "")
    if check is not None and not check(value):
        errors.append(
            field_error(
                "FieldValueTypeInvalid",
                path,
                f'{path} in body must be of type {fmt}: "{_go_escape(value)}"',
                value=value,
            )
        )


def _check_object(value: dict[str, Any], schema: Schema, path: str, errors: list[FieldError]) -> None:
    count = len(value)
    most = schema.get("maxProperties")
    if most is not None and count > most:
        errors.append(_too_many(path, count, most))
    least = schema.get("minProperties")
    if least is not None and count < least:
        errors.append(_invalid(path, value, f"should have at least {least} properties"))
    for name in schema.get("required") or ():
        if name not in value:
            errors.append(field_error("FieldValueRequired", f"{path}.{name}"))
    properties = schema.get("properties") or {}
    additional = schema.get("additionalProperties")
    for name, child_value in value.items():
        child = properties.get(name)
        if child is None and isinstance(additional, dict):
            child = additional
        if child is not None:
            _check(child_value, child, f"{path}.{name}" if path else name, errors)


def _check_array(value: list[Any], schema: Schema, path: str, errors: list[FieldError]) -> None:
    count = len(value)
    most = schema.get("maxItems")
    if most is not None and count > most:
        errors.append(_too_many(path, count, most))
    least = schema.get("minItems")
    if least is not None and count < least:
        errors.append(_invalid(path, value, f"should have at least {least} items"))
    list_type = schema.get("x-kubernetes-list-type")
    if schema.get("uniqueItems") or list_type == "set":
        seen: set[bytes] = set()
        for index, item in enumerate(value):
            key = orjson.dumps(item, option=orjson.OPT_SORT_KEYS)
            if key in seen:
                errors.append(field_error("FieldValueDuplicate", f"{path}[{index}]", value=_go_value(item)))
            seen.add(key)
    elif list_type == "map":
        keys = tuple(schema.get("x-kubernetes-list-map-keys") or ())
        seen_keys: set[tuple[Any, ...]] = set()
        for index, item in enumerate(value):
            if not isinstance(item, dict):
                continue
            identity = tuple(orjson.dumps(item.get(key)) for key in keys)
            if identity in seen_keys:
                shown = {key: item[key] for key in keys if key in item}
                errors.append(field_error("FieldValueDuplicate", f"{path}[{index}]", value=_go_value(shown)))
            seen_keys.add(identity)
    items = schema.get("items")
    if isinstance(items, dict):
        for index, item in enumerate(value):
            _check(item, items, f"{path}[{index}]", errors)


def _check_composition(value: Any, schema: Schema, path: str, errors: list[FieldError]) -> None:
    """allOf/anyOf/oneOf/not, each alternative judged on the value alone (structural schemas
    allow only value validations in them)."""
    label = path or "<root>"
    for alternative in schema.get("allOf") or ():
        found: list[FieldError] = []
        _check(value, alternative, path, found)
        errors.extend(found)
    alternatives = schema.get("anyOf")
    if alternatives:
        failures = [_errors_of(value, alternative, path) for alternative in alternatives]
        if all(failures):
            errors.append(
                _invalid(path, "", f'"{label}" must validate at least one schema (anyOf)', bare=True)
            )
            errors.extend(min(failures, key=len))
    alternatives = schema.get("oneOf")
    if alternatives:
        failures = [_errors_of(value, alternative, path) for alternative in alternatives]
        valid = sum(1 for found in failures if not found)
        if valid != 1:
            found_text = "Found none valid" if valid == 0 else f"Found {valid} valid alternatives"
            errors.append(
                _invalid(
                    path,
                    "",
                    f'"{label}" must validate one and only one schema (oneOf). {found_text}',
                    bare=True,
                )
            )
            if valid == 0:
                errors.extend(min(failures, key=len))
    negated = schema.get("not")
    if isinstance(negated, dict) and not _errors_of(value, negated, path):
        errors.append(_invalid(path, "", f'"{label}" must not validate the schema (not)', bare=True))


def _errors_of(value: Any, schema: Schema, path: str) -> list[FieldError]:
    found: list[FieldError] = []
    _check(value, schema, path, found)
    return found


def _too_many(path: str, count: int, most: int) -> FieldError:
    noun = "item" if most == 1 else "items"
    return field_error("FieldValueTooMany", path, f"must have at most {most} {noun}", value=count)


def _invalid(path: str, value: Any, detail: str, *, bare: bool = False) -> FieldError:
    """kube-openapi's messages name the field again: ``spec.x in body should ...``."""
    return field_error(
        "FieldValueInvalid", path, detail if bare else f"{path} in body {detail}", value=_go_value(value)
    )


class _GoSyntax:
    """A value already rendered as Go's ``%#v`` prints it (field errors show objects so)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text


def _go_value(value: Any) -> Any:
    """Scalars stay as they are (the field error renders them); lists and objects become Go's
    ``[]interface {}{...}`` / ``map[string]interface {}{...}`` as upstream's messages show them."""
    if isinstance(value, dict | list):
        return _GoSyntax(_go_syntax(value))
    return value


def _go_syntax(value: Any) -> str:
    if isinstance(value, dict):
        items = ", ".join(f'"{_go_escape(key)}":{_go_syntax(value[key])}' for key in sorted(value))
        return f"map[string]interface {{}}{{{items}}}"
    if isinstance(value, list):
        return "[]interface {}{" + ", ".join(_go_syntax(item) for item in value) + "}"
    if isinstance(value, str):
        return f'"{_go_escape(value)}"'
    return orjson.dumps(value).decode()


def _same(value: Any, allowed: Any) -> bool:
    if isinstance(value, bool) or isinstance(allowed, bool):
        return value is allowed
    return value == allowed


def _quote_enum(item: Any) -> str:
    """Upstream lists string values quoted and other values as their JSON."""
    if isinstance(item, str):
        return f'"{_go_escape(item)}"'
    return f'"{orjson.dumps(item).decode()}"'


def _go_number(number: float) -> str:
    """A schema bound as Go's %v prints a float64: ``0``, ``1.5``, ``1e+21``."""
    if isinstance(number, float) and number.is_integer() and abs(number) < 1e21:
        return str(int(number))
    if isinstance(number, float) and abs(number) >= 1e21:
        mantissa, exponent = f"{number:e}".split("e")
        mantissa = mantissa.rstrip("0").rstrip(".")
        return f"{mantissa}e{exponent[0]}{exponent[1:].lstrip('0').zfill(2)}"
    return str(number)


def _go_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


@lru_cache(maxsize=512)
def _compiled(pattern: str) -> re.Pattern[str]:
    """ECMA-262 patterns (as CRDs declare them) compile as Python regexes for the common subset."""
    return re.compile(pattern)


# --- formats (kube-openapi's strfmt subset that CRDs validate) --------------------------------------

_HOSTNAME = re.compile(
    r"^(?=.{1,255}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_MAC = re.compile(r"^([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}$")
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})?$")
_DURATION = re.compile(r"^(-?\d+(\.\d+)?(ns|us|µs|ms|s|m|h|d|w))+$")


def _parses(parse: Callable[[str], Any]) -> Callable[[str], bool]:
    def check(text: str) -> bool:
        try:
            parse(text)
        except (ValueError, binascii.Error):
            return False
        return True

    return check


def _date_time(text: str) -> bool:
    if not _DATE_TIME.match(text):
        return False
    try:
        datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00").replace("t", "T"))
    except ValueError:
        return False
    return True


_FORMATS: dict[str, Callable[[str], bool]] = {
    "date-time": _date_time,
    "date": _parses(date.fromisoformat),
    "uuid": _parses(uuid.UUID),
    "ipv4": _parses(ipaddress.IPv4Address),
    "ipv6": _parses(ipaddress.IPv6Address),
    "cidr": _parses(lambda text: ipaddress.ip_network(text, strict=False)),
    "mac": lambda text: bool(_MAC.match(text)),
    "hostname": lambda text: bool(_HOSTNAME.match(text)),
    "email": lambda text: bool(_EMAIL.match(text)),
    "byte": _parses(lambda text: base64.b64decode(text, validate=True)),
    "duration": lambda text: bool(_DURATION.match(text)),
}
