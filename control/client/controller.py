"""The controller worker loop (sample-controller's ``runWorker``/``processNextWorkItem``).

A controller is a ``reconcile(key)`` coroutine plus informers whose handlers add keys to a
:class:`RateLimitingQueue`. :class:`Controller` runs it the way every upstream controller does:

1. wait until the informers' caches have synced (reconciling against a half-filled cache would
   delete things that merely have not been listed yet);
2. start ``workers`` workers, each looping get → reconcile → done;
3. after ``reconcile``:

   - success → ``forget`` (reset the key's backoff);
   - :class:`TemporaryError` → retry: after its ``delay`` if it gives one, else rate-limited;
   - :class:`PermanentError` → the input is bad and retrying cannot help: log it and ``forget``;
   - any other exception → transient: log it and retry rate-limited (with ``max_retries``, give
     up after that many and forget);

   ``done`` is always called, so a key changed meanwhile is processed again.

``reconcile`` should read the current state from the informer caches (never trust the event
that queued the key) and must not mutate cached objects.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import Generic, Protocol, TypeVar

from control.client.workqueue import QueueShutDown, RateLimitingQueue

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)


class PermanentError(Exception):
    """Reconciling this key cannot succeed as things are (bad input): do not retry."""


class TemporaryError(Exception):
    """Reconciling this key should be retried; after ``delay`` seconds if given, else with backoff."""

    def __init__(self, message: str = "", *, delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


class Syncable(Protocol):
    """Anything with client-go's ``WaitForCacheSync`` shape: informers and informer factories."""

    async def wait_for_sync(self, timeout: float | None = None) -> bool: ...  # noqa: ASYNC109


Reconcile = Callable[[K], Awaitable[None]]


async def process_next_item(
    queue: RateLimitingQueue[K],
    reconcile: Reconcile[K],
    *,
    name: str = "controller",
    max_retries: int | None = None,
) -> bool:
    """Take one key from ``queue`` and reconcile it; False once the queue is shut down."""
    try:
        key = await queue.get()
    except QueueShutDown:
        return False
    try:
        await reconcile(key)
    except PermanentError as exc:
        log.error("%s: %s: permanent error, not retrying: %s", name, key, exc)
        queue.forget(key)
    except TemporaryError as exc:
        if exc.delay is not None:
            log.info("%s: %s: retrying in %.3gs: %s", name, key, exc.delay, exc)
            queue.add_after(key, exc.delay)
        else:
            log.info("%s: %s: retrying with backoff: %s", name, key, exc)
            queue.add_rate_limited(key)
    except Exception:
        if max_retries is not None and queue.num_requeues(key) >= max_retries:
            log.exception("%s: %s: failed %d times, dropping it", name, key, max_retries + 1)
            queue.forget(key)
        else:
            log.exception("%s: %s: error syncing; requeuing", name, key)
            queue.add_rate_limited(key)
    else:
        queue.forget(key)
    finally:
        queue.done(key)
    return True


class Controller(Generic[K]):
    """Runs ``reconcile`` over the keys of ``queue`` with ``workers`` concurrent workers.

    :meth:`run` returns when the queue is shut down (after the workers finish what is queued) and
    shuts the queue down when it is cancelled, as sample-controller's ``defer queue.ShutDown()``.
    """

    def __init__(
        self,
        name: str,
        queue: RateLimitingQueue[K],
        reconcile: Reconcile[K],
        *,
        workers: int = 1,
        informers: Iterable[Syncable] = (),
        sync_timeout: float | None = None,
        max_retries: int | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.name = name
        self.queue = queue
        self._reconcile = reconcile
        self._workers = workers
        self._informers = list(informers)
        self._sync_timeout = sync_timeout
        self._max_retries = max_retries

    async def run(self) -> None:
        """Wait for the caches, then work until the queue shuts down or this is cancelled.

        Raises :class:`TimeoutError` if the caches do not sync within ``sync_timeout``.
        """
        try:
            for informer in self._informers:
                if not await informer.wait_for_sync(self._sync_timeout):
                    raise TimeoutError(f"{self.name}: caches did not sync within {self._sync_timeout}s")
            log.info("%s: caches synced; starting %d workers", self.name, self._workers)
            async with asyncio.TaskGroup() as group:
                for number in range(self._workers):
                    group.create_task(self._worker(), name=f"{self.name} worker {number}")
        finally:
            self.queue.shutdown()

    async def _worker(self) -> None:
        while await process_next_item(
            self.queue, self._reconcile, name=self.name, max_retries=self._max_retries
        ):
            pass
