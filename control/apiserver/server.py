"""The API server process: HTTPS, authentication, routing to the verb handlers, health,
discovery, OpenAPI and metrics; start-up and orderly shutdown.

aiohttp's low-level server hands every request to :class:`APIServer.handle`, which
authenticates, parses the path into a RequestInfo, finds the kind in the registry and
calls the verb's handler. Every failure is a StatusError rendered once, here; anything
else is a bug, logged and answered as a 500 Status (never a bare traceback).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import platform
import ssl
import time
import weakref
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from control.apiserver import errors, eviction, proxy, reads, watch, writes
from control.apiserver.admission import AdmissionChain, AdmissionPlugin
from control.apiserver.admission_metrics import AdmissionMetrics
from control.apiserver.admission_policy_authz import AdmissionPolicyParamAuthorization
from control.apiserver.aggregator import Aggregator
from control.apiserver.allocators import ClusterIPAllocator, NodePortAllocator
from control.apiserver.apiservice_availability import RemoteAvailability
from control.apiserver.apiservice_registration import LocalAPIServices
from control.apiserver.authn import UserInfo, allows_anonymous, user_from_peercert
from control.apiserver.authorization import (
    AUTHORIZATION_MODES,
    AlwaysAllow,
    AlwaysDeny,
    Attributes,
    Authorizer,
    AuthorizerChain,
)
from control.apiserver.bootstrap import ensure_extension_apiserver_authentication, ensure_system_objects
from control.apiserver.call import Call, bytes_response, json_response, status_response
from control.apiserver.certificates_admission import certificate_plugins
from control.apiserver.component_statuses import ComponentStatuses
from control.apiserver.conversion import move_to_storage_keys
from control.apiserver.custom_resources import CustomResourceServing
from control.apiserver.discovery import Discovery
from control.apiserver.impersonation import impersonate
from control.apiserver.ingress_admission import DefaultIngressClass
from control.apiserver.limitrange_admission import LimitRanger
from control.apiserver.metrics import APIServerMetrics, StorageObjectsCollector
from control.apiserver.negotiation import wanted_shape
from control.apiserver.node_authorizer import NodeAuthorizer
from control.apiserver.node_restriction import NodeRestriction
from control.apiserver.options import APIServerOptions
from control.apiserver.pod_security_admission import PodSecurityAdmission
from control.apiserver.pod_service_proxy import PodServiceProxy
from control.apiserver.priority_admission import PriorityAdmission
from control.apiserver.quota_admission import ResourceQuotaAdmission
from control.apiserver.rbac import RBACAuthorizer, RBACEscalationCheck
from control.apiserver.rbac_policy import ensure_bootstrap_policy
from control.apiserver.requestinfo import RequestInfo, parse_request
from control.apiserver.resource_store import ResourceStore
from control.apiserver.reviews import Reviews
from control.apiserver.runtimeclass_admission import RuntimeClassAdmission
from control.apiserver.serviceaccount_admission import ServiceAccountAdmission
from control.apiserver.serviceaccount_tokens import ServiceAccountTokens
from control.apiserver.storage_admission import (
    DefaultStorageClass,
    PersistentVolumeClaimResize,
    StorageObjectInUseProtection,
)
from control.apiserver.tracing import configure_tracer
from control.apiserver.validating_admission_policy import ValidatingAdmissionPolicies
from control.apiserver.warning import record_into
from control.apiserver.watch_cache import WatchCache
from control.apiserver.webhook_admission import WebhookAdmission
from control.healthz import HEALTH_ENDPOINTS, HealthChecks, check_response, health_response
from control.pki import serving_ssl_context
from control.resources import openapi, openapi_v2
from control.resources.builtin import builtin_registry
from control.resources.registry import Registry, ResourceType
from control.store import Store, StoreError, StoreUnavailableError, open_store

log = logging.getLogger("kubelab.apiserver")

KUBERNETES_VERSION = (1, 33, 0)
# Subresources with a handler here; discovery lists only these.
SERVED_SUBRESOURCES = frozenset(
    {
        "status",
        "scale",
        "binding",
        "finalize",
        "log",
        "exec",
        "attach",
        "portforward",
        "proxy",
        "token",
        "ephemeralcontainers",
        "approval",
        "eviction",
    }
)
# Paths served by the ServiceAccount issuer discovery (when tokens are configured).
OPENID_CONFIGURATION_PATH = "/.well-known/openid-configuration"
OPENID_JWKS_PATH = "/openid/v1/jwks"
_LONG_RUNNING_SUBRESOURCES = frozenset({"exec", "attach", "portforward", "proxy"})


def _is_long_running(request: web.Request, info: RequestInfo) -> bool:
    """Upstream's long-running requests: watches, connect subresources, followed logs."""
    if info.verb == "watch" or info.subresource in _LONG_RUNNING_SUBRESOURCES:
        return True
    return info.subresource == "log" and request.query.get("follow", "").lower() in ("true", "1")


