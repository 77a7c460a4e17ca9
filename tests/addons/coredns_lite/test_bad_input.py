"""Malformed and unusual queries: the right rcode (or silence), never a crash, and service goes on.

miekg/dns's server (what CoreDNS runs on) sets the rules: runts and responses are dropped,
other opcodes get NOTIMP, more or fewer than one question FORMERR, and so does anything that does
not parse; EDNS versions above 0 get BADVERS.
"""

from __future__ import annotations

import random
import struct

import dns.edns
import dns.message
import dns.rcode
import pytest

from addons.coredns_lite import wire
from tests.addons.coredns_lite.fakes import FakeBackend, service
from tests.addons.coredns_lite.support import SERVER, ask, ask_raw, make_handler

NAME = b"\x04svc1\x06testns\x03svc\x07cluster\x05local\x00"


def header(
    *, flags: int = 0x0100, qd: int = 1, an: int = 0, ns: int = 0, ar: int = 0, ident: int = 0x1234
) -> bytes:
    return struct.pack("!HHHHHH", ident, flags, qd, an, ns, ar)


def question(name: bytes = NAME, qtype: int = wire.A, qclass: int = wire.CLASS_IN) -> bytes:
    return name + struct.pack("!HH", qtype, qclass)


@pytest.fixture
def handler():
    return make_handler(FakeBackend(services=[service("svc1")]))


def serve(handler, packet: bytes) -> bytes | None:
    reply = handler.serve(packet, server=SERVER, tcp=False)
    assert reply is None or isinstance(reply, bytes)
    return reply


def rcode_of(reply: bytes) -> int:
    return reply[3] & 0x0F


