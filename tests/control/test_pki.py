"""The lab PKI: what it creates, that real TLS accepts it, and what it reuses or renews."""

from __future__ import annotations

import asyncio
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from control.pki import (
    ADMIN_GROUPS,
    ADMIN_USER,
    CA_VALIDITY,
    FRONT_PROXY_CLIENT_USER,
    LEAF_VALIDITY,
    RENEW_BEFORE,
    LabPKI,
    Outcome,
    PKIError,
    PKIFiles,
    ensure_client_certificate,
    ensure_lab_pki,
    ensure_service_account_keys,
    issue_client_certificate,
    load_ca,
    load_or_create_ca,
    write_file_atomically,
)

IPS = ["127.0.0.1", "127.96.0.1", "127.0.0.2"]
DNS = [
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
]


@pytest.fixture
def pki(tmp_path: Path) -> LabPKI:
    return ensure_lab_pki(files=PKIFiles(tmp_path / "pki"), ip_addresses=IPS)


def load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def sans(cert: x509.Certificate) -> tuple[set[str], set[str]]:
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(names.get_values_for_type(x509.DNSName)), {
        str(ip) for ip in names.get_values_for_type(x509.IPAddress)
    }


def test_a_new_pki_has_every_file_with_private_keys_owner_only(pki: LabPKI) -> None:
    files = pki.files
    assert pki.outcomes == {
        name: Outcome.CREATED
        for name in ("ca", "apiserver", "admin", "service-account", "front-proxy-ca", "front-proxy-client")
    }
    for key in (
        files.ca_key,
        files.apiserver_key,
        files.admin_key,
        files.service_account_key,
        files.front_proxy_ca_key,
        files.front_proxy_client_key,
    ):
        assert mode(key) == 0o600, key
    for public in (
        files.ca_cert,
        files.apiserver_cert,
        files.admin_cert,
        files.service_account_public_key,
        files.front_proxy_ca_cert,
        files.front_proxy_client_cert,
    ):
        assert mode(public) == 0o644, public
    assert mode(files.directory) == 0o700
    # Atomic writes leave no temporary files behind.
    assert sorted(p.name for p in files.directory.iterdir()) == sorted(
        [
            "ca.crt",
            "ca.key",
            "apiserver.crt",
            "apiserver.key",
            "admin.crt",
            "admin.key",
            "sa.key",
            "sa.pub",
            "front-proxy-ca.crt",
            "front-proxy-ca.key",
            "front-proxy-client.crt",
            "front-proxy-client.key",
        ]
    )


def test_the_ca_is_self_signed_for_ten_years(pki: LabPKI) -> None:
    ca = load_cert(pki.files.ca_cert)
    ca.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign
    lifetime = ca.not_valid_after_utc - ca.not_valid_before_utc
    assert CA_VALIDITY <= lifetime <= CA_VALIDITY + timedelta(hours=1)


def test_leaves_are_issued_by_the_ca_for_their_purpose(pki: LabPKI) -> None:
    ca = load_cert(pki.files.ca_cert)
    for path, purpose in (
        (pki.files.apiserver_cert, ExtendedKeyUsageOID.SERVER_AUTH),
        (pki.files.admin_cert, ExtendedKeyUsageOID.CLIENT_AUTH),
    ):
        cert = load_cert(path)
        cert.verify_directly_issued_by(ca)
        assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
        assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [purpose]
        assert cert.not_valid_after_utc - cert.not_valid_before_utc <= LEAF_VALIDITY + timedelta(hours=1)


def test_serving_certificate_names_every_address_clients_dial(pki: LabPKI) -> None:
    cert = load_cert(pki.files.apiserver_cert)
    assert sans(cert) == (set(DNS), set(IPS))
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "kube-apiserver"


