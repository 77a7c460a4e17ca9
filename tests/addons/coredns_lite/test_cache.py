"""The forward cache: what is cached, for how long, how much, and how a hit is served."""

from __future__ import annotations

import dns.flags
import dns.message
import dns.rcode
import dns.rrset

from addons.coredns_lite import wire
from addons.coredns_lite.cache import CacheOptions, ForwardCache


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def response(
    *answer: str,
    rcode: int = dns.rcode.NOERROR,
    authority: tuple[str, ...] = (),
    tc: bool = False,
    edns: bool = True,
) -> tuple[dns.message.Message, bytes]:
    query = dns.message.make_query("www.example.test.", "A", use_edns=0 if edns else False)
    reply = dns.message.make_response(query)
    reply.set_rcode(rcode)
    reply.flags |= dns.flags.RA
    if tc:
        reply.flags |= dns.flags.TC
    for section, lines in ((reply.answer, answer), (reply.authority, authority)):
        for line in lines:
            name, ttl, _cls, rtype, rdata = line.split(None, 4)
            section.append(dns.rrset.from_text(name, int(ttl), "IN", rtype, rdata))
    return query, reply.to_wire()


SOA = "example.test. 120 IN SOA ns.example.test. admin.example.test. 1 7200 1800 86400 {minimum}"


def test_success_lives_for_the_smallest_ttl_and_is_served_counted_down() -> None:
    clock = Clock()
    cache = ForwardCache(clock=clock)
    query, raw = response("www.example.test. 300 IN A 192.0.2.1", "www.example.test. 60 IN A 192.0.2.2")
    entry = cache.put(b"k", raw)
    assert entry is not None and entry.kind == "success" and entry.expires == clock.now + 60
    clock.now += 20
    parsed = wire.parse_query(query.to_wire())
    served = dns.message.from_wire(cache.get(b"k").render(parsed, limit=4096, now=clock.now))  # type: ignore[union-attr]
    assert served.answer[0].ttl == 40
    assert served.flags & dns.flags.AA and served.flags & dns.flags.RA
    assert served.id == query.id and served.edns == 0
    clock.now += 41
    assert cache.get(b"k") is None
    assert cache.sizes() == {"success": 0, "denial": 0}


def test_ttls_are_clamped_by_the_options() -> None:
    cache = ForwardCache(CacheOptions(success_ttl=30, denial_ttl=10), clock=Clock())
    assert cache.put(b"long", response("www.example.test. 3000 IN A 192.0.2.1")[1]).expires == 50 + 30  # type: ignore[union-attr]
    assert cache.put(b"short", response("www.example.test. 1 IN A 192.0.2.1")[1]).expires == 50 + 5  # type: ignore[union-attr]


def test_denials_live_for_the_soa_minimum_or_five_seconds() -> None:
    cache = ForwardCache(clock=Clock())
    nx = cache.put(b"nx", response(rcode=dns.rcode.NXDOMAIN, authority=(SOA.format(minimum=45),))[1])
    assert nx is not None and nx.kind == "denial" and nx.expires == 50 + 45
    nodata = cache.put(b"nodata", response(authority=(SOA.format(minimum=600),))[1])
    assert nodata is not None and nodata.kind == "denial" and nodata.expires == 50 + 120  # the SOA's own TTL
    bare = cache.put(b"bare", response(rcode=dns.rcode.NXDOMAIN)[1])
    assert bare is not None and bare.expires == 50 + 5


def test_failures_and_truncated_answers_are_not_cached() -> None:
    cache = ForwardCache(clock=Clock())
    assert cache.put(b"a", response(rcode=dns.rcode.SERVFAIL)[1]) is None
    assert cache.put(b"b", response(rcode=dns.rcode.REFUSED)[1]) is None
    assert cache.put(b"c", response("www.example.test. 60 IN A 192.0.2.1", tc=True)[1]) is None
    assert cache.put(b"d", b"\x00\x01garbage") is None
    assert cache.sizes() == {"success": 0, "denial": 0}


def test_capacity_evicts_the_oldest() -> None:
    cache = ForwardCache(CacheOptions(success_capacity=2), clock=Clock())
    raw = response("www.example.test. 60 IN A 192.0.2.1")[1]
    for key in (b"1", b"2", b"3"):
        cache.put(key, raw)
    assert cache.get(b"1") is None and cache.get(b"2") is not None and cache.get(b"3") is not None
    assert cache.sizes()["success"] == 2


def test_the_upstreams_opt_record_is_replaced_by_ours() -> None:
    cache = ForwardCache(clock=Clock())
    entry = cache.put(b"k", response("www.example.test. 60 IN A 192.0.2.1", edns=True)[1])
    assert entry is not None and entry.arcount == 0
    plain = wire.parse_query(dns.message.make_query("www.example.test.", "A", use_edns=False).to_wire())
    served = dns.message.from_wire(entry.render(plain, limit=512, now=50))
    assert served.edns == -1, "no OPT for a client that sent none"
