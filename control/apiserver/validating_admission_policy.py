"""The ValidatingAdmissionPolicy admission plugin: CEL policies, bound to requests, in process.

Upstream (``k8s.io/apiserver/pkg/admission/plugin/policy/validating``) runs
``admissionregistration.k8s.io/v1`` ValidatingAdmissionPolicies in the validate phase, between
the mutating and the validating webhooks. This module is that plugin:

- **Following**: the policies and their bindings are followed from the store in memory
  (:class:`~control.apiserver.store_follower.FollowedObjects`) and compiled when they change:
  every expression (matchConditions, variables, validations, messageExpressions, audit
  annotations) once per stored revision. A request no policy matches costs a loop over the
  policies' rules and no store read; with no policies at all, nothing.
- **Matching** (upstream's dispatcher): the policy's ``matchConstraints``, then each binding of it
  (``matchResources``, when set), then its params, then its ``matchConditions``
  (:mod:`control.apiserver.admission_matching`, :mod:`control.apiserver.admission_expressions`).
  The objects that configure admission are exempt, so a bad policy can always be removed.
- **Params**: with ``paramKind``, a binding's ``paramRef`` names one object (``name``) or selects
  several (``selector``), in its ``namespace`` or, for a namespaced kind without one, the
  request's. Each param object is evaluated on its own. None found: ``parameterNotFoundAction``
  ``Deny`` refuses (a configuration error, subject to the failure policy), ``Allow`` admits.
- **Evaluating** (upstream's validator): ``variables`` are evaluated when an expression reads them
  (``variables.name``), once per param; each validation that is false denies with
  ``messageExpression``'s result, else ``message``, else ``failed expression: <expression>``, and
  its ``reason`` (default ``Invalid``); one that fails to evaluate, or a compile error, is an error
  that ``failurePolicy: Fail`` turns into a denial and ``Ignore`` into nothing.
- **Acting** (the binding's ``validationActions``): ``Deny`` refuses the request with the first
  denial, as upstream: ``<resource> "<name>" is forbidden: ValidatingAdmissionPolicy '<policy>'
  with binding '<binding>' denied request: <message>``, reason and code from the validation's
  reason (422 Invalid by default), the message again as a cause; ``Warn`` adds the warning
  ``Validation failed for ValidatingAdmissionPolicy '<policy>' with binding '<binding>':
  <message>``; ``Audit`` (there is no audit log) and audit annotations are structured log lines
  (logger ``kubelab.apiserver.policies``) with upstream's annotation keys and values.

Not done: the type-checking status controller (``status.typeChecking`` stays empty; expressions
are checked for syntax and result type when a policy is written); ``matchPolicy: Equivalent`` acts
as ``Exact`` (one version of each kind is served).

Metrics: ``apiserver_validating_admission_policy_check_total`` / ``_check_duration_seconds`` and
the matchCondition counters (:mod:`control.apiserver.admission_metrics`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from control.apiserver import errors
from control.apiserver.admission import AdmissionRequest, forbidden
from control.apiserver.admission_expressions import (
    Expression,
    ExpressionError,
    MatchCondition,
    RequestExpressions,
    compile_match_conditions,
    match_conditions,
)
from control.apiserver.admission_matching import MatchResources, NamespaceOfRequest, is_exempt
from control.apiserver.admission_metrics import AdmissionMetrics
from control.apiserver.authorization import AuthorizerChain
from control.apiserver.conversion import read_objects
from control.apiserver.resource_store import ResourceStore
from control.apiserver.store_follower import FollowedObjects
from control.apiserver.warning import add_warning
from control.resources.admission_cel import (
    VARIABLES,
    ExpressionType,
)
from control.resources.registry import ResourceType
from control.resources.selectors import SelectorError, label_selector_from_spec

log = logging.getLogger("kubelab.apiserver.policies")

GROUP = "admissionregistration.k8s.io"
POLICIES = "validatingadmissionpolicies"
BINDINGS = "validatingadmissionpolicybindings"

MAX_MESSAGE_EXPRESSION_BYTES = 5 * 1024  # celconfig.MaxEvaluatedMessageExpressionSizeBytes
MAX_AUDIT_ANNOTATION_VALUE_BYTES = 10 * 1024
_CODES = {"Unauthorized": 401, "Forbidden": 403, "Invalid": 422, "RequestEntityTooLarge": 413}


@dataclass(frozen=True, slots=True)
class _Validation:
    expression: Expression
    message: str
    message_expression: Expression | None
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    name: str
    fail_closed: bool  # failurePolicy Fail (the default)
    param_kind: tuple[str, str] | None  # (apiVersion, kind)
    match: MatchResources
    match_conditions: tuple[MatchCondition, ...]
    variables: tuple[tuple[str, Expression], ...]
    validations: tuple[_Validation, ...]
    audit_annotations: tuple[tuple[str, Expression], ...]

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> Policy:
        spec = obj.get("spec") or {}
        kind = spec.get("paramKind")
        param_kind = (str(kind.get("apiVersion") or ""), str(kind.get("kind") or "")) if kind else None
        params = param_kind is not None
        validations = []
        for entry in spec.get("validations") or ():
            message_expression = str(entry.get("messageExpression") or "")
            validations.append(
                _Validation(
                    expression=Expression.compile(
                        str(entry.get("expression") or ""), returns=ExpressionType.BOOL, params=params
                    ),
                    message=str(entry.get("message") or ""),
                    message_expression=Expression.compile(
                        message_expression, returns=ExpressionType.STRING, params=params
                    )
                    if message_expression
                    else None,
                    reason=str(entry.get("reason") or ""),
                )
            )
        return cls(
            name=str((obj.get("metadata") or {}).get("name") or ""),
            fail_closed=spec.get("failurePolicy") != "Ignore",
            param_kind=param_kind,
            match=MatchResources.from_object(spec.get("matchConstraints") or {}),
            match_conditions=compile_match_conditions(spec.get("matchConditions"), params=params),
            variables=tuple(
                (
                    str(entry.get("name") or ""),
                    Expression.compile(
                        str(entry.get("expression") or ""), returns=ExpressionType.ANY, params=params
                    ),
                )
                for entry in spec.get("variables") or ()
            ),
            validations=tuple(validations),
            audit_annotations=tuple(
                (
                    str(entry.get("key") or ""),
                    Expression.compile(
                        str(entry.get("valueExpression") or ""),
                        returns=ExpressionType.STRING_OR_NULL,
                        params=params,
                    ),
                )
                for entry in spec.get("auditAnnotations") or ()
            ),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Binding:
    name: str
    policy: str
    actions: tuple[str, ...]
    match: MatchResources | None
    param_ref: Mapping[str, Any] | None

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> Binding:
        spec = obj.get("spec") or {}
        match = spec.get("matchResources")
        return cls(
            name=str((obj.get("metadata") or {}).get("name") or ""),
            policy=str(spec.get("policyName") or ""),
            actions=tuple(str(action) for action in spec.get("validationActions") or ()),
            match=MatchResources.from_object(match) if isinstance(match, dict) else None,
            param_ref=spec.get("paramRef") if isinstance(spec.get("paramRef"), dict) else None,
        )


@dataclass(frozen=True, slots=True)
class _Denial:
    policy: str
    binding: str
    message: str
    reason: str = ""
    error: bool = False  # an evaluation or configuration error, not a false validation

    @property
    def error_type(self) -> str:
        """Upstream's ErrorType of a decision that is not a plain admit."""
        return "compile_error" if self.message.startswith("compilation") else "invalid_error"


