"""The REST client's wire behaviour: paths, query parameters, bodies, errors, retries, watch streams, TLS."""

from __future__ import annotations

import asyncio
import logging
import ssl

import aiohttp
import orjson
import pytest
from aiohttp import web

from control.client.config import ClientConfig
from control.client.errors import (
    APIError,
    DecodeError,
    ExpiredError,
    ForbiddenError,
    InternalError,
    InvalidError,
    NotFoundError,
    ServiceUnavailableError,
    TooManyRequestsError,
    TransportError,
)
from control.client.rest import (
    USER_AGENT,
    EventType,
    PatchType,
    Preconditions,
    PropagationPolicy,
    Resource,
    RESTClient,
)
from control.client.testing import FakeClock
from tests.control.client.pki import TestCA
from tests.control.client.support import eventually
from tests.control.client.wire import (
    FakeWireServer,
    hang_up_answer,
    json_answer,
    raw_answer,
    status_answer,
    stream_answer,
)

PODS = Resource("", "v1", "pods", "Pod")
NODES = Resource("", "v1", "nodes", "Node", namespaced=False)
DEPLOYMENTS = Resource("apps", "v1", "deployments", "Deployment")


@pytest.fixture
async def server():
    wire = FakeWireServer()
    await wire.start()
    yield wire
    await wire.stop()


@pytest.fixture
async def clock():
    return FakeClock()


@pytest.fixture
async def client(server, clock):
    rest = RESTClient(ClientConfig(server=server.url, token="s3cret"), clock=clock)
    yield rest
    await rest.close()


def pod(name: str = "web", namespace: str = "default") -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace}}


# --- addressing ---------------------------------------------------------------------------------


def test_resource_paths():
    assert PODS.path() == "/api/v1/pods"
    assert PODS.path(namespace="default") == "/api/v1/namespaces/default/pods"
    assert (
        PODS.path(namespace="default", name="web", subresource="status")
        == "/api/v1/namespaces/default/pods/web/status"
    )
    assert (
        DEPLOYMENTS.path(namespace="ns", name="d", subresource="scale")
        == "/apis/apps/v1/namespaces/ns/deployments/d/scale"
    )
    assert NODES.path(name="node-1") == "/api/v1/nodes/node-1"
    assert (
        Resource("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", namespaced=False).path(
            name="system:controller:x"
        )
        == "/apis/rbac.authorization.k8s.io/v1/clusterroles/system:controller:x"
    )
    assert PODS.path(namespace="default", name="a b/c") == "/api/v1/namespaces/default/pods/a%20b%2Fc"
    assert DEPLOYMENTS.api_version == "apps/v1" and PODS.api_version == "v1"
    assert DEPLOYMENTS.group_resource == "deployments.apps" and PODS.group_resource == "pods"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: NODES.path(namespace="default"), "cluster-scoped"),
        (lambda: PODS.path(namespace="default", subresource="status"), "needs an object name"),
        (lambda: PODS.path(namespace="default", name=""), "empty name"),
    ],
)
def test_bad_addresses_are_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_client_needs_a_running_loop():
    with pytest.raises(RuntimeError, match="running event loop"):
        RESTClient(ClientConfig(server="http://127.0.0.1:1"))


# --- verbs --------------------------------------------------------------------------------------


async def test_get_sends_auth_user_agent_and_accept(server, client):
    server.answer(json_answer(pod()))
    assert (await client.get(PODS, "web", namespace="default"))["metadata"]["name"] == "web"
    request = server.last
    assert (request.method, request.path) == ("GET", "/api/v1/namespaces/default/pods/web")
    assert request.headers["Authorization"] == "Bearer s3cret"
    assert request.headers["Accept"] == "application/json"
    assert request.headers["User-Agent"] == USER_AGENT and USER_AGENT.startswith("kubelab/")


async def test_namespaced_verbs_need_a_namespace(client):
    with pytest.raises(ValueError, match="namespace is required"):
        await client.get(PODS, "web")
    with pytest.raises(ValueError, match="namespace is required"):
        await client.create(PODS, {"metadata": {"name": "x"}})


