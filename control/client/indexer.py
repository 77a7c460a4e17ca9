"""The informer's cache: objects by key, plus named secondary indexes (client-go's ThreadSafeStore + Indexer).

Keys are client-go's ``MetaNamespaceKeyFunc``: ``"<namespace>/<name>"``, or ``"<name>"`` for
cluster-scoped objects. An index is a function from an object to the values it is filed under
(``namespace`` → ``["default"]``, a pods-by-node index → ``["node-1"]``); :meth:`Indexer.by_index`
then answers "every pod on node-1" without a scan. The namespace index is always there.

asyncio runs one callback at a time, so this is plain dicts — no lock. Each key's index values
are remembered, so an update touches only the index entries that changed and a removal never
has to re-run index functions on the old object.

**Objects returned by this cache are shared with every other consumer and MUST NOT be
mutated.** Copy before you change (``copy.deepcopy``, or build a patch). Set
``detect_mutations=True`` (or ``KUBELAB_CACHE_MUTATION_DETECTOR=true``) in tests to have stored
objects fingerprinted and checked, as client-go's ``KUBE_CACHE_MUTATION_DETECTOR`` does.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson

log = logging.getLogger(__name__)

NAMESPACE_INDEX = "namespace"

IndexFunc = Callable[[Mapping[str, Any]], Iterable[str]]


def object_key(obj: Mapping[str, Any]) -> str:
    """``"<namespace>/<name>"`` or ``"<name>"`` (client-go's MetaNamespaceKeyFunc)."""
    metadata = obj.get("metadata") or {}
    name = metadata.get("name")
    if not name:
        raise ValueError(f"object has no metadata.name: {str(obj)[:200]}")
    namespace = metadata.get("namespace")
    return f"{namespace}/{name}" if namespace else name


def split_key(key: str) -> tuple[str, str]:
    """``(namespace, name)``; the namespace is ``""`` for cluster-scoped keys."""
    namespace, _, name = key.rpartition("/")
    if not name or "/" in namespace:
        raise ValueError(f"unexpected key format: {key!r}")
    return namespace, name


def namespace_index(obj: Mapping[str, Any]) -> list[str]:
    """Files a namespaced object under its namespace (cluster-scoped objects under nothing)."""
    namespace = (obj.get("metadata") or {}).get("namespace")
    return [namespace] if namespace else []


class CacheMutationError(AssertionError):
    """A cached object was changed in place by someone holding it."""


def _fingerprint(obj: Mapping[str, Any]) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)