class _ConfigurationError(Exception):
    """A binding that cannot be applied (its params cannot be found or read)."""


class ValidatingAdmissionPolicies:
    """The plugin (see the module doc); start before serving, stop at shutdown."""

    def __init__(
        self, *, objects: ResourceStore, authorizer: AuthorizerChain, metrics: AdmissionMetrics
    ) -> None:
        self._objects = objects
        self._authorizer = authorizer
        self._metrics = metrics
        followed = []
        for plural in (POLICIES, BINDINGS):
            rt = objects.registry.lookup(group=GROUP, version="v1", plural=plural)
            if rt is None:
                raise RuntimeError(f"the registry lacks {plural}")
            followed.append(
                FollowedObjects(
                    store=objects.store,
                    prefix=objects.prefix(rt, namespace=""),
                    what=plural,
                    changed=self._rebuild,
                )
            )
        self._policies, self._bindings = followed
        self._hooks: tuple[tuple[Policy, tuple[Binding, ...]], ...] = ()
        self._compiled: dict[str, tuple[bytes, Policy]] = {}

    async def start(self) -> None:
        for followed in (self._policies, self._bindings):
            followed.start()
        for followed in (self._policies, self._bindings):
            await followed.synced.wait()

    async def stop(self) -> None:
        for followed in (self._policies, self._bindings):
            await followed.stop()

    def _rebuild(self) -> None:
        """Policies (compiled once per stored revision) with their bindings, both by name."""
        by_policy: dict[str, list[Binding]] = {}
        for name in sorted(self._bindings.objects):
            binding = Binding.from_object(self._bindings.objects[name])
            by_policy.setdefault(binding.policy, []).append(binding)
        compiled: dict[str, tuple[bytes, Policy]] = {}
        hooks = []
        for name in sorted(self._policies.objects):
            obj = self._policies.objects[name]
            revision = orjson.dumps(obj.get("spec"))
            known = self._compiled.get(name)
            policy = known[1] if known is not None and known[0] == revision else Policy.from_object(obj)
            compiled[name] = (revision, policy)
            if by_policy.get(name):
                hooks.append((policy, tuple(by_policy[name])))
        self._compiled = compiled
        self._hooks = tuple(hooks)

    async def validate(self, request: AdmissionRequest) -> None:
        if not self._hooks or is_exempt(request.rt):
            return
        namespace = NamespaceOfRequest(objects=self._objects, request=request)
        expressions = RequestExpressions(request=request, namespace=namespace, authorizer=self._authorizer)
        denials: list[_Denial] = []
        for policy, bindings in self._hooks:
            if not await policy.match.match(request, namespace):
                continue
            for binding in bindings:
                if binding.match is not None and not await binding.match.match(request, namespace):
                    continue
                started = time.perf_counter()
                try:
                    params = await self._params(policy, binding, request)
                except _ConfigurationError as exc:
                    error = _Denial(
                        policy.name, binding.name, f"failed to configure binding: {exc}", error=True
                    )
                    self._decided(
                        binding, [error], denials, request, started=started, fail_closed=policy.fail_closed
                    )
                    continue
                for param in params:
                    decided = await self._evaluate(policy, binding, expressions, request, param)
                    self._decided(
                        binding, decided, denials, request, started=started, fail_closed=policy.fail_closed
                    )
                    started = time.perf_counter()
        if denials:
            raise _refusal(request, denials[0])

    def _decided(
        self,
        binding: Binding,
        decided: list[_Denial],
        denials: list[_Denial],
        request: AdmissionRequest,
        *,
        started: float,
        fail_closed: bool,
    ) -> None:
        """Act on one evaluation's denials by the binding's validationActions (errors only under
        ``Fail``; under ``Ignore`` they admit), observing each in the policy metrics."""
        seconds = time.perf_counter() - started
        for denial in decided:
            if denial.error and not fail_closed:
                self._metrics.observe_policy(
                    policy=denial.policy,
                    binding=binding.name,
                    error_type=denial.error_type,
                    action="allow",
                    seconds=seconds,
                )
                continue
            for action in binding.actions:
                self._metrics.observe_policy(
                    policy=denial.policy,
                    binding=binding.name,
                    error_type=denial.error_type,
                    action=action.lower(),
                    seconds=seconds,
                )
                self._act(action, binding, denial, denials, request)

    def _act(
        self,
        action: str,
        binding: Binding,
        denial: _Denial,
        denials: list[_Denial],
        request: AdmissionRequest,
    ) -> None:
        if action == "Deny":
            denials.append(denial)
        elif action == "Warn":
            add_warning(
                f"Validation failed for ValidatingAdmissionPolicy '{denial.policy}' with binding "
                f"'{binding.name}': {denial.message}"
            )
        elif action == "Audit":
            log.info(
                "admission policy audit",
                extra={
                    "annotation": "validation.policy.admission.k8s.io/validation_failure",
                    "policy": denial.policy,
                    "binding": binding.name,
                    "failure": denial.message,
                    "validationActions": list(binding.actions),
                    "resource": request.rt.group_resource,
                    "namespace": request.namespace,
                    "object": request.name,
                    "operation": request.operation,
                },
            )

    async def _evaluate(
        self,
        policy: Policy,
        binding: Binding,
        expressions: RequestExpressions,
        request: AdmissionRequest,
        param: Any,
    ) -> list[_Denial]:
        """Upstream's validator.Validate for one param: its denials, errors included (whether an
        error denies is the failure policy's business, in :meth:`_decided`)."""
        typed_param = param
        if param is not None and policy.param_kind is not None:
            typed_param = {"apiVersion": policy.param_kind[0], "kind": policy.param_kind[1], **param}
        outcome = await match_conditions(
            policy.match_conditions, expressions, fail_closed=True, params=typed_param
        )
        labels = (policy.name, "validatingadmissionpolicy", "validating", request.operation)
        if outcome.errored:
            self._metrics.match_condition_errors.labels(*labels).inc()
            return [_Denial(policy.name, binding.name, outcome.error, error=True)]
        if not outcome.matches:
            self._metrics.match_condition_exclusions.labels(*labels).inc()
            return []
        return _validations(
            policy, binding, _Variables(policy, expressions, await expressions.activation(params=typed_param))
        )

    async def _params(self, policy: Policy, binding: Binding, request: AdmissionRequest) -> list[Any]:
        """Upstream's CollectParams: the param objects to evaluate with ([None] without paramKind)."""
        if policy.param_kind is None:
            return [None]
        ref = binding.param_ref
        api_version, kind = policy.param_kind
        if ref is None:
            raise _ConfigurationError(f"paramRef is required when paramKind {kind}.{api_version} is set")
        group, _, version = api_version.rpartition("/")
        rt = self._objects.registry.lookup_kind(group=group, version=version, kind=kind)
        if rt is None:
            raise _ConfigurationError(f"paramKind kind `{kind}.{api_version}` not known")
        namespace = str(ref.get("namespace") or "")
        if rt.namespaced and not namespace:
            if not request.namespace:
                raise _ConfigurationError(
                    "cannot use namespaced paramRef in policy binding that matches cluster-scoped resources"
                )
            namespace = request.namespace
        params = await self._read_params(rt, ref, namespace=namespace if rt.namespaced else "")
        if not params:
            if ref.get("parameterNotFoundAction") == "Deny":
                raise _ConfigurationError(
                    "no params found for policy binding with `Deny` parameterNotFoundAction"
                )
            return []
        return params

    async def _read_params(self, rt: ResourceType, ref: Mapping[str, Any], *, namespace: str) -> list[Any]:
        name = str(ref.get("name") or "")
        if name:
            try:
                return [await self._objects.get(rt, namespace=namespace, name=name)]
            except errors.StatusError as exc:
                if exc.code == 404:
                    return []
                raise _ConfigurationError(str(exc)) from exc
        try:
            selector = label_selector_from_spec(ref.get("selector") or {})
        except SelectorError as exc:
            raise _ConfigurationError(str(exc)) from exc
        listing = await self._objects.store.list(self._objects.prefix(rt, namespace=namespace))
        return [
            obj
            for obj in await read_objects(rt, listing.items)
            if selector.matches((obj.get("metadata") or {}).get("labels") or {})
        ]


