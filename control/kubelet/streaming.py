"""Remote commands (``kubectl exec`` and ``kubectl attach``) over the wires clients speak.

One command, two wires, one driver:

- **WebSocket** (kubectl 1.30+, the Python client, browsers): every binary message starts
  with a channel byte — 0 stdin, 1 stdout, 2 stderr, 3 error/status, 4 resize — and
  ``v5.channel.k8s.io`` adds 255 "close channel N" so a client can end stdin. The
  ``base64.`` variants send text messages whose channel is an ASCII digit and whose data
  is base64. ``v4``/``v5`` report the end as a JSON ``metav1.Status`` on channel 3; the
  unversioned ``channel.k8s.io`` writes only a failure, as text. What a client sends is
  read as upstream's wsstream reads it: a frame's payload as bytes whether the frame is
  binary or text (the Python client sends ``write_stdin("...")`` as text frames).
- **SPDY/3.1** (kubectl before 1.30): the client opens one SPDY stream per channel
  (header ``streamtype``: error, stdin, stdout, stderr, resize) and the server answers
  each; ``v4.channel.k8s.io`` carries the Status on the error stream, v2/v3 plain text.

The wire-specific classes only move bytes; :func:`run_command` drives the command the
same way for both, as the kubelet's remotecommand server does: create the streams, start
the command, copy stdin/resize in and stdout/stderr out, and when the command exits
(output drained) report ``Success``, or ``NonZeroExitCode`` with the exit code as the
``ExitCode`` cause (that is how ``kubectl exec`` exits with the command's code), or an
``InternalError`` when the command could not start. A client that goes away ends its
side: exec stdin is closed (the command sees EOF), attach leaves the container alone.

The end of a session follows upstream's ``finish``: input is dropped, the status is
written, the server says it is done (WebSocket close frame, SPDY GOAWAY) and then waits
for the client to close, so output still in flight is never cut off by a reset.
"""

from __future__ import annotations

import abc
import asyncio
import base64
import contextlib
import enum
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from aiohttp import WSMsgType, web

from control.kubelet import spdy
from control.kubelet.runtime.protocol import ExecSession, RuntimeError_
from control.kubelet.upgrade import UpgradedConnection, upgrade

log = logging.getLogger("kubelab.kubelet.streaming")

STDIN, STDOUT, STDERR, ERROR, RESIZE = 0, 1, 2, 3, 4
CLOSE_SIGNAL = 255

V5 = "v5.channel.k8s.io"
V4 = "v4.channel.k8s.io"
V4_BASE64 = "v4.base64.channel.k8s.io"
V1 = "channel.k8s.io"
V1_BASE64 = "base64.channel.k8s.io"
V3 = "v3.channel.k8s.io"
V2 = "v2.channel.k8s.io"

# WebSocket subprotocols, in the server's order of preference.
WEBSOCKET_PROTOCOLS = (V5, V4, V4_BASE64, V1, V1_BASE64)
# SPDY stream protocols (X-Stream-Protocol-Version), as upstream's SupportedStreamingProtocols.
SPDY_PROTOCOLS = (V4, V3, V2, V1)

STREAM_CREATION_TIMEOUT = 30.0
# After the command exits, output is still copied while it keeps coming; a pipe that stays
# open with nothing in it (a background child holding it) is abandoned after this long.
OUTPUT_IDLE_AFTER_EXIT = 2.0
# How long the server waits for the client to close once it has said it is done.
FINISH_TIMEOUT = 30.0

_SPDY_STREAM_TYPES = {"error": ERROR, "stdin": STDIN, "stdout": STDOUT, "stderr": STDERR, "resize": RESIZE}


class BadStreamRequestError(ValueError):
    """The request cannot be served as a stream (answered 400 before any upgrade)."""


class CommandKind(enum.Enum):
    EXEC = "exec"
    ATTACH = "attach"


