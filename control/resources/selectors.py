"""Label and field selectors, parsed and matched as apimachinery does it.

Selectors arrive as query parameters (``labelSelector``, ``fieldSelector``) and inside
objects (``spec.selector`` of workloads, ``podSelector`` of network policies). Both
grammars, their canonical string forms and their error messages are ports of
``k8s.io/apimachinery``: ``pkg/labels/selector.go`` (the lexer/parser of
``labels.Parse`` and ``Requirement.String``), ``pkg/apis/meta/v1/helpers.go``
(``LabelSelectorAsSelector``, ``FormatLabelSelector``) and ``pkg/fields/selector.go``
(``fields.ParseSelector`` with its backslash escaping). Error texts matter: the API
server returns them verbatim in 400 answers, and clients show them to people.

Parsing happens once per request; matching happens once per object, so each
requirement is compiled into a small closure when the selector is built and matching
never looks at the text again. Requirements stay exposed (sorted by key, as upstream)
so storage can answer ``key=value`` requirements from an index.

Two label selectors are special, exactly as upstream: :data:`EVERYTHING` (the parse
of ``""`` and the conversion of an empty ``metav1.LabelSelector``) matches every object
and is ``empty``; :data:`NOTHING` (the conversion of a nil ``metav1.LabelSelector``)
matches no object and is *not* empty. Both render as ``""``.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from control.resources.validation import is_qualified_name, is_valid_label_value


class SelectorError(ValueError):
    """A selector that does not parse or validate; the message is upstream's, word for word."""


# --- Go formatting helpers (upstream messages are built with %q and %#v) -------------

_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def go_quote(text: str) -> str:
    """Go's ``%q`` of a string (``strconv.Quote``), which upstream messages use."""
    out = ['"']
    for ch in text:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


def _go_string_slice(values: Sequence[str] | None) -> str:
    """Go's ``%#v`` of a ``[]string``: ``[]string{"a", "b"}``, or ``[]string(nil)``."""
    if values is None:
        return "[]string(nil)"
    return "[]string{" + ", ".join(go_quote(v) for v in values) + "}"


# Keys and values are checked with apimachinery's util/validation rules, which live in
# control.resources.validation (is_qualified_name, is_valid_label_value).


def _invalid(path: str, *, value: str, detail: str) -> str:
    """``field.Invalid(path, value, detail).Error()`` with the value already rendered."""
    return f"{path}: Invalid value: {value}: {detail}"


def _aggregate(messages: list[str]) -> str:
    """``utilerrors.NewAggregate(errs).Error()``: one message bare, several deduplicated in []."""
    unique = list(dict.fromkeys(messages))
    if len(unique) == 1:
        return unique[0]
    return "[" + ", ".join(unique) + "]"


_INT64_RE = re.compile(r"[+-]?[0-9]+")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _parse_int64(text: str) -> int | None:
    """Go's ``strconv.ParseInt(text, 10, 64)``; None where Go returns an error."""
    if not _INT64_RE.fullmatch(text):
        return None
    number = int(text)
    return number if _INT64_MIN <= number <= _INT64_MAX else None


# --- label requirements ---------------------------------------------------------------


class Operator(enum.StrEnum):
    """``selection.Operator``; the values are upstream's (they appear in messages)."""

    DOES_NOT_EXIST = "!"
    EQUALS = "="
    DOUBLE_EQUALS = "=="
    IN = "in"
    NOT_EQUALS = "!="
    NOT_IN = "notin"
    EXISTS = "exists"
    GREATER_THAN = "gt"
    LESS_THAN = "lt"


_BINARY_OPERATORS = "in, notin, =, ==, !=, gt, lt"
_SUPPORTED_OPERATORS = '"in", "notin", "=", "==", "!=", "gt", "lt", "exists", "!"'

LabelTest = Callable[[Mapping[str, str]], bool]


