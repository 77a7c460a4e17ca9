"""Serving one kind in several versions: built-ins stored as another version
(``ResourceType.stored_as``) and custom resources converted per request (``conversion``).

Upstream's API server keeps one object per key in its storage version and converts it
for each request's version: events.k8s.io/v1 Events are core Events in etcd, so both
APIs see the same objects with the same resourceVersions, watches of either version see
every write, and a write through one is read through the other. The read and write paths
(``reads``, ``watch``, ``writes``, ``ResourceStore``) call the three functions here
wherever stored bytes become served objects or the reverse. For a kind stored as served
(every kind but a few) each is one attribute test on top of the plain codec, so the hot
paths keep serving stored bytes without decoding them.

Custom resources with several versions keep each object in the version it was written
in (the CRD's storage version at the time) and convert on the way out, in one batch per
request, with the CRD's converter: :class:`NoneConverter` for ``strategy: None`` (only
apiVersion changes, upstream's nopConverter) or a conversion webhook
(``control.apiserver.conversion_webhook``). Such conversions are asynchronous, so
:func:`read_object`, :func:`read_objects`, :func:`served_items` and
:func:`storage_bytes` are the awaitable forms of the three above; a failed conversion
answers 500 with upstream's message (:class:`ConversionError`).

A lab whose data predates shared storage may still hold objects at the kind's own keys
(``ResourceType.own_prefix``, e.g. ``/registry/events.k8s.io/events/``). Nothing would
ever serve or delete them, so :func:`move_to_storage_keys` moves them to the storage
keys when the API server starts; an object already present there is kept and the old
copy dropped.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import orjson

from control.apiserver import errors
from control.apiserver.codec import decode, encode_for_storage, served_bytes, stored_api_version
from control.resources.registry import Registry, ResourceType, StoredAs
from control.store import KeyExistsError, KeyValue, Store

log = logging.getLogger("kubelab.apiserver.conversion")


def decoded(rt: ResourceType, kv: KeyValue) -> dict[str, Any]:
    """A fresh dict of the stored object, in ``rt``'s version, with its resourceVersion."""
    obj = decode(kv)
    return obj if rt.stored_as is None else rt.stored_as.from_storage(obj)


def served(rt: ResourceType, kv: KeyValue) -> bytes:
    """The stored object's JSON in ``rt``'s version (the stored bytes when stored as served)."""
    if rt.stored_as is None:
        return served_bytes(kv)
    return converted_bytes(rt.stored_as, kv)


def for_storage(rt: ResourceType, obj: dict[str, Any]) -> bytes:
    """An object in ``rt``'s version as the bytes stored for it."""
    if rt.stored_as is None:
        return encode_for_storage(obj)
    return encode_for_storage(rt.stored_as.to_storage(obj))


class ConversionError(Exception):
    """A conversion failed; the message is upstream's (``conversion webhook for ... failed: ...``)."""


class NoneConverter:
    """``strategy: None``: an object changes only its apiVersion (upstream's nopConverter)."""

    async def convert(self, objects: list[dict[str, Any]], *, api_version: str) -> list[dict[str, Any]]:
        return [
            obj if obj.get("apiVersion") == api_version else {**obj, "apiVersion": api_version}
            for obj in objects
        ]


async def read_object(rt: ResourceType, kv: KeyValue) -> dict[str, Any]:
    """``decoded``, converted to ``rt``'s version when the kind has a converter."""
    obj = decoded(rt, kv)
    if rt.conversion is None or obj.get("apiVersion") == rt.api_version:
        return obj
    return (await _convert(rt, [obj], api_version=rt.api_version))[0]


async def read_objects(rt: ResourceType, kvs: list[KeyValue]) -> list[dict[str, Any]]:
    """Many stored objects in ``rt``'s version, converted in one batch."""
    objects = [decoded(rt, kv) for kv in kvs]
    if rt.conversion is None:
        return objects
    wrong = [index for index, obj in enumerate(objects) if obj.get("apiVersion") != rt.api_version]
    if wrong:
        converted = await _convert(rt, [objects[index] for index in wrong], api_version=rt.api_version)
        for index, obj in zip(wrong, converted, strict=True):
            objects[index] = obj
    return objects


async def served_items(rt: ResourceType, kvs: list[KeyValue]) -> list[bytes]:
    """The JSON of many stored objects in ``rt``'s version: stored bytes where the version
    already matches, one conversion batch for the rest."""
    if rt.conversion is None:
        return [served(rt, kv) for kv in kvs]
    items = [served_bytes(kv) if stored_api_version(kv.value) == rt.api_version else b"" for kv in kvs]
    wrong = [index for index, item in enumerate(items) if not item]
    if wrong:
        converted = await _convert(rt, [decode(kvs[index]) for index in wrong], api_version=rt.api_version)
        for index, obj in zip(wrong, converted, strict=True):
            items[index] = orjson.dumps(obj)
    return items


async def storage_bytes(rt: ResourceType, obj: dict[str, Any]) -> bytes:
    """``for_storage``, converting to the storage version first when the kind has a converter."""
    conversion = rt.conversion
    if conversion is None or obj.get("apiVersion") == conversion.storage_version:
        return for_storage(rt, obj)
    if not obj.get("apiVersion"):  # written in-process without type meta: it is in rt's version
        obj = {**obj, "apiVersion": rt.api_version, "kind": rt.kind}
        if obj["apiVersion"] == conversion.storage_version:
            return for_storage(rt, obj)
    (stored,) = await _convert(rt, [obj], api_version=conversion.storage_version)
    return encode_for_storage(stored)


async def _convert(
    rt: ResourceType, objects: list[dict[str, Any]], *, api_version: str
) -> list[dict[str, Any]]:
    assert rt.conversion is not None
    try:
        return await rt.conversion.converter.convert(objects, api_version=api_version)
    except ConversionError as exc:
        raise errors.internal(str(exc)) from exc


@functools.lru_cache(maxsize=4096)
def shared_converted(stored_as: StoredAs, kv: KeyValue) -> dict[str, Any]:
    """One converted object per stored version and target, shared by the watchers of that
    version (as ``watch``'s shared decode): callers must only read it."""
    return stored_as.from_storage(decode(kv))


@functools.lru_cache(maxsize=4096)
def converted_bytes(stored_as: StoredAs, kv: KeyValue) -> bytes:
    """The converted object's JSON, built once per stored version and target."""
    return orjson.dumps(shared_converted(stored_as, kv))


async def move_to_storage_keys(*, store: Store, registry: Registry) -> int:
    """Move objects left at a converted kind's own keys to its storage keys; how many moved."""
    moved = 0
    for rt in registry:
        if rt.stored_as is None or rt.own_prefix == rt.storage_prefix:
            continue
        listing = await store.list(rt.own_prefix)
        for kv in listing.items:
            target = rt.storage_prefix + kv.key[len(rt.own_prefix) :]
            try:
                await store.create(target, for_storage(rt, decode(kv)))
                moved += 1
            except KeyExistsError:
                log.info("dropping %s: %s already exists", kv.key, target)
            await store.delete(kv.key, expected_revision=kv.mod_revision)
    if moved:
        log.info("moved %d objects to their storage version's keys", moved)
    return moved
