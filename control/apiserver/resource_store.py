"""The generic registry store: API semantics for every kind on top of the key-value store.

Upstream's genericregistry.Store, condensed. Every kind goes through the same five
operations, and everything a client can observe about object lifecycles is decided here:
uid, creationTimestamp, generation (bumped on spec changes only), generateName,
resourceVersion (the store's revision), optimistic concurrency, the status subresource
split, finalizers and deletionTimestamp, graceful pod deletion, namespace existence and
termination, and Service address allocation. The HTTP layer only decodes requests and
encodes answers.

Writes are compare-and-swap loops: read the current object, compute the new one, swap on
the read revision; when another writer got there first and the caller did not pin a
resourceVersion, compute again from the fresh object (as upstream's GuaranteedUpdate).
"""

from __future__ import annotations

import copy
import functools
import os
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from control.apiserver import errors
from control.apiserver.admission import CREATE, DELETE, UPDATE, AdmissionChain, AdmissionRequest
from control.apiserver.allocators import AllocationError, ClusterIPAllocator, NodePortAllocator
from control.apiserver.authn import UserInfo
from control.apiserver.codec import decode
from control.apiserver.conversion import decoded, for_storage, read_object, storage_bytes
from control.apiserver.namespace_cache import NamespaceCache
from control.resources import certificates, defaults, validation
from control.resources.registry import Registry, ResourceType, field_error
from control.store import KeyExistsError, KeyValue, Store, SwapResult

MAX_OBJECT_BYTES = 1_572_864  # etcd's default request limit, as upstream's 1.5 MiB
_CAS_ATTEMPTS = 16
_GENERATE_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # upstream's utilrand alphabet
# Kinds whose DELETE answers with the deleted object rather than a Success Status: upstream's
# registries with ReturnDeletedObject (the Python client types these deletes as the object and
# cannot read a Status as, say, a V1StorageClass), plus the Namespace, whose REST returns it.
_RETURNS_DELETED_OBJECT = frozenset(
    {
        ("", "Pod"),
        ("", "PodTemplate"),
        ("", "Service"),
        ("", "ServiceAccount"),
        ("", "ResourceQuota"),
        ("", "PersistentVolume"),
        ("", "PersistentVolumeClaim"),
        ("", "Namespace"),
        ("storage.k8s.io", "StorageClass"),
    }
)
# Kinds whose DELETE without a propagationPolicy orphans the dependents (upstream's strategies
# whose DefaultGarbageCollectionPolicy is OrphanDependents: v1 ReplicationControllers, for
# backwards compatibility); every other kind's dependents are collected in the background.
_ORPHANS_BY_DEFAULT = frozenset({("", "ReplicationController")})
# Status fields upstream's types have without omitempty, so every answer carries them, zero-valued
# until a controller writes them (an empty struct for loadBalancer). Typed clients rely on them:
# the Python client refuses a ReplicaSetStatus without replicas or a DaemonSetStatus without its
# four counters. The HorizontalPodAutoscaler's differ by version and are set in _initial_status.
_ALWAYS_SERIALIZED_STATUS: dict[tuple[str, str], dict[str, Any]] = {
    ("", "ReplicationController"): {"replicas": 0},
    ("apps", "ReplicaSet"): {"replicas": 0},
    ("apps", "StatefulSet"): {"replicas": 0, "availableReplicas": 0},
    ("apps", "DaemonSet"): {
        "currentNumberScheduled": 0,
        "numberMisscheduled": 0,
        "desiredNumberScheduled": 0,
        "numberReady": 0,
    },
    ("policy", "PodDisruptionBudget"): {
        "disruptionsAllowed": 0,
        "currentHealthy": 0,
        "desiredHealthy": 0,
        "expectedPods": 0,
    },
    ("", "Service"): {"loadBalancer": {}},
    ("networking.k8s.io", "Ingress"): {"loadBalancer": {}},
}
_SYSTEM_FIELDS_KEPT_ON_UPDATE = (
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
)

Clock = Callable[[], datetime]
Transform = Callable[[dict[str, Any]], dict[str, Any] | Awaitable[dict[str, Any]]]


def _dry_run_answer(rt: ResourceType, obj: dict[str, Any], value: bytes) -> dict[str, Any]:
    """What a dry run answers: the object as the real write would read it back. A kind stored in
    another version is converted from the bytes it would store (defaults of the stored version
    included), as upstream's dry run returns the object the storage layer would have."""
    if rt.stored_as is None:
        return obj
    answer = rt.stored_as.from_storage(orjson.loads(value))
    if "resourceVersion" in obj["metadata"]:  # an update's; a create's answer has none, as upstream
        answer.setdefault("metadata", {})["resourceVersion"] = obj["metadata"]["resourceVersion"]
    return answer


def rfc3339(moment: datetime) -> str:
    return _rfc3339_second(int(moment.timestamp()))


