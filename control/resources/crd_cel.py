"""CEL validation rules of custom resources (``x-kubernetes-validations``), as upstream runs them.

Upstream (``apiextensions-apiserver/pkg/apiserver/schema/cel``) compiles every rule of a CRD's
structural schema once, with ``self`` typed from the schema node the rule sits on, and
evaluates the rules on every write of a custom resource (spec and status alike). This module
does the same on the cel-expr-python engine (Google's C++ CEL), with Kubernetes' library from
``control.resources.crd_cel_library``:

- **At CRD create/update** ``validate_schema_rules`` checks each rule's fields and compiles it:
  upstream's ``compilation failed: ERROR: <input>:1:5: Syntax error: ...``, ``cel expression must
  evaluate to a bool``, ``messageExpression compilation failed: ...``, invalid ``fieldPath``,
  ``reason`` and ``optionalOldSelf`` misuse, all at the rule's field path.
- **At custom resource writes** ``validate_rules`` walks the object along the schema nodes that
  carry rules and evaluates each with ``self`` (and, for transition rules on update, ``oldSelf``)
  bound. Failures are upstream's field errors: the node's path (plus ``fieldPath``), ``message``,
  ``messageExpression``'s result or ``failed rule: <rule>``, typed by ``reason``; every rule's
  failure is reported. Runtime errors read as upstream's (``no such key: x evaluating rule: ...``).
  Validation ratchets as upstream's CRDValidationRatcheting does: a failing rule that does not
  use ``oldSelf`` is forgiven where the value (or its nearest correlatable ancestor) is unchanged.

Types: ``self`` is declared from the schema (integer, number, boolean, string; ``date``/
``date-time`` strings as timestamps, ``duration`` as durations, ``byte`` as bytes; arrays as lists;
maps as maps) so scalar rules are type-checked at compile time. Objects are maps of ``dyn``: a
field the schema does not declare is a runtime ``no such key`` rather than a compile error.
Property names are escaped as upstream's (``__dash__``, ``__dot__``, ``__slash__``,
``__underscores__``, reserved words as ``__in__``).

Cost: upstream bounds rules by static cost estimates and a runtime cost budget. Here each
evaluation runs under the engine's comprehension iteration budget (a runaway rule fails with
upstream's ``call cost exceeds limit`` error and stops the remaining rules), and one object's
rules share a wall-clock budget (``RUNTIME_BUDGET_SECONDS``), past which upstream's ``running out
of cost budget`` error ends validation. Regexes are RE2, so none backtracks.

Compiled rules are cached per schema object: the registry gets a fresh schema whenever a CRD's
stored revision changes, so each CRD revision is compiled once, not per request.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import orjson
from cel_expr_python import cel

from control.resources.crd_cel_library import (
    cel_go_text,
    engine_text,
    is_no_such_overload,
    standard_extensions,
)
from control.resources.registry import FieldError, field_error

Schema = Mapping[str, Any]
Binder = Callable[[Any], Any]

RULES = "x-kubernetes-validations"
RUNTIME_BUDGET_SECONDS = 1.0
MAX_MESSAGE_EXPRESSION_BYTES = 5 * 1024
REASONS = ("FieldValueRequired", "FieldValueForbidden", "FieldValueInvalid", "FieldValueDuplicate")
BLOCKING_ERROR = (
    "some validation rules were not checked because the object was invalid; "
    "correct the existing errors to complete validation"
)

_BLOCKING_TYPES = frozenset(
    {
        "FieldValueNotSupported",
        "FieldValueRequired",
        "FieldValueTooLong",
        "FieldValueTooMany",
        "FieldValueTypeInvalid",
    }
)
_OLD_LIST = "__kubelabOldSelf"
_OPTIONAL_OLD_SELF = (
    "(size({old}) == 0 ? [optional.none()] : [optional.of({old}[0])]).all(oldSelf,\n{rule}\n)"
)
_LINE = re.compile(r"<input>:(\d+):")
_NEWLINES = re.compile(r"[\n\r]+")
_IDENTIFIER = re.compile(r"^[_a-zA-Z][_a-zA-Z0-9]*$")
_RESERVED = frozenset(
    {
        "true", "false", "null", "in", "as", "break", "const", "continue", "else", "for", "function", "if",
        "import", "let", "loop", "package", "namespace", "return", "var", "void", "while",
    }
)  # fmt: skip
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h|d|w)")
_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
}


# --- types and value binding ----------------------------------------------------------------------


TypeKey = tuple[Any, ...]


def _type_key(schema: Schema, *, top: bool = True) -> TypeKey:
    """A hashable description of the CEL type of values at ``schema`` (environments are cached by it).

    Timestamps and durations exist only at the top (the node a rule sits on): the engine takes them
    as variables but not inside lists and maps, so below the top they stay strings."""
    unknown = schema.get("x-kubernetes-int-or-string") or schema.get("x-kubernetes-preserve-unknown-fields")
    if unknown and not schema.get("properties") and schema.get("type") != "array":
        return ("dyn",)
    kind = schema.get("type")
    if kind == "boolean":
        return ("bool",)
    if kind == "integer":
        return ("int",)
    if kind == "number":
        return ("double",)
    if kind == "string":
        fmt = schema.get("format")
        if top and fmt in ("date", "date-time"):
            return ("timestamp",)
        if top and fmt == "duration":
            return ("duration",)
        if fmt == "byte":
            return ("bytes",)
        return ("string",)
    if kind == "array":
        items = schema.get("items")
        return ("list", _type_key(items, top=False) if isinstance(items, dict) else ("dyn",))
    if kind == "object":
        additional = schema.get("additionalProperties")
        if isinstance(additional, dict) and not schema.get("properties"):
            return ("map", _type_key(additional, top=False))
        return ("map", ("dyn",))
    return ("dyn",)


def _cel_type(key: TypeKey) -> Any:
    simple = {
        "bool": cel.Type.BOOL,
        "int": cel.Type.INT,
        "double": cel.Type.DOUBLE,
        "string": cel.Type.STRING,
        "timestamp": cel.Type.TIMESTAMP,
        "duration": cel.Type.DURATION,
        "bytes": cel.Type.BYTES,
        "dyn": cel.Type.DYN,
    }
    if key[0] == "list":
        return cel.Type.List(_cel_type(key[1]))
    if key[0] == "map":
        return cel.Type.Map(cel.Type.STRING, _cel_type(key[1]))
    return simple[key[0]]


@dataclass(frozen=True)
class _Environments:
    """One declared type of ``self``: the rules' environment and one without ``oldSelf``."""

    rules: Any
    without_old_self: Any


