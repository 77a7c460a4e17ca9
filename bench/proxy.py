"""Benchmark: the service proxy's TCP data path against its anchor, a direct connection.

Three processes, as in a lab: a backend (an echo server and a sink, on uvloop), the proxy (a
:class:`~control.proxy.proxier.Proxier` on uvloop with two static routes — no API server, this
measures forwarding only), and the client (this process). Each measurement runs once straight
to the backend (the anchor) and once through the proxy's ClusterIP, and the table prints
``ratio = proxied / direct`` (for times: how many times slower; for rates: the fraction kept).

- round trip: one 64-byte request and its echo on an open connection, sequentially (µs, p50);
- connections: connect, one 64-byte exchange, close — sequentially (connections/s);
- concurrent: 32 connections each doing 64-byte exchanges for 2 s (exchanges/s);
- throughput: 256 MiB sent one way into a sink (MiB/s).

    .venv/bin/python -m bench.proxy [--round-trips N] [--connections N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

MESSAGE = b"x" * 64
CHUNK = 256 * 1024


# --- the backend process --------------------------------------------------------------------------


class _Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)  # type: ignore[attr-defined]


class _Sink(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.total = 0

    def data_received(self, data: bytes) -> None:
        self.total += len(data)

    def eof_received(self) -> bool:
        self.transport.write(f"{self.total}\n".encode())  # type: ignore[attr-defined]
        return False


async def _serve_backend(ip: str) -> None:
    loop = asyncio.get_running_loop()
    echo = await loop.create_server(_Echo, ip, 0)
    sink = await loop.create_server(_Sink, ip, 0)
    print(echo.sockets[0].getsockname()[1], sink.sockets[0].getsockname()[1], flush=True)
    await loop.run_in_executor(None, sys.stdin.read)


# --- the proxy process ----------------------------------------------------------------------------


async def _serve_proxy(
    node_ip: str, cluster_ip: str, backend_ip: str, echo_port: int, sink_port: int
) -> None:
    from control.proxy.proxier import Proxier
    from control.proxy.state import ListenerKey, PoolKey, Route

    proxier = Proxier(node_ip=node_ip)
    routes = {
        ListenerKey("TCP", cluster_ip, port): Route(
            service=f"bench/{name}",
            pool=PoolKey("bench/svc", name, "TCP", False),
            backends=((backend_ip, backend_port),),
            affinity_timeout=None,
        )
        for name, port, backend_port in (("echo", 80, echo_port), ("sink", 81, sink_port))
    }
    await proxier.apply("bench/svc", routes)
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    proxier.close()


# --- the client -----------------------------------------------------------------------------------


def round_trips(address: tuple[str, int], count: int) -> float:
    """Median microseconds for one 64-byte exchange on an open connection."""
    with socket.create_connection(address) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        samples = []
        for _ in range(count):
            started = time.perf_counter()
            sock.sendall(MESSAGE)
            received = 0
            while received < len(MESSAGE):
                received += len(sock.recv(65536))
            samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1e6


def connections(address: tuple[str, int], count: int) -> float:
    """New connections per second, each with one exchange, one after the other."""
    started = time.perf_counter()
    for _ in range(count):
        with socket.create_connection(address) as sock:
            sock.sendall(MESSAGE)
            received = 0
            while received < len(MESSAGE):
                received += len(sock.recv(65536))
    return count / (time.perf_counter() - started)


def concurrent(address: tuple[str, int], *, clients: int = 32, seconds: float = 2.0) -> float:
    """Exchanges per second over ``clients`` connections at once (uvloop client)."""

    async def one(deadline: float) -> int:
        reader, writer = await asyncio.open_connection(*address)
        done = 0
        while time.perf_counter() < deadline:
            writer.write(MESSAGE)
            await reader.readexactly(len(MESSAGE))
            done += 1
        writer.close()
        return done

    async def run() -> float:
        started = time.perf_counter()
        counts = await asyncio.gather(*(one(started + seconds) for _ in range(clients)))
        return sum(counts) / (time.perf_counter() - started)

    return _run_uvloop(run)


def throughput(address: tuple[str, int], total: int) -> float:
    """MiB/s sent into the sink (which confirms the byte count at the end)."""
    chunk = b"y" * CHUNK
    started = time.perf_counter()
    with socket.create_connection(address) as sock:
        for _ in range(total // CHUNK):
            sock.sendall(chunk)
        sock.shutdown(socket.SHUT_WR)
        confirmed = int(sock.makefile().readline())
    elapsed = time.perf_counter() - started
    assert confirmed == total, f"the sink got {confirmed} bytes of {total}"
    return total / elapsed / 2**20


def _run_uvloop(main: Callable[[], object]) -> float:
    try:
        import uvloop

        return uvloop.run(main())  # type: ignore[arg-type]
    except ImportError:
        return asyncio.run(main())  # type: ignore[arg-type]


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (from /proc; 10 ms resolution)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bench.proxy", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=os.getcwd(),
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--role", choices=["client", "backend", "proxy"], default="client", help=argparse.SUPPRESS
    )
    parser.add_argument("--args", nargs="*", default=[], help=argparse.SUPPRESS)
    parser.add_argument("--round-trips", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=3_000)
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if args.role == "backend":
        _run_uvloop(lambda: _serve_backend(*args.args))
        return
    if args.role == "proxy":
        node_ip, cluster_ip, backend_ip, echo_port, sink_port = args.args
        _run_uvloop(lambda: _serve_proxy(node_ip, cluster_ip, backend_ip, int(echo_port), int(sink_port)))
        return

    backend_ip = f"127.244.{random.randint(200, 250)}.{random.randint(1, 254)}"
    cluster_ip = f"127.97.{random.randint(0, 255)}.{random.randint(1, 254)}"
    node_ip = f"127.101.{random.randint(0, 255)}.{random.randint(1, 254)}"
    backend = _spawn("--role", "backend", "--args", backend_ip)
    proxy = None
    try:
        assert backend.stdout is not None
        echo_port, sink_port = backend.stdout.readline().split()
        proxy = _spawn("--role", "proxy", "--args", node_ip, cluster_ip, backend_ip, echo_port, sink_port)
        assert proxy.stdout is not None
        if proxy.stdout.readline().strip() != "ready":
            raise SystemExit("the proxy did not start")
        direct_echo, direct_sink = (backend_ip, int(echo_port)), (backend_ip, int(sink_port))
        proxied_echo, proxied_sink = (cluster_ip, 80), (cluster_ip, 81)
        rows = [
            ("round trip, µs p50", round_trips, args.round_trips, direct_echo, proxied_echo, False),
            ("connections/s, sequential", connections, args.connections, direct_echo, proxied_echo, True),
            ("exchanges/s, 32 concurrent", lambda a, _n: concurrent(a), 0, direct_echo, proxied_echo, True),
            (f"MiB/s, {args.mib} MiB one way", throughput, args.mib * 2**20, direct_sink, proxied_sink, True),
        ]
        print(
            f"best of {args.repeat} alternating runs; proxy CPU = the proxy process's CPU time per operation"
        )
        print(f"{'measure':30} {'direct (anchor)':>16} {'via proxy':>10} {'ratio':>7} {'proxy CPU':>12}")
        for name, measure, amount, direct, proxied, higher_is_better in rows:
            best = max if higher_is_better else min
            anchors, ours, cpu = [], [], []
            for _ in range(args.repeat):
                anchors.append(measure(direct, amount))
                before, started = _cpu_seconds(proxy.pid), time.perf_counter()
                ours.append(measure(proxied, amount))
                cpu.append((_cpu_seconds(proxy.pid) - before) / (time.perf_counter() - started))
            anchor, result = best(anchors), best(ours)
            # CPU per operation: busy fraction of the proxy divided by the operation rate.
            rate = result if higher_is_better else 1e6 / result
            per_op = statistics.median(cpu) / rate
            unit = "µs/MiB" if "MiB" in name else "µs/op"
            print(
                f"{name:30} {anchor:16.1f} {result:10.1f} {result / anchor:7.2f} {per_op * 1e6:7.1f} {unit}"
            )
    finally:
        for process in (proxy, backend):
            if process is not None:
                assert process.stdin is not None
                process.stdin.close()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


if __name__ == "__main__":
    main()
