"""Readiness after the first sync, with a bounded wait at start-up."""

from __future__ import annotations

import asyncio

from addons.kit.informers import SyncGate
from addons.kit.serving import Readiness


class Source:
    """A FAKE sync source: synced when the test says so."""

    def __init__(self) -> None:
        self.started = False
        self.synced = asyncio.Event()

    def start(self) -> None:
        self.started = True

    async def wait_for_sync(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109
        try:
            await asyncio.wait_for(self.synced.wait(), timeout)
        except TimeoutError:
            return False
        return True


async def test_the_gate_opens_when_every_source_has_synced() -> None:
    readiness = Readiness()
    first, second = Source(), Source()
    gate = SyncGate([first, second], readiness=readiness, gate="caches")
    first.synced.set()
    second.synced.set()
    assert await gate.start(timeout=5)
    assert first.started and second.started and readiness.is_ready()
    await gate.stop()
    assert readiness.pending() == ["caches"]


async def test_starting_unsynced_after_the_timeout_and_becoming_ready_later() -> None:
    readiness = Readiness()
    source = Source()
    gate = SyncGate([source], readiness=readiness)
    assert not await gate.start(timeout=0.01)
    assert readiness.pending() == ["informers"]
    source.synced.set()
    async with asyncio.timeout(5):
        await gate.synced.wait()
    assert readiness.is_ready()
    await gate.stop()
