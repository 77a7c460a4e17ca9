"""The embedded store: etcd v3 semantics on one SQLite file, log-structured like kine.

Every write appends a row to one table (see :mod:`control.store.sql`); the row's id is the
revision. Three kinds of work run in three places:

- **Writes** go through a queue to one writer thread that owns the only write connection.
  It drains everything pending into one transaction (group commit: one fsync for the whole
  batch, WAL with ``synchronous=FULL``), decides each compare-and-swap against the rows
  already in the table *and* the earlier writes of the same batch, commits, and only then
  hands the outcomes and the batch's events back to the event loop. A write coroutine
  therefore returns only after its row is durable, and there is exactly one writer, so
  SQLite's "database is locked" cannot happen.
- **A write that is alone commits on the loop.** When no other write is in flight and the
  writer thread has nothing queued or undelivered, the loop runs the same commit itself on
  the writer's connection (under the writer's lock). A lone client's write then costs the
  commit, not the commit plus two thread wake-ups (each one tens of microseconds, and on a
  VM whose idle vCPU must be woken, often more than a hundred). Before committing inline
  the write yields to the loop once, so writes that arrived together see each other and go
  to the writer as one group commit instead of queueing behind one inline fsync each.
- **Checkpoints run on the writer thread**, never inside an inline commit: the write
  connection has SQLite's automatic checkpoint off. Once the commits since the last
  checkpoint add up to about SQLite's own threshold (1000 pages), writes stop committing
  inline; the next one goes to the writer thread, which commits it and then checkpoints the
  WAL (``PASSIVE``), as SQLite's automatic checkpoint would inside that commit. The loop is
  never blocked writing pages back to the database.
- **Reads** run on a small thread pool, each thread with its own read-only connection; WAL
  lets them proceed while the writer commits. Reads at "latest" read at the revision the
  loop last saw committed, so a list and its revision always agree.
- **Latest values** of recently written or read keys are also kept in memory (a bounded map
  the loop updates from each committed batch, in revision order, and from reads no commit
  overtook), so a read of a key's latest value, the first step of every update, mostly needs
  no thread hop and no query. A key the map does not hold is read from the table.
- **Watch** is in-process: the loop fans each committed batch out to subscribers
  (:mod:`control.store.fanout`). A watch from revision R subscribes first, then replays the
  table's rows up to the revision it subscribed at, then follows the subscription, which
  only holds later revisions: no gap, no duplicate, no polling.

Compaction runs in the writer like any write. The writer raises the compacted revision
before it deletes anything, and every read checks it again after reading, so a read racing
a compaction either sees complete history or fails with :class:`CompactedError`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import enum
import queue
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from control.store import sql
from control.store.fanout import WatchHub
from control.store.protocol import (
    CompactedError,
    Event,
    EventType,
    FutureRevisionError,
    KeyExistsError,
    KeyValue,
    ListResult,
    StoreError,
    StoreUnavailableError,
    SwapResult,
)

WRITER_THREAD_NAME = "kubelab-sqlite-writer"
READER_THREAD_PREFIX = "kubelab-sqlite-reader"

_MAX_BATCH = 1024
"""Most write requests in one transaction; bounds how long one commit holds the others."""

CHECKPOINT_PAGES = 1000
"""WAL pages (estimated) after which the writer checkpoints: SQLite's own automatic threshold."""

_PAGE_BYTES = 4096

LATEST_CACHE_KEYS = 8192
"""Most keys whose latest value the loop keeps in memory (the oldest written goes first)."""

_T = TypeVar("_T")

# A key's newest row as the writer sees it: id, create_revision, deleted, value.
_Row = tuple[int, int, int, bytes]


class _Op(enum.Enum):
    CREATE = enum.auto()
    UPDATE = enum.auto()
    DELETE = enum.auto()
    COMPACT = enum.auto()


@dataclass(slots=True)
class _Request:
    op: _Op
    key: str
    value: bytes
    # UPDATE/DELETE: the expected mod_revision (0 = any); COMPACT: the revision to compact at.
    revision: int
    future: asyncio.Future[Any]


# What the writer hands back for one request: its future, and a result or an error.
_Outcome = tuple[asyncio.Future[Any], Any, StoreError | None]
_CommitCallback = Callable[[int, list[_Outcome], list[Event]], None]


