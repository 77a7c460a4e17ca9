"""The garbage collector: objects whose owners are gone are deleted, and owners deleted with
``foreground`` or ``orphan`` propagation are finished off (upstream's
``pkg/controller/garbagecollector``: the graph builder and the two workers).

**Monitors.** Every resource that can be listed, watched and deleted is watched (discovery
decides, so custom resources are included; events are ignored as upstream does), one
version per group and resource, through the shared informer factory. Discovery is redone
every 30 s so that resources appearing later get monitors too.

**The graph.** Informer events feed an in-memory graph, uid → node, with each node's
``ownerReferences`` and the uids of its dependents. An owner referenced before it has been
observed gets a *virtual* node, which is checked against the API: if no object with that
uid exists it is removed again, and its dependents are examined. The graph is changed only
by synchronous code on the event loop (the informer handlers and the workers between
awaits), so it needs no lock.

**attempt-to-delete** (keyed by uid) decides about one object, from the *live* object and
*live* lookups of its owners by name with a uid check — never from the cache alone:

- an owner that is missing, or has another uid, is *dangling*; one being deleted in the
  foreground is *waiting*; any other is *solid*;
- with a solid owner, the references to dangling and waiting owners are removed;
- with no solid owner, but a waiting one, and dependents of its own, the object is
  deleted in the foreground (its own dependents go first);
- otherwise it is deleted, honouring an ``orphan`` or ``foregroundDeletion`` finalizer it
  already has, else in the background; always with a uid precondition.

An owner being deleted in the foreground (``deletionTimestamp`` and the
``foregroundDeletion`` finalizer) queues all its dependents (and any the graph learns of
later: the owner's and the dependent's informers deliver in either order), waits until none of those with
``blockOwnerDeletion: true`` is left, and then loses the finalizer, so the API server
deletes it.

**attempt-to-orphan** serves owners deleted with the ``orphan`` finalizer: the reference to
the owner is removed from each dependent, then the finalizer from the owner.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from control.client import errors
from control.client.controller import Controller, TemporaryError
from control.client.discovery import Discovery, GroupDiscoveryFailedError, UnknownKindError
from control.client.informer import DeletedFinalStateUnknown, HandlerRegistration, SharedInformer
from control.client.rest import PatchType, Preconditions, PropagationPolicy, Resource
from control.client.workqueue import RateLimitingQueue
from control.controllers.manager import ControllerContext

log = logging.getLogger("kubelab.controllers.garbagecollector")

ORPHAN_FINALIZER = "orphan"
FOREGROUND_FINALIZER = "foregroundDeletion"
# upstream's DefaultIgnoredResources: events are never owners worth watching.
IGNORED_RESOURCES = frozenset({("", "events"), ("events.k8s.io", "events")})
RESOURCE_RESYNC_PERIOD = 30.0
GRAPH_SYNC_TIMEOUT = 30.0
ABSENT_OWNER_CACHE_SIZE = 500
_MAX_WRITE_ATTEMPTS = 5

Obj = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Identity:
    """Where an object lives, as an ownerReference names it (namespace from its dependent)."""

    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str

    def __str__(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {where} ({self.uid})"


@dataclass(slots=True)
class Node:
    identity: Identity
    owners: list[dict[str, Any]] = field(default_factory=list)
    dependents: set[str] = field(default_factory=set)
    virtual: bool = False
    being_deleted: bool = False
    deleting_dependents: bool = False

    def blocks(self, owner_uid: str) -> bool:
        """Whether this node's reference to ``owner_uid`` has ``blockOwnerDeletion: true``."""
        return any(ref.get("uid") == owner_uid and ref.get("blockOwnerDeletion") for ref in self.owners)


def _identity(obj: Obj) -> Identity:
    metadata = obj.get("metadata") or {}
    return Identity(
        api_version=obj.get("apiVersion") or "",
        kind=obj.get("kind") or "",
        namespace=metadata.get("namespace") or "",
        name=metadata.get("name") or "",
        uid=metadata.get("uid") or "",
    )


