"""The UDP and TCP listeners: bytes in, ``Handler.serve``, bytes out.

UDP is served from a reader callback on a non-blocking socket that drains up to ``UDP_BATCH``
datagrams per wake-up with ``recvfrom`` and answers each with ``sendto`` — no transport or
protocol object per packet, so under load one event-loop turn serves a batch. A reply that must
wait for an upstream is sent when its coroutine finishes. A full socket buffer drops the reply
(the client retries), as any UDP server does.

TCP (RFC 7766): two-byte length-prefixed messages, several per connection, each answered in
full (no truncation below 65535 bytes). A message longer than ``max_tcp_message`` closes the
connection; so does ``idle_timeout`` seconds without a complete message (a slow or silent
client cannot hold a connection by trickling bytes); beyond ``max_tcp_connections`` new
connections are closed at once. TCP work never blocks the UDP path: both share the event loop
and every TCP step is non-blocking.

``reuse_port`` sets SO_REUSEPORT, so several worker processes can bind the same address and the
kernel spreads the load across them. IPv6 sockets are IPV6_V6ONLY: bind ``::`` and ``0.0.0.0``
separately to serve both families.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import socket
import struct
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from addons.coredns_lite.handler import Reply

log = logging.getLogger(__name__)

UDP_BATCH = 64
DEFAULT_IDLE_TIMEOUT = 10.0  # CoreDNS's default TCP idle timeout
DEFAULT_MAX_TCP_MESSAGE = 4096  # a query; nothing legitimate comes near
DEFAULT_MAX_TCP_CONNECTIONS = 1000

Serve = Callable[..., Reply | Coroutine[Any, Any, Reply]]


class ListenError(Exception):
    """A DNS listener could not be opened."""


def server_label(host: str, port: int) -> str:
    """CoreDNS's ``server`` metric label: ``dns://<bind>:<port>`` (``dns://:53`` unbound)."""
    if host in ("", "0.0.0.0", "::"):
        return f"dns://:{port}"
    return f"dns://[{host}]:{port}" if ":" in host else f"dns://{host}:{port}"


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET


def _socket(host: str, port: int, *, kind: socket.SocketKind, reuse_port: bool) -> socket.socket:
    family = _family(host)
    sock = socket.socket(family, kind)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, port))
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        hint = ""
        if exc.errno == errno.EACCES and port < 1024:
            hint = " (ports below 1024 need root, CAP_NET_BIND_SERVICE or a lower net.ipv4.ip_unprivileged_port_start)"
        raise ListenError(
            f"cannot listen on {host}:{port}/{'udp' if kind == socket.SOCK_DGRAM else 'tcp'}: {exc.strerror or exc}{hint}"
        ) from exc
    return sock


