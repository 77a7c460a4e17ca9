"""What every workload controller shares about the objects it owns.

A port of the parts of kube-controller-manager's ``pkg/controller`` (``controller_utils.go``,
``controller_ref_manager.go``) that the ReplicaSet, Deployment, DaemonSet, StatefulSet and Job
controllers all lean on, kept in one place so they behave alike:

- **Controller references.** :func:`controller_ref` builds the ``ownerReference`` a controller
  puts on what it creates (``controller: true``, ``blockOwnerDeletion: true``, as
  ``metav1.NewControllerRef``); :func:`controller_of` and :func:`is_controlled_by` read them.
- **Finding candidates fast.** :func:`add_controller_uid_index` files an informer's objects under
  their controller's uid (orphans under their namespace), and :func:`owned_or_orphaned` answers
  "what this owner may claim" without scanning the namespace (upstream's ``FilterPodsByOwner``).
- **Finding the owner of an event.** :func:`resolve_controller_ref` turns an object's controller
  reference into the cached owner (each controller's ``resolveControllerRef``) and
  :func:`controllers_selecting` lists the owners whose selector matches an orphan, so it may be
  adopted (``GetPodReplicaSets``, ``GetPodDaemonSets``, ``GetPodJobs``...).
- **Claiming.** :class:`ControllerRefManager` adopts orphans that match the owner's selector and
  releases owned objects that stopped matching, with upstream's strategic-merge patches and its
  rule of re-reading the owner (uncached) before the first adoption, so a controller being
  deleted never adopts anything.
- **Expectations.** :class:`Expectations` remembers how many creations and which deletions a
  controller is waiting to see in its informer, so a burst of events arriving before the cache
  has caught up does not create or delete twice (``UIDTrackingControllerExpectations``).
- **Pods.** :func:`is_pod_active`, :func:`is_pod_ready` and :func:`is_pod_available` decide which
  pods count; :class:`PodControl` (upstream's ``RealPodControl``) is the one way the ReplicaSet,
  DaemonSet and Job controllers create pods from a template (:func:`pod_from_template`,
  ``generateName: <owner>-`` unless the caller names another prefix) and delete them, recording
  upstream's Events (``SuccessfulCreate`` "Created pod: web-abcde", ``FailedCreate``,
  ``SuccessfulDelete``, ``FailedDelete``); :func:`slow_start_batch` paces a burst of creations.
  The StatefulSet controller builds its pods with :func:`pod_from_template` too but writes them
  through its own ``StatefulPodControl``, whose Events upstream words differently.
- **Template hashing.** :func:`compute_hash` is ``controller.ComputeHash``'s shape: FNV-1a (32
  bit) of the template, the collision count mixed in, the number rendered with
  ``rand.SafeEncodeString``. Upstream feeds the hasher a ``spew`` dump of the Go struct, which
  cannot be reproduced without Go's type layout; we feed it the template's canonical JSON (keys
  sorted), so hashes are stable across runs and processes but differ from a real cluster's.

Everything here reads objects from informer caches and never mutates them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson

from control.client import errors
from control.client.clock import REAL_CLOCK, Clock
from control.client.indexer import NAMESPACE_INDEX, Indexer
from control.client.informer import SharedInformer
from control.client.rest import PatchType, Resource, RESTClient
from control.controllers.events import EventRecorder
from control.controllers.kinds import PODS
from control.resources.selectors import LabelSelector, SelectorError, label_selector_from_spec

# --------------------------------------------------------------------------- controller references


def controller_ref(owner: Mapping[str, Any], resource: Resource) -> dict[str, Any]:
    """The ownerReference a controller of kind ``resource`` puts on what it creates."""
    metadata = owner["metadata"]
    return {
        "apiVersion": resource.api_version,
        "kind": resource.kind,
        "name": metadata["name"],
        "uid": metadata["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def controller_of(obj: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ownerReference with ``controller: true``, if any (``metav1.GetControllerOf``)."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("controller"):
            return ref
    return None


def is_controlled_by(obj: Mapping[str, Any], owner: Mapping[str, Any]) -> bool:
    ref = controller_of(obj)
    return ref is not None and ref.get("uid") == owner["metadata"].get("uid")


# --------------------------------------------------------------------------- the controller-uid index

CONTROLLER_UID_INDEX = "controller-uid"
_ORPHAN = "_ORPHAN/"


def _controller_uid_values(obj: Mapping[str, Any]) -> list[str]:
    ref = controller_of(obj)
    if ref is not None and ref.get("uid"):
        return [ref["uid"]]
    return [_ORPHAN + ((obj.get("metadata") or {}).get("namespace") or "")]


def add_controller_uid_index(informer: SharedInformer) -> None:
    """File the informer's objects by controller uid, orphans by namespace. Idempotent, so every
    controller sharing the informer may call it."""
    if CONTROLLER_UID_INDEX not in informer.cache.index_names():
        informer.add_indexers({CONTROLLER_UID_INDEX: _controller_uid_values})


def owned_or_orphaned(cache: Indexer, owner: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The cached objects ``owner`` controls plus the orphans in its namespace: everything it may
    claim. The cache needs :func:`add_controller_uid_index`. Shared objects: do not mutate."""
    metadata = owner["metadata"]
    namespace = metadata.get("namespace") or ""
    owned = [
        obj for obj in cache.by_index(CONTROLLER_UID_INDEX, metadata["uid"]) if _namespace(obj) == namespace
    ]
    return owned + cache.by_index(CONTROLLER_UID_INDEX, _ORPHAN + namespace)


