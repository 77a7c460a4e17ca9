"""SPDY/3.1 framing and the server side of a session, as far as Kubernetes streaming uses it.

kubectl before 1.30 (exec, attach) and before 1.31 (port-forward) upgrades its request to
SPDY/3.1 and opens one SPDY stream per channel: error, stdin, stdout, stderr and resize
for a remote command; an error and a data stream per forwarded connection. kubectl 1.31+
sends the very same SPDY bytes through WebSocket binary messages for port-forward
(``SPDY/3.1+portforward.k8s.io``). Both end up here: a :class:`Session` reads frames from
a byte :class:`Transport`, hands every stream the client opens to the caller through
:meth:`Session.accept`, and writes the server's frames back.

What is implemented is what the Go peer speaks (moby/spdystream, used by client-go and by
the kubelet): SYN_STREAM / SYN_REPLY / HEADERS whose header blocks are zlib streams primed
with the SPDY/3 dictionary (one compression context per direction for the whole session,
sync-flushed per frame), DATA with FIN, RST_STREAM, PING (echoed), GOAWAY. SETTINGS and
WINDOW_UPDATE are read and ignored, exactly as spdystream does; spdystream never sends
WINDOW_UPDATE, so a peer honouring the 64 KiB flow-control window would stall every
transfer. Back-pressure instead comes from the bounded per-stream queues: a stream whose
reader falls behind pauses the session's reader, as spdystream's unbuffered channels do.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import zlib
from collections.abc import Mapping
from typing import Protocol

VERSION = 3
SYN_STREAM = 1
SYN_REPLY = 2
RST_STREAM = 3
SETTINGS = 4
PING = 6
GOAWAY = 7
HEADERS = 8
WINDOW_UPDATE = 9

FLAG_FIN = 0x01
FLAG_UNIDIRECTIONAL = 0x02

RST_PROTOCOL_ERROR = 1
RST_CANCEL = 5

MAX_FRAME_PAYLOAD = (1 << 24) - 1
# DATA frames are cut at this size when writing, so one large write does not hold the
# session's writer (and every other stream) for long.
WRITE_CHUNK = 32 * 1024
# Chunks of DATA a stream queues before the session stops reading the transport for it.
STREAM_QUEUE_CHUNKS = 64

_HEADER_WORDS = (
    "options",
    "head",
    "post",
    "put",
    "delete",
    "trace",
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "accept-ranges",
    "age",
    "allow",
    "authorization",
    "cache-control",
    "connection",
    "content-base",
    "content-encoding",
    "content-language",
    "content-length",
    "content-location",
    "content-md5",
    "content-range",
    "content-type",
    "date",
    "etag",
    "expect",
    "expires",
    "from",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "last-modified",
    "location",
    "max-forwards",
    "pragma",
    "proxy-authenticate",
    "proxy-authorization",
    "range",
    "referer",
    "retry-after",
    "server",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "vary",
    "via",
    "warning",
    "www-authenticate",
    "method",
    "get",
    "status",
    "200 OK",
    "version",
    "HTTP/1.1",
    "url",
    "public",
    "set-cookie",
    "keep-alive",
    "origin",
)
_DICTIONARY_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 "
    "Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 "
    "Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, "
    "Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,application/xml,"
    "application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=gzip,deflate,sdch"
    "charset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)
# The zlib dictionary of SPDY/3 header blocks (draft-mbelshe-httpbis-spdy-00, 2.6.10.1):
# each word with a 4-byte big-endian length, then a run of common values.
DICTIONARY = (
    b"".join(len(word).to_bytes(4, "big") + word.encode() for word in _HEADER_WORDS)
    + _DICTIONARY_TAIL.encode()
)

_CONTROL_HEADER = struct.Struct(">HHI")
_DATA_HEADER = struct.Struct(">II")
_U32 = struct.Struct(">I")
_TWO_U32 = struct.Struct(">II")


class SPDYError(Exception):
    """The peer broke the SPDY framing; the session cannot continue."""


class StreamClosedError(SPDYError):
    """A write to a stream that was reset, or that this side already finished."""


class Transport(Protocol):
    """A byte stream the session runs over: a hijacked HTTP connection or a WebSocket."""

    async def read(self) -> bytes:
        """The next bytes from the peer; b"" once the peer has closed."""

    async def write(self, data: bytes) -> None: ...


def encode_header_block(headers: Mapping[str, str]) -> bytes:
    """The uncompressed name/value block: counts and lengths are 32-bit in SPDY/3."""
    parts = [_U32.pack(len(headers))]
    for name, value in headers.items():
        raw_name = name.lower().encode()
        raw_value = value.encode()
        parts += (_U32.pack(len(raw_name)), raw_name, _U32.pack(len(raw_value)), raw_value)
    return b"".join(parts)


def decode_header_block(block: bytes) -> dict[str, str]:
    """Names lower-cased; of a NUL-separated multi-value, the first value (as http.Header.Get)."""
    try:
        (count,) = _U32.unpack_from(block, 0)
        offset = 4
        headers: dict[str, str] = {}
        for _ in range(count):
            (length,) = _U32.unpack_from(block, offset)
            name = block[offset + 4 : offset + 4 + length].decode().lower()
            offset += 4 + length
            (length,) = _U32.unpack_from(block, offset)
            value = block[offset + 4 : offset + 4 + length].decode()
            offset += 4 + length
            headers.setdefault(name, value.split("\x00", 1)[0])
    except (struct.error, UnicodeDecodeError) as exc:
        raise SPDYError(f"malformed SPDY header block: {exc}") from exc
    if offset != len(block):
        raise SPDYError("malformed SPDY header block: trailing bytes")
    return headers


def control_frame(frame_type: int, payload: bytes, *, flags: int = 0) -> bytes:
    return _CONTROL_HEADER.pack(0x8000 | VERSION, frame_type, (flags << 24) | len(payload)) + payload


def data_frame(stream_id: int, data: bytes, *, flags: int = 0) -> bytes:
    return _DATA_HEADER.pack(stream_id & 0x7FFFFFFF, (flags << 24) | len(data)) + data


class HeaderCompressor:
    """One direction's header compression context (shared by every frame of a session)."""

    def __init__(self) -> None:
        self._deflate = zlib.compressobj(level=zlib.Z_BEST_COMPRESSION, zdict=DICTIONARY)

    def compress(self, headers: Mapping[str, str]) -> bytes:
        block = encode_header_block(headers)
        return self._deflate.compress(block) + self._deflate.flush(zlib.Z_SYNC_FLUSH)