class DependencyGraph:
    """The owner → dependents graph, kept from informer events (upstream's GraphBuilder).

    ``attempt_delete`` and ``attempt_orphan`` are called with uids that need a decision.
    """

    def __init__(
        self, *, attempt_delete: Callable[[str], None], attempt_orphan: Callable[[str], None]
    ) -> None:
        self.nodes: dict[str, Node] = {}
        self._attempt_delete = attempt_delete
        self._attempt_orphan = attempt_orphan

    def __len__(self) -> int:
        return len(self.nodes)

    def observe(self, obj: Obj) -> None:
        """An object was added or changed."""
        identity = _identity(obj)
        if not identity.uid:
            return
        metadata = obj.get("metadata") or {}
        node = self.nodes.get(identity.uid)
        if node is None:
            node = self.nodes[identity.uid] = Node(identity)
        elif node.virtual:
            node.virtual = False
            node.identity = identity
        owners = [dict(ref) for ref in metadata.get("ownerReferences") or () if ref.get("uid")]
        if owners != node.owners:
            self._set_owners(node, owners)
        finalizers = metadata.get("finalizers") or ()
        node.being_deleted = bool(metadata.get("deletionTimestamp"))
        if node.being_deleted and FOREGROUND_FINALIZER in finalizers:
            if not node.deleting_dependents:
                node.deleting_dependents = True
                for dependent in node.dependents:
                    self._attempt_delete(dependent)
            self._attempt_delete(identity.uid)
        else:
            node.deleting_dependents = False
        if node.being_deleted and ORPHAN_FINALIZER in finalizers:
            self._attempt_orphan(identity.uid)

    def observe_deletion(self, obj: Obj) -> None:
        """An informer saw the object deleted."""
        uid = (obj.get("metadata") or {}).get("uid")
        if uid:
            self.remove(uid)

    def remove(self, uid: str) -> None:
        """Drop a node (deleted, or found absent); its dependents and waiting owners get a look."""
        node = self.nodes.pop(uid, None)
        if node is None:
            return
        for ref in node.owners:
            owner = self.nodes.get(ref["uid"])
            if owner is None:
                continue
            owner.dependents.discard(uid)
            if owner.deleting_dependents:
                self._attempt_delete(owner.identity.uid)
            if owner.virtual and not owner.dependents:
                del self.nodes[owner.identity.uid]
        for dependent in node.dependents:
            self._attempt_delete(dependent)

    def _set_owners(self, node: Node, owners: list[dict[str, Any]]) -> None:
        old = {ref["uid"]: ref for ref in node.owners}
        new = {ref["uid"]: ref for ref in owners}
        uid = node.identity.uid
        for owner_uid, ref in old.items():
            owner = self.nodes.get(owner_uid)
            if owner is None:
                continue
            if owner_uid not in new:
                owner.dependents.discard(uid)
                if owner.virtual and not owner.dependents:
                    del self.nodes[owner_uid]
                    continue
            unblocked = owner_uid not in new or (
                ref.get("blockOwnerDeletion") and not new[owner_uid].get("blockOwnerDeletion")
            )
            if unblocked and owner.deleting_dependents:
                self._attempt_delete(owner_uid)
        for owner_uid, ref in new.items():
            owner = self.nodes.get(owner_uid)
            if owner is None:
                owner = self.nodes[owner_uid] = Node(
                    Identity(
                        api_version=ref.get("apiVersion") or "",
                        kind=ref.get("kind") or "",
                        namespace=node.identity.namespace,
                        name=ref.get("name") or "",
                        uid=owner_uid,
                    ),
                    virtual=True,
                )
                self._attempt_delete(owner_uid)  # does it exist at all?
            elif owner.deleting_dependents and owner_uid not in old:
                # Seen after its owner began a foreground deletion (the two informers' events
                # arrive in either order): it is one of the dependents to delete.
                self._attempt_delete(uid)
            owner.dependents.add(uid)
        node.owners = owners


class _AbsentOwners:
    """Uids known not to exist, so that dependents of a deleted owner do not each look it up."""

    def __init__(self, size: int = ABSENT_OWNER_CACHE_SIZE) -> None:
        self._uids: OrderedDict[str, None] = OrderedDict()
        self._size = size

    def add(self, uid: str) -> None:
        self._uids[uid] = None
        self._uids.move_to_end(uid)
        while len(self._uids) > self._size:
            self._uids.popitem(last=False)

    def __contains__(self, uid: object) -> bool:
        return uid in self._uids


