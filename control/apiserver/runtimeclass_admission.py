"""The RuntimeClass admission plugin (upstream's plugin/pkg/admission/runtimeclass): a new pod that
names a RuntimeClass takes on the class's pod overhead and scheduling constraints.

On CREATE of a pod (never a subresource, never an update: upstream's handler admits ``Create``
only) with ``spec.runtimeClassName`` set:

- the class must exist, else 403 ``pod rejected: RuntimeClass "<name>" not found``;
- **mutate**: the class's ``overhead.podFixed`` becomes the pod's ``spec.overhead``; a pod that
  already carries a different overhead is refused (``pod rejected: Pod's Overhead doesn't match
  RuntimeClass's defined Overhead``). The class's ``scheduling.nodeSelector`` is merged into the
  pod's (a key the pod sets to another value is refused: ``conflict:
  runtimeClass.scheduling.nodeSelector[k] = v; pod.spec.nodeSelector[k] = w``) and its
  ``scheduling.tolerations`` are merged with the pod's as upstream's ``MergeTolerations`` does (a
  toleration another one already covers is dropped);
- **validate**: a pod overhead must equal its class's (``pod rejected: Pod Overhead set without
  corresponding RuntimeClass defined Overhead`` when the pod has one and its class, or the pod,
  has none), so a later mutating plugin or webhook cannot change it.

Quantities are compared by value, as ``apiequality.Semantic`` compares them (``1`` equals
``1000m``). The class is read from the store on each such pod create through the ResourceStore
(RuntimeClasses are few and pods naming one are a small share of creates); upstream reads its
informer, then the API on a miss, to the same effect.
"""

from __future__ import annotations

import copy
from typing import Any

from control.apiserver import errors
from control.apiserver.admission import CREATE, AdmissionRequest, forbidden
from control.apiserver.resource_store import ResourceStore
from control.resources.validation import InvalidQuantityError, Quantity

Obj = dict[str, Any]
OVERHEAD_MISMATCH = "pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead"
OVERHEAD_WITHOUT_CLASS = "pod rejected: Pod Overhead set without corresponding RuntimeClass defined Overhead"


def _same_quantity(a: Any, b: Any) -> bool:
    try:
        return Quantity.parse(a).compare(Quantity.parse(b)) == 0
    except InvalidQuantityError:
        return a == b


def same_resources(a: Any, b: Any) -> bool:
    """Semantic equality of two ResourceLists (an absent list equals an empty one)."""
    a = a if isinstance(a, dict) else {}
    b = b if isinstance(b, dict) else {}
    return a.keys() == b.keys() and all(_same_quantity(a[name], b[name]) for name in a)


def _toleration_key(toleration: Obj) -> tuple[str, str, str, str, int | None]:
    seconds = toleration.get("tolerationSeconds")
    return (
        toleration.get("key") or "",
        toleration.get("operator") or "",
        toleration.get("value") or "",
        toleration.get("effect") or "",
        None if seconds is None else int(seconds),
    )


def _is_superset(ss: Obj, t: Obj) -> bool:
    """Upstream's isSuperset: ``ss`` tolerates everything ``t`` does."""
    if _toleration_key(ss) == _toleration_key(t):
        return True
    ss_key, ss_operator, ss_value, ss_effect, ss_seconds = _toleration_key(ss)
    t_key, t_operator, t_value, t_effect, t_seconds = _toleration_key(t)
    # An empty key with Exists matches every key and value.
    if t_key != ss_key and (ss_key != "" or ss_operator != "Exists"):
        return False
    if t_effect != ss_effect and ss_effect != "":  # an empty effect matches every effect
        return False
    # A NoExecute toleration with a limit covers only tolerations with a limit no longer than it.
    if ss_effect == "NoExecute" and ss_seconds is not None and (t_seconds is None or t_seconds > ss_seconds):
        return False
    if ss_operator in ("Equal", ""):  # an empty operator means Equal
        return t_operator == "Equal" and t_value == ss_value
    return ss_operator == "Exists"


