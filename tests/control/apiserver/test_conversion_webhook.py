"""CustomResourceDefinition conversion: ``strategy: None`` and a real HTTPS conversion webhook
(aiohttp, its own CA) called through a Service's endpoints or a URL, on create, get, list,
watch, update and Table reads; failing, slow and misbehaving webhooks get upstream's errors."""

from __future__ import annotations

import asyncio
import base64
import copy
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from control.apiserver.conversion import ConversionError
from control.apiserver.conversion_webhook import WebhookClientConfig, WebhookConverter
from control.apiserver.webhook_client import ClientConfig, WebhookClient
from control.pki import load_or_create_ca
from tests.control.apiserver.conftest import RunningServer, free_port, serving, webhook_tls

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
V1 = "/apis/stable.example.com/v1/namespaces/default/crontabs"
V2 = "/apis/stable.example.com/v2/namespaces/default/crontabs"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


@dataclass
class Webhook:
    """A conversion webhook: CronTab v1 ``spec.cronSpec`` <-> v2 ``spec.schedule``."""

    port: int
    ca_bundle: str
    mode: str = "ok"  # ok | fail | slow | http500 | wrong-uid | drop | rename | tamper
    reviews: list[dict[str, Any]] = field(default_factory=list)
    user_agents: list[str] = field(default_factory=list)
    released: asyncio.Event = field(default_factory=asyncio.Event)
    # what the converters under test call it with (url only: no Service to resolve)
    client: WebhookClient = field(default_factory=lambda: WebhookClient(resolve=None))

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/convert"

    async def handle(self, request: web.Request) -> web.Response:
        review = await request.json()
        self.reviews.append(review)
        self.user_agents.append(request.headers.get("User-Agent", ""))
        req = review["request"]
        if self.mode == "slow":  # answers only when the test ends
            await self.released.wait()
        if self.mode == "http500":
            return web.Response(status=500, text="boom")
        result: dict[str, Any] = {"status": "Success"}
        converted = []
        if self.mode == "fail":
            result = {"status": "Failure", "message": "cannot convert crontabs today"}
        else:
            converted = [convert(obj, req["desiredAPIVersion"]) for obj in req["objects"]]
        if self.mode == "drop":
            converted = converted[1:]
        if self.mode == "rename":
            converted[0]["metadata"]["name"] = "other"
        if self.mode == "tamper":  # labels may change; the rest of metadata is restored
            converted[0]["metadata"]["labels"] = {"converted": "yes"}
            converted[0]["metadata"]["generation"] = 99
        uid = "not-the-request" if self.mode == "wrong-uid" else req["uid"]
        response = {"uid": uid, "result": result, "convertedObjects": converted}
        return web.json_response(
            {"apiVersion": review["apiVersion"], "kind": "ConversionReview", "response": response}
        )


def convert(obj: dict[str, Any], api_version: str) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    spec = out.setdefault("spec", {})
    if api_version.endswith("/v2") and "cronSpec" in spec:
        spec["schedule"] = spec.pop("cronSpec")
    if api_version.endswith("/v1") and "schedule" in spec:
        spec["cronSpec"] = spec.pop("schedule")
    out["apiVersion"] = api_version
    return out


@pytest.fixture
async def webhook(tmp_path: Path) -> AsyncIterator[Webhook]:
    context, ca_bundle = webhook_tls(tmp_path, name="conv")
    hook = Webhook(port=free_port(), ca_bundle=ca_bundle)
    app = web.Application()
    app.router.add_post("/convert", hook.handle)
    async with serving(app, port=hook.port, context=context):
        try:
            yield hook
        finally:
            hook.released.set()
            await hook.client.close()


def crd(*, strategy: str, client_config: dict[str, Any] | None = None) -> dict[str, Any]:
    schema = {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}
    conversion: dict[str, Any] = {"strategy": strategy}
    if client_config is not None:
        conversion["webhook"] = {"clientConfig": client_config, "conversionReviewVersions": ["v1", "v1beta1"]}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "crontabs.stable.example.com"},
        "spec": {
            "group": "stable.example.com",
            "scope": "Namespaced",
            "names": {"plural": "crontabs", "singular": "crontab", "kind": "CronTab"},
            "conversion": conversion,
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": False,
                    "schema": schema,
                    "additionalPrinterColumns": [
                        {"name": "Spec", "type": "string", "jsonPath": ".spec.cronSpec"}
                    ],
                },
                {"name": "v2", "served": True, "storage": True, "schema": schema},
            ],
        },
    }


