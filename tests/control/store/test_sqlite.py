"""What only the SQLite store promises: durability across a crash, group commit, bounded
watcher buffers, persistence across restarts, physical compaction, and no lock errors
under mixed load. The shared contract is in ``test_contract.py``."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from control.store import (
    Event,
    KeyExistsError,
    SqliteStore,
    StoreUnavailableError,
    WatcherOverflowError,
)
from control.store import sqlite as sqlite_module

from .conftest import sqlite_threads

REPO_ROOT = Path(__file__).resolve().parents[3]
TIMEOUT = 20.0


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(tmp_path / "state.db")
    await store.start()
    try:
        yield store
    finally:
        await store.close()
    assert not sqlite_threads(), "the store left threads running after close()"


def table_rows(path: Path) -> list[tuple[int, str, int]]:
    """(id, name, deleted) of every row, read with a plain connection."""
    with sqlite3.connect(path) as connection:
        return connection.execute("SELECT id, name, deleted FROM revisions ORDER BY id").fetchall()


async def test_every_acknowledged_write_survives_sigkill(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    writer = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.control.store.durability_writer",
        str(db),
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    assert writer.stdout is not None
    acknowledged: dict[str, int] = {}
    try:
        async with asyncio.timeout(TIMEOUT):
            assert await writer.stdout.readline() == b"ready\n"
            while len(acknowledged) < 400:
                key, revision = (await writer.stdout.readline()).split()
                acknowledged[key.decode()] = int(revision)
    finally:
        writer.send_signal(signal.SIGKILL)
        tail = await writer.stdout.read()
        await writer.wait()
    # Lines printed before the kill were acknowledged too; a torn last line was not.
    for line in tail.split(b"\n"):
        if line.count(b" ") == 1 and line.split()[1].isdigit():
            key, revision = line.split()
            acknowledged[key.decode()] = int(revision)
    assert writer.returncode == -signal.SIGKILL

    store = SqliteStore(db)
    await store.start()
    try:
        assert await store.current_revision() >= max(acknowledged.values())
        for key, revision in acknowledged.items():
            kv = await store.get(key)
            assert kv is not None, f"acknowledged write {key} at {revision} was lost"
            assert kv.mod_revision == revision
    finally:
        await store.close()


async def test_concurrent_writes_share_commits(sqlite_store: SqliteStore) -> None:
    before = sqlite_store.commits

    created = await asyncio.gather(*(sqlite_store.create(f"/group/{n}", b"x") for n in range(200)))

    commits = sqlite_store.commits - before
    assert 1 <= commits < 200
    first = min(kv.mod_revision for kv in created)
    assert sorted(kv.mod_revision for kv in created) == list(range(first, first + 200))


async def test_sequential_writes_commit_one_by_one(sqlite_store: SqliteStore) -> None:
    before = sqlite_store.commits

    for n in range(5):
        await sqlite_store.create(f"/one/{n}", b"x")

    assert sqlite_store.commits - before == 5


async def test_writes_in_one_batch_see_each_other(sqlite_store: SqliteStore) -> None:
    before = sqlite_store.commits

    first, deleted, second, duplicate = await asyncio.gather(
        sqlite_store.create("/batch/k", b"1"),
        sqlite_store.delete("/batch/k"),
        sqlite_store.create("/batch/k", b"2"),
        sqlite_store.create("/batch/k", b"3"),
        return_exceptions=True,
    )

    assert sqlite_store.commits - before == 1  # all four went into one transaction
    assert deleted.succeeded and deleted.kv.value == b"1"
    assert deleted.revision == first.mod_revision + 1
    assert second.create_revision == deleted.revision + 1
    assert isinstance(duplicate, KeyExistsError)
    assert await sqlite_store.get("/batch/k") == second


async def test_a_lone_write_commits_on_the_loop_thread(
    sqlite_store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    committed_on: list[str] = []
    commit = sqlite_module._Writer._commit

    def spy(self: sqlite_module._Writer, batch: list, **kwargs: object) -> None:
        committed_on.append(threading.current_thread().name)
        commit(self, batch, **kwargs)

    monkeypatch.setattr(sqlite_module._Writer, "_commit", spy)

    await sqlite_store.create("/alone/a", b"x")
    await asyncio.gather(*(sqlite_store.create(f"/alone/group-{n}", b"x") for n in range(5)))

    assert committed_on[0] == threading.current_thread().name
    assert set(committed_on[1:]) == {sqlite_module.WRITER_THREAD_NAME}


async def test_a_write_waiting_to_commit_inline_is_not_overtaken(sqlite_store: SqliteStore) -> None:
    first = asyncio.ensure_future(sqlite_store.create("/order/k", b"first"))
    await asyncio.sleep(0)  # the first write is now yielding before its inline commit
    deleted = await sqlite_store.delete("/order/k")

    created = await first
    assert deleted.succeeded and deleted.revision == created.mod_revision + 1


async def test_a_write_cancelled_before_committing_inline_never_happens(sqlite_store: SqliteStore) -> None:
    before = await sqlite_store.current_revision()
    pending = asyncio.ensure_future(sqlite_store.create("/cancelled/k", b"x"))
    await asyncio.sleep(0)

    pending.cancel()
    with pytest.raises(asyncio.CancelledError):
        await pending

    assert await sqlite_store.get("/cancelled/k") is None
    later = await sqlite_store.create("/cancelled/other", b"x")
    assert later.mod_revision == before + 1


async def test_inline_and_group_commits_reach_watchers_in_revision_order(sqlite_store: SqliteStore) -> None:
    """Lone writes (inline), bursts (the writer thread) and writes whose caller gave up, mixed."""
    start = await sqlite_store.current_revision() + 1
    watcher = sqlite_store.watch("/mixed/", start_revision=start)
    for round_ in range(30):
        await sqlite_store.create(f"/mixed/alone-{round_}", b"x")
        burst = [
            asyncio.ensure_future(sqlite_store.create(f"/mixed/burst-{round_}-{n}", b"x")) for n in range(3)
        ]
        if round_ % 3 == 0:
            await asyncio.sleep(0)
            burst[0].cancel()  # handed to the writer: cancelling the caller does not undo it
        await sqlite_store.create(f"/mixed/after-{round_}", b"x")
        await asyncio.gather(*burst, return_exceptions=True)

    last = await sqlite_store.current_revision()
    revisions: list[int] = []
    async with asyncio.timeout(TIMEOUT):
        async for batch in watcher:
            revisions.extend(event.revision for event in batch)
            if revisions[-1] >= last:
                break
    await watcher.aclose()
    assert revisions == list(range(start, last + 1))
    assert len((await sqlite_store.list("/mixed/")).items) == len(revisions) == 30 * 5


async def test_the_writer_thread_checkpoints_after_inline_commits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The write connection never checkpoints inside a commit, so without the writer thread's
    checkpoints the WAL would hold every page ever written."""
    monkeypatch.setattr(sqlite_module, "CHECKPOINT_PAGES", 40)
    store = SqliteStore(tmp_path / "state.db")
    await store.start()
    try:
        for n in range(300):  # lone writes: each commits inline, about 4 pages each
            await store.create(f"/wal/{n}", b"v" * 5000)
        wal_bytes = (tmp_path / "state.db-wal").stat().st_size
    finally:
        await store.close()
    assert wal_bytes < 200 * 4096, f"the WAL grew to {wal_bytes} bytes: nothing checkpointed it"


