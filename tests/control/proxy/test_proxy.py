"""The service proxy against a real API server, with real TCP and UDP backends.

Services and EndpointSlices are written by hand (no controllers run); the proxy follows them
through its informers. Backends greet each connection with their name, so a test sees which one
a connection reached.
"""

from __future__ import annotations

import asyncio
import random
import socket
import ssl

import pytest
from prometheus_client import generate_latest

from control.proxy import run_proxy
from control.proxy.state import ListenerKey
from tests.control.proxy.conftest import (
    ENDPOINT_SLICES,
    SERVICES,
    UDP_IDLE_TIMEOUT,
    TCPBackend,
    answers,
    backend_of,
    connect,
    endpoint,
    node_ip,
    port_of,
    refused,
    running_proxy,
    udp_exchange,
    wait_for,
)

pytestmark = pytest.mark.timeout(30)


async def cluster_ip(lab, name: str) -> str:
    return (await lab.client.get(SERVICES, name, namespace="default"))["spec"]["clusterIP"]


async def test_round_robin_over_ready_endpoints(proxy_lab):
    lab = proxy_lab
    a, b, c = await lab.tcp_backends("a", "b", "c")
    ip = (await lab.create_service("web"))["spec"]["clusterIP"]
    # Each backend listens on its own port and a slice's ports apply to all its endpoints:
    # one slice per backend.
    for backend in (a, b, c):
        await lab.put_slice("web", [endpoint(backend)], ports=[port_of(backend)], name=f"web-{backend.name}")
    await wait_for(lambda: answers(ip, 80), what="the ClusterIP to answer")

    async def three_backends() -> bool:
        return len({await backend_of(ip, 80) for _ in range(3)}) == 3

    await wait_for(three_backends, what="all three slices to be merged")
    seen = [await backend_of(ip, 80) for _ in range(9)]
    assert seen[:3] == seen[3:6] == seen[6:9]  # a strict rotation
    assert sorted(seen[:3]) == ["a", "b", "c"]
    # The backend sees the node's IP as its client, as with kube-proxy's userspace mode.
    assert {peer[0] for peer in a.peers} == {lab.node_ip}


async def test_only_ready_endpoints_then_serving_terminating_fallback(proxy_lab):
    lab = proxy_lab
    ready, unready, draining = await lab.tcp_backends("ready", "unready", "draining")
    ip = (await lab.create_service("web"))["spec"]["clusterIP"]
    conditions = {
        ready: {},
        unready: {"ready": False, "serving": False},
        draining: {"ready": False, "serving": True, "terminating": True},
    }
    for backend, given in conditions.items():
        await lab.put_slice(
            "web", [endpoint(backend, **given)], ports=[port_of(backend)], name=f"web-{backend.name}"
        )

    async def only(names: set[str]) -> bool:
        try:
            return {await backend_of(ip, 80) for _ in range(6)} == names
        except ConnectionError:
            return False

    await wait_for(lambda: only({"ready"}), what="only the ready endpoint to be used")
    # The ready endpoint goes away: the serving-and-terminating one takes over (KEP-1669).
    await lab.put_slice(
        "web", [endpoint(ready, ready=False, serving=False)], ports=[port_of(ready)], name="web-ready"
    )
    await wait_for(lambda: only({"draining"}), what="the terminating endpoint to be used")


async def test_named_target_ports_pick_the_matching_slice_port(proxy_lab):
    lab = proxy_lab
    (web,) = await lab.tcp_backends("web")
    (admin,) = await lab.tcp_backends("admin")
    service = await lab.create_service(
        "multi",
        ports=[
            {"name": "http", "port": 80, "protocol": "TCP"},
            {"name": "admin", "port": 81, "protocol": "TCP"},
        ],
    )
    ip = service["spec"]["clusterIP"]
    await lab.put_slice("multi", [endpoint(web)], ports=[port_of(web, name="http")], name="multi-web")
    await lab.put_slice("multi", [endpoint(admin)], ports=[port_of(admin, name="admin")], name="multi-admin")
    await wait_for(lambda: answers(ip, 81), what="port 81")
    await wait_for(lambda: answers(ip, 80), what="port 80")
    assert await backend_of(ip, 80) == "web"
    assert await backend_of(ip, 81) == "admin"


