"""Benchmark: the API server's write rate, big lists and watch fan-out, each with its anchor.

Starts a real ``kubelab server --components apiserver`` (the API server alone: SQLite
store, TLS, the admin client certificate) as its own process in a temporary data dir, drives it over HTTPS with aiohttp from this process,
and prints one table (the load generator runs on uvloop, as the server does):

- creates/s with 1 client and with 32 concurrent clients (ConfigMaps, 1 KiB of data)
  against the anchor: raw durable SQLite commits (WAL, synchronous=FULL, one INSERT +
  COMMIT each; ``bench/store.py``'s anchor) measured in the same run. Target >= 0.4.
  This machine's speed drifts by up to 2x within minutes, so the 1-client rate and the
  anchor are measured in alternating rounds (``--rounds``), each round's ratio taken
  against the anchor of that round, and the median round reported, every round listed.
  The 1-client rate is measured with two load generators: aiohttp in this process (its
  own cost per request is a large part of a round trip), and ``wrk`` (C; one thread, one
  connection, ServiceAccount token, ``generateName``) when installed, which is how the
  server alone is seen.
- where a 1-client create's time goes, so its ratio can be read: the round trip of
  ``GET /version`` over the same connections (the floor every request pays on this machine:
  TLS, HTTP and the load generator), the server's own handling of a create (its
  ``apiserver_request_duration_seconds``, commit included), one anchor commit, and the
  ratio a server that spent nothing beyond the floor and the commit would reach.
- LIST of 10,000 pods as JSON and as a Table (what ``kubectl get pods`` asks for): the
  median of several requests. Target <= 0.5 s.
- watch fan-out: 500 watchers on one namespace; one write; the delay from sending the
  write to each watcher reading its event. Target p99 <= 50 ms.

    .venv/bin/python -m bench.apiserver [--creates N] [--rounds N] [--pods N] [--watchers N]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import re
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import orjson

from bench.store import anchor
from control.lab import Layout, Settings, prepare

TABLE_ACCEPT = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """A `kubelab server` subprocess and an admin HTTPS session to it."""

    def __init__(self, data_dir: Path) -> None:
        self.layout = Layout.resolve(data_dir)
        self.settings = Settings(api_port=free_port())
        self.pki = prepare(self.layout, self.settings)
        self.url = self.settings.server_url
        self.process: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> aiohttp.ClientSession:
        kubelab = Path(sys.executable).parent / "kubelab"
        self.process = await asyncio.create_subprocess_exec(
            str(kubelab),
            "server",
            "--data-dir",
            str(self.layout.data_dir),
            "--api-port",
            str(self.settings.api_port),
            "--log-level",
            "warning",
            "--components",
            "apiserver",
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        files = self.pki.files
        context = ssl.create_default_context(cafile=str(files.ca_cert))
        context.load_cert_chain(str(files.admin_cert), str(files.admin_key))
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context, limit=0))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                async with self.session.get(self.url + "/readyz") as response:
                    if response.status == 200:
                        return self.session
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
        raise RuntimeError("kubelab server did not become ready in 60 s")

    async def __aexit__(self, *exc: object) -> None:
        await self.session.close()
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 20)
            except TimeoutError:
                os.killpg(self.process.pid, signal.SIGKILL)
                await self.process.wait()


async def create_rate(
    session: aiohttp.ClientSession, url: str, *, count: int, clients: int, tag: str
) -> float:
    path = f"{url}/api/v1/namespaces/default/configmaps"
    data = {"v": "x" * 1024}

    async def client(first: int) -> None:
        for index in range(first, count, clients):
            body = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": f"{tag}-{index}"},
                "data": data,
            }
            async with session.post(
                path, data=orjson.dumps(body), headers={"Content-Type": "application/json"}
            ) as response:
                if response.status != 201:
                    raise RuntimeError(f"create answered {response.status}: {await response.text()}")

    started = time.perf_counter()
    await asyncio.gather(*(client(first) for first in range(clients)))
    return count / (time.perf_counter() - started)


WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"generateName":"wrk-"},"data":{"v":"%s"}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %s"
response = function(status, headers, body)
  if status ~= 201 then error("create answered " .. status .. ": " .. body) end
end
"""


