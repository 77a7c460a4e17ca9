"""``run_scheduler``: the scheduler as a component of ``kubelab server`` or on its own.

It talks to the API server only through ``control.client``, with its own client and informers,
so it runs the same inside the server process and alone against any cluster (kubeconfig or
in-cluster), needing: list/watch of pods, nodes, namespaces, services, replicasets,
statefulsets, persistentvolumeclaims, persistentvolumes and storageclasses; create on
``pods/binding``; patch on ``pods/status`` and on persistentvolumeclaims (the selected node);
create/patch on events — upstream's ``system:kube-scheduler`` and ``system:volume-scheduler``.

A crash of the scheduling loop (a bug) is logged and the scheduler rebuilt a second later with
a fresh cache and queue, re-filled from the informers, as a restarted kube-scheduler would be.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from prometheus_client import CollectorRegistry

from control.client.config import ClientConfig
from control.client.informer import InformerFactory
from control.client.rest import RESTClient
from control.controllers.events import EventRecorder
from control.scheduler.scheduler import DEFAULT_SCHEDULER_NAME, Scheduler

log = logging.getLogger("kubelab.scheduler")

RESTART_DELAY = 1.0


async def run_scheduler(
    *, config: ClientConfig, stop: asyncio.Event, registry: CollectorRegistry | None = None
) -> None:
    """Schedule pods until ``stop`` is set. ``registry`` receives the scheduler's metrics."""
    async with RESTClient(config, user_agent="kube-scheduler/kubelab") as client:
        informers = InformerFactory(client)
        recorder = EventRecorder(client=client, component=DEFAULT_SCHEDULER_NAME)
        task = asyncio.create_task(
            _supervise(client=client, informers=informers, recorder=recorder, registry=registry),
            name="scheduler",
        )
        try:
            await stop.wait()
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await informers.shutdown()


async def _supervise(
    client: RESTClient,
    informers: InformerFactory,
    recorder: EventRecorder,
    registry: CollectorRegistry | None,
) -> None:
    while True:
        scheduler = Scheduler(client=client, informers=informers, recorder=recorder, registry=registry)
        informers.start()
        try:
            await scheduler.run()
            return
        except Exception:
            log.exception("the scheduler crashed; restarting in %.0f s", RESTART_DELAY)
            await asyncio.sleep(RESTART_DELAY)
