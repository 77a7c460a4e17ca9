"""Access and identity reviews over real HTTPS: what ``kubectl auth can-i`` / ``auth whoami``
and the Python ``kubernetes`` client see.

The server runs with ``--authorization-mode=RBAC`` and the bootstrap policy (a user bound to
``view``; every authenticated user may ask about itself).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import kubernetes
import orjson
import pytest

from control.lab import write_kubeconfig
from control.pki import PKIFiles, ensure_client_certificate, load_ca
from tests.control.apiserver.conftest import RunningServer, running_apiserver

KUBECTL = "/usr/bin/kubectl"
AUTHZ = "/apis/authorization.k8s.io/v1"
SSAR = f"{AUTHZ}/selfsubjectaccessreviews"
SAR = f"{AUTHZ}/subjectaccessreviews"
SSRR = f"{AUTHZ}/selfsubjectrulesreviews"
WHOAMI = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
GET_PODS = {"namespace": "default", "verb": "get", "resource": "pods"}
EXACTLY_ONE = (
    'spec.resourceAttributes: Invalid value: "null": '
    "exactly one of nonResourceAttributes or resourceAttributes must be specified"
)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_apiserver(tmp_path, authorization_modes=("RBAC",)) as running:
        yield running


def kubeconfig_for(server: RunningServer, tmp_path: Path, user: str | None) -> Path:
    """A kubeconfig for ``user`` (a fresh client certificate from the lab CA), or the admin's."""
    path = tmp_path / f"{user or 'admin'}.kubeconfig"
    if user is None:
        cert, key = server.cert_file, server.key_file
    else:
        files = PKIFiles(server.data_dir / "pki")
        ca = load_ca(cert_file=files.ca_cert, key_file=files.ca_key)
        cert, key = tmp_path / f"{user}.crt", tmp_path / f"{user}.key"
        ensure_client_certificate(ca=ca, cert_file=cert, key_file=key, user=user)
    write_kubeconfig(
        path=path,
        server_url=server.url,
        ca_file=server.ca_file,
        cert_file=cert,
        key_file=key,
        user=user or "admin",
    )
    return path


