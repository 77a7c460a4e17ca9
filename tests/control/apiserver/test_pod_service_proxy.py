"""pods/proxy and services/proxy: the API server in this test's loop relays to a small aiohttp
server on 127.0.0.1 that stands in for a pod; Pods, Services and EndpointSlices are created
through the API (no controllers run, so the test writes what they would)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
import yarl
from aiohttp import web

from control.apiserver.pod_service_proxy import Target, rewrite_location, split_scheme_name_port
from tests.control.apiserver.conftest import RunningServer, free_port

NS = "/api/v1/namespaces/default"


@dataclass
class Backend:
    """What the stand-in pod saw, and the gates its streaming handlers wait on."""

    port: int
    seen: list[dict[str, Any]] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    first_chunk_read: asyncio.Event = field(default_factory=asyncio.Event)


@pytest.fixture
async def backend() -> AsyncIterator[Backend]:
    state = Backend(port=free_port())

    async def echo(request: web.Request) -> web.Response:
        seen = {
            "method": request.method,
            "path": request.raw_path,
            "headers": dict(request.headers),
            "body": (await request.read()).decode(),
        }
        state.seen.append(seen)
        return web.json_response(seen, headers={"X-Backend": "yes", "Access-Control-Allow-Origin": "*"})

    async def redirect(request: web.Request) -> web.Response:
        targets = {
            "absolute-path": "/login?next=%2Fa",
            "backend-url": f"http://127.0.0.1:{state.port}/there/",
            "elsewhere": "http://example.com/x",
            "relative": "sub/page",
        }
        return web.Response(status=302, headers={"Location": targets[request.match_info["kind"]]})

    async def slow(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(b"first\n")
        await state.release.wait()
        await response.write(b"second\n")
        await response.write_eof()
        return response

    async def upload(request: web.Request) -> web.Response:
        first = await request.content.readexactly(6)
        state.first_chunk_read.set()
        rest = await request.content.read()
        return web.Response(text=(first + rest).decode())

    async def forbidden(request: web.Request) -> web.Response:
        return web.Response(status=403, text="no upgrades here")

    async def websocket(request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        await socket.send_str(f"query {request.query_string}")
        async for message in socket:
            await socket.send_str(f"echo:{message.data}")
        return socket

    app = web.Application()
    app.router.add_get("/ws", websocket)
    app.router.add_get("/forbidden", forbidden)
    app.router.add_route("*", "/redirect/{kind}", redirect)
    app.router.add_get("/slow", slow)
    app.router.add_post("/upload", upload)
    app.router.add_route("*", "/{tail:.*}", echo)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", state.port).start()
    try:
        yield state
    finally:
        state.release.set()
        await runner.cleanup()


async def create_pod(api: RunningServer, name: str, *, ports: list[dict[str, Any]], ip: str | None) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "app", "image": "app", "ports": ports}]},
    }
    code, body = await api.request("POST", f"{NS}/pods", body=pod)
    assert code == 201, body
    if ip is not None:
        body["status"].update(phase="Running", podIP=ip, podIPs=[{"ip": ip}])
        code, body = await api.request("PUT", f"{NS}/pods/{name}/status", body=body)
        assert code == 200, body


async def create_service(
    api: RunningServer, name: str, *, endpoints: list[dict[str, Any]], target_port: int
) -> None:
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"ports": [{"name": "http", "port": 80, "targetPort": target_port}]},
    }
    code, body = await api.request("POST", f"{NS}/services", body=service)
    assert code == 201, body
    if not endpoints:
        return
    endpoint_slice = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": f"{name}-abcde", "labels": {"kubernetes.io/service-name": name}},
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": [{"name": "http", "port": target_port, "protocol": "TCP"}],
    }
    code, body = await api.request(
        "POST", "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices", body=endpoint_slice
    )
    assert code == 201, body


async def proxied(
    api: RunningServer, method: str, path: str, **kwargs: Any
) -> tuple[int, dict[str, str], bytes]:
    url = yarl.URL(api.url + path, encoded=True)  # exactly as written: %2F stays %2F
    async with api.session.request(method, url, allow_redirects=False, **kwargs) as response:
        return response.status, dict(response.headers), await response.read()


@pytest.mark.parametrize(
    ("id_", "port_name"),
    [
        ("web", None),  # the first declared container port
        ("web:{port}", None),
        ("http:web:{port}", None),
        ("web:app-port", "app-port"),  # a container port's name
    ],
)
async def test_pod_addressing_forms_reach_the_pod(
    apiserver: RunningServer, backend: Backend, id_: str, port_name: str | None
) -> None:
    await create_pod(
        apiserver, "web", ports=[{"name": "app-port", "containerPort": backend.port}], ip="127.0.0.1"
    )
    code, headers, body = await proxied(
        apiserver, "GET", f"{NS}/pods/{id_.format(port=backend.port)}/proxy/some/path?x=1&y=%2F"
    )
    assert code == 200, body
    seen = orjson.loads(body)
    assert seen["method"] == "GET"
    assert seen["path"] == "/some/path?x=1&y=%2F"
    assert headers["X-Backend"] == "yes"


async def test_every_method_body_and_headers_pass_through(apiserver: RunningServer, backend: Backend) -> None:
    await create_pod(apiserver, "web", ports=[{"containerPort": backend.port}], ip="127.0.0.1")
    base = f"{NS}/pods/web/proxy/item/"
    for method in ("POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
        code, _, body = await proxied(
            apiserver,
            method,
            base,
            data=b"payload",
            headers={"X-Custom": "1", "Connection": "keep-alive, X-Drop", "X-Drop": "gone"},
        )
        assert code == 200, (method, body)
        seen = orjson.loads(body)
        assert (seen["method"], seen["path"], seen["body"]) == (method, "/item/", "payload")
        sent = {key.lower(): value for key, value in seen["headers"].items()}
        assert sent["x-custom"] == "1"
        assert "x-drop" not in sent  # named by Connection: hop-by-hop
        assert "authorization" not in sent
        assert sent["x-forwarded-uri"] == f"{NS}/pods/web/proxy/item/"
        assert sent["x-forwarded-for"] == "127.0.0.1"
        assert sent["host"] == apiserver.url.removeprefix("https://")  # the client's Host, as upstream
    code, headers, body = await proxied(apiserver, "HEAD", base)
    assert (code, body) == (200, b"")
    assert int(headers["Content-Length"]) > 0  # the backend's length of the GET answer


async def test_cors_headers_are_dropped(apiserver: RunningServer, backend: Backend) -> None:
    await create_pod(apiserver, "web", ports=[{"containerPort": backend.port}], ip="127.0.0.1")
    code, headers, _ = await proxied(apiserver, "GET", f"{NS}/pods/web/proxy/")
    assert code == 200
    assert "Access-Control-Allow-Origin" not in headers


async def test_empty_path_redirects_to_a_trailing_slash(apiserver: RunningServer, backend: Backend) -> None:
    await create_pod(apiserver, "web", ports=[{"containerPort": backend.port}], ip="127.0.0.1")
    code, headers, _ = await proxied(apiserver, "GET", f"{NS}/pods/web/proxy?a=b")
    assert code == 301
    assert headers["Location"] == f"{NS}/pods/web/proxy/?a=b"
    code, _, body = await proxied(apiserver, "POST", f"{NS}/pods/web/proxy", data=b"x")
    assert code == 200 and orjson.loads(body)["path"] == "/"


async def test_dot_segments_are_cleaned(apiserver: RunningServer, backend: Backend) -> None:
    await create_pod(apiserver, "web", ports=[{"containerPort": backend.port}], ip="127.0.0.1")
    code, _, body = await proxied(apiserver, "GET", f"{NS}/pods/web/proxy/a/%2E%2E/%2E%2E/b/")
    assert code == 200
    assert orjson.loads(body)["path"] == "/b/"


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("absolute-path", f"{NS}/pods/web/proxy/login?next=%2Fa"),
        ("backend-url", f"{NS}/pods/web/proxy/there/"),
        ("elsewhere", "http://example.com/x"),
        ("relative", "sub/page"),
    ],
)
async def test_redirects_are_rewritten_under_the_proxy_path(
    apiserver: RunningServer, backend: Backend, kind: str, expected: str
) -> None:
    await create_pod(apiserver, "web", ports=[{"containerPort": backend.port}], ip="127.0.0.1")
    code, headers, _ = await proxied(apiserver, "GET", f"{NS}/pods/web/proxy/redirect/{kind}")
    assert code == 302
    assert headers["Location"] == expected


def test_location_on_the_clients_host_keeps_its_host() -> None:
    prefix = "/api/v1/namespaces/default/services/web/proxy"
    assert (
        rewrite_location(
            "https://localhost:8001/x",
            backend_host="10.0.0.1:80",
            request_host="localhost:8001",
            prefix=prefix,
        )
        == f"https://localhost:8001{prefix}/x"
    )
    assert rewrite_location(f"{prefix}/y", backend_host="h", request_host="c", prefix=prefix) == f"{prefix}/y"


async def test_the_answer_is_streamed_as_it_comes(apiserver: RunningServer, backend: Backend) -> None:
    await create_pod(apiserver, "web", ports=[{"containerPort": backend.port}], ip="127.0.0.1")
    async with apiserver.session.get(apiserver.url + f"{NS}/pods/web/proxy/slow") as response:
        assert response.status == 200
        assert await asyncio.wait_for(response.content.readline(), 10) == b"first\n"
        backend.release.set()  # the backend writes the rest only once the first line went through
        assert await response.read() == b"second\n"


async def test_the_request_body_is_streamed(apiserver: RunningServer, backend: Backend) -> None:
    await create_pod(apiserver, "web", ports=[{"containerPort": backend.port}], ip="127.0.0.1")

    async def body() -> AsyncIterator[bytes]:
        yield b"chunk1"
        await asyncio.wait_for(backend.first_chunk_read.wait(), 10)  # the backend has it already
        yield b"chunk2"

    code, _, answer = await proxied(apiserver, "POST", f"{NS}/pods/web/proxy/upload", data=body())
    assert (code, answer) == (200, b"chunk1chunk2")


async def test_websockets_go_through_pods_and_services(apiserver: RunningServer, backend: Backend) -> None:
    await create_pod(apiserver, "web", ports=[{"containerPort": backend.port}], ip="127.0.0.1")
    await create_service(apiserver, "web", target_port=backend.port, endpoints=[{"addresses": ["127.0.0.1"]}])
    for path in (f"{NS}/pods/web/proxy/ws?a=1", f"{NS}/services/web:http/proxy/ws?a=1"):
        async with apiserver.session.ws_connect(apiserver.url + path) as socket:
            assert await asyncio.wait_for(socket.receive_str(), 10) == "query a=1"
            await socket.send_str("hi")
            assert await asyncio.wait_for(socket.receive_str(), 10) == "echo:hi"


async def test_a_refused_or_unreachable_upgrade(apiserver: RunningServer, backend: Backend) -> None:
    closed = free_port()
    await create_pod(apiserver, "web", ports=[{"containerPort": backend.port}], ip="127.0.0.1")
    await create_pod(apiserver, "gone", ports=[{"containerPort": closed}], ip="127.0.0.1")
    upgrade = {
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    }
    code, _, body = await proxied(apiserver, "GET", f"{NS}/pods/web/proxy/no-websocket-here", headers=upgrade)
    assert (code, orjson.loads(body)["message"]) == (500, "invalid upgrade response: status code 200")
    code, _, body = await proxied(apiserver, "GET", f"{NS}/pods/web/proxy/forbidden", headers=upgrade)
    assert (code, body) == (403, b"no upgrades here")  # an error answer is relayed as it is
    code, _, body = await proxied(apiserver, "GET", f"{NS}/pods/gone/proxy/ws", headers=upgrade)
    assert code == 500
    refused = f"error dialing backend: dial tcp 127.0.0.1:{closed}: connect: connection refused"
    assert orjson.loads(body)["message"] == refused


async def test_pod_errors_as_upstream(apiserver: RunningServer) -> None:
    closed = free_port()
    await create_pod(apiserver, "pending", ports=[{"containerPort": closed}], ip=None)
    await create_pod(apiserver, "web", ports=[{"containerPort": closed}], ip="127.0.0.1")
    await create_pod(apiserver, "linklocal", ports=[], ip="169.254.169.254")
    cases = [
        ("web:1:2:3", 400, 'invalid pod request "web:1:2:3"'),
        ("ftp:web:80", 400, 'invalid pod request "ftp:web:80"'),
        ("nothere", 404, 'pods "nothere" not found'),
        ("pending", 400, "address not allowed"),
        ("linklocal", 400, "address not allowed"),
        (
            "web:no-such-port",
            503,
            "error trying to reach service: dial tcp: lookup tcp/no-such-port: unknown port",
        ),
        ("web:99999", 503, "error trying to reach service: dial tcp: address 99999: invalid port"),
        (
            "web",
            503,
            f"error trying to reach service: dial tcp 127.0.0.1:{closed}: connect: connection refused",
        ),
    ]
    for id_, code, message in cases:
        status, body = await apiserver.request("GET", f"{NS}/pods/{id_}/proxy/")
        assert (status, body["message"]) == (code, message), id_
        assert body["kind"] == "Status"


async def test_a_pod_without_ports_goes_to_the_schemes_default_port(apiserver: RunningServer) -> None:
    await create_pod(apiserver, "bare", ports=[], ip="127.0.0.1")
    status, body = await apiserver.request("GET", f"{NS}/pods/https:bare:/proxy/")
    assert status == 503
    assert body["message"].startswith("error trying to reach service: dial tcp 127.0.0.1:443: ")


async def test_service_addressing_forms_reach_a_ready_endpoint(
    apiserver: RunningServer, backend: Backend
) -> None:
    await create_service(
        apiserver,
        "web",
        target_port=backend.port,
        endpoints=[
            {"addresses": ["127.0.0.1"], "conditions": {"ready": True}},
            {"addresses": ["127.0.0.2"], "conditions": {"ready": False}},  # never chosen
        ],
    )
    for id_ in ("web:http", "web:80", "http:web:http"):
        for _ in range(4):
            code, _, body = await proxied(apiserver, "GET", f"{NS}/services/{id_}/proxy/metrics?a=1")
            assert code == 200, (id_, body)
            assert orjson.loads(body)["path"] == "/metrics?a=1"


async def test_the_kubernetes_service_proxies_to_the_api_server_itself(apiserver: RunningServer) -> None:
    # default/kubernetes: one port, named https, whose EndpointSlice the server keeps pointing at itself;
    # the proxied request carries no credentials, so the API server answers it as anonymous.
    code, _, body = await proxied(apiserver, "GET", f"{NS}/services/https:kubernetes:https/proxy/version")
    assert code == 200, body
    assert orjson.loads(body)["major"] == "1"
    code, _, body = await proxied(apiserver, "GET", f"{NS}/services/https:kubernetes:https/proxy/api/v1/pods")
    assert code == 401, body  # the caller's credentials stay behind


async def test_service_errors_as_upstream(apiserver: RunningServer, backend: Backend) -> None:
    await create_service(apiserver, "empty", target_port=backend.port, endpoints=[])
    await create_service(
        apiserver,
        "unready",
        target_port=backend.port,
        endpoints=[{"addresses": ["127.0.0.1"], "conditions": {"ready": False}}],
    )
    cases = [
        ("a:b:c:d", 400, 'invalid service request "a:b:c:d"'),
        ("nothere:http", 404, 'services "nothere" not found'),
        ("empty:http", 503, 'no endpoints available for service "empty"'),
        ("empty:81", 503, 'no service port 81 found for service "empty"'),
        ("unready:http", 503, 'no endpoints available for service "unready:http"'),
        ("unready", 503, 'no endpoints available for service "unready"'),  # no unnamed port either
    ]
    for id_, code, message in cases:
        status, body = await apiserver.request("GET", f"{NS}/services/{id_}/proxy/")
        assert (status, body["reason"], body["message"]) == (code, REASONS[code], message), id_


REASONS = {400: "BadRequest", 404: "NotFound", 503: "ServiceUnavailable"}


async def test_rbac_needs_the_proxy_subresource(apiserver: RunningServer, backend: Backend) -> None:
    await create_pod(apiserver, "web", ports=[{"containerPort": backend.port}], ip="127.0.0.1")
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "pod-reader"},
        "rules": [{"apiGroups": [""], "resources": ["pods", "services"], "verbs": ["get", "list"]}],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "jane"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "jane"}],
    }
    for kind, body in (("roles", role), ("rolebindings", binding)):
        code, answer = await apiserver.request(
            "POST", f"/apis/rbac.authorization.k8s.io/v1/namespaces/default/{kind}", body=body
        )
        assert code == 201, answer
    as_jane = {"Impersonate-User": "jane"}

    async def jane_gets(path: str) -> tuple[int, Any]:
        return await apiserver.request("GET", path, headers=as_jane)

    code, _ = await wait_for_code(lambda: jane_gets(f"{NS}/pods/web"), 200)
    code, body = await jane_gets(f"{NS}/pods/web/proxy/")
    assert code == 403
    assert body["message"] == (
        'pods "web" is forbidden: User "jane" cannot get resource "pods/proxy" in API group "" '
        'in the namespace "default"'
    )
    role["rules"].append({"apiGroups": [""], "resources": ["pods/proxy"], "verbs": ["get"]})
    code, answer = await apiserver.request(
        "PUT", "/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles/pod-reader", body=role
    )
    assert code == 200, answer
    await wait_for_code(lambda: jane_gets(f"{NS}/pods/web/proxy/"), 200)
    code, body = await apiserver.request("POST", f"{NS}/pods/web/proxy/", headers=as_jane)
    assert code == 403  # create needs its own verb


async def wait_for_code(probe: Callable[[], Awaitable[tuple[int, Any]]], code: int) -> tuple[int, Any]:
    """Ask until the answer has ``code`` (RBAC follows the store asynchronously)."""
    for _ in range(200):
        status, body = await probe()
        if status == code:
            return status, body
        await asyncio.sleep(0.05)
    raise AssertionError(f"still {status}: {body}")


def test_split_scheme_name_port() -> None:
    assert split_scheme_name_port("web") == ("", "web", "")
    assert split_scheme_name_port("web:80") == ("", "web", "80")
    assert split_scheme_name_port("https:web:metrics") == ("https", "web", "metrics")
    assert split_scheme_name_port("https:web:") == ("https", "web", "")
    for bad in ("", ":80", "ftp:web:80", "a:b:c:d"):
        assert split_scheme_name_port(bad) is None, bad


def test_target_netloc() -> None:
    assert Target(scheme="http", host="127.0.0.1", port=None).netloc == "127.0.0.1"
    assert Target(scheme="http", host="fd00::1", port=8080).netloc == "[fd00::1]:8080"


async def test_real_kubectl_get_raw_through_a_service(apiserver: RunningServer, backend: Backend) -> None:
    await create_service(
        apiserver,
        "web",
        target_port=backend.port,
        endpoints=[{"addresses": ["127.0.0.1"]}],  # ready unset: ready
    )
    code, out, err = await apiserver.kubectl(
        "get", "--raw", "/api/v1/namespaces/default/services/web:http/proxy/metrics"
    )
    assert code == 0, err
    assert orjson.loads(out)["path"] == "/metrics"
