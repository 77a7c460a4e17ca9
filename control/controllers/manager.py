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
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from collections.abc import Iterable
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
    """Run the controllers until ``stop`` is set."""
    async with RESTClient(config, user_agent="kube-controller-manager/kubelab") as client:
        informers = InformerFactory(client)
        ctx = ControllerContext(client=client, informers=informers, options=options or ControllerOptions())
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
