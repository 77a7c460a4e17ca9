"""The service proxy as a component: informers on Services and EndpointSlices driving the proxier.

One runs inside each node agent (``kubelab node``), as kube-proxy runs on each node. Its shape is
a controller's (``control.client``): informers queue the *key* of the Service an event touches
(a slice is filed under the Service named by its ``kubernetes.io/service-name`` label), and one
worker reconciles a key by reading the Service and its slices from the caches, computing the
routes (:mod:`control.proxy.state`) and applying them (:mod:`control.proxy.proxier`). Events for
one Service coalesce in the queue, so a burst of EndpointSlice updates costs one sync. Listeners
that could not be opened are retried with backoff (0.5 s doubling to 30 s), logged each time.

As kube-proxy, it ignores Services and slices labelled ``service.kubernetes.io/service-proxy-name``
(meant for another proxy) and slices labelled ``service.kubernetes.io/headless``.

Before following changes it syncs every Service once and then calls ``on_ready`` — the node
agent's readiness can wait for that, as kube-proxy's ``/healthz`` waits for its first sync.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry

from control.client.clock import REAL_CLOCK, Clock
from control.client.config import ClientConfig
from control.client.controller import Controller, TemporaryError
from control.client.informer import DeletedFinalStateUnknown, InformerFactory, deletion_handling_key
from control.client.ratelimit import ItemExponentialFailureRateLimiter
from control.client.rest import Resource, RESTClient
from control.client.workqueue import RateLimitingQueue
from control.proxy.metrics import Counts, ProxyMetrics
from control.proxy.proxier import Proxier, SyncError
from control.proxy.state import routes_for_service, service_key_of_slice
from control.proxy.udp import DEFAULT_IDLE_TIMEOUT

log = logging.getLogger("kubelab.proxy")

SERVICES = Resource(group="", version="v1", plural="services", kind="Service")
ENDPOINT_SLICES = Resource(
    group="discovery.k8s.io", version="v1", plural="endpointslices", kind="EndpointSlice"
)
# kube-proxy's informer selector (cmd/kube-proxy/app/server.go).
PROXY_LABEL_SELECTOR = "!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless"
USER_AGENT = "kube-proxy/kubelab"
_BY_SERVICE = "by-service"


class ServiceProxy:
    """The informer handlers, work queue and reconcile loop around one :class:`Proxier`.

    Build it before starting ``informers`` (it registers its informers there), then :meth:`run`
    it; :meth:`close` closes every listener and connection once it has stopped.
    """

    def __init__(
        self,
        informers: InformerFactory,
        *,
        node_ip: str,
        node_name: str,
        udp_idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        registry: CollectorRegistry | None = None,
        clock: Clock = REAL_CLOCK,
    ) -> None:
        self.node_ip = node_ip
        self.node_name = node_name
        counts = Counts()
        self.proxier = Proxier(node_ip=node_ip, udp_idle_timeout=udp_idle_timeout, clock=clock, counts=counts)
        self.metrics = ProxyMetrics(
            registry if registry is not None else CollectorRegistry(), counts=counts, state=self.proxier
        )
        self.queue: RateLimitingQueue[str] = RateLimitingQueue(
            ItemExponentialFailureRateLimiter(base_delay=0.5, max_delay=30.0), name="proxy", clock=clock
        )
        self._services = informers.informer(SERVICES, label_selector=PROXY_LABEL_SELECTOR)
        self._slices = informers.informer(ENDPOINT_SLICES, label_selector=PROXY_LABEL_SELECTOR)
        self._slices.add_indexers({_BY_SERVICE: _slice_service_index})
        self._services.add_event_handler(
            on_add=self._service_changed,
            on_update=lambda old, new: self._service_changed(new, old),
            on_delete=self._service_deleted,
        )
        self._slices.add_event_handler(
            on_add=self._slice_changed,
            on_update=lambda old, new: self._slice_changed(new, old),
            on_delete=self._slice_deleted,
        )

    # --- events -> keys -------------------------------------------------------------------------

    def _service_changed(self, service: dict[str, Any], old: dict[str, Any] | None = None) -> None:
        if old is not None and _same_version(old, service):
            return  # a resync or relist replaying what we have
        self.metrics.service_changes.inc()
        self.queue.add(deletion_handling_key(service))

    def _service_deleted(self, service: dict[str, Any] | DeletedFinalStateUnknown) -> None:
        self.metrics.service_changes.inc()
        self.queue.add(deletion_handling_key(service))

    def _slice_changed(self, endpoint_slice: dict[str, Any], old: dict[str, Any] | None = None) -> None:
        if old is not None and _same_version(old, endpoint_slice):
            return
        self.metrics.endpoint_changes.inc()
        for version in (endpoint_slice, old):
            key = service_key_of_slice(version) if version is not None else None
            if key is not None:
                self.queue.add(key)

    def _slice_deleted(self, endpoint_slice: dict[str, Any] | DeletedFinalStateUnknown) -> None:
        obj = endpoint_slice.obj if isinstance(endpoint_slice, DeletedFinalStateUnknown) else endpoint_slice
        self.metrics.endpoint_changes.inc()
        key = service_key_of_slice(obj)
        if key is not None:
            self.queue.add(key)

    # --- reconcile ------------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        """Bring one Service's listeners in line with the caches."""
        started = time.perf_counter()
        service = self._services.cache.get_by_key(key)
        slices = self._slices.cache.by_index(_BY_SERVICE, key) if service is not None else []
        routes = routes_for_service(service, slices, node_ip=self.node_ip, node_name=self.node_name)
        try:
            await self.proxier.apply(key, routes)
        except SyncError as exc:
            for error in exc.errors:
                log.error("%s: %s", key, error)
            raise TemporaryError(str(exc)) from exc
        finally:
            self.metrics.sync_duration.observe(time.perf_counter() - started)
        self.metrics.last_sync.set_to_current_time()

    async def run(self, *, on_ready: Callable[[], None] | None = None) -> None:
        """Wait for the caches, sync every Service once, report ready, then follow changes."""
        for informer in (self._services, self._slices):
            if not await informer.wait_for_sync():
                raise RuntimeError(f"service proxy: the {informer.name} informer stopped before it synced")
        for key in self._services.cache.list_keys():
            try:
                await self.sync(key)
            except TemporaryError:
                pass  # logged; the key is queued from its ADDED event and retried there
        log.info("service proxy synced %d services", len(self._services.cache.list_keys()))
        if on_ready is not None:
            on_ready()
        await Controller("proxy", self.queue, self.sync).run()

    def close(self) -> None:
        self.queue.shutdown()
        self.proxier.close()


