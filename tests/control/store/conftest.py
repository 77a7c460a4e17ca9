"""Fixtures for the store tests: one real etcd for the session, and a fresh store per test.

The etcd is Debian's binary (installed by scripts/setup), started on free loopback ports
with a temporary data directory, and stopped (SIGTERM, then SIGKILL) when the session ends.
Every store test gets its own key prefix, so tests sharing that etcd never see each other.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from control.store import EtcdStore, SqliteStore, Store
from control.store.sqlite import READER_THREAD_PREFIX, WRITER_THREAD_NAME
from tests.etcd_process import EtcdServer, running_etcd


@pytest.fixture(scope="session")
def etcd_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EtcdServer | None]:
    """The session's etcd, or None when no selected test needs one (``-m "not etcd"``).

    Session-scoped and requested statically by ``store``, so it starts before any test's
    own fixtures (the suite's leaked-process guard does not count it against a test).
    """
    if not any(item.get_closest_marker("etcd") for item in request.session.items):
        yield None
        return
    with running_etcd(tmp_path_factory.mktemp("etcd")) as server:
        yield server


def sqlite_threads() -> list[threading.Thread]:
    return [
        thread
        for thread in threading.enumerate()
        if thread.name == WRITER_THREAD_NAME or thread.name.startswith(READER_THREAD_PREFIX)
    ]


@pytest.fixture
def prefix() -> str:
    """A key prefix no other test uses."""
    return f"/test/{uuid.uuid4().hex[:12]}/"


@pytest.fixture(params=["sqlite", pytest.param("etcd", marks=pytest.mark.etcd)])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, etcd_server: EtcdServer | None
) -> AsyncIterator[Store]:
    """A started store of each backend; closed afterwards (SQLite: with no thread left)."""
    if request.param == "sqlite":
        # A small replay page makes every watch replay span several reads.
        backend: Store = SqliteStore(tmp_path / "state.db", replay_page_size=7)
    else:
        assert etcd_server is not None
        backend = EtcdStore([etcd_server.endpoint])
    await backend.start()
    try:
        yield backend
    finally:
        await backend.close()
    assert not sqlite_threads(), "the store left threads running after close()"