async def test_no_ready_endpoints_refuses_at_once_and_recovers(proxy_lab):
    lab = proxy_lab
    (backend,) = await lab.tcp_backends("only")
    ip = (await lab.create_service("empty"))["spec"]["clusterIP"]
    # No EndpointSlice at all: nothing listens, so the client is refused, not left hanging.
    assert await refused(ip, 80)
    await lab.put_slice("empty", [endpoint(backend, ready=False)], ports=[port_of(backend)])
    assert await refused(ip, 80)
    await lab.put_slice("empty", [endpoint(backend)], ports=[port_of(backend)])
    await wait_for(lambda: answers(ip, 80), what="the endpoint to become ready")
    live = await connect(ip, 80)
    await lab.put_slice("empty", [endpoint(backend, ready=False)], ports=[port_of(backend)])
    await wait_for(lambda: refused(ip, 80), what="the listener to close")
    # The connection made before the endpoint went unready is untouched.
    assert await live.echo(b"still here") == b"still here"
    await live.close()


async def test_endpoint_changes_keep_live_connections_on_their_backend(proxy_lab):
    lab = proxy_lab
    old, new = await lab.tcp_backends("old", "new")
    ip = (await lab.create_service("web"))["spec"]["clusterIP"]
    await lab.put_slice("web", [endpoint(old)], ports=[port_of(old)], name="web-old")
    await wait_for(lambda: answers(ip, 80))
    live = await connect(ip, 80)
    assert live.backend == "old"
    # Replace the endpoint: a rollout moved the Service to the new pod.
    await lab.client.delete(ENDPOINT_SLICES, "web-old", namespace="default")
    await lab.put_slice("web", [endpoint(new)], ports=[port_of(new)], name="web-new")

    async def moved() -> bool:
        try:
            return await backend_of(ip, 80) == "new"
        except ConnectionError:
            return False

    await wait_for(moved, what="new connections to reach the new endpoint")
    assert {await backend_of(ip, 80) for _ in range(4)} == {"new"}
    assert await live.echo(b"x" * 100_000) == b"x" * 100_000
    await live.close()


async def test_deleted_service_closes_its_listener_but_not_its_connections(proxy_lab):
    lab = proxy_lab
    (backend,) = await lab.tcp_backends("a")
    ip = (await lab.create_service("gone"))["spec"]["clusterIP"]
    await lab.put_slice("gone", [endpoint(backend)], ports=[port_of(backend)])
    await wait_for(lambda: answers(ip, 80))
    live = await connect(ip, 80)
    await lab.client.delete(SERVICES, "gone", namespace="default")
    await wait_for(lambda: refused(ip, 80), what="the listener to close")
    assert lab.proxy.proxier.listener_count("TCP") == 1  # the kubernetes Service's
    assert await live.echo(b"ping") == b"ping"
    await live.close()


async def test_service_port_change_moves_the_listener(proxy_lab):
    lab = proxy_lab
    (backend,) = await lab.tcp_backends("a")
    service = await lab.create_service("web")
    ip = service["spec"]["clusterIP"]
    await lab.put_slice("web", [endpoint(backend)], ports=[port_of(backend)])
    await wait_for(lambda: answers(ip, 80))
    service["spec"]["ports"][0]["port"] = 8080
    await lab.client.replace(SERVICES, service)
    await wait_for(lambda: answers(ip, 8080), what="the new port")
    assert await refused(ip, 80)


