"""CertificateSigningRequests through the real API server: discovery, the requestor recorded from
the authenticated user, approval and denial through ``/approval``, and the admission plugins that
hold approvers to ``approve`` and signers to ``sign`` on the signer, and keep ``system:masters``
out of client certificates."""

from __future__ import annotations

import base64
from typing import Any

from control.pki import issue_client_certificate
from tests.control.apiserver.conftest import RunningServer
from tests.control.apiserver.test_client_certificates import lab_ca
from tests.control.certificate_requests import csr_body, new_request

CSRS = "/apis/certificates.k8s.io/v1/certificatesigningrequests"
RBAC = "/apis/rbac.authorization.k8s.io/v1"


def as_user(name: str, *groups: str) -> dict[str, str]:
    headers = {"Impersonate-User": name}
    if groups:
        headers["Impersonate-Group"] = groups[0]  # aiohttp headers: one value per name here
    return headers


async def grant(server: RunningServer, user: str, rules: list[dict[str, Any]]) -> None:
    """A ClusterRole with ``rules`` bound to ``user``."""
    name = f"csr-test-{user}"
    status, body = await server.request(
        "POST", f"{RBAC}/clusterroles", body={"metadata": {"name": name}, "rules": rules}
    )
    assert status == 201, body
    binding = {
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
    }
    status, body = await server.request("POST", f"{RBAC}/clusterrolebindings", body=binding)
    assert status == 201, body


CREATE_CSRS = {
    "apiGroups": ["certificates.k8s.io"],
    "resources": ["certificatesigningrequests"],
    "verbs": ["*"],
}


def subresource_rule(*subresources: str) -> dict[str, Any]:
    return {
        "apiGroups": ["certificates.k8s.io"],
        "resources": [f"certificatesigningrequests/{s}" for s in subresources],
        "verbs": ["update", "patch"],
    }


def signer_rule(verb: str, *names: str) -> dict[str, Any]:
    return {
        "apiGroups": ["certificates.k8s.io"],
        "resources": ["signers"],
        "verbs": [verb],
        "resourceNames": list(names),
    }


def approval(csr: dict[str, Any], kind: str = "Approved") -> dict[str, Any]:
    """What ``kubectl certificate approve|deny`` PUTs to /approval."""
    body = dict(csr)
    body["status"] = {
        "conditions": [
            {"type": kind, "status": "True", "reason": f"Kubectl{kind[:-1]}", "message": "by the test"}
        ]
    }
    return body


async def create(server: RunningServer, name: str, **kwargs: Any) -> dict[str, Any]:
    status, body = await server.request("POST", CSRS, body=csr_body(name, new_request(name)), **kwargs)
    assert status == 201, body
    return body


async def test_discovery_lists_the_kind_and_its_subresources(apiserver: RunningServer) -> None:
    status, body = await apiserver.request("GET", "/apis/certificates.k8s.io/v1")
    assert status == 200
    resources = {r["name"]: r for r in body["resources"]}
    assert resources["certificatesigningrequests"]["shortNames"] == ["csr"]
    assert resources["certificatesigningrequests"]["namespaced"] is False
    assert sorted(resources["certificatesigningrequests/approval"]["verbs"]) == ["get", "patch", "update"]
    assert "certificatesigningrequests/status" in resources


async def test_create_records_the_requesting_user_and_drops_a_forged_one(apiserver: RunningServer) -> None:
    await grant(apiserver, "jane", [CREATE_CSRS])
    body = csr_body("jane", new_request("jane", ["dev"]))
    body["spec"].update(username="kubernetes-admin", groups=["system:masters"])
    body["status"] = {"conditions": [{"type": "Approved", "status": "True"}]}
    status, created = await apiserver.request("POST", CSRS, body=body, headers=as_user("jane", "dev"))
    assert status == 201, created
    assert created["spec"]["username"] == "jane"
    assert created["spec"]["groups"] == ["dev", "system:authenticated"]
    assert created["status"] == {}


async def test_an_invalid_request_is_422(apiserver: RunningServer) -> None:
    body = csr_body("bad", new_request("bad"), expirationSeconds=60)
    body["spec"]["request"] = base64.b64encode(b"hello").decode()
    status, answer = await apiserver.request("POST", CSRS, body=body)
    assert status == 422
    assert [c["field"] for c in answer["details"]["causes"]] == ["spec.request", "spec.expirationSeconds"]


async def test_spec_is_immutable_through_the_main_resource(apiserver: RunningServer) -> None:
    created = await create(apiserver, "immutable")
    changed = {**created, "spec": {**created["spec"], "usages": ["server auth"]}}
    changed["metadata"] = {**created["metadata"], "labels": {"x": "y"}}
    status, updated = await apiserver.request("PUT", f"{CSRS}/immutable", body=changed)
    assert status == 200, updated
    assert updated["spec"]["usages"] == ["client auth"]
    assert updated["metadata"]["labels"] == {"x": "y"}


