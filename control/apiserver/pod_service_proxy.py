"""pods/proxy and services/proxy: the API server as a reverse proxy to a pod's own server.

``kubectl proxy`` users open ``/api/v1/namespaces/<ns>/pods/<id>/proxy/<path>`` and
``.../services/<id>/proxy/<path>``; the id is ``name``, ``name:port`` or ``scheme:name:port``
(scheme ``http`` or ``https``; anything else, or more colons, is a 400 ``invalid pod request``
/ ``invalid service request``), as upstream's ``SplitSchemeNamePort``. Where the request goes
follows upstream's ``ResourceLocation`` functions:

- **a pod**: its first pod IP, at the port given — a number, or (a lab addition: upstream dials
  the name as Go would, through the system's service names) the name of one of its container
  ports, else a service name the system knows (``http`` is 80); with no port, the first
  container port of the first container that declares one, else the scheme's default port.
  A pod with no IP is 400 ``address not allowed``; so is an unspecified, link-local, multicast
  or broadcast address (upstream also refuses loopback, but the lab's pod network *is*
  127.244.0.0/16).
- **a Service**: a port number picks the Service port by number (503 ``no service port N
  found for service "x"`` if none) and goes on by its name; a name is the Service port's name.
  The Service's EndpointSlices (label ``kubernetes.io/service-name``) give the candidates: every
  ready endpoint's address at the slice port of that name; one is chosen at random, as
  upstream's ResourceLocation picks a random ready address. No endpoints at all: 503 ``no
  endpoints available for service "x"``; none ready on that port: the same naming the whole
  id, as upstream. (Upstream reads the Endpoints object and does not read the Service unless
  the port is a number; here a missing Service is a 404 for the Service.)

Then the request is relayed as upstream's UpgradeAwareHandler with its rewriting transport does:
the method (GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS), the path after ``/proxy`` (cleaned of
``.`` and ``..``, a trailing slash kept) and the raw query go to the target; the body streams both
ways (``control.apiserver.proxy.relay``); the client's ``Host`` goes along, with
``X-Forwarded-For`` and ``X-Forwarded-Uri``; the caller's credentials, hop-by-hop headers and the
backend's CORS headers stay behind. A ``Location`` the backend answers with that points at the
backend itself (or the client's host) is rewritten under the proxy path, so a redirect from
``/login`` lands on ``.../proxy/login``. An empty path on GET or HEAD is a 301 to the path with
a trailing slash. An https target's certificate is not verified (upstream's proxy transport
does not either: pods are dialled by IP). A target that cannot be reached is a 503 ``error
trying to reach service: dial tcp ...``.

An upgrade request (``Connection: Upgrade``: WebSocket) goes through as upstream's tryUpgrade:
its head is sent to the target as is (minus the caller's credentials), a 101 turns the client's
connection into a byte copy both ways, an error answer (400 and up) is relayed, any other is a
500 ``invalid upgrade response``; a target that cannot be dialled is upstream's 500 ``error
dialing backend: ...``. Unlike upstream, the query goes along
(upstream drops it on upgrades).

Not done here: rewriting links inside ``text/html`` answers (upstream rewrites absolute links in
HTML; here only ``Location`` is rewritten).
"""

from __future__ import annotations

import ipaddress
import json
import random
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from control.apiserver import errors
from control.apiserver.call import Call
from control.apiserver.conversion import decoded
from control.apiserver.proxy import dial_error, forwarded_headers, is_upgrade, relay, tunnel
from control.apiserver.resource_store import ResourceStore
from control.resources.registry import ResourceType

CONNECT_TIMEOUT_SECONDS = 30.0  # upstream's proxy transport dialer
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
_SCHEMES = ("", "http", "https")
_CORS_HEADERS = (
    "Access-Control-Allow-Credentials",
    "Access-Control-Allow-Headers",
    "Access-Control-Allow-Methods",
    "Access-Control-Allow-Origin",
)
_PATH_SAFE = "!$&'()*+,;=:@~"  # what Go leaves unescaped in a path segment
# Not relayed from a 101 answer (its Upgrade is): the switch's own framing.
_HOP_BY_HOP_RESPONSE = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "content-length"}
)


