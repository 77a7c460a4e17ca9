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
``Parallel`` creates and deletes without waiting. A Failed or Succeeded pod is deleted (once;
not again while it terminates) and created anew on a later pass, after the old one is gone, as
upstream since 1.30 (kubernetes#123809: no ``RecreatingFailedPod`` / ``RecreatingTerminatedPod``
events, which every rolling update raised once deleted pods end in a terminal phase).

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

**Storage.** Each ``volumeClaimTemplates`` entry gives every replica its own
PersistentVolumeClaim, ``<template>-<set>-<ordinal>`` (``www-web-0``), made from the template
with the selector's ``matchLabels`` added to its labels. The claims are created *before* the pod
(``SuccessfulCreate`` ``create Claim www-web-0 Pod web-0 in StatefulSet web success``; a failure is
``FailedCreate`` for the claim and for the pod, which is then not created), and the pod's volume of
the template's name is ``persistentVolumeClaim: {claimName: www-web-0}``. A claim that exists is
reused as it is: that is the point, the data outlives the pod, and a replacement ``web-0`` mounts
the same volume. A claim being deleted holds the pod's creation back until it is gone.

``persistentVolumeClaimRetentionPolicy`` (``whenDeleted`` / ``whenScaled``, Retain by default)
acts through ownerReferences, exactly as upstream's ``isClaimOwnerUpToDate`` /
``updateClaimOwnerRefForSetAndPod``, and the garbage collector does the deleting: with
``whenDeleted: Delete`` each claim has the set as its controller, so deleting the set deletes the
claims; with ``whenScaled: Delete`` the claims of a condemned pod (ordinal beyond the replica
count) get that pod as their controller before it is deleted, so they go with it. Retain removes
our references. A claim controlled by something else, or still referring to an earlier set or pod
of the same name (another uid), is left alone, and with ``whenScaled: Delete`` a pod whose claim
still refers to an earlier pod is not created until the garbage collector has removed that claim.
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
from control.client.indexer import object_key
from control.client.informer import DeletedFinalStateUnknown
from control.client.rest import PatchType
from control.client.workqueue import RateLimitingQueue
from control.controllers import controllerrevision as history
from control.controllers.events import EventRecorder
from control.controllers.kinds import CONTROLLER_REVISIONS, PERSISTENT_VOLUME_CLAIMS, PODS, STATEFUL_SETS
from control.controllers.manager import ControllerContext
from control.controllers.ownership import (
    ControllerRefManager,
    add_controller_uid_index,
    controller_of,
    controller_ref,
    controllers_selecting,
    error_text,
    is_pod_available,
    is_pod_ready,
    owned_or_orphaned,
    pod_from_template,
    resolve_controller_ref,
)
from control.resources.selectors import SelectorError, label_selector_from_spec

log = logging.getLogger("kubelab.controllers.statefulset")

COMPONENT = "statefulset-controller"
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
STATUS_UPDATE_RETRIES = 10
RETAIN = "Retain"
DELETE = "Delete"

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
    update_storage(sts, pod, ordinal)
    return pod


# --- claims ---------------------------------------------------------------------------------------


def claim_name(template: Obj, *, set_name: str, ordinal: int) -> str:
    """``getPersistentVolumeClaimName``: ``<template>-<set>-<ordinal>``."""
    return f"{(template.get('metadata') or {}).get('name') or ''}-{set_name}-{ordinal}"


def claim_templates(sts: Obj) -> list[Obj]:
    return list((sts.get("spec") or {}).get("volumeClaimTemplates") or ())


