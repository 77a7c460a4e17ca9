"""v1 ComponentStatus (``kubectl get cs``): the control plane's health, probed on every read.

Deprecated upstream since 1.19 but still served, so this answers as kube-apiserver's
``componentstatus`` REST does: nothing is stored; a get probes one component, a list probes them
all at once, and each becomes a ComponentStatus with one ``Healthy`` condition:

- ``scheduler`` and ``controller-manager``: ``GET https://127.0.0.1:<port>/healthz`` on the
  components' secure ports (10259 and 10257, upstream's fixed ports and the lab's defaults:
  the API server is not told other ports, as upstream is not). A 2xx or 3xx answer is
  ``True`` with the body (at most 10 KiB) as the message; another status is ``False`` with
  ``HTTP probe failed with statuscode: N``; no answer is ``Unknown`` with the error in Go's words
  (``Get "https://127.0.0.1:10259/healthz": dial tcp 127.0.0.1:10259: connect: connection
  refused``). The lab's components serve certificates its CA signed, so the probe verifies
  them against the lab CA (upstream skips verification).
- ``etcd-0``: the API server's own store, whichever it is (SQLite or etcd): ``True`` with
  ``ok`` when it answers for its current revision, else ``False`` with the error.

Every answer carries upstream's deprecation ``Warning`` header. Lists honour label and field
selectors (matching nothing but names), as upstream's; an unknown name is upstream's plain 500
``Component not found: <name>``. Tables use the printer in ``control.resources.printers``
(NAME, STATUS, MESSAGE, ERROR). Probes take at most 20 seconds (upstream's probe timeout).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import aiohttp
from aiohttp import web

from control.apiserver import errors
from control.apiserver.call import Call, json_response
from control.apiserver.negotiation import Shape
from control.apiserver.options import CONTROLLER_MANAGER_SECURE_PORT, SCHEDULER_SECURE_PORT
from control.apiserver.predicate import compile_predicate
from control.apiserver.proxy import dial_error
from control.apiserver.requestinfo import RequestInfo
from control.apiserver.tables import check_include_object, partial_metadata, partial_metadata_list, table
from control.resources.registry import ResourceType
from control.store import Store, StoreError

PROBE_TIMEOUT_SECONDS = 20.0
DEPRECATION_WARNING = "v1 ComponentStatus is deprecated in v1.19+"
_MAX_PROBE_BODY = 10 * 1024  # what upstream's HTTP prober reads of an answer


@dataclass(frozen=True, slots=True)
class Health:
    """One probe's outcome: the ``Healthy`` condition's status ("True", "False", "Unknown"),
    message and error."""

    status: str
    message: str = ""
    error: str = ""


class Probe(Protocol):
    async def check(self) -> Health:
        """Probe once; never raises for the component's failures (they are the outcome)."""
        ...


class HTTPProbe:
    """``GET <scheme>://<host>:<port><path>`` as upstream's HTTP prober judges it."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        path: str = "/healthz",
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = PROBE_TIMEOUT_SECONDS,
    ) -> None:
        self.host = host
        self.port = port
        self.url = f"{'https' if ssl_context is not None else 'http'}://{host}:{port}{path}"
        self._ssl = ssl_context
        self._timeout = timeout

    async def check(self) -> Health:
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=self._ssl if self._ssl is not None else False),
            timeout=aiohttp.ClientTimeout(total=self._timeout),
        )
        try:
            async with session, session.get(self.url, headers={"User-Agent": "kube-probe/1.33"}) as answer:
                body = (await answer.content.read(_MAX_PROBE_BODY)).decode(errors="replace")
                status = answer.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            reason = dial_error(exc, host=self.host, port=self.port)
            return Health(status="Unknown", error=f'Get "{self.url}": {reason}')
        if 200 <= status < 400:
            return Health(status="True", message=body)
        return Health(status="False", message=f"HTTP probe failed with statuscode: {status}")


class StoreProbe:
    """The API server's store: healthy when it tells its current revision in time."""

    def __init__(self, store: Store, *, timeout: float = PROBE_TIMEOUT_SECONDS) -> None:
        self._store = store
        self._timeout = timeout

    async def check(self) -> Health:
        try:
            await asyncio.wait_for(self._store.current_revision(), self._timeout)
        except (StoreError, TimeoutError) as exc:
            return Health(status="False", error=str(exc) or type(exc).__name__)
        return Health(status="True", message="ok")