async def test_list_query_and_item_kinds(server, client):
    server.answer(
        json_answer(
            {
                "kind": "PodList",
                "apiVersion": "v1",
                "metadata": {"resourceVersion": "9"},
                "items": [
                    {"metadata": {"name": "a"}},
                    {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "b"}},
                ],
            }
        )
    )
    result = await client.list(
        PODS,
        namespace="default",
        label_selector="app in (web,api),!canary",
        field_selector="spec.nodeName=node-1",
        limit=50,
        continue_="tok",
        resource_version="0",
        resource_version_match="NotOlderThan",
        timeout_seconds=10,
    )
    assert server.last.path == "/api/v1/namespaces/default/pods"
    assert server.last.query == {
        "labelSelector": "app in (web,api),!canary",
        "fieldSelector": "spec.nodeName=node-1",
        "limit": "50",
        "continue": "tok",
        "resourceVersion": "0",
        "resourceVersionMatch": "NotOlderThan",
        "timeoutSeconds": "10",
    }
    assert [(i["kind"], i["apiVersion"]) for i in result["items"]] == [("Pod", "v1"), ("Pod", "v1")]


async def test_list_all_namespaces_and_pages(server, client):
    server.answer(
        json_answer(
            {
                "metadata": {"resourceVersion": "5", "continue": "c1", "remainingItemCount": 1},
                "items": [{"metadata": {"name": "a"}}],
            }
        ),
        json_answer({"metadata": {"resourceVersion": "5"}, "items": [{"metadata": {"name": "b"}}]}),
    )
    result = await client.list_all(DEPLOYMENTS, label_selector="app=web", page_size=1)
    assert [r.path for r in server.requests] == ["/apis/apps/v1/deployments"] * 2
    assert server.requests[0].query == {"labelSelector": "app=web", "limit": "1"}
    assert server.requests[1].query == {"labelSelector": "app=web", "limit": "1", "continue": "c1"}
    assert [i["metadata"]["name"] for i in result["items"]] == ["a", "b"]
    assert result["metadata"] == {"resourceVersion": "5"}
    assert result["items"][0]["kind"] == "Deployment" and result["items"][0]["apiVersion"] == "apps/v1"


async def test_create_posts_json_with_options(server, client):
    server.answer(json_answer(pod(), status=201))
    await client.create(PODS, pod(), field_manager="kubelab", field_validation="Strict", dry_run=True)
    request = server.last
    assert (request.method, request.path) == ("POST", "/api/v1/namespaces/default/pods")
    assert request.headers["Content-Type"] == "application/json"
    assert request.query == {"fieldManager": "kubelab", "fieldValidation": "Strict", "dryRun": "All"}
    assert request.json() == pod()


async def test_create_on_a_subresource_and_cluster_scoped(server, client):
    server.answer(json_answer({}, status=201), json_answer({}, status=201), json_answer({}, status=201))
    binding = {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": "web", "namespace": "default"},
        "target": {"kind": "Node", "name": "node-1"},
    }
    await client.create(PODS, binding, subresource="binding")
    assert server.last.path == "/api/v1/namespaces/default/pods/web/binding"
    await client.create(
        Resource("", "v1", "serviceaccounts", "ServiceAccount"),
        {"spec": {"audiences": ["x"]}},
        namespace="kube-system",
        name="dns",
        subresource="token",
    )
    assert server.last.path == "/api/v1/namespaces/kube-system/serviceaccounts/dns/token"
    await client.create(NODES, {"metadata": {"name": "node-1", "namespace": "ignored"}})
    assert server.last.path == "/api/v1/nodes"


async def test_replace_puts_to_the_objects_own_path(server, client):
    server.answer(json_answer(pod()), json_answer(pod()))
    body = pod()
    body["metadata"]["resourceVersion"] = "7"
    await client.replace(PODS, body)
    assert (server.last.method, server.last.path) == ("PUT", "/api/v1/namespaces/default/pods/web")
    assert server.last.json()["metadata"]["resourceVersion"] == "7"
    await client.replace(
        DEPLOYMENTS, {"spec": {"replicas": 3}}, namespace="ns", name="d", subresource="scale"
    )
    assert server.last.path == "/apis/apps/v1/namespaces/ns/deployments/d/scale"
    with pytest.raises(ValueError, match="needs a name"):
        await client.replace(PODS, {"metadata": {}}, namespace="default")


