"""Fixtures for the proxy tests: real echo backends on pod-like addresses, and a proxy in front of
a real in-process API server.

Addresses are chosen so that these tests never meet a lab running on the same machine (or a
second test run): the API server gets a random /24 service CIDR under 127.97.0.0/16 instead of
the lab's 127.96.0.0/16 (ClusterIP listeners are shared with SO_REUSEPORT, so a lab's proxies
would otherwise answer our connections), the node IP is random under 127.101.0.0/16 (labs use
127.100.0.N), and backends listen on random 127.244.200-250.x addresses with kernel-chosen ports.
"""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from control.client.config import load_kubeconfig
from control.client.errors import NotFoundError
from control.client.informer import InformerFactory
from control.client.rest import Resource, RESTClient
from control.client.testing import FakeClock
from control.proxy.run import ServiceProxy
from tests.control.apiserver.conftest import running_apiserver

SERVICES = Resource("", "v1", "services", "Service")
ENDPOINT_SLICES = Resource("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice")
UDP_IDLE_TIMEOUT = 30.0


def pod_ip() -> str:
    return f"127.244.{random.randint(200, 250)}.{random.randint(1, 254)}"


# A polling helper: the timeout is its verdict (a test failure), not a cancellation scope.
async def wait_for(
    condition: Callable[[], Awaitable[bool]] | Callable[[], bool],
    *,
    timeout: float = 5.0,  # noqa: ASYNC109
    what: str = "",
) -> None:
    """Poll ``condition`` (sync or async) until it holds; fail the test after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            pytest.fail(f"timed out waiting for {what or condition}")
        await asyncio.sleep(0.01)


class TCPBackend:
    """A TCP server that greets each connection with its name and then echoes until EOF."""

    def __init__(self, name: str, ip: str | None = None) -> None:
        self.name = name
        self.ip = ip or pod_ip()
        self.port = 0
        self.peers: list[tuple[str, int]] = []
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> TCPBackend:
        self._server = await asyncio.start_server(self._serve, self.ip, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        self.peers.append(writer.get_extra_info("peername"))
        try:
            writer.write(f"{self.name}\n".encode())
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
            writer.write(b"bye\n")  # after the client's EOF: half-close is honoured
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def stop(self) -> None:
        """Close the listening socket and every connection."""
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            await self._server.wait_closed()
            self._server = None


class UDPBackend(asyncio.DatagramProtocol):
    """A UDP server answering each datagram with ``<name>|<datagram>``."""

    def __init__(self, name: str, ip: str | None = None) -> None:
        self.name = name
        self.ip = ip or pod_ip()
        self.port = 0
        self.senders: list[tuple[str, int]] = []
        self._transport: asyncio.DatagramTransport | None = None

    async def start(self) -> UDPBackend:
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(lambda: self, local_addr=(self.ip, 0))
        self.port = self._transport.get_extra_info("sockname")[1]
        return self

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.senders.append(addr)
        assert self._transport is not None
        self._transport.sendto(self.name.encode() + b"|" + data, addr)

    async def stop(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None


class TCPClient:
    """A connection through the proxy; ``backend`` is the name the backend greeted it with."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, backend: str) -> None:
        self.reader = reader
        self.writer = writer
        self.backend = backend

    async def echo(self, data: bytes) -> bytes:
        self.writer.write(data)
        await self.writer.drain()
        return await asyncio.wait_for(self.reader.readexactly(len(data)), 5)

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except ConnectionError:
            pass


async def connect(ip: str, port: int, *, source_ip: str | None = None) -> TCPClient:
    """Connect, read the backend's greeting; raises ConnectionError as the socket does."""
    local = (source_ip, 0) if source_ip else None
    reader, writer = await asyncio.wait_for(asyncio.open_connection(ip, port, local_addr=local), 5)
    try:
        greeting = await asyncio.wait_for(reader.readline(), 5)
    except BaseException:
        writer.close()
        raise
    if not greeting:
        writer.close()
        raise EOFError("the connection ended before the backend spoke")
    return TCPClient(reader, writer, greeting.decode().strip())


async def backend_of(ip: str, port: int, *, source_ip: str | None = None) -> str:
    """Which backend answers a new connection (which is then closed)."""
    client = await connect(ip, port, source_ip=source_ip)
    await client.close()
    return client.backend


async def refused(ip: str, port: int) -> bool:
    try:
        client = await connect(ip, port)
    except ConnectionRefusedError:
        return True
    except ConnectionResetError:
        return False  # the connect raced the listener closing: not settled yet, ask again
    await client.close()
    return False


async def answers(ip: str, port: int) -> bool:
    try:
        await backend_of(ip, port)
    except (ConnectionError, EOFError):
        return False
    return True