async def kubectl(kubeconfig: Path, *args: str) -> tuple[int, str, str]:
    """Run the real kubectl without blocking the loop the API server runs in."""
    env = {key: value for key, value in os.environ.items() if key != "KUBECONFIG"}
    process = await asyncio.create_subprocess_exec(
        KUBECTL,
        "--kubeconfig",
        str(kubeconfig),
        "--cache-dir",
        str(kubeconfig.parent / "kubectl-cache"),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def with_python_client(kubeconfig: Path, use: Callable[[kubernetes.client.ApiClient], Any]) -> Any:
    """Call the official (blocking) client in a thread, with an ApiClient closed afterwards."""

    def work() -> Any:
        api = kubernetes.config.new_client_from_config(config_file=str(kubeconfig))
        try:
            return use(api)
        finally:
            api.close()

    return await asyncio.to_thread(work)


# --- what the answers look like ------------------------------------------------------------------


async def test_self_subject_access_review_echoes_the_question_with_the_answer(server: RunningServer) -> None:
    code, body = await server.request(
        "POST",
        SSAR,
        body={
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": GET_PODS},
        },
    )
    assert code == 201
    assert body == {
        "kind": "SelfSubjectAccessReview",
        "apiVersion": "authorization.k8s.io/v1",
        "metadata": {"creationTimestamp": None},
        "spec": {"resourceAttributes": GET_PODS},
        "status": {"allowed": True},
    }


async def test_subject_access_review_answers_for_the_subject_not_the_caller(server: RunningServer) -> None:
    question = {
        "user": "nobody",
        "resourceAttributes": {"verb": "delete", "resource": "secrets", "namespace": "x"},
    }
    code, body = await server.request("POST", SAR, body={"spec": question})
    assert (code, body["status"]) == (201, {"allowed": False})
    assert body["spec"] == question
    question = {
        "user": "nobody",
        "groups": ["system:masters"],
        "nonResourceAttributes": {"path": "/x", "verb": "get"},
    }
    code, body = await server.request("POST", SAR, body={"spec": question})
    assert (code, body["status"]) == (201, {"allowed": True})


async def test_local_subject_access_review_is_confined_to_its_namespace(server: RunningServer) -> None:
    url = f"{AUTHZ}/namespaces/team-a/localsubjectaccessreviews"
    spec = {"groups": ["system:masters"], "resourceAttributes": {**GET_PODS, "namespace": "team-a"}}
    code, body = await server.request("POST", url, body={"spec": spec})
    assert code == 201
    assert body["metadata"] == {"creationTimestamp": None, "namespace": "team-a"}
    assert body["status"] == {"allowed": True}

    code, body = await server.request("POST", url, body={"spec": {**spec, "resourceAttributes": GET_PODS}})
    assert code == 422
    assert body["message"] == (
        'LocalSubjectAccessReview.authorization.k8s.io "" is invalid: spec.resourceAttributes.namespace: '
        'Invalid value: "default": must match metadata.namespace'
    )
    code, body = await server.request("POST", url, body={"metadata": {"namespace": "team-b"}, "spec": spec})
    assert (code, body["message"]) == (
        400,
        "the namespace of the provided object does not match the namespace sent on the request",
    )
    non_resource = {"groups": ["g"], "nonResourceAttributes": {"path": "/healthz", "verb": "get"}}
    code, body = await server.request("POST", url, body={"spec": non_resource})
    assert code == 422
    assert [cause["field"] for cause in body["details"]["causes"]] == ["spec.nonResourceAttributes"]


async def test_self_subject_rules_review_lists_what_the_caller_may_do(server: RunningServer) -> None:
    code, body = await server.request("POST", SSRR, body={"spec": {"namespace": "default"}})
    assert code == 201
    assert body == {
        "kind": "SelfSubjectRulesReview",
        "apiVersion": "authorization.k8s.io/v1",
        "metadata": {"creationTimestamp": None},
        "spec": {},
        "status": {
            "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
            "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
            "incomplete": False,
        },
    }
    code, body = await server.request("POST", SSRR, body={"spec": {}})
    assert (code, body["reason"], body["message"]) == (400, "BadRequest", "no namespace on request")


async def test_self_subject_review_reports_the_authenticated_user(server: RunningServer) -> None:
    code, body = await server.request("POST", WHOAMI, body={"kind": "SelfSubjectReview"})
    assert code == 201
    assert body["kind"] == "SelfSubjectReview" and body["apiVersion"] == "authentication.k8s.io/v1"
    assert body["metadata"]["creationTimestamp"].endswith("Z")
    assert body["status"] == {
        "userInfo": {"username": "kubernetes-admin", "groups": ["system:masters", "system:authenticated"]}
    }


# --- bad input ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "spec", "expected"),
    [
        (SSAR, {}, [EXACTLY_ONE]),
        (
            SSAR,
            {"resourceAttributes": GET_PODS, "nonResourceAttributes": {"path": "/api", "verb": "get"}},
            [
                'spec.nonResourceAttributes: Invalid value: authorization.NonResourceAttributes{Path:"/api", '
                'Verb:"get"}: cannot be specified in combination with resourceAttributes'
            ],
        ),
        (
            SAR,
            {"resourceAttributes": GET_PODS},
            ['spec.user: Invalid value: "": at least one of user or group must be specified'],
        ),
        (
            SAR,
            {"groups": []},
            [EXACTLY_ONE, 'spec.user: Invalid value: "": at least one of user or group must be specified'],
        ),
    ],
    ids=["ssar-no-attributes", "ssar-both-attributes", "sar-no-subject", "sar-nothing"],
)
async def test_invalid_reviews_are_422_with_upstreams_causes(
    server: RunningServer, path: str, spec: dict[str, Any], expected: list[str]
) -> None:
    code, body = await server.request("POST", path, body={"spec": spec})
    assert code == 422
    assert body["reason"] == "Invalid"
    # causes carry the field apart from the message (upstream's ErrorBody)
    assert [f"{cause['field']}: {cause['message']}" for cause in body["details"]["causes"]] == expected
    kind = "SelfSubjectAccessReview" if path == SSAR else "SubjectAccessReview"
    summary = expected[0] if len(expected) == 1 else "[" + ", ".join(expected) + "]"
    assert body["message"] == f'{kind}.authorization.k8s.io "" is invalid: {summary}'


