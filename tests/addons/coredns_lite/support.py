"""Helpers shared by the coredns_lite tests: queries in, zone-file lines out.

Answers are compared as CoreDNS's tests compare them: each section as a sorted list of
zone-file lines (``name ttl IN TYPE rdata``), normalized by dnspython so spacing and case in the
expected text do not matter.
"""

from __future__ import annotations

import dns.flags
import dns.message
import dns.rrset

from addons.coredns_lite.answers import KubernetesOptions, Rules
from addons.coredns_lite.handler import Handler
from addons.coredns_lite.metrics import DNSMetrics
from tests.addons.coredns_lite.fakes import FakeBackend

SERVER = "dns://127.0.0.1:53"


def lines(rrsets: list[dns.rrset.RRset]) -> list[str]:
    out = []
    for rrset in rrsets:
        for rdata in rrset:
            out.append(
                f"{rrset.name.to_text().lower()} {rrset.ttl} IN {dns.rdatatype.to_text(rrset.rdtype)} {rdata.to_text().lower()}"
            )
    return sorted(out)


def normalize(expected: list[str]) -> list[str]:
    out = []
    for line in expected:
        name, ttl, _cls, rtype, rdata = line.split(None, 4)
        rrset = dns.rrset.from_text(name, int(ttl), "IN", rtype, rdata)
        out.extend(lines([rrset]))
    return sorted(out)


def make_handler(backend: FakeBackend, **options: object) -> Handler:
    handler = Handler(
        rules=Rules(options=KubernetesOptions(**options), backend=backend), metrics=DNSMetrics()
    )  # type: ignore[arg-type]
    backend.add_listener(handler.on_change)
    return handler


def ask_raw(
    handler: Handler, name: str, rtype: str, *, edns: int | bool = 0, payload: int = 1232, tcp: bool = False
) -> tuple[dns.message.Message, bytes]:
    """The decoded reply and its bytes."""
    query = dns.message.make_query(name, rtype, use_edns=edns, payload=payload)
    reply = handler.serve(query.to_wire(), server=SERVER, tcp=tcp)
    assert isinstance(reply, bytes), f"no synchronous reply for {name} {rtype}: {reply!r}"
    message = dns.message.from_wire(reply)
    assert message.id == query.id
    return message, reply


def ask(
    handler: Handler, name: str, rtype: str, *, edns: int | bool = 0, payload: int = 1232, tcp: bool = False
) -> dns.message.Message:
    return ask_raw(handler, name, rtype, edns=edns, payload=payload, tcp=tcp)[0]
