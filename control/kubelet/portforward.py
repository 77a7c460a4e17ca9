"""``kubectl port-forward``: carry TCP connections between the client and a pod's port.

Three wires reach here, all ending in the same copy between a client stream and a TCP
connection to the pod's IP (processes in a pod listen on their pod IP, never 0.0.0.0):

- **SPDY** (kubectl before 1.31), and **SPDY tunnelled in WebSocket binary messages**
  (``SPDY/3.1+portforward.k8s.io``, kubectl 1.31+). For every local connection the client
  opens an error stream and a data stream carrying the same ``requestid`` and ``port``
  headers; once both are there the pod's port is dialled. Failure to dial is written on
  the error stream (``error forwarding port P to pod N, uid U: ...``) and kubectl reports
  it. When the pod closes its side, the data and error streams are finished, as the
  kubelet does, which ends kubectl's handling of that connection.
- **WebSocket channels** (``v4.channel.k8s.io``, used by the official Python client):
  ports come from the ``ports`` query parameter; port *i* gets data channel ``2i`` and
  error channel ``2i+1``, each opened by a frame holding the port as little-endian
  uint16, and the connection is dialled at once.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import errno
import logging
import os
import struct
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from control.kubelet import spdy
from control.kubelet.streaming import HandshakeError, requested_protocols

log = logging.getLogger("kubelab.kubelet.portforward")

PROTOCOL = "portforward.k8s.io"
TUNNEL_PROTOCOL = "SPDY/3.1+" + PROTOCOL
CHANNEL_PROTOCOLS = ("v4.channel.k8s.io", "v4.base64.channel.k8s.io")
STREAM_PAIR_TIMEOUT = 30.0
_READ_CHUNK = 64 * 1024
_PORT = struct.Struct("<H")


@dataclass(frozen=True, kw_only=True)
class ForwardTarget:
    """Where forwarded connections go: the pod's IP, and its name and uid for messages."""

    pod_name: str
    pod_uid: str
    ip: str


def parse_port(value: str) -> int:
    try:
        port = int(value)
    except ValueError as exc:
        raise ValueError(f'unable to parse "{value}" as a port: {exc}') from exc
    if not 1 <= port <= 65535:
        raise ValueError(f'port "{value}" must be > 0 and < 65536')
    return port


def parse_ports(values: Sequence[str]) -> list[int]:
    """The ``ports`` (or the kubelet's ``port``) query values, comma-separated or repeated."""
    if not values:
        raise ValueError('query parameter "port" is required')
    ports = []
    for value in values:
        if not value:
            raise ValueError('query parameter "port" cannot be empty')
        ports += [parse_port(part) for part in value.split(",")]
    return ports


