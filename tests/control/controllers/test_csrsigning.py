"""The CSR signing controller: an approved kube-apiserver-client request gets a certificate from
the lab CA that the API server then accepts as that user; requests a signer will not sign get a
Failed condition; each signer's rules and the signing policy on their own."""

from __future__ import annotations

import base64
import json
import re
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from control.client.rest import RESTClient
from control.controllers.csrsigning import (
    BACKDATE,
    CSRSigningController,
    SignerValidationError,
    certificate_duration,
    check_request,
    needs_signing,
    new_controller,
    sign,
)
from control.controllers.kinds import CERTIFICATE_SIGNING_REQUESTS
from control.controllers.manager import ControllerContext, ControllerOptions
from control.pki import CertificateAuthority, load_ca, load_or_create_ca
from tests.control.apiserver import conftest as apiserver_fixtures
from tests.control.apiserver.conftest import RunningServer
from tests.control.certificate_requests import csr_body, new_request
from tests.control.controllers.harness import Cluster, running

apiserver = apiserver_fixtures.apiserver  # the shared fixture

CLIENT = "kubernetes.io/kube-apiserver-client"
SERVING = "kubernetes.io/kubelet-serving"
KUBELET_CLIENT = "kubernetes.io/kube-apiserver-client-kubelet"
YEAR = timedelta(days=365)


def lab_ca(server: RunningServer) -> CertificateAuthority:
    return load_ca(cert_file=server.data_dir / "pki" / "ca.crt", key_file=server.data_dir / "pki" / "ca.key")


def signer(server: RunningServer) -> Any:
    ca = lab_ca(server)
    return lambda ctx: CSRSigningController(ctx, ca=ca, duration=YEAR)


async def approve(client: RESTClient, csr: dict[str, Any]) -> None:
    conditions = [{"type": "Approved", "status": "True", "reason": "KubectlApprove", "message": "test"}]
    await client.replace(
        CERTIFICATE_SIGNING_REQUESTS, {**csr, "status": {"conditions": conditions}}, subresource="approval"
    )


async def issued(cluster: Cluster, name: str) -> x509.Certificate:
    async def certificate() -> str | None:
        csr = await cluster.client.get(CERTIFICATE_SIGNING_REQUESTS, name)
        return (csr.get("status") or {}).get("certificate")

    encoded = await cluster.wait_for(certificate, what=f"a certificate for CSR {name}")
    return x509.load_pem_x509_certificate(base64.b64decode(encoded))


async def test_an_approved_client_request_is_signed_and_the_certificate_logs_in(
    apiserver: RunningServer, tmp_path: Path
) -> None:
    request = new_request("jane", ["developers"])
    async with running(apiserver, signer(apiserver)) as cluster:
        before = datetime.now(UTC).replace(microsecond=0)
        created = await cluster.client.create(
            CERTIFICATE_SIGNING_REQUESTS,
            csr_body("jane", request, usages=("digital signature", "client auth"), expirationSeconds=3600),
        )
        await approve(cluster.client, created)
        certificate = await issued(cluster, "jane")
        after = datetime.now(UTC)

    ca = lab_ca(apiserver)
    assert certificate.issuer == ca.certificate.subject
    assert certificate.subject == x509.load_pem_x509_csr(request.pem).subject
    ca.certificate.public_key().verify(
        certificate.signature,
        certificate.tbs_certificate_bytes,
        ec.ECDSA(certificate.signature_hash_algorithm),
    )
    # an hour asked for, under the 8 h "short" threshold: not shortened by the backdate
    assert before - BACKDATE - timedelta(seconds=1) <= certificate.not_valid_before_utc <= after - BACKDATE
    assert before + timedelta(hours=1) - timedelta(seconds=1) <= certificate.not_valid_after_utc
    assert certificate.not_valid_after_utc <= after + timedelta(hours=1)
    usages = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert certificate.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature

    # the certificate is jane's identity at the API server
    (tmp_path / "jane.crt").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "jane.key").write_bytes(request.key_pem())
    context = ssl.create_default_context(cafile=str(apiserver.ca_file))
    context.load_cert_chain(str(tmp_path / "jane.crt"), str(tmp_path / "jane.key"))
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session,
        session.post(
            apiserver.url + "/apis/authentication.k8s.io/v1/selfsubjectreviews", json=review
        ) as answer,
    ):
        assert answer.status == 201
        body = await answer.json()
    assert body["status"]["userInfo"] == {
        "username": "jane",
        "groups": ["developers", "system:authenticated"],
    }


