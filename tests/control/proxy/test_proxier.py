"""The proxier on its own (routes given directly, no API server): relaying edge cases and sync errors."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator

import pytest

from control.client.testing import FakeClock
from control.proxy.proxier import Proxier, SyncError
from control.proxy.state import ListenerKey, PoolKey, Route
from tests.control.proxy.conftest import TCPBackend, UDPBackend, connect, pod_ip, refused, udp_exchange

pytestmark = pytest.mark.timeout(30)


def service_ip() -> str:
    return pod_ip().replace("127.244.", "127.98.")


def route(service: str, *backends: TCPBackend | UDPBackend, protocol: str = "TCP") -> Route:
    return Route(
        service=service,
        pool=PoolKey(service, "", protocol, False),
        backends=tuple(sorted((b.ip, b.port) for b in backends)),
        affinity_timeout=None,
    )


@pytest.fixture
async def proxier() -> AsyncIterator[Proxier]:
    proxier = Proxier(
        node_ip=pod_ip().replace("127.244.", "127.101."), udp_idle_timeout=30, clock=FakeClock()
    )
    yield proxier
    proxier.close()


@pytest.fixture
async def backend() -> AsyncIterator[TCPBackend]:
    server = await TCPBackend("a").start()
    yield server
    await server.stop()


async def test_client_data_and_eof_sent_before_the_backend_is_connected(proxier, backend):
    key = ListenerKey("TCP", service_ip(), 80)
    await proxier.apply("ns/a", {key: route("ns/a", backend)})
    reader, writer = await asyncio.open_connection(key.ip, key.port)
    writer.write(b"early")  # before the proxy has even picked a backend
    writer.write_eof()
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    assert answer == b"a\nearlybye\n"


async def test_backend_reset_reaches_the_client_as_a_reset(proxier):
    """A backend that resets its connection: the client's connection is reset too."""
    accepted: list[socket.socket] = []
    server = socket.socket()
    server.bind((pod_ip(), 0))
    server.listen()
    key = ListenerKey("TCP", service_ip(), 80)
    ip, port = server.getsockname()
    await proxier.apply(
        "ns/r", {key: Route("ns/r", PoolKey("ns/r", "", "TCP", False), ((ip, port),), affinity_timeout=None)}
    )
    loop = asyncio.get_running_loop()
    try:
        reader, writer = await asyncio.open_connection(key.ip, key.port)
        conn, _ = await loop.run_in_executor(None, server.accept)
        accepted.append(conn)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()
        with pytest.raises(ConnectionResetError):
            await asyncio.wait_for(reader.read(), 5)
        writer.close()
    finally:
        server.close()


async def test_a_listener_belongs_to_the_first_service_that_claims_it(proxier, backend):
    key = ListenerKey("TCP", service_ip(), 80)
    await proxier.apply("ns/first", {key: route("ns/first", backend)})
    with pytest.raises(SyncError) as caught:
        await proxier.apply("ns/second", {key: route("ns/second", backend)})
    assert caught.value.service == "ns/second"
    assert "already used by service ns/first" in str(caught.value)
    await proxier.apply("ns/first", {})
    assert await refused(key.ip, key.port)
    await proxier.apply("ns/second", {key: route("ns/second", backend)})
    client = await connect(key.ip, key.port)
    assert client.backend == "a"
    await client.close()


async def test_a_failed_bind_does_not_stop_the_other_listeners(proxier, backend):
    ip = service_ip()
    busy = socket.socket()
    busy.bind((proxier.node_ip, 0))  # a NodePort someone else holds (not shared)
    busy.listen()
    node_port = ListenerKey("TCP", proxier.node_ip, busy.getsockname()[1])
    cluster = ListenerKey("TCP", ip, 80)
    try:
        with pytest.raises(SyncError) as caught:
            await proxier.apply(
                "ns/np", {cluster: route("ns/np", backend), node_port: route("ns/np", backend)}
            )
        assert [error.key for error in caught.value.errors] == [node_port]
        assert proxier.counts.listen_errors == 1
        client = await connect(ip, 80)
        await client.close()
    finally:
        busy.close()
    await proxier.apply("ns/np", {cluster: route("ns/np", backend), node_port: route("ns/np", backend)})
    client = await connect(node_port.ip, node_port.port)
    assert client.backend == "a"
    await client.close()


async def test_close_stops_listeners_and_resets_connections(proxier, backend):
    key = ListenerKey("TCP", service_ip(), 80)
    await proxier.apply("ns/a", {key: route("ns/a", backend)})
    client = await connect(key.ip, key.port)
    assert proxier.tcp_connections == 1
    proxier.close()
    assert proxier.tcp_connections == 0
    assert await refused(key.ip, key.port)
    with pytest.raises(ConnectionResetError):
        await asyncio.wait_for(client.reader.read(), 5)
    await client.close()


async def test_udp_flow_ends_when_the_backend_port_closes(proxier):
    gone = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # closed synchronously below
    gone.bind((pod_ip(), 0))
    gone.settimeout(5)
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.settimeout(5)
    alive = await UDPBackend("alive").start()
    key = ListenerKey("UDP", service_ip(), 53)
    gone_backend = (gone.getsockname(), (alive.ip, alive.port))
    loop = asyncio.get_running_loop()

    def answer_once() -> None:
        data, sender = gone.recvfrom(100)
        gone.sendto(b"gone|" + data, sender)

    try:
        await proxier.apply(
            "ns/dns",
            {
                key: Route(
                    "ns/dns", PoolKey("ns/dns", "", "UDP", False), gone_backend[:1], affinity_timeout=None
                )
            },
        )
        client.connect((key.ip, key.port))
        answering = loop.run_in_executor(None, answer_once)
        assert await loop.run_in_executor(None, udp_exchange, client, b"1") == b"gone|1"
        await answering
        gone.close()  # its port now answers ICMP port unreachable
        both = tuple(sorted(gone_backend))
        await proxier.apply(
            "ns/dns", {key: Route("ns/dns", PoolKey("ns/dns", "", "UDP", False), both, affinity_timeout=None)}
        )
        # Two datagrams back to back, read by the proxy in one go: the first reaches the closed
        # port and the ICMP error comes back at once; sending the second then fails, so the
        # proxy ends the flow and sends it through a new flow to another backend.
        client.send(b"lost")
        client.send(b"rerouted")
        assert await loop.run_in_executor(None, client.recv, 100) == b"alive|rerouted"
        assert proxier.udp_flows == 1
        assert proxier.counts.udp_flows == 2  # opened in all: the first flow and its replacement
    finally:
        client.close()
        gone.close()
        await alive.stop()


async def test_invalid_idle_timeout_is_rejected():
    with pytest.raises(ValueError, match="idle timeout must be positive"):
        Proxier(node_ip="127.101.0.1", udp_idle_timeout=0)
