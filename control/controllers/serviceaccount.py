"""The ServiceAccount controller: a ``default`` ServiceAccount in every active namespace
(upstream's ``pkg/controller/serviceaccount/serviceaccounts_controller.go``).

Work is keyed by namespace. A namespace is queued when it appears or changes, and when a
ServiceAccount in it is deleted, so a deleted ``default`` comes back. Reconciling creates
each missing managed account — just a name, as upstream — in namespaces that are not
terminating; a create refused because the namespace started terminating meanwhile, or
answered "already exists" because the cache lagged behind, is success.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from control.client import errors
from control.client.controller import Controller
from control.client.indexer import NAMESPACE_INDEX
from control.client.informer import DeletedFinalStateUnknown
from control.client.workqueue import RateLimitingQueue
from control.controllers.kinds import NAMESPACES, SERVICE_ACCOUNTS
from control.controllers.manager import ControllerContext
from control.controllers.ownership import namespace_terminating

log = logging.getLogger("kubelab.controllers.serviceaccount")

DEFAULT_SERVICE_ACCOUNTS = ("default",)

Obj = Mapping[str, Any]


class ServiceAccountController:
    name = "serviceaccount"

    def __init__(
        self,
        ctx: ControllerContext,
        *,
        workers: int | None = None,
        service_accounts: tuple[str, ...] = DEFAULT_SERVICE_ACCOUNTS,
    ) -> None:
        if not service_accounts:
            raise ValueError("service_accounts must name at least one account")
        self._client = ctx.client
        self._workers = workers or ctx.options.concurrent_syncs
        self._managed = service_accounts
        self._namespaces = ctx.informers.informer(NAMESPACES)
        self._accounts = ctx.informers.informer(SERVICE_ACCOUNTS)
        self._queue: RateLimitingQueue[str] = RateLimitingQueue(name="serviceaccount")

    async def run(self) -> None:
        self._queue = queue = RateLimitingQueue(name="serviceaccount")
        registrations = [
            (
                self._namespaces,
                self._namespaces.add_event_handler(
                    on_add=self._queue_namespace, on_update=lambda old, new: self._queue_namespace(new)
                ),
            ),
            (self._accounts, self._accounts.add_event_handler(on_delete=self._on_account_delete)),
        ]
        try:
            await Controller(
                self.name,
                queue,
                self.reconcile,
                workers=self._workers,
                informers=[self._namespaces, self._accounts],
            ).run()
        finally:
            for informer, registration in registrations:
                informer.remove_event_handler(registration)

    def _queue_namespace(self, namespace: Obj) -> None:
        self._queue.add(namespace["metadata"]["name"])

    def _on_account_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        account = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        if account["metadata"].get("name") in self._managed:
            self._queue.add(account["metadata"]["namespace"])

    async def reconcile(self, namespace: str) -> None:
        """Create the managed ServiceAccounts missing from ``namespace``."""
        ns = self._namespaces.cache.get_by_key(namespace)
        if ns is None or (ns.get("status") or {}).get("phase") == "Terminating":
            return
        if (ns.get("metadata") or {}).get("deletionTimestamp"):
            return
        present = {
            account["metadata"]["name"]
            for account in self._accounts.cache.by_index(NAMESPACE_INDEX, namespace)
        }
        for name in self._managed:
            if name in present:
                continue
            try:
                await self._client.create(
                    SERVICE_ACCOUNTS,
                    {"metadata": {"name": name, "namespace": namespace}},
                    namespace=namespace,
                )
            except errors.AlreadyExistsError:
                continue
            except errors.ForbiddenError as exc:
                if namespace_terminating(exc):
                    return
                raise
            except errors.NotFoundError:
                return  # the namespace is gone
            log.info("created service account %s/%s", namespace, name)


def new_controller(ctx: ControllerContext) -> ServiceAccountController:
    return ServiceAccountController(ctx)
