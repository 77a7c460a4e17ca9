"""The StatefulSet controller: pods with stable names, in order (upstream's
``pkg/controller/statefulset``).

**Identity.** Replica *i* is the pod ``<set>-<i>`` (ordinals from ``spec.ordinals.start``, default
0), created from the template with ``hostname: <set>-<i>``, ``subdomain: <serviceName>`` and the
labels ``statefulset.kubernetes.io/pod-name``, ``apps.kubernetes.io/pod-index`` and
``controller-revision-hash: <revision name>``. A pod whose identity labels drift is patched back.

**Order.** With ``podManagementPolicy: OrderedReady`` (the default) the controller walks the
replicas from the lowest ordinal and stops at the first one that is missing (it creates it),
terminating, or not yet Running and Ready (and available for ``minReadySeconds``): a pod is
only created when all its predecessors run. Surplus pods (ordinal beyond the replica count) are
deleted from the highest ordinal, one at a time, each only when every other pod is healthy.
``Parallel`` creates and deletes without waiting. A Failed or Succeeded pod is deleted and
recreated (``RecreatingFailedPod`` / ``RecreatingTerminatedPod``).

**Updates.** Each template is a ControllerRevision (:mod:`.controllerrevision`, named
``<set>-<hash>``): ``status.updateRevision`` is the current template's, ``status.currentRevision``
the one the set is rolling away from. New pods below ``rollingUpdate.partition`` are created at
the current revision, the others at the update revision. ``RollingUpdate`` deletes the
highest-ordinal pod not at the update revision (at or above the partition) once every pod above
it is healthy, and the ordered walk recreates it; when every pod is updated and ready the update
revision becomes current. ``OnDelete`` only recreates pods someone deletes. History beyond
``revisionHistoryLimit`` revisions that no pod uses is deleted.

**Status.** ``replicas``, ``readyReplicas``, ``availableReplicas``, ``currentReplicas``,
``updatedReplicas``, ``currentRevision``, ``updateRevision``, ``collisionCount`` and
``observedGeneration``, written when they change. Events as upstream: ``SuccessfulCreate``
``create Pod web-0 in StatefulSet web successful``, ``SuccessfulDelete``, ``FailedCreate`` ...

**Storage.** kubelab has no PersistentVolumes, so ``volumeClaimTemplates`` create no claims:
each claim template becomes an ``emptyDir`` volume of the same name in the pod (so templates that
mount it still run), living as long as the pod does rather than across restarts as a claim
would. ``persistentVolumeClaimRetentionPolicy`` has nothing to act on.
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from control.client import errors
from control.client.clock import REAL_CLOCK, Clock
from control.client.controller import Controller, PermanentError
from control.client.indexer import NAMESPACE_INDEX, object_key
from control.client.informer import DeletedFinalStateUnknown
from control.client.rest import PatchType
from control.client.workqueue import RateLimitingQueue
from control.controllers import controllerrevision as history
from control.controllers.events import EventRecorder
from control.controllers.kinds import CONTROLLER_REVISIONS, PODS, STATEFUL_SETS
from control.controllers.manager import ControllerContext
from control.controllers.ownership import (
    ControllerRefManager,
    add_controller_uid_index,
    controller_of,
    controller_ref,
    error_text,
    is_pod_available,
    is_pod_ready,
    owned_or_orphaned,
    pod_from_template,
)
from control.resources.selectors import SelectorError, label_selector_from_spec

log = logging.getLogger("kubelab.controllers.statefulset")

COMPONENT = "statefulset-controller"
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
STATUS_UPDATE_RETRIES = 10

_STATEFUL_POD = re.compile(r"^(.*)-([0-9]+)$")

Obj = Mapping[str, Any]
Now = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


# --- identity -------------------------------------------------------------------------------------


def parent_and_ordinal(pod: Obj) -> tuple[str, int]:
    """(set name, ordinal) from a pod name ``<set>-<ordinal>``; ("", -1) for any other name."""
    match = _STATEFUL_POD.match((pod.get("metadata") or {}).get("name") or "")
    if match is None:
        return "", -1
    ordinal = int(match.group(2))
    return (match.group(1), ordinal) if ordinal < 2**31 else ("", -1)


def ordinal_of(pod: Obj) -> int:
    return parent_and_ordinal(pod)[1]


def pod_name(set_name: str, ordinal: int) -> str:
    return f"{set_name}-{ordinal}"


def start_ordinal(sts: Obj) -> int:
    return int(((sts.get("spec") or {}).get("ordinals") or {}).get("start") or 0)


def replica_count(sts: Obj) -> int:
    replicas = (sts.get("spec") or {}).get("replicas")
    return 1 if replicas is None else int(replicas)


def is_member_of(sts: Obj, pod: Obj) -> bool:
    return parent_and_ordinal(pod)[0] == sts["metadata"]["name"]


def identity_matches(sts: Obj, pod: Obj) -> bool:
    """``identityMatches``: name, namespace and the pod-name label agree with the ordinal."""
    parent, ordinal = parent_and_ordinal(pod)
    metadata = pod.get("metadata") or {}
    return (
        ordinal >= 0
        and parent == sts["metadata"]["name"]
        and metadata.get("namespace") == sts["metadata"]["namespace"]
        and (metadata.get("labels") or {}).get(POD_NAME_LABEL) == metadata.get("name")
    )


def pod_revision(pod: Obj) -> str:
    return ((pod.get("metadata") or {}).get("labels") or {}).get(history.CONTROLLER_REVISION_HASH_LABEL, "")


def new_stateful_pod(sts: Obj, ordinal: int, *, revision: str) -> dict[str, Any]:
    """``newStatefulSetPod`` + ``setPodRevision``: the pod for ``ordinal`` from ``sts``'s template."""
    spec = sts.get("spec") or {}
    pod = pod_from_template(
        spec.get("template") or {},
        owner_name=sts["metadata"]["name"],
        controller_ref=controller_ref(sts, STATEFUL_SETS),
    )
    name = pod_name(sts["metadata"]["name"], ordinal)
    metadata = pod["metadata"]
    metadata["name"] = name
    metadata["namespace"] = sts["metadata"]["namespace"]
    labels = metadata.setdefault("labels", {})
    labels[POD_NAME_LABEL] = name
    labels[POD_INDEX_LABEL] = str(ordinal)
    labels[history.CONTROLLER_REVISION_HASH_LABEL] = revision
    pod["spec"]["hostname"] = name
    if spec.get("serviceName"):
        pod["spec"]["subdomain"] = spec["serviceName"]
    claims = [(claim.get("metadata") or {}).get("name") for claim in spec.get("volumeClaimTemplates") or ()]
    if claims:
        volumes = [v for v in pod["spec"].get("volumes") or () if v.get("name") not in claims]
        volumes.extend({"name": claim, "emptyDir": {}} for claim in claims if claim)
        pod["spec"]["volumes"] = volumes
    return pod


