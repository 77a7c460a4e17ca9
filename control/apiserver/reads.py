"""GET of one object and LIST of a collection, with upstream's resourceVersion semantics.

list: ``resourceVersion`` unset = the latest; "0" = any (we answer the latest);
N without ``limit`` = not older than N; N with ``limit`` (or ``resourceVersionMatch=Exact``)
= exactly at N, 410 Gone when compacted. Paging with ``limit``/``continue``: the continue
token pins the revision of the first page (base64url of upstream's JSON shape) so pages
form one consistent snapshot. Unfiltered JSON lists are assembled from stored bytes (a
kind stored as another version converts each object, see ``control.apiserver.conversion``;
custom resources convert the objects stored in another version in one batch, after
selectors matched them as stored).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson
from aiohttp import web

from control.apiserver import errors
from control.apiserver.call import Call, bytes_response, json_response
from control.apiserver.codec import served_bytes
from control.apiserver.conversion import decoded, read_object, read_objects, served, served_items
from control.apiserver.negotiation import Shape
from control.apiserver.predicate import Predicate, compile_predicate
from control.apiserver.tables import check_include_object, partial_metadata, partial_metadata_list, table
from control.store import CompactedError, KeyValue

_PAGE = 500  # store rows fetched per round while filtering
_CONTINUE_TOO_OLD = (
    "The provided continue parameter is too old to display a consistent list result. You can start a new "
    "list without the continue parameter, or use the continue token in this response to retrieve the "
    "remainder of the results. Continuing with the provided token results in an inconsistent list - objects "
    "that were created, modified, or deleted between the time the first chunk was returned and now may show "
    "up in the list."
)


async def get(call: Call) -> web.Response:
    rt = call.rt
    if call.param("resourceVersion") not in ("", "0"):
        parse_resource_version(call.param("resourceVersion"))
    kv = await call.objects.get_kv(rt, namespace=call.info.namespace, name=call.info.name)
    if rt.conversion is not None:
        if call.wanted.shape is Shape.OBJECT:
            return bytes_response((await served_items(rt, [kv]))[0])
        obj = await read_object(rt, kv)
    elif call.wanted.shape is Shape.OBJECT:
        return bytes_response(served(rt, kv))
    else:
        obj = decoded(rt, kv)
    if call.wanted.shape is Shape.PARTIAL_METADATA:
        return json_response(partial_metadata(obj, version=call.wanted.table_version))
    include = check_include_object(call.param("includeObject"))
    return json_response(
        table(
            rt,
            [obj],
            list_meta={"resourceVersion": str(kv.mod_revision)},
            include_object=include,
            now=call.now,
            version=call.wanted.table_version,
        )
    )


async def list_(call: Call) -> web.Response:
    rt = call.rt
    predicate = compile_predicate(
        rt, label_selector=call.param("labelSelector"), field_selector=call.param("fieldSelector")
    )
    limit = _parse_limit(call.param("limit"))
    prefix = call.objects.prefix(rt, namespace=call.info.namespace)
    revision, start_key = await _starting_point(call, prefix=prefix, limit=limit)
    kvs, revision, next_key, remaining = await _collect(
        call, prefix=prefix, revision=revision, start_key=start_key, limit=limit, predicate=predicate
    )
    list_meta: dict[str, Any] = {"resourceVersion": str(revision)}
    if next_key:
        list_meta["continue"] = _encode_continue(revision=revision, start=next_key[len(prefix) :])
        if remaining is not None:
            list_meta["remainingItemCount"] = remaining
    shape = call.wanted.shape
    if shape is Shape.OBJECT:
        head = orjson.dumps({"kind": f"{rt.kind}List", "apiVersion": rt.api_version, "metadata": list_meta})
        if rt.conversion is not None:
            items = b",".join(await served_items(rt, kvs))
        elif rt.stored_as is None:
            items = b",".join(served_bytes(kv) for kv in kvs)
        else:
            items = b",".join(served(rt, kv) for kv in kvs)
        return bytes_response(head[:-1] + b',"items":[' + items + b"]}")
    # Decoded one at a time and dropped once its row is built: a 10,000-object list never holds
    # every decoded object at once, which keeps the garbage collector from rescanning them.
    objects = (decoded(rt, kv) for kv in kvs) if rt.conversion is None else iter(await read_objects(rt, kvs))
    if shape is Shape.PARTIAL_METADATA:
        return json_response(
            partial_metadata_list(objects, list_meta=list_meta, version=call.wanted.table_version)
        )
    include = check_include_object(call.param("includeObject"))
    return json_response(
        table(
            rt,
            objects,
            list_meta=list_meta,
            include_object=include,
            now=call.now,
            version=call.wanted.table_version,
        )
    )


async def _starting_point(call: Call, *, prefix: str, limit: int) -> tuple[int, str]:
    """(revision to read at, first key) from continue / resourceVersion / resourceVersionMatch."""
    token = call.param("continue")
    rv = call.param("resourceVersion")
    match = call.param("resourceVersionMatch")
    if match not in ("", "Exact", "NotOlderThan"):
        raise errors.bad_request(
            f'resourceVersionMatch: Unsupported value: "{match}": supported values: "Exact", "NotOlderThan"'
        )
    if token:
        if rv:
            raise errors.bad_request("specifying resource version is not allowed when using continue")
        revision, start = _decode_continue(token)
        compacted = await call.objects.store.compacted_revision()
        if revision < compacted:
            raise errors.gone(_CONTINUE_TOO_OLD)
        return revision, prefix + start
    if match and not rv:
        raise errors.bad_request("resourceVersionMatch is forbidden unless resourceVersion is provided")
    if rv in ("", "0"):
        if match == "Exact" and rv == "0":
            raise errors.bad_request('resourceVersionMatch "exact" is forbidden for resourceVersion "0"')
        return 0, ""
    requested = parse_resource_version(rv)
    current = await call.objects.store.current_revision()
    if requested > current:
        raise errors.too_large_resource_version(requested, current)
    exact = match == "Exact" or (not match and limit > 0)
    if not exact:
        return 0, ""
    compacted = await call.objects.store.compacted_revision()
    if requested < compacted:
        raise errors.too_old_resource_version(requested, compacted)
    return requested, ""


async def _collect(
    call: Call, *, prefix: str, revision: int, start_key: str, limit: int, predicate: Predicate
) -> tuple[list[KeyValue], int, str, int | None]:
    """Matching rows (at most ``limit``), the revision read at, the next start key, remaining."""
    store = call.objects.store
    name = predicate.name
    try:
        if (
            name
            and call.objects.prefix(call.rt, namespace=call.info.namespace) == prefix
            and (call.info.namespace or not call.rt.namespaced)
        ):
            # Pin the revision first: reading the key, then the revision, would let a write
            # in between (a deletion, say) make the list's resourceVersion newer than the
            # object it returns, and a watch from it would miss that write.
            at = revision or await store.current_revision()
            kv = await store.get(prefix + name, revision=at)
            rows = [kv] if kv is not None and predicate.matches(decoded(call.rt, kv)) else []
            return rows, at, "", None
        if predicate.matches_everything:
            result = await store.list(prefix, revision=revision, start_key=start_key, limit=limit)
            next_key = result.items[-1].key + "\x00" if result.more and result.items else ""
            return result.items, result.revision, next_key, result.remaining if result.more else None
        matched: list[KeyValue] = []
        at = revision
        cursor = start_key
        while True:
            page = max(_PAGE, limit - len(matched)) if limit else 0
            result = await store.list(prefix, revision=at, start_key=cursor, limit=page)
            at = result.revision
            for index, kv in enumerate(result.items):
                if predicate.matches(decoded(call.rt, kv)):
                    matched.append(kv)
                    if limit and len(matched) == limit:
                        more = result.more or index + 1 < len(result.items)
                        return matched, at, (kv.key + "\x00") if more else "", None
            if not result.more or not result.items:
                return matched, at, "", None
            cursor = result.items[-1].key + "\x00"
    except CompactedError as exc:
        raise errors.too_old_resource_version(exc.requested, exc.compacted) from exc


def _parse_limit(text: str) -> int:
    if not text:
        return 0
    try:
        value = int(text)
    except ValueError as exc:
        raise errors.bad_request(f'limit: Invalid value: "{text}": must be an integer') from exc
    return max(value, 0)


def parse_resource_version(text: str) -> int:
    """A resourceVersion query parameter as a revision; 400 BadRequest when it is not one."""
    try:
        value = int(text)
    except ValueError as exc:
        raise errors.bad_request(f'resourceVersion: Invalid value: "{text}": must be an integer') from exc
    if value < 0:
        raise errors.bad_request(f'resourceVersion: Invalid value: "{text}": must be non-negative')
    return value


def _encode_continue(*, revision: int, start: str) -> str:
    raw = orjson.dumps({"v": "meta.k8s.io/v1", "rv": revision, "start": start})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_continue(token: str) -> tuple[int, str]:
    try:
        padded = token + "=" * (-len(token) % 4)
        data = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
        if data.get("v") != "meta.k8s.io/v1" or not isinstance(data.get("rv"), int):
            raise ValueError("unknown continue token version")
        start = str(data.get("start", ""))
        if start.startswith("/") or ".." in start.split("/"):
            raise ValueError("invalid start key")
        return data["rv"], start
    except (ValueError, binascii.Error, orjson.JSONDecodeError) as exc:
        raise errors.bad_request(f"continue key is not valid: {exc}") from exc