def _validations(policy: Policy, binding: Binding, scope: _Variables) -> list[_Denial]:
    """The validations and audit annotations of one evaluation: false ones and errors."""
    denials = []

    def error(message: str) -> None:
        denials.append(_Denial(policy.name, binding.name, message, error=True))

    for validation in policy.validations:
        try:
            passed = scope.evaluate(validation.expression)
        except ExpressionError as exc:
            error(str(exc))
            continue
        if passed is True:
            continue
        if passed is not False:
            error(f"expression '{validation.expression.source}' resulted in error: no such overload")
            continue
        denials.append(
            _Denial(
                policy.name, binding.name, _failure_message(validation, scope), validation.reason or "Invalid"
            )
        )
    for key, expression in policy.audit_annotations:
        try:
            value = scope.evaluate(expression)
        except ExpressionError as exc:
            error(str(exc))
            continue
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        if not isinstance(value, str):
            error(
                f"valueExpression '{expression.source}' resulted in unsupported return type: "
                f"{type(value).__name__}. Return type must be either string or null."
            )
            continue
        log.info(
            "admission policy audit annotation",
            extra={
                "annotation": f"{policy.name}/{key}",
                "value": value.strip()[:MAX_AUDIT_ANNOTATION_VALUE_BYTES],
                "binding": binding.name,
            },
        )
    return denials


