"""Token sources: cached tokens renewed before they expire, dropped after a 401, used by every
request and watch of a client configured with one."""

from __future__ import annotations

import asyncio
import logging

import pytest

from control.client.config import ClientConfig, ConfigError, ExecConfig, Impersonation
from control.client.errors import RequestError, TransportError, UnauthorizedError
from control.client.rest import Resource, RESTClient
from control.client.testing import FakeClock
from control.client.tokensource import CachedTokenSource, Token
from tests.control.client.wire import FakeWireServer, json_answer, status_answer, stream_answer

PODS = Resource("", "v1", "pods", "Pod")
UNAUTHORIZED = status_answer("Unauthorized", 401, "Unauthorized")


class Issuer:
    """A fetch function handing out t1, t2, ... each living ``lifetime`` seconds; can be made to fail."""

    def __init__(self, *, lifetime: float | None = 100.0) -> None:
        self.lifetime = lifetime
        self.calls = 0
        self.failure: Exception | None = None
        self.gate: asyncio.Event | None = None

    async def __call__(self) -> Token:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.failure is not None:
            raise self.failure
        return Token(f"t{self.calls}", self.lifetime)


@pytest.fixture
async def server():
    fake = FakeWireServer()
    await fake.start()
    yield fake
    await fake.stop()


def bearer(server: FakeWireServer) -> list[str]:
    return [request.headers.get("Authorization", "") for request in server.requests]


# --- the cache ------------------------------------------------------------------------------------


async def test_a_token_is_reused_until_80_percent_of_its_lifetime_has_passed():
    clock, issuer = FakeClock(), Issuer(lifetime=100.0)
    source = CachedTokenSource(issuer, clock=clock)
    assert await source.token() == "t1"
    clock.advance(79.9)
    assert await source.token() == "t1"
    clock.advance(0.1)
    assert await source.token() == "t2"
    assert issuer.calls == 2


async def test_the_refresh_fraction_is_configurable():
    clock, issuer = FakeClock(), Issuer(lifetime=100.0)
    source = CachedTokenSource(issuer, refresh_fraction=0.5, clock=clock)
    await source.token()
    clock.advance(50)
    assert await source.token() == "t2"


async def test_a_token_without_lifetime_is_kept_for_good():
    clock, issuer = FakeClock(), Issuer(lifetime=None)
    source = CachedTokenSource(issuer, clock=clock)
    await source.token()
    clock.advance(10**9)
    assert await source.token() == "t1"
    assert issuer.calls == 1


async def test_concurrent_callers_share_one_fetch():
    issuer = Issuer()
    issuer.gate = asyncio.Event()
    source = CachedTokenSource(issuer, clock=FakeClock())
    waiting = [asyncio.create_task(source.token()) for _ in range(5)]
    await asyncio.sleep(0)
    issuer.gate.set()
    assert await asyncio.gather(*waiting) == ["t1"] * 5
    assert issuer.calls == 1


async def test_invalidating_the_current_token_fetches_a_new_one_but_an_old_token_is_ignored():
    source = CachedTokenSource(Issuer(), clock=FakeClock())
    assert await source.token() == "t1"
    source.invalidate("t1")
    assert await source.token() == "t2"
    source.invalidate("t1")  # a late 401 for a token already replaced must not force another fetch
    assert await source.token() == "t2"


async def test_a_failed_renewal_keeps_the_unexpired_token_then_fails_once_it_expired(caplog):
    clock, issuer = FakeClock(), Issuer(lifetime=100.0)
    source = CachedTokenSource(issuer, name="token of x", clock=clock)
    await source.token()
    issuer.failure = TransportError("connection refused")
    clock.advance(90)
    with caplog.at_level(logging.WARNING, logger="control.client.tokensource"):
        assert await source.token() == "t1"
    assert "cannot renew token of x" in caplog.text
    clock.advance(10)
    with pytest.raises(TransportError):
        await source.token()


async def test_a_renewal_that_fails_with_a_bug_is_raised_at_once():
    clock, issuer = FakeClock(), Issuer(lifetime=100.0)
    source = CachedTokenSource(issuer, clock=clock)
    await source.token()
    issuer.failure = KeyError("status")
    clock.advance(90)
    with pytest.raises(KeyError):
        await source.token()


async def test_a_failed_first_fetch_is_raised():
    issuer = Issuer()
    issuer.failure = TransportError("connection refused")
    with pytest.raises(TransportError):
        await CachedTokenSource(issuer, clock=FakeClock()).token()


@pytest.mark.parametrize("fraction", [0, -0.5, 1.01])
def test_a_refresh_fraction_outside_0_to_1_is_refused(fraction):
    with pytest.raises(ValueError, match="refresh_fraction"):
        CachedTokenSource(Issuer(), refresh_fraction=fraction)


@pytest.mark.parametrize(("value", "lifetime"), [("", 10.0), ("t", 0.0), ("t", -1.0)])
def test_empty_tokens_and_non_positive_lifetimes_are_refused(value, lifetime):
    with pytest.raises(ValueError):
        Token(value, lifetime)


