"""The listeners over real sockets on 127.0.0.x, queried with dnspython, dig and kdig.

The answers come from a FAKE backend (the record rules are tested in test_answers); what is
tested here is the transport: UDP and TCP, truncation and TCP retry, bounded and idle TCP
connections, slow clients, garbage, and a forwarding loop closed through the real listener.
"""

from __future__ import annotations

import asyncio
import socket
import struct

import dns.asyncquery
import dns.flags
import dns.message
import dns.rcode
import pytest

from addons.coredns_lite.answers import KubernetesOptions, Rules
from addons.coredns_lite.forward import Forwarder, Upstream
from addons.coredns_lite.handler import Handler
from addons.coredns_lite.metrics import DNSMetrics
from addons.coredns_lite.server import DNSServer, ListenError, server_label
from tests.addons.coredns_lite.fakes import FakeBackend, address, endpoints, service
from tests.addons.coredns_lite.upstreams import free_port, require, run

HOST = "127.0.53.1"


def backend() -> FakeBackend:
    many = [address(f"172.1.0.{i}") for i in range(1, 101)]
    return FakeBackend(
        services=[service("svc1"), service("big", ips=("None",))],
        slices=[endpoints("big", many)],
    )


@pytest.fixture
async def server():
    handler = Handler(rules=Rules(options=KubernetesOptions(), backend=backend()), metrics=DNSMetrics())
    listener = DNSServer(
        handler.serve, addresses=[HOST], port=free_port(HOST), idle_timeout=0.5, max_tcp_connections=50
    )
    await listener.start()
    try:
        yield listener
    finally:
        await listener.stop()


async def query(
    server: DNSServer, name: str, rtype: str = "A", *, tcp: bool = False, **kwargs
) -> dns.message.Message:
    message = dns.message.make_query(name, rtype, **kwargs)
    call = dns.asyncquery.tcp if tcp else dns.asyncquery.udp
    return await call(message, HOST, port=server.bound[0][1], timeout=2)


async def test_udp_and_tcp_with_dnspython(server: DNSServer) -> None:
    for tcp in (False, True):
        reply = await query(server, "svc1.testns.svc.cluster.local.", tcp=tcp)
        assert [r.to_text() for r in reply.answer[0]] == ["10.0.0.1"]
    assert server.labels == [f"dns://{HOST}:{server.bound[0][1]}"]


async def test_dig_and_kdig(server: DNSServer) -> None:
    port = str(server.bound[0][1])
    dig, kdig = require("dig"), require("kdig")
    assert (await run(dig, f"@{HOST}", "-p", port, "+short", "svc1.testns.svc.cluster.local")).split() == [
        "10.0.0.1"
    ]
    assert (
        await run(dig, f"@{HOST}", "-p", port, "+short", "+tcp", "svc1.testns.svc.cluster.local")
    ).split() == ["10.0.0.1"]
    assert (await run(kdig, f"@{HOST}", "-p", port, "+short", "svc1.testns.svc.cluster.local")).split() == [
        "10.0.0.1"
    ]
    assert (
        await run(kdig, f"@{HOST}", "-p", port, "+short", "+tcp", "svc1.testns.svc.cluster.local")
    ).split() == ["10.0.0.1"]
    nx = await run(dig, f"@{HOST}", "-p", port, "nope.testns.svc.cluster.local")
    assert "status: NXDOMAIN" in nx and "ns.dns.cluster.local. hostmaster.cluster.local." in nx
    # 100 addresses do not fit 1232 bytes: dig sees TC and asks again over TCP by itself.
    big = await run(dig, f"@{HOST}", "-p", port, "+short", "big.testns.svc.cluster.local")
    assert len(big.split()) == 100
    truncated = await run(dig, f"@{HOST}", "-p", port, "+ignore", "big.testns.svc.cluster.local")
    assert " tc" in truncated.split("flags:")[1].split(";")[0]
    assert (
        len(
            (
                await run(kdig, f"@{HOST}", "-p", port, "+short", "+tcp", "big.testns.svc.cluster.local")
            ).split()
        )
        == 100
    )


async def test_truncation_over_udp_and_the_full_answer_over_tcp(server: DNSServer) -> None:
    udp = await query(server, "big.testns.svc.cluster.local.", use_edns=False)
    assert udp.flags & dns.flags.TC
    tcp = await query(server, "big.testns.svc.cluster.local.", tcp=True)
    assert len(tcp.answer[0]) == 100 and not tcp.flags & dns.flags.TC


