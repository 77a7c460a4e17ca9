"""List a prefix of the store, then follow its changes, for the API server's own caches.

The namespace cache and the custom-resource registry both keep in-memory state derived
from stored objects. They follow the store directly (not the HTTP API): list, then watch
from the list's revision; on compaction or a store error, list again; stop when the
store closes. This is the reflector loop, one level down.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from control.apiserver import errors
from control.store import CompactedError, Event, KeyValue, Store, StoreError

log = logging.getLogger("kubelab.apiserver")

RETRY_SECONDS = 1.0


async def follow_prefix(
    store: Store,
    prefix: str,
    *,
    on_list: Callable[[list[KeyValue]], Awaitable[None]],
    on_event: Callable[[Event], Awaitable[None]],
    what: str,
) -> None:
    """Run until the store closes. ``on_list`` gets every (re)list's items; ``on_event``
    every change after it. A StatusError raised by a callback also causes a relist."""
    while True:
        try:
            listing = await store.list(prefix)
            await on_list(listing.items)
            async for batch in store.watch(prefix, start_revision=listing.revision + 1):
                for event in batch:
                    await on_event(event)
            return  # the store closed
        except CompactedError:
            continue
        except (StoreError, errors.StatusError) as exc:
            log.warning("%s failed, relisting in %.0f s: %s", what, RETRY_SECONDS, exc)
            await asyncio.sleep(RETRY_SECONDS)
