"""Admission webhooks end to end: a real HTTPS webhook server (aiohttp, its own CA) called by the
in-process API server through ``clientConfig.url`` or a Service, for refusals, warnings, JSON
patches, failure policies, timeouts, selectors, rules, dry runs and reinvocation; plus the
configuration kinds' defaults, validation and Table.

The API server follows the configurations from a watch, so a test that has just created one
waits until it is in effect: :func:`configure` also creates a *barrier* configuration of the
same kind (sorted first, matching only ConfigMaps labelled ``barrier``) and sends dry-run probes
until the webhook server has seen one — the watch delivers events in order, so by then the
configuration created before the barrier is in effect too.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from control.apiserver.admission import CREATE, AdmissionRequest
from control.apiserver.admission_metrics import AdmissionMetrics
from control.apiserver.authn import UserInfo
from control.apiserver.authorization import AlwaysAllow, AuthorizerChain
from control.apiserver.errors import StatusError
from control.apiserver.resource_store import ResourceStore
from control.apiserver.webhook_admission import WebhookAdmission, WebhookConfigurations
from control.resources.registry import ResourceType
from tests.control.apiserver.conftest import RunningServer, free_port, serving, webhook_tls

GROUP_PATH = "/apis/admissionregistration.k8s.io/v1"
VALIDATING = f"{GROUP_PATH}/validatingwebhookconfigurations"
MUTATING = f"{GROUP_PATH}/mutatingwebhookconfigurations"
CONFIGMAPS = "/api/v1/namespaces/default/configmaps"
CONFIGMAP_RULE = {
    "operations": ["CREATE"],
    "apiGroups": [""],
    "apiVersions": ["v1"],
    "resources": ["configmaps"],
}

Answer = Callable[[dict[str, Any]], Awaitable[dict[str, Any]] | dict[str, Any] | web.Response]


def allow(review: dict[str, Any], **response: Any) -> dict[str, Any]:
    """A v1 AdmissionReview answer to ``review``."""
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {"uid": review["request"]["uid"], "allowed": True, **response},
    }


def deny(review: dict[str, Any], **result: Any) -> dict[str, Any]:
    """A refusal; its metav1.Status (``result`` in Go) travels as ``response.status``."""
    return allow(review, allowed=False, status=result)


def patch(review: dict[str, Any], operations: list[dict[str, Any]]) -> dict[str, Any]:
    encoded = base64.b64encode(orjson.dumps(operations)).decode()
    return allow(review, patch=encoded, patchType="JSONPatch")


@dataclass
class WebhookServer:
    """HTTPS on 127.0.0.1 with a certificate for ``hooks.default.svc``; ``answers`` by path."""

    port: int
    ca_bundle: str
    answers: dict[str, Answer] = field(default_factory=dict)
    reviews: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    queries: list[str] = field(default_factory=list)
    released: asyncio.Event = field(default_factory=asyncio.Event)
    barriers: itertools.count = field(default_factory=itertools.count)

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.port}{path}"

    def client_config(self, path: str) -> dict[str, Any]:
        return {"url": self.url(path), "caBundle": self.ca_bundle}

    async def handle(self, request: web.Request) -> web.Response:
        review = await request.json()
        self.reviews.setdefault(request.path, []).append(review)
        self.queries.append(request.query_string)
        answer = self.answers.get(request.path, allow)(review)
        if isinstance(answer, web.Response):
            return answer
        if not isinstance(answer, dict):
            answer = await answer
        return web.json_response(answer)

    async def hold(self, review: dict[str, Any]) -> dict[str, Any]:
        """An answer that comes only when the test ends (for timeouts)."""
        await self.released.wait()
        return allow(review)


@pytest.fixture
async def hooks(tmp_path: Path) -> AsyncIterator[WebhookServer]:
    context, ca_bundle = webhook_tls(tmp_path, name="hooks")
    server = WebhookServer(port=free_port(), ca_bundle=ca_bundle)
    app = web.Application()
    app.router.add_post("/{path:.*}", server.handle)
    async with serving(app, port=server.port, context=context):
        try:
            yield server
        finally:
            server.released.set()


def webhook(name: str, client_config: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "name": name,
        "clientConfig": client_config,
        "rules": [CONFIGMAP_RULE],
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
        **fields,
    }


def configuration(kind: str, name: str, *webhooks: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": kind,
        "metadata": {"name": name},
        "webhooks": list(webhooks),
    }


async def configure(api: RunningServer, server: WebhookServer, path: str, config: dict[str, Any]) -> None:
    """Create ``config`` at ``path`` and wait until the API server applies it (see the module doc)."""
    code, body = await api.request("POST", path, body=config)
    assert code == 201, body
    number = next(server.barriers)
    barrier_path = f"/barrier-{number}"
    barrier = webhook(
        "barrier.kubelab.test",
        server.client_config(barrier_path),
        objectSelector={"matchLabels": {"barrier": str(number)}},
        failurePolicy="Ignore",
    )
    code, body = await api.request(
        "POST", path, body=configuration(config["kind"], f"000-barrier-{number}", barrier)
    )
    assert code == 201, body
    probe = {"metadata": {"name": "probe", "labels": {"barrier": str(number)}}}
    async with asyncio.timeout(10):
        while not server.reviews.get(barrier_path):
            await api.request("POST", CONFIGMAPS, body=probe, params={"dryRun": "All"})
            await asyncio.sleep(0.01)
    server.reviews.pop(barrier_path)
    for seen in server.reviews.values():  # the probes some webhooks under test may have seen
        seen[:] = [r for r in seen if r["request"]["name"] != "probe"]


def configmap(name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}}


async def repeat_until(
    api: RunningServer, *, method: str, path: str, body: Any, until: Callable[[int], bool], **options: Any
) -> tuple[int, Any]:
    """Repeat a request until its status satisfies ``until`` (a configuration change took effect)."""
    async with asyncio.timeout(10):
        while True:
            code, answer = await api.request(method, path, body=body, **options)
            if until(code):
                return code, answer
            await asyncio.sleep(0.01)


# --- refusing, allowing, warning ------------------------------------------------------------------


async def test_a_refusal_carries_the_webhooks_status_and_name(apiserver: RunningServer, hooks: WebhookServer):
    hooks.answers["/deny"] = lambda review: deny(
        review, code=403, reason="Forbidden", message="no configmaps today", details={"name": "x"}
    )
    config = configuration(
        "ValidatingWebhookConfiguration", "deny", webhook("deny.kubelab.test", hooks.client_config("/deny"))
    )
    await configure(apiserver, hooks, VALIDATING, config)

    code, body = await apiserver.request("POST", CONFIGMAPS, body=configmap("web"))
    assert code == 403, body
    assert body["reason"] == "Forbidden"
    assert body["message"] == 'admission webhook "deny.kubelab.test" denied the request: no configmaps today'
    assert body["details"] == {"name": "x"}
    code, _ = await apiserver.request("GET", f"{CONFIGMAPS}/web")
    assert code == 404

    [review] = hooks.reviews["/deny"]
    assert (review["apiVersion"], review["kind"]) == ("admission.k8s.io/v1", "AdmissionReview")
    request = review["request"]
    assert request["uid"]
    assert request["kind"] == request["requestKind"] == {"group": "", "version": "v1", "kind": "ConfigMap"}
    assert (
        request["resource"]
        == request["requestResource"]
        == {"group": "", "version": "v1", "resource": "configmaps"}
    )
    assert (request["name"], request["namespace"], request["operation"]) == ("web", "default", "CREATE")
    assert request["userInfo"]["username"] == "kubernetes-admin"
    assert "system:masters" in request["userInfo"]["groups"]
    assert request["object"]["kind"] == "ConfigMap" and request["object"]["metadata"]["name"] == "web"
    assert request["oldObject"] is None
    assert request["dryRun"] is False
    assert request["options"] == {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"}
    assert hooks.queries[-1] == "timeout=10s"


async def test_a_refusal_without_code_or_message_is_a_400(apiserver: RunningServer, hooks: WebhookServer):
    hooks.answers["/deny"] = lambda review: deny(review)
    config = configuration(
        "ValidatingWebhookConfiguration", "deny", webhook("deny.kubelab.test", hooks.client_config("/deny"))
    )
    await configure(apiserver, hooks, VALIDATING, config)
    code, body = await apiserver.request("POST", CONFIGMAPS, body=configmap("web"))
    assert code == 400
    assert body["message"] == 'admission webhook "deny.kubelab.test" denied the request without explanation'


async def test_warnings_of_an_allowing_webhook_become_warning_headers(
    apiserver: RunningServer, hooks: WebhookServer
):
    hooks.answers["/warn"] = lambda review: allow(
        review, warnings=["configmaps are deprecated here", "really"]
    )
    config = configuration(
        "ValidatingWebhookConfiguration", "warn", webhook("warn.kubelab.test", hooks.client_config("/warn"))
    )
    await configure(apiserver, hooks, VALIDATING, config)
    async with apiserver.session.post(
        apiserver.url + CONFIGMAPS,
        data=orjson.dumps(configmap("web")),
        headers={"Content-Type": "application/json"},
    ) as response:
        assert response.status == 201
        assert response.headers.getall("Warning") == [
            '299 - "configmaps are deprecated here"',
            '299 - "really"',
        ]


# --- mutating ---------------------------------------------------------------------------------------


async def test_a_json_patch_is_stored_and_validating_webhooks_see_it(
    apiserver: RunningServer, hooks: WebhookServer
):
    hooks.answers["/label"] = lambda review: patch(
        review,
        [
            {"op": "add", "path": "/metadata/labels/injected", "value": "yes"},
            {"op": "add", "path": "/data", "value": {"from": "webhook"}},
        ],
    )
    mutating = configuration(
        "MutatingWebhookConfiguration", "label", webhook("label.kubelab.test", hooks.client_config("/label"))
    )
    validating = configuration(
        "ValidatingWebhookConfiguration", "look", webhook("look.kubelab.test", hooks.client_config("/look"))
    )
    await configure(apiserver, hooks, MUTATING, mutating)
    await configure(apiserver, hooks, VALIDATING, validating)

    code, created = await apiserver.request("POST", CONFIGMAPS, body=configmap("web", app="web"))
    assert code == 201, created
    assert created["metadata"]["labels"] == {"app": "web", "injected": "yes"}
    _, stored = await apiserver.request("GET", f"{CONFIGMAPS}/web")
    assert stored["metadata"]["labels"] == {"app": "web", "injected": "yes"}
    assert stored["data"] == {"from": "webhook"}
    [seen] = hooks.reviews["/look"]
    assert seen["request"]["object"]["metadata"]["labels"]["injected"] == "yes"


async def test_a_patch_that_does_not_apply_is_an_internal_error(
    apiserver: RunningServer, hooks: WebhookServer
):
    hooks.answers["/bad"] = lambda review: patch(review, [{"op": "remove", "path": "/spec/nothing"}])
    config = configuration(
        "MutatingWebhookConfiguration", "bad", webhook("bad.kubelab.test", hooks.client_config("/bad"))
    )
    await configure(apiserver, hooks, MUTATING, config)
    code, body = await apiserver.request("POST", CONFIGMAPS, body=configmap("web"))
    assert code == 500 and body["reason"] == "InternalError", body


async def test_an_update_a_webhook_made_invalid_is_refused(apiserver: RunningServer, hooks: WebhookServer):
    await apiserver.request("POST", CONFIGMAPS, body=configmap("web"))
    hooks.answers["/spoil"] = lambda review: patch(
        review, [{"op": "add", "path": "/data", "value": {"no way": "x"}}]
    )
    rule = {**CONFIGMAP_RULE, "operations": ["UPDATE"]}
    config = configuration(
        "MutatingWebhookConfiguration",
        "spoil",
        webhook("spoil.kubelab.test", hooks.client_config("/spoil"), rules=[rule]),
    )
    await configure(apiserver, hooks, MUTATING, config)
    code, body = await apiserver.request(
        "PATCH", f"{CONFIGMAPS}/web", raw=b'{"data":{"a":"b"}}', content_type="application/merge-patch+json"
    )
    assert code == 422, body
    assert [c["field"] for c in body["details"]["causes"]] == ["data[no way]"]
    _, stored = await apiserver.request("GET", f"{CONFIGMAPS}/web")
    assert "data" not in stored


async def test_if_needed_webhooks_are_reinvoked_after_a_later_change(
    apiserver: RunningServer, hooks: WebhookServer
):
    hooks.answers["/first"] = lambda review: allow(review)
    hooks.answers["/second"] = lambda review: patch(
        review, [{"op": "add", "path": "/metadata/annotations", "value": {"second": "was-here"}}]
    )
    config = configuration(
        "MutatingWebhookConfiguration",
        "chain",
        webhook("first.kubelab.test", hooks.client_config("/first"), reinvocationPolicy="IfNeeded"),
        webhook("second.kubelab.test", hooks.client_config("/second")),
    )
    await configure(apiserver, hooks, MUTATING, config)
    code, created = await apiserver.request("POST", CONFIGMAPS, body=configmap("web"))
    assert code == 201, created
    first = hooks.reviews["/first"]
    assert len(first) == 2
    assert "annotations" not in first[0]["request"]["object"]["metadata"]
    assert first[1]["request"]["object"]["metadata"]["annotations"] == {"second": "was-here"}
    assert len(hooks.reviews["/second"]) == 1  # Never: not called again


async def test_mutating_webhooks_may_refuse_a_delete(apiserver: RunningServer, hooks: WebhookServer):
    await apiserver.request("POST", CONFIGMAPS, body=configmap("keep"))
    hooks.answers["/guard"] = lambda review: deny(review, code=403, message="keep it")
    rule = {**CONFIGMAP_RULE, "operations": ["DELETE"]}
    config = configuration(
        "MutatingWebhookConfiguration",
        "guard",
        webhook("guard.kubelab.test", hooks.client_config("/guard"), rules=[rule]),
    )
    await configure(apiserver, hooks, MUTATING, config)
    code, body = await apiserver.request("DELETE", f"{CONFIGMAPS}/keep")
    assert code == 403 and body["message"].endswith("denied the request: keep it")
    [review] = hooks.reviews["/guard"]
    assert review["request"]["operation"] == "DELETE"
    assert (
        review["request"]["object"] is None and review["request"]["oldObject"]["metadata"]["name"] == "keep"
    )
    assert review["request"]["options"]["kind"] == "DeleteOptions"


# --- failures ---------------------------------------------------------------------------------------


async def test_a_webhook_that_is_down_fails_or_is_ignored_by_policy(
    apiserver: RunningServer, hooks: WebhookServer
):
    dead = free_port()
    down = {"url": f"https://127.0.0.1:{dead}/down", "caBundle": hooks.ca_bundle}
    config = configuration(
        "ValidatingWebhookConfiguration",
        "down",
        webhook("ignored.kubelab.test", down, failurePolicy="Ignore"),
        webhook("failing.kubelab.test", down, objectSelector={"matchLabels": {"strict": "yes"}}),
    )
    await configure(apiserver, hooks, VALIDATING, config)

    code, body = await apiserver.request("POST", CONFIGMAPS, body=configmap("relaxed"))
    assert code == 201, body
    code, body = await apiserver.request("POST", CONFIGMAPS, body=configmap("strict", strict="yes"))
    assert code == 500 and body["reason"] == "InternalError"
    assert body["message"] == (
        'Internal error occurred: failed calling webhook "failing.kubelab.test": failed to call webhook: '
        f'Post "https://127.0.0.1:{dead}/down?timeout=10s": dial tcp 127.0.0.1:{dead}: connect: connection refused'
    )


async def test_a_webhook_that_times_out_fails_or_is_ignored_by_policy(
    apiserver: RunningServer, hooks: WebhookServer
):
    hooks.answers["/slow"] = hooks.hold
    slow = hooks.client_config("/slow")
    config = configuration(
        "ValidatingWebhookConfiguration",
        "slow",
        webhook(
            "ignored.kubelab.test",
            slow,
            failurePolicy="Ignore",
            timeoutSeconds=1,
            objectSelector={"matchLabels": {"relaxed": "yes"}},
        ),
        webhook(
            "failing.kubelab.test", slow, timeoutSeconds=1, objectSelector={"matchLabels": {"strict": "yes"}}
        ),
    )
    await configure(apiserver, hooks, VALIDATING, config)

    started = asyncio.get_running_loop().time()
    code, body = await apiserver.request("POST", CONFIGMAPS, body=configmap("relaxed", relaxed="yes"))
    assert code == 201, body
    assert asyncio.get_running_loop().time() - started >= 1  # the webhook was waited for, then ignored
    code, body = await apiserver.request("POST", CONFIGMAPS, body=configmap("strict", strict="yes"))
    assert code == 500
    assert body["message"] == (
        'Internal error occurred: failed calling webhook "failing.kubelab.test": failed to call webhook: '
        f'Post "https://127.0.0.1:{hooks.port}/slow?timeout=1s": context deadline exceeded'
    )


async def test_an_answer_for_another_request_fails_the_call(apiserver: RunningServer, hooks: WebhookServer):
    hooks.answers["/confused"] = lambda review: {
        **allow(review),
        "response": {"uid": "other", "allowed": True},
    }
    config = configuration(
        "ValidatingWebhookConfiguration",
        "confused",
        webhook("confused.kubelab.test", hooks.client_config("/confused")),
    )
    await configure(apiserver, hooks, VALIDATING, config)
    code, body = await apiserver.request("POST", CONFIGMAPS, body=configmap("web"))
    assert code == 500
    uid = hooks.reviews["/confused"][-1]["request"]["uid"]
    assert body["message"].endswith(
        f'received invalid webhook response: expected response.uid="{uid}", got "other"'
    )


async def test_broken_answers_fail_the_call_in_upstreams_words(
    apiserver: RunningServer, hooks: WebhookServer
):
    hooks.answers["/boom"] = lambda review: web.Response(status=500, text="boom")
    hooks.answers["/teapot"] = lambda review: web.Response(status=418)
    hooks.answers["/garbled"] = lambda review: {**allow(review, patch="%%%", patchType="JSONPatch")}
    hooks.answers["/patchy"] = lambda review: {**allow(review, patch="W10=", patchType="JSONPatch")}
    config = configuration(
        "MutatingWebhookConfiguration",
        "broken",
        *(
            webhook(
                f"{name}.kubelab.test",
                hooks.client_config(f"/{name}"),
                objectSelector={"matchLabels": {name: "y"}},
            )
            for name in ("boom", "teapot", "garbled")
        ),
    )
    await configure(apiserver, hooks, MUTATING, config)
    expected = {
        "boom": 'an error on the server ("boom") has prevented the request from succeeding',
        "teapot": "the server responded with the status code 418 but did not return more information",
        "garbled": "received undecodable patch in webhook response: ",
    }
    for name, reason in expected.items():
        code, body = await apiserver.request("POST", CONFIGMAPS, body=configmap(name, **{name: "y"}))
        assert code == 500
        prefix = f'Internal error occurred: failed calling webhook "{name}.kubelab.test": '
        assert body["message"].startswith(prefix), body
        assert reason in body["message"]
    validating = configuration(
        "ValidatingWebhookConfiguration",
        "patchy",
        webhook("patchy.kubelab.test", hooks.client_config("/patchy")),
    )
    await configure(apiserver, hooks, VALIDATING, validating)
    code, body = await apiserver.request("POST", CONFIGMAPS, body=configmap("p"))
    assert code == 500
    assert body["message"].endswith(
        "received invalid webhook response: validating webhook may not return response.patch"
    )


async def test_a_ca_bundle_that_does_not_sign_the_server_fails_tls(
    apiserver: RunningServer, hooks: WebhookServer
):
    untrusted = {"url": hooks.url("/allow")}  # no caBundle: the system's roots, which do not know our CA
    config = configuration("ValidatingWebhookConfiguration", "tls", webhook("tls.kubelab.test", untrusted))
    code, body = await apiserver.request("POST", VALIDATING, body=config)
    assert code == 201, body
    # No barrier can pass this webhook: wait until it fails.
    code, body = await repeat_until(
        apiserver,
        method="POST",
        path=CONFIGMAPS,
        body=configmap("web"),
        params={"dryRun": "All"},
        until=lambda code: code == 500,
    )
    assert "tls: failed to verify certificate" in body["message"]
    assert "/allow" not in hooks.reviews


# --- matching ---------------------------------------------------------------------------------------


async def test_namespace_selector_matches_the_namespaces_labels(
    apiserver: RunningServer, hooks: WebhookServer
):
    hooks.answers["/prod"] = lambda review: deny(review, code=403, message="frozen")
    for name, labels in (("prod", {"env": "prod"}), ("dev", {"env": "dev"})):
        await apiserver.request(
            "POST", "/api/v1/namespaces", body={"metadata": {"name": name, "labels": labels}}
        )
    rules = [
        {**CONFIGMAP_RULE},
        {"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["namespaces"]},
    ]
    config = configuration(
        "ValidatingWebhookConfiguration",
        "prod",
        webhook(
            "prod.kubelab.test",
            hooks.client_config("/prod"),
            rules=rules,
            namespaceSelector={"matchLabels": {"env": "prod"}},
        ),
    )
    await configure(apiserver, hooks, VALIDATING, config)

    code, _ = await apiserver.request("POST", "/api/v1/namespaces/prod/configmaps", body=configmap("web"))
    assert code == 403
    code, _ = await apiserver.request("POST", "/api/v1/namespaces/dev/configmaps", body=configmap("web"))
    assert code == 201
    # A namespace being created is matched against its own labels.
    code, _ = await apiserver.request(
        "POST", "/api/v1/namespaces", body={"metadata": {"name": "prod2", "labels": {"env": "prod"}}}
    )
    assert code == 403
    code, _ = await apiserver.request("POST", "/api/v1/namespaces", body={"metadata": {"name": "qa"}})
    assert code == 201
    assert [r["request"]["namespace"] for r in hooks.reviews["/prod"]] == ["prod", ""]


async def test_object_selector_matches_the_new_or_the_old_labels(
    apiserver: RunningServer, hooks: WebhookServer
):
    hooks.answers["/locked"] = lambda review: deny(review, code=403, message="locked")
    await apiserver.request("POST", CONFIGMAPS, body=configmap("web", locked="yes"))
    rule = {**CONFIGMAP_RULE, "operations": ["CREATE", "UPDATE"]}
    config = configuration(
        "ValidatingWebhookConfiguration",
        "locked",
        webhook(
            "locked.kubelab.test",
            hooks.client_config("/locked"),
            rules=[rule],
            objectSelector={"matchLabels": {"locked": "yes"}},
        ),
    )
    await configure(apiserver, hooks, VALIDATING, config)

    code, _ = await apiserver.request("POST", CONFIGMAPS, body=configmap("free"))
    assert code == 201
    code, _ = await apiserver.request("POST", CONFIGMAPS, body=configmap("new", locked="yes"))
    assert code == 403
    # Removing the label is still an update of a locked object: the old labels match.
    code, _ = await apiserver.request(
        "PATCH",
        f"{CONFIGMAPS}/web",
        raw=b'{"metadata":{"labels":{"locked":null}}}',
        content_type="application/merge-patch+json",
    )
    assert code == 403
    [update] = [r for r in hooks.reviews["/locked"] if r["request"]["operation"] == "UPDATE"]
    assert update["request"]["oldObject"]["metadata"]["labels"] == {"locked": "yes"}
    assert update["request"]["options"]["kind"] == "UpdateOptions"


async def test_requests_the_rules_do_not_name_are_not_sent(apiserver: RunningServer, hooks: WebhookServer):
    hooks.answers["/strict"] = lambda review: deny(review, code=403, message="no")
    rules = [
        CONFIGMAP_RULE,
        {
            "operations": ["*"],
            "apiGroups": ["apps"],
            "apiVersions": ["v1"],
            "resources": ["deployments/scale"],
        },
        {
            "operations": ["UPDATE"],
            "apiGroups": [""],
            "apiVersions": ["v1"],
            "resources": ["*"],
            "scope": "Cluster",
        },
    ]
    config = configuration(
        "ValidatingWebhookConfiguration",
        "strict",
        webhook("strict.kubelab.test", hooks.client_config("/strict"), rules=rules),
    )
    await apiserver.request("POST", CONFIGMAPS, body=configmap("before"))
    await configure(apiserver, hooks, VALIDATING, config)

    secret = {"metadata": {"name": "s"}, "stringData": {"a": "b"}}
    code, _ = await apiserver.request("POST", "/api/v1/namespaces/default/secrets", body=secret)
    assert code == 201  # another resource
    code, _ = await apiserver.request(
        "PATCH",
        f"{CONFIGMAPS}/before",
        raw=b'{"data":{"a":"b"}}',
        content_type="application/merge-patch+json",
    )
    assert code == 200  # another operation; a namespaced object for the Cluster rule
    code, _ = await apiserver.request(
        "PATCH",
        "/api/v1/namespaces/default",
        raw=b'{"metadata":{"labels":{"touched":"yes"}}}',
        content_type="application/merge-patch+json",
    )
    assert code == 403  # UPDATE of a cluster-scoped core object
    assert [r["request"]["resource"]["resource"] for r in hooks.reviews["/strict"]] == ["namespaces"]


async def test_the_configuration_kinds_are_never_sent_to_webhooks(
    apiserver: RunningServer, hooks: WebhookServer
):
    everything = {"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*/*"]}
    config = configuration(
        "ValidatingWebhookConfiguration",
        "everything",
        webhook("everything.kubelab.test", {"url": f"https://127.0.0.1:{free_port()}/x"}, rules=[everything]),
    )
    await configure(apiserver, hooks, VALIDATING, {**config, "webhooks": []})  # in effect, harmless
    code, body = await apiserver.request("PUT", f"{VALIDATING}/everything", body=config)
    assert code == 200, body
    # The broken webhook is in effect when everything else fails.
    await repeat_until(
        apiserver,
        method="POST",
        path=CONFIGMAPS,
        body=configmap("x"),
        params={"dryRun": "All"},
        until=lambda code: code == 500,
    )
    other = configuration(
        "MutatingWebhookConfiguration", "other", webhook("other.kubelab.test", hooks.client_config("/o"))
    )
    code, body = await apiserver.request("POST", MUTATING, body=other)
    assert code == 201, body
    code, body = await apiserver.request("DELETE", f"{VALIDATING}/everything")
    assert code == 200, body


# --- dry run and service references -----------------------------------------------------------------


async def test_a_dry_run_is_sent_as_one(apiserver: RunningServer, hooks: WebhookServer):
    config = configuration(
        "ValidatingWebhookConfiguration",
        "dry",
        webhook("dry.kubelab.test", hooks.client_config("/dry"), sideEffects="NoneOnDryRun"),
    )
    await configure(apiserver, hooks, VALIDATING, config)
    code, _ = await apiserver.request("POST", CONFIGMAPS, body=configmap("web"), params={"dryRun": "All"})
    assert code == 201
    [review] = hooks.reviews["/dry"]
    assert review["request"]["dryRun"] is True
    assert review["request"]["options"]["dryRun"] == ["All"]


async def test_a_webhook_behind_a_service_is_reached_through_its_endpoints(
    apiserver: RunningServer, hooks: WebhookServer
):
    service = {"metadata": {"name": "hooks"}, "spec": {"ports": [{"name": "https", "port": 443}]}}
    code, body = await apiserver.request("POST", "/api/v1/namespaces/default/services", body=service)
    assert code == 201, body
    endpoints = {
        "metadata": {"name": "hooks"},
        "subsets": [{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"name": "https", "port": hooks.port}]}],
    }
    code, body = await apiserver.request("POST", "/api/v1/namespaces/default/endpoints", body=endpoints)
    assert code == 201, body
    hooks.answers["/svc"] = lambda review: deny(review, code=403, message="via the service")
    client_config = {
        "service": {"namespace": "default", "name": "hooks", "path": "/svc"},
        "caBundle": hooks.ca_bundle,
    }
    config = configuration(
        "ValidatingWebhookConfiguration", "svc", webhook("svc.kubelab.test", client_config)
    )
    await configure(apiserver, hooks, VALIDATING, config)
    code, body = await apiserver.request("POST", CONFIGMAPS, body=configmap("web"))
    assert code == 403 and body["message"].endswith("via the service"), body

    missing = {
        "service": {"namespace": "default", "name": "nobody", "path": "/svc"},
        "caBundle": hooks.ca_bundle,
    }
    code, body = await apiserver.request(
        "PUT",
        f"{VALIDATING}/svc",
        body=configuration("ValidatingWebhookConfiguration", "svc", webhook("svc.kubelab.test", missing)),
    )
    assert code == 200, body
    code, body = await repeat_until(
        apiserver, method="POST", path=CONFIGMAPS, body=configmap("web"), until=lambda code: code != 403
    )
    assert code == 500
    assert body["message"].endswith(
        'failed to call webhook: Post "https://nobody.default.svc:443/svc?timeout=10s": service "nobody" not found'
    )


# --- the configuration kinds ------------------------------------------------------------------------


async def test_configurations_are_defaulted_and_listed_as_a_table(
    apiserver: RunningServer, hooks: WebhookServer
):
    hook = webhook("a.kubelab.test", {"service": {"namespace": "default", "name": "hooks"}})
    code, created = await apiserver.request(
        "POST",
        MUTATING,
        body=configuration("MutatingWebhookConfiguration", "m", hook, {**hook, "name": "b.kubelab.test"}),
    )
    assert code == 201, created
    first = created["webhooks"][0]
    assert first["failurePolicy"] == "Fail" and first["matchPolicy"] == "Equivalent"
    assert first["namespaceSelector"] == {} and first["objectSelector"] == {}
    assert first["timeoutSeconds"] == 10 and first["reinvocationPolicy"] == "Never"
    assert first["rules"][0]["scope"] == "*"
    assert first["clientConfig"]["service"]["port"] == 443
    code, table = await apiserver.request(
        "GET", MUTATING, headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}
    )
    assert code == 200
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Webhooks", "Age"]
    assert [row["cells"][:2] for row in table["rows"]] == [["m", 2]]
    _, discovery = await apiserver.request("GET", GROUP_PATH)
    resources = {r["name"]: r for r in discovery["resources"]}
    assert resources["validatingwebhookconfigurations"]["namespaced"] is False
    assert resources["mutatingwebhookconfigurations"]["categories"] == ["api-extensions"]


async def test_bad_configurations_are_refused_with_field_paths(apiserver: RunningServer):
    bad = {
        "name": "short",
        "clientConfig": {"url": "http://user@example.com/x?q=1#frag"},
        "rules": [
            {
                "operations": ["*", "CREATE"],
                "apiGroups": [],
                "apiVersions": ["v1"],
                "resources": ["*", "pods"],
            }
        ],
        "sideEffects": "Some",
        "timeoutSeconds": 31,
        "admissionReviewVersions": ["v2"],
        "failurePolicy": "Maybe",
    }
    both = {**webhook("dup.kubelab.test", {"url": "https://a.example.com"}), "clientConfig": {}}
    config = configuration(
        "ValidatingWebhookConfiguration", "bad", bad, both, {**both, "clientConfig": {"url": "https://a"}}
    )
    code, body = await apiserver.request("POST", VALIDATING, body=config)
    assert code == 422, body
    assert body["reason"] == "Invalid"
    causes = {(c["field"], c["message"]) for c in body["details"]["causes"]}
    expected = {
        (
            "webhooks[0].name",
            'Invalid value: "short": should be a domain with at least three segments separated by dots',
        ),
        (
            "webhooks[0].rules[0].operations",
            'Invalid value: []admissionregistration.OperationType{"*", "CREATE"}: if \'*\' is present, must not specify other operations',
        ),
        ("webhooks[0].rules[0].apiGroups", "Required value"),
        (
            "webhooks[0].rules[0].resources",
            'Invalid value: []string{"*", "pods"}: if \'*\' is present, must not specify other resources without subresources',
        ),
        ("webhooks[0].failurePolicy", 'Unsupported value: "Maybe": supported values: "Fail", "Ignore"'),
        ("webhooks[0].sideEffects", 'Unsupported value: "Some": supported values: "None", "NoneOnDryRun"'),
        (
            "webhooks[0].timeoutSeconds",
            "Invalid value: 31: the timeout value must be between 1 and 30 seconds",
        ),
        (
            "webhooks[0].clientConfig.url",
            "Invalid value: \"http\": 'https' is the only allowed URL scheme; desired format: https://host[/path]",
        ),
        (
            "webhooks[0].clientConfig.url",
            'Invalid value: "user": user information is not permitted in the URL',
        ),
        ("webhooks[0].clientConfig.url", 'Invalid value: "frag": fragments are not permitted in the URL'),
        (
            "webhooks[0].clientConfig.url",
            'Invalid value: "q=1": query parameters are not permitted in the URL',
        ),
        (
            "webhooks[0].admissionReviewVersions",
            'Invalid value: []string{"v2"}: must include at least one of v1, v1beta1',
        ),
        ("webhooks[1].clientConfig", "Required value: exactly one of url or service is required"),
        ("webhooks[2].name", 'Duplicate value: "dup.kubelab.test"'),
    }
    assert causes == expected
    assert body["message"].startswith(
        'ValidatingWebhookConfiguration.admissionregistration.k8s.io "bad" is invalid: '
    )


async def test_service_references_are_validated(apiserver: RunningServer):
    service = {"namespace": "", "name": "", "path": "/a//b", "port": 0}
    config = configuration(
        "MutatingWebhookConfiguration",
        "svc",
        webhook("svc.kubelab.test", {"service": service}, reinvocationPolicy="Always"),
    )
    code, body = await apiserver.request("POST", MUTATING, body=config)
    assert code == 422
    causes = {(c["field"], c["message"]) for c in body["details"]["causes"]}
    assert causes == {
        (
            "webhooks[0].reinvocationPolicy",
            'Unsupported value: "Always": supported values: "IfNeeded", "Never"',
        ),
        ("webhooks[0].clientConfig.service.name", "Required value: service name is required"),
        ("webhooks[0].clientConfig.service.namespace", "Required value: service namespace is required"),
        (
            "webhooks[0].clientConfig.service.port",
            "Invalid value: 0: port is not valid: must be between 1 and 65535, inclusive",
        ),
        ("webhooks[0].clientConfig.service.path", 'Invalid value: "/a//b": segment[1] may not be empty'),
    }


# --- the plugins over a store, without an API server --------------------------------------------


@pytest.fixture
async def admission(objects: ResourceStore) -> AsyncIterator[WebhookAdmission]:
    started = WebhookAdmission(
        objects=objects,
        authorizer=AuthorizerChain(authorizers=[AlwaysAllow()]),
        metrics=AdmissionMetrics(registry=CollectorRegistry()),
    )
    await started.start()
    try:
        yield started
    finally:
        await started.stop()


async def store_configuration(objects: ResourceStore, plural: str, config: dict[str, Any]) -> None:
    """Write a configuration as a store snapshot from an older server could hold it (not validated)."""
    rt = objects.registry.lookup(group="admissionregistration.k8s.io", version="v1", plural=plural)
    assert rt is not None
    await objects.store.create(
        objects.key(rt, namespace="", name=config["metadata"]["name"]), orjson.dumps(config)
    )


def configmap_request(objects: ResourceStore, *, dry_run: bool) -> AdmissionRequest:
    rt = objects.registry.lookup(group="", version="v1", plural="configmaps")
    assert rt is not None
    return AdmissionRequest(
        operation=CREATE,
        rt=rt,
        namespace="default",
        name="web",
        subresource="",
        user=UserInfo(name="alice"),
        obj=configmap("web"),
        old=None,
        dry_run=dry_run,
    )


async def in_effect(configurations: WebhookConfigurations, rt: ResourceType, count: int) -> None:
    """Wait until ``count`` webhooks of ``configurations`` may match ``rt`` (the watch caught up)."""
    async with asyncio.timeout(10):
        while True:
            if len(configurations.candidates(rt)) == count:
                return
            await asyncio.sleep(0.01)


async def test_a_dry_run_is_refused_by_a_webhook_with_side_effects(
    objects: ResourceStore, admission: WebhookAdmission
):
    dead = {"url": f"https://127.0.0.1:{free_port()}/x"}
    config = configuration(
        "ValidatingWebhookConfiguration",
        "legacy",
        webhook("legacy.kubelab.test", dead, sideEffects="Some", failurePolicy="Ignore"),
    )
    await store_configuration(objects, "validatingwebhookconfigurations", config)
    rt = configmap_request(objects, dry_run=False).rt
    await in_effect(admission.validating_configurations, rt, 1)

    with pytest.raises(StatusError) as refused:
        await admission.validating.validate(configmap_request(objects, dry_run=True))
    assert (refused.value.code, refused.value.reason) == (400, "BadRequest")
    assert refused.value.message == 'admission webhook "legacy.kubelab.test" does not support dry run'
    await admission.validating.validate(configmap_request(objects, dry_run=False))  # called, failed, ignored


async def test_configurations_are_followed_in_upstreams_order(
    objects: ResourceStore, admission: WebhookAdmission
):
    rt = configmap_request(objects, dry_run=False).rt
    secrets = objects.registry.lookup(group="", version="v1", plural="secrets")
    assert secrets is not None
    url = {"url": "https://127.0.0.1:1/x"}
    everything = {"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"]}
    for name, rules in (("b", [CONFIGMAP_RULE]), ("a", [everything])):
        config = configuration(
            "MutatingWebhookConfiguration",
            name,
            webhook(f"{name}1.kubelab.test", url, rules=rules),
            webhook(f"{name}2.kubelab.test", url, rules=rules),
        )
        await store_configuration(objects, "mutatingwebhookconfigurations", config)
    await in_effect(admission.mutating_configurations, rt, 4)
    names = [hook.name for hook in admission.mutating_configurations.candidates(rt)]
    assert names == ["a1.kubelab.test", "a2.kubelab.test", "b1.kubelab.test", "b2.kubelab.test"]
    assert [h.name for h in admission.mutating_configurations.candidates(secrets)] == names[:2]

    mutating = objects.registry.lookup(
        group="admissionregistration.k8s.io", version="v1", plural="mutatingwebhookconfigurations"
    )
    assert mutating is not None
    await objects.store.delete(objects.key(mutating, namespace="", name="a"))
    await in_effect(admission.mutating_configurations, rt, 2)
    assert not admission.mutating_configurations.candidates(secrets)
