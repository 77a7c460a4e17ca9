"""Forwarding what the cluster zones do not answer to upstream resolvers (CoreDNS's ``forward``).

- Upstreams come from the Corefile (``forward . 127.0.0.53 [::1]:5353``) or from a resolv.conf
  (``forward . /etc/resolv.conf``: its ``nameserver`` lines), port 53 by default.
- A query goes over UDP, and again over TCP to the same upstream when the answer comes back
  truncated; a client that asked over TCP is forwarded over TCP. Upstreams are tried in the
  ``policy`` order (``random``, the default, ``round_robin`` or ``sequential``), each for
  ``attempt_timeout`` seconds, until one answers or ``timeout`` seconds have passed (then SERVFAIL).
- An answer is accepted only from the upstream it was sent to, with our ID and the same question.
- ``max_concurrent`` bounds the queries in flight; beyond it, REFUSED (as CoreDNS).
- Identical questions in flight are sent upstream once; the others wait for that answer.
- **Loop detection.** Every question sent upstream is remembered with the ID it was sent under
  until it is answered. If that very query (same question, same ID) arrives at *our* listeners,
  an upstream is forwarding back to us: it is refused at once, so a resolver loop costs one round
  trip instead of amplifying until timeouts. (A loop through a resolver that changes the ID meets
  the in-flight coalescing instead: the looped copy waits for the original and is never sent
  again.) CoreDNS's ``loop`` plugin instead probes at start-up and exits; refusing in-band keeps
  serving the cluster zones.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import ipaddress
import itertools
import logging
import random
import secrets
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from addons.coredns_lite import wire
from addons.coredns_lite.metrics import DNSMetrics

log = logging.getLogger(__name__)

DEFAULT_MAX_CONCURRENT = 1000
DEFAULT_ATTEMPT_TIMEOUT = 2.0
DEFAULT_TIMEOUT = 5.0


class ForwardError(Exception):
    """No upstream gave a usable answer in time."""


class LimitExceeded(ForwardError):
    """``max_concurrent`` queries are already in flight."""


class UpstreamConfigError(Exception):
    """An upstream address (or the resolv.conf naming them) is unusable."""


class Policy(enum.StrEnum):
    RANDOM = "random"
    ROUND_ROBIN = "round_robin"
    SEQUENTIAL = "sequential"


@dataclass(frozen=True)
class Upstream:
    host: str
    port: int = 53

    @property
    def label(self) -> str:
        """How metrics name it (CoreDNS's ``to``): ``127.0.0.1:53``, ``[::1]:53``."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_upstream(text: str) -> Upstream:
    """``1.2.3.4``, ``1.2.3.4:5353``, ``dns://1.2.3.4``, ``[::1]:53`` or ``::1`` → :class:`Upstream`."""
    spec = text.removeprefix("dns://")
    host, port = spec, 53
    if spec.startswith("["):
        host, _, rest = spec[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise UpstreamConfigError(f"upstream {text!r}: expected [address]:port")
            port = _port(text, rest[1:])
    elif spec.count(":") == 1:
        host, _, port_text = spec.partition(":")
        port = _port(text, port_text)
    try:
        address = ipaddress.ip_address(host)
    except ValueError as exc:
        raise UpstreamConfigError(f"upstream {text!r}: not an IP address") from exc
    return Upstream(str(address), port)


def _port(text: str, value: str) -> int:
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise UpstreamConfigError(f"upstream {text!r}: bad port {value!r}")
    return int(value)


def upstreams_from_resolv_conf(path: str | Path) -> list[Upstream]:
    """The ``nameserver`` lines of a resolv.conf (the node's, for ``forward . /etc/resolv.conf``)."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise UpstreamConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    upstreams = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            upstreams.append(parse_upstream(fields[1]))
    if not upstreams:
        raise UpstreamConfigError(f"{path} names no nameserver")
    return upstreams


class _UDPChannel(asyncio.DatagramProtocol):
    """One connected UDP socket to one upstream; answers are matched to waiters by ID."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.waiting: dict[bytes, asyncio.Future[bytes]] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        waiter = self.waiting.pop(data[:2], None)
        if waiter is not None and not waiter.done():
            waiter.set_result(data)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable and the like: nothing tells which query it was for.
        waiting, self.waiting = self.waiting, {}
        for waiter in waiting.values():
            if not waiter.done():
                waiter.set_exception(ConnectionError(f"upstream unreachable: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.error_received(exc or ConnectionError("socket closed"))
        self.transport = None


def _question(message: bytes) -> bytes:
    """The lowercase question of a message (for matching an answer to its query)."""
    end = wire.question_end(message)
    return message[wire.HEADER : end - 4].lower() + message[end - 4 : end]


class Forwarder:
    """Sends queries upstream. Create inside the event loop; ``await close()`` when done."""

    def __init__(
        self,
        upstreams: Sequence[Upstream],
        *,
        metrics: DNSMetrics,
        policy: Policy = Policy.RANDOM,
        max_concurrent: int = DEFAULT_MAX_CONCURRENT,
        attempt_timeout: float = DEFAULT_ATTEMPT_TIMEOUT,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        if not upstreams:
            raise UpstreamConfigError("forward needs at least one upstream")
        self.upstreams = list(upstreams)
        self.metrics = metrics
        self.policy = policy
        self.max_concurrent = max_concurrent
        self.attempt_timeout = attempt_timeout
        self.timeout = timeout
        self._rotation = itertools.cycle(range(len(self.upstreams)))
        self._channels: dict[Upstream, _UDPChannel] = {}
        self._inflight: dict[bytes, asyncio.Future[bytes]] = {}
        self._sent: set[tuple[bytes, bytes]] = set()  # (lowercase question, ID) of queries out upstream
        self._active = 0

    def looped(self, query: wire.Query) -> bool:
        """Whether ``query`` is one of ours, sent upstream and come back: a forwarding loop."""
        return (query.key, query.id) in self._sent

    def _order(self) -> list[Upstream]:
        if self.policy is Policy.SEQUENTIAL:
            return list(self.upstreams)
        if self.policy is Policy.ROUND_ROBIN:
            first = next(self._rotation)
            return self.upstreams[first:] + self.upstreams[:first]
        order = list(self.upstreams)
        random.shuffle(order)
        return order

    async def forward(self, query: wire.Query, *, key: bytes, tcp: bool) -> bytes:
        """The upstream's answer to ``query`` (its ID still ours: the caller re-serves it)."""
        shared = self._inflight.get(key)
        if shared is not None:
            return await asyncio.shield(shared)
        if self._active >= self.max_concurrent:
            self.metrics.max_concurrent_rejects += 1
            raise LimitExceeded(f"{self._active} queries in flight (max_concurrent {self.max_concurrent})")
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        self._active += 1
        try:
            answer = await self._exchange(query, tcp=tcp)
        except BaseException as exc:
            if not future.done():
                future.set_exception(exc if isinstance(exc, ForwardError) else ForwardError(str(exc)))
                future.exception()  # retrieved: waiters that left must not warn
            raise
        else:
            future.set_result(answer)
            return answer
        finally:
            self._active -= 1
            self._inflight.pop(key, None)

    async def _exchange(self, query: wire.Query, *, tcp: bool) -> bytes:
        deadline = time.monotonic() + self.timeout
        question = query.key
        errors = []
        for upstream in self._order():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            query_id = secrets.token_bytes(2)
            packet = query_id + query.packet[2:]
            self._sent.add((question, query_id))
            started = time.monotonic()
            self.metrics.forward_request(upstream.label)
            try:
                async with asyncio.timeout(min(self.attempt_timeout, left)):
                    answer = await (self._tcp(upstream, packet) if tcp else self._udp(upstream, packet))
                    if answer[2] & 0x02 and not tcp:
                        answer = await self._tcp(upstream, packet)
            except (
                TimeoutError,
                OSError,
                ConnectionError,
                ValueError,
                struct.error,
                asyncio.IncompleteReadError,
            ) as exc:
                errors.append(f"{upstream.label}: {type(exc).__name__} {exc}".rstrip())
                continue
            finally:
                self._sent.discard((question, query_id))
            self.metrics.forward_response(upstream.label, answer[3] & 0x0F, time.monotonic() - started)
            return answer
        raise ForwardError("no upstream answered: " + "; ".join(errors or ["timed out"]))

    def _check(self, packet: bytes, answer: bytes) -> bytes:
        if len(answer) < wire.HEADER or answer[:2] != packet[:2] or not answer[2] & 0x80:
            raise ValueError("not an answer to our query")
        if _question(answer) != _question(packet):
            raise ValueError("the answer is for another question")
        return answer

    async def _udp(self, upstream: Upstream, packet: bytes) -> bytes:
        channel = self._channels.get(upstream)
        if channel is None or channel.transport is None:
            loop = asyncio.get_running_loop()
            _, channel = await loop.create_datagram_endpoint(
                _UDPChannel, remote_addr=(upstream.host, upstream.port)
            )
            self._channels[upstream] = channel
        assert channel.transport is not None
        waiter: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        channel.waiting[packet[:2]] = waiter
        try:
            channel.transport.sendto(packet)
            return self._check(packet, await waiter)
        finally:
            if channel.waiting.get(packet[:2]) is waiter:
                del channel.waiting[packet[:2]]

    async def _tcp(self, upstream: Upstream, packet: bytes) -> bytes:
        reader, writer = await asyncio.open_connection(upstream.host, upstream.port)
        try:
            writer.write(struct.pack("!H", len(packet)) + packet)
            await writer.drain()
            (length,) = struct.unpack("!H", await reader.readexactly(2))
            return self._check(packet, await reader.readexactly(length))
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def close(self) -> None:
        channels, self._channels = self._channels, {}
        for channel in channels.values():
            if channel.transport is not None:
                channel.transport.close()