async def install(api: RunningServer, definition: dict[str, Any]) -> None:
    code, body = await api.request("POST", CRDS, body=definition)
    assert code == 201, body
    for _ in range(500):
        code, _ = await api.request("GET", V2)
        if code == 200:
            code, _ = await api.request("GET", V1)
            if code == 200:
                return
        await asyncio.sleep(0.02)
    raise AssertionError("the CRD's versions were not served in 10 s")


async def expose(api: RunningServer, webhook: Webhook) -> None:
    """Service conv:443 whose endpoints are the webhook (no endpoints controller runs here)."""
    service = {"metadata": {"name": "conv"}, "spec": {"ports": [{"name": "https", "port": 443}]}}
    code, body = await api.request("POST", "/api/v1/namespaces/default/services", body=service)
    assert code == 201, body
    endpoints = {
        "metadata": {"name": "conv"},
        "subsets": [{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"name": "https", "port": webhook.port}]}],
    }
    code, body = await api.request("POST", "/api/v1/namespaces/default/endpoints", body=endpoints)
    assert code == 201, body


def crontab(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "stable.example.com/v1",
        "kind": "CronTab",
        "metadata": {"name": name},
        "spec": spec,
    }


async def test_a_webhook_converts_every_read_and_write(apiserver: RunningServer, webhook: Webhook) -> None:
    await expose(apiserver, webhook)
    service = {"namespace": "default", "name": "conv", "path": "/convert", "port": 443}
    await install(
        apiserver, crd(strategy="Webhook", client_config={"service": service, "caBundle": webhook.ca_bundle})
    )

    code, created = await apiserver.request("POST", V1, body=crontab("nightly", cronSpec="0 3 * * *"))
    assert code == 201, created
    assert created["apiVersion"] == "stable.example.com/v1" and created["spec"] == {"cronSpec": "0 3 * * *"}
    to_storage = webhook.reviews[0]
    assert to_storage["apiVersion"] == "apiextensions.k8s.io/v1" and to_storage["kind"] == "ConversionReview"
    assert to_storage["request"]["desiredAPIVersion"] == "stable.example.com/v2"
    assert to_storage["request"]["objects"][0]["spec"] == {"cronSpec": "0 3 * * *"}
    assert webhook.user_agents[0] == "kube-apiserver-admission"

    # Stored in the storage version: reading v2 needs no webhook call.
    calls = len(webhook.reviews)
    code, stored = await apiserver.request("GET", f"{V2}/nightly")
    assert code == 200 and stored["spec"] == {"schedule": "0 3 * * *"}
    assert len(webhook.reviews) == calls
    assert stored["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]

    code, as_v1 = await apiserver.request("GET", f"{V1}/nightly")
    assert code == 200 and as_v1["spec"] == {"cronSpec": "0 3 * * *"}
    assert as_v1["metadata"] == stored["metadata"]

    await apiserver.request(
        "POST",
        V2,
        body=dict(crontab("weekly"), apiVersion="stable.example.com/v2", spec={"schedule": "@weekly"}),
    )
    calls = len(webhook.reviews)
    code, listing = await apiserver.request("GET", V1)
    assert code == 200 and listing["apiVersion"] == "stable.example.com/v1"
    assert {item["metadata"]["name"]: item["spec"] for item in listing["items"]} == {
        "nightly": {"cronSpec": "0 3 * * *"},
        "weekly": {"cronSpec": "@weekly"},
    }
    assert len(webhook.reviews) == calls + 1  # one review for the whole list
    assert len(webhook.reviews[-1]["request"]["objects"]) == 2

    code, table = await apiserver.request("GET", V1, headers={"Accept": TABLE})
    assert code == 200 and [row["cells"][1] for row in table["rows"]] == ["0 3 * * *", "@weekly"]

    as_v1["spec"]["cronSpec"] = "0 4 * * *"
    code, updated = await apiserver.request("PUT", f"{V1}/nightly", body=as_v1)
    assert code == 200 and updated["spec"] == {"cronSpec": "0 4 * * *"}, updated
    code, stored = await apiserver.request("GET", f"{V2}/nightly")
    assert stored["spec"] == {"schedule": "0 4 * * *"}

    code, patched = await apiserver.request(
        "PATCH",
        f"{V1}/nightly",
        body={"spec": {"cronSpec": "0 5 * * *"}},
        content_type="application/merge-patch+json",
    )
    assert code == 200 and patched["spec"] == {"cronSpec": "0 5 * * *"}, patched

    since = patched["metadata"]["resourceVersion"]
    async with apiserver.session.get(
        apiserver.url + V1, params={"watch": "true", "resourceVersion": since}
    ) as response:
        assert response.status == 200
        await apiserver.request(
            "POST",
            V2,
            body=dict(crontab("hourly"), apiVersion="stable.example.com/v2", spec={"schedule": "@hourly"}),
        )
        event = orjson.loads(await asyncio.wait_for(response.content.readline(), 10))
    assert event["type"] == "ADDED" and event["object"]["apiVersion"] == "stable.example.com/v1"
    assert event["object"]["spec"] == {"cronSpec": "@hourly"}

    code, deleted = await apiserver.request("DELETE", f"{V1}/nightly")
    assert code == 200, deleted
    code, _ = await apiserver.request("GET", f"{V2}/nightly")
    assert code == 404


async def test_a_failing_webhook_answers_500_with_upstreams_message(
    apiserver: RunningServer, webhook: Webhook
) -> None:
    await install(
        apiserver, crd(strategy="Webhook", client_config={"url": webhook.url, "caBundle": webhook.ca_bundle})
    )
    code, _ = await apiserver.request("POST", V1, body=crontab("nightly", cronSpec="0 3 * * *"))
    assert code == 201
    webhook.mode = "fail"
    code, failed = await apiserver.request("GET", f"{V1}/nightly")
    assert code == 500 and failed["reason"] == "InternalError", failed
    assert failed["message"] == (
        "Internal error occurred: conversion webhook for stable.example.com/v2, Kind=CronTab failed: "
        "cannot convert crontabs today"
    )
    code, failed = await apiserver.request("POST", V1, body=crontab("other", cronSpec="@daily"))
    assert (
        code == 500
        and "conversion webhook for stable.example.com/v1, Kind=CronTab failed" in failed["message"]
    )
    code, _ = await apiserver.request("GET", f"{V2}/other")
    assert code == 404  # nothing stored when the conversion failed
    code, stored = await apiserver.request("GET", f"{V2}/nightly")
    assert code == 200  # the storage version needs no conversion

    webhook.mode = "http500"
    code, failed = await apiserver.request("GET", V1)
    assert code == 500
    assert failed["message"].endswith(
        'an error on the server ("boom") has prevented the request from succeeding'
    )

    async with apiserver.session.get(
        apiserver.url + V1, params={"watch": "true", "resourceVersion": stored["metadata"]["resourceVersion"]}
    ) as response:
        assert response.status == 200
        await apiserver.request(
            "PATCH", f"{V2}/nightly", body={"spec": {"x": 1}}, content_type="application/merge-patch+json"
        )
        event = orjson.loads(await asyncio.wait_for(response.content.readline(), 10))
    assert event["type"] == "ERROR" and event["object"]["code"] == 500


async def test_strategy_none_changes_only_the_api_version(apiserver: RunningServer) -> None:
    await install(apiserver, crd(strategy="None"))
    code, created = await apiserver.request("POST", V1, body=crontab("nightly", cronSpec="0 3 * * *"))
    assert code == 201 and created["apiVersion"] == "stable.example.com/v1"
    code, as_v2 = await apiserver.request("GET", f"{V2}/nightly")
    assert code == 200 and as_v2["apiVersion"] == "stable.example.com/v2"
    assert as_v2["spec"] == {"cronSpec": "0 3 * * *"} and as_v2["metadata"] == created["metadata"]
    code, listing = await apiserver.request("GET", V1)
    assert [item["apiVersion"] for item in listing["items"]] == ["stable.example.com/v1"]


# --- the converter on its own: what upstream checks in a webhook's answer -------------------------


def objects(*names: str) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "stable.example.com/v1",
            "kind": "CronTab",
            "metadata": {
                "name": name,
                "namespace": "default",
                "uid": f"uid-{name}",
                "generation": 1,
                "labels": {"a": "b"},
            },
            "spec": {"cronSpec": "@daily"},
        }
        for name in names
    ]


