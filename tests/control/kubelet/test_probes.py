"""Probe actions against real local servers, and the probe workers' thresholds and gating."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import grpc
import pytest
from aiohttp import web

from control.kubelet.probes import (
    HEALTH_CHECK_METHOD,
    USER_AGENT,
    ContainerProbes,
    Outcome,
    Result,
    health_check_request,
    http_url,
    resolve_port,
    run_action,
    run_grpc,
    run_http_get,
    run_tcp,
    serving_status,
)
from tests.control.apiserver.conftest import free_port


@pytest.fixture
async def site() -> AsyncIterator[str]:
    seen: dict[str, str] = {}

    async def ok(request: web.Request) -> web.Response:
        seen["agent"] = request.headers.get("User-Agent", "")
        seen["custom"] = request.headers.get("X-Probe", "")
        return web.Response(text="fine")

    async def broken(request: web.Request) -> web.Response:
        return web.Response(status=503, text="down")

    async def hop(request: web.Request) -> web.Response:
        raise web.HTTPFound("/ok")

    async def away(request: web.Request) -> web.Response:
        raise web.HTTPFound("http://127.0.0.2:1/elsewhere")

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(0.6)
        return web.Response(text="late")

    app = web.Application()
    app.add_routes(
        [
            web.get("/ok", ok),
            web.get("/broken", broken),
            web.get("/hop", hop),
            web.get("/away", away),
            web.get("/slow", slow),
        ]
    )
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
    assert seen.get("agent") == USER_AGENT


async def test_http_probe_outcomes(site: str) -> None:
    assert await run_http_get(f"{site}/ok", headers={"X-Probe": "1"}, timeout=2) == Outcome(
        Result.SUCCESS, "fine"
    )
    assert await run_http_get(f"{site}/broken", headers={}, timeout=2) == Outcome(
        Result.FAILURE, "HTTP probe failed with statuscode: 503"
    )
    assert (await run_http_get(f"{site}/hop", headers={}, timeout=2)).output == "fine", (
        "same-host redirects are followed"
    )
    away = await run_http_get(f"{site}/away", headers={}, timeout=2)
    assert away.result is Result.WARNING and away.passed
    assert away.output.startswith("Probe terminated redirects, Response body: ")
    started = time.monotonic()
    slow = await run_http_get(f"{site}/slow", headers={}, timeout=0.3)
    assert time.monotonic() - started < 0.55
    assert slow == Outcome(
        Result.FAILURE,
        f'Get "{site}/slow": context deadline exceeded (Client.Timeout exceeded while awaiting headers)',
    )


async def test_refused_connections_are_worded_as_go_does() -> None:
    port = free_port()
    refused = await run_http_get(f"http://127.0.0.1:{port}/healthz", headers={}, timeout=1)
    assert refused == Outcome(
        Result.FAILURE,
        f'Get "http://127.0.0.1:{port}/healthz": dial tcp 127.0.0.1:{port}: connect: connection refused',
    )
    assert await run_tcp(host="127.0.0.1", port=port, timeout=1) == Outcome(
        Result.FAILURE, f"dial tcp 127.0.0.1:{port}: connect: connection refused"
    )


async def test_tcp_probe_passes_when_the_port_accepts() -> None:
    server = await asyncio.start_server(lambda reader, writer: writer.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        assert (await run_tcp(host="127.0.0.1", port=port, timeout=1)).result is Result.SUCCESS
    finally:
        server.close()
        await server.wait_closed()


def test_ports_and_urls() -> None:
    container = {"ports": [{"name": "metrics", "containerPort": 9090}]}
    assert resolve_port(8080, container) == 8080
    assert resolve_port("8081", container) == 8081
    assert resolve_port("metrics", container) == 9090
    with pytest.raises(ValueError, match="couldn't find port 'web'"):
        resolve_port("web", container)
    assert http_url({"port": "metrics", "path": "healthz"}, pod_ip="127.244.1.2", container=container) == (
        "http://127.244.1.2:9090/healthz"
    )
    assert (
        http_url({"port": 443, "scheme": "HTTPS", "host": "127.0.0.9"}, pod_ip="x", container={})
        == "https://127.0.0.9:443/"
    )


async def test_actions_without_a_known_handler() -> None:
    nothing = await run_action({}, runtime=None, container_id="", container={}, pod_ip="", timeout=1)  # type: ignore[arg-type]
    assert nothing.result is Result.FAILURE
    named = await run_action(
        {"tcpSocket": {"port": "nope"}}, runtime=None, container_id="", container={}, pod_ip="", timeout=1
    )  # type: ignore[arg-type]
    assert named == Outcome(Result.FAILURE, "couldn't find port 'nope' in the container's ports")


class Script:
    """Probe results in order (the last one repeats), recording which probe ran when."""

    def __init__(self, *results: Result) -> None:
        self.results = list(results)
        self.calls: list[tuple[str, float]] = []

    async def __call__(self, probe: dict, timeout: float) -> Outcome:  # noqa: ASYNC109
        self.calls.append((probe["kind"], time.monotonic()))
        result = self.results.pop(0) if len(self.results) > 1 else self.results[0]
        return Outcome(result, f"{probe['kind']} output")


class Changes:
    """``on_change`` for ContainerProbes, awaitable until a condition holds."""

    def __init__(self) -> None:
        self.event = asyncio.Event()

    def __call__(self) -> None:
        self.event.set()

    async def until(self, condition: Callable[[], bool]) -> None:
        async with asyncio.timeout(5):
            while not condition():
                self.event.clear()
                await self.event.wait()


def quick(kind: str, **settings: float) -> dict:
    """A probe spec with a sub-second period (the API allows whole seconds; the worker does not care)."""
    return {"kind": kind, "periodSeconds": 0.02, **settings}


async def test_readiness_needs_the_thresholds() -> None:
    script = Script(Result.FAILURE, Result.SUCCESS, Result.SUCCESS, Result.FAILURE, Result.FAILURE)
    events: list[tuple[str, str, str]] = []
    changes = Changes()
    container = {"name": "app", "readinessProbe": quick("readiness", successThreshold=2, failureThreshold=2)}
    probes = ContainerProbes(
        container,
        started_at=time.time(),
        action=script,
        on_change=changes,
        on_event=lambda *e: events.append(e),
    )
    probes.start()
    try:
        assert probes.ready is False
        await changes.until(lambda: probes.ready)
        assert len(script.calls) == 3, "two successes in a row were needed"
        await changes.until(lambda: not probes.ready)
        assert len(script.calls) == 5, "and two failures in a row to turn it back"
        assert ("Warning", "Unhealthy", "Readiness probe failed: readiness output") in events
        assert probes.restart_reason == "", "readiness never restarts a container"
    finally:
        await probes.stop()


async def test_startup_gates_liveness_and_a_failure_asks_for_a_restart() -> None:
    script = Script(Result.FAILURE, Result.FAILURE, Result.SUCCESS, Result.FAILURE)
    changes = Changes()
    container = {
        "name": "app",
        "startupProbe": quick("startup", failureThreshold=5),
        "livenessProbe": quick("liveness", failureThreshold=1),
    }
    probes = ContainerProbes(
        container, started_at=time.time(), action=script, on_change=changes, on_event=lambda *e: None
    )
    assert probes.started is False and probes.ready is True, (
        "without a readiness probe a running container is ready"
    )
    probes.start()
    try:
        await changes.until(lambda: bool(probes.restart_reason))
        assert [kind for kind, _ in script.calls] == ["startup", "startup", "startup", "liveness"]
        assert probes.started is True
        assert probes.restart_reason == "Container app failed liveness probe, will be restarted"
    finally:
        await probes.stop()
    assert len(script.calls) == 4, "probing stopped once a restart was asked for"


async def test_nothing_is_probed_before_the_initial_delay() -> None:
    script = Script(Result.FAILURE)
    changes = Changes()
    container = {"name": "app", "startupProbe": quick("startup", failureThreshold=1, initialDelaySeconds=0.5)}
    began = time.monotonic()
    probes = ContainerProbes(
        container, started_at=time.time() - 0.2, action=script, on_change=changes, on_event=lambda *e: None
    )
    probes.start()
    try:
        await changes.until(lambda: bool(probes.restart_reason))
    finally:
        await probes.stop()
    assert 0.25 <= script.calls[0][1] - began < 1.0, "the delay counts from the container's start, 0.2 s ago"
    assert probes.restart_reason == "Container app failed startup probe, will be restarted"


# --- gRPC -----------------------------------------------------------------------------------


class HealthServer:
    """A real gRPC server speaking grpc.health.v1 (generic handler, raw protobuf bytes)."""

    def __init__(self, statuses: dict[str, int]) -> None:
        self.statuses = statuses
        self.seen: list[tuple[str, str]] = []  # (service, user agent)

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        if details.method != HEALTH_CHECK_METHOD:
            return None
        return grpc.unary_unary_rpc_method_handler(self.check)

    async def check(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        service = request[2:].decode() if request else ""
        agent = dict(context.invocation_metadata()).get("user-agent", "")
        self.seen.append((service, agent))
        if service not in self.statuses:
            await context.abort(grpc.StatusCode.NOT_FOUND, "unknown service")
        status = self.statuses[service]
        return b"\x08" + bytes([status]) if status else b""


@pytest.fixture
async def health_server() -> AsyncIterator[tuple[HealthServer, int]]:
    handler = HealthServer({"": 1, "db": 2, "cache": 0})
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield handler, port
    finally:
        await server.stop(0)


def test_health_messages_in_protobuf_wire_format() -> None:
    assert health_check_request("") == b""
    assert health_check_request("db") == b"\x0a\x02db"
    assert serving_status(b"") == 0 and serving_status(b"\x08\x01") == 1
    assert serving_status(b"\x12\x01x\x08\x02") == 2  # unknown fields are skipped
    with pytest.raises(ValueError, match="truncated"):
        serving_status(b"\x08")


async def test_grpc_probe_passes_only_for_serving(health_server: tuple[HealthServer, int]) -> None:
    handler, port = health_server
    ok = await run_grpc(host="127.0.0.1", port=port, service="", timeout=2)
    assert (ok.result, ok.output) == (Result.SUCCESS, "service healthy")
    down = await run_grpc(host="127.0.0.1", port=port, service="db", timeout=2)
    assert (down.result, down.output) == (Result.FAILURE, 'service unhealthy (responded with "NOT_SERVING")')
    unknown = await run_grpc(host="127.0.0.1", port=port, service="cache", timeout=2)
    assert unknown.output == 'service unhealthy (responded with "UNKNOWN")'
    missing = await run_grpc(host="127.0.0.1", port=port, service="nope", timeout=2)
    assert (
        missing.output == "error: health rpc probe failed: rpc error: code = NotFound desc = unknown service"
    )
    assert [service for service, _ in handler.seen] == ["", "db", "cache", "nope"]
    assert all(agent.startswith("kube-probe/1.33") for _, agent in handler.seen)


async def test_grpc_probe_fails_against_a_server_without_the_health_service() -> None:
    server = grpc.aio.server()
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        outcome = await run_grpc(host="127.0.0.1", port=port, service="", timeout=2)
    finally:
        await server.stop(0)
    assert outcome.result is Result.FAILURE
    assert outcome.output.startswith(
        "this server does not implement the grpc health protocol (grpc.health.v1.Health):"
    )


async def test_grpc_action_probes_the_pod_ip(health_server: tuple[HealthServer, int]) -> None:
    _, port = health_server
    outcome = await run_action(
        {"grpc": {"port": port, "service": "db"}},
        runtime=None,  # type: ignore[arg-type]
        container_id="",
        container={},
        pod_ip="127.0.0.1",
        timeout=2,
    )
    assert outcome == Outcome(Result.FAILURE, 'service unhealthy (responded with "NOT_SERVING")')


async def test_grpc_probe_times_out_when_nothing_listens() -> None:
    port = free_port()
    outcome = await run_grpc(host="127.0.0.1", port=port, service="", timeout=0.5)
    assert outcome.result is Result.FAILURE
    assert outcome.output == (
        f'timeout: failed to connect service "127.0.0.1:{port}" within 0.5s: context deadline exceeded'
    )
