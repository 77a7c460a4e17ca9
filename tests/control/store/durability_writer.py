"""Test helper process: writes to a SqliteStore flat out and prints each acknowledged write.

Run as ``python -m tests.control.store.durability_writer DB_PATH``. It prints ``ready``, then
one line ``<key> <revision>`` per create, only after the store acknowledged it (the create
coroutine returned), from several concurrent writers so group commits are in flight at any
moment. ``test_sqlite`` SIGKILLs it mid-burst and checks every printed write survived.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from control.store import SqliteStore

WRITERS = 8


async def write_forever(store: SqliteStore, writer: int) -> None:
    for n in range(sys.maxsize):
        key = f"/durability/{writer}/{n}"
        kv = await store.create(key, b"v" * 256)
        sys.stdout.write(f"{key} {kv.mod_revision}\n")
        sys.stdout.flush()


async def main(path: Path) -> None:
    store = SqliteStore(path)
    await store.start()
    print("ready", flush=True)
    await asyncio.gather(*(write_forever(store, writer) for writer in range(WRITERS)))


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
