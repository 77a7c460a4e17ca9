"""The selection a list or watch asks for: label selector AND field selector, compiled once.

Parsing errors become 400 BadRequest with the selector parser's message (what upstream
answers for ``-l 'a in b'`` or an unsupported field label).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from control.apiserver import errors
from control.resources import fields, selectors
from control.resources.registry import ResourceType


@dataclass(frozen=True, slots=True)
class Predicate:
    accept: Callable[[dict[str, Any]], bool] | None  # None: everything matches
    name: str  # the name a ``metadata.name=`` field selector pins, or ""

    @property
    def matches_everything(self) -> bool:
        return self.accept is None

    def matches(self, obj: dict[str, Any]) -> bool:
        return self.accept is None or self.accept(obj)


def compile_predicate(rt: ResourceType, *, label_selector: str, field_selector: str) -> Predicate:
    try:
        labels = selectors.parse_label_selector(label_selector)
        field = selectors.parse_field_selector(field_selector)
        accept = fields.object_filter(rt, labels=labels, fields=field)
    except selectors.SelectorError as exc:
        raise errors.bad_request(str(exc)) from exc
    return Predicate(accept=accept, name=field.exact_match("metadata.name") or "")