async def service_account_token(session: aiohttp.ClientSession, url: str) -> str:
    """A token for a ServiceAccount bound to cluster-admin (wrk cannot present a client certificate)."""

    async def post(path: str, body: dict) -> dict:
        async with session.post(
            url + path, data=orjson.dumps(body), headers={"Content-Type": "application/json"}
        ) as response:
            text = await response.text()
            if response.status not in (200, 201):
                raise RuntimeError(f"POST {path} answered {response.status}: {text}")
            return orjson.loads(text)

    await post("/api/v1/namespaces/default/serviceaccounts", {"metadata": {"name": "bench-wrk"}})
    await post(
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        {
            "metadata": {"name": "bench-wrk"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "cluster-admin",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "bench-wrk", "namespace": "default"}],
        },
    )
    review = await post("/api/v1/namespaces/default/serviceaccounts/bench-wrk/token", {"spec": {}})
    return review["status"]["token"]


async def wrk_create_rate(url: str, script: Path, *, seconds: float) -> float:
    """Creates/s from wrk with one connection and one request in flight (one client)."""
    process = await asyncio.create_subprocess_exec(
        "wrk",
        "-t1",
        "-c1",
        f"-d{max(1, round(seconds))}s",
        "-s",
        str(script),
        f"{url}/api/v1/namespaces/default/configmaps",
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    out = (await process.communicate())[0].decode()
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if process.returncode != 0 or rate is None or "Non-2xx" in out or "error" in out.lower():
        raise RuntimeError(f"wrk failed:\n{out}")
    return float(rate.group(1))


@dataclasses.dataclass
class Round:
    anchor: float
    aiohttp: float
    wrk: float | None


async def one_client_rounds(
    session: aiohttp.ClientSession, url: str, directory: Path, *, rounds: int, creates: int
) -> list[Round]:
    """Alternating rounds of the anchor and the 1-client create rates, each round on its own."""
    script = None
    if shutil.which("wrk"):
        script = directory / "create.lua"
        script.write_text(WRK_SCRIPT % ("x" * 1024, await service_account_token(session, url)))
    measured = []
    for number in range(rounds):
        anchor_rate = anchor(directory / f"anchor-{number}.db", writes=creates, value=b"x" * 1024)
        ours = await create_rate(session, url, count=creates, clients=1, tag=f"one-{number}")
        by_wrk = None if script is None else await wrk_create_rate(url, script, seconds=creates / ours)
        measured.append(Round(anchor_rate, ours, by_wrk))
    return measured


async def round_trip_seconds(session: aiohttp.ClientSession, url: str, *, count: int) -> float:
    """Mean round trip of ``GET /version``: no store, no object, the least a request costs."""
    started = time.perf_counter()
    for _ in range(count):
        async with session.get(f"{url}/version") as response:
            await response.read()
    return (time.perf_counter() - started) / count


async def create_handling_seconds(session: aiohttp.ClientSession, url: str) -> tuple[float, float]:
    """Sum and count of the server's ``apiserver_request_duration_seconds`` for ConfigMap creates."""
    async with session.get(f"{url}/metrics") as response:
        text = await response.text()
    total = count = 0.0
    for line in text.splitlines():
        if 'verb="POST"' not in line or 'resource="configmaps"' not in line:
            continue
        if line.startswith("apiserver_request_duration_seconds_sum"):
            total += float(line.rsplit(" ", 1)[1])
        elif line.startswith("apiserver_request_duration_seconds_count"):
            count += float(line.rsplit(" ", 1)[1])
    return total, count


def pod(name: str) -> bytes:
    return orjson.dumps(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "labels": {"app": "bench", "shard": name[-1]}},
            "spec": {
                "containers": [
                    {
                        "name": "app",
                        "image": "nginx:1.25",
                        "ports": [{"containerPort": 80}],
                        "env": [{"name": "MODE", "value": "bench"}],
                    }
                ]
            },
        }
    )


