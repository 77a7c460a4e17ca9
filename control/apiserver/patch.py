"""The three patch formats of PATCH requests, as pure functions on decoded JSON.

* :func:`json_merge_patch` — RFC 7386 (``application/merge-patch+json``), as
  evanphx/json-patch's ``MergePatch`` does it for kube-apiserver.
* :func:`json_patch` — RFC 6902 (``application/json-patch+json``), with evanphx/json-patch
  v4's behaviour and messages (negative indices allowed, ``-`` appends, ``~0``/``~1``).
* :func:`strategic_merge_patch` — ``application/strategic-merge-patch+json``, a port of
  apimachinery's ``pkg/util/strategicpatch`` apply side (``StrategicMergeMapPatch`` with
  ``MergeParallelList`` and ``IgnoreUnmatchedNulls``): lists merged by the merge key the
  schema names, ``$patch``, ``$retainKeys``, ``$setElementOrder/<field>`` and
  ``$deleteFromPrimitiveList/<field>``. kubectl's client-side apply, ``edit``,
  ``rollout restart`` and the Python client send these, and a plain merge would corrupt
  lists, so the port follows upstream branch by branch, quirks included.

No HTTP here: every function takes the current object and the decoded patch and returns
a new object, leaving both arguments untouched. Every bad patch raises
:class:`PatchError`, carrying the status code kube-apiserver answers with; a strategic
merge patch for a kind without patch metadata (a custom resource) raises
:class:`StrategicMergeUnsupported` (415), as upstream refuses that media type for CRDs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson

from control.resources.schema import SchemaNode

MAX_JSON_PATCH_OPERATIONS = 10000  # kube-apiserver's maxJSONPatchOperations

# Media types a custom resource accepts; what a 415 for strategic merge patch lists.
CUSTOM_RESOURCE_PATCH_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/apply-patch+yaml",
)

_REASONS = {400: "BadRequest", 413: "RequestEntityTooLarge", 415: "UnsupportedMediaType", 422: "Invalid"}


class PatchError(Exception):
    """A patch that cannot be applied; ``code`` and ``reason`` are for the Status answer."""

    def __init__(self, message: str, *, code: int = 422) -> None:
        super().__init__(message)
        self.message = message
        self.code = code

    @property
    def reason(self) -> str:
        return _REASONS.get(self.code, "Invalid")


class StrategicMergeUnsupported(PatchError):
    """Strategic merge patch asked for a kind without patch metadata (custom resources)."""

    def __init__(self) -> None:
        super().__init__(
            "the body of the request was in an unknown format - accepted media types include: "
            + ", ".join(CUSTOM_RESOURCE_PATCH_TYPES),
            code=415,
        )


def _copy(value: Any) -> Any:
    """A deep copy through orjson: much faster than copy.deepcopy for JSON values."""
    try:
        return orjson.loads(orjson.dumps(value))
    except (orjson.JSONEncodeError, TypeError) as exc:
        raise PatchError(f"invalid JSON document: {exc}", code=400) from exc


# ---------------------------------------------------------------------------------------
# JSON merge patch (RFC 7386)


def json_merge_patch(original: Any, patch: Any) -> Any:
    """Apply an RFC 7386 merge patch: objects merge recursively, ``null`` deletes a key,
    anything else replaces. A patch that is not an object is refused, as kube-apiserver's
    patcher refuses it (``Invalid JSON Patch``)."""
    if not isinstance(patch, dict):
        raise PatchError("Invalid JSON Patch", code=400)
    result = _copy(original) if isinstance(original, dict) else {}
    _merge_objects(result, _copy(patch))
    return result


def _merge_objects(doc: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        current = doc.get(key)
        if value is None:
            doc.pop(key, None)
        elif not isinstance(current, dict):
            doc[key] = _prune_nulls(value)
        elif isinstance(value, dict):
            _merge_objects(current, value)
        else:
            doc[key] = value  # evanphx keeps nulls inside a non-object replacing an object


def _prune_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _prune_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_prune_nulls(v) for v in value]
    return value


# ---------------------------------------------------------------------------------------
# JSON patch (RFC 6902)


_INDEX = re.compile(r"[+-]?[0-9]+")


def json_patch(original: Any, operations: Any) -> Any:
    """Apply an RFC 6902 patch (a list of operations) and return the new document."""
    if not isinstance(operations, list):
        raise PatchError(
            f"json: cannot unmarshal {_json_kind(operations)} into Go value of type jsonpatch.Patch", code=400
        )
    for op in operations:
        if not isinstance(op, dict | None):
            raise PatchError(
                f"json: cannot unmarshal {_json_kind(op)} into Go value of type jsonpatch.Operation", code=400
            )
    if len(operations) > MAX_JSON_PATCH_OPERATIONS:
        raise PatchError(
            f"The allowed maximum operations in a JSON patch is {MAX_JSON_PATCH_OPERATIONS}, got {len(operations)}",
            code=413,
        )
    doc = _copy(original)
    for op in _copy(operations):
        op = op or {}
        kind = op.get("op")
        handler = _OPERATIONS.get(kind) if isinstance(kind, str) else None
        if handler is None:
            raise PatchError(f"Unexpected kind: {kind if isinstance(kind, str) else 'unknown'}")
        doc = handler(doc, op)
    return doc


class _Missing(Exception):
    """A JSON pointer that does not resolve (becomes a PatchError with the op's message)."""


def _json_kind(value: Any) -> str:
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list):
        return "array"
    return "null" if value is None else "object"


