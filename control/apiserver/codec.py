"""How objects are stored and served as bytes, shaped so reads need no re-encoding.

An object is stored as compact JSON whose first three keys are ``apiVersion``, ``kind``
and ``metadata``, *without* ``metadata.resourceVersion`` (the store's revision is the
resourceVersion, as etcd3's versioner does it upstream). Serving an object therefore only
needs the revision spliced in right after ``"metadata":{``: lists of ten thousand objects
and watch events are assembled by concatenating stored bytes, with no JSON decoding on
the path unless the request filters or converts (selectors, Table).
"""

from __future__ import annotations

from typing import Any

import orjson

from control.store import KeyValue

_API_VERSION_OPEN = b'{"apiVersion":"'
_KIND_OPEN = b'","kind":"'
_METADATA_OPEN = b'","metadata":{'


def encode_for_storage(obj: dict[str, Any]) -> bytes:
    """Canonical stored form: apiVersion, kind, metadata first; resourceVersion removed."""
    metadata = dict(obj.get("metadata") or {})
    metadata.pop("resourceVersion", None)
    ordered: dict[str, Any] = {
        "apiVersion": obj.get("apiVersion", ""),
        "kind": obj.get("kind", ""),
        "metadata": metadata,
    }
    for key, value in obj.items():
        if key not in ordered:
            ordered[key] = value
    return orjson.dumps(ordered)


def with_resource_version(raw: bytes, revision: int) -> bytes:
    """Stored bytes -> served bytes carrying ``metadata.resourceVersion``."""
    cut = _metadata_body_offset(raw)
    if cut < 0:  # not written by encode_for_storage; fall back to a decode
        obj = orjson.loads(raw)
        obj.setdefault("metadata", {})["resourceVersion"] = str(revision)
        return orjson.dumps(obj)
    sep = b"" if raw[cut : cut + 1] == b"}" else b","
    return b"".join((raw[:cut], b'"resourceVersion":"', str(revision).encode(), b'"', sep, raw[cut:]))


def stored_api_version(raw: bytes) -> str:
    """The apiVersion of stored bytes, read from the canonical layout without decoding
    ("" when the bytes are not in it)."""
    if not raw.startswith(_API_VERSION_OPEN):
        return ""
    end = raw.find(b'"', len(_API_VERSION_OPEN))
    return raw[len(_API_VERSION_OPEN) : end].decode() if end > 0 else ""


def _metadata_body_offset(raw: bytes) -> int:
    """Offset just inside top-level metadata's ``{`` in the canonical layout, else -1.

    The canonical layout is ``{"apiVersion":"<v>","kind":"<k>","metadata":{``; the two
    values are plain names (no quotes or escapes), so the layout is checked exactly.
    """
    if not raw.startswith(_API_VERSION_OPEN):
        return -1
    end_version = raw.find(b'"', len(_API_VERSION_OPEN))
    if end_version < 0 or not raw.startswith(_KIND_OPEN, end_version):
        return -1
    end_kind = raw.find(b'"', end_version + len(_KIND_OPEN))
    if end_kind < 0 or not raw.startswith(_METADATA_OPEN, end_kind):
        return -1
    return end_kind + len(_METADATA_OPEN)


def decode(kv: KeyValue) -> dict[str, Any]:
    """A fresh dict of the stored object with its resourceVersion set."""
    obj = orjson.loads(kv.value)
    obj.setdefault("metadata", {})["resourceVersion"] = str(kv.mod_revision)
    return obj


def served_bytes(kv: KeyValue) -> bytes:
    return with_resource_version(kv.value, kv.mod_revision)
