"""Admission: the checks and changes a write goes through because of *who* makes it or what
else exists, after authorization and before it is stored (kube-apiserver's admission chain).

Defaulting and validation that depend only on the object itself live with the kinds
(``control.resources``); admission is for the rest — the ServiceAccount plugin (mount the
pod's token), NodeRestriction (a kubelet may touch only its own Node and pods), RBAC's
escalation checks. A plugin has a ``mutate`` step (may change ``request.obj``), a
``validate`` step (may only refuse, by raising a StatusError), or both; the chain runs every
plugin's ``mutate``, then the object's own validation, then every plugin's ``validate``.
As upstream's ``MutationInterface``/``ValidationInterface``, a plugin without a step is not
called for it, and one that acts on a few kinds names them (``resources``), so a write of
another kind does not pass through it: the chain works out once per kind which steps run.

The ResourceStore runs the chain for writes made on behalf of a user. The API server's own
writes (bootstrap objects, cascading deletes) carry no user and are not admitted.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from prometheus_client import Histogram

from control.apiserver import errors
from control.apiserver.authn import UserInfo
from control.resources.registry import ResourceType

CREATE = "CREATE"
UPDATE = "UPDATE"
DELETE = "DELETE"


@dataclass(kw_only=True)
class AdmissionRequest:
    operation: str  # CREATE, UPDATE or DELETE
    rt: ResourceType
    namespace: str
    name: str
    subresource: str
    user: UserInfo
    obj: dict[str, Any] | None  # the object to store (None for DELETE); mutate may change it
    old: dict[str, Any] | None  # the stored object (None for CREATE)
    dry_run: bool = False


class MutatingPlugin(Protocol):
    async def mutate(self, request: AdmissionRequest) -> None: ...


class ValidatingPlugin(Protocol):
    async def validate(self, request: AdmissionRequest) -> None: ...


AdmissionPlugin = MutatingPlugin | ValidatingPlugin
Step = Callable[[AdmissionRequest], Awaitable[None]]


def steps_for(
    plugins: Sequence[AdmissionPlugin], rt: ResourceType
) -> tuple[tuple[Step, ...], tuple[Step, ...]]:
    """The ``mutate`` and ``validate`` steps that act on ``rt``'s writes, in chain order. A
    plugin's optional ``resources`` (a set of ``(group, plural)``) names the only kinds it acts
    on; a plugin without it sees every kind."""
    kind = (rt.group, rt.plural)
    acting = [plugin for plugin in plugins if kind in getattr(plugin, "resources", (kind,))]
    mutating = tuple(plugin.mutate for plugin in acting if hasattr(plugin, "mutate"))
    validating = tuple(plugin.validate for plugin in acting if hasattr(plugin, "validate"))
    return mutating, validating


class AdmissionChain:
    """The plugins in order; each step's duration goes to ``step_duration`` when given
    (``apiserver_admission_step_admission_duration_seconds``: type, operation, rejected)."""

    def __init__(
        self, plugins: Sequence[AdmissionPlugin] = (), *, step_duration: Histogram | None = None
    ) -> None:
        self.plugins = tuple(plugins)
        self._step_duration = step_duration
        self._step_children: dict[tuple[str, str, bool], Any] = {}
        self._steps_by_kind: dict[tuple[str, str], tuple[tuple[Step, ...], tuple[Step, ...]]] = {}

    def _steps(self, rt: ResourceType) -> tuple[tuple[Step, ...], tuple[Step, ...]]:
        steps = self._steps_by_kind.get((rt.group, rt.plural))
        if steps is None:
            steps = self._steps_by_kind[rt.group, rt.plural] = steps_for(self.plugins, rt)
        return steps

    async def mutate(self, request: AdmissionRequest) -> None:
        started = time.perf_counter()
        rejected = True
        try:
            for step in self._steps(request.rt)[0]:
                await step(request)
            rejected = False
        finally:
            self._observe("admit", request, started, rejected=rejected)

    async def validate(self, request: AdmissionRequest) -> None:
        started = time.perf_counter()
        rejected = True
        try:
            for step in self._steps(request.rt)[1]:
                await step(request)
            rejected = False
        finally:
            self._observe("validate", request, started, rejected=rejected)

    def _observe(self, step: str, request: AdmissionRequest, started: float, *, rejected: bool) -> None:
        if self._step_duration is None:
            return
        key = (step, request.operation, rejected)
        child = self._step_children.get(key)
        if child is None:  # labels() costs more than the observation; a handful of children exist
            child = self._step_children[key] = self._step_duration.labels(
                step, request.operation, "true" if rejected else "false"
            )
        child.observe(time.perf_counter() - started)


def forbidden(request: AdmissionRequest, reason: str) -> errors.StatusError:
    """Upstream's ``admission.NewForbidden``: ``<resource> "<name>" is forbidden: <reason>``,
    naming the object (its generateName before a name is generated)."""
    metadata = (request.obj or request.old or {}).get("metadata") or {}
    name = request.name or metadata.get("name") or metadata.get("generateName") or ""
    resource = request.rt.group_resource
    subject = f'{resource} "{name}"' if name else resource
    details: dict[str, Any] = {"kind": request.rt.plural}
    if request.rt.group:
        details["group"] = request.rt.group
    if name:
        details["name"] = name
    return errors.StatusError(
        code=403, reason="Forbidden", message=f"{subject} is forbidden: {reason}", details=details
    )
