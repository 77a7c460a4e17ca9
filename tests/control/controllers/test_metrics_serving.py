"""The components' secure ports against the real API server (in this loop, over HTTPS, RBAC on):
health paths for anyone, /metrics only for callers the API server authenticates (TokenReview, or a
lab-CA certificate) and authorizes (SubjectAccessReview), the metrics of a real reconcile on the
controller manager's port, and the real scheduler's readiness and metrics on its own."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from control.client import workqueue
from control.client.config import ClientConfig, load_kubeconfig
from control.client.rest import Resource, RESTClient
from control.controllers.kinds import PODS, REPLICA_SETS, SERVICE_ACCOUNTS
from control.controllers.manager import INFORMER_SYNC_CHECK, run_controller_manager
from control.controllers.metrics import component_registry, install_workqueue_metrics, with_request_metrics
from control.controllers.metrics_serving import DelegatedAuth, SecureServer, ServingConfig, ServingError
from control.healthz import HealthChecks
from control.lab import Layout
from control.pki import ensure_controllers_serving_certificate, issue_client_certificate, load_ca
from control.scheduler.run import HANDLER_SYNC_CHECK, expect_handler_sync, run_scheduler
from tests.control.apiserver.conftest import RunningServer, running_apiserver

CLUSTER_ROLE_BINDINGS = Resource(
    "rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", namespaced=False
)
WAIT = 30.0  # generous: a loaded CI machine syncs informers slowly; passing runs take well under 1 s


@dataclass
class Served:
    api: RunningServer
    server: SecureServer
    checks: HealthChecks
    registry: CollectorRegistry
    admin: RESTClient
    layout: Layout
    tmp_path: Path

    async def get(
        self,
        path: str,
        *,
        user: str | None = None,
        admin: bool = False,
        token: str | None = None,
        params: dict[str, str] | list[tuple[str, str]] | None = None,
        via: SecureServer | None = None,
    ) -> tuple[int, str]:
        """GET ``path`` anonymously, as the admin, as a certificate user, or with a bearer token,
        from ``via`` (default: the fixture's server)."""
        context = ssl.create_default_context(cafile=str(self.api.ca_file))
        if admin:
            context.load_cert_chain(str(self.api.cert_file), str(self.api.key_file))
        elif user is not None:
            cert, key = issue_client_certificate(ca=self._ca(), user=user, groups=("developers",))
            cert_file, key_file = self.tmp_path / f"{user}.crt", self.tmp_path / f"{user}.key"
            cert_file.write_bytes(cert)
            key_file.write_bytes(key)
            context.load_cert_chain(str(cert_file), str(key_file))
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        async with (
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session,
            session.get((via or self.server).url + path, headers=headers, params=params) as response,
        ):
            return response.status, await response.text()

    def _ca(self):
        return load_ca(cert_file=self.layout.pki.ca_cert, key_file=self.layout.pki.ca_key)


def admin_config(server: RunningServer) -> ClientConfig:
    return ClientConfig(
        server=server.url,
        ca_data=server.ca_file.read_bytes(),
        client_cert_data=server.cert_file.read_bytes(),
        client_key_data=server.key_file.read_bytes(),
    )


def serving_config(layout: Layout, *, port: int = 0) -> ServingConfig:
    files = layout.pki
    ensure_controllers_serving_certificate(
        files=files, ca=load_ca(cert_file=files.ca_cert, key_file=files.ca_key)
    )
    return ServingConfig(
        port=port,
        cert_file=files.controllers_serving_cert,
        key_file=files.controllers_serving_key,
        client_ca_file=files.ca_cert,
    )


@asynccontextmanager
async def secure_port(tmp_path: Path) -> AsyncIterator[Served]:
    """The API server, and the secure port reviewing callers as system:kube-controller-manager."""
    async with running_apiserver(tmp_path) as api:
        layout = Layout.resolve(tmp_path / "lab")
        manager_config = load_kubeconfig(layout.component_kubeconfig("controller-manager"))
        async with RESTClient(manager_config) as reviewer, RESTClient(admin_config(api)) as admin:
            checks = HealthChecks()
            registry = component_registry()
            server = SecureServer(
                config=serving_config(layout), auth=DelegatedAuth(reviewer), checks=checks, registry=registry
            )
            await server.start()
            try:
                yield Served(api, server, checks, registry, admin, layout, tmp_path)
            finally:
                await server.stop()


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    async with secure_port(tmp_path) as served:
        yield served


@pytest.fixture
def hooks_reset() -> Iterator[None]:
    yield
    workqueue.set_metrics_provider(None)


async def eventually(check: Callable[[], Awaitable[Any]], *, what: str) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while True:
        result = await check()
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last saw {result!r}")
        await asyncio.sleep(0.02)


async def service_account_token(admin: RESTClient, name: str) -> str:
    await admin.create(SERVICE_ACCOUNTS, {"metadata": {"name": name}}, namespace="default")
    request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}}
    answer = await admin.create(
        SERVICE_ACCOUNTS, request, namespace="default", name=name, subresource="token"
    )
    return answer["status"]["token"]


