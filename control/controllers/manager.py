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

The node lifecycle timings can be shortened from the environment of the process that runs
the manager (``kubelab up`` passes its own environment on), since `kubelab up` has no flags
for them: ``KUBELAB_NODE_MONITOR_PERIOD`` and ``KUBELAB_NODE_MONITOR_GRACE_PERIOD``, in
seconds (kube-controller-manager's ``--node-monitor-period`` and
``--node-monitor-grace-period``). Tests use them to see a dead node within seconds instead of
the upstream 40 s; the grace period must stay above the kubelet's 10 s lease renewal, or
healthy nodes flap.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from control.client.config import ClientConfig
from control.client.informer import InformerFactory
from control.client.rest import RESTClient
from control.controllers.events import EventRecorder

log = logging.getLogger("kubelab.controller-manager")

# name -> module under control.controllers, in start order.
CONTROLLER_MODULES: dict[str, str] = {
    "serviceaccount": "serviceaccount",
    "namespace": "namespace",
    "garbagecollector": "garbagecollector",
    "replicaset": "replicaset",
    "deployment": "deployment",
    "daemonset": "daemonset",
    "statefulset": "statefulset",
    "job": "job",
    "endpoints": "endpoints",
    "endpointslice": "endpointslice",
    "nodeipam": "nodeipam",
    "nodelifecycle": "nodelifecycle",
}


@dataclass(frozen=True, kw_only=True)
class ControllerOptions:
    """Tunables with upstream's defaults (flags of kube-controller-manager)."""

    # node lifecycle
    node_monitor_period: float = 5.0
    node_monitor_grace_period: float = 40.0
    default_not_ready_toleration_seconds: int = 300
    default_unreachable_toleration_seconds: int = 300
    # node IPAM
    cluster_cidr: str = "127.244.0.0/16"
    node_cidr_mask_size: int = 24
    # workers per controller
    concurrent_syncs: int = 5

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> ControllerOptions:
        """The defaults, with the node monitor timings of ``ENVIRONMENT_OPTIONS`` when set."""
        overrides: dict[str, float] = {}
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


@dataclass(kw_only=True)
class ControllerContext:
    client: RESTClient
    informers: InformerFactory
    options: ControllerOptions = field(default_factory=ControllerOptions)

    def recorder(self, component: str) -> EventRecorder:
        return EventRecorder(client=self.client, component=component)


class RunnableController(Protocol):
    name: str

    async def run(self) -> None:
        """Work until cancelled (waiting for its informers' caches first)."""


def build_controllers(
    ctx: ControllerContext, *, enabled: Iterable[str] | None = None
) -> list[RunnableController]:
    names = list(CONTROLLER_MODULES) if enabled is None else list(enabled)
    unknown = [name for name in names if name not in CONTROLLER_MODULES]
    if unknown:
        raise ValueError(
            f"unknown controllers: {', '.join(unknown)} (known: {', '.join(CONTROLLER_MODULES)})"
        )
    controllers = []
    for name in names:
        module = importlib.import_module(f"control.controllers.{CONTROLLER_MODULES[name]}")
        controllers.append(module.new_controller(ctx))
    return controllers


async def run_controller_manager(
    *,
    config: ClientConfig,
    stop: asyncio.Event,
    options: ControllerOptions | None = None,
    enabled: Iterable[str] | None = None,
) -> None:
    """Run the controllers until ``stop`` is set (``options`` default to
    ``ControllerOptions.from_environment()``)."""
    options = options or ControllerOptions.from_environment()
    async with RESTClient(config, user_agent="kube-controller-manager/kubelab") as client:
        informers = InformerFactory(client)
        ctx = ControllerContext(client=client, informers=informers, options=options)
        controllers = build_controllers(ctx, enabled=enabled)
        informers.start()
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
            await informers.shutdown()


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