def test_admin_certificate_is_kubernetes_admin_in_system_masters(pki: LabPKI) -> None:
    subject = load_cert(pki.files.admin_cert).subject
    assert [a.value for a in subject.get_attributes_for_oid(NameOID.COMMON_NAME)] == [ADMIN_USER]
    assert [a.value for a in subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == list(ADMIN_GROUPS)
    assert ADMIN_USER == "kubernetes-admin" and ADMIN_GROUPS == ("system:masters",)


def test_client_certificate_for_any_identity_carries_every_group(pki: LabPKI, tmp_path: Path) -> None:
    cert_file, key_file = tmp_path / "node.crt", tmp_path / "node.key"
    outcome = ensure_client_certificate(
        ca=pki.ca,
        cert_file=cert_file,
        key_file=key_file,
        user="system:node:node-1",
        groups=["system:nodes", "system:authenticated", "system:nodes"],
    )
    assert outcome is Outcome.CREATED
    subject = load_cert(cert_file).subject
    assert subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "system:node:node-1"
    assert [a.value for a in subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == [
        "system:nodes",
        "system:authenticated",
    ]
    assert mode(key_file) == 0o600
    # Asking again for the same identity keeps it; a different group set reissues it.
    same = {"ca": pki.ca, "cert_file": cert_file, "key_file": key_file, "user": "system:node:node-1"}
    assert (
        ensure_client_certificate(**same, groups=["system:nodes", "system:authenticated"]) is Outcome.REUSED
    )
    assert ensure_client_certificate(**same, groups=["system:nodes"]) is Outcome.RENEWED


def test_an_issued_client_certificate_is_fresh_each_time_and_kept_nowhere(pki: LabPKI) -> None:
    before = sorted(path.name for path in pki.files.directory.iterdir())
    cert_pem, key_pem = issue_client_certificate(ca=pki.ca, user="jane", groups=["dev", "ops", "dev"])
    cert = x509.load_pem_x509_certificate(cert_pem)
    cert.verify_directly_issued_by(pki.ca.certificate)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "jane"
    assert [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == ["dev", "ops"]
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.CLIENT_AUTH
    ]
    key = serialization.load_pem_private_key(key_pem, password=None)
    assert key.public_key() == cert.public_key()
    assert cert.not_valid_after_utc - cert.not_valid_before_utc <= LEAF_VALIDITY + timedelta(hours=1)
    again, _ = issue_client_certificate(ca=pki.ca, user="jane")
    assert x509.load_pem_x509_certificate(again).serial_number != cert.serial_number
    assert sorted(path.name for path in pki.files.directory.iterdir()) == before


def test_an_issued_client_certificate_honours_its_validity_and_refuses_none(pki: LabPKI) -> None:
    now = datetime.now(UTC)
    cert_pem, _ = issue_client_certificate(ca=pki.ca, user="ci", validity=timedelta(hours=2), now=now)
    cert = x509.load_pem_x509_certificate(cert_pem)
    assert cert.not_valid_after_utc == (now + timedelta(hours=2)).replace(microsecond=0)
    with pytest.raises(ValueError, match="valid for some time"):
        issue_client_certificate(ca=pki.ca, user="ci", validity=timedelta(0))
    with pytest.raises(ValueError, match="user name"):
        issue_client_certificate(ca=pki.ca, user="")


def test_load_ca_reads_the_ca_and_refuses_a_missing_or_mismatched_pair(pki: LabPKI, tmp_path: Path) -> None:
    ca = load_ca(cert_file=pki.files.ca_cert, key_file=pki.files.ca_key)
    assert ca.certificate == pki.ca.certificate
    with pytest.raises(PKIError, match="cannot load the lab CA"):
        load_ca(cert_file=tmp_path / "none.crt", key_file=tmp_path / "none.key")
    other = load_or_create_ca(cert_file=tmp_path / "other.crt", key_file=tmp_path / "other.key")[0]
    assert other.certificate != ca.certificate
    with pytest.raises(PKIError, match="is not the key of"):
        load_ca(cert_file=pki.files.ca_cert, key_file=tmp_path / "other.key")


def test_client_certificate_needs_a_user(pki: LabPKI, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="user name"):
        ensure_client_certificate(
            ca=pki.ca, cert_file=tmp_path / "x.crt", key_file=tmp_path / "x.key", user=""
        )


async def tls_exchange(
    *, pki: LabPKI, server_hostname: str, client_cert: Path, client_key: Path
) -> tuple[bytes, dict]:
    """A real TLS connection: the server presents apiserver.crt and requires a client
    certificate from the lab CA; the client trusts only ca.crt. Returns what the client
    read (b"hello" once both sides accepted each other) and the server's view of the
    client certificate."""
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(pki.files.apiserver_cert, pki.files.apiserver_key)
    server_context.load_verify_locations(cafile=pki.files.ca_cert)
    server_context.verify_mode = ssl.CERT_REQUIRED
    peer: dict = {}

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer.update(writer.get_extra_info("peercert") or {})
        writer.write(b"hello")
        await writer.drain()
        writer.close()

    client_context = ssl.create_default_context(cafile=pki.files.ca_cert)
    client_context.load_cert_chain(client_cert, client_key)
    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=server_context)
    async with server:
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client_context, server_hostname=server_hostname
        )
        try:
            # With TLS 1.3 the server judges the client certificate after the client's
            # handshake is done: a rejection shows up here, as an alert or a closed stream.
            reply = await reader.read()
        except (ssl.SSLError, ConnectionResetError):
            reply = b""
        finally:
            writer.close()
    return reply, peer