@functools.lru_cache(maxsize=64)
def _rfc3339_second(epoch_second: int) -> str:
    """Cached per second: a burst of writes stamps the same few seconds over and over."""
    return datetime.fromtimestamp(epoch_second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# uids and generateName suffixes come from one PRNG seeded by the OS: drawing 16 fresh
# bytes from the kernel per create costs a syscall (and the GIL) on every write.
_RANDOM = random.Random(os.urandom(32))

_GENERATE_NAME_ATTEMPTS = 8
"""Creates with generateName try this many names before AlreadyExists (upstream's limit)."""


def _generated_name(prefix: object) -> str:
    return str(prefix) + "".join(_RANDOM.choices(_GENERATE_NAME_ALPHABET, k=5))


def _new_uid() -> str:
    return str(uuid.UUID(int=_RANDOM.getrandbits(128), version=4))


@dataclass(frozen=True, kw_only=True)
class DeleteOptions:
    propagation_policy: str = ""  # Orphan | Background | Foreground | "" (kind default)
    grace_period_seconds: int | None = None
    precondition_uid: str = ""
    precondition_resource_version: str = ""
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class DeleteOutcome:
    obj: dict[str, Any]
    deleted: bool  # False: deletion is pending (finalizers, graceful pod termination)
    return_object: bool  # answer with the object rather than a Success Status


class ResourceStore:
    def __init__(
        self,
        *,
        store: Store,
        registry: Registry,
        cluster_ips: ClusterIPAllocator,
        node_ports: NodePortAllocator,
        clock: Clock = lambda: datetime.now(UTC),
        default_toleration_seconds: int = 300,
        admission: AdmissionChain | None = None,
    ) -> None:
        self.store = store
        self.admission = admission or AdmissionChain()
        self.default_toleration_seconds = default_toleration_seconds
        self.registry = registry
        self.cluster_ips = cluster_ips
        self.node_ports = node_ports
        self.clock = clock
        self._namespaces = registry.lookup(group="", version="v1", plural="namespaces")
        self.namespace_cache = (
            NamespaceCache(store=store, prefix=self._namespaces.storage_prefix) if self._namespaces else None
        )

    # ----------------------------------------------------------------- keys
    @staticmethod
    def key(rt: ResourceType, *, namespace: str, name: str) -> str:
        if rt.namespaced:
            return f"{rt.storage_prefix}{namespace}/{name}"
        return f"{rt.storage_prefix}{name}"

    @staticmethod
    def prefix(rt: ResourceType, *, namespace: str) -> str:
        if rt.namespaced and namespace:
            return f"{rt.storage_prefix}{namespace}/"
        return rt.storage_prefix

    # ----------------------------------------------------------------- reads
    async def get_kv(self, rt: ResourceType, *, namespace: str, name: str) -> KeyValue:
        kv = await self.store.get(self.key(rt, namespace=namespace, name=name))
        if kv is None:
            raise errors.not_found(rt, name)
        return kv

    async def get(self, rt: ResourceType, *, namespace: str, name: str) -> dict[str, Any]:
        kv = await self.get_kv(rt, namespace=namespace, name=name)
        return decoded(rt, kv) if rt.conversion is None else await read_object(rt, kv)

    async def seed_allocators(self) -> None:
        """Mark the addresses and ports of stored Services as used."""
        services = self.registry.lookup(group="", version="v1", plural="services")
        if services is None:
            return
        listing = await self.store.list(services.storage_prefix)
        for kv in listing.items:
            svc = decode(kv)
            self.cluster_ips.seed(_cluster_ips(svc))
            self.node_ports.seed(_node_ports(svc))

    # ----------------------------------------------------------------- create
    async def create(
        self,
        rt: ResourceType,
        obj: dict[str, Any],
        *,
        namespace: str,
        dry_run: bool = False,
        user: UserInfo | None = None,
    ) -> dict[str, Any]:
        """Store a new object. With ``user``, the write is admitted (see ``control.apiserver.admission``)."""
        metadata = obj.setdefault("metadata", {})
        if not isinstance(metadata, dict):
            raise errors.bad_request("metadata must be an object")
        self._check_namespace_of_body(rt, metadata, namespace)
        generated = not metadata.get("name") and bool(metadata.get("generateName"))
        if generated:
            metadata["name"] = _generated_name(metadata["generateName"])
        name = str(metadata.get("name") or "")
        if not name:
            raise errors.invalid(
                rt,
                "",
                [field_error("FieldValueRequired", "metadata.name", "name or generateName is required")],
            )
        if rt.namespaced:
            await self._check_namespace_accepts_content(namespace)
        now = self.clock()
        metadata["uid"] = _new_uid()
        metadata["creationTimestamp"] = rfc3339(now)
        for dropped in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
            metadata.pop(dropped, None)
        if "spec" in obj or rt.kind in (
            "Pod",
            "PodTemplate",
            "Deployment",
            "ReplicaSet",
            "DaemonSet",
            "StatefulSet",
            "Job",
        ):
            metadata["generation"] = 1
        else:
            metadata.pop("generation", None)
        defaults.apply_defaults(rt, obj)
        if not rt.group and rt.kind == "Pod":
            _add_default_tolerations(obj, seconds=self.default_toleration_seconds)
        admitting = None
        if user is not None:
            admitting = AdmissionRequest(
                operation=CREATE,
                rt=rt,
                namespace=namespace,
                name=name,
                subresource="",
                user=user,
                obj=obj,
                old=None,
                dry_run=dry_run,
            )
            await self.admission.mutate(admitting)
        # After mutating admission, as upstream's PrepareForCreate: a pod's QoS class sees the
        # requests and limits LimitRanger filled in.
        if rt.has_status and rt.schema is not None:
            obj.pop("status", None)  # a custom resource: create cannot set status (upstream drops it)
        elif rt.has_status:
            obj["status"] = _initial_status(rt, obj)
        problems = validation.validate(rt, obj)
        if problems:
            raise errors.invalid(rt, name, problems)
        if admitting is not None:
            await self.admission.validate(admitting)
        allocated = (
            self._allocate_service(rt, obj, old=None, dry_run=dry_run) if rt.kind == "Service" else None
        )
        try:
            value = for_storage(rt, obj) if rt.conversion is None else await storage_bytes(rt, obj)
            _check_size(value)
            if dry_run:
                # As upstream's DryRunnableStorage.Create: nothing is written, but a name that is
                # taken is refused (a generated one generated again) as the real create does.
                for attempt in range(1, _GENERATE_NAME_ATTEMPTS + 1):
                    if await self.store.get(self.key(rt, namespace=namespace, name=name)) is None:
                        break
                    if not generated or attempt == _GENERATE_NAME_ATTEMPTS:
                        raise errors.already_exists(rt, name)
                    name = obj["metadata"]["name"] = _generated_name(obj["metadata"]["generateName"])
                # No resourceVersion: nothing was stored (upstream's answer omits the field).
                return _dry_run_answer(rt, obj, value)
            for attempt in range(1, _GENERATE_NAME_ATTEMPTS + 1):
                try:
                    kv = await self.store.create(self.key(rt, namespace=namespace, name=name), value)
                    break
                except KeyExistsError:
                    if not generated or attempt == _GENERATE_NAME_ATTEMPTS:
                        raise errors.already_exists(rt, name) from None
                # The generated name was taken: another one, as upstream's RetryGenerateName.
                name = obj["metadata"]["name"] = _generated_name(obj["metadata"]["generateName"])
                value = await storage_bytes(rt, obj)
        except BaseException:
            if allocated is not None:
                allocated.release()
            raise
        return decoded(rt, kv) if rt.conversion is None else await read_object(rt, kv)

    def _check_namespace_of_body(self, rt: ResourceType, metadata: dict[str, Any], namespace: str) -> None:
        if not rt.namespaced:
            metadata.pop("namespace", None)
            return
        body_namespace = metadata.get("namespace") or ""
        if body_namespace and body_namespace != namespace:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        metadata["namespace"] = namespace

    async def _check_namespace_accepts_content(self, namespace: str) -> None:
        if self._namespaces is None or (self.namespace_cache and self.namespace_cache.is_active(namespace)):
            return
        kv = await self.store.get(self.key(self._namespaces, namespace=namespace, name=namespace))
        if kv is None:
            raise errors.not_found(self._namespaces, namespace)
        ns = decode(kv)
        if ns["metadata"].get("deletionTimestamp") or (ns.get("status") or {}).get("phase") == "Terminating":
            raise errors.StatusError(
                code=403,
                reason="Forbidden",
                message=f"unable to create new content in namespace {namespace} because it is being terminated",
                details={
                    "causes": [
                        {
                            "reason": "NamespaceTerminating",
                            "message": f"namespace {namespace} is being terminated",
                            "field": "metadata.namespace",
                        }
                    ]
                },
            )

    # ----------------------------------------------------------------- update
    async def update(
        self,
        rt: ResourceType,
        *,
        namespace: str,
        name: str,
        transform: Transform,
        subresource: str = "",
        dry_run: bool = False,
        user: UserInfo | None = None,
    ) -> dict[str, Any]:
        """Apply ``transform`` to the current object and store the result (admitted, with ``user``).

        ``transform`` gets a private copy of the current object, resourceVersion included
        (a JSON patch may ``test`` it, as kopf's do), and returns the desired object; a
        resourceVersion in that result other than the current one (from the request) fails
        as a conflict, so a patch that sets one pins the version and one that keeps it does not.
        ``subresource`` "" updates everything but status (for kinds with a status
        subresource); "status" updates only status.
        """
        while True:  # as GuaranteedUpdate: recompute until the swap lands (or a pinned version fails)
            kv = await self.get_kv(rt, namespace=namespace, name=name)
            old = decoded(rt, kv) if rt.conversion is None else await read_object(rt, kv)
            current = _private_copy(rt, kv, old)  # what the transform may change
            desired = transform(current)
            if isinstance(desired, Awaitable):
                desired = await desired
            if not isinstance(desired, dict) or not isinstance(desired.get("metadata", {}), dict):
                raise errors.bad_request("the body of the request must be an object")
            desired_metadata = desired.setdefault("metadata", {})
            pinned = str(desired_metadata.get("resourceVersion") or "")
            if pinned and pinned != str(kv.mod_revision):
                raise errors.conflict(rt, name)
            uid = desired_metadata.get("uid")
            if uid and uid != old["metadata"].get("uid"):
                raise errors.conflict(
                    rt,
                    name,
                    f"Precondition failed: UID in precondition: {uid}, UID in object meta: "
                    f"{old['metadata'].get('uid')}",
                )
            new = self._prepare_update(rt, desired, old, kv=kv, subresource=subresource)
            if user is not None:
                admitting = AdmissionRequest(
                    operation=UPDATE,
                    rt=rt,
                    namespace=namespace,
                    name=name,
                    subresource=subresource,
                    user=user,
                    obj=new,
                    old=old,
                    dry_run=dry_run,
                )
                await self.admission.mutate(admitting)
                await self.admission.validate(admitting)
            if new == old:
                return old  # a no-op update writes nothing, as upstream
            if _finalized(new):
                deleted = await self._delete_now(rt, kv=kv, obj=new, namespace=namespace, dry_run=dry_run)
                if deleted is None:
                    continue
                # Answer with the final state (no finalizers), at the deletion's revision.
                new["metadata"]["resourceVersion"] = deleted["metadata"].get("resourceVersion")
                return new
            allocated = None
            if rt.kind == "Service" and subresource == "":
                allocated = self._allocate_service(rt, new, old=old, dry_run=dry_run)
            value = for_storage(rt, new) if rt.conversion is None else await storage_bytes(rt, new)
            try:
                _check_size(value)
                if dry_run:
                    return _dry_run_answer(rt, new, value)
                result = await self.store.update(
                    self.key(rt, namespace=namespace, name=name), value, expected_revision=kv.mod_revision
                )
            except BaseException:
                if allocated is not None:
                    allocated.release()
                raise
            if result.succeeded:
                self._written(rt, name)
                if allocated is not None:
                    allocated.commit()
                assert result.kv is not None
                return decoded(rt, result.kv) if rt.conversion is None else await read_object(rt, result.kv)
            if allocated is not None:
                allocated.release()
            if result.kv is None:
                raise errors.not_found(rt, name)
            # Lost the race: recompute from the fresh object. A version the request pinned (a PUT
            # body's, one a patch sets) is older than that object now and fails above; one the
            # transform merely kept from the object it was given matches it again.

    def _prepare_update(
        self,
        rt: ResourceType,
        desired: dict[str, Any],
        old: dict[str, Any],
        *,
        kv: KeyValue,
        subresource: str,
    ) -> dict[str, Any]:
        """The object to store: ``desired`` for what the request may change, ``old`` (stored as
        ``kv``, decoded again for each private copy) for everything else."""
        name = old["metadata"]["name"]
        desired_metadata = desired["metadata"]
        if desired_metadata.get("name") not in (None, "", name):
            raise errors.bad_request(
                f"the name of the object ({desired_metadata.get('name')}) does not match the name on the URL ({name})"
            )
        if rt.namespaced and desired_metadata.get("namespace") not in (
            None,
            "",
            old["metadata"].get("namespace"),
        ):
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        body_api_version = desired.get("apiVersion")
        if body_api_version and body_api_version != rt.api_version:
            raise errors.bad_request(
                f"the API version in the data ({body_api_version}) does not match the expected API version "
                f"({rt.api_version})"
            )
        if subresource == "status" and _is_csr(rt):  # CSR status: conditions stamped, approval kept
            new = certificates.status_update(desired, _private_copy(rt, kv, old), now=rfc3339(self.clock()))
        elif subresource == "status":
            new = _private_copy(rt, kv, old)
            new["status"] = desired.get("status") if desired.get("status") is not None else {}
            _fill_always_serialized_status(rt, new["status"])
        elif subresource == "approval":  # certificatesigningrequests/<name>/approval: only conditions
            new = certificates.approval_update(desired, _private_copy(rt, kv, old), now=rfc3339(self.clock()))
        elif subresource == "binding":  # pods/binding: spec.nodeName once, and PodScheduled=True
            new = _private_copy(rt, kv, old)
            new.setdefault("spec", {})["nodeName"] = (desired.get("spec") or {}).get("nodeName")
            _set_pod_scheduled(new, now=rfc3339(self.clock()))
        elif subresource == "ephemeralcontainers":  # pods/ephemeralcontainers: only those
            new = _private_copy(rt, kv, old)
            new.setdefault("spec", {})["ephemeralContainers"] = copy.deepcopy(
                (desired.get("spec") or {}).get("ephemeralContainers") or []
            )
        elif subresource == "finalize":  # namespaces/<name>/finalize: only spec.finalizers
            new = _private_copy(rt, kv, old)
            new.setdefault("spec", {})["finalizers"] = list(
                (desired.get("spec") or {}).get("finalizers") or []
            )
        else:
            new = desired
            new["apiVersion"] = rt.api_version
            new["kind"] = rt.kind
            if rt.has_status:
                if "status" in old:
                    new["status"] = _private_copy(rt, kv, old)["status"]
                else:
                    new.pop("status", None)
            if _is_crd(rt):
                _record_storage_version(new)
        new_metadata = new["metadata"]
        old_metadata = old["metadata"]
        new_metadata["name"] = name
        if rt.namespaced:
            new_metadata["namespace"] = old_metadata.get("namespace")
        for kept in _SYSTEM_FIELDS_KEPT_ON_UPDATE:
            if kept in old_metadata:
                new_metadata[kept] = old_metadata[kept]
            else:
                new_metadata.pop(kept, None)
        new_metadata.pop("selfLink", None)
        new_metadata["resourceVersion"] = old_metadata.get("resourceVersion")
        if "generation" in old_metadata:
            new_metadata["generation"] = old_metadata["generation"]
            if _spec_changed(new, old):
                new_metadata["generation"] = int(old_metadata["generation"]) + 1
        else:
            new_metadata.pop("generation", None)
        if subresource == "status":
            problems = validation.validate_status_update(rt, new, old=old)
        elif subresource == "approval":
            problems = validation.validate_approval_update(new, old=old)
        elif subresource == "binding":
            problems = []
        elif subresource == "ephemeralcontainers":
            defaults.apply_defaults(rt, new, old=old)
            problems = validation.validate_ephemeral_containers_update(new, old)
        else:
            defaults.apply_defaults(rt, new, old=old)
            problems = validation.validate(rt, new, old=old)
        if problems:
            raise errors.invalid(rt, name, problems)
        return new

    # ----------------------------------------------------------------- delete
    async def delete(
        self,
        rt: ResourceType,
        *,
        namespace: str,
        name: str,
        options: DeleteOptions,
        user: UserInfo | None = None,
    ) -> DeleteOutcome:
        """Delete now or mark for deletion (finalizers, graceful pod termination); admitted with ``user``."""
        for _ in range(_CAS_ATTEMPTS):
            kv = await self.get_kv(rt, namespace=namespace, name=name)
            obj = decoded(rt, kv) if rt.conversion is None else await read_object(rt, kv)
            metadata = obj["metadata"]
            if user is not None:
                await self.admission.validate(
                    AdmissionRequest(
                        operation=DELETE,
                        rt=rt,
                        namespace=namespace,
                        name=name,
                        subresource="",
                        user=user,
                        obj=None,
                        old=obj,
                        dry_run=options.dry_run,
                    )
                )
            if options.precondition_uid and options.precondition_uid != metadata.get("uid"):
                raise errors.conflict(
                    rt,
                    name,
                    f"Precondition failed: UID in precondition: {options.precondition_uid}, "
                    f"UID in object meta: {metadata.get('uid')}",
                )
            if options.precondition_resource_version and options.precondition_resource_version != str(
                kv.mod_revision
            ):
                raise errors.conflict(
                    rt,
                    name,
                    f"Precondition failed: ResourceVersion in precondition: "
                    f"{options.precondition_resource_version}, ResourceVersion in object meta: {kv.mod_revision}",
                )
            pending = self._pending_deletion(rt, obj, options)
            if pending is None:
                outcome = await self._delete_now(
                    rt, kv=kv, obj=obj, namespace=namespace, dry_run=options.dry_run
                )
                if outcome is None:
                    continue
                return DeleteOutcome(
                    obj=outcome, deleted=True, return_object=(rt.group, rt.kind) in _RETURNS_DELETED_OBJECT
                )
            if pending == obj or options.dry_run:
                return DeleteOutcome(obj=pending, deleted=False, return_object=True)
            result = await self.store.update(
                self.key(rt, namespace=namespace, name=name),
                for_storage(rt, pending) if rt.conversion is None else await storage_bytes(rt, pending),
                expected_revision=kv.mod_revision,
            )
            if result.succeeded:
                self._written(rt, name)
                assert result.kv is not None
                return DeleteOutcome(
                    obj=(
                        decoded(rt, result.kv) if rt.conversion is None else await read_object(rt, result.kv)
                    ),
                    deleted=False,
                    return_object=True,
                )
            if result.kv is None:
                raise errors.not_found(rt, name)
        raise errors.conflict(rt, name)

    def _pending_deletion(
        self, rt: ResourceType, obj: dict[str, Any], options: DeleteOptions
    ) -> dict[str, Any] | None:
        """The object marked for deletion, or None when it can go right away."""
        pending = copy.deepcopy(obj)
        metadata = pending["metadata"]
        finalizers = list(metadata.get("finalizers") or [])
        policy = options.propagation_policy
        if (
            not policy
            and (rt.group, rt.kind) in _ORPHANS_BY_DEFAULT
            and "foregroundDeletion" not in finalizers
        ):
            policy = (
                "Orphan"  # the kind's default (a foregroundDeletion finalizer already set wins, as upstream)
            )
        if policy == "Orphan":
            finalizers = [f for f in finalizers if f != "foregroundDeletion"]
            if "orphan" not in finalizers:
                finalizers.append("orphan")
        elif policy == "Foreground":
            finalizers = [f for f in finalizers if f != "orphan"]
            if "foregroundDeletion" not in finalizers:
                finalizers.append("foregroundDeletion")
        elif policy == "Background":
            finalizers = [f for f in finalizers if f not in ("orphan", "foregroundDeletion")]
        now = self.clock()
        grace = self._grace_period(rt, obj, options)
        namespace_finalizers = (
            list((pending.get("spec") or {}).get("finalizers") or [])
            if rt.kind == "Namespace" and not rt.group
            else []
        )
        if not finalizers and not namespace_finalizers and grace == 0:
            return None
        if finalizers:
            metadata["finalizers"] = finalizers
        else:
            metadata.pop("finalizers", None)
        if metadata.get("deletionTimestamp"):
            # Already terminating: a shorter grace period may move the deadline closer.
            current = metadata.get("deletionGracePeriodSeconds")
            if current is not None and grace < int(current):
                metadata["deletionGracePeriodSeconds"] = grace
                metadata["deletionTimestamp"] = rfc3339(now + timedelta(seconds=grace))
            if grace == 0 and not finalizers and not namespace_finalizers:
                return None
            return pending
        metadata["deletionTimestamp"] = rfc3339(now + timedelta(seconds=grace))
        metadata["deletionGracePeriodSeconds"] = grace
        if "generation" in metadata:
            metadata["generation"] = int(metadata["generation"]) + 1
        if namespace_finalizers:
            pending.setdefault("status", {})["phase"] = "Terminating"
        return pending

    @staticmethod
    def _grace_period(rt: ResourceType, obj: dict[str, Any], options: DeleteOptions) -> int:
        """Only Pods bound to a node terminate gracefully; everything else goes at once."""
        if rt.group or rt.kind != "Pod":
            return 0
        spec = obj.get("spec") or {}
        if not spec.get("nodeName"):
            return 0
        phase = (obj.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed"):
            return 0
        if options.grace_period_seconds is not None:
            return max(0, int(options.grace_period_seconds))
        return int(spec.get("terminationGracePeriodSeconds", 30) or 0)

    async def _delete_now(
        self, rt: ResourceType, *, kv: KeyValue, obj: dict[str, Any], namespace: str, dry_run: bool
    ) -> dict[str, Any] | None:
        """Remove the key; None when it changed meanwhile (the caller retries)."""
        if dry_run:
            return obj
        name = obj["metadata"]["name"]
        result: SwapResult = await self.store.delete(
            self.key(rt, namespace=namespace, name=name), expected_revision=kv.mod_revision
        )
        if not result.succeeded:
            if result.kv is None:
                raise errors.not_found(rt, name)
            return None
        self._written(rt, name)
        if rt.kind == "Service" and not rt.group:
            for ip in _cluster_ips(obj):
                self.cluster_ips.release(ip)
            for port in _node_ports(obj):
                self.node_ports.release(port)
        assert result.kv is not None
        deleted = decoded(rt, result.kv) if rt.conversion is None else await read_object(rt, result.kv)
        return deleted

    def _written(self, rt: ResourceType, name: str) -> None:
        if rt is self._namespaces and self.namespace_cache is not None:
            self.namespace_cache.forget(name)

    # ----------------------------------------------------------------- services
    def _allocate_service(
        self, rt: ResourceType, svc: dict[str, Any], *, old: dict[str, Any] | None, dry_run: bool
    ) -> _Allocation:
        """Fill spec.clusterIP(s) and nodePorts; raise 422 naming the field when taken."""
        spec = svc.setdefault("spec", {})
        allocation = _Allocation(self.cluster_ips, self.node_ports)
        old_ips = set(_cluster_ips(old)) if old else set()
        old_ports = set(_node_ports(old)) if old else set()
        name = svc["metadata"]["name"]
        svc_type = spec.get("type", "ClusterIP")
        try:
            if svc_type == "ExternalName":
                spec.pop("clusterIP", None)
                spec.pop("clusterIPs", None)
            else:
                ip = spec.get("clusterIP") or ""
                if ip == "None":
                    spec["clusterIPs"] = ["None"]
                elif ip:
                    if ip not in old_ips:
                        allocation.reserve_ip(ip)
                    spec["clusterIPs"] = [ip]
                else:
                    ip = allocation.allocate_ip()
                    spec["clusterIP"] = ip
                    spec["clusterIPs"] = [ip]
            for index, port in enumerate(spec.get("ports") or []):
                if not isinstance(port, dict):
                    continue
                wants_node_port = svc_type in ("NodePort", "LoadBalancer")
                node_port = port.get("nodePort")
                if not wants_node_port:
                    if node_port:
                        raise AllocationError(f"may not be used when `type` is '{svc_type}'@{index}")
                    continue
                if node_port:
                    if node_port not in old_ports:
                        allocation.reserve_port(int(node_port), index)
                else:
                    port["nodePort"] = allocation.allocate_port()
        except _FieldAllocationError as exc:
            allocation.release()
            raise errors.invalid(
                rt, name, [field_error("FieldValueInvalid", exc.field, exc.detail, value=exc.value)]
            ) from exc
        except AllocationError as exc:
            allocation.release()
            detail, _, index = str(exc).partition("@")
            field = f"spec.ports[{index}].nodePort" if index else "spec.clusterIPs"
            raise errors.invalid(rt, name, [field_error("FieldValueInvalid", field, detail)]) from exc
        if dry_run:
            allocation.release()
        # Addresses the old object had and the new one dropped are released on success.
        allocation.on_commit_release(old_ips - set(_cluster_ips(svc)), old_ports - set(_node_ports(svc)))
        return allocation


class _FieldAllocationError(Exception):
    def __init__(self, *, field: str, detail: str, value: Any) -> None:
        super().__init__(detail)
        self.field = field
        self.detail = detail
        self.value = value


class _Allocation:
    """What one write reserved, so it can be undone if the write fails."""

    def __init__(self, ips: ClusterIPAllocator, ports: NodePortAllocator) -> None:
        self._ips = ips
        self._ports = ports
        self._reserved_ips: list[str] = []
        self._reserved_ports: list[int] = []
        self._release_ips: set[str] = set()
        self._release_ports: set[int] = set()

    def reserve_ip(self, ip: str) -> None:
        try:
            self._ips.reserve(ip)
        except AllocationError as exc:
            raise _FieldAllocationError(field="spec.clusterIPs", detail=str(exc), value=ip) from exc
        self._reserved_ips.append(ip)

    def allocate_ip(self) -> str:
        ip = self._ips.allocate()
        self._reserved_ips.append(ip)
        return ip

    def reserve_port(self, port: int, index: int) -> None:
        try:
            self._ports.reserve(port)
        except AllocationError as exc:
            raise _FieldAllocationError(
                field=f"spec.ports[{index}].nodePort", detail=str(exc), value=port
            ) from exc
        self._reserved_ports.append(port)

    def allocate_port(self) -> int:
        port = self._ports.allocate()
        self._reserved_ports.append(port)
        return port

    def on_commit_release(self, ips: set[str], ports: set[int]) -> None:
        self._release_ips = ips
        self._release_ports = ports

    def commit(self) -> None:
        for ip in self._release_ips:
            self._ips.release(ip)
        for port in self._release_ports:
            self._ports.release(port)

    def release(self) -> None:
        for ip in self._reserved_ips:
            self._ips.release(ip)
        for port in self._reserved_ports:
            self._ports.release(port)
        self._reserved_ips.clear()
        self._reserved_ports.clear()


def _private_copy(rt: ResourceType, kv: KeyValue, old: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``old`` (the object stored as ``kv``) the caller may change: decoded again,
    which is cheaper than a deep copy, unless reading it needed a converter."""
    return decoded(rt, kv) if rt.conversion is None else copy.deepcopy(old)


def _cluster_ips(svc: dict[str, Any] | None) -> list[str]:
    if not svc:
        return []
    spec = svc.get("spec") or {}
    ips = list(spec.get("clusterIPs") or [])
    if spec.get("clusterIP") and spec["clusterIP"] not in ips:
        ips.append(spec["clusterIP"])
    return [ip for ip in ips if ip and ip != "None"]


def _node_ports(svc: dict[str, Any] | None) -> list[int]:
    if not svc:
        return []
    return [
        int(port["nodePort"])
        for port in (svc.get("spec") or {}).get("ports") or []
        if isinstance(port, dict) and port.get("nodePort")
    ]


_DEFAULT_TOLERATION_KEYS = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")


def _add_default_tolerations(pod: dict[str, Any], *, seconds: int) -> None:
    """Upstream's DefaultTolerationSeconds admission: a pod tolerates a not-ready or
    unreachable node for ``seconds`` unless it says otherwise."""
    spec = pod.setdefault("spec", {})
    tolerations = spec.get("tolerations")
    if not isinstance(tolerations, list):
        tolerations = spec["tolerations"] = []
    for key in _DEFAULT_TOLERATION_KEYS:
        covered = any(
            isinstance(t, dict)
            and t.get("key") in (key, None, "")
            and t.get("effect") in ("NoExecute", None, "")
            and (t.get("key") or t.get("operator") == "Exists")
            for t in tolerations
        )
        if not covered:
            tolerations.append(
                {"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": seconds}
            )


def _set_pod_scheduled(pod: dict[str, Any], *, now: str) -> None:
    """Upstream's binding sets the PodScheduled condition to True (replacing an
    Unschedulable one the scheduler may have written)."""
    conditions = pod.setdefault("status", {}).setdefault("conditions", [])
    for condition in conditions:
        if condition.get("type") == "PodScheduled":
            if condition.get("status") != "True":
                condition.clear()
                condition.update({"type": "PodScheduled", "status": "True", "lastTransitionTime": now})
            return
    conditions.append({"type": "PodScheduled", "status": "True", "lastTransitionTime": now})


def _is_csr(rt: ResourceType) -> bool:
    return rt.group == certificates.GROUP and rt.kind == "CertificateSigningRequest"


def _is_crd(rt: ResourceType) -> bool:
    return rt.group == "apiextensions.k8s.io" and rt.kind == "CustomResourceDefinition"


def _record_storage_version(crd: dict[str, Any]) -> None:
    """On a CRD's update, its storage version joins ``status.storedVersions`` unless it is there
    (upstream's PrepareForUpdate). Earlier versions stay listed until someone removes them from
    the status, after migrating the objects stored in them."""
    versions = (crd.get("spec") or {}).get("versions") or []
    storage = next((v.get("name") for v in versions if isinstance(v, dict) and v.get("storage")), None)
    if storage is None:
        return  # validation reports it
    stored = crd.setdefault("status", {}).setdefault("storedVersions", [])
    if storage not in stored:
        stored.append(storage)


def _initial_status(rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    if not rt.group and rt.kind == "Pod":
        return {"phase": "Pending", "qosClass": _qos_class(obj.get("spec") or {})}
    if not rt.group and rt.kind == "Namespace":
        return {"phase": "Active"}
    if not rt.group and rt.kind in ("PersistentVolume", "PersistentVolumeClaim"):
        return {"phase": "Pending"}  # the PV controller moves them on (Available, Bound)
    if _is_crd(rt):
        versions = (obj.get("spec") or {}).get("versions") or []
        return {
            "storedVersions": [v.get("name") for v in versions if isinstance(v, dict) and v.get("storage")]
        }
    if not rt.group and rt.kind == "Node":
        return copy.deepcopy(obj.get("status") or {})  # kubelets register with their status
    if rt.group == "autoscaling" and rt.kind == "HorizontalPodAutoscaler":
        # autoscaling/v2's status has two fields without omitempty: a new HPA reads
        # {"currentMetrics": null, "desiredReplicas": 0}, and clients that require
        # desiredReplicas (the Python client's V2HorizontalPodAutoscalerStatus) rely on it.
        return {"currentMetrics": None, "desiredReplicas": 0}
    status: dict[str, Any] = {}
    _fill_always_serialized_status(rt, status)
    return status


def _fill_always_serialized_status(rt: ResourceType, status: Any) -> None:
    """Give ``status`` the fields upstream always serializes that it lacks (or holds as null, which
    decodes to the zero value upstream); a status that is not an object is left to validation."""
    if not isinstance(status, dict):
        return
    for key, zero in _ALWAYS_SERIALIZED_STATUS.get((rt.group, rt.kind), {}).items():
        if status.get(key) is None:
            status[key] = copy.deepcopy(zero)


def _qos_class(spec: dict[str, Any]) -> str:
    """Guaranteed / Burstable / BestEffort, as upstream's GetPodQOS (cpu and memory only)."""
    containers = list(spec.get("containers") or []) + list(spec.get("initContainers") or [])
    any_set = False
    guaranteed = True
    for container in containers:
        resources = (container or {}).get("resources") or {}
        requests = resources.get("requests") or {}
        limits = resources.get("limits") or {}
        for resource in ("cpu", "memory"):
            if resource in requests or resource in limits:
                any_set = True
            if resource not in limits or (
                resource in requests and str(requests[resource]) != str(limits[resource])
            ):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def _spec_changed(new: dict[str, Any], old: dict[str, Any]) -> bool:
    """Anything but metadata and status changed (upstream bumps generation on spec changes)."""
    ignored = ("metadata", "status", "apiVersion", "kind")
    return {k: v for k, v in new.items() if k not in ignored} != {
        k: v for k, v in old.items() if k not in ignored
    }


def _finalized(obj: dict[str, Any]) -> bool:
    """Terminating, no finalizers left and no grace period running: delete for real."""
    metadata = obj["metadata"]
    if not metadata.get("deletionTimestamp") or metadata.get("finalizers"):
        return False
    if obj.get("kind") == "Namespace" and ((obj.get("spec") or {}).get("finalizers")):
        return False
    return not metadata.get("deletionGracePeriodSeconds")


def _check_size(value: bytes) -> None:
    if len(value) > MAX_OBJECT_BYTES:
        raise errors.entity_too_large(MAX_OBJECT_BYTES)
