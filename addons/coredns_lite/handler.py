"""Serving one DNS request: parse, answer from prebuilt bytes, else compute, forward or refuse.

:meth:`Handler.serve` takes a datagram (or a TCP message) and returns the reply bytes, None (drop
it), or — only when the answer has to wait for an upstream — a coroutine yielding one of those.
The listeners (``server``) stay ignorant of DNS beyond that.

The path of a query, cheapest first:

1. :func:`wire.parse_query` checks the header, question and OPT; malformed input gets FORMERR,
   other opcodes NOTIMP, EDNS versions > 0 BADVERS, responses and runts are dropped. Classes other
   than IN are REFUSED.
2. The :class:`~addons.coredns_lite.table.AnswerTable` (lowercase question → prebuilt answer):
   a hit is the query's ID and question joined to stored bytes, cut to the client's buffer with
   TC when needed. This is the path of almost every cluster query.
3. A miss in a cluster zone runs the record rules (``answers``); existing names are stored in
   the table for next time (only once the backend has synced), NXDOMAIN is built per query.
   Negative answers carry the zone's SOA, its owner and names compressed against the question so
   they follow its case.
4. Anything else — and name errors in ``fallthrough`` zones — is served from the forward cache
   or forwarded (unless it is our own forwarded query come back: REFUSED).

Forwarded queries get an OpenTelemetry span when tracing is on (never the hot path).
Every request is counted in ``DNSMetrics``; an exception while serving is a "panic": counted,
logged, answered SERVFAIL, and the server carries on (CoreDNS's recover).
"""

from __future__ import annotations

import logging
import secrets
import struct
import time
from collections.abc import Coroutine
from typing import Any

from dnslib import RR, DNSError, DNSHeader, DNSLabel, DNSQuestion, DNSRecord

from addons.coredns_lite import wire
from addons.coredns_lite.answers import Chase, Name, Outcome, Rules
from addons.coredns_lite.backend import Tag
from addons.coredns_lite.cache import ForwardCache
from addons.coredns_lite.forward import Forwarder, ForwardError, LimitExceeded
from addons.coredns_lite.metrics import MONITORED_TYPES, DNSMetrics, QueryKey, rcode_label, type_label
from addons.coredns_lite.table import AnswerTable, NoData
from addons.kit.tracing import Tracing, span

log = logging.getLogger(__name__)

Reply = bytes | None
KUBERNETES, FORWARD, CACHE, SERVER = "kubernetes", "forward", "cache", ""
_SOA_FIXED = struct.Struct("!HHIH")  # type, class, ttl, rdlength
_U16 = struct.Struct("!H")
_PLAIN_COUNTS = b"\x00\x01\x00\x00\x00\x00\x00"  # one question, no answer/authority, < 256 additional
_SOA_TIMES = struct.Struct("!IIIII")
_RCODE = {rcode: rcode_label(rcode) for rcode in wire.RCODE_NAMES}
_TYPES = MONITORED_TYPES


def _zone_wire_length(zone: Name) -> int:
    return sum(len(label) + 1 for label in zone) + 1


def build_template(query_key: bytes, outcome: Outcome, *, rcode: int = wire.NOERROR) -> wire.Template:
    """Pack ``outcome``'s records after the (lowercase) question with dnslib, once."""
    name = DNSLabel(wire.name_labels(query_key[:-4]))
    qtype, qclass = struct.unpack("!HH", query_key[-4:])
    record = DNSRecord(
        DNSHeader(id=0, qr=1, aa=1, rd=0),
        q=DNSQuestion(name, qtype, qclass),
        rr=list(outcome.answer),
        ar=list(outcome.additional),
    )
    packed = bytes(record.pack())
    start = wire.HEADER + len(query_key)
    records = wire.scan_records(packed, offset=start, count=len(outcome.answer) + len(outcome.additional))
    return wire.Template(
        tail=packed[start:],
        ends=tuple(r.end - start for r in records),
        ancount=len(outcome.answer),
        nscount=0,
        arcount=len(outcome.additional),
        rcode=rcode,
    )