@pytest.mark.parametrize(
    "name", ["127.0.0.1", "127.96.0.1", "localhost", "kubernetes.default.svc.cluster.local"]
)
async def test_real_tls_accepts_the_chain_in_both_directions(pki: LabPKI, name: str) -> None:
    reply, peer = await tls_exchange(
        pki=pki, server_hostname=name, client_cert=pki.files.admin_cert, client_key=pki.files.admin_key
    )
    assert reply == b"hello"
    subject = {key: value for rdn in peer["subject"] for key, value in rdn}
    assert subject == {"commonName": ADMIN_USER, "organizationName": "system:masters"}


async def test_real_tls_rejects_a_name_not_in_the_certificate(pki: LabPKI) -> None:
    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        await tls_exchange(
            pki=pki,
            server_hostname="127.0.0.9",
            client_cert=pki.files.admin_cert,
            client_key=pki.files.admin_key,
        )


async def test_real_tls_rejects_a_client_certificate_from_another_ca(pki: LabPKI, tmp_path: Path) -> None:
    other = ensure_lab_pki(files=PKIFiles(tmp_path / "other"), ip_addresses=IPS)
    reply, peer = await tls_exchange(
        pki=pki,
        server_hostname="127.0.0.1",
        client_cert=other.files.admin_cert,
        client_key=other.files.admin_key,
    )
    assert reply == b""
    assert peer == {}


def test_resuming_reuses_every_file_unchanged(pki: LabPKI) -> None:
    before = {path.name: path.read_bytes() for path in pki.files.directory.iterdir()}
    again = ensure_lab_pki(files=pki.files, ip_addresses=IPS)
    assert set(again.outcomes.values()) == {Outcome.REUSED}
    assert {path.name: path.read_bytes() for path in pki.files.directory.iterdir()} == before


def test_changed_addresses_renew_only_the_serving_certificate(pki: LabPKI) -> None:
    admin_before = pki.files.admin_cert.read_bytes()
    again = ensure_lab_pki(files=pki.files, ip_addresses=["127.0.0.1", "127.96.0.1", "127.0.0.3"])
    assert again.outcomes == {
        "ca": Outcome.REUSED,
        "apiserver": Outcome.RENEWED,
        "admin": Outcome.REUSED,
        "service-account": Outcome.REUSED,
        "front-proxy-ca": Outcome.REUSED,
        "front-proxy-client": Outcome.REUSED,
    }
    assert sans(load_cert(pki.files.apiserver_cert))[1] == {"127.0.0.1", "127.96.0.1", "127.0.0.3"}
    assert pki.files.admin_cert.read_bytes() == admin_before


def test_leaves_close_to_expiry_are_renewed_and_the_ca_kept(pki: LabPKI) -> None:
    later = datetime.now(UTC) + LEAF_VALIDITY - RENEW_BEFORE + timedelta(days=1)
    again = ensure_lab_pki(files=pki.files, ip_addresses=IPS, now=later)
    assert again.outcomes["ca"] is Outcome.REUSED
    assert again.outcomes["apiserver"] is again.outcomes["admin"] is Outcome.RENEWED
    assert load_cert(pki.files.admin_cert).not_valid_after_utc > later + LEAF_VALIDITY - timedelta(hours=1)


def test_an_expired_ca_is_replaced_and_everything_reissued(pki: LabPKI) -> None:
    old_ca = pki.files.ca_cert.read_bytes()
    much_later = datetime.now(UTC) + CA_VALIDITY + timedelta(days=1)
    again = ensure_lab_pki(files=pki.files, ip_addresses=IPS, now=much_later)
    assert again.outcomes["ca"] is Outcome.RENEWED
    assert again.outcomes["apiserver"] is again.outcomes["admin"] is Outcome.RENEWED
    assert pki.files.ca_cert.read_bytes() != old_ca
    load_cert(pki.files.admin_cert).verify_directly_issued_by(load_cert(pki.files.ca_cert))


