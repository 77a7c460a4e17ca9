"""The kit's status endpoints: health checks, readiness gates, a registry per component."""

from __future__ import annotations

import errno
import socket

import aiohttp
import pytest
from prometheus_client import CollectorRegistry, Counter

from addons.kit.serving import BindError, Listener, Probe, Readiness, StatusServer, bind_error, standard_paths


async def fetch(url: str) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status, await response.text(), response.headers.get("Content-Type", "")


async def test_health_ready_and_metrics_on_one_listener() -> None:
    registry = CollectorRegistry()
    Counter("addon_things", "Things done.", registry=registry).inc(3)
    readiness = Readiness()
    readiness.add("informers")
    problems: list[str] = []
    server = StatusServer(
        registry=registry, readiness=readiness, health_checks=[lambda: problems[0] if problems else None]
    )
    await server.start([Listener("127.0.0.1", 0)])
    try:
        base = f"http://127.0.0.1:{server.addresses[0][1]}"
        assert (await fetch(f"{base}/healthz"))[:2] == (200, "OK")
        status, text, _ = await fetch(f"{base}/readyz")
        assert status == 503 and "informers" in text
        readiness.set("informers", True)
        assert (await fetch(f"{base}/readyz"))[:2] == (200, "OK")
        status, text, content_type = await fetch(f"{base}/metrics")
        assert status == 200 and "addon_things_total 3.0" in text and content_type.startswith("text/plain")
        problems.append("watch stalled")
        assert (await fetch(f"{base}/healthz"))[:2] == (503, "watch stalled\n")
        assert (await fetch(f"{base}/nothing"))[0] == 404
    finally:
        await server.stop()
    assert server.addresses == []


async def test_probes_on_separate_listeners_as_coredns_does() -> None:
    server = StatusServer(registry=CollectorRegistry(), readiness=Readiness())
    await server.start(
        [
            Listener("127.0.0.1", 0, {"/health": Probe.HEALTH}),
            Listener("127.0.0.1", 0, {"/ready": Probe.READY}),
        ]
    )
    try:
        (_, health), (_, ready) = server.addresses
        assert (await fetch(f"http://127.0.0.1:{health}/health"))[0] == 200
        assert (await fetch(f"http://127.0.0.1:{ready}/ready"))[0] == 200
        assert (await fetch(f"http://127.0.0.1:{health}/ready"))[0] == 404
    finally:
        await server.stop()


async def test_a_used_port_is_a_bind_error_and_nothing_stays_bound() -> None:
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    port = blocker.getsockname()[1]
    server = StatusServer(registry=CollectorRegistry(), readiness=Readiness())
    try:
        with pytest.raises(BindError, match=f"cannot listen on 127.0.0.1:{port}"):
            await server.start([Listener("127.0.0.1", 0), Listener("127.0.0.1", port)])
        assert server.addresses == []
    finally:
        blocker.close()


def test_bind_errors_explain_privileged_ports() -> None:
    message = str(bind_error(host="127.0.0.1", port=80, error=OSError(errno.EACCES, "Permission denied")))
    assert "ports below 1024 need root" in message
    assert "ports below" not in str(
        bind_error(host="127.0.0.1", port=8080, error=OSError(errno.EADDRINUSE, "in use"))
    )


def test_listener_and_readiness_validation() -> None:
    with pytest.raises(ValueError, match="port"):
        Listener("127.0.0.1", 70000)
    with pytest.raises(ValueError, match="path"):
        Listener("127.0.0.1", 0, {"metrics": Probe.METRICS})
    assert set(standard_paths()) == {"/healthz", "/readyz", "/metrics"}
    readiness = Readiness()
    assert readiness.is_ready()
    readiness.add("a")
    readiness.add("b", ready=True)
    assert readiness.pending() == ["a"] and not readiness.is_ready()
    with pytest.raises(KeyError, match="no readiness gate 'c'"):
        readiness.set("c", True)
