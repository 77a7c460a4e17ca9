"""Request paths and methods map to verbs, kinds and names as upstream's RequestInfoFactory."""

import pytest

from control.apiserver.requestinfo import parse_request


@pytest.mark.parametrize(
    ("method", "path", "query", "expected"),
    [
        ("GET", "/api/v1/pods", {}, ("list", "", "v1", "", "pods", "", "")),
        ("GET", "/api/v1/namespaces/web/pods", {}, ("list", "", "v1", "web", "pods", "", "")),
        ("GET", "/api/v1/namespaces/web/pods", {"watch": "true"}, ("watch", "", "v1", "web", "pods", "", "")),
        ("GET", "/api/v1/namespaces/web/pods/p1", {}, ("get", "", "v1", "web", "pods", "p1", "")),
        ("GET", "/api/v1/namespaces/web/pods/p1/log", {}, ("get", "", "v1", "web", "pods", "p1", "log")),
        ("POST", "/api/v1/namespaces/web/pods", {}, ("create", "", "v1", "web", "pods", "", "")),
        (
            "PUT",
            "/api/v1/namespaces/web/pods/p1/status",
            {},
            ("update", "", "v1", "web", "pods", "p1", "status"),
        ),
        ("DELETE", "/api/v1/namespaces/web/pods", {}, ("deletecollection", "", "v1", "web", "pods", "", "")),
        ("DELETE", "/api/v1/namespaces/web/pods/p1", {}, ("delete", "", "v1", "web", "pods", "p1", "")),
        (
            "PATCH",
            "/apis/apps/v1/namespaces/web/deployments/front/scale",
            {},
            ("patch", "apps", "v1", "web", "deployments", "front", "scale"),
        ),
        ("GET", "/api/v1/namespaces", {}, ("list", "", "v1", "", "namespaces", "", "")),
        ("GET", "/api/v1/namespaces/web", {}, ("get", "", "v1", "", "namespaces", "web", "")),
        (
            "PUT",
            "/api/v1/namespaces/web/finalize",
            {},
            ("update", "", "v1", "", "namespaces", "web", "finalize"),
        ),
        ("GET", "/api/v1/namespaces/web/status", {}, ("get", "", "v1", "", "namespaces", "web", "status")),
        (
            "GET",
            "/apis/rbac.authorization.k8s.io/v1/clusterroles/view",
            {},
            ("get", "rbac.authorization.k8s.io", "v1", "", "clusterroles", "view", ""),
        ),
    ],
)
def test_resource_requests(method, path, query, expected):
    info = parse_request(method=method, path=path, query=query)
    assert info.is_resource_request
    got = (info.verb, info.group, info.version, info.namespace, info.resource, info.name, info.subresource)
    assert got == expected


@pytest.mark.parametrize(
    "path",
    ["/", "/healthz", "/api", "/apis", "/api/v1", "/apis/apps", "/apis/apps/v1", "/openapi/v3", "/version"],
)
def test_non_resource_requests(path):
    assert not parse_request(method="GET", path=path, query={}).is_resource_request


def test_proxy_path_keeps_the_remaining_segments():
    info = parse_request(method="GET", path="/api/v1/namespaces/a/pods/p/proxy/x/y", query={})
    assert (info.subresource, info.parts) == ("proxy", ("x", "y"))
