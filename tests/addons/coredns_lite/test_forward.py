"""Forwarding and its cache: a real dnsmasq upstream, and a FAKE upstream for the faults.

The handler is driven directly (wire in, wire out); the listeners are tested in test_server.
"""

from __future__ import annotations

import asyncio

import dns.flags
import dns.message
import dns.rcode
import pytest

from addons.coredns_lite.answers import KubernetesOptions, Rules
from addons.coredns_lite.cache import CacheOptions, ForwardCache
from addons.coredns_lite.forward import (
    Forwarder,
    Policy,
    Upstream,
    UpstreamConfigError,
    parse_upstream,
    upstreams_from_resolv_conf,
)
from addons.coredns_lite.handler import Handler
from addons.coredns_lite.metrics import DNSMetrics
from tests.addons.coredns_lite.fakes import FakeBackend, service
from tests.addons.coredns_lite.upstreams import FakeUpstream, answer_with, run_dnsmasq

HOST = "127.0.0.1"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def resolve(
    handler: Handler, name: str, rtype: str = "A", *, tcp: bool = False, **kwargs: object
) -> dns.message.Message:
    query = dns.message.make_query(name, rtype, **kwargs)  # type: ignore[arg-type]
    result = handler.serve(query.to_wire(), server="dns://test:53", tcp=tcp)
    if not isinstance(result, bytes):
        result = await result  # type: ignore[misc]
    assert isinstance(result, bytes)
    reply = dns.message.from_wire(result)
    assert reply.id == query.id
    return reply


def make(upstreams: list[Upstream], *, cache: ForwardCache | None = None, **forward: object) -> Handler:
    metrics = DNSMetrics()
    backend = FakeBackend(
        services=[
            service("svc1"),
            service("ext", ips=("",), type="ExternalName", external="www.example.test"),
        ]
    )
    forwarder = Forwarder(upstreams, metrics=metrics, **forward)  # type: ignore[arg-type]
    rules = Rules(
        options=KubernetesOptions(
            zones=(("cluster", "local"), ("in-addr", "arpa")), fallthrough=(("in-addr", "arpa"),)
        ),
        backend=backend,
    )
    return Handler(rules=rules, metrics=metrics, forwarder=forwarder, cache=cache)


async def test_forwards_to_dnsmasq_and_serves_repeats_from_the_cache(tmp_path) -> None:
    clock = Clock()
    async with run_dnsmasq(tmp_path, host=HOST, hosts={"www.example.test": "192.0.2.10"}) as port:
        handler = make([Upstream(HOST, port)], cache=ForwardCache(CacheOptions(), clock=clock))
        try:
            first = await resolve(handler, "www.example.test.")
            assert [r.to_text() for r in first.answer[0]] == ["192.0.2.10"]
            assert first.answer[0].ttl == 60
            assert first.flags & dns.flags.RA
            clock.now += 25
            again = await resolve(handler, "WWW.example.TEST.")
            assert again.answer[0].ttl == 35, "a cached answer's TTL counts down"
            assert again.answer[0].name.to_text() == "WWW.example.TEST.", "and keeps the question's case"
            assert again.flags & dns.flags.AA and again.flags & dns.flags.RA
            assert handler.metrics.cache_hits == {("dns://test:53", "success"): 1}
            assert handler.metrics.forward_requests == {f"{HOST}:{port}": 1}
            missing = await resolve(handler, "nope.example.test.")
            assert missing.rcode() == dns.rcode.NXDOMAIN
            assert (await resolve(handler, "nope.example.test.")).rcode() == dns.rcode.NXDOMAIN
            assert handler.metrics.cache_hits[("dns://test:53", "denial")] == 1
            clock.now += 100
            await resolve(handler, "www.example.test.")
            assert handler.metrics.forward_requests == {f"{HOST}:{port}": 3}, (
                "an expired entry is fetched again"
            )
            # A name error in a fallthrough zone goes upstream too; an ExternalName is chased upstream.
            chased = await resolve(handler, "ext.testns.svc.cluster.local.")
            assert [rrset.rdtype for rrset in chased.answer] == [dns.rdatatype.CNAME, dns.rdatatype.A]
            assert chased.answer[1][0].to_text() == "192.0.2.10"
        finally:
            await handler.forwarder.close()  # type: ignore[union-attr]


