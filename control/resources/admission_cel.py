"""CEL for admission: the environment of ValidatingAdmissionPolicies and webhook matchConditions.

Upstream (``k8s.io/apiserver/pkg/admission/plugin/cel``) compiles every admission expression in
one environment: ``object`` and ``oldObject`` (``dyn``; null for a create's old object and a
delete's new one), ``request`` (the AdmissionRequest without its objects), ``namespaceObject``,
``params`` when the policy has a ``paramKind``, ``variables`` (the policy's named expressions)
and ``authorizer`` / ``authorizer.requestResource`` (the authz library). The base library is the
one custom resource rules use (:mod:`control.resources.crd_cel_library`, on the same
cel-expr-python engine), so ``quantity()``, ``url()``, regexes and the list functions behave
the same in a policy as in a CRD rule.

Compiling: :func:`compile_expression` returns a :class:`CompiledExpression` or raises
:class:`ExpressionCompileError` with upstream's detail (``compilation failed: ERROR: <input>:1:5:
...`` or ``must evaluate to bool but got string``); :func:`expression_error` is that detail for
validation, which refuses policies and webhook configurations whose expressions do not compile.
Programs are cached by (expression, wanted type, params): a policy's expressions compile once
however often they are written or evaluated.

Evaluating: :func:`evaluate` runs a program on an activation (:func:`activation`) and returns the
plain Python value, or raises :class:`ExpressionEvaluationError` with the engine's complaint in
cel-go's words (``no such key: replicas``). ``authorizer`` checks call the function that
:func:`authorizing` installs for the evaluation (the API server's authorizer, for the request's
user): this module knows no authorizer, only the shape of a check.

Differences from upstream, by design of the engine: ``request`` and ``namespaceObject`` are maps,
not declared object types, and ``variables`` is a map, so a misspelt field or variable name is a
runtime ``no such key`` rather than a compile error; there is no static cost estimate (each
evaluation is bounded by the engine's comprehension budget, as CRD rules are).
"""

from __future__ import annotations

import contextlib
import contextvars
import enum
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from cel_expr_python import cel

from control.resources.crd_cel_library import (
    NoSuchOverloadError,
    cel_go_text,
    engine_text,
    standard_extensions,
)

_T = cel.Type
_OPAQUE = _T.Map(_T.STRING, _T.DYN)
_TAG = "@kubelab.cel"

OBJECT = "object"
OLD_OBJECT = "oldObject"
REQUEST = "request"
NAMESPACE_OBJECT = "namespaceObject"
PARAMS = "params"
VARIABLES = "variables"
AUTHORIZER = "authorizer"
REQUEST_RESOURCE = "authorizer.requestResource"

_VARIABLE_REFERENCE = re.compile(r"\bvariables\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)")


class ExpressionType(enum.Enum):
    """What an expression must evaluate to (upstream's ExpressionAccessor.ReturnTypes)."""

    BOOL = "bool"  # validations[].expression, matchConditions[].expression
    STRING = "string"  # validations[].messageExpression
    STRING_OR_NULL = "string_or_null"  # auditAnnotations[].valueExpression
    ANY = "any"  # variables[].expression


class ExpressionCompileError(ValueError):
    """An expression that does not compile, or compiles to the wrong type; the text is upstream's."""


class ExpressionEvaluationError(RuntimeError):
    """An expression that failed at run time; the text is cel-go's (``no such key: x``)."""


@dataclass(frozen=True, slots=True)
class CompiledExpression:
    source: str
    program: Any
    variables: frozenset[str]  # the names it reads as ``variables.<name>``


def _type_name(declared: Any) -> str:
    """A CEL type as cel-go prints it (``bool``, ``string``, ``map(string, dyn)``)."""
    text = str(declared)
    return {"NULL": "null_type", "DYN": "dyn"}.get(text, text.lower())


_WANTED: dict[ExpressionType, tuple[Any, ...]] = {
    ExpressionType.BOOL: (_T.BOOL,),
    ExpressionType.STRING: (_T.STRING,),
    ExpressionType.STRING_OR_NULL: (_T.STRING, _T.NULL),
}


@lru_cache(maxsize=4)
def _environment(*, params: bool) -> Any:
    variables: dict[str, Any] = {
        OBJECT: _T.DYN,
        OLD_OBJECT: _T.DYN,
        REQUEST: _OPAQUE,
        NAMESPACE_OBJECT: _T.DYN,
        VARIABLES: _OPAQUE,
        AUTHORIZER: _OPAQUE,
        REQUEST_RESOURCE: _OPAQUE,
    }
    if params:
        variables[PARAMS] = _T.DYN
    return cel.NewEnv(variables=variables, extensions=[*standard_extensions(), _authorizer_library()])