BOOTSTRAP_CHECK = "poststarthook/bootstrap-controller"

Handler = Callable[[Call], Awaitable[web.StreamResponse]]


def version_info() -> dict[str, str]:
    major, minor, patch = KUBERNETES_VERSION
    return {
        "major": str(major),
        "minor": str(minor),
        "gitVersion": f"v{major}.{minor}.{patch}+kubelab",
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "2026-11-25T00:00:00Z",
        "goVersion": f"python{platform.python_version()}",
        "compiler": platform.python_implementation().lower(),
        "platform": f"{platform.system().lower()}/{_arch()}",
    }


def health_checks(
    *,
    bootstrapped: Callable[[], bool],
    shutting_down: Callable[[], bool],
    store_failure: Callable[[], str | None],
) -> HealthChecks:
    """kube-apiserver's checks, in its order: ``ping``, ``log``, ``etcd`` (the store: failing while
    the last upkeep round could not reach it), the bootstrap post-start hook (failing on all three
    endpoints until the system objects and policy exist) and, on ``/readyz`` only, ``shutdown``
    (failing once the server stops)."""
    checks = HealthChecks()
    checks.add("log", lambda: None)
    checks.add("etcd", store_failure)
    checks.add(BOOTSTRAP_CHECK, lambda: None if bootstrapped() else "not finished")
    checks.add(
        "shutdown", lambda: "process is shutting down" if shutting_down() else None, endpoints=("readyz",)
    )
    return checks


def _arch() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