class GarbageCollector:
    name = "garbagecollector"

    def __init__(
        self,
        ctx: ControllerContext,
        *,
        workers: int | None = None,
        resource_resync_period: float = RESOURCE_RESYNC_PERIOD,
    ) -> None:
        self._ctx = ctx
        self._client = ctx.client
        self._discovery = Discovery(ctx.client)
        self._workers = workers or ctx.options.concurrent_syncs
        self._resync_period = resource_resync_period
        self._delete_queue: RateLimitingQueue[str] = RateLimitingQueue(
            name="garbage_collector_attempt_to_delete"
        )
        self._orphan_queue: RateLimitingQueue[str] = RateLimitingQueue(
            name="garbage_collector_attempt_to_orphan"
        )
        self.graph = DependencyGraph(
            attempt_delete=self._delete_queue.add, attempt_orphan=self._orphan_queue.add
        )
        self._absent = _AbsentOwners()
        self._monitors: dict[tuple[str, str], tuple[SharedInformer, HandlerRegistration]] = {}

    # --- running ----------------------------------------------------------------------------

    async def run(self) -> None:
        self._delete_queue = RateLimitingQueue(name="garbage_collector_attempt_to_delete")
        self._orphan_queue = RateLimitingQueue(name="garbage_collector_attempt_to_orphan")
        self.graph = DependencyGraph(
            attempt_delete=self._delete_queue.add, attempt_orphan=self._orphan_queue.add
        )
        self._absent = _AbsentOwners()
        try:
            await self._sync_monitors()
            await self._wait_for_graph()
            async with asyncio.TaskGroup() as group:
                group.create_task(
                    Controller(
                        "garbagecollector-delete",
                        self._delete_queue,
                        self.attempt_to_delete,
                        workers=self._workers,
                    ).run()
                )
                group.create_task(
                    Controller(
                        "garbagecollector-orphan",
                        self._orphan_queue,
                        self.attempt_to_orphan,
                        workers=self._workers,
                    ).run()
                )
                group.create_task(self._resync_monitors())
        finally:
            self._delete_queue.shutdown()
            self._orphan_queue.shutdown()
            for informer, registration in self._monitors.values():
                informer.remove_event_handler(registration)
            self._monitors.clear()

    async def _wait_for_graph(self) -> None:
        informers = [informer for informer, _ in self._monitors.values()]
        results = await asyncio.gather(
            *(informer.wait_for_sync(GRAPH_SYNC_TIMEOUT) for informer in informers)
        )
        unsynced = [informer.name for informer, synced in zip(informers, results, strict=True) if not synced]
        if unsynced:
            log.warning("garbage collector: proceeding although these monitors did not sync: %s", unsynced)

    async def _resync_monitors(self) -> None:
        while True:
            await asyncio.sleep(self._resync_period)
            try:
                await self._sync_monitors()
            except errors.RequestError as exc:
                log.warning("garbage collector: resource discovery failed: %s", exc)

    async def _sync_monitors(self) -> None:
        """Watch every deletable resource not yet watched."""
        try:
            documents = await self._discovery.server_resources()
        except GroupDiscoveryFailedError as exc:
            log.warning("garbage collector: %s; monitoring what was discovered", exc)
            documents = exc.resources
        for resource in monitored_resources(documents):
            key = (resource.group, resource.plural)
            if key in self._monitors:
                continue
            informer = self._ctx.informers.informer(resource)
            registration = informer.add_event_handler(
                on_add=self.graph.observe,
                on_update=lambda old, new: self.graph.observe(new),
                on_delete=self._on_delete,
            )
            self._monitors[key] = (informer, registration)
            informer.start()

    def _on_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        self.graph.observe_deletion(obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj)

    # --- attempt to delete ------------------------------------------------------------------

    async def attempt_to_delete(self, uid: str) -> None:
        """Decide about one object: keep it, drop dangling references, or delete it."""
        node = self.graph.nodes.get(uid)
        if node is None:
            return
        if node.being_deleted and not node.deleting_dependents:
            return  # a one-way trip: its deletion event will bring its dependents here
        if not node.virtual and not node.owners and not node.deleting_dependents:
            return
        identity = node.identity
        resource = await self._resource_for(identity.api_version, identity.kind)
        latest = await self._get_live(resource, identity)
        if latest is None:
            self._absent.add(uid)
            self.graph.remove(uid)
            return
        metadata = latest.get("metadata") or {}
        finalizers = metadata.get("finalizers") or ()
        if metadata.get("deletionTimestamp"):
            if FOREGROUND_FINALIZER in finalizers:
                await self._finish_foreground(node, resource)
            return
        references = [ref for ref in metadata.get("ownerReferences") or () if ref.get("uid")]
        if not references:
            return
        solid, dangling, waiting = await self._classify(latest, references)
        if solid:
            if dangling or waiting:
                gone = {ref["uid"] for ref in dangling + waiting}
                log.info("%s: removing references to owners %s", identity, sorted(gone))
                await self._remove_references(resource, identity=identity, owner_uids=gone)
            return
        if waiting and node.dependents:
            if any(
                (dependent := self.graph.nodes.get(d)) is not None and dependent.deleting_dependents
                for d in node.dependents
            ):
                # A possible cycle of foreground deletions: stop blocking our owners first.
                await self._unblock_references(resource, identity)
            log.info("%s: an owner waits for its dependents, deleting it in the foreground", identity)
            await self._delete(resource, identity=identity, policy=PropagationPolicy.FOREGROUND)
            return
        if ORPHAN_FINALIZER in finalizers:
            policy = PropagationPolicy.ORPHAN
        elif FOREGROUND_FINALIZER in finalizers:
            policy = PropagationPolicy.FOREGROUND
        else:
            policy = PropagationPolicy.BACKGROUND
        log.info("%s: no owner keeps it, deleting it (%s)", identity, policy)
        await self._delete(resource, identity=identity, policy=policy)

    async def _classify(
        self, obj: Obj, references: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
        """Split ``references`` into (solid, dangling, waiting for dependents' deletion)."""
        solid, dangling, waiting = [], [], []
        namespace = (obj.get("metadata") or {}).get("namespace") or ""
        for ref in references:
            owner = await self._owner(ref, namespace)
            if owner is None:
                dangling.append(ref)
            elif (owner.get("metadata") or {}).get("deletionTimestamp") and FOREGROUND_FINALIZER in (
                (owner.get("metadata") or {}).get("finalizers") or ()
            ):
                waiting.append(ref)
            else:
                solid.append(ref)
        return solid, dangling, waiting

    async def _owner(self, ref: Obj, namespace: str) -> dict[str, Any] | None:
        """The live owner a reference names, or None when it does not exist (by uid)."""
        uid = ref["uid"]
        if uid in self._absent:
            return None
        resource = await self._resource_for(ref.get("apiVersion") or "", ref.get("kind") or "")
        if resource.namespaced and not namespace:
            return None  # a cluster-scoped object cannot be owned by a namespaced one
        identity = Identity(
            api_version=ref.get("apiVersion") or "",
            kind=ref.get("kind") or "",
            namespace=namespace if resource.namespaced else "",
            name=ref.get("name") or "",
            uid=uid,
        )
        owner = await self._get_live(resource, identity)
        if owner is None:
            self._absent.add(uid)
        return owner

    async def _get_live(self, resource: Resource, identity: Identity) -> dict[str, Any] | None:
        """The object from the API if it still has ``identity``'s uid, else None."""
        try:
            obj = await self._client.get(
                resource, identity.name, namespace=identity.namespace if resource.namespaced else None
            )
        except errors.NotFoundError:
            return None
        if (obj.get("metadata") or {}).get("uid") != identity.uid:
            return None
        return obj

    async def _resource_for(self, api_version: str, kind: str) -> Resource:
        try:
            return await self._discovery.resource_for(api_version=api_version, kind=kind)
        except UnknownKindError as exc:
            raise TemporaryError(f"cannot resolve {kind} in {api_version}: {exc}") from exc

    async def _finish_foreground(self, node: Node, resource: Resource) -> None:
        """processDeletingDependentsItem: wait for blocking dependents, then drop the finalizer."""
        blocking = [
            dependent
            for uid in node.dependents
            if (dependent := self.graph.nodes.get(uid)) is not None and dependent.blocks(node.identity.uid)
        ]
        if not blocking:
            log.info("%s: no blocking dependents left, removing %s", node.identity, FOREGROUND_FINALIZER)
            await self._remove_finalizer(resource, identity=node.identity, finalizer=FOREGROUND_FINALIZER)
            return
        for dependent in blocking:
            if not dependent.being_deleted:
                self._delete_queue.add(dependent.identity.uid)

    async def _delete(self, resource: Resource, *, identity: Identity, policy: PropagationPolicy) -> None:
        try:
            await self._client.delete(
                resource,
                identity.name,
                namespace=identity.namespace if resource.namespaced else None,
                propagation_policy=policy,
                preconditions=Preconditions(uid=identity.uid),
            )
        except (errors.NotFoundError, errors.ConflictError):
            pass  # gone already, or replaced by another object of that name

    # --- writes to metadata -----------------------------------------------------------------

    async def _patch_metadata(
        self,
        resource: Resource,
        *,
        identity: Identity,
        change: Callable[[dict[str, Any]], dict[str, Any] | None],
    ) -> None:
        """Read-modify-write of metadata with a resourceVersion precondition, retried on conflicts.

        ``change`` gets the live metadata and returns the fields to merge, or None for no change.
        """
        namespace = identity.namespace if resource.namespaced else None
        for _ in range(_MAX_WRITE_ATTEMPTS):
            latest = await self._get_live(resource, identity)
            if latest is None:
                return
            fields = change(latest["metadata"])
            if fields is None:
                return
            patch = {"metadata": {**fields, "resourceVersion": latest["metadata"]["resourceVersion"]}}
            try:
                await self._client.patch(
                    resource, identity.name, patch, namespace=namespace, patch_type=PatchType.MERGE
                )
                return
            except errors.NotFoundError:
                return
            except errors.ConflictError:
                continue
        raise TemporaryError(f"{identity}: kept conflicting while updating its metadata")

    async def _remove_finalizer(self, resource: Resource, *, identity: Identity, finalizer: str) -> None:
        def without(metadata: dict[str, Any]) -> dict[str, Any] | None:
            finalizers = list(metadata.get("finalizers") or ())
            if finalizer not in finalizers:
                return None
            rest = [f for f in finalizers if f != finalizer]
            return {"finalizers": rest or None}

        await self._patch_metadata(resource, identity=identity, change=without)

    async def _remove_references(
        self, resource: Resource, *, identity: Identity, owner_uids: set[str]
    ) -> None:
        def without(metadata: dict[str, Any]) -> dict[str, Any] | None:
            references = list(metadata.get("ownerReferences") or ())
            rest = [ref for ref in references if ref.get("uid") not in owner_uids]
            if len(rest) == len(references):
                return None
            return {"ownerReferences": rest or None}

        await self._patch_metadata(resource, identity=identity, change=without)

    async def _unblock_references(self, resource: Resource, identity: Identity) -> None:
        def unblocked(metadata: dict[str, Any]) -> dict[str, Any] | None:
            references = [dict(ref) for ref in metadata.get("ownerReferences") or ()]
            if not any(ref.get("blockOwnerDeletion") for ref in references):
                return None
            for ref in references:
                ref["blockOwnerDeletion"] = False
            return {"ownerReferences": references}

        await self._patch_metadata(resource, identity=identity, change=unblocked)

    # --- attempt to orphan ------------------------------------------------------------------

    async def attempt_to_orphan(self, uid: str) -> None:
        """Release an owner's dependents (remove their references to it), then its finalizer."""
        node = self.graph.nodes.get(uid)
        if node is None:
            return
        owner = node.identity
        for dependent_uid in list(node.dependents):
            dependent = self.graph.nodes.get(dependent_uid)
            if dependent is None or dependent.virtual:
                continue
            resource = await self._resource_for(dependent.identity.api_version, dependent.identity.kind)
            await self._remove_references(resource, identity=dependent.identity, owner_uids={uid})
        resource = await self._resource_for(owner.api_version, owner.kind)
        log.info("%s: dependents orphaned, removing %s", owner, ORPHAN_FINALIZER)
        await self._remove_finalizer(resource, identity=owner, finalizer=ORPHAN_FINALIZER)


def new_controller(ctx: ControllerContext) -> GarbageCollector:
    return GarbageCollector(ctx)


def monitored_resources(documents: list[dict[str, Any]]) -> list[Resource]:
    """Every resource that can be listed, watched and deleted, once per group (first version listed)."""
    seen: set[tuple[str, str]] = set()
    result = []
    for document in documents:
        group, _, version = (document.get("groupVersion") or "").rpartition("/")
        for item in document.get("resources") or ():
            plural = item.get("name") or ""
            if "/" in plural or not {"list", "watch", "delete"} <= set(item.get("verbs") or ()):
                continue
            key = (group, plural)
            if key in IGNORED_RESOURCES or key in seen:
                continue
            seen.add(key)
            result.append(
                Resource(
                    group=group,
                    version=version,
                    plural=plural,
                    kind=item.get("kind") or "",
                    namespaced=bool(item.get("namespaced")),
                )
            )
    return result