async def test_review_metadata_must_be_empty_but_system_fields_are_wiped_first(server: RunningServer) -> None:
    wiped = {"creationTimestamp": "2025-01-01T00:00:00Z", "uid": "abc", "selfLink": "/x"}
    code, _ = await server.request(
        "POST", SSAR, body={"metadata": wiped, "spec": {"resourceAttributes": GET_PODS}}
    )
    assert code == 201
    code, body = await server.request(
        "POST", SSAR, body={"metadata": {"name": "mine"}, "spec": {"resourceAttributes": GET_PODS}}
    )
    assert (code, body["details"]["causes"][0]["field"]) == (422, "metadata")


async def test_bodies_that_do_not_decode_are_400(server: RunningServer) -> None:
    code, body = await server.request("POST", SAR, body={"spec": {"user": "a", "groups": "not-a-list"}})
    assert (code, body["reason"]) == (400, "BadRequest")
    code, body = await server.request("POST", SSAR, body={"kind": "SubjectAccessReview", "spec": {}})
    assert (code, body["message"]) == (
        400,
        "the kind in the data (SubjectAccessReview) does not match the expected kind (SelfSubjectAccessReview)",
    )
    code, body = await server.request("POST", SSAR, raw=b"")
    assert (code, body["message"]) == (400, "the body of the request was empty")


async def test_unknown_fields_warn_by_default_and_fail_when_strict(server: RunningServer) -> None:
    review = {"spec": {"resourceAttributes": {**GET_PODS, "verbb": "x"}}}
    async with server.session.post(
        server.url + SSAR, data=orjson.dumps(review), headers={"Content-Type": "application/json"}
    ) as response:
        assert response.status == 201
        assert response.headers.getall("Warning") == [
            '299 - "unknown field \\"spec.resourceAttributes.verbb\\""'
        ]
        assert (await response.json())["spec"]["resourceAttributes"] == GET_PODS
    code, body = await server.request("POST", SSAR, body=review, params={"fieldValidation": "Strict"})
    assert (code, body["message"]) == (
        400,
        'strict decoding error: unknown field "spec.resourceAttributes.verbb"',
    )


async def test_reviews_can_only_be_created(server: RunningServer) -> None:
    code, _ = await server.request("GET", SSAR)
    assert code == 405
    code, _ = await server.request("DELETE", f"{SSAR}/x")
    assert code == 405


# --- real clients as the admin -----------------------------------------------------------------------


async def test_kubectl_auth_as_the_admin(server: RunningServer, tmp_path: Path) -> None:
    admin = kubeconfig_for(server, tmp_path, None)
    assert await kubectl(admin, "auth", "can-i", "get", "pods") == (0, "yes\n", "")
    code, out, _ = await kubectl(admin, "auth", "can-i", "--list")
    assert code == 0
    assert out.splitlines()[0].split() == ["Resources", "Non-Resource", "URLs", "Resource", "Names", "Verbs"]
    assert out.splitlines()[1].split() == ["*.*", "[]", "[]", "[*]"]
    code, out, _ = await kubectl(admin, "auth", "whoami")
    assert code == 0
    assert [line.split(None, 1) for line in out.splitlines()] == [
        ["ATTRIBUTE", "VALUE"],
        ["Username", "kubernetes-admin"],
        ["Groups", "[system:masters system:authenticated]"],
    ]
    code, out, _ = await kubectl(admin, "auth", "whoami", "-o", "json")
    assert code == 0
    assert orjson.loads(out)["status"]["userInfo"]["username"] == "kubernetes-admin"


async def test_kubectl_as_lets_the_admin_act_as_someone_else(server: RunningServer, tmp_path: Path) -> None:
    admin = kubeconfig_for(server, tmp_path, None)
    code, out, err = await kubectl(
        admin, "auth", "whoami", "--as", "bob", "--as-group", "system:masters", "-o", "json"
    )
    assert code == 0, err
    assert orjson.loads(out)["status"]["userInfo"] == {
        "username": "bob",
        "groups": ["system:masters", "system:authenticated"],
    }


async def test_python_client_subject_access_review(server: RunningServer, tmp_path: Path) -> None:
    admin = kubeconfig_for(server, tmp_path, None)
    models = kubernetes.client

    def ask(api: kubernetes.client.ApiClient, **spec: Any) -> Any:
        review = models.V1SubjectAccessReview(spec=models.V1SubjectAccessReviewSpec(**spec))
        return kubernetes.client.AuthorizationV1Api(api).create_subject_access_review(review)

    delete_secrets = models.V1ResourceAttributes(namespace="kube-system", verb="delete", resource="secrets")
    nobody = await with_python_client(
        admin, lambda api: ask(api, user="nobody", resource_attributes=delete_secrets)
    )
    assert nobody.status.allowed is False
    assert nobody.spec.user == "nobody"
    masters = await with_python_client(
        admin, lambda api: ask(api, user="x", groups=["system:masters"], resource_attributes=delete_secrets)
    )
    assert masters.status.allowed is True


