"""The controller manager with use_service_account_credentials, against the real API server
(in this loop, over HTTPS, issuing ServiceAccount tokens with the lab's key): every controller
writes as its own ServiceAccount, on tokens requested by the manager's own user and renewed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from control.apiserver.rbac_policy import controller_service_accounts
from control.client import errors
from control.client.config import ClientConfig, load_kubeconfig
from control.client.rest import Resource, RESTClient
from control.client.testing import FakeClock
from control.client.tokenrequest import service_account_token_source
from control.controllers.kinds import CONFIG_MAPS, DEPLOYMENTS, NAMESPACES, PODS, SERVICE_ACCOUNTS
from control.controllers.manager import (
    CONTROLLER_MODULES,
    CONTROLLER_SERVICE_ACCOUNTS,
    ControllerCredentialsError,
    ControllerOptions,
    ServiceAccountClients,
    run_controller_manager,
)
from control.lab import Layout
from tests.control.apiserver.conftest import RunningServer, running_apiserver

SELF_SUBJECT_REVIEWS = Resource(
    "authentication.k8s.io", "v1", "selfsubjectreviews", "SelfSubjectReview", namespaced=False
)
SYSTEM = "kube-system"
WAIT = 10.0


def token_options(tmp_path: Path) -> dict[str, Any]:
    """The API server options that make it issue and accept ServiceAccount tokens (the lab's keys)."""
    pki = Layout.resolve(tmp_path / "lab").pki
    return {
        "service_account_signing_key_file": pki.service_account_key,
        "service_account_key_files": (pki.service_account_public_key,),
    }


def manager_config(tmp_path: Path) -> ClientConfig:
    """The controller manager's own kubeconfig: user system:kube-controller-manager."""
    return load_kubeconfig(Layout.resolve(tmp_path / "lab").component_kubeconfig("controller-manager"))


@asynccontextmanager
async def clients(tmp_path: Path, server: RunningServer) -> AsyncIterator[tuple[RESTClient, RESTClient]]:
    """(admin client, the manager's own client)."""
    admin = ClientConfig(
        server=server.url,
        ca_data=server.ca_file.read_bytes(),
        client_cert_data=server.cert_file.read_bytes(),
        client_key_data=server.key_file.read_bytes(),
    )
    async with RESTClient(admin) as admin_client, RESTClient(manager_config(tmp_path)) as manager:
        yield admin_client, manager


async def whoami(client: RESTClient) -> str:
    review = await client.create(SELF_SUBJECT_REVIEWS, {"apiVersion": "authentication.k8s.io/v1"})
    return review["status"]["userInfo"]["username"]


async def eventually(check: Callable[[], Awaitable[Any]], *, what: str) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` after WAIT seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while True:
        result = await check()
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last saw {result!r}")
        await asyncio.sleep(0.02)


@asynccontextmanager
async def manager_running(config: ClientConfig, *, enabled: list[str]) -> AsyncIterator[asyncio.Task[None]]:
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_controller_manager(
            config=config,
            stop=stop,
            options=ControllerOptions(use_service_account_credentials=True),
            enabled=enabled,
        )
    )
    try:
        yield task
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=WAIT)


def test_every_controller_has_a_service_account():
    assert set(CONTROLLER_SERVICE_ACCOUNTS) == set(CONTROLLER_MODULES)


async def test_each_account_gets_its_own_certificate_free_client(tmp_path):
    async with (
        running_apiserver(tmp_path, **token_options(tmp_path)) as server,
        clients(tmp_path, server) as (admin, manager),
    ):
        accounts = ServiceAccountClients(config=manager_config(tmp_path), requester=manager)
        try:
            replicasets = await accounts.client("replicaset-controller")
            assert await accounts.client("replicaset-controller") is replicasets
            jobs = await accounts.client("job-controller")
            assert await whoami(replicasets) == "system:serviceaccount:kube-system:replicaset-controller"
            assert await whoami(jobs) == "system:serviceaccount:kube-system:job-controller"
            assert await whoami(manager) == "system:kube-controller-manager"
            assert replicasets.config.client_cert_data is None
            account = await admin.get(SERVICE_ACCOUNTS, "replicaset-controller", namespace=SYSTEM)
            assert account["metadata"]["namespace"] == SYSTEM
        finally:
            await accounts.close()
        assert replicasets.closed and jobs.closed


async def test_without_token_support_start_up_fails_naming_the_option(tmp_path):
    # The lab's server options sign tokens; this server is one without a signing key.
    async with running_apiserver(
        tmp_path, service_account_signing_key_file=None, service_account_key_files=()
    ):
        with pytest.raises(ControllerCredentialsError, match="use_service_account_credentials") as caught:
            await run_controller_manager(
                config=manager_config(tmp_path),
                stop=asyncio.Event(),
                options=ControllerOptions(use_service_account_credentials=True),
                enabled=["replicaset"],
            )
    assert "does not serve TokenRequest" in str(caught.value)


async def test_tokens_are_renewed_before_they_expire(tmp_path):
    async with (
        running_apiserver(tmp_path, **token_options(tmp_path)) as server,
        clients(tmp_path, server) as (_, manager),
    ):
        clock = FakeClock()
        source = service_account_token_source(
            manager, namespace=SYSTEM, name="job-controller", ensure_account=True, clock=clock
        )
        first = await source.token()
        clock.advance(0.79 * 3600)
        assert await source.token() == first
        clock.advance(0.01 * 3600)
        second = await source.token()
        assert second != first
        async with RESTClient(manager_config(tmp_path).with_token_source(source)) as as_account:
            assert await whoami(as_account) == "system:serviceaccount:kube-system:job-controller"


async def test_a_refused_token_is_replaced_and_the_request_retried(tmp_path):
    """Deleting the ServiceAccount voids its tokens (401); the client's next request gets a new
    token — the account recreated by the token source — and goes through."""
    async with (
        running_apiserver(tmp_path, **token_options(tmp_path)) as server,
        clients(tmp_path, server) as (admin, manager),
    ):
        accounts = ServiceAccountClients(config=manager_config(tmp_path), requester=manager)
        try:
            client = await accounts.client("replicaset-controller")
            before = await admin.get(SERVICE_ACCOUNTS, "replicaset-controller", namespace=SYSTEM)
            await admin.delete(SERVICE_ACCOUNTS, "replicaset-controller", namespace=SYSTEM)
            assert await whoami(client) == "system:serviceaccount:kube-system:replicaset-controller"
            after = await admin.get(SERVICE_ACCOUNTS, "replicaset-controller", namespace=SYSTEM)
            assert after["metadata"]["uid"] != before["metadata"]["uid"]
        finally:
            await accounts.close()


async def test_a_token_of_a_deleted_account_is_refused_without_a_source(tmp_path):
    """The server side of the test above: the old token alone, as a static token, gets 401."""
    async with (
        running_apiserver(tmp_path, **token_options(tmp_path)) as server,
        clients(tmp_path, server) as (admin, manager),
    ):
        source = service_account_token_source(
            manager, namespace=SYSTEM, name="job-controller", ensure_account=True
        )
        token = await source.token()
        await admin.delete(SERVICE_ACCOUNTS, "job-controller", namespace=SYSTEM)
        static = ClientConfig(server=server.url, ca_data=server.ca_file.read_bytes(), token=token)
        async with RESTClient(static) as stale:
            with pytest.raises(errors.UnauthorizedError):
                await whoami(stale)


# --- attribution: under RBAC with the bootstrap policy, controllers do what the manager may not --


def test_the_bootstrap_policy_has_a_role_for_every_controller_account():
    assert set(CONTROLLER_SERVICE_ACCOUNTS.values()) <= set(controller_service_accounts())


async def test_under_rbac_the_controllers_write_as_their_accounts(tmp_path):
    """The manager's own user may not create pods, ReplicaSets or ServiceAccounts' neighbours;
    with every controller running as its account, the work gets done all the same."""
    async with (
        running_apiserver(tmp_path, authorization_modes=("RBAC",), **token_options(tmp_path)) as server,
        clients(tmp_path, server) as (admin, manager),
    ):
        pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
        with pytest.raises(
            errors.ForbiddenError, match='User "system:kube-controller-manager" cannot create'
        ):
            await manager.create(PODS, pod, namespace="default")

        async with manager_running(manager_config(tmp_path), enabled=list(CONTROLLER_MODULES)) as task:
            await admin.create(DEPLOYMENTS, deployment("web", replicas=2))
            await admin.create(NAMESPACES, {"metadata": {"name": "team"}})

            async def pods() -> list[dict[str, Any]]:
                listed = await admin.list(PODS, namespace="default", label_selector="app=web")
                return listed["items"] if len(listed["items"]) == 2 else []

            await eventually(pods, what="the Deployment's two pods, via its ReplicaSet")

            async def default_account() -> dict[str, Any] | None:
                try:
                    return await admin.get(SERVICE_ACCOUNTS, "default", namespace="team")
                except errors.NotFoundError:
                    return None

            await eventually(default_account, what="ServiceAccount team/default")

            async def root_ca() -> dict[str, Any] | None:
                try:
                    return await admin.get(CONFIG_MAPS, "kube-root-ca.crt", namespace="team")
                except errors.NotFoundError:
                    return None

            published = await eventually(root_ca, what="ConfigMap team/kube-root-ca.crt")
            assert published["data"]["ca.crt"] == server.ca_file.read_text()
            listed = await admin.list(SERVICE_ACCOUNTS, namespace=SYSTEM)
            names = {item["metadata"]["name"] for item in listed["items"]}
            assert set(CONTROLLER_SERVICE_ACCOUNTS.values()) <= names
            assert not task.done()


def deployment(name: str, *, replicas: int) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            },
        },
    }
