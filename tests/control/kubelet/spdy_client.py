"""A small SPDY/3.1 client for tests, written from the framing rules (not from the server's
session code), so the kubelet's SPDY endpoints can be driven frame by frame. The real
client (kubectl before 1.30/1.31) is exercised end to end in tests/control/apiserver.
"""

from __future__ import annotations

import asyncio
import ssl
import struct
import zlib
from dataclasses import dataclass, field

from control.kubelet import spdy


@dataclass
class Frame:
    control: bool
    type: int  # control frame type, or the stream id of a DATA frame
    flags: int
    payload: bytes


def take_frames(buffer: bytearray) -> list[Frame]:
    """Remove and return every complete frame at the start of ``buffer``."""
    frames = []
    while len(buffer) >= 8:
        first, second = struct.unpack_from(">II", buffer)
        length = second & 0xFFFFFF
        if len(buffer) < 8 + length:
            break
        payload = bytes(buffer[8 : 8 + length])
        del buffer[: 8 + length]
        if first & 0x80000000:
            frames.append(Frame(True, first & 0xFFFF, second >> 24, payload))
        else:
            frames.append(Frame(False, first & 0x7FFFFFFF, second >> 24, payload))
    return frames


class ClientEncoder:
    """Frames as a client writes them (odd stream ids, own header compression context)."""

    def __init__(self) -> None:
        self._deflate = zlib.compressobj(level=9, zdict=spdy.DICTIONARY)
        self._next_id = 1

    def syn_stream(self, headers: dict[str, str], *, flags: int = 0) -> tuple[int, bytes]:
        stream_id = self._next_id
        self._next_id += 2
        block = self._deflate.compress(spdy.encode_header_block(headers)) + self._deflate.flush(
            zlib.Z_SYNC_FLUSH
        )
        payload = struct.pack(">IIBB", stream_id, 0, 0, 0) + block
        return stream_id, spdy.control_frame(spdy.SYN_STREAM, payload, flags=flags)


@dataclass
class ClientStream:
    id: int
    headers: dict[str, str]
    replied: asyncio.Future[bool] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    data: bytearray = field(default_factory=bytearray)
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    was_reset: bool = False


class SPDYClient:
    """Upgrades an HTTPS request to SPDY/3.1 and speaks it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.encoder = ClientEncoder()
        self.streams: dict[int, ClientStream] = {}
        self.pings: list[int] = []
        self.pinged = asyncio.Event()
        self.goaway = asyncio.Event()
        self.closed = asyncio.Event()
        self._inflate = spdy.HeaderDecompressor()
        self._task: asyncio.Task[None] | None = None

    @classmethod
    async def connect(
        cls,
        *,
        host: str,
        port: int,
        context: ssl.SSLContext,
        target: str,
        protocols: list[str],
        method: str = "POST",
    ) -> tuple[int, dict[str, str], SPDYClient | bytes]:
        """(status, headers, a running client) after a 101; (status, headers, body) otherwise."""
        reader, writer = await asyncio.open_connection(host, port, ssl=context)
        lines = [
            f"{method} {target} HTTP/1.1",
            f"Host: {host}:{port}",
            "Connection: Upgrade",
            "Upgrade: SPDY/3.1",
        ]
        lines += [f"X-Stream-Protocol-Version: {protocol}" for protocol in protocols]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await writer.drain()
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        status = int(head.split(" ", 2)[1])
        headers = {}
        for line in head.split("\r\n")[1:]:
            if ":" in line:
                key, _, value = line.partition(":")
                headers[key.strip().lower()] = value.strip()
        if status != 101:
            body = await reader.read(65536)
            writer.close()
            return status, headers, body
        client = cls(reader, writer)
        client._task = asyncio.create_task(client._run())
        return status, headers, client

    async def _run(self) -> None:
        buffer = bytearray()
        try:
            while chunk := await self.reader.read(65536):
                buffer += chunk
                for frame in take_frames(buffer):
                    self._handle(frame)
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            self.closed.set()
            for stream in self.streams.values():
                stream.finished.set()
                if not stream.replied.done():
                    stream.replied.set_result(False)

    def _handle(self, frame: Frame) -> None:
        if not frame.control:
            stream = self.streams.get(frame.type)
            if stream is not None:
                stream.data += frame.payload
                if frame.flags & spdy.FLAG_FIN:
                    stream.finished.set()
            return
        if frame.type == spdy.SYN_REPLY:
            (stream_id,) = struct.unpack_from(">I", frame.payload)
            self._inflate.decompress(frame.payload[4:])
            stream = self.streams[stream_id]
            if not stream.replied.done():
                stream.replied.set_result(True)
        elif frame.type == spdy.RST_STREAM:
            stream_id, _ = struct.unpack_from(">II", frame.payload)
            stream = self.streams.get(stream_id)
            if stream is not None:
                stream.was_reset = True
                stream.finished.set()
                if not stream.replied.done():
                    stream.replied.set_result(False)
        elif frame.type == spdy.PING:
            self.pings.append(struct.unpack_from(">I", frame.payload)[0])
            self.pinged.set()
        elif frame.type == spdy.GOAWAY:
            self.goaway.set()

    async def open(self, headers: dict[str, str]) -> ClientStream:
        """Open a stream and wait for the server's answer (``replied`` False = reset)."""
        stream_id, frame = self.encoder.syn_stream(headers)
        stream = ClientStream(stream_id, headers)
        self.streams[stream_id] = stream
        self.writer.write(frame)
        await self.writer.drain()
        await asyncio.wait_for(asyncio.shield(stream.replied), 10)
        return stream

    async def send(self, stream: ClientStream, data: bytes, *, fin: bool = False) -> None:
        self.writer.write(spdy.data_frame(stream.id, data, flags=spdy.FLAG_FIN if fin else 0))
        await self.writer.drain()

    async def reset(self, stream: ClientStream) -> None:
        self.writer.write(spdy.control_frame(spdy.RST_STREAM, struct.pack(">II", stream.id, spdy.RST_CANCEL)))
        await self.writer.drain()

    async def ping(self, ping_id: int) -> None:
        self.writer.write(spdy.control_frame(spdy.PING, struct.pack(">I", ping_id)))
        await self.writer.drain()

    async def close(self) -> None:
        if not self.writer.is_closing():
            self.writer.write(spdy.control_frame(spdy.GOAWAY, struct.pack(">II", 0, 0)))
            self.writer.close()
        if self._task is not None:
            await asyncio.wait_for(self._task, 10)
