"""Benchmark: pod start-up latency, scale-out to ready endpoints, and lab start-up time.

Runs a real 3-node lab (`kubelab up --nodes 3` in a temporary data dir) and measures:

- pod start-up latency (create -> Running and Ready, as the watch sees the Ready
  condition), p50 and p99, in the two phases of clusterloader2's density test, the test that
  verifies the anchor, the Kubernetes SLO (p99 <= 5 s, excluding image pulls):
  - saturation: 100 pods created at once. Their latency is mostly queueing behind each
    other on two CPUs, so it is reported with the burst's throughput (pods/s);
  - latency: then, with the saturation pods still running, 100 more pods created one by one
    at 5 per second (clusterloader2's ``Uniform5qps`` tuning set). The SLO is verified on
    this phase, and so is the target, p99 <= 1 s.
  The pods are created over 16 keep-alive connections opened beforehand, as a real client
  would (``CLIENT_CONNECTIONS``).
- time from `kubectl scale --replicas=50` to 50 ready endpoints in the Service's
  EndpointSlices;
- time for `kubelab up --nodes 3` to return with every node Ready.

    .venv/bin/python -m bench.pods [--pods N] [--latency-pods N] [--scale N]

The lab's data directory is a temporary directory (``$TMPDIR``, else /tmp). Pod start-up
creates a few dozen files, directories and symlinks per pod (sandbox, volumes, log links,
cgroups), so a file system slow at metadata operations shows in the numbers: run with
``TMPDIR`` on the disk a lab would really use (its default data directory is ``./.kubelab``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import orjson

from bench.apiserver import free_port, percentile

SLO_P99_SECONDS = 5.0
# clusterloader2's density test creates its latency pods one by one at this rate.
LATENCY_PODS_PER_SECOND = 5.0
# The load generator creates the pods over this many keep-alive connections, opened before
# the burst. A real client does not open one TLS connection per request (client-go sends
# everything over one HTTP/2 connection; kubelab's client keeps 16): with one connection per
# pod, the 100 server-side TLS handshakes of the load generator itself took about a sixth
# of the API server's CPU during the burst.
CLIENT_CONNECTIONS = 16
KUBELAB = Path(sys.executable).parent / "kubelab"
KUBECTL = "/usr/bin/kubectl"


def pod_body(name: str, *, group: str) -> bytes:
    return orjson.dumps(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "labels": {"bench": "startup", "group": group}},
            "spec": {
                "terminationGracePeriodSeconds": 0,
                "containers": [{"name": "main", "image": "busybox", "command": ["sleep", "3600"]}],
            },
        }
    )


def is_ready(pod: dict) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


async def startup_latencies(
    session: aiohttp.ClientSession, url: str, *, group: str, pods: int, per_second: float | None
) -> list[float]:
    """Create `pods` pods labelled group=`group`, all at once (`per_second` None) or one by one
    at `per_second`, and return each one's create -> Ready latency as a watch sees it."""
    path = f"{url}/api/v1/namespaces/default/pods"
    async with session.get(path, params={"limit": "1"}) as response:
        rv = (await response.json())["metadata"]["resourceVersion"]
    created: dict[str, float] = {}
    ready_at: dict[str, float] = {}
    all_ready = asyncio.Event()

    async def watch() -> None:
        params = {"watch": "true", "resourceVersion": rv, "labelSelector": f"group={group}"}
        async with session.get(path, params=params) as response:
            async for line in response.content:
                now = time.perf_counter()
                pod = orjson.loads(line)["object"]
                name = pod["metadata"]["name"]
                if name not in ready_at and is_ready(pod):
                    ready_at[name] = now
                    if len(ready_at) == pods:
                        all_ready.set()
                        return

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(0.2)

    async def create(index: int) -> None:
        name = f"{group}-{index:03d}"
        created[name] = time.perf_counter()
        body = pod_body(name, group=group)
        async with session.post(path, data=body, headers={"Content-Type": "application/json"}) as r:
            if r.status != 201:
                raise RuntimeError(await r.text())

    if per_second is None:
        await asyncio.gather(*(create(i) for i in range(pods)))
    else:
        started = time.perf_counter()
        creates = []
        for index in range(pods):
            await asyncio.sleep(max(0.0, started + index / per_second - time.perf_counter()))
            creates.append(asyncio.create_task(create(index)))
        await asyncio.gather(*creates)
    await asyncio.wait_for(all_ready.wait(), 300)
    await watcher
    return [ready_at[name] - created[name] for name in created]


def kubectl(kubeconfig: Path, *args: str, input: str | None = None) -> str:
    return subprocess.run(
        [KUBECTL, "--kubeconfig", str(kubeconfig), *args],
        input=input,
        text=True,
        capture_output=True,
        check=True,
    ).stdout