@dataclass(frozen=True, kw_only=True)
class StreamOptions:
    stdin: bool
    stdout: bool
    stderr: bool
    tty: bool

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> StreamOptions:
        """The kubelet's reading of ``input``/``output``/``error``/``tty`` (the API server's
        ``stdin``/``stdout``/``stderr`` names are accepted too); "1" or "true" is on."""

        def flag(*names: str) -> bool:
            return any(query.get(name, "").lower() in ("1", "true") for name in names)

        tty = flag("tty")
        options = cls(
            stdin=flag("input", "stdin"),
            stdout=flag("output", "stdout"),
            # A TTY merges stderr into stdout (upstream drops the stderr stream).
            stderr=flag("error", "stderr") and not tty,
            tty=tty,
        )
        if not (options.stdin or options.stdout or options.stderr):
            raise BadStreamRequestError("you must specify at least 1 of stdin, stdout, stderr")
        return options


@dataclass(frozen=True, slots=True)
class TerminalSize:
    width: int
    height: int


CommandStarter = Callable[[], Awaitable[ExecSession]]


# --- statuses written on the error channel -------------------------------------------------


def success_status() -> dict[str, Any]:
    return {"metadata": {}, "status": "Success"}


def exit_code_status(code: int, command: Sequence[str]) -> dict[str, Any]:
    """The Status ``kubectl exec`` turns into its own exit code (a uint8, as upstream parses it)."""
    code = 128 - code if code < 0 else code  # killed by signal N -> 128+N, as a shell reports it
    code &= 0xFF
    return {
        "metadata": {},
        "status": "Failure",
        "message": "command terminated with non-zero exit code: error executing command "
        f"[{' '.join(command)}], exit code {code}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def internal_error_status(message: str) -> dict[str, Any]:
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"Internal error occurred: {message}",
        "reason": "InternalError",
        "details": {"causes": [{"message": message}]},
        "code": 500,
    }


class _SizeDecoder:
    """Terminal sizes from the resize channel: JSON objects, possibly split or run together."""

    def __init__(self) -> None:
        self._pending = ""
        self._decoder = json.JSONDecoder()

    def feed(self, data: bytes) -> list[TerminalSize]:
        self._pending += data.decode(errors="replace")
        sizes: list[TerminalSize] = []
        while True:
            text = self._pending.lstrip()
            if not text:
                self._pending = ""
                return sizes
            try:
                value, end = self._decoder.raw_decode(text)
            except json.JSONDecodeError:
                self._pending = text
                return sizes
            self._pending = text[end:]
            if isinstance(value, dict):
                width = value.get("Width", value.get("width"))
                height = value.get("Height", value.get("height"))
                if isinstance(width, int) and isinstance(height, int) and width >= 0 and height >= 0:
                    sizes.append(TerminalSize(width, height))


# --- what a wire provides -------------------------------------------------------------------


class Wire(abc.ABC):
    """The client's side of one command: input queues filled by ``receive()``, output writers."""

    def __init__(self) -> None:
        self.stdin: asyncio.Queue[bytes] = asyncio.Queue()  # b"" = the client ended stdin
        self.resizes: asyncio.Queue[TerminalSize] = asyncio.Queue()
        self.gone = asyncio.Event()  # the client closed or lost the connection
        self.accepting_input = True
        self._sizes = _SizeDecoder()

    def _input(self, channel: int, data: bytes) -> None:
        if not self.accepting_input:
            return
        if channel == STDIN and data:
            self.stdin.put_nowait(data)
        elif channel == RESIZE:
            for size in self._sizes.feed(data):
                self.resizes.put_nowait(size)

    def _end_stdin(self) -> None:
        self.stdin.put_nowait(b"")

    @abc.abstractmethod
    async def receive(self) -> None:
        """Read the client until it goes away; run as a task until the command ends."""

    @abc.abstractmethod
    async def output(self, channel: int, data: bytes) -> None: ...

    @abc.abstractmethod
    async def finish(self, status: dict[str, Any]) -> None:
        """Report ``status``, say the session is over, wait for the client to close.
        Called after ``receive()`` was stopped."""