async def test_half_close_passes_through_and_large_transfers_are_intact(proxy_lab):
    lab = proxy_lab
    (backend,) = await lab.tcp_backends("a")
    ip = (await lab.create_service("web"))["spec"]["clusterIP"]
    await lab.put_slice("web", [endpoint(backend)], ports=[port_of(backend)])
    await wait_for(lambda: answers(ip, 80))
    client = await connect(ip, 80)
    payload = bytes(range(256)) * 32768  # 8 MiB: exercises flow control in both directions

    async def send() -> None:
        client.writer.write(payload)
        await client.writer.drain()
        client.writer.write_eof()  # the backend answers "bye" only after our EOF reaches it

    sender = asyncio.create_task(send())
    received = await asyncio.wait_for(client.reader.read(-1), 10)  # until the proxy passes the backend's EOF
    await sender
    assert received == payload + b"bye\n"
    await client.close()


async def test_session_affinity_client_ip(proxy_lab):
    lab = proxy_lab
    backends = await lab.tcp_backends("a", "b", "c")
    service = await lab.create_service(
        "sticky", sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}}
    )
    ip = service["spec"]["clusterIP"]
    for backend in backends:
        await lab.put_slice(
            "sticky", [endpoint(backend)], ports=[port_of(backend)], name=f"sticky-{backend.name}"
        )
    listener = ListenerKey("TCP", ip, 80)
    await wait_for(lambda: len(lab.proxy.proxier.backends(listener)) == 3, what="the three slices")
    clients = [f"127.0.{i}.{j}" for i in (1, 2) for j in (1, 2, 3, 4, 5)]
    first = {source: await backend_of(ip, 80, source_ip=source) for source in clients}
    # Every client keeps its backend for each new connection...
    for _ in range(2):
        for source in clients:
            assert await backend_of(ip, 80, source_ip=source) == first[source]
    # ...and the clients are not all on one backend.
    assert len(set(first.values())) > 1
    # After timeoutSeconds without a connection the affinity is gone: the client is placed
    # afresh (by the same hash, so with an unchanged pool it lands on the same backend).
    lab.clock.advance(61)
    for source in clients:
        assert await backend_of(ip, 80, source_ip=source) == first[source]


async def test_unreachable_backend_is_skipped_and_all_unreachable_resets(proxy_lab):
    lab = proxy_lab
    (alive,) = await lab.tcp_backends("alive")
    dead = TCPBackend("dead")
    await dead.start()
    dead_port = dead.port
    await dead.stop()  # nothing listens there now: connecting is refused
    ip = (await lab.create_service("flaky"))["spec"]["clusterIP"]
    await lab.put_slice(
        "flaky",
        [{"addresses": [dead.ip], "conditions": {"ready": True}}],
        ports=[{"name": "web", "port": dead_port, "protocol": "TCP"}],
        name="flaky-dead",
    )
    await wait_for(lambda: lab.proxy.proxier.listener_count("TCP") == 2)
    # Only a dead backend: the connection is accepted, then reset (no backend took it).
    with pytest.raises(ConnectionResetError):
        await connect(ip, 80)
    await lab.put_slice("flaky", [endpoint(alive)], ports=[port_of(alive)], name="flaky-alive")
    await wait_for(lambda: len(lab.proxy.proxier.backends(ListenerKey("TCP", ip, 80))) == 2)
    # Every connection succeeds: the dead backend's turn falls through to the live one.
    assert {await backend_of(ip, 80) for _ in range(6)} == {"alive"}
    assert lab.proxy.proxier.counts.tcp_failed == 1


