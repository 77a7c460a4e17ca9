"""RBAC: who may do what, from the Roles, ClusterRoles and their bindings (kube-apiserver's
``--authorization-mode=RBAC``), and the escalation checks on writes of those objects.

:class:`RBACAuthorizer` follows the four ``rbac.authorization.k8s.io`` prefixes of the store
and keeps them in memory, bindings indexed by subject (User name, Group name, ServiceAccount
namespace/name), so answering needs no I/O. It is upstream's ``DefaultRuleResolver`` and
``RBACAuthorizer``: a user's rules in a namespace are those of every ClusterRoleBinding
naming the user, one of their groups or their ServiceAccount, then those of every
RoleBinding of that namespace that does; a binding to a missing role contributes an error
instead (``RBAC: clusterrole.rbac.authorization.k8s.io "x" not found``), reported with the
denial. The resolved rules are cached per (user, groups, namespace), and each of those keeps
the decisions it already made, so a repeated request costs two dictionary lookups. Any change
to any RBAC object empties the cache: such changes are rare, requests are not.

:class:`RBACEscalationCheck` is upstream's ``policybased`` storage wrapped around the four
kinds, as an admission plugin: a user may create or update a Role or ClusterRole only with
rules they already hold in that namespace (cluster-wide for ClusterRoles) unless allowed to
``escalate`` it, and a binding only to a role whose rules they hold unless allowed to
``bind`` it. Setting or changing an ``aggregationRule`` needs every right there is.
Members of ``system:masters`` are not checked. The 403 says which rules were missing, in
upstream's words.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from control.apiserver import errors
from control.apiserver.admission import CREATE, UPDATE, AdmissionRequest
from control.apiserver.authn import UserInfo
from control.apiserver.authorization import (
    SUPERUSER_GROUP,
    Attributes,
    AuthorizerChain,
    Decision,
    SubjectRules,
)
from control.apiserver.rbac_rules import ALL, rule_allows
from control.apiserver.store_follower import follow_prefix
from control.resources.registry import Registry, ResourceType
from control.resources.selectors import go_quote
from control.store import Event, EventType, KeyValue, Store

RBAC_GROUP = "rbac.authorization.k8s.io"
SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
# Resolved rule sets kept, and decisions kept per rule set; past these the cache starts over.
MAX_CACHED_SUBJECTS = 4096
MAX_CACHED_DECISIONS = 4096

Rule = Mapping[str, Any]
SubjectKey = tuple[str, str]  # ("User", name) | ("Group", name) | ("ServiceAccount", "ns/name")


@dataclass(frozen=True, slots=True)
class _Binding:
    name: str
    namespace: str  # "" for a ClusterRoleBinding
    role_kind: str
    role_name: str
    subjects: tuple[Mapping[str, Any], ...]

    @classmethod
    def from_object(cls, obj: Mapping[str, Any], *, namespace: str, name: str) -> _Binding:
        """The binding stored under ``namespace``/``name`` (the key, not the body, is trusted)."""
        role_ref = obj.get("roleRef") or {}
        return cls(
            name=name,
            namespace=namespace,
            role_kind=str(role_ref.get("kind") or ""),
            role_name=str(role_ref.get("name") or ""),
            subjects=tuple(s for s in obj.get("subjects") or () if isinstance(s, Mapping)),
        )

    def subject_keys(self) -> set[SubjectKey]:
        """The index keys under which this binding is found."""
        keys: set[SubjectKey] = set()
        for subject in self.subjects:
            kind, name = subject.get("kind"), str(subject.get("name") or "")
            if kind in ("User", "Group"):
                keys.add((kind, name))
            elif kind == "ServiceAccount":
                namespace = subject.get("namespace") or self.namespace
                if namespace:
                    keys.add(("ServiceAccount", f"{namespace}/{name}"))
        return keys

    def applying_subject(self, user: UserInfo) -> Mapping[str, Any] | None:
        """The first subject naming ``user`` (upstream's ``appliesTo``)."""
        for subject in self.subjects:
            if _applies_to(user, subject, self.namespace):
                return subject
        return None

    def describe(self, subject: Mapping[str, Any]) -> str:
        """Upstream's ``clusterRoleBindingDescriber`` / ``roleBindingDescriber``."""
        role = f"{self.role_kind} {go_quote(self.role_name)}"
        if not self.namespace:
            return f"ClusterRoleBinding {go_quote(self.name)} of {role} to {_describe_subject(subject, '')}"
        return (
            f"RoleBinding {go_quote(self.name + '/' + self.namespace)} of {role} "
            f"to {_describe_subject(subject, self.namespace)}"
        )


def _applies_to(user: UserInfo, subject: Mapping[str, Any], namespace: str) -> bool:
    kind = subject.get("kind")
    name = subject.get("name")
    if kind == "User":
        return user.name == name
    if kind == "Group":
        return name in user.groups
    if kind == "ServiceAccount":
        sa_namespace = subject.get("namespace") or namespace
        return bool(sa_namespace) and user.name == f"{SERVICE_ACCOUNT_PREFIX}{sa_namespace}:{name}"
    return False


def _describe_subject(subject: Mapping[str, Any], binding_namespace: str) -> str:
    kind = str(subject.get("kind") or "")
    name = str(subject.get("name") or "")
    if kind == "ServiceAccount":
        return f"{kind} {go_quote(name + '/' + (subject.get('namespace') or binding_namespace))}"
    return f"{kind} {go_quote(name)}"


def _subject_keys_of(user: UserInfo) -> list[SubjectKey]:
    keys: list[SubjectKey] = [("User", user.name)]
    keys.extend(("Group", group) for group in user.groups)
    if user.name.startswith(SERVICE_ACCOUNT_PREFIX):
        namespace, _, name = user.name[len(SERVICE_ACCOUNT_PREFIX) :].partition(":")
        if namespace and name:
            keys.append(("ServiceAccount", f"{namespace}/{name}"))
    return keys


def aggregate_errors(messages: Sequence[str]) -> str:
    """``utilerrors.NewAggregate(errs).Error()``: one message bare, several deduplicated in []."""
    unique = list(dict.fromkeys(messages))
    if len(unique) == 1:
        return unique[0]
    return "[" + ", ".join(unique) + "]"


class _Resolved:
    """A user's rules in one namespace, each with the binding that grants it, and the
    decisions already made from them."""

    __slots__ = ("decisions", "errors", "sources")

    def __init__(self, sources: list[tuple[str, tuple[Rule, ...]]], errors: list[str]) -> None:
        self.sources = sources
        self.errors = errors
        self.decisions: dict[tuple[Any, ...], tuple[Decision, str]] = {}

    def rules(self) -> list[Rule]:
        return [rule for _, rules in self.sources for rule in rules]

    def decide(self, attributes: Attributes) -> tuple[Decision, str]:
        key = (
            attributes.verb,
            attributes.resource_request,
            attributes.api_group,
            attributes.resource,
            attributes.subresource,
            attributes.name,
            "" if attributes.resource_request else attributes.path,
        )
        decided = self.decisions.get(key)
        if decided is None:
            decided = self._decide(attributes)
            if len(self.decisions) >= MAX_CACHED_DECISIONS:
                self.decisions.clear()
            self.decisions[key] = decided
        return decided

    def _decide(self, attributes: Attributes) -> tuple[Decision, str]:
        for source, rules in self.sources:
            for rule in rules:
                if rule_allows(attributes, rule):
                    return Decision.ALLOW, f"RBAC: allowed by {source}"
        if self.errors:
            return Decision.NO_OPINION, f"RBAC: {aggregate_errors(self.errors)}"
        return Decision.NO_OPINION, ""


class RBACAuthorizer:
    def __init__(self, *, store: Store, registry: Registry) -> None:
        self.synced = asyncio.Event()
        self.store = store
        self._types = {plural: _rbac_type(registry, plural) for plural in _PLURALS}
        self._cluster_roles: dict[str, tuple[Rule, ...]] = {}
        self._roles: dict[tuple[str, str], tuple[Rule, ...]] = {}
        self._cluster_role_bindings: dict[str, _Binding] = {}
        self._role_bindings: dict[tuple[str, str], _Binding] = {}
        # subject -> names of the ClusterRoleBindings naming it; namespace -> subject -> RoleBinding names
        self._cluster_index: dict[SubjectKey, set[str]] = {}
        self._namespace_index: dict[str, dict[SubjectKey, set[str]]] = {}
        self._cache: dict[tuple[str, tuple[str, ...], str], _Resolved] = {}
        self._listed: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        for plural in _PLURALS:
            self._tasks.append(asyncio.create_task(self._follow(plural), name=f"rbac-{plural}"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def _follow(self, plural: str) -> None:
        prefix = self._types[plural].storage_prefix

        async def relisted(items: list[KeyValue]) -> None:
            self._replace_all(plural, [(kv.key[len(prefix) :], orjson.loads(kv.value)) for kv in items])
            self._listed.add(plural)
            if len(self._listed) == len(_PLURALS):
                self.synced.set()

        async def changed(event: Event) -> None:
            key = event.kv.key[len(prefix) :]
            obj = orjson.loads(event.kv.value) if event.type is EventType.PUT else None
            self._apply(plural, key, obj)

        await follow_prefix(self.store, prefix, on_list=relisted, on_event=changed, what=f"RBAC {plural}")

    # ------------------------------------------------------------------ the in-memory state
    def _replace_all(self, plural: str, items: list[tuple[str, dict[str, Any]]]) -> None:
        self._cache.clear()
        if plural == "clusterroles":
            self._cluster_roles = {key: _rules_of(obj) for key, obj in items}
        elif plural == "roles":
            self._roles = {_split(key): _rules_of(obj) for key, obj in items}
        else:
            if plural == "clusterrolebindings":
                self._cluster_role_bindings, self._cluster_index = {}, {}
            else:
                self._role_bindings, self._namespace_index = {}, {}
            for key, obj in items:
                self._put_binding(plural, key, obj)

    def _apply(self, plural: str, key: str, obj: dict[str, Any] | None) -> None:
        self._cache.clear()
        if plural == "clusterroles":
            if obj is None:
                self._cluster_roles.pop(key, None)
            else:
                self._cluster_roles[key] = _rules_of(obj)
        elif plural == "roles":
            if obj is None:
                self._roles.pop(_split(key), None)
            else:
                self._roles[_split(key)] = _rules_of(obj)
        else:
            self._drop_binding(plural, key)
            if obj is not None:
                self._put_binding(plural, key, obj)

    def _put_binding(self, plural: str, key: str, obj: Mapping[str, Any]) -> None:
        if plural == "clusterrolebindings":
            binding = _Binding.from_object(obj, namespace="", name=key)
            self._cluster_role_bindings[key] = binding
            index = self._cluster_index
        else:
            namespace, name = _split(key)
            binding = _Binding.from_object(obj, namespace=namespace, name=name)
            self._role_bindings[(namespace, name)] = binding
            index = self._namespace_index.setdefault(namespace, {})
        for subject in binding.subject_keys():
            index.setdefault(subject, set()).add(binding.name)

    def _drop_binding(self, plural: str, key: str) -> None:
        if plural == "clusterrolebindings":
            binding = self._cluster_role_bindings.pop(key, None)
            index = self._cluster_index
        else:
            binding = self._role_bindings.pop(_split(key), None)
            index = self._namespace_index.get(binding.namespace, {}) if binding else {}
        if binding is None:
            return
        for subject in binding.subject_keys():
            names = index.get(subject)
            if names is not None:
                names.discard(binding.name)
                if not names:
                    del index[subject]

    # ------------------------------------------------------------------ answering
    def authorize(self, attributes: Attributes) -> tuple[Decision, str]:
        user = attributes.user
        resolved = self._cache.get((user.name, user.groups, attributes.namespace))
        if resolved is None:
            resolved = self._resolve(user, attributes.namespace)
        return resolved.decide(attributes)

    def rules_for(self, user: UserInfo, namespace: str) -> SubjectRules:
        """The user's rules in ``namespace`` as ResourceRules and NonResourceRules (upstream's
        ``RBACAuthorizer.RulesFor``): complete, with any resolution errors reported."""
        resolved = self._resolve(user, namespace)
        resource_rules: list[dict[str, Any]] = []
        non_resource_rules: list[dict[str, Any]] = []
        for rule in resolved.rules():
            if rule.get("resources"):
                resource_rule = {
                    "verbs": list(rule.get("verbs") or ()),
                    "apiGroups": list(rule.get("apiGroups") or ()),
                    "resources": list(rule["resources"]),
                }
                if rule.get("resourceNames"):
                    resource_rule["resourceNames"] = list(rule["resourceNames"])
                resource_rules.append(resource_rule)
            if rule.get("nonResourceURLs"):
                non_resource_rules.append(
                    {"verbs": list(rule.get("verbs") or ()), "nonResourceURLs": list(rule["nonResourceURLs"])}
                )
        return SubjectRules(
            resource_rules=tuple(resource_rules),
            non_resource_rules=tuple(non_resource_rules),
            evaluation_error=aggregate_errors(resolved.errors) if resolved.errors else "",
        )

    def policy_rules(self, user: UserInfo, namespace: str) -> tuple[list[Rule], list[str]]:
        """The PolicyRules ``user`` holds in ``namespace`` (cluster-wide ones included) and the
        errors met resolving them (upstream's ``RulesFor``)."""
        resolved = self._resolve(user, namespace)
        return resolved.rules(), list(resolved.errors)

    def _resolve(self, user: UserInfo, namespace: str) -> _Resolved:
        key = (user.name, user.groups, namespace)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        subject_keys = _subject_keys_of(user)
        sources: list[tuple[str, tuple[Rule, ...]]] = []
        problems: list[str] = []
        bindings = [self._cluster_role_bindings[name] for name in _names(self._cluster_index, subject_keys)]
        if namespace:
            index = self._namespace_index.get(namespace, {})
            bindings.extend(self._role_bindings[(namespace, name)] for name in _names(index, subject_keys))
        for binding in bindings:
            subject = binding.applying_subject(user)
            if subject is None:
                continue
            rules = self._role_rules(binding)
            if isinstance(rules, str):
                problems.append(rules)
            else:
                sources.append((binding.describe(subject), rules))
        resolved = _Resolved(sources, problems)
        if len(self._cache) >= MAX_CACHED_SUBJECTS:
            self._cache.clear()
        self._cache[key] = resolved
        return resolved

    def _role_rules(self, binding: _Binding) -> tuple[Rule, ...] | str:
        """The referenced role's rules, or why there are none (upstream's ``GetRoleReferenceRules``
        over listers, whose NotFound names the singular resource)."""
        if binding.role_kind == "ClusterRole":
            rules = self._cluster_roles.get(binding.role_name)
            if rules is None:
                return f"clusterrole.{RBAC_GROUP} {go_quote(binding.role_name)} not found"
            return rules
        if binding.role_kind == "Role":
            rules = self._roles.get((binding.namespace, binding.role_name))
            if rules is None:
                return f"role.{RBAC_GROUP} {go_quote(binding.role_name)} not found"
            return rules
        return f"unsupported role reference kind: {go_quote(binding.role_kind)}"

    def role_type(self, plural: str) -> ResourceType:
        return self._types[plural]


_PLURALS = ("clusterroles", "roles", "clusterrolebindings", "rolebindings")


def _rbac_type(registry: Registry, plural: str) -> ResourceType:
    rt = registry.lookup(group=RBAC_GROUP, version="v1", plural=plural)
    if rt is None:
        raise RuntimeError(f"the registry lacks {plural}.{RBAC_GROUP}; RBAC cannot run")
    return rt


def _names(index: Mapping[SubjectKey, set[str]], keys: Iterable[SubjectKey]) -> list[str]:
    """Binding names found under any of ``keys``, sorted so that decisions are reproducible."""
    found: set[str] = set()
    for key in keys:
        names = index.get(key)
        if names:
            found |= names
    return sorted(found)


def _split(key: str) -> tuple[str, str]:
    namespace, _, name = key.partition("/")
    return namespace, name


def _rules_of(obj: Mapping[str, Any]) -> tuple[Rule, ...]:
    return tuple(rule for rule in obj.get("rules") or () if isinstance(rule, Mapping))


# --------------------------------------------------------------------------- escalation checks

FULL_AUTHORITY: tuple[Rule, ...] = (
    {"verbs": [ALL], "apiGroups": [ALL], "resources": [ALL]},
    {"verbs": [ALL], "nonResourceURLs": [ALL]},
)
AGGREGATION_RULE_FORBIDDEN = "must have cluster-admin privileges to use the aggregationRule"
_GC_FIELDS = ("ownerReferences", "finalizers", "resourceVersion", "managedFields", "generation")


class EscalationError(Exception):
    """The rules a user tried to grant without holding them."""


def breakdown_rule(rule: Rule) -> list[dict[str, list[str]]]:
    """One rule per (group, resource, verb[, name]) and per (URL, verb): upstream's ``BreakdownRule``."""
    verbs = list(rule.get("verbs") or ())
    names = list(rule.get("resourceNames") or ())
    subrules: list[dict[str, list[str]]] = []
    for group in rule.get("apiGroups") or ():
        for resource in rule.get("resources") or ():
            for verb in verbs:
                if names:
                    subrules.extend(
                        {"apiGroups": [group], "resources": [resource], "verbs": [verb], "resourceNames": [n]}
                        for n in names
                    )
                else:
                    subrules.append({"apiGroups": [group], "resources": [resource], "verbs": [verb]})
    for url in rule.get("nonResourceURLs") or ():
        subrules.extend({"nonResourceURLs": [url], "verbs": [verb]} for verb in verbs)
    return subrules


def _resources_cover(owned: Sequence[str], wanted: Sequence[str]) -> bool:
    if ALL in owned:
        return True
    for resource in wanted:
        if resource in owned:
            continue
        if "/" not in resource or "*/" + resource.split("/", 1)[1] not in owned:
            return False
    return True


def _url_covers(owned: str, wanted: str) -> bool:
    return owned == wanted or (owned.endswith(ALL) and wanted.startswith(owned.rstrip(ALL)))


def rule_covers(owner: Rule, sub: Rule) -> bool:
    """Does ``owner`` grant everything ``sub`` (one broken-down rule) does? Upstream's ``ruleCovers``."""
    owner_verbs = owner.get("verbs") or ()
    owner_groups = owner.get("apiGroups") or ()
    owner_names = owner.get("resourceNames") or ()
    sub_names = sub.get("resourceNames") or ()
    owner_urls = owner.get("nonResourceURLs") or ()
    return (
        (ALL in owner_verbs or all(v in owner_verbs for v in sub.get("verbs") or ()))
        and (ALL in owner_groups or all(g in owner_groups for g in sub.get("apiGroups") or ()))
        and _resources_cover(owner.get("resources") or (), sub.get("resources") or ())
        and (not owner_names or (bool(sub_names) and all(n in owner_names for n in sub_names)))
        and all(any(_url_covers(o, url) for o in owner_urls) for url in sub.get("nonResourceURLs") or ())
    )


def uncovered_rules(owner_rules: Sequence[Rule], rules: Iterable[Rule]) -> list[dict[str, list[str]]]:
    """The broken-down parts of ``rules`` that no owner rule covers (upstream's ``Covers``)."""
    return [
        sub
        for rule in rules
        for sub in breakdown_rule(rule)
        if not any(rule_covers(owner, sub) for owner in owner_rules)
    ]


def compact_rules(rules: Sequence[dict[str, list[str]]]) -> list[dict[str, list[str]]]:
    """Merge the verbs of rules on the same single group/resource/name (upstream's ``CompactRules``)."""
    compacted: list[dict[str, list[str]]] = []
    simple: dict[tuple[str, str, str | None], dict[str, list[str]]] = {}
    for rule in rules:
        names = rule.get("resourceNames") or []
        is_simple = (
            len(names) <= 1
            and not rule.get("nonResourceURLs")
            and len(rule.get("apiGroups") or ()) == 1
            and len(rule.get("resources") or ()) == 1
        )
        if not is_simple:
            compacted.append(rule)
            continue
        key = (rule["apiGroups"][0], rule["resources"][0], names[0] if names else None)
        existing = simple.get(key)
        if existing is None:
            simple[key] = {k: list(v) for k, v in rule.items()}
        else:
            existing["verbs"].extend(v for v in rule.get("verbs") or () if v not in existing["verbs"])
    compacted.extend(simple.values())
    return compacted


def compact_string(rule: Mapping[str, Sequence[str]]) -> str:
    """Upstream's ``CompactString``: ``{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}``."""
    parts = [
        f"{label}:{_go_strings(rule[field])}"
        for label, field in (
            ("APIGroups", "apiGroups"),
            ("Resources", "resources"),
            ("NonResourceURLs", "nonResourceURLs"),
            ("ResourceNames", "resourceNames"),
            ("Verbs", "verbs"),
        )
        if rule.get(field)
    ]
    return "{" + ", ".join(parts) + "}"


def _go_strings(values: Sequence[str]) -> str:
    """Go's ``%q`` of a ``[]string``: ``["a" "b"]``."""
    return "[" + " ".join(go_quote(v) for v in values) + "]"


def confirm_no_escalation(
    *, user: UserInfo, owner_rules: Sequence[Rule], resolution_errors: Sequence[str], rules: Iterable[Rule]
) -> None:
    """Raise :class:`EscalationError` unless ``owner_rules`` cover ``rules`` (upstream's
    ``ConfirmNoEscalation``, with its message)."""
    missing = uncovered_rules(owner_rules, rules)
    if not missing:
        return
    descriptions = sorted({compact_string(rule) for rule in compact_rules(missing)})
    message = (
        f"user {go_quote(user.name)} (groups={_go_strings(user.groups)}) is attempting to grant RBAC "
        "permissions not currently held:\n" + "\n".join(descriptions)
    )
    if resolution_errors:
        # upstream keeps one aggregate error in a slice and prints the slice with %v
        message += f"; resolution errors: [{aggregate_errors(resolution_errors)}]"
    raise EscalationError(message)


def _forbidden(rt: ResourceType, name: str, message: str) -> errors.StatusError:
    """``apierrors.NewForbidden(groupResource, name, err)``."""
    details: dict[str, Any] = {"group": rt.group, "kind": rt.plural}
    if name:
        details["name"] = name
        text = f"{rt.group_resource} {go_quote(name)} is forbidden: {message}"
    else:
        text = f"{rt.group_resource} is forbidden: {message}"
    return errors.StatusError(code=403, reason="Forbidden", message=text, details=details)


def only_gc_fields_change(new: Mapping[str, Any], old: Mapping[str, Any]) -> bool:
    """Upstream's ``IsOnlyMutatingGCFields``: owner references and finalizers (and the
    bookkeeping the server itself changes) are all that differ."""

    def stripped(obj: Mapping[str, Any]) -> dict[str, Any]:
        metadata = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in _GC_FIELDS}
        return {**obj, "metadata": metadata}

    return stripped(new) == stripped(old)


class RBACEscalationCheck:
    """Admission's validate step for writes of Roles, ClusterRoles and their bindings."""

    resources = frozenset((RBAC_GROUP, plural) for plural in _PLURALS)

    def __init__(self, *, rbac: RBACAuthorizer, authorizer: AuthorizerChain) -> None:
        self.rbac = rbac
        self.authorizer = authorizer

    async def validate(self, request: AdmissionRequest) -> None:
        rt = request.rt
        if (
            rt.group != RBAC_GROUP
            or rt.plural not in _PLURALS
            or request.operation not in (CREATE, UPDATE)
            or request.subresource
            or request.obj is None
            or SUPERUSER_GROUP in request.user.groups
        ):
            return
        if rt.plural in ("roles", "clusterroles"):
            self._check_role(request, request.obj)
        else:
            await self._check_binding(request, request.obj)

    def _check_role(self, request: AdmissionRequest, obj: Mapping[str, Any]) -> None:
        escalate = Attributes(
            user=request.user,
            verb="escalate",
            api_group=request.rt.group,
            api_version="*",
            resource=request.rt.plural,
            namespace=request.namespace,
            name=request.name if request.operation == UPDATE else "",  # a create's URL names nothing
        )
        if self.authorizer.allowed(escalate):
            return
        if request.old is not None and only_gc_fields_change(obj, request.old):
            return
        owner_rules, problems = self.rbac.policy_rules(request.user, request.namespace)
        try:
            confirm_no_escalation(
                user=request.user,
                owner_rules=owner_rules,
                resolution_errors=problems,
                rules=_rules_of(obj),
            )
        except EscalationError as exc:
            raise _forbidden(request.rt, request.name, str(exc)) from exc
        if request.rt.plural != "clusterroles":
            return
        aggregation = obj.get("aggregationRule")
        changed = aggregation is not None and (
            request.old is None or aggregation != request.old.get("aggregationRule")
        )
        if changed and uncovered_rules(owner_rules, FULL_AUTHORITY):
            raise _forbidden(request.rt, request.name, AGGREGATION_RULE_FORBIDDEN)

    async def _check_binding(self, request: AdmissionRequest, obj: Mapping[str, Any]) -> None:
        role_ref = obj.get("roleRef") or {}
        kind, role_name = str(role_ref.get("kind") or ""), str(role_ref.get("name") or "")
        plural = {"ClusterRole": "clusterroles", "Role": "roles"}.get(kind)
        if plural is not None:
            bind = Attributes(
                user=request.user,
                verb="bind",
                api_group=str(role_ref.get("apiGroup") or ""),
                resource=plural,
                namespace=request.namespace,
                name=role_name,
            )
            if self.authorizer.allowed(bind):
                return
        if request.old is not None and only_gc_fields_change(obj, request.old):
            return
        if plural is None:
            raise errors.internal(f"unsupported role reference kind: {go_quote(kind)}")
        role_rt = self.rbac.role_type(plural)
        role = await self._read_role(
            role_rt, namespace=request.namespace if kind == "Role" else "", name=role_name
        )
        owner_rules, problems = self.rbac.policy_rules(request.user, request.namespace)
        try:
            confirm_no_escalation(
                user=request.user, owner_rules=owner_rules, resolution_errors=problems, rules=_rules_of(role)
            )
        except EscalationError as exc:
            raise _forbidden(request.rt, request.name, str(exc)) from exc

    async def _read_role(self, rt: ResourceType, *, namespace: str, name: str) -> dict[str, Any]:
        """The referenced role as stored now (not as the authorizer last saw it), as upstream
        reads it through the registry; a missing one is a NotFound."""
        key = f"{rt.storage_prefix}{namespace}/{name}" if rt.namespaced else f"{rt.storage_prefix}{name}"
        kv = await self.rbac.store.get(key)
        if kv is None:
            raise errors.not_found(rt, name)
        return orjson.loads(kv.value)