@dataclass(frozen=True)
class Requirement:
    """One label requirement (``labels.Requirement``): key, operator, values.

    Build through :func:`new_requirement`, which validates as upstream does; the
    ``test`` closure is compiled once and is what matching calls.
    """

    key: str
    operator: Operator
    values: tuple[str, ...]
    test: LabelTest = field(compare=False, repr=False)

    def matches(self, labels: Mapping[str, str]) -> bool:
        return self.test(labels)

    def __str__(self) -> str:
        op = self.operator
        prefix = "!" if op is Operator.DOES_NOT_EXIST else ""
        if op in (Operator.EXISTS, Operator.DOES_NOT_EXIST):
            return prefix + self.key
        rendered = self.values[0] if len(self.values) == 1 else ",".join(sorted(self.values))
        if op in (Operator.IN, Operator.NOT_IN):
            return f"{self.key} {op.value} ({rendered})"
        symbol = {Operator.GREATER_THAN: ">", Operator.LESS_THAN: "<"}.get(op, op.value)
        return f"{self.key}{symbol}{rendered}"


def _compile_test(key: str, *, op: Operator, values: tuple[str, ...]) -> LabelTest:
    if op in (Operator.EQUALS, Operator.DOUBLE_EQUALS) or (op is Operator.IN and len(values) == 1):
        wanted = values[0]
        return lambda labels: labels.get(key) == wanted
    if op is Operator.IN:
        allowed = frozenset(values)
        return lambda labels: key in labels and labels[key] in allowed
    if op is Operator.NOT_EQUALS or (op is Operator.NOT_IN and len(values) == 1):
        unwanted = values[0]
        return lambda labels: labels.get(key) != unwanted
    if op is Operator.NOT_IN:
        denied = frozenset(values)
        return lambda labels: key not in labels or labels[key] not in denied
    if op is Operator.EXISTS:
        return lambda labels: key in labels
    if op is Operator.DOES_NOT_EXIST:
        return lambda labels: key not in labels
    bound = int(values[0])  # new_requirement has checked it is one int64
    greater = op is Operator.GREATER_THAN

    def compare(labels: Mapping[str, str]) -> bool:
        raw = labels.get(key)
        number = _parse_int64(raw) if raw is not None else None
        if number is None:
            return False
        return number > bound if greater else number < bound

    return compare


def new_requirement(
    key: str, operator: Operator | str, *, values: Sequence[str] | None, path: str | None = None
) -> Requirement:
    """``labels.NewRequirement``: validate and build one requirement.

    ``values=None`` stands for Go's nil slice (it only changes how an empty value
    list is rendered in the message). ``path`` prefixes field paths in messages.
    """
    base = f"{path}." if path else ""
    errors: list[str] = []
    key_errs = is_qualified_name(key)
    if key_errs:
        errors.append(_invalid(f"{base}key", value=go_quote(key), detail="; ".join(key_errs)))
    vals = list(values) if values is not None else []
    try:
        op = Operator(operator)
    except ValueError:
        op = None
    values_path = f"{base}values"
    if op in (Operator.IN, Operator.NOT_IN):
        if not vals:
            errors.append(
                _invalid(
                    values_path,
                    value=_go_string_slice(values),
                    detail="for 'in', 'notin' operators, values set can't be empty",
                )
            )
    elif op in (Operator.EQUALS, Operator.DOUBLE_EQUALS, Operator.NOT_EQUALS):
        if len(vals) != 1:
            errors.append(
                _invalid(
                    values_path,
                    value=_go_string_slice(values),
                    detail="exact-match compatibility requires one single value",
                )
            )
    elif op in (Operator.EXISTS, Operator.DOES_NOT_EXIST):
        if vals:
            errors.append(
                _invalid(
                    values_path,
                    value=_go_string_slice(values),
                    detail="values set must be empty for exists and does not exist",
                )
            )
    elif op in (Operator.GREATER_THAN, Operator.LESS_THAN):
        if len(vals) != 1:
            errors.append(
                _invalid(
                    values_path,
                    value=_go_string_slice(values),
                    detail="for 'Gt', 'Lt' operators, exactly one value is required",
                )
            )
        for i, value in enumerate(vals):
            if _parse_int64(value) is None:
                errors.append(
                    _invalid(
                        f"{values_path}[{i}]",
                        value=go_quote(value),
                        detail="for 'Gt', 'Lt' operators, the value must be an integer",
                    )
                )
    else:
        errors.append(
            f"{base}operator: Unsupported value: {go_quote(str(operator))}: "
            f"supported values: {_SUPPORTED_OPERATORS}"
        )
    for i, value in enumerate(vals):
        value_errs = is_valid_label_value(value)
        if value_errs:
            errors.append(
                _invalid(f"{values_path}[{i}][{key}]", value=go_quote(value), detail="; ".join(value_errs))
            )
    if errors:
        raise SelectorError(_aggregate(errors))
    assert op is not None
    frozen = tuple(vals)
    return Requirement(key=key, operator=op, values=frozen, test=_compile_test(key, op=op, values=frozen))


