"""The ``Available`` condition of remote APIServices (kube-aggregator's RemoteAvailability).

The aggregator proxies to an extension only while its APIService says ``Available=True``, so
something must check. As upstream's ``AvailableConditionController``
(kube-aggregator/pkg/controllers/status/remote), for each APIService with ``spec.service``:

1. the Service must exist (``ServiceNotFound``) and, for a ClusterIP Service, listen on the port
   (``ServicePortError``) and have EndpointSlices (``EndpointsNotFound``) with a ready endpoint
   and that port's name (``MissingEndpoints``);
2. a ``GET /apis/<group>/<version>`` to an endpoint, with the front proxy's certificate, as
   ``system:kube-aggregator`` in ``system:masters``, without verifying the server (a probe that
   sends no secrets), must answer 2xx within 5 s (``FailedDiscoveryCheck``); up to five tries
   at once, one success is enough;
3. then ``Available=True``, reason ``Passed``, "all checks passed".

The status is written only when it changes; ``lastTransitionTime`` moves only with the status.
Checks run when an APIService changes, when a Service or EndpointSlice of one of them changes
(both followed from the store), and every ``RESYNC_SECONDS`` (a backend can die without any
object changing). A failed discovery check is retried sooner, with back-off.

Metrics as upstream: ``aggregator_unavailable_apiservice{name}`` (1 while unavailable) and
``aggregator_unavailable_apiservice_total{name,reason}`` (transitions to unavailable). The
second is exposed untyped: prometheus_client gives a counter family the name ``<stem>_total``
only by calling it ``<stem>``, which the gauge already is; the samples are upstream's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

import aiohttp
import orjson
from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.core import Metric

from control.apiserver import errors
from control.apiserver.aggregator import Aggregator, RemoteAPIService
from control.apiserver.resource_store import ResourceStore, rfc3339
from control.apiserver.service_endpoints import ServiceUnreachableError
from control.apiserver.store_follower import follow_prefix
from control.resources.registry import ResourceType
from control.store import Event, KeyValue

log = logging.getLogger("kubelab.apiserver.aggregator")

RESYNC_SECONDS = 30.0
DISCOVERY_TIMEOUT_SECONDS = 5.0
DISCOVERY_ATTEMPTS = 5
RETRY_SECONDS = (1.0, 2.0, 4.0, 8.0, 16.0)
SERVICE_NAME_LABEL = "kubernetes.io/service-name"

Verdict = tuple[str, str, str]  # status, reason, message


class RemoteAvailability:
    """Keeps ``status.conditions[Available]`` of remote APIServices true to what a check finds."""

    def __init__(
        self,
        *,
        aggregator: Aggregator,
        objects: ResourceStore,
        metrics_registry: CollectorRegistry,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self._aggregator = aggregator
        self._objects = objects
        self._now = now or objects.clock
        registry = objects.registry
        services = registry.lookup(group="", version="v1", plural="services")
        slices = registry.lookup(group="discovery.k8s.io", version="v1", plural="endpointslices")
        if services is None or slices is None:
            raise RuntimeError("the registry lacks services or endpointslices")
        self._services: ResourceType = services
        self._slices: ResourceType = slices
        self._pending: set[str] = set()
        self._wake = asyncio.Event()
        self._failures: dict[str, int] = {}
        self._retries: dict[str, asyncio.TimerHandle] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.unavailable = Gauge(
            "aggregator_unavailable_apiservice",
            "Gauge of APIServices which are marked as unavailable broken down by APIService name.",
            ["name"],
            registry=metrics_registry,
        )
        # (name, reason) -> times it became unavailable for that reason; see the module doc.
        self.unavailable_total: dict[tuple[str, str], int] = {}
        metrics_registry.register(_UnavailableTotal(self.unavailable_total))
        aggregator.on_change(self._queue_all)

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._work(), name="apiservice-availability"),
            asyncio.create_task(self._resync(), name="apiservice-availability-resync"),
            asyncio.create_task(
                self._follow(self._services, self._service_changed), name="apiservice-services"
            ),
            asyncio.create_task(self._follow(self._slices, self._slice_changed), name="apiservice-slices"),
        ]

    async def stop(self) -> None:
        for handle in self._retries.values():
            handle.cancel()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    # ------------------------------------------------------------------ what to check when
    def _queue(self, name: str) -> None:
        self._pending.add(name)
        self._wake.set()

    def _queue_all(self) -> None:
        for service in self._aggregator.remote():
            self._queue(service.name)

    def _queue_for_service(self, namespace: str, name: str) -> None:
        for service in self._aggregator.remote():
            if service.namespace == namespace and service.service == name:
                self._queue(service.name)

    async def _follow(self, rt: ResourceType, on_change: Callable[[KeyValue], None]) -> None:
        prefix = self._objects.prefix(rt, namespace="")

        async def relisted(items: list[KeyValue]) -> None:
            self._queue_all()

        async def changed(event: Event) -> None:
            on_change(event.kv)

        await follow_prefix(
            self._objects.store,
            prefix,
            on_list=relisted,
            on_event=changed,
            what=f"{rt.plural} for apiservices",
        )

    def _service_changed(self, kv: KeyValue) -> None:
        if not self._aggregator.has_remote:
            return  # the common case: nothing to check, and nothing to decode
        namespace, _, name = kv.key[len(self._services.storage_prefix) :].partition("/")
        self._queue_for_service(namespace, name)

    def _slice_changed(self, kv: KeyValue) -> None:
        if not self._aggregator.has_remote:
            return
        namespace = kv.key[len(self._slices.storage_prefix) :].partition("/")[0]
        labels = (orjson.loads(kv.value).get("metadata") or {}).get("labels") or {}
        if labels.get(SERVICE_NAME_LABEL):
            self._queue_for_service(namespace, labels[SERVICE_NAME_LABEL])

    async def _resync(self) -> None:
        while True:
            await asyncio.sleep(RESYNC_SECONDS)
            self._queue_all()

    def _retry_later(self, name: str) -> None:
        failures = self._failures.get(name, 0)
        self._failures[name] = failures + 1
        delay = RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)]
        previous = self._retries.pop(name, None)
        if previous is not None:
            previous.cancel()
        self._retries[name] = asyncio.get_running_loop().call_later(delay, self._queue, name)

    async def _work(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            pending, self._pending = self._pending, set()
            for name in sorted(pending):
                service = self._aggregator.get(name)
                if service is None:
                    self._forget(name)
                    continue
                try:
                    await self.sync(service)
                except errors.StatusError as exc:  # e.g. a conflict with another writer: again soon
                    log.info("updating the status of APIService %s failed: %s", name, exc.message)
                    self._retry_later(name)
                except Exception:  # the store went away, a bug: keep checking the others
                    log.exception("checking APIService %s failed", name)
                    self._retry_later(name)

    def _forget(self, name: str) -> None:
        self._failures.pop(name, None)
        handle = self._retries.pop(name, None)
        if handle is not None:
            handle.cancel()
        with contextlib.suppress(KeyError):
            self.unavailable.remove(name)

    # ------------------------------------------------------------------ one check
    async def sync(self, service: RemoteAPIService) -> Verdict:
        """Check ``service`` and record the verdict in its status (only when it changed)."""
        verdict = await self.check(service)
        status, reason, message = verdict
        self.unavailable.labels(name=service.name).set(0 if status == "True" else 1)
        if reason == "FailedDiscoveryCheck":
            self._retry_later(service.name)
        else:
            self._failures.pop(service.name, None)
        became_unavailable: list[bool] = []

        def record(current: dict[str, Any]) -> dict[str, Any]:
            conditions = current.setdefault("status", {}).setdefault("conditions", [])
            existing = next((c for c in conditions if c.get("type") == "Available"), None)
            if existing is None:
                existing = {"type": "Available"}
                conditions.append(existing)
            if existing.get("status") != status:
                existing["lastTransitionTime"] = rfc3339(self._now())
                became_unavailable.append(status != "True")
            existing.update(status=status, reason=reason, message=message)
            return current

        current = await self._objects.get(self._aggregator.api_services, namespace="", name=service.name)
        before = _available_condition(current)
        if before is None or (before.get("status"), before.get("reason"), before.get("message")) != verdict:
            await self._objects.update(
                self._aggregator.api_services,
                namespace="",
                name=service.name,
                transform=record,
                subresource="status",
            )
            if any(became_unavailable):
                key = (service.name, reason)
                self.unavailable_total[key] = self.unavailable_total.get(key, 0) + 1
            if not before or before.get("status") != status:
                log.info(
                    "APIService %s availability: %s (%s: %s)",
                    service.name,
                    status,
                    reason,
                    message,
                    extra={"apiservice": service.name, "status": status, "reason": reason},
                )
        return verdict

    async def check(self, service: RemoteAPIService) -> Verdict:
        """Upstream's checks, in upstream's order and words (see the module docstring)."""
        where = f"service/{service.service} in {_go_quote(service.namespace)}"
        try:
            svc = await self._objects.get(self._services, namespace=service.namespace, name=service.service)
        except errors.StatusError as exc:
            if exc.code == 404:
                return "False", "ServiceNotFound", f"{where} is not present"
            return "Unknown", "ServiceAccessError", f"{where} cannot be checked due to: {exc.message}"
        spec = svc.get("spec") or {}
        if spec.get("type", "ClusterIP") == "ClusterIP":
            ports = [p for p in spec.get("ports") or [] if p.get("port") == service.port]
            if not ports:
                return "False", "ServicePortError", f"{where} is not listening on port {service.port}"
            port_name = ports[0].get("name") or ""
            slices = await self._endpoint_slices(service)
            if not slices:
                return "False", "EndpointsNotFound", f"cannot find endpointslices for {where}"
            if not any(_has_available_endpoint(s, port_name) for s in slices):
                return (
                    "False",
                    "MissingEndpoints",
                    f"endpointslices for {where} have no addresses with port name {_go_quote(port_name)}",
                )
        problem = await self._discovery_check(service)
        if problem is not None:
            return "False", "FailedDiscoveryCheck", problem
        return "True", "Passed", "all checks passed"

    async def _endpoint_slices(self, service: RemoteAPIService) -> list[dict[str, Any]]:
        listing = await self._objects.store.list(
            self._objects.prefix(self._slices, namespace=service.namespace)
        )
        slices = [orjson.loads(kv.value) for kv in listing.items]
        return [
            s
            for s in slices
            if ((s.get("metadata") or {}).get("labels") or {}).get(SERVICE_NAME_LABEL) == service.service
        ]

    async def _discovery_check(self, service: RemoteAPIService) -> str | None:
        """None when one of the tries got a 2xx; else the last try's error, in upstream's words."""
        results = await asyncio.gather(*(self._try_discovery(service) for _ in range(DISCOVERY_ATTEMPTS)))
        if any(result is None for result in results):
            return None
        return results[-1]

    async def _try_discovery(self, service: RemoteAPIService) -> str | None:
        try:
            address, port = await self._aggregator.endpoints(
                namespace=service.namespace, name=service.service, port=service.port
            )
        except ServiceUnreachableError as exc:
            return str(exc)
        host = f"[{address}]" if ":" in address else address
        url = f"https://{host}:{port}/apis/{service.group}/{service.version}"
        context = self._aggregator.ssl_context(ca_bundle="", insecure=True)
        headers = [("X-Remote-User", "system:kube-aggregator"), ("X-Remote-Group", "system:masters")]
        try:
            async with self._aggregator.session().get(
                url,
                headers=headers,
                ssl=context,
                timeout=aiohttp.ClientTimeout(total=DISCOVERY_TIMEOUT_SECONDS),
                allow_redirects=False,
            ) as response:
                await response.read()
                if not 200 <= response.status < 300:
                    return f"failing or missing response from {url}: bad status from {url}: {response.status}"
        except TimeoutError:
            return f"timed out waiting for {url}"
        except (aiohttp.ClientError, OSError) as exc:
            return f"failing or missing response from {url}: {exc}"
        return None


class _UnavailableTotal:
    """``aggregator_unavailable_apiservice_total`` from the controller's counts."""

    def __init__(self, counts: dict[tuple[str, str], int]) -> None:
        self._counts = counts

    def collect(self) -> list[Metric]:
        metric = Metric(
            "aggregator_unavailable_apiservice_total",
            "Counter of APIServices which are marked as unavailable broken down by APIService name and reason.",
            "unknown",
        )
        for (name, reason), count in sorted(self._counts.items()):
            metric.add_sample(metric.name, {"name": name, "reason": reason}, float(count))
        return [metric]


def _available_condition(obj: dict[str, Any]) -> dict[str, Any] | None:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == "Available"), None)


def _has_available_endpoint(endpoint_slice: dict[str, Any], port_name: str) -> bool:
    """Upstream's hasAvailableEndpoint: a ready (or unknown) endpoint, and the port by name."""
    ready = any(
        (e.get("conditions") or {}).get("ready") in (None, True)
        for e in endpoint_slice.get("endpoints") or []
    )
    return ready and any(
        p.get("name") is not None and p.get("name") == port_name and p.get("port") is not None
        for p in endpoint_slice.get("ports") or []
    )


def _go_quote(text: str) -> str:
    """Go's %q for the plain names these messages quote."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
