"""Recording Events about objects, as client-go's record.EventRecorder does.

Controllers say ``recorder.event(obj, type="Normal", reason="ScalingReplicaSet",
message="Scaled up replica set web-5d9 from 0 to 3")``; the recorder writes a core/v1
Event in the object's namespace (``default`` for cluster-scoped objects) with
``involvedObject`` filled from the object, ``source.component`` and
``reportingComponent`` set, and — like upstream's correlator — repeats of the same
event (same object, reason, message) within ten minutes bump ``count`` and
``lastTimestamp`` on the existing Event instead of creating new ones. Recording never
raises: an event that cannot be written is logged and dropped (events are best effort
upstream too).
"""

from __future__ import annotations

import hashlib
import logging
import time
from datetime import UTC, datetime
from typing import Any

from control.client import errors
from control.client.rest import PatchType, RESTClient
from control.controllers.kinds import EVENTS

log = logging.getLogger("kubelab.events")

_REPEAT_WINDOW_SECONDS = 600.0
_REMEMBERED = 4096


class EventRecorder:
    def __init__(self, *, client: RESTClient, component: str, host: str = "") -> None:
        self._client = client
        self._component = component
        self._host = host
        # (namespace, event name) -> (count, monotonic time of the last write)
        self._recent: dict[tuple[str, str], tuple[int, float]] = {}

    async def event(self, obj: dict[str, Any], *, type: str, reason: str, message: str) -> None:
        """Record one event about ``obj`` (a dict with kind, apiVersion and metadata)."""
        metadata = obj.get("metadata") or {}
        namespace = metadata.get("namespace") or "default"
        involved = {
            "kind": obj.get("kind", ""),
            "apiVersion": obj.get("apiVersion", ""),
            "namespace": metadata.get("namespace", ""),
            "name": metadata.get("name", ""),
            "uid": metadata.get("uid", ""),
            "resourceVersion": metadata.get("resourceVersion", ""),
        }
        digest = hashlib.sha256(f"{involved['uid']}/{type}/{reason}/{message}".encode()).hexdigest()[:10]
        name = f"{involved['name']}.{digest}"
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        key = (namespace, name)
        seen = self._recent.get(key)
        try:
            if seen is not None and time.monotonic() - seen[1] < _REPEAT_WINDOW_SECONDS:
                count = seen[0] + 1
                await self._client.patch(
                    EVENTS,
                    name,
                    {"count": count, "lastTimestamp": now},
                    namespace=namespace,
                    patch_type=PatchType.MERGE,
                )
            else:
                count = 1
                body = {
                    "apiVersion": "v1",
                    "kind": "Event",
                    "metadata": {"name": name, "namespace": namespace},
                    "involvedObject": {k: v for k, v in involved.items() if v},
                    "reason": reason,
                    "message": message,
                    "type": type,
                    "count": 1,
                    "firstTimestamp": now,
                    "lastTimestamp": now,
                    "source": {"component": self._component, **({"host": self._host} if self._host else {})},
                    "reportingComponent": self._component,
                    # as client-go's recorder: the instance is the source host ("" for a
                    # controller), so `kubectl get events -o wide` shows SOURCE "job-controller"
                    "reportingInstance": self._host,
                }
                try:
                    await self._client.create(EVENTS, body, namespace=namespace)
                except errors.AlreadyExistsError:
                    count = 2
                    await self._client.patch(
                        EVENTS,
                        name,
                        {"count": count, "lastTimestamp": now},
                        namespace=namespace,
                        patch_type=PatchType.MERGE,
                    )
        except errors.RequestError as exc:
            log.warning("dropping event %s %s on %s/%s: %s", type, reason, namespace, involved["name"], exc)
            return
        if len(self._recent) >= _REMEMBERED:
            self._recent.clear()
        self._recent[key] = (count, time.monotonic())