def _namespace(obj: Mapping[str, Any]) -> str:
    return (obj.get("metadata") or {}).get("namespace") or ""


def resolve_controller_ref(
    cache: Indexer, *, namespace: str, ref: Mapping[str, Any] | None, kind: str
) -> dict[str, Any] | None:
    """The cached owner a controller reference names (``resolveControllerRef``): None unless
    ``ref`` is of ``kind`` and the object cached under its name in ``namespace`` still has its uid
    (a deleted and recreated owner of the same name is another object). Shared: do not mutate."""
    if ref is None or ref.get("kind") != kind:
        return None
    owner = cache.get_by_key(f"{namespace}/{ref.get('name')}")
    if owner is None or owner["metadata"].get("uid") != ref.get("uid"):
        return None
    return owner


def spec_label_selector(owner: Mapping[str, Any]) -> LabelSelector:
    """``spec.selector`` as a ``metav1.LabelSelector`` (the apps/v1 and batch/v1 controllers');
    raises SelectorError when it cannot be read."""
    return label_selector_from_spec((owner.get("spec") or {}).get("selector"))


def controllers_selecting(
    cache: Indexer,
    obj: Mapping[str, Any],
    *,
    selector_of: Callable[[Mapping[str, Any]], LabelSelector] = spec_label_selector,
) -> list[dict[str, Any]]:
    """The cached controllers in ``obj``'s namespace whose selector matches its labels: who may
    adopt it while it is an orphan. ``selector_of`` reads a controller's selector (raising
    SelectorError when it cannot): by default ``spec.selector`` as a LabelSelector. Controllers
    with an empty or unreadable selector never match. ``cache`` needs the namespace index. Shared
    objects: do not mutate."""
    metadata = obj.get("metadata") or {}
    labels = metadata.get("labels") or {}
    found = []
    for owner in cache.by_index(NAMESPACE_INDEX, metadata.get("namespace") or ""):
        try:
            selector = selector_of(owner)
        except SelectorError:
            continue
        if not selector.empty and selector.matches(labels):
            found.append(owner)
    return found


# --------------------------------------------------------------------------- claiming


class LabelMatcher(Protocol):
    """What a selector must offer to claim with (``control.resources.selectors.LabelSelector`` does)."""

    def matches(self, labels: Mapping[str, str]) -> bool: ...


class ClaimError(Exception):
    """Some adoptions or releases failed; the first failure is the ``__cause__``. Retry the sync."""