async def test_a_request_its_signer_refuses_is_marked_failed(apiserver: RunningServer) -> None:
    async with running(apiserver, signer(apiserver)) as cluster:
        created = await cluster.client.create(
            CERTIFICATE_SIGNING_REQUESTS, csr_body("web", new_request("web"), usages=("server auth",))
        )
        await approve(cluster.client, created)

        async def failed() -> dict[str, Any] | None:
            csr = await cluster.client.get(CERTIFICATE_SIGNING_REQUESTS, "web")
            found = [c for c in csr["status"].get("conditions", []) if c["type"] == "Failed"]
            return found[0] if found else None

        condition = await cluster.wait_for(failed, what="a Failed condition")
        csr = await cluster.client.get(CERTIFICATE_SIGNING_REQUESTS, "web")
    assert condition["reason"] == "SignerValidationFailure"
    assert condition["message"] == "invalid usage for client certificate: server auth"
    assert "certificate" not in csr["status"]


async def test_pending_denied_and_foreign_requests_are_left_alone(apiserver: RunningServer) -> None:
    async with running(apiserver, signer(apiserver)) as cluster:
        await cluster.client.create(CERTIFICATE_SIGNING_REQUESTS, csr_body("pending", new_request("pending")))
        foreign = await cluster.client.create(
            CERTIFICATE_SIGNING_REQUESTS,
            csr_body("foreign", new_request("foreign"), signer="example.com/mine"),
        )
        await approve(cluster.client, foreign)
        # a later request is signed: the earlier ones were seen and passed over
        later = await cluster.client.create(
            CERTIFICATE_SIGNING_REQUESTS, csr_body("later", new_request("later"))
        )
        await approve(cluster.client, later)
        await issued(cluster, "later")
        for name in ("pending", "foreign"):
            csr = await cluster.client.get(CERTIFICATE_SIGNING_REQUESTS, name)
            assert "certificate" not in csr["status"]


async def test_without_signing_files_the_controller_does_nothing() -> None:
    ctx = ControllerContext(client=_NoClient(), informers=_NoInformers())  # type: ignore[arg-type]
    await new_controller(ctx).run()  # returns at once, having watched nothing


async def test_named_but_missing_signing_files_fail_start_up(tmp_path: Path) -> None:
    options = ControllerOptions(
        cluster_signing_cert_file=str(tmp_path / "ca.crt"), cluster_signing_key_file=str(tmp_path / "ca.key")
    )
    ctx = ControllerContext(client=_NoClient(), informers=_NoInformers(), options=options)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="csrsigning: cannot load the lab CA"):
        new_controller(ctx)


def test_signing_files_and_duration_come_from_the_options(tmp_path: Path) -> None:
    load_or_create_ca(cert_file=tmp_path / "ca.crt", key_file=tmp_path / "ca.key")
    options = ControllerOptions(
        cluster_signing_cert_file=str(tmp_path / "ca.crt"),
        cluster_signing_key_file=str(tmp_path / "ca.key"),
        cluster_signing_duration=7200.0,
    )
    watched: list[Any] = []

    class Informers:
        def informer(self, resource: Any) -> Any:
            watched.append(resource)
            return object()

    ctx = ControllerContext(client=_NoClient(), informers=Informers(), options=options)  # type: ignore[arg-type]
    controller = new_controller(ctx)
    assert isinstance(controller, CSRSigningController)
    assert controller._duration == timedelta(hours=2)
    assert watched == [CERTIFICATE_SIGNING_REQUESTS]


class _NoClient:
    """Stands for a client the controller must not use while being built."""


