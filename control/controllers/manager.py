"""The controller manager: builds every controller over one shared informer factory and
runs them until stopped (kube-controller-manager's shape).

Each controller lives in its own module and exposes ``new_controller(ctx)`` returning an
object with a ``name`` and an ``async run()`` that works until cancelled. Controllers
register their informers with ``ctx.informers`` while being built; the manager then
starts all informers once and runs the controllers, each of which waits for the caches
it needs before its workers start (client-go's WaitForCacheSync).

The manager talks to the API server only through ``control.client``, as its own user,
so it runs in the ``kubelab server`` process or alone (``kubelab controller-manager``)
just the same.

With ``use_service_account_credentials`` (kube-controller-manager's
``--use-service-account-credentials``) each controller writes as its own ServiceAccount,
``system:serviceaccount:kube-system:<sa>`` (``CONTROLLER_SERVICE_ACCOUNTS``), so RBAC can hold each
to what it does (ClusterRole ``system:controller:<sa>``) and the manager's own user
``system:kube-controller-manager`` needs little more than to read everything and to ask for those
tokens. As upstream's ``DynamicControllerClientBuilder``: the manager makes sure each ServiceAccount
exists, requests its token with TokenRequest (3600 s, renewed with 20 % of its life left, and
after a 401) and builds that controller's client on it — certificate-free, so the token is what
the API server sees. The shared informers stay on the manager's own client: one watch per kind,
whoever reads. Without a token (an API server with no service-account signing key, or a manager
not allowed to ask) start-up fails naming the option. It is off by default (a bare ``kubelab
server`` has no signing key); ``KUBELAB_USE_SERVICE_ACCOUNT_CREDENTIALS=true`` turns it on.

The node lifecycle timings can be shortened from the environment of the process that runs
the manager (``kubelab up`` passes its own environment on), since `kubelab up` has no flags
for them: ``KUBELAB_NODE_MONITOR_PERIOD`` and ``KUBELAB_NODE_MONITOR_GRACE_PERIOD``, in
seconds (kube-controller-manager's ``--node-monitor-period`` and
``--node-monitor-grace-period``). Tests use them to see a dead node within seconds instead of
the upstream 40 s; the grace period must stay above the kubelet's 10 s lease renewal, or
healthy nodes flap.

Given ``health`` (the controllers process's secure port, ``control.controllers.metrics_serving``),
the manager adds an ``informer-sync`` check to ``/readyz``: ready once every shared informer has
synced. The metrics are not the manager's either: the workqueue metrics come from the
process-wide provider the process installs, and the REST client metrics from the sink the
process puts in the manager's client configuration (``control.controllers.metrics``); the
ServiceAccount clients it derives from that configuration count into the same sink.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import importlib
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from prometheus_client import CollectorRegistry

from control.client.config import ClientConfig
from control.client.informer import InformerFactory
from control.client.rest import RESTClient
from control.client.tokenrequest import (
    TokenRequestError,
    service_account_token_source,
    service_account_username,
)
from control.controllers.events import EventRecorder
from control.healthz import HealthChecks

log = logging.getLogger("kubelab.controller-manager")

USER_AGENT = "kube-controller-manager/kubelab"

# name -> module under control.controllers, in start order.
CONTROLLER_MODULES: dict[str, str] = {
    "serviceaccount": "serviceaccount",
    "namespace": "namespace",
    "garbagecollector": "garbagecollector",
    "replicaset": "replicaset",
    "replicationcontroller": "replicationcontroller",
    "deployment": "deployment",
    "daemonset": "daemonset",
    "statefulset": "statefulset",
    "job": "job",
    "cronjob": "cronjob",
    "disruption": "disruption",
    "endpoints": "endpoints",
    "endpointslice": "endpointslice",
    "nodeipam": "nodeipam",
    "nodelifecycle": "nodelifecycle",
    "podgc": "podgc",
    "clusterrole-aggregation": "clusterroleaggregation",
    "root-ca-cert-publisher": "rootcacertpublisher",
    "persistentvolume-binder": "persistentvolume",
    "persistentvolume-local-path-provisioner": "persistentvolume_localpath",
    "persistentvolumeclaim-protection": "pvcprotection",
    "persistentvolume-protection": "pvprotection",
    "resourcequota": "resourcequota",
    "csrsigning": "csrsigning",
    "csrcleaner": "csrcleaner",
    "horizontalpodautoscaling": "horizontalpodautoscaler",
}

# Where the controllers' ServiceAccounts live (upstream: kube-system, which users cannot read).
SERVICE_ACCOUNT_NAMESPACE = "kube-system"
TOKEN_EXPIRATION_SECONDS = 3600  # upstream clientbuilder's defaultExpirationSeconds

# controller name -> the ServiceAccount it runs as with use_service_account_credentials (upstream's
# names; RBAC's ClusterRole and ClusterRoleBinding system:controller:<sa> grant what it needs).
CONTROLLER_SERVICE_ACCOUNTS: dict[str, str] = {
    "serviceaccount": "service-account-controller",
    "namespace": "namespace-controller",
    "garbagecollector": "generic-garbage-collector",
    "replicaset": "replicaset-controller",
    "replicationcontroller": "replication-controller",
    "deployment": "deployment-controller",
    "daemonset": "daemon-set-controller",
    "statefulset": "statefulset-controller",
    "job": "job-controller",
    "cronjob": "cronjob-controller",
    "disruption": "disruption-controller",
    "endpoints": "endpoint-controller",
    "endpointslice": "endpointslice-controller",
    "nodeipam": "node-controller",
    "nodelifecycle": "node-controller",
    "podgc": "pod-garbage-collector",
    "clusterrole-aggregation": "clusterrole-aggregation-controller",
    "root-ca-cert-publisher": "root-ca-cert-publisher",
    "persistentvolume-binder": "persistent-volume-binder",
    "persistentvolume-local-path-provisioner": "local-path-provisioner",
    "persistentvolumeclaim-protection": "pvc-protection-controller",
    "persistentvolume-protection": "pv-protection-controller",
    "resourcequota": "resourcequota-controller",
    "csrsigning": "certificate-controller",
    "csrcleaner": "certificate-controller",
    "horizontalpodautoscaling": "horizontal-pod-autoscaler",
}


@dataclass(frozen=True, kw_only=True)
class ControllerOptions:
    """Tunables with upstream's defaults (flags of kube-controller-manager)."""

    # node lifecycle
    node_monitor_period: float = 5.0
    node_monitor_grace_period: float = 40.0
    default_not_ready_toleration_seconds: int = 300
    default_unreachable_toleration_seconds: int = 300
    # pod GC: finished pods kept before the oldest are deleted (--terminated-pod-gc-threshold; 0 = off)
    terminated_pod_gc_threshold: int = 12500
    # node IPAM
    cluster_cidr: str = "127.244.0.0/16"
    node_cidr_mask_size: int = 24
    # workers per controller
    concurrent_syncs: int = 5
    # each controller as its own ServiceAccount (--use-service-account-credentials)
    use_service_account_credentials: bool = False
    # where the local-path provisioner keeps volumes (<lab data dir>/storage; "" provisions nothing)
    storage_dir: str = ""
    # the CSR signer's CA (--cluster-signing-cert-file / --cluster-signing-key-file; "" signs nothing)
    cluster_signing_cert_file: str = ""
    cluster_signing_key_file: str = ""
    # the life of signed certificates (--cluster-signing-duration, 8760h), in seconds
    cluster_signing_duration: float = 365 * 24 * 3600.0

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> ControllerOptions:
        """The defaults, with the node monitor timings of ``ENVIRONMENT_OPTIONS`` and
        ``KUBELAB_USE_SERVICE_ACCOUNT_CREDENTIALS`` when set."""
        overrides: dict[str, float | bool] = {}
        flag = environ.get(SERVICE_ACCOUNT_CREDENTIALS_VARIABLE, "").strip()
        if flag:
            if flag.lower() not in _BOOLEANS:
                raise OptionsError(f"{SERVICE_ACCOUNT_CREDENTIALS_VARIABLE}={flag!r}: expected true or false")
            overrides["use_service_account_credentials"] = _BOOLEANS[flag.lower()]
        for variable, option in ENVIRONMENT_OPTIONS.items():
            text = environ.get(variable, "").strip()
            if not text:
                continue
            try:
                value = float(text)
            except ValueError as exc:
                raise OptionsError(f"{variable}={text!r}: expected a number of seconds") from exc
            if not value > 0:
                raise OptionsError(f"{variable}={text!r}: must be a positive number of seconds")
            overrides[option] = value
        return cls(**overrides)