# --- health -------------------------------------------------------------------------------------


async def test_health_paths_answer_anonymous_callers(served):
    assert await served.get("/healthz") == (200, "ok")
    assert await served.get("/livez", params={"verbose": ""}) == (200, "[+]ping ok\nlivez check passed\n")
    assert await served.get("/readyz/ping") == (200, "ok")


async def test_a_failing_check_fails_its_endpoints_and_withholds_the_reason(served):
    served.checks.add(INFORMER_SYNC_CHECK, lambda: "not synced yet: pods", endpoints=("readyz",))
    assert await served.get("/readyz") == (
        500,
        "[+]ping ok\n[-]informer-sync failed: reason withheld\nreadyz check failed\n",
    )
    assert await served.get("/healthz") == (200, "ok")  # only on /readyz
    assert await served.get("/readyz/informer-sync") == (500, "internal server error: not synced yet: pods\n")
    assert await served.get("/readyz", params={"exclude": INFORMER_SYNC_CHECK}) == (200, "ok")
    assert await served.get("/readyz", params=[("exclude", INFORMER_SYNC_CHECK), ("verbose", "")]) == (
        200,
        "[+]ping ok\n[+]informer-sync excluded: ok\nreadyz check passed\n",
    )


async def test_a_check_that_raises_is_a_failing_check(served):
    def broken() -> str | None:
        raise RuntimeError("boom")

    served.checks.add("broken", broken)
    status, body = await served.get("/livez")
    assert status == 500
    assert "[-]broken failed: reason withheld\n" in body
    assert await served.get("/livez/broken") == (500, "internal server error: RuntimeError: boom\n")


async def test_unknown_checks_are_404_and_unknown_exclusions_are_warned_about(served):
    status, _ = await served.get("/healthz/nope")
    assert status == 404
    assert await served.get("/healthz", params=[("exclude", "nope"), ("verbose", "")]) == (
        200,
        '[+]ping ok\nwarn: some health checks cannot be excluded: no matches for "nope"\nhealthz check passed\n',
    )


# --- who may read /metrics ------------------------------------------------------------------------


async def test_metrics_without_credentials_is_401(served):
    status, body = await served.get("/metrics")
    assert status == 401
    assert orjson.loads(body) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }


async def test_metrics_for_a_user_without_the_non_resource_rule_is_403(served):
    status, body = await served.get("/metrics", user="jane")
    assert status == 403
    status_body = orjson.loads(body)
    assert status_body["reason"] == "Forbidden"
    assert status_body["message"] == 'forbidden: User "jane" cannot get path "/metrics"'


async def test_metrics_for_the_admin_is_the_registry(served):
    status, body = await served.get("/metrics", admin=True)
    assert status == 200
    names = {family.name for family in text_string_to_metric_families(body)}
    assert {"process_cpu_seconds", "python_info"} <= names


async def test_a_service_account_bound_to_system_monitoring_may_scrape(served):
    binding = {
        "metadata": {"name": "prometheus-monitoring"},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "system:monitoring",
        },
        "subjects": [{"kind": "ServiceAccount", "name": "prometheus", "namespace": "default"}],
    }
    await served.admin.create(CLUSTER_ROLE_BINDINGS, binding)
    status, body = await served.get("/metrics", token=await service_account_token(served.admin, "prometheus"))
    assert status == 200
    assert "process_cpu_seconds_total" in body
    status, body = await served.get("/metrics", token=await service_account_token(served.admin, "nobody"))
    assert status == 403  # authenticated by TokenReview, but not allowed
    assert orjson.loads(body)["message"] == (
        'forbidden: User "system:serviceaccount:default:nobody" cannot get path "/metrics"'
    )


