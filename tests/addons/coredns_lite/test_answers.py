"""The record rules, table-driven against a FAKE backend, expected answers as zone-file lines.

The cluster below is CoreDNS's ``plugin/kubernetes/handler_test.go`` fixture (svc1, svcempty, svc6,
hdls1, hdlsprtls, external, external-to-service, svc-dual-stack in ``testns``), and the cases are
its cases plus the rules it tests elsewhere (PTR, pods, options, NS, quirks). Every query goes
through ``Handler.serve`` as wire bytes, so the table, templates and negative answers are
exercised too; each case is asked twice (computed, then prebuilt) and must answer the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import dns.flags
import dns.message
import dns.rcode
import pytest

from addons.coredns_lite.answers import PodMode
from addons.coredns_lite.backend import Pod
from tests.addons.coredns_lite.fakes import FakeBackend, address, endpoints, port, service
from tests.addons.coredns_lite.support import ask, lines, make_handler, normalize

SOA = "cluster.local. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1499347823 7200 1800 86400 5"
REVERSE_SOA = (
    "in-addr.arpa. 5 IN SOA ns.dns.in-addr.arpa. hostmaster.in-addr.arpa. 1499347823 7200 1800 86400 5"
)


def cluster(**overrides: object) -> FakeBackend:
    hdls_ports = (port("http", 80),)
    values: dict[str, object] = {
        "namespaces": ("testns", "other", "kube-system"),
        "services": [
            service("svc1", ips=("10.0.0.1",)),
            service("svcempty", ips=("10.0.0.2",)),
            service("svc6", ips=("1234:abcd::1",)),
            service("hdls1", ips=("None",)),
            service("hdlsprtls", ips=("None",), ports=()),
            service("hdlsempty", ips=("None",)),
            service("external", ips=("",), type="ExternalName", external="ext.interwebs.test"),
            service(
                "external-to-service",
                ips=("",),
                type="ExternalName",
                external="svc1.testns.svc.cluster.local",
            ),
            service("svc-dual-stack", ips=("10.0.0.3", "10::3")),
            service("unnamed", ips=("10.0.0.4",), ports=(port("", 8080), port("metrics", 9090, "UDP"))),
            service("hidden", namespace="other", ips=("10.0.9.9",)),
        ],
        "slices": [
            endpoints("svc1", [address("172.0.0.1")]),
            endpoints(
                "hdls1",
                [
                    address("172.0.0.2"),
                    address("172.0.0.3"),
                    address("172.0.0.4", "dup-name"),
                    address("172.0.0.5", "dup-name"),
                ],
                ports=hdls_ports,
                name="hdls1-v4",
            ),
            endpoints(
                "hdls1", [address("5678:abcd::1"), address("5678:abcd::2")], ports=hdls_ports, name="hdls1-v6"
            ),
            endpoints("hdlsprtls", [address("172.0.0.20")], ports=()),
            endpoints("hdlsempty", []),
        ],
        "pods": [Pod("web", "testns", "172.0.0.9")],
    }
    values.update(overrides)
    return FakeBackend(**values)  # type: ignore[arg-type]


@dataclass
class Case:
    name: str
    qtype: str
    rcode: str = "NOERROR"
    answer: list[str] = field(default_factory=list)
    authority: list[str] = field(default_factory=list)
    additional: list[str] = field(default_factory=list)


CASES = [
    # ClusterIP Services (CoreDNS commonDnsTestCases)
    Case("svc1.testns.svc.cluster.local.", "A", answer=["svc1.testns.svc.cluster.local. 5 IN A 10.0.0.1"]),
    Case(
        "svcempty.testns.svc.cluster.local.",
        "A",
        answer=["svcempty.testns.svc.cluster.local. 5 IN A 10.0.0.2"],
    ),
    Case(
        "svc1.testns.svc.cluster.local.",
        "SRV",
        answer=["svc1.testns.svc.cluster.local. 5 IN SRV 0 100 80 svc1.testns.svc.cluster.local."],
        additional=["svc1.testns.svc.cluster.local. 5 IN A 10.0.0.1"],
    ),
    Case(
        "svc6.testns.svc.cluster.local.",
        "SRV",
        answer=["svc6.testns.svc.cluster.local. 5 IN SRV 0 100 80 svc6.testns.svc.cluster.local."],
        additional=["svc6.testns.svc.cluster.local. 5 IN AAAA 1234:abcd::1"],
    ),
    Case(
        "_http._tcp.svc1.testns.svc.cluster.local.",
        "SRV",
        answer=["_http._tcp.svc1.testns.svc.cluster.local. 5 IN SRV 0 100 80 svc1.testns.svc.cluster.local."],
        additional=["svc1.testns.svc.cluster.local. 5 IN A 10.0.0.1"],
    ),
    Case("_https._tcp.svc1.testns.svc.cluster.local.", "SRV", "NXDOMAIN", authority=[SOA]),
    Case("_http._udp.svc1.testns.svc.cluster.local.", "SRV", "NXDOMAIN", authority=[SOA]),
    Case("svc1.testns.svc.cluster.local.", "AAAA", authority=[SOA]),
    Case("svc0.testns.svc.cluster.local.", "AAAA", "NXDOMAIN", authority=[SOA]),
    Case("svc0.testns.svc.cluster.local.", "A", "NXDOMAIN", authority=[SOA]),
    Case("svc0.svc-nons.svc.cluster.local.", "A", "NXDOMAIN", authority=[SOA]),
    Case("dns-version.cluster.local.", "TXT", answer=['dns-version.cluster.local. 28800 IN TXT "1.1.0"']),
    Case("dns-version.cluster.local.", "A", "NXDOMAIN", authority=[SOA]),
    Case("svc1.testns.svc.cluster.local.", "TXT", authority=[SOA]),
    Case("svc0.svc-nons.svc.cluster.local.", "TXT", "NXDOMAIN", authority=[SOA]),
    Case("bogusendpoint.hdls1.testns.svc.cluster.local.", "A", "NXDOMAIN", authority=[SOA]),
    Case("bogusendpoint.svc0.testns.svc.cluster.local.", "A", "NXDOMAIN", authority=[SOA]),
    Case(
        "svc6.testns.svc.cluster.local.",
        "AAAA",
        answer=["svc6.testns.svc.cluster.local. 5 IN AAAA 1234:abcd::1"],
    ),
    Case("svc.cluster.local.", "A", authority=[SOA]),
    Case("pod.cluster.local.", "A", authority=[SOA]),
    Case("testns.svc.cluster.local.", "A", authority=[SOA]),
    Case("testns.svc.cluster.local.", "TXT", "NXDOMAIN", authority=[SOA]),
    Case("svc.cluster.local.", "NS", authority=[SOA]),
    Case("foo.cluster.local.", "NS", "NXDOMAIN", authority=[SOA]),
    Case("foo.svc.cluster.local.", "NS", "NXDOMAIN", authority=[SOA]),
    Case(
        "svc-dual-stack.testns.svc.cluster.local.",
        "A",
        answer=["svc-dual-stack.testns.svc.cluster.local. 5 IN A 10.0.0.3"],
    ),
    Case(
        "svc-dual-stack.testns.svc.cluster.local.",
        "AAAA",
        answer=["svc-dual-stack.testns.svc.cluster.local. 5 IN AAAA 10::3"],
    ),
    Case(
        "svc-dual-stack.testns.svc.cluster.local.",
        "SRV",
        answer=[
            "svc-dual-stack.testns.svc.cluster.local. 5 IN SRV 0 50 80 svc-dual-stack.testns.svc.cluster.local."
        ],
        additional=[
            "svc-dual-stack.testns.svc.cluster.local. 5 IN A 10.0.0.3",
            "svc-dual-stack.testns.svc.cluster.local. 5 IN AAAA 10::3",
        ],
    ),
    Case("svc1.testns.svc.cluster.local.", "SOA", authority=[SOA]),
    Case("cluster.local.", "SOA", answer=[SOA]),
    Case("endpoint.external.testns.svc.cluster.local.", "CNAME", "NXDOMAIN", authority=[SOA]),
    Case("subdomain.subdomain.external.testns.svc.cluster.local.", "CNAME", "NXDOMAIN", authority=[SOA]),
    # Headless Services (CoreDNS dnsTestCases)
    Case(
        "_http._tcp.hdls1.testns.svc.cluster.local.",
        "SRV",
        answer=[
            "_http._tcp.hdls1.testns.svc.cluster.local. 5 IN SRV 0 16 80 172-0-0-2.hdls1.testns.svc.cluster.local.",
            "_http._tcp.hdls1.testns.svc.cluster.local. 5 IN SRV 0 16 80 172-0-0-3.hdls1.testns.svc.cluster.local.",
            "_http._tcp.hdls1.testns.svc.cluster.local. 5 IN SRV 0 16 80 5678-abcd--1.hdls1.testns.svc.cluster.local.",
            "_http._tcp.hdls1.testns.svc.cluster.local. 5 IN SRV 0 16 80 5678-abcd--2.hdls1.testns.svc.cluster.local.",
            "_http._tcp.hdls1.testns.svc.cluster.local. 5 IN SRV 0 16 80 dup-name.hdls1.testns.svc.cluster.local.",
        ],
        additional=[
            "172-0-0-2.hdls1.testns.svc.cluster.local. 5 IN A 172.0.0.2",
            "172-0-0-3.hdls1.testns.svc.cluster.local. 5 IN A 172.0.0.3",
            "5678-abcd--1.hdls1.testns.svc.cluster.local. 5 IN AAAA 5678:abcd::1",
            "5678-abcd--2.hdls1.testns.svc.cluster.local. 5 IN AAAA 5678:abcd::2",
            "dup-name.hdls1.testns.svc.cluster.local. 5 IN A 172.0.0.4",
            "dup-name.hdls1.testns.svc.cluster.local. 5 IN A 172.0.0.5",
        ],
    ),
    Case(
        "hdls1.testns.svc.cluster.local.",
        "A",
        answer=[f"hdls1.testns.svc.cluster.local. 5 IN A 172.0.0.{i}" for i in (2, 3, 4, 5)],
    ),
    Case(
        "hdls1.testns.svc.cluster.local.",
        "AAAA",
        answer=[f"hdls1.testns.svc.cluster.local. 5 IN AAAA 5678:abcd::{i}" for i in (1, 2)],
    ),
    Case(
        "5678-abcd--2.hdls1.testns.svc.cluster.local.",
        "AAAA",
        answer=["5678-abcd--2.hdls1.testns.svc.cluster.local. 5 IN AAAA 5678:abcd::2"],
    ),
    Case(
        "hdlsprtls.testns.svc.cluster.local.",
        "A",
        answer=["hdlsprtls.testns.svc.cluster.local. 5 IN A 172.0.0.20"],
    ),
    Case("hdlsprtls.testns.svc.cluster.local.", "SRV", authority=[SOA]),
    Case(
        "172-0-0-20.hdlsprtls.testns.svc.cluster.local.",
        "A",
        answer=["172-0-0-20.hdlsprtls.testns.svc.cluster.local. 5 IN A 172.0.0.20"],
    ),
    Case(
        "172-0-0-2.hdls1.testns.svc.cluster.local.",
        "A",
        answer=["172-0-0-2.hdls1.testns.svc.cluster.local. 5 IN A 172.0.0.2"],
    ),
    Case(
        "dup-name.hdls1.testns.svc.cluster.local.",
        "A",
        answer=[f"dup-name.hdls1.testns.svc.cluster.local. 5 IN A 172.0.0.{i}" for i in (4, 5)],
    ),
    Case("hdlsempty.testns.svc.cluster.local.", "A", "NXDOMAIN", authority=[SOA]),
    # An endpoint name works for a ClusterIP Service's endpoints too (CoreDNS: r.endpoint != "").
    Case(
        "172-0-0-1.svc1.testns.svc.cluster.local.",
        "A",
        answer=["172-0-0-1.svc1.testns.svc.cluster.local. 5 IN A 172.0.0.1"],
    ),
    # ExternalName
    Case(
        "external.testns.svc.cluster.local.",
        "CNAME",
        answer=["external.testns.svc.cluster.local. 5 IN CNAME ext.interwebs.test."],
    ),
    Case(
        "external-to-service.testns.svc.cluster.local.",
        "A",
        answer=[
            "external-to-service.testns.svc.cluster.local. 5 IN CNAME svc1.testns.svc.cluster.local.",
            "svc1.testns.svc.cluster.local. 5 IN A 10.0.0.1",
        ],
    ),
    Case("external.testns.svc.cluster.local.", "SRV", authority=[SOA]),
    Case("external.testns.svc.cluster.local.", "TXT", authority=[SOA]),
    # Unnamed ports have no SRV of their own, but appear under the Service name.
    Case(
        "unnamed.testns.svc.cluster.local.",
        "SRV",
        answer=[
            "unnamed.testns.svc.cluster.local. 5 IN SRV 0 50 8080 unnamed.testns.svc.cluster.local.",
            "unnamed.testns.svc.cluster.local. 5 IN SRV 0 50 9090 unnamed.testns.svc.cluster.local.",
        ],
        additional=["unnamed.testns.svc.cluster.local. 5 IN A 10.0.0.4"],
    ),
    Case(
        "_metrics._udp.unnamed.testns.svc.cluster.local.",
        "SRV",
        answer=[
            "_metrics._udp.unnamed.testns.svc.cluster.local. 5 IN SRV 0 100 9090 unnamed.testns.svc.cluster.local."
        ],
        additional=["unnamed.testns.svc.cluster.local. 5 IN A 10.0.0.4"],
    ),
    # Other types: NODATA when the name exists, NXDOMAIN otherwise (CoreDNS's "fake A lookup").
    Case("svc1.testns.svc.cluster.local.", "MX", authority=[SOA]),
    Case("svc1.testns.svc.cluster.local.", "HINFO", authority=[SOA]),
    Case("svc1.testns.svc.cluster.local.", "CNAME", authority=[SOA]),
    Case("svc1.testns.svc.cluster.local.", "PTR", authority=[SOA]),
    Case("nope.testns.svc.cluster.local.", "HINFO", "NXDOMAIN", authority=[SOA]),
    Case("svc1.testns.svc.cluster.local.", "AXFR", "REFUSED"),
    Case("cluster.local.", "IXFR", "REFUSED"),
    # No wildcards in current CoreDNS: "*" is a label like any other.
    Case("*.testns.svc.cluster.local.", "A", "NXDOMAIN", authority=[SOA]),
    Case("svc1.*.svc.cluster.local.", "A", "NXDOMAIN", authority=[SOA]),
    # Shapes that are not cluster names.
    Case("foo.cluster.local.", "A", "NXDOMAIN", authority=[SOA]),
    Case("a.b.c.svc1.testns.svc.cluster.local.", "A", "NXDOMAIN", authority=[SOA]),
    Case("cluster.local.", "A", authority=[SOA]),
    # Pods are disabled by default.
    Case("1-2-3-4.testns.pod.cluster.local.", "A", "NXDOMAIN", authority=[SOA]),
    # PTR: ClusterIP first, then endpoints; the reverse zone is a zone of its own.
    Case(
        "1.0.0.10.in-addr.arpa.",
        "PTR",
        answer=["1.0.0.10.in-addr.arpa. 5 IN PTR svc1.testns.svc.cluster.local."],
    ),
    Case(
        "3.0.0.172.in-addr.arpa.",
        "PTR",
        answer=["3.0.0.172.in-addr.arpa. 5 IN PTR 172-0-0-3.hdls1.testns.svc.cluster.local."],
    ),
    Case(
        "4.0.0.172.in-addr.arpa.",
        "PTR",
        answer=["4.0.0.172.in-addr.arpa. 5 IN PTR dup-name.hdls1.testns.svc.cluster.local."],
    ),
    Case(
        "3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.ip6.arpa.",
        "PTR",
        answer=[
            "3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.ip6.arpa. 5 IN PTR svc-dual-stack.testns.svc.cluster.local."
        ],
    ),
    Case("9.9.9.9.in-addr.arpa.", "PTR", "NXDOMAIN", authority=[REVERSE_SOA]),
    Case("0.10.in-addr.arpa.", "PTR", "NXDOMAIN", authority=[REVERSE_SOA]),
    Case("1.0.0.10.in-addr.arpa.", "A", "NXDOMAIN", authority=[REVERSE_SOA]),
    # Namespaces outside the "namespaces" option do not exist.
    Case("hidden.other.svc.cluster.local.", "A", "NXDOMAIN", authority=[SOA]),
    Case("9.9.0.10.in-addr.arpa.", "PTR", "NXDOMAIN", authority=[REVERSE_SOA]),
]

ZONES = (("cluster", "local"), ("in-addr", "arpa"), ("ip6", "arpa"))


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.name}{c.qtype}")
def test_record_rules(case: Case) -> None:
    handler = make_handler(cluster(), zones=ZONES, namespaces=frozenset({"testns"}))
    for attempt in ("computed", "prebuilt"):
        reply = ask(handler, case.name, case.qtype)
        where = f"{attempt}: {case.name} {case.qtype}"
        assert dns.rcode.to_text(reply.rcode()) == case.rcode, where
        assert lines(reply.answer) == normalize(case.answer), where
        assert lines(reply.authority) == normalize(case.authority), where
        assert lines(reply.additional) == normalize(case.additional), where
        if case.rcode != "REFUSED":
            assert reply.flags & dns.flags.AA, where
        assert not reply.flags & dns.flags.RA, where  # CoreDNS's cluster answers: "recursion not available"


def test_cname_comes_before_its_target() -> None:
    handler = make_handler(cluster())
    reply = ask(handler, "external-to-service.testns.svc.cluster.local.", "A")
    assert [rrset.rdtype for rrset in reply.answer] == [dns.rdatatype.CNAME, dns.rdatatype.A]


def test_names_keep_the_question_case_in_answers_and_authority() -> None:
    handler = make_handler(cluster())
    for _ in range(2):
        reply = ask(handler, "SVC1.TestNS.svc.Cluster.Local.", "A")
        assert reply.answer[0].name.to_text() == "SVC1.TestNS.svc.Cluster.Local."
        assert reply.question[0].name.to_text() == "SVC1.TestNS.svc.Cluster.Local."
        negative = ask(handler, "Nope.testns.svc.CLUSTER.local.", "A")
        assert negative.authority[0].name.to_text() == "CLUSTER.local."
        assert negative.authority[0][0].mname.to_text() == "ns.dns.CLUSTER.local."


def test_before_the_first_sync_name_errors_are_servfail() -> None:
    handler = make_handler(cluster(synced=False))
    reply = ask(handler, "svc0.testns.svc.cluster.local.", "A")
    assert reply.rcode() == dns.rcode.SERVFAIL
    assert lines(reply.authority) == normalize([SOA])
    assert ask(handler, "svc1.testns.svc.cluster.local.", "A").rcode() == dns.rcode.NOERROR
    assert len(handler.table) == 0, "nothing is prebuilt from an unsynced cache"


def test_ttl_option_sets_answer_ttl_and_soa_minimum() -> None:
    handler = make_handler(cluster(), ttl=30)
    assert lines(ask(handler, "svc1.testns.svc.cluster.local.", "A").answer) == normalize(
        ["svc1.testns.svc.cluster.local. 30 IN A 10.0.0.1"]
    )
    assert lines(ask(handler, "nope.testns.svc.cluster.local.", "A").authority) == normalize(
        [
            "cluster.local. 30 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1499347823 7200 1800 86400 30"
        ]
    )
    long = make_handler(cluster(), ttl=3600)
    assert ask(long, "nope.testns.svc.cluster.local.", "A").authority[0].ttl == 300  # min(ttl, 300)


@pytest.mark.parametrize(
    ("mode", "name", "rcode", "answer"),
    [
        (
            PodMode.INSECURE,
            "1-2-3-4.testns.pod.cluster.local.",
            "NOERROR",
            ["1-2-3-4.testns.pod.cluster.local. 5 IN A 1.2.3.4"],
        ),
        (PodMode.INSECURE, "1-2-3-4.nons.pod.cluster.local.", "NXDOMAIN", []),
        (PodMode.INSECURE, "not-an-ip.testns.pod.cluster.local.", "NXDOMAIN", []),
        (
            PodMode.INSECURE,
            "x.1-2-3-4.testns.pod.cluster.local.",
            "NOERROR",
            ["x.1-2-3-4.testns.pod.cluster.local. 5 IN A 1.2.3.4"],
        ),
        (PodMode.INSECURE, "testns.pod.cluster.local.", "NOERROR", []),
        (
            PodMode.VERIFIED,
            "172-0-0-9.testns.pod.cluster.local.",
            "NOERROR",
            ["172-0-0-9.testns.pod.cluster.local. 5 IN A 172.0.0.9"],
        ),
        (PodMode.VERIFIED, "172-0-0-9.other.pod.cluster.local.", "NXDOMAIN", []),
        (PodMode.VERIFIED, "1-2-3-4.testns.pod.cluster.local.", "NXDOMAIN", []),
        (PodMode.DISABLED, "172-0-0-9.testns.pod.cluster.local.", "NXDOMAIN", []),
    ],
)
def test_pod_records(mode: PodMode, name: str, rcode: str, answer: list[str]) -> None:
    handler = make_handler(cluster(), pods=mode)
    reply = ask(handler, name, "A")
    assert dns.rcode.to_text(reply.rcode()) == rcode
    assert lines(reply.answer) == normalize(answer)


def test_pod_records_for_ipv6_addresses() -> None:
    handler = make_handler(cluster(), pods=PodMode.INSECURE)
    reply = ask(handler, "fd00--1.testns.pod.cluster.local.", "AAAA")
    assert lines(reply.answer) == normalize(["fd00--1.testns.pod.cluster.local. 5 IN AAAA fd00::1"])


def test_endpoint_pod_names_names_endpoints_by_pod() -> None:
    backend = cluster(
        slices=[
            endpoints(
                "hdls1", [address("172.0.0.2", pod="web-0"), address("172.0.0.3", "fixed", pod="web-1")]
            )
        ]
    )
    handler = make_handler(backend, endpoint_pod_names=True)
    assert lines(ask(handler, "web-0.hdls1.testns.svc.cluster.local.", "A").answer) == normalize(
        ["web-0.hdls1.testns.svc.cluster.local. 5 IN A 172.0.0.2"]
    )
    assert (
        ask(handler, "web-1.hdls1.testns.svc.cluster.local.", "A").rcode() == dns.rcode.NXDOMAIN
    )  # hostname wins
    assert ask(handler, "fixed.hdls1.testns.svc.cluster.local.", "A").rcode() == dns.rcode.NOERROR
    plain = make_handler(backend)
    assert ask(plain, "web-0.hdls1.testns.svc.cluster.local.", "A").rcode() == dns.rcode.NXDOMAIN


def test_ignore_empty_service_hides_clusterip_services_without_endpoints() -> None:
    handler = make_handler(cluster(), ignore_empty_service=True)
    assert ask(handler, "svcempty.testns.svc.cluster.local.", "A").rcode() == dns.rcode.NXDOMAIN
    assert ask(handler, "svc1.testns.svc.cluster.local.", "A").rcode() == dns.rcode.NOERROR
    assert ask(handler, "external.testns.svc.cluster.local.", "CNAME").rcode() == dns.rcode.NOERROR
    assert ask(handler, "hdlsprtls.testns.svc.cluster.local.", "A").rcode() == dns.rcode.NOERROR


def test_fallthrough_passes_name_errors_but_not_nodata_to_the_forwarder() -> None:
    # No forwarder is configured, so what falls through is SERVFAIL (CoreDNS: no next plugin).
    handler = make_handler(cluster(), zones=ZONES, fallthrough=(("in-addr", "arpa"),))
    assert ask(handler, "9.9.9.9.in-addr.arpa.", "PTR").rcode() == dns.rcode.SERVFAIL
    assert ask(handler, "nope.testns.svc.cluster.local.", "A").rcode() == dns.rcode.NXDOMAIN
    everywhere = make_handler(cluster(), fallthrough=())
    assert ask(everywhere, "nope.testns.svc.cluster.local.", "A").rcode() == dns.rcode.SERVFAIL
    assert ask(everywhere, "svc1.testns.svc.cluster.local.", "AAAA").rcode() == dns.rcode.NOERROR


def test_ns_records_name_this_server() -> None:
    alone = make_handler(cluster())
    alone.rules.local_ips = ("127.0.0.53",)
    reply = ask(alone, "cluster.local.", "NS")
    assert lines(reply.answer) == normalize(["cluster.local. 5 IN NS ns.dns.cluster.local."])
    assert lines(reply.additional) == normalize(["ns.dns.cluster.local. 5 IN A 127.0.0.53"])
    assert lines(ask(alone, "ns.dns.cluster.local.", "A").answer) == normalize(
        ["ns.dns.cluster.local. 5 IN A 127.0.0.53"]
    )

    backend = cluster()
    backend.services[("kube-system", "kube-dns")] = service("kube-dns", "kube-system", ips=("127.96.0.10",))
    backend.slices.append(endpoints("kube-dns", [address("127.0.0.53")], namespace="kube-system"))
    behind_service = make_handler(backend)
    behind_service.rules.local_ips = ("127.0.0.53",)
    reply = ask(behind_service, "cluster.local.", "NS")
    assert lines(reply.answer) == normalize(
        ["cluster.local. 5 IN NS kube-dns.kube-system.svc.cluster.local."]
    )
    assert lines(reply.additional) == normalize(
        ["kube-dns.kube-system.svc.cluster.local. 5 IN A 127.96.0.10"]
    )


def test_classes_other_than_in_are_refused() -> None:
    handler = make_handler(cluster())
    query = dns.message.make_query("svc1.testns.svc.cluster.local.", "A", rdclass="CH")
    reply = dns.message.from_wire(handler.serve(query.to_wire(), server="s", tcp=False))  # type: ignore[arg-type]
    assert reply.rcode() == dns.rcode.REFUSED


def test_the_nxdomain_shortcut_agrees_with_the_full_rules() -> None:
    names = {case.name for case in CASES} | {
        "ns.dns.cluster.local.",
        "x.ns.dns.cluster.local.",
        "a.b.c.d.e.f.svc.cluster.local.",
        "testns.svc.cluster.local.",
        "nons.svc.cluster.local.",
        "svc.cluster.local.",
        "web.testns.pod.cluster.local.",
        "1-2-3-4.testns.pod.cluster.local.",
    }
    for options in ({}, {"namespaces": frozenset({"testns"})}, {"pods": PodMode.INSECURE}):
        handler = make_handler(cluster(), zones=ZONES, **options)
        rules = handler.rules
        for name in names:
            labels = tuple(name.rstrip(".").split("."))
            zone = rules.match_zone(labels)
            if zone is None:
                continue
            for qtype in (1, 28):
                if rules.quick_name_error(labels, zone):
                    outcome = rules.resolve(labels, qtype)
                    assert outcome is not None and outcome.rcode == dns.rcode.NXDOMAIN, (name, qtype, options)
    assert not make_handler(cluster(synced=False)).rules.quick_name_error(
        ("x", "testns", "svc", "cluster", "local"), ("cluster", "local")
    )
    assert not make_handler(cluster(), fallthrough=()).rules.quick_name_error(
        ("x", "testns", "svc", "cluster", "local"), ("cluster", "local")
    )


def test_noendpoints_serves_no_endpoint_records() -> None:
    handler = make_handler(cluster(), noendpoints=True)
    assert ask(handler, "hdls1.testns.svc.cluster.local.", "A").rcode() == dns.rcode.NXDOMAIN
    assert ask(handler, "172-0-0-1.svc1.testns.svc.cluster.local.", "A").rcode() == dns.rcode.NXDOMAIN
    assert ask(handler, "svc1.testns.svc.cluster.local.", "A").answer