@lru_cache(maxsize=128)
def _environments(key: TypeKey) -> _Environments:
    self_type = _cel_type(key)

    def new_env(variables: dict[str, Any]) -> Any:
        return cel.NewEnv(variables=variables, extensions=standard_extensions())

    return _Environments(
        rules=new_env({"self": self_type, "oldSelf": self_type, _OLD_LIST: cel.Type.List(self_type)}),
        without_old_self=new_env({"self": self_type}),
    )


def escape_property(name: str) -> str | None:
    """The name a property has in CEL (upstream's ``model.Escape``), None if it cannot be accessed."""
    if name in _RESERVED:
        return f"__{name}__"
    escaped = (
        name.replace("__", "__underscores__")
        .replace(".", "__dot__")
        .replace("-", "__dash__")
        .replace("/", "__slash__")
    )
    return escaped if _IDENTIFIER.match(escaped) else None


def _binder(schema: Schema, *, top: bool = True) -> Binder | None:
    """How a JSON value at ``schema`` becomes a CEL value; None where it is used as it is."""
    key = _type_key(schema, top=top)
    if key == ("dyn",):
        return None
    kind = key[0]
    if kind == "double":
        return _as_float
    if kind == "timestamp":
        return _as_timestamp
    if kind == "duration":
        return _as_duration
    if kind == "bytes":
        return _as_bytes
    if kind == "list":
        items = schema.get("items")
        item = _binder(items, top=False) if isinstance(items, dict) else None
        return None if item is None else _list_binder(item)
    if kind == "map":
        properties = schema.get("properties") or {}
        if properties:
            return _object_binder(properties)
        additional = schema.get("additionalProperties")
        value = _binder(additional, top=False) if isinstance(additional, dict) else None
        return None if value is None else _map_binder(value)
    return None