def scale_to_endpoints(kubeconfig: Path, *, replicas: int) -> float:
    kubectl(
        kubeconfig, "create", "deployment", "scaled", "--image=busybox", "--replicas=1", "--", "sleep", "3600"
    )
    kubectl(kubeconfig, "expose", "deployment", "scaled", "--port=80")
    kubectl(kubeconfig, "rollout", "status", "deployment/scaled", "--timeout=120s")
    started = time.perf_counter()
    kubectl(kubeconfig, "scale", "deployment/scaled", f"--replicas={replicas}")
    while True:
        slices = json.loads(
            kubectl(
                kubeconfig, "get", "endpointslices", "-l", "kubernetes.io/service-name=scaled", "-o", "json"
            )
        )["items"]
        ready = sum(
            1 for s in slices for e in s.get("endpoints") or [] if (e.get("conditions") or {}).get("ready")
        )
        if ready >= replicas:
            return time.perf_counter() - started
        if time.perf_counter() - started > 300:
            raise RuntimeError(f"only {ready} of {replicas} endpoints ready after 300 s")
        time.sleep(0.05)


async def measure_startup(
    *, data_dir: Path, port: int, pods: int, latency_pods: int
) -> tuple[list[float], float, list[float]]:
    """Run the saturation phase, then the latency phase (see the module docstring); return the
    saturation latencies, the saturation burst's duration and the latency-phase latencies."""
    pki = data_dir / "pki"
    context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    url = f"https://127.0.0.1:{port}"
    connector = aiohttp.TCPConnector(ssl=context, limit=CLIENT_CONNECTIONS)
    async with aiohttp.ClientSession(connector=connector) as session:
        await warm_connections(session, url)
        started = time.perf_counter()
        saturation = await startup_latencies(session, url, group="saturation", pods=pods, per_second=None)
        burst_seconds = time.perf_counter() - started
        latency = await startup_latencies(
            session, url, group="latency", pods=latency_pods, per_second=LATENCY_PODS_PER_SECOND
        )
        path = f"{url}/api/v1/namespaces/default/pods"
        params = {"labelSelector": "bench=startup", "gracePeriodSeconds": "0"}
        async with session.delete(path, params=params) as response:
            await response.read()
        return saturation, burst_seconds, latency


async def warm_connections(session: aiohttp.ClientSession, url: str) -> None:
    """Open the load generator's connections before the clock starts (see CLIENT_CONNECTIONS)."""

    async def ping() -> None:
        async with session.get(f"{url}/version") as response:
            await response.read()

    await asyncio.gather(*(ping() for _ in range(CLIENT_CONNECTIONS)))


def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="kubelab-bench-pods-") as tmp:
        data_dir = Path(tmp) / "lab"
        port = free_port()
        started = time.perf_counter()
        subprocess.run(
            [str(KUBELAB), "up", "--data-dir", str(data_dir), "--api-port", str(port), "--nodes", "3"],
            check=True,
            capture_output=True,
        )
        up_seconds = time.perf_counter() - started
        try:
            saturation, burst_seconds, latency = asyncio.run(
                measure_startup(data_dir=data_dir, port=port, pods=args.pods, latency_pods=args.latency_pods)
            )
            scale_seconds = scale_to_endpoints(data_dir / "kubeconfig", replicas=args.scale)
        finally:
            subprocess.run(
                [str(KUBELAB), "down", "--data-dir", str(data_dir)], capture_output=True, check=False
            )
    latency_p99 = percentile(latency, 0.99)
    rows = [
        (f"saturation: {args.pods} pods at once, p50", f"{percentile(saturation, 0.50):.3f} s", ""),
        (f"saturation: {args.pods} pods at once, p99", f"{percentile(saturation, 0.99):.3f} s", ""),
        (
            f"saturation: {args.pods} pods at once, throughput",
            f"{args.pods / burst_seconds:.1f}/s",
            f"all Ready {burst_seconds:.2f} s after the first create",
        ),
        (
            f"latency: {args.latency_pods} pods at {LATENCY_PODS_PER_SECOND:g}/s, p50",
            f"{percentile(latency, 0.50):.3f} s",
            f"with the {args.pods} saturation pods running",
        ),
        (
            f"latency: {args.latency_pods} pods at {LATENCY_PODS_PER_SECOND:g}/s, p99",
            f"{latency_p99:.3f} s",
            f"ratio to the SLO (5 s) = {latency_p99 / SLO_P99_SECONDS:.2f}; target p99 <= 1 s",
        ),
        (
            f"kubectl scale --replicas={args.scale} -> {args.scale} ready endpoints",
            f"{scale_seconds:.2f} s",
            "",
        ),
        ("kubelab up --nodes 3 -> all nodes Ready", f"{up_seconds:.2f} s", ""),
    ]
    width = max(len(row[0]) for row in rows)
    print(f"{'measure':<{width}}  {'value':>9}  note")
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>9}  {note}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--pods", type=int, default=100, help="saturation pods, created at once (default 100)"
    )
    parser.add_argument(
        "--latency-pods",
        type=int,
        default=100,
        help=f"latency pods, created at {LATENCY_PODS_PER_SECOND:g}/s after them (default 100)",
    )
    parser.add_argument("--scale", type=int, default=50, help="replicas to scale to (default 50)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("note: not root: pods run without private mount namespaces", file=sys.stderr)
    run(args)


if __name__ == "__main__":
    main()
