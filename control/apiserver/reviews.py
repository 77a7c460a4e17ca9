"""Access and identity reviews: the questions ``kubectl auth can-i`` and ``auth whoami`` ask.

SelfSubjectAccessReview (may I?), SubjectAccessReview and LocalSubjectAccessReview (may
they?), SelfSubjectRulesReview (what may I do here?) and SelfSubjectReview (who am I?) are
create-only kinds that are never stored: creating one asks the configured authorizer chain
(or reads the caller's identity) and answers 201 with the object, its status filled in — as
upstream's pkg/registry/authorization/* and pkg/registry/authentication/selfsubjectreview.

The caller is ``call.user``, the user *after* impersonation, so ``kubectl --as bob auth
can-i`` answers for bob. Whether the caller may ask at all was decided before the handler
runs (``create`` on the review resource; the bootstrap policy grants the self reviews to
every authenticated user). The body is decoded as upstream's create handler decodes any
object (apiVersion/kind, field types, unknown fields per ``fieldValidation``; ObjectMeta's
system fields wiped; the namespace taken from the URL), then validated by
control.resources.validation with upstream's wording. ``dryRun`` changes nothing: nothing
is ever written.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from control.apiserver import errors
from control.apiserver.authn import UserInfo
from control.apiserver.authorization import Attributes, AuthorizerChain, Decision
from control.apiserver.call import Call, json_response
from control.apiserver.writes import decoded_object
from control.resources.validation import validate

# What upstream's create handler clears from any request object (rest.WipeObjectMetaSystemFields).
_SYSTEM_FIELDS = ("creationTimestamp", "uid", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink")


class Reviews:
    """The review handlers, each ``(call) -> 201 response``, answering from ``authorizer``."""

    def __init__(self, *, authorizer: AuthorizerChain) -> None:
        self.authorizer = authorizer

    async def self_subject_access_review(self, call: Call) -> web.Response:
        """May the caller do this? (pkg/registry/authorization/selfsubjectaccessreview)"""
        review = await _decode_review(call)
        _check_valid(call, review)
        return _answer(call, review, self._status(_attributes(call.user, review["spec"])))

    async def subject_access_review(self, call: Call) -> web.Response:
        """May the user in ``spec`` do this? (pkg/registry/authorization/subjectaccessreview)"""
        review = await _decode_review(call)
        _check_valid(call, review)
        return _answer(call, review, self._status(_attributes(_spec_user(review["spec"]), review["spec"])))

    async def local_subject_access_review(self, call: Call) -> web.Response:
        """A SubjectAccessReview confined to the URL's namespace, so namespace admins can be
        granted the question (pkg/registry/authorization/localsubjectaccessreview); its
        validation keeps it to resource attributes in that namespace."""
        return await self.subject_access_review(call)

    async def self_subject_rules_review(self, call: Call) -> web.Response:
        """Everything the caller may do in ``spec.namespace``; the answer is a new object
        carrying only the status, as upstream's (pkg/registry/authorization/selfsubjectrulesreview)."""
        review = await _decode_review(call)
        _check_valid(call, review)
        namespace = _spec(review).get("namespace")
        if not isinstance(namespace, str) or not namespace:
            raise errors.bad_request("no namespace on request")
        rules = self.authorizer.rules_for(call.user, namespace)
        status: dict[str, Any] = {
            "resourceRules": list(rules.resource_rules),
            "nonResourceRules": list(rules.non_resource_rules),
            "incomplete": rules.incomplete,
        }
        if rules.evaluation_error:
            status["evaluationError"] = rules.evaluation_error
        return _answer(call, {"metadata": {"creationTimestamp": None}, "spec": {}}, status)

    async def self_subject_review(self, call: Call) -> web.Response:
        """Who the caller is, as the API server sees them after authentication and
        impersonation (pkg/registry/authentication/selfsubjectreview)."""
        await _decode_review(call)
        user_info = call.user.as_user_info()
        answer = {
            "kind": call.rt.kind,
            "apiVersion": call.rt.api_version,
            "metadata": {"creationTimestamp": call.now.strftime("%Y-%m-%dT%H:%M:%SZ")},
            "status": {"userInfo": user_info},
        }
        return json_response(answer, status=201, warnings=call.warnings)

    def _status(self, attributes: Attributes) -> dict[str, Any]:
        """SubjectAccessReviewStatus: ``allowed`` always; ``denied`` and ``reason`` when set."""
        decision, reason = self.authorizer.authorize(attributes)
        status: dict[str, Any] = {"allowed": decision is Decision.ALLOW}
        if decision is Decision.DENY:
            status["denied"] = True
        if reason:
            status["reason"] = reason
        return status


