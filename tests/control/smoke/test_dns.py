"""The DNS smoke test's pieces that need no cluster: the UDP query against a tiny local
responder, reverse names, finding the cluster DNS through the API, and the report."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from dnslib import QTYPE, RR, A, DNSRecord

from control import lab
from control.client import ClientConfig, RESTClient, load_kubeconfig
from control.smoke.dns import (
    CheckResult,
    SmokeError,
    SmokeReport,
    _Context,
    _external_check,
    _run_check,
    dns_server,
    query,
    reverse_name,
    run_dns_smoke,
)
from tests.control.apiserver.conftest import running_apiserver


@pytest.fixture
def responder() -> Iterator[tuple[int, list[str]]]:
    """A UDP DNS server on 127.0.0.1 answering A 10.0.0.1 to anything, after a stray reply
    with the wrong ID; names containing "silent" get no answer. Yields (port, names seen)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.05)
    seen: list[str] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                data, peer = sock.recvfrom(65535)
            except TimeoutError:
                continue
            request = DNSRecord.parse(data)
            name = str(request.q.qname)
            seen.append(name)
            if "silent" in name:
                continue
            stray = request.reply()
            stray.header.id = (request.header.id + 1) % 65536
            sock.sendto(stray.pack(), peer)
            reply = request.reply()
            reply.add_answer(RR(name, QTYPE.A, rdata=A("10.0.0.1"), ttl=5))
            sock.sendto(reply.pack(), peer)

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        yield sock.getsockname()[1], seen
    finally:
        stop.set()
        thread.join()
        sock.close()


def test_query_returns_the_matching_reply_and_skips_stray_ones(responder: tuple[int, list[str]]) -> None:
    port, seen = responder
    answer = query(server="127.0.0.1", port=port, name="web.ns.svc.cluster.local.", qtype="A")
    assert answer.rcode == "NOERROR"
    assert answer.values("A") == ["10.0.0.1"]
    assert answer.values("AAAA") == []
    assert seen == ["web.ns.svc.cluster.local."]


def test_query_without_an_answer_retries_once_then_times_out(responder: tuple[int, list[str]]) -> None:
    port, seen = responder
    with pytest.raises(TimeoutError):
        query(server="127.0.0.1", port=port, name="silent.example.", qtype="A", timeout=0.2)
    assert seen == ["silent.example.", "silent.example."]


def test_reverse_names_for_ipv4_and_ipv6() -> None:
    assert reverse_name("127.96.0.10") == "10.0.96.127.in-addr.arpa."
    assert reverse_name("fd00::1").endswith(".0.0.d.f.ip6.arpa.")


async def test_the_dns_server_is_the_kube_dns_cluster_ip(tmp_path: Path) -> None:
    async with running_apiserver(tmp_path) as server:
        config = load_kubeconfig(lab.Layout.resolve(server.data_dir).kubeconfig)
        async with RESTClient(config) as client:
            with pytest.raises(
                SmokeError, match="no kube-system/kube-dns Service: deploy a cluster DNS first"
            ):
                await dns_server(client)
            status, _ = await server.request(
                "POST",
                "/api/v1/namespaces/kube-system/services",
                body={
                    "metadata": {"name": "kube-dns"},
                    "spec": {
                        "clusterIP": "127.96.0.10",
                        "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}],
                    },
                },
            )
            assert status == 201
            assert await dns_server(client) == "127.96.0.10"


def test_the_report_fails_on_any_failure_but_not_on_skips() -> None:
    results = [
        CheckResult(name="A ClusterIP Service", status="pass", seconds=0.0012, detail="A web -> 10.0.0.1"),
        CheckResult(name="external name", status="skip", seconds=0.003, detail="no upstream"),
    ]
    report = SmokeReport(server="127.96.0.10", namespace="dns-smoke-1", results=results)
    assert report.passed
    table = report.table()
    assert table.splitlines()[0].split() == ["check", "result", "latency", "detail"]
    assert "A ClusterIP Service  pass    1.2 ms   A web -> 10.0.0.1" in table
    assert table.endswith(
        "1 passed, 0 failed, 1 skipped (DNS server 127.96.0.10, namespace dns-smoke-1, deleted)"
    )
    failed = SmokeReport(
        server="x",
        namespace="y",
        results=[*results, CheckResult(name="NXDOMAIN", status="FAIL", seconds=0, detail="")],
    )
    assert not failed.passed


def _external_context(port: int, *, name: str, answer: str | None) -> _Context:
    return _Context(
        client=None,  # type: ignore[arg-type]  # the external check never calls the API
        server="127.0.0.1",
        port=port,
        namespace="dns-smoke-1",
        zone="cluster.local",
        kubeconfig=None,
        deadline_seconds=0.3,
        external_name=name,
        external_answer=answer,
    )


async def test_the_external_check_passes_when_the_named_answer_is_forwarded(
    responder: tuple[int, list[str]],
) -> None:
    port, seen = responder
    ctx = _external_context(port, name="www.example.test", answer="10.0.0.1")
    result = await _run_check("external name (forwarded)", _external_check(ctx), within=0.3)
    assert result.status == "pass"
    assert result.detail == "A www.example.test. -> 10.0.0.1 (forwarded upstream; expected 10.0.0.1)"
    assert seen == ["www.example.test."]


async def test_the_external_check_fails_on_another_answer_or_none_and_never_skips(
    responder: tuple[int, list[str]],
) -> None:
    port, _ = responder
    wrong = _external_context(port, name="www.example.test.", answer="192.0.2.10")
    result = await _run_check("external", _external_check(wrong), within=0.2)
    assert result.status == "FAIL"
    assert "-> 10.0.0.1 (forwarded upstream; expected 192.0.2.10)" in result.detail
    # no answer at all: a failure, not a skip, since the expected answer is known
    silent = _external_context(port, name="silent.example.test", answer="192.0.2.10")
    result = await _run_check("external", _external_check(silent), within=0.2)
    assert result.status == "FAIL"
    assert "-> no answer" in result.detail


async def test_a_bad_expected_external_answer_stops_the_smoke_test_before_any_request() -> None:
    config = ClientConfig(server="https://127.0.0.1:1")  # nothing listens: no request may be made
    with pytest.raises(SmokeError, match="'not-an-ip' is not an IPv4 address"):
        await run_dns_smoke(config, kubeconfig=None, external_answer="not-an-ip")