def _translate(exc: sqlite3.Error) -> StoreError:
    """The one place sqlite3 errors become store errors."""
    if isinstance(exc, sqlite3.IntegrityError):
        return StoreError(f"sqlite integrity error: {exc}")
    return StoreUnavailableError(f"sqlite: {exc}")


def _range_end(prefix: str) -> str | bytes:
    """The smallest key after every key that starts with ``prefix``."""
    stripped = prefix.rstrip("\U0010ffff")
    if not stripped:
        return sql.UNBOUNDED
    following = ord(stripped[-1]) + 1
    if 0xD800 <= following <= 0xDFFF:  # surrogates are not valid in UTF-8 text
        following = 0xE000
    return stripped[:-1] + chr(following)


def _check_key(key: str) -> None:
    if not key:
        raise ValueError("key must not be empty")


class _Writer(threading.Thread):
    """The single writer: group commit of everything queued, then a callback to the loop."""

    def __init__(
        self,
        connection: sqlite3.Connection,
        *,
        revision: int,
        compacted: int,
        loop: asyncio.AbstractEventLoop,
        on_commit: _CommitCallback,
    ) -> None:
        super().__init__(name=WRITER_THREAD_NAME, daemon=True)
        self.requests: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        # Written only by this thread (after start); plain reads elsewhere are safe.
        self.revision = revision
        self.compacted = compacted
        self.commits = 0
        self.loop = loop
        self._connection = connection
        self._on_commit = on_commit
        # Held for every use of the connection: by this thread, or by the loop committing inline.
        self._connection_lock = threading.Lock()
        # WAL pages written since the last checkpoint (an estimate; see _pages).
        self.pages_since_checkpoint = 0

    def run(self) -> None:
        try:
            stopping = False
            while not stopping:
                first = self.requests.get()
                if first is None:
                    return
                batch = [first]
                while len(batch) < _MAX_BATCH:
                    try:
                        request = self.requests.get_nowait()
                    except queue.Empty:
                        break
                    if request is None:
                        stopping = True
                        break
                    batch.append(request)
                with self._connection_lock:
                    self._commit(batch, deliver=self._deliver)
                    if self.pages_since_checkpoint >= CHECKPOINT_PAGES:
                        self._checkpoint_locked()
        finally:
            with self._connection_lock:
                self._connection.close()

    def commit_inline(self, request: _Request, *, deliver: _CommitCallback) -> bool:
        """On the loop: commit ``request`` now and ``deliver`` its outcome right here, if the
        connection is free; False (nothing done) when this thread is using it. The caller
        makes sure nothing this thread committed is still undelivered, so revisions reach the
        loop in order."""
        if not self._connection_lock.acquire(blocking=False):
            return False
        try:
            self._commit([request], deliver=deliver)
            return True
        finally:
            self._connection_lock.release()

    def _checkpoint_locked(self) -> None:
        """Checkpoint what no reader still needs; count what is left for the next one."""
        try:
            _busy, wal_pages, checkpointed = self._connection.execute(sql.CHECKPOINT).fetchone()
        except sqlite3.Error:
            return  # the next commit tries again
        self.pages_since_checkpoint = max(0, wal_pages - checkpointed)

    def _commit(self, batch: list[_Request], *, deliver: _CommitCallback) -> None:
        connection = self._connection
        revision = self.revision
        compacted_before = self.compacted
        latest: dict[str, _Row | None] = {}
        rows: list[tuple[object, ...]] = []
        events: list[Event] = []
        outcomes: list[_Outcome] = []
        try:
            connection.execute(sql.BEGIN_WRITE)
            for request in batch:
                if request.op is _Op.COMPACT:
                    if rows:
                        connection.executemany(sql.INSERT, rows)
                        rows = []
                    self._compact_locked(request.revision)
                    outcomes.append((request.future, None, None))
                    continue
                key = request.key
                if key in latest:
                    current = latest[key]
                else:
                    current = connection.execute(sql.LATEST_ROW, (key,)).fetchone()
                if request.op is _Op.CREATE:
                    if current is not None and not current[2]:
                        outcomes.append((request.future, None, KeyExistsError(key)))
                        continue
                    revision += 1
                    rows.append(
                        (revision, key, 1, 0, revision, current[0] if current else 0, request.value, None)
                    )
                    kv = KeyValue(key, request.value, revision, revision)
                    events.append(Event(EventType.PUT, kv, None))
                    latest[key] = (revision, revision, 0, request.value)
                    outcomes.append((request.future, kv, None))
                    continue
                if current is None or current[2]:
                    outcomes.append((request.future, SwapResult(False, None, revision), None))
                    continue
                current_id, create_revision, _, current_value = current
                current_kv = KeyValue(key, current_value, create_revision, current_id)
                if request.revision and request.revision != current_id:
                    outcomes.append((request.future, SwapResult(False, current_kv, revision), None))
                    continue
                revision += 1
                if request.op is _Op.UPDATE:
                    rows.append(
                        (revision, key, 0, 0, create_revision, current_id, request.value, current_value)
                    )
                    kv = KeyValue(key, request.value, create_revision, revision)
                    events.append(Event(EventType.PUT, kv, current_kv))
                    latest[key] = (revision, create_revision, 0, request.value)
                else:
                    # A tombstone keeps the last value (its old_value would be the same bytes).
                    rows.append((revision, key, 0, 1, create_revision, current_id, current_value, None))
                    kv = KeyValue(key, current_value, create_revision, revision)
                    events.append(Event(EventType.DELETE, kv, current_kv))
                    latest[key] = (revision, create_revision, 1, current_value)
                outcomes.append((request.future, SwapResult(True, kv, revision), None))
            if rows:
                connection.executemany(sql.INSERT, rows)
            connection.execute(sql.COMMIT)
        except Exception as exc:
            self.compacted = compacted_before
            with contextlib.suppress(sqlite3.Error):
                if connection.in_transaction:
                    connection.rollback()
            deliver(self.revision, [(request.future, None, _write_error(exc)) for request in batch], [])
            return
        self.revision = revision
        self.commits += 1
        self.pages_since_checkpoint += _pages(rows)
        deliver(revision, outcomes, events)

    def _compact_locked(self, revision: int) -> None:
        """Compact inside the open transaction; a no-op at or below the compacted revision."""
        if revision <= self.compacted:
            return
        # Raised before deleting: from now on readers refuse older revisions (and re-check
        # after reading), so none can see history with holes in it.
        self.compacted = revision
        self._connection.execute(sql.COMPACT, (revision,))
        self._connection.execute(sql.SET_META, (sql.COMPACT_REV_NAME, revision))

    def _deliver(self, revision: int, outcomes: list[_Outcome], events: list[Event]) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            self.loop.call_soon_threadsafe(self._on_commit, revision, outcomes, events)


