"""A control-plane component's secure port: health and metrics over HTTPS, as kube-controller-manager
serves them on 127.0.0.1:10257 and kube-scheduler on 127.0.0.1:10259. Each component has a port of
its own, with its own checks and registry, even when both run in one process.

Paths:

- ``/healthz``, ``/livez``, ``/readyz``: the named checks (:mod:`control.healthz`) of that endpoint, answered
  as k8s.io/apiserver's healthz handler does — ``ok``, or with ``?verbose`` one ``[+]name ok`` line
  per check and ``<endpoint> check passed``; any failing check makes a 500 listing every check
  (``[-]name failed: reason withheld``; the reason goes to the log only, the endpoint being public);
  ``?exclude=name`` skips a check (``[+]name excluded: ok``); ``/<endpoint>/<name>`` runs one check
  (``ok`` or ``internal server error: <reason>``);
- ``/metrics``: the component's Prometheus registry (its REST client requests; the controller
  manager's workqueues or the scheduler's ``scheduler_*``; process and Python collectors: see
  ``control.controllers.metrics``).

Who may call is delegated to the API server, as upstream's ``--authentication-kubeconfig`` and
``--authorization-kubeconfig`` do, through the component's own client:

- **authentication**: a client certificate the lab CA signed (the TLS layer verifies it; CN is the
  user, O the groups), else a bearer token the API server vouches for (``TokenReview``; answers are
  remembered for ``cache_ttl`` seconds, keyed by the token's hash). A request with neither is
  anonymous, which only the always-allowed paths accept: everything else answers 401. (Upstream's
  delegated authentication would let anonymous through to be refused by authorization; this is
  the narrower configuration of ``AnonymousAuthConfigurableEndpoints``, anonymous on the health
  paths only.) A bad token, or one the API server cannot be asked about, is a 401 too.
- **authorization**: ``/healthz``, ``/livez`` and ``/readyz`` with their sub-paths are always
  allowed (upstream's ``--authorization-always-allow-paths`` default); any other path is put to
  the API server as a ``SubjectAccessReview`` of the non-resource path and the request's verb
  (RBAC's ``system:monitoring`` ClusterRole grants ``get`` on ``/metrics``; so does
  ``cluster-admin``). A denial is upstream's 403 Status (``forbidden: User "jane" cannot get path
  "/metrics"``); a review that cannot be had is a 500. Answers are remembered for ``cache_ttl``.

The component's user must be allowed to create ``tokenreviews`` and ``subjectaccessreviews``:
upstream's ``system:kube-controller-manager`` and ``system:kube-scheduler`` ClusterRoles are.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from control.apiserver.authn import ANONYMOUS, UserInfo, user_from_peercert
from control.client.config import ClientConfig
from control.client.errors import RequestError
from control.client.rest import Resource, RESTClient
from control.healthz import HEALTH_ENDPOINTS, HealthChecks, check_response, health_response
from control.pki import serving_ssl_context

log = logging.getLogger("kubelab.controllers.serving")

DEFAULT_BIND_ADDRESS = "127.0.0.1"
ALWAYS_ALLOW_PATHS = tuple(f"/{endpoint}" for endpoint in HEALTH_ENDPOINTS)
CACHE_TTL = 10.0  # seconds; upstream's delegated token and authorization cache TTLs
_CACHE_LIMIT = 1024

TOKEN_REVIEWS = Resource("authentication.k8s.io", "v1", "tokenreviews", "TokenReview", namespaced=False)
SUBJECT_ACCESS_REVIEWS = Resource(
    "authorization.k8s.io", "v1", "subjectaccessreviews", "SubjectAccessReview", namespaced=False
)


class ServingError(Exception):
    """The secure port cannot be served (TLS files unreadable, address taken)."""


def _status(code: int, reason: str, message: str) -> web.Response:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if code == 403:
        body["details"] = {}
    return web.Response(status=code, body=orjson.dumps(body), content_type="application/json")


class _TTLCache:
    """Answers remembered for ``ttl`` seconds, at most ``_CACHE_LIMIT`` of them."""

    def __init__(self, *, ttl: float, clock: Callable[[], float]) -> None:
        self._ttl = ttl
        self._clock = clock
        self._entries: dict[Any, tuple[float, Any]] = {}

    def get(self, key: Any) -> Any | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= self._clock():
            del self._entries[key]
            return None
        return entry[1]

    def put(self, key: Any, value: Any) -> None:
        if self._ttl <= 0:
            return
        now = self._clock()
        if len(self._entries) >= _CACHE_LIMIT:
            self._entries = {k: entry for k, entry in self._entries.items() if entry[0] > now}
            if len(self._entries) >= _CACHE_LIMIT:
                self._entries.clear()
        self._entries[key] = (now + self._ttl, value)


class DelegatedAuth:
    """Authentication and authorization asked of the API server through ``client``."""

    def __init__(
        self,
        client: RESTClient,
        *,
        always_allow_paths: Iterable[str] = ALWAYS_ALLOW_PATHS,
        cache_ttl: float = CACHE_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._always_allow = tuple(always_allow_paths)
        self._tokens = _TTLCache(ttl=cache_ttl, clock=clock)
        self._decisions = _TTLCache(ttl=cache_ttl, clock=clock)

    def always_allowed(self, path: str) -> bool:
        return any(path == prefix or path.startswith(prefix + "/") for prefix in self._always_allow)

    async def authenticate(self, request: web.Request) -> UserInfo | None:
        """The caller, :data:`ANONYMOUS` without credentials, or None when its credentials fail."""
        transport = request.transport
        ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
        if ssl_object is not None:
            user = user_from_peercert(ssl_object.getpeercert())
            if user.authenticated:
                return user
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return ANONYMOUS
        return await self._review_token(token.strip())

    async def _review_token(self, token: str) -> UserInfo | None:
        key = hashlib.sha256(token.encode()).digest()
        cached = self._tokens.get(key)
        if cached is not None:
            return cached or None
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}
        try:
            review = await self._client.create(TOKEN_REVIEWS, body)
        except RequestError as exc:
            log.warning("cannot review a bearer token with the API server: %s", exc)
            return None
        status = review.get("status") or {}
        user: UserInfo | bool = False
        if status.get("authenticated"):
            info = status.get("user") or {}
            user = UserInfo(
                name=info.get("username", ""),
                groups=tuple(info.get("groups") or ()),
                uid=info.get("uid", ""),
                extra={key: tuple(values) for key, values in (info.get("extra") or {}).items()},
            )
        self._tokens.put(key, user)
        return user or None

    async def authorize(self, user: UserInfo, *, verb: str, path: str) -> tuple[bool, str]:
        """(allowed, reason) for ``verb`` on the non-resource ``path``; raises
        :class:`RequestError` when the API server cannot be asked."""
        key = (user.name, user.uid, user.groups, tuple(sorted(user.extra.items())), verb, path)
        cached = self._decisions.get(key)
        if cached is not None:
            return cached
        spec: dict[str, Any] = {
            "user": user.name,
            "groups": list(user.groups),
            "nonResourceAttributes": {"path": path, "verb": verb},
        }
        if user.uid:
            spec["uid"] = user.uid
        if user.extra:
            spec["extra"] = {name: list(values) for name, values in user.extra.items()}
        body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}
        review = await self._client.create(SUBJECT_ACCESS_REVIEWS, body)
        status = review.get("status") or {}
        decision = (bool(status.get("allowed")), str(status.get("reason") or ""))
        self._decisions.put(key, decision)
        return decision


@dataclass(frozen=True, kw_only=True)
class ServingConfig:
    """Where and with what certificate to serve; ``client_ca_file`` verifies client certificates."""

    bind_address: str = DEFAULT_BIND_ADDRESS
    port: int
    cert_file: Path
    key_file: Path
    client_ca_file: Path


def server_ssl_context(config: ServingConfig) -> ssl.SSLContext:
    """TLS 1.2+, the serving certificate, client certificates optional (lab CA only)."""
    try:
        return serving_ssl_context(
            cert_file=config.cert_file, key_file=config.key_file, client_ca_file=config.client_ca_file
        )
    except (OSError, ssl.SSLError) as exc:
        raise ServingError(f"cannot load the secure port's TLS files: {exc}") from exc


class SecureServer:
    """``/healthz``, ``/livez``, ``/readyz`` and ``/metrics`` behind delegated authn/authz."""

    def __init__(
        self,
        *,
        config: ServingConfig,
        auth: DelegatedAuth,
        checks: HealthChecks,
        registry: CollectorRegistry,
    ) -> None:
        self._config = config
        self._auth = auth
        self.checks = checks
        self._registry = registry
        self._runner: web.AppRunner | None = None
        self.port = config.port

    @property
    def url(self) -> str:
        return f"https://{self._config.bind_address}:{self.port}"

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard])
        for endpoint in HEALTH_ENDPOINTS:
            app.router.add_get(f"/{endpoint}", self._health(endpoint))
            app.router.add_get(f"/{endpoint}/{{check:.+}}", self._single_check(endpoint))
        app.router.add_get("/metrics", self._metrics)
        return app

    async def start(self) -> None:
        """Listen; raises :class:`ServingError` when the address cannot be had."""
        context = server_ssl_context(self._config)
        runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self._config.bind_address, self._config.port, ssl_context=context)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise ServingError(
                f"cannot serve on {self._config.bind_address}:{self._config.port}: {exc.strerror or exc}"
            ) from exc
        self._runner = runner
        self.port = runner.addresses[0][1]  # what port 0 became
        log.info("serving health and metrics", extra={"url": self.url})

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @web.middleware
    async def _guard(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        path = request.path
        user = await self._auth.authenticate(request)
        always_allowed = self._auth.always_allowed(path)
        if user is None or (not user.authenticated and not always_allowed):
            return _status(401, "Unauthorized", "Unauthorized")
        if always_allowed:
            return await handler(request)
        verb = request.method.lower()
        try:
            allowed, reason = await self._auth.authorize(user, verb=verb, path=path)
        except RequestError as exc:
            log.warning("cannot ask the API server whether %s may %s %s: %s", user.name, verb, path, exc)
            return _status(500, "InternalError", f"Internal error occurred: {exc}")
        if not allowed:
            message = f'forbidden: User "{user.name}" cannot {verb} path "{path}"'
            return _status(403, "Forbidden", f"{message}: {reason}" if reason else message)
        return await handler(request)

    def _health(self, endpoint: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            return health_response(self.checks, endpoint=endpoint, query=request.query)

        return handle

    def _single_check(self, endpoint: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            return check_response(self.checks, endpoint=endpoint, name=request.match_info["check"])

        return handle

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(self._registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )


async def serve_until_stopped(
    *,
    component: str,
    config: ServingConfig,
    client_config: ClientConfig,
    checks: HealthChecks,
    registry: CollectorRegistry,
    stop: asyncio.Event,
) -> None:
    """Serve ``component``'s port (``kube-scheduler``) until ``stop`` is set, reviewing callers
    through a client on ``client_config`` (the component's own).

    Raises :class:`ServingError` at once when the port cannot be served.
    """
    async with RESTClient(client_config, user_agent=f"{component}/kubelab (secure serving)") as client:
        server = SecureServer(config=config, auth=DelegatedAuth(client), checks=checks, registry=registry)
        await server.start()
        try:
            await stop.wait()
        finally:
            await server.stop()
