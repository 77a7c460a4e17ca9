"""The REST client's request metrics, carried by its configuration: one result per attempt (its code,
or ``<error>``), one latency per non-streaming request, each client counting into its own
configuration's sink only, nothing without one."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from control.client.config import ClientConfig
from control.client.errors import NotFoundError, TransportError
from control.client.rest import ERROR_CODE, RequestMetrics, Resource, RESTClient
from control.client.testing import FakeClock
from tests.control.client.support import eventually
from tests.control.client.wire import FakeWireServer, json_answer, status_answer

PODS = Resource("", "v1", "pods", "Pod")


class Recorder:
    def __init__(self) -> None:
        self.results: list[tuple[str, str, str]] = []
        self.latencies: list[tuple[str, str, float]] = []

    def increment(self, *, code: str, method: str, host: str) -> None:
        self.results.append((code, method, host))

    def observe(self, *, verb: str, host: str, seconds: float) -> None:
        self.latencies.append((verb, host, seconds))


class FixedToken:
    """A token source that always has the same token."""

    async def token(self) -> str:
        return "t0ken"

    def invalidate(self, token: str) -> None:
        pass


def measured_by(recorder: Recorder) -> RequestMetrics:
    return RequestMetrics(latency=recorder, result=recorder)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def server() -> AsyncIterator[FakeWireServer]:
    wire = FakeWireServer()
    await wire.start()
    yield wire
    await wire.stop()


@pytest.fixture
async def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def client(server: FakeWireServer, clock: FakeClock, recorder: Recorder) -> AsyncIterator[RESTClient]:
    config = ClientConfig(server=server.url, token="s3cret", request_metrics=measured_by(recorder))
    rest = RESTClient(config, clock=clock)
    yield rest
    await rest.close()


def pod(name: str = "web") -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"}}


def host_of(url: str) -> str:
    return url.removeprefix("http://")


async def test_a_request_counts_its_code_method_and_host_and_its_latency(server, client, recorder):
    server.answer(json_answer(pod(), status=201))
    await client.create(PODS, pod(), namespace="default")
    host = host_of(server.url)
    assert recorder.results == [("201", "POST", host)]
    [(verb, latency_host, seconds)] = recorder.latencies
    assert (verb, latency_host) == ("POST", host)
    assert 0 < seconds < 10


async def test_a_failure_answer_is_counted_and_timed_too(server, client, recorder):
    with pytest.raises(NotFoundError):
        await client.get(PODS, "gone", namespace="default")
    assert recorder.results == [("404", "GET", host_of(server.url))]
    assert [verb for verb, _, _ in recorder.latencies] == ["GET"]


async def test_each_retried_attempt_is_a_result_but_the_request_one_latency(server, client, clock, recorder):
    server.answer(
        status_answer("TooManyRequests", 429, "slow down", headers={"Retry-After": "1"}), json_answer(pod())
    )
    call = asyncio.create_task(client.get(PODS, "web", namespace="default"))
    await eventually(lambda: clock.pending())
    clock.advance_to_next()
    await call
    host = host_of(server.url)
    assert recorder.results == [("429", "GET", host), ("200", "GET", host)]
    assert len(recorder.latencies) == 1


async def test_no_answer_counts_as_an_error_code(recorder):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    config = ClientConfig(server=f"http://127.0.0.1:{port}", request_metrics=measured_by(recorder))
    async with RESTClient(config, max_retries=0) as client:
        with pytest.raises(TransportError):
            await client.create(PODS, pod(), namespace="default")
    assert recorder.results == [(ERROR_CODE, "POST", f"127.0.0.1:{port}")]
    assert len(recorder.latencies) == 1


async def test_a_watch_counts_its_result_and_no_latency(server, client, recorder):
    server.answer(json_answer({"type": "ADDED", "object": pod()}))
    async with await client.watch(PODS, namespace="default") as events:
        [event] = [event async for event in events]
    assert event.object["metadata"]["name"] == "web"
    assert recorder.results == [("200", "GET", host_of(server.url))]
    assert recorder.latencies == []


async def test_a_configuration_without_metrics_measures_nothing(server, recorder):
    server.answer(json_answer(pod()))
    async with RESTClient(ClientConfig(server=server.url)) as client:
        await client.get(PODS, "web", namespace="default")
    assert recorder.results == []
    assert recorder.latencies == []


async def test_each_client_counts_into_its_own_configuration_s_sink(server, client, recorder):
    other = Recorder()
    server.answer(json_answer(pod()), json_answer(pod()), json_answer(pod()))
    async with RESTClient(ClientConfig(server=server.url, request_metrics=measured_by(other))) as second:
        await second.get(PODS, "web", namespace="default")
        await second.get(PODS, "web", namespace="default")
    await client.get(PODS, "web", namespace="default")
    host = host_of(server.url)
    assert other.results == [("200", "GET", host), ("200", "GET", host)]
    assert recorder.results == [("200", "GET", host)]


async def test_a_configuration_derived_for_a_token_source_keeps_the_sink(server, recorder):
    config = ClientConfig(server=server.url, token="s3cret", request_metrics=measured_by(recorder))
    derived = config.with_token_source(FixedToken())
    assert derived.request_metrics is config.request_metrics
    server.answer(json_answer(pod()))
    async with RESTClient(derived) as client:
        await client.get(PODS, "web", namespace="default")
    assert recorder.results == [("200", "GET", host_of(server.url))]
