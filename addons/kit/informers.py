"""Starting an add-on's informers, with readiness after their first full sync.

An add-on must not act on a half-filled cache (a DNS server would answer NXDOMAIN for Services
it simply has not listed yet), so readiness waits for the first sync. Some add-ons also wait
for it before serving at all, but not forever: CoreDNS starts serving unsynced after 5 s and
becomes ready later. :class:`SyncGate` does exactly that: :meth:`SyncGate.start` starts every
source, waits up to ``timeout`` for them to sync and returns whether they did; either way the
readiness gate opens as soon as they have all synced (a background task keeps waiting).

A *source* is anything with ``start()`` and ``wait_for_sync(timeout)``: an ``InformerFactory``,
a ``SharedInformer``, or an add-on's own reflector-fed store.

Once every source has synced, the gate tells :mod:`addons.kit.heap` (which freezes what the
sync built, when the process asked for it) before it opens.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Protocol

from addons.kit.heap import heap_synced
from addons.kit.serving import Readiness

log = logging.getLogger(__name__)


class SyncSource(Protocol):
    def start(self) -> None: ...

    async def wait_for_sync(self, timeout: float | None = None) -> bool: ...  # noqa: ASYNC109


class SyncGate:
    """Start ``sources`` and open readiness gate ``gate`` once all of them have synced."""

    def __init__(
        self, sources: Sequence[SyncSource], *, readiness: Readiness, gate: str = "informers"
    ) -> None:
        self._sources = list(sources)
        self._readiness = readiness
        self._gate = gate
        readiness.add(gate)
        self._waiter: asyncio.Task[None] | None = None
        self.synced = asyncio.Event()

    async def _wait_all(self) -> None:
        if not all(await asyncio.gather(*(source.wait_for_sync(None) for source in self._sources))):
            log.error("a source stopped before its first sync; not ready", extra={"gate": self._gate})
            return
        heap_synced()
        self._readiness.set(self._gate, True)
        self.synced.set()
        log.info("caches synced", extra={"gate": self._gate})

    # A timeout argument rather than asyncio.timeout(): not syncing in time is a verdict, not an error.
    async def start(self, *, timeout: float | None) -> bool:  # noqa: ASYNC109
        """Start the sources; True if they synced within ``timeout`` seconds (None: wait for ever)."""
        for source in self._sources:
            source.start()
        self._waiter = asyncio.create_task(self._wait_all(), name=f"sync {self._gate}")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._waiter), timeout)
        if not self.synced.is_set():
            log.warning("caches not synced after %s s; starting anyway, not ready yet", timeout)
        return self.synced.is_set()

    async def stop(self) -> None:
        """Stop waiting (the sources are the caller's to stop) and close the gate."""
        self._readiness.set(self._gate, False)
        if self._waiter is not None:
            self._waiter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._waiter