class _NoInformers:
    def informer(self, resource: Any) -> Any:
        raise AssertionError("no informer is needed without signing files")


# --- each signer's rules -------------------------------------------------------------------------


def parsed(*args: Any, **kwargs: Any) -> x509.CertificateSigningRequest:
    return x509.load_pem_x509_csr(new_request(*args, **kwargs).pem)


@pytest.mark.parametrize(
    ("signer_name", "request_", "usages", "error"),
    [
        (CLIENT, ("anyone",), ["client auth", "key encipherment", "digital signature"], None),
        (
            CLIENT,
            ("anyone",),
            ["digital signature"],
            "invalid usage for client certificate: missing client auth",
        ),
        (KUBELET_CLIENT, ("system:node:n1", ["system:nodes"]), ["digital signature", "client auth"], None),
        (
            KUBELET_CLIENT,
            ("n1", ["system:nodes"]),
            ["digital signature", "client auth"],
            "subject common name does not begin with system:node:",
        ),
        (
            KUBELET_CLIENT,
            ("system:node:n1", ["admins"]),
            ["digital signature", "client auth"],
            "subject organization is not system:nodes",
        ),
        (
            KUBELET_CLIENT,
            ("system:node:n1", ["system:nodes"]),
            ["client auth"],
            "usages did not match ['client auth', 'digital signature', 'key encipherment']",
        ),
        (
            SERVING,
            ("system:node:n1", ["system:nodes"], {"dns_names": ["n1"]}),
            ["digital signature", "server auth"],
            None,
        ),
        (
            SERVING,
            ("system:node:n1", ["system:nodes"]),
            ["digital signature", "server auth"],
            "DNS or IP subjectAltName is required",
        ),
        (
            KUBELET_CLIENT,
            ("system:node:n1", ["system:nodes"], {"ip_addresses": ["10.0.0.1"]}),
            ["digital signature", "client auth"],
            "DNS or IP subjectAltNames are not allowed",
        ),
    ],
)
def test_signer_rules(
    signer_name: str, request_: tuple[Any, ...], usages: list[str], error: str | None
) -> None:
    args = [a for a in request_ if not isinstance(a, dict)]
    kwargs = next((a for a in request_ if isinstance(a, dict)), {})
    request = parsed(*args, **kwargs)
    if error is None:
        check_request(signer_name, request, usages)
    else:
        with pytest.raises(SignerValidationError, match="^" + re.escape(error) + "$"):
            check_request(signer_name, request, usages)


@pytest.mark.parametrize(
    ("expiration", "expected"),
    [(None, YEAR), (3600, timedelta(hours=1)), (600, timedelta(minutes=10)), (10**9, YEAR)],
)
def test_duration_is_the_default_capped_by_the_request(expiration: int | None, expected: timedelta) -> None:
    assert certificate_duration(default=YEAR, expiration_seconds=expiration) == expected


def test_long_lives_are_backdated_at_both_ends_and_capped_by_the_ca(tmp_path: Path) -> None:
    ca, _ = load_or_create_ca(cert_file=tmp_path / "ca.crt", key_file=tmp_path / "ca.key")
    now = datetime.now(UTC).replace(microsecond=0)
    request = parsed("svc", dns_names=["svc.example.com"])
    day = sign(
        ca=ca,
        request=request,
        usages=["server auth", "key encipherment"],
        duration=timedelta(days=1),
        now=now,
    )
    assert day.not_valid_before_utc == now - BACKDATE
    assert day.not_valid_after_utc == now + timedelta(days=1) - BACKDATE
    assert day.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName
    ) == ["svc.example.com"]
    forever = sign(ca=ca, request=request, usages=["client auth"], duration=timedelta(days=100_000), now=now)
    assert forever.not_valid_after_utc == ca.certificate.not_valid_after_utc
    assert forever.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "svc"