class WebSocketWire(Wire):
    def __init__(self, ws: web.WebSocketResponse, *, protocol: str) -> None:
        super().__init__()
        self._ws = ws
        self._protocol = protocol
        self._base64 = "base64" in protocol
        self._close_signal = protocol == V5
        self._status_json = protocol in (V5, V4, V4_BASE64)
        self._lock = asyncio.Lock()

    async def receive(self) -> None:
        try:
            async for message in self._ws:
                # The subprotocol picks the codec, never the frame type (see above).
                if message.type is WSMsgType.BINARY or message.type is WSMsgType.TEXT:
                    data: bytes = message.data if message.type is WSMsgType.BINARY else message.data.encode()
                    if not data:
                        continue
                    if self._base64:
                        self._input(data[0] - ord("0"), _b64decode(data[1:].decode("ascii", "replace")))
                        continue
                    if self._close_signal and data[0] == CLOSE_SIGNAL:
                        if len(data) == 2 and data[1] == STDIN:
                            self._end_stdin()
                        continue
                    self._input(data[0], data[1:])
                else:
                    log.warning(
                        "closing exec stream: unexpected %s message for %s", message.type, self._protocol
                    )
                    break
        finally:
            self.gone.set()

    async def output(self, channel: int, data: bytes) -> None:
        async with self._lock:
            if self._base64:
                await self._ws.send_str(chr(ord("0") + channel) + base64.b64encode(data).decode())
            else:
                await self._ws.send_bytes(bytes((channel,)) + data)

    async def finish(self, status: dict[str, Any]) -> None:
        self.accepting_input = False
        with contextlib.suppress(ConnectionError, RuntimeError):
            if self._status_json:
                await self.output(ERROR, json.dumps(status).encode())
            elif status.get("status") != "Success":
                await self.output(ERROR, status.get("message", "").encode())
            # With no receive() pending, close() sends the close frame and then reads (and
            # drops) what the client still sends until its close frame: no reset, no loss.
            await self._ws.close()


class SPDYWire(Wire):
    def __init__(self, session: spdy.Session, streams: dict[int, spdy.Stream], *, protocol: str) -> None:
        super().__init__()
        self._session = session
        self._streams = streams
        self._status_json = protocol == V4

    async def receive(self) -> None:
        tasks = [
            asyncio.create_task(self._copy_in(channel, stream))
            for channel, stream in self._streams.items()
            if channel in (STDIN, RESIZE)
        ]
        try:
            await self._session.ended.wait()
        finally:
            self.gone.set()
            for task in tasks:
                task.cancel()

    async def _copy_in(self, channel: int, stream: spdy.Stream) -> None:
        while chunk := await stream.read():
            self._input(channel, chunk)
        if channel == STDIN:
            self._end_stdin()

    async def output(self, channel: int, data: bytes) -> None:
        stream = self._streams.get(channel)
        if stream is not None:
            await stream.write(data)

    async def finish(self, status: dict[str, Any]) -> None:
        self.accepting_input = False
        with contextlib.suppress(ConnectionError, spdy.StreamClosedError):
            error = self._streams.get(ERROR)
            if error is not None:
                if self._status_json:
                    await error.write(json.dumps(status).encode())
                elif status.get("status") != "Success":
                    await error.write(status.get("message", "").encode())
            for stream in self._streams.values():
                await stream.close()
            await self._session.goaway()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._session.ended.wait(), FINISH_TIMEOUT)