class OptionsError(ValueError):
    """An environment variable holds a value no controller option can take."""


# environment variable -> ControllerOptions field, read by ``ControllerOptions.from_environment``
ENVIRONMENT_OPTIONS: dict[str, str] = {
    "KUBELAB_NODE_MONITOR_PERIOD": "node_monitor_period",
    "KUBELAB_NODE_MONITOR_GRACE_PERIOD": "node_monitor_grace_period",
}
SERVICE_ACCOUNT_CREDENTIALS_VARIABLE = "KUBELAB_USE_SERVICE_ACCOUNT_CREDENTIALS"
_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}


class ControllerCredentialsError(RuntimeError):
    """With use_service_account_credentials, a controller's ServiceAccount token cannot be had."""


@dataclass(kw_only=True)
class ControllerContext:
    """What a controller is built from. ``client`` is the controller's own (its ServiceAccount's
    with use_service_account_credentials; either way ``client.config.ca_data`` is the CA the
    manager trusts); ``informers`` are shared and run on the manager's client."""

    client: RESTClient
    informers: InformerFactory
    options: ControllerOptions = field(default_factory=ControllerOptions)
    # Where controllers with metrics of their own register them (the controller manager's
    # /metrics); None when the manager serves no metrics.
    registry: CollectorRegistry | None = None

    def recorder(self, component: str) -> EventRecorder:
        return EventRecorder(client=self.client, component=component)


