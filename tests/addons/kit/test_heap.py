"""The synced heap is frozen out of collections, only in a process that asked for it."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest

from addons.kit.heap import configure_heap, heap_synced
from addons.kit.informers import SyncGate
from addons.kit.serving import Readiness


class Source:
    """A FAKE sync source that has synced already."""

    def start(self) -> None:
        pass

    async def wait_for_sync(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109
        return True


@pytest.fixture
def frozen_heap_restored() -> Iterator[None]:
    gc.unfreeze()
    yield
    configure_heap(freeze_when_synced=False)
    gc.unfreeze()


@pytest.mark.usefixtures("frozen_heap_restored")
def test_a_process_that_did_not_ask_keeps_its_heap_collectable() -> None:
    heap_synced()
    assert gc.get_freeze_count() == 0


@pytest.mark.usefixtures("frozen_heap_restored")
async def test_the_first_sync_freezes_what_is_alive_and_collects_the_garbage_first() -> None:
    configure_heap()

    class Cycle:
        def __init__(self) -> None:
            self.me = self

    gc.disable()  # no automatic collection may take the cycle before the gate does
    try:
        garbage = Cycle()
        collected_before = gc.get_stats()[2]["collected"]
        del garbage
        kept = {"cache": list(range(10))}
        gate = SyncGate([Source()], readiness=Readiness())
        assert await gate.start(timeout=5)
    finally:
        gc.enable()
    assert gc.get_stats()[2]["collected"] > collected_before  # a full collection ran first
    assert gc.get_freeze_count() > 0
    # Frozen: in no generation that collections walk.
    assert not any(tracked is kept for tracked in gc.get_objects())
    await gate.stop()
    await asyncio.sleep(0)
