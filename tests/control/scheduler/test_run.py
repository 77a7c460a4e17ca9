"""``run_scheduler``'s readiness check, kube-scheduler's ``sched-handler-sync``: failing before the
scheduler runs, until every informer it registered has synced, and naming the ones still waiting.
(The check against a real API server and a real scheduler is in
tests/control/controllers/test_metrics_serving.py.)"""

from __future__ import annotations

from typing import Any

from control.client.informer import InformerFactory
from control.client.rest import Resource
from control.client.testing import FakeClock, FakeListerWatcher
from control.healthz import HealthChecks
from control.scheduler import run
from control.scheduler.scheduler import NODES, PODS


class FakeClient:
    """Lists an empty collection of any resource (the informers only need to sync)."""

    def lister_watcher(self, resource: Resource, **selectors: Any) -> FakeListerWatcher:
        return FakeListerWatcher([], kind=resource.kind)


async def test_the_check_waits_for_every_informer_the_scheduler_registered():
    factory = InformerFactory(FakeClient(), clock=FakeClock())
    assert run._unsynced(factory) == (
        "waiting for handlers to sync: the scheduler has not registered its informers yet"
    )
    factory.informer(PODS)
    factory.informer(NODES)
    assert run._unsynced(factory) == "waiting for handlers to sync: nodes, pods"
    factory.start()
    try:
        assert await factory.wait_for_sync(timeout=5)
        assert run._unsynced(factory) is None
    finally:
        await factory.shutdown()


def test_before_the_scheduler_runs_readyz_fails_and_health_does_not():
    checks = HealthChecks()
    run.expect_handler_sync(checks)
    ready = dict(checks.of("readyz"))
    assert ready[run.HANDLER_SYNC_CHECK]() == "the scheduler is not running"
    assert run.HANDLER_SYNC_CHECK not in dict(checks.of("livez"))
    assert run.HANDLER_SYNC_CHECK not in dict(checks.of("healthz"))
