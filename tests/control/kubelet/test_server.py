"""The kubelet API's plain HTTP endpoints over real TLS: client certificates (only the lab CA's,
and of those only the API server's and system:masters' are let in), /healthz, /pods,
/containerLogs (CRI log files read by control.kubelet.logs), /stats/summary,
/metrics/resource and /metrics."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from prometheus_client.parser import text_string_to_metric_families

from control.kubelet.logs import CRILogWriter
from control.kubelet.server import (
    KubeletServer,
    KubeletServerConfig,
    KubeletServerError,
    log_options,
    request_subresources,
)
from control.kubelet.summary import FsUsage, Usage
from control.pki import (
    PKIFiles,
    ensure_apiserver_kubelet_client_certificate,
    ensure_client_certificate,
    load_or_create_ca,
)
from tests.control.kubelet.fakes import (
    FakePods,
    FakeRuntime,
    RunningKubelet,
    client_context,
    make_pod,
    running_kubelet,
)

T0 = 1_764_064_800  # 2025-11-25T10:00:00Z


@pytest.fixture
async def kubelet(tmp_path: Path) -> AsyncIterator[RunningKubelet]:
    async with running_kubelet(tmp_path / "pki") as running:
        yield running


def write_log(path: Path, lines: list[tuple[str, str]], *, start: int = T0) -> None:
    """CRI entries one second apart, written by the kubelet's own writer."""
    clock = iter(range(start * 10**9, (start + 1000) * 10**9, 10**9))
    writer = CRILogWriter(path, clock=lambda: next(clock))
    for stream, text in lines:
        writer.write(stream, text.encode() + b"\n")
    writer.close()


async def get(kubelet: RunningKubelet, path: str) -> tuple[int, str]:
    async with kubelet.session.get(kubelet.url + path) as response:
        return response.status, await response.text()


# --- TLS and who may call --------------------------------------------------------------------------


async def test_clients_without_a_lab_certificate_are_refused(kubelet: RunningKubelet, tmp_path: Path) -> None:
    anonymous = client_context(kubelet.pki, with_certificate=False)
    other = PKIFiles(tmp_path / "other-pki")
    other_ca, _ = load_or_create_ca(cert_file=other.ca_cert, key_file=other.ca_key)
    ensure_apiserver_kubelet_client_certificate(files=other, ca=other_ca)  # signed by another CA
    stranger = ssl.create_default_context(cafile=str(kubelet.pki.ca_cert))
    stranger.load_cert_chain(
        str(other.apiserver_kubelet_client_cert), str(other.apiserver_kubelet_client_key)
    )
    for context in (anonymous, stranger):
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session:
            with pytest.raises(aiohttp.ClientError):
                async with session.get(kubelet.url + "/healthz") as response:
                    await response.read()
    assert await get(kubelet, "/healthz") == (200, "ok")


def client_with(
    kubelet: RunningKubelet, directory: Path, *, user: str, groups: tuple[str, ...]
) -> ssl.SSLContext:
    """A client context with a certificate for ``user`` in ``groups``, signed by the lab CA."""
    ca, _ = load_or_create_ca(cert_file=kubelet.pki.ca_cert, key_file=kubelet.pki.ca_key)
    cert, key = directory / f"{user.replace(':', '_')}.crt", directory / f"{user.replace(':', '_')}.key"
    ensure_client_certificate(ca=ca, cert_file=cert, key_file=key, user=user, groups=groups)
    context = ssl.create_default_context(cafile=str(kubelet.pki.ca_cert))
    context.load_cert_chain(str(cert), str(key))
    return context


async def call(context: ssl.SSLContext, method: str, url: str) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session,
        session.request(method, url) as response,
    ):
        return response.status, await response.text()


