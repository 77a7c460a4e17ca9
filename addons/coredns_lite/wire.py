"""DNS wire format, only as much as the hot path needs — by hand, without dnslib.

A cached answer is served by patching bytes, not by decoding and re-encoding a message, so the
per-query work is: check the 12-byte header, find the end of the question name, look the
lowercased question up, and join the query's ID and question (its case preserved) with prebuilt
bytes. This module holds those pieces:

- :func:`parse_query` — a full, strict parse of a query's header, question and EDNS0 OPT record
  (RFC 1035 §4.1, RFC 6891), used on a table miss; it raises :class:`Drop` for what must not be
  answered at all (no header, or a response) and :class:`BadQuery` with the rcode to answer
  (FORMERR for malformed input, NOTIMP for other opcodes, BADVERS for EDNS versions > 0).
- :class:`Template` — the answer, authority and additional sections of a response, built once
  (by dnslib, see ``answers``) with every name compressed against the *question* at offset 12,
  so the query's own question bytes can be dropped in and the names follow its case. Templates
  know their record boundaries, so an answer too big for the client's UDP buffer is cut at a
  record boundary with TC set, as miekg/dns's ``Truncate`` does.
- :func:`scan_records` — record boundaries and TTL positions of an upstream's response, so the
  forward cache can re-serve it with counted-down TTLs.
- :func:`error_response` — FORMERR/NOTIMP/REFUSED/SERVFAIL replies for a query we could not or
  would not answer.

Names are handled as wire bytes (length-prefixed labels). Case folding is ASCII only (RFC 4343),
which ``bytes.lower`` does.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

# Types, classes and rcodes (RFC 1035, 3596, 2782, 6891).
A, NS, CNAME, SOA, PTR, MX, TXT, AAAA, SRV, OPT = 1, 2, 5, 6, 12, 15, 16, 28, 33, 41
IXFR, AXFR, ANY = 251, 252, 255
CLASS_IN = 1
NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 2, 3, 4, 5
BADVERS = 16  # extended rcode: OPT's high bits carry 1, the header 0

RCODE_NAMES = {
    NOERROR: "NOERROR",
    FORMERR: "FORMERR",
    SERVFAIL: "SERVFAIL",
    NXDOMAIN: "NXDOMAIN",
    NOTIMP: "NOTIMP",
    REFUSED: "REFUSED",
    BADVERS: "BADVERS",
}
HEADER = 12
MIN_UDP_SIZE = 512  # RFC 1035; also what a client without EDNS0 gets
MAX_UDP_SIZE = 4096  # the largest EDNS0 buffer we honour (RFC 6891's suggested default)
MAX_MESSAGE = 65535  # TCP's two-byte length prefix
MAX_NAME = 255

_QR, _OPCODE, _AA, _TC, _RD = 0x80, 0x78, 0x04, 0x02, 0x01
_RA, _AD, _CD = 0x80, 0x20, 0x10
_U16 = struct.Struct("!H")
_COUNTS = struct.Struct("!HHHH")
_RR_FIXED = struct.Struct("!HHIH")  # type, class, ttl, rdlength


class Drop(Exception):
    """Do not answer at all: too short to carry an ID, or a response (answering those makes loops)."""


class BadQuery(Exception):
    """Answer with ``rcode`` and nothing else (``query`` is set when the question could be read)."""

    def __init__(self, rcode: int, reason: str, *, query: Query | None = None) -> None:
        super().__init__(reason)
        self.rcode = rcode
        self.query = query


@dataclass(slots=True)
class Query:
    """A parsed query. ``name`` is the question name as sent (wire form); ``key`` is its lowercase
    form plus type and class: what answers are looked up by.
    """

    packet: bytes
    name: bytes
    qtype: int
    qclass: int
    key: bytes
    question_end: int
    edns: bool = False
    udp_size: int = MIN_UDP_SIZE
    dnssec_ok: bool = False

    @property
    def id(self) -> bytes:
        return self.packet[:2]

    @property
    def question(self) -> bytes:
        return self.packet[HEADER : self.question_end]

    @property
    def recursion_desired(self) -> bool:
        return bool(self.packet[2] & _RD)

    @property
    def checking_disabled(self) -> bool:
        return bool(self.packet[3] & _CD)

    def labels(self) -> tuple[str, ...]:
        """The lowercase labels of the question name, leftmost first, as text (one char per byte)."""
        text = self.key[:-4].decode("latin-1")
        labels = []
        i = 0
        length = ord(text[0])
        while length:
            labels.append(text[i + 1 : i + 1 + length])
            i += 1 + length
            length = ord(text[i])
        return tuple(labels)

    def text_name(self) -> str:
        """The name as text with a trailing dot (escapes for dots and odd bytes, as in zone files)."""
        return labels_text(name_labels(self.name))


def name_labels(wire: bytes) -> list[bytes]:
    """Split an uncompressed wire-format name into labels (no validation: callers pass valid names)."""
    labels = []
    i = 0
    while True:
        length = wire[i]
        if length == 0:
            return labels
        labels.append(wire[i + 1 : i + 1 + length])
        i += 1 + length


def plain_labels(name: bytes) -> tuple[str, ...] | None:
    """The labels of an uncompressed wire name (one char per byte), or None when ``name`` is not
    exactly one well-formed name: a pointer or reserved label type, a label running past the
    end, bytes after the root label, or more than 255 bytes.
    """
    size = len(name)
    if size > MAX_NAME:
        return None
    text = name.decode("latin-1")
    labels = []
    i = 0
    while i < size:
        length = name[i]
        if length == 0:
            return tuple(labels) if i == size - 1 else None
        if length > 63:
            return None
        labels.append(text[i + 1 : i + 1 + length])
        i += 1 + length
    return None


def labels_text(labels: list[bytes]) -> str:
    if not labels:
        return "."
    return "".join(_label_text(label) + "." for label in labels)


def _label_text(label: bytes) -> str:
    out = []
    for byte in label:
        char = chr(byte)
        if char in '.\\"();@$':
            out.append("\\" + char)
        elif 0x21 <= byte <= 0x7E:
            out.append(char)
        else:
            out.append(f"\\{byte:03d}")
    return "".join(out)


def encode_name(labels: tuple[bytes, ...] | list[bytes]) -> bytes:
    return b"".join(bytes((len(label),)) + label for label in labels) + b"\x00"


def _read_question_name(packet: bytes, offset: int) -> tuple[bytes, int]:
    """The question name at ``offset`` and the offset after it.

    A query's question is the first name in the message, so a compression pointer in it can only
    point into the header or at itself: such names (compression loops included) are rejected, as
    are names running off the end, reserved label types and names longer than 255 bytes.
    """
    size = len(packet)
    start = offset
    while True:
        if offset >= size:
            raise ValueError("name runs past the end of the message")
        length = packet[offset]
        if length == 0:
            offset += 1
            break
        if length & 0xC0 == 0xC0:
            raise ValueError("compression pointer in the question")
        if length & 0xC0:
            raise ValueError("reserved label type")
        offset += 1 + length
        if offset - start > MAX_NAME - 1:
            raise ValueError("name longer than 255 bytes")
    if offset > size:
        raise ValueError("label runs past the end of the message")
    return packet[start:offset], offset


def _skip_name(packet: bytes, offset: int) -> int:
    """The offset after the (possibly compressed) name at ``offset``; ValueError when malformed."""
    size = len(packet)
    while True:
        if offset >= size:
            raise ValueError("name runs past the end of the message")
        length = packet[offset]
        if length == 0:
            return offset + 1
        if length & 0xC0 == 0xC0:
            if offset + 2 > size:
                raise ValueError("truncated compression pointer")
            return offset + 2
        if length & 0xC0:
            raise ValueError("reserved label type")
        offset += 1 + length


def parse_query(packet: bytes) -> Query:
    """Parse and check a query as miekg/dns's server does before CoreDNS sees it.

    Responses and anything shorter than a header are dropped; opcodes other than QUERY get
    NOTIMP; a question count other than one, answer or authority records, more than one OPT,
    a malformed name or trailing bytes get FORMERR; an EDNS version above 0 gets BADVERS.
    """
    if len(packet) < HEADER:
        raise Drop("shorter than a DNS header")
    flags = packet[2]
    if flags & _QR:
        raise Drop("QR set: a response, not a query")
    if (flags & _OPCODE) >> 3 != 0:
        raise BadQuery(NOTIMP, f"opcode {(flags & _OPCODE) >> 3} not implemented")
    qdcount, ancount, nscount, arcount = _COUNTS.unpack_from(packet, 4)
    if qdcount != 1:
        raise BadQuery(FORMERR, f"{qdcount} questions")
    if ancount or nscount:
        raise BadQuery(FORMERR, "records in the answer or authority section of a query")
    try:
        name, offset = _read_question_name(packet, HEADER)
    except ValueError as exc:
        raise BadQuery(FORMERR, f"question name: {exc}") from exc
    if offset + 4 > len(packet):
        raise BadQuery(FORMERR, "question truncated")
    qtype, qclass = struct.unpack_from("!HH", packet, offset)
    question_end = offset + 4
    query = Query(
        packet=packet,
        name=name,
        qtype=qtype,
        qclass=qclass,
        key=name.lower() + packet[question_end - 4 : question_end],
        question_end=question_end,
    )
    offset = question_end
    opt_seen = False
    for _ in range(arcount):
        try:
            start = offset
            offset = _skip_name(packet, offset)
            rtype, rclass, ttl, rdlength = _RR_FIXED.unpack_from(packet, offset)
        except (ValueError, struct.error) as exc:
            raise BadQuery(FORMERR, f"additional record: {exc}", query=query) from exc
        offset += _RR_FIXED.size + rdlength
        if offset > len(packet):
            raise BadQuery(FORMERR, "additional record truncated", query=query)
        if rtype == OPT:
            if opt_seen or packet[start] != 0:
                raise BadQuery(FORMERR, "more than one OPT record, or one not at the root", query=query)
            opt_seen = True
            query.edns = True
            query.udp_size = min(max(rclass, MIN_UDP_SIZE), MAX_UDP_SIZE)
            query.dnssec_ok = bool(ttl & 0x8000)
            if (ttl >> 16) & 0xFF:
                raise BadQuery(BADVERS, f"EDNS version {(ttl >> 16) & 0xFF}", query=query)
    if offset != len(packet):
        raise BadQuery(FORMERR, f"{len(packet) - offset} trailing bytes", query=query)
    return query


def head_index(packet: bytes, *, edns: bool) -> int:
    """Which of a template's prebuilt headers fits a query: its RD and CD bits, and EDNS or not."""
    return (packet[2] & _RD) | (packet[3] & _CD) | (2 if edns else 0)