class Indexer:
    """An indexed object cache. Every object returned is shared: do not mutate it."""

    def __init__(
        self,
        *,
        indexers: Mapping[str, IndexFunc] | None = None,
        key_func: Callable[[Mapping[str, Any]], str] = object_key,
        detect_mutations: bool | None = None,
    ) -> None:
        self._key_func = key_func
        self._items: dict[str, dict[str, Any]] = {}
        self._index_funcs: dict[str, IndexFunc] = {NAMESPACE_INDEX: namespace_index}
        self._indices: dict[str, dict[str, set[str]]] = {NAMESPACE_INDEX: {}}
        self._values: dict[str, dict[str, tuple[str, ...]]] = {NAMESPACE_INDEX: {}}
        if detect_mutations is None:
            detect_mutations = os.environ.get("KUBELAB_CACHE_MUTATION_DETECTOR", "").lower() == "true"
        self._fingerprints: dict[str, bytes] | None = {} if detect_mutations else None
        self._mutated: set[str] = set()
        if indexers:
            self.add_indexers(indexers)

    # --- reads ----------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def key(self, obj: Mapping[str, Any]) -> str:
        return self._key_func(obj)

    def get_by_key(self, key: str) -> dict[str, Any] | None:
        """The cached object (shared: do not mutate), or ``None``."""
        return self._items.get(key)

    def get(self, obj: Mapping[str, Any]) -> dict[str, Any] | None:
        """The cached object with the same key as ``obj`` (shared: do not mutate), or ``None``."""
        return self._items.get(self._key_func(obj))

    def list(self) -> list[dict[str, Any]]:
        """Every cached object (shared: do not mutate). The list itself is a fresh copy."""
        return list(self._items.values())

    def list_keys(self) -> list[str]:
        return list(self._items)

    def index_names(self) -> list[str]:
        return list(self._index_funcs)

    def _index_of(self, name: str) -> dict[str, set[str]]:
        try:
            return self._indices[name]
        except KeyError:
            raise KeyError(f"index {name!r} does not exist") from None

    def by_index(self, name: str, value: str) -> list[dict[str, Any]]:
        """The objects filed under ``value`` in index ``name`` (shared: do not mutate)."""
        items = self._items
        return [items[key] for key in self._index_of(name).get(value, ())]

    def index_keys(self, name: str, value: str) -> list[str]:
        return list(self._index_of(name).get(value, ()))

    def index_values(self, name: str) -> list[str]:
        """Every value that has at least one object in index ``name``."""
        return list(self._index_of(name))

    def index(self, name: str, obj: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The objects sharing at least one value of index ``name`` with ``obj``."""
        index = self._index_of(name)
        keys: set[str] = set()
        for value in self._index_funcs[name](obj):
            keys.update(index.get(value, ()))
        return [self._items[key] for key in keys]

    # --- writes ---------------------------------------------------------------------------------

    def add_indexers(self, indexers: Mapping[str, IndexFunc]) -> None:
        """Add named index functions; existing objects are indexed at once."""
        for name in indexers:
            if name in self._index_funcs:
                raise ValueError(f"index {name!r} already exists")
        for name, func in indexers.items():
            self._index_funcs[name] = func
            self._indices[name] = {}
            self._values[name] = {}
            for key, obj in self._items.items():
                self._file(name, func, key, obj)

    def add(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        """Store ``obj`` (insert or replace); returns the object it replaced, if any."""
        return self._put(self._key_func(obj), obj)

    update = add

    def delete(self, obj: Mapping[str, Any]) -> dict[str, Any] | None:
        return self.delete_key(self._key_func(obj))

    def delete_key(self, key: str) -> dict[str, Any] | None:
        """Remove the object under ``key``; returns it, or ``None`` if there was none."""
        old = self._items.pop(key, None)
        if old is None:
            return None
        self._check_unmutated(key, old)
        for name, values in self._values.items():
            old_values = values.pop(key, ())
            index = self._indices[name]
            for value in old_values:
                self._unfile(index, value, key)
        return old

    def replace(self, items: Iterable[dict[str, Any]]) -> None:
        """Make the cache hold exactly ``items`` (after a relist), rebuilding every index."""
        new_items = {self._key_func(obj): obj for obj in items}
        if self._fingerprints is not None:
            for key, obj in self._items.items():
                self._check_unmutated(key, obj)
            self._fingerprints = {key: _fingerprint(obj) for key, obj in new_items.items()}
        self._items = new_items
        for name, func in self._index_funcs.items():
            self._indices[name] = {}
            self._values[name] = {}
            for key, obj in new_items.items():
                self._file(name, func, key, obj)

    def verify_unmutated(self) -> None:
        """With mutation detection on: raise :class:`CacheMutationError` naming every object that was
        changed in place, whether still cached or already replaced.
        """
        if self._fingerprints is None:
            return
        changed = self._mutated | {
            key for key, obj in self._items.items() if _fingerprint(obj) != self._fingerprints.get(key)
        }
        if changed:
            raise CacheMutationError(f"cached objects were mutated in place: {', '.join(sorted(changed))}")

    # --- internals ------------------------------------------------------------------------------

    def _put(self, key: str, obj: dict[str, Any]) -> dict[str, Any] | None:
        old = self._items.get(key)
        if old is not None:
            self._check_unmutated(key, old)
        self._items[key] = obj
        if self._fingerprints is not None:
            self._fingerprints[key] = _fingerprint(obj)
        for name, func in self._index_funcs.items():
            self._file(name, func, key, obj)
        return old

    def _file(self, name: str, func: IndexFunc, key: str, obj: dict[str, Any]) -> None:
        new_values = tuple(func(obj))
        values = self._values[name]
        old_values = values.get(key, ())
        if new_values == old_values:
            return
        index = self._indices[name]
        for value in old_values:
            self._unfile(index, value, key)
        for value in new_values:
            bucket = index.get(value)
            if bucket is None:
                index[value] = {key}
            else:
                bucket.add(key)
        if new_values:
            values[key] = new_values
        else:
            del values[key]

    @staticmethod
    def _unfile(index: dict[str, set[str]], value: str, key: str) -> None:
        bucket = index.get(value)
        if bucket is not None:
            bucket.discard(key)
            if not bucket:
                del index[value]

    def _check_unmutated(self, key: str, obj: Mapping[str, Any]) -> None:
        if self._fingerprints is None:
            return
        expected = self._fingerprints.pop(key, None)
        if expected is not None and _fingerprint(obj) != expected:
            # Reported, not raised: the write path must keep the cache consistent.
            log.error("cache mutation detected: the cached object %s was changed in place", key)
            self._mutated.add(key)
