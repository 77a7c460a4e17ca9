"""Admission expressions (CEL) on one request: what they see, whom ``authorizer`` asks, matchConditions.

ValidatingAdmissionPolicies and webhook ``matchConditions`` evaluate CEL expressions on the
request being admitted (upstream's ``k8s.io/apiserver/pkg/admission/plugin/cel`` filter). The
compiler and the environment are :mod:`control.resources.admission_cel`; this module binds them
to the API server: :class:`RequestExpressions` builds a request's activation once — ``object`` and
``oldObject`` with their apiVersion and kind, ``request`` (the AdmissionRequest a webhook would be
sent, :func:`control.apiserver.admission_review.review_request`), ``namespaceObject`` (upstream's
trimmed Namespace: metadata, spec and status) — and answers ``authorizer`` checks with the API
server's authorizer chain for the request's user (or the ServiceAccount an expression names).

matchConditions (:func:`match_conditions`) are upstream's ``matchconditions.Matcher``: any
condition false skips the webhook or policy; otherwise, if any failed to evaluate, ``Fail``
refuses the request and ``Ignore`` skips; otherwise it matches. Evaluation errors read as
upstream's: ``expression 'x' resulted in error: no such key: y``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from control.apiserver.admission import AdmissionRequest
from control.apiserver.admission_matching import NamespaceOfRequest
from control.apiserver.admission_review import review_request
from control.apiserver.authn import UserInfo
from control.apiserver.authorization import Attributes, AuthorizerChain, Decision
from control.resources.admission_cel import (
    PARAMS,
    AuthorizationCheck,
    AuthorizationDecision,
    CompiledExpression,
    ExpressionCompileError,
    ExpressionEvaluationError,
    ExpressionType,
    activation,
    authorizing,
    compile_expression,
    evaluate,
)

# upstream's CreateNamespaceObject keeps only these of a Namespace's metadata
_NAMESPACE_METADATA = (
    "name",
    "generateName",
    "namespace",
    "labels",
    "annotations",
    "uid",
    "creationTimestamp",
    "deletionGracePeriodSeconds",
    "deletionTimestamp",
    "generation",
    "resourceVersion",
    "finalizers",
)


class ExpressionError(Exception):
    """An expression that could not be evaluated (or compiled); the text is upstream's."""


@dataclass(frozen=True, slots=True)
class Expression:
    """One expression of a stored configuration, compiled, or the reason it did not compile:
    validation refuses such objects, but one stored before (or by an older server) fails when it is
    evaluated, as upstream's (``compilation error: ...``)."""

    source: str
    compiled: CompiledExpression | None
    error: str

    @classmethod
    def compile(cls, source: str, *, returns: ExpressionType, params: bool) -> Expression:
        try:
            return cls(source, compile_expression(source, returns=returns, params=params), "")
        except ExpressionCompileError as exc:
            return cls(source, None, f"compilation error: {exc}")


@dataclass(frozen=True, slots=True)
class MatchCondition:
    name: str
    expression: Expression


def compile_match_conditions(conditions: Any, *, params: bool) -> tuple[MatchCondition, ...]:
    """A configuration's ``matchConditions``, compiled."""
    return tuple(
        MatchCondition(
            str(condition.get("name") or ""),
            Expression.compile(
                str(condition.get("expression") or ""), returns=ExpressionType.BOOL, params=params
            ),
        )
        for condition in conditions or ()
        if isinstance(condition, dict)
    )


class RequestExpressions:
    """What admission expressions see of one request (built on first use, then reused)."""

    def __init__(
        self, *, request: AdmissionRequest, namespace: NamespaceOfRequest | None, authorizer: AuthorizerChain
    ) -> None:
        """``namespace`` None: ``namespaceObject`` is null (webhook matchConditions get none upstream)."""
        self._request = request
        self._namespace = namespace
        self._authorizer = authorizer
        self._base: dict[str, Any] | None = None

    async def activation(self, *, params: Any = None) -> dict[str, Any]:
        """The request's activation with ``params`` (``variables`` empty: a policy fills them)."""
        if self._base is None:
            request = self._request
            body = review_request(request)
            typed_object, typed_old = body.pop("object"), body.pop("oldObject")
            rt = request.rt
            self._base = activation(
                obj=typed_object,
                old=typed_old,
                request=body,
                namespace_object=None
                if self._namespace is None
                else _namespace_object(await self._namespace.object()),
                user=body["userInfo"],
                request_resource={
                    "group": rt.group,
                    "resource": rt.plural,
                    "subresource": request.subresource,
                    "namespace": request.namespace,
                    "name": request.name,
                },
            )
        return {**self._base, PARAMS: params}

    def evaluate(self, expression: Expression, data: Mapping[str, Any]) -> Any:
        """The value of ``expression`` on ``data``; ExpressionError in upstream's words (also for
        an expression that did not compile)."""
        if expression.compiled is None:
            raise ExpressionError(expression.error)
        try:
            with authorizing(self._authorize):
                return evaluate(expression.compiled, data)
        except ExpressionEvaluationError as exc:
            raise ExpressionError(f"expression '{expression.source}' resulted in error: {exc}") from None

    def _authorize(self, check: AuthorizationCheck) -> AuthorizationDecision:
        user = check.user
        attributes = Attributes(
            user=UserInfo(
                name=str(user.get("username") or ""),
                groups=tuple(user.get("groups") or ()),
                uid=str(user.get("uid") or ""),
                extra={key: tuple(values) for key, values in (user.get("extra") or {}).items()},
            ),
            verb=check.verb,
            resource_request=check.resource_request,
            api_group=check.group,
            api_version="*",
            resource=check.resource,
            subresource=check.subresource,
            namespace=check.namespace,
            name=check.name,
            path=check.path,
        )
        decision, reason = self._authorizer.authorize(attributes)
        return AuthorizationDecision(decision is Decision.ALLOW, reason)


@dataclass(frozen=True, slots=True)
class MatchOutcome:
    matches: bool
    error: str = ""  # with fail_closed: why the request is refused
    errored: bool = False  # some condition failed to evaluate (for the metrics)


async def match_conditions(
    conditions: Sequence[MatchCondition],
    expressions: RequestExpressions,
    *,
    fail_closed: bool,
    params: Any = None,
) -> MatchOutcome:
    """Upstream's ``matchconditions.Matcher.Match`` (see the module doc)."""
    if not conditions:
        return MatchOutcome(True)
    data = await expressions.activation(params=params)
    problems = []
    for condition in conditions:
        try:
            outcome = expressions.evaluate(condition.expression, data)
        except ExpressionError as exc:
            problems.append(str(exc))
            continue
        if outcome is False:
            return MatchOutcome(False)
        if outcome is not True:
            problems.append(f"expression '{condition.expression.source}' resulted in error: no such overload")
    if problems:
        if not fail_closed:
            return MatchOutcome(False, errored=True)
        text = problems[0] if len(problems) == 1 else "[" + ", ".join(problems) + "]"
        return MatchOutcome(False, text, errored=True)
    return MatchOutcome(True)


def _namespace_object(namespace: dict[str, Any] | None) -> dict[str, Any] | None:
    if namespace is None:
        return None
    metadata = namespace.get("metadata") or {}
    return {
        "metadata": {key: metadata[key] for key in _NAMESPACE_METADATA if key in metadata},
        "spec": namespace.get("spec") or {},
        "status": namespace.get("status") or {},
    }
