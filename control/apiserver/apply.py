"""Server-side apply (``PATCH`` with ``application/apply-patch+yaml``, ``kubectl apply
--server-side``): field ownership in ``metadata.managedFields``, merging, conflicts and removal,
as upstream's structured-merge-diff does it for what kubelab serves.

An *applied configuration* is a partial object: the fields its manager (``fieldManager``) wants
set. Applying it

- **merges** it into the live object by the kind's schema: objects field by field; lists with
  merge keys (``x-kubernetes-list-map-keys`` or a built-in's ``patchMergeKey``) element by
  key; ``set`` lists (and primitive lists merged by strategy) value by value; other lists
  whole;
- **conflicts** (409, upstream's message ``Apply failed with 1 conflict: conflict with
  "kubectl-client-side-apply" using apps/v1: .spec.replicas`` — ``using`` only for an ``Update``
  manager: an applier is named alone, ``conflict with "ci": .spec.replicas``) where it would
  change a value another manager owns, unless ``force=true``, which takes the field over;
- **removes** the fields this manager applied last time and no longer names, unless another
  manager owns them too;
- records what the manager now owns: its ``Apply`` entry of ``managedFields`` is exactly the
  fields of this configuration (``fieldsV1`` as upstream serialises them: ``f:<field>``,
  ``k:<merge key JSON>``, ``v:<value JSON>``, and ``.`` for a map or list element owned as a
  whole). Fields set to the same value by several managers are shared.

Later writes of other kinds (update, patch, and writes through the scale subresource, whose
entry says ``subresource: scale`` as upstream's ScaleHandler records it on the parent) of an
object that has ``managedFields`` move the fields they change to their manager
(``fieldManager``, else the client's User-Agent product, as upstream) with operation
``Update``, so the next apply conflicts on them.

Lab deviation: upstream tracks ``Update`` managers from an object's creation; here an object
gets ``managedFields`` when it is first applied, so fields set before that are owned by no one
and an apply may change them without conflict. Only ``metadata.labels`` and
``metadata.annotations`` of the metadata are tracked, and ``status`` is left to the status
subresource, as upstream resets it on the main resource.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import orjson

from control.apiserver import errors
from control.resources.schema import SchemaNode

Path = tuple[str, ...]
MANAGED_METADATA = ("labels", "annotations")
APPLY = "Apply"
UPDATE = "Update"


class ApplyConflictError(errors.StatusError):
    """409 with upstream's FieldManagerConflict causes."""


# ---------------------------------------------------------------------------- list kinds


def _list_kind(node: SchemaNode | None) -> tuple[str, tuple[str, ...]]:
    """``map`` (with its keys), ``set`` or ``atomic``."""
    if node is None:
        return "atomic", ()
    if node.list_type == "map" and node.list_map_keys:
        return "map", node.list_map_keys
    if node.list_type == "set":
        return "set", ()
    if node.list_type == "atomic":
        return "atomic", ()
    if node.patch_merge_key:
        return "map", (node.patch_merge_key,)
    if (
        "merge" in node.patch_strategies
        and node.items is not None
        and node.items.kind not in ("object", "map")
    ):
        return "set", ()
    return "atomic", ()


# Defaults of merge-key fields, which an applied configuration may leave out (ports are keyed by
# port and protocol; upstream's schemas carry the default that structured-merge-diff fills in).
_KEY_DEFAULTS = {"protocol": "TCP"}


def _key_token(item: Mapping[str, Any], keys: tuple[str, ...]) -> str:
    values = {key: item.get(key, _KEY_DEFAULTS.get(key)) for key in keys}
    return "k:" + orjson.dumps(values, option=orjson.OPT_SORT_KEYS).decode()


def _value_token(value: Any) -> str:
    return "v:" + orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _is_map(node: SchemaNode | None) -> bool:
    return node is not None and node.kind == "map"


# ---------------------------------------------------------------------------- field sets


