"""The lab's public-key infrastructure: the lab CA, the API server's serving certificate,
client certificates, the service-account signing key, and the front proxy's own CA and client
certificate.

Shaped after kubeadm's ``certs`` phase, scaled down to one machine:

- a self-signed CA (10 years) signs everything; clients trust ``ca.crt`` and the API
  server trusts client certificates it signed;
- the serving certificate names every address and DNS name a client may dial
  (``127.0.0.1``, the ``kubernetes`` Service IP, the advertise address,
  ``kubernetes.default.svc.cluster.local``...);
- a client certificate *is* an identity, as in kube-apiserver's x509 authenticator:
  CN = user name, one O per group (``system:masters`` is the superuser group), so later
  components (kubelets as ``system:node:<name>`` in ``system:nodes``, the scheduler, the
  controller-manager) get theirs from the same function;
- the service-account key pair signs and verifies ServiceAccount tokens (ES256 JWTs);
- a second CA, the front-proxy CA, signs only the front-proxy client certificate the API
  server presents when it proxies to an extension API server (kube-aggregator's
  ``--proxy-client-cert-file``). As in kubeadm it is *not* the lab CA: extension servers
  trust X-Remote-User headers from whoever that CA vouches for, so a CA that also signs
  every user's certificate would let any user claim to be anyone.

Every ``ensure_*`` function is idempotent: it reuses what is on disk when it is still
right (signed by the current CA, matching subject and SANs, the key matching the
certificate, not about to expire) and otherwise writes a fresh one. That is what lets
``kubelab up`` resume an existing data directory without invalidating kubeconfigs,
while a changed bind address still gets a serving certificate that names it. Keys are
ECDSA P-256: generating one takes well under a millisecond, so a new lab's PKI costs
nothing noticeable. Private keys are written 0600 and every file is replaced atomically,
so a crash never leaves half a key behind.

:func:`serving_ssl_context` is the one TLS server set-up every component's secure port uses
(the API server, the kubelet, the controllers process): TLS 1.2+, HTTP/1.1 over ALPN, client
certificates checked against the lab CA.
"""

from __future__ import annotations

import enum
import ipaddress
import os
import ssl
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_VALIDITY = timedelta(days=3650)
LEAF_VALIDITY = timedelta(days=365)
# A leaf certificate with less than this left is replaced on the next start.
RENEW_BEFORE = timedelta(days=30)
# Certificates are valid from a little before "now" so a peer whose clock lags still accepts them.
BACKDATE = timedelta(minutes=5)

ADMIN_USER = "kubernetes-admin"
ADMIN_GROUPS = ("system:masters",)
APISERVER_COMMON_NAME = "kube-apiserver"
DEFAULT_CLUSTER_DOMAIN = "cluster.local"
# How the API server authenticates to kubelets (logs, exec, port-forward), as kubeadm names it.
APISERVER_KUBELET_CLIENT_USER = "kube-apiserver-kubelet-client"
APISERVER_KUBELET_CLIENT_GROUPS = ("kubeadm:cluster-admins",)
# The API server's identity as the aggregator's front proxy, as kubeadm names it; extension API
# servers accept request headers only from a client certificate with this CN
# (--requestheader-allowed-names).
FRONT_PROXY_CLIENT_USER = "front-proxy-client"

_CURVE = ec.SECP256R1()


class PKIError(Exception):
    """The PKI on disk cannot be used as it is; the message says how to repair it."""


class Outcome(enum.Enum):
    """What an ``ensure_*`` call did, so callers can report progress truthfully."""

    CREATED = "created"
    REUSED = "reused"
    RENEWED = "renewed"


@dataclass(frozen=True, slots=True)
class CertificateAuthority:
    certificate: x509.Certificate
    private_key: ec.EllipticCurvePrivateKey


