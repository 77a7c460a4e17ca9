"""Benchmark: coredns_lite against dnsmasq (the anchor), with dnsperf, in the same run.

Both servers serve the same names on this machine, one after the other under the same dnsperf
settings: dnsmasq from a hosts file (``--local=/cluster.local/`` so it answers NXDOMAIN itself,
and forwarding ``example.test`` to a shared upstream dnsmasq with its cache on); coredns_lite
(``python -m addons.coredns_lite``, its own process) from an in-process API server holding the
same Services, forwarding ``example.test`` to the same upstream with ``cache 30``.

Cases (issue 4): cached cluster names (A for random ClusterIP Services, after a warm-up pass);
a headless Service with 10 endpoints; random non-existent names (NXDOMAIN); forwarded names
hitting the cache. For each: peak queries/s and mean latency (dnsperf, ``-c`` clients,
``-q`` outstanding), then p99 latency at half of that server's own peak (dnsperf ``-Q`` with
per-query output). Also: coredns_lite's resident memory with ``--services`` Services synced, and
how long a change acknowledged by the API server takes to be answered (create, delete).

Prints a table with ``ratio = coredns_lite / dnsmasq`` and the issue's targets.

    .venv/bin/python bench/dns.py [--services 10000] [--duration 10] [--clients 4] [--workers 1]

Needs dnsperf and dnsmasq (Debian packages ``dnsperf``, ``dnsmasq-base``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from dnslib import DNSRecord

from control.apiserver.server import serve as serve_apiserver
from control.client import Resource, RESTClient, load_kubeconfig
from control.lab import Layout, Settings, prepare, server_options

ROOT = Path(__file__).resolve().parent.parent
ANCHOR_HOST, OURS_HOST, UPSTREAM_HOST = "127.0.54.1", "127.0.54.2", "127.0.54.3"
NAMESPACES = Resource("", "v1", "namespaces", "Namespace", namespaced=False)
SERVICES = Resource("", "v1", "services", "Service")
SLICES = Resource("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice")
EXTERNAL = 100


class BenchError(Exception):
    """A tool is missing or a server did not come up."""


def tool(name: str) -> str:
    path = shutil.which(name) or (f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None)
    if path is None:
        raise BenchError(
            f"{name} is not installed (Debian package {'dnsmasq-base' if name == 'dnsmasq' else name})"
        )
    return path


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind((host, 0))
        return udp.getsockname()[1]


NXDOMAIN = 3


class _Reply(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.reply: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if not self.reply.done():
            self.reply.set_result(data)


async def ask(host: str, port: int, name: str) -> DNSRecord | None:
    """One A query over UDP (with dnslib: this file is dns.py, which hides dnspython from a script)."""
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(_Reply, remote_addr=(host, port))
    try:
        transport.sendto(DNSRecord.question(name, "A").pack())
        return DNSRecord.parse(await asyncio.wait_for(protocol.reply, 0.5))
    except (TimeoutError, OSError):
        return None
    finally:
        transport.close()


async def wait_for_answer(host: str, port: int, name: str, *, within: float = 120.0) -> float:
    """Ask ``name`` until it has an answer; the seconds it took."""
    started = time.monotonic()
    async with asyncio.timeout(within):
        while True:
            reply = await ask(host, port, name)
            if reply is not None and reply.rr:
                return time.monotonic() - started
            await asyncio.sleep(0.001)


async def wait_for_rcode(host: str, port: int, name: str, rcode: int, *, within: float = 30.0) -> float:
    started = time.monotonic()
    async with asyncio.timeout(within):
        while True:
            reply = await ask(host, port, name)
            if reply is not None and reply.header.rcode == rcode:
                return time.monotonic() - started
            await asyncio.sleep(0.001)


@contextlib.asynccontextmanager
async def apiserver(data: Path) -> AsyncIterator[Path]:
    layout = Layout.resolve(data / "lab")
    settings = Settings(api_port=free_port("127.0.0.1"))
    prepare(layout, settings)
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(
        serve_apiserver(server_options(layout, settings), stop=stop, on_ready=ready.set)
    )
    async with asyncio.timeout(60):
        await ready.wait()
    try:
        yield layout.kubeconfig
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 60)


@contextlib.asynccontextmanager
async def process(*argv: str, env: dict[str, str] | None = None) -> AsyncIterator[asyncio.subprocess.Process]:
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
    )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
                await proc.wait()


def dnsmasq_argv(*, host: str, port: int, hosts: Path | None, extra: list[str]) -> list[str]:
    argv = [
        tool("dnsmasq"),
        "--keep-in-foreground",
        "--log-facility=-",
        "--no-resolv",
        "--no-hosts",
        "--no-poll",
        f"--listen-address={host}",
        "--bind-interfaces",
        f"--port={port}",
        "--cache-size=10000",
        "--dns-forward-max=10000",
        "--user=root",
        "--pid-file=",
        *extra,
    ]
    if hosts is not None:
        argv.append(f"--addn-hosts={hosts}")
    return argv


async def populate(kubeconfig: Path, *, services: int) -> dict[str, list[str]]:
    """Create the bench namespace, the Services and the headless Service's slice; name -> addresses."""
    names: dict[str, list[str]] = {}
    async with RESTClient(load_kubeconfig(kubeconfig)) as client:
        await client.create(NAMESPACES, {"metadata": {"name": "bench"}})

        async def create(index: int) -> None:
            body = {
                "metadata": {"name": f"svc-{index}", "namespace": "bench"},
                "spec": {"ports": [{"name": "http", "port": 80, "protocol": "TCP"}]},
            }
            created = await client.create(SERVICES, body)
            names[f"svc-{index}.bench.svc.cluster.local"] = [created["spec"]["clusterIP"]]

        for start in range(0, services, 100):
            await asyncio.gather(*(create(i) for i in range(start, min(start + 100, services))))
        await client.create(
            SERVICES,
            {
                "metadata": {"name": "hl", "namespace": "bench"},
                "spec": {"clusterIP": "None", "ports": [{"name": "http", "port": 80}]},
            },
        )
        endpoints = [f"127.244.9.{i}" for i in range(1, 11)]
        await client.create(
            SLICES,
            {
                "metadata": {
                    "name": "hl-1",
                    "namespace": "bench",
                    "labels": {"kubernetes.io/service-name": "hl"},
                },
                "addressType": "IPv4",
                "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
                "endpoints": [{"addresses": [ip], "conditions": {"ready": True}} for ip in endpoints],
            },
        )
        names["hl.bench.svc.cluster.local"] = endpoints
    return names