def new_claims(sts: Obj, ordinal: int) -> dict[str, dict[str, Any]]:
    """``getPersistentVolumeClaims``: template name → the claim to create for ``ordinal``.

    Each is the template (status dropped: the API server resets it) renamed for the replica, in
    the set's namespace, with the selector's ``matchLabels`` over the template's labels.
    """
    name, namespace = sts["metadata"]["name"], sts["metadata"]["namespace"]
    match_labels = ((sts.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    claims: dict[str, dict[str, Any]] = {}
    for template in claim_templates(sts):
        template_meta = template.get("metadata") or {}
        metadata = copy.deepcopy(dict(template_meta))
        metadata["name"] = claim_name(template, set_name=name, ordinal=ordinal)
        metadata["namespace"] = namespace
        metadata["labels"] = {**(template_meta.get("labels") or {}), **match_labels}
        claims[template_meta.get("name") or ""] = {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": metadata,
            "spec": copy.deepcopy(dict(template.get("spec") or {})),
        }
    return claims


def storage_matches(sts: Obj, pod: Obj) -> bool:
    """``storageMatches``: each claim template is a volume of the pod naming the replica's claim."""
    ordinal = ordinal_of(pod)
    if ordinal < 0:
        return False
    volumes = {volume.get("name"): volume for volume in (pod.get("spec") or {}).get("volumes") or ()}
    for template in claim_templates(sts):
        volume = volumes.get((template.get("metadata") or {}).get("name"))
        source = (volume or {}).get("persistentVolumeClaim") or {}
        if source.get("claimName") != claim_name(template, set_name=sts["metadata"]["name"], ordinal=ordinal):
            return False
    return True


def update_storage(sts: Obj, pod: dict[str, Any], ordinal: int) -> None:
    """``updateStorage``: the claims' volumes first, then the pod's other volumes; a volume of the
    template's name in the pod template is replaced by the claim."""
    claims = new_claims(sts, ordinal)
    if not claims:
        return
    volumes: list[dict[str, Any]] = [
        {"name": name, "persistentVolumeClaim": {"claimName": claim["metadata"]["name"]}}
        for name, claim in claims.items()
    ]
    volumes.extend(v for v in pod["spec"].get("volumes") or () if v.get("name") not in claims)
    pod["spec"]["volumes"] = volumes


def retention_policy(sts: Obj) -> tuple[str, str]:
    """(whenDeleted, whenScaled); Retain where unset (``getPersistentVolumeClaimRetentionPolicy``)."""
    policy = (sts.get("spec") or {}).get("persistentVolumeClaimRetentionPolicy") or {}
    return policy.get("whenDeleted") or RETAIN, policy.get("whenScaled") or RETAIN


def in_ordinal_range(sts: Obj, pod: Obj) -> bool:
    """``podInOrdinalRange``: the pod is one of the set's replicas, not condemned."""
    start = start_ordinal(sts)
    return start <= ordinal_of(pod) < start + replica_count(sts)


def _refs(obj: Obj) -> list[Obj]:
    return list((obj.get("metadata") or {}).get("ownerReferences") or ())


def _matches_ref(ref: Obj, obj: Obj, kind: str, api_version: str) -> bool:
    """``matchesRef``: same apiVersion, kind and name (the uid is not compared)."""
    return (
        ref.get("apiVersion") == api_version
        and ref.get("kind") == kind
        and ref.get("name") == (obj.get("metadata") or {}).get("name")
    )


def _matches_set(ref: Obj, sts: Obj) -> bool:
    return _matches_ref(ref, sts, STATEFUL_SETS.kind, STATEFUL_SETS.api_version)


def _matches_pod(ref: Obj, pod: Obj) -> bool:
    return _matches_ref(ref, pod, PODS.kind, PODS.api_version)


def _uid(obj: Obj) -> str:
    return (obj.get("metadata") or {}).get("uid") or ""


def _has_owner(claim: Obj, owner: Obj) -> bool:
    uid = _uid(owner)
    return any(ref.get("uid") == uid for ref in _refs(claim))


def _has_stale_owner(claim: Obj, owner: Obj, *, is_set: bool) -> bool:
    """``hasStaleOwnerRef``: the first reference to ``owner``'s name and kind has another uid."""
    for ref in _refs(claim):
        if _matches_set(ref, owner) if is_set else _matches_pod(ref, owner):
            return ref.get("uid") != _uid(owner)
    return False


def _has_unexpected_controller(claim: Obj, sts: Obj, pod: Obj) -> bool:
    """``hasUnexpectedController``: under a Delete policy, a controller other than this set or pod,
    or a reference to this set's or pod's name with another uid."""
    if retention_policy(sts) == (RETAIN, RETAIN):
        return False
    for ref in _refs(claim):
        if _matches_set(ref, sts):
            if ref.get("uid") != _uid(sts):
                return True
        elif _matches_pod(ref, pod):
            if ref.get("uid") != _uid(pod):
                return True
        elif ref.get("controller"):
            return True
    return False


def _has_non_controller_owner(claim: Obj, sts: Obj, pod: Obj) -> bool:
    uids = {_uid(sts), _uid(pod)}
    return any(ref.get("uid") in uids and not ref.get("controller") for ref in _refs(claim))


def claim_owner_up_to_date(claim: Obj, sts: Obj, pod: Obj) -> bool:
    """``isClaimOwnerUpToDate``: the claim's references agree with the retention policy.

    Retain/Retain: no reference to the set or pod; whenDeleted=Delete: the set controls it;
    whenScaled=Delete: the pod controls it once the pod is condemned (then the set does not).
    A claim with stale references or another controller counts as up to date: it is not touched.
    """
    if _has_stale_owner(claim, sts, is_set=True) or _has_stale_owner(claim, pod, is_set=False):
        return True
    if _has_unexpected_controller(claim, sts, pod):
        return not (_has_owner(claim, sts) or _has_owner(claim, pod))
    if _has_non_controller_owner(claim, sts, pod):
        return False
    when_deleted, when_scaled = retention_policy(sts)
    set_owns, pod_owns = _has_owner(claim, sts), _has_owner(claim, pod)
    scaled_down = not in_ordinal_range(sts, pod)
    if when_scaled == DELETE and when_deleted == DELETE:
        return scaled_down != set_owns and scaled_down == pod_owns
    if when_scaled == DELETE:
        return not set_owns and scaled_down == pod_owns
    if when_deleted == DELETE:
        return set_owns and not pod_owns
    return not set_owns and not pod_owns


def claim_owners_for_policy(claim: Obj, sts: Obj, pod: Obj) -> list[dict[str, Any]]:
    """``updateClaimOwnerRefForSetAndPod``: the claim's ownerReferences as the policy wants them.

    References to the set and pod (by name and kind) are scrubbed, then the set or pod is added
    back as the claim's controller where the policy says; not when another controller owns it.
    """
    unexpected = _has_unexpected_controller(claim, sts, pod)
    refs = [dict(ref) for ref in _refs(claim) if not (_matches_set(ref, sts) or _matches_pod(ref, pod))]
    if unexpected:
        return refs
    when_deleted, when_scaled = retention_policy(sts)
    scaled_down = not in_ordinal_range(sts, pod)
    if when_scaled == DELETE and scaled_down:
        refs.append(controller_ref(pod, PODS))
    elif when_deleted == DELETE and not (when_scaled == DELETE and scaled_down):
        refs.append(controller_ref(sts, STATEFUL_SETS))
    return refs


def claim_is_stale(claim: Obj, pod: Obj) -> bool:
    """Whether a claim refers to an earlier pod of this pod's name (``PodClaimIsStale``'s test;
    a pod not yet created has no uid, so any such reference is stale)."""
    return _has_stale_owner(claim, pod, is_set=False)


def _aggregate(messages: Sequence[str]) -> str:
    """How apimachinery's ``NewAggregate`` prints several errors: one as it is, more in brackets."""
    return messages[0] if len(messages) == 1 else "[" + ", ".join(messages) + "]"


def _phase(pod: Obj) -> str:
    return (pod.get("status") or {}).get("phase") or ""


def is_created(pod: Obj) -> bool:
    return bool(_phase(pod))


def is_terminating(pod: Obj) -> bool:
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def is_running_and_ready(pod: Obj) -> bool:
    return _phase(pod) == "Running" and is_pod_ready(pod)


class ClaimError(Exception):
    """A replica's claims could not be made, or one is being deleted; the message says which
    (upstream's aggregate of ``failed to create PVC ...`` / ``pvc ... is being deleted``)."""


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
        self._claims = ctx.informers.informer(PERSISTENT_VOLUME_CLAIMS)
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
        self._claims.add_event_handler(on_delete=self._on_claim_delete)
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
        informers = [self._sets, self._pods, self._revisions, self._claims]
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
        return resolve_controller_ref(self._sets.cache, namespace=namespace, ref=ref, kind=STATEFUL_SETS.kind)

    def _selecting(self, obj: Obj) -> list[Obj]:
        return controllers_selecting(self._sets.cache, obj)

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

    def _on_claim_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        """A claim gone may let a held-back pod be created (its claim was being deleted, or stale);
        claims carry their set's selector labels."""
        claim = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        for sts in self._selecting(claim):
            if claim_templates(sts):
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
        failure: errors.RequestError | ClaimError | None = None
        try:
            await sync.run()
        except (errors.RequestError, ClaimError) as exc:
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

    async def pod_event(self, sts: Obj, *, verb: str, pod: str, failure: BaseException | None) -> None:
        """``recordPodEvent``: ``Successful<Verb>`` / ``Failed<Verb>`` on the set."""
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
        """``CreateStatefulPod``: the claims first, then the pod, then the claims' owners."""
        name = pod["metadata"]["name"]
        try:
            created = await self.create_claims(sts, pod)
        except ClaimError as exc:
            await self.pod_event(sts, verb="create", pod=name, failure=exc)
            raise
        try:
            await self._client.create(PODS, pod, namespace=sts["metadata"]["namespace"])
        except errors.AlreadyExistsError:
            raise  # sunk, as upstream: the informer brings the pod that is there
        except errors.RequestError as exc:
            await self.pod_event(sts, verb="create", pod=name, failure=exc)
            raise
        try:
            await self.update_claims_for_policy(sts, pod, fresh=created)
        except ClaimError as exc:
            await self.pod_event(sts, verb="update", pod=name, failure=exc)
            raise
        await self.pod_event(sts, verb="create", pod=name, failure=None)

    async def _claim_event(self, sts: Obj, *, claim: str, pod: str, failure: BaseException | None) -> None:
        name = sts["metadata"]["name"]
        if failure is None:
            await self.recorder.event(
                sts,
                type="Normal",
                reason="SuccessfulCreate",
                message=f"create Claim {claim} Pod {pod} in StatefulSet {name} success",
            )
        else:
            await self.recorder.event(
                sts,
                type="Warning",
                reason="FailedCreate",
                message=(
                    f"create Claim {claim} for Pod {pod} in StatefulSet {name} failed error: "
                    f"{error_text(failure)}"
                ),
            )

    async def create_claims(self, sts: Obj, pod: Obj) -> dict[str, Obj]:
        """``createPersistentVolumeClaims``: create the replica's missing claims (claim name → the
        created object); :class:`ClaimError` naming every claim that could not be made or is
        being deleted. A claim that already exists is used as it is."""
        namespace = sts["metadata"]["namespace"]
        pod_name_ = pod["metadata"]["name"]
        created: dict[str, Obj] = {}
        problems: list[str] = []
        for claim in new_claims(sts, ordinal_of(pod)).values():
            name = claim["metadata"]["name"]
            existing = self._claims.cache.get_by_key(f"{namespace}/{name}")
            if existing is not None:
                if (existing.get("metadata") or {}).get("deletionTimestamp"):
                    problems.append(f"pvc {name} is being deleted")
                continue
            try:
                created[name] = await self._client.create(
                    PERSISTENT_VOLUME_CLAIMS, claim, namespace=namespace
                )
            except errors.AlreadyExistsError:
                continue  # made by an earlier pass the cache has not caught up with
            except errors.RequestError as exc:
                problems.append(f"failed to create PVC {name}: {error_text(exc)}")
                await self._claim_event(sts, claim=name, pod=pod_name_, failure=exc)
                continue
            await self._claim_event(sts, claim=name, pod=pod_name_, failure=None)
        if problems:
            raise ClaimError(_aggregate(problems))
        return created

    def _claims_of(self, sts: Obj, pod: Obj, *, fresh: Mapping[str, Obj]) -> list[Obj]:
        """The replica's claims that exist (``fresh``: ones just created, maybe not yet cached)."""
        namespace, set_name, ordinal = sts["metadata"]["namespace"], sts["metadata"]["name"], ordinal_of(pod)
        found = []
        for template in claim_templates(sts):
            name = claim_name(template, set_name=set_name, ordinal=ordinal)
            claim = fresh.get(name) or self._claims.cache.get_by_key(f"{namespace}/{name}")
            if claim is not None:
                found.append(claim)
        return found

    def claims_match_policy(self, sts: Obj, pod: Obj) -> bool:
        """``ClaimsMatchRetentionPolicy``: every existing claim of the replica has the owners the
        retention policy wants (missing claims are picked up by a later pass)."""
        return all(claim_owner_up_to_date(claim, sts, pod) for claim in self._claims_of(sts, pod, fresh={}))

    async def update_claims_for_policy(self, sts: Obj, pod: Obj, *, fresh: Mapping[str, Obj]) -> None:
        """``UpdatePodClaimForRetentionPolicy``: rewrite the ownerReferences of claims that disagree
        with the retention policy (an update with the read resourceVersion: a conflict retries
        the whole sync)."""
        for claim in self._claims_of(sts, pod, fresh=fresh):
            if claim_owner_up_to_date(claim, sts, pod):
                continue
            refs = claim_owners_for_policy(claim, sts, pod)
            if refs == _refs(claim):
                continue
            changed = copy.deepcopy(dict(claim))
            changed["metadata"]["ownerReferences"] = refs
            try:
                await self._client.replace(PERSISTENT_VOLUME_CLAIMS, changed)
            except errors.NotFoundError:
                continue
            except errors.RequestError as exc:
                raise ClaimError(
                    f"Could not update claim {claim['metadata']['name']} for delete policy ownerRefs: "
                    f"{error_text(exc)}"
                ) from exc

    def claim_is_stale(self, sts: Obj, pod: Obj) -> bool:
        """``PodClaimIsStale``: with whenScaled=Delete, a claim of this replica still refers to an
        earlier pod of its name; the pod waits until the garbage collector removed the claim."""
        if retention_policy(sts)[1] == RETAIN:
            return False
        return any(claim_is_stale(claim, pod) for claim in self._claims_of(sts, pod, fresh={}))

    async def delete_pod(self, sts: Obj, pod: Obj) -> None:
        name = pod["metadata"]["name"]
        try:
            await self._client.delete(PODS, name, namespace=sts["metadata"]["namespace"])
        except errors.NotFoundError:
            return
        except errors.RequestError as exc:
            await self.pod_event(sts, verb="delete", pod=name, failure=exc)
            raise
        await self.pod_event(sts, verb="delete", pod=name, failure=None)

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
            await self.pod_event(sts, verb="update", pod=name, failure=exc)
            raise
        await self.pod_event(sts, verb="update", pod=name, failure=None)

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
        for pod in self.condemned:  # their claims' owners before they go (whenScaled: Delete)
            if not self.controller.claims_match_policy(self.update_set, pod):
                await self.controller.update_claims_for_policy(self.update_set, pod, fresh={})
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
            if not is_terminating(pod):
                await controller.delete_pod(sts, pod)
            return True  # the new pod is made on a later pass, once this one is gone
        if not is_created(pod):
            if controller.claim_is_stale(sts, pod):
                return True  # an earlier pod's claim, waiting for the garbage collector
            await controller.create_pod(sts, pod)
            return True
        if phase == "Pending":
            await controller.create_claims(sts, pod)  # claims deleted under a waiting pod come back
        if is_terminating(pod):
            return True
        if not is_running_and_ready(pod) or not controller.available(sts, pod):
            return True
        if not identity_matches(sts, pod):
            await controller.fix_identity(sts, pod)
        if not controller.claims_match_policy(self.update_set, pod):
            try:
                await controller.update_claims_for_policy(self.update_set, pod, fresh={})
            except ClaimError as exc:
                await controller.pod_event(sts, verb="update", pod=pod["metadata"]["name"], failure=exc)
                raise
            await controller.pod_event(sts, verb="update", pod=pod["metadata"]["name"], failure=None)
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
