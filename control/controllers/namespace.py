"""The Namespace controller: deleting a namespace deletes everything in it, then the namespace
(upstream's ``pkg/controller/namespace`` and its ``namespaced_resources_deleter.go``).

``kubectl delete namespace x`` only marks the namespace: the API server sets its
``deletionTimestamp`` and phase ``Terminating`` and keeps it while ``spec.finalizers``
holds ``kubernetes``. This controller owns that finalizer. For a terminating namespace it:

1. reads the namespace from the API (not the cache: other writers act during termination)
   and makes sure its phase says ``Terminating``;
2. discovers every namespaced resource the server can delete (discovery, so custom
   resources are included; one version per group and resource) and for each one deletes
   the whole collection with background propagation — or lists and deletes item by item
   where ``deletecollection`` is not offered — then lists again to see what remains;
3. records what it saw as upstream's status conditions: ``NamespaceDeletionDiscoveryFailure``,
   ``NamespaceDeletionContentFailure``, ``NamespaceContentRemaining`` and
   ``NamespaceFinalizersRemaining`` (``False`` with the "all fine" reason when resolved);
4. when content remains it waits and tries again: pods terminate gracefully, so the wait
   comes from their grace periods (upstream's estimate: the longest
   ``terminationGracePeriodSeconds`` not yet elapsed since the namespace's deletion, re-queued
   after half of it plus one second), and objects held by finalizers get 15 s;
5. when nothing remains it removes ``kubernetes`` through ``PUT .../namespaces/<ns>/finalize``,
   after which the API server deletes the namespace once no other finalizer holds it.

Failures while deleting content are retried with backoff; a discovery failure for some
groups does not stop the deletion of what could be discovered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from control.client import errors
from control.client.controller import Controller, TemporaryError
from control.client.discovery import Discovery, GroupDiscoveryFailedError
from control.client.informer import DeletedFinalStateUnknown
from control.client.rest import PropagationPolicy, Resource
from control.client.workqueue import RateLimitingQueue
from control.controllers.kinds import NAMESPACES
from control.controllers.manager import ControllerContext

log = logging.getLogger("kubelab.controllers.namespace")

FINALIZER = "kubernetes"
# upstream's finalizerEstimateSeconds: how long objects held by finalizers are given.
FINALIZER_ESTIMATE_SECONDS = 15

DISCOVERY_FAILURE = "NamespaceDeletionDiscoveryFailure"
CONTENT_FAILURE = "NamespaceDeletionContentFailure"
CONTENT_REMAINING = "NamespaceContentRemaining"
FINALIZERS_REMAINING = "NamespaceFinalizersRemaining"
# (type, reason, message) of each condition once its problem is gone, in upstream's order.
_RESOLVED = (
    (DISCOVERY_FAILURE, "ResourcesDiscovered", "All resources successfully discovered"),
    (
        "NamespaceDeletionGroupVersionParsingFailure",
        "ParsedGroupVersions",
        "All legacy kube types successfully parsed",
    ),
    (CONTENT_FAILURE, "ContentDeleted", "All content successfully deleted, may be waiting on finalization"),
    (CONTENT_REMAINING, "ContentRemoved", "All content successfully removed"),
    (FINALIZERS_REMAINING, "ContentRemoved", "All content successfully removed"),
)

Obj = Mapping[str, Any]


class ContentRemainingError(TemporaryError):
    """Content is still going away; try again after ``delay`` seconds."""


class ContentDeletionError(TemporaryError):
    """Some resources could not be deleted or checked (the message names them); retried with backoff."""


class NamespaceReplacedError(Exception):
    """The namespace was deleted and created again under the same name while we worked on it."""


def upstream_remaining_delay(estimate: int) -> float:
    """How long to wait for content estimated to take ``estimate`` seconds to go (upstream: t/2+1)."""
    return estimate / 2 + 1


@dataclass(slots=True)
class _Remaining:
    """What one resource left behind after its deletion."""

    estimate: int = 0
    count: int = 0
    finalizers: dict[str, int] = field(default_factory=dict)


class NamespaceController:
    name = "namespace"

    def __init__(
        self,
        ctx: ControllerContext,
        *,
        workers: int | None = None,
        remaining_delay: Callable[[int], float] = upstream_remaining_delay,
        discovery: Discovery | None = None,
    ) -> None:
        self._client = ctx.client
        self._discovery = discovery or Discovery(ctx.client)
        self._workers = workers or ctx.options.concurrent_syncs
        self._remaining_delay = remaining_delay
        self._namespaces = ctx.informers.informer(NAMESPACES)
        self._queue: RateLimitingQueue[str] = RateLimitingQueue(name="namespace")

    async def run(self) -> None:
        self._queue = queue = RateLimitingQueue(name="namespace")
        registration = self._namespaces.add_event_handler(
            on_add=self._queue_if_terminating,
            on_update=lambda old, new: self._queue_if_terminating(new),
            on_delete=self._forget,
        )
        try:
            await Controller(
                self.name, queue, self.reconcile, workers=self._workers, informers=[self._namespaces]
            ).run()
        finally:
            self._namespaces.remove_event_handler(registration)

    def _queue_if_terminating(self, namespace: Obj) -> None:
        if (namespace.get("metadata") or {}).get("deletionTimestamp"):
            self._queue.add(namespace["metadata"]["name"])

    def _forget(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        namespace = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        self._queue.forget(namespace["metadata"]["name"])

    # --- reconcile --------------------------------------------------------------------------

    async def reconcile(self, name: str) -> None:
        """Delete the content of the terminating namespace ``name``, then release it."""
        try:
            namespace = await self._client.get(NAMESPACES, name)
        except errors.NotFoundError:
            return
        if not namespace["metadata"].get("deletionTimestamp"):
            return
        try:
            namespace = await self._mark_terminating(namespace)
        except errors.NotFoundError:
            return
        if FINALIZER not in ((namespace.get("spec") or {}).get("finalizers") or ()):
            return
        estimate = await self._delete_all_content(namespace)
        if estimate > 0:
            delay = self._remaining_delay(estimate)
            raise ContentRemainingError(
                f"some content remains in the namespace, estimate {estimate} seconds before it is removed",
                delay=delay,
            )
        await self._finalize(namespace)

    async def _mark_terminating(self, namespace: dict[str, Any]) -> dict[str, Any]:
        while True:
            if (namespace.get("status") or {}).get("phase") == "Terminating":
                return namespace
            changed = {**namespace, "status": {**(namespace.get("status") or {}), "phase": "Terminating"}}
            try:
                return await self._client.replace(NAMESPACES, changed, subresource="status")
            except errors.ConflictError:
                namespace = await self._fresh(namespace)

    async def _fresh(self, namespace: Obj) -> dict[str, Any]:
        """Re-read after a conflict; a namespace recreated under the same name is not ours to touch."""
        latest = await self._client.get(NAMESPACES, namespace["metadata"]["name"])
        if latest["metadata"].get("uid") != namespace["metadata"].get("uid"):
            raise NamespaceReplacedError(
                f"namespace {namespace['metadata']['name']}: uid has changed across retries"
            )
        return latest

    async def _finalize(self, namespace: dict[str, Any]) -> None:
        while True:
            current = list((namespace.get("spec") or {}).get("finalizers") or ())
            if FINALIZER not in current:
                return
            finalizers = [f for f in current if f != FINALIZER]
            body = {
                **namespace,
                "spec": {**(namespace.get("spec") or {}), "finalizers": sorted(set(finalizers))},
            }
            try:
                await self._client.replace(NAMESPACES, body, subresource="finalize")
                return
            except errors.NotFoundError:
                return
            except errors.ConflictError:
                try:
                    namespace = await self._fresh(namespace)
                except (errors.NotFoundError, NamespaceReplacedError):
                    return

    # --- content ----------------------------------------------------------------------------

    async def _delete_all_content(self, namespace: dict[str, Any]) -> int:
        """Delete everything in the namespace; the seconds the rest should take to go (0: all gone)."""
        name = namespace["metadata"]["name"]
        conditions: dict[str, tuple[str, str]] = {}
        problems: list[str] = []
        try:
            documents = await self._discovery.server_resources()
        except GroupDiscoveryFailedError as exc:
            documents = exc.resources
            failed = ", ".join(f"{gv}: {err}" for gv, err in sorted(exc.failed.items(), key=lambda i: i[0]))
            message = f"Discovery failed for some groups, {len(exc.failed)} failing: {failed}"
            conditions[DISCOVERY_FAILURE] = ("DiscoveryFailed", message)
            problems.append(message)
        resources = deletable_namespaced_resources(documents)
        deleted_at = _parse_time(namespace["metadata"]["deletionTimestamp"])
        results = await asyncio.gather(
            *(self._delete_resource(resource, name, deleted_at=deleted_at) for resource in resources),
            return_exceptions=True,
        )
        estimate = 0
        remaining: dict[str, int] = {}
        finalizers: dict[str, int] = {}
        content_errors: list[str] = []
        for resource, result in zip(resources, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, Exception):
                    raise result
                content_errors.append(f"{resource.group_resource}: {result}")
                continue
            error, left = result
            if error:
                content_errors.append(error)
            estimate = max(estimate, left.estimate)
            if left.count:
                remaining[f"{resource.plural}.{resource.group}"] = left.count
                for finalizer, count in left.finalizers.items():
                    finalizers[finalizer] = finalizers.get(finalizer, 0) + count
        if content_errors:
            content_errors.sort()
            conditions[CONTENT_FAILURE] = (
                "ContentDeletionFailed",
                f"Failed to delete all resource types, {len(content_errors)} remaining: {', '.join(content_errors)}",
            )
            problems.extend(content_errors)
        if remaining:
            listed = ", ".join(sorted(f"{r} has {n} resource instances" for r, n in remaining.items()))
            conditions[CONTENT_REMAINING] = ("SomeResourcesRemain", f"Some resources are remaining: {listed}")
        if finalizers:
            listed = ", ".join(sorted(f"{f} in {n} resource instances" for f, n in finalizers.items()))
            conditions[FINALIZERS_REMAINING] = (
                "SomeFinalizerRemain",
                f"Some finalizers are remaining: {listed}",
            )
        await self._update_conditions(namespace, conditions)
        if problems:
            raise ContentDeletionError("; ".join(problems))
        return estimate

    async def _delete_resource(
        self, resource: DeletableResource, namespace: str, *, deleted_at: datetime
    ) -> tuple[str, _Remaining]:
        """Delete one resource's objects in ``namespace``: (an error message or "", what remains)."""
        estimate = 0
        if resource.group == "" and resource.plural == "pods":
            estimate = await self._pod_grace_estimate(namespace, deleted_at=deleted_at)
        try:
            if resource.deletable_collection:
                await self._client.delete_collection(
                    resource.resource, namespace=namespace, propagation_policy=PropagationPolicy.BACKGROUND
                )
            else:
                await self._delete_each(resource.resource, namespace)
            items = (await self._client.list(resource.resource, namespace=namespace)).get("items") or []
        except (errors.NotFoundError, errors.MethodNotAllowedError):
            return "", _Remaining(estimate=estimate)
        if not items:
            return "", _Remaining()
        held: dict[str, int] = {}
        for item in items:
            for finalizer in (item.get("metadata") or {}).get("finalizers") or ():
                held[finalizer] = held.get(finalizer, 0) + 1
        left = _Remaining(estimate=estimate, count=len(items), finalizers=held)
        if estimate:
            return "", left
        if held:
            left.estimate = FINALIZER_ESTIMATE_SECONDS
            return "", left
        return (
            f"unexpected items still remain in namespace: {namespace} for gvr: {resource.group_resource}",
            left,
        )

    async def _delete_each(self, resource: Resource, namespace: str) -> None:
        listing = await self._client.list(resource, namespace=namespace)
        for item in listing.get("items") or ():
            try:
                await self._client.delete(
                    resource,
                    item["metadata"]["name"],
                    namespace=namespace,
                    propagation_policy=PropagationPolicy.BACKGROUND,
                )
            except (errors.NotFoundError, errors.MethodNotAllowedError):
                continue

    async def _pod_grace_estimate(self, namespace: str, *, deleted_at: datetime) -> int:
        """The longest grace period of the namespace's live pods, unless already elapsed."""
        pods = Resource(group="", version="v1", plural="pods", kind="Pod")
        estimate = 0
        for pod in (await self._client.list(pods, namespace=namespace)).get("items") or ():
            if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                continue
            grace = (pod.get("spec") or {}).get("terminationGracePeriodSeconds")
            if isinstance(grace, int) and grace > estimate:
                estimate = grace
        elapsed = (datetime.now(UTC) - deleted_at).total_seconds()
        return 0 if elapsed >= estimate else estimate

    async def _update_conditions(
        self, namespace: dict[str, Any], problems: dict[str, tuple[str, str]]
    ) -> None:
        """Write the deleter's conditions, True for each problem and resolved otherwise (best effort)."""
        status = dict(namespace.get("status") or {})
        conditions = [dict(condition) for condition in status.get("conditions") or ()]
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        changed = False
        for condition_type, ok_reason, ok_message in _RESOLVED:
            if condition_type in problems:
                wanted = ("True", *problems[condition_type])
            else:
                wanted = ("False", ok_reason, ok_message)
            current = next((c for c in conditions if c.get("type") == condition_type), None)
            if current is None:
                conditions.append(
                    {
                        "type": condition_type,
                        "status": wanted[0],
                        "lastTransitionTime": now,
                        "reason": wanted[1],
                        "message": wanted[2],
                    }
                )
                changed = True
            elif (current.get("status"), current.get("reason"), current.get("message")) != wanted:
                if current.get("status") != wanted[0]:
                    current["lastTransitionTime"] = now
                current["status"], current["reason"], current["message"] = wanted
                changed = True
        if not changed:
            return
        status["conditions"] = conditions
        try:
            updated = await self._client.replace(
                NAMESPACES, {**namespace, "status": status}, subresource="status"
            )
        except errors.RequestError as exc:
            log.warning(
                "couldn't update status conditions of namespace %s: %s", namespace["metadata"]["name"], exc
            )
            return
        namespace["metadata"] = updated["metadata"]
        namespace["status"] = updated.get("status") or {}


