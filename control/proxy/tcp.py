"""TCP forwarding: accept on a service address, connect to a backend, relay bytes both ways.

Each relayed connection is two asyncio *protocols* (not streams) wired to each other's
transports: ``data_received`` on one side is one ``write`` on the other, with no coroutine,
queue or copy in between, which is the cheapest way to move bytes in asyncio (and on uvloop,
which the node agent runs on). Back-pressure uses the transports' own flow control: when one
side's write buffer passes its high-water mark, reading from the other side pauses until it
drains. Half-closes are passed on (``write_eof``), so request/response protocols that shut down
their sending side still get their answer; a reset on one side resets the other.

Connecting follows kube-proxy's userspace mode: the client's socket is accepted with reading
paused; a backend is chosen by the pool's :class:`Balancer`; if it refuses or does not answer
in time (0.25, 0.5, 1 and 2 s for successive tries, as upstream) the next one is tried, up to
four. If none accepts, the client's connection is reset (it sees ``ECONNRESET``). Established
connections belong to their backend for life: a Service or EndpointSlice change only affects
new connections, and closing a listener leaves its connections running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from typing import Any

from control.proxy.balancer import Balancer
from control.proxy.metrics import Counts
from control.proxy.sockets import LISTEN_BACKLOG, outgoing_socket, start_connect, wait_connected
from control.proxy.state import Backend, ListenerKey

log = logging.getLogger("kubelab.proxy")

DIAL_TIMEOUTS = (0.25, 0.5, 1.0, 2.0)
# Per-direction buffering before the other side is paused; large enough to keep both sockets busy.
WRITE_BUFFER_HIGH = 512 * 1024
# SO_LINGER on with a zero timeout: close() sends RST instead of FIN.
_LINGER_RESET = struct.pack("ii", 1, 0)


class _Side(asyncio.Protocol):
    """One socket of a relayed connection: what it reads is written to its peer's socket."""

    __slots__ = ("eof", "peer", "relay", "transport")

    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        self.transport: Any = None
        self.peer: _Side | None = None
        self.eof = False

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.set_write_buffer_limits(high=WRITE_BUFFER_HIGH)

    def data_received(self, data: bytes) -> None:
        self.peer.transport.write(data)  # type: ignore[union-attr]

    def eof_received(self) -> bool:
        self.eof = True
        peer = self.peer
        assert peer is not None
        if peer.eof:
            self.relay.close()
            return False
        peer.transport.write_eof()
        return True  # keep our sending side open: the answer may still be coming

    def pause_writing(self) -> None:
        self.peer.transport.pause_reading()  # type: ignore[union-attr]

    def resume_writing(self) -> None:
        self.peer.transport.resume_reading()  # type: ignore[union-attr]

    def connection_lost(self, exc: Exception | None) -> None:
        self.relay.lost(self, exc)


class _Downstream(_Side):
    """The client's side: accepted with reading paused until a backend is connected.

    uvloop starts reading right after ``connection_made`` even when it paused reading there, so
    bytes (or an EOF) that arrive before the backend is connected are held and passed on when it is.
    """

    __slots__ = ("early",)

    def __init__(self, listener: TCPListener) -> None:
        super().__init__(Relay(listener.connections))
        self.relay.downstream = self
        self.relay.listener = listener
        self.early: list[bytes] | None = []  # None once the backend is connected

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        transport.pause_reading()
        self.relay.start()

    def data_received(self, data: bytes) -> None:
        if self.early is not None:
            self.early.append(data)
            self.transport.pause_reading()
            return
        self.peer.transport.write(data)  # type: ignore[union-attr]

    def eof_received(self) -> bool:
        if self.early is not None:
            self.eof = True
            return True
        return super().eof_received()

    def connected(self) -> None:
        """The backend answered (``peer`` is its side): pass on what came early, then relay."""
        early, self.early = self.early, None
        transport = self.peer.transport  # type: ignore[union-attr]
        if transport.is_closing():
            return  # the backend already hung up; its connection_lost closes ours
        if early:
            transport.writelines(early)
        if self.eof:
            transport.write_eof()
        else:
            self.transport.resume_reading()


