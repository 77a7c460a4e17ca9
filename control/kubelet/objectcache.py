"""The ConfigMaps and Secrets that pods on this node reference, each watched on its own.

The kubelet's default "Watch" strategy (``pkg/kubelet/util/manager/watch_based_manager``):
a node needs only the few objects its pods name, so instead of caching every ConfigMap and
Secret of the cluster it runs one informer per referenced object
(``fieldSelector=metadata.name=<name>`` in its namespace), shared by every pod that uses it
and stopped when the last of them lets go. Changes are reported to ``on_change`` with the
pods holding a reference, so their volumes are rewritten.

Objects from :meth:`get` are the informer's cache entries: shared, never to be mutated.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from control.client.informer import SharedInformer
from control.client.rest import Resource, RESTClient

log = logging.getLogger("kubelab.kubelet.objects")

CONFIG_MAPS = Resource(group="", version="v1", plural="configmaps", kind="ConfigMap")
SECRETS = Resource(group="", version="v1", plural="secrets", kind="Secret")
SYNC_TIMEOUT = 15.0

Key = tuple[str, str, str]  # (plural, namespace, name)
OnChange = Callable[[Key, set[str]], None]


class ObjectSource(Protocol):
    """Where the volume and env code read referenced objects (``ReferencedObjects``)."""

    async def get(
        self, resource: Resource, namespace: str, name: str, *, holder: str
    ) -> dict[str, Any] | None: ...

    async def release(self, holder: str) -> None: ...


class ObjectUnavailableError(Exception):
    """The object could not be read (the API server did not answer in time)."""


@dataclass
class _Watch:
    informer: SharedInformer
    holders: set[str] = field(default_factory=set)


class ReferencedObjects:
    def __init__(self, *, client: RESTClient, on_change: OnChange) -> None:
        self._client = client
        self._on_change = on_change
        self._watches: dict[Key, _Watch] = {}

    def _watch(self, resource: Resource, namespace: str, name: str) -> _Watch:
        key = (resource.plural, namespace, name)
        watch = self._watches.get(key)
        if watch is None:
            informer = SharedInformer(
                self._client.lister_watcher(
                    resource, namespace=namespace, field_selector=f"metadata.name={name}"
                ),
                name=f"{namespace}/{resource.plural}/{name}",
            )
            watch = _Watch(informer)

            def changed(*_: Any) -> None:
                if informer.has_synced():
                    self._on_change(key, set(watch.holders))

            informer.add_event_handler(on_add=changed, on_update=changed, on_delete=changed)
            informer.start()
            self._watches[key] = watch
        return watch

    async def get(
        self, resource: Resource, namespace: str, name: str, *, holder: str
    ) -> dict[str, Any] | None:
        """The object (None if it does not exist), watching it for ``holder`` from now on."""
        watch = self._watch(resource, namespace, name)
        watch.holders.add(holder)
        if not await watch.informer.wait_for_sync(timeout=SYNC_TIMEOUT):
            raise ObjectUnavailableError(
                f"timed out waiting for the API server to list {resource.plural} {namespace}/{name}"
            )
        return watch.informer.cache.get_by_key(f"{namespace}/{name}")

    def holders(self, key: Key) -> set[str]:
        watch = self._watches.get(key)
        return set(watch.holders) if watch else set()

    async def release(self, holder: str) -> None:
        """``holder`` no longer needs anything; informers nobody holds are stopped."""
        unused = []
        for key, watch in self._watches.items():
            watch.holders.discard(holder)
            if not watch.holders:
                unused.append(key)
        stopping = [self._watches.pop(key).informer.stop() for key in unused]
        if stopping:
            await asyncio.gather(*stopping)

    async def close(self) -> None:
        watches = list(self._watches.values())
        self._watches.clear()
        await asyncio.gather(*(watch.informer.stop() for watch in watches))
