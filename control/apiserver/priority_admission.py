"""The Priority admission plugin (upstream's plugin/pkg/admission/priority): a pod's priority
comes from its PriorityClass, and at most one PriorityClass is the cluster's default.

- **pods, on create**: ``spec.priorityClassName`` is resolved to ``spec.priority`` and
  ``spec.preemptionPolicy`` (the class's). A pod naming no class gets the global default class
  (``globalDefault: true``; with several, the lowest value, as upstream breaks that race) and its
  name, or priority 0 with ``PreemptLowerPriority`` when there is none, so every pod carries a
  priority as upstream's do. A class that does not exist is a 403 (``no PriorityClass with name
  x was found``), and so is a ``spec.priority`` or ``spec.preemptionPolicy`` that differs from
  what the class gives.
- **pods, on update**: upstream's plugin puts back a priority an update left out; kubelab
  validates an update before admitting it, so that carry-over happens in the pod's update
  defaulting (``control.resources.defaults``) instead, to the same effect.
- **priorityclasses, on create and update**: a second ``globalDefault`` class is a 403
  (``PriorityClass x is already marked as default. Only one default can exist``).

Subresources are left alone, as upstream. The classes are followed in memory from a watch on
the store (:class:`PriorityClasses`, the API server's stand-in for upstream's lister), so a pod
create costs a dictionary lookup, not a store read. A class the watch has not delivered yet is
read from the store before a pod naming it is refused, so creating a class and then a pod that
names it never fails on the watch's lag (upstream's lister would refuse it).
"""

from __future__ import annotations

from typing import Any

import orjson

from control.apiserver.admission import CREATE, UPDATE, AdmissionRequest, forbidden
from control.apiserver.resource_store import ResourceStore
from control.apiserver.store_follower import FollowedObjects
from control.store import Store

DEFAULT_PRIORITY = 0  # upstream's DefaultPriorityWhenNoDefaultClassExists
DEFAULT_PREEMPTION_POLICY = "PreemptLowerPriority"


def default_priority_class(classes: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Upstream's getDefaultPriorityClass: the ``globalDefault`` class of lowest value."""
    defaults = [pc for pc in classes if pc.get("globalDefault") is True]
    return min(defaults, key=lambda pc: int(pc.get("value") or 0), default=None)


class PriorityClasses:
    """Every PriorityClass, by name, kept from a list and then a watch of the store."""

    def __init__(self, *, store: Store, prefix: str) -> None:
        self._store = store
        self._prefix = prefix
        self._followed = FollowedObjects(
            store=store, prefix=prefix, what="priority classes", changed=lambda: None
        )
        self.synced = self._followed.synced  # set once the first list has arrived

    def start(self) -> None:
        self._followed.start()

    async def stop(self) -> None:
        await self._followed.stop()

    async def all(self, *, fresh: bool = False) -> list[dict[str, Any]]:
        """Every class: from memory once synced, else (or when ``fresh``) from the store."""
        if self.synced.is_set() and not fresh:
            return list(self._followed.objects.values())
        listing = await self._store.list(self._prefix)
        return [orjson.loads(kv.value) for kv in listing.items]

    async def get(self, name: str) -> dict[str, Any] | None:
        """The class ``name``: from memory, else from the store (a class the watch has not
        delivered yet is still found)."""
        found = self._followed.objects.get(name)
        if found is not None:
            return found
        kv = await self._store.get(self._prefix + name)
        return None if kv is None else orjson.loads(kv.value)


class PriorityAdmission:
    """Resolves a new pod's priority from its PriorityClass and keeps the default class unique.

    :meth:`start` and :meth:`stop` run its in-memory copy of the classes (the API server's)."""

    resources = frozenset({("", "pods"), ("scheduling.k8s.io", "priorityclasses")})

    def __init__(self, *, objects: ResourceStore) -> None:
        self.objects = objects
        classes = objects.registry.lookup(group="scheduling.k8s.io", version="v1", plural="priorityclasses")
        if classes is None:
            raise ValueError("the registry has no scheduling.k8s.io/v1 priorityclasses")
        self._classes = classes
        self.classes = PriorityClasses(store=objects.store, prefix=classes.storage_prefix)

    def start(self) -> None:
        self.classes.start()

    async def stop(self) -> None:
        await self.classes.stop()

    async def mutate(self, request: AdmissionRequest) -> None:
        rt = request.rt
        pod = request.obj
        if rt.group or rt.plural != "pods" or request.subresource or request.operation != CREATE:
            return
        if pod is None:
            return
        spec = pod.setdefault("spec", {})
        name = spec.get("priorityClassName") or ""
        if name:
            chosen = await self.classes.get(name)
            if chosen is None:
                raise forbidden(request, f"no PriorityClass with name {name} was found")
        else:
            chosen = default_priority_class(await self.classes.all())
            if chosen is not None:
                spec["priorityClassName"] = chosen["metadata"]["name"]
        priority = int(chosen.get("value") or 0) if chosen is not None else DEFAULT_PRIORITY
        policy = (
            chosen.get("preemptionPolicy") if chosen is not None else DEFAULT_PREEMPTION_POLICY
        ) or DEFAULT_PREEMPTION_POLICY
        given = spec.get("priority")
        if given is not None and given != priority:
            raise forbidden(
                request,
                f"the integer value of priority ({given}) must not be provided in pod spec; "
                f"priority admission controller computed {priority} from the given PriorityClass name",
            )
        given_policy = spec.get("preemptionPolicy")
        if given_policy is not None and given_policy != policy:
            raise forbidden(
                request,
                f"the string value of PreemptionPolicy ({given_policy}) must not be provided in pod spec; "
                f"priority admission controller computed {policy} from the given PriorityClass name",
            )
        spec["priority"] = priority
        spec["preemptionPolicy"] = policy

    async def validate(self, request: AdmissionRequest) -> None:
        rt = request.rt
        pc = request.obj
        if (rt.group, rt.plural) != (self._classes.group, self._classes.plural) or request.subresource:
            return
        if request.operation not in (CREATE, UPDATE):
            return
        if pc is None or pc.get("globalDefault") is not True:
            return
        current = default_priority_class(
            # from the store: classes are written rarely, and a default made a moment ago counts
            [
                other
                for other in await self.classes.all(fresh=True)
                if other["metadata"].get("name") != request.name
            ]
        )
        if current is not None:
            raise forbidden(
                request,
                f"PriorityClass {current['metadata']['name']} is already marked as default. "
                "Only one default can exist",
            )
