"""Status → exception mapping, as apimachinery's pkg/api/errors classifies."""

from __future__ import annotations

import orjson
import pytest

from control.client import errors
from control.client.errors import (
    AlreadyExistsError,
    APIClientError,
    APIError,
    APIServerError,
    APITimeoutError,
    BadRequestError,
    ConflictError,
    ExpiredError,
    ForbiddenError,
    GoneError,
    InternalError,
    InvalidError,
    MethodNotAllowedError,
    NotAcceptableError,
    NotFoundError,
    RequestEntityTooLargeError,
    ServerTimeoutError,
    ServiceUnavailableError,
    TooManyRequestsError,
    UnauthorizedError,
    UnsupportedMediaTypeError,
    api_error_from_response,
    api_error_from_status,
)


def status(reason: str, code: int, message: str = "msg", **details) -> dict:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    return body


@pytest.mark.parametrize(
    ("reason", "code", "cls", "base"),
    [
        ("BadRequest", 400, BadRequestError, APIClientError),
        ("Unauthorized", 401, UnauthorizedError, APIClientError),
        ("Forbidden", 403, ForbiddenError, APIClientError),
        ("NotFound", 404, NotFoundError, APIClientError),
        ("MethodNotAllowed", 405, MethodNotAllowedError, APIClientError),
        ("NotAcceptable", 406, NotAcceptableError, APIClientError),
        ("AlreadyExists", 409, AlreadyExistsError, APIClientError),
        ("Conflict", 409, ConflictError, APIClientError),
        ("Gone", 410, GoneError, APIClientError),
        ("Expired", 410, ExpiredError, GoneError),
        ("RequestEntityTooLarge", 413, RequestEntityTooLargeError, APIClientError),
        ("UnsupportedMediaType", 415, UnsupportedMediaTypeError, APIClientError),
        ("Invalid", 422, InvalidError, APIClientError),
        ("TooManyRequests", 429, TooManyRequestsError, APIClientError),
        ("InternalError", 500, InternalError, APIServerError),
        ("ServerTimeout", 500, ServerTimeoutError, APIServerError),
        ("ServiceUnavailable", 503, ServiceUnavailableError, APIServerError),
        ("Timeout", 504, APITimeoutError, APIServerError),
    ],
)
def test_each_reason_has_its_class(reason, code, cls, base):
    error = api_error_from_status(status(reason, code))
    assert type(error) is cls
    assert isinstance(error, base) and isinstance(error, APIError)
    assert (error.reason, error.code, error.message) == (reason, code, "msg")


def test_reason_wins_over_code():
    # kube-apiserver's 409 for create-of-existing says AlreadyExists, not Conflict.
    error = api_error_from_status(status("AlreadyExists", 409))
    assert errors.is_already_exists(error) and not errors.is_conflict(error)


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (404, NotFoundError),
        (409, ConflictError),
        (422, InvalidError),
        (503, ServiceUnavailableError),
        (418, APIClientError),
        (599, APIServerError),
    ],
)
def test_unknown_reason_is_classified_by_code(code, cls):
    assert type(api_error_from_status(status("SomethingNew", code))) is cls


def test_known_reason_without_a_class_is_classified_by_range_only():
    error = api_error_from_status(status("StorageReadError", 500))
    assert type(error) is APIServerError


def test_status_without_code_takes_the_http_code():
    body = status("", 0)
    del body["code"]
    error = api_error_from_status(body, code=404)
    assert isinstance(error, NotFoundError) and error.code == 404


def test_invalid_exposes_field_causes():
    causes = [{"reason": "FieldValueInvalid", "message": "Invalid value", "field": "spec.replicas"}]
    error = api_error_from_status(status("Invalid", 422, 'Deployment.apps "x" is invalid', causes=causes))
    assert isinstance(error, InvalidError)
    assert error.causes == causes
    assert error.details["causes"] == causes
    assert str(error) == 'Deployment.apps "x" is invalid (422 Invalid)'


def test_retry_after_from_details_or_header():
    assert api_error_from_status(status("TooManyRequests", 429, retryAfterSeconds=3)).retry_after == 3
    assert api_error_from_status(status("TooManyRequests", 429), retry_after=7).retry_after == 7
    assert api_error_from_status(status("NotFound", 404)).retry_after is None