def converter(
    webhook: Webhook, *, timeout: float = 5.0, versions: tuple[str, ...] = ("v1",), ca: str | None = None
) -> WebhookConverter:
    config = WebhookClientConfig(
        client=ClientConfig(url=webhook.url, ca_bundle=webhook.ca_bundle if ca is None else ca),
        review_versions=versions,
    )
    return WebhookConverter(config=config, client=webhook.client, timeout=timeout)


async def test_converted_objects_keep_their_metadata_but_labels(webhook: Webhook) -> None:
    webhook.mode = "tamper"
    (out,) = await converter(webhook).convert(objects("a"), api_version="stable.example.com/v2")
    assert out["spec"] == {"schedule": "@daily"}
    assert out["metadata"] == {
        "name": "a",
        "namespace": "default",
        "uid": "uid-a",
        "generation": 1,
        "labels": {"converted": "yes"},
    }


async def test_objects_already_in_the_version_are_not_sent(webhook: Webhook) -> None:
    mixed = objects("a", "b")
    mixed[0] = convert(mixed[0], "stable.example.com/v2")
    out = await converter(webhook).convert(mixed, api_version="stable.example.com/v2")
    assert [o["spec"] for o in out] == [{"schedule": "@daily"}, {"schedule": "@daily"}]
    assert [o["metadata"]["name"] for o in webhook.reviews[0]["request"]["objects"]] == ["b"]
    assert await converter(webhook).convert(out, api_version="stable.example.com/v2") == out
    assert len(webhook.reviews) == 1


