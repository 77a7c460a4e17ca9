"""Serving the kinds that CustomResourceDefinitions declare (apiextensions-apiserver's job).

A stored CRD becomes one ResourceType per served version, added to the registry at run
time; discovery, OpenAPI, the generic handlers, Table output (``additionalPrinterColumns``)
and schema checks (the version's ``openAPIV3Schema``, with structural pruning) then work
for it like for a built-in kind: no handler is written per kind. The CRD's status gets
``NamesAccepted`` and ``Established`` and its ``acceptedNames``.

Deleting a CRD deletes its instances first, as upstream's
``customresourcecleanup.apiextensions.k8s.io`` finalizer does, then lets the CRD go.

Versions: every served version reads and writes the same keys. Objects are written in
the CRD's storage version and each stored object keeps the version it was written in; a
request in another version is converted (``control.apiserver.conversion``), by changing
apiVersion only (``strategy: None``, as upstream) or by the CRD's conversion webhook
(``strategy: Webhook``, ``control.apiserver.conversion_webhook``: a ConversionReview over
HTTPS to the webhook's URL or Service, a failure answered 500 with upstream's message).
A CRD with one version converts nothing. Label selectors match objects as stored, so a
webhook that changes labels is not seen by them. Scale subresources use the CRD's JSON
paths.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import orjson

from control.apiserver import errors
from control.apiserver.conversion import NoneConverter
from control.apiserver.conversion_webhook import WebhookClientConfig, WebhookConverter
from control.apiserver.resource_store import ResourceStore, rfc3339
from control.apiserver.service_endpoints import ServiceEndpoints
from control.apiserver.store_follower import follow_prefix
from control.apiserver.webhook_client import WebhookClient
from control.resources.registry import (
    Conversion,
    Converter,
    PrinterColumn,
    Registry,
    ResourceType,
    ScaleSubresource,
)
from control.store import Event, EventType, KeyValue

CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"


def resource_types(crd: dict[str, Any], *, converter: Converter | None = None) -> list[ResourceType]:
    """The ResourceTypes a CRD declares, one per served version; with more than one version,
    converted by ``converter`` (``strategy: None``'s when not given)."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    kind = names.get("kind") or ""
    plural = names.get("plural") or ""
    group = spec.get("group") or ""
    if not (kind and plural and group):
        return []
    versions = [v for v in spec.get("versions") or [] if isinstance(v, dict)]
    conversion = None
    if len(versions) > 1:
        storage = next((v for v in versions if v.get("storage")), versions[0])
        conversion = Conversion(
            storage_version=f"{group}/{storage.get('name', '')}", converter=converter or NoneConverter()
        )
    types = []
    for version in versions:
        if not version.get("served", True):
            continue
        subresources = version.get("subresources") or {}
        scale_spec = subresources.get("scale")
        scale = None
        if isinstance(scale_spec, dict):
            scale = ScaleSubresource(
                spec_replicas_path=str(scale_spec.get("specReplicasPath", ".spec.replicas")).lstrip("."),
                status_replicas_path=str(scale_spec.get("statusReplicasPath", ".status.replicas")).lstrip(
                    "."
                ),
                label_selector_path=str(scale_spec.get("labelSelectorPath", "")).lstrip("."),
            )
        columns = tuple(
            PrinterColumn(
                name=str(column.get("name", "")),
                type=str(column.get("type", "string")),
                format=str(column.get("format", "")),
                description=str(column.get("description", "")),
                priority=int(column.get("priority", 0) or 0),
                json_path=str(column.get("jsonPath", "")),
            )
            for column in version.get("additionalPrinterColumns") or []
            if isinstance(column, dict)
        )
        schema = ((version.get("schema") or {}).get("openAPIV3Schema")) or {
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": True,
        }
        types.append(
            ResourceType(
                group=group,
                version=str(version.get("name", "")),
                kind=kind,
                plural=plural,
                singular=names.get("singular") or kind.lower(),
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                has_status="status" in subresources,
                scale=scale,
                schema=schema,
                printer_columns=columns,
                conversion=conversion,
            )
        )
    return types


def converter_for(crd: dict[str, Any], *, client: WebhookClient) -> Converter:
    """The CRD's converter: its webhook (called through ``client``) for ``strategy: Webhook``,
    else apiVersion only."""
    if ((crd.get("spec") or {}).get("conversion") or {}).get("strategy") == "Webhook":
        return WebhookConverter(config=WebhookClientConfig.from_crd(crd), client=client)
    return NoneConverter()


class CustomResourceServing:
    """Keeps the registry in step with the stored CRDs (list, then watch the store)."""

    def __init__(self, *, objects: ResourceStore, registry: Registry) -> None:
        self._objects = objects
        self._registry = registry
        crds = registry.lookup(group="apiextensions.k8s.io", version="v1", plural="customresourcedefinitions")
        if crds is None:
            raise RuntimeError("the registry lacks customresourcedefinitions")
        self._crds = crds
        self._webhooks = WebhookClient(resolve=ServiceEndpoints(objects))  # the conversion webhooks'
        self._served: dict[str, list[ResourceType]] = {}  # CRD name -> its types
        self._task: asyncio.Task[None] | None = None
        self.synced = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="custom-resources")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._webhooks.close()

    async def _run(self) -> None:
        await follow_prefix(
            self._objects.store,
            self._crds.storage_prefix,
            on_list=self._relisted,
            on_event=self._changed,
            what="custom resource serving",
        )

    async def _relisted(self, items: list[KeyValue]) -> None:
        seen = set()
        for kv in items:
            crd = orjson.loads(kv.value)
            seen.add(crd["metadata"]["name"])
            await self._apply(crd)
        for name in set(self._served) - seen:
            self._withdraw(name)
        self.synced.set()

    async def _changed(self, event: Event) -> None:
        crd = orjson.loads(event.kv.value)
        if event.type is EventType.DELETE:
            self._withdraw(crd["metadata"]["name"])
        else:
            await self._apply(crd)

    async def _apply(self, crd: dict[str, Any]) -> None:
        name = crd["metadata"]["name"]
        types = resource_types(crd, converter=converter_for(crd, client=self._webhooks))
        previous = self._served.get(name, [])
        for old in previous:
            if all((t.group, t.version, t.plural) != (old.group, old.version, old.plural) for t in types):
                self._registry.remove(group=old.group, version=old.version, plural=old.plural)
        for rt in types:
            self._registry.add(rt)
        self._served[name] = types
        if crd["metadata"].get("deletionTimestamp"):
            await self._clean_up(crd, types)
        elif types:
            await self._establish(crd)

    def _withdraw(self, name: str) -> None:
        for rt in self._served.pop(name, []):
            self._registry.remove(group=rt.group, version=rt.version, plural=rt.plural)

    async def _establish(self, crd: dict[str, Any]) -> None:
        """Finalizer for cleanup, and the NamesAccepted/Established conditions, once."""
        name = crd["metadata"]["name"]
        conditions = {
            c.get("type"): c.get("status") for c in (crd.get("status") or {}).get("conditions") or []
        }
        if CLEANUP_FINALIZER not in (crd["metadata"].get("finalizers") or []):

            def add_finalizer(current: dict[str, Any]) -> dict[str, Any]:
                current["metadata"].setdefault("finalizers", []).append(CLEANUP_FINALIZER)
                return current

            await self._objects.update(self._crds, namespace="", name=name, transform=add_finalizer)
        if conditions.get("Established") == "True" and conditions.get("NamesAccepted") == "True":
            return
        now = rfc3339(self._objects.clock())

        def established(current: dict[str, Any]) -> dict[str, Any]:
            names = (current.get("spec") or {}).get("names") or {}
            status = current.setdefault("status", {})
            status["acceptedNames"] = {
                key: value
                for key, value in names.items()
                if key in ("kind", "listKind", "plural", "singular", "shortNames", "categories")
            }
            status["acceptedNames"].setdefault("listKind", f"{names.get('kind', '')}List")
            status["acceptedNames"].setdefault("singular", str(names.get("kind", "")).lower())
            status["conditions"] = [
                {
                    "type": "NamesAccepted",
                    "status": "True",
                    "reason": "NoConflicts",
                    "message": "no conflicts found",
                    "lastTransitionTime": now,
                },
                {
                    "type": "Established",
                    "status": "True",
                    "reason": "InitialNamesAccepted",
                    "message": "the initial names have been accepted",
                    "lastTransitionTime": now,
                },
            ]
            stored = status.setdefault("storedVersions", [])
            for version in (current.get("spec") or {}).get("versions") or []:
                if version.get("storage") and version["name"] not in stored:
                    stored.append(version["name"])
            return current

        await self._objects.update(
            self._crds, namespace="", name=name, transform=established, subresource="status"
        )

    async def _clean_up(self, crd: dict[str, Any], types: list[ResourceType]) -> None:
        """Delete every instance, then release the CRD (upstream's cleanup finalizer)."""
        if types:
            store = self._objects.store
            listing = await store.list(types[0].storage_prefix)
            for kv in listing.items:
                await store.delete(kv.key, expected_revision=0)
        name = crd["metadata"]["name"]

        def release(current: dict[str, Any]) -> dict[str, Any]:
            current["metadata"]["finalizers"] = [
                f for f in current["metadata"].get("finalizers") or [] if f != CLEANUP_FINALIZER
            ]
            return current

        if CLEANUP_FINALIZER in (crd["metadata"].get("finalizers") or []):
            try:
                await self._objects.update(self._crds, namespace="", name=name, transform=release)
            except errors.StatusError as exc:
                if exc.code != 404:  # gone already is fine; anything else: relist and retry
                    raise
