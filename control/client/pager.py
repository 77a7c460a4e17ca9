"""Chunked LIST: follow ``continue`` tokens until the collection is complete (client-go's tools/pager).

Used by the REST client's ``list_all`` and by the reflector, so both page the same way:

- the first request carries ``limit`` (and the caller's ``resourceVersion``/``resourceVersionMatch``);
- later requests carry ``continue`` and *no* resourceVersion (the server refuses both together);
- if a continuation page answers 410 Expired (the snapshot the token pins was compacted while we
  paged), the whole collection is fetched again in one unpaged request at the originally requested
  resourceVersion, rather than failing.

The merged result is one List object whose ``metadata.resourceVersion`` is the first page's.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, Protocol

from control.client.errors import GoneError

DEFAULT_PAGE_SIZE = 500


class ListPage(Protocol):
    """One LIST request: the shape of ``ListerWatcher.list``."""

    def __call__(
        self,
        *,
        resource_version: str | None,
        resource_version_match: str | None,
        limit: int | None,
        continue_: str | None,
    ) -> Awaitable[dict[str, Any]]: ...


async def list_pages(
    list_page: ListPage,
    *,
    resource_version: str | None = None,
    resource_version_match: str | None = None,
    page_size: int | None = DEFAULT_PAGE_SIZE,
) -> tuple[dict[str, Any], bool]:
    """The whole collection, and whether it came in more than one page.

    ``page_size`` ``None`` or 0 sends no limit (one request).
    """
    limit = page_size or None
    first = await list_page(
        resource_version=resource_version,
        resource_version_match=resource_version_match,
        limit=limit,
        continue_=None,
    )
    token = (first.get("metadata") or {}).get("continue")
    if not token:
        return first, False

    items: list[Any] = list(first.get("items") or ())
    while token:
        try:
            page = await list_page(
                resource_version=None, resource_version_match=None, limit=limit, continue_=token
            )
        except GoneError:
            full = await list_page(
                resource_version=resource_version,
                resource_version_match=resource_version_match,
                limit=None,
                continue_=None,
            )
            return full, True
        items.extend(page.get("items") or ())
        token = (page.get("metadata") or {}).get("continue")

    metadata = dict(first.get("metadata") or {})
    metadata.pop("continue", None)
    metadata.pop("remainingItemCount", None)
    merged = {key: value for key, value in first.items() if key not in ("items", "metadata")}
    merged["metadata"] = metadata
    merged["items"] = items
    return merged, True