async def _dial(target: ForwardTarget, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(target.ip, port, limit=_READ_CHUNK)


def _forward_error(target: ForwardTarget, port: int, exc: OSError) -> str:
    reason = os.strerror(exc.errno) if exc.errno else str(exc) or type(exc).__name__
    if exc.errno == errno.ECONNREFUSED:
        reason = "connection refused"
    return (
        f"error forwarding port {port} to pod {target.pod_name}, uid {target.pod_uid}: "
        f"dial tcp {target.ip}:{port}: connect: {reason.lower()}"
    )


# --- SPDY (native and tunnelled) -------------------------------------------------------------


@dataclass
class _Pair:
    request_id: str
    port: int
    error: spdy.Stream | None = None
    data: spdy.Stream | None = None
    complete: asyncio.Event = field(default_factory=asyncio.Event)


async def serve_spdy(session: spdy.Session, target: ForwardTarget) -> None:
    """Accept stream pairs until the session ends; forward each pair's connection."""
    pairs: dict[str, _Pair] = {}
    tasks: set[asyncio.Task[None]] = set()

    def spawn(coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    try:
        while (stream := await session.accept()) is not None:
            problem = _check_stream(stream.headers)
            if problem:
                log.warning("refusing port-forward stream %d: %s", stream.id, problem)
                await stream.reset()
                continue
            await stream.reply()
            request_id = stream.headers.get("requestid") or _legacy_request_id(stream)
            pair = pairs.get(request_id)
            if pair is None:
                pair = pairs[request_id] = _Pair(request_id, int(stream.headers["port"]))
                spawn(_expire_pair(pair, pairs))
            kind = stream.headers["streamtype"]
            if getattr(pair, kind) is not None:
                message = f"error processing stream for request {request_id}: {kind} stream already assigned"
                if pair.error is not None:
                    await _write_quietly(pair.error, message)
                await stream.reset()
                continue
            setattr(pair, kind, stream)
            if pair.error is not None and pair.data is not None:
                pair.complete.set()
                spawn(_forward_pair(pair, target))
    finally:
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _check_stream(headers: Mapping[str, str]) -> str:
    port = headers.get("port", "")
    if not port:
        return '"port" header is required'
    try:
        parse_port(port)
    except ValueError as exc:
        return str(exc)
    kind = headers.get("streamtype", "")
    if not kind:
        return '"streamType" header is required'
    if kind not in ("error", "data"):
        return f'invalid stream type "{kind}"'
    return ""


def _legacy_request_id(stream: spdy.Stream) -> str:
    """Clients older than request ids open error then data with consecutive odd ids."""
    offset = 0 if stream.headers.get("streamtype") == "error" else 2
    return str(stream.id - offset)


async def _expire_pair(pair: _Pair, pairs: dict[str, _Pair]) -> None:
    try:
        await asyncio.wait_for(pair.complete.wait(), STREAM_PAIR_TIMEOUT)
    except TimeoutError:
        if pair.error is not None:
            await _write_quietly(pair.error, f"timed out waiting for streams of request {pair.request_id}")
            await pair.error.close()
    finally:
        pairs.pop(pair.request_id, None)


async def _write_quietly(stream: spdy.Stream, message: str) -> None:
    with contextlib.suppress(spdy.StreamClosedError, ConnectionError):
        await stream.write(message.encode())


async def _forward_pair(pair: _Pair, target: ForwardTarget) -> None:
    assert pair.error is not None and pair.data is not None
    data, error = pair.data, pair.error
    try:
        try:
            reader, writer = await _dial(target, pair.port)
        except OSError as exc:
            message = _forward_error(target, pair.port, exc)
            log.info("%s", message)
            await _write_quietly(error, message)
            return
        inbound = asyncio.create_task(_client_to_pod(data, writer))
        try:
            while chunk := await reader.read(_READ_CHUNK):
                await data.write(chunk)
        except (ConnectionError, spdy.StreamClosedError):
            pass
        finally:
            inbound.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await inbound
            writer.close()
    finally:
        with contextlib.suppress(ConnectionError):
            await data.close()
            await error.close()


async def _client_to_pod(data: spdy.Stream, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await data.read():
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()  # the client finished sending: half-close towards the pod
    except (ConnectionError, OSError):
        return


class WebSocketTransport:
    """SPDY bytes carried in WebSocket binary messages (the kubectl 1.31+ tunnel)."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self._ws = ws

    async def read(self) -> bytes:
        async for message in self._ws:
            if message.type is WSMsgType.BINARY:
                if message.data:
                    return bytes(message.data)
                continue
            log.warning("closing port-forward tunnel: unexpected %s message", message.type)
            break
        return b""

    async def write(self, data: bytes) -> None:
        await self._ws.send_bytes(data)


def tunnel_protocol(request: web.Request) -> str | None:
    """``SPDY/3.1+portforward.k8s.io`` when the WebSocket client asks for the tunnel."""
    client = requested_protocols(request.headers.getall("Sec-WebSocket-Protocol", []))
    return TUNNEL_PROTOCOL if TUNNEL_PROTOCOL in client else None


# --- WebSocket channels (the Python client) ---------------------------------------------------


def channel_protocol(request: web.Request) -> str:
    client = requested_protocols(request.headers.getall("Sec-WebSocket-Protocol", []))
    if not client:
        return ""
    chosen = next((protocol for protocol in client if protocol in CHANNEL_PROTOCOLS), None)
    if chosen is None:
        raise HandshakeError(
            403,
            f"requested protocol(s) are not supported: {client}; supports "
            f"{[TUNNEL_PROTOCOL, *CHANNEL_PROTOCOLS]}",
        )
    return chosen


async def serve_channels(
    ws: web.WebSocketResponse, *, ports: Sequence[int], text: bool, target: ForwardTarget
) -> None:
    """One connection to each port, opened now; ends when every forward is done or the client
    leaves. ``text`` selects the base64 variant (text messages, ASCII channel digits)."""
    lock = asyncio.Lock()

    async def send(channel: int, data: bytes) -> None:
        async with lock:
            if text:
                await ws.send_str(chr(ord("0") + channel) + base64.b64encode(data).decode())
            else:
                await ws.send_bytes(bytes((channel,)) + data)

    inputs: list[asyncio.Queue[bytes]] = [asyncio.Queue() for _ in ports]
    for index, port in enumerate(ports):
        await send(2 * index, _PORT.pack(port))
        await send(2 * index + 1, _PORT.pack(port))

    async def receive() -> None:
        try:
            async for message in ws:
                if message.type is WSMsgType.BINARY and not text and message.data:
                    channel, data = message.data[0], bytes(message.data[1:])
                elif message.type is WSMsgType.TEXT and text and message.data:
                    channel, data = ord(message.data[0]) - ord("0"), base64.b64decode(message.data[1:])
                else:
                    continue
                if channel % 2 == 0 and channel // 2 < len(inputs) and data:
                    inputs[channel // 2].put_nowait(data)
        finally:
            for queue in inputs:
                queue.put_nowait(b"")

    async def forward(index: int, port: int) -> None:
        try:
            reader, writer = await _dial(target, port)
        except OSError as exc:
            await send(2 * index + 1, _forward_error(target, port, exc).encode())
            return

        async def inbound() -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while chunk := await inputs[index].get():
                    writer.write(chunk)
                    await writer.drain()

        feeding = asyncio.create_task(inbound())
        try:
            while chunk := await reader.read(_READ_CHUNK):
                await send(2 * index, chunk)
        except ConnectionError:
            pass
        finally:
            feeding.cancel()
            writer.close()

    receiver = asyncio.create_task(receive())
    forwards = asyncio.gather(
        *(forward(index, port) for index, port in enumerate(ports)), return_exceptions=True
    )
    try:
        # Done when every forward is (the pods closed), or when the client leaves.
        await asyncio.wait({receiver, forwards}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (receiver, forwards):
            task.cancel()
        await asyncio.gather(receiver, forwards, return_exceptions=True)
        await ws.close()