OPT_PREFIX = b"\x00\x00\x29"
OPT_SUFFIX = bytes(6)  # extended rcode 0, version 0, no flags, no options
OPT_SUFFIX_DO = b"\x00\x00\x80\x00\x00\x00"


def opt_record(query: Query) -> bytes:
    """The OPT record for a reply to an EDNS0 query: the client's buffer size, its DO bit, no options."""
    return OPT_PREFIX + _U16.pack(query.udp_size) + (OPT_SUFFIX_DO if query.dnssec_ok else OPT_SUFFIX)


def reply_flags(query: Query, *, rcode: int, authoritative: bool, truncated: bool = False) -> bytes:
    """Header bytes 2-3 of a reply: QR, opcode QUERY, AA, TC, RD and CD copied (miekg's SetReply)."""
    first = _QR | (_AA if authoritative else 0) | (_TC if truncated else 0) | (query.packet[2] & _RD)
    return bytes((first, (query.packet[3] & _CD) | (rcode & 0x0F)))


def error_response(packet: bytes, rcode: int, *, query: Query | None = None) -> bytes:
    """A reply carrying only ``rcode`` (and the question and OPT when the query could be read)."""
    if query is None:
        first = _QR | (packet[2] & _RD)
        second = (packet[3] & _CD) | (rcode & 0x0F)
        opcode = packet[2] & _OPCODE
        return packet[:2] + bytes((first | opcode, second)) + bytes(8)
    opt = b""
    if query.edns:
        opt = opt_record(query)
        if rcode > 15:
            opt = opt[:5] + bytes((rcode >> 4,)) + opt[6:]
    return (
        query.packet[:2]
        + reply_flags(query, rcode=rcode, authoritative=False)
        + _COUNTS.pack(1, 0, 0, 1 if opt else 0)
        + query.question
        + opt
    )