@dataclass(frozen=True, slots=True)
class Target:
    """Where a proxied request goes: ``scheme://host[:port]``."""

    scheme: str  # http or https
    host: str
    port: int | None  # None: the scheme's default port

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"


def split_scheme_name_port(id_: str) -> tuple[str, str, str] | None:
    """``name``, ``name:port`` or ``scheme:name:port`` as (scheme, name, port); None when
    invalid (more colons, an empty name, a scheme other than http or https)."""
    parts = id_.split(":")
    if len(parts) == 1:
        scheme, name, port = "", parts[0], ""
    elif len(parts) == 2:
        scheme, name, port = "", parts[0], parts[1]
    elif len(parts) == 3:
        scheme, name, port = parts
    else:
        return None
    if not name or scheme not in _SCHEMES:
        return None
    return scheme, name, port


def rewrite_location(location: str, *, backend_host: str, request_host: str, prefix: str) -> str:
    """Upstream's ``Transport.rewriteURL`` for a redirect: an absolute path on the backend (or on
    the host the client asked) moves under ``prefix`` (the proxy path, already escaped); other
    hosts and relative references are left alone. The server-side request has no scheme or host
    of its own, so a rewritten URL becomes a bare path unless it named the client's host."""
    parts = urlsplit(location)
    if parts.netloc and parts.netloc not in (backend_host, request_host):
        return location
    if not parts.path.startswith("/"):
        return location
    scheme, netloc = (parts.scheme, parts.netloc) if parts.netloc == request_host else ("", "")
    path = parts.path
    if not path.startswith(prefix):
        path = _clean(prefix + path, trailing_slash=path.endswith("/"))
    return urlunsplit((scheme, netloc, path, parts.query, parts.fragment))


class PodServiceProxy:
    """The handlers for pods/proxy and services/proxy."""

    def __init__(self, *, objects: ResourceStore) -> None:
        self._objects = objects
        self._pods = self._lookup(group="", plural="pods")
        self._services = self._lookup(group="", plural="services")
        self._slices = self._lookup(group="discovery.k8s.io", plural="endpointslices")

    def _lookup(self, *, group: str, plural: str) -> ResourceType:
        rt = self._objects.registry.lookup(group=group, version="v1", plural=plural)
        if rt is None:
            raise ValueError(f"the registry does not serve {plural}; pods and services proxies need it")
        return rt

    async def pod(self, call: Call) -> web.StreamResponse:
        target = await self.pod_target(namespace=call.info.namespace, id_=call.info.name)
        return await _proxy(call, target)

    async def service(self, call: Call) -> web.StreamResponse:
        target = await self.service_target(namespace=call.info.namespace, id_=call.info.name)
        return await _proxy(call, target)

    # ----------------------------------------------------------------- pods
    async def pod_target(self, *, namespace: str, id_: str) -> Target:
        parsed = split_scheme_name_port(id_)
        if parsed is None:
            raise errors.bad_request(f"invalid pod request {_go_quote(id_)}")
        scheme, name, port = parsed
        pod = await self._objects.get(self._pods, namespace=namespace, name=name)
        containers = (pod.get("spec") or {}).get("containers") or []
        if not port:
            declared = [c["ports"][0].get("containerPort") for c in containers if c.get("ports")]
            port = str(declared[0]) if declared else ""
        address = _pod_ip(pod)
        if not _allowed_address(address):
            raise errors.bad_request("address not allowed")
        return Target(
            scheme=scheme or "http", host=address, port=_pod_port(containers, port) if port else None
        )

    # ----------------------------------------------------------------- services
    async def service_target(self, *, namespace: str, id_: str) -> Target:
        parsed = split_scheme_name_port(id_)
        if parsed is None:
            raise errors.bad_request(f"invalid service request {_go_quote(id_)}")
        scheme, name, port_name = parsed
        service = await self._objects.get(self._services, namespace=namespace, name=name)
        number = _go_int(port_name)
        if number is not None:
            by_number = [p for p in (service.get("spec") or {}).get("ports") or [] if p.get("port") == number]
            if not by_number:
                raise errors.service_unavailable(
                    f"no service port {number} found for service {_go_quote(name)}"
                )
            port_name = by_number[0].get("name") or ""
        slices = await self._service_slices(namespace=namespace, service=name)
        if not any(s.get("endpoints") for s in slices):
            raise errors.service_unavailable(f"no endpoints available for service {_go_quote(name)}")
        candidates = [
            (address, target_port)
            for endpoint_slice in slices
            for target_port in _slice_ports(endpoint_slice, port_name)
            for address in _ready_addresses(endpoint_slice)
        ]
        if not candidates:
            raise errors.service_unavailable(f"no endpoints available for service {_go_quote(id_)}")
        host, target_port = random.choice(candidates)
        return Target(scheme=scheme or "http", host=host, port=target_port)

    async def _service_slices(self, *, namespace: str, service: str) -> list[dict[str, Any]]:
        listing = await self._objects.store.list(self._objects.prefix(self._slices, namespace=namespace))
        found = []
        for kv in listing.items:
            endpoint_slice = decoded(self._slices, kv)
            labels = (endpoint_slice.get("metadata") or {}).get("labels") or {}
            if labels.get(SERVICE_NAME_LABEL) == service:
                found.append(endpoint_slice)
        return found