def _pages(rows: list[tuple[Any, ...]]) -> int:
    """About how many WAL pages a commit of ``rows`` appends: for each row a table page and an
    index page plus its values' overflow pages, and the sequence table's page once."""
    pages = 1
    for row in rows:
        pages += 2 + (len(row[6]) + len(row[7] or b"")) // _PAGE_BYTES
    return pages


def _write_error(exc: Exception) -> StoreError:
    error = _translate(exc) if isinstance(exc, sqlite3.Error) else StoreError(f"write failed: {exc!r}")
    error.__cause__ = exc
    return error


def _open_database(path: Path) -> tuple[sqlite3.Connection, int, int]:
    """The write connection (schema created), the current and the compacted revision."""
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    try:
        for pragma in sql.WRITER_PRAGMAS:
            connection.execute(pragma)
        connection.execute(sql.MANUAL_CHECKPOINTS)
        (mode,) = connection.execute("PRAGMA journal_mode").fetchone()
        if mode != "wal":
            raise StoreError(f"{path}: SQLite cannot use write-ahead logging here (journal mode {mode!r})")
        connection.execute(sql.BEGIN_WRITE)
        for statement in sql.SCHEMA:
            connection.execute(statement)
        connection.execute(sql.COMMIT)
        (revision,) = connection.execute(sql.CURRENT_REVISION).fetchone()
        compacted_row = connection.execute(sql.GET_META, (sql.COMPACT_REV_NAME,)).fetchone()
    except BaseException:
        connection.close()
        raise
    return connection, revision, compacted_row[0] if compacted_row else 0


# Reads: each runs on a reader thread with that thread's connection.


def _read_row(connection: sqlite3.Connection, key: str, revision: int) -> KeyValue | None:
    row = connection.execute(sql.ROW_AT, (key, revision)).fetchone()
    if row is None or row[2]:
        return None
    return KeyValue(key, row[3], row[1], row[0])