class ControllerRefManager:
    """Claims objects of kind ``resource`` for ``owner`` (a controller of kind ``owner_resource``).

    :meth:`claim` returns the objects the owner controls after reconciling ownership:

    - owned by someone else: ignored;
    - owned by ``owner`` and matching ``selector`` (and ``accept``, if given): kept;
    - owned by ``owner`` but no longer matching: released (unless the owner is being deleted);
    - orphaned, matching, in the owner's namespace, not being deleted: adopted — after one
      uncached GET of the owner confirms it still exists with the same uid and is not being
      deleted (upstream's ``RecheckDeletionTimestamp``).

    One manager serves one sync of one owner.
    """

    def __init__(
        self,
        *,
        client: RESTClient,
        owner: Mapping[str, Any],
        owner_resource: Resource,
        resource: Resource,
        selector: LabelMatcher,
        accept: Callable[[Mapping[str, Any]], bool] | None = None,
    ) -> None:
        self._client = client
        self._owner = owner
        self._owner_resource = owner_resource
        self._resource = resource
        self._selector = selector
        self._accept = accept
        self._owner_checked = False
        self._cannot_adopt: _CannotAdopt | None = None

    def _matches(self, obj: Mapping[str, Any]) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return self._selector.matches(labels) and (self._accept is None or self._accept(obj))

    async def claim(self, objects: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """The objects the owner controls, adopting and releasing as needed (see the class doc).

        Raises :class:`ClaimError` after trying every object if any adoption or release failed.
        """
        owner_meta = self._owner["metadata"]
        owner_uid = owner_meta["uid"]
        owner_deleting = bool(owner_meta.get("deletionTimestamp"))
        owner_namespace = owner_meta.get("namespace") or ""
        claimed: list[dict[str, Any]] = []
        failures: list[BaseException] = []
        for obj in objects:
            metadata = obj.get("metadata") or {}
            ref = controller_of(obj)
            if ref is not None:
                if ref.get("uid") != owner_uid:
                    continue
                if self._matches(obj):
                    claimed.append(obj)  # type: ignore[arg-type]
                    continue
                if owner_deleting:
                    continue
                try:
                    await self._release(obj)
                except errors.RequestError as exc:
                    failures.append(exc)
                continue
            if owner_deleting or not self._matches(obj) or metadata.get("deletionTimestamp"):
                continue
            if owner_namespace and owner_namespace != (metadata.get("namespace") or ""):
                continue
            try:
                adopted = await self._adopt(obj)
            except (errors.RequestError, _CannotAdopt) as exc:
                failures.append(exc)
                continue
            if adopted:
                claimed.append(obj)  # type: ignore[arg-type]
        if failures:
            raise ClaimError(
                f"claiming {self._resource.group_resource} for {self._owner_resource.kind} "
                f"{owner_namespace}/{owner_meta['name']}: {len(failures)} failed, first: {failures[0]}"
            ) from failures[0]
        return claimed

    async def _recheck_owner(self) -> None:
        meta = self._owner["metadata"]
        try:
            fresh = await self._client.get(
                self._owner_resource, meta["name"], namespace=meta.get("namespace") or None
            )
        except errors.RequestError as exc:
            raise _CannotAdopt(f"can't recheck DeletionTimestamp: {exc}") from exc
        fresh_meta = fresh.get("metadata") or {}
        if fresh_meta.get("uid") != meta["uid"]:
            raise _CannotAdopt(
                f"original {self._owner_resource.kind} {meta.get('namespace')}/{meta['name']} is gone: "
                f"got uid {fresh_meta.get('uid')}, wanted {meta['uid']}"
            )
        if fresh_meta.get("deletionTimestamp"):
            raise _CannotAdopt(
                f"{meta.get('namespace')}/{meta['name']} has just been deleted at {fresh_meta['deletionTimestamp']}"
            )

    async def _adopt(self, obj: Mapping[str, Any]) -> bool:
        """True once adopted; False when the object is gone."""
        if not self._owner_checked:
            self._owner_checked = True
            try:
                await self._recheck_owner()
            except _CannotAdopt as exc:
                self._cannot_adopt = exc
        if self._cannot_adopt is not None:
            raise self._cannot_adopt
        try:
            await self._patch_owner_references(obj, [controller_ref(self._owner, self._owner_resource)])
        except errors.NotFoundError:
            return False
        return True

    async def _release(self, obj: Mapping[str, Any]) -> None:
        try:
            await self._patch_owner_references(
                obj, [{"$patch": "delete", "uid": self._owner["metadata"]["uid"]}]
            )
        except (errors.NotFoundError, errors.InvalidError):
            # Gone, or recreated under another uid: either way it is not ours to release.
            return

    async def _patch_owner_references(self, obj: Mapping[str, Any], references: list[dict[str, Any]]) -> None:
        """Merge ``references`` into ``obj``'s ownerReferences (a strategic-merge patch keyed by uid),
        on condition that ``obj`` is still the object of that uid."""
        metadata = obj["metadata"]
        await self._client.patch(
            self._resource,
            metadata["name"],
            {"metadata": {"ownerReferences": references, "uid": metadata["uid"]}},
            namespace=metadata.get("namespace") or None,
            patch_type=PatchType.STRATEGIC,
        )


class _CannotAdopt(Exception):
    """The owner is gone or being deleted: adopt nothing."""


# --------------------------------------------------------------------------- expectations

EXPECTATIONS_TIMEOUT = 300.0  # seconds, upstream's ExpectationsTimeout


@dataclass(slots=True)
class _Expectation:
    creations: int
    deletions: int
    deleting: set[str] = field(default_factory=set)
    set_at: float = 0.0


class Expectations:
    """Creations and deletions a controller waits to observe, per controller key.

    Before creating N objects call :meth:`expect_creations` (key, N); before deleting, call
    :meth:`expect_deletions` with the keys (``namespace/name``) of what you delete. Informer
    handlers report what they see (:meth:`creation_observed`, :meth:`deletion_observed`); a
    create or delete that failed must be reported too, since no event will come for it. A sync
    acts only when :meth:`satisfied`: nothing is outstanding, nothing was ever expected, or the
    expectations are older than ``timeout`` (the events were lost; act on the cache again).
    """

    def __init__(self, *, clock: Clock = REAL_CLOCK, timeout: float = EXPECTATIONS_TIMEOUT) -> None:
        self._clock = clock
        self._timeout = timeout
        self._items: dict[str, _Expectation] = {}

    def satisfied(self, key: str) -> bool:
        expectation = self._items.get(key)
        if expectation is None:
            return True
        if expectation.creations <= 0 and expectation.deletions <= 0:
            return True
        return self._clock.now() - expectation.set_at > self._timeout

    def expect_creations(self, key: str, count: int) -> None:
        self._items[key] = _Expectation(creations=count, deletions=0, set_at=self._clock.now())

    def expect_deletions(self, key: str, object_keys: Iterable[str]) -> None:
        deleting = set(object_keys)
        self._items[key] = _Expectation(
            creations=0, deletions=len(deleting), deleting=deleting, set_at=self._clock.now()
        )

    def creation_observed(self, key: str, count: int = 1) -> None:
        expectation = self._items.get(key)
        if expectation is not None:
            expectation.creations -= count

    def deletion_observed(self, key: str, object_key: str) -> None:
        """Count ``object_key`` as deleted, once, and only if its deletion was expected."""
        expectation = self._items.get(key)
        if expectation is not None and object_key in expectation.deleting:
            expectation.deleting.discard(object_key)
            expectation.deletions -= 1

    def forget(self, key: str) -> None:
        """The controller object is gone: drop what was expected for it."""
        self._items.pop(key, None)

    def pending(self, key: str) -> tuple[int, int]:
        """(creations, deletions) still expected; for logs and tests."""
        expectation = self._items.get(key)
        return (0, 0) if expectation is None else (expectation.creations, expectation.deletions)


# --------------------------------------------------------------------------- pods


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 timestamp from an object (``None`` when absent or unreadable)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def format_time(moment: datetime) -> str:
    """A metav1.Time as the API writes it (seconds, UTC, ``Z``)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def is_pod_active(pod: Mapping[str, Any]) -> bool:
    """Not finished (Succeeded/Failed) and not being deleted: it counts toward a replica count."""
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not (pod.get("metadata") or {}).get("deletionTimestamp")


def _ready_condition(pod: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for condition in (pod.get("status") or {}).get("conditions") or ():
        if condition.get("type") == "Ready":
            return condition
    return None


def is_pod_ready(pod: Mapping[str, Any]) -> bool:
    condition = _ready_condition(pod)
    return condition is not None and condition.get("status") == "True"


def pod_ready_since(pod: Mapping[str, Any]) -> datetime | None:
    """When the pod last became Ready, if it is Ready."""
    condition = _ready_condition(pod)
    if condition is None or condition.get("status") != "True":
        return None
    return parse_time(condition.get("lastTransitionTime"))


def is_pod_available(pod: Mapping[str, Any], *, min_ready_seconds: int, now: datetime) -> bool:
    """Ready for longer than ``min_ready_seconds`` (``podutil.IsPodAvailable``)."""
    if not is_pod_ready(pod):
        return False
    if min_ready_seconds == 0:
        return True
    since = pod_ready_since(pod)
    return since is not None and since.timestamp() + min_ready_seconds < now.timestamp()


def pod_from_template(
    template: Mapping[str, Any], *, owner_name: str, controller_ref: Mapping[str, Any] | None
) -> dict[str, Any]:
    """A pod to POST: the template's labels, annotations, finalizers and spec, ``generateName``
    ``<owner_name>-``, and the controller reference (``controller.GetPodFromTemplate``)."""
    template_meta = template.get("metadata") or {}
    metadata: dict[str, Any] = {"generateName": f"{owner_name}-" if len(owner_name) < 253 else owner_name}
    for key in ("labels", "annotations", "finalizers"):
        if template_meta.get(key):
            metadata[key] = orjson.loads(orjson.dumps(template_meta[key]))
    if controller_ref is not None:
        metadata["ownerReferences"] = [dict(controller_ref)]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": orjson.loads(orjson.dumps(template.get("spec") or {})),
    }


def namespace_terminating(exc: BaseException) -> bool:
    """The write failed because its namespace is being deleted (cause ``NamespaceTerminating``)."""
    return isinstance(exc, errors.APIError) and any(
        cause.get("reason") == "NamespaceTerminating" for cause in exc.causes
    )


async def write_status(client: RESTClient, resource: Resource, obj: Mapping[str, Any]) -> None:
    """PUT ``obj``'s status. A 404 (deleted meanwhile) or 409 (changed since it was read: the
    informer has queued the newer version, whose sync writes again) ends the attempt quietly."""
    try:
        await client.replace(resource, obj, subresource="status")
    except (errors.NotFoundError, errors.ConflictError):
        return


def error_text(exc: BaseException) -> str:
    """How an error reads in Events and conditions: the server's message, as Go's ``err.Error()``."""
    if isinstance(exc, errors.APIError) and exc.message:
        return exc.message
    return str(exc)


class PodControl:
    """Creates and deletes pods for a controller, recording upstream's Events on the controller."""

    def __init__(self, *, client: RESTClient, recorder: EventRecorder) -> None:
        self._client = client
        self._recorder = recorder

    async def create_pod(
        self,
        owner: Mapping[str, Any],
        *,
        template: Mapping[str, Any],
        controller_ref: Mapping[str, Any] | None,
        generate_name: str | None = None,
    ) -> dict[str, Any]:
        """Create a pod from ``template`` in the owner's namespace; returns it as created.
        ``generate_name`` replaces the default ``<owner>-`` prefix (``CreatePodsWithGenerateName``).

        Raises ``ValueError`` for a template without labels, the client's errors otherwise
        (after a ``FailedCreate`` event unless the namespace is terminating).
        """
        metadata = owner["metadata"]
        pod = pod_from_template(template, owner_name=metadata["name"], controller_ref=controller_ref)
        if generate_name:
            pod["metadata"]["generateName"] = generate_name
        if not pod["metadata"].get("labels"):
            raise ValueError("unable to create pods, no labels")
        try:
            created = await self._client.create(PODS, pod, namespace=metadata["namespace"])
        except errors.RequestError as exc:
            if not namespace_terminating(exc):
                await self._recorder.event(
                    owner, type="Warning", reason="FailedCreate", message=f"Error creating: {error_text(exc)}"
                )
            raise
        await self._recorder.event(
            owner,
            type="Normal",
            reason="SuccessfulCreate",
            message=f"Created pod: {created['metadata']['name']}",
        )
        return created

    async def delete_pod(self, owner: Mapping[str, Any], *, name: str) -> None:
        """Delete pod ``name`` in the owner's namespace. ``NotFoundError`` passes through without an
        Event; other failures record ``FailedDelete`` and raise."""
        namespace = owner["metadata"]["namespace"]
        try:
            await self._client.delete(PODS, name, namespace=namespace)
        except errors.NotFoundError:
            raise
        except errors.RequestError as exc:
            await self._recorder.event(
                owner, type="Warning", reason="FailedDelete", message=f"Error deleting: {error_text(exc)}"
            )
            raise
        await self._recorder.event(
            owner, type="Normal", reason="SuccessfulDelete", message=f"Deleted pod: {name}"
        )


