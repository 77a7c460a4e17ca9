"""A test extension API server: what an aggregated API server (metrics-server) does on the wire.

It serves one group/version over HTTPS with a certificate for ``<service>.<namespace>.svc``
signed by a CA of its own (the APIService's ``caBundle``), and trusts a caller only as
metrics-server does with requestheader authentication: the client certificate must chain to the
front-proxy CA and name an allowed CN; the user is then read from ``X-Remote-User`` /
``X-Remote-Group``. Requests without such a certificate get 401. It answers discovery
(``/apis/<g>/<v>``), lists, gets and watches of the resources it is given, and records every
request it served (method, path, the headers that matter) for the tests to inspect.
``healthy = False`` makes it answer 500 everywhere (a broken extension, for fault tests).
It stands in for metrics-server until the metrics add-on exists.
"""

from __future__ import annotations

import base64
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from control.pki import ensure_serving_certificate, load_or_create_ca


@dataclass
class Seen:
    method: str
    path: str
    user: str
    groups: list[str]
    extra: dict[str, list[str]]
    authorization: str | None
    impersonation: list[str]
    client_cn: str


@dataclass
class ExtensionAPIServer:
    group: str
    version: str
    front_proxy_ca: Path
    directory: Path
    # plural -> (kind, namespaced, items)
    resources: dict[str, tuple[str, bool, list[dict[str, Any]]]]
    service: str = "ext"
    namespace: str = "kube-system"
    allowed_names: tuple[str, ...] = ("front-proxy-client",)
    healthy: bool = True
    seen: list[Seen] = field(default_factory=list)
    port: int = 0
    ca_bundle: str = ""
    _runner: web.AppRunner | None = None

    async def start(self) -> None:
        ca, _ = load_or_create_ca(
            cert_file=self.directory / "ext-ca.crt", key_file=self.directory / "ext-ca.key", name="ext-ca"
        )
        cert, key = self.directory / "ext.crt", self.directory / "ext.key"
        ensure_serving_certificate(
            ca=ca,
            cert_file=cert,
            key_file=key,
            common_name=self.service,
            dns_names=[f"{self.service}.{self.namespace}.svc"],
            ip_addresses=[],
        )
        self.ca_bundle = base64.b64encode((self.directory / "ext-ca.crt").read_bytes()).decode()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(self.front_proxy_ca))
        context.load_cert_chain(str(cert), str(key))
        context.verify_mode = ssl.CERT_OPTIONAL
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _caller(self, request: web.Request) -> str:
        ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
        peer = ssl_object.getpeercert() if ssl_object is not None else None
        for rdn in (peer or {}).get("subject", ()):
            for key, value in rdn:
                if key == "commonName":
                    return str(value)
        return ""

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        cn = self._caller(request)
        extra: dict[str, list[str]] = {}
        for name, value in request.headers.items():
            if name.lower().startswith("x-remote-extra-"):
                extra.setdefault(name[len("x-remote-extra-") :].lower(), []).append(value)
        self.seen.append(
            Seen(
                method=request.method,
                path=request.path_qs,
                user=request.headers.get("X-Remote-User", ""),
                groups=request.headers.getall("X-Remote-Group", []),
                extra=extra,
                authorization=request.headers.get("Authorization"),
                impersonation=[n for n in request.headers if n.lower().startswith("impersonate-")],
                client_cn=cn,
            )
        )
        if cn not in self.allowed_names:
            return _status(401, "Unauthorized", "Unauthorized")
        if not self.healthy:
            return _status(500, "InternalError", "the extension is broken")
        parts = request.path.strip("/").split("/")
        if parts[:3] != ["apis", self.group, self.version]:
            return _status(404, "NotFound", "the server could not find the requested resource")
        rest = parts[3:]
        if not rest:
            return web.json_response(self._resource_list())
        namespace = ""
        if rest[0] == "namespaces" and len(rest) > 2:
            namespace, rest = rest[1], rest[2:]
        plural = rest[0]
        if plural not in self.resources:
            return _status(404, "NotFound", "the server could not find the requested resource")
        kind, _, items = self.resources[plural]
        chosen = [i for i in items if not namespace or i["metadata"].get("namespace") == namespace]
        if len(rest) > 1:
            found = [i for i in chosen if i["metadata"]["name"] == rest[1]]
            if not found:
                return _status(404, "NotFound", f'{plural}.{self.group} "{rest[1]}" not found')
            return web.json_response(found[0])
        if request.query.get("watch") in ("1", "true"):
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            await response.prepare(request)
            for item in chosen:
                await response.write(orjson.dumps({"type": "ADDED", "object": item}) + b"\n")
            return response  # ends the watch; a client re-watches
        return web.json_response(
            {
                "kind": f"{kind}List",
                "apiVersion": f"{self.group}/{self.version}",
                "metadata": {},
                "items": chosen,
            }
        )

    def _resource_list(self) -> dict[str, Any]:
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{self.group}/{self.version}",
            "resources": [
                {
                    "name": plural,
                    "singularName": "",
                    "namespaced": namespaced,
                    "kind": kind,
                    "verbs": ["get", "list"],
                }
                for plural, (kind, namespaced, _) in self.resources.items()
            ],
        }


def _status(code: int, reason: str, message: str) -> web.Response:
    return web.json_response(
        {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": code,
        },
        status=code,
    )
