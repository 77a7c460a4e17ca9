"""Who may point an admission policy at params: the authorization checks of the policy kinds.

A ValidatingAdmissionPolicy's ``paramKind`` and a binding's ``paramRef`` make the API server read
objects on the writer's behalf, so upstream's strategies for the two kinds
(``pkg/registry/admissionregistration/validatingadmissionpolicy{,binding}/authz.go``) first ask
whether the writer could read them: ``get`` on every object of the policy's param kind, and
``get`` (``list`` for a selector) on what a binding's paramRef names. A refusal is a 422 with a
Forbidden cause at ``spec.paramKind`` / ``spec.paramRef``; the superuser group skips the checks,
and an update that keeps the paramKind or paramRef is not checked again. Upstream runs these in
the strategies' validation; here they run in the validate phase of admission, which only
writes made for a user reach — the same requests, the same answers.
"""

from __future__ import annotations

from typing import Any

from control.apiserver import errors
from control.apiserver.admission import CREATE, UPDATE, AdmissionRequest
from control.apiserver.authn import UserInfo
from control.apiserver.authorization import SUPERUSER_GROUP, Attributes, AuthorizerChain, Decision
from control.apiserver.resource_store import ResourceStore
from control.resources.registry import field_error

GROUP = "admissionregistration.k8s.io"
POLICIES = "validatingadmissionpolicies"
BINDINGS = "validatingadmissionpolicybindings"


class AdmissionPolicyParamAuthorization:
    """The checks (see the module doc), as an admission plugin with a validate step only."""

    resources = frozenset({(GROUP, POLICIES), (GROUP, BINDINGS)})

    def __init__(self, *, objects: ResourceStore, authorizer: AuthorizerChain) -> None:
        self._objects = objects
        self._authorizer = authorizer

    async def validate(self, request: AdmissionRequest) -> None:
        rt = request.rt
        if rt.group != GROUP or request.subresource or request.operation not in (CREATE, UPDATE):
            return
        if SUPERUSER_GROUP in request.user.groups or request.obj is None:
            return
        spec = request.obj.get("spec") or {}
        old_spec = (request.old or {}).get("spec") or {}
        if rt.plural == POLICIES:
            kind = spec.get("paramKind")
            if not kind or (request.operation == UPDATE and old_spec.get("paramKind") == kind):
                return
            problem = self._policy_problem(request.user, kind)
            where = "spec.paramKind"
        elif rt.plural == BINDINGS:
            ref = spec.get("paramRef")
            if not ref or (request.operation == UPDATE and old_spec.get("paramRef") == ref):
                return
            problem = await self._binding_problem(
                request.user, ref, policy_name=str(spec.get("policyName") or "")
            )
            where = "spec.paramRef"
        else:
            return
        if problem:
            raise errors.invalid(rt, request.name, [field_error("FieldValueForbidden", where, problem)])

    def _policy_problem(self, user: UserInfo, kind: dict[str, Any]) -> str:
        api_version, kind_name = str(kind.get("apiVersion") or ""), str(kind.get("kind") or "")
        group, version, resource = self._resolve(api_version, kind_name)
        attributes = Attributes(
            user=user,
            verb="get",
            api_group=group,
            api_version=version,
            resource=resource,
            namespace="*",
            name="*",
        )
        if self._authorizer.authorize(attributes)[0] is Decision.ALLOW:
            return ""
        return (
            f'user {_go_user(user)} must have "get" permission on all objects of the referenced paramKind '
            f"(kind={kind_name}, apiVersion={api_version})"
        )

    async def _binding_problem(self, user: UserInfo, ref: dict[str, Any], *, policy_name: str) -> str:
        group = version = resource = "*"
        missing_policy = unresolved = False
        policy = None
        policies = self._objects.registry.lookup(group=GROUP, version="v1", plural=POLICIES)
        if policies is not None:
            try:
                policy = await self._objects.get(policies, namespace="", name=policy_name)
            except errors.StatusError:
                missing_policy = True
        kind = ((policy or {}).get("spec") or {}).get("paramKind")
        if kind:
            group, version, resource = self._resolve(
                str(kind.get("apiVersion") or ""), str(kind.get("kind") or "")
            )
            unresolved = resource == "*"
        name = str(ref.get("name") or "")
        verb = "get" if name else "list"
        attributes = Attributes(
            user=user,
            verb=verb,
            api_group=group,
            api_version=version,
            resource=resource,
            namespace=str(ref.get("namespace") or ""),
            name=name,
        )
        if self._authorizer.authorize(attributes)[0] is Decision.ALLOW:
            return ""
        everything = (
            f'user {_go_user(user)} does not have "{verb}" permission for all groups, versions and resources'
        )
        if missing_policy:
            return f"unable to get policy {policy_name} to determine minimum required permissions and {everything}"
        if unresolved:
            return (
                f"unable to resolve paramKind &{{{kind.get('apiVersion', '')} {kind.get('kind', '')}}} "
                f"to determine minimum required permissions and {everything}"
            )
        return f'user {_go_user(user)} does not have "{verb}" permission on the object referenced by paramRef'

    def _resolve(self, api_version: str, kind: str) -> tuple[str, str, str]:
        """(group, version, resource) of a param kind; ``*`` for what cannot be resolved."""
        if api_version.count("/") > 1:
            return "*", "*", "*"
        group, _, version = api_version.rpartition("/")
        rt = self._objects.registry.lookup_kind(group=group, version=version, kind=kind)
        return group, version, rt.plural if rt is not None else "*"


def _go_user(user: UserInfo) -> str:
    """A user.Info as Go's %v prints the *DefaultInfo: ``&{alice  [system:authenticated] map[]}``."""
    extra = " ".join(f"{key}:[{' '.join(values)}]" for key, values in sorted(user.extra.items()))
    return f"&{{{user.name} {user.uid} [{' '.join(user.groups)}] map[{extra}]}}"