# --- label selectors ------------------------------------------------------------------


class LabelSelector:
    """A conjunction of requirements, sorted by key (``labels.Selector``).

    Use :func:`parse_label_selector`, :func:`label_selector_from_spec`,
    :data:`EVERYTHING` or :data:`NOTHING`; instances are immutable.
    """

    __slots__ = ("_matches_nothing", "_tests", "requirements")

    requirements: tuple[Requirement, ...]

    def __init__(self, requirements: Iterable[Requirement] = (), *, matches_nothing: bool = False) -> None:
        self.requirements = tuple(sorted(requirements, key=lambda r: r.key))
        self._tests = tuple(r.test for r in self.requirements)
        self._matches_nothing = matches_nothing

    @property
    def empty(self) -> bool:
        """True when the selector restricts nothing (upstream's ``Empty()``); False for NOTHING."""
        return not self.requirements and not self._matches_nothing

    @property
    def matches_nothing(self) -> bool:
        return self._matches_nothing

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self._matches_nothing:
            return False
        for test in self._tests:  # noqa: SIM110 - no generator per object on this hot path
            if not test(labels):
                return False
        return True

    def exact_match(self, key: str) -> str | None:
        """``RequiresExactMatch``: the one value ``key`` must have, if the selector pins it."""
        for requirement in self.requirements:
            if requirement.key == key:
                if (
                    requirement.operator in (Operator.EQUALS, Operator.DOUBLE_EQUALS, Operator.IN)
                    and len(requirement.values) == 1
                ):
                    return requirement.values[0]
                return None
        return None

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)

    def __repr__(self) -> str:
        if self._matches_nothing:
            return "LabelSelector(<nothing>)"
        return f"LabelSelector({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LabelSelector):
            return NotImplemented
        return self._matches_nothing == other._matches_nothing and self.requirements == other.requirements

    def __hash__(self) -> int:
        return hash((self._matches_nothing, self.requirements))


EVERYTHING = LabelSelector()
NOTHING = LabelSelector(matches_nothing=True)


class _Tok(enum.Enum):
    END = "end"
    CLOSE = ")"
    COMMA = ","
    NOT = "!"
    DOUBLE_EQUALS = "=="
    EQUALS = "="
    GREATER = ">"
    IDENT = "identifier"
    IN = "in"
    LESS = "<"
    NOT_EQUALS = "!="
    NOT_IN = "notin"
    OPEN = "("


_SPECIAL = frozenset("=!(),<>")
_WHITESPACE = frozenset(" \t\r\n")
_SYMBOLS = {
    ")": _Tok.CLOSE,
    ",": _Tok.COMMA,
    "!": _Tok.NOT,
    "==": _Tok.DOUBLE_EQUALS,
    "=": _Tok.EQUALS,
    ">": _Tok.GREATER,
    "<": _Tok.LESS,
    "!=": _Tok.NOT_EQUALS,
    "(": _Tok.OPEN,
}
_KEYWORDS = {"in": _Tok.IN, "notin": _Tok.NOT_IN}
_OPERATOR_TOKENS = {
    _Tok.IN: Operator.IN,
    _Tok.EQUALS: Operator.EQUALS,
    _Tok.DOUBLE_EQUALS: Operator.DOUBLE_EQUALS,
    _Tok.GREATER: Operator.GREATER_THAN,
    _Tok.LESS: Operator.LESS_THAN,
    _Tok.NOT_IN: Operator.NOT_IN,
    _Tok.NOT_EQUALS: Operator.NOT_EQUALS,
}


