"""Turn an aiohttp request's connection into a raw byte stream after ``101 Switching Protocols``.

aiohttp upgrades only to WebSocket; SPDY/3.1 (what kubectl before 1.30 asks for) needs the
bare connection. :func:`upgrade` answers 101 with the given headers and installs a reader
in place of aiohttp's HTTP parser, so every later byte from the client lands in an
:class:`UpgradedConnection` instead of being parsed as a new request. The reader is
installed *before* the 101 is sent: a client that speaks as soon as it reads the 101 can
never have its first bytes taken for HTTP.

The handler must keep running for as long as the connection is in use; when it returns,
aiohttp closes the connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from aiohttp import web

# Chunks queued from the client before reading the socket pauses.
_HIGH_WATER_CHUNKS = 64


class UpgradedConnection:
    """The client's bytes after the upgrade (``read``), and a way to answer (``write``)."""

    def __init__(self, request: web.Request, response: web.StreamResponse) -> None:
        self._request = request
        self.response = response
        self._chunks: asyncio.Queue[bytes] = asyncio.Queue()
        self._paused = False
        self._at_eof = False

    # --- the parser interface aiohttp's RequestHandler.set_parser feeds
    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        if data:
            self._chunks.put_nowait(bytes(data))
            transport = self._request.transport
            if self._chunks.qsize() >= _HIGH_WATER_CHUNKS and transport is not None and not self._paused:
                self._paused = True
                transport.pause_reading()
        return False, b""

    def feed_eof(self) -> None:
        self._chunks.put_nowait(b"")

    # --- the stream interface
    async def read(self) -> bytes:
        if self._at_eof:
            return b""
        chunk = await self._chunks.get()
        if not chunk:
            self._at_eof = True
        elif self._paused and self._chunks.qsize() < _HIGH_WATER_CHUNKS // 2:
            self._paused = False
            transport = self._request.transport
            if transport is not None:
                transport.resume_reading()
        return chunk

    async def write(self, data: bytes) -> None:
        if self._request.transport is None or self._request.transport.is_closing():
            raise ConnectionResetError("the client closed the connection")
        await self.response.write(data)


async def upgrade(request: web.Request, *, protocol: str, headers: Mapping[str, str]) -> UpgradedConnection:
    """Answer ``101 Switching Protocols`` (``Upgrade: <protocol>``) and hand over the connection."""
    response = web.StreamResponse(
        status=101, headers={"Connection": "Upgrade", "Upgrade": protocol, **headers}
    )
    response.force_close()
    connection = UpgradedConnection(request, response)
    request.protocol.set_parser(connection)  # type: ignore[arg-type]  # duck-typed payload parser
    request.protocol.keep_alive(False)
    await response.prepare(request)
    await response.write(b"")  # flush the status line and headers now
    return connection