async def test_other_lab_certificates_are_forbidden(kubelet: RunningKubelet, tmp_path: Path) -> None:
    kubelet.pods.add(make_pod("web"))
    kubelet.runtime.add_container("web-id")
    other_node = client_with(kubelet, tmp_path, user="system:node:node-2", groups=("system:nodes",))
    for method, path, verb, subresources in (
        ("GET", "/pods", "get", "[pods proxy]"),
        ("GET", "/healthz", "get", "[healthz proxy]"),
        ("GET", "/stats/summary", "get", "[stats]"),
        ("GET", "/metrics/resource", "get", "[metrics]"),
        ("GET", "/metrics", "get", "[metrics]"),
        ("GET", "/logs/messages", "get", "[log]"),
        ("GET", "/containerLogs/default/web/main", "get", "[proxy]"),
        ("POST", "/exec/default/web/main?command=id", "create", "[proxy]"),
        ("PUT", "/nowhere", "update", "[proxy]"),
    ):
        assert await call(other_node, method, kubelet.url + path) == (
            403,
            f"Forbidden (user=system:node:node-2, verb={verb}, resource=nodes, subresource(s)={subresources})\n",
        ), path
    assert kubelet.runtime.exec_calls == []
    # The admin's name is not enough: the superuser group or the API server's identity is.
    impostor = client_with(kubelet, tmp_path, user="kubernetes-admin", groups=("kubeadm:cluster-admins",))
    assert (await call(impostor, "GET", kubelet.url + "/pods"))[0] == 403


async def test_the_api_server_and_masters_are_allowed(kubelet: RunningKubelet, tmp_path: Path) -> None:
    assert await get(kubelet, "/healthz") == (200, "ok")  # the apiserver-kubelet-client certificate
    masters = client_with(kubelet, tmp_path, user="someone", groups=("system:masters",))
    assert await call(masters, "GET", kubelet.url + "/healthz") == (200, "ok")
    code, body = await call(masters, "GET", kubelet.url + "/pods")
    assert code == 200
    assert '"kind":"PodList"' in body


async def test_a_certificate_without_a_user_is_unauthorized(kubelet: RunningKubelet, tmp_path: Path) -> None:
    ca, _ = load_or_create_ca(cert_file=kubelet.pki.ca_cert, key_file=kubelet.pki.ca_key)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:masters")]))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .sign(ca.private_key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "nameless.crt", tmp_path / "nameless.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.create_default_context(cafile=str(kubelet.pki.ca_cert))
    context.load_cert_chain(str(cert_file), str(key_file))
    assert await call(context, "GET", kubelet.url + "/pods") == (401, "Unauthorized")


def test_request_subresources_as_upstream() -> None:
    assert request_subresources("/pods") == ["pods", "proxy"]
    assert request_subresources("/runningpods/") == ["pods", "proxy"]
    assert request_subresources("/configz") == ["configz", "proxy"]
    assert request_subresources("/stats") == ["stats"]
    assert request_subresources("/spec/") == ["spec"]
    assert request_subresources("/checkpoint/ns/pod/c") == ["checkpoint"]
    assert request_subresources("/podsx") == ["proxy"]
    assert request_subresources("/portForward/ns/pod") == ["proxy"]


def test_serving_certificate_names_the_node(kubelet: RunningKubelet) -> None:
    certificate = x509.load_pem_x509_certificate(kubelet.server.config.cert_file.read_bytes())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert names.get_values_for_type(x509.DNSName) == ["node-1"]
    assert certificate.subject.rfc4514_string() == "CN=system:node:node-1"


async def test_a_taken_port_is_a_clear_error(kubelet: RunningKubelet) -> None:
    config = kubelet.server.config
    second = KubeletServer(config=config, pods=FakePods(), runtime=FakeRuntime(), usage=kubelet.usage)  # type: ignore[arg-type]
    with pytest.raises(KubeletServerError, match=rf"cannot listen on 127.0.0.1:{config.port}"):
        await second.start()


