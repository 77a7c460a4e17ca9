"""API errors as upstream's metav1.Status, built in one place.

Every failure the API server answers is a :class:`StatusError` carrying the HTTP code,
the Status ``reason`` and the exact message upstream's apimachinery/pkg/api/errors would
produce, because clients print them verbatim (``Error from server (NotFound): pods "x" not
found``) and some match on them. Handlers raise; the HTTP layer renders once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from control.resources.registry import FieldError, ResourceType


class StatusError(Exception):
    def __init__(
        self,
        *,
        code: int,
        reason: str,
        message: str,
        details: dict[str, Any] | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.retry_after = retry_after

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body


def _details(rt: ResourceType | None, name: str, **extra: Any) -> dict[str, Any]:
    details: dict[str, Any] = {}
    if name:
        details["name"] = name
    if rt is not None:
        if rt.group:
            details["group"] = rt.group
        details["kind"] = rt.plural
    details.update(extra)
    return details


def not_found(rt: ResourceType, name: str) -> StatusError:
    return StatusError(
        code=404,
        reason="NotFound",
        message=f'{rt.group_resource} "{name}" not found',
        details=_details(rt, name),
    )


def already_exists(rt: ResourceType, name: str) -> StatusError:
    return StatusError(
        code=409,
        reason="AlreadyExists",
        message=f'{rt.group_resource} "{name}" already exists',
        details=_details(rt, name),
    )


CONFLICT_HINT = "the object has been modified; please apply your changes to the latest version and try again"


def conflict(rt: ResourceType, name: str, why: str = CONFLICT_HINT) -> StatusError:
    return StatusError(
        code=409,
        reason="Conflict",
        message=f'Operation cannot be fulfilled on {rt.group_resource} "{name}": {why}',
        details=_details(rt, name),
    )


def invalid(rt: ResourceType, name: str, errors: Sequence[FieldError]) -> StatusError:
    causes = []
    for err in errors:
        cause: dict[str, Any] = {"reason": err.type, "message": err.body(), "field": err.field}
        causes.append(cause)
    if len(errors) == 1:
        summary = errors[0].message()
    else:
        summary = "[" + ", ".join(err.message() for err in errors) + "]"
    return StatusError(
        code=422,
        reason="Invalid",
        message=f'{rt.qualified_kind} "{name}" is invalid: {summary}',
        details={**_details(rt, name, kind=rt.kind), "causes": causes},
    )


def bad_request(message: str) -> StatusError:
    return StatusError(code=400, reason="BadRequest", message=message)


def unauthorized() -> StatusError:
    return StatusError(code=401, reason="Unauthorized", message="Unauthorized")


def forbidden(message: str) -> StatusError:
    return StatusError(code=403, reason="Forbidden", message=message)


def method_not_supported(rt: ResourceType | None, action: str) -> StatusError:
    what = rt.group_resource if rt else "resource"
    return StatusError(
        code=405,
        reason="MethodNotAllowed",
        message=f"{action} is not supported on resources of kind {what!r}",
        details=_details(rt, ""),
    )


def path_not_found(path: str) -> StatusError:
    return StatusError(
        code=404, reason="NotFound", message="the server could not find the requested resource"
    )


def gone(message: str) -> StatusError:
    return StatusError(code=410, reason="Expired", message=message)


def too_old_resource_version(requested: int, current: int) -> StatusError:
    return gone(f"too old resource version: {requested} ({current})")


def too_large_resource_version(requested: int, current: int) -> StatusError:
    return StatusError(
        code=504,
        reason="Timeout",
        message=f"Too large resource version: {requested}, current: {current}",
        details={
            "causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
            "retryAfterSeconds": 1,
        },
        retry_after=1,
    )


def unsupported_media_type(content_type: str) -> StatusError:
    return StatusError(
        code=415,
        reason="UnsupportedMediaType",
        message=f"the body of the request was in an unknown format - accepted media types include: "
        f'application/json, application/yaml, application/vnd.kubernetes.protobuf (got "{content_type}")',
    )


def not_acceptable(accept: str) -> StatusError:
    return StatusError(
        code=406,
        reason="NotAcceptable",
        message=f"the server was unable to respond with a content type that the client supports ({accept})",
    )


def entity_too_large(limit: int) -> StatusError:
    return StatusError(
        code=413, reason="RequestEntityTooLarge", message=f"Request entity too large: limit is {limit}"
    )


def service_unavailable(message: str) -> StatusError:
    return StatusError(code=503, reason="ServiceUnavailable", message=message, retry_after=1)


def internal(message: str) -> StatusError:
    return StatusError(
        code=500,
        reason="InternalError",
        message=f"Internal error occurred: {message}",
        details={"causes": [{"message": message}]},
    )
