"""Local APIServices: one ``apiregistration.k8s.io/v1`` APIService per group/version this
server serves itself, kept as kube-aggregator's controllers keep them.

Three upstream controllers in one follower of the store:

- **autoregister** (``kube-aggregator/pkg/controllers/autoregister``): the built-in
  group/versions are wanted "on start" (label ``kube-aggregator.kubernetes.io/automanaged:
  onstart``) with upstream's priorities (:data:`BUILTIN_PRIORITIES`; a built-in missing from
  the table gets no APIService, as upstream logs "Skipping APIService creation"); each is
  created, or has its spec put back, once per process start. Its decision table,
  ``checkAPIService``, is followed row by row in :meth:`LocalAPIServices._register`: an
  ``onstart`` object that was not there at start, or one whose label a user removed, is left
  alone; one that is no longer wanted is deleted.
- **crdRegistrationController** (``pkg/controlplane/controller/crdregistration``): every
  served version of a CustomResourceDefinition is wanted continuously (label ``true``,
  ``groupPriorityMinimum`` 1000, ``versionPriority`` 100), so it is created when the version
  appears in the registry (``Registry.on_change``), put back when a user edits its spec, and
  deleted when the version goes. A CRD version in a built-in group/version is the built-in's.
- **the local availability controller**: every APIService without ``spec.service`` is
  ``Available=True`` with reason ``Local``.

An APIService with ``spec.service`` set is served remotely (the aggregator's proxy and its
availability controller own it) and is never touched here, whatever its labels say.

The follower caches the APIServices it sees (list, then watch the store) and works one
name at a time from a set of dirty names, so no name is synced twice at once. Writes go
through :class:`ResourceStore` and re-read the object they change, so a stale cache costs
at most a write that answers 404 or 409, after which the watch brings the truth and the
name is synced again. A write that fails for another reason is retried with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from control.apiserver import errors
from control.apiserver.resource_store import DeleteOptions, ResourceStore, rfc3339
from control.apiserver.store_follower import follow_prefix
from control.resources.registry import Registry, ResourceType
from control.store import Event, EventType, KeyValue, StoreError

log = logging.getLogger("kubelab.apiserver")

AUTOMANAGED_LABEL = "kube-aggregator.kubernetes.io/automanaged"
MANAGE_ON_START = "onstart"
MANAGE_CONTINUOUSLY = "true"
# crdRegistrationController's priorities for every CRD group/version.
CRD_GROUP_PRIORITY_MINIMUM = 1000
CRD_VERSION_PRIORITY = 100
LOCAL_REASON = "Local"
LOCAL_MESSAGE = "Local APIServices are always available"

# (group, version) -> (groupPriorityMinimum, versionPriority): cmd/kube-apiserver's
# apiVersionPriorities merged over pkg/controlplane/apiserver's
# DefaultGenericAPIServicePriorities (the former wins where both name a group/version).
# apiregistration.k8s.io/v1 is in neither: kube-aggregator serves that group itself, and a
# real cluster lists its APIService with these numbers.
BUILTIN_PRIORITIES: Mapping[tuple[str, str], tuple[int, int]] = {
    ("", "v1"): (18000, 1),
    ("apiregistration.k8s.io", "v1"): (18000, 15),
    ("events.k8s.io", "v1"): (17750, 15),
    ("events.k8s.io", "v1beta1"): (17750, 5),
    ("authentication.k8s.io", "v1"): (17700, 15),
    ("authentication.k8s.io", "v1beta1"): (17700, 9),
    ("authentication.k8s.io", "v1alpha1"): (17700, 1),
    ("authorization.k8s.io", "v1"): (17600, 15),
    ("certificates.k8s.io", "v1"): (17300, 15),
    ("certificates.k8s.io", "v1beta1"): (17300, 9),
    ("certificates.k8s.io", "v1alpha1"): (17300, 1),
    ("rbac.authorization.k8s.io", "v1"): (17000, 15),
    ("apiextensions.k8s.io", "v1"): (16700, 15),
    ("admissionregistration.k8s.io", "v1"): (16700, 15),
    ("admissionregistration.k8s.io", "v1beta1"): (16700, 12),
    ("admissionregistration.k8s.io", "v1alpha1"): (16700, 9),
    ("coordination.k8s.io", "v1"): (16500, 15),
    ("coordination.k8s.io", "v1beta1"): (16500, 13),
    ("coordination.k8s.io", "v1alpha2"): (16500, 12),
    ("discovery.k8s.io", "v1"): (16200, 15),
    ("discovery.k8s.io", "v1beta1"): (16200, 12),
    ("flowcontrol.apiserver.k8s.io", "v1"): (16100, 21),
    ("flowcontrol.apiserver.k8s.io", "v1beta3"): (16100, 18),
    ("flowcontrol.apiserver.k8s.io", "v1beta2"): (16100, 15),
    ("flowcontrol.apiserver.k8s.io", "v1beta1"): (16100, 12),
    ("flowcontrol.apiserver.k8s.io", "v1alpha1"): (16100, 9),
    ("internal.apiserver.k8s.io", "v1alpha1"): (16000, 9),
    ("storagemigration.k8s.io", "v1beta1"): (15800, 9),
    ("apps", "v1"): (17800, 15),
    ("autoscaling", "v1"): (17500, 15),
    ("autoscaling", "v2"): (17500, 30),
    ("autoscaling", "v2beta1"): (17500, 9),
    ("autoscaling", "v2beta2"): (17500, 1),
    ("batch", "v1"): (17400, 15),
    ("batch", "v1beta1"): (17400, 9),
    ("batch", "v2alpha1"): (17400, 9),
    ("networking.k8s.io", "v1"): (17200, 15),
    ("networking.k8s.io", "v1beta1"): (17200, 9),
    ("policy", "v1"): (17100, 15),
    ("policy", "v1beta1"): (17100, 9),
    ("storage.k8s.io", "v1"): (16800, 15),
    ("storage.k8s.io", "v1beta1"): (16800, 9),
    ("storage.k8s.io", "v1alpha1"): (16800, 1),
    ("scheduling.k8s.io", "v1"): (16600, 15),
    ("node.k8s.io", "v1"): (16300, 15),
    ("node.k8s.io", "v1alpha1"): (16300, 1),
    ("node.k8s.io", "v1beta1"): (16300, 9),
    ("resource.k8s.io", "v1beta2"): (16200, 15),
    ("resource.k8s.io", "v1beta1"): (16200, 9),
    ("resource.k8s.io", "v1alpha3"): (16200, 1),
}

# Retry backoff for a name whose write failed: doubled per failure up to the cap.
RETRY_BASE_SECONDS = 0.05
RETRY_MAX_SECONDS = 10.0


def api_service_name(group: str, version: str) -> str:
    """``v1.`` for the core group, ``<version>.<group>`` otherwise (the APIService naming rule)."""
    return f"{version}.{group}"


@dataclass(frozen=True, slots=True)
class Wanted:
    """An APIService this server wants: its spec and how it is managed (the label's value)."""

    spec: dict[str, Any]
    managed: str

    def body(self, name: str) -> dict[str, Any]:
        return {
            "apiVersion": "apiregistration.k8s.io/v1",
            "kind": "APIService",
            "metadata": {"name": name, "labels": {AUTOMANAGED_LABEL: self.managed}},
            "spec": copy.deepcopy(self.spec),
        }


def _spec(group: str, version: str, priorities: tuple[int, int]) -> dict[str, Any]:
    return {
        "group": group,
        "version": version,
        "groupPriorityMinimum": priorities[0],
        "versionPriority": priorities[1],
    }


def builtin_api_services(registry: Registry) -> dict[str, Wanted]:
    """The ``onstart`` APIServices of the registry's built-in kinds (those without a CRD schema)."""
    wanted = {}
    for rt in registry:
        if rt.schema is not None:
            continue
        priorities = BUILTIN_PRIORITIES.get(rt.group_version)
        if priorities is None:
            continue
        wanted[api_service_name(rt.group, rt.version)] = Wanted(
            spec=_spec(rt.group, rt.version, priorities), managed=MANAGE_ON_START
        )
    return wanted


def custom_api_services(registry: Registry, *, builtin: Mapping[str, Wanted]) -> dict[str, Wanted]:
    """The continuously managed APIServices of the served CRD versions now in the registry."""
    wanted = {}
    for rt in registry:
        name = api_service_name(rt.group, rt.version)
        if rt.schema is None or name in builtin:
            continue
        wanted[name] = Wanted(
            spec=_spec(rt.group, rt.version, (CRD_GROUP_PRIORITY_MINIMUM, CRD_VERSION_PRIORITY)),
            managed=MANAGE_CONTINUOUSLY,
        )
    return wanted


def _managed(obj: Mapping[str, Any] | None) -> str:
    if obj is None:
        return ""
    return str(((obj.get("metadata") or {}).get("labels") or {}).get(AUTOMANAGED_LABEL) or "")


def _is_remote(obj: Mapping[str, Any]) -> bool:
    return (obj.get("spec") or {}).get("service") is not None


def _significant(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A spec without zero values, so an explicit ``false`` or ``null`` equals an absent field
    (Go's DeepEqual of the typed structs, which upstream compares)."""
    return {key: value for key, value in spec.items() if value not in (None, False, "", 0, [], {})}


def local_available_condition(obj: Mapping[str, Any], *, now: str) -> dict[str, Any]:
    """The Available condition of a local APIService; the transition time kept when the status
    was already True (upstream's SetAPIServiceCondition)."""
    condition = {
        "type": "Available",
        "status": "True",
        "lastTransitionTime": now,
        "reason": LOCAL_REASON,
        "message": LOCAL_MESSAGE,
    }
    for present in (obj.get("status") or {}).get("conditions") or []:
        if (
            isinstance(present, dict)
            and present.get("type") == "Available"
            and present.get("status") == "True"
        ):
            condition["lastTransitionTime"] = present.get("lastTransitionTime") or now
    return condition


def _is_locally_available(obj: Mapping[str, Any]) -> bool:
    for present in (obj.get("status") or {}).get("conditions") or []:
        if isinstance(present, dict) and present.get("type") == "Available":
            return (present.get("status"), present.get("reason"), present.get("message")) == (
                "True",
                LOCAL_REASON,
                LOCAL_MESSAGE,
            )
    return False


class LocalAPIServices:
    """Keeps the local APIServices (see the module docstring); ``start`` after the registry holds
    the stored CRDs' kinds, so the first sync does not delete their APIServices."""

    def __init__(self, *, objects: ResourceStore, registry: Registry) -> None:
        rt = registry.lookup(group="apiregistration.k8s.io", version="v1", plural="apiservices")
        if rt is None:
            raise RuntimeError("the registry lacks apiservices.apiregistration.k8s.io")
        self._rt: ResourceType = rt
        self._objects = objects
        self._registry = registry
        self._builtin = builtin_api_services(registry)
        self._custom: dict[str, Wanted] = {}
        self._cache: dict[str, dict[str, Any]] = {}  # name -> APIService as last seen
        self._at_start: set[str] | None = None  # names present at the first list
        self._synced_once: set[str] = set()  # autoregister's syncedSuccessfully
        self._failures: dict[str, int] = {}
        self._dirty: set[str] = set()
        self._wake = asyncio.Event()
        self._listed = asyncio.Event()  # the first list is in: what was there at start is known
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._retries: set[asyncio.TimerHandle] = set()
        # Set once the names known at start are synced and every built-in is seen Available.
        self.synced = asyncio.Event()
        registry.on_change(self._registry_changed)

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._custom = custom_api_services(self._registry, builtin=self._builtin)
        self._tasks = [
            asyncio.create_task(self._follow(), name="apiservices-follow"),
            asyncio.create_task(self._work(), name="apiservices-sync"),
        ]

    async def stop(self) -> None:
        self._loop = None
        for handle in self._retries:
            handle.cancel()
        self._retries.clear()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    # ----------------------------------------------------------------- inputs
    def _registry_changed(self) -> None:
        """Registry listener (any thread): recompute the CRD versions in the loop."""
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(self._refresh_custom)

    def _refresh_custom(self) -> None:
        if self._loop is None:
            return
        custom = custom_api_services(self._registry, builtin=self._builtin)
        changed = {
            name for name in custom.keys() | self._custom.keys() if custom.get(name) != self._custom.get(name)
        }
        self._custom = custom
        self._enqueue(changed)

    async def _follow(self) -> None:
        await follow_prefix(
            self._objects.store,
            self._rt.storage_prefix,
            on_list=self._relisted,
            on_event=self._changed,
            what="local APIService registration",
        )

    async def _relisted(self, items: list[KeyValue]) -> None:
        cache = {}
        for kv in items:
            obj = orjson.loads(kv.value)
            cache[obj["metadata"]["name"]] = obj
        gone = self._cache.keys() - cache.keys()
        self._cache = cache
        if self._at_start is None:
            self._at_start = set(cache)
            self._listed.set()
        self._enqueue(cache.keys() | gone | self._builtin.keys() | self._custom.keys())

    async def _changed(self, event: Event) -> None:
        obj = orjson.loads(event.kv.value)
        name = obj["metadata"]["name"]
        if event.type is EventType.DELETE:
            self._cache.pop(name, None)
        else:
            self._cache[name] = obj
        self._enqueue({name})

    def _enqueue(self, names: Iterable[str]) -> None:
        self._dirty.update(names)
        if self._dirty:
            self._wake.set()

    # ----------------------------------------------------------------- work
    async def _work(self) -> None:
        await self._listed.wait()
        while True:
            await self._wake.wait()
            self._wake.clear()
            names, self._dirty = sorted(self._dirty), set()
            for name in names:
                await self._sync(name)
            if not self._dirty and not self._failures and self._builtins_available():
                self.synced.set()

    def _builtins_available(self) -> bool:
        """Every built-in APIService seen Available (or taken over by a remote server): upstream's
        ``autoregister-completion`` readiness check."""
        for name in self._builtin:
            current = self._cache.get(name)
            if current is None or not (_is_remote(current) or _is_locally_available(current)):
                return False
        return True

    async def _sync(self, name: str) -> None:
        try:
            await self._register(name)
            await self._report_available(name)
        except (errors.StatusError, StoreError) as exc:
            self._retry_later(name, exc)
        except Exception:  # a bug: say so loudly, keep serving the other names
            log.exception("syncing APIService %s failed", name)
        else:
            self._failures.pop(name, None)

    def _retry_later(self, name: str, exc: Exception) -> None:
        failures = self._failures.get(name, 0) + 1
        self._failures[name] = failures
        delay = min(RETRY_BASE_SECONDS * 2 ** (failures - 1), RETRY_MAX_SECONDS)
        log.warning("syncing APIService %s failed (retrying in %.2f s): %s", name, delay, exc)
        loop = asyncio.get_running_loop()

        def retry() -> None:
            self._retries.discard(handle)
            self._enqueue({name})

        handle = loop.call_later(delay, retry)
        self._retries.add(handle)

    async def _register(self, name: str) -> None:
        """autoregister's ``checkAPIService``; upstream's rows (1A..6C) named where they apply."""
        wanted = self._builtin.get(name) or self._custom.get(name)
        current = self._cache.get(name)
        has_synced = name in self._synced_once
        if current is not None and _is_remote(current):
            pass  # served remotely: the aggregator's, never ours
        elif current is None and wanted is None:
            pass  # 2A
        elif wanted is not None and wanted.managed == MANAGE_ON_START and has_synced:
            pass  # 2B, 5B, 6B: once per start
        elif current is None and wanted is not None:
            await self._create(name, wanted)  # 2B, 2C
        elif _managed(current) not in (MANAGE_ON_START, MANAGE_CONTINUOUSLY):
            pass  # 3: not ours to manage
        elif _managed(current) == MANAGE_ON_START and name not in (self._at_start or set()):
            pass  # 4: added after we started
        elif _managed(current) == MANAGE_ON_START and has_synced:
            pass  # 5: once per start
        elif wanted is None:
            await self._delete(name)  # 5A, 6A
        elif _significant(current.get("spec") or {}) != _significant(wanted.spec):
            await self._put_back(name, wanted)  # 5B, 5C, 6B, 6C
        self._synced_once.add(name)

    async def _create(self, name: str, wanted: Wanted) -> None:
        try:
            await self._objects.create(self._rt, wanted.body(name), namespace="")
        except errors.StatusError as exc:
            if exc.code != 409:  # there already: the watch brings it and the name is synced again
                raise
        log.info("created APIService %s", name)

    async def _delete(self, name: str) -> None:
        try:
            await self._objects.delete(self._rt, namespace="", name=name, options=DeleteOptions())
        except errors.StatusError as exc:
            if exc.code != 404:
                raise
        log.info("deleted APIService %s", name)

    async def _put_back(self, name: str, wanted: Wanted) -> None:
        def restore(current: dict[str, Any]) -> dict[str, Any]:
            if not _is_remote(current):  # re-checked on the object being replaced
                current["spec"] = copy.deepcopy(wanted.spec)
            return current

        try:
            await self._objects.update(self._rt, namespace="", name=name, transform=restore)
        except errors.StatusError as exc:
            if exc.code != 404:
                raise
        log.info("restored the spec of APIService %s", name)

    async def _report_available(self, name: str) -> None:
        """The local availability controller: Available=True, reason Local."""
        current = self._cache.get(name)
        if current is None or _is_remote(current) or _is_locally_available(current):
            return
        now = rfc3339(self._objects.clock())

        def available(obj: dict[str, Any]) -> dict[str, Any]:
            if _is_remote(obj):
                return obj
            condition = local_available_condition(obj, now=now)
            status = obj.setdefault("status", {})
            others = [c for c in status.get("conditions") or [] if c.get("type") != "Available"]
            status["conditions"] = [*others, condition]
            return obj

        try:
            await self._objects.update(
                self._rt, namespace="", name=name, transform=available, subresource="status"
            )
        except errors.StatusError as exc:
            if exc.code != 404:
                raise