class Relay:
    """One client connection and, once connected, its backend connection."""

    __slots__ = ("connecting", "connections", "downstream", "listener", "upstream")

    def __init__(self, connections: set[Relay]) -> None:
        self.connections = connections
        self.listener: TCPListener | None = None
        self.downstream: _Downstream | None = None
        self.upstream: _Side | None = None
        self.connecting: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.connections.add(self)
        self.connecting = asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        try:
            await self._dial()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("relaying a connection failed")
            self.abort()

    async def _dial(self) -> None:
        listener = self.listener
        downstream = self.downstream
        assert listener is not None and isinstance(downstream, _Downstream)
        client_ip = downstream.transport.get_extra_info("peername")[0]
        loop = asyncio.get_running_loop()
        tried: list[Backend] = []
        for timeout in DIAL_TIMEOUTS:
            backend = listener.balancer.pick(client_ip, exclude=tried)
            if backend is None:
                break
            try:
                sock = outgoing_socket("TCP", source_ip=listener.source_ip)
            except OSError as exc:
                log.error("%s: cannot open a socket from %s: %s", listener.key, listener.source_ip, exc)
                break
            try:
                if not start_connect(sock, backend):
                    async with asyncio.timeout(timeout):
                        await wait_connected(sock)
                # Linked before the transport exists: the backend may speak (or hang up) first,
                # even before create_connection returns.
                upstream = _Side(self)
                upstream.peer = downstream
                downstream.peer = upstream
                await loop.create_connection(lambda upstream=upstream: upstream, sock=sock)
            except (OSError, TimeoutError) as exc:
                sock.close()
                downstream.peer = None
                tried.append(backend)
                log.info("%s: backend %s:%d failed: %s", listener.key, *backend, exc or "timed out")
                continue
            except BaseException:
                sock.close()
                raise
            self.connecting = None
            listener.counts.tcp_forwarded += 1
            self.upstream = upstream
            downstream.connected()
            return
        self.connecting = None
        listener.counts.tcp_failed += 1
        log.warning(
            "%s: no backend accepted a connection from %s (tried %d)", listener.key, client_ip, len(tried)
        )
        self.abort()

    def lost(self, side: _Side, exc: Exception | None) -> None:
        """One side closed: close the other gracefully, or reset it if this one was reset."""
        self.connections.discard(self)
        if self.connecting is not None:
            self.connecting.cancel()
            self.connecting = None
        peer = side.peer
        if peer is not None and peer.transport is not None and not peer.transport.is_closing():
            if exc is None:
                peer.transport.close()
            else:
                _reset(peer.transport)

    def close(self) -> None:
        """Both directions finished: close both sockets once their buffers are flushed."""
        for side in (self.downstream, self.upstream):
            if side is not None and side.transport is not None:
                side.transport.close()

    def abort(self) -> None:
        """Reset both sockets now (a failed connect, or the proxy shutting down)."""
        self.connections.discard(self)
        if self.connecting is not None:
            self.connecting.cancel()
            self.connecting = None
        for side in (self.downstream, self.upstream):
            if side is not None and side.transport is not None:
                _reset(side.transport)


def _reset(transport: Any) -> None:
    """Close with RST, so the peer sees ECONNRESET rather than an orderly end of stream."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    transport.abort()


class TCPListener:
    """A listening socket whose connections go to backends chosen by ``balancer``.

    ``balancer`` may be replaced at any time; it is read once per new connection.
    ``connections`` is shared with the proxier so it can count and, at shutdown, reset them;
    ``counts`` too (forwarded and failed connections, for the metrics).
    """

    def __init__(
        self,
        *,
        key: ListenerKey,
        balancer: Balancer,
        source_ip: str,
        connections: set[Relay],
        counts: Counts,
    ) -> None:
        self.key = key
        self.balancer = balancer
        self.source_ip = source_ip
        self.connections = connections
        self.counts = counts
        self._server: asyncio.Server | None = None

    async def start(self, sock: Any) -> None:
        """Serve the bound, listening ``sock`` (from :func:`control.proxy.sockets.listen_socket`)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Downstream(self), sock=sock, backlog=LISTEN_BACKLOG)

    def close(self) -> None:
        """Stop accepting; connections already relayed carry on."""
        if self._server is not None:
            self._server.close()
            self._server = None