async def _proxy(call: Call, target: Target) -> web.StreamResponse:
    """Relay the call to ``target`` as upstream's UpgradeAwareHandler does (see the module doc)."""
    request = call.request
    raw_path = request.raw_path.split("?", 1)[0]
    prefix, rest = _split_proxy_path(raw_path)
    path = _clean(rest, trailing_slash=raw_path.endswith("/") and rest != "")
    raw_query = request.rel_url.raw_query_string
    if is_upgrade(request):
        return await _upgrade(
            request, target, target_path=(path or "/") + (f"?{raw_query}" if raw_query else "")
        )
    if not path and request.method in ("GET", "HEAD"):
        # Upstream's answer to an empty proxy path (issue 4958): the same path with a slash.
        location = raw_path + "/" + (f"?{raw_query}" if raw_query else "")
        return web.Response(status=301, headers={"Location": location})
    url = f"{target.scheme}://{target.netloc}{path}" + (f"?{raw_query}" if raw_query else "")
    headers = forwarded_headers(request, keep_host=True)
    headers["X-Forwarded-Uri"] = prefix + path

    def fix_headers(answer: CIMultiDict[str]) -> None:
        for name in _CORS_HEADERS:
            answer.popall(name, None)
        if "Location" in answer:
            answer["Location"] = rewrite_location(
                answer["Location"], backend_host=target.netloc, request_host=request.host, prefix=prefix
            )

    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=False),  # pods are dialled by IP: nothing to verify against
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT_SECONDS),
        auto_decompress=False,
    )
    async with session:
        try:
            return await relay(request, session=session, url=url, headers=headers, fix_headers=fix_headers)
        except aiohttp.ClientError as exc:
            reason = dial_error(exc, host=target.host, port=target.port or _default_port(target.scheme))
            raise errors.service_unavailable(f"error trying to reach service: {reason}") from exc


async def _upgrade(request: web.BaseRequest, target: Target, *, target_path: str) -> web.StreamResponse:
    """An upgrade request (WebSocket) as upstream's tryUpgrade: the request's headers (its Host
    too, minus the caller's credentials) go to the target, and its 101 switches the client's
    connection to a byte copy both ways (other answers: :func:`control.apiserver.proxy.tunnel`)."""
    headers = forwarded_headers(request, keep_host=True)
    headers["Connection"] = "Upgrade"
    headers["Upgrade"] = request.headers.get("Upgrade", "")
    head = [
        f"{request.method} {target_path} HTTP/1.1",
        *(f"{key}: {value}" for key, value in headers.items()),
    ]
    return await tunnel(
        request,
        host=target.host,
        port=target.port or _default_port(target.scheme),
        ssl_context=_unverified_tls() if target.scheme == "https" else None,
        head=head,
        relayed=lambda name: name == "upgrade" or name not in _HOP_BY_HOP_RESPONSE,
    )