def fields_of(obj: Mapping[str, Any], schema: SchemaNode | None, *, has_status: bool) -> set[Path]:
    """The set of fields ``obj`` sets (what a manager owns by applying it)."""
    found: set[Path] = set()
    for name, value in obj.items():
        if name in ("apiVersion", "kind") or (name == "status" and has_status):
            continue
        child = schema.child(name) if schema is not None else None
        if name == "metadata":
            metadata = value if isinstance(value, dict) else {}
            for key in MANAGED_METADATA:
                if key in metadata:
                    node = child.child(key) if child is not None else None
                    _collect(metadata[key], node, ("f:metadata", f"f:{key}"), found)
            continue
        _collect(value, child, (f"f:{name}",), found)
    return found


def _collect(value: Any, node: SchemaNode | None, path: Path, found: set[Path]) -> None:
    if isinstance(value, dict) and node is not None and node.kind in ("object", "map"):
        if _is_map(node) or not value:
            found.add(path)
        for key, child_value in value.items():
            _collect(child_value, node.child(key), (*path, f"f:{key}"), found)
        return
    if isinstance(value, list) and node is not None and node.kind == "array":
        kind, keys = _list_kind(node)
        if kind == "set":
            found.update((*path, _value_token(item)) for item in value)
            return
        if kind == "map":
            for item in value:
                if isinstance(item, dict):
                    element = (*path, _key_token(item, keys))
                    found.add(element)
                    _collect_element(item, node.items, element, found)
            return
    found.add(path)


def _collect_element(item: Mapping[str, Any], node: SchemaNode | None, path: Path, found: set[Path]) -> None:
    for key, value in item.items():
        _collect(value, node.child(key) if node is not None else None, (*path, f"f:{key}"), found)


def to_fields_v1(paths: Iterable[Path]) -> dict[str, Any]:
    """Upstream's FieldsV1 JSON: nested tokens; ``.`` marks a node that is itself a member."""
    tree: dict[str, Any] = {}
    all_paths = set(paths)
    for path in sorted(all_paths):
        node = tree
        for token in path:
            node = node.setdefault(token, {})
        if any(other[: len(path)] == path and len(other) > len(path) for other in all_paths):
            node["."] = {}
    return tree


def from_fields_v1(tree: Mapping[str, Any], prefix: Path = ()) -> set[Path]:
    paths: set[Path] = set()
    for token, child in tree.items():
        if token == ".":
            paths.add(prefix)
            continue
        path = (*prefix, token)
        if not child:
            paths.add(path)
        else:
            paths.update(from_fields_v1(child, path))
    return paths


def _leaves(paths: set[Path]) -> set[Path]:
    prefixes = {path[:i] for path in paths for i in range(1, len(path))}
    return {path for path in paths if path not in prefixes}


# ---------------------------------------------------------------------------- values by path


_MISSING = object()


def value_at(obj: Any, path: Path) -> Any:
    current = obj
    for token in path:
        kind, _, text = token.partition(":")
        if kind == "f":
            if not isinstance(current, dict) or text not in current:
                return _MISSING
            current = current[text]
        elif kind == "k":
            wanted = orjson.loads(text)
            if not isinstance(current, list):
                return _MISSING
            current = next(
                (
                    item
                    for item in current
                    if isinstance(item, dict)
                    and all(item.get(k, _KEY_DEFAULTS.get(k)) == v for k, v in wanted.items())
                ),
                _MISSING,
            )
            if current is _MISSING:
                return _MISSING
        elif kind == "v":
            value = orjson.loads(text)
            if not isinstance(current, list) or value not in current:
                return _MISSING
            current = value
        else:
            return _MISSING
    return current


def _remove(obj: dict[str, Any], path: Path) -> None:
    """Remove the field, list element or set value at ``path`` (nothing if absent)."""
    parent = value_at(obj, path[:-1]) if len(path) > 1 else obj
    kind, _, text = path[-1].partition(":")
    if kind == "f" and isinstance(parent, dict):
        parent.pop(text, None)
    elif kind == "k" and isinstance(parent, list):
        wanted = orjson.loads(text)
        parent[:] = [
            item
            for item in parent
            if not (
                isinstance(item, dict)
                and all(item.get(k, _KEY_DEFAULTS.get(k)) == v for k, v in wanted.items())
            )
        ]
    elif kind == "v" and isinstance(parent, list):
        value = orjson.loads(text)
        parent[:] = [item for item in parent if item != value]


