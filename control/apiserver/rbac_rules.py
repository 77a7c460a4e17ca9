"""Does one RBAC PolicyRule cover a request? Upstream's ``rbac.RuleAllows``, shared by the RBAC
authorizer, the Node authorizer (which allows the ``system:node`` rules) and the escalation checks.

Rules are the stored ``rbac.authorization.k8s.io/v1`` PolicyRule dicts (``verbs``, ``apiGroups``,
``resources``, ``resourceNames``, ``nonResourceURLs``), so no conversion sits on the hot path.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from control.apiserver.authorization import Attributes

ALL = "*"


def verb_matches(rule: Mapping[str, Any], verb: str) -> bool:
    verbs = rule.get("verbs") or ()
    return ALL in verbs or verb in verbs


def api_group_matches(rule: Mapping[str, Any], group: str) -> bool:
    groups = rule.get("apiGroups") or ()
    return ALL in groups or group in groups


def resource_matches(rule: Mapping[str, Any], resource: str, subresource: str) -> bool:
    """``pods`` matches ``pods``; ``pods/log`` matches ``pods`` with subresource ``log``; ``*/scale``
    matches any resource's scale; ``*`` matches everything, subresources included."""
    resources = rule.get("resources") or ()
    if not subresource:
        return ALL in resources or resource in resources
    combined = f"{resource}/{subresource}"
    return ALL in resources or combined in resources or f"*/{subresource}" in resources


def resource_name_matches(rule: Mapping[str, Any], name: str) -> bool:
    names = rule.get("resourceNames") or ()
    return not names or name in names


def non_resource_url_matches(rule: Mapping[str, Any], path: str) -> bool:
    for url in rule.get("nonResourceURLs") or ():
        if url in (ALL, path) or (url.endswith(ALL) and path.startswith(url.rstrip(ALL))):
            return True
    return False


def rule_allows(attributes: Attributes, rule: Mapping[str, Any]) -> bool:
    if not verb_matches(rule, attributes.verb):
        return False
    if not attributes.resource_request:
        return non_resource_url_matches(rule, attributes.path)
    return (
        api_group_matches(rule, attributes.api_group)
        and resource_matches(rule, attributes.resource, attributes.subresource)
        and resource_name_matches(rule, attributes.name)
    )


def rules_allow(attributes: Attributes, rules: Iterable[Mapping[str, Any]]) -> bool:
    return any(rule_allows(attributes, rule) for rule in rules)