class HeaderDecompressor:
    def __init__(self) -> None:
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)

    def decompress(self, block: bytes) -> dict[str, str]:
        try:
            raw = self._inflate.decompress(block)
        except zlib.error as exc:
            raise SPDYError(f"cannot decompress SPDY header block: {exc}") from exc
        return decode_header_block(raw)


class Stream:
    """One client-opened stream. Reads return b"" once the client finished or reset it."""

    def __init__(self, session: Session, *, stream_id: int, headers: dict[str, str]) -> None:
        self.session = session
        self.id = stream_id
        self.headers = headers
        self._queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._room = asyncio.Event()
        self._room.set()
        self._remote_done = False
        self._eof_read = False
        self.local_done = False
        self.was_reset = False

    async def read(self) -> bytes:
        if self._eof_read:
            return b""
        chunk = await self._queue.get()
        if self._queue.qsize() < STREAM_QUEUE_CHUNKS:
            self._room.set()
        if not chunk:
            self._eof_read = True
        return chunk

    async def write(self, data: bytes) -> None:
        if self.was_reset or self.local_done:
            raise StreamClosedError(f"write on finished SPDY stream {self.id}")
        view = memoryview(data)
        for start in range(0, len(view), WRITE_CHUNK):
            await self.session.send(data_frame(self.id, bytes(view[start : start + WRITE_CHUNK])))

    async def close(self) -> None:
        """Finish this side (an empty DATA frame with FIN), once; a reset stream stays silent."""
        if self.was_reset or self.local_done:
            return
        self.local_done = True
        await self.session.send(data_frame(self.id, b"", flags=FLAG_FIN))
        self.session.forget_if_done(self)

    async def reply(self) -> None:
        await self.session.send(
            control_frame(SYN_REPLY, _U32.pack(self.id) + self.session.compressor.compress({}))
        )

    async def reset(self, status: int = RST_CANCEL) -> None:
        """Abort the stream (RST_STREAM); later data from the peer is dropped."""
        if self.was_reset:
            return
        self.was_reset = True
        self.local_done = True
        self._abort()
        await self.session.send(control_frame(RST_STREAM, _TWO_U32.pack(self.id, status)))
        self.session.forget(self)

    # --- called by the session's reader
    async def _deliver(self, chunk: bytes) -> None:
        if not chunk or self._remote_done or self.was_reset:
            return
        self._queue.put_nowait(chunk)
        if self._queue.qsize() >= STREAM_QUEUE_CHUNKS:
            # The reader fell behind: stop reading the transport until it catches up.
            self._room.clear()
            await self._room.wait()

    def _finish_remote(self) -> None:
        """The peer is done with this stream (FIN, reset, or the session ended): readers
        get what was queued, then b""."""
        if self._remote_done:
            return
        self._remote_done = True
        self._queue.put_nowait(b"")
        self._room.set()

    def _abort(self) -> None:
        """Reset: what was queued is dropped and readers see the end at once."""
        while not self._queue.empty():
            self._queue.get_nowait()
        self._eof_read = True
        self._finish_remote()

    @property
    def remote_done(self) -> bool:
        return self._remote_done