def test_response_with_status_body_uses_it():
    body = orjson.dumps(status("NotFound", 404, 'pods "x" not found', name="x", kind="pods"))
    error = api_error_from_response(code=404, body=body, content_type="application/json", method="GET")
    assert isinstance(error, NotFoundError)
    assert error.message == 'pods "x" not found'
    assert error.details == {"name": "x", "kind": "pods"}


def test_status_with_meta_api_version_is_recognised():
    body = status("Conflict", 409)
    body["apiVersion"] = "meta.k8s.io/v1"
    error = api_error_from_response(
        code=409, body=orjson.dumps(body), content_type="application/json", method="PUT"
    )
    assert isinstance(error, ConflictError)


@pytest.mark.parametrize(
    ("code", "method", "cls", "message"),
    [
        (
            404,
            "GET",
            NotFoundError,
            "the server could not find the requested resource (get deployments.apps web)",
        ),
        (409, "POST", AlreadyExistsError, "the server reported a conflict (post deployments.apps web)"),
        (409, "PUT", ConflictError, "the server reported a conflict (put deployments.apps web)"),
        (
            503,
            "GET",
            ServiceUnavailableError,
            "the server is currently unable to handle the request (get deployments.apps web)",
        ),
        (
            502,
            "GET",
            InternalError,
            'an error on the server ("<html>bad gateway</html>") has prevented the request from succeeding (get deployments.apps web)',
        ),
    ],
)
def test_non_status_bodies_get_client_gos_generic_messages(code, method, cls, message):
    error = api_error_from_response(
        code=code,
        body=b"<html>bad gateway</html>\n",
        content_type="text/html",
        method=method,
        qualified_resource="deployments.apps",
        name="web",
    )
    assert type(error) is cls
    assert error.message == message
    assert error.details["kind"] == "deployments" and error.details["group"] == "apps"
    assert error.details["causes"][0]["reason"] == "UnexpectedServerResponse"


def test_forbidden_without_status_keeps_the_server_text():
    error = api_error_from_response(code=403, body=b"no way", content_type="text/plain", method="GET")
    assert isinstance(error, ForbiddenError) and error.message == "no way"


def test_binary_non_status_body_is_not_quoted():
    error = api_error_from_response(
        code=500, body=b"\x00\x01", content_type="application/octet-stream", method="GET"
    )
    assert isinstance(error, InternalError)
    assert error.message == 'an error on the server ("unknown") has prevented the request from succeeding'


def test_empty_body_and_unusual_code():
    error = api_error_from_response(code=418, body=b"", content_type=None, method="GET")
    assert type(error) is APIClientError
    assert "418" in error.message


def test_json_that_is_not_a_status_is_not_trusted():
    error = api_error_from_response(
        code=404, body=b'{"kind":"Pod"}', content_type="application/json", method="GET"
    )
    assert isinstance(error, NotFoundError)
    assert error.message == "the server could not find the requested resource"


def test_predicates():
    expired = api_error_from_status(status("Expired", 410))
    gone = api_error_from_status(status("Gone", 410))
    throttled = api_error_from_status(status("TooManyRequests", 429))
    assert errors.is_expired(expired) and errors.is_expired(gone)
    assert errors.is_not_found(api_error_from_status(status("NotFound", 404)))
    assert errors.is_invalid(api_error_from_status(status("Invalid", 422)))
    assert errors.is_forbidden(api_error_from_status(status("Forbidden", 403)))
    assert errors.is_unauthorized(api_error_from_status(status("Unauthorized", 401)))
    assert errors.is_too_many_requests(throttled)
    assert errors.is_retriable(throttled)
    assert errors.is_retriable(errors.TransportError("refused"))
    assert errors.is_retriable(api_error_from_status(status("ServiceUnavailable", 503)))
    assert not errors.is_retriable(expired)
    assert not errors.is_not_found(ValueError())


def test_resource_version_too_large():
    by_cause = api_error_from_status(
        status("Timeout", 504, "Too large resource version", causes=[{"reason": "ResourceVersionTooLarge"}])
    )
    by_message = api_error_from_status(status("Timeout", 504, "Too large resource version: 5, current: 3"))
    assert errors.is_resource_version_too_large(by_cause)
    assert errors.is_resource_version_too_large(by_message)
    assert not errors.is_resource_version_too_large(api_error_from_status(status("Timeout", 504)))
    assert not errors.is_resource_version_too_large(ValueError())


def test_errors_share_one_root():
    for cls in (errors.TransportError, errors.DecodeError, APIError):
        assert issubclass(cls, errors.RequestError)
