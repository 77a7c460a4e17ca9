"""The storage admission plugins: DefaultStorageClass (a claim naming no class gets the default
one), StorageObjectInUseProtection (the protection finalizers on create) and
PersistentVolumeClaimResize (growing a claim needs a class that allows expansion), through the
real API server and, for the choice of default, on its own."""

from __future__ import annotations

from typing import Any

import pytest

from control.apiserver.storage_admission import default_class, is_default_class
from control.client import errors
from control.client.config import load_kubeconfig
from control.client.rest import Resource, RESTClient
from tests.control.apiserver.conftest import apiserver  # noqa: F401  (the shared fixture)

CLAIMS = Resource(group="", version="v1", plural="persistentvolumeclaims", kind="PersistentVolumeClaim")
VOLUMES = Resource(
    group="", version="v1", plural="persistentvolumes", kind="PersistentVolume", namespaced=False
)
CLASSES = Resource(
    group="storage.k8s.io", version="v1", plural="storageclasses", kind="StorageClass", namespaced=False
)


def storage_class(
    name: str, *, created: str = "2024-01-01T00:00:00Z", annotation: str | None = "true"
) -> dict:
    annotations = {} if annotation is None else {"storageclass.kubernetes.io/is-default-class": annotation}
    return {"metadata": {"name": name, "creationTimestamp": created, "annotations": annotations}}


def test_only_an_exact_true_marks_a_default_class() -> None:
    assert is_default_class(storage_class("a"))
    assert not is_default_class(storage_class("b", annotation="True"))
    assert not is_default_class(storage_class("c", annotation=None))
    beta = {
        "metadata": {"name": "d", "annotations": {"storageclass.beta.kubernetes.io/is-default-class": "true"}}
    }
    assert is_default_class(beta)


def test_the_newest_default_wins_and_ties_go_to_the_smaller_name() -> None:
    older = storage_class("older", created="2024-01-01T00:00:00Z")
    newer = storage_class("newer", created="2024-02-01T00:00:00Z")
    plain = storage_class("plain", created="2025-01-01T00:00:00Z", annotation=None)
    assert default_class([older, newer, plain])["metadata"]["name"] == "newer"
    twin_b = storage_class("b", created="2024-03-01T00:00:00Z")
    twin_a = storage_class("a", created="2024-03-01T00:00:00Z")
    assert default_class([twin_b, twin_a])["metadata"]["name"] == "a"
    assert default_class([plain]) is None
    assert default_class([]) is None


@pytest.fixture
async def client(apiserver) -> Any:  # noqa: F811
    async with RESTClient(load_kubeconfig(apiserver.data_dir / "kubeconfig")) as client:
        yield client


def claim(name: str, **spec: Any) -> dict:
    return {
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}, **spec},
    }


async def test_a_claim_without_a_class_gets_the_default_one(client: RESTClient) -> None:
    created = await client.create(CLAIMS, claim("before"), namespace="default")
    assert "storageClassName" not in created["spec"]  # no default class yet: left alone
    await client.create(
        CLASSES,
        {
            "metadata": {
                "name": "standard",
                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
            },
            "provisioner": "kubelab.dev/local-path",
        },
    )
    await client.create(CLASSES, {"metadata": {"name": "fast"}, "provisioner": "kubelab.dev/local-path"})
    defaulted = await client.create(CLAIMS, claim("after"), namespace="default")
    assert defaulted["spec"]["storageClassName"] == "standard"
    chosen = await client.create(CLAIMS, claim("chosen", storageClassName="fast"), namespace="default")
    assert chosen["spec"]["storageClassName"] == "fast"
    empty = await client.create(CLAIMS, claim("classless", storageClassName=""), namespace="default")
    assert empty["spec"]["storageClassName"] == ""
    beta = claim("beta")
    beta["metadata"]["annotations"] = {"volume.beta.kubernetes.io/storage-class": "fast"}
    assert "storageClassName" not in (await client.create(CLAIMS, beta, namespace="default"))["spec"]


