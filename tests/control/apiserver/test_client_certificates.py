"""Client certificates at the API server's door: the lab CA's, in date, name the user;
expired, not-yet-valid or foreign ones never get past the TLS handshake."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from control.pki import CertificateAuthority, issue_client_certificate, load_ca
from tests.control.apiserver.conftest import RunningServer

WHOAMI = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
REVIEW = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}


def lab_ca(server: RunningServer) -> CertificateAuthority:
    pki = server.data_dir / "pki"
    return load_ca(cert_file=pki / "ca.crt", key_file=pki / "ca.key")


async def whoami(server: RunningServer, tmp_path: Path, cert: bytes, key: bytes) -> tuple[int, dict]:
    (tmp_path / "c.crt").write_bytes(cert)
    (tmp_path / "c.key").write_bytes(key)
    context = ssl.create_default_context(cafile=str(server.ca_file))
    context.load_cert_chain(str(tmp_path / "c.crt"), str(tmp_path / "c.key"))
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session,
        session.post(server.url + WHOAMI, json=REVIEW) as response,
    ):
        return response.status, await response.json()


async def test_an_in_date_certificate_names_its_user_and_groups(
    apiserver: RunningServer, tmp_path: Path
) -> None:
    cert, key = issue_client_certificate(ca=lab_ca(apiserver), user="alice", groups=("devs",))
    code, review = await whoami(apiserver, tmp_path, cert, key)
    assert code == 201
    assert review["status"]["userInfo"] == {"username": "alice", "groups": ["devs", "system:authenticated"]}


@pytest.mark.parametrize(
    "issued",
    [datetime.now(UTC) - timedelta(days=3), datetime.now(UTC) + timedelta(days=3)],
    ids=["expired", "not-yet-valid"],
)
async def test_certificates_out_of_date_fail_the_handshake(
    apiserver: RunningServer, tmp_path: Path, issued: datetime
) -> None:
    cert, key = issue_client_certificate(
        ca=lab_ca(apiserver), user="alice", validity=timedelta(days=1), now=issued
    )
    with pytest.raises(aiohttp.ClientError):
        await whoami(apiserver, tmp_path, cert, key)


async def test_a_certificate_from_another_ca_fails_the_handshake(
    apiserver: RunningServer, tmp_path: Path
) -> None:
    real = lab_ca(apiserver)
    # the lab CA's name and certificate, but signed with another key: a forgery
    impostor = CertificateAuthority(
        certificate=real.certificate, private_key=ec.generate_private_key(ec.SECP256R1())
    )
    cert, key = issue_client_certificate(ca=impostor, user="kubernetes-admin", groups=("system:masters",))
    with pytest.raises(aiohttp.ClientError):
        await whoami(apiserver, tmp_path, cert, key)