@pytest.mark.parametrize(
    ("patch_type", "content_type"),
    [
        (PatchType.MERGE, "application/merge-patch+json"),
        (PatchType.JSON, "application/json-patch+json"),
        (PatchType.STRATEGIC, "application/strategic-merge-patch+json"),
    ],
)
async def test_patch_content_types(server, client, patch_type, content_type):
    server.answer(json_answer(pod()))
    body = (
        [{"op": "add", "path": "/metadata/labels/a", "value": "b"}]
        if patch_type is PatchType.JSON
        else {"spec": {}}
    )
    await client.patch(PODS, "web", body, namespace="default", patch_type=patch_type, subresource="status")
    assert (server.last.method, server.last.path) == ("PATCH", "/api/v1/namespaces/default/pods/web/status")
    assert server.last.headers["Content-Type"] == content_type
    assert server.last.json() == body


async def test_server_side_apply(server, client):
    server.answer(json_answer(pod()))
    await client.patch(
        PODS, "web", pod(), namespace="default", patch_type=PatchType.APPLY, field_manager="me", force=True
    )
    assert server.last.headers["Content-Type"] == "application/apply-patch+yaml"
    assert server.last.query == {"fieldManager": "me", "force": "true"}
    with pytest.raises(ValueError, match="field_manager"):
        await client.patch(PODS, "web", {}, namespace="default", patch_type=PatchType.APPLY)
    with pytest.raises(ValueError, match="force"):
        await client.patch(PODS, "web", {}, namespace="default", force=True)


async def test_patch_with_ready_bytes(server, client):
    server.answer(json_answer(pod()))
    await client.patch(PODS, "web", b'{"metadata":{"labels":{"a":"b"}}}', namespace="default")
    assert server.last.body == b'{"metadata":{"labels":{"a":"b"}}}'


async def test_delete_sends_delete_options(server, client):
    server.answer(json_answer({"kind": "Status", "apiVersion": "v1", "status": "Success"}))
    result = await client.delete(
        PODS,
        "web",
        namespace="default",
        propagation_policy=PropagationPolicy.FOREGROUND,
        grace_period_seconds=0,
        preconditions=Preconditions(uid="u-1", resource_version="12"),
        dry_run=True,
    )
    assert result["status"] == "Success"
    assert (server.last.method, server.last.path) == ("DELETE", "/api/v1/namespaces/default/pods/web")
    assert server.last.json() == {
        "kind": "DeleteOptions",
        "apiVersion": "v1",
        "propagationPolicy": "Foreground",
        "gracePeriodSeconds": 0,
        "preconditions": {"uid": "u-1", "resourceVersion": "12"},
        "dryRun": ["All"],
    }


async def test_delete_collection(server, client):
    server.answer(json_answer({"kind": "PodList", "items": []}))
    await client.delete_collection(
        PODS, namespace="default", label_selector="app=web", propagation_policy="Background"
    )
    assert (server.last.method, server.last.path) == ("DELETE", "/api/v1/namespaces/default/pods")
    assert server.last.query == {"labelSelector": "app=web"}
    assert server.last.json()["propagationPolicy"] == "Background"
    with pytest.raises(ValueError):
        await client.delete_collection(PODS, namespace="default", propagation_policy="Sometimes")


# --- errors -------------------------------------------------------------------------------------


async def test_status_failure_becomes_its_exception_with_the_http_error_as_cause(server, client):
    server.answer(status_answer("NotFound", 404, 'pods "web" not found', name="web", kind="pods"))
    with pytest.raises(NotFoundError) as caught:
        await client.get(PODS, "web", namespace="default")
    assert caught.value.message == 'pods "web" not found'
    assert isinstance(caught.value.__cause__, aiohttp.ClientResponseError)
    assert caught.value.__cause__.status == 404


async def test_invalid_carries_causes(server, client):
    causes = [{"reason": "FieldValueInvalid", "message": "must be >= 0", "field": "spec.replicas"}]
    server.answer(status_answer("Invalid", 422, 'Deployment.apps "d" is invalid', causes=causes))
    with pytest.raises(InvalidError) as caught:
        await client.create(DEPLOYMENTS, {"metadata": {"name": "d", "namespace": "ns"}})
    assert caught.value.causes == causes


