"""What an object costs against a ResourceQuota, as upstream's quota evaluators count it
(``pkg/quota/v1`` and ``pkg/quota/v1/evaluator/core``), shared by the ResourceQuota admission
plugin (charge a write before it is stored) and the resource quota controller (recount a
namespace). Both must agree to the unit, so the counting lives here once, on decoded objects
and with exact quantities (``Quantity``), and knows nothing of HTTP or storage.

- A *resource list* is ``dict[str, Quantity]`` (upstream's ResourceList); ``add``, ``subtract``,
  ``mask``, ``less_than_or_equal`` and ``pretty`` are upstream's quota helpers.
- An *evaluator* knows one kind: which quota resource names it answers for
  (``matching_resources``), what one object uses (``usage``), whether it falls under a scope
  (``matches_scope``) and, for pods, the "must specify" constraint. Pods, Services and
  PersistentVolumeClaims have their own; every other kind is an object counter
  (``count/<resource>[.<group>]``, with the legacy aliases ``configmaps``, ``secrets``,
  ``resourcequotas``, ``replicationcontrollers``).
- The names that are valid in a quota (standard names, scopes and which resources a scope may
  limit) are validation's (``control.resources.validation``).
- ``pod_requests`` / ``pod_limits`` are upstream's resourcehelper.PodRequests/PodLimits (the sum of
  the containers, raised to the largest init container, restartable sidecars counted in both);
  LimitRanger's Pod limits use them too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from typing import Any

from control.resources.validation import POD_COMPUTE_QUOTA_RESOURCES, InvalidQuantityError, Quantity

ResourceList = dict[str, Quantity]
Obj = Mapping[str, Any]

ONE = Quantity.parse(1)
ZERO = Quantity.parse(0)

# Scope names (core/v1 ResourceQuotaScope) and scope selector operators.
TERMINATING = "Terminating"
NOT_TERMINATING = "NotTerminating"
BEST_EFFORT = "BestEffort"
NOT_BEST_EFFORT = "NotBestEffort"
PRIORITY_CLASS = "PriorityClass"
CROSS_NAMESPACE_POD_AFFINITY = "CrossNamespacePodAffinity"
# The resources whose quota makes every container name its request/limit (podEvaluator.Constraints).
_POD_VALIDATION = POD_COMPUTE_QUOTA_RESOURCES
_POD_RESOURCES = frozenset(
    {
        "count/pods",
        "cpu",
        "memory",
        "ephemeral-storage",
        "requests.cpu",
        "requests.memory",
        "requests.ephemeral-storage",
        "limits.cpu",
        "limits.memory",
        "limits.ephemeral-storage",
        "pods",
    }
)
_SERVICE_RESOURCES = frozenset({"count/services", "services", "services.nodeports", "services.loadbalancers"})
_PVC_RESOURCES = ("persistentvolumeclaims", "requests.storage")
STORAGE_CLASS_SUFFIX = ".storageclass.storage.k8s.io/"
# Object counts that also answer to an old name (upstream's legacyObjectCountAliases).
LEGACY_OBJECT_COUNT_ALIASES = {
    "configmaps": "configmaps",
    "resourcequotas": "resourcequotas",
    "replicationcontrollers": "replicationcontrollers",
    "secrets": "secrets",
}


class ScopeSelectorError(ValueError):
    """A scope selector requirement that cannot be evaluated (bad operator)."""


# --- resource lists ------------------------------------------------------------------------


def parse_list(raw: Any) -> ResourceList:
    """A ResourceList from JSON; entries that are not quantities are skipped (validation refuses them)."""
    result: ResourceList = {}
    if not isinstance(raw, Mapping):
        return result
    for name, value in raw.items():
        try:
            result[str(name)] = Quantity.parse(value)
        except InvalidQuantityError:
            continue
    return result


def render_list(resources: ResourceList) -> dict[str, str]:
    """The JSON form (canonical quantity strings), keys sorted."""
    return {name: str(resources[name]) for name in sorted(resources)}


def _sum(a: Quantity, b: Quantity) -> Quantity:
    """Quantity.Add: a zero takes the other's format (so 0 + 1536Mi prints as 1536Mi)."""
    return Quantity(a.value + b.value, b.format if a.is_zero() else a.format)