async def test_several_queries_on_one_tcp_connection(server: DNSServer) -> None:
    reader, writer = await asyncio.open_connection(HOST, server.bound[0][1])
    try:
        queries = [
            dns.message.make_query(f"{name}.testns.svc.cluster.local.", "A")
            for name in ("svc1", "nope", "svc1")
        ]
        writer.write(b"".join(struct.pack("!H", len(w)) + w for w in (q.to_wire() for q in queries)))
        await writer.drain()
        replies = {}
        async with asyncio.timeout(5):
            for _ in queries:
                (length,) = struct.unpack("!H", await reader.readexactly(2))
                reply = dns.message.from_wire(await reader.readexactly(length))
                replies[reply.id] = reply.rcode()
        assert replies == {
            q.id: (dns.rcode.NXDOMAIN if "nope" in q.question[0].name.to_text() else 0) for q in queries
        }
    finally:
        writer.close()


async def test_tcp_messages_longer_than_the_bound_close_the_connection(server: DNSServer) -> None:
    reader, writer = await asyncio.open_connection(HOST, server.bound[0][1])
    writer.write(struct.pack("!H", 60000) + b"x" * 100)
    await writer.drain()
    async with asyncio.timeout(5):
        assert await reader.read() == b""
    writer.close()
    assert server.oversized == 1


async def test_idle_and_trickling_tcp_clients_are_closed_and_udp_keeps_answering(server: DNSServer) -> None:
    port = server.bound[0][1]
    connections = [await asyncio.open_connection(HOST, port) for _ in range(40)]
    # Half trickle a partial message byte by byte, half say nothing.
    for _, writer in connections[:20]:
        writer.write(b"\x00")
    for _ in range(20):
        reply = await query(server, "svc1.testns.svc.cluster.local.")
        assert reply.answer
    async with asyncio.timeout(5):
        for reader, writer in connections:
            assert await reader.read() == b""  # closed by the server after the idle timeout
            writer.close()
    assert server.idle_closed == 40


async def test_connections_beyond_the_limit_are_refused(server: DNSServer) -> None:
    port = server.bound[0][1]
    held = [await asyncio.open_connection(HOST, port) for _ in range(50)]
    extra_reader, extra_writer = await asyncio.open_connection(HOST, port)
    async with asyncio.timeout(5):
        assert await extra_reader.read() == b""
    extra_writer.close()
    assert server.rejected_connections >= 1
    assert (await query(server, "svc1.testns.svc.cluster.local.")).answer
    for _, writer in held:
        writer.close()


async def test_garbage_datagrams_do_not_stop_the_server(server: DNSServer) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for packet in (
            b"",
            b"\x00",
            b"\xff" * 11,
            b"\x12\x34\x81\x00" + b"\x00" * 8,
            b"\x00" * 4096,
            bytes(range(256)) * 40,
        ):
            sock.sendto(packet, (HOST, server.bound[0][1]))
    finally:
        sock.close()
    assert (await query(server, "svc1.testns.svc.cluster.local.")).answer


async def test_a_query_forwarded_back_to_us_is_refused_not_amplified() -> None:
    metrics = DNSMetrics()
    port = free_port(HOST)
    forwarder = Forwarder([Upstream(HOST, port)], metrics=metrics, attempt_timeout=1.0, timeout=2.0)
    handler = Handler(
        rules=Rules(options=KubernetesOptions(), backend=backend()), metrics=metrics, forwarder=forwarder
    )
    listener = DNSServer(handler.serve, addresses=[HOST], port=port)
    await listener.start()
    try:
        reply = await dns.asyncquery.udp(
            dns.message.make_query("www.example.test.", "A"), HOST, port=port, timeout=5
        )
        assert reply.rcode() == dns.rcode.REFUSED
        assert metrics.forward_requests == {f"{HOST}:{port}": 1}, "one trip round the loop, not a storm"
    finally:
        await listener.stop()
        await forwarder.close()


async def test_binding_a_used_address_says_so() -> None:
    port = free_port(HOST)
    blocker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    blocker.bind((HOST, port))
    try:
        listener = DNSServer(lambda *a, **k: None, addresses=[HOST], port=port)
        with pytest.raises(ListenError, match=f"cannot listen on {HOST}:{port}/udp"):
            await listener.start()
    finally:
        blocker.close()


def test_server_labels() -> None:
    assert server_label("0.0.0.0", 53) == "dns://:53"
    assert server_label("127.0.0.1", 53) == "dns://127.0.0.1:53"
    assert server_label("::1", 53) == "dns://[::1]:53"


async def test_ipv6_listeners_count_as_family_2() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    metrics = DNSMetrics()
    handler = Handler(rules=Rules(options=KubernetesOptions(), backend=backend()), metrics=metrics)
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind(("::1", 0))
        except OSError:
            pytest.skip("::1 is not configured")
        port = probe.getsockname()[1]
    listener = DNSServer(handler.serve, addresses=["::1"], port=port)
    await listener.start()
    try:
        reply = await dns.asyncquery.udp(
            dns.message.make_query("svc1.testns.svc.cluster.local.", "A"), "::1", port=port, timeout=2
        )
        assert reply.answer
        assert [key[2] for key in metrics.queries] == ["2"]
        assert listener.labels == [f"dns://[::1]:{port}"]
    finally:
        await listener.stop()
