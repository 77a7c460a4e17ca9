"""The ResourceQuota admission plugin (upstream's plugin/pkg/admission/resourcequota): a write
that would take a namespace past one of its quotas is refused, and an admitted one is charged
to the quotas' ``status.used`` before it is stored.

For each quota of the namespace that limits something the object uses and whose scopes
select it (``control.resources.quota``), as upstream's ``checkRequest``:

- a pod missing a cpu/memory request or limit the quota tracks is refused: ``failed quota:
  <quota>: must specify limits.cpu for: <containers>``;
- a quota whose usage the controller has not computed yet is refused: ``status unknown for
  quota: <quota>, resources: <names>``;
- the object's usage (on UPDATE, only what it adds to the old object's) is added to
  ``status.used``; past ``status.hard`` the write is refused with ``exceeded quota: <quota>,
  requested: <name=qty,...>, used: ..., limited: ...``.

Concurrent writes never both slip under a quota: the check and the charge of one namespace
run under that namespace's lock, and the charge is a compare-and-swap on the quota's
resourceVersion that re-checks against the latest usage when the resource quota controller
wrote in between (as upstream's quota evaluator retries on conflict). Charges are never
refunded here: a write that fails after admission leaves usage high until the controller's
next recount, as upstream. Dry runs are checked but not charged.

A namespace's quotas are read from the store under its lock, unless ``presence`` (a
``NamespacePresence``, started and stopped with the API server) knows it holds none — most
namespaces, most creates.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson

from control.apiserver import errors
from control.apiserver.admission import CREATE, UPDATE, AdmissionRequest, forbidden
from control.apiserver.namespace_presence import NamespacePresence
from control.apiserver.resource_store import ResourceStore
from control.resources import quota
from control.resources.quota import Evaluator, ResourceList

Clock = Callable[[], datetime]


class ResourceQuotaAdmission:
    """Checks and charges namespaced writes against the namespace's ResourceQuotas."""

    def __init__(self, *, objects: ResourceStore, clock: Clock = lambda: datetime.now(UTC)) -> None:
        self.objects = objects
        self.clock = clock
        quotas = objects.registry.lookup(group="", version="v1", plural="resourcequotas")
        if quotas is None:
            raise ValueError("the registry has no core/v1 resourcequotas")
        self._quotas = quotas
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self.presence = NamespacePresence(
            store=objects.store, prefix=quotas.storage_prefix, what="resource quota presence"
        )

    async def validate(self, request: AdmissionRequest) -> None:
        rt = request.rt
        if not rt.namespaced or request.obj is None or request.operation not in (CREATE, UPDATE):
            return
        if rt is self._quotas and request.operation == CREATE and not request.dry_run:
            self.presence.creating(request.namespace)
        if not self.presence.may_hold(request.namespace):
            return
        evaluator = Evaluator(group=rt.group, plural=rt.plural)
        if not evaluator.handles(request.operation, request.subresource):
            return
        lock = self._locks.get(request.namespace)
        if lock is None:
            lock = self._locks[request.namespace] = asyncio.Lock()
        async with lock:
            listing = await self.objects.store.list(f"{self._quotas.storage_prefix}{request.namespace}/")
            if not listing.items:
                return
            quotas = [orjson.loads(kv.value) for kv in listing.items]
            delta = self._delta(request, evaluator=evaluator, quotas=quotas)
            if delta is None or request.dry_run:
                return
            for name in delta:
                try:
                    await self.objects.update(
                        self._quotas,
                        namespace=request.namespace,
                        name=name,
                        subresource="status",
                        transform=lambda current, name=name: self._charge(
                            request, current=current, requested=delta[name]
                        ),
                    )
                except errors.StatusError as exc:
                    if exc.code != 404:
                        raise
                    # deleted since the list: nothing left to charge

    def _delta(
        self, request: AdmissionRequest, *, evaluator: Evaluator, quotas: list[dict[str, Any]]
    ) -> dict[str, ResourceList] | None:
        """What to add to each matching quota's usage (None: nothing to charge); raises a 403."""
        obj = request.obj
        assert obj is not None
        interesting = []
        for resource_quota in quotas:
            if not quota.matches(evaluator, quota=resource_quota, obj=obj):
                continue
            name = resource_quota["metadata"]["name"]
            status = resource_quota.get("status") or {}
            hard = quota.parse_list(status.get("hard"))
            restricted = evaluator.matching_resources(hard)
            problem = evaluator.constraints(restricted, obj)
            if problem is not None:
                raise forbidden(request, f"failed quota: {name}: {problem}")
            used = quota.parse_list(status.get("used"))
            if any(resource not in used for resource in restricted):
                names = ",".join(sorted(restricted))
                raise forbidden(request, f"status unknown for quota: {name}, resources: {names}")
            interesting.append(resource_quota)
        if not interesting:
            return None
        now = self.clock()
        usage = evaluator.usage(obj, now=now)
        negative = quota.negative(usage)
        if negative:
            raise forbidden(request, f"quota usage is negative for resource(s): {','.join(negative)}")
        if request.operation == UPDATE and request.old is not None:
            usage = quota.subtract_non_negative(usage, evaluator.usage(request.old, now=now))
        usage = quota.remove_zeros(usage)
        if not usage:
            return None
        charges = {}
        for resource_quota in interesting:
            requested = self._check(request, resource_quota=resource_quota, usage=usage)
            if requested:
                charges[resource_quota["metadata"]["name"]] = requested
        return charges or None

    @staticmethod
    def _check(
        request: AdmissionRequest, *, resource_quota: dict[str, Any], usage: ResourceList
    ) -> ResourceList:
        """The part of ``usage`` the quota limits, refused with upstream's message when over."""
        status = resource_quota.get("status") or {}
        hard = quota.parse_list(status.get("hard"))
        used = quota.parse_list(status.get("used"))
        requested = quota.mask(usage, hard)
        new_used = quota.mask(quota.add(used, requested), requested)
        allowed, exceeded = quota.less_than_or_equal(new_used, hard)
        if not allowed:
            raise forbidden(
                request,
                f"exceeded quota: {resource_quota['metadata']['name']}, "
                f"requested: {quota.pretty(quota.mask(requested, exceeded))}, "
                f"used: {quota.pretty(quota.mask(used, exceeded))}, "
                f"limited: {quota.pretty(quota.mask(hard, exceeded))}",
            )
        return requested

    def _charge(
        self, request: AdmissionRequest, *, current: dict[str, Any], requested: ResourceList
    ) -> dict[str, Any]:
        """The quota with ``requested`` added to its usage, checked again against its latest state."""
        self._check(request, resource_quota=current, usage=requested)
        status = current.setdefault("status", {})
        used = quota.add(quota.parse_list(status.get("used")), requested)
        status["used"] = {**(status.get("used") or {}), **quota.render_list(quota.mask(used, requested))}
        return current