async def test_truncated_udp_answers_are_fetched_again_over_tcp() -> None:
    records = [f"big.example.test. 30 IN A 192.0.2.{i}" for i in range(1, 60)]
    full = answer_with(*records)

    def responder(query: dns.message.Message, tcp: bool) -> dns.message.Message:
        reply = full(query, tcp)
        if not tcp:
            reply.answer = []
            reply.flags |= dns.flags.TC
        return reply

    async with FakeUpstream(HOST, responder) as upstream:
        handler = make([Upstream(HOST, upstream.port)], cache=ForwardCache())
        try:
            udp = await resolve(handler, "big.example.test.", use_edns=0, payload=512)
            assert udp.flags & dns.flags.TC, "too big for the client's 512 bytes"
            assert [tcp for _, tcp in upstream.queries] == [False, True]
            tcp = await resolve(handler, "big.example.test.", tcp=True)
            assert len(tcp.answer[0]) == 59 and not tcp.flags & dns.flags.TC
            big = await resolve(handler, "big.example.test.", use_edns=0, payload=4096)
            assert len(big.answer[0]) == 59
            assert len(upstream.queries) == 2, "later queries come from the cache"
        finally:
            await handler.forwarder.close()  # type: ignore[union-attr]


async def test_a_silent_upstream_is_skipped_and_all_silent_is_servfail() -> None:
    async with (
        FakeUpstream(HOST, lambda q, tcp: None) as silent,
        FakeUpstream(HOST, answer_with("www.example.test. 30 IN A 192.0.2.1")) as good,
    ):
        handler = make(
            [Upstream(HOST, silent.port), Upstream(HOST, good.port)],
            policy=Policy.SEQUENTIAL,
            attempt_timeout=0.2,
        )
        try:
            reply = await resolve(handler, "www.example.test.")
            assert reply.answer and len(silent.queries) == 1
            only_silent = make([Upstream(HOST, silent.port)], attempt_timeout=0.1, timeout=0.3)
            assert (await resolve(only_silent, "x.example.test.")).rcode() == dns.rcode.SERVFAIL
            await only_silent.forwarder.close()  # type: ignore[union-attr]
        finally:
            await handler.forwarder.close()  # type: ignore[union-attr]


async def test_answers_with_the_wrong_id_or_question_are_ignored() -> None:
    def wrong(query: dns.message.Message, tcp: bool) -> dns.message.Message:
        reply = answer_with("www.example.test. 30 IN A 192.0.2.1")(query, tcp)
        reply.id = (query.id + 1) % 65536
        return reply

    async with FakeUpstream(HOST, wrong) as upstream:
        handler = make([Upstream(HOST, upstream.port)], attempt_timeout=0.2, timeout=0.3)
        try:
            assert (await resolve(handler, "www.example.test.")).rcode() == dns.rcode.SERVFAIL
        finally:
            await handler.forwarder.close()  # type: ignore[union-attr]


async def test_identical_questions_in_flight_go_upstream_once_and_max_concurrent_refuses() -> None:
    held: list[dns.message.Message] = []
    arrived = asyncio.Event()

    def hold(query: dns.message.Message, tcp: bool) -> None:
        held.append(query)
        arrived.set()

    async with FakeUpstream(HOST, hold) as upstream:
        handler = make([Upstream(HOST, upstream.port)], max_concurrent=1, attempt_timeout=1.0, timeout=1.0)
        try:
            first = asyncio.ensure_future(resolve(handler, "same.example.test."))
            second = asyncio.ensure_future(resolve(handler, "same.example.test."))
            async with asyncio.timeout(5):
                await arrived.wait()
            refused = await resolve(handler, "other.example.test.")
            assert refused.rcode() == dns.rcode.REFUSED
            assert handler.metrics.max_concurrent_rejects == 1
            replies = await asyncio.gather(first, second)
            assert [r.rcode() for r in replies] == [dns.rcode.SERVFAIL, dns.rcode.SERVFAIL]
            assert len(held) == 1, "the second identical query waited for the first"
        finally:
            await handler.forwarder.close()  # type: ignore[union-attr]


def test_upstream_addresses_and_resolv_conf(tmp_path) -> None:
    assert parse_upstream("127.0.0.53") == Upstream("127.0.0.53", 53)
    assert parse_upstream("dns://127.0.0.53:5353") == Upstream("127.0.0.53", 5353)
    assert parse_upstream("[::1]:54") == Upstream("::1", 54)
    assert parse_upstream("::1") == Upstream("::1", 53)
    assert Upstream("::1", 54).label == "[::1]:54"
    for bad in ("example.com", "1.2.3.4:0", "1.2.3.4:x", "[::1]x"):
        with pytest.raises(UpstreamConfigError):
            parse_upstream(bad)
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("search svc.cluster.local\nnameserver 127.0.0.53\noptions ndots:5\nnameserver ::1\n")
    assert upstreams_from_resolv_conf(resolv) == [Upstream("127.0.0.53"), Upstream("::1")]
    resolv.write_text("search x\n")
    with pytest.raises(UpstreamConfigError, match="names no nameserver"):
        upstreams_from_resolv_conf(resolv)
    with pytest.raises(UpstreamConfigError, match="cannot read"):
        upstreams_from_resolv_conf(tmp_path / "missing")
