"""UDP forwarding: per-client flows from a service address to a backend, closed when idle.

UDP has no connections, so the proxy makes *flows*, as conntrack and kube-proxy's userspace mode
do: the first datagram from a client address (IP and port) picks a backend and opens a socket
connected to it; later datagrams from that address go the same way, and whatever the backend
sends back on that socket is returned to the client from the service address. A flow that
carries nothing in either direction for ``idle_timeout`` seconds is closed (default 30 s,
conntrack's ``nf_conntrack_udp_timeout``).

The sockets are read with ``add_reader`` callbacks and ``recvfrom_into`` one reusable buffer —
no transport or protocol objects, no allocation per datagram beyond the address. A datagram that
cannot be sent at once (full socket buffer) is dropped, which is what UDP promises. A backend
that answers with ICMP port-unreachable (its socket closed) ends its flows; the client's next
datagram opens a new flow. When a backend leaves the Service, the proxier :meth:`prune` s its
flows, as kube-proxy clears UDP conntrack entries for removed endpoints, so clients move on
instead of sending into the void.
"""

from __future__ import annotations

import asyncio
import logging
import socket

from control.client.clock import Clock, Timer
from control.proxy.balancer import Balancer
from control.proxy.metrics import Counts
from control.proxy.sockets import outgoing_socket
from control.proxy.state import Backend, ListenerKey

log = logging.getLogger("kubelab.proxy")

DEFAULT_IDLE_TIMEOUT = 30.0
_MAX_DATAGRAM = 65535
_BATCH = 64  # datagrams handled per wake-up before yielding to other sockets

ClientAddress = tuple[str, int]


class _Flow:
    __slots__ = ("backend", "client", "last", "sock")

    def __init__(self, *, client: ClientAddress, backend: Backend, sock: socket.socket, now: float) -> None:
        self.client = client
        self.backend = backend
        self.sock = sock
        self.last = now


class UDPListener:
    """A bound UDP socket on a service address and the flows it has opened.

    ``balancer`` may be replaced at any time; it is read when a flow opens. Call :meth:`prune`
    after the balancer's backends change.
    """

    def __init__(
        self,
        *,
        key: ListenerKey,
        balancer: Balancer,
        source_ip: str,
        idle_timeout: float,
        clock: Clock,
        counts: Counts,
    ) -> None:
        if idle_timeout <= 0:
            raise ValueError(f"the UDP idle timeout must be positive, got {idle_timeout}")
        self.key = key
        self.balancer = balancer
        self.source_ip = source_ip
        self._idle_timeout = idle_timeout
        self._clock = clock
        self._counts = counts
        self._flows: dict[ClientAddress, _Flow] = {}
        self._buffer = bytearray(_MAX_DATAGRAM)
        self._view = memoryview(self._buffer)
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sweeper: Timer | None = None

    @property
    def flow_count(self) -> int:
        return len(self._flows)

    def start(self, sock: socket.socket) -> None:
        """Serve the bound ``sock`` (from :func:`control.proxy.sockets.listen_socket`)."""
        self._sock = sock
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(sock.fileno(), self._on_requests)
        self._sweeper = self._clock.call_later(self._idle_timeout / 2, self._sweep)

    def close(self) -> None:
        """Close the socket and every flow."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for flow in list(self._flows.values()):
            self._close_flow(flow)
        if self._sock is not None:
            assert self._loop is not None
            self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None

    def prune(self) -> None:
        """Close the flows whose backend the balancer no longer has."""
        current = frozenset(self.balancer.backends)
        for flow in [f for f in self._flows.values() if f.backend not in current]:
            self._close_flow(flow)

    # --- forwarding -----------------------------------------------------------------------------

    def _on_requests(self) -> None:
        sock = self._sock
        if sock is None:
            return
        buffer, view, flows, counts = self._buffer, self._view, self._flows, self._counts
        now = self._clock.now()
        for _ in range(_BATCH):
            try:
                size, client = sock.recvfrom_into(buffer)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue  # an ICMP error queued on the socket by an earlier reply: nothing to do
            flow = flows.get(client)
            if flow is None:
                flow = self._open_flow(client, now)
                if flow is None:
                    counts.udp_dropped += 1
                    continue
            flow.last = now
            try:
                flow.sock.send(view[:size])
            except (BlockingIOError, InterruptedError):
                counts.udp_dropped += 1
            except OSError as exc:
                # ECONNREFUSED: an earlier datagram met a closed port at the backend. Send this
                # one through a new flow to another backend rather than lose it.
                log.info("%s: flow %s:%d -> %s:%d ended: %s", self.key, *client, *flow.backend, exc)
                self._close_flow(flow)
                retry = self._open_flow(client, now, exclude=(flow.backend,))
                if retry is None:
                    counts.udp_dropped += 1
                    continue
                try:
                    retry.sock.send(view[:size])
                except OSError:
                    counts.udp_dropped += 1

    def _on_replies(self, flow: _Flow) -> None:
        sock = self._sock
        if sock is None:
            return
        buffer, view = self._buffer, self._view
        for _ in range(_BATCH):
            try:
                size = flow.sock.recv_into(buffer)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.info("%s: flow %s:%d -> %s:%d ended: %s", self.key, *flow.client, *flow.backend, exc)
                self._close_flow(flow)
                return
            flow.last = self._clock.now()
            try:
                sock.sendto(view[:size], flow.client)
            except OSError:
                self._counts.udp_dropped += 1

    def _open_flow(
        self, client: ClientAddress, now: float, *, exclude: tuple[Backend, ...] = ()
    ) -> _Flow | None:
        backend = self.balancer.pick(client[0], exclude=exclude)
        if backend is None:
            return None
        try:
            sock = outgoing_socket("UDP", source_ip=self.source_ip)
        except OSError as exc:
            log.error("%s: cannot open a socket from %s: %s", self.key, self.source_ip, exc)
            return None
        try:
            sock.connect(backend)  # immediate for UDP: it only fixes the peer address
        except OSError as exc:
            sock.close()
            log.warning("%s: cannot reach backend %s:%d: %s", self.key, *backend, exc)
            return None
        flow = _Flow(client=client, backend=backend, sock=sock, now=now)
        self._flows[client] = flow
        assert self._loop is not None
        self._loop.add_reader(sock.fileno(), self._on_replies, flow)
        self._counts.udp_flows += 1
        return flow

    def _close_flow(self, flow: _Flow) -> None:
        if self._flows.get(flow.client) is flow:
            del self._flows[flow.client]
        if flow.sock.fileno() >= 0:
            assert self._loop is not None
            self._loop.remove_reader(flow.sock.fileno())
            flow.sock.close()

    def _sweep(self) -> None:
        now = self._clock.now()
        deadline = now - self._idle_timeout
        for flow in [f for f in self._flows.values() if f.last <= deadline]:
            self._close_flow(flow)
        self._sweeper = self._clock.call_later(self._idle_timeout / 2, self._sweep)