class APIServer:
    def __init__(
        self,
        *,
        options: APIServerOptions,
        store: Store,
        registry: Registry,
        metrics_registry: CollectorRegistry | None = None,
    ) -> None:
        self.options = options
        self.store = store
        self.registry = registry
        self.metrics_registry = metrics_registry or CollectorRegistry()
        self.metrics = APIServerMetrics(registry=self.metrics_registry)
        self.admission_metrics = AdmissionMetrics(registry=self.metrics_registry)
        self.objects = ResourceStore(
            store=store,
            registry=registry,
            cluster_ips=ClusterIPAllocator(options.service_cidr),
            node_ports=NodePortAllocator(*options.node_port_range),
            default_toleration_seconds=options.default_toleration_seconds,
        )
        self.aggregator = Aggregator(objects=self.objects, options=options)
        self.discovery = Discovery(
            registry=registry,
            server_address=f"{options.advertise_address}:{options.port}",
            remote_groups=self.aggregator.discovery_groups,
        )
        self.aggregator.on_change(self.discovery.invalidate)
        self.apiservice_availability = RemoteAvailability(
            aggregator=self.aggregator, objects=self.objects, metrics_registry=self.metrics_registry
        )
        self.storage_objects = StorageObjectsCollector(
            resources=lambda: [(rt.group_resource, rt.storage_prefix) for rt in registry],
            count=store.count,
        )
        self.metrics_registry.register(self.storage_objects)
        self.watch_cache = WatchCache(store=store)
        self.kubelets = proxy.KubeletProxy.from_options(options)
        self.pod_service_proxy = PodServiceProxy(objects=self.objects)
        self.component_statuses = ComponentStatuses.for_lab(
            store=store, ca_file=options.data_dir / "pki" / "ca.crt"
        )
        self._proxies: dict[str, Handler] = {
            "nodes": self.kubelets.node_proxy,
            "pods": self.pod_service_proxy.pod,
            "services": self.pod_service_proxy.service,
        }
        self.custom_resources = CustomResourceServing(objects=self.objects, registry=registry)
        self.local_apiservices = LocalAPIServices(objects=self.objects, registry=registry)
        self.tracer = configure_tracer("kube-apiserver")
        self.rbac: RBACAuthorizer | None = None
        self.node_authorizer: NodeAuthorizer | None = None
        self.authorizer = AuthorizerChain(authorizers=self._authorizers(options.authorization_modes))
        self.tokens = ServiceAccountTokens.from_options(options, objects=self.objects)
        self.priority_admission = PriorityAdmission(objects=self.objects)
        plugins: list[AdmissionPlugin] = [
            ServiceAccountAdmission(objects=self.objects),
            DefaultStorageClass(objects=self.objects),
            DefaultIngressClass(objects=self.objects),
            StorageObjectInUseProtection(),
            PersistentVolumeClaimResize(objects=self.objects),
            self.priority_admission,
            PodSecurityAdmission(objects=self.objects),
            RuntimeClassAdmission(objects=self.objects),
            *certificate_plugins(authorizer=self.authorizer),
            AdmissionPolicyParamAuthorization(objects=self.objects, authorizer=self.authorizer),
        ]
        if self.node_authorizer is not None:
            plugins.append(NodeRestriction(objects=self.objects))
        if self.rbac is not None:
            plugins.append(RBACEscalationCheck(rbac=self.rbac, authorizer=self.authorizer))
        # Upstream's order: LimitRanger defaults requests before ResourceQuota charges them, last.
        self.limit_ranger = LimitRanger(objects=self.objects)
        self.quota_admission = ResourceQuotaAdmission(objects=self.objects)
        # ... and the admission webhooks come between them, as upstream orders its plugins.
        self.webhooks = WebhookAdmission(
            objects=self.objects, authorizer=self.authorizer, metrics=self.admission_metrics
        )
        self.admission_policies = ValidatingAdmissionPolicies(
            objects=self.objects, authorizer=self.authorizer, metrics=self.admission_metrics
        )
        plugins += [
            self.limit_ranger,
            self.webhooks.mutating,
            self.admission_policies,
            self.webhooks.validating,
            self.quota_admission,
        ]
        self.objects.admission = AdmissionChain(plugins, step_duration=self.admission_metrics.step_duration)
        self.reviews = Reviews(authorizer=self.authorizer)
        self.ready = False
        self._bootstrapped = False
        self._store_failure: str | None = None  # what the last upkeep round got from the store
        self.health = health_checks(
            bootstrapped=lambda: self._bootstrapped,
            shutting_down=lambda: self._bootstrapped and not self.ready,
            store_failure=lambda: self._store_failure,
        )
        self._users_by_connection: weakref.WeakKeyDictionary[Any, UserInfo] = weakref.WeakKeyDictionary()
        self._openapi = openapi.OpenAPIV3(registry)
        self._openapi_v2 = openapi_v2.OpenAPIV2(registry, documents=self._openapi)

    def _authorizers(self, modes: tuple[str, ...]) -> list[Authorizer]:
        """``--authorization-mode``, in order; Node and RBAC follow the store (started in ``start``)."""
        authorizers: list[Authorizer] = []
        for mode in modes:
            if mode not in AUTHORIZATION_MODES:
                raise ValueError(
                    f"unknown authorization mode {mode!r}: choose from {', '.join(AUTHORIZATION_MODES)}"
                )
            if mode == "AlwaysAllow":
                authorizers.append(AlwaysAllow())
            elif mode == "AlwaysDeny":
                authorizers.append(AlwaysDeny())
            elif mode == "Node":
                self.node_authorizer = NodeAuthorizer(store=self.store, registry=self.registry)
                authorizers.append(self.node_authorizer)
            else:
                self.rbac = RBACAuthorizer(store=self.store, registry=self.registry)
                authorizers.append(self.rbac)
        return authorizers

    # ------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        if self.objects.namespace_cache is not None:
            self.objects.namespace_cache.start()
        self.limit_ranger.presence.start()
        self.quota_admission.presence.start()
        await self.webhooks.start()  # the webhook configurations, followed in memory
        await asyncio.wait_for(self.admission_policies.start(), timeout=60)  # and the admission policies
        self.priority_admission.start()
        for follower in (self.rbac, self.node_authorizer):
            if follower is not None:
                follower.start()
                await asyncio.wait_for(follower.synced.wait(), timeout=60)
        if self.tokens is not None:
            self.tokens.start()  # what tokens are bound to, followed in memory (reads fall back to the store)
        await self.objects.seed_allocators()
        await move_to_storage_keys(store=self.store, registry=self.registry)
        self.custom_resources.start()
        await asyncio.wait_for(self.custom_resources.synced.wait(), timeout=60)
        self.aggregator.start()
        await asyncio.wait_for(self.aggregator.synced.wait(), timeout=60)
        self.apiservice_availability.start()
        await ensure_system_objects(
            self.objects, address=self.options.advertise_address, port=self.options.port
        )
        if self.rbac is not None:
            await ensure_bootstrap_policy(self.objects)
        await ensure_extension_apiserver_authentication(self.objects, options=self.options)
        self.local_apiservices.start()  # after the CRDs' kinds are in the registry, as upstream
        await asyncio.wait_for(self.local_apiservices.synced.wait(), timeout=60)
        self._bootstrapped = True
        self.ready = True

    async def stop(self) -> None:
        """Stop what ``start`` started (the caches that follow the store)."""
        self.ready = False
        if self.objects.namespace_cache is not None:
            await self.objects.namespace_cache.stop()
        await self.limit_ranger.presence.stop()
        await self.quota_admission.presence.stop()
        await self.webhooks.stop()
        await self.admission_policies.stop()
        await self.priority_admission.stop()
        for follower in (self.rbac, self.node_authorizer):
            if follower is not None:
                await follower.stop()
        if self.tokens is not None:
            await self.tokens.stop()
        await self.local_apiservices.stop()
        await self.custom_resources.stop()
        await self.apiservice_availability.stop()
        await self.aggregator.stop()
        await self.watch_cache.stop()

    def http_server(self) -> web.Server:
        """aiohttp's low-level server, handing every request straight to :meth:`handle`: the
        API server parses paths itself (``requestinfo``), so an Application's router and
        middleware chain would only add a few tens of microseconds to every request."""
        loop = asyncio.get_running_loop()

        def make_request(
            message: Any, payload: Any, protocol: Any, writer: Any, task: asyncio.Task[None]
        ) -> web.BaseRequest:
            # Bodies are bounded by the handlers (3 MiB for objects); the aggregator streams.
            return web.BaseRequest(message, payload, protocol, writer, task, loop, client_max_size=1024**3)

        return web.Server(
            self.handle,
            request_factory=make_request,
            handler_cancellation=True,
            access_log=None,
            max_field_size=65536,
        )

    async def maintain(self, *, stop: asyncio.Event) -> None:
        """Background upkeep: compaction and storage object counts; its outcome is the ``etcd``
        health check's."""
        next_compaction = time.monotonic() + self.options.compaction_interval_seconds
        while not stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(
                    stop.wait(), timeout=min(15.0, self.options.compaction_interval_seconds)
                )
            if stop.is_set():
                return
            try:
                await self.storage_objects.refresh()
                if time.monotonic() >= next_compaction:
                    next_compaction = time.monotonic() + self.options.compaction_interval_seconds
                    current = await self.store.current_revision()
                    target = current - self.options.compaction_keep_revisions
                    if target > await self.store.compacted_revision():
                        await self.store.compact(target)
                        log.info("compacted store", extra={"revision": target})
                self._store_failure = None
            except StoreError as exc:
                self._store_failure = f"{type(exc).__name__}: {exc}"
                log.warning("store upkeep failed: %s", exc)

    # ------------------------------------------------------------- requests
    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        started = time.perf_counter()
        info = parse_request(method=request.method, path=request.path, query=request.query)
        code = 500
        try:
            if self.tracer is None:
                response = await self._handle(request, info)
            else:
                with self.tracer.start_as_current_span(
                    f"{request.method} {info.resource or request.path}",
                    attributes={"http.method": request.method, "http.target": request.path_qs},
                ) as span:
                    response = await self._handle(request, info)
                    span.set_attribute("http.status_code", response.status)
            code = response.status
            return response
        except errors.StatusError as exc:
            code = exc.code
            return status_response(exc)
        except StoreUnavailableError as exc:
            code = 503
            return status_response(errors.service_unavailable(f"storage is unavailable: {exc}"))
        except (ConnectionResetError, asyncio.CancelledError):
            code = 499
            raise
        except Exception as exc:
            log.exception("unhandled error serving %s %s", request.method, request.path)
            return status_response(errors.internal(f"{type(exc).__name__}: {exc}"))
        finally:
            if info.is_resource_request:
                self._observe(request, info, code, time.perf_counter() - started)

    def _observe(self, request: web.Request, info: RequestInfo, code: int, seconds: float) -> None:
        scope = "resource" if info.name else ("namespace" if info.namespace else "cluster")
        labels = (
            _metric_verb(request, info),
            "All" if "dryRun" in request.query else "",
            info.group,
            info.version,
            info.resource,
            info.subresource,
            scope,
            "apiserver",
        )
        self.metrics.observe_request(
            labels, code=code, seconds=None if _is_long_running(request, info) else seconds
        )

    async def _handle(self, request: web.Request, info: RequestInfo) -> web.StreamResponse:
        user = await self._authenticate(request)
        if allows_anonymous(request.path):
            pass  # health and version: open to everyone, as upstream's system:public-info-viewer
        elif not user.authenticated:
            raise errors.unauthorized()
        else:
            user = impersonate(headers=request.headers, user=user, authorizer=self.authorizer)
            self.authorizer.check(Attributes.from_request(user=user, info=info, query=request.query))
        aggregated = self.aggregator.target(request.path)
        if aggregated is not None:
            return await self.aggregator.proxy(
                request, target=aggregated, user=user, watch=info.verb == "watch"
            )
        if not info.is_resource_request:
            return await self._non_resource(request)
        rt = self.registry.lookup(group=info.group, version=info.version, plural=info.resource)
        if (
            rt is None
            or (info.group == "" and info.api_prefix != "api")
            or (info.group and info.api_prefix != "apis")
        ):
            raise errors.path_not_found(request.path)
        handler = self._route(rt, info)
        call = Call(
            request=request,
            info=info,
            rt=rt,
            wanted=wanted_shape(request.headers.get("Accept", "")),
            objects=self.objects,
            now=datetime.now(UTC),
            warnings=[],
            user=user,
        )
        record_into(call.warnings)  # what admission plugins warn about goes to this response
        if _is_long_running(request, info):
            gauge = self.metrics.longrunning.labels(
                verb=info.verb.upper(),
                group=info.group,
                version=info.version,
                resource=info.resource,
                subresource=info.subresource,
                scope="namespace" if info.namespace else "cluster",
                component="apiserver",
            )
            gauge.inc()
            try:
                return await handler(call)
            finally:
                gauge.dec()
        return await handler(call)

    async def _authenticate(self, request: web.Request) -> UserInfo:
        """The client certificate's user, else the bearer token's, else anonymous. A TLS
        connection's certificate is read once, then cached; a bearer token that does not
        authenticate is a 401, never anonymous (as upstream)."""
        transport = request.transport
        ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
        if ssl_object is not None:
            user = self._users_by_connection.get(ssl_object)
            if user is None:
                user = user_from_peercert(ssl_object.getpeercert())
                self._users_by_connection[ssl_object] = user
            if user.authenticated:
                return user
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return user_from_peercert(None)
        token = token.strip()
        found = await self.tokens.authenticate(token) if token and self.tokens is not None else None
        if found is None:
            raise errors.unauthorized()
        return found

    def _route(self, rt: ResourceType, info: RequestInfo) -> Handler:
        """The handler for (verb, subresource) on ``rt``; 404/405 as upstream when there is none."""
        if rt.namespaced and not info.namespace and info.verb not in ("list", "watch"):
            # e.g. POST /api/v1/pods: namespaced kinds need a namespace for everything but reads.
            raise errors.path_not_found(info.path)
        if not rt.namespaced and info.namespace:
            raise errors.path_not_found(info.path)
        sub = info.subresource
        if not rt.group and rt.plural == "componentstatuses":
            return self.component_statuses.route(rt, info)
        if rt.virtual and rt.plural != "bindings":
            return self._review_handler(rt, info)
        if sub:
            if sub not in rt.subresources or sub not in SERVED_SUBRESOURCES:
                raise errors.path_not_found(info.path)
            table: dict[tuple[str, str], Handler] = {
                ("status", "get"): reads.get,
                ("status", "update"): writes.update,
                ("status", "patch"): writes.patch_,
                ("scale", "get"): writes.get_scale,
                ("scale", "update"): writes.update,
                ("scale", "patch"): writes.patch_,
                ("binding", "create"): writes.bind,
                ("finalize", "update"): writes.update,
                ("eviction", "create"): eviction.evict,
                ("ephemeralcontainers", "get"): reads.get,
                ("ephemeralcontainers", "update"): writes.update,
                ("ephemeralcontainers", "patch"): writes.patch_,
                ("approval", "get"): reads.get,
                ("approval", "update"): writes.update,
                ("approval", "patch"): writes.patch_,
                ("log", "get"): self.kubelets.log,
                ("exec", "get"): self.kubelets.exec,
                ("exec", "create"): self.kubelets.exec,
                ("attach", "get"): self.kubelets.attach,
                ("attach", "create"): self.kubelets.attach,
                ("portforward", "get"): self.kubelets.portforward,
                ("portforward", "create"): self.kubelets.portforward,
                ("token", "create"): self._token_request,
                **{
                    ("proxy", verb): self._proxies[rt.plural]
                    for verb in ("get", "create", "update", "patch", "delete", "options")
                    if rt.plural in self._proxies
                },
            }
            handler = table.get((sub, info.verb))
            if handler is None:
                raise errors.method_not_supported(rt, info.verb)
            return handler
        if info.verb not in rt.verbs:
            raise errors.method_not_supported(rt, info.verb)
        if rt.plural == "bindings" and not rt.group:
            return writes.bind
        if info.verb == "watch":
            return self._watch
        handlers: dict[str, Handler] = {
            "get": reads.get,
            "list": reads.list_,
            "create": writes.create,
            "update": writes.update,
            "patch": writes.patch_,
            "delete": writes.delete,
            "deletecollection": writes.delete_collection,
        }
        handler = handlers.get(info.verb)
        if handler is None:
            raise errors.method_not_supported(rt, info.verb)
        return handler

    def _review_handler(self, rt: ResourceType, info: RequestInfo) -> Handler:
        """Reviews are create-only questions: who am I, may I, is this token good."""
        if info.verb != "create" or info.subresource or info.name:
            raise errors.method_not_supported(rt, info.verb)
        handlers: dict[str, Handler] = {
            "selfsubjectaccessreviews": self.reviews.self_subject_access_review,
            "subjectaccessreviews": self.reviews.subject_access_review,
            "localsubjectaccessreviews": self.reviews.local_subject_access_review,
            "selfsubjectrulesreviews": self.reviews.self_subject_rules_review,
            "selfsubjectreviews": self.reviews.self_subject_review,
            "tokenreviews": self._token_review,
        }
        handler = handlers.get(rt.plural)
        if handler is None:
            raise errors.path_not_found(info.path)
        return handler

    def _service_account_tokens(self) -> ServiceAccountTokens:
        if self.tokens is None:
            raise errors.service_unavailable(
                "ServiceAccount tokens are not configured on this API server "
                "(start it with a service account signing key)"
            )
        return self.tokens

    async def _token_request(self, call: Call) -> web.StreamResponse:
        return await self._service_account_tokens().token_request(call)

    async def _token_review(self, call: Call) -> web.StreamResponse:
        return await self._service_account_tokens().token_review(call)

    async def _watch(self, call: Call) -> web.StreamResponse:
        return await watch.watch(call, metrics=self.metrics, cache=self.watch_cache)

    # ------------------------------------------------------------- non-resource paths
    async def _non_resource(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        if request.method not in ("GET", "HEAD"):
            raise errors.method_not_supported(None, request.method)
        for endpoint in HEALTH_ENDPOINTS:
            if path == f"/{endpoint}":
                return health_response(self.health, endpoint=endpoint, query=request.query)
            if path.startswith(f"/{endpoint}/"):
                return check_response(self.health, endpoint=endpoint, name=path[len(endpoint) + 2 :])
        if path == "/version":
            return json_response(version_info())
        if path in (OPENID_CONFIGURATION_PATH, OPENID_JWKS_PATH) and self.tokens is not None:
            if path == OPENID_JWKS_PATH:
                return web.Response(body=self.tokens.jwks(), content_type="application/jwk-set+json")
            return bytes_response(self.tokens.openid_configuration())
        if path == "/metrics":
            return web.Response(
                body=generate_latest(self.metrics_registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
            )
        if path in ("/api", "/apis") or path.startswith(("/api/", "/apis/")):
            document = self.discovery.document(path)
            if document is None:
                raise errors.path_not_found(path)
            return bytes_response(document)
        if path == "/openapi/v3" or path.startswith("/openapi/v3/"):
            return self._openapi_v3(path)
        if path == "/openapi/v2":
            return self._openapi_v2_response(request)
        if path == "/":
            return json_response({"paths": sorted(self._root_paths())})
        raise errors.path_not_found(path)

    def _openapi_v3(self, path: str) -> web.Response:
        if path == "/openapi/v3":
            return bytes_response(self._openapi.index())
        document = self._openapi.document(path[len("/openapi/v3/") :])
        if document is None:
            raise errors.path_not_found(path)
        return bytes_response(document.body)

    def _openapi_v2_response(self, request: web.Request) -> web.Response:
        """JSON or gnostic protobuf by the Accept header (kubectl 1.27/1.28 ask for protobuf),
        with an ETag so cached copies are revalidated with a 304."""
        accept = request.headers.get("Accept", "")
        rendering = self._openapi_v2.negotiate(accept)
        if rendering is None:
            raise errors.not_acceptable(accept)
        headers = {"ETag": f'"{rendering.etag}"', "Vary": "Accept"}
        if request.headers.get("If-None-Match") == headers["ETag"]:
            return web.Response(status=304, headers=headers)
        return web.Response(body=rendering.body, headers={**headers, "Content-Type": rendering.media_type})

    def _root_paths(self) -> list[str]:
        paths = {
            "/api",
            "/api/v1",
            "/apis",
            "/healthz",
            "/livez",
            "/readyz",
            "/metrics",
            "/version",
            "/openapi/v2",
            "/openapi/v3",
        }
        if self.tokens is not None:
            paths.update((OPENID_CONFIGURATION_PATH, OPENID_JWKS_PATH))
        for group, version in self.registry.group_versions():
            if group:
                paths.add(f"/apis/{group}")
                paths.add(f"/apis/{group}/{version}")
        return list(paths)


def _metric_verb(request: web.Request, info: RequestInfo) -> str:
    if info.verb in ("list", "watch"):
        return info.verb.upper()
    if info.verb == "patch" and request.content_type == "application/apply-patch+yaml":
        return "APPLY"
    return request.method.upper()


def server_ssl_context(options: APIServerOptions) -> ssl.SSLContext | None:
    if options.tls_cert_file is None or options.tls_key_file is None:
        return None
    return serving_ssl_context(
        cert_file=options.tls_cert_file, key_file=options.tls_key_file, client_ca_file=options.client_ca_file
    )


class PortInUseError(OSError):
    """The API server's port is taken; the message names the port and the flag to change it."""


async def serve(
    options: APIServerOptions, *, stop: asyncio.Event, on_ready: Callable[[], None] | None = None
) -> None:
    """Run the API server until ``stop`` is set."""
    store = open_store(options.store_url, data_dir=options.data_dir)
    await store.start()
    server = APIServer(options=options, store=store, registry=builtin_registry())
    runner = web.ServerRunner(server.http_server(), shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(
        runner,
        options.bind_address,
        options.port,
        ssl_context=server_ssl_context(options),
        backlog=1024,
        reuse_address=True,
    )
    maintenance: asyncio.Task[None] | None = None
    try:
        try:
            await site.start()
        except OSError as exc:
            raise PortInUseError(
                exc.errno,
                f"cannot listen on {options.bind_address}:{options.port}: {exc.strerror}; "
                "choose another port with --api-port",
            ) from exc
        await server.start()
        log.info("API server ready", extra={"address": options.bind_address, "port": options.port})
        if on_ready is not None:
            on_ready()
        maintenance = asyncio.create_task(server.maintain(stop=stop))
        await stop.wait()
    finally:
        await server.stop()
        if maintenance is not None:
            maintenance.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await maintenance
        await store.close()
        await runner.cleanup()
