"""The storage contract every backend meets: etcd v3's key-value semantics, nothing more.

The API server keeps every object as one key (``/registry/<group>/<resource>/<ns>/<name>``)
whose value is opaque bytes. The store knows no HTTP and no kinds: it only orders writes
by a global, monotonic *revision* and lets readers ask for the state at a revision or for
the changes after one. ``resourceVersion`` in the API is exactly that revision.

Shaped after etcd's KV and Watch services (and k3s's kine, which puts them on SQL):

- ``create`` succeeds only when the key is absent (or deleted);
- ``update``/``delete`` are compare-and-swap on the key's ``mod_revision``; a failed
  swap is an ordinary result carrying the current value, not an exception;
- ``watch`` replays the changes after a revision, then follows live writes;
- ``compact`` forgets history older than a revision; reading or watching from before it
  raises :class:`CompactedError`, which the API server turns into 410 Gone.

A write is acknowledged (its coroutine returns) only after it is durable.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


class StoreError(Exception):
    """Base of every error a store raises; backends translate their driver errors once."""


class KeyExistsError(StoreError):
    """``create`` found a live key of that name."""

    def __init__(self, key: str) -> None:
        super().__init__(f"key already exists: {key}")
        self.key = key


class CompactedError(StoreError):
    """The requested revision is older than the compacted revision."""

    def __init__(self, *, requested: int, compacted: int) -> None:
        super().__init__(f"revision {requested} has been compacted (compacted revision {compacted})")
        self.requested = requested
        self.compacted = compacted


class FutureRevisionError(StoreError):
    """The requested revision is newer than the store's current revision."""

    def __init__(self, *, requested: int, current: int) -> None:
        super().__init__(f"revision {requested} is in the future (current revision {current})")
        self.requested = requested
        self.current = current


class StoreUnavailableError(StoreError):
    """The backend cannot be reached or failed; the operation may be retried."""


class WatcherOverflowError(StoreError):
    """A watcher fell too far behind: more than ``limit`` events were waiting for it.

    The store stops buffering for that watcher (so a slow consumer never blocks writers or
    grows memory without bound), delivers what it had buffered, then ends the iteration with
    this error. Watch again from the revision after the last event received (or relist)."""

    def __init__(self, *, limit: int) -> None:
        super().__init__(f"watcher fell behind: more than {limit} undelivered events")
        self.limit = limit


@dataclass(frozen=True, slots=True)
class KeyValue:
    """One key's value as of a revision. ``mod_revision`` is the API's resourceVersion."""

    key: str
    value: bytes
    create_revision: int
    mod_revision: int


class EventType(enum.Enum):
    PUT = "PUT"
    DELETE = "DELETE"


@dataclass(frozen=True, slots=True)
class Event:
    """One change. For PUT, ``kv`` is the new value and ``prev`` the one it replaced (None
    for a create). For DELETE, ``kv`` is the last value with ``mod_revision`` set to the
    deletion's revision, and ``prev`` is the value before the deletion."""

    type: EventType
    kv: KeyValue
    prev: KeyValue | None

    @property
    def revision(self) -> int:
        return self.kv.mod_revision

    @property
    def is_create(self) -> bool:
        return self.type is EventType.PUT and self.prev is None


@dataclass(frozen=True, slots=True)
class ListResult:
    """Keys in ascending order; ``revision`` is the revision the list was read at;
    ``more`` says whether keys remain after the last one (paging with ``limit``)."""

    items: list[KeyValue]
    revision: int
    more: bool
    remaining: int = 0


@dataclass(frozen=True, slots=True)
class SwapResult:
    """Outcome of a compare-and-swap (``update`` or ``delete``).

    ``succeeded``: the swap happened and ``kv`` is the new value (for delete: the deleted
    value, with ``mod_revision`` = the deletion's revision). Otherwise ``kv`` is the
    current value (None when the key does not exist) so the caller can report 409 or 404.
    """

    succeeded: bool
    kv: KeyValue | None
    revision: int


@runtime_checkable
class Store(Protocol):
    """What the API server needs from storage. Every method is keyword-only past the key."""

    async def start(self) -> None:
        """Open connections, create schema; idempotent."""

    async def close(self) -> None:
        """Stop watchers (their iterators end) and release everything."""

    async def current_revision(self) -> int: ...

    async def compacted_revision(self) -> int: ...

    async def get(self, key: str, *, revision: int = 0) -> KeyValue | None:
        """The key as of ``revision`` (0 = latest); None when absent or deleted."""

    async def list(
        self, prefix: str, *, revision: int = 0, start_key: str = "", limit: int = 0
    ) -> ListResult:
        """Live keys starting with ``prefix`` and >= ``start_key``, ascending, at most
        ``limit`` (0 = all), as of ``revision`` (0 = latest)."""

    async def count(self, prefix: str) -> int: ...

    async def create(self, key: str, value: bytes) -> KeyValue:
        """Insert when absent; raises KeyExistsError otherwise."""

    async def update(self, key: str, value: bytes, *, expected_revision: int) -> SwapResult:
        """Replace when the key's mod_revision equals ``expected_revision``."""

    async def delete(self, key: str, *, expected_revision: int = 0) -> SwapResult:
        """Tombstone the key; ``expected_revision`` 0 = unconditional."""

    def watch(self, prefix: str, *, start_revision: int) -> AsyncIterator[list[Event]]:
        """Batches of events with revision >= ``start_revision`` for keys under
        ``prefix``, in revision order, replayed from history then live. Raises
        CompactedError (on first iteration) when ``start_revision`` is compacted.
        ``start_revision`` 0 means "from now on"."""

    async def compact(self, revision: int) -> None:
        """Drop history older than ``revision`` (keeping each key's latest value)."""
