"""ClusterRole aggregation: the rules an ``aggregationRule`` gathers from the ClusterRoles its
selectors match.

Both the ClusterRole aggregation controller (which keeps aggregated roles current) and the API
server's bootstrap policy (which writes ``admin``/``edit``/``view`` already filled, so an API
server without the controller manager is consistent) compute it, so it lives with the kinds
rather than in either.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from control.resources.selectors import label_selector_from_spec

Obj = Mapping[str, Any]


def _canonical(rule: Obj) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """A rule for comparison: absent and empty lists are the same (Go's semantic equality)."""
    return tuple(sorted((key, tuple(value)) for key, value in rule.items() if value))


def aggregated_rules(*, name: str, selectors: Iterable[Obj], cluster_roles: Iterable[Obj]) -> list[Obj]:
    """The rules of the ClusterRoles that ``selectors`` match, ``name`` excepted, in upstream's
    order (selector by selector, roles by name) with each rule kept once.

    Raises :class:`~control.resources.selectors.SelectorError` for an invalid selector.
    """
    roles = sorted(cluster_roles, key=lambda role: role["metadata"]["name"])
    rules: list[Obj] = []
    seen: set[tuple[tuple[str, tuple[str, ...]], ...]] = set()
    for spec in selectors:
        selector = label_selector_from_spec(spec)
        for role in roles:
            metadata = role["metadata"]
            if metadata["name"] == name or not selector.matches(metadata.get("labels") or {}):
                continue
            for rule in role.get("rules") or ():
                canonical = _canonical(rule)
                if canonical not in seen:
                    seen.add(canonical)
                    rules.append(rule)
    return rules


def same_rules(left: Iterable[Obj], right: Iterable[Obj]) -> bool:
    return [_canonical(rule) for rule in left] == [_canonical(rule) for rule in right]