class Handler:
    """Answers requests from ``rules`` (the cluster zones), ``cache`` and ``forwarder`` (the rest)."""

    def __init__(
        self,
        *,
        rules: Rules,
        metrics: DNSMetrics,
        forwarder: Forwarder | None = None,
        cache: ForwardCache | None = None,
        table: AnswerTable | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self.rules = rules
        self.tracing = tracing
        self.metrics = metrics
        self.forwarder = forwarder
        self.cache = cache
        self.table = table if table is not None else AnswerTable()

    def on_change(self, tags: list[Tag]) -> None:
        """The backend's change listener: forget the prebuilt answers built from what changed."""
        self.table.forget(tags)

    # --- entry point --------------------------------------------------------------------------

    def serve(
        self, packet: bytes, *, server: str, tcp: bool, family: str = "1"
    ) -> Reply | Coroutine[Any, Any, Reply]:
        started = time.perf_counter()
        reply = self._fast(packet, server=server, tcp=tcp, family=family, started=started)
        if reply is not None:
            return reply
        proto = "tcp" if tcp else "udp"
        try:
            query = wire.parse_query(packet)
        except wire.Drop:
            return None
        except wire.BadQuery as bad:
            reply = wire.error_response(packet, bad.rcode, query=bad.query)
            qtype = bad.query.qtype if bad.query is not None else 0
            self._count(server, proto, family, qtype, bad.rcode, SERVER, False, started, packet, reply)
            return reply
        except Exception:
            return self._panic(packet, server=server, proto=proto, family=family, started=started)
        try:
            return self._answer(query, server=server, proto=proto, family=family, tcp=tcp, started=started)
        except Exception:
            return self._panic(
                packet, server=server, proto=proto, family=family, started=started, query=query
            )

    def _fast(self, packet: bytes, *, server: str, tcp: bool, family: str, started: float) -> bytes | None:
        """The answer to a plain query (one question, at most a clean OPT) when it is one of the
        cheap ones — a prebuilt cluster answer, a forward-cache hit, or a certain NXDOMAIN — else
        None, and the full path takes over (as it does for anything unusual, and for replies that
        need truncating).

        The question name ends at the first zero byte *if* it is well formed: a table hit proves
        it is (every key is a well-formed name); the other branches check it.
        """
        size = len(packet)
        if size < 17 or packet[2] & 0xF8 or packet[4:11] != _PLAIN_COUNTS:
            return None
        end = packet.find(0, wire.HEADER)
        qend = end + 5
        if end < wire.HEADER or qend > size:
            return None
        arcount = packet[11]
        if arcount == 0 and qend == size:
            opt = b""
            limit = wire.MAX_MESSAGE if tcp else wire.MIN_UDP_SIZE
            do = False
        elif (
            arcount == 1
            and size >= qend + 11
            and packet[qend : qend + 3] == wire.OPT_PREFIX
            and not packet[qend + 5]
            and not packet[qend + 6]
            and qend + 11 + ((packet[qend + 9] << 8) | packet[qend + 10]) == size
        ):
            udp_size = min(
                max((packet[qend + 3] << 8) | packet[qend + 4], wire.MIN_UDP_SIZE), wire.MAX_UDP_SIZE
            )
            limit = wire.MAX_MESSAGE if tcp else udp_size
            do = bool(packet[qend + 7] & 0x80)
            opt = wire.OPT_PREFIX + _U16.pack(udp_size) + (wire.OPT_SUFFIX_DO if do else wire.OPT_SUFFIX)
        else:
            return None
        name = packet[wire.HEADER : end + 1].lower()
        key = name + packet[end + 1 : qend]
        stored = self.table.get(key)
        plugin = KUBERNETES
        if stored is not None:
            if type(stored) is NoData:
                reply = self._negative_reply(packet, qend, opt, wire.NOERROR, stored.zone_length)
                rcode = wire.NOERROR
            else:
                template: wire.Template = stored  # type: ignore[assignment]
                reply = (
                    packet[:2]
                    + template.heads[wire.head_index(packet, edns=bool(opt))]
                    + packet[wire.HEADER : qend]
                    + template.tail
                    + opt
                )
                rcode = template.rcode
        else:
            if packet[end + 3 : qend] != b"\x00\x01":
                return None  # not class IN
            if not name.endswith(self.rules.zone_suffixes):
                # In no cluster zone: a forward-cache hit? Its key, like a table key, is a
                # well-formed name, so a hit proves this one is too.
                if self.cache is None:
                    return None
                entry = self.cache.get(key + bytes(((2 if do else 0) | (1 if packet[3] & 0x10 else 0),)))
                if entry is None:
                    return None
                reply = entry.render_plain(
                    packet, question_end=qend, opt=opt, dnssec_ok=do, now=self.cache.clock()
                )
                rcode = entry.flags & 0x0F
                plugin = CACHE
                if len(reply) <= limit:
                    self.metrics.cache_hit(server, entry.kind)
            elif packet[end + 1] or packet[end + 2] not in (wire.A, wire.AAAA):
                return None
            else:
                labels = wire.plain_labels(name)
                zone = self.rules.match_zone(labels) if labels is not None else None
                if labels is None or zone is None or not self.rules.quick_name_error(labels, zone):
                    return None
                reply = self._negative_reply(packet, qend, opt, wire.NXDOMAIN, _zone_wire_length(zone))
                rcode = wire.NXDOMAIN
        if len(reply) > limit:
            return None  # needs truncating: the full path does that
        self.metrics.observe(
            (
                server,
                "tcp" if tcp else "udp",
                family,
                _TYPES.get((packet[end + 1] << 8) | packet[end + 2], "other"),
                _RCODE[rcode],
                plugin,
                do,
            ),
            duration=time.perf_counter() - started,
            request_size=size,
            response_size=len(reply),
        )
        return reply

    def _panic(
        self,
        packet: bytes,
        *,
        server: str,
        proto: str,
        family: str,
        started: float,
        query: wire.Query | None = None,
    ) -> Reply:
        self.metrics.panics += 1
        log.exception("panic while serving a query", extra={"server": server, "proto": proto})
        if len(packet) < wire.HEADER:
            return None
        reply = wire.error_response(packet, wire.SERVFAIL, query=query)
        qtype = query.qtype if query is not None else 0
        self._count(server, proto, family, qtype, wire.SERVFAIL, SERVER, False, started, packet, reply)
        return reply

    def _count(
        self,
        server: str,
        proto: str,
        family: str,
        qtype: int,
        rcode: int,
        plugin: str,
        do: bool,
        started: float,
        packet: bytes,
        reply: bytes | None,
    ) -> None:
        key: QueryKey = (
            server,
            proto,
            family,
            type_label(qtype),
            _RCODE.get(rcode) or rcode_label(rcode),
            plugin,
            do,
        )
        self.metrics.observe(
            key,
            duration=time.perf_counter() - started,
            request_size=len(packet),
            response_size=len(reply) if reply is not None else 0,
        )

    def _answer(
        self, query: wire.Query, *, server: str, proto: str, family: str, tcp: bool, started: float
    ) -> Reply | Coroutine[Any, Any, Reply]:
        limit = wire.MAX_MESSAGE if tcp else query.udp_size
        stored = self.table.get(query.key)
        if stored is not None:
            if type(stored) is NoData:
                reply = self._negative(query, wire.NOERROR, zone_length=stored.zone_length)
                rcode = wire.NOERROR
            else:
                reply = stored.render(query, limit=limit)  # type: ignore[union-attr]
                rcode = stored.rcode  # type: ignore[union-attr]
            self._count(
                server,
                proto,
                family,
                query.qtype,
                rcode,
                KUBERNETES,
                query.dnssec_ok,
                started,
                query.packet,
                reply,
            )
            return reply
        if query.qclass != wire.CLASS_IN:
            reply = wire.error_response(query.packet, wire.REFUSED, query=query)
            self._count(
                server,
                proto,
                family,
                query.qtype,
                wire.REFUSED,
                SERVER,
                query.dnssec_ok,
                started,
                query.packet,
                reply,
            )
            return reply
        outcome = self.rules.resolve(query.labels(), query.qtype)
        if outcome is None or outcome.fallthrough:
            return self._forward_path(
                query, server=server, proto=proto, family=family, tcp=tcp, started=started
            )
        if outcome.refused:
            reply = wire.error_response(query.packet, outcome.rcode, query=query)
        elif outcome.chase is not None:
            return self._chase(
                query, outcome, server=server, proto=proto, family=family, tcp=tcp, started=started
            )
        elif outcome.negative:
            zone_length = _zone_wire_length(outcome.zone)
            reply = self._negative(query, outcome.rcode, zone_length=zone_length)
            if outcome.rcode == wire.NOERROR and outcome.cacheable and self.rules.backend.has_synced():
                self.table.put(query.key, NoData(zone_length), tags=outcome.tags)
        else:
            template = build_template(query.key, outcome)
            reply = template.render(query, limit=limit)
            if outcome.cacheable and self.rules.backend.has_synced():
                self.table.put(query.key, template, tags=outcome.tags)
        self._count(
            server,
            proto,
            family,
            query.qtype,
            outcome.rcode,
            KUBERNETES,
            query.dnssec_ok,
            started,
            query.packet,
            reply,
        )
        return reply

    def _negative(self, query: wire.Query, rcode: int, *, zone_length: int) -> bytes:
        opt = wire.opt_record(query) if query.edns else b""
        return self._negative_reply(query.packet, query.question_end, opt, rcode, zone_length)

    def _negative_reply(
        self, packet: bytes, question_end: int, opt: bytes, rcode: int, zone_length: int
    ) -> bytes:
        """NXDOMAIN/NODATA/SERVFAIL with the zone's SOA, every name in it pointing into the question."""
        pointer = struct.pack("!H", 0xC000 | (question_end - 4 - zone_length))
        ttl = self.rules.options.ttl
        rdata = (
            b"\x02ns\x03dns"
            + pointer
            + b"\x0ahostmaster"
            + pointer
            + _SOA_TIMES.pack(self.rules.backend.modified() & 0xFFFFFFFF, 7200, 1800, 86400, ttl)
        )
        return (
            packet[:2]
            + bytes((0x84 | (packet[2] & 0x01), (packet[3] & 0x10) | rcode))
            + (b"\x00\x01\x00\x00\x00\x01\x00\x01" if opt else b"\x00\x01\x00\x00\x00\x01\x00\x00")
            + packet[wire.HEADER : question_end]
            + pointer
            + _SOA_FIXED.pack(wire.SOA, wire.CLASS_IN, min(ttl, 300), len(rdata))
            + rdata
            + opt
        )

    # --- forwarding -------------------------------------------------------------------------------

    def _forward_path(
        self, query: wire.Query, *, server: str, proto: str, family: str, tcp: bool, started: float
    ) -> Reply | Coroutine[Any, Any, Reply]:
        key = query.key + bytes(((2 if query.dnssec_ok else 0) | (1 if query.checking_disabled else 0),))
        limit = wire.MAX_MESSAGE if tcp else query.udp_size
        if self.cache is not None:
            entry = self.cache.get(key)
            if entry is not None:
                self.metrics.cache_hit(server, entry.kind)
                reply = entry.render(query, limit=limit, now=self.cache.clock())
                self._count(
                    server,
                    proto,
                    family,
                    query.qtype,
                    entry.flags & 0x0F,
                    CACHE,
                    query.dnssec_ok,
                    started,
                    query.packet,
                    reply,
                )
                return reply
            self.metrics.cache_miss(server)
        forwarder = self.forwarder
        if forwarder is None:
            reply = wire.error_response(query.packet, wire.SERVFAIL, query=query)
            self._count(
                server,
                proto,
                family,
                query.qtype,
                wire.SERVFAIL,
                SERVER,
                query.dnssec_ok,
                started,
                query.packet,
                reply,
            )
            return reply
        if forwarder.looped(query):
            log.warning("refused a forwarding loop", extra={"qname": query.text_name(), "qtype": query.qtype})
            reply = wire.error_response(query.packet, wire.REFUSED, query=query)
            self._count(
                server,
                proto,
                family,
                query.qtype,
                wire.REFUSED,
                FORWARD,
                query.dnssec_ok,
                started,
                query.packet,
                reply,
            )
            return reply
        return self._forward(
            query, key=key, server=server, proto=proto, family=family, tcp=tcp, started=started
        )

    async def _forward(
        self,
        query: wire.Query,
        *,
        key: bytes,
        server: str,
        proto: str,
        family: str,
        tcp: bool,
        started: float,
    ) -> Reply:
        assert self.forwarder is not None
        limit = wire.MAX_MESSAGE if tcp else query.udp_size
        try:
            with span(
                self.tracing, "coredns_lite.forward", qname=query.text_name(), qtype=query.qtype, proto=proto
            ):
                answer = await self.forwarder.forward(query, key=key, tcp=tcp)
        except LimitExceeded:
            reply = wire.error_response(query.packet, wire.REFUSED, query=query)
            rcode = wire.REFUSED
        except ForwardError as exc:
            log.warning(
                "forwarding failed: %s", exc, extra={"qname": query.text_name(), "qtype": query.qtype}
            )
            reply = wire.error_response(query.packet, wire.SERVFAIL, query=query)
            rcode = wire.SERVFAIL
        else:
            entry = self.cache.put(key, answer) if self.cache is not None else None
            rcode = answer[3] & 0x0F
            if entry is not None:
                reply = entry.render(query, limit=limit, now=entry.stored)
            else:
                reply = self._relay(query, answer, limit=limit)
        self._count(
            server, proto, family, query.qtype, rcode, FORWARD, query.dnssec_ok, started, query.packet, reply
        )
        return reply

    @staticmethod
    def _relay(query: wire.Query, answer: bytes, *, limit: int) -> bytes:
        """An uncacheable upstream answer, as it came (our ID swapped back); too big: TC, no records."""
        if len(answer) <= limit:
            return query.packet[:2] + answer[2:]
        flags = bytes((answer[2] | 0x02, answer[3]))
        opt = wire.opt_record(query) if query.edns else b""
        return (
            query.packet[:2] + flags + struct.pack("!HHHH", 1, 0, 0, 1 if opt else 0) + query.question + opt
        )

    async def lookup(self, target: Name, qtype: int) -> DNSRecord | None:
        """Resolve ``target`` through the cache and forwarder (CoreDNS's upstream ``Lookup``)."""
        packet = (
            secrets.token_bytes(2)
            + b"\x01\x00"
            + struct.pack("!HHHH", 1, 0, 0, 0)
            + wire.encode_name([label.encode("latin-1") for label in target])
            + struct.pack("!HH", qtype, wire.CLASS_IN)
        )
        query = wire.parse_query(packet)
        key = query.key + b"\x00"
        if self.cache is not None and (entry := self.cache.get(key)) is not None:
            answer = entry.render(query, limit=wire.MAX_MESSAGE, now=self.cache.clock())
        elif self.forwarder is None:
            return None
        else:
            try:
                answer = await self.forwarder.forward(query, key=key, tcp=False)
            except ForwardError as exc:
                log.info("upstream lookup of %s failed: %s", query.text_name(), exc)
                return None
            if self.cache is not None:
                self.cache.put(key, answer)
        try:
            return DNSRecord.parse(answer)
        except DNSError:
            return None

    async def _chase(
        self,
        query: wire.Query,
        outcome: Outcome,
        *,
        server: str,
        proto: str,
        family: str,
        tcp: bool,
        started: float,
    ) -> Reply:
        """An ExternalName's CNAME, followed by what the upstream answers for its target."""
        chase: Chase = outcome.chase  # type: ignore[assignment]
        upstream = await self.lookup(chase.target, chase.qtype)
        truncated = False
        if upstream is not None:
            records: list[RR] = [*outcome.answer, *chase.prefix, *upstream.rr]
            truncated = bool(upstream.header.tc)
        else:
            records = list(outcome.answer)
        limit = wire.MAX_MESSAGE if tcp else query.udp_size
        if not records:
            reply = self._negative(query, wire.NOERROR, zone_length=_zone_wire_length(outcome.zone))
        else:
            template = build_template(query.key, Outcome(answer=records))
            reply = template.render(query, limit=limit)
            if truncated:
                reply = reply[:2] + bytes((reply[2] | 0x02,)) + reply[3:]
        self._count(
            server,
            proto,
            family,
            query.qtype,
            wire.NOERROR,
            KUBERNETES,
            query.dnssec_ok,
            started,
            query.packet,
            reply,
        )
        return reply
