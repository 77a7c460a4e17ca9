"""ControllerRevision history, shared by the DaemonSet and StatefulSet controllers (upstream's
``pkg/controller/history`` and the DaemonSet controller's ``constructHistory``).

A revision snapshots an owner's pod template as upstream's ``getPatch`` does: ``data`` is
``{"spec": {"template": {..., "$patch": "replace"}}}``, so applying it to the owner restores the
template (``kubectl rollout undo`` reads it the same way). Two revisions are the same when their
``data`` is equal; ``revision`` numbers only grow, and a template that comes back (a rollback)
re-uses its old revision with a new, highest number rather than creating a copy.

Naming and labels differ between the two owners, as upstream:

- StatefulSet: ``<set>-<hash>`` where the hash is FNV-1 (32 bit) of the encoded ``data`` plus the
  collision count (``history.HashControllerRevision``), labelled
  ``controller.kubernetes.io/hash: <hash>``; pods carry the whole revision *name* in
  ``controller-revision-hash``.
- DaemonSet: ``<ds>-<hash>`` where the hash is the template hash of
  :func:`control.controllers.ownership.compute_hash`, labelled ``controller-revision-hash:
  <hash>``; pods carry the *hash* in the same label.

``data`` is compared by its canonical JSON (sorted keys), not by the bytes a Go encoder would
write, so hashes are stable here but differ from a real cluster's. When a name is taken by a
revision with other data (a hash collision), the collision count is bumped and the name
recomputed, as ``history.CreateControllerRevision`` does; the caller stores the new count in
the owner's ``status.collisionCount``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson

from control.client import errors
from control.client.informer import SharedInformer
from control.client.rest import Resource, RESTClient
from control.controllers.kinds import CONTROLLER_REVISIONS
from control.controllers.ownership import (
    ControllerRefManager,
    LabelMatcher,
    add_controller_uid_index,
    controller_ref,
    owned_or_orphaned,
    safe_encode,
)

# Label on pods (and on DaemonSet revisions): apps.ControllerRevisionHashLabelKey.
CONTROLLER_REVISION_HASH_LABEL = "controller-revision-hash"
# Label on StatefulSet revisions: history.ControllerRevisionHashLabel.
HISTORY_HASH_LABEL = "controller.kubernetes.io/hash"

Obj = Mapping[str, Any]

_FNV32_OFFSET = 0x811C9DC5
_FNV32_PRIME = 0x01000193


def template_patch(owner: Obj) -> dict[str, Any]:
    """The revision ``data`` for ``owner``'s current pod template (upstream's ``getPatch``)."""
    template = copy.deepcopy((owner.get("spec") or {}).get("template") or {})
    template["$patch"] = "replace"
    return {"spec": {"template": template}}


def encode_data(data: Any) -> bytes:
    """Canonical bytes of revision data: what is hashed and compared."""
    return orjson.dumps(data, option=orjson.OPT_SORT_KEYS)


def matches_owner(owner: Obj, revision: Obj) -> bool:
    """Whether ``revision`` snapshots ``owner``'s current template (the DaemonSet's ``Match``)."""
    return encode_data(template_patch(owner)) == encode_data(revision.get("data"))


def _fnv32(data: bytes) -> int:
    value = _FNV32_OFFSET
    for byte in data:
        value = ((value * _FNV32_PRIME) & 0xFFFFFFFF) ^ byte
    return value


def hash_revision_data(data: Any, *, collision_count: int | None) -> str:
    """``history.HashControllerRevision``: FNV-1 of the data, then of the collision count in decimal."""
    raw = encode_data(data)
    if collision_count is not None:
        raw += str(collision_count).encode()
    return safe_encode(str(_fnv32(raw)))


def revision_name(prefix: str, hash_value: str) -> str:
    """``history.ControllerRevisionName``: ``<prefix>-<hash>``, the prefix cut to 223 characters."""
    return f"{prefix[:223]}-{hash_value}"


def template_of(revision: Obj) -> dict[str, Any]:
    """The pod template a revision snapshots (its ``$patch`` directive removed)."""
    template = copy.deepcopy(((revision.get("data") or {}).get("spec") or {}).get("template") or {})
    template.pop("$patch", None)
    return template


def apply_revision(owner: Obj, revision: Obj) -> dict[str, Any]:
    """A copy of ``owner`` with the pod template of ``revision`` (upstream's ``ApplyRevision``)."""
    restored = copy.deepcopy(dict(owner))
    restored.setdefault("spec", {})["template"] = template_of(revision)
    return restored


def revision_number(revision: Obj) -> int:
    return int(revision.get("revision") or 0)


def max_revision(revisions: Iterable[Obj]) -> int:
    return max((revision_number(revision) for revision in revisions), default=0)


def sorted_by_revision(revisions: Iterable[Obj]) -> list[Obj]:
    """Oldest first; equal numbers by name (upstream's ``SortControllerRevisions``)."""
    return sorted(revisions, key=lambda r: (revision_number(r), r["metadata"]["name"]))


def new_revision(
    owner: Obj,
    *,
    owner_resource: Resource,
    data: Any,
    number: int,
    labels: Mapping[str, str],
) -> dict[str, Any]:
    """A ControllerRevision body (without a name: :meth:`History.create` names it).

    It carries ``labels`` (the template's), the owner's annotations as upstream copies them, and
    the owner's controller reference.
    """
    metadata = owner["metadata"]
    body: dict[str, Any] = {
        "apiVersion": CONTROLLER_REVISIONS.api_version,
        "kind": CONTROLLER_REVISIONS.kind,
        "metadata": {
            "namespace": metadata["namespace"],
            "labels": dict(labels),
            "ownerReferences": [controller_ref(owner, owner_resource)],
        },
        "data": copy.deepcopy(data),
        "revision": number,
    }
    if metadata.get("annotations"):
        body["metadata"]["annotations"] = dict(metadata["annotations"])
    return body


class History:
    """The revisions of one kind of owner, read from a shared ControllerRevision informer.

    Reads come from the cache (shared objects: never mutate them); writes go to the API server.
    """

    def __init__(self, *, client: RESTClient, revisions: SharedInformer, owner_resource: Resource) -> None:
        self._client = client
        self._revisions = revisions
        self._owner_resource = owner_resource
        add_controller_uid_index(revisions)

    async def claim(self, owner: Obj, *, selector: LabelMatcher) -> list[dict[str, Any]]:
        """The revisions ``owner`` controls, adopting orphans that match ``selector`` and releasing
        owned ones that stopped matching (``ClaimControllerRevisions``)."""
        candidates = owned_or_orphaned(self._revisions.cache, owner)
        manager = ControllerRefManager(
            client=self._client,
            owner=owner,
            owner_resource=self._owner_resource,
            resource=CONTROLLER_REVISIONS,
            selector=selector,
        )
        return await manager.claim(candidates)

    async def create(
        self,
        revision: Obj,
        *,
        prefix: str,
        hash_label: str,
        hash_for: Callable[[int | None], str],
        collision_count: int | None,
    ) -> tuple[dict[str, Any], int | None]:
        """Create ``revision`` named ``<prefix>-<hash>``; returns it and the collision count used.

        ``hash_for(collision_count)`` gives the hash. A name already taken by a revision with the
        same data returns that revision; one with other data bumps the collision count and tries
        the next name.
        """
        while True:
            hash_value = hash_for(collision_count)
            body = copy.deepcopy(dict(revision))
            body["metadata"]["name"] = revision_name(prefix, hash_value)
            body["metadata"]["labels"][hash_label] = hash_value
            try:
                created = await self._client.create(CONTROLLER_REVISIONS, body)
            except errors.AlreadyExistsError:
                existing = await self._client.get(
                    CONTROLLER_REVISIONS, body["metadata"]["name"], namespace=body["metadata"]["namespace"]
                )
                if encode_data(existing.get("data")) == encode_data(body["data"]):
                    return existing, collision_count
                collision_count = (collision_count or 0) + 1
                continue
            return created, collision_count

    async def renumber(self, revision: Obj, number: int) -> dict[str, Any]:
        """Give ``revision`` the revision number ``number`` (a template that came back)."""
        changed = copy.deepcopy(dict(revision))
        changed["revision"] = number
        return await self._client.replace(CONTROLLER_REVISIONS, changed)

    async def relabel(self, revision: Obj, *, key: str, value: str) -> dict[str, Any]:
        changed = copy.deepcopy(dict(revision))
        changed["metadata"].setdefault("labels", {})[key] = value
        return await self._client.replace(CONTROLLER_REVISIONS, changed)

    async def delete(self, revision: Obj) -> None:
        metadata = revision["metadata"]
        try:
            await self._client.delete(CONTROLLER_REVISIONS, metadata["name"], namespace=metadata["namespace"])
        except errors.NotFoundError:
            return