def test_a_leaf_from_another_ca_is_reissued(pki: LabPKI, tmp_path: Path) -> None:
    other = ensure_lab_pki(files=PKIFiles(tmp_path / "other"), ip_addresses=IPS)
    pki.files.admin_cert.write_bytes(other.files.admin_cert.read_bytes())
    pki.files.admin_key.write_bytes(other.files.admin_key.read_bytes())
    again = ensure_lab_pki(files=pki.files, ip_addresses=IPS)
    assert again.outcomes["admin"] is Outcome.RENEWED
    load_cert(pki.files.admin_cert).verify_directly_issued_by(load_cert(pki.files.ca_cert))


@pytest.mark.parametrize("damage", ["garbage", "missing key", "other key"])
def test_a_damaged_leaf_is_reissued(pki: LabPKI, damage: str) -> None:
    if damage == "garbage":
        pki.files.apiserver_cert.write_text("not a certificate")
    elif damage == "missing key":
        pki.files.apiserver_key.unlink()
    else:
        pki.files.apiserver_key.write_bytes(pki.files.admin_key.read_bytes())
    again = ensure_lab_pki(files=pki.files, ip_addresses=IPS)
    assert again.outcomes["apiserver"] is Outcome.RENEWED
    cert = load_cert(pki.files.apiserver_cert)
    key = serialization.load_pem_private_key(pki.files.apiserver_key.read_bytes(), password=None)
    assert cert.public_key() == key.public_key()


def test_loosened_key_permissions_are_restored(pki: LabPKI) -> None:
    pki.files.ca_key.chmod(0o644)
    pki.files.admin_key.chmod(0o640)
    ensure_lab_pki(files=pki.files, ip_addresses=IPS)
    assert mode(pki.files.ca_key) == mode(pki.files.admin_key) == 0o600


def test_a_ca_certificate_without_its_key_is_an_error_saying_how_to_recover(pki: LabPKI) -> None:
    pki.files.ca_key.unlink()
    with pytest.raises(PKIError, match=r"Restore both files, or remove .*pki"):
        ensure_lab_pki(files=pki.files, ip_addresses=IPS)


def test_a_ca_key_that_does_not_match_is_an_error(pki: LabPKI) -> None:
    pki.files.ca_key.write_bytes(pki.files.admin_key.read_bytes())
    with pytest.raises(PKIError, match="is not the key of"):
        load_or_create_ca(cert_file=pki.files.ca_cert, key_file=pki.files.ca_key)


def test_service_account_keys_sign_and_verify(pki: LabPKI) -> None:
    private = serialization.load_pem_private_key(pki.files.service_account_key.read_bytes(), password=None)
    public = serialization.load_pem_public_key(pki.files.service_account_public_key.read_bytes())
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    assert isinstance(public, ec.EllipticCurvePublicKey)
    signature = private.sign(b"header.claims", ec.ECDSA(hashes.SHA256()))
    public.verify(signature, b"header.claims", ec.ECDSA(hashes.SHA256()))
    with pytest.raises(InvalidSignature):
        public.verify(signature, b"header.forged", ec.ECDSA(hashes.SHA256()))


def test_a_lost_service_account_public_key_is_rewritten_from_the_private_one(pki: LabPKI) -> None:
    key_before = pki.files.service_account_key.read_bytes()
    public_before = pki.files.service_account_public_key.read_bytes()
    pki.files.service_account_public_key.unlink()
    outcome = ensure_service_account_keys(
        key_file=pki.files.service_account_key, public_key_file=pki.files.service_account_public_key
    )
    assert outcome is Outcome.REUSED
    assert pki.files.service_account_key.read_bytes() == key_before
    assert pki.files.service_account_public_key.read_bytes() == public_before