class ComponentStatuses:
    """The componentstatuses handlers over a fixed set of named probes."""

    def __init__(self, probes: Mapping[str, Probe]) -> None:
        self._probes = dict(probes)

    @classmethod
    def for_lab(cls, *, store: Store, ca_file: Path) -> ComponentStatuses:
        """kube-apiserver's three: the scheduler, the controller manager (both on 127.0.0.1, their
        certificates checked against ``ca_file``, else the system's roots) and the store."""
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file.exists() else None)
        return cls(
            {
                "scheduler": HTTPProbe(host="127.0.0.1", port=SCHEDULER_SECURE_PORT, ssl_context=context),
                "controller-manager": HTTPProbe(
                    host="127.0.0.1", port=CONTROLLER_MANAGER_SECURE_PORT, ssl_context=context
                ),
                "etcd-0": StoreProbe(store),
            }
        )

    def route(self, rt: ResourceType, info: RequestInfo) -> Callable[[Call], Awaitable[web.StreamResponse]]:
        """The handler for ``info``: get and list only, no subresources (404 and 405 as upstream)."""
        if info.subresource:
            raise errors.path_not_found(info.path)
        if info.verb == "get":
            return self.get
        if info.verb == "list":
            return self.list_
        raise errors.method_not_supported(rt, info.verb)

    async def get(self, call: Call) -> web.Response:
        name = call.info.name
        probe = self._probes.get(name)
        if probe is None:
            raise errors.StatusError(code=500, reason="", message=f"Component not found: {name}")
        status = component_status(name, await probe.check())
        if call.wanted.shape is Shape.OBJECT:
            return json_response(status, warnings=[DEPRECATION_WARNING])
        if call.wanted.shape is Shape.PARTIAL_METADATA:
            return json_response(
                partial_metadata(status, version=call.wanted.table_version), warnings=[DEPRECATION_WARNING]
            )
        return self._table(call, [status])

    async def list_(self, call: Call) -> web.Response:
        predicate = compile_predicate(
            call.rt, label_selector=call.param("labelSelector"), field_selector=call.param("fieldSelector")
        )
        names = list(self._probes)
        outcomes = await asyncio.gather(*(self._probes[name].check() for name in names))
        items = [component_status(name, health) for name, health in zip(names, outcomes, strict=True)]
        items = [item for item in items if predicate.matches(item)]
        if call.wanted.shape is Shape.OBJECT:
            body = {"kind": "ComponentStatusList", "apiVersion": "v1", "metadata": {}, "items": items}
            return json_response(body, warnings=[DEPRECATION_WARNING])
        if call.wanted.shape is Shape.PARTIAL_METADATA:
            return json_response(
                partial_metadata_list(items, list_meta={}, version=call.wanted.table_version),
                warnings=[DEPRECATION_WARNING],
            )
        return self._table(call, items)

    @staticmethod
    def _table(call: Call, items: list[dict[str, Any]]) -> web.Response:
        include = check_include_object(call.param("includeObject"))
        body = table(
            call.rt,
            items,
            list_meta={},
            include_object=include,
            now=call.now,
            version=call.wanted.table_version,
        )
        return json_response(body, warnings=[DEPRECATION_WARNING])


def component_status(name: str, health: Health) -> dict[str, Any]:
    """The ComponentStatus object (empty message and error are left out, as Go's omitempty)."""
    condition = {"type": "Healthy", "status": health.status}
    if health.message:
        condition["message"] = health.message
    if health.error:
        condition["error"] = health.error
    return {
        "kind": "ComponentStatus",
        "apiVersion": "v1",
        "metadata": {"name": name},
        "conditions": [condition],
    }
