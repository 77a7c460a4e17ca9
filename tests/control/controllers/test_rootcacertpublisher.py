"""The root CA publisher against the real API server."""

from __future__ import annotations

import pytest

from control.client import errors
from control.controllers import rootcacertpublisher
from control.controllers.kinds import CONFIG_MAPS, NAMESPACES
from control.controllers.manager import ControllerContext
from control.controllers.rootcacertpublisher import (
    DESCRIPTION,
    DESCRIPTION_ANNOTATION,
    ROOT_CA_CONFIG_MAP,
    RootCACertPublisher,
)
from tests.control.apiserver.conftest import apiserver  # noqa: F401  (the shared fixture)
from tests.control.controllers.harness import Cluster, running


@pytest.fixture
async def cluster(apiserver):  # noqa: F811
    async with running(apiserver, rootcacertpublisher.new_controller) as cluster:
        yield cluster


def bundle(cluster: Cluster) -> str:
    return cluster.client.config.ca_data.decode()


async def published(cluster: Cluster, namespace: str) -> dict | None:
    config_map = await cluster.client.get(CONFIG_MAPS, ROOT_CA_CONFIG_MAP, namespace=namespace)
    if config_map.get("data") != {"ca.crt": bundle(cluster)}:
        return None
    if config_map["metadata"].get("annotations", {}).get(DESCRIPTION_ANNOTATION) != DESCRIPTION:
        return None
    return config_map


async def test_every_namespace_gets_the_bundle(cluster: Cluster) -> None:
    assert "BEGIN CERTIFICATE" in bundle(cluster)
    for namespace in ("default", "kube-system", "kube-public", "kube-node-lease"):
        await cluster.wait_for(lambda ns=namespace: published(cluster, ns), what=f"{namespace}'s bundle")
    await cluster.create_namespace("team-a")
    await cluster.wait_for(lambda: published(cluster, "team-a"), what="the new namespace's bundle")


async def test_a_deleted_bundle_comes_back_and_a_changed_one_is_corrected(cluster: Cluster) -> None:
    first = await cluster.wait_for(lambda: published(cluster, "default"), what="the bundle")
    await cluster.client.delete(CONFIG_MAPS, ROOT_CA_CONFIG_MAP, namespace="default")

    async def recreated() -> dict | None:
        current = await published(cluster, "default")
        return current if current and current["metadata"]["uid"] != first["metadata"]["uid"] else None

    second = await cluster.wait_for(recreated, what="the bundle to come back")
    await cluster.client.replace(
        CONFIG_MAPS,
        {**second, "metadata": {**second["metadata"], "annotations": {}}, "data": {"ca.crt": "forged"}},
        namespace="default",
    )

    async def corrected() -> dict | None:
        current = await published(cluster, "default")
        return current if current and current["metadata"]["uid"] == second["metadata"]["uid"] else None

    await cluster.wait_for(corrected, what="the bundle to be corrected in place")


async def test_terminating_and_unknown_namespaces_get_nothing(cluster: Cluster) -> None:
    controller: RootCACertPublisher = cluster.controllers[0]
    await controller.reconcile("no-such-namespace")  # neither an error nor a create
    await cluster.create_namespace("doomed")
    await cluster.wait_for(lambda: published(cluster, "doomed"), what="the bundle")
    await cluster.client.delete(NAMESPACES, "doomed")  # held by its finalizer: stays Terminating
    namespaces = cluster.ctx.informers.informer(NAMESPACES)

    async def terminating_in_cache() -> bool:
        cached = namespaces.cache.get_by_key("doomed")
        return bool(cached and cached["metadata"].get("deletionTimestamp"))

    await cluster.wait_for(terminating_in_cache, what="the terminating namespace in the cache")
    await cluster.client.delete(CONFIG_MAPS, ROOT_CA_CONFIG_MAP, namespace="doomed")
    await controller.reconcile("doomed")
    with pytest.raises(errors.NotFoundError):
        await cluster.client.get(CONFIG_MAPS, ROOT_CA_CONFIG_MAP, namespace="doomed")


async def test_needs_a_bundle(cluster: Cluster) -> None:
    ctx = ControllerContext(client=cluster.client, informers=cluster.ctx.informers)
    with pytest.raises(ValueError, match="needs a CA bundle"):
        RootCACertPublisher(ctx, root_ca=b"")
