"""ServiceAccount tokens from the TokenRequest API, checked against a fake TokenRequest endpoint
(FakeWireServer: it records exactly what is sent and answers failures on cue). The real API
server's TokenRequest is exercised by the controller manager's tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from control.client.config import ClientConfig
from control.client.errors import NotFoundError
from control.client.rest import RESTClient
from control.client.testing import FakeClock
from control.client.tokenrequest import (
    MIN_LIFETIME,
    TokenRequestError,
    TokenRequestFetch,
    ensure_service_account,
    service_account_token_source,
    service_account_username,
)
from tests.control.client.wire import FakeWireServer, json_answer, status_answer

NOW = datetime(2030, 1, 1, tzinfo=UTC)
TOKEN_PATH = "/api/v1/namespaces/kube-system/serviceaccounts/job-controller/token"
ACCOUNT_PATH = "/api/v1/namespaces/kube-system/serviceaccounts/job-controller"


class SkippingClock(FakeClock):
    """A fake clock whose sleeps return at once, having moved time on (retry backoff without waiting)."""

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(seconds)


def token_answer(token: str = "jwt", *, lifetime: float = 3600.0, status: int = 201):
    expires = (NOW + timedelta(seconds=lifetime)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return json_answer(
        {
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "spec": {"expirationSeconds": 3600},
            "status": {"token": token, "expirationTimestamp": expires},
        },
        status=status,
    )


@pytest.fixture
async def server():
    fake = FakeWireServer()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def client(server):
    async with RESTClient(ClientConfig(server=server.url, token="manager"), max_retries=0) as rest:
        yield rest


def fetcher(client: RESTClient, **settings) -> TokenRequestFetch:
    settings.setdefault("clock", SkippingClock())
    return TokenRequestFetch(
        client, namespace="kube-system", name="job-controller", wall=lambda: NOW, **settings
    )


async def test_a_token_is_requested_for_an_hour_and_lives_as_long_as_the_server_says(server, client):
    server.answer(token_answer("jwt-1", lifetime=1800))
    token = await fetcher(client)()
    assert (token.value, token.lifetime) == ("jwt-1", 1800)
    request = server.last
    assert (request.method, request.path) == ("POST", TOKEN_PATH)
    assert request.json() == {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {"expirationSeconds": 3600},
    }
    assert request.headers["Authorization"] == "Bearer manager"


async def test_audiences_and_expiration_are_sent(server, client):
    server.answer(token_answer())
    await fetcher(client, expiration_seconds=7200, audiences=("vault",))()
    assert server.last.json()["spec"] == {"expirationSeconds": 7200, "audiences": ["vault"]}


async def test_a_lifetime_under_ten_minutes_is_taken_for_clock_skew(server, client):
    server.answer(token_answer(lifetime=30))
    assert (await fetcher(client)()).lifetime == MIN_LIFETIME


async def test_ensure_account_creates_a_missing_service_account_first(server, client):
    server.answer(
        status_answer("NotFound", 404, 'serviceaccounts "job-controller" not found', name="job-controller"),
        json_answer({"metadata": {"name": "kube-system"}}),
        json_answer({"metadata": {"name": "job-controller"}}, status=201),
        token_answer(),
    )
    await fetcher(client, ensure_account=True)()
    assert [(r.method, r.path) for r in server.requests] == [
        ("GET", ACCOUNT_PATH),
        ("GET", "/api/v1/namespaces/kube-system"),
        ("POST", "/api/v1/namespaces/kube-system/serviceaccounts"),
        ("POST", TOKEN_PATH),
    ]
    assert server.requests[2].json()["metadata"] == {"name": "job-controller", "namespace": "kube-system"}


async def test_ensure_service_account_creates_the_namespace_and_survives_a_race(server, client):
    server.answer(
        status_answer("NotFound", 404, "not found"),
        status_answer("NotFound", 404, "not found"),
        json_answer({"metadata": {"name": "kube-system"}}, status=201),
        status_answer("AlreadyExists", 409, "already exists"),
        json_answer({"metadata": {"name": "job-controller", "uid": "u1"}}),
    )
    account = await ensure_service_account(client, namespace="kube-system", name="job-controller")
    assert account["metadata"]["uid"] == "u1"
    assert [(r.method, r.path) for r in server.requests][2] == ("POST", "/api/v1/namespaces")


async def test_ensure_service_account_tolerates_being_refused_the_namespace(server, client):
    server.answer(
        status_answer("NotFound", 404, "not found"),
        status_answer("NotFound", 404, "not found"),
        status_answer("Forbidden", 403, "cannot create namespaces"),
        json_answer({"metadata": {"name": "job-controller"}}, status=201),
    )
    account = await ensure_service_account(client, namespace="kube-system", name="job-controller")
    assert account["metadata"]["name"] == "job-controller"


async def test_a_missing_token_api_fails_at_once_as_not_served(server, client):
    server.answer(status_answer("NotFound", 404, "the server could not find the requested resource"))
    with pytest.raises(TokenRequestError, match="does not serve TokenRequest") as caught:
        await fetcher(client)()
    assert caught.value.not_served and isinstance(caught.value.__cause__, NotFoundError)
    assert len(server.requests) == 1


async def test_not_implemented_fails_at_once_as_not_served(server, client):
    server.answer(status_answer("NotImplemented", 501, "no tokens here"))
    with pytest.raises(TokenRequestError, match="does not serve TokenRequest") as caught:
        await fetcher(client)()
    assert caught.value.not_served and len(server.requests) == 1


async def test_a_missing_account_is_not_mistaken_for_a_missing_api(server, client):
    server.answer(status_answer("NotFound", 404, "not found", name="job-controller", kind="serviceaccounts"))
    with pytest.raises(TokenRequestError, match="TokenRequest failed") as caught:
        await fetcher(client)()
    assert not caught.value.not_served


async def test_a_forbidden_requester_fails_at_once(server, client):
    server.answer(status_answer("Forbidden", 403, "cannot create serviceaccounts/token"))
    with pytest.raises(TokenRequestError, match="cannot create serviceaccounts/token") as caught:
        await fetcher(client)()
    assert not caught.value.not_served and len(server.requests) == 1


async def test_transient_failures_are_retried_with_doubling_backoff(server, client):
    clock = SkippingClock()
    server.answer(
        status_answer("InternalError", 500, "boom"),
        status_answer("ServiceUnavailable", 503, "busy", headers={"Retry-After": "1"}),
        token_answer("late"),
    )
    assert (await fetcher(client, clock=clock)()).value == "late"
    assert clock.sleeps == [0.5, 1.0]


async def test_retries_stop_after_four_attempts(server, client):
    clock = SkippingClock()
    server.default = status_answer("InternalError", 500, "boom")
    with pytest.raises(TokenRequestError, match="boom"):
        await fetcher(client, clock=clock)()
    assert len(server.requests) == 4 and clock.sleeps == [0.5, 1.0, 2.0]


async def test_a_503_without_retry_after_is_not_retried_and_counts_as_not_served(server, client):
    server.answer(status_answer("ServiceUnavailable", 503, "tokens are not configured"))
    with pytest.raises(TokenRequestError, match="tokens are not configured") as caught:
        await fetcher(client)()
    assert caught.value.not_served and len(server.requests) == 1


@pytest.mark.parametrize(
    ("status", "message"),
    [
        ({"expirationTimestamp": "2030-01-01T01:00:00Z"}, "has no token"),
        ({"token": "jwt", "expirationTimestamp": "tomorrow"}, "bad status.expirationTimestamp"),
    ],
)
async def test_a_malformed_answer_is_an_error(server, client, status, message):
    server.answer(json_answer({"kind": "TokenRequest", "status": status}, status=201))
    with pytest.raises(TokenRequestError, match=message):
        await fetcher(client)()
    assert len(server.requests) == 1


@pytest.mark.parametrize(("setting", "value"), [("expiration_seconds", 0), ("attempts", 0)])
def test_bad_settings_are_refused(setting, value):
    with pytest.raises(ValueError, match=setting):
        TokenRequestFetch(object(), namespace="a", name="b", **{setting: value})  # type: ignore[arg-type]


async def test_the_source_caches_the_token_for_the_client_that_uses_it(server, client):
    server.routes[TOKEN_PATH] = token_answer("sa-token")
    server.routes["/api/v1/namespaces/a/pods/p"] = json_answer({"metadata": {"name": "p"}})
    source = service_account_token_source(client, namespace="kube-system", name="job-controller")
    config = ClientConfig(server=server.url).with_token_source(source)
    async with RESTClient(config) as as_account:
        await as_account.request("GET", "/api/v1/namespaces/a/pods/p")
        await as_account.request("GET", "/api/v1/namespaces/a/pods/p")
    assert [(r.path, r.headers["Authorization"]) for r in server.requests] == [
        (TOKEN_PATH, "Bearer manager"),
        ("/api/v1/namespaces/a/pods/p", "Bearer sa-token"),
        ("/api/v1/namespaces/a/pods/p", "Bearer sa-token"),
    ]


def test_service_account_username():
    assert service_account_username(namespace="kube-system", name="job-controller") == (
        "system:serviceaccount:kube-system:job-controller"
    )