class Session:
    """The server side of one SPDY/3.1 connection.

    ``run()`` reads frames until the peer closes or sends GOAWAY (start it as a task);
    ``accept()`` yields each stream the client opens and None once the session ended.
    The caller answers a stream with ``reply()`` or refuses it with ``reset()``.
    """

    def __init__(self, transport: Transport) -> None:
        self._transport = transport
        self._buffer = bytearray()
        self.compressor = HeaderCompressor()
        self._decompressor = HeaderDecompressor()
        self._streams: dict[int, Stream] = {}
        self._incoming: asyncio.Queue[Stream | None] = asyncio.Queue()
        self._write_lock = asyncio.Lock()
        self._last_client_stream = -1
        self.ended = asyncio.Event()
        self._goaway_sent = False

    async def accept(self) -> Stream | None:
        if self.ended.is_set() and self._incoming.empty():
            return None
        return await self._incoming.get()

    async def send(self, frame: bytes) -> None:
        async with self._write_lock:
            await self._transport.write(frame)

    async def goaway(self) -> None:
        """Tell the client no more streams will be accepted (status OK), once."""
        if self._goaway_sent:
            return
        self._goaway_sent = True
        last = max(self._last_client_stream, 0)
        with contextlib.suppress(ConnectionError):
            await self.send(control_frame(GOAWAY, _TWO_U32.pack(last, 0)))

    def forget(self, stream: Stream) -> None:
        self._streams.pop(stream.id, None)

    def forget_if_done(self, stream: Stream) -> None:
        if stream.local_done and stream.remote_done:
            self.forget(stream)

    async def run(self) -> None:
        try:
            while True:
                frame = await self._read_frame()
                if frame is None:
                    return
                first, flags, payload = frame
                if first & 0x80000000:
                    if not await self._control(first & 0xFFFF, flags, payload):
                        return
                else:
                    await self._data(first & 0x7FFFFFFF, flags, payload)
        finally:
            self.ended.set()
            for stream in list(self._streams.values()):
                stream._finish_remote()
            self._streams.clear()
            self._incoming.put_nowait(None)

    async def _read_exactly(self, size: int) -> bool:
        while len(self._buffer) < size:
            chunk = await self._transport.read()
            if not chunk:
                return False
            self._buffer += chunk
        return True

    async def _read_frame(self) -> tuple[int, int, bytes] | None:
        if not await self._read_exactly(8):
            return None
        first, second = _TWO_U32.unpack_from(self._buffer, 0)
        length = second & MAX_FRAME_PAYLOAD
        if not await self._read_exactly(8 + length):
            return None
        payload = bytes(self._buffer[8 : 8 + length])
        del self._buffer[: 8 + length]
        return first, second >> 24, payload

    async def _control(self, frame_type: int, flags: int, payload: bytes) -> bool:
        """Handle one control frame; False ends the session (GOAWAY)."""
        if frame_type == SYN_STREAM:
            await self._syn_stream(flags, payload)
        elif frame_type == RST_STREAM:
            stream_id, _status = _TWO_U32.unpack_from(payload, 0)
            stream = self._streams.pop(stream_id & 0x7FFFFFFF, None)
            if stream is not None:
                stream.was_reset = True
                stream.local_done = True
                stream._abort()
        elif frame_type == PING:
            (ping_id,) = _U32.unpack_from(payload, 0)
            if ping_id & 1:  # client-initiated (odd): answer; ours would be even, and we send none
                await self.send(control_frame(PING, payload))
        elif frame_type == GOAWAY:
            return False
        elif frame_type in (SYN_REPLY, HEADERS):
            # The shared decompression context must see every header block, even unused ones.
            (stream_id,) = _U32.unpack_from(payload, 0)
            self._decompressor.decompress(payload[4:])
            stream = self._streams.get(stream_id & 0x7FFFFFFF)
            if stream is not None and flags & FLAG_FIN:
                stream._finish_remote()
                self.forget_if_done(stream)
        # SETTINGS, WINDOW_UPDATE and unknown types: nothing to do (see the module docstring).
        return True

    async def _syn_stream(self, flags: int, payload: bytes) -> None:
        if len(payload) < 10:
            raise SPDYError("SYN_STREAM frame too short")
        (stream_id,) = _U32.unpack_from(payload, 0)
        stream_id &= 0x7FFFFFFF
        headers = self._decompressor.decompress(payload[10:])
        if stream_id == 0 or stream_id % 2 == 0 or stream_id <= self._last_client_stream or self._goaway_sent:
            await self.send(control_frame(RST_STREAM, _TWO_U32.pack(stream_id, RST_PROTOCOL_ERROR)))
            return
        self._last_client_stream = stream_id
        stream = Stream(self, stream_id=stream_id, headers=headers)
        self._streams[stream_id] = stream
        if flags & FLAG_UNIDIRECTIONAL:
            stream.local_done = True
        if flags & FLAG_FIN:
            stream._finish_remote()
        self._incoming.put_nowait(stream)

    async def _data(self, stream_id: int, flags: int, payload: bytes) -> None:
        stream = self._streams.get(stream_id)
        if stream is None:
            return  # a stream already reset or finished: drop, as spdystream does
        await stream._deliver(payload)
        if flags & FLAG_FIN:
            stream._finish_remote()
            self.forget_if_done(stream)