async def _decode_review(call: Call) -> dict[str, Any]:
    """The request body as upstream's create handler decodes it, ready for validation."""
    rt = call.rt
    review = await decoded_object(call)
    metadata = review.get("metadata")
    if metadata is None:
        metadata = review["metadata"] = {}
    elif not isinstance(metadata, dict):
        raise errors.bad_request("metadata: Invalid value: must be an object")
    for key in _SYSTEM_FIELDS:
        metadata.pop(key, None)
    # rest.EnsureObjectNamespaceMatchesRequestNamespace: cluster-scoped kinds lose a namespace,
    # namespaced ones take the URL's unless the body names another.
    namespace = call.info.namespace if rt.namespaced else ""
    if metadata.get("namespace") and namespace and metadata["namespace"] != namespace:
        raise errors.bad_request(
            "the namespace of the provided object does not match the namespace sent on the request"
        )
    if namespace:
        metadata["namespace"] = namespace
    else:
        metadata.pop("namespace", None)
    return review


def _check_valid(call: Call, review: dict[str, Any]) -> None:
    """422 with upstream's causes. A valid review's metadata is empty but for a namespace,
    so it becomes what Go echoes for it."""
    problems = validate(call.rt, review)
    if problems:
        raise errors.invalid(call.rt, "", problems)
    metadata: dict[str, Any] = {"creationTimestamp": None}
    if review["metadata"].get("namespace"):
        metadata["namespace"] = review["metadata"]["namespace"]
    review["metadata"] = metadata
    review["spec"] = _spec(review)


def _answer(call: Call, review: dict[str, Any], status: dict[str, Any]) -> web.Response:
    """201 with the review (its metadata and spec) and the status that answers it."""
    answer = {
        "kind": call.rt.kind,
        "apiVersion": call.rt.api_version,
        "metadata": review["metadata"],
        "spec": review["spec"],
        "status": status,
    }
    return json_response(answer, status=201, warnings=call.warnings)


def _spec(review: dict[str, Any]) -> dict[str, Any]:
    spec = review.get("spec")
    return spec if isinstance(spec, dict) else {}


def _spec_user(spec: dict[str, Any]) -> UserInfo:
    """The user a SubjectAccessReview asks about — exactly as given: no implied
    ``system:authenticated`` (authorizationutil.AuthorizationAttributesFrom)."""
    extra = spec.get("extra") or {}
    return UserInfo(
        name=spec.get("user") or "",
        groups=tuple(spec.get("groups") or ()),
        uid=spec.get("uid") or "",
        extra={key: tuple(values or ()) for key, values in extra.items()},
    )


def _attributes(user: UserInfo, spec: dict[str, Any]) -> Attributes:
    """ResourceAttributesFrom / NonResourceAttributesFrom: an empty version matches every version."""
    resource = spec.get("resourceAttributes")
    if resource is None:
        non_resource = spec.get("nonResourceAttributes") or {}
        return Attributes(
            user=user,
            verb=non_resource.get("verb") or "",
            resource_request=False,
            path=non_resource.get("path") or "",
        )
    return Attributes(
        user=user,
        verb=resource.get("verb") or "",
        api_group=resource.get("group") or "",
        api_version=resource.get("version") or "*",
        resource=resource.get("resource") or "",
        subresource=resource.get("subresource") or "",
        namespace=resource.get("namespace") or "",
        name=resource.get("name") or "",
    )