def udp_exchange(sock: socket.socket, data: bytes, *, timeout: float = 2.0) -> bytes:
    sock.settimeout(timeout)
    sock.send(data)
    return sock.recv(65535)


@dataclass
class ProxyLab:
    """An API server, an admin client, and a service proxy for node ``node_name`` in front of it."""

    client: RESTClient
    proxy: ServiceProxy
    clock: FakeClock
    node_ip: str
    node_name: str
    registry: CollectorRegistry
    backends: list[Any] = field(default_factory=list)

    async def tcp_backends(self, *names: str) -> list[TCPBackend]:
        started = [await TCPBackend(name).start() for name in names]
        self.backends.extend(started)
        return started

    async def udp_backends(self, *names: str) -> list[UDPBackend]:
        started = [await UDPBackend(name).start() for name in names]
        self.backends.extend(started)
        return started

    async def create_service(self, name: str, **spec: Any) -> dict[str, Any]:
        spec.setdefault("ports", [{"name": "web", "port": 80, "protocol": "TCP"}])
        body = {"metadata": {"name": name, "namespace": "default"}, "spec": spec}
        return await self.client.create(SERVICES, body)

    async def put_slice(
        self,
        service: str,
        endpoints: list[dict[str, Any]],
        *,
        ports: list[dict[str, Any]],
        name: str | None = None,
    ) -> dict[str, Any]:
        """Create or replace EndpointSlice ``name`` (default ``<service>-1``) for ``service``."""
        name = name or f"{service}-1"
        body = {
            "metadata": {
                "name": name,
                "namespace": "default",
                "labels": {"kubernetes.io/service-name": service},
            },
            "addressType": "IPv4",
            "endpoints": endpoints,
            "ports": ports,
        }
        try:
            current = await self.client.get(ENDPOINT_SLICES, name, namespace="default")
        except NotFoundError:
            return await self.client.create(ENDPOINT_SLICES, body)
        body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        return await self.client.replace(ENDPOINT_SLICES, body)


def endpoint(
    backend: TCPBackend | UDPBackend, *, ready: bool | None = True, **conditions: Any
) -> dict[str, Any]:
    if ready is not None:
        conditions["ready"] = ready
    return {"addresses": [backend.ip], "conditions": conditions}


def port_of(backend: TCPBackend | UDPBackend, *, name: str = "web", protocol: str = "TCP") -> dict[str, Any]:
    return {"name": name, "port": backend.port, "protocol": protocol}


def node_ip() -> str:
    return f"127.101.{random.randint(0, 255)}.{random.randint(1, 254)}"


@asynccontextmanager
async def running_proxy(
    client: RESTClient,
    *,
    node_ip: str,
    node_name: str,
    clock: FakeClock,
    registry: CollectorRegistry | None = None,
) -> AsyncIterator[ServiceProxy]:
    """A ServiceProxy with its own informers, ready (first sync done); stopped and closed after."""
    informers = InformerFactory(client)
    proxy = ServiceProxy(
        informers,
        node_ip=node_ip,
        node_name=node_name,
        udp_idle_timeout=UDP_IDLE_TIMEOUT,
        registry=registry,
        clock=clock,
    )
    informers.start()
    ready = asyncio.Event()
    running = asyncio.create_task(proxy.run(on_ready=ready.set))
    try:
        await asyncio.wait_for(ready.wait(), 10)
        yield proxy
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        proxy.close()
        await informers.shutdown()


@pytest.fixture
async def proxy_lab(tmp_path) -> AsyncIterator[ProxyLab]:
    cidr = f"127.97.{random.randint(0, 255)}.0/24"
    async with running_apiserver(tmp_path, service_cidr=cidr) as server:
        client = RESTClient(load_kubeconfig(server.data_dir / "kubeconfig"))
        clock = FakeClock()
        registry = CollectorRegistry()
        ip = node_ip()
        lab = None
        try:
            async with running_proxy(
                client, node_ip=ip, node_name="node-a", clock=clock, registry=registry
            ) as proxy:
                lab = ProxyLab(
                    client=client, proxy=proxy, clock=clock, node_ip=ip, node_name="node-a", registry=registry
                )
                yield lab
        finally:
            for backend in lab.backends if lab else ():
                await backend.stop()
            await client.close()


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, Callable[[], Any]]:
    """Every proxy test runs on asyncio's loop and on uvloop, which the node agent runs on."""
    factories: dict[str, Callable[[], Any]] = {"asyncio": asyncio.new_event_loop}
    try:
        import uvloop
    except ImportError:
        return factories
    factories["uvloop"] = uvloop.new_event_loop
    return factories