async def test_node_port_listens_on_the_node_ip(proxy_lab):
    lab = proxy_lab
    (backend,) = await lab.tcp_backends("a")
    service = await lab.create_service("exposed", type="NodePort")
    node_port = service["spec"]["ports"][0]["nodePort"]
    ip = service["spec"]["clusterIP"]
    await lab.put_slice("exposed", [endpoint(backend)], ports=[port_of(backend)])
    await wait_for(lambda: answers(lab.node_ip, node_port), what="the NodePort")
    assert await backend_of(ip, 80) == "a"
    assert lab.proxy.proxier.listener_count("TCP") == 3  # ClusterIP, NodePort, and kubernetes
    # externalTrafficPolicy Local: only endpoints on this node serve the NodePort.
    service = await lab.client.get(SERVICES, "exposed", namespace="default")
    service["spec"]["externalTrafficPolicy"] = "Local"
    await lab.client.replace(SERVICES, service)
    await wait_for(lambda: refused(lab.node_ip, node_port), what="the NodePort to close (no local endpoint)")
    assert await backend_of(ip, 80) == "a"  # the ClusterIP still uses every endpoint
    await lab.put_slice(
        "exposed", [{**endpoint(backend), "nodeName": lab.node_name}], ports=[port_of(backend)]
    )
    await wait_for(lambda: answers(lab.node_ip, node_port), what="the local endpoint")


async def test_kubernetes_service_reaches_the_api_server(proxy_lab, tmp_path):
    lab = proxy_lab
    ip = await cluster_ip(lab, "kubernetes")
    await wait_for(lambda: lab.proxy.proxier.listener_count("TCP") >= 1, what="the kubernetes service")
    config = lab.client.config
    context = ssl.create_default_context(cadata=config.ca_data.decode())
    context.load_cert_chain(*write_client_cert(config, tmp_path))
    reader, writer = await asyncio.open_connection(
        ip, 443, ssl=context, server_hostname="kubernetes.default.svc"
    )
    writer.write(b"GET /version HTTP/1.1\r\nHost: kubernetes.default.svc\r\nConnection: close\r\n\r\n")
    answer = await asyncio.wait_for(reader.read(-1), 5)
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"gitVersion" in body


def write_client_cert(config, tmp_path) -> tuple[str, str]:
    cert = tmp_path / "admin.crt"
    key = tmp_path / "admin.key"
    cert.write_bytes(config.client_cert_data)
    key.write_bytes(config.client_key_data)
    return str(cert), str(key)


async def test_udp_flows_round_robin_and_idle_timeout(proxy_lab):
    lab = proxy_lab
    a, b = await lab.udp_backends("a", "b")
    service = await lab.create_service("dns", ports=[{"name": "dns", "port": 53, "protocol": "UDP"}])
    ip = service["spec"]["clusterIP"]
    for backend in (a, b):
        await lab.put_slice(
            "dns",
            [endpoint(backend)],
            ports=[port_of(backend, name="dns", protocol="UDP")],
            name=f"dns-{backend.name}",
        )
    await wait_for(lambda: len(lab.proxy.proxier.backends(ListenerKey("UDP", ip, 53))) == 2)
    clients = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(4)]
    try:
        for client in clients:
            client.connect((ip, 53))
        loop = asyncio.get_running_loop()

        async def ask(client: socket.socket, data: bytes) -> bytes:
            return await loop.run_in_executor(None, udp_exchange, client, data)

        answers_ = [await ask(client, b"q1") for client in clients]
        names = [answer.split(b"|")[0] for answer in answers_]
        assert sorted(names) == [b"a", b"a", b"b", b"b"]  # one flow per client address, in rotation
        assert all(answer.endswith(b"|q1") for answer in answers_)
        # A flow keeps its backend.
        for client, name in zip(clients, names, strict=True):
            assert (await ask(client, b"q2")).split(b"|")[0] == name
        assert lab.proxy.proxier.udp_flows == 4
        # The backend sees the node's address, one source port per flow.
        assert {sender[0] for sender in a.senders + b.senders} == {lab.node_ip}
        lab.clock.advance(UDP_IDLE_TIMEOUT * 1.5)
        assert lab.proxy.proxier.udp_flows == 0
        assert (await ask(clients[0], b"q3")).endswith(b"|q3")  # a new flow
        assert lab.proxy.proxier.udp_flows == 1
    finally:
        for client in clients:
            client.close()


