"""The heap of a long-running add-on: what its first sync builds is frozen out of collections.

CPython's full collection walks every object the collector tracks. After an add-on's first
sync that is mostly its caches: coredns_lite with 10,000 Services holds about 100,000 of them,
and a full collection then stops its loop for 20 to 45 ms on a small VM (measured with
``gc.callbacks`` under ``bench/dns.py``). Every query that arrives meanwhile waits, so those
pauses are the latency tail. Objects synced at start live as long as the process, so once
the caches have synced, :func:`heap_synced` collects once and moves everything alive to the
permanent generation (``gc.freeze``), which later collections skip: the next full collection
measured 0.2 ms. Frozen objects are still freed by reference counting when a cache drops
them; only reference cycles among them would never be collected, and the caches hold plain
dicts, lists, tuples and bytes.

It is a process-wide decision, so the add-on's ``main`` makes it (:func:`configure_heap`, next
to ``configure_logging``); :class:`~addons.kit.informers.SyncGate` calls :func:`heap_synced`,
which does nothing in a process that did not ask (tests run add-ons in-process).
"""

from __future__ import annotations

import gc
import logging
import time

log = logging.getLogger(__name__)

_freeze_when_synced = False


def configure_heap(*, freeze_when_synced: bool = True) -> None:
    """Freeze the heap after the first sync (see the module docstring); call it from ``main``."""
    global _freeze_when_synced  # one process-wide setting, as logging's
    _freeze_when_synced = freeze_when_synced


def heap_synced() -> None:
    """The caches have synced: collect once, then freeze what is alive, if the process asked."""
    if not _freeze_when_synced:
        return
    started = time.perf_counter()
    gc.collect()
    gc.freeze()
    log.info(
        "froze the synced heap",
        extra={"objects": gc.get_freeze_count(), "seconds": round(time.perf_counter() - started, 4)},
    )