@pytest.mark.parametrize(
    ("packet", "expected"),
    [
        (b"", None),
        (b"\x12", None),
        (header()[:11], None),
        (header(flags=0x8100) + question(), None),  # QR set: a response
        (header(flags=0x2800) + question(), wire.NOTIMP),  # opcode 5 (UPDATE)
        (header(flags=0x1000) + question(), wire.NOTIMP),  # opcode 2 (STATUS)
        (header(qd=0), wire.FORMERR),
        (header(qd=2) + question() + question(), wire.FORMERR),
        (header(an=1) + question(), wire.FORMERR),
        (header() + question()[:-2], wire.FORMERR),  # truncated question
        (header() + NAME[:10], wire.FORMERR),  # name runs off the end
        (header() + b"\xc0\x0c" + struct.pack("!HH", 1, 1), wire.FORMERR),  # pointer loop to itself
        (
            header() + b"\x04svc1\xc0\x0c" + struct.pack("!HH", 1, 1),
            wire.FORMERR,
        ),  # pointer back into the name
        (header() + b"\x80abc\x00" + struct.pack("!HH", 1, 1), wire.FORMERR),  # reserved label type
        (
            header() + b"\x3f" + b"a" * 63 + (b"\x3f" + b"a" * 63) * 4 + b"\x00" + struct.pack("!HH", 1, 1),
            wire.FORMERR,
        ),
        (header() + question() + b"trailing", wire.FORMERR),
        (header(ar=1) + question(), wire.FORMERR),  # promised OPT missing
        (header(ar=2) + question() + b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00" * 2, wire.FORMERR),
        (
            header(ar=1) + question() + b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x10",
            wire.FORMERR,
        ),  # rdlen past end
    ],
    ids=lambda value: value.hex()[:24] if isinstance(value, bytes) else str(value),
)
def test_malformed_queries_get_the_right_rcode_or_are_dropped(
    handler, packet: bytes, expected: int | None
) -> None:
    reply = serve(handler, packet)
    if expected is None:
        assert reply is None
        return
    assert reply is not None
    assert reply[:2] == packet[:2], "the reply carries the query's ID"
    assert reply[2] & 0x80, "QR is set"
    assert rcode_of(reply) == expected
    assert ask(handler, "svc1.testns.svc.cluster.local.", "A").rcode() == dns.rcode.NOERROR


def test_notimp_keeps_the_opcode(handler) -> None:
    reply = serve(handler, header(flags=0x2800) + question())
    assert reply is not None and (reply[2] >> 3) & 0x0F == 5


def test_edns_version_above_zero_gets_badvers(handler) -> None:
    query = dns.message.make_query("svc1.testns.svc.cluster.local.", "A", use_edns=1)
    reply = dns.message.from_wire(serve(handler, query.to_wire()))
    assert reply.rcode() == dns.rcode.BADVERS
    assert reply.edns == 0


@pytest.mark.parametrize("qtype", [0, 13, 99, 255, 4095, 65280, 65535])
def test_unknown_types_are_answered_as_coredns_does(handler, qtype: int) -> None:
    known = serve(handler, header() + question(qtype=qtype))
    assert known is not None and rcode_of(known) == wire.NOERROR  # the name exists: NODATA
    unknown = serve(
        handler, header() + question(b"\x04nope\x06testns\x03svc\x07cluster\x05local\x00", qtype=qtype)
    )
    assert unknown is not None and rcode_of(unknown) == wire.NXDOMAIN


@pytest.mark.parametrize("qclass", [0, 3, 4, 254, 255, 65535])
def test_other_classes_are_refused(handler, qclass: int) -> None:
    reply = serve(handler, header() + question(qclass=qclass))
    assert reply is not None and rcode_of(reply) == wire.REFUSED


def test_garbage_never_crashes_and_service_goes_on(handler) -> None:
    rng = random.Random(4)
    for size in [*range(40), 100, 511, 512, 513, 4096, 65535]:
        for _ in range(30):
            packet = bytes(rng.getrandbits(8) for _ in range(size))
            reply = serve(handler, packet)
            if reply is not None:
                assert reply[:2] == packet[:2]
                assert rcode_of(reply) != wire.SERVFAIL or handler.metrics.panics == 0
    # Mutations of a valid query: every byte position flipped.
    valid = dns.message.make_query("svc1.testns.svc.cluster.local.", "A", use_edns=0).to_wire()
    for position in range(len(valid)):
        for value in (0x00, 0x3F, 0x40, 0xC0, 0xFF):
            serve(handler, valid[:position] + bytes((value,)) + valid[position + 1 :])
    assert handler.metrics.panics == 0
    assert ask(handler, "svc1.testns.svc.cluster.local.", "A").answer


def test_a_panic_is_counted_and_answered_servfail(handler, monkeypatch) -> None:
    def explode(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(handler.rules, "resolve", explode)
    query = dns.message.make_query("svc1.testns.svc.cluster.local.", "SRV")
    reply = dns.message.from_wire(serve(handler, query.to_wire()))
    assert reply.rcode() == dns.rcode.SERVFAIL
    assert handler.metrics.panics == 1


def test_oversized_answers_are_truncated_over_udp_and_whole_over_tcp() -> None:
    from tests.addons.coredns_lite.fakes import address, endpoints

    many = [address(f"172.1.{i // 250}.{i % 250}") for i in range(100)]
    handler = make_handler(
        FakeBackend(services=[service("big", ips=("None",))], slices=[endpoints("big", many, name="big")])
    )
    name = "big.testns.svc.cluster.local."
    plain, raw = ask_raw(handler, name, "A", edns=False)
    assert plain.flags & dns.flags.TC and 0 < len(plain.answer[0]) < 100
    assert len(raw) <= 512
    edns, raw = ask_raw(handler, name, "A", payload=1232)
    assert edns.flags & dns.flags.TC and len(plain.answer[0]) < len(edns.answer[0]) < 100
    assert len(raw) <= 1232
    whole = ask(handler, name, "A", payload=4096)
    assert not whole.flags & dns.flags.TC and len(whole.answer[0]) == 100
    tcp = ask(handler, name, "A", edns=False, tcp=True)
    assert not tcp.flags & dns.flags.TC and len(tcp.answer[0]) == 100
    srv = ask(handler, "big.testns.svc.cluster.local.", "SRV", payload=1232)
    assert srv.flags & dns.flags.TC


def test_dropping_additional_records_alone_does_not_set_tc() -> None:
    from tests.addons.coredns_lite.fakes import address, endpoints

    many = [address(f"172.1.0.{i}") for i in range(1, 13)]
    handler = make_handler(
        FakeBackend(services=[service("mid", ips=("None",))], slices=[endpoints("mid", many)])
    )
    full, raw = ask_raw(handler, "_http._tcp.mid.testns.svc.cluster.local.", "SRV", payload=4096)
    assert len(full.answer[0]) == 12 and len(full.additional) == 12
    size = len(raw)
    # Room for every SRV but not every address record.
    query = dns.message.make_query(
        "_http._tcp.mid.testns.svc.cluster.local.", "SRV", use_edns=0, payload=size - 40
    )
    cut = dns.message.from_wire(handler.serve(query.to_wire(), server=SERVER, tcp=False))  # type: ignore[arg-type]
    assert len(cut.answer[0]) == 12 and len(cut.additional) < 12
    assert not cut.flags & dns.flags.TC


def test_the_do_bit_and_buffer_size_are_echoed(handler) -> None:
    query = dns.message.make_query(
        "svc1.testns.svc.cluster.local.", "A", use_edns=0, payload=1400, want_dnssec=True
    )
    for _ in range(2):
        reply = dns.message.from_wire(serve(handler, query.to_wire()))
        assert reply.edns == 0 and reply.payload == 1400
        assert reply.ednsflags & dns.flags.DO
    small = dns.message.make_query("svc1.testns.svc.cluster.local.", "A", use_edns=0, payload=100)
    assert dns.message.from_wire(serve(handler, small.to_wire())).payload == 512  # at least 512


def test_queries_with_edns_options_are_answered(handler) -> None:
    cookie = dns.edns.GenericOption(dns.edns.OptionType.COOKIE, b"\x01" * 8)
    query = dns.message.make_query("svc1.testns.svc.cluster.local.", "A", use_edns=0, options=[cookie])
    reply = dns.message.from_wire(serve(handler, query.to_wire()))
    assert reply.rcode() == dns.rcode.NOERROR and reply.answer