def _decode_token(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _op_string(op: dict[str, Any], name: str, verb: str, *, with_cause: bool) -> str:
    """The op's ``path`` or ``from``; the messages say what evanphx/json-patch v4 says,
    which quotes the underlying cause for some operations and not for others."""
    value = op.get(name)
    if isinstance(value, str):
        return value
    if value is None:
        cause = "operation missing path field" if name == "path" else "operation, missing from field"
        cause += ": missing value"
    else:
        cause = f"json: cannot unmarshal {_json_kind(value)} into Go value of type string"
    raise PatchError(f"{verb} operation failed to decode {name}: {cause if with_cause else 'missing value'}")


def _find_container(doc: Any, path: str) -> tuple[Any, str]:
    """evanphx/json-patch's findObject: the container holding the last token, and that token."""
    tokens = path.split("/")
    if len(tokens) < 2:
        raise _Missing
    container = doc
    for raw in tokens[1:-1]:
        key = _decode_token(raw)
        if isinstance(container, dict):
            if key not in container:
                raise _Missing
            container = container[key]
        elif isinstance(container, list):
            try:
                container = container[_array_index(key, len(container), allow_end=False)]
            except PatchError as exc:
                raise _Missing from exc
        else:
            raise _Missing
        if not isinstance(container, dict | list):
            raise _Missing
    if not isinstance(container, dict | list):
        raise _Missing
    return container, _decode_token(tokens[-1])


def _array_index(key: str, length: int, *, allow_end: bool) -> int:
    """Go's strconv.Atoi plus evanphx's bounds, negative indices counting from the end."""
    if not _INDEX.fullmatch(key):
        raise PatchError(f'strconv.Atoi: parsing "{key}": invalid syntax')
    index = int(key)
    size = length + 1 if allow_end else length
    if index >= size or index < -size:
        raise PatchError(f"Unable to access invalid index: {index}: invalid index referenced")
    return index + size if index < 0 else index


def _get(container: Any, key: str) -> Any:
    if isinstance(container, dict):
        if key not in container:
            raise _Missing
        return container[key]
    return container[_array_index(key, len(container), allow_end=False)]


def _add_value(container: Any, key: str, value: Any) -> None:
    if isinstance(container, dict):
        container[key] = value
    elif key == "-":
        container.append(value)
    else:
        if not _INDEX.fullmatch(key):
            raise PatchError(
                f"value was not a proper array index: '{key}': strconv.Atoi: parsing \"{key}\": invalid syntax"
            )
        container.insert(_array_index(key, len(container), allow_end=True), value)


def _remove_value(container: Any, key: str) -> Any:
    if isinstance(container, dict):
        if key not in container:
            raise PatchError(f"Unable to remove nonexistent key: {key}: missing value")
        return container.pop(key)
    return container.pop(_array_index(key, len(container), allow_end=False))


def _op_add(doc: Any, op: dict[str, Any]) -> Any:
    path = _op_string(op, "path", "add", with_cause=False)
    try:
        container, key = _find_container(doc, path)
    except _Missing:
        raise PatchError(
            f'add operation does not apply: doc is missing path: "{path}": missing value'
        ) from None
    try:
        _add_value(container, key, op.get("value"))
    except PatchError as exc:
        raise PatchError(f"error in add for path: '{path}': {exc.message}") from exc
    return doc


def _op_remove(doc: Any, op: dict[str, Any]) -> Any:
    path = _op_string(op, "path", "remove", with_cause=False)
    try:
        container, key = _find_container(doc, path)
    except _Missing:
        raise PatchError(
            f'remove operation does not apply: doc is missing path: "{path}": missing value'
        ) from None
    try:
        _remove_value(container, key)
    except PatchError as exc:
        raise PatchError(f"error in remove for path: '{path}': {exc.message}") from exc
    return doc


def _op_replace(doc: Any, op: dict[str, Any]) -> Any:
    path = _op_string(op, "path", "replace", with_cause=True)
    try:
        container, key = _find_container(doc, path)
    except _Missing:
        raise PatchError(
            f"replace operation does not apply: doc is missing path: {path}: missing value"
        ) from None
    if isinstance(container, dict):
        # evanphx/json-patch v4 (kube-apiserver's) sets a key that is not there yet.
        container[key] = op.get("value")
        return doc
    try:
        container[_array_index(key, len(container), allow_end=False)] = op.get("value")
    except PatchError as exc:
        raise PatchError(
            f"replace operation does not apply: doc is missing key: {path}: missing value"
        ) from exc
    return doc


def _op_move(doc: Any, op: dict[str, Any]) -> Any:
    source = _op_string(op, "from", "move", with_cause=True)
    try:
        container, key = _find_container(doc, source)
    except _Missing:
        raise PatchError(
            f"move operation does not apply: doc is missing from path: {source}: missing value"
        ) from None
    try:
        value = _get(container, key)
        _remove_value(container, key)
    except (_Missing, PatchError) as exc:
        detail = (
            exc.message
            if isinstance(exc, PatchError)
            else f"Unable to remove nonexistent key: {key}: missing value"
        )
        raise PatchError(f"error in move for path: '{key}': {detail}") from exc
    path = _op_string(op, "path", "move", with_cause=True)
    try:
        target, target_key = _find_container(doc, path)
    except _Missing:
        raise PatchError(
            f"move operation does not apply: doc is missing destination path: {path}: missing value"
        ) from None
    try:
        _add_value(target, target_key, value)
    except PatchError as exc:
        raise PatchError(f"error in move for path: '{path}': {exc.message}") from exc
    return doc


def _op_copy(doc: Any, op: dict[str, Any]) -> Any:
    source = _op_string(op, "from", "copy", with_cause=True)
    try:
        container, key = _find_container(doc, source)
    except _Missing:
        raise PatchError(
            f"copy operation does not apply: doc is missing from path: {source}: missing value"
        ) from None
    try:
        value = _get(container, key)
    except _Missing:
        value = None  # v4 copies a missing key as null
    except PatchError as exc:
        raise PatchError(f"error in copy for from: '{source}': {exc.message}") from exc
    path = _op_string(op, "path", "copy", with_cause=False)
    try:
        target, target_key = _find_container(doc, path)
    except _Missing:
        raise PatchError(
            f"copy operation does not apply: doc is missing destination path: {path}: missing value"
        ) from None
    try:
        _add_value(target, target_key, _copy(value))
    except PatchError as exc:
        raise PatchError(f"error while adding value during copy: {exc.message}") from exc
    return doc


def _op_test(doc: Any, op: dict[str, Any]) -> Any:
    path = _op_string(op, "path", "test", with_cause=True)
    try:
        container, key = _find_container(doc, path)
    except _Missing:
        raise PatchError(f"test operation does not apply: is missing path: {path}: missing value") from None
    try:
        value = _get(container, key)
    except _Missing:
        value = None  # a missing key reads as null, and tests equal to a null value
    except PatchError as exc:
        raise PatchError(f"error in test for path: '{path}': {exc.message}") from exc
    if not _json_equal(value, op.get("value")):
        raise PatchError(f"testing value {path} failed: test failed")
    return doc


_OPERATIONS: dict[str, Callable[[Any, dict[str, Any]], Any]] = {
    "add": _op_add,
    "remove": _op_remove,
    "replace": _op_replace,
    "move": _op_move,
    "copy": _op_copy,
    "test": _op_test,
}


def _json_equal(left: Any, right: Any) -> bool:
    """Structural JSON equality where true is not 1 and 1 is not 1.0 (as the raw JSON differs)."""
    if type(left) is not type(right):
        return False
    if isinstance(left, dict):
        return left.keys() == right.keys() and all(_json_equal(v, right[k]) for k, v in left.items())
    if isinstance(left, list):
        return len(left) == len(right) and all(_json_equal(a, b) for a, b in zip(left, right, strict=True))
    return bool(left == right)


# ---------------------------------------------------------------------------------------
# Strategic merge patch (apimachinery pkg/util/strategicpatch, apply side)

_DIRECTIVE = "$patch"
_DELETE = "delete"
_REPLACE = "replace"
_MERGE = "merge"
_RETAIN_KEYS_STRATEGY = "retainKeys"
_RETAIN_KEYS = "$retainKeys"
_DELETE_FROM_PRIMITIVE_LIST = "$deleteFromPrimitiveList"
_SET_ELEMENT_ORDER = "$setElementOrder"

# mergepatch's sentinel errors; kube-apiserver answers the first group with 400 and the
# second with 422 (interpretStrategicMergePatchError). Other errors upstream turn into a
# 500; here they are 422, since they all come from the patch.
_BAD_PRIMITIVE_LIST = "invalid patch format of primitive list"
_BAD_RETAIN_KEYS = "invalid patch format of retainKeys"
_BAD_SET_ELEMENT_ORDER = "invalid patch format of setElementOrder list"
_NO_LIST_OF_LISTS = "lists of lists are not supported"


def strategic_merge_patch(original: dict[str, Any], patch: Any, schema: SchemaNode | None) -> dict[str, Any]:
    """Apply a strategic merge patch to ``original`` (an object of the kind ``schema`` describes).

    ``schema`` must be a built-in kind's schema: custom resource schemas (and ``None``)
    carry no patch metadata, and the patch is refused with :class:`StrategicMergeUnsupported`.
    """
    if schema is None or not schema.builtin:
        raise StrategicMergeUnsupported
    if not isinstance(patch, dict):
        raise PatchError(
            f"json: cannot unmarshal {_json_kind(patch)} into Go value of type map[string]interface {{}}",
            code=400,
        )
    return _merge_map(_copy(original) if isinstance(original, dict) else {}, _copy(patch), schema)


def _field_meta(schema: SchemaNode | None, key: str) -> tuple[SchemaNode | None, str, str]:
    """(subschema, patch strategy without retainKeys, merge key) of field ``key``.

    Upstream's struct lookup fails on a field the type lacks; here such a field (and
    anything under an untyped value) simply has no patch metadata, so it merges as JSON
    merge patch would, and strict decoding reports it afterwards.
    """
    if schema is None:
        return None, "", ""
    child = schema.child(key)
    if child is None:
        return None, "", ""
    subschema = None if child.kind == "any" else child
    strategy = _extract_strategy(child.patch_strategies) if child.patch_strategies else ""
    return subschema, strategy, child.patch_merge_key


def _extract_strategy(strategies: tuple[str, ...]) -> str:
    """extractRetainKeysPatchStrategy: the strategy other than retainKeys."""
    if len(strategies) == 1:
        return "" if strategies[0] == _RETAIN_KEYS_STRATEGY else strategies[0]
    if len(strategies) == 2 and _RETAIN_KEYS_STRATEGY in strategies:
        return strategies[1] if strategies[0] == _RETAIN_KEYS_STRATEGY else strategies[0]
    raise PatchError(f"unexpected patch strategy: {_go_format(list(strategies))}")


def _element_schema(schema: SchemaNode | None) -> SchemaNode | None:
    """The schema of a list's elements; a non-list field (a pointer to a struct in Go)
    merged as a list stands for its own elements, as in upstream's lookup."""
    if schema is None or schema.items is None:
        return schema
    return None if schema.items.kind == "any" else schema.items


def _merge_map(original: dict[str, Any], patch: dict[str, Any], schema: SchemaNode | None) -> dict[str, Any]:
    if _DIRECTIVE in patch:
        return _directive_in_map(patch[_DIRECTIVE], patch)
    _apply_retain_keys(original, patch)
    _merge_set_element_order(original, patch, schema)
    for key, patch_value in list(patch.items()):
        is_delete_list = False
        if key.startswith(_DELETE_FROM_PRIMITIVE_LIST):
            key = _extract_key(key, _DELETE_FROM_PRIMITIVE_LIST, _BAD_PRIMITIVE_LIST)
            is_delete_list = True
        if patch_value is None:
            original.pop(key, None)
            continue
        if key not in original:
            if not is_delete_list:
                _discard_nulls(patch_value)
                value, keep = _remove_directives(patch_value)
                if keep:
                    original[key] = value
            continue
        original_value = original[key]
        if type(original_value) is not type(patch_value):
            if not is_delete_list:
                _discard_nulls(patch_value)
                value, keep = _remove_directives(patch_value)
                if keep:
                    original[key] = value
                else:
                    del original[key]
            continue
        if isinstance(patch_value, dict):
            subschema, strategy, _ = _field_meta(schema, key)
            original[key] = (
                patch_value if strategy == _REPLACE else _merge_map(original_value, patch_value, subschema)
            )
        elif isinstance(patch_value, list):
            subschema, strategy, merge_key = _field_meta(schema, key)
            if strategy == _MERGE or is_delete_list:
                original[key], _ = _merge_slice(
                    original_value, patch_value, _element_schema(subschema), merge_key, is_delete_list
                )
            else:
                original[key] = patch_value
        else:
            original[key] = patch_value
    return original


def _directive_in_map(directive: Any, patch: dict[str, Any]) -> dict[str, Any]:
    """handleDirectiveInMergeMap: ``$patch: replace`` keeps the patch, ``delete`` empties."""
    if directive == _REPLACE:
        del patch[_DIRECTIVE]
        return patch
    if directive == _DELETE:
        return {}
    raise PatchError(f"unknown patch type: {_go_format(directive)} in map: {_go_format(patch)}")


def _apply_retain_keys(original: dict[str, Any], patch: dict[str, Any]) -> None:
    if _RETAIN_KEYS not in patch:
        return
    retain = patch.pop(_RETAIN_KEYS)
    if not isinstance(retain, list):
        raise PatchError(_BAD_RETAIN_KEYS, code=400)
    keep = {_scalar_key(value) for value in retain}
    for key, value in patch.items():
        if value is None or key.startswith((_DELETE_FROM_PRIMITIVE_LIST, _SET_ELEMENT_ORDER)):
            continue
        if (str, key) not in keep:
            raise PatchError(_BAD_RETAIN_KEYS, code=400)
    for key in [key for key in original if (str, key) not in keep]:
        del original[key]


def _extract_key(key: str, prefix: str, error: str) -> str:
    head, slash, tail = key.partition("/")
    if not slash or head != prefix:
        raise PatchError(error, code=400)
    return tail


def _merge_set_element_order(
    original: dict[str, Any], patch: dict[str, Any], schema: SchemaNode | None
) -> None:
    """mergePatchIntoOriginal: merge each list that has a ``$setElementOrder`` and order it."""
    for key in [key for key in patch if key.startswith(_SET_ELEMENT_ORDER)]:
        order = patch.pop(key)
        if not isinstance(order, list):
            raise PatchError(_bad_arg_type([], order))
        field = _extract_key(key, _SET_ELEMENT_ORDER, _BAD_SET_ELEMENT_ORDER)
        original_list = original.get(field)
        patch_list = patch.get(field)
        found_original = original_list is not None
        found_patch = field in patch
        if found_original and not isinstance(original_list, list):
            raise PatchError(_bad_arg_type([], original_list))
        if found_patch and not isinstance(patch_list, list):
            raise PatchError(_bad_arg_type([], patch_list))
        subschema, strategy, merge_key = _field_meta(schema, field)
        _validate_set_element_order(patch_list or [], order, merge_key)
        server_order = original_list or []
        if found_original and not found_patch:
            merged = original_list
        elif found_patch and not found_original:
            merged, _ = _remove_directives(patch_list)
        elif found_original and found_patch:
            if strategy == _MERGE:
                merged, server_order = _merge_slice(
                    original_list, patch_list, _element_schema(subschema), merge_key, False
                )
            else:
                merged = patch_list
        else:
            continue
        if merge_key:
            patch_items, server_only = _partition_maps(merged, order, merge_key)
        else:
            patch_items, server_only = _partition_primitives(merged, order)
        element_type = _slice_element_type(original_list or [], patch_list or [])
        original[field] = _normalize_element_order(
            patch_items,
            server_only,
            patch_order=order,
            server_order=server_order,
            merge_key=merge_key,
            maps=element_type is dict,
        )
        patch.pop(field, None)


def _validate_set_element_order(patch_list: list[Any], order: list[Any], merge_key: str) -> None:
    """validatePatchWithSetOrderList: patch items appear in the order list, in its order."""
    if not order or not patch_list:
        return
    items = _extract_to_delete_items(patch_list)[0] if merge_key else patch_list
    patch_index = order_index = 0
    while patch_index < len(items) and order_index < len(order):
        item = items[patch_index]
        if isinstance(item, dict) and _DIRECTIVE in item:
            patch_index += 1
            continue
        if _merge_key_value_equal(item, order[order_index], merge_key):
            patch_index += 1
        order_index += 1
    if patch_index < len(items) and order_index >= len(order):
        raise PatchError(
            f"The order in patch list:\n{_go_format(patch_list)}\n doesn't match "
            f"{_SET_ELEMENT_ORDER} list:\n{_go_format(order)}\n"
        )


def _merge_key_value_equal(left: Any, right: Any, merge_key: str) -> bool:
    if not merge_key:
        return _same(left, right)
    if not isinstance(left, dict):
        raise PatchError(_bad_arg_type({}, left))
    if not isinstance(right, dict):
        raise PatchError(_bad_arg_type({}, right))
    if merge_key not in left:
        raise PatchError(_no_merge_key(left, merge_key))
    if merge_key not in right:
        raise PatchError(_no_merge_key(right, merge_key))
    return _same(left[merge_key], right[merge_key])


def _merge_slice(
    original: list[Any], patch: list[Any], schema: SchemaNode | None, merge_key: str, is_delete_list: bool
) -> tuple[list[Any], list[Any]]:
    """Merge a list patch; return the merged list and the original list as upstream leaves it.

    Upstream deletes from and appends to the original slice in place, so the caller's
    view of it ends up with deleted items shifted out and the freed tail refilled by
    appended items; ``$setElementOrder`` then orders server-only items by that edited
    list, and kubectl's patches are written against that behaviour. The second value
    reproduces the edited view (for lists of maps; scalars are never edited in place).
    """
    if not original and not patch:
        return original, original
    element_type = _slice_element_type(original, patch)
    if element_type is not dict:
        if is_delete_list:
            remove = {_scalar_key(value) for value in patch}
            return [value for value in original if _scalar_key(value) not in remove], original
        merged = _deduplicate(original + patch)
        patch_items, server_only = _partition_primitives(merged, patch)
        ordered = _normalize_element_order(
            patch_items, server_only, patch_order=patch, server_order=original, merge_key="", maps=False
        )
        return ordered, original
    if not merge_key:
        name = schema.kind if schema is not None else "Struct"
        raise PatchError(f"cannot merge lists without merge key for {name}")
    view = _SliceView(original)
    original, patch = _merge_slice_special_elements(view, patch, merge_key)
    merged = _merge_slice_plain_elements(original, patch, merge_key, schema, view)
    patch_items, server_only = _partition_maps(merged, patch, merge_key)
    ordered = _normalize_element_order(
        patch_items, server_only, patch_order=patch, server_order=original, merge_key=merge_key, maps=True
    )
    return ordered, view.items


class _SliceView:
    """A Go slice header over the original list's backing array, as the caller sees it."""

    __slots__ = ("attached", "items", "length")

    def __init__(self, items: list[Any]) -> None:
        self.items = list(items)  # the backing array; the caller's view spans all of it
        self.length = len(items)  # the working slice's length over the same array
        self.attached = True  # False once an append outgrew the array (Go reallocated)

    def delete(self, index: int) -> None:
        """``s = append(s[:i], s[i+1:]...)``: shift left; the last slot keeps its value."""
        self.items[index : self.length - 1] = self.items[index + 1 : self.length]
        self.length -= 1

    def append(self, item: Any) -> None:
        if self.attached and self.length < len(self.items):
            self.items[self.length] = item
            self.length += 1
        else:
            self.attached = False


def _merge_slice_special_elements(
    view: _SliceView, patch: list[Any], merge_key: str
) -> tuple[list[Any], list[Any]]:
    """Apply the ``$patch`` elements of a list patch; return the remaining original and
    the rest of the patch (mergeSliceWithSpecialElements)."""
    plain: list[Any] = []
    replace = False
    for item in patch:
        if _DIRECTIVE not in item:
            plain.append(item)
            continue
        directive = item[_DIRECTIVE]
        if directive == _DELETE:
            if merge_key not in item:
                raise PatchError(_no_merge_key(item, merge_key))
            value = item[merge_key]
            index = _find_by_key(view.items[: view.length], merge_key, value)
            while index >= 0:
                view.delete(index)
                index = _find_by_key(view.items[: view.length], merge_key, value)
        elif directive == _REPLACE:
            replace = True
        elif directive == _MERGE:
            raise PatchError("merging lists cannot yet be specified in the patch")
        else:
            raise PatchError(f"unknown patch type: {_go_format(directive)} in map: {_go_format(item)}")
    if replace:
        view.attached = False  # the merge continues on the patch's own list
        return plain, []
    return view.items[: view.length], plain


def _find_by_key(entries: list[Any], key: str, value: Any) -> int:
    """findMapInSliceBasedOnKeyValue: index of the first map whose ``key`` is ``value``."""
    for index, entry in enumerate(entries):
        if _has_key_value(entry, key, value):
            return index
    return -1


def _has_key_value(entry: Any, key: str, value: Any) -> bool:
    if not isinstance(entry, dict):
        raise PatchError(f"value for key {key} is not a map: {_go_format(entry)}")
    return key in entry and _same(entry[key], value)


def _merge_slice_plain_elements(
    original: list[Any], patch: list[Any], merge_key: str, schema: SchemaNode | None, view: _SliceView
) -> list[Any]:
    merged = list(original)
    for item in patch:
        if merge_key not in item:
            raise PatchError(_no_merge_key(item, merge_key))
        index = _find_by_key(merged, merge_key, item[merge_key])
        if index >= 0:
            merged[index] = _merge_map(merged[index], item, schema)
        else:
            merged.append(item)
            view.append(item)
    return merged


def _partition_primitives(merged: list[Any], partition_by: list[Any]) -> tuple[list[Any], list[Any]]:
    present = {_scalar_key(value) for value in partition_by}
    in_patch: list[Any] = []
    server_only: list[Any] = []
    for value in merged:
        (in_patch if _scalar_key(value) in present else server_only).append(value)
    return in_patch, server_only


def _partition_maps(
    merged: list[Any], partition_by: list[Any], merge_key: str
) -> tuple[list[Any], list[Any]]:
    in_patch: list[Any] = []
    server_only: list[Any] = []
    for entry in merged:
        if not isinstance(entry, dict):
            raise PatchError(_bad_arg_type({}, entry))
        if merge_key not in entry:
            raise PatchError(_no_merge_key(entry, merge_key))
        value = entry[merge_key]
        found = any(_has_key_value(other, merge_key, value) for other in partition_by)
        (in_patch if found else server_only).append(entry)
    return in_patch, server_only


def _normalize_element_order(
    patch: list[Any],
    server_only: list[Any],
    *,
    patch_order: list[Any],
    server_order: list[Any],
    merge_key: str,
    maps: bool,
) -> list[Any]:
    """Patch items in ``patch_order``, server-only items in ``server_order``, interleaved
    by the server's order where both are known (upstream's normalizeElementOrder)."""
    patch = _normalize_slice_order(patch, patch_order, merge_key, maps)
    server_only = _normalize_slice_order(server_only, server_order, merge_key, maps)
    server_positions = _positions(server_order, merge_key, maps)
    key_of = _order_key(merge_key, maps)
    result: list[Any] = []
    i = j = 0
    while i < len(server_only) or j < len(patch):
        if i >= len(server_only):
            result.append(patch[j])
            j += 1
        elif j >= len(patch):
            result.append(server_only[i])
            i += 1
        else:
            left = server_positions.get(key_of(server_only[i]), -1)
            right = server_positions.get(key_of(patch[j]), -1)
            if left >= 0 and right >= 0 and left < right:
                result.append(server_only[i])
                i += 1
            else:
                result.append(patch[j])
                j += 1
    return result


def _normalize_slice_order(items: list[Any], order: list[Any], merge_key: str, maps: bool) -> list[Any]:
    deleted: list[Any] = []
    if maps:
        for entry in (*items, *order):
            if not isinstance(entry, dict):
                raise PatchError(_bad_arg_type({}, entry))
            if merge_key not in entry:
                raise PatchError(_no_merge_key(entry, merge_key))
        items, deleted = _extract_to_delete_items(items)
    positions = _positions(order, merge_key, maps)
    key_of = _order_key(merge_key, maps)
    ranked = sorted(items, key=lambda item: positions.get(key_of(item), len(order)))
    return ranked + deleted


def _positions(order: list[Any], merge_key: str, maps: bool) -> dict[Any, int]:
    """First position of each item (by merge key value for maps) in ``order``."""
    key_of = _order_key(merge_key, maps)
    positions: dict[Any, int] = {}
    for index, item in enumerate(order):
        positions.setdefault(key_of(item), index)
    return positions


def _order_key(merge_key: str, maps: bool) -> Callable[[Any], Any]:
    if maps:
        return lambda item: _scalar_key(item.get(merge_key) if isinstance(item, dict) else None)
    return _scalar_key


def _extract_to_delete_items(items: list[Any]) -> tuple[list[Any], list[Any]]:
    keep: list[Any] = []
    deleted: list[Any] = []
    for item in items:
        if not isinstance(item, dict):
            raise PatchError(_bad_arg_type({}, item))
        (deleted if item.get(_DIRECTIVE) == _DELETE else keep).append(item)
    return keep, deleted


def _slice_element_type(*lists: list[Any]) -> type:
    """sliceElementType: every element has the same JSON type, and none is a list."""
    element_type: type | None = None
    for values in lists:
        for value in values:
            if element_type is None:
                element_type = type(value)
                if element_type is list:
                    raise PatchError(_NO_LIST_OF_LISTS)
            elif type(value) is not element_type:
                raise PatchError(
                    f"list element types are not identical: {_go_format([list(values) for values in lists])}"
                )
    if element_type is None:
        raise PatchError("no elements in any of the given slices")
    return element_type


def _deduplicate(values: list[Any]) -> list[Any]:
    seen: set[Any] = set()
    result = []
    for value in values:
        key = _scalar_key(value)
        if key not in seen:
            seen.add(key)
            result.append(value)
    return result


def _remove_directives(value: Any) -> tuple[Any, bool]:
    """removeDirectives: drop maps carrying ``$patch`` (and say so for the value itself)."""
    if isinstance(value, dict):
        if _DIRECTIVE in value:
            return None, False
        for key in list(value):
            child, keep = _remove_directives(value[key])
            if keep:
                value[key] = child
            else:
                del value[key]
        return value, True
    if isinstance(value, list):
        result = []
        for item in value:
            child, keep = _remove_directives(item)
            if keep:
                result.append(child)
        return result, True
    return value, True


def _discard_nulls(value: Any) -> None:
    if isinstance(value, dict):
        for key in [key for key, child in value.items() if child is None]:
            del value[key]
        for child in value.values():
            _discard_nulls(child)
    elif isinstance(value, list):
        for child in value:
            _discard_nulls(child)


def _same(left: Any, right: Any) -> bool:
    """Go's interface equality on decoded JSON scalars: types must match too."""
    return type(left) is type(right) and left == right


def _scalar_key(value: Any) -> tuple[type, Any]:
    """A set key for a JSON scalar that keeps true apart from 1 and 1 apart from 1.0."""
    if isinstance(value, dict | list):
        raise PatchError(f"a list merged as a set holds a non-scalar value: {_go_format(value)}")
    return (type(value), value)


def _go_format(value: Any) -> str:
    """Go's %v of a decoded JSON value, for messages that quote patch content."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value).removesuffix(".0") if value.is_integer() else repr(value)
    if isinstance(value, dict):
        return "map[" + " ".join(f"{key}:{_go_format(value[key])}" for key in sorted(value)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(_go_format(item) for item in value) + "]"
    return str(value)


_GO_TYPES = {dict: "map[string]interface {}", list: "[]interface {}", str: "string", bool: "bool"}
_GO_TYPES.update({int: "int64", float: "float64"})


def _bad_arg_type(expected: Any, actual: Any) -> str:
    actual_type = "<nil>" if actual is None else _GO_TYPES.get(type(actual), type(actual).__name__)
    return f"expected a {_GO_TYPES[type(expected)]}, but received a {actual_type}"


def _no_merge_key(entry: Any, merge_key: str) -> str:
    return f"map: {_go_format(entry)} does not contain declared merge key: {merge_key}"