def merge_tolerations(first: list[Obj], second: list[Obj]) -> list[Obj]:
    """Upstream's tolerations.MergeTolerations: both lists in order, without any toleration that
    another one kept (or a later, different one) is a superset of; of equal ones the first stays."""
    everything = [*first, *second]
    merged: list[Obj] = []
    for i, toleration in enumerate(everything):
        if any(_is_superset(kept, toleration) for kept in merged):
            continue
        if any(
            _toleration_key(toleration) != _toleration_key(later) and _is_superset(later, toleration)
            for later in everything[i + 1 :]
        ):
            continue
        merged.append(toleration)
    return merged


class RuntimeClassAdmission:
    """Applies a new pod's RuntimeClass: overhead and scheduling (mutate), overhead (validate)."""

    resources = frozenset({("", "pods")})

    def __init__(self, *, objects: ResourceStore) -> None:
        self.objects = objects
        classes = objects.registry.lookup(group="node.k8s.io", version="v1", plural="runtimeclasses")
        if classes is None:
            raise ValueError("the registry has no node.k8s.io/v1 runtimeclasses")
        self._classes = classes

    @staticmethod
    def _applies(request: AdmissionRequest) -> bool:
        rt = request.rt
        return (
            not rt.group
            and rt.plural == "pods"
            and not request.subresource
            and request.operation == CREATE
            and request.obj is not None
        )

    async def _runtime_class(self, request: AdmissionRequest, spec: Obj) -> Obj | None:
        """The pod's class (None when it names none); a missing class is a 403."""
        name = spec.get("runtimeClassName")
        if name is None:
            return None
        try:
            return await self.objects.get(self._classes, namespace="", name=str(name))
        except errors.StatusError as exc:
            if exc.code == 404:
                raise forbidden(request, f'pod rejected: RuntimeClass "{name}" not found') from exc
            raise

    async def mutate(self, request: AdmissionRequest) -> None:
        if not self._applies(request):
            return
        assert request.obj is not None
        spec = request.obj.setdefault("spec", {})
        runtime_class = await self._runtime_class(request, spec)
        if runtime_class is None:
            return
        overhead = runtime_class.get("overhead")
        if isinstance(overhead, dict):
            pod_fixed = overhead.get("podFixed")
            if spec.get("overhead") and not same_resources(pod_fixed, spec.get("overhead")):
                raise forbidden(request, OVERHEAD_MISMATCH)
            if pod_fixed is None:
                spec.pop("overhead", None)
            else:
                spec["overhead"] = copy.deepcopy(pod_fixed)
        scheduling = runtime_class.get("scheduling")
        if isinstance(scheduling, dict):
            self._set_scheduling(request, spec, scheduling)

    @staticmethod
    def _set_scheduling(request: AdmissionRequest, spec: Obj, scheduling: Obj) -> None:
        class_selector = scheduling.get("nodeSelector") or {}
        pod_selector = spec.get("nodeSelector")
        if pod_selector is None:
            selector = dict(class_selector) or None
        else:
            selector = dict(pod_selector)
            for key, class_value in class_selector.items():
                if key in selector and selector[key] != class_value:
                    raise forbidden(
                        request,
                        f"conflict: runtimeClass.scheduling.nodeSelector[{key}] = {class_value}; "
                        f"pod.spec.nodeSelector[{key}] = {selector[key]}",
                    )
                selector[key] = class_value
        if selector is None:
            spec.pop("nodeSelector", None)
        else:
            spec["nodeSelector"] = selector
        tolerations = merge_tolerations(
            list(spec.get("tolerations") or []), copy.deepcopy(list(scheduling.get("tolerations") or []))
        )
        if tolerations:
            spec["tolerations"] = tolerations
        else:
            spec.pop("tolerations", None)

    async def validate(self, request: AdmissionRequest) -> None:
        if not self._applies(request):
            return
        assert request.obj is not None
        spec = request.obj.get("spec") or {}
        runtime_class = await self._runtime_class(request, spec)
        if not spec.get("overhead"):
            return
        overhead = runtime_class.get("overhead") if runtime_class is not None else None
        if not isinstance(overhead, dict):
            raise forbidden(request, OVERHEAD_WITHOUT_CLASS)
        if not same_resources(overhead.get("podFixed"), spec.get("overhead")):
            raise forbidden(request, OVERHEAD_MISMATCH)
