"""Fixtures for the store tests: one real etcd for the session, and a fresh store per test.

The etcd is Debian's binary (installed by scripts/setup), started on free loopback ports
with a temporary data directory, and stopped (SIGTERM, then SIGKILL) when the session ends.
Every store test gets its own key prefix, so tests sharing that etcd never see each other.
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from control.store import EtcdStore, SqliteStore, Store
from control.store.sqlite import READER_THREAD_PREFIX, WRITER_THREAD_NAME

ETCD_BINARY = Path("/usr/bin/etcd")
ETCD_START_TIMEOUT = 20.0


@dataclass(frozen=True)
class EtcdServer:
    endpoint: str
    log: Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _healthy(endpoint: str) -> bool:
    try:
        with urllib.request.urlopen(f"{endpoint}/health", timeout=1) as response:
            return json.load(response).get("health") == "true"
    except (urllib.error.URLError, OSError, ValueError):
        return False


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
    if not ETCD_BINARY.exists():
        pytest.fail(f"{ETCD_BINARY} is missing: run scripts/setup (it installs Debian's etcd-server)")
    workdir = tmp_path_factory.mktemp("etcd")
    client = f"http://127.0.0.1:{_free_port()}"
    peer = f"http://127.0.0.1:{_free_port()}"
    log_path = workdir / "etcd.log"
    command = [
        str(ETCD_BINARY),
        "--name=kubelab-test",
        f"--data-dir={workdir / 'data'}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=kubelab-test={peer}",
        "--logger=zap",
        "--log-level=warn",
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + ETCD_START_TIMEOUT
        while not _healthy(client):
            if process.poll() is not None:
                pytest.fail(
                    f"etcd exited with {process.returncode}; its log:\n{log_path.read_text()[-4000:]}"
                )
            if time.monotonic() > deadline:
                pytest.fail(
                    f"etcd was not healthy after {ETCD_START_TIMEOUT}s; its log:\n{log_path.read_text()[-4000:]}"
                )
            time.sleep(0.05)
        yield EtcdServer(endpoint=client, log=log_path)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


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