@lru_cache(maxsize=2048)
def compile_expression(expression: str, *, returns: ExpressionType, params: bool) -> CompiledExpression:
    """The compiled expression, or :class:`ExpressionCompileError` with upstream's detail."""
    try:
        program = _environment(params=params).compile(expression)
    except RuntimeError as exc:
        raise ExpressionCompileError(f"compilation failed: {engine_text(exc)}") from None
    wanted = _WANTED.get(returns)
    if wanted is not None:
        got = program.return_type()
        if got != _T.DYN and got not in wanted:
            if len(wanted) == 1:
                raise ExpressionCompileError(
                    f"must evaluate to {_type_name(wanted[0])} but got {_type_name(got)}"
                )
            names = " ".join(_type_name(one) for one in wanted)
            raise ExpressionCompileError(f"must evaluate to one of [{names}] but got {_type_name(got)}")
    return CompiledExpression(
        source=expression,
        program=program,
        variables=frozenset(_VARIABLE_REFERENCE.findall(expression)),
    )


def expression_error(expression: str, *, returns: ExpressionType, params: bool) -> str:
    """ "" when ``expression`` compiles to ``returns``; else upstream's detail, for a field error."""
    try:
        compile_expression(expression, returns=returns, params=params)
    except ExpressionCompileError as exc:
        return str(exc)
    return ""


def evaluate(compiled: CompiledExpression, data: Mapping[str, Any]) -> Any:
    """The expression's value on ``data`` (an :func:`activation`), as a plain Python value."""
    try:
        result = compiled.program.eval(data=dict(data))
    except RuntimeError as exc:
        raise ExpressionEvaluationError(cel_go_text(engine_text(exc))) from None
    except NoSuchOverloadError:
        raise ExpressionEvaluationError("no such overload") from None
    if result.type() == _T.ERROR:
        raise ExpressionEvaluationError(cel_go_text(engine_text(result.plain_value())))
    return result.plain_value()


# --- the authz library ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthorizationCheck:
    """One ``check()`` of the authz library: whose, and what (a resource or a path)."""

    user: Mapping[str, Any]  # the AdmissionRequest's userInfo shape: username, uid, groups, extra
    verb: str
    resource_request: bool
    group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""


@dataclass(frozen=True, slots=True)
class AuthorizationDecision:
    allowed: bool
    reason: str = ""
    error: str = ""


Authorize = Callable[[AuthorizationCheck], AuthorizationDecision]

_AUTHORIZE: contextvars.ContextVar[Authorize | None] = contextvars.ContextVar(
    "kubelab_admission_authorize", default=None
)


@contextlib.contextmanager
def authorizing(authorize: Authorize) -> Iterator[None]:
    """Evaluate expressions with ``authorize`` answering their ``authorizer`` checks."""
    token = _AUTHORIZE.set(authorize)
    try:
        yield
    finally:
        _AUTHORIZE.reset(token)


def _tagged(kind: str, **value: Any) -> dict[str, Any]:
    return {_TAG: kind, **value}


