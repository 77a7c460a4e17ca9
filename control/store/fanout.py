"""In-process fan-out of committed events to watchers, by key prefix.

The SQLite store has a single writer in this process, so it never polls for changes (as
kine does across peers): after each committed batch, the event loop hands the batch's
events to :meth:`WatchHub.publish`, which appends them to every matching subscription.

Watchers are grouped by prefix so a batch is filtered once per distinct prefix, not once
per watcher (the API server's watch cache holds one store watch per resource, and many
clients may share a prefix). Each subscription keeps its own bounded buffer: a consumer
that stops reading is cut off with :class:`WatcherOverflowError` instead of blocking the
writer or growing memory without bound. Everything here runs on the event loop thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from control.store.protocol import Event, WatcherOverflowError


class Subscription:
    """One watcher's buffer of live events with revision >= ``min_revision``.

    Fed by :meth:`WatchHub.publish`; drained by :meth:`batches`. The event lists it yields
    are the subscriber's own, but the events in them are shared: never modify them.
    """

    __slots__ = ("_limit", "_pending", "_wakeup", "closed", "min_revision", "overflowed", "prefix")

    def __init__(self, prefix: str, *, min_revision: int, limit: int) -> None:
        self.prefix = prefix
        self.min_revision = min_revision
        self.closed = False
        self.overflowed = False
        self._limit = limit
        self._pending: list[Event] = []
        self._wakeup = asyncio.Event()

    def offer(self, events: list[Event]) -> bool:
        """Buffer matching events; False when the buffer overflowed (stop offering)."""
        if events[-1].revision < self.min_revision:
            return True
        if events[0].revision < self.min_revision:
            events = [event for event in events if event.revision >= self.min_revision]
        if len(self._pending) + len(events) > self._limit:
            self.overflowed = True
            self._wakeup.set()
            return False
        self._pending.extend(events)
        self._wakeup.set()
        return True

    def close(self) -> None:
        self.closed = True
        self._wakeup.set()

    async def batches(self) -> AsyncIterator[list[Event]]:
        """Everything buffered, as one batch per wake-up, until closed or overflowed.

        On overflow the events buffered before it are delivered first, then
        :class:`WatcherOverflowError` is raised; on close the iteration just ends.
        """
        while True:
            if self._pending:
                batch, self._pending = self._pending, []
                yield batch
                continue
            if self.overflowed:
                raise WatcherOverflowError(limit=self._limit)
            if self.closed:
                return
            self._wakeup.clear()
            await self._wakeup.wait()


class WatchHub:
    """The set of live subscriptions, grouped by prefix."""

    def __init__(self, *, buffer_limit: int) -> None:
        if buffer_limit < 1:
            raise ValueError(f"watch buffer limit must be at least 1, not {buffer_limit}")
        self._buffer_limit = buffer_limit
        self._by_prefix: dict[str, set[Subscription]] = {}

    def __len__(self) -> int:
        return sum(len(subscriptions) for subscriptions in self._by_prefix.values())

    def subscribe(self, prefix: str, *, min_revision: int) -> Subscription:
        subscription = Subscription(prefix, min_revision=min_revision, limit=self._buffer_limit)
        self._by_prefix.setdefault(prefix, set()).add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        subscriptions = self._by_prefix.get(subscription.prefix)
        if subscriptions is None:
            return
        subscriptions.discard(subscription)
        if not subscriptions:
            del self._by_prefix[subscription.prefix]

    def publish(self, events: list[Event]) -> None:
        """Hand one committed batch (in revision order) to every matching subscription."""
        overflowed: list[Subscription] = []
        # Most batches are one write: test its key against each prefix, no list per prefix.
        only_key = events[0].kv.key if len(events) == 1 else None
        for prefix, subscriptions in self._by_prefix.items():
            if only_key is not None:
                matching = events if only_key.startswith(prefix) else None
            else:
                matching = (
                    events if not prefix else [event for event in events if event.kv.key.startswith(prefix)]
                )
            if not matching:
                continue
            for subscription in subscriptions:
                if not subscription.offer(matching):
                    overflowed.append(subscription)
        for subscription in overflowed:
            self.unsubscribe(subscription)

    def close(self) -> None:
        """End every subscription's iteration (after what it has buffered)."""
        for subscriptions in self._by_prefix.values():
            for subscription in subscriptions:
                subscription.close()
        self._by_prefix.clear()