def _phase(pod: Obj) -> str:
    return (pod.get("status") or {}).get("phase") or ""


def is_created(pod: Obj) -> bool:
    return bool(_phase(pod))


def is_terminating(pod: Obj) -> bool:
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def is_running_and_ready(pod: Obj) -> bool:
    return _phase(pod) == "Running" and is_pod_ready(pod)


@dataclass(slots=True)
class _Status:
    replicas: int = 0
    ready: int = 0
    available: int = 0
    current: int = 0
    updated: int = 0


# --- the controller -------------------------------------------------------------------------------


class StatefulSetController:
    """Reconciles StatefulSets; :meth:`run` works until cancelled and may be called again."""

    name = "statefulset"

    def __init__(
        self,
        ctx: ControllerContext,
        *,
        clock: Clock = REAL_CLOCK,
        now: Now = _utcnow,
        workers: int | None = None,
    ) -> None:
        self._client = ctx.client
        self.recorder: EventRecorder = ctx.recorder(COMPONENT)
        self._clock = clock
        self._now = now
        self._workers = workers or ctx.options.concurrent_syncs
        self._queue: RateLimitingQueue[str] | None = None
        self._sets = ctx.informers.informer(STATEFUL_SETS)
        self._pods = ctx.informers.informer(PODS)
        self._revisions = ctx.informers.informer(CONTROLLER_REVISIONS)
        self._history = history.History(
            client=ctx.client, revisions=self._revisions, owner_resource=STATEFUL_SETS
        )
        add_controller_uid_index(self._pods)
        self._sets.add_event_handler(
            on_add=self._on_set, on_update=lambda old, new: self._on_set(new), on_delete=self._on_set
        )
        self._pods.add_event_handler(
            on_add=self._on_pod, on_update=self._on_pod_update, on_delete=self._on_pod_delete
        )
        self._revisions.add_event_handler(
            on_add=self._on_revision,
            on_update=lambda old, new: self._on_revision(new),
            on_delete=self._on_revision,
        )

    async def run(self) -> None:
        queue: RateLimitingQueue[str] = RateLimitingQueue(name=self.name, clock=self._clock)
        self._queue = queue
        for sts in self._sets.cache.list():
            queue.add(object_key(sts))
        informers = [self._sets, self._pods, self._revisions]
        try:
            await Controller(
                self.name, queue, self.reconcile, workers=self._workers, informers=informers
            ).run()
        finally:
            if self._queue is queue:
                self._queue = None

    # --- event handlers -----------------------------------------------------------------------

    def _enqueue(self, key: str, *, after: float = 0.0) -> None:
        if self._queue is not None:
            self._queue.add_after(key, after)

    def _on_set(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        self._enqueue(obj.key if isinstance(obj, DeletedFinalStateUnknown) else object_key(obj))

    def _resolve(self, namespace: str, ref: Obj | None) -> Obj | None:
        if ref is None or ref.get("kind") != STATEFUL_SETS.kind:
            return None
        sts = self._sets.cache.get_by_key(f"{namespace}/{ref.get('name')}")
        if sts is None or sts["metadata"].get("uid") != ref.get("uid"):
            return None
        return sts

    def _selecting(self, obj: Obj) -> list[Obj]:
        metadata = obj.get("metadata") or {}
        labels = metadata.get("labels") or {}
        found = []
        for sts in self._sets.cache.by_index(NAMESPACE_INDEX, metadata.get("namespace") or ""):
            try:
                selector = label_selector_from_spec((sts.get("spec") or {}).get("selector"))
            except SelectorError:
                continue
            if not selector.empty and selector.matches(labels):
                found.append(sts)
        return found

    def _on_pod(self, pod: Obj) -> None:
        ref = controller_of(pod)
        sts = self._resolve(pod["metadata"]["namespace"], ref)
        if sts is not None:
            self._enqueue(object_key(sts))
        elif ref is None:
            for candidate in self._selecting(pod):
                self._enqueue(object_key(candidate))

    def _on_pod_update(self, old: Obj, new: Obj) -> None:
        if old["metadata"].get("resourceVersion") == new["metadata"].get("resourceVersion"):
            return
        namespace = new["metadata"]["namespace"]
        old_ref, new_ref = controller_of(old), controller_of(new)
        if old_ref != new_ref:
            previous = self._resolve(namespace, old_ref)
            if previous is not None:
                self._enqueue(object_key(previous))
        sts = self._resolve(namespace, new_ref)
        if sts is not None:
            key = object_key(sts)
            self._enqueue(key)
            min_ready = int((sts.get("spec") or {}).get("minReadySeconds") or 0)
            if min_ready and not is_pod_ready(old) and is_pod_ready(new):
                self._enqueue(key, after=min_ready + 1)
        elif new_ref is None and (
            old_ref != new_ref or old["metadata"].get("labels") != new["metadata"].get("labels")
        ):
            for candidate in self._selecting(new):
                self._enqueue(object_key(candidate))

    def _on_pod_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        pod = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        sts = self._resolve((pod.get("metadata") or {}).get("namespace") or "", controller_of(pod))
        if sts is not None:
            self._enqueue(object_key(sts))

    def _on_revision(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        revision = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        sts = self._resolve((revision.get("metadata") or {}).get("namespace") or "", controller_of(revision))
        if sts is not None:
            self._enqueue(object_key(sts))

    # --- reconcile ----------------------------------------------------------------------------

    async def reconcile(self, key: str) -> None:
        """Sync the StatefulSet ``key``: revisions, pods in order, rolling update, status, history."""
        sts = self._sets.cache.get_by_key(key)
        if sts is None:
            return
        try:
            selector = label_selector_from_spec((sts.get("spec") or {}).get("selector"))
        except SelectorError as exc:
            raise PermanentError(f"StatefulSet {key} has an invalid selector: {exc}") from exc
        if selector.empty:
            raise PermanentError(f"StatefulSet {key} selects every pod; a non-empty selector is required")
        manager = ControllerRefManager(
            client=self._client,
            owner=sts,
            owner_resource=STATEFUL_SETS,
            resource=PODS,
            selector=selector,
            accept=lambda pod: is_member_of(sts, pod),
        )
        pods = await manager.claim(owned_or_orphaned(self._pods.cache, sts))
        revisions = history.sorted_by_revision(await self._history.claim(sts, selector=selector))
        current, update, collision_count = await self._revisions_of(sts, revisions)
        sync = _Sync(self, sts, current=current, update=update, pods=pods)
        failure: errors.RequestError | None = None
        try:
            await sync.run()
        except errors.RequestError as exc:
            failure = exc
        status = sync.status(collision_count)
        await self._update_status(sts, status)
        await self._truncate_history(sts, pods, revisions, current=current, update=update)
        if failure is not None:
            raise failure
        min_ready = int((sts.get("spec") or {}).get("minReadySeconds") or 0)
        if min_ready > 0 and status["readyReplicas"] != status["availableReplicas"]:
            self._enqueue(key, after=min_ready)

    async def _revisions_of(self, sts: Obj, revisions: Sequence[Obj]) -> tuple[Obj, Obj, int]:
        """``getStatefulSetRevisions``: (current revision, update revision, collision count)."""
        collision_count = int((sts.get("status") or {}).get("collisionCount") or 0)
        data = history.template_patch(sts)
        encoded = history.encode_data(data)
        equal = [revision for revision in revisions if history.encode_data(revision.get("data")) == encoded]
        next_number = history.max_revision(revisions) + 1
        if equal and revisions and equal[-1]["metadata"]["name"] == revisions[-1]["metadata"]["name"]:
            update = equal[-1]  # the latest revision: the template did not change
        elif equal:
            update = await self._history.renumber(equal[-1], next_number)  # a rollback
        else:
            template = (sts.get("spec") or {}).get("template") or {}
            body = history.new_revision(
                sts,
                owner_resource=STATEFUL_SETS,
                data=data,
                number=next_number,
                labels=(template.get("metadata") or {}).get("labels") or {},
            )
            update, count = await self._history.create(
                body,
                prefix=sts["metadata"]["name"],
                hash_label=history.HISTORY_HASH_LABEL,
                hash_for=lambda count: history.hash_revision_data(data, collision_count=count),
                collision_count=collision_count,
            )
            collision_count = count or 0
        current_name = (sts.get("status") or {}).get("currentRevision")
        current = next((r for r in revisions if r["metadata"]["name"] == current_name), None)
        return (current if current is not None else update), update, collision_count

    async def _truncate_history(
        self, sts: Obj, pods: Sequence[Obj], revisions: Sequence[Obj], *, current: Obj, update: Obj
    ) -> None:
        """``truncateHistory``: keep ``revisionHistoryLimit`` revisions besides the live ones."""
        live = {current["metadata"]["name"], update["metadata"]["name"]} | {pod_revision(pod) for pod in pods}
        unused = [revision for revision in revisions if revision["metadata"]["name"] not in live]
        limit = int((sts.get("spec") or {}).get("revisionHistoryLimit", 10) or 0)
        for revision in unused[: max(0, len(unused) - limit)]:
            await self._history.delete(revision)

    async def _update_status(self, sts: Obj, status: dict[str, Any]) -> None:
        """``updateStatefulSetStatus``: complete a finished rolling update, write if changed."""
        spec = sts.get("spec") or {}
        if (
            (spec.get("updateStrategy") or {}).get("type", "RollingUpdate") == "RollingUpdate"
            and status["updatedReplicas"] == status["replicas"]
            and status["readyReplicas"] == status["replicas"]
        ):
            status["currentReplicas"] = status["updatedReplicas"]
            status["currentRevision"] = status["updateRevision"]
        old = sts.get("status") or {}
        if not (
            status["observedGeneration"] > int(old.get("observedGeneration") or 0)
            or any(
                int(old.get(field) or 0) != status[field]
                for field in (
                    "replicas",
                    "currentReplicas",
                    "readyReplicas",
                    "updatedReplicas",
                    "availableReplicas",
                )
            )
            or any(old.get(field, "") != status[field] for field in ("currentRevision", "updateRevision"))
        ):
            return
        current: Obj = sts
        for attempt in range(STATUS_UPDATE_RETRIES):
            changed = copy.deepcopy(dict(current))
            changed["status"] = {
                k: v
                for k, v in status.items()
                if v or k in ("replicas", "availableReplicas", "collisionCount")
            }
            try:
                await self._client.replace(STATEFUL_SETS, changed, subresource="status")
                return
            except errors.ConflictError:
                if attempt == STATUS_UPDATE_RETRIES - 1:
                    raise
                current = await self._client.get(
                    STATEFUL_SETS, sts["metadata"]["name"], namespace=sts["metadata"]["namespace"]
                )

    # --- pod writes, with upstream's Events ---------------------------------------------------

    async def _pod_event(self, sts: Obj, *, verb: str, pod: str, failure: BaseException | None) -> None:
        name = sts["metadata"]["name"]
        if failure is None:
            await self.recorder.event(
                sts,
                type="Normal",
                reason=f"Successful{verb.title()}",
                message=f"{verb} Pod {pod} in StatefulSet {name} successful",
            )
        else:
            await self.recorder.event(
                sts,
                type="Warning",
                reason=f"Failed{verb.title()}",
                message=f"{verb} Pod {pod} in StatefulSet {name} failed error: {error_text(failure)}",
            )

    async def create_pod(self, sts: Obj, pod: Obj) -> None:
        name = pod["metadata"]["name"]
        try:
            await self._client.create(PODS, pod, namespace=sts["metadata"]["namespace"])
        except errors.RequestError as exc:
            await self._pod_event(sts, verb="create", pod=name, failure=exc)
            raise
        await self._pod_event(sts, verb="create", pod=name, failure=None)

    async def delete_pod(self, sts: Obj, pod: Obj) -> None:
        name = pod["metadata"]["name"]
        try:
            await self._client.delete(PODS, name, namespace=sts["metadata"]["namespace"])
        except errors.NotFoundError:
            return
        except errors.RequestError as exc:
            await self._pod_event(sts, verb="delete", pod=name, failure=exc)
            raise
        await self._pod_event(sts, verb="delete", pod=name, failure=None)

    async def fix_identity(self, sts: Obj, pod: Obj) -> None:
        """``UpdateStatefulPod``: put the identity labels back."""
        name = pod["metadata"]["name"]
        labels = {POD_NAME_LABEL: name, POD_INDEX_LABEL: str(ordinal_of(pod))}
        try:
            await self._client.patch(
                PODS,
                name,
                {"metadata": {"labels": labels}},
                namespace=sts["metadata"]["namespace"],
                patch_type=PatchType.MERGE,
            )
        except errors.RequestError as exc:
            await self._pod_event(sts, verb="update", pod=name, failure=exc)
            raise
        await self._pod_event(sts, verb="update", pod=name, failure=None)

    def available(self, sts: Obj, pod: Obj) -> bool:
        min_ready = int((sts.get("spec") or {}).get("minReadySeconds") or 0)
        return is_running_and_ready(pod) and is_pod_available(
            pod, min_ready_seconds=min_ready, now=self._now()
        )


class _Sync:
    """One pass of ``updateStatefulSet`` over one StatefulSet (its replicas and condemned pods)."""

    def __init__(
        self, controller: StatefulSetController, sts: Obj, *, current: Obj, update: Obj, pods: Sequence[Obj]
    ) -> None:
        self.controller = controller
        self.sts = sts
        self.current = current
        self.update = update
        self.current_set = history.apply_revision(sts, current)
        self.update_set = history.apply_revision(sts, update)
        spec = sts.get("spec") or {}
        self.monotonic = spec.get("podManagementPolicy", "OrderedReady") != "Parallel"
        self.start = start_ordinal(sts)
        count = replica_count(sts)
        self.replicas: list[Obj] = []
        self.condemned: list[Obj] = []
        by_ordinal: dict[int, Obj] = {}
        for pod in pods:
            ordinal = ordinal_of(pod)
            if self.start <= ordinal < self.start + count:
                by_ordinal[ordinal] = pod
            elif ordinal >= 0:
                self.condemned.append(pod)
        for ordinal in range(self.start, self.start + count):
            self.replicas.append(by_ordinal.get(ordinal) or self.versioned_pod(ordinal))
        self.condemned.sort(key=ordinal_of, reverse=True)
        self.deleted_current = 0

    def versioned_pod(self, ordinal: int) -> dict[str, Any]:
        """``newVersionedStatefulSetPod``: below the partition from the current revision."""
        strategy = (self.current_set.get("spec") or {}).get("updateStrategy") or {}
        current_status = self.sts.get("status") or {}
        if strategy.get("type", "RollingUpdate") == "RollingUpdate":
            rolling = strategy.get("rollingUpdate")
            if rolling is None:
                below = ordinal < self.start + int(current_status.get("currentReplicas") or 0)
            else:
                below = ordinal < self.start + int(rolling.get("partition") or 0)
            if below:
                return new_stateful_pod(self.current_set, ordinal, revision=self.current["metadata"]["name"])
        return new_stateful_pod(self.update_set, ordinal, revision=self.update["metadata"]["name"])

    def healthy(self, pod: Obj) -> bool:
        return self.controller.available(self.sts, pod) and not is_terminating(pod)

    async def run(self) -> None:
        sts = self.sts
        if sts["metadata"].get("deletionTimestamp"):
            return
        first_unhealthy = next((pod for pod in self.replicas if not self.healthy(pod)), None)
        if first_unhealthy is None:
            first_unhealthy = next((pod for pod in reversed(self.condemned) if not self.healthy(pod)), None)
        for index in range(len(self.replicas)):
            if await self._process_replica(index) and self.monotonic:
                return
        for pod in self.condemned:
            if await self._process_condemned(pod, first_unhealthy) and self.monotonic:
                return
        strategy = (sts.get("spec") or {}).get("updateStrategy") or {}
        if strategy.get("type", "RollingUpdate") != "RollingUpdate":
            return
        partition = int((strategy.get("rollingUpdate") or {}).get("partition") or 0)
        update_name = self.update["metadata"]["name"]
        for target in range(len(self.replicas) - 1, partition - 1, -1):
            pod = self.replicas[target]
            if pod_revision(pod) != update_name and not is_terminating(pod):
                await self.controller.delete_pod(sts, pod)
                self.deleted_current += 1
                return
            if not self.healthy(pod):
                return  # wait for the pods above to be updated and healthy

    async def _process_replica(self, index: int) -> bool:
        """``processReplica``: True when an OrderedReady walk must stop here."""
        controller, sts = self.controller, self.sts
        pod = self.replicas[index]
        phase = _phase(pod)
        if phase in ("Failed", "Succeeded"):
            namespace, name = sts["metadata"]["namespace"], sts["metadata"]["name"]
            victim = pod["metadata"]["name"]
            if phase == "Failed":
                await controller.recorder.event(
                    sts,
                    type="Warning",
                    reason="RecreatingFailedPod",
                    message=f"StatefulSet {namespace}/{name} is recreating failed Pod {victim}",
                )
            else:
                await controller.recorder.event(
                    sts,
                    type="Normal",
                    reason="RecreatingTerminatedPod",
                    message=f"StatefulSet {namespace}/{name} is recreating terminated Pod {victim}",
                )
            await controller.delete_pod(sts, pod)
            pod = self.replicas[index] = self.versioned_pod(index + self.start)
        if not is_created(pod):
            await controller.create_pod(sts, pod)
            return True
        if is_terminating(pod):
            return True
        if not is_running_and_ready(pod) or not controller.available(sts, pod):
            return True
        if not identity_matches(sts, pod):
            await controller.fix_identity(sts, pod)
        return False

    async def _process_condemned(self, pod: Obj, first_unhealthy: Obj | None) -> bool:
        """``processCondemned``: True when an OrderedReady walk must stop here."""
        if is_terminating(pod):
            return True
        if self.monotonic and not self.healthy(pod) and pod is not first_unhealthy:
            return True
        await self.controller.delete_pod(self.sts, pod)
        return True

    def status(self, collision_count: int) -> dict[str, Any]:
        """The status this pass leads to (``updateStatus`` over replicas and condemned pods)."""
        counts = _Status()
        current_name = self.current["metadata"]["name"]
        update_name = self.update["metadata"]["name"]
        for pod in [*self.replicas, *self.condemned]:
            if is_created(pod):
                counts.replicas += 1
            if is_running_and_ready(pod):
                counts.ready += 1
                counts.available += self.controller.available(self.sts, pod)
            if is_created(pod) and not is_terminating(pod):
                revision = pod_revision(pod)
                counts.current += revision == current_name
                counts.updated += revision == update_name
        return {
            "observedGeneration": int(self.sts["metadata"].get("generation") or 0),
            "replicas": counts.replicas,
            "readyReplicas": counts.ready,
            "currentReplicas": counts.current - self.deleted_current,
            "updatedReplicas": counts.updated,
            "availableReplicas": counts.available,
            "currentRevision": current_name,
            "updateRevision": update_name,
            "collisionCount": collision_count,
        }


def new_controller(ctx: ControllerContext) -> StatefulSetController:
    return StatefulSetController(ctx)