async def list_seconds(
    session: aiohttp.ClientSession, url: str, *, pods: int, rounds: int
) -> tuple[float, float]:
    ns = "bench-list"
    ns_body = orjson.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    async with session.post(
        f"{url}/api/v1/namespaces", data=ns_body, headers={"Content-Type": "application/json"}
    ) as response:
        assert response.status == 201, await response.text()
    semaphore = asyncio.Semaphore(64)

    async def create(index: int) -> None:
        async with (
            semaphore,
            session.post(
                f"{url}/api/v1/namespaces/{ns}/pods",
                data=pod(f"pod-{index:05d}"),
                headers={"Content-Type": "application/json"},
            ) as response,
        ):
            if response.status != 201:
                raise RuntimeError(await response.text())

    await asyncio.gather(*(create(i) for i in range(pods)))

    async def timed(accept: str) -> float:
        samples = []
        for _ in range(rounds):
            started = time.perf_counter()
            async with session.get(
                f"{url}/api/v1/namespaces/{ns}/pods", headers={"Accept": accept}
            ) as response:
                body = await response.read()
            samples.append(time.perf_counter() - started)
            items = orjson.loads(body)
            assert len(items.get("items", items.get("rows", []))) == pods
        return statistics.median(samples)

    return await timed("application/json"), await timed(TABLE_ACCEPT)


