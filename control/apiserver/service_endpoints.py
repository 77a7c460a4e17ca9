"""A Service port -> one ready endpoint of it: how the API server reaches in-cluster servers.

The lab's API server runs outside the node agents' service proxies, so it routes as kube-apiserver
does with endpoint routing (``--enable-aggregator-routing``, and always for webhooks through
upstream's ``EndpointServiceResolver``): the Service's port picks the port name, the Endpoints
object gives the ready addresses with that port, and one of them is chosen at random. Used by
CRD conversion webhooks and by API aggregation; each caller words the failure its own way
around :class:`ServiceUnreachableError`'s message, which is upstream's. :func:`trusting_ca_bundle`
is how both trust such a server: the ``caBundle`` of their object, else the system's roots.
"""

from __future__ import annotations

import base64
import binascii
import random
import ssl

from control.apiserver import errors
from control.apiserver.resource_store import ResourceStore


class ServiceUnreachableError(Exception):
    """No endpoint can be chosen; the message says why, in upstream's words."""


def trusting_ca_bundle(ca_bundle: str) -> ssl.SSLContext:
    """A client context that verifies the server against ``ca_bundle`` (base64 of PEM, as
    objects carry it; empty: the system's roots). ValueError("invalid caBundle: ...") if bad."""
    try:
        pem = base64.b64decode(ca_bundle, validate=True).decode("ascii")
        return ssl.create_default_context(cadata=pem or None)
    except (binascii.Error, ValueError, ssl.SSLError) as exc:
        raise ValueError(f"invalid caBundle: {exc}") from exc


class ServiceEndpoints:
    """Resolves ``(namespace, name, port)`` of a Service to ``(address, port)`` of an endpoint."""

    def __init__(self, objects: ResourceStore) -> None:
        self._objects = objects
        self._services = objects.registry.lookup(group="", version="v1", plural="services")
        self._endpoints = objects.registry.lookup(group="", version="v1", plural="endpoints")

    async def __call__(self, *, namespace: str, name: str, port: int) -> tuple[str, int]:
        if self._services is None or self._endpoints is None:
            raise ServiceUnreachableError("the registry serves no services or endpoints")
        try:
            service = await self._objects.get(self._services, namespace=namespace, name=name)
        except errors.StatusError as exc:
            raise ServiceUnreachableError(f'service "{name}" not found') from exc
        ports = [p for p in (service.get("spec") or {}).get("ports") or [] if p.get("port") == port]
        if not ports:
            raise ServiceUnreachableError(f'no service port {port} found for service "{name}"')
        port_name = ports[0].get("name") or ""
        try:
            endpoints = await self._objects.get(self._endpoints, namespace=namespace, name=name)
        except errors.StatusError as exc:
            raise ServiceUnreachableError(f'endpoints "{name}" not found') from exc
        for subset in endpoints.get("subsets") or []:
            matching = [p for p in subset.get("ports") or [] if (p.get("name") or "") == port_name]
            addresses = [a.get("ip") for a in subset.get("addresses") or [] if a.get("ip")]
            if matching and addresses:
                return random.choice(addresses), int(matching[0]["port"])
        raise ServiceUnreachableError(f'no endpoints available for service "{name}"')