def add(a: ResourceList, b: ResourceList) -> ResourceList:
    result = dict(a)
    for name, quantity in b.items():
        result[name] = _sum(result[name], quantity) if name in result else quantity
    return result


def subtract_non_negative(a: ResourceList, b: ResourceList) -> ResourceList:
    """quota.SubtractWithNonNegativeResult."""
    result: ResourceList = {}
    for name, quantity in a.items():
        value = quantity.value - (b[name].value if name in b else 0)
        result[name] = Quantity(max(value, 0), quantity.format)
    return result


def mask(resources: ResourceList, names: Iterable[str]) -> ResourceList:
    keep = set(names)
    return {name: quantity for name, quantity in resources.items() if name in keep}


def remove_zeros(resources: ResourceList) -> ResourceList:
    return {name: quantity for name, quantity in resources.items() if not quantity.is_zero()}


def equal(a: ResourceList, b: ResourceList) -> bool:
    """quota.Equals: the same names with the same amounts (formats aside)."""
    return a.keys() == b.keys() and all(a[name].value == b[name].value for name in a)


def less_than_or_equal(a: ResourceList, b: ResourceList) -> tuple[bool, list[str]]:
    """quota.LessThanOrEqual: names in ``a`` over their amount in ``b`` (absent in ``b``: no limit)."""
    exceeded = sorted(name for name, quantity in a.items() if name in b and quantity.value > b[name].value)
    return not exceeded, exceeded


def negative(resources: ResourceList) -> list[str]:
    return sorted(name for name, quantity in resources.items() if quantity.value < 0)


def pretty(resources: ResourceList) -> str:
    """upstream prettyPrint: ``name=quantity`` sorted by name, comma-joined."""
    return ",".join(f"{name}={resources[name]}" for name in sorted(resources))


def _max_into(result: ResourceList, other: ResourceList) -> None:
    for name, quantity in other.items():
        if name not in result or quantity.value > result[name].value:
            result[name] = quantity


# --- resource names --------------------------------------------------------------------------


def is_extended_resource(name: str) -> bool:
    """helper.IsExtendedResourceName: a fully qualified name outside kubernetes.io, not requests.*."""
    return "/" in name and "kubernetes.io/" not in name and not name.startswith("requests.")


def _is_extended_quota_resource(name: str) -> bool:
    """isExtendedResourceNameForQuota: ``requests.<extended resource>``."""
    return name.startswith("requests.") and is_extended_resource(name[len("requests.") :])


def object_count_name(*, group: str, plural: str) -> str:
    """ObjectCountQuotaResourceNameFor: ``count/<resource>`` or ``count/<resource>.<group>``."""
    return f"count/{plural}" if not group else f"count/{plural}.{group}"


# --- pods ------------------------------------------------------------------------------------


def _container_list(container: Obj, key: str) -> ResourceList:
    return parse_list((container.get("resources") or {}).get(key))


def _pod_aggregate(pod: Obj, key: str) -> ResourceList:
    spec = pod.get("spec") or {}
    total: ResourceList = {}
    for container in spec.get("containers") or ():
        if isinstance(container, Mapping):
            total = add(total, _container_list(container, key))
    restartable: ResourceList = {}
    init_max: ResourceList = {}
    for container in spec.get("initContainers") or ():
        if not isinstance(container, Mapping):
            continue
        own = _container_list(container, key)
        if container.get("restartPolicy") == "Always":
            total = add(total, own)
            restartable = add(restartable, own)
            running = restartable
        else:
            running = add(own, restartable)
        _max_into(init_max, running)
    _max_into(total, init_max)
    overhead = parse_list(spec.get("overhead"))
    if overhead:
        total = add(total, {name: q for name, q in overhead.items() if key == "requests" or name in total})
    return total


def pod_requests(pod: Obj) -> ResourceList:
    """resourcehelper.PodRequests (with the pod overhead)."""
    return _pod_aggregate(pod, "requests")