def _untag(kind: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or value.get(_TAG) != kind:
        raise NoSuchOverloadError()
    return value


def authorizer_value(user: Mapping[str, Any]) -> dict[str, Any]:
    """``authorizer`` for a request by ``user`` (userInfo shape)."""
    return _tagged("authorizer", user=dict(user))


def request_resource_value(
    user: Mapping[str, Any], *, group: str, resource: str, subresource: str, namespace: str, name: str
) -> dict[str, Any]:
    """``authorizer.requestResource``: a resource check for what the request itself is about."""
    return _tagged(
        "resourceCheck",
        user=dict(user),
        group=group,
        resource=resource,
        subresource=subresource,
        namespace=namespace,
        name=name,
    )


def _service_account(authorizer: Any, namespace: str, name: str) -> dict[str, Any]:
    _untag("authorizer", authorizer)
    return authorizer_value(
        {
            "username": f"system:serviceaccount:{namespace}:{name}",
            "groups": ["system:serviceaccounts", f"system:serviceaccounts:{namespace}"],
        }
    )


def _group(authorizer: Any, group: str) -> dict[str, Any]:
    return _tagged("groupCheck", user=_untag("authorizer", authorizer)["user"], group=group)


def _resource(group_check: Any, resource: str) -> dict[str, Any]:
    checked = _untag("groupCheck", group_check)
    return _tagged(
        "resourceCheck",
        user=checked["user"],
        group=checked["group"],
        resource=resource,
        subresource="",
        namespace="",
        name="",
    )


def _resource_part(part: str) -> Callable[[Any, str], dict[str, Any]]:
    def narrowed(resource_check: Any, value: str) -> dict[str, Any]:
        return {**_untag("resourceCheck", resource_check), part: value}

    return narrowed


def _selector(resource_check: Any, _selector_text: str) -> dict[str, Any]:
    # fieldSelector()/labelSelector() narrow a check for authorizers that understand selectors;
    # kubelab's (RBAC, Node) decide without them, as upstream's RBAC does.
    return _untag("resourceCheck", resource_check)


def _path(authorizer: Any, path: str) -> dict[str, Any]:
    return _tagged("pathCheck", user=_untag("authorizer", authorizer)["user"], path=path)


def _decided(check: AuthorizationCheck) -> dict[str, Any]:
    authorize = _AUTHORIZE.get()
    if authorize is None:
        decision = AuthorizationDecision(False, "", "no authorizer available")
    else:
        decision = authorize(check)
    return _tagged("decision", allowed=decision.allowed, reason=decision.reason, error=decision.error)


def _check_resource(resource_check: Any, verb: str) -> dict[str, Any]:
    checked = _untag("resourceCheck", resource_check)
    return _decided(
        AuthorizationCheck(
            user=checked["user"],
            verb=verb,
            resource_request=True,
            group=checked["group"],
            resource=checked["resource"],
            subresource=checked["subresource"],
            namespace=checked["namespace"],
            name=checked["name"],
        )
    )


def _check_path(path_check: Any, verb: str) -> dict[str, Any]:
    checked = _untag("pathCheck", path_check)
    return _decided(
        AuthorizationCheck(
            user=checked["user"], verb=verb.lower(), resource_request=False, path=checked["path"]
        )
    )


def _decision_part(part: str) -> Callable[[Any], Any]:
    def read(decision: Any) -> Any:
        value = _untag("decision", decision)
        if part == "errored":
            return bool(value["error"])
        return value[part]

    return read


def _authorizer_library() -> Any:
    """Upstream's authz library (``k8s.io/apiserver/pkg/cel/library/authz.go``) as an extension."""
    s, b = _T.STRING, _T.BOOL

    def member(name: str, result: Any, parameters: list[Any], impl: Callable[..., Any]) -> Any:
        return cel.Overload(name, result, parameters, is_member=True, impl=impl)

    functions = [
        cel.FunctionDecl("path", [member("authorizer_path", _OPAQUE, [_OPAQUE, s], _path)]),
        cel.FunctionDecl("group", [member("authorizer_group", _OPAQUE, [_OPAQUE, s], _group)]),
        cel.FunctionDecl(
            "serviceAccount",
            [member("authorizer_serviceaccount", _OPAQUE, [_OPAQUE, s, s], _service_account)],
        ),
        cel.FunctionDecl("resource", [member("groupcheck_resource", _OPAQUE, [_OPAQUE, s], _resource)]),
        *(
            cel.FunctionDecl(
                part, [member(f"resourcecheck_{part}", _OPAQUE, [_OPAQUE, s], _resource_part(part))]
            )
            for part in ("subresource", "namespace", "name")
        ),
        cel.FunctionDecl(
            "fieldSelector", [member("resourcecheck_fieldselector", _OPAQUE, [_OPAQUE, s], _selector)]
        ),
        cel.FunctionDecl(
            "labelSelector", [member("resourcecheck_labelselector", _OPAQUE, [_OPAQUE, s], _selector)]
        ),
        cel.FunctionDecl(
            "check",
            [
                member("resourcecheck_check", _OPAQUE, [_OPAQUE, s], _check_any),
            ],
        ),
        cel.FunctionDecl("allowed", [member("decision_allowed", b, [_OPAQUE], _decision_part("allowed"))]),
        cel.FunctionDecl("reason", [member("decision_reason", s, [_OPAQUE], _decision_part("reason"))]),
        cel.FunctionDecl("errored", [member("decision_errored", b, [_OPAQUE], _decision_part("errored"))]),
        cel.FunctionDecl("error", [member("decision_error", s, [_OPAQUE], _decision_part("error"))]),
    ]
    return cel.CelExtension("kubernetes_authz", functions)


def _check_any(check: Any, verb: str) -> dict[str, Any]:
    """``check(verb)`` on a resource check or a path check (one overload: both are tagged maps)."""
    if isinstance(check, dict) and check.get(_TAG) == "pathCheck":
        return _check_path(check, verb)
    return _check_resource(check, verb)


def activation(
    *,
    obj: Any,
    old: Any,
    request: Mapping[str, Any],
    namespace_object: Any,
    user: Mapping[str, Any],
    request_resource: Mapping[str, str],
) -> dict[str, Any]:
    """The variables an admission expression sees of a request; ``params`` (null) and
    ``variables`` (empty) are the caller's to set per evaluation."""
    return {
        OBJECT: obj,
        OLD_OBJECT: old,
        REQUEST: dict(request),
        NAMESPACE_OBJECT: namespace_object,
        VARIABLES: {},
        AUTHORIZER: authorizer_value(user),
        REQUEST_RESOURCE: request_resource_value(user, **request_resource),
        PARAMS: None,
    }