@dataclass
class Result:
    qps: float
    mean_ms: float
    lost: float


async def dnsperf(
    host: str, port: int, queries: Path, *, duration: float, clients: int, outstanding: int
) -> Result:
    proc = await asyncio.create_subprocess_exec(
        tool("dnsperf"), "-s", host, "-p", str(port), "-d", str(queries), "-l", str(duration),
        "-c", str(clients), "-q", str(outstanding), "-t", "2",
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    out = (await proc.communicate())[0].decode()
    qps = re.search(r"Queries per second:\s+([\d.]+)", out)
    mean = re.search(r"Average Latency \(s\):\s+([\d.]+)", out)
    lost = re.search(r"Queries lost:\s+\d+ \(([\d.]+)%\)", out)
    if not (qps and mean and lost):
        raise BenchError(f"unexpected dnsperf output:\n{out}")
    return Result(float(qps.group(1)), float(mean.group(1)) * 1000, float(lost.group(1)))


async def p99_at(host: str, port: int, queries: Path, *, qps: float, duration: float, clients: int) -> float:
    proc = await asyncio.create_subprocess_exec(
        tool("dnsperf"), "-s", host, "-p", str(port), "-d", str(queries), "-l", str(duration),
        "-c", str(clients), "-T", "1", "-Q", str(max(int(qps), 1)), "-v", "-t", "2",
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    out = (await proc.communicate())[0].decode()
    # "> NOERROR name A 0.000123" per answer; "> T name A" for a timeout (no latency).
    latencies = [
        float(fields[-1])
        for line in out.splitlines()
        if line.startswith("> ") and (fields := line.split()) and re.fullmatch(r"[\d.]+", fields[-1])
    ]
    if len(latencies) < 100:
        raise BenchError(f"too few answers at {qps:.0f} qps: {len(latencies)}")
    return statistics.quantiles(latencies, n=100)[98] * 1000


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def children_rss_mib(pid: int) -> float:
    """RSS of ``pid`` and its children (the workers, with --workers > 1)."""
    total = rss_mib(pid)
    with contextlib.suppress(OSError):
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            total += rss_mib(int(child))
    return total


async def change_latency(kubeconfig: Path, port: int, *, rounds: int) -> tuple[list[float], list[float]]:
    created, deleted = [], []
    async with RESTClient(load_kubeconfig(kubeconfig)) as client:
        for i in range(rounds):
            name = f"change-{i}"
            fqdn = f"{name}.bench.svc.cluster.local."
            await client.create(
                SERVICES,
                {"metadata": {"name": name, "namespace": "bench"}, "spec": {"ports": [{"port": 80}]}},
            )
            created.append(await wait_for_answer(OURS_HOST, port, fqdn))
            await client.delete(SERVICES, name, namespace="bench")
            deleted.append(await wait_for_rcode(OURS_HOST, port, fqdn, NXDOMAIN))
    return created, deleted


async def main(args: argparse.Namespace) -> int:
    tool("dnsperf")
    with tempfile.TemporaryDirectory(prefix="bench-dns-") as temp:
        data = Path(temp)
        async with apiserver(data) as kubeconfig:
            started = time.monotonic()
            names = await populate(kubeconfig, services=args.services)
            print(f"created {args.services} Services in {time.monotonic() - started:.1f} s", file=sys.stderr)

            upstream_hosts = data / "upstream.hosts"
            upstream_hosts.write_text(
                "".join(f"192.0.2.{i % 250 + 1} ext-{i}.example.test\n" for i in range(EXTERNAL))
            )
            anchor_hosts = data / "anchor.hosts"
            anchor_hosts.write_text("".join(f"{ip} {name}\n" for name, ips in names.items() for ip in ips))
            upstream_port, anchor_port, ours_port = (
                free_port(UPSTREAM_HOST),
                free_port(ANCHOR_HOST),
                free_port(OURS_HOST),
            )
            corefile = data / "Corefile"
            corefile.write_text(
                f""".:{ours_port} {{
    bind {OURS_HOST}
    kubernetes cluster.local {{
        kubeconfig {kubeconfig}
        startup_timeout 120s
    }}
    forward . {UPSTREAM_HOST}:{upstream_port}
    cache 30
}}
"""
            )
            upstream = dnsmasq_argv(
                host=UPSTREAM_HOST,
                port=upstream_port,
                hosts=upstream_hosts,
                extra=["--local=/example.test/", "--local-ttl=60"],
            )
            anchor = dnsmasq_argv(
                host=ANCHOR_HOST,
                port=anchor_port,
                hosts=anchor_hosts,
                extra=[
                    "--local=/cluster.local/",
                    "--local-ttl=5",
                    f"--server=/example.test/{UPSTREAM_HOST}#{upstream_port}",
                ],
            )
            ours_argv = [
                sys.executable,
                "-m",
                "addons.coredns_lite",
                "--conf",
                str(corefile),
                "--workers",
                str(args.workers),
            ]
            async with (
                process(*upstream),
                process(*anchor),
                process(*ours_argv, env={**os.environ, "COREDNS_LITE_LOG_LEVEL": "warning"}) as ours,
            ):
                last = f"svc-{args.services - 1}.bench.svc.cluster.local."
                synced = await wait_for_answer(OURS_HOST, ours_port, last, within=300)
                await wait_for_answer(ANCHOR_HOST, anchor_port, last)
                print(f"coredns_lite answered the last Service {synced:.1f} s after start", file=sys.stderr)

                rng = random.Random(7)
                cluster = [n for n in names if n.startswith("svc-")]
                files = {
                    "cached cluster names": [f"{rng.choice(cluster)} A" for _ in range(5000)],
                    "headless, 10 endpoints": ["hl.bench.svc.cluster.local A"],
                    "NXDOMAIN (random names)": [
                        f"nx-{rng.getrandbits(48):x}.bench.svc.cluster.local A" for _ in range(50000)
                    ],
                    "forwarded, cache hits": [f"ext-{i}.example.test A" for i in range(EXTERNAL)],
                }
                rows = []
                for case, lines in files.items():
                    path = data / f"{len(rows)}.queries"
                    path.write_text("\n".join(lines) + "\n")
                    measured = {}
                    for label, host, port in (
                        ("dnsmasq", ANCHOR_HOST, anchor_port),
                        ("coredns_lite", OURS_HOST, ours_port),
                    ):
                        await dnsperf(
                            host, port, path, duration=1, clients=args.clients, outstanding=args.outstanding
                        )  # warm-up
                        peak = await dnsperf(
                            host,
                            port,
                            path,
                            duration=args.duration,
                            clients=args.clients,
                            outstanding=args.outstanding,
                        )
                        if peak.qps <= 0:
                            raise BenchError(f"{label} answered nothing for {case!r} ({peak.lost:.0f}% lost)")
                        p99 = await p99_at(
                            host,
                            port,
                            path,
                            qps=peak.qps / 2,
                            duration=min(args.duration, 5),
                            clients=args.clients,
                        )
                        measured[label] = (peak, p99)
                        print(
                            f"{case} / {label}: {peak.qps:.0f} qps, p99 at half load {p99:.3f} ms",
                            file=sys.stderr,
                        )
                    rows.append((case, measured))
                memory = children_rss_mib(ours.pid)
                created, deleted = await change_latency(kubeconfig, ours_port, rounds=args.change_rounds)

    print()
    print(f"DNS benchmark: {args.services} Services, dnsperf -c {args.clients} -q {args.outstanding}, "
          f"{args.duration:g} s per run, coredns_lite --workers {args.workers}; anchor: dnsmasq, same run")  # fmt: skip
    header = f"{'case':26} {'dnsmasq qps':>12} {'ours qps':>10} {'ratio':>6} {'mean ms (d/o)':>15} {'p99@50% ms (d/o)':>18} {'lost % (d/o)':>13}"
    print(header)
    print("-" * len(header))
    targets = {"cached cluster names": 1.0, "NXDOMAIN (random names)": 0.5}
    for case, measured in rows:
        (anchor_peak, anchor_p99), (our_peak, our_p99) = measured["dnsmasq"], measured["coredns_lite"]
        ratio = our_peak.qps / anchor_peak.qps
        target = f"  (target >= {targets[case]:.1f}x)" if case in targets else ""
        print(
            f"{case:26} {anchor_peak.qps:12.0f} {our_peak.qps:10.0f} {ratio:5.2f}x "
            f"{anchor_peak.mean_ms:7.3f}/{our_peak.mean_ms:<7.3f} {anchor_p99:8.3f}/{our_p99:<9.3f} "
            f"{anchor_peak.lost:6.2f}/{our_peak.lost:<6.2f}{target}"
        )
    print(f"coredns_lite memory with {args.services} Services: {memory:.0f} MiB RSS (target <= 200 MiB)")
    print(
        f"change -> answer (API ack to first correct answer, {len(created)} rounds): create median "
        f"{statistics.median(created) * 1000:.1f} ms max {max(created) * 1000:.1f} ms; delete median "
        f"{statistics.median(deleted) * 1000:.1f} ms max {max(deleted) * 1000:.1f} ms (target < 100 ms)"
    )
    print("p99 target: <= 1 ms at half of peak load")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--services", type=int, default=10000)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--outstanding", type=int, default=100)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--change-rounds", type=int, default=20)
    try:
        sys.exit(asyncio.run(main(parser.parse_args())))
    except BenchError as exc:
        print(f"bench/dns.py: {exc}", file=sys.stderr)
        sys.exit(1)
