"""Benchmark: coredns_lite against dnsmasq (the anchor), with dnsperf, in the same run.

Both servers serve the same names on this machine, one after the other under the same dnsperf
settings: dnsmasq from a hosts file (``--local=/cluster.local/`` so it answers NXDOMAIN itself,
and forwarding ``example.test`` to a shared upstream dnsmasq with its cache on); coredns_lite
(``python -m addons.coredns_lite``, its own process) from an in-process API server holding the
same Services, forwarding ``example.test`` to the same upstream with ``cache 30``.

Cases (issue 4): cached cluster names (A for random ClusterIP Services, after a warm-up pass);
a headless Service with 10 endpoints; random non-existent names (NXDOMAIN); forwarded names
hitting the cache. For each: peak queries/s and mean latency (dnsperf, ``-c`` clients,
``-q`` outstanding), then the latency at half of that server's own peak (dnsperf ``-Q`` at half
the peak, ``-v``: one line per answer, so the percentiles are exact, not bucketed). Also:
coredns_lite's resident memory with ``--services`` Services synced, and how long a change
acknowledged by the API server takes to be answered (create, delete).

Latency on a small shared machine measures the machine as much as the server, so the bench
shows what the tail is made of:

- CPU placement (``--pin``, the default with two or more CPUs): dnsperf and the bench itself on
  CPU 0, every server on the others (``taskset``), so client and server do not queue behind
  each other;
- for every latency run: the rate dnsperf reached, p50/p90/p99/p99.9, a latency histogram, the
  share of the run's wall time in which some runnable task waited for a CPU (PSI,
  ``/proc/pressure/cpu`` "some") and the hypervisor's steal time (``/proc/stat``);
- coredns_lite's own time per query over the same run (its ``coredns_dns_request_duration_seconds``
  histogram: from the datagram read to the reply built), i.e. the part of the client's
  latency spent in the server's code; the rest is socket, scheduling and client time;
- the anchor's p99 at a low fixed rate (``--floor-qps``): what this machine's scheduling alone
  costs a C server that does next to nothing per query;
- each latency run is made ``--latency-runs`` times (3 by default): one run's p99 on a shared
  VM moves by several times from run to run, so the run with the median p99 is reported, with
  every run's p99 beside it;
- every latency run again with the server under test SCHED_FIFO (``--realtime``, the default;
  needs root): it then runs as soon as a query wakes it, ahead of other tenants' tasks, so the
  difference between the two runs is the time the server spent waiting for a CPU, not serving
  (dnsperf gets nice -20 in that run: first among ordinary tasks, and unable to starve them).
  dnsperf's per-answer lines go to a file, not a pipe, so reading them costs dnsperf nothing.

Prints a table with ``ratio = coredns_lite / dnsmasq`` and the issue's targets, then the
latency table, and the load average at the start and end.

    .venv/bin/python bench/dns.py [--services 10000] [--duration 10] [--clients 4] [--workers 1]

Needs dnsperf and dnsmasq (Debian packages ``dnsperf``, ``dnsmasq-base``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
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
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

from dnslib import DNSRecord
from prometheus_client.parser import text_string_to_metric_families

from addons.coredns_lite.metrics import DURATION_BUCKETS
from control.apiserver.server import serve as serve_apiserver
from control.client import Resource, RESTClient, load_kubeconfig
from control.lab import Layout, Settings, prepare, server_options

ROOT = Path(__file__).resolve().parent.parent
ANCHOR_HOST, OURS_HOST, UPSTREAM_HOST = "127.0.54.1", "127.0.54.2", "127.0.54.3"
NAMESPACES = Resource("", "v1", "namespaces", "Namespace", namespaced=False)
SERVICES = Resource("", "v1", "services", "Service")
SLICES = Resource("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice")
EXTERNAL = 100
NXDOMAIN = 3
REALTIME_PRIORITY = 10  # SCHED_FIFO priority of the servers in the real-time latency runs
CLIENT_NICE = -20  # dnsperf's nice value in those runs: first among ordinary tasks, never starving them
HISTOGRAM_MS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0)  # upper bounds of the latency histogram's buckets


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


def pinned(argv: list[str], cpus: str | None, *, nice: int = 0) -> list[str]:
    """``argv`` run on the CPUs ``cpus`` (a taskset list such as ``1`` or ``1-3``) at ``nice``."""
    if nice:
        argv = [tool("nice"), "-n", str(nice), *argv]
    return [tool("taskset"), "-c", cpus, *argv] if cpus else argv


@contextlib.asynccontextmanager
async def process(
    *argv: str, env: dict[str, str] | None = None, cpus: str | None = None
) -> AsyncIterator[asyncio.subprocess.Process]:
    proc = await asyncio.create_subprocess_exec(
        *pinned(list(argv), cpus), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
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


@dataclass(frozen=True, kw_only=True)
class DnsperfSettings:
    """How dnsperf drives a server: ``-c`` clients, ``-T`` threads, ``-q`` outstanding, its CPUs
    and its nice value."""

    clients: int
    threads: int
    outstanding: int
    cpus: str | None
    nice: int = 0

    def argv(self, host: str, port: int, queries: Path, *, duration: float) -> list[str]:
        return pinned(
            [
                tool("dnsperf"), "-s", host, "-p", str(port), "-d", str(queries), "-l", str(duration),
                "-c", str(self.clients), "-T", str(self.threads), "-q", str(self.outstanding), "-t", "2",
            ],
            self.cpus,
            nice=self.nice,
        )  # fmt: skip


async def dnsperf(
    host: str, port: int, queries: Path, *, duration: float, settings: DnsperfSettings
) -> Result:
    proc = await asyncio.create_subprocess_exec(
        *settings.argv(host, port, queries, duration=duration),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    out = (await proc.communicate())[0].decode()
    qps = re.search(r"Queries per second:\s+([\d.]+)", out)
    mean = re.search(r"Average Latency \(s\):\s+([\d.]+)", out)
    lost = re.search(r"Queries lost:\s+\d+ \(([\d.]+)%\)", out)
    if not (qps and mean and lost):
        raise BenchError(f"unexpected dnsperf output:\n{out}")
    return Result(float(qps.group(1)), float(mean.group(1)) * 1000, float(lost.group(1)))


@dataclass(frozen=True, kw_only=True)
class Machine:
    """Counters of how much this machine kept runnable tasks waiting: PSI and steal time."""

    cpu_wait_us: int  # /proc/pressure/cpu "some" total: µs in which some runnable task had no CPU
    steal: int  # /proc/stat: jiffies the hypervisor ran someone else
    jiffies: int  # /proc/stat: all jiffies, every CPU
    at: float

    @classmethod
    def now(cls) -> Machine:
        wait = 0
        with contextlib.suppress(OSError):
            some = Path("/proc/pressure/cpu").read_text().splitlines()[0]
            wait = int(some.rpartition("total=")[2])
        fields = [int(field) for field in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        return cls(cpu_wait_us=wait, steal=fields[7], jiffies=sum(fields), at=time.monotonic())

    def since(self, before: Machine) -> tuple[float, float]:
        """(% of wall time with a task waiting for a CPU, % of CPU time stolen) between the two."""
        wall_us = max((self.at - before.at) * 1e6, 1.0)
        jiffies = max(self.jiffies - before.jiffies, 1)
        return (
            100 * (self.cpu_wait_us - before.cpu_wait_us) / wall_us,
            100 * (self.steal - before.steal) / jiffies,
        )


@dataclass(frozen=True, kw_only=True)
class Latency:
    """One rate-limited run: what dnsperf measured per answer, and what the machine did meanwhile."""

    target_qps: float
    achieved_qps: float
    answered: int
    lost: int
    quantiles_ms: dict[str, float]  # p50, p90, p99, p99.9, max
    histogram: list[int]  # answers per HISTOGRAM_MS bucket, plus one for everything slower
    cpu_wait_pct: float
    steal_pct: float
    realtime: bool = False  # the server ran SCHED_FIFO
    server_p99_ms: str = ""  # coredns_lite's own p99 (its histogram's bucket bound), when scraped
    # With --latency-runs > 1: this is the run with the median p99; every run's p99, ascending.
    run_p99s_ms: tuple[float, ...] = ()

    @property
    def p99_ms(self) -> float:
        return self.quantiles_ms["p99"]


def latency_summary(latencies: list[float]) -> tuple[dict[str, float], list[int]]:
    """Exact quantiles (ms) and the HISTOGRAM_MS bucket counts of per-answer latencies (s)."""
    ordered = sorted(latencies)
    last = len(ordered) - 1

    def at(fraction: float) -> float:
        return ordered[min(last, int(fraction * len(ordered)))] * 1000

    quantiles = {
        "p50": at(0.5),
        "p90": at(0.9),
        "p99": at(0.99),
        "p99.9": at(0.999),
        "max": ordered[-1] * 1000,
    }
    histogram = [0] * (len(HISTOGRAM_MS) + 1)
    bounds = [bound / 1000 for bound in HISTOGRAM_MS]
    for value in ordered:
        histogram[next((i for i, bound in enumerate(bounds) if value <= bound), len(bounds))] += 1
    return quantiles, histogram


async def latency_at(
    host: str, port: int, queries: Path, *, qps: float, duration: float, settings: DnsperfSettings
) -> Latency:
    """dnsperf at ``qps`` (``-Q``) with one line per answer (``-v``): the latency distribution.

    The lines go to a file, read afterwards: a pipe read while dnsperf runs would put the bench
    on dnsperf's CPU, and a slow reader would block dnsperf's writes and inflate its latencies.
    """
    argv = settings.argv(host, port, queries, duration=duration)
    argv[argv.index("-t") : argv.index("-t")] = ["-Q", str(max(int(qps), 1)), "-v"]
    before = Machine.now()
    with tempfile.TemporaryFile() as output:
        proc = await asyncio.create_subprocess_exec(*argv, stdout=output, stderr=subprocess.DEVNULL)
        await proc.wait()
        cpu_wait, steal = Machine.now().since(before)
        output.seek(0)
        out = output.read().decode()
    # "> NOERROR name A 0.000123" per answer; "> T name A" for a timeout (no latency).
    latencies, lost = [], 0
    for line in out.splitlines():
        if line.startswith("> "):
            fields = line.split()
            if re.fullmatch(r"[\d.]+", fields[-1]):
                latencies.append(float(fields[-1]))
            else:
                lost += 1
    achieved = re.search(r"Queries per second:\s+([\d.]+)", out)
    if len(latencies) < 100 or achieved is None:
        raise BenchError(f"too few answers at {qps:.0f} qps: {len(latencies)}")
    quantiles, histogram = latency_summary(latencies)
    return Latency(
        target_qps=qps,
        achieved_qps=float(achieved.group(1)),
        answered=len(latencies),
        lost=lost,
        quantiles_ms=quantiles,
        histogram=histogram,
        cpu_wait_pct=cpu_wait,
        steal_pct=steal,
    )


def server_pids(pid: int) -> list[int]:
    """``pid`` and its children (coredns_lite's workers)."""
    pids = [pid]
    with contextlib.suppress(OSError):
        pids += [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return pids


@contextlib.contextmanager
def realtime(pids: list[int], *, enabled: bool) -> Iterator[None]:
    """Every thread of ``pids`` under SCHED_FIFO for the block (then SCHED_OTHER again).

    A real-time server runs as soon as a query wakes it, whatever else this machine runs, so its
    latency is its own and not the queue of other tenants' tasks in front of it. The kernel caps
    real-time tasks at 95% of a CPU (sched_rt_runtime_us), and a server at half of its peak
    uses about half of one. dnsperf stays an ordinary task: a real-time client that cannot keep
    up with ``-Q`` never sleeps and starves its own timer thread on a single CPU (it runs at
    ``CLIENT_NICE`` instead).
    """
    if not enabled:
        yield
        return
    tids = [int(tid.name) for pid in pids for tid in Path(f"/proc/{pid}/task").iterdir()]
    changed = []
    try:
        for tid in tids:
            try:
                os.sched_setscheduler(tid, os.SCHED_FIFO, os.sched_param(REALTIME_PRIORITY))
            except PermissionError as exc:
                raise BenchError(
                    "real-time servers need root or CAP_SYS_NICE (or pass --no-realtime)"
                ) from exc
            except ProcessLookupError:
                continue
            changed.append(tid)
        yield
    finally:
        for tid in changed:
            with contextlib.suppress(ProcessLookupError):
                os.sched_setscheduler(tid, os.SCHED_OTHER, os.sched_param(0))


def server_durations(metrics_url: str) -> list[float]:
    """coredns_lite's cumulative request-duration histogram (every label set summed), by bucket."""
    with urllib.request.urlopen(metrics_url, timeout=5) as response:
        text = response.read().decode()
    buckets: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name == "coredns_dns_request_duration_seconds":
            for sample in family.samples:
                if sample.name.endswith("_bucket"):
                    bound = float(sample.labels["le"])
                    buckets[bound] = buckets.get(bound, 0.0) + sample.value
    return [buckets[bound] for bound in sorted(buckets)]


def server_p99(before: list[float], after: list[float], *, bounds: list[float]) -> str:
    """The histogram bucket holding the 99th percentile of the requests between two scrapes."""
    counts = [a - b for a, b in zip(after, before, strict=True)]
    if not counts or counts[-1] <= 0:
        return "n/a"
    for bound, cumulative in zip(bounds, counts, strict=True):
        if cumulative >= 0.99 * counts[-1]:
            return f"<={bound * 1000:g}" if bound != float("inf") else "slower"
    return "n/a"


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


def cpu_plan(pin: bool) -> tuple[str | None, str | None]:
    """(dnsperf's CPUs, the servers' CPUs) as taskset lists; (None, None) when not pinning."""
    cpus = sorted(os.sched_getaffinity(0))
    if not pin or len(cpus) < 2:
        return None, None
    rest = cpus[1:]
    return str(cpus[0]), ",".join(str(cpu) for cpu in rest)


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


async def measure(
    label: str,
    *,
    host: str,
    port: int,
    path: Path,
    pids: list[int],
    args: argparse.Namespace,
    peak_settings: DnsperfSettings,
    latency_settings: DnsperfSettings,
    metrics_url: str | None,
) -> tuple[Result, list[Latency]]:
    """Peak throughput, then the latency at half of it: the server as an ordinary task, then (with
    ``--realtime``) as a real-time one; with the server's own histogram when it has one."""
    await dnsperf(host, port, path, duration=1, settings=peak_settings)  # warm-up
    peak = await dnsperf(host, port, path, duration=args.duration, settings=peak_settings)
    if peak.qps <= 0:
        raise BenchError(f"{label} answered nothing for {path.name} ({peak.lost:.0f}% lost)")
    latencies = []
    for realtime_run in (False, True) if args.realtime else (False,):
        before = server_durations(metrics_url) if metrics_url else []
        settings = (
            dataclasses.replace(latency_settings, nice=CLIENT_NICE) if realtime_run else latency_settings
        )
        runs = []
        with realtime(pids, enabled=realtime_run):
            for _ in range(args.latency_runs):
                runs.append(
                    await latency_at(
                        host, port, path, qps=peak.qps / 2, duration=args.latency_duration, settings=settings
                    )
                )
        runs.sort(key=lambda run: run.p99_ms)
        latency = dataclasses.replace(
            runs[len(runs) // 2], realtime=realtime_run, run_p99s_ms=tuple(run.p99_ms for run in runs)
        )
        if metrics_url:
            after = server_durations(metrics_url)
            bounds = [*DURATION_BUCKETS, float("inf")]
            latency = dataclasses.replace(latency, server_p99_ms=server_p99(before, after, bounds=bounds))
        latencies.append(latency)
    return peak, latencies


async def main(args: argparse.Namespace) -> int:
    tool("dnsperf")
    client_cpus, server_cpus = cpu_plan(args.pin)
    if client_cpus is not None:
        os.sched_setaffinity(0, {int(client_cpus)})  # the bench (and its API server) beside dnsperf
    peak_settings = DnsperfSettings(
        clients=args.clients, threads=1, outstanding=args.outstanding, cpus=client_cpus
    )
    latency_settings = DnsperfSettings(
        clients=args.latency_clients,
        threads=1,
        outstanding=args.latency_outstanding,
        cpus=client_cpus,
    )
    load_before = load_average()
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
            upstream_port, anchor_port, ours_port, metrics_port = (
                free_port(UPSTREAM_HOST),
                free_port(ANCHOR_HOST),
                free_port(OURS_HOST),
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
    prometheus {OURS_HOST}:{metrics_port}
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
                process(*upstream, cpus=server_cpus),
                process(*anchor, cpus=server_cpus) as anchor_process,
                process(
                    *ours_argv, env={**os.environ, "COREDNS_LITE_LOG_LEVEL": "warning"}, cpus=server_cpus
                ) as ours,
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
                floor: Latency | None = None
                for case, lines in files.items():
                    path = data / f"{len(rows)}.queries"
                    path.write_text("\n".join(lines) + "\n")
                    measured = {}
                    for label, host, port, pids, metrics_url in (
                        ("dnsmasq", ANCHOR_HOST, anchor_port, [anchor_process.pid], None),
                        (
                            "coredns_lite",
                            OURS_HOST,
                            ours_port,
                            server_pids(ours.pid),
                            f"http://{OURS_HOST}:{metrics_port}/metrics",
                        ),
                    ):
                        peak, latencies = await measure(
                            label,
                            host=host,
                            port=port,
                            path=path,
                            pids=pids,
                            args=args,
                            peak_settings=peak_settings,
                            latency_settings=latency_settings,
                            metrics_url=metrics_url,
                        )
                        measured[label] = (peak, latencies)
                        shown = ", ".join(
                            f"{latency.p99_ms:.3f} ms {'real-time' if latency.realtime else 'shared'}"
                            for latency in latencies
                        )
                        print(
                            f"{case} / {label}: {peak.qps:.0f} qps, p99 at half load {shown}", file=sys.stderr
                        )
                    if floor is None and args.floor_qps > 0:
                        floor = await latency_at(
                            ANCHOR_HOST,
                            anchor_port,
                            path,
                            qps=args.floor_qps,
                            duration=args.latency_duration,
                            settings=latency_settings,
                        )
                    rows.append((case, measured))
                memory = children_rss_mib(ours.pid)
                created, deleted = await change_latency(kubeconfig, ours_port, rounds=args.change_rounds)

    report(
        args,
        rows=rows,
        floor=floor,
        memory=memory,
        created=created,
        deleted=deleted,
        placement=(client_cpus, server_cpus),
        load=(load_before, load_average()),
    )
    return 0


def report(
    args: argparse.Namespace,
    *,
    rows: list[tuple[str, dict[str, tuple[Result, list[Latency]]]]],
    floor: Latency | None,
    memory: float,
    created: list[float],
    deleted: list[float],
    placement: tuple[str | None, str | None],
    load: tuple[str, str],
) -> None:
    client_cpus, server_cpus = placement
    where = (
        f"dnsperf on CPU {client_cpus}, servers on CPU {server_cpus}"
        if client_cpus is not None
        else "no CPU pinning"
    )
    print()
    print(f"DNS benchmark: {args.services} Services, dnsperf -c {args.clients} -T 1 -q {args.outstanding}, "
          f"{args.duration:g} s per run, coredns_lite --workers {args.workers}; anchor: dnsmasq, same run; "
          f"{where}; {os.cpu_count()} CPUs, load average {load[0]} at start, {load[1]} at end")  # fmt: skip
    header = (
        f"{'case':26} {'dnsmasq qps':>12} {'ours qps':>10} {'ratio':>6} {'mean ms (d/o)':>15} "
        f"{'p99@50% ms (d/o)':>18} {'p99@50% rt (d/o)':>18} {'lost % (d/o)':>13}"
    )
    print(header)
    print("-" * len(header))
    targets = {"cached cluster names": 1.0, "NXDOMAIN (random names)": 0.5}
    for case, measured in rows:
        (anchor_peak, anchor_latencies), (our_peak, our_latencies) = (
            measured["dnsmasq"],
            measured["coredns_lite"],
        )
        ratio = our_peak.qps / anchor_peak.qps
        target = f"  (target >= {targets[case]:.1f}x)" if case in targets else ""
        p99s = [
            f"{anchor.p99_ms:8.3f}/{ours.p99_ms:<9.3f}"
            for anchor, ours in zip(anchor_latencies, our_latencies, strict=True)
        ]
        print(
            f"{case:26} {anchor_peak.qps:12.0f} {our_peak.qps:10.0f} {ratio:5.2f}x "
            f"{anchor_peak.mean_ms:7.3f}/{our_peak.mean_ms:<7.3f} {' '.join(p99s):37} "
            f"{anchor_peak.lost:6.2f}/{our_peak.lost:<6.2f}{target}"
        )  # fmt: skip
    print(f"coredns_lite memory with {args.services} Services: {memory:.0f} MiB RSS (target <= 200 MiB)")
    print(
        f"change -> answer (API ack to first correct answer, {len(created)} rounds): create median "
        f"{statistics.median(created) * 1000:.1f} ms max {max(created) * 1000:.1f} ms; delete median "
        f"{statistics.median(deleted) * 1000:.1f} ms max {max(deleted) * 1000:.1f} ms (target < 100 ms)"
    )
    print()
    print(
        f"Latency at half of each server's own peak (dnsperf -c {args.latency_clients} -T 1 "
        f"-q {args.latency_outstanding} -Q <rate> -v, {args.latency_duration:g} s; target p99 <= 1 ms).\n"
        f"Each line is the median run (by p99) of {args.latency_runs}; 'p99 of runs' lists every run's p99.\n"
        "shared: the server is an ordinary task among this machine's others; rt: the same server\n"
        f"SCHED_FIFO {REALTIME_PRIORITY} for the run, dnsperf nice {CLIENT_NICE}. cpu wait: share of the run in\n"
        "which some runnable task waited for a CPU (PSI); steal: CPU time the hypervisor gave elsewhere;\n"
        "server p99: coredns_lite's own time per query (its request-duration histogram)."
    )
    buckets = [f"<={bound:g}" for bound in HISTOGRAM_MS] + [f">{HISTOGRAM_MS[-1]:g}"]
    header = (
        f"{'case / server / scheduling':48} {'rate':>7} {'reached':>7} {'p50':>6} {'p90':>6} {'p99':>6} {'p99.9':>7} "
        f"{'lost':>5} {'cpu wait':>8} {'steal':>5} {'server p99':>10} {'p99 of runs':>20}  "
        f"histogram ms: {' '.join(buckets)}"
    )
    print(header)
    print("-" * len(header))
    lines = [
        (f"{case} / {label} / {'rt' if latency.realtime else 'shared'}", latency)
        for case, measured in rows
        for label, (_, latencies) in measured.items()
        for latency in latencies
    ]
    if floor is not None:
        lines.append((f"{rows[0][0]} / dnsmasq / shared / {args.floor_qps:g} qps", floor))
    for name, latency in lines:
        q = latency.quantiles_ms
        shares = " ".join(f"{100 * count / latency.answered:.1f}%" for count in latency.histogram)
        runs = "/".join(f"{p99:.2f}" for p99 in latency.run_p99s_ms) or "-"
        print(
            f"{name:48} {latency.target_qps:7.0f} {latency.achieved_qps:7.0f} {q['p50']:6.3f} {q['p90']:6.3f} "
            f"{q['p99']:6.3f} {q['p99.9']:7.3f} {latency.lost:5d} {latency.cpu_wait_pct:7.0f}% "
            f"{latency.steal_pct:4.1f}% {latency.server_p99_ms or '-':>10} {runs:>20}  {shares}"
        )
    print()
    for label in ("dnsmasq", "coredns_lite"):
        runs = [latency for _, measured in rows for latency in measured[label][1]]
        verdicts = []
        for realtime_run in sorted({latency.realtime for latency in runs}):
            chosen = [latency for latency in runs if latency.realtime == realtime_run]
            met = sum(latency.p99_ms <= 1.0 for latency in chosen)
            verdicts.append(f"{'rt' if realtime_run else 'shared'} {met}/{len(chosen)} cases")
        print(f"p99 <= 1 ms at half of peak, {label}: {', '.join(verdicts)}")
    if floor is not None:
        print(
            f"the anchor at {args.floor_qps:g} qps: p99 {floor.p99_ms:.3f} ms "
            f"(cpu wait {floor.cpu_wait_pct:.0f}%, steal {floor.steal_pct:.1f}%): this machine's floor"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--services", type=int, default=10000)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per peak run")
    parser.add_argument("--clients", type=int, default=4, help="dnsperf -c for the peak runs")
    parser.add_argument("--outstanding", type=int, default=100, help="dnsperf -q for the peak runs")
    parser.add_argument("--latency-clients", type=int, default=1, help="dnsperf -c for the latency runs")
    parser.add_argument(
        "--latency-outstanding", type=int, default=100, help="dnsperf -q for the latency runs"
    )
    parser.add_argument("--latency-duration", type=float, default=5.0, help="seconds per latency run")
    parser.add_argument(
        "--latency-runs",
        type=int,
        default=3,
        help="latency runs per server and scheduling; the run with the median p99 is reported",
    )
    parser.add_argument(
        "--floor-qps", type=float, default=1000.0, help="the anchor's low-rate latency run (0: none)"
    )
    parser.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="dnsperf on CPU 0, the servers on the other CPUs (default; needs two CPUs)",
    )
    parser.add_argument(
        "--realtime",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also measure the latency with the server SCHED_FIFO (default; needs root or CAP_SYS_NICE)",
    )
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--change-rounds", type=int, default=20)
    try:
        sys.exit(asyncio.run(main(parser.parse_args())))
    except BenchError as exc:
        print(f"bench/dns.py: {exc}", file=sys.stderr)
        sys.exit(1)
