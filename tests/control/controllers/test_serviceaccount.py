"""The ServiceAccount controller against the real API server."""

from __future__ import annotations

import pytest

from control.client import errors
from control.controllers import serviceaccount
from control.controllers.kinds import NAMESPACES, SERVICE_ACCOUNTS
from control.controllers.serviceaccount import ServiceAccountController
from tests.control.apiserver.conftest import apiserver  # noqa: F401  (the shared fixture)
from tests.control.controllers.harness import running


@pytest.fixture
async def cluster(apiserver):  # noqa: F811
    async with running(apiserver, serviceaccount.new_controller) as cluster:
        yield cluster


async def default_account(cluster, namespace: str) -> dict:
    return await cluster.client.get(SERVICE_ACCOUNTS, "default", namespace=namespace)


async def test_every_existing_and_new_namespace_gets_a_default_account(cluster):
    for namespace in ("default", "kube-system", "kube-public", "kube-node-lease"):
        account = await cluster.wait_for(
            lambda ns=namespace: default_account(cluster, ns), what=f"{namespace}"
        )
        assert account["metadata"]["name"] == "default"
    await cluster.create_namespace("team-a")
    account = await cluster.wait_for(lambda: default_account(cluster, "team-a"), what="team-a's account")
    assert set(account["metadata"]) >= {"uid", "creationTimestamp"}
    assert "labels" not in account["metadata"]  # just a name, as upstream


async def test_a_deleted_default_account_is_recreated(cluster):
    await cluster.create_namespace("team-b")
    first = await cluster.wait_for(lambda: default_account(cluster, "team-b"), what="the account")
    await cluster.client.delete(SERVICE_ACCOUNTS, "default", namespace="team-b")

    async def recreated():
        account = await default_account(cluster, "team-b")
        return account["metadata"]["uid"] != first["metadata"]["uid"]

    await cluster.wait_for(recreated, what="the account to come back")


async def test_other_accounts_are_not_touched(cluster):
    await cluster.create_namespace("team-c")
    await cluster.wait_for(lambda: default_account(cluster, "team-c"), what="the account")
    await cluster.client.create(SERVICE_ACCOUNTS, {"metadata": {"name": "builder", "namespace": "team-c"}})
    await cluster.client.delete(SERVICE_ACCOUNTS, "builder", namespace="team-c")
    controller: ServiceAccountController = cluster.controllers[0]
    await controller.reconcile("team-c")
    with pytest.raises(errors.NotFoundError):
        await cluster.client.get(SERVICE_ACCOUNTS, "builder", namespace="team-c")


async def test_terminating_and_unknown_namespaces_get_nothing(cluster):
    controller: ServiceAccountController = cluster.controllers[0]
    await controller.reconcile("no-such-namespace")  # neither an error nor a create
    await cluster.create_namespace("doomed")
    await cluster.wait_for(lambda: default_account(cluster, "doomed"), what="the account")
    await cluster.client.delete(NAMESPACES, "doomed")  # held by its finalizer: stays Terminating
    await cluster.client.delete(SERVICE_ACCOUNTS, "default", namespace="doomed")
    namespaces = cluster.ctx.informers.informer(NAMESPACES)

    async def terminating_in_cache():
        cached = namespaces.cache.get_by_key("doomed")
        return cached and cached.get("status", {}).get("phase") == "Terminating"

    await cluster.wait_for(terminating_in_cache, what="the terminating namespace in the cache")
    await controller.reconcile("doomed")
    with pytest.raises(errors.NotFoundError):
        await default_account(cluster, "doomed")


def test_needs_an_account_to_manage():
    with pytest.raises(ValueError, match="at least one"):
        ServiceAccountController(None, service_accounts=())  # type: ignore[arg-type]
