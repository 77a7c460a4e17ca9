"""Admission: the checks and changes a write goes through because of *who* makes it or what
else exists, after authorization and before it is stored (kube-apiserver's admission chain).

Defaulting and validation that depend only on the object itself live with the kinds
(``control.resources``); admission is for the rest — the ServiceAccount plugin (mount the
pod's token), NodeRestriction (a kubelet may touch only its own Node and pods), RBAC's
escalation checks. Each plugin has a ``mutate`` step (may change ``request.obj``) and a
``validate`` step (may only refuse, by raising a StatusError); the chain runs every
plugin's ``mutate``, then the object's own validation, then every plugin's ``validate``.

The ResourceStore runs the chain for writes made on behalf of a user. The API server's own
writes (bootstrap objects, cascading deletes) carry no user and are not admitted.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
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


class AdmissionPlugin(Protocol):
    async def mutate(self, request: AdmissionRequest) -> None: ...

    async def validate(self, request: AdmissionRequest) -> None: ...


class AdmissionChain:
    """The plugins in order; each step's duration goes to ``step_duration`` when given
    (``apiserver_admission_step_admission_duration_seconds``: type, operation, rejected)."""

    def __init__(
        self, plugins: Sequence[AdmissionPlugin] = (), *, step_duration: Histogram | None = None
    ) -> None:
        self.plugins = tuple(plugins)
        self._step_duration = step_duration
        self._step_children: dict[tuple[str, str, bool], Any] = {}

    async def mutate(self, request: AdmissionRequest) -> None:
        started = time.perf_counter()
        rejected = True
        try:
            for plugin in self.plugins:
                await plugin.mutate(request)
            rejected = False
        finally:
            self._observe("admit", request, started, rejected=rejected)

    async def validate(self, request: AdmissionRequest) -> None:
        started = time.perf_counter()
        rejected = True
        try:
            for plugin in self.plugins:
                await plugin.validate(request)
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