def test_a_service_account_key_of_the_wrong_type_is_replaced(pki: LabPKI) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    pki.files.service_account_key.write_bytes(
        rsa_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    outcome = ensure_service_account_keys(
        key_file=pki.files.service_account_key, public_key_file=pki.files.service_account_public_key
    )
    assert outcome is Outcome.RENEWED
    private = serialization.load_pem_private_key(pki.files.service_account_key.read_bytes(), password=None)
    assert isinstance(private, ec.EllipticCurvePrivateKey)


def test_an_invalid_ip_address_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"127\.0\.0\.300"):
        ensure_lab_pki(files=PKIFiles(tmp_path / "pki"), ip_addresses=["127.0.0.300"])


def test_write_file_atomically_replaces_content_and_sets_mode(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "file"
    write_file_atomically(target, b"one", mode=0o600)
    write_file_atomically(target, b"two", mode=0o640)
    assert target.read_bytes() == b"two"
    assert mode(target) == 0o640
    assert [p.name for p in target.parent.iterdir()] == ["file"]


# --- the front proxy (kubeadm's front-proxy-ca and front-proxy-client) ---------------------------


def test_pki_files_name_the_front_proxy_files_as_kubeadm(tmp_path: Path) -> None:
    files = PKIFiles(tmp_path)
    assert (
        files.front_proxy_ca_cert.name,
        files.front_proxy_ca_key.name,
        files.front_proxy_client_cert.name,
        files.front_proxy_client_key.name,
    ) == ("front-proxy-ca.crt", "front-proxy-ca.key", "front-proxy-client.crt", "front-proxy-client.key")


def test_the_front_proxy_ca_is_its_own_self_signed_ca_not_the_lab_ca(pki: LabPKI) -> None:
    front_ca = load_cert(pki.files.front_proxy_ca_cert)
    lab_ca = load_cert(pki.files.ca_cert)
    front_ca.verify_directly_issued_by(front_ca)
    assert front_ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    common_name = front_ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert str(common_name).startswith("front-proxy-ca@")
    assert front_ca.subject != lab_ca.subject
    assert front_ca.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) != lab_ca.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_the_front_proxy_client_is_front_proxy_client_for_client_auth_from_the_front_proxy_ca(
    pki: LabPKI,
) -> None:
    client = load_cert(pki.files.front_proxy_client_cert)
    client.verify_directly_issued_by(load_cert(pki.files.front_proxy_ca_cert))
    with pytest.raises((InvalidSignature, ValueError)):
        client.verify_directly_issued_by(load_cert(pki.files.ca_cert))
    assert FRONT_PROXY_CLIENT_USER == "front-proxy-client"
    assert client.subject == x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "front-proxy-client")])
    assert list(client.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.CLIENT_AUTH
    ]
    assert client.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False


def test_an_old_data_dir_without_front_proxy_files_gets_them_and_keeps_the_rest(pki: LabPKI) -> None:
    for path in (
        pki.files.front_proxy_ca_cert,
        pki.files.front_proxy_ca_key,
        pki.files.front_proxy_client_cert,
        pki.files.front_proxy_client_key,
    ):
        path.unlink()
    admin_before = pki.files.admin_cert.read_bytes()
    again = ensure_lab_pki(files=pki.files, ip_addresses=IPS)
    assert again.outcomes["front-proxy-ca"] is again.outcomes["front-proxy-client"] is Outcome.CREATED
    assert {again.outcomes[name] for name in ("ca", "apiserver", "admin", "service-account")} == {
        Outcome.REUSED
    }
    assert pki.files.admin_cert.read_bytes() == admin_before
    load_cert(pki.files.front_proxy_client_cert).verify_directly_issued_by(
        load_cert(pki.files.front_proxy_ca_cert)
    )


def test_a_new_front_proxy_ca_reissues_the_front_proxy_client(pki: LabPKI) -> None:
    pki.files.front_proxy_ca_cert.unlink()
    pki.files.front_proxy_ca_key.unlink()
    again = ensure_lab_pki(files=pki.files, ip_addresses=IPS)
    assert again.outcomes["front-proxy-ca"] is Outcome.CREATED
    assert again.outcomes["front-proxy-client"] is Outcome.RENEWED
    load_cert(pki.files.front_proxy_client_cert).verify_directly_issued_by(
        load_cert(pki.files.front_proxy_ca_cert)
    )


def test_a_front_proxy_ca_without_its_key_is_an_error(pki: LabPKI) -> None:
    pki.files.front_proxy_ca_key.unlink()
    with pytest.raises(PKIError, match="front-proxy-ca"):
        ensure_lab_pki(files=pki.files, ip_addresses=IPS)
