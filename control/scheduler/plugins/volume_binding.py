"""VolumeBinding: a pod goes only where its PersistentVolumeClaims' volumes can be (upstream's
``pkg/scheduler/framework/plugins/volumebinding``).

**PreFilter** reads every claim the pod names (``persistentVolumeClaim`` volumes, and generic
``ephemeral`` ones, whose claim is ``<pod>-<volume>``) and rules the pod out on every node at once,
UnschedulableAndUnresolvable, with upstream's words, when one is missing (``persistentvolumeclaim
"www-web-0" not found``; for an ephemeral volume ``waiting for ephemeral volume controller to create
the persistentvolumeclaim ...``), is being deleted, was lost, or — for ephemeral volumes — is not the
pod's own; or when a claim is not bound yet and waits for nobody but the PV controller: a claim of an
Immediate class, of no class, of a class that does not exist, or naming a volume already (``pod has
unbound immediate PersistentVolumeClaims``). Claims bound to a volume (``spec.volumeName`` and the
``pv.kubernetes.io/bind-completed`` annotation) and unbound claims of a WaitForFirstConsumer class are
what the filter looks at. A pod with no claims skips the plugin.

**Filter**, per node, as ``FindPodVolumes``: a bound claim's PersistentVolume must allow the node
(its ``spec.nodeAffinity.required``: ``node(s) had volume node affinity conflict``; a volume that does
not exist: ``node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)``). An unbound
WaitForFirstConsumer claim whose node was already chosen (``volume.kubernetes.io/selected-node``)
fits only that node and is to be provisioned; any other first gets the smallest Available volume
that fits it on this node (:func:`~control.scheduler.volumes.find_matching_volume`, each volume used
once per pod), and is otherwise to be provisioned — which needs a class that provisions (not
``kubernetes.io/no-provisioner``) and whose ``allowedTopologies`` admit the node. Otherwise:
``node(s) didn't find available persistent volumes to bind``.

**Reserve** takes the chosen node's decision and *assumes* its volumes, so the next pods'
cycles do not pick the same volume before the API shows it taken (upstream's assume cache: an
assumption lasts until the informer shows a newer version of the volume, or Unreserve drops it).
**PreBind**, in the binding task, pre-binds each chosen volume to its claim (``claimRef`` and
``pv.kubernetes.io/bound-by-controller``, for the PV controller to finish), writes the node into
each claim to provision (``volume.kubernetes.io/selected-node`` — the signal for the PV controller to
provision there), and then waits, woken by claim changes, until every claim is bound. A claim to
provision whose annotation is taken away or changed means provisioning failed (``binding volumes:
provisioning failed for PVC "www-web-0"``), and after ``bind_timeout`` (upstream's 600 s) the binding
gives up (``binding volumes: timed out waiting for the condition``); either way the pod backs off and
is scheduled again. Waiting happens in the pod's own binding task, so other pods keep being scheduled.

Not carried over: the storage capacity checks and scoring (CSIStorageCapacity) and the CSI migration
translations.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from control.scheduler.cache import NodeInfo
from control.scheduler.framework import BindingPlugin, CycleState, FilterPlugin, Listers, PreBindError
from control.scheduler.status import Code, Status
from control.scheduler.volumes import (
    NO_PROVISIONER,
    SELECTED_NODE_ANNOTATION,
    WAIT_FOR_FIRST_CONSUMER,
    annotations,
    claim_class,
    claim_request,
    find_matching_volume,
    is_fully_bound,
    metadata,
    node_affinity_allows,
    topology_allows,
    volume_bound_to,
    volume_class,
)

NAME = "VolumeBinding"
DEFAULT_BIND_TIMEOUT = 600.0

ERR_REASON_UNBOUND_IMMEDIATE = "pod has unbound immediate PersistentVolumeClaims"
ERR_REASON_NODE_CONFLICT = "node(s) had volume node affinity conflict"
ERR_REASON_BIND_CONFLICT = "node(s) didn't find available persistent volumes to bind"
ERR_REASON_PV_NOT_EXIST = "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)"

Obj = Mapping[str, Any]
ClaimKey = tuple[str, str]  # (namespace, name)


class ClaimBinder(Protocol):
    """What PreBind needs beyond the listers (the scheduler's client and claim informer)."""

    async def update_volume(self, volume: Obj) -> None:
        """Write ``volume`` (a PersistentVolume pre-bound to a claim); :class:`PreBindError`
        (``binding volumes: ...``) when the write fails."""
        ...

    async def select_node(self, *, namespace: str, name: str, node: str) -> str:
        """Set the claim's ``volume.kubernetes.io/selected-node`` to ``node``; the written claim's
        resourceVersion. :class:`PreBindError` (``binding volumes: ...``) when the write fails."""
        ...

    async def wait(self, ready: Callable[[], bool], *, timeout: float) -> bool:  # noqa: ASYNC109
        """Re-check ``ready()`` after every claim change until it is true (True) or ``timeout`` passes
        (False). Exceptions from ``ready`` propagate."""
        ...


def _version(obj: Obj) -> int | None:
    """The resourceVersion as the number it is on every API server (upstream's assume cache reads it
    so too); None if it is not one."""
    try:
        return int(metadata(obj).get("resourceVersion") or "")
    except ValueError:
        return None


def _key(claim: Obj) -> ClaimKey:
    return metadata(claim).get("namespace") or "", metadata(claim).get("name") or ""


@dataclass(slots=True)
class _NodeDecision:
    """How the pod's unbound claims are served on one node (upstream's PodVolumes)."""

    static: list[tuple[Obj, Obj]] = field(default_factory=list)  # (claim, the volume chosen for it)
    provision: list[Obj] = field(default_factory=list)


@dataclass(slots=True)
class _PodVolumes:
    """One cycle's view of the pod's claims, and the decision per feasible node."""

    bound: list[Obj | None] = field(default_factory=list)  # the bound claims' volumes (None: missing)
    delayed: list[Obj] = field(default_factory=list)
    by_node: dict[str, _NodeDecision] = field(default_factory=dict)
    reserved: _NodeDecision | None = None


def _unresolvable(*reasons: str) -> Status:
    return Status(Code.UNSCHEDULABLE_AND_UNRESOLVABLE, reasons, NAME)


class VolumeBinding(FilterPlugin, BindingPlugin):
    name = NAME

    def __init__(
        self,
        listers: Listers,
        *,
        binder: ClaimBinder | None = None,
        bind_timeout: float = DEFAULT_BIND_TIMEOUT,
    ) -> None:
        if bind_timeout <= 0:
            raise ValueError(f"VolumeBinding: bind_timeout must be positive, got {bind_timeout}")
        self._listers = listers
        self._binder = binder
        self._bind_timeout = bind_timeout
        # volume name -> (the claim it is assumed for, the volume's resourceVersion when assumed)
        self._assumed: dict[str, tuple[ClaimKey, int | None]] = {}

    # --- PreFilter / Filter -------------------------------------------------------------------

    def _pod_claims(self, state: CycleState) -> list[Obj] | Status:
        """``podHasPVCs``: the pod's claims, or the status that rules the pod out."""
        pod = state.pod
        found: list[Obj] = []
        for volume in (pod.pod.get("spec") or {}).get("volumes") or ():
            ephemeral = False
            if volume.get("persistentVolumeClaim") is not None:
                name = volume["persistentVolumeClaim"].get("claimName") or ""
            elif volume.get("ephemeral") is not None:
                name, ephemeral = f"{pod.name}-{volume.get('name')}", True
            else:
                continue
            claim = self._listers.claim(pod.namespace, name)
            if claim is None:
                if ephemeral:
                    return _unresolvable(
                        f'waiting for ephemeral volume controller to create the persistentvolumeclaim "{name}"'
                    )
                return _unresolvable(f'persistentvolumeclaim "{name}" not found')
            if (claim.get("status") or {}).get("phase") == "Lost":
                volume_name = (claim.get("spec") or {}).get("volumeName") or ""
                return _unresolvable(
                    f'persistentvolumeclaim "{name}" bound to non-existent persistentvolume "{volume_name}"'
                )
            if metadata(claim).get("deletionTimestamp"):
                return _unresolvable(f'persistentvolumeclaim "{name}" is being deleted')
            if ephemeral and not any(
                ref.get("controller") and ref.get("uid") == pod.uid
                for ref in metadata(claim).get("ownerReferences") or ()
            ):
                return _unresolvable(
                    f"PVC {pod.namespace}/{name} was not created for pod {pod.key} (pod is not owner)"
                )
            found.append(claim)
        return found

    def _delay_binding(self, claim: Obj) -> bool:
        """``IsDelayBindingMode``: the claim's class exists and says WaitForFirstConsumer."""
        name = claim_class(claim)
        storage_class = self._listers.storage_class(name) if name else None
        return storage_class is not None and storage_class.get("volumeBindingMode") == WAIT_FOR_FIRST_CONSUMER

    def pre_filter(self, state: CycleState) -> bool | Status:
        claims = self._pod_claims(state)
        if isinstance(claims, Status):
            return claims
        if not claims:
            return False
        volumes = _PodVolumes()
        for claim in claims:
            if is_fully_bound(claim):
                volumes.bound.append(self._listers.volume(claim["spec"]["volumeName"]))
            elif self._delay_binding(claim) and not (claim.get("spec") or {}).get("volumeName"):
                volumes.delayed.append(claim)
            else:
                return _unresolvable(ERR_REASON_UNBOUND_IMMEDIATE)
        volumes.delayed.sort(key=claim_request)  # smallest first, as upstream's byPVCSize
        state.data[NAME] = volumes
        return True

    def _taken_by_assumption(self, volume: Obj, claim: Obj) -> bool:
        """Whether another pod's reserved binding holds ``volume`` that the cache does not show yet."""
        name = metadata(volume).get("name") or ""
        assumed = self._assumed.get(name)
        if assumed is None:
            return False
        owner, version = assumed
        seen = _version(volume)
        if seen is not None and version is not None and seen > version:
            del self._assumed[name]  # the cache has caught up: it tells the truth now
            return False
        return owner != _key(claim)

    def _available_for(self, claim: Obj) -> list[Obj]:
        wanted = claim_class(claim)
        return [
            volume
            for volume in self._listers.persistent_volumes()
            if volume_class(volume) == wanted and not self._taken_by_assumption(volume, claim)
        ]

    def _can_provision(self, claim: Obj, node: NodeInfo) -> bool:
        """``checkVolumeProvisions`` for one claim on one node."""
        storage_class = self._listers.storage_class(claim_class(claim))
        if storage_class is None:
            return False
        provisioner = storage_class.get("provisioner") or ""
        return provisioner not in ("", NO_PROVISIONER) and topology_allows(storage_class, node.labels)

    def _decide(self, delayed: Sequence[Obj], node: NodeInfo) -> _NodeDecision | None:
        """How the unbound claims are served on ``node``; None if they cannot be."""
        decision = _NodeDecision()
        chosen: set[str] = set()
        for claim in delayed:
            selected = annotations(claim).get(SELECTED_NODE_ANNOTATION)
            if selected is not None:
                if selected != node.name:
                    return None
                decision.provision.append(claim)
                continue
            volume = find_matching_volume(
                claim, self._available_for(claim), node_name=node.name, labels=node.labels, excluded=chosen
            )
            if volume is None:
                decision.provision.append(claim)
            else:
                chosen.add(metadata(volume).get("name") or "")
                decision.static.append((claim, volume))
        if not all(self._can_provision(claim, node) for claim in decision.provision):
            return None
        return decision

    def filter(self, state: CycleState, node: NodeInfo) -> Status | None:
        volumes: _PodVolumes = state.data[NAME]
        reasons: list[str] = []
        if not all(
            node_affinity_allows(volume, node_name=node.name, labels=node.labels)
            for volume in volumes.bound
            if volume is not None
        ):
            reasons.append(ERR_REASON_NODE_CONFLICT)
        decision = self._decide(volumes.delayed, node) if volumes.delayed else _NodeDecision()
        if decision is None:
            reasons.append(ERR_REASON_BIND_CONFLICT)
        if any(volume is None for volume in volumes.bound):
            reasons.append(ERR_REASON_PV_NOT_EXIST)
        if reasons:
            return _unresolvable(*reasons)
        if decision is not None and (decision.static or decision.provision):
            volumes.by_node[node.name] = decision
        return None

    # --- Reserve / PreBind / Unreserve --------------------------------------------------------

    def reserve(self, state: CycleState, node: str) -> None:
        """``AssumePodVolumes``: hold the chosen volumes for this pod."""
        volumes: _PodVolumes | None = state.data.get(NAME)
        if volumes is None:
            return
        volumes.reserved = volumes.by_node.get(node)
        for claim, volume in volumes.reserved.static if volumes.reserved else ():
            self._assumed[metadata(volume).get("name") or ""] = (_key(claim), _version(volume))

    async def pre_bind(self, state: CycleState, node: str) -> None:
        """``BindPodVolumes``: pre-bind the chosen volumes, select the node on each claim to
        provision, then wait until every one of those claims is bound."""
        volumes: _PodVolumes | None = state.data.get(NAME)
        decision = volumes.reserved if volumes is not None else None
        if decision is None:
            return
        if self._binder is None:
            raise PreBindError("binding volumes: no claim binder configured")
        for claim, volume in decision.static:
            changed = volume_bound_to(volume, claim)
            if changed is not None:
                await self._binder.update_volume(changed)
        written: dict[ClaimKey, int | None] = {}
        for claim in decision.provision:
            namespace, name = _key(claim)
            current = self._listers.claim(namespace, name)
            if current is None or annotations(current).get(SELECTED_NODE_ANNOTATION) != node:
                version = await self._binder.select_node(namespace=namespace, name=name, node=node)
                written[(namespace, name)] = _version({"metadata": {"resourceVersion": version}})
        ready = functools.partial(
            self._all_bound,
            static=[_key(claim) for claim, _ in decision.static],
            provision=[_key(claim) for claim in decision.provision],
            node=node,
            written=written,
        )
        if not await self._binder.wait(ready, timeout=self._bind_timeout):
            raise PreBindError("binding volumes: timed out waiting for the condition")

    def _all_bound(
        self,
        *,
        static: Sequence[ClaimKey],
        provision: Sequence[ClaimKey],
        node: str,
        written: Mapping[ClaimKey, int | None],
    ) -> bool:
        """``checkBindings``: True when every claim is bound; PreBindError when provisioning failed.
        A claim the cache shows older than our own write (``written``) is not judged yet."""
        for namespace, name in (*static, *provision):
            claim = self._listers.claim(namespace, name)
            if claim is None:
                raise PreBindError(f'binding volumes: persistentvolumeclaim "{name}" not found')
            if is_fully_bound(claim):
                continue
            ours, seen = written.get((namespace, name)), _version(claim)
            if ours is not None and seen is not None and seen < ours:
                return False  # the informer has not caught up with our write
            if (namespace, name) in provision and annotations(claim).get(SELECTED_NODE_ANNOTATION) != node:
                raise PreBindError(f'binding volumes: provisioning failed for PVC "{name}"')
            return False
        return True

    def unreserve(self, state: CycleState, node: str) -> None:
        """``RevertAssumedPodVolumes``: give the chosen volumes back."""
        volumes: _PodVolumes | None = state.data.get(NAME)
        if volumes is None or volumes.reserved is None:
            return
        for claim, volume in volumes.reserved.static:
            name = metadata(volume).get("name") or ""
            if self._assumed.get(name, (None, None))[0] == _key(claim):
                del self._assumed[name]
        volumes.reserved = None