class _Variables:
    """A policy's ``variables`` for one evaluation: each computed when first read, in order."""

    def __init__(self, policy: Policy, expressions: RequestExpressions, data: dict[str, Any]) -> None:
        self._declared = dict(policy.variables)
        self._order = [name for name, _ in policy.variables]
        self._expressions = expressions
        self._data = data
        self._values: dict[str, Any] = {}
        self._errors: dict[str, str] = {}

    def evaluate(self, expression: Expression) -> Any:
        reads = expression.compiled.variables if expression.compiled is not None else frozenset()
        failed = [name for name in self._needed(reads) if name in self._errors]
        try:
            # A variable that failed is left out: reading it is an error inside the expression,
            # which CEL's logic may still absorb (``error || true`` is true), as upstream's lazy
            # variables are.
            return self._expressions.evaluate(expression, {**self._data, VARIABLES: self._values})
        except ExpressionError:
            if not failed:
                raise
            raise ExpressionError(
                f"expression '{expression.source}' resulted in error: "
                f'composited variable "{failed[0]}" fails to compile or evaluate: {self._errors[failed[0]]}'
            ) from None

    def _needed(self, names: frozenset[str]) -> list[str]:
        """Evaluate the variables ``names`` read (and those they read), in declaration order."""
        wanted: set[str] = set()
        pending = [name for name in names if name in self._declared]
        while pending:
            name = pending.pop()
            if name in wanted:
                continue
            wanted.add(name)
            compiled = self._declared[name].compiled
            if compiled is not None:
                pending.extend(other for other in compiled.variables if other in self._declared)
        ordered = [name for name in self._order if name in wanted]
        for name in ordered:
            if name in self._values or name in self._errors:
                continue
            try:
                self._values[name] = self._expressions.evaluate(
                    self._declared[name], {**self._data, VARIABLES: self._values}
                )
            except ExpressionError as exc:
                self._errors[name] = str(exc)
        return ordered


