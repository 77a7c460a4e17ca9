"""Upstream resolvers and DNS tools for the coredns_lite tests.

- :func:`run_dnsmasq` starts the real dnsmasq (Debian's ``dnsmasq``) on a loopback address and
  free port, serving a hosts file and answering NXDOMAIN for the rest of its local domain; the
  process is stopped when the context exits.
- :class:`FakeUpstream` is a FAKE resolver for faults dnsmasq cannot be made to produce on cue:
  truncating every UDP answer, never answering, or answering with the wrong ID. It is named a
  fake on purpose.
- :func:`require` fails a test with a clear message when a binary (dig, kdig, dnsmasq) is missing;
  :func:`run` runs one (dig, kdig) to completion.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import struct
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import dns.asyncquery
import dns.exception
import dns.message
import dns.rcode
import dns.rrset
import pytest

INSTALL_HINT = {
    "dig": "bind9-dnsutils",
    "kdig": "knot-dnsutils",
    "dnsmasq": "dnsmasq-base",
    "dnsperf": "dnsperf",
}


def require(binary: str) -> str:
    path = shutil.which(binary) or (f"/usr/sbin/{binary}" if Path(f"/usr/sbin/{binary}").exists() else None)
    if path is None:
        pytest.fail(
            f"{binary} is not installed: install the Debian package {INSTALL_HINT.get(binary, binary)} "
            "(scripts/setup does)",
            pytrace=False,
        )
    return path


async def run(*argv: str) -> str:
    """Run a tool (dig, kdig) to completion; its stdout (the test fails on a non-zero exit)."""
    process = await asyncio.create_subprocess_exec(*argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await process.communicate()
    assert process.returncode == 0, f"{argv}: {err.decode()}"
    return out.decode()


def free_port(host: str) -> int:
    """A port free for both UDP and TCP on ``host``."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((host, 0))
            port = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((host, port))
                except OSError:
                    continue
                return port
    raise RuntimeError(f"no free port on {host}")


async def wait_for_dns(host: str, port: int, name: str = "probe.invalid.", *, within: float = 10.0) -> None:
    """Wait until something at host:port answers DNS queries (any rcode)."""
    async with asyncio.timeout(within):
        while True:
            try:
                await dns.asyncquery.udp(dns.message.make_query(name, "A"), host, port=port, timeout=0.2)
                return
            except (dns.exception.Timeout, OSError):
                await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def run_dnsmasq(
    tmp_path: Path, *, host: str, hosts: dict[str, str], domain: str = "example.test", ttl: int = 60
) -> AsyncIterator[int]:
    """dnsmasq on host:<free port> answering ``hosts`` (name -> IPv4); yields the port."""
    binary = require("dnsmasq")
    hosts_file = tmp_path / "dnsmasq.hosts"
    hosts_file.write_text("".join(f"{ip} {name}\n" for name, ip in hosts.items()))
    port = free_port(host)
    process = await asyncio.create_subprocess_exec(
        binary,
        "--keep-in-foreground",
        "--log-facility=-",
        "--no-resolv",
        "--no-hosts",
        "--no-poll",
        f"--addn-hosts={hosts_file}",
        f"--listen-address={host}",
        "--bind-interfaces",
        f"--port={port}",
        f"--local=/{domain}/",
        f"--local-ttl={ttl}",
        "--neg-ttl=30",
        "--cache-size=10000",
        "--dns-forward-max=5000",
        "--user=root",
        "--pid-file=",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        await wait_for_dns(host, port, f"probe.{domain}.")
        yield port
    finally:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()


Responder = Callable[[dns.message.Message, bool], dns.message.Message | None]


class FakeUpstream:
    """A FAKE upstream resolver (UDP + TCP on host:port) answering with ``responder(query, tcp)``.

    ``responder`` returns the reply, or None to stay silent. ``queries`` records what arrived.
    """

    def __init__(self, host: str, responder: Responder) -> None:
        self.host = host
        self.port = free_port(host)
        self.responder = responder
        self.queries: list[tuple[dns.message.Message, bool]] = []
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.base_events.Server | None = None

    async def __aenter__(self) -> FakeUpstream:
        loop = asyncio.get_running_loop()
        upstream = self

        class Datagrams(asyncio.DatagramProtocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.transport = transport

            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                reply = upstream._answer(data, tcp=False)
                if reply is not None:
                    self.transport.sendto(reply, addr)  # type: ignore[attr-defined]

        self._udp, _ = await loop.create_datagram_endpoint(Datagrams, local_addr=(self.host, self.port))

        async def stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while True:
                    (length,) = struct.unpack("!H", await reader.readexactly(2))
                    reply = upstream._answer(await reader.readexactly(length), tcp=True)
                    if reply is not None:
                        writer.write(struct.pack("!H", len(reply)) + reply)
                        await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        self._tcp = await asyncio.start_server(stream, self.host, self.port)
        return self

    def _answer(self, data: bytes, *, tcp: bool) -> bytes | None:
        query = dns.message.from_wire(data)
        self.queries.append((query, tcp))
        reply = self.responder(query, tcp)
        return None if reply is None else reply.to_wire(max_size=65535)

    async def __aexit__(self, *exc_info: object) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            await self._tcp.wait_closed()


def answer_with(*records: str, rcode: int = dns.rcode.NOERROR, authority: tuple[str, ...] = ()) -> Responder:
    """A responder answering every query with ``records`` (zone-file lines) and ``authority``."""

    def respond(query: dns.message.Message, tcp: bool) -> dns.message.Message:
        reply = dns.message.make_response(query)
        reply.set_rcode(rcode)
        for line in records:
            name, ttl, _cls, rtype, rdata = line.split(None, 4)
            reply.answer.append(dns.rrset.from_text(name, int(ttl), "IN", rtype, rdata))
        for line in authority:
            name, ttl, _cls, rtype, rdata = line.split(None, 4)
            reply.authority.append(dns.rrset.from_text(name, int(ttl), "IN", rtype, rdata))
        return reply

    return respond