def _b64decode(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        log.warning("dropping a frame that is not valid base64")
        return b""


# --- handshakes -------------------------------------------------------------------------------


def is_websocket_request(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket" and "upgrade" in (
        request.headers.get("Connection", "").lower()
    )


def is_spdy_request(request: web.Request) -> bool:
    return "spdy/3.1" in request.headers.get("Upgrade", "").lower() and "upgrade" in (
        request.headers.get("Connection", "").lower()
    )


def requested_protocols(header_values: Sequence[str]) -> list[str]:
    """Comma-separated header values, in the client's order, blanks dropped."""
    return [part.strip() for value in header_values for part in value.split(",") if part.strip()]


def negotiate(client: Sequence[str], server: Sequence[str]) -> str | None:
    """The first of the client's protocols the server speaks (upstream's rule)."""
    return next((protocol for protocol in client if protocol in server), None)


class HandshakeError(Exception):
    """The upgrade cannot happen; ``status`` and the message are what the client gets."""

    def __init__(self, status: int, message: str, *, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = dict(headers or {})


def websocket_protocol(request: web.Request, supported: Sequence[str]) -> str:
    """The subprotocol to answer with; "" when the client named none (plain channel.k8s.io)."""
    client = requested_protocols(request.headers.getall("Sec-WebSocket-Protocol", []))
    if not client:
        return ""
    chosen = negotiate(client, supported)
    if chosen is None:
        raise HandshakeError(
            403, f"requested protocol(s) are not supported: {client}; supports {list(supported)}"
        )
    return chosen


def spdy_protocol(request: web.Request, supported: Sequence[str]) -> str:
    """As apimachinery's httpstream.Handshake: 400 without the header, 403 with no overlap."""
    values = request.headers.getall("X-Stream-Protocol-Version", [])
    if not values:
        raise HandshakeError(
            400, "unable to upgrade: header X-Stream-Protocol-Version does not exist in request"
        )
    client = requested_protocols(values)
    chosen = negotiate(client, supported)
    if chosen is None:
        raise HandshakeError(
            403,
            f"unable to upgrade: unable to negotiate protocol: client supports {client}, "
            f"server accepts {list(supported)}",
            headers={"X-Accepted-Stream-Protocol-Versions": ", ".join(supported)},
        )
    return chosen


async def accept_websocket(request: web.Request, *, protocol: str) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(protocols=(protocol,) if protocol else (), max_msg_size=0, autoping=True)
    await ws.prepare(request)
    return ws


async def accept_spdy(request: web.Request, *, protocol: str) -> tuple[UpgradedConnection, spdy.Session]:
    connection = await upgrade(request, protocol="SPDY/3.1", headers={"X-Stream-Protocol-Version": protocol})
    return connection, spdy.Session(connection)


# --- serving a command ------------------------------------------------------------------------


async def serve_websocket_command(
    request: web.Request,
    *,
    options: StreamOptions,
    kind: CommandKind,
    command: Sequence[str],
    start: CommandStarter,
) -> web.WebSocketResponse:
    protocol = websocket_protocol(request, WEBSOCKET_PROTOCOLS)
    ws = await accept_websocket(request, protocol=protocol)
    wire = WebSocketWire(ws, protocol=protocol or V1)
    # As the kubelet does: an empty frame on the lowest writable channel says "connected".
    first = STDOUT if options.stdout else STDERR if options.stderr else ERROR
    with contextlib.suppress(ConnectionError):
        await wire.output(first, b"")
    await run_command(wire, kind=kind, command=command, start=start)
    return ws


async def serve_spdy_command(
    request: web.Request,
    *,
    options: StreamOptions,
    kind: CommandKind,
    command: Sequence[str],
    start: CommandStarter,
) -> web.StreamResponse:
    protocol = spdy_protocol(request, SPDY_PROTOCOLS)
    connection, session = await accept_spdy(request, protocol=protocol)
    reader = asyncio.create_task(session.run())
    try:
        expected = {ERROR}
        expected |= {
            channel for channel, wanted in ((STDIN, options.stdin), (STDOUT, options.stdout)) if wanted
        }
        if options.stderr:
            expected.add(STDERR)
        if options.tty and protocol in (V4, V3):
            expected.add(RESIZE)
        streams = await _collect_streams(session, expected)
        if streams is not None:
            wire = SPDYWire(session, streams, protocol=protocol)
            await run_command(wire, kind=kind, command=command, start=start)
        await session.goaway()
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, spdy.SPDYError, ConnectionError):
            await reader
    return connection.response


async def _collect_streams(session: spdy.Session, expected: set[int]) -> dict[int, spdy.Stream] | None:
    """Wait (30 s at most) for the client to open every stream it asked for; answer each."""
    streams: dict[int, spdy.Stream] = {}
    try:
        async with asyncio.timeout(STREAM_CREATION_TIMEOUT):
            while not expected <= streams.keys():
                stream = await session.accept()
                if stream is None:
                    return None
                await stream.reply()
                channel = _SPDY_STREAM_TYPES.get(stream.headers.get("streamtype", ""))
                if channel is None or channel in streams:
                    log.warning("ignoring unexpected SPDY stream %r", stream.headers.get("streamtype"))
                    continue
                streams[channel] = stream
    except TimeoutError:
        log.warning("timed out waiting for the client to create streams")
        return None
    return streams


async def run_command(
    wire: Wire, *, kind: CommandKind, command: Sequence[str], start: CommandStarter
) -> None:
    receiver = asyncio.create_task(wire.receive())
    status: dict[str, Any] | None
    try:
        try:
            session = await start()
        except (RuntimeError_, OSError) as exc:
            what = (
                "error executing command in container"
                if kind is CommandKind.EXEC
                else "error attaching to container"
            )
            log.info("%s: %s", what, exc)
            status = internal_error_status(f"{what}: {exc}")
        else:
            status = await _drive(wire, session, kind=kind, command=command)
    finally:
        receiver.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await receiver
    if status is not None:
        await wire.finish(status)


async def _drive(
    wire: Wire, session: ExecSession, *, kind: CommandKind, command: Sequence[str]
) -> dict[str, Any] | None:
    """Copy the streams until the command ends (its status) or the client goes (None)."""
    loop = asyncio.get_running_loop()
    last_output = [loop.time()]
    helpers = []
    if session.resize is not None:
        # Started first: a size that arrived with the first keystrokes is applied before them.
        helpers.append(asyncio.create_task(_copy_resizes(wire, session)))
    helpers.append(asyncio.create_task(_copy_stdin(wire, session, kind=kind)))
    output = asyncio.create_task(_copy_output(wire, session, last_output))
    exited = asyncio.ensure_future(cast(Callable[[], Awaitable[int]], session.wait)())
    gone = asyncio.create_task(wire.gone.wait())
    try:
        await asyncio.wait({exited, gone}, return_when=asyncio.FIRST_COMPLETED)
        if not exited.done():
            if kind is CommandKind.EXEC:
                _close_stdin(session)
            return None
        code = exited.result()
        # Output written just before the exit is still in the pipes: copy it while it flows.
        while not output.done():
            await asyncio.wait({output, gone}, timeout=0.2)
            if wire.gone.is_set() or loop.time() - last_output[0] > OUTPUT_IDLE_AFTER_EXIT:
                break
        if wire.gone.is_set():
            return None
        if kind is CommandKind.ATTACH or code == 0:
            return success_status()
        return exit_code_status(code, command)
    finally:
        for task in (*helpers, output, exited, gone):
            task.cancel()
        await asyncio.gather(*helpers, output, exited, gone, return_exceptions=True)


async def _copy_stdin(wire: Wire, session: ExecSession, *, kind: CommandKind) -> None:
    writer = cast(Any, session.stdin)
    while True:
        chunk = await wire.stdin.get()
        if writer is None:
            continue
        if not chunk:
            # The client ended its input: the command reads EOF. An attached container keeps
            # its stdin open for other clients, as with stdinOnce=false.
            if kind is CommandKind.EXEC:
                _close_stdin(session)
            return
        try:
            writer.write(chunk)
            await writer.drain()
        except (ConnectionError, BrokenPipeError):
            return


def _close_stdin(session: ExecSession) -> None:
    writer = cast(Any, session.stdin)
    if writer is not None:
        with contextlib.suppress(OSError, RuntimeError):
            writer.close()


async def _copy_resizes(wire: Wire, session: ExecSession) -> None:
    resize = cast(Callable[[int, int], None], session.resize)
    while True:
        size = await wire.resizes.get()
        with contextlib.suppress(OSError):
            resize(size.width, size.height)


async def _copy_output(wire: Wire, session: ExecSession, last_output: list[float]) -> None:
    loop = asyncio.get_running_loop()
    try:
        async for channel, data in session.output:
            last_output[0] = loop.time()
            if data:
                await wire.output(channel, data)
    except (ConnectionError, spdy.StreamClosedError):
        wire.gone.set()
