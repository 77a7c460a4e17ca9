"""The root CA publisher: a ``kube-root-ca.crt`` ConfigMap in every active namespace, holding
the bundle that verifies the API server (upstream's
``pkg/controller/certificates/rootcacertpublisher/publisher.go``).

Pods read it through the ``kube-api-access-*`` volume the ServiceAccount admission plugin
adds (``ca.crt`` next to the token). The bundle is the one the controller manager itself
trusts for the API server: its client configuration's CA data (upstream: ``--root-ca-file``,
else the client's CA).

Work is keyed by namespace. A namespace is queued when it appears or changes, and when its
``kube-root-ca.crt`` is deleted or changed, so a deleted ConfigMap comes back and an edited
one is put right. Reconciling creates the ConfigMap when missing — a create answered "not
found" or "namespace terminating" is dropped, as upstream — and otherwise rewrites its data
and description annotation only when they differ. Only ConfigMaps of that name are watched.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from control.client import errors
from control.client.controller import Controller
from control.client.informer import DeletedFinalStateUnknown
from control.client.workqueue import RateLimitingQueue
from control.controllers.kinds import CONFIG_MAPS, NAMESPACES
from control.controllers.manager import ControllerContext
from control.controllers.ownership import namespace_terminating

log = logging.getLogger("kubelab.controllers.rootcacertpublisher")

# The workqueue's name, as upstream names it (its workqueue_* metrics' ``name`` label).
QUEUE_NAME = "root_ca_cert_publisher"


ROOT_CA_CONFIG_MAP = "kube-root-ca.crt"
DESCRIPTION_ANNOTATION = "kubernetes.io/description"
DESCRIPTION = (
    "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints "
    "such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across "
    "distributions of Kubernetes clusters."
)

Obj = Mapping[str, Any]


class RootCACertPublisher:
    name = "rootcacertpublisher"

    def __init__(
        self, ctx: ControllerContext, *, root_ca: bytes | None = None, workers: int | None = None
    ) -> None:
        bundle = root_ca if root_ca is not None else ctx.client.config.ca_data
        if not bundle:
            raise ValueError(
                "the root CA publisher needs a CA bundle: the controller manager's client configuration has none"
            )
        self._root_ca = bundle.decode("utf-8")
        self._client = ctx.client
        self._workers = workers or ctx.options.concurrent_syncs
        self._namespaces = ctx.informers.informer(NAMESPACES)
        self._config_maps = ctx.informers.informer(
            CONFIG_MAPS, field_selector=f"metadata.name={ROOT_CA_CONFIG_MAP}"
        )
        self._queue: RateLimitingQueue[str] = RateLimitingQueue(name=QUEUE_NAME)

    async def run(self) -> None:
        self._queue = queue = RateLimitingQueue(name=QUEUE_NAME)
        registrations = [
            (
                self._namespaces,
                self._namespaces.add_event_handler(
                    on_add=self._queue_namespace, on_update=lambda old, new: self._queue_namespace(new)
                ),
            ),
            (
                self._config_maps,
                self._config_maps.add_event_handler(
                    on_update=self._on_config_map_update, on_delete=self._on_config_map_delete
                ),
            ),
        ]
        try:
            await Controller(
                self.name,
                queue,
                self.reconcile,
                workers=self._workers,
                informers=[self._namespaces, self._config_maps],
            ).run()
        finally:
            for informer, registration in registrations:
                informer.remove_event_handler(registration)

    def _queue_namespace(self, namespace: Obj) -> None:
        self._queue.add(namespace["metadata"]["name"])

    def _on_config_map_update(self, old: Obj, new: Obj) -> None:
        if new["metadata"].get("name") == ROOT_CA_CONFIG_MAP:
            self._queue.add(new["metadata"]["namespace"])

    def _on_config_map_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        config_map = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        if config_map["metadata"].get("name") == ROOT_CA_CONFIG_MAP:
            self._queue.add(config_map["metadata"]["namespace"])

    async def reconcile(self, namespace: str) -> None:
        """Make ``namespace``'s kube-root-ca.crt hold the bundle and the description."""
        ns = self._namespaces.cache.get_by_key(namespace)
        if ns is None or (ns.get("metadata") or {}).get("deletionTimestamp"):
            return  # gone, or terminating: a create would fail whatever we do
        data = {"ca.crt": self._root_ca}
        current = self._config_maps.cache.get_by_key(f"{namespace}/{ROOT_CA_CONFIG_MAP}")
        if current is None:
            await self._create(namespace, data)
            return
        annotations = (current.get("metadata") or {}).get("annotations") or {}
        if current.get("data") == data and annotations.get(DESCRIPTION_ANNOTATION):
            return
        wanted = {
            **current,
            "metadata": {
                **current["metadata"],
                "annotations": {**annotations, DESCRIPTION_ANNOTATION: DESCRIPTION},
            },
            "data": data,
        }
        await self._client.replace(CONFIG_MAPS, wanted, namespace=namespace)
        log.info("corrected %s/%s", namespace, ROOT_CA_CONFIG_MAP)

    async def _create(self, namespace: str, data: dict[str, str]) -> None:
        body = {
            "metadata": {"name": ROOT_CA_CONFIG_MAP, "annotations": {DESCRIPTION_ANNOTATION: DESCRIPTION}},
            "data": data,
        }
        try:
            await self._client.create(CONFIG_MAPS, body, namespace=namespace)
        except errors.NotFoundError:
            return  # the namespace is gone
        except errors.ForbiddenError as exc:
            if namespace_terminating(exc):
                return
            raise
        log.info("published %s/%s", namespace, ROOT_CA_CONFIG_MAP)


def new_controller(ctx: ControllerContext) -> RootCACertPublisher:
    return RootCACertPublisher(ctx)