async def test_approve_and_deny_through_the_approval_subresource(apiserver: RunningServer) -> None:
    created = await create(apiserver, "approve-me")
    status, approved = await apiserver.request("PUT", f"{CSRS}/approve-me/approval", body=approval(created))
    assert status == 200, approved
    (condition,) = approved["status"]["conditions"]
    assert condition["type"] == "Approved" and condition["lastUpdateTime"] and condition["lastTransitionTime"]
    status, table = await apiserver.request(
        "GET", f"{CSRS}/approve-me", headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}
    )
    assert status == 200
    assert table["rows"][0]["cells"][-1] == "Approved"
    status, answer = await apiserver.request(
        "PUT", f"{CSRS}/approve-me/approval", body=approval(approved, "Denied")
    )
    assert status == 422
    assert 'updates may not remove a condition of type "Approved"' in answer["message"]

    denied = await create(apiserver, "deny-me")
    status, body = await apiserver.request("PUT", f"{CSRS}/deny-me/approval", body=approval(denied, "Denied"))
    assert status == 200, body
    assert [c["type"] for c in body["status"]["conditions"]] == ["Denied"]


async def test_approving_needs_approve_on_the_signer(apiserver: RunningServer) -> None:
    await grant(apiserver, "approver", [CREATE_CSRS, subresource_rule("approval")])
    created = await create(apiserver, "guarded")
    headers = as_user("approver")
    status, answer = await apiserver.request(
        "PUT", f"{CSRS}/guarded/approval", body=approval(created), headers=headers
    )
    assert status == 403
    assert answer["message"] == (
        'certificatesigningrequests.certificates.k8s.io "guarded" is forbidden: user not permitted to approve '
        'requests with signerName "kubernetes.io/kube-apiserver-client"'
    )
    # the domain wildcard grants every signer of the domain
    await grant(
        apiserver,
        "wildcard",
        [CREATE_CSRS, subresource_rule("approval"), signer_rule("approve", "kubernetes.io/*")],
    )
    status, answer = await apiserver.request(
        "PUT", f"{CSRS}/guarded/approval", body=approval(created), headers=as_user("wildcard")
    )
    assert status == 200, answer


async def test_setting_a_certificate_needs_sign_on_the_signer(apiserver: RunningServer) -> None:
    created = await create(apiserver, "to-sign")
    status, approved = await apiserver.request("PUT", f"{CSRS}/to-sign/approval", body=approval(created))
    assert status == 200
    cert, _ = issue_client_certificate(ca=lab_ca(apiserver), user="to-sign", groups=())
    signed = {**approved, "status": {**approved["status"], "certificate": base64.b64encode(cert).decode()}}
    await grant(apiserver, "signer", [CREATE_CSRS, subresource_rule("status")])
    status, answer = await apiserver.request(
        "PUT", f"{CSRS}/to-sign/status", body=signed, headers=as_user("signer")
    )
    assert status == 403
    assert answer["message"].endswith(
        'user not permitted to sign requests with signerName "kubernetes.io/kube-apiserver-client"'
    )
    await grant(
        apiserver,
        "real-signer",
        [subresource_rule("status"), signer_rule("sign", "kubernetes.io/kube-apiserver-client")],
    )
    status, answer = await apiserver.request(
        "PUT", f"{CSRS}/to-sign/status", body=signed, headers=as_user("real-signer")
    )
    assert status == 200, answer
    assert answer["status"]["certificate"] == signed["status"]["certificate"]


async def test_the_status_path_cannot_approve(apiserver: RunningServer) -> None:
    created = await create(apiserver, "no-self-approval")
    status, answer = await apiserver.request("PUT", f"{CSRS}/no-self-approval/status", body=approval(created))
    assert status == 422
    assert 'updates may not add a condition of type "Approved"' in answer["message"]


async def test_system_masters_is_refused_for_client_certificates(apiserver: RunningServer) -> None:
    body = csr_body("root", new_request("root", ["system:masters"]))
    status, answer = await apiserver.request("POST", CSRS, body=body)
    assert status == 403
    assert answer["message"] == (
        'certificatesigningrequests.certificates.k8s.io "root" is forbidden: use of '
        "kubernetes.io/kube-apiserver-client signer with system:masters group is not allowed"
    )
    other = csr_body("elsewhere", new_request("elsewhere", ["system:masters"]), signer="example.com/mine")
    status, answer = await apiserver.request("POST", CSRS, body=other)
    assert status == 201, answer


async def test_the_certificate_controller_account_may_sign_the_kubernetes_signers(
    apiserver: RunningServer,
) -> None:
    created = await create(apiserver, "for-the-controller")
    status, approved = await apiserver.request(
        "PUT", f"{CSRS}/for-the-controller/approval", body=approval(created)
    )
    assert status == 200
    cert, _ = issue_client_certificate(ca=lab_ca(apiserver), user="for-the-controller", groups=())
    signed = {**approved, "status": {**approved["status"], "certificate": base64.b64encode(cert).decode()}}
    controller = {
        "Impersonate-User": "system:serviceaccount:kube-system:certificate-controller",
        "Impersonate-Group": "system:serviceaccounts",
    }
    status, answer = await apiserver.request(
        "PUT", f"{CSRS}/for-the-controller/status", body=signed, headers=controller
    )
    assert status == 200, answer


async def test_requests_can_be_selected_by_signer(apiserver: RunningServer) -> None:
    await create(apiserver, "for-clients")
    mine = csr_body("for-me", new_request("for-me"), signer="example.com/mine")
    assert (await apiserver.request("POST", CSRS, body=mine))[0] == 201
    status, listed = await apiserver.request(
        "GET", CSRS, params={"fieldSelector": "spec.signerName=example.com/mine"}
    )
    assert status == 200
    assert [item["metadata"]["name"] for item in listed["items"]] == ["for-me"]
    status, answer = await apiserver.request("GET", CSRS, params={"fieldSelector": "spec.usages=x"})
    assert status == 400
    assert "field label not supported: spec.usages" in answer["message"]