async def test_a_token_the_api_server_rejects_is_401(served):
    status, body = await served.get("/metrics", token="not-a-token")
    assert status == 401
    assert orjson.loads(body)["reason"] == "Unauthorized"
    status, _ = await served.get("/healthz", token="not-a-token")
    assert status == 401  # bad credentials are refused even where anonymous callers are not


async def test_a_taken_port_is_a_serving_error(served):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        second = SecureServer(
            config=serving_config(served.layout, port=port),
            auth=DelegatedAuth(served.admin),
            checks=served.checks,
            registry=served.registry,
        )
        with pytest.raises(ServingError, match=f"cannot serve on 127.0.0.1:{port}"):
            await second.start()


async def test_unreadable_tls_files_are_a_serving_error(served, tmp_path):
    config = ServingConfig(
        port=0, cert_file=tmp_path / "missing.crt", key_file=tmp_path / "missing.key", client_ca_file=tmp_path
    )
    server = SecureServer(
        config=config, auth=DelegatedAuth(served.admin), checks=served.checks, registry=served.registry
    )
    with pytest.raises(ServingError, match="cannot load the secure port's TLS files"):
        await server.start()


# --- a real reconcile -----------------------------------------------------------------------------


def scraped(body: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


async def test_a_reconcile_shows_in_the_workqueue_and_rest_client_metrics(tmp_path, hooks_reset):
    async with running_apiserver(tmp_path) as api:
        layout = Layout.resolve(tmp_path / "lab")
        registry = component_registry()
        install_workqueue_metrics(registry)
        checks = HealthChecks()
        stop = asyncio.Event()
        async with RESTClient(admin_config(api)) as admin:
            manager = asyncio.create_task(
                run_controller_manager(
                    config=with_request_metrics(admin_config(api), registry=registry),
                    stop=stop,
                    enabled=["replicaset"],
                    health=checks,
                )
            )
            server = SecureServer(
                config=serving_config(layout), auth=DelegatedAuth(admin), checks=checks, registry=registry
            )
            await server.start()
            served = Served(api, server, checks, registry, admin, layout, tmp_path)
            try:
                await eventually(lambda: _ok(served.get("/readyz")), what="the informers to sync")
                replica_set = {
                    "metadata": {"name": "web"},
                    "spec": {
                        "replicas": 2,
                        "selector": {"matchLabels": {"app": "web"}},
                        "template": {
                            "metadata": {"labels": {"app": "web"}},
                            "spec": {"containers": [{"name": "web", "image": "kubelab"}]},
                        },
                    },
                }
                await admin.create(REPLICA_SETS, replica_set, namespace="default")
                await eventually(
                    lambda: _pod_count(admin, 2), what="the replica set controller to create two pods"
                )
                status, body = await served.get("/metrics", admin=True)
                assert status == 200
                samples = scraped(body)
                replicaset = frozenset({("name", "replicaset")})
                assert samples[("workqueue_adds_total", replicaset)] >= 1
                assert samples[("workqueue_work_duration_seconds_count", replicaset)] >= 1
                assert ("workqueue_depth", replicaset) in samples
                assert ("workqueue_unfinished_work_seconds", replicaset) in samples
                assert ("workqueue_longest_running_processor_seconds", replicaset) in samples
                assert ("workqueue_retries_total", replicaset) in samples
                host = api.url.removeprefix("https://")
                created = frozenset({("code", "201"), ("method", "POST"), ("host", host)})
                assert samples[("rest_client_requests_total", created)] >= 2  # the two pods
                timed = frozenset({("verb", "POST"), ("host", host)})
                assert samples[("rest_client_request_duration_seconds_count", timed)] >= 2
            finally:
                await server.stop()
                stop.set()
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait_for(manager, timeout=WAIT)
        [sync] = [check for name, check in checks.of("readyz") if name == INFORMER_SYNC_CHECK]
        assert sync() == "the controller manager is not running"


async def test_the_scheduler_serves_its_own_readiness_and_metrics(tmp_path):
    async with running_apiserver(tmp_path) as api:
        layout = Layout.resolve(tmp_path / "lab")
        registry = component_registry()
        config = with_request_metrics(
            load_kubeconfig(layout.component_kubeconfig("scheduler")), registry=registry
        )
        checks = HealthChecks()
        expect_handler_sync(checks)
        stop = asyncio.Event()
        async with RESTClient(config) as reviewer, RESTClient(admin_config(api)) as admin:
            server = SecureServer(
                config=serving_config(layout), auth=DelegatedAuth(reviewer), checks=checks, registry=registry
            )
            await server.start()
            served = Served(api, server, checks, registry, admin, layout, tmp_path)
            try:
                assert await served.get("/readyz", params={"verbose": ""}) == (
                    500,
                    "[+]ping ok\n[-]sched-handler-sync failed: reason withheld\nreadyz check failed\n",
                )
                scheduler = asyncio.create_task(
                    run_scheduler(config=config, stop=stop, registry=registry, health=checks)
                )
                try:
                    await eventually(
                        lambda: _ok(served.get("/readyz")), what="the scheduler's informers to sync"
                    )
                    assert await served.get("/readyz/sched-handler-sync") == (200, "ok")
                    assert (await served.get("/metrics"))[0] == 401
                    status, body = await served.get("/metrics", admin=True)
                finally:
                    stop.set()
                    await asyncio.wait_for(scheduler, timeout=WAIT)
            finally:
                await server.stop()
        assert status == 200
        samples = scraped(body)
        assert ("scheduler_pending_pods", frozenset({("queue", "active")})) in samples
        host = api.url.removeprefix("https://")
        listed = frozenset({("code", "200"), ("method", "GET"), ("host", host)})
        assert samples[("rest_client_requests_total", listed)] >= 9  # a list per informer, at least
        # the scrape's SubjectAccessReview went through the scheduler's own client: counted here too
        reviewed = frozenset({("code", "201"), ("method", "POST"), ("host", host)})
        assert samples[("rest_client_requests_total", reviewed)] >= 1
        assert not [name for name, _ in samples if name.startswith("workqueue_")]
        [sync] = [check for name, check in checks.of("readyz") if name == HANDLER_SYNC_CHECK]
        assert sync() == "the scheduler is not running"


async def _ok(answer: Awaitable[tuple[int, str]]) -> bool:
    status, _ = await answer
    return status == 200


async def _pod_count(admin: RESTClient, count: int) -> bool:
    pods = await admin.list(PODS, namespace="default")
    return len(pods["items"]) >= count


# --- delegation details ---------------------------------------------------------------------------


class CountingReviewer:
    """Answers every review as authenticated and allowed, counting the requests (a fake: the real
    API server cannot show how often it was asked)."""

    def __init__(self) -> None:
        self.reviews: list[str] = []

    async def create(self, resource: Resource, body: dict[str, Any]) -> dict[str, Any]:
        self.reviews.append(body["kind"])
        if body["kind"] == "TokenReview":
            return {"status": {"authenticated": True, "user": {"username": "robot", "groups": ["bots"]}}}
        return {"status": {"allowed": True}}


class TickingClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_token_and_access_reviews_are_remembered_for_the_ttl(served):
    reviewer, clock = CountingReviewer(), TickingClock()
    auth = DelegatedAuth(reviewer, cache_ttl=10.0, clock=clock)  # type: ignore[arg-type]
    server = SecureServer(
        config=serving_config(served.layout), auth=auth, checks=served.checks, registry=served.registry
    )
    await server.start()
    try:
        for _ in range(2):
            assert (await served.get("/metrics", token="t0ken", via=server))[0] == 200
        assert reviewer.reviews == ["TokenReview", "SubjectAccessReview"]
        clock.now += 10.0
        assert (await served.get("/metrics", token="t0ken", via=server))[0] == 200
        assert reviewer.reviews == ["TokenReview", "SubjectAccessReview"] * 2
    finally:
        await server.stop()


async def test_an_access_review_that_cannot_be_had_is_500(served):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: no API server there
    async with RESTClient(ClientConfig(server=f"https://127.0.0.1:{port}"), max_retries=0) as unreachable:
        server = SecureServer(
            config=serving_config(served.layout),
            auth=DelegatedAuth(unreachable),
            checks=served.checks,
            registry=served.registry,
        )
        await server.start()
        try:
            status, body = await served.get("/metrics", admin=True, via=server)
            assert status == 500
            assert orjson.loads(body)["reason"] == "InternalError"
            status, _ = await served.get("/metrics", token="t0ken", via=server)
            assert status == 401  # a token that cannot be reviewed authenticates no one
            assert await served.get("/healthz", admin=True, via=server) == (200, "ok")
        finally:
            await server.stop()
