"""coredns_lite against a real in-process API server, queried with dnspython, dig and kdig.

Objects are created with the REST client and the admin credentials (as the client's own
integration tests do); the add-on runs in this event loop (an :class:`Instance`, exactly what
``__main__`` runs) on a free port on 127.0.53.x, with its status endpoints on free ports too.
The EndpointSlice controller does not run here, so the tests write EndpointSlices themselves.
Changes are awaited as conditions (never with fixed sleeps); the latencies are printed, and
measured properly in bench/dns.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import dns.asyncquery
import dns.exception
import dns.message
import dns.rcode
import dns.reversename
import pytest
from prometheus_client.parser import text_string_to_metric_families

from addons.coredns_lite.instance import Instance
from addons.coredns_lite.setup import SetupError, parse_corefile
from control.apiserver.server import serve as serve_apiserver
from control.client import PatchType, Resource, RESTClient, load_kubeconfig
from control.lab import Layout, Settings, prepare, server_options
from tests.addons.coredns_lite.upstreams import free_port, require, run
from tests.control.apiserver.conftest import apiserver  # noqa: F401  (the shared fixture)

HOST = "127.0.53.2"
NAMESPACES = Resource("", "v1", "namespaces", "Namespace", namespaced=False)
SERVICES = Resource("", "v1", "services", "Service")
SLICES = Resource("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice")
PODS = Resource("", "v1", "pods", "Pod")

COREFILE = """.:{port} {{
    bind {host}
    health {host}:{health}
    ready {host}:{ready}
    prometheus {host}:{metrics}
    kubernetes cluster.local in-addr.arpa {{
        kubeconfig {kubeconfig}
        pods verified
        startup_timeout 30s
    }}
}}
"""


def service(name: str, *, headless: bool = False, external: str = "") -> dict:
    spec: dict = {"ports": [{"name": "http", "port": 80, "protocol": "TCP"}], "selector": {"app": name}}
    if headless:
        spec["clusterIP"] = "None"
    if external:
        spec = {"type": "ExternalName", "externalName": external}
    return {"metadata": {"name": name, "namespace": "dnstest"}, "spec": spec}


def endpoint_slice(
    service_name: str, addresses: list[tuple[str, str, bool]], *, name: str | None = None
) -> dict:
    return {
        "metadata": {
            "name": name or f"{service_name}-1",
            "namespace": "dnstest",
            "labels": {"kubernetes.io/service-name": service_name},
        },
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
        "endpoints": [
            {"addresses": [ip], "hostname": hostname, "conditions": {"ready": ready}}
            for ip, hostname, ready in addresses
        ],
    }


class DNS:
    """The running add-on and its client-side view."""

    def __init__(self, instance: Instance, config_text: str) -> None:
        self.instance = instance
        self.port = instance.server.bound[0][1]  # type: ignore[union-attr]
        self.config_text = config_text

    async def ask(self, name: str, rtype: str = "A", *, tcp: bool = False) -> dns.message.Message:
        query = dns.message.make_query(name, rtype)
        if tcp:
            return await dns.asyncquery.tcp(query, HOST, port=self.port, timeout=2)
        return await dns.asyncquery.udp(query, HOST, port=self.port, timeout=2)

    async def until(self, name: str, rtype: str, check, *, within: float = 30.0) -> float:
        """Ask until ``check(reply)`` holds; the seconds it took."""
        started = time.monotonic()
        async with asyncio.timeout(within):
            while True:
                try:
                    if check(await self.ask(name, rtype)):
                        return time.monotonic() - started
                except dns.exception.Timeout:
                    pass
                await asyncio.sleep(0.002)


def addresses(reply: dns.message.Message) -> list[str]:
    return sorted(r.to_text() for rrset in reply.answer for r in rrset if rrset.rdtype in (1, 28))


@contextlib.asynccontextmanager
async def running_dns(kubeconfig: Path) -> AsyncIterator[DNS]:
    text = COREFILE.format(
        port=free_port(HOST),
        host=HOST,
        health=free_port(HOST),
        ready=free_port(HOST),
        metrics=free_port(HOST),
        kubeconfig=kubeconfig,
    )
    instance = Instance(parse_corefile(text))
    await instance.start()
    try:
        yield DNS(instance, text)
    finally:
        await instance.stop()


@pytest.fixture
async def client(apiserver) -> AsyncIterator[RESTClient]:  # noqa: F811
    rest = RESTClient(load_kubeconfig(apiserver.data_dir / "kubeconfig"))
    await rest.create(NAMESPACES, {"metadata": {"name": "dnstest"}})
    yield rest
    await rest.close()


async def test_records_from_real_objects(apiserver, client: RESTClient) -> None:  # noqa: F811
    web = await client.create(SERVICES, service("web"))
    await client.create(SERVICES, service("db", headless=True))
    await client.create(SERVICES, service("ext", external="www.example.test"))
    await client.create(
        SLICES,
        endpoint_slice(
            "db",
            [("127.244.1.10", "db-0", True), ("127.244.1.11", "db-1", True), ("127.244.1.12", "db-2", False)],
        ),
    )
    cluster_ip = web["spec"]["clusterIP"]
    async with running_dns(apiserver.data_dir / "kubeconfig") as dns_server:
        assert addresses(await dns_server.ask("web.dnstest.svc.cluster.local.")) == [cluster_ip]
        assert addresses(await dns_server.ask("db.dnstest.svc.cluster.local.")) == [
            "127.244.1.10",
            "127.244.1.11",
        ]
        assert addresses(await dns_server.ask("db-1.db.dnstest.svc.cluster.local.", tcp=True)) == [
            "127.244.1.11"
        ]
        srv = await dns_server.ask("_http._tcp.db.dnstest.svc.cluster.local.", "SRV")
        assert sorted(r.to_text() for r in srv.answer[0]) == [
            "0 50 80 db-0.db.dnstest.svc.cluster.local.",
            "0 50 80 db-1.db.dnstest.svc.cluster.local.",
        ]
        ptr = await dns_server.ask(dns.reversename.from_address(cluster_ip).to_text(), "PTR")
        assert [r.to_text() for r in ptr.answer[0]] == ["web.dnstest.svc.cluster.local."]
        cname = await dns_server.ask("ext.dnstest.svc.cluster.local.", "CNAME")
        assert [r.to_text() for r in cname.answer[0]] == ["www.example.test."]
        nx = await dns_server.ask("nope.dnstest.svc.cluster.local.")
        assert nx.rcode() == dns.rcode.NXDOMAIN and nx.authority
        assert (await dns_server.ask("web.nons.svc.cluster.local.")).rcode() == dns.rcode.NXDOMAIN
        assert (await dns_server.ask("dnstest.svc.cluster.local.")).rcode() == dns.rcode.NOERROR

        port = str(dns_server.port)
        dig, kdig = require("dig"), require("kdig")
        assert (
            await run(dig, f"@{HOST}", "-p", port, "+short", "web.dnstest.svc.cluster.local")
        ).split() == [cluster_ip]
        assert sorted(
            (await run(kdig, f"@{HOST}", "-p", port, "+short", "db.dnstest.svc.cluster.local")).split()
        ) == [
            "127.244.1.10",
            "127.244.1.11",
        ]
        txt = await run(kdig, f"@{HOST}", "-p", port, "+short", "TXT", "dns-version.cluster.local")
        assert txt.strip() == '"1.1.0"'


async def test_changes_are_answered_as_soon_as_the_api_server_has_them(apiserver, client: RESTClient) -> None:  # noqa: F811
    await client.create(SERVICES, service("db", headless=True))
    await client.create(SLICES, endpoint_slice("db", [("127.244.1.10", "db-0", True)]))
    async with running_dns(apiserver.data_dir / "kubeconfig") as dns_server:
        assert addresses(await dns_server.ask("db.dnstest.svc.cluster.local.")) == ["127.244.1.10"]
        assert (await dns_server.ask("late.dnstest.svc.cluster.local.")).rcode() == dns.rcode.NXDOMAIN

        await client.create(SERVICES, service("late"))
        created = await dns_server.until("late.dnstest.svc.cluster.local.", "A", lambda r: bool(r.answer))

        current = await client.get(SLICES, "db-1", namespace="dnstest")
        scaled = endpoint_slice("db", [("127.244.1.10", "db-0", True), ("127.244.1.11", "db-1", True)])
        scaled["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        await client.replace(SLICES, scaled)
        grown = await dns_server.until("db.dnstest.svc.cluster.local.", "A", lambda r: len(addresses(r)) == 2)
        assert addresses(await dns_server.ask("db-1.db.dnstest.svc.cluster.local.")) == ["127.244.1.11"]

        await client.delete(SERVICES, "late", namespace="dnstest")
        deleted = await dns_server.until(
            "late.dnstest.svc.cluster.local.", "A", lambda r: r.rcode() == dns.rcode.NXDOMAIN
        )

        await client.create(
            PODS,
            {
                "metadata": {"name": "p", "namespace": "dnstest"},
                "spec": {"containers": [{"name": "c", "image": "kubelab"}]},
            },
        )
        await client.patch(
            PODS,
            "p",
            {"status": {"podIP": "127.244.1.50", "podIPs": [{"ip": "127.244.1.50"}]}},
            namespace="dnstest",
            subresource="status",
            patch_type=PatchType.MERGE,
        )
        await dns_server.until("127-244-1-50.dnstest.pod.cluster.local.", "A", lambda r: bool(r.answer))
        print(
            f"\nchange -> answer: create {created * 1000:.1f} ms, scale {grown * 1000:.1f} ms, delete {deleted * 1000:.1f} ms"
        )


async def test_probes_and_metrics(apiserver, client: RESTClient) -> None:  # noqa: F811
    await client.create(SERVICES, service("web"))
    async with running_dns(apiserver.data_dir / "kubeconfig") as dns_server:
        config = dns_server.instance.config
        await dns_server.ask("web.dnstest.svc.cluster.local.")
        await dns_server.ask("nope.dnstest.svc.cluster.local.", tcp=True)
        async with aiohttp.ClientSession() as http:
            assert config.health is not None and config.ready is not None and config.prometheus is not None
            async with http.get(f"http://{HOST}:{config.health.port}/health") as response:
                assert response.status == 200 and await response.text() == "OK"
            async with http.get(f"http://{HOST}:{config.ready.port}/ready") as response:
                assert response.status == 200
            async with http.get(f"http://{HOST}:{config.prometheus.port}/metrics") as response:
                text = await response.text()
        samples = {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

        def value(metric: str, **labels: str) -> float | None:
            return samples.get((metric, tuple(sorted(labels.items()))))

        base = {"server": f"dns://{HOST}:{dns_server.port}", "zone": ".", "view": ""}
        assert value("coredns_dns_requests_total", **base, proto="udp", family="1", type="A") == 1
        assert value("coredns_dns_requests_total", **base, proto="tcp", family="1", type="A") == 1
        assert value("coredns_dns_responses_total", **base, rcode="NXDOMAIN", plugin="kubernetes") == 1
        assert value("coredns_dns_responses_total", **base, rcode="NOERROR", plugin="kubernetes") == 1
        assert value("coredns_dns_request_duration_seconds_bucket", **base, type="A", le="+Inf") == 2
        assert (
            value("coredns_dns_request_duration_seconds_bucket", **base, type="A", le="0.00025") is not None
        )
        assert value("coredns_dns_request_size_bytes_count", **base, proto="udp") == 1
        assert value("coredns_dns_response_size_bytes_bucket", **base, proto="tcp", le="+Inf") == 1
        assert value("coredns_panics_total") == 0
        assert value("coredns_plugin_enabled", **base, name="kubernetes") == 1
        assert any(name == "coredns_build_info" for name, _ in samples)
        dns_server.instance.readiness.set("kubernetes", False)
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://{HOST}:{config.ready.port}/ready") as response,
        ):
            assert response.status == 503 and "kubernetes" in await response.text()


@contextlib.asynccontextmanager
async def apiserver_at(tmp_path: Path, port: int) -> AsyncIterator[Path]:
    """An API server on a fixed port over a data directory that survives restarts."""
    layout = Layout.resolve(tmp_path / "lab")
    settings = Settings(api_port=port)
    prepare(layout, settings)
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(
        serve_apiserver(server_options(layout, settings), stop=stop, on_ready=ready.set)
    )
    try:
        async with asyncio.timeout(30):
            await ready.wait()
        yield layout.kubeconfig
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=30)


async def test_an_api_server_restart_keeps_answers_and_resyncs(tmp_path: Path) -> None:
    port = free_port("127.0.0.1")
    async with apiserver_at(tmp_path, port) as kubeconfig:
        async with RESTClient(load_kubeconfig(kubeconfig)) as rest:
            await rest.create(NAMESPACES, {"metadata": {"name": "dnstest"}})
            await rest.create(SERVICES, service("web"))
        dns_context = running_dns(kubeconfig)
        dns_server = await dns_context.__aenter__()
    try:
        # The API server is down: cached answers keep coming, the process stays up.
        for _ in range(20):
            assert (await dns_server.ask("web.dnstest.svc.cluster.local.")).answer
        assert (await dns_server.ask("nope.dnstest.svc.cluster.local.")).rcode() == dns.rcode.NXDOMAIN
        async with apiserver_at(tmp_path, port) as kubeconfig:
            async with RESTClient(load_kubeconfig(kubeconfig)) as rest:
                await rest.create(SERVICES, service("after"))
                await rest.delete(SERVICES, "web", namespace="dnstest")
            await dns_server.until(
                "after.dnstest.svc.cluster.local.", "A", lambda r: bool(r.answer), within=60
            )
            await dns_server.until(
                "web.dnstest.svc.cluster.local.", "A", lambda r: r.rcode() == dns.rcode.NXDOMAIN, within=60
            )
    finally:
        await dns_context.__aexit__(None, None, None)


async def test_a_reload_that_changes_what_is_watched_swaps_the_backend(apiserver, client: RESTClient) -> None:  # noqa: F811
    await client.create(SERVICES, service("web"))
    tagged = service("tagged")
    tagged["metadata"]["labels"] = {"dns": "yes"}
    await client.create(SERVICES, tagged)
    async with running_dns(apiserver.data_dir / "kubeconfig") as dns_server:
        instance = dns_server.instance
        assert (await dns_server.ask("web.dnstest.svc.cluster.local.")).answer
        old_backend = instance.backend
        await instance.reload(
            dns_server.config_text.replace("pods verified", "pods verified\n        labels dns=yes").encode()
        )
        assert instance.backend is not old_backend and instance.readiness.is_ready()
        assert (await dns_server.ask("web.dnstest.svc.cluster.local.")).rcode() == dns.rcode.NXDOMAIN
        assert (await dns_server.ask("tagged.dnstest.svc.cluster.local.")).answer
        with pytest.raises(SetupError, match="kubernetes: pods"):
            await instance.reload(b".:53 {\n kubernetes {\n pods often\n }\n}\n")
        assert instance.metrics.reload_failures == 1
        assert (await dns_server.ask("tagged.dnstest.svc.cluster.local.")).answer