def pod_limits(pod: Obj) -> ResourceList:
    """resourcehelper.PodLimits (overhead only for resources that have a limit)."""
    return _pod_aggregate(pod, "limits")


def _compute_usage(requests: ResourceList, limits: ResourceList) -> ResourceList:
    """podComputeUsageHelper."""
    result: ResourceList = {"pods": ONE}
    for resource in ("cpu", "memory", "ephemeral-storage"):
        if resource in requests:
            result[resource] = requests[resource]
            result[f"requests.{resource}"] = requests[resource]
        if resource in limits:
            result[f"limits.{resource}"] = limits[resource]
    for resource, request in requests.items():
        if resource.startswith("hugepages-"):
            result[resource] = request
            result[f"requests.{resource}"] = request
        if is_extended_resource(resource):
            result[f"requests.{resource}"] = request
    return result


def qos_class(pod: Obj) -> str:
    """qos.GetPodQOS: Guaranteed, Burstable or BestEffort from the cpu/memory requests and limits."""
    spec = pod.get("spec") or {}
    requests: ResourceList = {}
    limits: ResourceList = {}
    guaranteed = True
    for container in [*(spec.get("initContainers") or ()), *(spec.get("containers") or ())]:
        if not isinstance(container, Mapping):
            continue
        own_limits = set()
        for key, total in (("requests", requests), ("limits", limits)):
            for name, quantity in _container_list(container, key).items():
                if name in ("cpu", "memory") and quantity.value > 0:
                    total[name] = _sum(total[name], quantity) if name in total else quantity
                    if key == "limits":
                        own_limits.add(name)
        if own_limits != {"cpu", "memory"}:
            guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    same = all(name in limits and limits[name].value == requests[name].value for name in requests)
    return "Guaranteed" if guaranteed and same and len(requests) == len(limits) else "Burstable"


def is_best_effort(pod: Obj) -> bool:
    return qos_class(pod) == "BestEffort"


def pod_counts_for_quota(pod: Obj, *, now: datetime) -> bool:
    """QuotaV1Pod: terminal pods, and pods past their deletion grace, use no compute quota."""
    if (pod.get("status") or {}).get("phase") in ("Failed", "Succeeded"):
        return False
    metadata = pod.get("metadata") or {}
    deletion = metadata.get("deletionTimestamp")
    grace = metadata.get("deletionGracePeriodSeconds")
    if isinstance(deletion, str) and isinstance(grace, int):
        deleted_at = datetime.fromisoformat(deletion.replace("Z", "+00:00"))
        if now.timestamp() > deleted_at.timestamp() + grace:
            return False
    return True


def _selector_matches(requirement: Obj, value: str | None) -> bool:
    """A scope selector requirement as a label selector over ``{scopeName: value}``."""
    operator = requirement.get("operator")
    values = [str(v) for v in requirement.get("values") or ()]
    if operator == "In":
        return value is not None and value in values
    if operator == "NotIn":
        return value is None or value not in values
    if operator == "Exists":
        return value is not None
    if operator == "DoesNotExist":
        return value is None
    raise ScopeSelectorError(f"{operator!r} is not a valid scope selector operator")


def _uses_cross_namespace_affinity(pod: Obj) -> bool:
    affinity = (pod.get("spec") or {}).get("affinity") or {}
    for kind in ("podAffinity", "podAntiAffinity"):
        terms = affinity.get(kind) or {}
        required = terms.get("requiredDuringSchedulingIgnoredDuringExecution") or []
        preferred = [
            (term or {}).get("podAffinityTerm") or {}
            for term in terms.get("preferredDuringSchedulingIgnoredDuringExecution") or []
        ]
        for term in [*required, *preferred]:
            if isinstance(term, Mapping) and (
                term.get("namespaces") or term.get("namespaceSelector") is not None
            ):
                return True
    return False


