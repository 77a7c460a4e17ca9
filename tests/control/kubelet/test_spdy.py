"""SPDY/3.1 framing and the server session, over an in-memory byte transport."""

from __future__ import annotations

import asyncio
import struct
import zlib
from collections.abc import AsyncIterator

import pytest

from control.kubelet import spdy
from tests.control.kubelet.spdy_client import ClientEncoder, Frame, take_frames


class MemoryTransport:
    """The client's bytes go in ``feed``; what the server wrote accumulates in ``written``."""

    def __init__(self) -> None:
        self.incoming: asyncio.Queue[bytes] = asyncio.Queue()
        self.written = bytearray()
        self.wrote = asyncio.Event()

    def feed(self, data: bytes) -> None:
        self.incoming.put_nowait(data)

    async def read(self) -> bytes:
        return await self.incoming.get()

    async def write(self, data: bytes) -> None:
        self.written += data
        self.wrote.set()

    async def frames(self, count: int) -> list[Frame]:
        """Wait until the server has written ``count`` more frames; return them."""
        found: list[Frame] = []
        async with asyncio.timeout(5):
            while len(found) < count:
                found += take_frames(self.written)
                if len(found) < count:
                    self.wrote.clear()
                    await self.wrote.wait()
        return found


@pytest.fixture
async def session() -> AsyncIterator[tuple[spdy.Session, MemoryTransport]]:
    transport = MemoryTransport()
    server = spdy.Session(transport)
    task = asyncio.create_task(server.run())
    yield server, transport
    transport.feed(b"")
    await asyncio.wait_for(task, 5)


def test_dictionary_is_the_spdy3_one() -> None:
    # The dictionary id on the wire is its adler32; Go's zlib refuses any other dictionary.
    assert len(spdy.DICTIONARY) == 1423
    assert zlib.adler32(spdy.DICTIONARY) == 3821447106


def test_header_block_round_trip_lowercases_names_and_keeps_first_value() -> None:
    block = spdy.encode_header_block({"StreamType": "stdin", "Port": "80"})
    assert spdy.decode_header_block(block) == {"streamtype": "stdin", "port": "80"}
    multi = struct.pack(">I", 1) + struct.pack(">I", 1) + b"a" + struct.pack(">I", 3) + b"x\x00y"
    assert spdy.decode_header_block(multi) == {"a": "x"}


@pytest.mark.parametrize(
    "block",
    [b"\x00\x00", struct.pack(">I", 2) + struct.pack(">I", 1) + b"a", struct.pack(">I", 0) + b"extra"],
    ids=["short count", "truncated pair", "trailing bytes"],
)
def test_malformed_header_blocks_are_errors(block: bytes) -> None:
    with pytest.raises(spdy.SPDYError):
        spdy.decode_header_block(block)


def test_compression_contexts_are_shared_across_frames() -> None:
    compressor, decompressor = spdy.HeaderCompressor(), spdy.HeaderDecompressor()
    for port in ("80", "443", "8080"):
        assert decompressor.decompress(compressor.compress({"port": port})) == {"port": port}


def test_garbage_instead_of_a_compressed_block_is_an_error() -> None:
    with pytest.raises(spdy.SPDYError):
        spdy.HeaderDecompressor().decompress(b"not zlib at all")


async def test_stream_is_accepted_replied_and_carries_data_both_ways(
    session: tuple[spdy.Session, MemoryTransport],
) -> None:
    server, transport = session
    encoder = ClientEncoder()
    stream_id, syn = encoder.syn_stream({"streamType": "data", "port": "80"})
    transport.feed(syn + spdy.data_frame(stream_id, b"hello"))
    stream = await asyncio.wait_for(server.accept(), 5)
    assert stream is not None
    assert (stream.id, stream.headers) == (1, {"streamtype": "data", "port": "80"})
    await stream.reply()
    assert await stream.read() == b"hello"
    await stream.write(b"x" * (spdy.WRITE_CHUNK + 10))
    reply, first, second = await transport.frames(3)
    assert (reply.control, reply.type, struct.unpack(">I", reply.payload[:4])[0]) == (True, spdy.SYN_REPLY, 1)
    assert spdy.HeaderDecompressor().decompress(reply.payload[4:]) == {}
    assert (first.type, len(first.payload), second.type, len(second.payload)) == (1, spdy.WRITE_CHUNK, 1, 10)


async def test_fin_ends_reads_after_queued_data_and_close_sends_fin(
    session: tuple[spdy.Session, MemoryTransport],
) -> None:
    server, transport = session
    stream_id, syn = ClientEncoder().syn_stream({"streamtype": "stdin"})
    transport.feed(
        syn + spdy.data_frame(stream_id, b"a") + spdy.data_frame(stream_id, b"b", flags=spdy.FLAG_FIN)
    )
    stream = await server.accept()
    assert stream is not None
    assert [await stream.read(), await stream.read(), await stream.read(), await stream.read()] == [
        b"a",
        b"b",
        b"",
        b"",
    ]
    await stream.close()
    await stream.close()  # once only
    (fin,) = await transport.frames(1)
    assert (fin.control, fin.type, fin.flags, fin.payload) == (False, stream_id, spdy.FLAG_FIN, b"")
    with pytest.raises(spdy.StreamClosedError):
        await stream.write(b"late")