def _read_page(
    connection: sqlite3.Connection, start: str, end: str | bytes, revision: int, limit: int
) -> tuple[list[KeyValue], int]:
    """Up to ``limit`` live keys from ``start`` (0 = all), and how many more there are."""
    if limit:
        rows = connection.execute(sql.LIST_PAGE_AT, (start, end, revision, limit + 1)).fetchall()
    else:
        rows = connection.execute(sql.LIST_AT, (start, end, revision)).fetchall()
    items = [
        KeyValue(name, value, create_revision, mod_revision)
        for name, value, create_revision, mod_revision in rows
    ]
    if not limit or len(items) <= limit:
        return items, 0
    (total,) = connection.execute(sql.COUNT_AT, (start, end, revision)).fetchone()
    return items[:limit], total - limit


def _read_count(connection: sqlite3.Connection, start: str, end: str | bytes, revision: int) -> int:
    (total,) = connection.execute(sql.COUNT_AT, (start, end, revision)).fetchone()
    return total


def _read_changes(
    connection: sqlite3.Connection, *, first: int, last: int, start: str, end: str | bytes, limit: int
) -> list[Event]:
    events = []
    rows = connection.execute(sql.CHANGES, (first, last, start, end, limit))
    for revision, name, created, deleted, create_revision, prev_revision, value, old_value in rows:
        kv = KeyValue(name, value, create_revision, revision)
        if deleted:
            events.append(Event(EventType.DELETE, kv, KeyValue(name, value, create_revision, prev_revision)))
        elif created:
            events.append(Event(EventType.PUT, kv, None))
        else:
            events.append(Event(EventType.PUT, kv, KeyValue(name, old_value, create_revision, prev_revision)))
    return events