@dataclass(frozen=True, slots=True)
class PKIFiles:
    """Where the lab's credentials live (named as kubeadm names them, minus its subfolders)."""

    directory: Path

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca.key"

    @property
    def apiserver_cert(self) -> Path:
        return self.directory / "apiserver.crt"

    @property
    def apiserver_key(self) -> Path:
        return self.directory / "apiserver.key"

    @property
    def admin_cert(self) -> Path:
        return self.directory / "admin.crt"

    @property
    def admin_key(self) -> Path:
        return self.directory / "admin.key"

    @property
    def service_account_key(self) -> Path:
        return self.directory / "sa.key"

    @property
    def service_account_public_key(self) -> Path:
        return self.directory / "sa.pub"

    @property
    def apiserver_kubelet_client_cert(self) -> Path:
        return self.directory / "apiserver-kubelet-client.crt"

    @property
    def apiserver_kubelet_client_key(self) -> Path:
        return self.directory / "apiserver-kubelet-client.key"

    @property
    def controllers_serving_cert(self) -> Path:
        return self.directory / "controllers-serving.crt"

    @property
    def controllers_serving_key(self) -> Path:
        return self.directory / "controllers-serving.key"

    @property
    def front_proxy_ca_cert(self) -> Path:
        return self.directory / "front-proxy-ca.crt"

    @property
    def front_proxy_ca_key(self) -> Path:
        return self.directory / "front-proxy-ca.key"

    @property
    def front_proxy_client_cert(self) -> Path:
        return self.directory / "front-proxy-client.crt"

    @property
    def front_proxy_client_key(self) -> Path:
        return self.directory / "front-proxy-client.key"

    def kubelet_serving_cert(self, node_name: str) -> Path:
        return self.directory / f"kubelet-{node_name}.crt"

    def kubelet_serving_key(self, node_name: str) -> Path:
        return self.directory / f"kubelet-{node_name}.key"


@dataclass(frozen=True, kw_only=True)
class LabPKI:
    """The lab's credentials, the CA to sign more with, and what preparing them did."""

    files: PKIFiles
    ca: CertificateAuthority
    # "ca", "apiserver", "admin", "service-account", "front-proxy-ca", "front-proxy-client"
    # -> what ensure_lab_pki did to each.
    outcomes: dict[str, Outcome]