class RunnableController(Protocol):
    name: str

    async def run(self) -> None:
        """Work until cancelled (waiting for its informers' caches first)."""


def controller_names(enabled: Iterable[str] | None = None) -> list[str]:
    """``enabled`` checked against ``CONTROLLER_MODULES`` (all of them, in start order, for None)."""
    names = list(CONTROLLER_MODULES) if enabled is None else list(enabled)
    unknown = [name for name in names if name not in CONTROLLER_MODULES]
    if unknown:
        raise ValueError(
            f"unknown controllers: {', '.join(unknown)} (known: {', '.join(CONTROLLER_MODULES)})"
        )
    return names


def build_controllers(
    ctx: ControllerContext,
    *,
    enabled: Iterable[str] | None = None,
    clients: Mapping[str, RESTClient] | None = None,
) -> list[RunnableController]:
    """Build the ``enabled`` controllers; one named in ``clients`` gets that client in its context."""
    controllers = []
    for name in controller_names(enabled):
        module = importlib.import_module(f"control.controllers.{CONTROLLER_MODULES[name]}")
        own_client = (clients or {}).get(name)
        own = ctx if own_client is None else dataclasses.replace(ctx, client=own_client)
        controllers.append(module.new_controller(own))
    return controllers


class ServiceAccountClients:
    """One client per controller ServiceAccount, each on a renewing token of that account
    (upstream's ``DynamicControllerClientBuilder``).

    ``config`` locates the API server (its credentials are dropped); ``requester`` — the manager's
    own client — creates the ServiceAccounts and requests their tokens. Controllers sharing an
    account share its client. :meth:`close` closes them all.
    """

    def __init__(
        self,
        *,
        config: ClientConfig,
        requester: RESTClient,
        namespace: str = SERVICE_ACCOUNT_NAMESPACE,
    ) -> None:
        self._config = config
        self._requester = requester
        self._namespace = namespace
        self._clients: dict[str, RESTClient] = {}
        self._lock = asyncio.Lock()

    async def client(self, account: str) -> RESTClient:
        """The client of ServiceAccount ``account``, made (with its first token) on first use.

        Raises :class:`ControllerCredentialsError` when no token can be had, so start-up fails
        with the cause rather than every later request.
        """
        async with self._lock:
            existing = self._clients.get(account)
            if existing is not None:
                return existing
            source = service_account_token_source(
                self._requester,
                namespace=self._namespace,
                name=account,
                expiration_seconds=TOKEN_EXPIRATION_SECONDS,
                ensure_account=True,
            )
            try:
                await source.token()
            except TokenRequestError as exc:
                raise ControllerCredentialsError(
                    f"use_service_account_credentials is on, but {exc}; turn "
                    "use_service_account_credentials off to run the controllers as the manager's own user"
                ) from exc
            username = service_account_username(namespace=self._namespace, name=account)
            config = self._config.with_token_source(source, source=f"{self._config.source} as {username}")
            client = RESTClient(config, user_agent=f"{USER_AGENT}/{username}")
            self._clients[account] = client
            return client

    async def close(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.close()


async def controller_clients(
    names: Iterable[str], *, accounts: ServiceAccountClients
) -> dict[str, RESTClient]:
    """Each named controller's own client, by controller name (``CONTROLLER_SERVICE_ACCOUNTS``)."""
    return {name: await accounts.client(CONTROLLER_SERVICE_ACCOUNTS[name]) for name in names}


async def run_controller_manager(
    *,
    config: ClientConfig,
    stop: asyncio.Event,
    options: ControllerOptions | None = None,
    enabled: Iterable[str] | None = None,
    health: HealthChecks | None = None,
    registry: CollectorRegistry | None = None,
) -> None:
    """Run the controllers until ``stop`` is set (``options`` default to
    ``ControllerOptions.from_environment()``). With ``health``, its ``/readyz`` gets an
    ``informer-sync`` check that passes once every shared informer has synced, and fails again
    once the manager has stopped. With ``registry``, controllers that have metrics of their own
    count them there."""
    options = options or ControllerOptions.from_environment()
    names = controller_names(enabled)
    async with contextlib.AsyncExitStack() as resources:
        client = await resources.enter_async_context(RESTClient(config, user_agent=USER_AGENT))
        clients: dict[str, RESTClient] = {}
        if options.use_service_account_credentials:
            # Token requests get no Retry-After retries of their own: the token source has its
            # backoff, and a server that cannot issue tokens must fail start-up promptly.
            requester = await resources.enter_async_context(
                RESTClient(config, user_agent=USER_AGENT, max_retries=0)
            )
            accounts = ServiceAccountClients(config=config, requester=requester)
            resources.push_async_callback(accounts.close)
            clients = await controller_clients(names, accounts=accounts)
        informers = InformerFactory(client)
        ctx = ControllerContext(client=client, informers=informers, options=options, registry=registry)
        controllers = build_controllers(ctx, enabled=names, clients=clients)
        informers.start()
        if health is not None:
            health.add(INFORMER_SYNC_CHECK, functools.partial(_unsynced, informers), endpoints=("readyz",))
        tasks = [
            asyncio.create_task(_supervise(controller), name=controller.name) for controller in controllers
        ]
        log.info("controller manager started", extra={"controllers": [c.name for c in controllers]})
        try:
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if health is not None:
                expect_informer_sync(health)
            await informers.shutdown()


INFORMER_SYNC_CHECK = "informer-sync"


def expect_informer_sync(health: HealthChecks) -> None:
    """Make ``health``'s ``/readyz`` fail until a :func:`run_controller_manager` given it has synced
    its informers (register before serving, so no scrape sees a manager not yet started as ready)."""
    health.add(INFORMER_SYNC_CHECK, _not_running, endpoints=("readyz",))


def _unsynced(informers: InformerFactory) -> str | None:
    waiting = [informer.name for informer in informers.informers() if not informer.has_synced()]
    return f"not synced yet: {', '.join(sorted(waiting))}" if waiting else None


def _not_running() -> str:
    return "the controller manager is not running"


async def _supervise(controller: RunnableController) -> None:
    """Keep one controller running: a crash is logged and the controller restarted."""
    while True:
        try:
            await controller.run()
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("controller %s crashed; restarting in 1 s", controller.name)
            await asyncio.sleep(1.0)