async def test_proxy_error_page_becomes_a_generic_error(server, client):
    server.answer(raw_answer(b"<html>Bad Gateway</html>", status=502, content_type="text/html"))
    with pytest.raises(InternalError) as caught:
        await client.get(DEPLOYMENTS, "d", namespace="ns")
    assert caught.value.message == (
        'an error on the server ("<html>Bad Gateway</html>") has prevented the request from succeeding '
        "(get deployments.apps d)"
    )


async def test_failure_status_inside_a_2xx_is_still_an_error(server, client):
    server.answer(
        json_answer(
            {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Conflict", "code": 409}
        )
    )
    with pytest.raises(APIError):
        await client.get(PODS, "web", namespace="default")


async def test_undecodable_success_is_a_decode_error(server, client):
    server.answer(raw_answer(b"not json", status=200, content_type="application/json"))
    with pytest.raises(DecodeError):
        await client.get(PODS, "web", namespace="default")
    server.answer(json_answer([1, 2]))
    with pytest.raises(DecodeError, match="expected a JSON object"):
        await client.get(PODS, "web", namespace="default")


async def test_connection_refused_is_a_transport_error(clock):
    async with RESTClient(ClientConfig(server="http://127.0.0.1:1"), clock=clock) as rest:
        with pytest.raises(TransportError) as caught:
            await rest.get(NODES, "n")
    assert isinstance(caught.value.__cause__, aiohttp.ClientError)
    assert rest.closed


async def test_server_warnings_are_logged_once(server, client, caplog):
    warning = {"Warning": '299 - "v1beta1 is deprecated"'}
    server.answer(json_answer(pod(), headers=warning), json_answer(pod(), headers=warning))
    with caplog.at_level(logging.WARNING):
        await client.get(PODS, "web", namespace="default")
        await client.get(PODS, "web", namespace="default")
    assert caplog.text.count("v1beta1 is deprecated") == 1


# --- retries ------------------------------------------------------------------------------------


async def test_retry_after_is_honoured(server, client, clock):
    server.answer(
        status_answer("TooManyRequests", 429, "slow down", headers={"Retry-After": "3"}), json_answer(pod())
    )
    call = asyncio.create_task(client.get(PODS, "web", namespace="default"))
    await eventually(lambda: clock.pending())
    assert clock.advance_to_next() == 3.0
    assert (await call)["metadata"]["name"] == "web"
    assert len(server.requests) == 2


async def test_retries_stop_after_max_retries(server, clock):
    async with RESTClient(ClientConfig(server=server.url), clock=clock, max_retries=2) as rest:
        for _ in range(3):
            server.answer(status_answer("ServiceUnavailable", 503, "", headers={"Retry-After": "1"}))
        call = asyncio.create_task(rest.get(NODES, "n"))
        for _ in range(2):
            await eventually(lambda: clock.pending())
            clock.advance_to_next()
        with pytest.raises(ServiceUnavailableError) as caught:
            await call
    assert caught.value.retry_after == 1
    assert len(server.requests) == 3


async def test_errors_without_retry_after_are_not_retried(server, client):
    server.answer(status_answer("TooManyRequests", 429, "no hint"))
    with pytest.raises(TooManyRequestsError):
        await client.get(PODS, "web", namespace="default")
    assert len(server.requests) == 1


async def test_get_is_retried_when_the_server_hangs_up_but_post_is_not(server, client, clock):
    # aiohttp itself resends an idempotent request once at once (RFC 9112); then the client
    # retries GETs after a second, as client-go does.
    server.answer(hang_up_answer(), hang_up_answer(), json_answer(pod()))
    call = asyncio.create_task(client.get(PODS, "web", namespace="default"))
    await eventually(lambda: clock.pending())
    assert clock.advance_to_next() == 1.0
    assert (await call)["metadata"]["name"] == "web"
    server.answer(hang_up_answer())
    with pytest.raises(TransportError):
        await client.create(PODS, pod())


# --- raw requests and streams -------------------------------------------------------------------


async def test_raw_request_and_log_stream(server, client):
    server.answer(raw_answer(b"line one\nline two\n", status=200))
    response = await client.request(
        "GET",
        "/api/v1/namespaces/default/pods/web/log",
        params={"tailLines": 2, "timestamps": True},
        accept="*/*",
    )
    assert response.body == b"line one\nline two\n"
    assert server.last.query == {"tailLines": "2", "timestamps": "true"}
    server.answer(stream_answer([b"first\nsec", b"ond\n", b"partial"], content_type="text/plain"))
    async with client.stream(
        "GET", "/api/v1/namespaces/default/pods/web/log", params={"follow": True}
    ) as logs:
        assert [line async for line in logs.lines()] == [b"first", b"second", b"partial"]
    server.answer(status_answer("NotFound", 404, "no such pod"))
    with pytest.raises(NotFoundError):
        async with client.stream("GET", "/api/v1/namespaces/default/pods/none/log"):
            pass


async def test_raw_request_with_a_json_body(server, client):
    server.answer(json_answer({"status": {"allowed": True}}, status=201))
    review = {"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1", "spec": {}}
    response = await client.request(
        "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", body=review
    )
    assert response.json()["status"]["allowed"] is True
    assert server.last.headers["Content-Type"] == "application/json" and server.last.json() == review


# --- watch --------------------------------------------------------------------------------------


def event(kind: str, name: str, rv: str) -> bytes:
    return (
        orjson.dumps(
            {
                "type": kind,
                "object": {
                    "kind": "Pod",
                    "apiVersion": "v1",
                    "metadata": {"name": name, "resourceVersion": rv},
                },
            }
        )
        + b"\n"
    )


async def test_watch_parses_events_split_and_batched_across_chunks(server, client):
    one, two, three = event("ADDED", "a", "11"), event("MODIFIED", "a", "12"), event("BOOKMARK", "", "13")
    server.answer(stream_answer([one[:10], one[10:] + two[:5], two[5:] + b"\n" + three]))
    events = await client.watch(
        PODS, namespace="default", resource_version="10", allow_watch_bookmarks=True, timeout_seconds=300
    )
    async with events:
        received = [(e.type, e.object["metadata"]["resourceVersion"]) async for e in events]
    assert received == [(EventType.ADDED, "11"), (EventType.MODIFIED, "12"), (EventType.BOOKMARK, "13")]
    assert server.last.path == "/api/v1/namespaces/default/pods"
    assert server.last.query == {
        "watch": "true",
        "resourceVersion": "10",
        "allowWatchBookmarks": "true",
        "timeoutSeconds": "300",
    }


async def test_watch_events_arrive_while_the_stream_stays_open(server, client):
    release = asyncio.Event()

    async def held_open(request):
        response = web.StreamResponse(status=200)
        response.content_type = "application/json"
        await response.prepare(request)
        await response.write(event("ADDED", "a", "6"))
        await release.wait()
        await response.write(event("ADDED", "b", "7"))
        await response.write_eof()
        return response

    server.answer(held_open)
    async with await client.watch(PODS) as events:
        first = await asyncio.wait_for(anext(events), timeout=5)
        assert first.object["metadata"]["name"] == "a", (
            "an event is delivered as soon as its line is complete"
        )
        release.set()
        assert [e.object["metadata"]["name"] async for e in events] == ["b"]


async def test_watch_list_parameters(server, client):
    server.answer(stream_answer([]))
    events = await client.watch(
        PODS, send_initial_events=True, resource_version_match="NotOlderThan", resource_version=""
    )
    await events.aclose()
    assert server.last.query == {
        "watch": "true",
        "resourceVersion": "",
        "resourceVersionMatch": "NotOlderThan",
        "sendInitialEvents": "true",
    }
    with pytest.raises(ValueError, match="NotOlderThan"):
        await client.watch(PODS, send_initial_events=True)


async def test_watch_error_event_raises_expired(server, client):
    error = orjson.dumps(
        {
            "type": "ERROR",
            "object": {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": "too old resource version: 1 (5)",
                "reason": "Expired",
                "code": 410,
            },
        }
    )
    server.answer(stream_answer([event("ADDED", "a", "6"), error + b"\n"]))
    async with await client.watch(PODS) as events:
        assert (await anext(events)).type is EventType.ADDED
        with pytest.raises(ExpiredError, match="too old resource version"):
            await anext(events)


async def test_watch_refused_at_start_raises_there(server, client):
    server.answer(status_answer("Forbidden", 403, 'pods is forbidden: User "x" cannot watch resource "pods"'))
    with pytest.raises(ForbiddenError):
        await client.watch(PODS)


async def test_watch_cut_mid_event_just_ends(server, client):
    whole = event("ADDED", "a", "6")
    server.answer(stream_answer([whole, event("ADDED", "b", "7")[:15]], hang_up=True))
    async with await client.watch(PODS) as events:
        received = [e.object["metadata"]["name"] async for e in events]
    assert received == ["a"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b'{"type":"UPSERTED","object":{}}\n', "invalid watch event type"),
        (b"{not json\n", "unable to decode"),
        (b'{"type":"ERROR","object":{"kind":"Pod"}}\n', "without a Status"),
        (b"[1]\n", "not an object"),
    ],
)
async def test_malformed_watch_lines_raise_decode_errors(server, client, line, message):
    server.answer(stream_answer([line, event("ADDED", "a", "6")]))
    async with await client.watch(PODS) as events:
        with pytest.raises(DecodeError, match=message):
            await anext(events)