async def watch_fanout(
    session: aiohttp.ClientSession, url: str, *, watchers: int, writes: int
) -> list[float]:
    """Delays from sending each write to each watcher reading it (one warm-up write first)."""
    ns_path = f"{url}/api/v1/namespaces/default/configmaps"
    async with session.get(ns_path, params={"limit": "1"}) as response:
        rv = (await response.json())["metadata"]["resourceVersion"]
    sent: dict[str, float] = {}
    delays: list[float] = []
    received = 0
    target = 0
    reached = asyncio.Event()
    connected = 0
    all_connected = asyncio.Event()
    finished = asyncio.Event()

    async def watcher() -> None:
        nonlocal connected, received
        params = {"watch": "true", "resourceVersion": rv}
        async with session.get(ns_path, params=params) as response:
            connected += 1
            if connected == watchers:
                all_connected.set()
            for _ in range(writes + 1):
                line = await response.content.readline()
                now = time.perf_counter()
                name = orjson.loads(line)["object"]["metadata"]["name"]
                if name != "fan-warmup":
                    delays.append(now - sent[name])
                received += 1
                if received >= target:
                    reached.set()
            await finished.wait()  # keep every stream open until all are measured

    async def write(name: str) -> None:
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}
        sent[name] = time.perf_counter()
        async with session.post(
            ns_path, data=orjson.dumps(body), headers={"Content-Type": "application/json"}
        ):
            pass

    tasks = [asyncio.create_task(watcher()) for _ in range(watchers)]
    await asyncio.wait_for(all_connected.wait(), 60)
    for index, name in enumerate(["fan-warmup"] + [f"fan-{i}" for i in range(writes)]):
        target = (index + 1) * watchers
        reached.clear()
        await write(name)
        await asyncio.wait_for(reached.wait(), 60)
    finished.set()
    await asyncio.gather(*tasks)
    return delays


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def median_round(rounds: list[Round], rate: Callable[[Round], float]) -> tuple[float, float]:
    """The round with the median ratio to its own anchor: (that ratio, that round's rate)."""
    ordered = sorted(rounds, key=lambda r: rate(r) / r.anchor)
    middle = ordered[len(ordered) // 2]
    return rate(middle) / middle.anchor, rate(middle)


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="kubelab-bench-apiserver-") as tmp:
        directory = Path(tmp)
        server = Server(directory / "lab")
        async with server as session:
            floor = await round_trip_seconds(session, server.url, count=args.creates)
            handled_before = await create_handling_seconds(session, server.url)
            rounds = await one_client_rounds(
                session, server.url, directory, rounds=args.rounds, creates=args.creates // args.rounds
            )
            handled_after = await create_handling_seconds(session, server.url)
            anchor_rate = statistics.median(r.anchor for r in rounds)
            many = await create_rate(session, server.url, count=args.creates, clients=32, tag="many")
            json_s, table_s = await list_seconds(session, server.url, pods=args.pods, rounds=5)
            delays = await watch_fanout(session, server.url, watchers=args.watchers, writes=args.writes)
    p50, p99 = percentile(delays, 0.50) * 1000, percentile(delays, 0.99) * 1000
    handling = (handled_after[0] - handled_before[0]) / max(1.0, handled_after[1] - handled_before[1])
    commit = 1 / anchor_rate
    ceiling = 1 / (floor + commit) / anchor_rate
    one_ratio, one = median_round(rounds, lambda r: r.aiohttp)
    rows = [
        (
            f"anchor: raw durable SQLite commits/s (median of {len(rounds)} rounds)",
            f"{anchor_rate:,.0f}",
            "",
            "",
        ),
        (
            "creates/s, 1 client (aiohttp), median round",
            f"{one:,.0f}",
            f"ratio = {one_ratio:.2f}",
            ">= 0.4",
        ),
    ]
    if all(r.wrk is not None for r in rounds):
        wrk_ratio, by_wrk = median_round(rounds, lambda r: r.wrk or 0.0)
        rows.append(
            (
                "creates/s, 1 client (wrk), median round",
                f"{by_wrk:,.0f}",
                f"ratio = {wrk_ratio:.2f}",
                ">= 0.4",
            )
        )
    else:
        rows.append(("creates/s, 1 client (wrk)", "not run", "install wrk", ""))
    rows += [
        ("  1 client (aiohttp): one create, round trip", f"{1e6 / one:,.0f} us", "", ""),
        ("  of which the server's handling (commit included)", f"{handling * 1e6:,.0f} us", "", ""),
        ("  floor: GET /version round trip", f"{floor * 1e6:,.0f} us", "", ""),
        ("  anchor: one durable commit", f"{commit * 1e6:,.0f} us", "", ""),
        ("  ceiling: floor + commit only", f"{1 / (floor + commit):,.0f}", f"ratio = {ceiling:.2f}", ""),
        ("creates/s, 32 clients", f"{many:,.0f}", f"ratio = {many / anchor_rate:.2f}", ">= 0.4"),
        (f"LIST {args.pods:,} pods, JSON (median)", f"{json_s:.3f} s", "", "<= 0.5 s"),
        (f"LIST {args.pods:,} pods, Table (median)", f"{table_s:.3f} s", "", "<= 0.5 s"),
        (f"watch fan-out to {args.watchers} watchers, p50", f"{p50:.1f} ms", "", ""),
        (f"watch fan-out to {args.watchers} watchers, p99", f"{p99:.1f} ms", "", "<= 50 ms"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'value':>12}  {'ratio':<14} target")
    for name, value, ratio, target in rows:
        print(f"{name:<{width}}  {value:>12}  {ratio:<14} {target}")
    print(
        f"\n1-client rounds ({args.creates // args.rounds} creates each; ratio = creates/s / that round's anchor):"
    )
    print(f"{'round':>5}  {'anchor/s':>9}  {'aiohttp/s':>9}  {'ratio':>6}  {'wrk/s':>9}  {'ratio':>6}")
    for number, r in enumerate(rounds, 1):
        wrk_cells = (
            f"{r.wrk:>9,.0f}  {r.wrk / r.anchor:>6.2f}" if r.wrk is not None else f"{'-':>9}  {'-':>6}"
        )
        print(
            f"{number:>5}  {r.anchor:>9,.0f}  {r.aiohttp:>9,.0f}  {r.aiohttp / r.anchor:>6.2f}  {wrk_cells}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--creates",
        type=int,
        default=1000,
        help="creates per write measurement; the 1-client ones are split over the rounds (default 1000)",
    )
    parser.add_argument(
        "--rounds", type=int, default=5, help="alternating anchor / 1-client rounds (default 5)"
    )
    parser.add_argument("--pods", type=int, default=10_000, help="pods in the big list (default 10000)")
    parser.add_argument("--watchers", type=int, default=500, help="concurrent watchers (default 500)")
    parser.add_argument(
        "--writes", type=int, default=20, help="writes observed by every watcher (default 20)"
    )
    parser.add_argument(
        "--no-uvloop", action="store_true", help="run the load generator on asyncio's own loop"
    )
    args = parser.parse_args()
    if args.no_uvloop:
        asyncio.run(run(args))
    else:
        import uvloop

        uvloop.run(run(args))


if __name__ == "__main__":
    main()