def write_file_atomically(path: Path, data: bytes, *, mode: int) -> None:
    """Replace ``path`` with ``data`` (durably, with ``mode``) so readers see old or new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as tmp:
            tmp.write(data)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def apiserver_names(*, cluster_domain: str = DEFAULT_CLUSTER_DOMAIN) -> list[str]:
    """The DNS names of the API server: how clients inside and outside the cluster dial it."""
    return [
        "localhost",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        f"kubernetes.default.svc.{cluster_domain}",
    ]


def ensure_lab_pki(
    *,
    files: PKIFiles,
    ip_addresses: Iterable[str],
    dns_names: Iterable[str] | None = None,
    now: datetime | None = None,
) -> LabPKI:
    """Create or reuse the lab's CA, serving certificate, admin certificate and SA keys.

    ``ip_addresses`` are the serving certificate's IP SANs (the caller knows the bind,
    advertise and Service addresses); ``dns_names`` default to :func:`apiserver_names`.
    """
    now = now or datetime.now(UTC)
    files.directory.mkdir(parents=True, exist_ok=True)
    files.directory.chmod(0o700)
    ca, ca_outcome = load_or_create_ca(cert_file=files.ca_cert, key_file=files.ca_key, now=now)
    outcomes = {"ca": ca_outcome}
    outcomes["apiserver"] = ensure_serving_certificate(
        ca=ca,
        cert_file=files.apiserver_cert,
        key_file=files.apiserver_key,
        common_name=APISERVER_COMMON_NAME,
        dns_names=apiserver_names() if dns_names is None else list(dns_names),
        ip_addresses=list(ip_addresses),
        now=now,
    )
    outcomes["admin"] = ensure_client_certificate(
        ca=ca,
        cert_file=files.admin_cert,
        key_file=files.admin_key,
        user=ADMIN_USER,
        groups=ADMIN_GROUPS,
        now=now,
    )
    outcomes["service-account"] = ensure_service_account_keys(
        key_file=files.service_account_key, public_key_file=files.service_account_public_key
    )
    outcomes.update(ensure_front_proxy_pki(files=files, now=now))
    return LabPKI(files=files, ca=ca, outcomes=outcomes)


def ensure_front_proxy_pki(*, files: PKIFiles, now: datetime | None = None) -> dict[str, Outcome]:
    """kubeadm's ``front-proxy-ca`` and ``front-proxy-client``: a CA of its own and the client
    certificate (CN ``front-proxy-client``, client auth) it signs, which the API server presents
    to extension API servers. A new front-proxy CA renews the client certificate with it."""
    now = now or datetime.now(UTC)
    ca, ca_outcome = load_or_create_ca(
        cert_file=files.front_proxy_ca_cert, key_file=files.front_proxy_ca_key, now=now, name="front-proxy-ca"
    )
    client_outcome = ensure_client_certificate(
        ca=ca,
        cert_file=files.front_proxy_client_cert,
        key_file=files.front_proxy_client_key,
        user=FRONT_PROXY_CLIENT_USER,
        now=now,
    )
    return {"front-proxy-ca": ca_outcome, "front-proxy-client": client_outcome}


def load_or_create_ca(
    *, cert_file: Path, key_file: Path, now: datetime | None = None, name: str = "kubelab-ca"
) -> tuple[CertificateAuthority, Outcome]:
    """The CA on disk, or a new one (subject ``<name>@<unix time>``) when there is none (or it
    has expired).

    A CA certificate without its key (or an unreadable one) is an error rather than a
    silent replacement: replacing the CA invalidates every kubeconfig handed out.
    """
    now = now or datetime.now(UTC)
    if not cert_file.exists() and not key_file.exists():
        return _create_ca(cert_file=cert_file, key_file=key_file, now=now, name=name), Outcome.CREATED
    ca = load_ca(cert_file=cert_file, key_file=key_file)
    if not ca.certificate.not_valid_before_utc <= now < ca.certificate.not_valid_after_utc:
        return _create_ca(cert_file=cert_file, key_file=key_file, now=now, name=name), Outcome.RENEWED
    _restrict_permissions(key_file)
    return ca, Outcome.REUSED


def load_ca(*, cert_file: Path, key_file: Path) -> CertificateAuthority:
    """The CA on disk as it is (for signing more certificates); PKIError when it is missing,
    unreadable, or its key does not match."""
    try:
        certificate = x509.load_pem_x509_certificate(cert_file.read_bytes())
        private_key = _load_ec_key(key_file)
    except (OSError, ValueError, TypeError) as exc:
        raise PKIError(
            f"cannot load the lab CA from {cert_file} and {key_file}: {exc}. Restore both files, or remove "
            f"{cert_file.parent} to create a new CA (every kubeconfig issued so far stops working)"
        ) from exc
    if _public_bytes(private_key) != _public_bytes(certificate.public_key()):
        raise PKIError(
            f"{key_file} is not the key of {cert_file}. Restore the matching pair, or remove "
            f"{cert_file.parent} to create a new CA (every kubeconfig issued so far stops working)"
        )
    return CertificateAuthority(certificate=certificate, private_key=private_key)


def ensure_serving_certificate(
    *,
    ca: CertificateAuthority,
    cert_file: Path,
    key_file: Path,
    common_name: str,
    dns_names: Sequence[str],
    ip_addresses: Sequence[str],
    now: datetime | None = None,
) -> Outcome:
    """A TLS server certificate for exactly these names and addresses (a changed set renews it)."""
    sans = [x509.DNSName(name) for name in dict.fromkeys(dns_names)]
    sans += [x509.IPAddress(ipaddress.ip_address(address)) for address in dict.fromkeys(ip_addresses)]
    return _ensure_leaf(
        ca=ca,
        cert_file=cert_file,
        key_file=key_file,
        subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]),
        sans=sans,
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
        now=now or datetime.now(UTC),
    )


def ensure_client_certificate(
    *,
    ca: CertificateAuthority,
    cert_file: Path,
    key_file: Path,
    user: str,
    groups: Sequence[str] = (),
    now: datetime | None = None,
) -> Outcome:
    """A TLS client certificate that authenticates as ``user`` in ``groups`` (CN and O)."""
    return _ensure_leaf(
        ca=ca,
        cert_file=cert_file,
        key_file=key_file,
        subject=_client_subject(user=user, groups=groups),
        sans=None,
        usage=ExtendedKeyUsageOID.CLIENT_AUTH,
        now=now or datetime.now(UTC),
    )


def issue_client_certificate(
    *,
    ca: CertificateAuthority,
    user: str,
    groups: Sequence[str] = (),
    validity: timedelta = LEAF_VALIDITY,
    now: datetime | None = None,
) -> tuple[bytes, bytes]:
    """A fresh client certificate for ``user`` in ``groups`` and its key, as PEM, kept nowhere:
    what ``kubeadm kubeconfig user`` hands out (the lab keeps no copy of a user's key)."""
    if validity <= timedelta(0):
        raise ValueError(f"a certificate must be valid for some time, not {validity}")
    private_key = ec.generate_private_key(_CURVE)
    certificate = _sign_leaf(
        ca=ca,
        public_key=private_key.public_key(),
        subject=_client_subject(user=user, groups=groups),
        sans=None,
        usage=ExtendedKeyUsageOID.CLIENT_AUTH,
        now=now or datetime.now(UTC),
        validity=validity,
    )
    return certificate.public_bytes(serialization.Encoding.PEM), _private_pem(private_key)


def _client_subject(*, user: str, groups: Sequence[str]) -> x509.Name:
    """CN = user, one O per group: the x509 authenticator's reading of a subject."""
    if not user:
        raise ValueError("a client certificate needs a user name (its CN)")
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, group) for group in dict.fromkeys(groups)]
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, user))
    return x509.Name(attributes)