async def test_peer_reset_ends_the_stream_and_forbids_writes(
    session: tuple[spdy.Session, MemoryTransport],
) -> None:
    server, transport = session
    stream_id, syn = ClientEncoder().syn_stream({"streamtype": "data"})
    transport.feed(syn)
    stream = await server.accept()
    assert stream is not None
    transport.feed(spdy.control_frame(spdy.RST_STREAM, struct.pack(">II", stream_id, spdy.RST_CANCEL)))
    assert await asyncio.wait_for(stream.read(), 5) == b""
    assert stream.was_reset
    with pytest.raises(spdy.StreamClosedError):
        await stream.write(b"x")
    transport.feed(spdy.data_frame(stream_id, b"dropped"))  # data for a gone stream is ignored


async def test_server_reset_sends_rst_once(session: tuple[spdy.Session, MemoryTransport]) -> None:
    server, transport = session
    _, syn = ClientEncoder().syn_stream({"streamtype": "bogus"})
    transport.feed(syn)
    stream = await server.accept()
    assert stream is not None
    await stream.reset()
    await stream.reset()
    (rst,) = await transport.frames(1)
    assert (rst.type, struct.unpack(">II", rst.payload)) == (spdy.RST_STREAM, (1, spdy.RST_CANCEL))
    await stream.close()  # silent after a reset
    assert take_frames(transport.written) == []


async def test_client_pings_are_echoed(session: tuple[spdy.Session, MemoryTransport]) -> None:
    _, transport = session
    transport.feed(spdy.control_frame(spdy.PING, struct.pack(">I", 7)))
    (pong,) = await transport.frames(1)
    assert (pong.type, pong.payload) == (spdy.PING, struct.pack(">I", 7))


async def test_settings_and_window_updates_are_ignored(session: tuple[spdy.Session, MemoryTransport]) -> None:
    server, transport = session
    transport.feed(spdy.control_frame(spdy.SETTINGS, struct.pack(">III", 1, 7, 65536)))
    transport.feed(spdy.control_frame(spdy.WINDOW_UPDATE, struct.pack(">II", 1, 1000)))
    _, syn = ClientEncoder().syn_stream({"streamtype": "data"})
    transport.feed(syn)
    assert await asyncio.wait_for(server.accept(), 5) is not None


async def test_even_or_reused_stream_ids_are_refused(session: tuple[spdy.Session, MemoryTransport]) -> None:
    server, transport = session
    encoder = ClientEncoder()
    _, first = encoder.syn_stream({"streamtype": "data"})
    encoder._next_id = 2
    _, even = encoder.syn_stream({"streamtype": "data"})  # ids of client streams are odd
    encoder._next_id = 1
    _, again = encoder.syn_stream({"streamtype": "data"})  # and must grow
    transport.feed(first + even + again)
    assert await server.accept() is not None
    refused = await transport.frames(2)
    assert [struct.unpack(">II", rst.payload) for rst in refused] == [
        (2, spdy.RST_PROTOCOL_ERROR),
        (1, spdy.RST_PROTOCOL_ERROR),
    ]


async def test_goaway_and_eof_end_the_session(session: tuple[spdy.Session, MemoryTransport]) -> None:
    server, transport = session
    stream_id, syn = ClientEncoder().syn_stream({"streamtype": "data"})
    transport.feed(syn + spdy.control_frame(spdy.GOAWAY, struct.pack(">II", 0, 0)))
    stream = await server.accept()
    assert stream is not None
    assert await asyncio.wait_for(server.accept(), 5) is None
    assert await stream.read() == b""  # open streams end with the session
    assert server.ended.is_set()
    await server.goaway()
    await server.goaway()
    (goaway,) = await transport.frames(1)
    assert (goaway.type, struct.unpack(">II", goaway.payload)) == (spdy.GOAWAY, (stream_id, 0))


async def test_a_slow_reader_pauses_the_session_without_losing_data(
    session: tuple[spdy.Session, MemoryTransport],
) -> None:
    server, transport = session
    stream_id, syn = ClientEncoder().syn_stream({"streamtype": "data"})
    chunks = [bytes([n % 256]) * 10 for n in range(spdy.STREAM_QUEUE_CHUNKS * 2)]
    transport.feed(syn + b"".join(spdy.data_frame(stream_id, chunk) for chunk in chunks))
    transport.feed(spdy.data_frame(stream_id, b"", flags=spdy.FLAG_FIN))
    stream = await server.accept()
    assert stream is not None
    received = []
    while chunk := await asyncio.wait_for(stream.read(), 5):
        received.append(chunk)
    assert received == chunks


async def test_truncated_syn_stream_ends_the_session_with_an_error() -> None:
    transport = MemoryTransport()
    server = spdy.Session(transport)
    transport.feed(spdy.control_frame(spdy.SYN_STREAM, b"\x00\x00\x00\x01"))
    with pytest.raises(spdy.SPDYError):
        await asyncio.wait_for(server.run(), 5)
    assert await server.accept() is None