async def run_proxy(
    *,
    config: ClientConfig,
    node_ip: str,
    node_name: str,
    stop: asyncio.Event,
    udp_idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    registry: CollectorRegistry | None = None,
    on_ready: Callable[[], None] | None = None,
) -> None:
    """Run a node's service proxy until ``stop`` is set; then close every listener and connection.

    ``node_ip`` is where NodePorts listen and the source address towards backends;
    ``node_name`` selects the endpoints that ``trafficPolicy: Local`` allows. Metrics go to
    ``registry`` when given. An unexpected failure of the proxy is raised.
    """
    async with RESTClient(config, user_agent=USER_AGENT) as client:
        informers = InformerFactory(client)
        proxy = ServiceProxy(
            informers,
            node_ip=node_ip,
            node_name=node_name,
            udp_idle_timeout=udp_idle_timeout,
            registry=registry,
        )
        informers.start()
        running = asyncio.create_task(proxy.run(on_ready=on_ready), name="service proxy")
        stopping = asyncio.create_task(stop.wait(), name="service proxy stop")
        try:
            await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if running.done():
                running.result()
        finally:
            running.cancel()
            stopping.cancel()
            await asyncio.gather(running, stopping, return_exceptions=True)
            proxy.close()
            await informers.shutdown()


def _slice_service_index(endpoint_slice: Any) -> list[str]:
    key = service_key_of_slice(endpoint_slice)
    return [key] if key is not None else []


def _same_version(old: dict[str, Any], new: dict[str, Any]) -> bool:
    version = (new.get("metadata") or {}).get("resourceVersion")
    return version is not None and version == (old.get("metadata") or {}).get("resourceVersion")