def ensure_apiserver_kubelet_client_certificate(
    *, files: PKIFiles, ca: CertificateAuthority, now: datetime | None = None
) -> Outcome:
    """The client certificate the API server presents to kubelets (kubeadm's
    ``apiserver-kubelet-client``)."""
    return ensure_client_certificate(
        ca=ca,
        cert_file=files.apiserver_kubelet_client_cert,
        key_file=files.apiserver_kubelet_client_key,
        user=APISERVER_KUBELET_CLIENT_USER,
        groups=APISERVER_KUBELET_CLIENT_GROUPS,
        now=now,
    )


def ensure_kubelet_serving_certificate(
    *,
    files: PKIFiles,
    ca: CertificateAuthority,
    node_name: str,
    addresses: Sequence[str],
    now: datetime | None = None,
) -> Outcome:
    """A node's kubelet serving certificate (CN ``system:node:<name>``, the node's name and
    addresses as SANs), so the API server can verify the kubelet it dials."""
    return ensure_serving_certificate(
        ca=ca,
        cert_file=files.kubelet_serving_cert(node_name),
        key_file=files.kubelet_serving_key(node_name),
        common_name=f"system:node:{node_name}",
        dns_names=[node_name],
        ip_addresses=addresses,
        now=now,
    )


def ensure_controllers_serving_certificate(
    *, files: PKIFiles, ca: CertificateAuthority, now: datetime | None = None
) -> Outcome:
    """The serving certificate of the controllers process's secure ports (kube-controller-manager's
    10257 and kube-scheduler's 10259, both on 127.0.0.1): ``localhost`` and 127.0.0.1, signed by
    the lab CA so clients of the lab trust it."""
    return ensure_serving_certificate(
        ca=ca,
        cert_file=files.controllers_serving_cert,
        key_file=files.controllers_serving_key,
        common_name="kube-controller-manager",
        dns_names=["localhost"],
        ip_addresses=["127.0.0.1"],
        now=now,
    )


def ensure_service_account_keys(*, key_file: Path, public_key_file: Path) -> Outcome:
    """The key pair that signs ServiceAccount tokens; the public half is rewritten from the private one."""
    try:
        private_key = _load_ec_key(key_file)
    except FileNotFoundError:
        outcome = Outcome.CREATED
    except (OSError, ValueError, TypeError):
        outcome = Outcome.RENEWED
    else:
        _restrict_permissions(key_file)
        public_pem = _public_pem(private_key)
        if _read_or_none(public_key_file) != public_pem:
            write_file_atomically(public_key_file, public_pem, mode=0o644)
        return Outcome.REUSED
    private_key = ec.generate_private_key(_CURVE)
    write_file_atomically(key_file, _private_pem(private_key), mode=0o600)
    write_file_atomically(public_key_file, _public_pem(private_key), mode=0o644)
    return outcome


def _create_ca(*, cert_file: Path, key_file: Path, now: datetime, name: str) -> CertificateAuthority:
    private_key = ec.generate_private_key(_CURVE)
    # A unique subject per CA (as k3s does) keeps two labs' CAs apart in any trust store.
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name}@{int(now.timestamp())}")])
    public_key = private_key.public_key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .sign(private_key, hashes.SHA256())
    )
    write_file_atomically(key_file, _private_pem(private_key), mode=0o600)
    write_file_atomically(cert_file, certificate.public_bytes(serialization.Encoding.PEM), mode=0o644)
    return CertificateAuthority(certificate=certificate, private_key=private_key)


