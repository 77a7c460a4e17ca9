"""Prebuilt answers for the cluster zones, built once per change and forgotten by dependency.

The first query for a name computes its answer with the record rules and turns it into a
:class:`~addons.coredns_lite.wire.Template`; every later query with the same lowercase question
is served from those bytes. Each stored answer is filed under the *tags* of the objects it was
computed from (``("svc", ns, name)``, ``("ns", ns)``, ``("ip", address)``): when the backend
reports a change it names the tags it touched, and only the answers filed under them are
dropped — one Service changing never costs the rest of the zone its prebuilt answers. The next
query rebuilds the dropped ones from the current state, so a change is visible as soon as the
informer has delivered it.

Only names that exist are stored (positive answers and NODATA, whose SOA is added per query
because its serial moves): NXDOMAIN answers are computed per query, so a stream of random names
cannot fill the table. Even so the table is bounded: past ``capacity`` entries it starts over.
"""

from __future__ import annotations

from collections.abc import Iterable

from addons.coredns_lite.backend import Tag
from addons.coredns_lite.wire import Template

DEFAULT_CAPACITY = 200_000


class NoData:
    """A stored NODATA answer: the name exists; its zone's SOA is appended per query."""

    __slots__ = ("zone_length",)

    def __init__(self, zone_length: int) -> None:
        self.zone_length = zone_length  # wire length of the zone name: where the SOA's owner points


class AnswerTable:
    """Lowercase question (name + type + class) → :class:`Template` or :class:`NoData`."""

    def __init__(self, *, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity <= 0:
            raise ValueError(f"capacity must be positive, got {capacity}")
        self.capacity = capacity
        self.entries: dict[bytes, Template | NoData] = {}
        self._by_tag: dict[Tag, set[bytes]] = {}
        self.rebuilds = 0  # how many times the table started over because it was full

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, key: bytes) -> Template | NoData | None:
        return self.entries.get(key)

    def put(self, key: bytes, answer: Template | NoData, *, tags: Iterable[Tag]) -> None:
        if len(self.entries) >= self.capacity:
            self.clear()
            self.rebuilds += 1
        self.entries[key] = answer
        for tag in tags:
            self._by_tag.setdefault(tag, set()).add(key)

    def forget(self, tags: Iterable[Tag]) -> int:
        """Drop every answer filed under any of ``tags``; how many were dropped."""
        dropped = 0
        entries = self.entries
        for tag in tags:
            keys = self._by_tag.pop(tag, None)
            if keys:
                for key in keys:
                    if entries.pop(key, None) is not None:
                        dropped += 1
        return dropped

    def clear(self) -> None:
        self.entries.clear()
        self._by_tag.clear()