def field_path_text(path: Path) -> str:
    """A path as upstream prints it in conflicts: ``.spec.containers[name="nginx"].image``."""
    text = ""
    for token in path:
        kind, _, rest = token.partition(":")
        if kind == "f":
            text += f".{rest}"
        elif kind == "k":
            keys = orjson.loads(rest)
            text += "[" + ",".join(f"{k}={orjson.dumps(v).decode()}" for k, v in keys.items()) + "]"
        else:
            text += f"[={rest}]"
    return text


# ---------------------------------------------------------------------------- merging


def merge(live: Any, applied: Any, node: SchemaNode | None) -> Any:
    """The applied configuration merged into the live value, by the schema."""
    if isinstance(applied, dict) and isinstance(live, dict):
        result = dict(live)
        for key, value in applied.items():
            child = node.child(key) if node is not None else None
            result[key] = merge(live.get(key), value, child) if key in live else copy.deepcopy(value)
        return result
    if isinstance(applied, list) and isinstance(live, list) and node is not None and node.kind == "array":
        kind, keys = _list_kind(node)
        if kind == "set":
            return [*live, *(copy.deepcopy(item) for item in applied if item not in live)]
        if kind == "map":
            result = [copy.deepcopy(item) for item in live]
            for item in applied:
                if not isinstance(item, dict):
                    continue
                token = _key_token(item, keys)
                for index, existing in enumerate(result):
                    if isinstance(existing, dict) and _key_token(existing, keys) == token:
                        result[index] = merge(existing, item, node.items)
                        break
                else:
                    result.append(copy.deepcopy(item))
            return result
    return copy.deepcopy(applied)


# ---------------------------------------------------------------------------- managed fields


