"""The cache in front of the forwarder: upstream answers re-served as bytes, bounded in size and TTL.

CoreDNS's ``cache`` plugin, for what we forward (cluster answers have their own prebuilt table):

- two caches, *success* (NOERROR with answers) and *denial* (NXDOMAIN, and NOERROR without
  answers), each holding at most ``capacity`` entries (CoreDNS's default 9984); when one is full
  the oldest entry goes (CoreDNS evicts at random; oldest-first is as cheap and more predictable);
- an entry lives for the smallest TTL of its records (for denials, the SOA's TTL and minimum;
  5 s when there is no SOA), clamped to ``[min_ttl, max_ttl]`` — ``cache 30`` sets both maxima to
  30 s; other rcodes (SERVFAIL, REFUSED...) and truncated answers are not cached;
- a hit is served with every TTL set to the entry's remaining lifetime, AA set, RD/CD from the
  query, RA and rcode from the upstream (CoreDNS's ``item.toMsg``).

Keys are the lowercase question plus the DO and CD bits. An entry keeps the upstream's sections
after the question (its OPT record removed: the reply gets one for the client instead) together
with the positions of every TTL, so serving a hit is one copy and a few ``pack_into`` calls.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

from addons.coredns_lite import wire

DEFAULT_CAPACITY = 9984
DEFAULT_SUCCESS_TTL = 3600
DEFAULT_DENIAL_TTL = 1800
DEFAULT_MIN_TTL = 5
NO_SOA_DENIAL_TTL = 5
SUCCESS, DENIAL = "success", "denial"

_TTL = struct.Struct("!I")


@dataclass(frozen=True)
class CacheOptions:
    """The ``cache`` stanza: ``cache [TTL] { success CAPACITY [TTL [MINTTL]]; denial CAPACITY [TTL [MINTTL]] }``."""

    success_capacity: int = DEFAULT_CAPACITY
    success_ttl: int = DEFAULT_SUCCESS_TTL
    success_min_ttl: int = DEFAULT_MIN_TTL
    denial_capacity: int = DEFAULT_CAPACITY
    denial_ttl: int = DEFAULT_DENIAL_TTL
    denial_min_ttl: int = DEFAULT_MIN_TTL


class Entry:
    """One cached upstream answer."""

    __slots__ = (
        "ancount",
        "arcount",
        "counts",
        "ends",
        "expires",
        "flags",
        "kind",
        "nscount",
        "patched",
        "stored",
        "tail",
        "ttl_offsets",
    )

    def __init__(
        self,
        *,
        kind: str,
        tail: bytes,
        ttl_offsets: tuple[int, ...],
        ends: tuple[int, ...],
        counts: tuple[int, int, int],
        flags: int,
        stored: float,
        expires: float,
    ) -> None:
        self.kind = kind
        self.tail = tail
        self.ttl_offsets = ttl_offsets
        self.ends = ends
        self.ancount, self.nscount, self.arcount = counts
        self.flags = flags  # the upstream's header bytes 2-3
        self.stored = stored
        self.expires = expires
        # Header counts without and with our OPT record, and the tail with TTLs for one remaining value.
        self.counts = (
            struct.pack("!HHHH", 1, self.ancount, self.nscount, self.arcount),
            struct.pack("!HHHH", 1, self.ancount, self.nscount, self.arcount + 1),
        )
        self.patched: tuple[int, bytes] = (-1, b"")

    def render_plain(
        self, packet: bytes, *, question_end: int, opt: bytes, dnssec_ok: bool, now: float
    ) -> bytes:
        """The whole reply for a plain query (see the handler's fast path); the caller checks its size."""
        remaining = max(int(self.expires - now), 0)
        seconds, tail = self.patched
        if seconds != remaining:
            buffer = bytearray(self.tail)
            for offset in self.ttl_offsets:
                _TTL.pack_into(buffer, offset, remaining)
            tail = bytes(buffer)
            self.patched = (remaining, tail)
        flags = self.flags
        second = (flags & 0x80) | (packet[3] & 0x10) | (flags & 0x0F)
        if dnssec_ok or packet[3] & 0x20:
            second |= flags & 0x20
        return (
            packet[:2]
            + bytes((0x84 | (packet[2] & 0x01), second))
            + self.counts[1 if opt else 0]
            + packet[wire.HEADER : question_end]
            + tail
            + opt
        )

    def render(self, query: wire.Query, *, limit: int, now: float) -> bytes:
        """The reply to ``query``: TTLs counted down to the remaining lifetime, cut to ``limit``."""
        tail = bytearray(self.tail)
        remaining = max(int(self.expires - now), 0)
        for offset in self.ttl_offsets:
            _TTL.pack_into(tail, offset, remaining)
        template = wire.Template(
            tail=bytes(tail),
            ends=self.ends,
            ancount=self.ancount,
            nscount=self.nscount,
            arcount=self.arcount,
            rcode=self.flags & 0x0F,
            authoritative=True,
        )
        reply = bytearray(template.render(query, limit=limit))
        # RA (and AD when the client asked for DNSSEC or set AD) come from the upstream.
        reply[3] |= self.flags & 0x80
        if query.dnssec_ok or query.packet[3] & 0x20:
            reply[3] |= self.flags & 0x20
        return bytes(reply)


def parse_response(
    response: bytes, *, kind_for: Callable[[int, int], str | None] | None = None
) -> tuple[str | None, int, bytes, tuple[int, ...], tuple[int, ...], tuple[int, int, int], int]:
    """Split an upstream response into what an :class:`Entry` keeps.

    Returns (kind or None when not cacheable, ttl, tail, ttl_offsets, ends, counts, flags).
    Raises ValueError for a malformed message.
    """
    flags = (response[2] << 8) | response[3]
    rcode = flags & 0x0F
    qdcount, ancount, nscount, arcount = wire.header_counts(response)
    if qdcount != 1:
        raise ValueError(f"{qdcount} questions in the response")
    start = wire.question_end(response)
    records = wire.scan_records(response, offset=start, count=ancount + nscount + arcount)
    if records and records[-1].end != len(response):
        raise ValueError("trailing bytes after the records")
    kept = [r for r in records if r.rtype != wire.OPT]
    opts = [i for i, r in enumerate(records) if r.rtype == wire.OPT]
    if opts and opts != [len(records) - 1]:
        raise ValueError("an OPT record that is not last")
    end = kept[-1].end if kept else start
    tail = response[start:end]
    ttl_offsets = tuple(r.ttl_offset - start for r in kept)
    ends = tuple(r.end - start for r in kept)
    counts = (ancount, nscount, arcount - len(opts))
    kind: str | None = None
    ttl = 0
    truncated = bool(flags & 0x0200)
    if not truncated:
        if rcode == wire.NOERROR and ancount:
            kind = SUCCESS
            ttl = min(_ttl(response, r) for r in kept)
        elif rcode == wire.NXDOMAIN or (rcode == wire.NOERROR and not ancount):
            kind = DENIAL
            soas = [r for r in records[ancount : ancount + nscount] if r.rtype == wire.SOA]
            if soas:
                soa = soas[0]
                minimum = struct.unpack_from("!I", response, soa.end - 4)[0]
                ttl = min(_ttl(response, soa), minimum)
            else:
                ttl = NO_SOA_DENIAL_TTL
    return kind, ttl, tail, ttl_offsets, ends, counts, flags & 0xFFFF


def _ttl(message: bytes, record: wire.ScannedRecord) -> int:
    return _TTL.unpack_from(message, record.ttl_offset)[0]


class ForwardCache:
    """The success and denial caches. ``clock`` is monotonic seconds (injected in tests)."""

    def __init__(
        self, options: CacheOptions = CacheOptions(), *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.options = options
        self.clock = clock
        self._success: dict[bytes, Entry] = {}
        self._denial: dict[bytes, Entry] = {}

    def sizes(self) -> dict[str, int]:
        return {SUCCESS: len(self._success), DENIAL: len(self._denial)}

    def get(self, key: bytes) -> Entry | None:
        entry = self._success.get(key) or self._denial.get(key)
        if entry is None:
            return None
        if entry.expires <= self.clock():
            (self._success if entry.kind == SUCCESS else self._denial).pop(key, None)
            return None
        return entry

    def put(self, key: bytes, response: bytes) -> Entry | None:
        """Cache ``response`` under ``key`` if it may be cached; the entry, or None."""
        try:
            kind, ttl, tail, ttl_offsets, ends, counts, flags = parse_response(response)
        except (ValueError, struct.error):
            return None
        if kind is None:
            return None
        options = self.options
        if kind == SUCCESS:
            ttl = min(max(ttl, options.success_min_ttl), options.success_ttl)
            store, capacity = self._success, options.success_capacity
        else:
            ttl = min(max(ttl, options.denial_min_ttl), options.denial_ttl)
            store, capacity = self._denial, options.denial_capacity
        if ttl <= 0 or capacity <= 0:
            return None
        now = self.clock()
        entry = Entry(
            kind=kind,
            tail=tail,
            ttl_offsets=ttl_offsets,
            ends=ends,
            counts=counts,
            flags=flags,
            stored=now,
            expires=now + ttl,
        )
        store.pop(key, None)
        while len(store) >= capacity:
            del store[next(iter(store))]
        store[key] = entry
        return entry