async def test_unreadable_tls_files_are_a_clear_error(kubelet: RunningKubelet, tmp_path: Path) -> None:
    config = KubeletServerConfig(
        node_name="n",
        address="127.0.0.1",
        cert_file=tmp_path / "missing.crt",
        key_file=tmp_path / "missing.key",
        client_ca_file=kubelet.pki.ca_cert,
    )
    server = KubeletServer(config=config, pods=FakePods(), runtime=FakeRuntime(), usage=kubelet.usage)  # type: ignore[arg-type]
    with pytest.raises(KubeletServerError, match="cannot load the kubelet's TLS files"):
        await server.start()


# --- /pods ---------------------------------------------------------------------------------------


async def test_pods_lists_this_nodes_pods(kubelet: RunningKubelet) -> None:
    kubelet.pods.add(make_pod("a"))
    kubelet.pods.add(make_pod("b", namespace="other"))
    async with kubelet.session.get(kubelet.url + "/pods") as response:
        assert response.content_type == "application/json"
        body = await response.json()
    assert (body["kind"], body["apiVersion"]) == ("PodList", "v1")
    assert sorted(item["metadata"]["name"] for item in body["items"]) == ["a", "b"]


# --- /containerLogs ------------------------------------------------------------------------------


@pytest.fixture
def logged(kubelet: RunningKubelet, tmp_path: Path) -> RunningKubelet:
    path = tmp_path / "logs" / "0.log"
    write_log(path, [("stdout", "one"), ("stderr", "two"), ("stdout", "three")])
    kubelet.pods.add(make_pod("web"))
    kubelet.pods.add_log("web", "main", path)
    return kubelet


async def test_logs_are_the_containers_output(logged: RunningKubelet) -> None:
    async with logged.session.get(logged.url + "/containerLogs/default/web/main") as response:
        assert (response.status, response.content_type) == (200, "text/plain")
        assert await response.text() == "one\ntwo\nthree\n"
    assert logged.pods.log_requests == [("default", "web", "main", False)]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("tailLines=2", "two\nthree\n"),
        ("tail=1", "three\n"),
        ("tail=all", "one\ntwo\nthree\n"),
        ("limitBytes=5", "one\nt"),
        ("timestamps=true&tailLines=1", "2025-11-25T10:00:02.000000000Z three\n"),
        ("sinceTime=2025-11-25T10:00:01Z", "two\nthree\n"),
    ],
)
async def test_log_options(logged: RunningKubelet, query: str, expected: str) -> None:
    assert await get(logged, f"/containerLogs/default/web/main?{query}") == (200, expected)


async def test_follow_streams_new_lines_and_ends_when_the_container_stops(
    logged: RunningKubelet, tmp_path: Path
) -> None:
    source = logged.pods.logs[("default", "web", "main", False)]
    assert not isinstance(source, str)
    writer = CRILogWriter(tmp_path / "logs" / "0.log")
    async with logged.session.get(logged.url + "/containerLogs/default/web/main?follow=true") as response:
        assert await response.content.readuntil(b"three\n") == b"one\ntwo\nthree\n"
        writer.write("stdout", b"four\n")
        assert await asyncio.wait_for(response.content.readline(), 5) == b"four\n"
        source.running = False
        writer.write("stdout", b"last words\n")
        writer.close()
        assert await asyncio.wait_for(response.content.read(), 5) == b"last words\n"


