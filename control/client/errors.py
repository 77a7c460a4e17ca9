"""What can go wrong talking to an API server, as a small hierarchy of exception types.

Modelled on kopf's ``APIError`` family and on apimachinery's ``pkg/api/errors``: every failure
the server reports is a ``metav1.Status`` (``{"kind":"Status","status":"Failure","reason":...,
"code":...}``) and we turn it into one exception class per *reason*, so callers classify errors
with ``isinstance`` (or the ``is_*`` predicates) and never by matching message text.

The class is chosen the way apimachinery's ``IsNotFound`` & co. decide: by ``reason`` first, and
by HTTP code only when the reason is not one of the well-known ones. A response that is not a
Status at all (a proxy's HTML page, an empty 503) becomes the same classes, with the generic
message client-go's ``NewGenericServerResponse`` would give.

Failures that are not the server's answer are separate types: :class:`TransportError` (no
answer, or the connection broke — worth retrying) and :class:`DecodeError` (an answer we cannot
read). All three share :class:`RequestError`, so ``except RequestError`` catches anything a
request can raise. The HTTP library's own exception is always kept as ``__cause__``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import orjson

# Upper bound on how much of a non-Status body goes into an error message (client-go's limit).
_MAX_UNSTRUCTURED_BODY = 2048


class RequestError(Exception):
    """Base of everything a request to the API server can raise."""


class TransportError(RequestError):
    """The request got no (complete) answer: connection refused or reset, timeout, TLS failure.

    Always worth retrying after a backoff; the server may or may not have acted on a write.
    """


class DecodeError(RequestError):
    """The server answered, but the body is not the JSON we expected."""


class APIError(RequestError):
    """The API server answered with a failure ``Status``.

    Attributes mirror the Status fields: ``reason`` (``"NotFound"``...), ``message``, ``code``
    (the HTTP status), ``details`` (a dict; ``{}`` when absent) and ``retry_after`` (seconds, from
    the ``Retry-After`` header or ``details.retryAfterSeconds``; ``None`` when not suggested).
    ``status`` is the whole Status object as received (or as synthesised for non-Status bodies).
    """

    REASON: ClassVar[str] = ""

    def __init__(
        self, status: Mapping[str, Any], *, code: int | None = None, retry_after: int | None = None
    ) -> None:
        self.status: dict[str, Any] = dict(status)
        self.code: int = int(status.get("code") or code or 0)
        self.reason: str = str(status.get("reason") or "")
        self.message: str = str(status.get("message") or "")
        details = status.get("details")
        self.details: dict[str, Any] = dict(details) if isinstance(details, Mapping) else {}
        suggested = self.details.get("retryAfterSeconds")
        self.retry_after: int | None = retry_after if retry_after is not None else (suggested or None)
        super().__init__(self.message or f"the server answered {self.code} {self.reason}".rstrip())

    def __str__(self) -> str:
        label = " ".join(part for part in (str(self.code or ""), self.reason) if part)
        return f"{self.args[0]} ({label})" if label else str(self.args[0])

    @property
    def causes(self) -> list[dict[str, Any]]:
        """``details.causes``: for 422 Invalid, one entry per bad field (``field``, ``reason``, ``message``)."""
        causes = self.details.get("causes")
        return list(causes) if isinstance(causes, list) else []


class APIClientError(APIError):
    """A 4xx answer: the request itself was refused."""


class APIServerError(APIError):
    """A 5xx answer: the server failed; retrying later may work."""


class BadRequestError(APIClientError):
    REASON = "BadRequest"


class UnauthorizedError(APIClientError):
    REASON = "Unauthorized"


class ForbiddenError(APIClientError):
    REASON = "Forbidden"


class NotFoundError(APIClientError):
    REASON = "NotFound"


class MethodNotAllowedError(APIClientError):
    REASON = "MethodNotAllowed"


class NotAcceptableError(APIClientError):
    REASON = "NotAcceptable"


class AlreadyExistsError(APIClientError):
    REASON = "AlreadyExists"


class ConflictError(APIClientError):
    """409 Conflict: usually a stale ``resourceVersion``; re-read and try again."""

    REASON = "Conflict"


class GoneError(APIClientError):
    """410: the requested resourceVersion is no longer available (compacted)."""

    REASON = "Gone"


class ExpiredError(GoneError):
    """410 Expired: what servers since 1.18 send for a too-old resourceVersion or continue token."""

    REASON = "Expired"


class RequestEntityTooLargeError(APIClientError):
    REASON = "RequestEntityTooLarge"


class UnsupportedMediaTypeError(APIClientError):
    REASON = "UnsupportedMediaType"


class InvalidError(APIClientError):
    """422 Invalid: the object failed validation; :attr:`causes` names each bad field."""

    REASON = "Invalid"


class TooManyRequestsError(APIClientError):
    """429: throttled by the server (priority and fairness); honour :attr:`retry_after`."""

    REASON = "TooManyRequests"


class InternalError(APIServerError):
    REASON = "InternalError"


class ServerTimeoutError(APIServerError):
    """Reason ServerTimeout: the server could not finish in time and asks the client to retry."""

    REASON = "ServerTimeout"


class ServiceUnavailableError(APIServerError):
    REASON = "ServiceUnavailable"


class APITimeoutError(APIServerError):
    """504 / reason Timeout: the request timed out; a write may still take effect."""

    REASON = "Timeout"


_BY_REASON: dict[str, type[APIError]] = {
    cls.REASON: cls
    for cls in (
        BadRequestError,
        UnauthorizedError,
        ForbiddenError,
        NotFoundError,
        MethodNotAllowedError,
        NotAcceptableError,
        AlreadyExistsError,
        ConflictError,
        GoneError,
        ExpiredError,
        RequestEntityTooLargeError,
        UnsupportedMediaTypeError,
        InvalidError,
        TooManyRequestsError,
        InternalError,
        ServerTimeoutError,
        ServiceUnavailableError,
        APITimeoutError,
    )
}
# metav1 reasons without a class of their own: classified by code range only.
_OTHER_KNOWN_REASONS = frozenset({"StorageReadError"})

_BY_CODE: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: UnauthorizedError,
    403: ForbiddenError,
    404: NotFoundError,
    405: MethodNotAllowedError,
    406: NotAcceptableError,
    409: ConflictError,
    410: GoneError,
    413: RequestEntityTooLargeError,
    415: UnsupportedMediaTypeError,
    422: InvalidError,
    429: TooManyRequestsError,
    500: InternalError,
    503: ServiceUnavailableError,
    504: APITimeoutError,
}

# NewGenericServerResponse's (reason, message) for answers that carry no Status.
_GENERIC: dict[int, tuple[str, str]] = {
    400: ("BadRequest", "the server rejected our request for an unknown reason"),
    401: ("Unauthorized", "the server has asked for the client to provide credentials"),
    404: ("NotFound", "the server could not find the requested resource"),
    405: ("MethodNotAllowed", "the server does not allow this method on the requested resource"),
    409: ("Conflict", "the server reported a conflict"),
    422: ("Invalid", "the server rejected our request due to an error in our request"),
    429: ("TooManyRequests", "the server has received too many requests and has asked us to try again later"),
    503: ("ServiceUnavailable", "the server is currently unable to handle the request"),
    504: (
        "Timeout",
        "the server was unable to return a response in the time allotted, but may still be processing the request",
    ),
}


def _class_for(reason: str, code: int) -> type[APIError]:
    cls = _BY_REASON.get(reason)
    if cls is not None:
        return cls
    if reason not in _OTHER_KNOWN_REASONS and code in _BY_CODE:
        return _BY_CODE[code]
    if 400 <= code < 500:
        return APIClientError
    if code >= 500:
        return APIServerError
    return APIError


def api_error_from_status(
    status: Mapping[str, Any], *, code: int | None = None, retry_after: int | None = None
) -> APIError:
    """The exception for a ``Status`` object; ``code`` is the HTTP code when the Status lacks one."""
    effective_code = int(status.get("code") or code or 0)
    cls = _class_for(str(status.get("reason") or ""), effective_code)
    return cls(status, code=effective_code, retry_after=retry_after)


def is_status(obj: Any) -> bool:
    """Whether a decoded body is a ``metav1.Status`` (apimachinery's ``FromObject`` test)."""
    return (
        isinstance(obj, dict)
        and obj.get("kind") == "Status"
        and obj.get("apiVersion") in ("v1", "meta.k8s.io/v1")
    )


def api_error_from_response(
    *,
    code: int,
    body: bytes,
    content_type: str | None,
    method: str,
    retry_after: int | None = None,
    qualified_resource: str = "",
    name: str = "",
) -> APIError:
    """The exception for a failed HTTP answer, whether or not its body is a Status.

    ``qualified_resource`` (``"deployments.apps"``) and ``name`` only improve the message of
    answers without a Status, as client-go does.
    """
    if body:
        try:
            decoded = orjson.loads(body)
        except orjson.JSONDecodeError:
            decoded = None
        if is_status(decoded):
            return api_error_from_status(decoded, code=code, retry_after=retry_after)

    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    server_message = "unknown"
    if not media_type or media_type.startswith("text/"):
        server_message = body[:_MAX_UNSTRUCTURED_BODY].decode("utf-8", "replace").strip()

    reason, message = _GENERIC.get(
        code, ("", f"the server responded with the status code {code} but did not return more information")
    )
    if code == 409 and method.upper() == "POST":
        reason = "AlreadyExists"
    elif code in (403, 415):
        reason, message = _BY_CODE[code].REASON, server_message
    elif code == 406:
        reason = "NotAcceptable"
        message = (
            server_message
            if server_message and server_message != "unknown"
            else "the server was unable to respond with a content type that the client supports"
        )
    elif code >= 500 and code not in _GENERIC:
        reason = "InternalError"
        message = f'an error on the server ("{server_message}") has prevented the request from succeeding'
    if qualified_resource:
        target = f"{qualified_resource} {name}" if name else qualified_resource
        message = f"{message} ({method.lower()} {target})"

    details: dict[str, Any] = {
        "causes": [{"reason": "UnexpectedServerResponse", "message": server_message}],
    }
    if qualified_resource:
        plural, _, group = qualified_resource.partition(".")
        details["kind"] = plural
        details["group"] = group
    if name:
        details["name"] = name
    if retry_after:
        details["retryAfterSeconds"] = retry_after
    status = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "details": details,
        "code": code,
    }
    return api_error_from_status(status, code=code, retry_after=retry_after)


