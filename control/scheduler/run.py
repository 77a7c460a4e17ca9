"""``run_scheduler``: the scheduler as a component of ``kubelab server`` or on its own.

It talks to the API server only through ``control.client``, with its own client and informers,
so it runs the same inside the server process and alone against any cluster (kubeconfig or
in-cluster), needing: list/watch of pods, nodes, namespaces, services, replicasets,
statefulsets, persistentvolumeclaims, persistentvolumes and storageclasses; create on
``pods/binding``; patch on ``pods/status`` and on persistentvolumeclaims (the selected node);
create/patch on events — upstream's ``system:kube-scheduler`` and ``system:volume-scheduler``.

A crash of the scheduling loop (a bug) is logged and the scheduler rebuilt a second later with
a fresh cache and queue, re-filled from the informers, as a restarted kube-scheduler would be.

Given ``health`` (the scheduler's secure port, ``control.controllers.metrics_serving``), the
scheduler adds kube-scheduler's ``sched-handler-sync`` check to ``/readyz``: ready once every
informer it uses has synced (its first list reached the cache and the scheduler's handlers), not
ready before it started and again once it stopped. The REST client metrics come from the
configuration (``ClientConfig.request_metrics``), the scheduling metrics go to ``registry``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry

from control.client.config import ClientConfig
from control.client.informer import InformerFactory
from control.client.rest import RESTClient
from control.controllers.events import EventRecorder
from control.scheduler.scheduler import DEFAULT_SCHEDULER_NAME, Scheduler

if TYPE_CHECKING:  # the serving machinery is the caller's; the scheduler only adds a check to it
    from control.healthz import HealthChecks

log = logging.getLogger("kubelab.scheduler")

RESTART_DELAY = 1.0
HANDLER_SYNC_CHECK = "sched-handler-sync"  # kube-scheduler's name for it


async def run_scheduler(
    *,
    config: ClientConfig,
    stop: asyncio.Event,
    registry: CollectorRegistry | None = None,
    health: HealthChecks | None = None,
) -> None:
    """Schedule pods until ``stop`` is set. ``registry`` receives the scheduler's metrics; with
    ``health``, its ``/readyz`` gets the ``sched-handler-sync`` check."""
    async with RESTClient(config, user_agent="kube-scheduler/kubelab") as client:
        informers = InformerFactory(client)
        recorder = EventRecorder(client=client, component=DEFAULT_SCHEDULER_NAME)
        task = asyncio.create_task(
            _supervise(client=client, informers=informers, recorder=recorder, registry=registry),
            name="scheduler",
        )
        if health is not None:
            health.add(HANDLER_SYNC_CHECK, functools.partial(_unsynced, informers), endpoints=("readyz",))
        try:
            await stop.wait()
        finally:
            if health is not None:
                expect_handler_sync(health)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await informers.shutdown()


def expect_handler_sync(health: HealthChecks) -> None:
    """Make ``health``'s ``/readyz`` fail until a :func:`run_scheduler` given it has synced its
    informers (register before serving, so no scrape sees a scheduler not yet started as ready)."""
    health.add(HANDLER_SYNC_CHECK, _not_running, endpoints=("readyz",))


def _unsynced(informers: InformerFactory) -> str | None:
    started = informers.informers()
    if not started:
        return "waiting for handlers to sync: the scheduler has not registered its informers yet"
    waiting = [informer.name for informer in started if not informer.has_synced()]
    return f"waiting for handlers to sync: {', '.join(sorted(waiting))}" if waiting else None


def _not_running() -> str:
    return "the scheduler is not running"


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
