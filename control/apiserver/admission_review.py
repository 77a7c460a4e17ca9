"""The ``admission.k8s.io`` AdmissionReview a webhook is sent, and the checks on its answer.

Upstream's k8s.io/apiserver/pkg/admission/plugin/webhook/request (``CreateAdmissionObjects``,
``CreateV1AdmissionReview``, ``VerifyAdmissionResponse``), re-done on plain dicts:

- the review is in the first of the webhook's ``admissionReviewVersions`` this server speaks
  (``v1``, then ``v1beta1``; both have the same request shape);
- the request carries a fresh uid, kind/resource/subResource (and the same as
  requestKind/requestResource/requestSubResource: kubelab serves one version of each kind, so
  no conversion ever makes them differ), name, namespace, operation, userInfo, object,
  oldObject, dryRun and the operation's options (``CreateOptions``, ``UpdateOptions`` or
  ``DeleteOptions``, with ``dryRun: [All]`` for a dry run);
- a v1 answer must be a v1 AdmissionReview echoing the uid; a mutating webhook's patch must
  come with its patchType and a validating webhook may send neither. v1beta1 answers are
  checked as loosely as upstream checks them.

A malformed answer raises :class:`InvalidResponseError` with upstream's words; the dispatcher
words it ``received invalid webhook response: ...`` and applies the failure policy.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from control.apiserver.admission import CREATE, DELETE, AdmissionRequest

REVIEW_VERSIONS = ("v1", "v1beta1")  # what this server sends, in upstream's order of preference
_OPTIONS_KIND = {CREATE: "CreateOptions", DELETE: "DeleteOptions"}


class InvalidResponseError(Exception):
    """The webhook's answer is not a usable AdmissionReview; the message is upstream's."""


class NoKnownReviewVersionError(Exception):
    """The webhook accepts none of the AdmissionReview versions this server sends."""


@dataclass(frozen=True, kw_only=True)
class AdmissionResponse:
    """What a verified answer says (``request.AdmissionResponse``)."""

    allowed: bool
    result: dict[str, Any] | None = None  # a metav1.Status, when the webhook sent one
    patch: str = ""  # base64 of a JSON patch, as it travels in JSON
    patch_type: str = ""
    warnings: tuple[str, ...] = field(default_factory=tuple)


def review_version(accepted: tuple[str, ...]) -> str:
    """The first of the webhook's versions this server speaks (NoKnownReviewVersionError if none)."""
    for version in accepted:
        if version in REVIEW_VERSIONS:
            return version
    raise NoKnownReviewVersionError("webhook does not accept known AdmissionReview versions (v1, v1beta1)")


def _typed(obj: dict[str, Any] | None, request: AdmissionRequest) -> dict[str, Any] | None:
    """The object as the webhook reads it: with its apiVersion and kind."""
    if obj is None:
        return None
    return {"apiVersion": request.rt.api_version, "kind": request.rt.kind, **obj}


def review_namespace(request: AdmissionRequest) -> str:
    """Upstream's request namespace: a Namespace's own name when the path names it."""
    if not request.rt.group and request.rt.plural == "namespaces" and request.operation != CREATE:
        return request.name
    return request.namespace


def review_request(request: AdmissionRequest) -> dict[str, Any]:
    """The AdmissionRequest ``request`` is, without a uid: what a review sends and what the
    ``request`` variable of admission expressions (CEL) reads."""
    rt = request.rt
    kind = {"group": rt.group, "version": rt.version, "kind": rt.kind}
    resource = {"group": rt.group, "version": rt.version, "resource": rt.plural}
    options: dict[str, Any] = {
        "kind": _OPTIONS_KIND.get(request.operation, "UpdateOptions"),
        "apiVersion": "meta.k8s.io/v1",
    }
    if request.dry_run:
        options["dryRun"] = ["All"]
    body: dict[str, Any] = {
        "kind": kind,
        "resource": resource,
        "requestKind": kind,
        "requestResource": resource,
        "name": request.name,
        "namespace": review_namespace(request),
        "operation": request.operation,
        "userInfo": request.user.as_user_info(),
        "object": _typed(request.obj, request),
        "oldObject": _typed(request.old, request),
        "dryRun": request.dry_run,
        "options": options,
    }
    if request.subresource:
        body["subResource"] = body["requestSubResource"] = request.subresource
    return body


def admission_review(request: AdmissionRequest, *, version: str) -> tuple[str, dict[str, Any]]:
    """A new review of ``request`` in ``version``: (its uid, the review)."""
    uid = str(uuid.uuid4())
    body = {"uid": uid, **review_request(request)}
    return uid, {"apiVersion": f"admission.k8s.io/{version}", "kind": "AdmissionReview", "request": body}


def verify_response(answer: Any, *, uid: str, version: str, mutating: bool) -> AdmissionResponse:
    """``VerifyAdmissionResponse``: the answer's verdict, or InvalidResponseError."""
    if not isinstance(answer, dict):
        raise InvalidResponseError("webhook response was absent")
    response = answer.get("response")
    if not isinstance(response, dict):
        raise InvalidResponseError("webhook response was absent")
    patch = response.get("patch") or ""
    patch_type = response.get("patchType")
    if version == "v1":
        if response.get("uid") != uid:
            raise InvalidResponseError(f'expected response.uid="{uid}", got "{response.get("uid") or ""}"')
        got = (answer.get("apiVersion"), answer.get("kind"))
        if got != ("admission.k8s.io/v1", "AdmissionReview"):
            raise InvalidResponseError(
                "expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, "
                f"got {answer.get('apiVersion') or ''}, Kind={answer.get('kind') or ''}"
            )
        if mutating:
            if patch and patch_type is None:
                raise InvalidResponseError("webhook returned response.patch but not response.patchType")
            if not patch and patch_type is not None:
                raise InvalidResponseError("webhook returned response.patchType but not response.patch")
            if patch_type is not None and not patch_type:
                raise InvalidResponseError('webhook returned invalid response.patchType of ""')
        else:
            if patch:
                raise InvalidResponseError("validating webhook may not return response.patch")
            if patch_type is not None:
                raise InvalidResponseError("validating webhook may not return response.patchType")
    elif not mutating:
        patch, patch_type = "", None
    elif patch:
        patch_type = "JSONPatch"  # v1beta1 answers are not checked; a patch is a JSON patch
    if not isinstance(patch, str):
        raise InvalidResponseError("response.patch must be a base64 string")
    result = response.get("status")  # the Go field is Result, its JSON name "status" (admission/v1 types.go)
    warnings = response.get("warnings") or []
    return AdmissionResponse(
        allowed=response.get("allowed") is True,
        result=result if isinstance(result, dict) else None,
        patch=patch,
        patch_type=str(patch_type or ""),
        warnings=tuple(str(w) for w in warnings) if isinstance(warnings, list) else (),
    )
