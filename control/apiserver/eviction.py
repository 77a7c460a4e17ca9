"""``POST pods/<name>/eviction``: delete a pod only if its PodDisruptionBudget allows it
(upstream's ``EvictionREST``), which is what ``kubectl drain`` asks.

A pod that is not running yet, already finished or already being deleted is deleted at once.
Otherwise the one PDB selecting it (more than one is an error, as upstream) must allow a
disruption: its status must be current (``observedGeneration``) and ``disruptionsAllowed``
above 0, else 429 TooManyRequests ("Cannot evict pod as it would violate the pod's disruption
budget."), which ``kubectl drain`` retries. Granting an eviction decrements
``disruptionsAllowed`` and records the pod in ``disruptedPods`` in one compare-and-swap on the
PDB's status, so two concurrent evictions cannot both spend the last allowed disruption; then
the pod is deleted with the Eviction's ``deleteOptions``. An unready pod is deleted without
spending a disruption when the budget is met anyway (or ``unhealthyPodEvictionPolicy:
AlwaysAllow``). The disruption controller (``control.controllers.disruption``) recomputes the
budget as pods go.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from aiohttp import web

from control.apiserver import errors
from control.apiserver.admission import CREATE, AdmissionRequest
from control.apiserver.call import Call, json_response
from control.apiserver.codec import decode
from control.apiserver.negotiation import require_object
from control.apiserver.writes import delete_options
from control.resources.registry import ResourceType
from control.resources.selectors import SelectorError, label_selector_from_spec

MAX_DISRUPTED_PODS = 2000
_EVICTION_VERSIONS = ("policy/v1", "policy/v1beta1")
_TOO_MANY_REQUESTS = "Cannot evict pod as it would violate the pod's disruption budget."


async def evict(call: Call) -> web.Response:
    eviction = require_object(await call.body())
    api_version, kind = eviction.get("apiVersion"), eviction.get("kind")
    if (api_version and api_version not in _EVICTION_VERSIONS) or (kind and kind != "Eviction"):
        raise errors.bad_request(
            f"the body of the request must be a policy/v1 Eviction, not {api_version} {kind}"
        )
    name = call.info.name
    body_name = (eviction.get("metadata") or {}).get("name")
    if body_name and body_name != name:
        raise errors.bad_request("name in URL does not match name in Eviction object")
    options = delete_options(call, eviction.get("deleteOptions"))
    if call.dry_run:
        options = replace(options, dry_run=True)
    namespace = call.info.namespace
    pods = call.rt
    await call.objects.admission.validate(
        AdmissionRequest(
            operation=CREATE,
            rt=pods,
            namespace=namespace,
            name=name,
            subresource="eviction",
            user=call.user,
            obj=eviction,
            old=None,
            dry_run=call.dry_run,
        )
    )
    pod = await call.objects.get(pods, namespace=namespace, name=name)
    if not _ignores_budgets(pod):
        budgets = call.objects.registry.lookup(group="policy", version="v1", plural="poddisruptionbudgets")
        assert budgets is not None
        budget = await _budget_of(call, budgets, pod)
        if budget is not None and not _deletable_without_disruption(pod, budget):
            await _spend_disruption(call, budgets, budget, pod_name=name, dry_run=options.dry_run)
    await call.objects.delete(pods, namespace=namespace, name=name, options=options)
    return json_response(
        {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}, status=201
    )


def _ignores_budgets(pod: dict[str, Any]) -> bool:
    """``canIgnorePDB``: not running yet, finished, or already being deleted."""
    phase = (pod.get("status") or {}).get("phase")
    return phase in ("Succeeded", "Failed", "Pending") or bool(pod["metadata"].get("deletionTimestamp"))


async def _budget_of(call: Call, budgets_rt: ResourceType, pod: dict[str, Any]) -> dict[str, Any] | None:
    namespace = pod["metadata"]["namespace"]
    labels = pod["metadata"].get("labels") or {}
    listing = await call.objects.store.list(call.objects.prefix(budgets_rt, namespace=namespace))
    matching = []
    for kv in listing.items:
        budget = decode(kv)
        selector = (budget.get("spec") or {}).get("selector")
        if selector is None:
            continue
        try:
            if label_selector_from_spec(selector).matches(labels):
                matching.append(budget)
        except SelectorError:
            continue
    if len(matching) > 1:
        raise errors.internal(
            "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
        )
    return matching[0] if matching else None


def _deletable_without_disruption(pod: dict[str, Any], budget: dict[str, Any]) -> bool:
    """An unready pod spends nothing when the budget holds without it (or the policy says so)."""
    if _pod_ready(pod):
        return False
    if (budget.get("spec") or {}).get("unhealthyPodEvictionPolicy") == "AlwaysAllow":
        return True
    status = budget.get("status") or {}
    desired = int(status.get("desiredHealthy") or 0)
    return int(status.get("currentHealthy") or 0) >= desired and desired > 0


def _pod_ready(pod: dict[str, Any]) -> bool:
    for condition in (pod.get("status") or {}).get("conditions") or ():
        if condition.get("type") == "Ready":
            return condition.get("status") == "True"
    return False


async def _spend_disruption(
    call: Call, budgets_rt: ResourceType, budget: dict[str, Any], *, pod_name: str, dry_run: bool
) -> None:
    """``checkAndDecrement``, as one compare-and-swap on the budget's status."""
    name = budget["metadata"]["name"]
    stamp = call.now.strftime("%Y-%m-%dT%H:%M:%SZ")

    def decrement(current: dict[str, Any]) -> dict[str, Any]:
        status = current.setdefault("status", {})
        generation = current["metadata"].get("generation", 0)
        if int(status.get("observedGeneration") or 0) < int(generation or 0):
            raise _too_many_requests(f"The disruption budget {name} is still being processed by the server.")
        allowed = int(status.get("disruptionsAllowed") or 0)
        if allowed < 0:
            raise errors.forbidden(
                f'poddisruptionbudgets.policy "{name}" is forbidden: pdb disruptions allowed is negative'
            )
        disrupted = dict(status.get("disruptedPods") or {})
        if len(disrupted) > MAX_DISRUPTED_PODS:
            raise errors.forbidden(
                f'poddisruptionbudgets.policy "{name}" is forbidden: DisruptedPods map too big - too many '
                "evictions not confirmed by PDB controller"
            )
        if allowed == 0:
            raise _too_many_requests(
                f"The disruption budget {name} needs {int(status.get('desiredHealthy') or 0)} healthy pods "
                f"and has {int(status.get('currentHealthy') or 0)} currently"
            )
        status["disruptionsAllowed"] = allowed - 1
        if allowed - 1 == 0:
            _mark_insufficient(status, stamp=stamp)
        disrupted[pod_name] = stamp
        status["disruptedPods"] = disrupted
        return current

    await call.objects.update(
        budgets_rt,
        namespace=budget["metadata"]["namespace"],
        name=name,
        transform=decrement,
        subresource="status",
        dry_run=dry_run,
    )


def _mark_insufficient(status: dict[str, Any], *, stamp: str) -> None:
    """``UpdateDisruptionAllowedCondition`` once the last allowed disruption is spent."""
    conditions = [dict(c) for c in status.get("conditions") or ()]
    for condition in conditions:
        if condition.get("type") == "DisruptionAllowed":
            if condition.get("status") != "False":
                condition["lastTransitionTime"] = stamp
            condition.update(status="False", reason="InsufficientPods")
            break
    else:
        conditions.append(
            {
                "type": "DisruptionAllowed",
                "status": "False",
                "reason": "InsufficientPods",
                "message": "",
                "lastTransitionTime": stamp,
            }
        )
    status["conditions"] = conditions


def _too_many_requests(cause: str) -> errors.StatusError:
    return errors.StatusError(
        code=429,
        reason="TooManyRequests",
        message=_TOO_MANY_REQUESTS,
        details={"causes": [{"reason": "DisruptionBudget", "message": cause}]},
    )