def _unverified_tls() -> ssl.SSLContext:
    """TLS without verification: pods are dialled by IP (upstream's proxy transport does the same)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _split_proxy_path(raw_path: str) -> tuple[str, str]:
    """``/api/v1/namespaces/<ns>/<resource>/<id>/proxy`` and what follows it (still escaped)."""
    segments = raw_path.split("/")
    # "", "api", "v1", "namespaces", ns, resource, id, "proxy", then the proxied path
    rest = "/" + "/".join(segments[8:]) if len(segments) > 8 else ""
    return "/".join(segments[:8]), rest


def _clean(path: str, *, trailing_slash: bool) -> str:
    """Go's ``path.Join`` of an escaped path: empty, ``.`` and ``..`` segments resolved (never
    above the root), each segment escaped as Go escapes a path; "" stays ""."""
    kept: list[str] = []
    for segment in path.split("/"):
        text = unquote(segment)
        if text in ("", "."):
            continue
        if text == "..":
            if kept:
                kept.pop()
            continue
        kept.append(quote(text, safe=_PATH_SAFE))
    if not path:
        return ""
    cleaned = "/" + "/".join(kept)
    return cleaned + "/" if trailing_slash and not cleaned.endswith("/") else cleaned


def _pod_ip(pod: Mapping[str, Any]) -> str:
    status = pod.get("status") or {}
    ips = [entry.get("ip", "") for entry in status.get("podIPs") or [] if entry.get("ip")]
    return ips[0] if ips else status.get("podIP", "")


def _allowed_address(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if ip.is_unspecified or ip.is_multicast or ip.is_link_local:
        return False
    return not (isinstance(ip, ipaddress.IPv4Address) and ip == ipaddress.IPv4Address("255.255.255.255"))


def _pod_port(containers: list[dict[str, Any]], port: str) -> int:
    """A port number, a container port's name, or a service name the system knows (as Go's dialer
    resolves one); anything else is the dial error upstream would answer with."""
    if port.isdigit():
        number = int(port)
        if 0 < number < 65536:
            return number
        raise errors.service_unavailable(
            f"error trying to reach service: dial tcp: address {port}: invalid port"
        )
    for container in containers:
        for declared in container.get("ports") or []:
            if declared.get("name") == port and declared.get("containerPort"):
                return int(declared["containerPort"])
    try:
        return socket.getservbyname(port, "tcp")
    except OSError as exc:
        raise errors.service_unavailable(
            f"error trying to reach service: dial tcp: lookup tcp/{port}: unknown port"
        ) from exc


def _slice_ports(endpoint_slice: Mapping[str, Any], name: str) -> list[int]:
    return [
        int(port["port"])
        for port in endpoint_slice.get("ports") or []
        if (port.get("name") or "") == name and port.get("port")
    ]


def _ready_addresses(endpoint_slice: Mapping[str, Any]) -> list[str]:
    """The first address of every ready endpoint (an unset ``ready`` means ready)."""
    if endpoint_slice.get("addressType") not in ("IPv4", "IPv6"):
        return []
    found = []
    for endpoint in endpoint_slice.get("endpoints") or []:
        ready = (endpoint.get("conditions") or {}).get("ready")
        addresses = endpoint.get("addresses") or []
        if ready is not False and addresses and _allowed_address(addresses[0]):
            found.append(addresses[0])
    return found


def _go_int(text: str) -> int | None:
    """``strconv.ParseInt(text, 10, 64)``: an optional sign and decimal digits, else None."""
    digits = text[1:] if text[:1] in ("+", "-") else text
    return int(text) if digits.isdigit() and digits.isascii() else None


def _go_quote(text: str) -> str:
    """Go's ``%q`` for the plain strings names and ids are."""
    return json.dumps(text, ensure_ascii=False)


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80
