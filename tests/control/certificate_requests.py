"""PKCS#10 certificate requests for the CertificateSigningRequest tests: a fresh P-256 key and a
request for the subject and SANs asked, PEM and as a CSR's ``spec.request`` carries it (base64)."""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class Request:
    key: ec.EllipticCurvePrivateKey
    pem: bytes

    @property
    def encoded(self) -> str:
        return base64.b64encode(self.pem).decode("ascii")

    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )


def new_request(
    common_name: str,
    organizations: Sequence[str] = (),
    *,
    dns_names: Sequence[str] = (),
    ip_addresses: Sequence[str] = (),
) -> Request:
    key = ec.generate_private_key(ec.SECP256R1())
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    attributes += [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attributes))
    sans: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    request = builder.sign(key, hashes.SHA256())
    return Request(key=key, pem=request.public_bytes(serialization.Encoding.PEM))


def csr_body(
    name: str,
    request: Request,
    *,
    signer: str = "kubernetes.io/kube-apiserver-client",
    usages: Sequence[str] = ("client auth",),
    **spec: Any,
) -> dict[str, Any]:
    """A CertificateSigningRequest as a user would write it."""
    return {
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {"name": name},
        "spec": {"request": request.encoded, "signerName": signer, "usages": list(usages), **spec},
    }