# --- evaluators ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Evaluator:
    """The quota behaviour of one kind (core/v1 pods, services, persistentvolumeclaims, or a counter)."""

    group: str
    plural: str

    @property
    def count_name(self) -> str:
        return object_count_name(group=self.group, plural=self.plural)

    def handles(self, operation: str, subresource: str) -> bool:
        """Which writes are charged (upstream's Handles)."""
        if subresource:
            return False
        if self.group == "" and self.plural in ("services", "persistentvolumeclaims"):
            return operation in ("CREATE", "UPDATE")
        return operation == "CREATE"

    def matching_resources(self, names: Iterable[str]) -> list[str]:
        result = []
        for name in names:
            if self._matches_resource(name):
                result.append(name)
        return result

    def _matches_resource(self, name: str) -> bool:
        if self.group == "" and self.plural == "pods":
            return (
                name in _POD_RESOURCES
                or name.startswith(("hugepages-", "requests.hugepages-"))
                or _is_extended_quota_resource(name)
            )
        if self.group == "" and self.plural == "services":
            return name in _SERVICE_RESOURCES
        if self.group == "" and self.plural == "persistentvolumeclaims":
            return (
                name == "count/persistentvolumeclaims"
                or name in _PVC_RESOURCES
                or any(name.endswith(STORAGE_CLASS_SUFFIX + resource) for resource in _PVC_RESOURCES)
            )
        alias = LEGACY_OBJECT_COUNT_ALIASES.get(self.plural) if self.group == "" else None
        return name == self.count_name or (alias is not None and name == alias)

    def usage(self, obj: Obj, *, now: datetime) -> ResourceList:
        if self.group == "" and self.plural == "pods":
            result: ResourceList = {"count/pods": ONE}
            if not pod_counts_for_quota(obj, now=now):
                return result
            return add(result, _compute_usage(pod_requests(obj), pod_limits(obj)))
        if self.group == "" and self.plural == "services":
            return _service_usage(obj)
        if self.group == "" and self.plural == "persistentvolumeclaims":
            return _claim_usage(obj)
        result = {self.count_name: ONE}
        alias = LEGACY_OBJECT_COUNT_ALIASES.get(self.plural) if self.group == "" else None
        if alias is not None:
            result[alias] = ONE
        return result

    def matches_scope(self, requirement: Obj, obj: Obj) -> bool:
        """Whether ``obj`` falls under one scope selector requirement (only pods have scopes)."""
        if not (self.group == "" and self.plural == "pods"):
            return False
        scope = requirement.get("scopeName")
        spec = obj.get("spec") or {}
        if scope in (TERMINATING, NOT_TERMINATING):
            deadline = spec.get("activeDeadlineSeconds")
            terminating = isinstance(deadline, int) and deadline >= 0
            return terminating if scope == TERMINATING else not terminating
        if scope in (BEST_EFFORT, NOT_BEST_EFFORT):
            return is_best_effort(obj) == (scope == BEST_EFFORT)
        if scope == PRIORITY_CLASS:
            priority_class = spec.get("priorityClassName") or None
            if requirement.get("operator") == "Exists":
                return priority_class is not None
            return _selector_matches(requirement, priority_class)
        if scope == CROSS_NAMESPACE_POD_AFFINITY:
            return _uses_cross_namespace_affinity(obj)
        return False

    def constraints(self, required: Iterable[str], obj: Obj) -> str | None:
        """podEvaluator.Constraints: the "must specify ..." message, or None."""
        if not (self.group == "" and self.plural == "pods"):
            return None
        required_set = set(required) & _POD_VALIDATION
        if not required_set:
            return None
        missing: dict[str, set[str]] = {}
        spec = obj.get("spec") or {}
        for container in [*(spec.get("containers") or ()), *(spec.get("initContainers") or ())]:
            if not isinstance(container, Mapping):
                continue
            usage = _compute_usage(
                _container_list(container, "requests"), _container_list(container, "limits")
            )
            for name in required_set - usage.keys():
                missing.setdefault(name, set()).add(str(container.get("name") or ""))
        if not missing:
            return None
        parts = [f"{name} for: {','.join(sorted(missing[name]))}" for name in sorted(missing)]
        return "must specify " + "; ".join(parts)