async def test_an_update_is_not_defaulted(client: RESTClient) -> None:
    created = await client.create(CLAIMS, claim("old"), namespace="default")
    await client.create(
        CLASSES,
        {
            "metadata": {
                "name": "standard",
                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
            },
            "provisioner": "kubelab.dev/local-path",
        },
    )
    created["metadata"]["labels"] = {"touched": "yes"}
    updated = await client.replace(CLAIMS, created)
    assert "storageClassName" not in updated["spec"]


async def test_new_claims_and_volumes_get_their_protection_finalizer_once(client: RESTClient) -> None:
    body = claim("protected")
    body["metadata"]["finalizers"] = ["example.com/mine"]
    created = await client.create(CLAIMS, body, namespace="default")
    assert created["metadata"]["finalizers"] == ["example.com/mine", "kubernetes.io/pvc-protection"]
    again = claim("again")
    again["metadata"]["finalizers"] = ["kubernetes.io/pvc-protection"]
    assert (await client.create(CLAIMS, again, namespace="default"))["metadata"]["finalizers"] == [
        "kubernetes.io/pvc-protection"
    ]
    volume = await client.create(
        VOLUMES,
        {
            "metadata": {"name": "pv-1"},
            "spec": {
                "capacity": {"storage": "1Gi"},
                "accessModes": ["ReadWriteOnce"],
                "hostPath": {"path": "/srv"},
            },
        },
    )
    assert volume["metadata"]["finalizers"] == ["kubernetes.io/pv-protection"]
    assert volume["status"] == {"phase": "Pending"}
    assert created["status"] == {"phase": "Pending"}


async def test_an_invalid_claim_is_refused_with_upstream_causes(client: RESTClient) -> None:
    with pytest.raises(errors.InvalidError) as refused:
        await client.create(CLAIMS, claim("bad", accessModes=[]), namespace="default")
    assert "spec.accessModes: Required value: at least 1 access mode is required" in str(refused.value)


async def bound(client: RESTClient, body: dict) -> dict:
    """``body`` created, and marked Bound as the PV controller would."""
    created = await client.create(CLAIMS, body, namespace="default")
    created["status"] = {"phase": "Bound"}
    return await client.replace(CLAIMS, created, subresource="status")


async def grow(client: RESTClient, name: str, size: str) -> dict:
    return await client.patch(
        CLAIMS, name, {"spec": {"resources": {"requests": {"storage": size}}}}, namespace="default"
    )


async def test_a_bound_claim_grows_only_when_its_class_allows_expansion(client: RESTClient) -> None:
    await client.create(CLASSES, {"metadata": {"name": "fixed"}, "provisioner": "kubelab.dev/local-path"})
    await client.create(
        CLASSES,
        {
            "metadata": {"name": "elastic"},
            "provisioner": "kubelab.dev/local-path",
            "allowVolumeExpansion": True,
        },
    )
    await client.create(CLAIMS, claim("pending", storageClassName="elastic"), namespace="default")
    with pytest.raises(errors.InvalidError):  # an unbound claim's spec is immutable (validation)
        await grow(client, "pending", "2Gi")
    for name, storage_class in (("static", ""), ("fixed", "fixed")):
        await bound(client, claim(name, storageClassName=storage_class))
        with pytest.raises(errors.ForbiddenError) as refused:
            await grow(client, name, "2Gi")
        assert (
            f'persistentvolumeclaims "{name}" is forbidden: only dynamically provisioned pvc can be resized '
            "and the storageclass that provisions the pvc must support resize"
        ) in str(refused.value)
    await bound(client, claim("elastic", storageClassName="elastic"))
    grown = await grow(client, "elastic", "2Gi")
    assert grown["spec"]["resources"]["requests"]["storage"] == "2Gi"
    same = await grow(client, "fixed", "1024Mi")  # not larger: nothing to check
    assert same["spec"]["resources"]["requests"]["storage"] == "1024Mi"