def test_the_token_value_stays_out_of_repr():
    assert "secret" not in repr(Token("secret", 10.0))


# --- the configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "other",
    [
        {"token": "static"},
        {"username": "u", "password": "p"},
        {"exec_config": ExecConfig(command="x", api_version="client.authentication.k8s.io/v1")},
    ],
)
def test_a_token_source_excludes_other_credentials(other):
    with pytest.raises(ConfigError, match="token_source cannot be combined"):
        ClientConfig(server="https://x:1", token_source=CachedTokenSource(Issuer()), **other)


def test_with_token_source_drops_every_other_credential_but_keeps_the_server_and_trust():
    base = ClientConfig(
        server="https://x:1",
        ca_data=b"ca",
        tls_server_name="api",
        client_cert_data=b"cert",
        client_key_data=b"key",
        impersonate=Impersonation(user="jane"),
        source="kubeconfig k",
    )
    source = CachedTokenSource(Issuer())
    config = base.with_token_source(source, source="kubeconfig k as sa")
    assert config.token_source is source
    assert (config.server, config.ca_data, config.tls_server_name) == ("https://x:1", b"ca", "api")
    assert config.client_cert_data is None and config.client_key_data is None
    assert config.impersonate is None and config.source == "kubeconfig k as sa"
    assert base.token_source is None


# --- requests and watches -------------------------------------------------------------------------


async def test_every_request_carries_the_current_token(server):
    clock = FakeClock()
    source = CachedTokenSource(Issuer(lifetime=100.0), clock=clock)
    server.default = json_answer({"items": []})
    async with RESTClient(ClientConfig(server=server.url, token_source=source)) as client:
        await client.list(PODS, namespace="a")
        clock.advance(80)
        await client.list(PODS, namespace="a")
    assert bearer(server) == ["Bearer t1", "Bearer t2"]


async def test_a_401_renews_the_token_and_retries_the_request_once(server):
    server.answer(UNAUTHORIZED, json_answer({"metadata": {"name": "p"}}))
    issuer = Issuer()
    config = ClientConfig(server=server.url, token_source=CachedTokenSource(issuer, clock=FakeClock()))
    async with RESTClient(config) as client:
        created = await client.create(PODS, {"metadata": {"name": "p"}}, namespace="a")
    assert created["metadata"]["name"] == "p"
    assert bearer(server) == ["Bearer t1", "Bearer t2"]
    assert server.requests[0].body == server.requests[1].body  # the same POST, sent again


async def test_a_second_401_is_raised_without_more_retries(server):
    server.default = UNAUTHORIZED
    issuer = Issuer()
    config = ClientConfig(server=server.url, token_source=CachedTokenSource(issuer, clock=FakeClock()))
    async with RESTClient(config) as client:
        with pytest.raises(UnauthorizedError):
            await client.get(PODS, "p", namespace="a")
        assert bearer(server) == ["Bearer t1", "Bearer t2"]
        # The next request starts over: the refused token is dropped, one retry again.
        with pytest.raises(UnauthorizedError):
            await client.get(PODS, "p", namespace="a")
    assert bearer(server)[2:] == ["Bearer t3", "Bearer t4"]
    assert issuer.calls == 4


async def test_a_static_token_is_not_retried_after_a_401(server):
    server.default = UNAUTHORIZED
    async with RESTClient(ClientConfig(server=server.url, token="static")) as client:
        with pytest.raises(UnauthorizedError):
            await client.get(PODS, "p", namespace="a")
    assert bearer(server) == ["Bearer static"]


async def test_a_token_source_failure_fails_the_request_without_sending_it(server):
    issuer = Issuer()
    issuer.failure = TransportError("token endpoint down")
    config = ClientConfig(server=server.url, token_source=CachedTokenSource(issuer, clock=FakeClock()))
    async with RESTClient(config) as client:
        with pytest.raises(RequestError, match="token endpoint down"):
            await client.get(PODS, "p", namespace="a")
    assert server.requests == []


async def test_watches_use_the_token_source_and_renew_after_a_401(server):
    event = b'{"type":"ADDED","object":{"metadata":{"name":"p","resourceVersion":"5"}}}\n'
    server.answer(UNAUTHORIZED, stream_answer([event]))
    clock = FakeClock()
    config = ClientConfig(server=server.url, token_source=CachedTokenSource(Issuer(), clock=clock))
    async with RESTClient(config) as client:
        async with await client.watch(PODS, namespace="a") as events:
            names = [watched.object["metadata"]["name"] async for watched in events]
        clock.advance(80)
        server.answer(stream_answer([]))
        async with await client.watch(PODS, namespace="a") as events:
            assert [watched async for watched in events] == []
    assert names == ["p"]
    assert [r.query.get("watch") for r in server.requests] == ["true"] * 3
    assert bearer(server) == ["Bearer t1", "Bearer t2", "Bearer t3"]
