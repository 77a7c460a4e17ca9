"""May this user do this? The authorizer interface and the chain the API server runs.

As kube-apiserver: every request becomes :class:`Attributes` (user, verb, and either the
resource coordinates or the non-resource path); the configured authorizers (``--authorization-mode``,
e.g. ``Node,RBAC``) are asked in order and the first that allows or denies decides — one
with no opinion passes the question on, and if none allows, the request is refused with a
403 worded as upstream's. Members of ``system:masters`` are allowed everything before any
authorizer is asked (upstream's privileged-group authorizer), so the admin kubeconfig never
depends on RBAC objects being intact.

Authorizers answer synchronously from in-memory state (each follows the objects it needs),
which keeps authorization out of the request's latency budget.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from control.apiserver import errors
from control.apiserver.authn import UserInfo
from control.apiserver.requestinfo import RequestInfo
from control.resources.selectors import SelectorError, parse_field_selector

SUPERUSER_GROUP = "system:masters"
AUTHORIZATION_MODES = ("AlwaysAllow", "AlwaysDeny", "Node", "RBAC")


class Decision(enum.Enum):
    ALLOW = "Allow"
    DENY = "Deny"
    NO_OPINION = "NoOpinion"


@dataclass(frozen=True, kw_only=True, slots=True)
class Attributes:
    """What is being asked (upstream's authorizer.Attributes)."""

    user: UserInfo
    verb: str
    resource_request: bool = True
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""  # the path, for non-resource requests

    @classmethod
    def from_request(
        cls, *, user: UserInfo, info: RequestInfo, query: Mapping[str, str] | None = None
    ) -> Attributes:
        """The attributes of a parsed request. A list or watch whose ``fieldSelector`` pins
        ``metadata.name`` (``query``: the request's query) is about that one object, so its name
        is the attributes' name, as upstream's RequestInfoFactory sets it: that is what lets a
        kubelet watch the single Secret its pod uses. A selector that does not parse names nothing
        (the list handler answers it with a 400)."""
        if not info.is_resource_request:
            return cls(user=user, verb=info.verb, resource_request=False, path=info.path)
        name = info.name
        if not name and info.verb in ("list", "watch") and query:
            name = _selected_name(query.get("fieldSelector", ""))
        return cls(
            user=user,
            verb=info.verb,
            api_group=info.group,
            api_version=info.version,
            resource=info.resource,
            subresource=info.subresource,
            namespace=info.namespace,
            name=name,
            path=info.path,
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class SubjectRules:
    """What a user may do in a namespace, as SelfSubjectRulesReview reports it: rules in the
    shape of ``authorization.k8s.io/v1`` ResourceRule and NonResourceRule."""

    resource_rules: tuple[dict[str, Any], ...] = ()
    non_resource_rules: tuple[dict[str, Any], ...] = ()
    incomplete: bool = False
    evaluation_error: str = ""


class Authorizer(Protocol):
    def authorize(self, attributes: Attributes) -> tuple[Decision, str]:
        """The decision and, for a denial or no opinion, the reason (may be empty)."""
        ...

    def rules_for(self, user: UserInfo, namespace: str) -> SubjectRules:
        """Everything ``user`` may do in ``namespace`` (cluster-wide rules included)."""
        ...


class AlwaysAllow:
    def authorize(self, attributes: Attributes) -> tuple[Decision, str]:
        return Decision.ALLOW, ""

    def rules_for(self, user: UserInfo, namespace: str) -> SubjectRules:
        return SubjectRules(
            resource_rules=({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]},),
            non_resource_rules=({"verbs": ["*"], "nonResourceURLs": ["*"]},),
        )


class AlwaysDeny:
    def authorize(self, attributes: Attributes) -> tuple[Decision, str]:
        return Decision.NO_OPINION, "Everything is forbidden."

    def rules_for(self, user: UserInfo, namespace: str) -> SubjectRules:
        return SubjectRules()


@dataclass(kw_only=True)
class AuthorizerChain:
    """The superuser group, then each authorizer in order; the first Allow or Deny wins."""

    authorizers: Sequence[Authorizer] = field(default_factory=tuple)

    def authorize(self, attributes: Attributes) -> tuple[Decision, str]:
        if SUPERUSER_GROUP in attributes.user.groups:
            return Decision.ALLOW, ""
        reasons: list[str] = []
        for authorizer in self.authorizers:
            decision, reason = authorizer.authorize(attributes)
            if decision is not Decision.NO_OPINION:
                return decision, reason
            if reason:
                reasons.append(reason)
        return Decision.NO_OPINION, "; ".join(reasons)

    def rules_for(self, user: UserInfo, namespace: str) -> SubjectRules:
        if SUPERUSER_GROUP in user.groups:
            return AlwaysAllow().rules_for(user, namespace)
        resource_rules: list[dict[str, Any]] = []
        non_resource_rules: list[dict[str, Any]] = []
        incomplete = False
        problems: list[str] = []
        for authorizer in self.authorizers:
            rules = authorizer.rules_for(user, namespace)
            resource_rules.extend(rules.resource_rules)
            non_resource_rules.extend(rules.non_resource_rules)
            incomplete = incomplete or rules.incomplete
            if rules.evaluation_error:
                problems.append(rules.evaluation_error)
        return SubjectRules(
            resource_rules=tuple(resource_rules),
            non_resource_rules=tuple(non_resource_rules),
            incomplete=incomplete,
            evaluation_error="; ".join(problems),
        )

    def allowed(self, attributes: Attributes) -> bool:
        return self.authorize(attributes)[0] is Decision.ALLOW

    def check(self, attributes: Attributes) -> None:
        """Raise upstream's 403 unless ``attributes`` is allowed."""
        decision, reason = self.authorize(attributes)
        if decision is not Decision.ALLOW:
            raise forbidden(attributes, reason)


def forbidden_message(attributes: Attributes) -> str:
    """Upstream's ``forbiddenMessage``: ``User "x" cannot list resource "pods" in API group ""
    in the namespace "y"`` (``at the cluster scope`` without a namespace; ``path "/x"`` for
    non-resource requests)."""
    username = attributes.user.name
    if not attributes.resource_request:
        return f"User {_quote(username)} cannot {attributes.verb} path {_quote(attributes.path)}"
    resource = attributes.resource
    if attributes.subresource:
        resource = f"{resource}/{attributes.subresource}"
    where = (
        f"in the namespace {_quote(attributes.namespace)}" if attributes.namespace else "at the cluster scope"
    )
    return (
        f"User {_quote(username)} cannot {attributes.verb} resource {_quote(resource)} "
        f"in API group {_quote(attributes.api_group)} {where}"
    )


def forbidden(attributes: Attributes, reason: str = "") -> errors.StatusError:
    """The 403 Status upstream's ``responsewriters.Forbidden`` writes for a refused request."""
    message = forbidden_message(attributes)
    if reason:
        message = f"{message}: {reason}"
    if not attributes.resource_request:
        return errors.StatusError(code=403, reason="Forbidden", message=f"forbidden: {message}")
    qualified = (
        f"{attributes.resource}.{attributes.api_group}" if attributes.api_group else attributes.resource
    )
    subject = f"{qualified} {_quote(attributes.name)}" if attributes.name else qualified
    return errors.StatusError(
        code=403,
        reason="Forbidden",
        message=f"{subject} is forbidden: {message}",
        details={
            key: value
            for key, value in (
                ("name", attributes.name),
                ("group", attributes.api_group),
                ("kind", attributes.resource),
            )
            if value
        },
    )


def _selected_name(field_selector: str) -> str:
    """The name a field selector requires exactly (``metadata.name=x`` or ``==``, alone or ANDed
    with other terms), if it is a valid path segment; "" otherwise."""
    if not field_selector:
        return ""
    try:
        selector = parse_field_selector(field_selector)
    except SelectorError:
        return ""
    for requirement in selector.requirements:
        if requirement.field == "metadata.name" and requirement.operator == "=":
            name = requirement.value
            if name in (".", "..") or "/" in name or "%" in name:
                return ""
            return name
    return ""


def _quote(text: str) -> str:
    """Go's %q for the strings these messages carry."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