class _TCPConnection(asyncio.Protocol):
    def __init__(self, listener: DNSServer, server: str, family: str) -> None:
        self._listener = listener
        self._server = server
        self._family = family
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        self._idle: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        listener = self._listener
        if len(listener.connections) >= listener.max_tcp_connections:
            listener.rejected_connections += 1
            transport.close()
            return
        listener.connections.add(self)
        self._arm()

    def _arm(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
        loop = asyncio.get_running_loop()
        self._idle = loop.call_later(self._listener.idle_timeout, self._close_idle)

    def _close_idle(self) -> None:
        if self._transport is not None and not self._tasks:
            self._listener.idle_closed += 1
            self._transport.close()
        elif self._tasks:
            self._arm()

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        while len(buffer) >= 2:
            (length,) = struct.unpack_from("!H", buffer)
            if length > self._listener.max_tcp_message or length == 0:
                self._listener.oversized += 1
                assert self._transport is not None
                self._transport.close()
                return
            if len(buffer) < 2 + length:
                if len(buffer) > 2 + self._listener.max_tcp_message:
                    assert self._transport is not None
                    self._transport.close()
                return
            message = bytes(buffer[2 : 2 + length])
            del buffer[: 2 + length]
            self._arm()
            self._serve(message)

    def _serve(self, message: bytes) -> None:
        result = self._listener.serve(message, server=self._server, tcp=True, family=self._family)
        if result is None or isinstance(result, bytes):
            self._send(result)
            return
        task = asyncio.ensure_future(self._finish(result))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _finish(self, pending: Coroutine[Any, Any, Reply]) -> None:
        self._send(await pending)

    def _send(self, reply: Reply) -> None:
        if reply is None or self._transport is None or self._transport.is_closing():
            return
        self._transport.write(struct.pack("!H", len(reply)) + reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self._listener.connections.discard(self)
        if self._idle is not None:
            self._idle.cancel()
        for task in self._tasks:
            task.cancel()
        self._transport = None


class DNSServer:
    """UDP and TCP listeners on ``addresses``:``port``, calling ``serve`` (``Handler.serve``).

    ``serve`` is looked up on every request, so swapping :attr:`serve` (a config reload) takes
    effect for the next query without closing a socket.
    """

    def __init__(
        self,
        serve: Serve,
        *,
        addresses: Sequence[str],
        port: int,
        reuse_port: bool = False,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        max_tcp_message: int = DEFAULT_MAX_TCP_MESSAGE,
        max_tcp_connections: int = DEFAULT_MAX_TCP_CONNECTIONS,
    ) -> None:
        self.serve = serve
        self.addresses = list(addresses)
        self.port = port
        self.reuse_port = reuse_port
        self.idle_timeout = idle_timeout
        self.max_tcp_message = max_tcp_message
        self.max_tcp_connections = max_tcp_connections
        self.connections: set[_TCPConnection] = set()
        self.rejected_connections = 0
        self.idle_closed = 0
        self.oversized = 0
        self.send_failures = 0
        self.bound: list[tuple[str, int]] = []  # (host, port) actually bound (port 0 resolved)
        self._udp: list[socket.socket] = []
        self._tcp: list[asyncio.base_events.Server] = []
        self._pending: set[asyncio.Task[None]] = set()

    @property
    def labels(self) -> list[str]:
        return [server_label(host, port) for host, port in self.bound]

    async def start(self) -> None:
        """Bind everything (UDP then TCP on the same port per address) or raise ListenError."""
        loop = asyncio.get_running_loop()
        try:
            for host in self.addresses:
                udp = _socket(host, self.port, kind=socket.SOCK_DGRAM, reuse_port=self.reuse_port)
                self._udp.append(udp)
                port = udp.getsockname()[1]
                tcp = _socket(host, port, kind=socket.SOCK_STREAM, reuse_port=self.reuse_port)
                tcp.listen(1024)
                label = server_label(host, port)
                family = "2" if _family(host) == socket.AF_INET6 else "1"
                server = await loop.create_server(
                    lambda label=label, family=family: _TCPConnection(self, label, family), sock=tcp
                )
                self._tcp.append(server)
                loop.add_reader(udp.fileno(), self._drain, udp, label, family)
                self.bound.append((host, port))
        except BaseException:
            await self.stop()
            raise
        log.info("DNS listening", extra={"servers": self.labels})

    def _drain(self, sock: socket.socket, label: str, family: str) -> None:
        serve = self.serve
        for _ in range(UDP_BATCH):
            try:
                packet, peer = sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue  # e.g. ICMP errors queued on the socket
            result = serve(packet, server=label, tcp=False, family=family)
            if result is None:
                continue
            if isinstance(result, bytes):
                try:
                    sock.sendto(result, peer)
                except OSError:
                    self.send_failures += 1
                continue
            task = asyncio.ensure_future(self._finish(sock, peer, result))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def _finish(self, sock: socket.socket, peer: Any, pending: Coroutine[Any, Any, Reply]) -> None:
        reply = await pending
        if reply is not None:
            try:
                sock.sendto(reply, peer)
            except OSError:
                self.send_failures += 1

    async def stop(self) -> None:
        """Close the listeners, then every open TCP connection; cancel replies still waiting."""
        loop = asyncio.get_running_loop()
        for sock in self._udp:
            with contextlib.suppress(ValueError, OSError):
                loop.remove_reader(sock.fileno())
            sock.close()
        self._udp = []
        servers, self._tcp = self._tcp, []
        for server in servers:
            server.close()
        for connection in list(self.connections):
            if connection._transport is not None:
                connection._transport.close()
        for server in servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()
        pending, self._pending = set(self._pending), set()
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.bound = []