def _object_binder(properties: Mapping[str, Schema]) -> Binder | None:
    plan: dict[str, tuple[str | None, Binder | None]] = {}
    for name, child in properties.items():
        if isinstance(child, dict):
            plan[name] = (escape_property(name), _binder(child, top=False))
    if all(escaped == name and bind is None for name, (escaped, bind) in plan.items()):
        return None

    def bind(value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        bound: dict[str, Any] = {}
        for name, item in value.items():
            escaped, bind_item = plan.get(name, (name, None))
            if escaped is None:
                continue
            bound[escaped] = item if bind_item is None or item is None else bind_item(item)
        return bound

    return bind


def _list_binder(item: Binder) -> Binder:
    def bind(value: Any) -> Any:
        if not isinstance(value, list):
            return value
        return [entry if entry is None else item(entry) for entry in value]

    return bind


def _map_binder(item: Binder) -> Binder:
    def bind(value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        return {key: entry if entry is None else item(entry) for key, entry in value.items()}

    return bind


def _as_float(value: Any) -> Any:
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _as_timestamp(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        text = value.replace("z", "Z").replace("Z", "+00:00")
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return value
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _as_duration(value: Any) -> Any:
    if not isinstance(value, str) or not value:
        return value
    sign = -1 if value[0] == "-" else 1
    text = value[1:] if value[0] in "+-" else value
    if text == "0":
        return timedelta(0)
    position, seconds = 0, 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != position:
            return value
        seconds += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        position = match.end()
    if position != len(text) or position == 0:
        return value
    return timedelta(seconds=sign * seconds)


def _as_bytes(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return value


# --- compilation ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CompiledRule:
    """One ``x-kubernetes-validations`` entry, ready to evaluate (``error`` set if it did not compile)."""

    rule: str
    message: str
    reason: str
    field_path: str  # normalized, without the leading dot; "" when not given
    transition: bool  # uses oldSelf
    optional_old_self: bool
    program: Any = None
    message_program: Any = None
    error: str = ""
    message_error: str = ""

    @property
    def shown(self) -> str:
        """Upstream's ruleErrorString: the message if there is one, else the rule."""
        return self.message or self.rule.strip()

    @property
    def default_message(self) -> str:
        return self.message or f"failed rule: {self.rule.strip()}"


def _compile(env: Any, source: str) -> tuple[Any, str]:
    """(program, "") or (None, cel-go's issue text)."""
    try:
        return env.compile(source), ""
    except RuntimeError as exc:
        return None, engine_text(exc)


def _compile_rule(rule: Mapping[str, Any], schema: Schema) -> CompiledRule:
    envs = _environments(_type_key(schema))
    source = str(rule.get("rule") or "")
    optional = rule.get("optionalOldSelf") is True
    message_expression = str(rule.get("messageExpression") or "")
    path_text = str(rule.get("fieldPath") or "")
    try:
        where = field_path(path_text, schema) if path_text else ""
    except FieldPathError:
        where = path_text.lstrip(".")  # rejected when the CRD was written; reported as given
    compiled = CompiledRule(
        rule=source,
        message=str(rule.get("message") or "").strip(),
        reason=str(rule.get("reason") or ""),
        field_path=where,
        transition="oldSelf" in source and _compile(envs.without_old_self, source)[0] is None,
        optional_old_self=optional,
    )
    if optional and compiled.transition:
        # oldSelf is an optional here: the rule runs inside a comprehension that binds it.
        program, issues = _compile(envs.rules, _OPTIONAL_OLD_SELF.format(old=_OLD_LIST, rule=source))
        issues = _unwrapped_issues(issues)
    else:
        program, issues = _compile(envs.rules, source)
    if program is None:
        return dataclasses.replace(compiled, error=f"compilation failed: {issues}")
    if not _returns(program, cel.Type.BOOL):
        return dataclasses.replace(compiled, error="cel expression must evaluate to a bool")
    compiled = dataclasses.replace(compiled, program=program)
    if message_expression.strip():
        message_program, issues = _compile(envs.rules, message_expression)
        if message_program is None:
            return dataclasses.replace(
                compiled, message_error=f"messageExpression compilation failed: {issues}"
            )
        if not _returns(message_program, cel.Type.STRING):
            return dataclasses.replace(compiled, message_error="messageExpression must evaluate to a string")
        compiled = dataclasses.replace(compiled, message_program=message_program)
    return compiled


def _returns(program: Any, wanted: Any) -> bool:
    """Typed as ``wanted``, or ``dyn`` (values of objects are dyn here; checked when evaluated)."""
    result = program.return_type()
    return result == wanted or result == cel.Type.DYN


def _unwrapped_issues(issues: str) -> str:
    """Issues of a rule compiled inside the optionalOldSelf wrapper, at the rule's own lines."""
    return _LINE.sub(lambda match: f"<input>:{max(int(match.group(1)) - 1, 1)}:", issues)


# --- fieldPath ------------------------------------------------------------------------------------


class FieldPathError(ValueError):
    """A rule's ``fieldPath`` that is not a path into its schema node."""


_PATH_TOKEN = re.compile(r"\.([^.\[\]]+)|\['((?:[^'\\]|\\.)*)'\]")


def field_path(path: str, schema: Schema) -> str:
    """Upstream's ValidFieldPath: ``path`` (dots and ``['key']``) walked into ``schema``'s properties
    or additionalProperties, as the field path string errors are reported at (a property is a
    child, ``a.b``; a map key an index, ``[key]``)."""
    parts: list[str] = []
    position = 0
    node: Schema = schema
    for match in _PATH_TOKEN.finditer(path):
        if match.start() != position:
            raise FieldPathError(f"expected [ or . but got: {path[position : match.start()]}")
        name = match.group(1) if match.group(1) is not None else _unescape(match.group(2))
        properties = node.get("properties")
        additional = node.get("additionalProperties")
        if properties:
            child = properties.get(name)
            parts.append(f".{name}" if parts else name)
        elif isinstance(additional, dict):
            child = additional
            parts.append(f"[{name}]")
        else:
            child = None
        if not isinstance(child, dict):
            raise FieldPathError("does not refer to a valid field")
        node = child
        position = match.end()
    if position != len(path) or not path:
        raise FieldPathError(f"expected [ or . but got: {path[position:]}")
    return "".join(parts)


def _unescape(text: str) -> str:
    escapes = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "'": "'"}
    escapes["\\"] = "\\"

    def one(match: re.Match[str]) -> str:
        char = match.group(0)[1]
        if char not in escapes:
            raise FieldPathError(f"invalid string literal: invalid escape char {match.group(0)}")
        return escapes[char]

    return re.sub(r"\\.", one, text)


# --- the compiled schema tree ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Node:
    """A schema node on the way to rules; children without rules below them are left out."""

    type: str
    rules: tuple[CompiledRule, ...]
    bind: Binder | None
    properties: Mapping[str, _Node] = field(default_factory=dict)
    additional: _Node | None = None
    items: _Node | None = None
    all_of: tuple[_Node, ...] = ()
    map_keys: tuple[str, ...] | None = None  # x-kubernetes-list-type: map keys (old items correlate)
    correlatable: bool = True  # x-kubernetes-map-type granular/atomic (or unset)


def _build(schema: Schema, *, root: bool = False) -> _Node | None:
    rules = tuple(
        _compile_rule(rule, schema)
        for rule in schema.get(RULES) or ()
        if isinstance(rule, dict) and str(rule.get("rule") or "").strip()
    )
    properties = {}
    for name, child in (schema.get("properties") or {}).items():
        if isinstance(child, dict) and not (root and name == "metadata"):
            built = _build(child)
            if built is not None:
                properties[name] = built
    additional_schema = schema.get("additionalProperties")
    additional = _build(additional_schema) if isinstance(additional_schema, dict) else None
    items_schema = schema.get("items")
    items = _build(items_schema) if isinstance(items_schema, dict) else None
    all_of = tuple(
        node
        for node in (_build(part) for part in schema.get("allOf") or () if isinstance(part, dict))
        if node
    )
    if not (rules or properties or additional or items or all_of):
        return None
    bind = _binder(schema)
    if root:
        bind = _root_binder(bind)
    map_keys = None
    if schema.get("x-kubernetes-list-type") == "map":
        map_keys = tuple(schema.get("x-kubernetes-list-map-keys") or ())
    return _Node(
        type=str(schema.get("type") or ""),
        rules=rules,
        bind=bind,
        properties=properties,
        additional=additional,
        items=items,
        all_of=all_of,
        map_keys=map_keys,
        correlatable=schema.get("x-kubernetes-map-type") in (None, "granular", "atomic"),
    )


def _root_binder(inner: Binder | None) -> Binder:
    """At the resource root, ``self.metadata`` shows only name and generateName (as upstream)."""

    def bind(value: Any) -> Any:
        bound = inner(value) if inner is not None else value
        if isinstance(bound, dict) and isinstance(bound.get("metadata"), dict):
            metadata = bound["metadata"]
            bound = dict(bound)
            bound["metadata"] = {key: metadata[key] for key in ("name", "generateName") if key in metadata}
        return bound

    return bind


class RuleValidator:
    """The compiled rules of one schema (one CRD version at one revision)."""

    def __init__(self, schema: Schema) -> None:
        self._root = _build(schema, root=True)

    @property
    def has_rules(self) -> bool:
        return self._root is not None

    def validate(self, obj: Any, *, old: Any = None) -> list[FieldError]:
        """Every rule failure of ``obj`` (``old`` given on update)."""
        if self._root is None:
            return []
        run = _Run(deadline=time.monotonic() + RUNTIME_BUDGET_SECONDS)
        anchor = (obj, old) if old is not None else None
        run.node(self._root, obj, old, path="", anchor=anchor)
        # Rules at the resource root have no path; upstream prints the nil path as "<nil>".
        return [error if error.field else dataclasses.replace(error, field="<nil>") for error in run.errors]


_CACHE_SIZE = 256
_cache: OrderedDict[int, tuple[Schema, RuleValidator]] = OrderedDict()
_cache_lock = threading.Lock()


def rule_validator(schema: Schema) -> RuleValidator:
    """The compiled rules of ``schema``, compiled on first use and kept while the schema object is
    in use (a CRD's served versions keep theirs until the CRD changes)."""
    identity = id(schema)
    with _cache_lock:
        entry = _cache.get(identity)
        if entry is not None and entry[0] is schema:
            _cache.move_to_end(identity)
            return entry[1]
    validator = RuleValidator(schema)
    with _cache_lock:
        _cache[identity] = (schema, validator)
        _cache.move_to_end(identity)
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return validator


def validate_rules(
    schema: Schema, obj: Any, *, old: Any = None, found: Sequence[FieldError] = ()
) -> list[FieldError]:
    """Every ``x-kubernetes-validations`` failure of a custom resource under ``schema``.

    ``found`` are the errors schema and metadata validation already reported: as upstream's
    hasBlockingErr, type, enum, required and size errors among them keep the rules from running
    (the object has not the shape the rules were written for), with one error saying so."""
    validator = rule_validator(schema)
    if not validator.has_rules:
        return []
    if any(error.type in _BLOCKING_TYPES for error in found):
        return [field_error("FieldValueInvalid", "<nil>", BLOCKING_ERROR, value="null")]
    return validator.validate(obj, old=old)


# --- evaluation -----------------------------------------------------------------------------------


class _Stop(Exception):
    """No further rules run (budget exhausted)."""


@dataclass
class _Run:
    deadline: float
    errors: list[FieldError] = field(default_factory=list)
    stopped: bool = False

    def node(self, node: _Node, value: Any, old: Any, *, path: str, anchor: tuple[Any, Any] | None) -> None:
        if value is None or self.stopped:
            return
        try:
            self._rules(node, value, old, path=path, anchor=anchor)
        except _Stop:
            self.stopped = True
            return
        for part in node.all_of:
            self.node(part, value, old, path=path, anchor=anchor)
        if isinstance(value, dict):
            self._object(node, value, old if isinstance(old, dict) else None, path=path, anchor=anchor)
        elif isinstance(value, list):
            self._list(node, value, old if isinstance(old, list) else None, path=path, anchor=anchor)

    def _object(
        self, node: _Node, value: dict[str, Any], old: dict[str, Any] | None, *, path: str, anchor: Any
    ) -> None:
        if not node.correlatable:
            old = None
        for name, item in value.items():
            child = node.properties.get(name)
            child_path = f"{path}.{name}" if path else name
            if child is None and node.additional is not None:
                child = node.additional
                child_path = f"{path}[{name}]"
            if child is None:
                continue
            old_item = old.get(name) if old is not None else None
            self.node(
                child,
                item,
                old_item,
                path=child_path,
                anchor=(item, old_item) if old_item is not None else anchor,
            )
            if self.stopped:
                return

    def _list(self, node: _Node, value: list[Any], old: list[Any] | None, *, path: str, anchor: Any) -> None:
        items = node.items
        if items is None:
            return
        old_by_key: dict[bytes, Any] = {}
        if node.map_keys is not None and old:
            for entry in old:
                if isinstance(entry, dict):
                    old_by_key.setdefault(_map_key(entry, node.map_keys), entry)
        for index, item in enumerate(value):
            old_item = None
            if old_by_key and isinstance(item, dict) and node.map_keys is not None:
                old_item = old_by_key.get(_map_key(item, node.map_keys))
            self.node(
                items,
                item,
                old_item,
                path=f"{path}[{index}]",
                anchor=(item, old_item) if old_item is not None else anchor,
            )
            if self.stopped:
                return

    def _rules(self, node: _Node, value: Any, old: Any, *, path: str, anchor: Any) -> None:
        if not node.rules:
            return
        bound = node.bind(value) if node.bind is not None else value
        bound_old = None
        if old is not None:
            bound_old = node.bind(old) if node.bind is not None else old
        for rule in node.rules:
            if rule.error:
                self._add(
                    field_error(
                        "FieldValueInvalid", path, f"rule compile error: {rule.error}", value=node.type
                    )
                )
                continue
            if rule.transition and old is None and not rule.optional_old_self:
                continue
            if time.monotonic() > self.deadline:
                self._add(field_error("FieldValueInvalid", path, _OUT_OF_BUDGET, value=node.type))
                raise _Stop()
            data: dict[str, Any] = {"self": bound}
            if rule.optional_old_self and rule.transition:
                data[_OLD_LIST] = [] if old is None else [bound_old]
            elif rule.transition:
                data["oldSelf"] = bound_old
            outcome = self._evaluate(rule, data, node=node, path=path)
            if outcome is not False:
                continue
            if not rule.transition and anchor is not None and _unchanged(anchor):
                continue  # ratcheting: an unchanged value keeps passing
            # messageExpression sees oldSelf wherever an old value exists (not as an optional)
            message_data = {"self": bound} if old is None else {"self": bound, "oldSelf": bound_old}
            self._failed(rule, message_data, node=node, value=value, path=path)

    def _evaluate(self, rule: CompiledRule, data: dict[str, Any], *, node: _Node, path: str) -> bool | None:
        """True/False, or None after recording a runtime error."""
        try:
            result = rule.program.eval(data=data)
        except RuntimeError as exc:
            text = engine_text(exc)
            if "budget" in text.lower():
                self._add(
                    field_error(
                        "FieldValueInvalid",
                        path,
                        "'operation cancelled: actual cost limit exceeded': no further validation rules will "
                        f"be run due to call cost exceeds limit for rule: {rule.shown}",
                        value=node.type,
                    )
                )
                raise _Stop() from exc
            self._add(_runtime_error(text, rule=rule, node=node, path=path))
            return None
        if result.type() == cel.Type.ERROR:
            self._add(_runtime_error(engine_text(result.plain_value()), rule=rule, node=node, path=path))
            return None
        outcome = result.plain_value()
        if not isinstance(outcome, bool):
            self._add(_runtime_error("no such overload", rule=rule, node=node, path=path))
            return None
        return outcome

    def _failed(
        self, rule: CompiledRule, data: dict[str, Any], *, node: _Node, value: Any, path: str
    ) -> None:
        where = path
        if rule.field_path:  # upstream appends it as one child: spec + [k] reads "spec.[k]"
            where = f"{path}.{rule.field_path}" if path else rule.field_path
        detail = rule.default_message
        if rule.message_program is not None:
            detail = _message(rule, data) or detail
        shown = None if node.type in ("object", "array") else value
        if rule.reason == "FieldValueForbidden":
            self._add(field_error("FieldValueForbidden", where, detail))
        elif rule.reason == "FieldValueRequired":
            self._add(field_error("FieldValueRequired", where, detail))
        elif rule.reason == "FieldValueDuplicate":
            self._add(
                field_error("FieldValueDuplicate", where)
                if shown is None
                else field_error("FieldValueDuplicate", where, value=shown)
            )
        elif shown is None:
            self._add(field_error("FieldValueInvalid", where, detail))
        else:
            self._add(field_error("FieldValueInvalid", where, detail, value=shown))

    def _add(self, error: FieldError) -> None:
        self.errors.append(error)


_OUT_OF_BUDGET = (
    "validation failed due to running out of cost budget, no further validation rules will be run"
)


def _runtime_error(text: str, *, rule: CompiledRule, node: _Node, path: str) -> FieldError:
    """cel-go's wording for what the engine reports in its own words."""
    if is_no_such_overload(text):
        detail = (
            "'no such overload': call arguments did not match a supported operator, function or macro "
            f"signature for rule: {rule.shown}"
        )
        return field_error("FieldValueInvalid", path, detail, value=node.type)
    return field_error(
        "FieldValueInvalid", path, f"{cel_go_text(text)} evaluating rule: {rule.shown}", value=node.type
    )


def _message(rule: CompiledRule, data: dict[str, Any]) -> str:
    """messageExpression's result, or "" when it fails (upstream then falls back to the message)."""
    try:
        result = rule.message_program.eval(data=data)
    except RuntimeError:
        return ""
    if result.type() == cel.Type.ERROR:
        return ""
    text = result.plain_value()
    if not isinstance(text, str):
        return ""
    text = text.strip()
    if not text or len(text.encode()) > MAX_MESSAGE_EXPRESSION_BYTES or _NEWLINES.search(text):
        return ""
    return text


def _unchanged(anchor: tuple[Any, Any]) -> bool:
    new, old = anchor
    return orjson.dumps(new, option=orjson.OPT_SORT_KEYS) == orjson.dumps(old, option=orjson.OPT_SORT_KEYS)


def _map_key(entry: dict[str, Any], keys: tuple[str, ...]) -> bytes:
    return orjson.dumps([entry.get(key) for key in keys])


# --- CRD validation -------------------------------------------------------------------------------


def validate_schema_rules(schema: Schema, *, path: str) -> list[FieldError]:
    """Every error of the ``x-kubernetes-validations`` in ``schema`` (at ``path``), as upstream's
    CRD validation reports them; rules that are well formed are compiled."""
    errors: list[FieldError] = []
    _check_node(schema, path=path, errors=errors, correlatable=True)
    return errors


def _check_node(schema: Schema, *, path: str, errors: list[FieldError], correlatable: bool) -> None:
    for name, child in (schema.get("properties") or {}).items():
        if isinstance(child, dict):
            child_ok = correlatable and schema.get("x-kubernetes-map-type") in (None, "granular", "atomic")
            _check_node(child, path=f"{path}.properties[{name}]", errors=errors, correlatable=child_ok)
    additional = schema.get("additionalProperties")
    if isinstance(additional, dict):
        _check_node(additional, path=f"{path}.additionalProperties", errors=errors, correlatable=correlatable)
    items = schema.get("items")
    if isinstance(items, dict):
        item_ok = correlatable and schema.get("x-kubernetes-list-type") == "map"
        _check_node(items, path=f"{path}.items", errors=errors, correlatable=item_ok)
    for index, part in enumerate(schema.get("allOf") or ()):
        if isinstance(part, dict):
            _check_node(part, path=f"{path}.allOf[{index}]", errors=errors, correlatable=correlatable)
    rules = schema.get(RULES)
    if not rules:
        return
    if not isinstance(rules, list):
        errors.append(field_error("FieldValueTypeInvalid", f"{path}.{RULES}", "must be a list", value=rules))
        return
    shape_errors: list[FieldError] = []
    for index, rule in enumerate(rules):
        shape_errors.extend(_check_rule_shape(rule, schema, path=f"{path}.{RULES}[{index}]"))
    errors.extend(shape_errors)
    if shape_errors:
        return  # upstream compiles only rules whose schema is otherwise valid
    for index, rule in enumerate(rules):
        compiled = _compile_rule(rule, schema)
        rule_path = f"{path}.{RULES}[{index}]"
        shown = _go_rule(rule)
        if compiled.error:
            errors.append(field_error("FieldValueInvalid", f"{rule_path}.rule", compiled.error, value=shown))
        if compiled.message_error:
            errors.append(
                field_error(
                    "FieldValueInvalid", f"{rule_path}.messageExpression", compiled.message_error, value=shown
                )
            )
        if compiled.error:
            continue
        if compiled.transition and not correlatable:
            errors.append(
                field_error(
                    "FieldValueInvalid",
                    f"{rule_path}.rule",
                    "oldSelf cannot be used on the uncorrelatable portion of the schema within "
                    f"{_uncorrelatable_within(path)}",
                    value=str(rule.get("rule")),
                )
            )
        elif not compiled.transition and rule.get("optionalOldSelf") is not None:
            errors.append(
                field_error(
                    "FieldValueInvalid",
                    f"{rule_path}.optionalOldSelf",
                    "may not be set if oldSelf is not used in rule",
                    value=rule.get("optionalOldSelf"),
                )
            )


def _uncorrelatable_within(path: str) -> str:
    """The nearest enclosing list (a list that is not a map list cannot correlate old items)."""
    head, marker, _ = path.rpartition(".items")
    return head if marker else path


def _check_rule_shape(rule: Any, schema: Schema, *, path: str) -> list[FieldError]:
    if not isinstance(rule, dict):
        return [field_error("FieldValueTypeInvalid", path, "must be an object", value=rule)]
    errors: list[FieldError] = []
    source = str(rule.get("rule") or "")
    message = str(rule.get("message") or "")
    trimmed_rule, trimmed_message = source.strip(), message.strip()
    if not trimmed_rule:
        errors.append(field_error("FieldValueRequired", f"{path}.rule", "rule is not specified"))
    elif message and not trimmed_message:
        errors.append(
            field_error(
                "FieldValueInvalid",
                f"{path}.message",
                "message must be non-empty if specified",
                value=message,
            )
        )
    elif len(message) > 2048:
        errors.append(
            field_error(
                "FieldValueInvalid",
                f"{path}.message",
                "message must have a maximum length of 2048 characters",
                value=message[:10] + "...",
            )
        )
    elif _NEWLINES.search(trimmed_message):
        errors.append(
            field_error(
                "FieldValueInvalid", f"{path}.message", "message must not contain line breaks", value=message
            )
        )
    elif _NEWLINES.search(trimmed_rule) and not trimmed_message:
        errors.append(
            field_error(
                "FieldValueRequired",
                f"{path}.message",
                "message must be specified if rule contains line breaks",
            )
        )
    expression = str(rule.get("messageExpression") or "")
    if expression and not expression.strip():
        errors.append(
            field_error(
                "FieldValueRequired",
                f"{path}.messageExpression",
                "messageExpression must be non-empty if specified",
            )
        )
    reason = rule.get("reason")
    if reason is not None and reason not in REASONS:
        supported = ", ".join(f'"{item}"' for item in sorted(REASONS))
        errors.append(
            field_error(
                "FieldValueNotSupported",
                f"{path}.reason",
                f"supported values: {supported}",
                value=str(reason),
            )
        )
    path_text = str(rule.get("fieldPath") or "")
    if path_text:
        if path_text.strip() != path_text:
            errors.append(
                field_error(
                    "FieldValueInvalid",
                    f"{path}.fieldPath",
                    "fieldPath must not contain leading or trailing whitespace",
                    value=path_text,
                )
            )
        elif _NEWLINES.search(path_text):
            errors.append(
                field_error(
                    "FieldValueInvalid",
                    f"{path}.fieldPath",
                    "fieldPath must not contain line breaks",
                    value=path_text,
                )
            )
        else:
            try:
                field_path(path_text, schema)
            except FieldPathError:
                errors.append(
                    field_error(
                        "FieldValueInvalid",
                        f"{path}.fieldPath",
                        "fieldPath must be a valid path",
                        value=path_text,
                    )
                )
    return errors


class _GoRule:
    """A rule as upstream's field error prints it (Go's ``%#v`` of apiextensions.ValidationRule)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text


def _go_rule(rule: Mapping[str, Any]) -> _GoRule:
    def quoted(key: str) -> str:
        return orjson.dumps(str(rule.get(key) or "")).decode()

    reason = "(*apiextensions.FieldValueErrorReason)(nil)"
    if rule.get("reason") is not None:
        reason = "(*apiextensions.FieldValueErrorReason)(0xc000a1c2d0)"
    optional = "(*bool)(nil)" if rule.get("optionalOldSelf") is None else "(*bool)(0xc000a1c2d8)"
    return _GoRule(
        f"apiextensions.ValidationRule{{Rule:{quoted('rule')}, Message:{quoted('message')}, "
        f"MessageExpression:{quoted('messageExpression')}, Reason:{reason}, FieldPath:{quoted('fieldPath')}, "
        f"OptionalOldSelf:{optional}}}"
    )
