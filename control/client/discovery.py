"""Discovery: which API groups and resources a server offers, and kind → :class:`Resource` resolution.

Controllers meet kinds by name — an ``ownerReference`` says ``apiVersion: apps/v1, kind:
ReplicaSet`` — and need the resource to call (``replicasets``, namespaced). client-go answers with
a RESTMapper fed by discovery; :class:`Discovery` does the same from the legacy per-group-version
documents (``/api``, ``/apis``, ``/api/v1``, ``/apis/<group>/<version>``), which every server
serves (aggregated discovery is an optimisation we do not need).

Resolution is cached per group version. A kind missing from a cached group version triggers one
refetch, at most every ``refresh_after`` seconds (a CRD may have been added meanwhile), so a
controller looking up a bogus kind in a loop does not hammer the server.
"""

from __future__ import annotations

import asyncio
from typing import Any

from control.client.clock import REAL_CLOCK, Clock
from control.client.errors import NotFoundError, RequestError
from control.client.rest import Resource, RESTClient


class GroupDiscoveryFailedError(RequestError):
    """Some group versions could not be discovered (an aggregated API is down, say).

    ``resources`` holds the APIResourceLists that were fetched; ``failed`` maps each failed group
    version to its error — client-go's ``ErrGroupDiscoveryFailed`` with partial results.
    """

    def __init__(self, *, failed: dict[str, BaseException], resources: list[dict[str, Any]]) -> None:
        names = ", ".join(sorted(failed))
        super().__init__(f"unable to retrieve the complete list of server APIs: {names}")
        self.failed = failed
        self.resources = resources


class UnknownKindError(LookupError):
    """No resource of that kind is served in that group version."""


def _group_version_path(api_version: str) -> str:
    return f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"


class Discovery:
    """Discovery queries and a cached kind → Resource resolver over one :class:`RESTClient`."""

    def __init__(self, client: RESTClient, *, refresh_after: float = 30.0, clock: Clock = REAL_CLOCK) -> None:
        self._client = client
        self._refresh_after = refresh_after
        self._clock = clock
        self._by_group_version: dict[str, tuple[float, dict[str, Resource]]] = {}
        self._lock = asyncio.Lock()

    async def server_version(self) -> dict[str, Any]:
        """``GET /version`` (``gitVersion``, ``major``, ``minor``...)."""
        return (await self._client.request("GET", "/version")).json()

    async def server_group_versions(self) -> list[str]:
        """Every served group version, core first: ``["v1", "apps/v1", "batch/v1", ...]``."""
        core = (await self._client.request("GET", "/api")).json()
        groups = (await self._client.request("GET", "/apis")).json()
        versions = list(core.get("versions") or ())
        for group in groups.get("groups") or ():
            versions.extend(item["groupVersion"] for item in group.get("versions") or ())
        return versions

    async def server_resources(self) -> list[dict[str, Any]]:
        """The ``APIResourceList`` of every group version, fetched concurrently.

        Raises :class:`GroupDiscoveryFailedError` (carrying the lists that did arrive) if any
        group version failed.
        """
        group_versions = await self.server_group_versions()
        answers = await asyncio.gather(
            *(self._client.request("GET", _group_version_path(gv)) for gv in group_versions),
            return_exceptions=True,
        )
        resources: list[dict[str, Any]] = []
        failed: dict[str, BaseException] = {}
        for group_version, answer in zip(group_versions, answers, strict=True):
            if isinstance(answer, BaseException):
                if not isinstance(answer, Exception):
                    raise answer
                failed[group_version] = answer
                continue
            try:
                resources.append(answer.json())
            except RequestError as exc:
                failed[group_version] = exc
        if failed:
            raise GroupDiscoveryFailedError(failed=failed, resources=resources)
        return resources

    async def resource_for(self, *, api_version: str, kind: str) -> Resource:
        """The resource serving ``kind`` in ``api_version`` (e.g. ``apps/v1``, ``ReplicaSet``)."""
        async with self._lock:
            cached = self._by_group_version.get(api_version)
            if cached is not None:
                fetched_at, kinds = cached
                if kind in kinds:
                    return kinds[kind]
                if self._clock.now() - fetched_at < self._refresh_after:
                    raise UnknownKindError(f'no resource of kind "{kind}" is served in "{api_version}"')
            kinds = await self._fetch(api_version)
        if kind not in kinds:
            raise UnknownKindError(f'no resource of kind "{kind}" is served in "{api_version}"')
        return kinds[kind]

    def invalidate(self) -> None:
        """Forget everything cached (after installing or removing CRDs, say)."""
        self._by_group_version.clear()

    async def _fetch(self, api_version: str) -> dict[str, Resource]:
        group, _, version = api_version.rpartition("/")
        try:
            document = (await self._client.request("GET", _group_version_path(api_version))).json()
        except NotFoundError as exc:
            self._by_group_version[api_version] = (self._clock.now(), {})
            raise UnknownKindError(f'the server does not serve "{api_version}"') from exc
        kinds: dict[str, Resource] = {}
        for item in document.get("resources") or ():
            name = item.get("name") or ""
            if "/" in name or not item.get("kind"):
                continue  # subresources (pods/status) are not what a kind resolves to
            kinds.setdefault(
                item["kind"],
                Resource(
                    group=item.get("group") or group,
                    version=item.get("version") or version,
                    plural=name,
                    kind=item["kind"],
                    namespaced=bool(item.get("namespaced")),
                ),
            )
        self._by_group_version[api_version] = (self._clock.now(), kinds)
        return kinds