def new_controller(ctx: ControllerContext) -> NamespaceController:
    return NamespaceController(ctx)


@dataclass(frozen=True, slots=True)
class DeletableResource:
    resource: Resource
    deletable_collection: bool

    @property
    def group(self) -> str:
        return self.resource.group

    @property
    def plural(self) -> str:
        return self.resource.plural

    @property
    def group_resource(self) -> str:
        return self.resource.group_resource


def deletable_namespaced_resources(documents: list[dict[str, Any]]) -> list[DeletableResource]:
    """Every namespaced resource that can be deleted, once per group (its first listed version)."""
    seen: set[tuple[str, str]] = set()
    result = []
    for document in documents:
        group, _, version = (document.get("groupVersion") or "").rpartition("/")
        for item in document.get("resources") or ():
            plural = item.get("name") or ""
            verbs = set(item.get("verbs") or ())
            if "/" in plural or not item.get("namespaced") or "delete" not in verbs or "list" not in verbs:
                continue
            if (group, plural) in seen:
                continue
            seen.add((group, plural))
            result.append(
                DeletableResource(
                    resource=Resource(
                        group=group,
                        version=version,
                        plural=plural,
                        kind=item.get("kind") or "",
                        namespaced=True,
                    ),
                    deletable_collection="deletecollection" in verbs,
                )
            )
    return result


def _parse_time(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