def _failure_message(validation: _Validation, scope: _Variables) -> str:
    """messageExpression's result if it is a usable string, else message, else the expression."""
    message = ""
    if validation.message_expression is not None:
        try:
            value = scope.evaluate(validation.message_expression)
        except ExpressionError as exc:
            log.debug("error while evaluating messageExpression: %s", exc)
        else:
            if isinstance(value, str):
                value = value.strip()
                if len(value.encode()) <= MAX_MESSAGE_EXPRESSION_BYTES and "\n" not in value:
                    message = value
    if not message and validation.message:
        message = validation.message.strip()
    return message or f"failed expression: {validation.expression.source.strip()}"


def _refusal(request: AdmissionRequest, denial: _Denial) -> errors.StatusError:
    """Upstream's dispatcher refusal: admission.NewForbidden, then the denial's reason and code."""
    message = (
        f"ValidatingAdmissionPolicy '{denial.policy}' with binding '{denial.binding}' "
        f"denied request: {denial.message}"
    )
    refusal = forbidden(request, message)
    reason = denial.reason or "Invalid"
    details = dict(refusal.details or {})
    details["causes"] = [*details.get("causes", []), {"message": message}]
    return errors.StatusError(
        code=_CODES.get(reason, 422), reason=reason, message=refusal.message, details=details
    )