def _service_usage(service: Obj) -> ResourceList:
    spec = service.get("spec") or {}
    ports = spec.get("ports") or []
    result: ResourceList = {
        "count/services": ONE,
        "services": ONE,
        "services.loadbalancers": ZERO,
        "services.nodeports": ZERO,
    }
    kind = spec.get("type")
    if kind == "NodePort":
        result["services.nodeports"] = Quantity.parse(len(ports))
    elif kind == "LoadBalancer":
        if spec.get("allocateLoadBalancerNodePorts") is False:
            with_ports = sum(1 for port in ports if isinstance(port, Mapping) and port.get("nodePort"))
            result["services.nodeports"] = Quantity.parse(with_ports)
        else:
            result["services.nodeports"] = Quantity.parse(len(ports))
        result["services.loadbalancers"] = ONE
    return result


def claim_storage_class(claim: Obj) -> str:
    """storagehelpers.GetPersistentVolumeClaimClass: the beta annotation, else spec.storageClassName."""
    annotations = (claim.get("metadata") or {}).get("annotations") or {}
    beta = annotations.get("volume.beta.kubernetes.io/storage-class")
    if beta is not None:
        return str(beta)
    return str((claim.get("spec") or {}).get("storageClassName") or "")


def _claim_usage(claim: Obj) -> ResourceList:
    result: ResourceList = {"persistentvolumeclaims": ONE, "count/persistentvolumeclaims": ONE}
    storage_class = claim_storage_class(claim)
    if storage_class:
        result[storage_class + STORAGE_CLASS_SUFFIX + "persistentvolumeclaims"] = ONE
    requests = parse_list(((claim.get("spec") or {}).get("resources") or {}).get("requests"))
    if "storage" in requests:
        request = requests["storage"]
        whole_bytes = -((-request.value.numerator) // request.value.denominator)  # RoundUp(0)
        storage = Quantity(Fraction(whole_bytes), request.format)
        result["requests.storage"] = storage
        if storage_class:
            result[storage_class + STORAGE_CLASS_SUFFIX + "requests.storage"] = storage
    return result


def scope_selectors(quota: Obj) -> list[Obj]:
    """getScopeSelectorsFromQuota: spec.scopes as Exists requirements, then spec.scopeSelector's."""
    spec = quota.get("spec") or {}
    selectors: list[Obj] = [
        {"scopeName": scope, "operator": "Exists"}
        for scope in spec.get("scopes") or ()
        if isinstance(scope, str)
    ]
    selector = spec.get("scopeSelector") or {}
    selectors.extend(req for req in selector.get("matchExpressions") or () if isinstance(req, Mapping))
    return selectors


def matches(evaluator: Evaluator, *, quota: Obj, obj: Obj) -> bool:
    """generic.Matches: the quota limits something this kind uses and every scope selects the object."""
    hard = parse_list((quota.get("status") or {}).get("hard"))
    if not evaluator.matching_resources(hard):
        return False
    return all(evaluator.matches_scope(requirement, obj) for requirement in scope_selectors(quota))


def usage_stats(
    evaluator: Evaluator, *, quota: Obj, resources: Iterable[str], objects: Iterable[Obj], now: datetime
) -> ResourceList:
    """CalculateUsageStats: the summed usage of the objects the quota's scopes select, masked to
    ``resources`` (each starting at zero)."""
    names = list(resources)
    used: ResourceList = dict.fromkeys(names, ZERO)
    selectors = scope_selectors(quota)
    for obj in objects:
        if all(evaluator.matches_scope(requirement, obj) for requirement in selectors):
            used = add(used, mask(evaluator.usage(obj, now=now), names))
    return used


def counted_kinds(hard: Iterable[str]) -> list[tuple[str, str]]:
    """The (group, plural) of every kind a quota's hard names need counted."""
    kinds: dict[tuple[str, str], None] = {}
    for name in hard:
        for group, plural in (("", "pods"), ("", "services"), ("", "persistentvolumeclaims")):
            if Evaluator(group=group, plural=plural)._matches_resource(name):
                kinds[(group, plural)] = None
        if name in LEGACY_OBJECT_COUNT_ALIASES:
            kinds[("", name)] = None
        elif name.startswith("count/"):
            plural, _, group = name[len("count/") :].partition(".")
            if plural:
                kinds[(group, plural)] = None
    return list(kinds)
