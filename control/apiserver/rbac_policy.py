"""SKELETON (to be written): the bootstrap RBAC policy."""

from __future__ import annotations

from control.apiserver.resource_store import ResourceStore


async def ensure_bootstrap_policy(objects: ResourceStore) -> None:
    return None
