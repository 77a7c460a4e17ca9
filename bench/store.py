"""Benchmark: durable creates per second through the SQLite store, against raw SQLite.

The anchor is what SQLite itself can do durably on this machine: the same table, WAL with
``synchronous=FULL``, one INSERT and one COMMIT (one fsync) per write, from one plain
connection with no event loop, no threads and no compare-and-swap. The store is then
measured with 1 writer (every create waits for its own commit: the cost is the thread
hand-off and the CAS read on top of the anchor's fsync) and with 32 concurrent writers
(group commit: one fsync covers every create queued meanwhile). Both run in the same
process, on the same disk, in the same run, and each prints ``ratio = ours / anchor``.

    .venv/bin/python bench/store.py [--writes N] [--value-bytes B] [--uvloop]
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import tempfile
import time
from pathlib import Path

from control.store import SqliteStore, sql


def anchor(path: Path, *, writes: int, value: bytes) -> float:
    """Raw durable commits per second: one INSERT + COMMIT per write."""
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        for pragma in sql.WRITER_PRAGMAS:
            connection.execute(pragma)
        for statement in sql.SCHEMA:
            connection.execute(statement)
        started = time.perf_counter()
        for i in range(writes):
            connection.execute("BEGIN")
            connection.execute(sql.INSERT, (i + 1, f"/registry/bench/{i}", 1, 0, i + 1, 0, value, None))
            connection.execute("COMMIT")
        return writes / (time.perf_counter() - started)
    finally:
        connection.close()


async def ours(path: Path, *, writes: int, writers: int, value: bytes) -> tuple[float, int]:
    """Store creates per second with ``writers`` concurrent tasks, and the commits it took."""
    store = SqliteStore(path)
    await store.start()
    try:

        async def writer(first: int) -> None:
            for i in range(first, writes, writers):
                await store.create(f"/registry/bench/{i}", value)

        commits_before = store.commits
        started = time.perf_counter()
        await asyncio.gather(*(writer(first) for first in range(writers)))
        elapsed = time.perf_counter() - started
        return writes / elapsed, store.commits - commits_before
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--writes", type=int, default=3000, help="creates per measurement (default 3000)")
    parser.add_argument("--value-bytes", type=int, default=1024, help="size of each value (default 1024)")
    parser.add_argument("--uvloop", action="store_true", help="run the store on uvloop")
    args = parser.parse_args()
    value = b"x" * args.value_bytes
    run = asyncio.run
    if args.uvloop:
        import uvloop

        run = uvloop.run

    with tempfile.TemporaryDirectory(prefix="kubelab-bench-store-") as tmp:
        directory = Path(tmp)
        anchor_rate = anchor(directory / "anchor.db", writes=args.writes, value=value)
        results = []
        for writers in (1, 32):
            rate, commits = run(
                ours(directory / f"ours-{writers}.db", writes=args.writes, writers=writers, value=value)
            )
            results.append((writers, rate, commits))

    loop_name = "uvloop" if args.uvloop else "asyncio"
    print(f"durable creates, {args.writes} per run, {args.value_bytes}-byte values, WAL + synchronous=FULL")
    print(f"{'what':<38} {'creates/s':>10} {'commits':>8} {'ratio':>7}")
    print(f"{'anchor: raw sqlite3 INSERT+COMMIT':<38} {anchor_rate:>10.0f} {args.writes:>8} {1.0:>7.2f}")
    for writers, rate, commits in results:
        label = f"SqliteStore ({loop_name}), {writers} writer{'s' if writers > 1 else ''}"
        print(f"{label:<38} {rate:>10.0f} {commits:>8} {rate / anchor_rate:>7.2f}")
    for writers, rate, _ in results:
        print(
            f"ratio = ours / anchor ({writers} writer{'s' if writers > 1 else ''}) = {rate / anchor_rate:.2f}"
        )


if __name__ == "__main__":
    main()