async def test_udp_removed_backend_ends_its_flows_and_no_endpoints_is_refused(proxy_lab):
    lab = proxy_lab
    a, b = await lab.udp_backends("a", "b")
    service = await lab.create_service("dns", ports=[{"name": "dns", "port": 53, "protocol": "UDP"}])
    ip = service["spec"]["clusterIP"]
    udp_port = {"name": "dns", "protocol": "UDP"}
    await lab.put_slice("dns", [endpoint(a)], ports=[{**udp_port, "port": a.port}], name="dns-a")
    await wait_for(lambda: lab.proxy.proxier.listener_count("UDP") == 1)
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    loop = asyncio.get_running_loop()
    try:
        client.connect((ip, 53))
        assert (await loop.run_in_executor(None, udp_exchange, client, b"1")) == b"a|1"
        await lab.put_slice("dns", [endpoint(b)], ports=[{**udp_port, "port": b.port}], name="dns-b")
        await lab.client.delete(ENDPOINT_SLICES, "dns-a", namespace="default")
        await wait_for(
            lambda: lab.proxy.proxier.udp_flows == 0, what="the flow to the removed backend to close"
        )
        assert (await loop.run_in_executor(None, udp_exchange, client, b"2")) == b"b|2"
        await lab.client.delete(ENDPOINT_SLICES, "dns-b", namespace="default")
        await wait_for(lambda: lab.proxy.proxier.listener_count("UDP") == 0)
        # Nothing listens: the kernel answers ICMP port unreachable, the client sees a refusal.
        with pytest.raises(ConnectionRefusedError):
            await loop.run_in_executor(None, udp_exchange, client, b"3")
    finally:
        client.close()


async def test_metrics_report_syncs_listeners_and_connections(proxy_lab):
    lab = proxy_lab
    (backend,) = await lab.tcp_backends("a")
    ip = (await lab.create_service("web"))["spec"]["clusterIP"]
    await lab.put_slice("web", [endpoint(backend)], ports=[port_of(backend)])
    await wait_for(lambda: answers(ip, 80))
    live = await connect(ip, 80)
    text = generate_latest(lab.registry).decode()
    assert 'kubelab_proxy_listeners{protocol="TCP"} 2.0' in text  # web and kubernetes
    assert "kubelab_proxy_open_tcp_connections 1.0" in text
    assert 'kubelab_proxy_tcp_connections_total{result="forwarded"}' in text
    assert "kubeproxy_sync_proxy_rules_duration_seconds_count" in text
    assert "kubeproxy_sync_proxy_rules_endpoint_changes_total" in text
    await live.close()
    await wait_for(lambda: lab.proxy.proxier.tcp_connections == 0)


async def test_ignores_services_for_another_proxy_and_headless_and_external_name(proxy_lab):
    lab = proxy_lab
    (backend,) = await lab.tcp_backends("a")
    other = await lab.client.create(
        SERVICES,
        {
            "metadata": {
                "name": "other",
                "namespace": "default",
                "labels": {"service.kubernetes.io/service-proxy-name": "someone-else"},
            },
            "spec": {"ports": [{"name": "web", "port": 80}]},
        },
    )
    await lab.create_service("headless", clusterIP="None")
    await lab.create_service("external", type="ExternalName", externalName="example.invalid", ports=[])
    for name in ("other", "headless", "external"):
        await lab.put_slice(name, [endpoint(backend)], ports=[port_of(backend)])
    (marker,) = await lab.tcp_backends("marker")
    ip = (await lab.create_service("marker"))["spec"]["clusterIP"]
    await lab.put_slice("marker", [endpoint(marker)], ports=[port_of(marker)])
    await wait_for(lambda: answers(ip, 80), what="the marker service (synced after the others)")
    assert await refused(other["spec"]["clusterIP"], 80)
    assert lab.proxy.proxier.listener_count("TCP") == 2  # marker and kubernetes