# --- predicates (client-go's apierrors.IsNotFound & co.) --------------------------------------


def is_not_found(exc: BaseException) -> bool:
    return isinstance(exc, NotFoundError)


def is_already_exists(exc: BaseException) -> bool:
    return isinstance(exc, AlreadyExistsError)


def is_conflict(exc: BaseException) -> bool:
    return isinstance(exc, ConflictError)


def is_invalid(exc: BaseException) -> bool:
    return isinstance(exc, InvalidError)


def is_forbidden(exc: BaseException) -> bool:
    return isinstance(exc, ForbiddenError)


def is_unauthorized(exc: BaseException) -> bool:
    return isinstance(exc, UnauthorizedError)


def is_too_many_requests(exc: BaseException) -> bool:
    return isinstance(exc, TooManyRequestsError)


def is_expired(exc: BaseException) -> bool:
    """410 Gone or Expired: the resourceVersion is too old; relist (the reflector's ``isExpiredError``)."""
    return isinstance(exc, GoneError)


def is_resource_version_too_large(exc: BaseException) -> bool:
    """The server has not yet seen the requested resourceVersion (cause ``ResourceVersionTooLarge``)."""
    if not isinstance(exc, APIError):
        return False
    if any(
        cause.get("reason") == "ResourceVersionTooLarge" for cause in exc.causes if isinstance(cause, dict)
    ):
        return True
    return isinstance(exc, APITimeoutError) and "Too large resource version" in exc.message


def is_retriable(exc: BaseException) -> bool:
    """Whether retrying the same request later may succeed: transport failures, 429 and 5xx."""
    return isinstance(exc, TransportError | TooManyRequestsError | APIServerError)