class SqliteStore:
    """The :class:`~control.store.protocol.Store` on one SQLite file (see the module docstring).

    Bound to the event loop that calls :meth:`start`. ``commits`` counts committed write
    transactions (fewer than writes when group commit batches them).
    """

    def __init__(
        self,
        path: Path,
        *,
        watch_buffer_limit: int = 10_000,
        replay_page_size: int = 1000,
        reader_threads: int = 4,
        latest_cache_keys: int = LATEST_CACHE_KEYS,
    ) -> None:
        if replay_page_size < 1:
            raise ValueError(f"replay page size must be at least 1, not {replay_page_size}")
        if reader_threads < 1:
            raise ValueError(f"reader threads must be at least 1, not {reader_threads}")
        if latest_cache_keys < 0:
            raise ValueError(f"the latest-value map's size must not be negative, not {latest_cache_keys}")
        self.path = path
        self._replay_page_size = replay_page_size
        self._reader_threads = reader_threads
        self._hub = WatchHub(buffer_limit=watch_buffer_limit)
        self._writer: _Writer | None = None
        self._readers: ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._reader_connections: list[sqlite3.Connection] = []
        self._reader_connections_lock = threading.Lock()
        # The newest revision whose commit the loop has processed: what "latest" means.
        self._revision = 0
        self._closed = False
        # key -> its latest KeyValue (None: deleted), as of self._revision; updated only by
        # _on_commit, so it never holds a value the loop has not seen committed.
        # Oldest first; an OrderedDict, since a dict whose front is deleted again and again
        # makes every trim scan the holes left behind.
        self._latest: collections.OrderedDict[str, KeyValue | None] = collections.OrderedDict()
        self._latest_limit = latest_cache_keys
        # Requests handed to the writer thread whose outcomes _on_commit has not delivered
        # yet, and the lone write yielding before it commits inline: both used only on the loop.
        self._undelivered = 0
        self._inline_candidate: _Request | None = None

    @property
    def commits(self) -> int:
        return self._writer.commits if self._writer else 0

    async def start(self) -> None:
        if self._closed:
            raise StoreUnavailableError("store is closed")
        if self._writer is not None:
            return
        try:
            connection, revision, compacted = await asyncio.to_thread(_open_database, self.path)
        except sqlite3.Error as exc:
            raise _translate(exc) from exc
        except OSError as exc:
            raise StoreUnavailableError(f"cannot create the directory for {self.path}: {exc}") from exc
        self._revision = revision
        self._readers = ThreadPoolExecutor(self._reader_threads, thread_name_prefix=READER_THREAD_PREFIX)
        self._writer = _Writer(
            connection,
            revision=revision,
            compacted=compacted,
            loop=asyncio.get_running_loop(),
            on_commit=self._on_writer_commit,
        )
        self._writer.start()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # Watchers first, before any await: none may resume into a store half closed.
        self._hub.close()
        if self._writer is not None:
            self._writer.requests.put(None)  # after everything already queued
            await asyncio.to_thread(self._writer.join)
        if self._readers is not None:
            await asyncio.to_thread(self._readers.shutdown, wait=True)
        with self._reader_connections_lock:
            for connection in self._reader_connections:
                connection.close()
            self._reader_connections.clear()

    async def current_revision(self) -> int:
        self._open_writer()
        return self._revision

    async def compacted_revision(self) -> int:
        return self._open_writer().compacted

    async def get(self, key: str, *, revision: int = 0) -> KeyValue | None:
        _check_key(key)
        at = self._read_revision(revision)
        if revision == 0 and key in self._latest:
            return self._latest[key]
        kv = await self._read(_read_row, key, at)
        self._check_compacted(at)
        if revision == 0 and self._revision == at and self._latest_limit:
            # No commit reached the loop while we read: this is the latest value, worth keeping.
            self._latest[key] = kv
            self._trim_latest()
        return kv

    async def list(
        self, prefix: str, *, revision: int = 0, start_key: str = "", limit: int = 0
    ) -> ListResult:
        if limit < 0:
            raise ValueError(f"limit must not be negative, not {limit}")
        at = self._read_revision(revision)
        items, remaining = await self._read(_read_page, max(prefix, start_key), _range_end(prefix), at, limit)
        self._check_compacted(at)
        return ListResult(items, at, remaining > 0, remaining)

    async def count(self, prefix: str) -> int:
        at = self._read_revision(0)
        return await self._read(_read_count, prefix, _range_end(prefix), at)

    async def create(self, key: str, value: bytes) -> KeyValue:
        _check_key(key)
        return await self._write(_Request(_Op.CREATE, key, value, 0, self._new_future()))

    async def update(self, key: str, value: bytes, *, expected_revision: int) -> SwapResult:
        _check_key(key)
        if expected_revision < 1:
            raise ValueError(f"update needs the key's current mod_revision, not {expected_revision}")
        return await self._write(_Request(_Op.UPDATE, key, value, expected_revision, self._new_future()))

    async def delete(self, key: str, *, expected_revision: int = 0) -> SwapResult:
        _check_key(key)
        if expected_revision < 0:
            raise ValueError(f"expected revision must not be negative, not {expected_revision}")
        return await self._write(_Request(_Op.DELETE, key, b"", expected_revision, self._new_future()))

    async def compact(self, revision: int) -> None:
        if revision < 0:
            raise ValueError(f"revision must not be negative, not {revision}")
        writer = self._open_writer()
        if revision > self._revision:
            raise FutureRevisionError(requested=revision, current=self._revision)
        if revision <= writer.compacted:
            return
        await self._write(_Request(_Op.COMPACT, "", b"", revision, self._new_future()))

    async def watch(self, prefix: str, *, start_revision: int) -> AsyncIterator[list[Event]]:
        if start_revision < 0:
            raise ValueError(f"start revision must not be negative, not {start_revision}")
        self._open_writer()
        if start_revision:
            self._check_compacted(start_revision)
        # Subscribe first: every commit the loop processes from here on lands in the
        # subscription, and everything up to `replayed_to` is already in the table.
        replayed_to = self._revision
        subscription = self._hub.subscribe(prefix, min_revision=max(replayed_to + 1, start_revision))
        try:
            next_revision = start_revision or replayed_to + 1
            end = _range_end(prefix)
            while next_revision <= replayed_to:
                try:
                    events = await self._read(
                        _read_changes,
                        first=next_revision,
                        last=replayed_to,
                        start=prefix,
                        end=end,
                        limit=self._replay_page_size,
                    )
                except StoreUnavailableError:
                    if subscription.closed:
                        return
                    raise
                if subscription.closed:
                    return  # never jump from a partial replay to live events
                self._check_compacted(next_revision)
                if not events:
                    break
                yield events
                if len(events) < self._replay_page_size:
                    break
                next_revision = events[-1].revision + 1
            async for batch in subscription.batches():
                yield batch
        finally:
            self._hub.unsubscribe(subscription)

    # Internals.

    def _open_writer(self) -> _Writer:
        if self._closed:
            raise StoreUnavailableError("store is closed")
        if self._writer is None:
            raise StoreUnavailableError("store is not started")
        return self._writer

    def _new_future(self) -> asyncio.Future[Any]:
        return self._open_writer().loop.create_future()

    async def _write(self, request: _Request) -> Any:
        writer = self._open_writer()
        waiting = self._inline_candidate
        if waiting is not None:
            # A lone write is waiting to commit inline: it came first, so it goes to the
            # writer first, and this one joins its group commit.
            self._inline_candidate = None
            self._hand_to_writer(writer, waiting)
        elif (
            request.op is not _Op.COMPACT
            and not self._undelivered
            and writer.pages_since_checkpoint < CHECKPOINT_PAGES  # else the writer commits, then checkpoints
        ):
            return await self._write_alone(writer, request)
        self._hand_to_writer(writer, request)
        return await request.future

    async def _write_alone(self, writer: _Writer, request: _Request) -> Any:
        """Commit on the loop unless another write arrives while this one yields once."""
        self._inline_candidate = request
        try:
            await asyncio.sleep(0)
        except asyncio.CancelledError:
            if self._inline_candidate is request:  # never submitted: the write does not happen
                self._inline_candidate = None
            raise
        if self._inline_candidate is request:
            self._inline_candidate = None
            self._open_writer()  # closed meanwhile: fail instead of queueing after the stop
            if not writer.commit_inline(request, deliver=self._on_commit):
                # The writer thread is using the connection (finishing a batch, checkpointing).
                self._hand_to_writer(writer, request)
        return await request.future

    def _hand_to_writer(self, writer: _Writer, request: _Request) -> None:
        self._undelivered += 1
        writer.requests.put(request)

    def _on_writer_commit(self, revision: int, outcomes: list[_Outcome], events: list[Event]) -> None:
        """On the loop, a batch the writer thread committed (or failed)."""
        self._undelivered -= len(outcomes)
        self._on_commit(revision, outcomes, events)

    def _on_commit(self, revision: int, outcomes: list[_Outcome], events: list[Event]) -> None:
        """On the loop, after a batch committed (or failed): publish, then resolve."""
        self._revision = max(self._revision, revision)
        if events:
            self._remember_latest(events)
            self._hub.publish(events)
        for future, result, error in outcomes:
            if future.done():  # the caller was cancelled; the write happened anyway
                continue
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(error)

    def _remember_latest(self, events: list[Event]) -> None:
        latest = self._latest
        for event in events:
            key = event.kv.key
            latest[key] = None if event.type is EventType.DELETE else event.kv
            latest.move_to_end(key)  # the map's order is the order of writes
        self._trim_latest()

    def _trim_latest(self) -> None:
        latest = self._latest
        while len(latest) > self._latest_limit:
            latest.popitem(last=False)

    def _read_revision(self, revision: int) -> int:
        """The revision a read at ``revision`` (0 = latest) reads at, or why it cannot."""
        self._open_writer()
        if revision < 0:
            raise ValueError(f"revision must not be negative, not {revision}")
        current = self._revision
        if revision == 0:
            return current
        if revision > current:
            raise FutureRevisionError(requested=revision, current=current)
        self._check_compacted(revision)
        return revision

    def _check_compacted(self, revision: int) -> None:
        compacted = self._open_writer().compacted
        if revision < compacted:
            raise CompactedError(requested=revision, compacted=compacted)

    async def _read(self, query: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        loop = self._open_writer().loop
        try:
            pending = loop.run_in_executor(self._readers, self._run_read, query, args, kwargs)
        except RuntimeError as exc:  # close() shut the pool down under us
            raise StoreUnavailableError("store is closed") from exc
        return await pending

    def _run_read(self, query: Callable[..., _T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> _T:
        """On a reader thread, with that thread's own connection."""
        try:
            connection = getattr(self._local, "connection", None)
            if connection is None:
                connection = self._connect_reader()
            return query(connection, *args, **kwargs)
        except sqlite3.Error as exc:
            raise _translate(exc) from exc

    def _connect_reader(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        for pragma in sql.READER_PRAGMAS:
            connection.execute(pragma)
        with self._reader_connections_lock:
            self._reader_connections.append(connection)
        self._local.connection = connection
        return connection
