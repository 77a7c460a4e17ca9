"""Label selectors and node selectors, compiled once and matched many times.

Two selector languages reach the scheduler, with different rules (as in apimachinery's
``labels`` and component-helpers' ``nodeaffinity``):

- A **LabelSelector** (``matchLabels`` + ``matchExpressions`` with ``In``, ``NotIn``,
  ``Exists``, ``DoesNotExist``) picks pods: in pod (anti-)affinity terms, topology spread
  constraints, and the selectors of Services, ReplicaSets and StatefulSets. An empty selector
  (``{}``) matches every pod; an *absent* one matches none (``LabelSelectorAsSelector(nil)``).
- A **NodeSelector** (a list of terms, ORed; each term ANDs ``matchExpressions`` on labels —
  ``In``, ``NotIn``, ``Exists``, ``DoesNotExist``, ``Gt``, ``Lt`` — and ``matchFields``, where
  only ``metadata.name`` exists) picks nodes in node affinity. A term with no requirements
  matches nothing.

``NotIn`` and ``DoesNotExist`` match objects that lack the key. ``Gt``/``Lt`` compare the label
as an integer; a label that is not one does not match. A selector the API would have rejected
(an unknown operator, ``In`` without values, ``Gt`` with a non-integer) raises
:class:`InvalidSelectorError` naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

_LABEL_OPERATORS = frozenset({"In", "NotIn", "Exists", "DoesNotExist"})
_NODE_OPERATORS = _LABEL_OPERATORS | {"Gt", "Lt"}
NODE_NAME_FIELD = "metadata.name"


class InvalidSelectorError(ValueError):
    """A selector that cannot be evaluated; the message names the field."""


def _requirement(raw: Any, *, path: str, operators: frozenset[str]) -> tuple[str, str, Any]:
    if not isinstance(raw, Mapping):
        raise InvalidSelectorError(f"{path}: must be an object")
    key, operator, values = raw.get("key"), raw.get("operator"), raw.get("values") or []
    if not isinstance(key, str) or not key:
        raise InvalidSelectorError(f"{path}.key: Required value")
    if operator not in operators:
        raise InvalidSelectorError(
            f"{path}.operator: Unsupported value: {operator!r}: supported values: "
            + ", ".join(f'"{op}"' for op in sorted(operators))
        )
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise InvalidSelectorError(f"{path}.values: must be a list of strings")
    if operator in ("In", "NotIn") and not values:
        raise InvalidSelectorError(
            f"{path}.values: Required value: must be specified when `operator` is 'In' or 'NotIn'"
        )
    if operator in ("Exists", "DoesNotExist") and values:
        raise InvalidSelectorError(
            f"{path}.values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
        )
    if operator in ("Gt", "Lt"):
        if len(values) != 1:
            raise InvalidSelectorError(
                f"{path}.values: Required value: must be specified single value when `operator` is 'Lt' or 'Gt'"
            )
        try:
            return key, operator, int(values[0])
        except ValueError as exc:
            raise InvalidSelectorError(
                f"{path}.values[0]: Invalid value: {values[0]!r}: must be an integer"
            ) from exc
    return key, operator, frozenset(values)


def _matches(requirements: Sequence[tuple[str, str, Any]], labels: Mapping[str, str]) -> bool:
    for key, operator, values in requirements:
        if operator == "In":
            if labels.get(key) not in values:
                return False
        elif operator == "NotIn":
            if key in labels and labels[key] in values:
                return False
        elif operator == "Exists":
            if key not in labels:
                return False
        elif operator == "DoesNotExist":
            if key in labels:
                return False
        else:  # Gt / Lt
            try:
                number = int(labels[key])
            except (KeyError, ValueError):
                return False
            if (operator == "Gt" and not number > values) or (operator == "Lt" and not number < values):
                return False
    return True


class LabelSelector:
    """A compiled ``metav1.LabelSelector``. Immutable; share freely."""

    __slots__ = ("_requirements", "matches_nothing")

    def __init__(
        self, requirements: Sequence[tuple[str, str, Any]] = (), *, matches_nothing: bool = False
    ) -> None:
        self._requirements = tuple(requirements)
        self.matches_nothing = matches_nothing

    @classmethod
    def parse(cls, raw: Any, *, path: str) -> LabelSelector:
        """``None`` → matches nothing; ``{}`` → matches everything."""
        if raw is None:
            return NOTHING
        if not isinstance(raw, Mapping):
            raise InvalidSelectorError(f"{path}: must be an object")
        requirements: list[tuple[str, str, Any]] = []
        match_labels = raw.get("matchLabels") or {}
        if not isinstance(match_labels, Mapping):
            raise InvalidSelectorError(f"{path}.matchLabels: must be a map of strings")
        for key, label in match_labels.items():
            if not isinstance(label, str):
                raise InvalidSelectorError(f"{path}.matchLabels[{key}]: must be a string")
            requirements.append((key, "In", frozenset((label,))))
        expressions = raw.get("matchExpressions") or []
        if not isinstance(expressions, list):
            raise InvalidSelectorError(f"{path}.matchExpressions: must be a list")
        for index, expression in enumerate(expressions):
            requirements.append(
                _requirement(expression, path=f"{path}.matchExpressions[{index}]", operators=_LABEL_OPERATORS)
            )
        return cls(requirements)

    @classmethod
    def from_labels(cls, labels: Mapping[str, str]) -> LabelSelector:
        """Equality on every pair (a Service's ``spec.selector``; ``{}`` matches everything)."""
        return cls([(key, "In", frozenset((label,))) for key, label in labels.items()])

    def with_requirements(self, requirements: Sequence[tuple[str, str, Any]]) -> LabelSelector:
        """This selector ANDed with more requirements (``matchLabelKeys``, merged owner selectors)."""
        if self.matches_nothing:
            return self
        return LabelSelector(self._requirements + tuple(requirements))

    @property
    def requirements(self) -> tuple[tuple[str, str, Any], ...]:
        return self._requirements

    @property
    def is_empty(self) -> bool:
        """Selects everything (no requirements)."""
        return not self._requirements and not self.matches_nothing

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.matches_nothing:
            return False
        return _matches(self._requirements, labels)


NOTHING = LabelSelector(matches_nothing=True)
EVERYTHING = LabelSelector()


class NodeSelectorTerm:
    """One ``NodeSelectorTerm``: label expressions AND ``metadata.name`` field expressions."""

    __slots__ = ("_expressions", "_fields")

    def __init__(self, raw: Any, *, path: str) -> None:
        if not isinstance(raw, Mapping):
            raise InvalidSelectorError(f"{path}: must be an object")
        expressions = raw.get("matchExpressions") or []
        fields = raw.get("matchFields") or []
        if not isinstance(expressions, list) or not isinstance(fields, list):
            raise InvalidSelectorError(f"{path}: matchExpressions and matchFields must be lists")
        self._expressions = tuple(
            _requirement(item, path=f"{path}.matchExpressions[{i}]", operators=_NODE_OPERATORS)
            for i, item in enumerate(expressions)
        )
        parsed_fields = []
        for i, item in enumerate(fields):
            key, operator, values = _requirement(
                item, path=f"{path}.matchFields[{i}]", operators=frozenset({"In", "NotIn"})
            )
            if key != NODE_NAME_FIELD:
                raise InvalidSelectorError(
                    f'{path}.matchFields[{i}].key: Invalid value: "{key}": not a valid field selector key'
                )
            parsed_fields.append((key, operator, values))
        self._fields = tuple(parsed_fields)

    @property
    def is_empty(self) -> bool:
        return not self._expressions and not self._fields

    def matches(self, node_name: str, labels: Mapping[str, str]) -> bool:
        if self.is_empty:
            return False
        if self._fields and not _matches(self._fields, {NODE_NAME_FIELD: node_name}):
            return False
        return _matches(self._expressions, labels)


class NodeSelector:
    """A ``NodeSelector``: its terms are ORed; no terms matches nothing."""

    __slots__ = ("_terms",)

    def __init__(self, raw: Any, *, path: str) -> None:
        if not isinstance(raw, Mapping):
            raise InvalidSelectorError(f"{path}: must be an object")
        terms = raw.get("nodeSelectorTerms") or []
        if not isinstance(terms, list):
            raise InvalidSelectorError(f"{path}.nodeSelectorTerms: must be a list")
        self._terms = tuple(
            NodeSelectorTerm(term, path=f"{path}.nodeSelectorTerms[{i}]") for i, term in enumerate(terms)
        )

    def matches(self, node_name: str, labels: Mapping[str, str]) -> bool:
        return any(term.matches(node_name, labels) for term in self._terms)