def _entries(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [
        dict(entry)
        for entry in (obj.get("metadata") or {}).get("managedFields") or ()
        if isinstance(entry, dict)
    ]


def _entry(
    *, manager: str, operation: str, api_version: str, now: datetime, paths: set[Path], subresource: str = ""
) -> dict[str, Any]:
    entry = {
        "manager": manager,
        "operation": operation,
        "apiVersion": api_version,
        "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "fieldsType": "FieldsV1",
        "fieldsV1": to_fields_v1(paths),
    }
    if subresource:
        entry["subresource"] = subresource
    return entry


def apply(
    live: dict[str, Any] | None,
    applied: dict[str, Any],
    *,
    schema: SchemaNode | None,
    has_status: bool,
    manager: str,
    force: bool,
    api_version: str,
    now: datetime,
) -> dict[str, Any]:
    """The object after ``manager`` applies ``applied`` to ``live`` (None: it is created)."""
    applied_fields = fields_of(applied, schema, has_status=has_status)
    if live is None:
        result = copy.deepcopy(applied)
        result.setdefault("metadata", {})["managedFields"] = [
            _entry(manager=manager, operation=APPLY, api_version=api_version, now=now, paths=applied_fields)
        ]
        return result
    entries = _entries(live)
    mine = next((e for e in entries if e.get("manager") == manager and e.get("operation") == APPLY), None)
    others = [e for e in entries if e is not mine]
    owned_by_others = [(entry, from_fields_v1(entry.get("fieldsV1") or {})) for entry in others]
    conflicts: list[tuple[dict[str, Any], Path]] = []
    for path in sorted(_leaves(applied_fields)):
        new_value = value_at(applied, path)
        if value_at(live, path) == new_value:
            continue  # same value: shared, never a conflict
        for entry, owned in owned_by_others:
            if path in owned:
                conflicts.append((entry, path))
    if conflicts and not force:
        raise _conflict_error(conflicts)
    result = merge(live, {k: v for k, v in applied.items() if k != "metadata"}, schema)
    metadata = result.setdefault("metadata", {})
    for key in MANAGED_METADATA:
        value = (applied.get("metadata") or {}).get(key)
        if value is not None:
            metadata[key] = {**(metadata.get(key) or {}), **value}
    # fields this manager applied before and now leaves out: removed, unless someone else owns them
    previously = from_fields_v1(mine.get("fieldsV1") or {}) if mine else set()
    still_owned = set().union(*(owned for _, owned in owned_by_others)) if owned_by_others else set()
    for path in sorted(previously - applied_fields - still_owned, key=len, reverse=True):
        if path and path[0] in ("f:apiVersion", "f:kind"):
            continue
        _remove(result, path)
    taken = {path for _, path in conflicts}
    new_entries: list[dict[str, Any]] = []
    for entry, owned in owned_by_others:
        remaining = owned - taken
        if remaining:
            new_entries.append({**entry, "fieldsV1": to_fields_v1(remaining)})
    new_entries.append(
        _entry(manager=manager, operation=APPLY, api_version=api_version, now=now, paths=applied_fields)
    )
    metadata["managedFields"] = new_entries
    return result


def track_update(
    old: Mapping[str, Any],
    new: dict[str, Any],
    *,
    schema: SchemaNode | None,
    has_status: bool,
    manager: str,
    api_version: str,
    now: datetime,
    subresource: str = "",
) -> None:
    """After a non-apply write of an object with managedFields: the changed fields move to
    ``manager`` (operation Update; its entry names the ``subresource`` written through, as
    upstream's ``kubectl scale`` entry says ``subresource: scale``); removed fields leave every
    manager."""
    entries = _entries(old)
    if not entries:
        (new.get("metadata") or {}).pop("managedFields", None)
        return
    before = fields_of(old, schema, has_status=has_status)
    after = fields_of(new, schema, has_status=has_status)
    changed = {path for path in _leaves(after) if value_at(old, path) != value_at(new, path)}
    gone = before - after
    updated: list[dict[str, Any]] = []
    mine_paths: set[Path] = set()
    for entry in entries:
        owned = from_fields_v1(entry.get("fieldsV1") or {})
        if (
            entry.get("manager") == manager
            and entry.get("operation") == UPDATE
            and entry.get("subresource", "") == subresource
        ):
            mine_paths = owned - gone
            continue
        remaining = owned - changed - gone
        if remaining:
            updated.append({**entry, "fieldsV1": to_fields_v1(remaining)})
    mine_paths |= changed
    if mine_paths:
        updated.append(
            _entry(
                manager=manager,
                operation=UPDATE,
                api_version=api_version,
                now=now,
                paths=mine_paths,
                subresource=subresource,
            )
        )
    new.setdefault("metadata", {})["managedFields"] = updated


def _manager_text(entry: dict[str, Any]) -> str:
    """A manager as upstream's conflict messages name it (printManager): ``"name"``, ``with
    subresource "scale"`` when it wrote through one, and ``using <apiVersion>`` for an ``Update``
    manager only (an applier's identity has no version)."""
    text = f'"{entry.get("manager", "")}"'
    if entry.get("subresource"):
        text += f' with subresource "{entry["subresource"]}"'
    if entry.get("operation") == UPDATE:
        text += f" using {entry.get('apiVersion', '')}"
    return text


def _manager_identity(entry: dict[str, Any]) -> tuple[str, str, str, str]:
    """What upstream's BuildManagerIdentifier keeps of an entry, in its order (conflicts are
    grouped and sorted by it)."""
    version = str(entry.get("apiVersion", "")) if entry.get("operation") == UPDATE else ""
    return (
        str(entry.get("manager", "")),
        str(entry.get("operation", "")),
        version,
        str(entry.get("subresource", "")),
    )


def _conflict_error(conflicts: list[tuple[dict[str, Any], Path]]) -> ApplyConflictError:
    """409 worded as upstream's NewConflictError: one conflict on one line, several grouped by
    manager (``conflicts with "m" using v:`` and one ``- <field>`` line each)."""
    by_manager: dict[tuple[str, str, str, str], tuple[str, list[str]]] = {}
    causes = []
    for entry, path in conflicts:
        manager = _manager_text(entry)
        text = field_path_text(path)
        by_manager.setdefault(_manager_identity(entry), (manager, []))[1].append(text)
        causes.append(
            {"reason": "FieldManagerConflict", "message": f"conflict with {manager}", "field": text}
        )
    if len(conflicts) == 1:
        ((manager, (field,)),) = by_manager.values()
        message = f"Apply failed with 1 conflict: conflict with {manager}: {field}"
    else:
        parts = [
            f"conflicts with {manager}:\n" + "\n".join(f"- {field}" for field in fields)
            for _, (manager, fields) in sorted(by_manager.items())
        ]
        message = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(parts)
    return ApplyConflictError(code=409, reason="Conflict", message=message, details={"causes": causes})