def _ensure_leaf(
    *,
    ca: CertificateAuthority,
    cert_file: Path,
    key_file: Path,
    subject: x509.Name,
    sans: list[x509.GeneralName] | None,
    usage: x509.ObjectIdentifier,
    now: datetime,
) -> Outcome:
    if not cert_file.exists() and not key_file.exists():
        outcome = Outcome.CREATED
    elif _leaf_is_current(
        ca=ca, cert_file=cert_file, key_file=key_file, subject=subject, sans=sans, usage=usage, now=now
    ):
        _restrict_permissions(key_file)
        return Outcome.REUSED
    else:
        outcome = Outcome.RENEWED
    private_key = ec.generate_private_key(_CURVE)
    certificate = _sign_leaf(
        ca=ca,
        public_key=private_key.public_key(),
        subject=subject,
        sans=sans,
        usage=usage,
        now=now,
        validity=LEAF_VALIDITY,
    )
    write_file_atomically(key_file, _private_pem(private_key), mode=0o600)
    write_file_atomically(cert_file, certificate.public_bytes(serialization.Encoding.PEM), mode=0o644)
    return outcome


def _sign_leaf(
    *,
    ca: CertificateAuthority,
    public_key: ec.EllipticCurvePublicKey,
    subject: x509.Name,
    sans: list[x509.GeneralName] | None,
    usage: x509.ObjectIdentifier,
    now: datetime,
    validity: timedelta,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.certificate.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(min(now + validity, ca.certificate.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.private_key.public_key()), critical=False
        )
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(ca.private_key, hashes.SHA256())


def _leaf_is_current(
    *,
    ca: CertificateAuthority,
    cert_file: Path,
    key_file: Path,
    subject: x509.Name,
    sans: list[x509.GeneralName] | None,
    usage: x509.ObjectIdentifier,
    now: datetime,
) -> bool:
    """Whether the pair on disk can be kept: readable, matching, issued by ``ca``, wanted as is."""
    try:
        certificate = x509.load_pem_x509_certificate(cert_file.read_bytes())
        private_key = _load_ec_key(key_file)
        certificate.verify_directly_issued_by(ca.certificate)
    except (OSError, ValueError, TypeError, InvalidSignature):
        return False
    if _public_bytes(private_key) != _public_bytes(certificate.public_key()):
        return False
    if certificate.subject != subject:
        return False
    if not certificate.not_valid_before_utc <= now < certificate.not_valid_after_utc - RENEW_BEFORE:
        return False
    try:
        present_usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False
    if list(present_usage) != [usage]:
        return False
    try:
        present_sans = set(certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        present_sans = set()
    return present_sans == set(sans or ())


def _load_ec_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise TypeError(f"{path} holds a {type(key).__name__}, expected an ECDSA key")
    return key


def _restrict_permissions(key_file: Path) -> None:
    """Private keys are owner-only even if someone loosened them (as ssh insists)."""
    if key_file.stat().st_mode & 0o077:
        key_file.chmod(0o600)


def _read_or_none(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _public_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _public_bytes(key: ec.EllipticCurvePrivateKey | CertificatePublicKeyTypes) -> bytes:
    public = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    return public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def serving_ssl_context(
    *, cert_file: Path, key_file: Path, client_ca_file: Path | None, require_client_certificate: bool = False
) -> ssl.SSLContext:
    """A secure port's TLS context: TLS 1.2+, the serving certificate, HTTP/1.1 over ALPN, and
    client certificates signed by ``client_ca_file`` checked when offered (or demanded, with
    ``require_client_certificate``). Unreadable or mismatched files raise ``OSError`` or
    ``ssl.SSLError``; the caller says which port they were for."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(cert_file), str(key_file))
    if client_ca_file is not None:
        context.load_verify_locations(cafile=str(client_ca_file))
        context.verify_mode = ssl.CERT_REQUIRED if require_client_certificate else ssl.CERT_OPTIONAL
    context.set_alpn_protocols(["http/1.1"])
    return context
