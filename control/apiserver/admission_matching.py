"""Which admission requests a webhook or an admission policy applies to: rules and selectors.

Admission webhooks and ValidatingAdmissionPolicies choose requests the same way (upstream's
``k8s.io/apiserver/pkg/admission/plugin/webhook/predicates`` and ``policy/generic``'s matcher):
rules over operation, API group, version, resource and subresource (policies add resource
names and exclusions), a namespace selector over the labels of the request's namespace, and an
object selector over the new or the old object's labels. This module is that shared part; the
webhook plugins (:mod:`control.apiserver.webhook_admission`) and the policy plugin
(:mod:`control.apiserver.validating_admission_policy`) only add what is theirs.

A Namespace written is its own namespace for the namespace selector (a create or update sees the
new labels), cluster-scoped objects always pass it, and a namespace that does not exist answers
404 as upstream's namespace matcher does. ``matchPolicy: Equivalent`` matches as ``Exact``:
kubelab serves one version of each built-in kind, so there is nothing to be equivalent to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from control.apiserver import errors
from control.apiserver.admission import CREATE, UPDATE, AdmissionRequest
from control.apiserver.resource_store import ResourceStore
from control.resources.registry import ResourceType
from control.resources.selectors import EVERYTHING, LabelSelector, SelectorError, label_selector_from_spec


@dataclass(frozen=True, kw_only=True)
class Rule:
    """One ``RuleWithOperations`` (or a policy's ``NamedRuleWithOperations``); resources as
    (resource, subresource) pairs."""

    operations: frozenset[str]
    groups: frozenset[str]
    versions: frozenset[str]
    resources: tuple[tuple[str, str], ...]
    scope: str
    resource_names: frozenset[str] = frozenset()

    @classmethod
    def from_object(cls, rule: dict[str, Any]) -> Rule:
        return cls(
            operations=frozenset(str(o) for o in rule.get("operations") or ()),
            groups=frozenset(str(g) for g in rule.get("apiGroups") or ()),
            versions=frozenset(str(v) for v in rule.get("apiVersions") or ()),
            resources=tuple(_split_resource(str(r)) for r in rule.get("resources") or ()),
            scope=str(rule.get("scope") or "*"),
            resource_names=frozenset(str(n) for n in rule.get("resourceNames") or ()),
        )

    def matches(self, request: AdmissionRequest) -> bool:
        """predicates/rules ``Matcher.Matches`` (and ``resourceNames`` for named rules)."""
        rt = request.rt
        if "*" not in self.operations and request.operation not in self.operations:
            return False
        if "*" not in self.groups and rt.group not in self.groups:
            return False
        if "*" not in self.versions and rt.version not in self.versions:
            return False
        if not any(
            (resource in ("*", rt.plural)) and (subresource in ("*", request.subresource))
            for resource, subresource in self.resources
        ):
            return False
        if self.resource_names and request.name not in self.resource_names:
            return False
        if self.scope == "Namespaced":
            return not is_namespace(rt) and bool(request.namespace)
        if self.scope == "Cluster":
            return is_namespace(rt) or not request.namespace
        return True


@dataclass(frozen=True, kw_only=True)
class Selectors:
    """A namespaceSelector and an objectSelector, parsed; a selector that does not parse is
    kept as its error (an internal error when a request reaches it, as upstream)."""

    namespace: LabelSelector
    object: LabelSelector
    error: str

    @classmethod
    def from_object(cls, spec: dict[str, Any]) -> Selectors:
        error = ""
        parsed = []
        for key in ("namespaceSelector", "objectSelector"):
            try:
                parsed.append(label_selector_from_spec(spec.get(key) or {}))
            except SelectorError as exc:
                parsed.append(EVERYTHING)
                error = str(exc)
        return cls(namespace=parsed[0], object=parsed[1], error=error)

    async def match(self, request: AdmissionRequest, namespace: NamespaceOfRequest) -> bool:
        if self.error:
            raise errors.internal(self.error)
        in_namespace = bool(request.namespace) or is_namespace(request.rt)
        if in_namespace and not self.namespace.empty and not self.namespace.matches(await namespace.labels()):
            return False
        return (
            self.object.empty
            or labels_match(self.object, request.obj)
            or labels_match(self.object, request.old)
        )


@dataclass(frozen=True, kw_only=True)
class MatchResources:
    """A policy's ``matchConstraints`` or a binding's ``matchResources`` (upstream's
    ``generic.Matcher.Matches``): selectors, then exclusions, then rules (none: everything)."""

    selectors: Selectors
    rules: tuple[Rule, ...]
    excluded: tuple[Rule, ...]

    @classmethod
    def from_object(cls, spec: dict[str, Any]) -> MatchResources:
        return cls(
            selectors=Selectors.from_object(spec),
            rules=_rules(spec.get("resourceRules")),
            excluded=_rules(spec.get("excludeResourceRules")),
        )

    async def match(self, request: AdmissionRequest, namespace: NamespaceOfRequest) -> bool:
        if not await self.selectors.match(request, namespace):
            return False
        if any(rule.matches(request) for rule in self.excluded):
            return False
        return not self.rules or any(rule.matches(request) for rule in self.rules)


def _rules(entries: Any) -> tuple[Rule, ...]:
    return tuple(Rule.from_object(entry) for entry in entries or () if isinstance(entry, dict))


class NamespaceOfRequest:
    """The namespace a request is in, read at most once however many matchers ask for it."""

    def __init__(self, *, objects: ResourceStore, request: AdmissionRequest) -> None:
        self._objects = objects
        self._request = request
        self._namespace: dict[str, Any] | None = None
        self._read = False

    async def object(self) -> dict[str, Any] | None:
        """The Namespace the request's object lives in (None for cluster-scoped requests and
        for writes to Namespaces themselves, as upstream's ``namespaceObject``)."""
        request = self._request
        if is_namespace(request.rt) or not request.namespace:
            return None
        if not self._read:
            rt = self._objects.registry.lookup(group="", version="v1", plural="namespaces")
            if rt is not None:
                self._namespace = await self._objects.get(rt, namespace="", name=request.namespace)
            self._read = True
        return self._namespace

    async def labels(self) -> dict[str, str]:
        """``namespace.Matcher.GetNamespaceLabels``: a Namespace written is its own namespace."""
        request = self._request
        if is_namespace(request.rt):
            writing = request.operation in (CREATE, UPDATE) and not request.subresource
            return labels_of(request.obj if writing else request.old)
        return labels_of(await self.object())


_ADMISSION_CONFIGURATION = frozenset(
    {
        "mutatingwebhookconfigurations",
        "validatingwebhookconfigurations",
        "validatingadmissionpolicies",
        "validatingadmissionpolicybindings",
        "mutatingadmissionpolicies",
        "mutatingadmissionpolicybindings",
    }
)


def is_exempt(rt: ResourceType) -> bool:
    """Upstream's IsExemptAdmissionConfigurationResource: webhooks and policies never see the
    objects that configure them, so a bad one can always be removed."""
    return rt.group == "admissionregistration.k8s.io" and rt.plural in _ADMISSION_CONFIGURATION


def _split_resource(entry: str) -> tuple[str, str]:
    resource, _, subresource = entry.partition("/")
    return resource, subresource


def is_namespace(rt: ResourceType) -> bool:
    return not rt.group and rt.plural == "namespaces"


def labels_of(obj: dict[str, Any] | None) -> dict[str, str]:
    labels = ((obj or {}).get("metadata") or {}).get("labels")
    return labels if isinstance(labels, dict) else {}


def labels_match(selector: LabelSelector, obj: dict[str, Any] | None) -> bool:
    return obj is not None and selector.matches(labels_of(obj))