async def test_previous_asks_for_the_previous_instance(logged: RunningKubelet, tmp_path: Path) -> None:
    old = tmp_path / "logs" / "old.log"
    write_log(old, [("stdout", "before the crash")])
    logged.pods.add_log("web", "main", old, previous=True)
    assert await get(logged, "/containerLogs/default/web/main?previous=true") == (200, "before the crash\n")
    assert logged.pods.log_requests == [("default", "web", "main", True)]


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/containerLogs/default/nope/main", 404, 'pod "nope" does not exist'),
        ("/containerLogs/default/web/other", 404, 'container "other" not found in pod "web"'),
        (
            "/containerLogs/default/web/main?previous=true",
            400,
            'previous terminated container "main" in pod "web" not found',
        ),
        (
            "/containerLogs/default/web/main?tailLines=-1",
            400,
            "Unable to decode query: tailLines: must be greater than or equal to 0",
        ),
        (
            "/containerLogs/default/web/main?follow=maybe",
            400,
            "Unable to decode query: follow: invalid boolean 'maybe'",
        ),
        (
            "/containerLogs/default/web/main?sinceSeconds=1&sinceTime=2025-11-25T10:00:00Z",
            400,
            "Unable to decode query: at most one of sinceTime or sinceSeconds may be specified",
        ),
    ],
)
async def test_log_errors_as_the_kubelet_words_them(
    logged: RunningKubelet, path: str, status: int, message: str
) -> None:
    assert await get(logged, path) == (status, message)


async def test_logs_the_pod_manager_cannot_give(kubelet: RunningKubelet) -> None:
    kubelet.pods.add(make_pod("web", running={}))
    kubelet.pods.add_log(
        "web", "main", 'container "main" in pod "web" is waiting to start: ContainerCreating'
    )
    assert await get(kubelet, "/containerLogs/default/web/main") == (
        400,
        'container "main" in pod "web" is waiting to start: ContainerCreating',
    )


async def test_logs_whose_file_is_gone(kubelet: RunningKubelet, tmp_path: Path) -> None:
    kubelet.pods.add(make_pod("web"))
    kubelet.pods.add_log("web", "main", tmp_path / "never-written.log")
    status, text = await get(kubelet, "/containerLogs/default/web/main")
    assert status == 400 and text.endswith('never-written.log": no such file or directory')


def test_log_options_from_the_query() -> None:
    options, previous = log_options(
        {"follow": "1", "previous": "true", "sinceSeconds": "10", "limitBytes": "7"}
    )
    assert (options.follow, previous, options.limit_bytes) == (True, True, 7)
    assert options.since_time is not None
    with pytest.raises(ValueError, match="sinceSeconds: must be greater than or equal to 1"):
        log_options({"sinceSeconds": "0"})
    with pytest.raises(ValueError, match="sinceTime: invalid RFC 3339 time"):
        log_options({"sinceTime": "yesterday"})
    with pytest.raises(ValueError, match="limitBytes: invalid integer"):
        log_options({"limitBytes": "many"})


# --- stats -----------------------------------------------------------------------------------------


def _usage(cpu_seconds: float, memory: int, *, rate: int | None = None) -> Usage:
    return Usage(
        timestamp=T0,
        cpu_core_nanoseconds=int(cpu_seconds * 1e9),
        memory_working_set_bytes=memory,
        cpu_nano_cores=rate,
        memory_usage_bytes=memory + 100,
        memory_available_bytes=None,
    )


@pytest.fixture
def measured(kubelet: RunningKubelet) -> RunningKubelet:
    kubelet.pods.add(
        make_pod("web", containers=("app", "side"), running={"app": "app-id", "side": "side-id"})
    )
    kubelet.pods.add(make_pod("idle", uid="uid-2", running={}))
    kubelet.usage.node = Usage(
        timestamp=T0,
        cpu_core_nanoseconds=50 * 10**9,
        memory_working_set_bytes=10**9,
        memory_available_bytes=2 * 10**9,
    )
    kubelet.usage.fs = FsUsage(timestamp=T0, capacity_bytes=100, available_bytes=60, used_bytes=40, inodes=10)
    kubelet.usage.containers = {"app-id": _usage(1.5, 1000, rate=2000), "side-id": _usage(0.5, 500)}
    return kubelet