async def test_lister_watcher_adapter(server, client):
    server.answer(json_answer({"metadata": {"resourceVersion": "3"}, "items": []}), stream_answer([]))
    lw = client.lister_watcher(PODS, namespace="ns", label_selector="a=b", field_selector="spec.nodeName=n")
    await lw.list(resource_version="0", resource_version_match=None, limit=500, continue_=None)
    assert server.last.query == {
        "labelSelector": "a=b",
        "fieldSelector": "spec.nodeName=n",
        "limit": "500",
        "resourceVersion": "0",
    }
    stream = await lw.watch(
        resource_version="3",
        resource_version_match=None,
        timeout_seconds=400,
        allow_watch_bookmarks=True,
        send_initial_events=None,
    )
    await stream.aclose()
    assert server.last.query["watch"] == "true" and server.last.query["fieldSelector"] == "spec.nodeName=n"


# --- TLS ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki():
    ca = TestCA()
    return {
        "ca": ca,
        "server": ca.issue("kube-apiserver", ips=("127.0.0.1",), server=True),
        "named": ca.issue("kube-apiserver", dns=("kubernetes.default.svc",), server=True),
        "client": ca.issue("admin", organizations=("system:masters",)),
    }


def server_context(pki, pair, tmp_path) -> ssl.SSLContext:
    (tmp_path / "s.crt").write_bytes(pair.cert_pem)
    (tmp_path / "s.key").write_bytes(pair.key_pem)
    (tmp_path / "ca.crt").write_bytes(pki["ca"].cert_pem)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(tmp_path / "ca.crt"))
    context.load_cert_chain(tmp_path / "s.crt", tmp_path / "s.key")
    context.verify_mode = ssl.CERT_REQUIRED
    return context