# --- a non-admin user, decided by RBAC ---------------------------------------------------------------


async def bind_view(server: RunningServer, user: str, namespace: str) -> None:
    """Bind ``user`` to ClusterRole view in ``namespace`` and wait until RBAC honours it."""
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": f"{user}-view", "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
    }
    code, body = await server.request(
        "POST", f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings", body=binding
    )
    assert code == 201, body
    question = {"spec": {"user": user, "resourceAttributes": {**GET_PODS, "namespace": namespace}}}
    async with asyncio.timeout(10):
        while True:
            code, body = await server.request("POST", SAR, body=question)
            if body["status"]["allowed"]:
                return
            await asyncio.sleep(0.05)  # the authorizer follows the store: poll for the binding


async def test_kubectl_auth_as_a_user_bound_to_view(server: RunningServer, tmp_path: Path) -> None:
    await bind_view(server, "alice", "default")
    alice = kubeconfig_for(server, tmp_path, "alice")
    assert await kubectl(alice, "auth", "can-i", "get", "pods") == (0, "yes\n", "")
    code, out, _ = await kubectl(alice, "auth", "can-i", "delete", "pods")
    assert (code, out.split()[0]) == (1, "no")
    code, out, _ = await kubectl(alice, "auth", "can-i", "get", "pods", "-n", "kube-system")
    assert (code, out.split()[0]) == (1, "no")
    assert await kubectl(alice, "auth", "can-i", "get", "/version") == (0, "yes\n", "")
    code, out, _ = await kubectl(alice, "auth", "can-i", "get", "/metrics")
    assert (code, out.split()[0]) == (1, "no")
    code, out, _ = await kubectl(alice, "auth", "can-i", "--list")
    assert code == 0
    pods = [line for line in out.splitlines() if line.startswith("pods ")]
    assert len(pods) == 1
    assert {"get", "list", "watch"} <= set(pods[0].rpartition("[")[2].rstrip("]").split())
    code, out, _ = await kubectl(alice, "auth", "whoami")
    assert code == 0
    assert [line.split(None, 1) for line in out.splitlines()][1:] == [
        ["Username", "alice"],
        ["Groups", "[system:authenticated]"],
    ]


async def test_kubectl_as_is_refused_for_a_user_without_impersonate(
    server: RunningServer, tmp_path: Path
) -> None:
    await bind_view(server, "alice", "default")
    alice = kubeconfig_for(server, tmp_path, "alice")
    code, _, err = await kubectl(
        alice, "get", "--raw", "/api/v1/namespaces/default/pods", "--as", "kubernetes-admin"
    )
    assert code == 1
    assert err.strip() == (
        'Error from server (Forbidden): users "kubernetes-admin" is forbidden: User "alice" cannot impersonate '
        'resource "users" in API group "" at the cluster scope'
    )
    # Commands that start with discovery fail there already, as against kube-apiserver (the
    # aggregated discovery client reports a refused /api as "unknown").
    code, _, err = await kubectl(alice, "get", "pods", "--as", "kubernetes-admin")
    assert code == 1
    assert err.splitlines()[-1] == "Error from server (Forbidden): unknown"
    code, out, _ = await kubectl(alice, "get", "pods")
    assert (code, out) == (0, "")


async def test_subject_access_reviews_follow_rbac(server: RunningServer, tmp_path: Path) -> None:
    await bind_view(server, "alice", "default")
    admin = kubeconfig_for(server, tmp_path, None)
    models = kubernetes.client

    def ask(api: kubernetes.client.ApiClient, verb: str) -> Any:
        attributes = models.V1ResourceAttributes(namespace="default", verb=verb, resource="pods")
        review = models.V1SubjectAccessReview(
            spec=models.V1SubjectAccessReviewSpec(user="alice", resource_attributes=attributes)
        )
        return kubernetes.client.AuthorizationV1Api(api).create_subject_access_review(review)

    assert (await with_python_client(admin, lambda api: ask(api, "list"))).status.allowed is True
    assert (await with_python_client(admin, lambda api: ask(api, "delete"))).status.allowed is False