async def test_stats_summary_shape(measured: RunningKubelet) -> None:
    async with measured.session.get(measured.url + "/stats/summary") as response:
        body = await response.json()
    node = body["node"]
    assert node["nodeName"] == "node-1"
    assert node["cpu"] == {"time": "2025-11-25T10:00:00Z", "usageCoreNanoSeconds": 50 * 10**9}
    assert node["memory"]["workingSetBytes"] == 10**9 and node["memory"]["availableBytes"] == 2 * 10**9
    assert node["fs"] == {
        "time": "2025-11-25T10:00:00Z",
        "availableBytes": 60,
        "capacityBytes": 100,
        "usedBytes": 40,
        "inodes": 10,
    }
    web, idle = body["pods"]
    assert web["podRef"] == {"name": "web", "namespace": "default", "uid": "uid-1"}
    assert [c["name"] for c in web["containers"]] == ["app", "side"]
    app = web["containers"][0]
    assert app["startTime"] == "2026-11-25T10:00:00Z"
    assert app["cpu"] == {
        "time": "2025-11-25T10:00:00Z",
        "usageCoreNanoSeconds": 1_500_000_000,
        "usageNanoCores": 2000,
    }
    assert web["cpu"]["usageCoreNanoSeconds"] == 2 * 10**9 and "usageNanoCores" not in web["cpu"]
    assert web["memory"]["workingSetBytes"] == 1500
    assert idle["containers"] == [] and "cpu" not in idle


async def test_resource_metrics_as_metrics_server_reads_them(measured: RunningKubelet) -> None:
    async with measured.session.get(measured.url + "/metrics/resource") as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = await response.text()
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): (sample.value, sample.timestamp)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    web = (("container", "app"), ("namespace", "default"), ("pod", "web"))
    assert samples[("node_cpu_usage_seconds_total", ())] == (50.0, T0)
    assert samples[("node_memory_working_set_bytes", ())] == (1e9, T0)
    assert samples[("container_cpu_usage_seconds_total", web)] == (1.5, T0)
    assert samples[("container_memory_working_set_bytes", web)] == (1000.0, T0)
    assert samples[("container_start_time_seconds", web)][0] == 1795600800.0
    assert samples[("pod_cpu_usage_seconds_total", (("namespace", "default"), ("pod", "web")))] == (2.0, T0)
    assert samples[("pod_memory_working_set_bytes", (("namespace", "default"), ("pod", "web")))] == (
        1500.0,
        T0,
    )
    assert samples[("resource_scrape_error", ())] == samples[("scrape_error", ())] == (0.0, None)
    assert "# TYPE container_cpu_usage_seconds_total counter" in text


async def test_resource_metrics_without_node_numbers_flag_a_scrape_error(kubelet: RunningKubelet) -> None:
    status, text = await get(kubelet, "/metrics/resource")
    assert status == 200
    assert "\nresource_scrape_error 1\n" in text and text.endswith("\nscrape_error 1\n")
    assert "node_cpu_usage_seconds_total" not in text


async def test_own_metrics_count_requests(kubelet: RunningKubelet) -> None:
    await get(kubelet, "/healthz")
    status, text = await get(kubelet, "/metrics")
    assert status == 200
    assert (
        'kubelet_http_requests_total{long_running="false",method="GET",path="healthz",server_type="readwrite"} 1.0'
        in text
    )


def test_for_node_reuses_the_serving_certificate(tmp_path: Path) -> None:
    pki = PKIFiles(tmp_path / "pki")
    with pytest.raises(KubeletServerError, match="no lab CA in"):
        KubeletServerConfig.for_node(pki=pki, node_name="n1", address="127.100.0.1")
    load_or_create_ca(cert_file=pki.ca_cert, key_file=pki.ca_key)
    first = KubeletServerConfig.for_node(pki=pki, node_name="n1", address="127.100.0.1")
    content = first.cert_file.read_bytes()
    second = KubeletServerConfig.for_node(pki=pki, node_name="n1", address="127.100.0.1", port=10251)
    assert (second.port, second.cert_file.read_bytes()) == (10251, content)
    moved = KubeletServerConfig.for_node(pki=pki, node_name="n1", address="127.100.0.9")
    assert moved.cert_file.read_bytes() != content  # a new address gets a certificate naming it