class Template:
    """The sections of a response after its question, ready to be joined to any query with the same
    (case-folded) question. Every name in ``tail`` is either literal or points backwards into the
    question or ``tail`` itself, so the bytes are valid after any question of the same length.

    ``ends`` holds the offset in ``tail`` where each record ends, in order (answer, authority,
    additional), so a prefix of whole records can be served when the client's buffer is small.
    """

    __slots__ = ("ancount", "arcount", "authoritative", "ends", "heads", "nscount", "rcode", "tail")

    def __init__(
        self,
        *,
        tail: bytes,
        ends: tuple[int, ...],
        ancount: int,
        nscount: int,
        arcount: int,
        rcode: int = NOERROR,
        authoritative: bool = True,
    ) -> None:
        if len(ends) != ancount + nscount + arcount:
            raise ValueError("one record end per record is needed")
        self.tail = tail
        self.ends = ends
        self.ancount = ancount
        self.nscount = nscount
        self.arcount = arcount
        self.rcode = rcode
        self.authoritative = authoritative
        # Header bytes 2-11 of an untruncated reply, by head_index(): the flags and counts.
        self.heads: list[bytes] = [b""] * 20
        first = _QR | (_AA if authoritative else 0)
        for rd in (0, _RD):
            for cd in (0, _CD):
                for edns in (0, 2):
                    self.heads[rd | cd | edns] = bytes((first | rd, cd | (rcode & 0x0F))) + _COUNTS.pack(
                        1, ancount, nscount, arcount + (1 if edns else 0)
                    )

    def render(self, query: Query, *, limit: int) -> bytes:
        """The reply to ``query``, cut to ``limit`` bytes at a record boundary (TC when answer or
        authority records had to go; dropping additional records alone does not set TC).
        """
        opt = opt_record(query) if query.edns else b""
        fixed = HEADER + (query.question_end - HEADER) + len(opt)
        if fixed + len(self.tail) <= limit:
            return (
                query.packet[:2]
                + reply_flags(query, rcode=self.rcode, authoritative=self.authoritative)
                + _COUNTS.pack(1, self.ancount, self.nscount, self.arcount + (1 if opt else 0))
                + query.question
                + self.tail
                + opt
            )
        room = limit - fixed
        kept = 0
        for end in self.ends:
            if end > room:
                break
            kept += 1
        ancount = min(kept, self.ancount)
        nscount = min(max(kept - self.ancount, 0), self.nscount)
        arcount = max(kept - self.ancount - self.nscount, 0)
        truncated = ancount < self.ancount or nscount < self.nscount
        tail = self.tail[: self.ends[kept - 1]] if kept else b""
        return (
            query.packet[:2]
            + reply_flags(query, rcode=self.rcode, authoritative=self.authoritative, truncated=truncated)
            + _COUNTS.pack(1, ancount, nscount, arcount + (1 if opt else 0))
            + query.question
            + tail
            + opt
        )


@dataclass(frozen=True, slots=True)
class ScannedRecord:
    start: int
    ttl_offset: int
    end: int
    rtype: int


def scan_records(message: bytes, *, offset: int, count: int) -> list[ScannedRecord]:
    """Walk ``count`` resource records from ``offset``; ValueError if the message is malformed."""
    records = []
    for _ in range(count):
        start = offset
        offset = _skip_name(message, offset)
        if offset + _RR_FIXED.size > len(message):
            raise ValueError("record header truncated")
        rtype, _rclass, _ttl, rdlength = _RR_FIXED.unpack_from(message, offset)
        ttl_offset = offset + 4
        offset += _RR_FIXED.size + rdlength
        if offset > len(message):
            raise ValueError("record data truncated")
        records.append(ScannedRecord(start, ttl_offset, offset, rtype))
    return records


def question_end(message: bytes) -> int:
    """The offset after the (single) question of ``message``; ValueError when malformed."""
    return _skip_name(message, HEADER) + 4


def header_counts(message: bytes) -> tuple[int, int, int, int]:
    return _COUNTS.unpack_from(message, 4)
