"""The LimitRanger admission plugin (upstream's plugin/pkg/admission/limitranger): the
LimitRanges of a namespace give its pods default requests and limits, and bound what pods
and claims may ask for.

- ``mutate`` (pods, on CREATE): every Container item's ``defaultRequest`` / ``default`` fills
  the requests and limits a container (or init container) leaves out, and the pod is
  annotated ``kubernetes.io/limit-ranger: "LimitRanger plugin set: cpu request for container
  app; ..."`` naming what was set. The store derives the pod's ``status.qosClass`` after
  mutating admission, as upstream, so the class reflects the filled-in resources.
- ``validate`` (pods on CREATE; claims on CREATE and UPDATE): each item's ``min``, ``max`` and
  ``maxLimitRequestRatio`` against every container (Container items), the whole pod
  (Pod items: upstream's PodRequests/PodLimits) and the claim's storage request
  (PersistentVolumeClaim items), refused with upstream's words ("maximum cpu usage per
  Container is 1, but limit is 2") in a 403 from ``forbidden``.

Pod updates are not checked: containers cannot be added or resized through them (as upstream).
LimitRanges are read from the store on each admitted pod or claim of a namespace that holds
any; ``presence`` (a ``NamespacePresence``, started and stopped with the API server) knows the
namespaces that hold none without a read. ``forbidden`` (upstream's admission.NewForbidden)
serves the ResourceQuota plugin too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from control.apiserver.admission import CREATE, UPDATE, AdmissionRequest, forbidden
from control.apiserver.namespace_presence import NamespacePresence
from control.apiserver.resource_store import ResourceStore
from control.resources import quota
from control.resources.quota import ResourceList
from control.resources.validation import Quantity

LIMIT_RANGER_ANNOTATION = "kubernetes.io/limit-ranger"


def aggregate(messages: list[str]) -> str:
    """utilerrors.NewAggregate(...).Error(): one message as is, several deduplicated in brackets."""
    unique = list(dict.fromkeys(messages))
    return unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"


def _merge_container(
    container: dict[str, Any], *, defaults: tuple[dict[str, Any], dict[str, Any]], prefix: str
) -> list[str]:
    """mergeContainerResources: fill missing limits/requests; what was set, for the annotation."""
    default_requests, default_limits = defaults
    resources = container.get("resources")
    if not isinstance(resources, dict):
        resources = container["resources"] = {}
    notes = []
    set_names: dict[str, list[str]] = {"requests": [], "limits": []}
    for key, source in (("limits", default_limits), ("requests", default_requests)):
        current = resources.get(key)
        if not isinstance(current, dict):
            current = {}
        for name, value in source.items():
            if name not in current:
                current[name] = value
                set_names[key].append(name)
        if current:
            resources[key] = current
    name = container.get("name") or ""
    if set_names["requests"]:
        notes.append(", ".join(sorted(set_names["requests"])) + f" request for {prefix} {name}")
    if set_names["limits"]:
        notes.append(", ".join(sorted(set_names["limits"])) + f" limit for {prefix} {name}")
    return notes


def _default_requirements(limit_range: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """defaultContainerResourceRequirements: (requests, limits) from the Container items."""
    requests: dict[str, Any] = {}
    limits: dict[str, Any] = {}
    for item in (limit_range.get("spec") or {}).get("limits") or ():
        if isinstance(item, Mapping) and item.get("type") == "Container":
            requests.update(item.get("defaultRequest") or {})
            limits.update(item.get("default") or {})
    return requests, limits


def _min_constraint(
    *, limit_type: str, name: str, enforced: Quantity, requests: ResourceList, limits: ResourceList
) -> str | None:
    if name not in requests:
        return f"minimum {name} usage per {limit_type} is {enforced}.  No request is specified"
    if requests[name].value < enforced.value:
        return f"minimum {name} usage per {limit_type} is {enforced}, but request is {requests[name]}"
    if name in limits and limits[name].value < enforced.value:
        return f"minimum {name} usage per {limit_type} is {enforced}, but limit is {limits[name]}"
    return None


def _max_constraint(
    *, limit_type: str, name: str, enforced: Quantity, requests: ResourceList, limits: ResourceList
) -> str | None:
    if name not in limits:
        return f"maximum {name} usage per {limit_type} is {enforced}.  No limit is specified"
    if limits[name].value > enforced.value:
        return f"maximum {name} usage per {limit_type} is {enforced}, but limit is {limits[name]}"
    if name in requests and requests[name].value > enforced.value:
        return f"maximum {name} usage per {limit_type} is {enforced}, but request is {requests[name]}"
    return None


def _max_request_constraint(
    *, limit_type: str, name: str, enforced: Quantity, requests: ResourceList
) -> str | None:
    if name not in requests:
        return f"maximum {name} usage per {limit_type} is {enforced}.  No request is specified"
    if requests[name].value > enforced.value:
        return f"maximum {name} usage per {limit_type} is {enforced}, but request is {requests[name]}"
    return None


def _ratio_constraint(
    *, limit_type: str, name: str, enforced: Quantity, requests: ResourceList, limits: ResourceList
) -> str | None:
    if name not in requests or requests[name].is_zero():
        return (
            f"{name} max limit to request ratio per {limit_type} is {enforced}, "
            "but no request is specified or request is 0"
        )
    if name not in limits or limits[name].is_zero():
        return (
            f"{name} max limit to request ratio per {limit_type} is {enforced}, "
            "but no limit is specified or limit is 0"
        )
    observed = limits[name].value / requests[name].value
    if observed > enforced.value:
        return (
            f"{name} max limit to request ratio per {limit_type} is {enforced}, "
            f"but provided ratio is {float(observed):f}"
        )
    return None


def _bounds(item: Mapping[str, Any], key: str) -> ResourceList:
    return quota.parse_list(item.get(key))


def _check(
    *, item: Mapping[str, Any], limit_type: str, requests: ResourceList, limits: ResourceList
) -> list[str]:
    problems = []
    for name, enforced in sorted(_bounds(item, "min").items()):
        problems.append(
            _min_constraint(
                limit_type=limit_type, name=name, enforced=enforced, requests=requests, limits=limits
            )
        )
    for name, enforced in sorted(_bounds(item, "max").items()):
        problems.append(
            _max_constraint(
                limit_type=limit_type, name=name, enforced=enforced, requests=requests, limits=limits
            )
        )
    for name, enforced in sorted(_bounds(item, "maxLimitRequestRatio").items()):
        problems.append(
            _ratio_constraint(
                limit_type=limit_type, name=name, enforced=enforced, requests=requests, limits=limits
            )
        )
    return [problem for problem in problems if problem is not None]


def validate_pod(limit_range: Mapping[str, Any], pod: Mapping[str, Any]) -> list[str]:
    """PodValidateLimitFunc: every violated Container and Pod bound of one LimitRange."""
    problems: list[str] = []
    spec = pod.get("spec") or {}
    containers = [
        c
        for c in [*(spec.get("containers") or ()), *(spec.get("initContainers") or ())]
        if isinstance(c, Mapping)
    ]
    for item in (limit_range.get("spec") or {}).get("limits") or ():
        if not isinstance(item, Mapping):
            continue
        if item.get("type") == "Container":
            for container in containers:
                resources = container.get("resources") or {}
                problems.extend(
                    _check(
                        item=item,
                        limit_type="Container",
                        requests=quota.parse_list(resources.get("requests")),
                        limits=quota.parse_list(resources.get("limits")),
                    )
                )
        elif item.get("type") == "Pod":
            problems.extend(
                _check(
                    item=item,
                    limit_type="Pod",
                    requests=quota.pod_requests(pod),
                    limits=quota.pod_limits(pod),
                )
            )
    return problems


def validate_claim(limit_range: Mapping[str, Any], claim: Mapping[str, Any]) -> list[str]:
    """PersistentVolumeClaimValidateLimitFunc: min and max against the storage request."""
    problems: list[str | None] = []
    requests = quota.parse_list(((claim.get("spec") or {}).get("resources") or {}).get("requests"))
    for item in (limit_range.get("spec") or {}).get("limits") or ():
        if not isinstance(item, Mapping) or item.get("type") != "PersistentVolumeClaim":
            continue
        for name, enforced in sorted(_bounds(item, "min").items()):
            problems.append(
                _min_constraint(
                    limit_type="PersistentVolumeClaim",
                    name=name,
                    enforced=enforced,
                    requests=requests,
                    limits={},
                )
            )
        for name, enforced in sorted(_bounds(item, "max").items()):
            problems.append(
                _max_request_constraint(
                    limit_type="PersistentVolumeClaim", name=name, enforced=enforced, requests=requests
                )
            )
    return [problem for problem in problems if problem is not None]


class LimitRanger:
    """Defaults and bounds pod and claim resources by the namespace's LimitRanges."""

    def __init__(self, *, objects: ResourceStore) -> None:
        self.objects = objects
        limit_ranges = objects.registry.lookup(group="", version="v1", plural="limitranges")
        if limit_ranges is None:
            raise ValueError("the registry has no core/v1 limitranges")
        self._limit_ranges = limit_ranges
        self.presence = NamespacePresence(
            store=objects.store, prefix=limit_ranges.storage_prefix, what="limit range presence"
        )

    @staticmethod
    def _kind(request: AdmissionRequest) -> str | None:
        """ "pods" or "persistentvolumeclaims" when upstream's SupportsAttributes holds."""
        if request.rt.group or request.subresource or request.obj is None:
            return None
        if request.rt.plural == "pods" and request.operation == CREATE:
            return "pods"
        if request.rt.plural == "persistentvolumeclaims" and request.operation in (CREATE, UPDATE):
            return "persistentvolumeclaims"
        return None

    async def _limit_ranges_in(self, namespace: str) -> list[dict[str, Any]]:
        if not self.presence.may_hold(namespace):
            return []
        listing = await self.objects.store.list(f"{self._limit_ranges.storage_prefix}{namespace}/")
        return [orjson.loads(kv.value) for kv in listing.items]

    async def mutate(self, request: AdmissionRequest) -> None:
        if self._kind(request) != "pods":
            return
        pod = request.obj
        assert pod is not None
        for limit_range in await self._limit_ranges_in(request.namespace):
            defaults = _default_requirements(limit_range)
            if not defaults[0] and not defaults[1]:
                continue
            spec = pod.get("spec") or {}
            notes: list[str] = []
            for key, prefix in (("containers", "container"), ("initContainers", "init container")):
                for container in spec.get(key) or ():
                    if isinstance(container, dict):
                        notes.extend(_merge_container(container, defaults=defaults, prefix=prefix))
            if notes:
                annotations = pod.setdefault("metadata", {}).get("annotations")
                if not isinstance(annotations, dict):
                    annotations = pod["metadata"]["annotations"] = {}
                annotations[LIMIT_RANGER_ANNOTATION] = "LimitRanger plugin set: " + "; ".join(notes)

    async def validate(self, request: AdmissionRequest) -> None:
        if (
            request.operation == CREATE
            and request.rt is self._limit_ranges
            and not request.subresource
            and not request.dry_run
        ):
            self.presence.creating(request.namespace)
        kind = self._kind(request)
        if kind is None:
            return
        obj = request.obj
        assert obj is not None
        problems: list[str] = []
        for limit_range in await self._limit_ranges_in(request.namespace):
            if kind == "pods":
                problems.extend(validate_pod(limit_range, obj))
            else:
                problems.extend(validate_claim(limit_range, obj))
        if problems:
            raise forbidden(request, aggregate(problems))