def test_only_approved_unfailed_unissued_requests_for_our_signers_need_signing() -> None:
    approved = {"type": "Approved", "status": "True"}
    base = {"spec": {"signerName": CLIENT}, "status": {"conditions": [approved]}}
    assert needs_signing(base)
    assert not needs_signing({**base, "status": {}})
    assert not needs_signing({**base, "status": {"conditions": [approved], "certificate": "eA=="}})
    assert not needs_signing(
        {**base, "status": {"conditions": [approved, {"type": "Failed", "status": "True"}]}}
    )
    assert not needs_signing({**base, "spec": {"signerName": "example.com/mine"}})


async def test_the_docs_tutorial_with_real_kubectl(apiserver: RunningServer, tmp_path: Path) -> None:
    """kubernetes.io "How to issue a certificate for a user": create, approve, read, log in."""
    request = new_request("myuser", ["dev-team"])
    (tmp_path / "myuser.key").write_bytes(request.key_pem())
    manifest = csr_body("myuser", request, expirationSeconds=86400)
    (tmp_path / "csr.json").write_text(json.dumps(manifest))
    async with running(apiserver, signer(apiserver)) as cluster:
        assert (await apiserver.kubectl("apply", "-f", str(tmp_path / "csr.json")))[0] == 0
        code, out, err = await apiserver.kubectl("get", "csr", "myuser")
        assert code == 0, err
        header, row = out.splitlines()
        assert header.split() == ["NAME", "AGE", "SIGNERNAME", "REQUESTOR", "REQUESTEDDURATION", "CONDITION"]
        assert row.split()[2:] == [CLIENT, "kubernetes-admin", "24h", "Pending"]
        code, out, err = await apiserver.kubectl("certificate", "approve", "myuser")
        assert (code, out) == (0, "certificatesigningrequest.certificates.k8s.io/myuser approved\n"), err
        await issued(cluster, "myuser")
        code, encoded, err = await apiserver.kubectl(
            "get", "csr", "myuser", "-o", "jsonpath={.status.certificate}"
        )
        assert code == 0, err
        code, out, _ = await apiserver.kubectl("get", "csr", "myuser")
        assert out.splitlines()[1].split()[-1] == "Approved,Issued"
    (tmp_path / "myuser.crt").write_bytes(base64.b64decode(encoded))
    code, cluster_name, _ = await apiserver.kubectl("config", "view", "-o", "jsonpath={.clusters[0].name}")
    for args in (
        (
            "config",
            "set-credentials",
            "myuser",
            f"--client-key={tmp_path / 'myuser.key'}",
            f"--client-certificate={tmp_path / 'myuser.crt'}",
            "--embed-certs=true",
        ),
        ("config", "set-context", "myuser", f"--cluster={cluster_name}", "--user=myuser"),
    ):
        code, _, err = await apiserver.kubectl(*args)
        assert code == 0, err
    code, out, err = await apiserver.kubectl("--context", "myuser", "auth", "whoami", "-o", "json")
    assert code == 0, err
    assert json.loads(out)["status"]["userInfo"] == {
        "username": "myuser",
        "groups": ["dev-team", "system:authenticated"],
    }


async def test_kubectl_deny_marks_the_request_denied(apiserver: RunningServer, tmp_path: Path) -> None:
    (tmp_path / "csr.json").write_text(json.dumps(csr_body("unwanted", new_request("unwanted"))))
    assert (await apiserver.kubectl("create", "-f", str(tmp_path / "csr.json")))[0] == 0
    code, out, err = await apiserver.kubectl("certificate", "deny", "unwanted")
    assert (code, out) == (0, "certificatesigningrequest.certificates.k8s.io/unwanted denied\n"), err
    code, out, _ = await apiserver.kubectl("get", "csr", "unwanted", "--no-headers")
    assert out.split()[-1] == "Denied"
    code, out, err = await apiserver.kubectl("describe", "csr", "unwanted")
    assert code == 0, err
    described = {
        line.split(":", 1)[0].strip(): line.split(":", 1)[1].strip()
        for line in out.splitlines()
        if ":" in line
    }
    assert described["Requesting User"] == "kubernetes-admin"
    assert described["Status"] == "Denied"
    assert described["Common Name"] == "unwanted"