def _lex(text: str) -> list[tuple[_Tok, str]]:
    """The token stream of ``labels.Lexer``, ending with END.

    Special symbols are read greedily as the longest known token ("!=" and "==");
    anything else up to a special symbol or whitespace is an identifier, or the
    keyword ``in``/``notin``.
    """
    items: list[tuple[_Tok, str]] = []
    pos, size = 0, len(text)
    while True:
        while pos < size and text[pos] in _WHITESPACE:
            pos += 1
        if pos >= size:
            items.append((_Tok.END, ""))
            return items
        ch = text[pos]
        if ch in _SPECIAL:
            pair = text[pos : pos + 2]
            symbol = pair if pair in _SYMBOLS else ch
            items.append((_SYMBOLS[symbol], symbol))
            pos += len(symbol)
            continue
        start = pos
        while pos < size and text[pos] not in _SPECIAL and text[pos] not in _WHITESPACE:
            pos += 1
        word = text[start:pos]
        items.append((_KEYWORDS.get(word, _Tok.IDENT), word))


class _Parser:
    """A port of ``labels.Parser``: lookahead/consume over the scanned tokens.

    In the *values* context the keywords ``in`` and ``notin`` are plain identifiers,
    which is how ``notin=in`` parses.
    """

    def __init__(self, text: str) -> None:
        self.items = _lex(text)
        self.position = 0

    def lookahead(self, *, values: bool) -> tuple[_Tok, str]:
        tok, lit = self.items[self.position]
        if values and tok in (_Tok.IN, _Tok.NOT_IN):
            tok = _Tok.IDENT
        return tok, lit

    def consume(self, *, values: bool) -> tuple[_Tok, str]:
        tok, lit = self.lookahead(values=values)
        self.position += 1
        return tok, lit

    def parse(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        while True:
            tok, lit = self.lookahead(values=True)
            if tok in (_Tok.IDENT, _Tok.NOT):
                try:
                    requirements.append(self.parse_requirement())
                except SelectorError as exc:
                    raise SelectorError(f"unable to parse requirement: {exc}") from exc
                tok, lit = self.consume(values=True)
                if tok is _Tok.END:
                    return requirements
                if tok is _Tok.COMMA:
                    tok2, lit2 = self.lookahead(values=True)
                    if tok2 not in (_Tok.IDENT, _Tok.NOT):
                        raise SelectorError(f"found '{lit2}', expected: identifier after ','")
                else:
                    raise SelectorError(f"found '{lit}', expected: ',' or 'end of string'")
            elif tok is _Tok.END:
                return requirements
            else:
                raise SelectorError(f"found '{lit}', expected: !, identifier, or 'end of string'")

    def parse_requirement(self) -> Requirement:
        key, operator = self.parse_key_and_infer_operator()
        if operator is not None:
            return new_requirement(key, operator, values=[])
        operator = self.parse_operator()
        if operator in (Operator.IN, Operator.NOT_IN):
            values = self.parse_values()
        else:
            values = self.parse_exact_value()
        return new_requirement(key, operator, values=sorted(values))

    def parse_key_and_infer_operator(self) -> tuple[str, Operator | None]:
        operator: Operator | None = None
        tok, literal = self.consume(values=True)
        if tok is _Tok.NOT:
            operator = Operator.DOES_NOT_EXIST
            tok, literal = self.consume(values=True)
        if tok is not _Tok.IDENT:
            raise SelectorError(f"found '{literal}', expected: identifier")
        key_errs = is_qualified_name(literal)
        if key_errs:
            raise SelectorError(_invalid("<nil>", value=go_quote(literal), detail="; ".join(key_errs)))
        following, _ = self.lookahead(values=True)
        if following in (_Tok.END, _Tok.COMMA) and operator is None:
            operator = Operator.EXISTS
        return literal, operator

    def parse_operator(self) -> Operator:
        tok, lit = self.consume(values=False)
        operator = _OPERATOR_TOKENS.get(tok)
        if operator is None:
            raise SelectorError(f"found '{lit}', expected: {_BINARY_OPERATORS}")
        return operator

    def parse_values(self) -> set[str]:
        tok, lit = self.consume(values=True)
        if tok is not _Tok.OPEN:
            raise SelectorError(f"found '{lit}' expected: '('")
        tok, lit = self.lookahead(values=True)
        if tok in (_Tok.IDENT, _Tok.COMMA):
            values = self.parse_identifiers_list()
            self.consume(values=True)  # the ')' the list stopped at
            return values
        if tok is _Tok.CLOSE:
            self.consume(values=True)
            return {""}
        raise SelectorError(f"found '{lit}', expected: ',', ')' or identifier")

    def parse_identifiers_list(self) -> set[str]:
        values: set[str] = set()
        while True:
            tok, lit = self.consume(values=True)
            if tok is _Tok.IDENT:
                values.add(lit)
                tok2, lit2 = self.lookahead(values=True)
                if tok2 is _Tok.COMMA:
                    continue
                if tok2 is _Tok.CLOSE:
                    return values
                raise SelectorError(f"found '{lit2}', expected: ',' or ')'")
            if tok is _Tok.COMMA:
                if not values:
                    values.add("")  # "(,"
                tok2, _ = self.lookahead(values=True)
                if tok2 is _Tok.CLOSE:
                    values.add("")  # ",)"
                    return values
                if tok2 is _Tok.COMMA:
                    self.consume(values=True)
                    values.add("")  # ",,"
                continue
            raise SelectorError(f"found '{lit}', expected: ',', or identifier")

    def parse_exact_value(self) -> set[str]:
        tok, _ = self.lookahead(values=True)
        if tok in (_Tok.END, _Tok.COMMA):
            return {""}
        tok, lit = self.consume(values=True)
        if tok is _Tok.IDENT:
            return {lit}
        raise SelectorError(f"found '{lit}', expected: identifier")


def parse_label_selector(text: str) -> LabelSelector:
    """``labels.Parse``: ``a=b,c!=d,e in (f,g),h notin (i),j,!k,l>1,m<2``.

    ``""`` gives :data:`EVERYTHING`. Raises :class:`SelectorError` with upstream's
    message (``unable to parse requirement: ...``, ``found 'x', expected: ...``).
    """
    requirements = _Parser(text).parse()
    if not requirements:
        return EVERYTHING
    return LabelSelector(requirements)


_SPEC_OPERATORS = {
    "In": Operator.IN,
    "NotIn": Operator.NOT_IN,
    "Exists": Operator.EXISTS,
    "DoesNotExist": Operator.DOES_NOT_EXIST,
}


def _shape_error(where: str, expected: str) -> SelectorError:
    """A selector that is not JSON of metav1.LabelSelector's shape (validation normally stops it)."""
    return SelectorError(f"invalid label selector: {where} must be {expected}")


def label_selector_from_spec(spec: Mapping[str, Any] | None) -> LabelSelector:
    """``metav1.LabelSelectorAsSelector``: a ``{matchLabels, matchExpressions}`` object.

    None (a nil selector) gives :data:`NOTHING`; an object with neither field set gives
    :data:`EVERYTHING`. Invalid keys, values and operators raise :class:`SelectorError`.
    """
    if spec is None:
        return NOTHING
    if not isinstance(spec, Mapping):
        raise _shape_error("the selector", "an object")
    match_labels = spec.get("matchLabels") or {}
    expressions = spec.get("matchExpressions") or []
    if not isinstance(match_labels, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in match_labels.items()
    ):
        raise _shape_error("matchLabels", "a map of strings")
    if not isinstance(expressions, list) or not all(isinstance(e, Mapping) for e in expressions):
        raise _shape_error("matchExpressions", "a list of objects")
    if not match_labels and not expressions:
        return EVERYTHING
    requirements = [new_requirement(k, Operator.EQUALS, values=[v]) for k, v in sorted(match_labels.items())]
    for expression in expressions:
        raw_operator = expression.get("operator", "")
        operator = _SPEC_OPERATORS.get(raw_operator)
        if operator is None:
            raise SelectorError(f"{go_quote(str(raw_operator))} is not a valid label selector operator")
        key, values = (
            expression.get("key", ""),
            expression.get("values") or None,
        )  # Go copies into a nil slice
        if not isinstance(key, str) or not (
            values is None or (isinstance(values, list) and all(isinstance(v, str) for v in values))
        ):
            raise _shape_error("a match expression", "a string key with string values")
        requirements.append(new_requirement(key, operator, values=values))
    return LabelSelector(requirements)


def format_label_selector(spec: Mapping[str, Any] | None) -> str:
    """``metav1.FormatLabelSelector``: the string form, ``<none>`` if empty, ``<error>`` if invalid."""
    try:
        text = str(label_selector_from_spec(spec))
    except SelectorError:
        return "<error>"
    return text or "<none>"


def format_labels(labels: Mapping[str, str] | None) -> str:
    """``labels.FormatLabels``: ``k=v`` pairs sorted, comma-joined, ``<none>`` if empty."""
    text = ",".join(sorted(f"{k}={v}" for k, v in (labels or {}).items()))
    return text or "<none>"


# --- field selectors ------------------------------------------------------------------


@dataclass(frozen=True)
class FieldRequirement:
    """One field term: ``field`` ``operator`` (``=`` or ``!=``) ``value`` (unescaped)."""

    field: str
    operator: str
    value: str

    def __str__(self) -> str:
        return f"{self.field}{self.operator}{escape_field_value(self.value)}"


FieldGetter = Callable[[str], str]


class FieldSelector:
    """A conjunction of field terms (``fields.Selector``); ``==`` is stored as ``=``."""

    __slots__ = ("requirements",)

    requirements: tuple[FieldRequirement, ...]

    def __init__(self, requirements: Iterable[FieldRequirement] = ()) -> None:
        self.requirements = tuple(requirements)

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matches(self, getter: FieldGetter) -> bool:
        """True when every term holds; ``getter(field)`` returns the object's value ("" if unset)."""
        for requirement in self.requirements:
            if (getter(requirement.field) == requirement.value) != (requirement.operator == "="):
                return False
        return True

    def exact_match(self, field_name: str) -> str | None:
        """``RequiresExactMatch``: the value an ``=`` term pins ``field_name`` to, if any."""
        for requirement in self.requirements:
            if requirement.field == field_name and requirement.operator == "=":
                return requirement.value
        return None

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)

    def __repr__(self) -> str:
        return f"FieldSelector({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FieldSelector):
            return NotImplemented
        return self.requirements == other.requirements

    def __hash__(self) -> int:
        return hash(self.requirements)