async def test_mutual_tls(pki, tmp_path, clock):
    wire = FakeWireServer()
    url = await wire.start(ssl_context=server_context(pki, pki["server"], tmp_path))
    wire.answer(json_answer({"kind": "NodeList", "items": []}))
    config = ClientConfig(
        server=url,
        ca_data=pki["ca"].cert_pem,
        client_cert_data=pki["client"].cert_pem,
        client_key_data=pki["client"].key_pem,
    )
    try:
        async with RESTClient(config, clock=clock) as rest:
            assert (await rest.list(NODES))["items"] == []
        async with RESTClient(ClientConfig(server=url, ca_data=TestCA().cert_pem), clock=clock) as rest:
            with pytest.raises(TransportError, match=r"(?i)certificate"):
                await rest.list(NODES)
    finally:
        await wire.stop()


async def test_tls_server_name_overrides_the_host_checked(pki, tmp_path, clock):
    wire = FakeWireServer()
    url = await wire.start(ssl_context=server_context(pki, pki["named"], tmp_path))
    wire.routes["/api/v1/nodes"] = json_answer({"items": []})
    common = {
        "ca_data": pki["ca"].cert_pem,
        "client_cert_data": pki["client"].cert_pem,
        "client_key_data": pki["client"].key_pem,
    }
    try:
        async with RESTClient(ClientConfig(server=url, **common), clock=clock) as rest:
            with pytest.raises(TransportError):
                await rest.list(NODES)
        named = ClientConfig(server=url, tls_server_name="kubernetes.default.svc", **common)
        async with RESTClient(named, clock=clock) as rest:
            assert (await rest.list(NODES))["items"] == []
    finally:
        await wire.stop()