async def slow_start_batch(
    count: int, *, initial_batch_size: int, create: Callable[[], Awaitable[None]]
) -> tuple[int, Exception | None]:
    """Call ``create`` ``count`` times in concurrent batches of 1, 2, 4...; stop after the first batch
    with a failure (upstream's ``slowStartBatch``). Returns (successes, the first failure or None).

    The calls of a batch start in order, so a ``create`` that takes the next item of an iterator
    before its first ``await`` takes the items in order."""
    remaining = count
    successes = 0
    batch = min(remaining, initial_batch_size)
    while batch > 0:
        results = await asyncio.gather(*(create() for _ in range(batch)), return_exceptions=True)
        failures: list[Exception] = []
        for result in results:
            if isinstance(result, Exception):
                failures.append(result)
            elif isinstance(result, BaseException):
                raise result  # cancellation and the like
        successes += batch - len(failures)
        if failures:
            return successes, failures[0]
        remaining -= batch
        batch = min(2 * batch, remaining)
    return successes, None


# --------------------------------------------------------------------------- template hashing

_FNV32_OFFSET = 0x811C9DC5
_FNV32_PRIME = 0x01000193
_SAFE_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"


def _fnv32a(data: bytes, value: int = _FNV32_OFFSET) -> int:
    for byte in data:
        value = ((value ^ byte) * _FNV32_PRIME) & 0xFFFFFFFF
    return value


def safe_encode(text: str) -> str:
    """``rand.SafeEncodeString``: map each character onto consonants and digits, so the result can
    never spell a word or look like a number."""
    return "".join(_SAFE_ALPHANUMS[ord(char) % len(_SAFE_ALPHANUMS)] for char in text)


def compute_hash(template: Mapping[str, Any], collision_count: int | None = None) -> str:
    """A short, stable name-safe hash of a pod template (``controller.ComputeHash``'s shape; see the
    module doc for how it differs from upstream's value). ``collision_count`` (a Deployment's or
    DaemonSet's ``status.collisionCount``) changes the hash when set."""
    value = _fnv32a(orjson.dumps(template, option=orjson.OPT_SORT_KEYS))
    if collision_count is not None:
        # Upstream writes PutUint32 into an 8-byte buffer and hashes all 8 bytes.
        value = _fnv32a((collision_count & 0xFFFFFFFF).to_bytes(4, "little") + bytes(4), value)
    return safe_encode(str(value))