async def test_review_versions_are_negotiated(webhook: Webhook) -> None:
    await converter(webhook, versions=("v2", "v1beta1", "v1")).convert(
        objects("a"), api_version="stable.example.com/v2"
    )
    assert webhook.reviews[0]["apiVersion"] == "apiextensions.k8s.io/v1beta1"
    with pytest.raises(ConversionError, match=r"^no supported conversion review versions$"):
        await converter(webhook, versions=("v2",)).convert(objects("a"), api_version="stable.example.com/v2")


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("wrong-uid", r"failed: expected response.uid=\"[0-9a-f-]+\", got \"not-the-request\"$"),
        (
            "drop",
            r"^conversion webhook for stable.example.com/v1, Kind=CronTab returned 1 objects, expected 2$",
        ),
        ("rename", r"returned invalid converted object at index 0: must have the same name: a != other$"),
        ("fail", r"failed: cannot convert crontabs today$"),
    ],
)
async def test_bad_answers_are_refused(webhook: Webhook, mode: str, message: str) -> None:
    webhook.mode = mode
    with pytest.raises(ConversionError, match=message):
        await converter(webhook).convert(objects("a", "b"), api_version="stable.example.com/v2")


async def test_a_slow_webhook_times_out(webhook: Webhook) -> None:
    webhook.mode = "slow"
    started = asyncio.get_running_loop().time()
    with pytest.raises(ConversionError) as caught:
        await converter(webhook, timeout=0.3).convert(objects("a"), api_version="stable.example.com/v2")
    assert asyncio.get_running_loop().time() - started < 3
    assert str(caught.value) == (
        f'conversion webhook for stable.example.com/v1, Kind=CronTab failed: Post "{webhook.url}?timeout=300ms": '
        "context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
    )


async def test_an_untrusted_or_broken_ca_bundle_fails(webhook: Webhook, tmp_path: Path) -> None:
    load_or_create_ca(cert_file=tmp_path / "other.crt", key_file=tmp_path / "other.key")
    wrong = base64.b64encode((tmp_path / "other.crt").read_bytes()).decode()
    with pytest.raises(ConversionError, match=r"failed: Post .*: tls: failed to verify certificate: "):
        await converter(webhook, ca=wrong).convert(objects("a"), api_version="stable.example.com/v2")
    with pytest.raises(ConversionError, match="failed: could not get REST client: invalid caBundle"):
        await converter(webhook, ca="not base64!").convert(objects("a"), api_version="stable.example.com/v2")
    assert webhook.reviews == []


async def test_a_service_without_endpoints_fails(apiserver: RunningServer, webhook: Webhook) -> None:
    service = {"metadata": {"name": "conv"}, "spec": {"ports": [{"name": "https", "port": 443}]}}
    await apiserver.request("POST", "/api/v1/namespaces/default/services", body=service)
    config = {
        "service": {"namespace": "default", "name": "conv", "path": "/convert"},
        "caBundle": webhook.ca_bundle,
    }
    await install(apiserver, crd(strategy="Webhook", client_config=config))
    code, failed = await apiserver.request("POST", V1, body=crontab("nightly", cronSpec="@daily"))
    assert code == 500
    assert failed["message"] == (
        "Internal error occurred: conversion webhook for stable.example.com/v1, Kind=CronTab failed: "
        'Post "https://conv.default.svc:443/convert?timeout=30s": endpoints "conv" not found'
    )
    code, _ = await apiserver.request(
        "POST", "/api/v1/namespaces/default/endpoints", body={"metadata": {"name": "conv"}, "subsets": []}
    )
    assert code == 201
    code, failed = await apiserver.request("POST", V1, body=crontab("nightly", cronSpec="@daily"))
    assert code == 500 and failed["message"].endswith(': no endpoints available for service "conv"')