_FIELD_ESCAPES = str.maketrans({"\\": "\\\\", ",": "\\,", "=": "\\="})


def escape_field_value(value: str) -> str:
    """``fields.EscapeValue``: backslash-escape ``\\``, ``,`` and ``=``."""
    return value.translate(_FIELD_ESCAPES)


def _unescape_field_value(value: str) -> str:
    if "\\" not in value and "," not in value and "=" not in value:
        return value
    out: list[str] = []
    escaped = False
    for ch in value:
        if escaped:
            if ch not in "\\,=":
                raise SelectorError(f"invalid field selector: invalid escape sequence: \\{ch}")
            out.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch in ",=":
            # Go prints the rune with %v, that is as its number.
            raise SelectorError(f"invalid field selector: unescaped character in value: {ord(ch)}")
        else:
            out.append(ch)
    if escaped:
        raise SelectorError("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def _split_field_terms(text: str) -> list[str]:
    terms: list[str] = []
    start = 0
    escaped = False
    for i, ch in enumerate(text):
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ",":
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return terms


def _split_field_term(term: str) -> tuple[str, str, str] | None:
    for i in range(len(term)):
        for op in ("!=", "==", "="):
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op) :]
    return None


def parse_field_selector(text: str) -> FieldSelector:
    """``fields.ParseSelector``: ``a=b,c!=d``, with ``\\`` escaping ``,`` ``=`` ``\\`` in values.

    Terms are sorted as upstream sorts them; a term with neither field nor value
    (``=``) is dropped. Raises :class:`SelectorError` with upstream's message.
    """
    if not text:
        return FieldSelector()
    requirements: list[FieldRequirement] = []
    for part in sorted(_split_field_terms(text)):
        if not part:
            continue
        split = _split_field_term(part)
        if split is None:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{part}'")
        lhs, op, rhs = split
        value = _unescape_field_value(rhs)
        if not lhs and not value:
            continue
        requirements.append(FieldRequirement(field=lhs, operator="!=" if op == "!=" else "=", value=value))
    return FieldSelector(requirements)