async def test_run_proxy_serves_until_stopped(proxy_lab):
    """The node agent's entry point: its own client and informers; stopping closes everything."""
    lab = proxy_lab
    (backend,) = await lab.tcp_backends("a")
    service = await lab.create_service("web", type="NodePort")
    await lab.put_slice("web", [endpoint(backend)], ports=[port_of(backend)])
    agent_ip = node_ip()
    node_port = service["spec"]["ports"][0]["nodePort"]
    stop = asyncio.Event()
    ready = asyncio.Event()
    config = lab.client.config
    task = asyncio.create_task(
        run_proxy(config=config, node_ip=agent_ip, node_name="node-b", stop=stop, on_ready=ready.set)
    )
    try:
        await asyncio.wait_for(ready.wait(), 10)
        assert await backend_of(agent_ip, node_port) == "a"
        live = await connect(agent_ip, node_port)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    assert await refused(agent_ip, node_port)
    # Stopping the proxy resets the connections it was relaying.
    with pytest.raises(ConnectionResetError):
        await asyncio.wait_for(live.reader.read(), 5)
    await live.close()


async def test_node_agents_on_one_machine_share_cluster_ips(proxy_lab):
    """A second node's proxy binds the same ClusterIP (SO_REUSEPORT): the kernel spreads connections
    over both, affinity holds across them, and when one stops the other serves everything."""
    lab = proxy_lab
    backends = await lab.tcp_backends("a", "b", "c")
    ip = (await lab.create_service("shared", sessionAffinity="ClientIP"))["spec"]["clusterIP"]
    for backend in backends:
        await lab.put_slice(
            "shared", [endpoint(backend)], ports=[port_of(backend)], name=f"shared-{backend.name}"
        )
    key = ListenerKey("TCP", ip, 80)
    clients = [f"127.0.3.{i}" for i in range(1, 41)]
    async with running_proxy(lab.client, node_ip=node_ip(), node_name="node-b", clock=lab.clock) as second:
        await wait_for(lambda: len(lab.proxy.proxier.backends(key)) == len(second.proxier.backends(key)) == 3)
        first = {client: await backend_of(ip, 80, source_ip=client) for client in clients}
        for client in clients:
            assert await backend_of(ip, 80, source_ip=client) == first[client]
        assert lab.proxy.proxier.counts.tcp_forwarded > 0
        assert second.proxier.counts.tcp_forwarded > 0
        assert len(set(first.values())) > 1
    for client in clients:
        assert await backend_of(ip, 80, source_ip=client) == first[client]


async def test_a_node_port_held_by_another_program_is_retried_until_free(proxy_lab):
    lab = proxy_lab
    (backend,) = await lab.tcp_backends("a")
    blocker = socket.socket()
    for port in random.sample(range(30000, 32768), 50):
        try:
            blocker.bind((lab.node_ip, port))
            break
        except OSError:
            continue
    blocker.listen()
    node_port = blocker.getsockname()[1]
    try:
        service = await lab.create_service(
            "np", type="NodePort", ports=[{"name": "web", "port": 80, "nodePort": node_port}]
        )
        await lab.put_slice("np", [endpoint(backend)], ports=[port_of(backend)])
        await wait_for(lambda: lab.proxy.proxier.counts.listen_errors >= 1, what="the bind to fail")
        # The rest of the Service works meanwhile.
        assert await backend_of(service["spec"]["clusterIP"], 80) == "a"
    finally:
        blocker.close()

    async def retried() -> bool:
        lab.clock.advance(30)  # the retry backoff runs on the proxy's (fake) clock
        return await answers(lab.node_ip, node_port)

    await wait_for(retried, what="the NodePort listener after the retry")
