"""Prebuilt answers: reused until a change touches them, and only the touched ones are rebuilt."""

from __future__ import annotations

import dns.rcode
import pytest

from addons.coredns_lite.table import AnswerTable, NoData
from addons.coredns_lite.wire import Template
from tests.addons.coredns_lite.fakes import FakeBackend, address, endpoints, service
from tests.addons.coredns_lite.support import ask, lines, make_handler, normalize

ZONES = (("cluster", "local"), ("in-addr", "arpa"))


def key(name: str, qtype: int = 1) -> bytes:
    import dns.name

    return dns.name.from_text(name).to_wire().lower() + qtype.to_bytes(2, "big") + b"\x00\x01"


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend(
        services=[
            service("a", ips=("10.0.0.1",)),
            service("b", ips=("10.0.0.2",)),
            service("h", ips=("None",)),
        ],
        slices=[endpoints("h", [address("172.0.0.1")])],
    )


def test_answers_are_prebuilt_once_and_reused(backend: FakeBackend) -> None:
    handler = make_handler(backend)
    ask(handler, "a.testns.svc.cluster.local.", "A")
    stored = handler.table.get(key("a.testns.svc.cluster.local."))
    assert isinstance(stored, Template)
    ask(handler, "A.TESTNS.svc.cluster.local.", "A")
    assert handler.table.get(key("a.testns.svc.cluster.local.")) is stored
    ask(handler, "a.testns.svc.cluster.local.", "AAAA")
    assert isinstance(handler.table.get(key("a.testns.svc.cluster.local.", 28)), NoData)
    ask(handler, "nope.testns.svc.cluster.local.", "A")
    assert handler.table.get(key("nope.testns.svc.cluster.local.")) is None, "NXDOMAIN is never stored"


def test_a_change_rebuilds_only_the_names_it_touches(backend: FakeBackend) -> None:
    handler = make_handler(backend, zones=ZONES)
    for name in ("a", "b", "h"):
        ask(handler, f"{name}.testns.svc.cluster.local.", "A")
    ask(handler, "1.0.0.10.in-addr.arpa.", "PTR")
    untouched = handler.table.get(key("b.testns.svc.cluster.local."))

    backend.set_service(service("a", ips=("10.0.0.9",)))
    assert handler.table.get(key("a.testns.svc.cluster.local.")) is None
    assert handler.table.get(key("1.0.0.10.in-addr.arpa.", 12)) is None, (
        "the old ClusterIP's PTR is forgotten"
    )
    assert handler.table.get(key("b.testns.svc.cluster.local.")) is untouched
    assert lines(ask(handler, "a.testns.svc.cluster.local.", "A").answer) == normalize(
        ["a.testns.svc.cluster.local. 5 IN A 10.0.0.9"]
    )
    assert ask(handler, "1.0.0.10.in-addr.arpa.", "PTR").rcode() == dns.rcode.NXDOMAIN
    assert ask(handler, "9.0.0.10.in-addr.arpa.", "PTR").answer

    backend.set_slices("testns", "h", [endpoints("h", [address("172.0.0.1"), address("172.0.0.2")])])
    assert len(ask(handler, "h.testns.svc.cluster.local.", "A").answer[0]) == 2
    assert handler.table.get(key("b.testns.svc.cluster.local.")) is untouched

    backend.remove_service("testns", "a")
    assert ask(handler, "a.testns.svc.cluster.local.", "A").rcode() == dns.rcode.NXDOMAIN


def test_a_name_that_did_not_exist_answers_as_soon_as_it_is_created(backend: FakeBackend) -> None:
    handler = make_handler(backend)
    assert ask(handler, "new.testns.svc.cluster.local.", "A").rcode() == dns.rcode.NXDOMAIN
    backend.set_service(service("new", ips=("10.0.0.7",)))
    assert ask(handler, "new.testns.svc.cluster.local.", "A").answer


def test_negative_answers_carry_the_current_serial(backend: FakeBackend) -> None:
    handler = make_handler(backend)
    first = ask(handler, "a.testns.svc.cluster.local.", "AAAA").authority[0][0].serial
    backend.set_service(service("b", ips=("10.0.0.3",)))
    assert ask(handler, "a.testns.svc.cluster.local.", "AAAA").authority[0][0].serial == first + 1


def test_the_table_is_bounded() -> None:
    table = AnswerTable(capacity=3)
    for i in range(3):
        table.put(f"k{i}".encode(), NoData(15), tags=[("svc", "ns", f"s{i}")])
    assert len(table) == 3
    table.put(b"k3", NoData(15), tags=[])
    assert len(table) == 1 and table.rebuilds == 1
    assert table.forget([("svc", "ns", "s0")]) == 0
    with pytest.raises(ValueError, match="capacity"):
        AnswerTable(capacity=0)