async def test_slow_watcher_is_cut_off_without_blocking_writers(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.db", watch_buffer_limit=5)
    await store.start()
    try:
        watcher = store.watch("/slow/", start_revision=await store.current_revision() + 1)
        pending = asyncio.ensure_future(anext(watcher))
        first = await store.create("/slow/0", b"x")
        async with asyncio.timeout(TIMEOUT):
            assert [event.kv for event in await pending] == [first]

        # The watcher is not reading now; writers must still get through.
        async with asyncio.timeout(TIMEOUT):
            later = [await store.create(f"/slow/{n}", b"x") for n in range(1, 12)]

        buffered = await anext(watcher)
        assert [event.kv for event in buffered] == later[:5]
        with pytest.raises(WatcherOverflowError) as caught:
            await anext(watcher)
        assert caught.value.limit == 5
    finally:
        await store.close()


async def test_close_during_replay_ends_the_watch_without_skipping_ahead(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.db", replay_page_size=3)
    await store.start()
    for n in range(10):
        await store.create(f"/replay/{n}", b"x")
    watcher = store.watch("/replay/", start_revision=1)
    first_page = await anext(watcher)
    second_page = asyncio.ensure_future(anext(watcher))  # its read is in flight during close()
    await asyncio.sleep(0)

    await store.close()

    assert [event.revision for event in first_page] == [1, 2, 3]
    async with asyncio.timeout(TIMEOUT):
        with pytest.raises(StopAsyncIteration):
            await second_page


async def test_state_survives_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    store = SqliteStore(db)
    await store.start()
    one = await store.create("/r/a", b"1")
    two = (await store.update("/r/a", b"2", expected_revision=one.mod_revision)).kv
    await store.create("/r/b", b"1")
    await store.compact(two.mod_revision)
    deleted = await store.delete("/r/b")
    await store.close()

    reopened = SqliteStore(db)
    await reopened.start()
    try:
        assert await reopened.current_revision() == deleted.revision
        assert await reopened.compacted_revision() == two.mod_revision
        assert await reopened.get("/r/a") == two
        assert await reopened.get("/r/b") is None
        assert (await reopened.create("/r/c", b"1")).mod_revision == deleted.revision + 1
    finally:
        await reopened.close()


async def test_compaction_removes_superseded_rows_and_tombstones(sqlite_store: SqliteStore) -> None:
    one = await sqlite_store.create("/c/kept", b"1")
    two = (await sqlite_store.update("/c/kept", b"2", expected_revision=one.mod_revision)).kv
    await sqlite_store.create("/c/gone", b"1")
    gone = await sqlite_store.delete("/c/gone")
    unchanged = await sqlite_store.create("/c/unchanged", b"1")
    after = (await sqlite_store.update("/c/kept", b"3", expected_revision=two.mod_revision)).kv

    await sqlite_store.compact(unchanged.mod_revision)

    rows = table_rows(sqlite_store.path)
    # Kept: each key's newest row as of the compaction, and everything after it.
    assert rows == [
        (two.mod_revision, "/c/kept", 0),
        (unchanged.mod_revision, "/c/unchanged", 0),
        (after.mod_revision, "/c/kept", 0),
    ]
    assert gone.revision not in [row[0] for row in rows]


async def test_compaction_keeps_a_tombstone_at_the_compaction_revision(sqlite_store: SqliteStore) -> None:
    created = await sqlite_store.create("/t/k", b"1")
    deleted = await sqlite_store.delete("/t/k")

    await sqlite_store.compact(deleted.revision)

    assert table_rows(sqlite_store.path) == [(deleted.revision, "/t/k", 1)]
    watcher = sqlite_store.watch("/t/", start_revision=deleted.revision)
    events = await anext(watcher)
    await watcher.aclose()
    assert [event.kv for event in events] == [deleted.kv]
    assert events[0].prev is not None and events[0].prev.mod_revision == created.mod_revision


async def test_mixed_concurrent_load_never_fails(sqlite_store: SqliteStore) -> None:
    watcher = sqlite_store.watch("/load/", start_revision=1)
    seen: list[Event] = []

    async def writer(n: int) -> None:
        kv = await sqlite_store.create(f"/load/{n}", b"0")
        for step in range(10):
            result = await sqlite_store.update(f"/load/{n}", b"%d" % step, expected_revision=kv.mod_revision)
            assert result.succeeded
            kv = result.kv

    async def reader() -> None:
        for _ in range(30):
            listed = await sqlite_store.list("/load/")
            assert all(kv.mod_revision <= listed.revision for kv in listed.items)
            await sqlite_store.count("/load/")

    async def watch_all() -> None:
        async for batch in watcher:
            seen.extend(batch)
            if len(seen) == 8 * 11:
                return

    async with asyncio.timeout(TIMEOUT):
        await asyncio.gather(*(writer(n) for n in range(8)), *(reader() for _ in range(8)), watch_all())
    await watcher.aclose()

    revisions = [event.revision for event in seen]
    assert revisions == list(range(1, 8 * 11 + 1))


async def test_empty_prefix_covers_every_key(sqlite_store: SqliteStore) -> None:
    keys = ["/a", "/z/\U0010ffff", "b", "\U0010ffff"]
    created = [await sqlite_store.create(key, b"x") for key in keys]

    listed = await sqlite_store.list("")
    watcher = sqlite_store.watch("", start_revision=1)
    events = await anext(watcher)
    await watcher.aclose()

    assert listed.items == sorted(created, key=lambda kv: kv.key)
    assert await sqlite_store.count("") == 4
    assert [event.kv for event in events] == created
    assert [kv.key for kv in (await sqlite_store.list("\U0010ffff")).items] == ["\U0010ffff"]


async def test_use_before_start_and_after_close_is_refused(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.db")
    with pytest.raises(StoreUnavailableError):
        await store.get("/k")

    await store.start()
    await store.start()  # idempotent
    await store.create("/k", b"1")
    await store.close()
    await store.close()  # idempotent

    with pytest.raises(StoreUnavailableError):
        await store.create("/k2", b"1")
    with pytest.raises(StoreUnavailableError):
        await store.get("/k")
    with pytest.raises(StoreUnavailableError):
        await anext(store.watch("/", start_revision=0))
    with pytest.raises(StoreUnavailableError):
        await store.start()


async def test_a_file_that_is_not_a_database_is_refused_at_start(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    db.write_bytes(b"this is not an SQLite database, just some bytes" * 100)
    store = SqliteStore(db)

    with pytest.raises(StoreUnavailableError, match="not a database"):
        await store.start()
    await store.close()


def test_bad_options_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="watch buffer"):
        SqliteStore(tmp_path / "state.db", watch_buffer_limit=0)
    with pytest.raises(ValueError, match="replay page"):
        SqliteStore(tmp_path / "state.db", replay_page_size=0)
    with pytest.raises(ValueError, match="reader threads"):
        SqliteStore(tmp_path / "state.db", reader_threads=0)
    with pytest.raises(ValueError, match="latest-value map"):
        SqliteStore(tmp_path / "state.db", latest_cache_keys=-1)


async def test_latest_reads_of_written_keys_need_no_query(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.db", latest_cache_keys=2)
    await store.start()
    try:
        first = await store.create("/a", b"1")
        swapped = await store.update("/a", b"2", expected_revision=first.mod_revision)
        await store.create("/b", b"1")
        await store.delete("/b")
        queries: list[str] = []
        real_read = store._read

        async def counting_read(query, *args, **kwargs):  # type: ignore[no-untyped-def]
            queries.append(query.__name__)
            return await real_read(query, *args, **kwargs)

        store._read = counting_read  # type: ignore[method-assign]
        assert await store.get("/a") == swapped.kv
        assert await store.get("/b") is None  # the deletion is remembered too
        assert queries == []
        # An older revision is history: the table answers.
        old = await store.get("/a", revision=first.mod_revision)
        assert old is not None and old.value == b"1"
        assert queries == ["_read_row"]
        # A third key pushes the oldest written out of the map; reading it queries again, correctly.
        await store.create("/c", b"1")
        again = await store.get("/a")
        assert again == swapped.kv
        assert queries == ["_read_row", "_read_row"]
        # ... and that read, which no commit overtook, is remembered.
        assert await store.get("/a") == swapped.kv
        assert queries == ["_read_row", "_read_row"]
    finally:
        await store.close()


async def test_the_latest_map_survives_a_failed_swap(sqlite_store: SqliteStore) -> None:
    created = await sqlite_store.create("/k", b"1")
    stale = await sqlite_store.update("/k", b"2", expected_revision=created.mod_revision + 100)
    assert not stale.succeeded
    current = await sqlite_store.get("/k")
    assert current is not None and current.value == b"1" and current.mod_revision == created.mod_revision
