"""The CSR signing controller: approved CertificateSigningRequests for the kubernetes.io signers
get a certificate from the cluster CA (upstream's ``pkg/controller/certificates/signer``).

kube-controller-manager signs with ``--cluster-signing-cert-file``/``--cluster-signing-key-file``
(kubelab: the lab CA, ``<data dir>/pki/ca.{crt,key}``, the CA the API server trusts for client
certificates) for certificates valid ``--cluster-signing-duration`` (one year), or less when the
request's ``expirationSeconds`` asks for less (never under ten minutes). Without those files the
controller does nothing, as upstream skips it.

Three signers are served, each with upstream's rules for what it will sign; a request breaking
them gets a ``Failed`` condition (reason ``SignerValidationFailure``) instead of a certificate:

- ``kubernetes.io/kube-apiserver-client``: any subject; usages ``client auth`` plus optionally
  ``digital signature`` and ``key encipherment``;
- ``kubernetes.io/kube-apiserver-client-kubelet``: ``system:node:<name>`` in ``system:nodes``, no
  SANs, usages exactly {digital signature, client auth} (+ key encipherment);
- ``kubernetes.io/kubelet-serving``: the same subject, at least one DNS or IP SAN, no email or
  URI SANs, usages exactly {digital signature, server auth} (+ key encipherment).

Work is keyed by CSR name: a CSR that is approved (and not denied), not failed and has no
certificate yet is signed once and its ``/status`` written. Signing is the signer's policy
(:func:`sign`): the request's subject, SANs and public key; the usages as key usage and extended
key usage extensions; valid from five minutes ago (clock skew); a certificate whose life is eight
hours or more ends that much earlier too, and none outlives the CA.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from control.client import errors
from control.client.controller import Controller, PermanentError
from control.client.workqueue import RateLimitingQueue
from control.controllers.kinds import CERTIFICATE_SIGNING_REQUESTS
from control.controllers.manager import ControllerContext
from control.pki import CertificateAuthority, PKIError, load_ca
from control.resources import certificates

log = logging.getLogger("kubelab.controllers.csrsigning")

QUEUE_NAME = "certificate"  # upstream's certificate controller names its queue so

SIGNERS = (
    certificates.KUBE_APISERVER_CLIENT,
    certificates.KUBE_APISERVER_CLIENT_KUBELET,
    certificates.KUBELET_SERVING,
)
BACKDATE = timedelta(minutes=5)
SHORT = timedelta(hours=8)  # shorter lives are not shortened by the backdate
MIN_DURATION = timedelta(minutes=10)

Clock = Callable[[], datetime]
Obj = Mapping[str, Any]

_KEY_USAGES = {
    "signing": "digital_signature",
    "digital signature": "digital_signature",
    "content commitment": "content_commitment",
    "key encipherment": "key_encipherment",
    "key agreement": "key_agreement",
    "data encipherment": "data_encipherment",
    "cert sign": "key_cert_sign",
    "crl sign": "crl_sign",
    "encipher only": "encipher_only",
    "decipher only": "decipher_only",
}
_EXTENDED_KEY_USAGES = {
    "any": ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
    "server auth": ExtendedKeyUsageOID.SERVER_AUTH,
    "client auth": ExtendedKeyUsageOID.CLIENT_AUTH,
    "code signing": ExtendedKeyUsageOID.CODE_SIGNING,
    "email protection": ExtendedKeyUsageOID.EMAIL_PROTECTION,
    "s/mime": ExtendedKeyUsageOID.EMAIL_PROTECTION,
    "ipsec end system": x509.ObjectIdentifier("1.3.6.1.5.5.7.3.5"),
    "ipsec tunnel": x509.ObjectIdentifier("1.3.6.1.5.5.7.3.6"),
    "ipsec user": x509.ObjectIdentifier("1.3.6.1.5.5.7.3.7"),
    "timestamping": ExtendedKeyUsageOID.TIME_STAMPING,
    "ocsp signing": ExtendedKeyUsageOID.OCSP_SIGNING,
    "microsoft sgc": x509.ObjectIdentifier("1.3.6.1.4.1.311.10.3.3"),
    "netscape sgc": x509.ObjectIdentifier("2.16.840.1.113730.4.1"),
}
_NODE_PREFIX = "system:node:"
_NODES_GROUP = "system:nodes"


class SignerValidationError(ValueError):
    """The request is not one its signer signs (upstream: the signer's validator)."""


class SigningFilesError(RuntimeError):
    """The cluster signing certificate and key are named but cannot be used."""


# --- what each signer accepts ----------------------------------------------------------------


def check_request(signer: str, request: x509.CertificateSigningRequest, usages: Sequence[str]) -> None:
    """Raise :class:`SignerValidationError` unless ``signer`` signs ``request`` for ``usages``."""
    if signer == certificates.KUBE_APISERVER_CLIENT:
        _check_client_usages(usages)
    elif signer == certificates.KUBE_APISERVER_CLIENT_KUBELET:
        _check_kubelet(request, usages, serving=False)
    elif signer == certificates.KUBELET_SERVING:
        _check_kubelet(request, usages, serving=True)
    else:
        raise SignerValidationError(f"unsupported signer {signer!r}")


def _check_client_usages(usages: Sequence[str]) -> None:
    """``validAPIServerClientUsages``: client auth required, two optional extras, nothing else."""
    for usage in usages:
        if usage not in ("digital signature", "key encipherment", "client auth"):
            raise SignerValidationError(f"invalid usage for client certificate: {usage}")
    if "client auth" not in usages:
        raise SignerValidationError("invalid usage for client certificate: missing client auth")


def _check_kubelet(request: x509.CertificateSigningRequest, usages: Sequence[str], *, serving: bool) -> None:
    """``ValidateKubeletServingCSR`` / ``ValidateKubeletClientCSR``, checks in upstream's order."""
    organizations = [a.value for a in request.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    if organizations != [_NODES_GROUP]:
        raise SignerValidationError("subject organization is not system:nodes")
    sans = _sans(request)
    dns_or_ip = sans.get_values_for_type(x509.DNSName) + sans.get_values_for_type(x509.IPAddress)
    if serving and not dns_or_ip:
        raise SignerValidationError("DNS or IP subjectAltName is required")
    if not serving and dns_or_ip:
        raise SignerValidationError("DNS or IP subjectAltNames are not allowed")
    if sans.get_values_for_type(x509.RFC822Name):
        raise SignerValidationError("Email subjectAltNames are not allowed")
    if sans.get_values_for_type(x509.UniformResourceIdentifier):
        raise SignerValidationError("URI subjectAltNames are not allowed")
    purpose = "server auth" if serving else "client auth"
    required = {"digital signature", "key encipherment", purpose}
    common_name = _common_name(request)
    if not serving and not common_name.startswith(_NODE_PREFIX):
        raise SignerValidationError("subject common name does not begin with system:node:")
    if set(usages) not in (required, required - {"key encipherment"}) or len(set(usages)) != len(usages):
        raise SignerValidationError(f"usages did not match {sorted(required)}")
    if serving and not common_name.startswith(_NODE_PREFIX):
        raise SignerValidationError("subject common name does not begin with system:node:")


def _sans(request: x509.CertificateSigningRequest) -> x509.SubjectAlternativeName:
    try:
        return request.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return x509.SubjectAlternativeName([])


def _common_name(request: x509.CertificateSigningRequest) -> str:
    names = request.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


# --- signing ---------------------------------------------------------------------------------


def certificate_duration(*, default: timedelta, expiration_seconds: int | None) -> timedelta:
    """The signer's ``duration``: the default, or the requested life when shorter (10 min at least)."""
    if expiration_seconds is None:
        return default
    return max(MIN_DURATION, min(default, timedelta(seconds=expiration_seconds)))


def sign(
    *,
    ca: CertificateAuthority,
    request: x509.CertificateSigningRequest,
    usages: Sequence[str],
    duration: timedelta,
    now: datetime,
) -> x509.Certificate:
    """The CA's ``Sign`` under upstream's PermissiveSigningPolicy (see the module docstring)."""
    unknown = [u for u in usages if u not in _KEY_USAGES and u not in _EXTENDED_KEY_USAGES]
    if unknown:
        raise SignerValidationError(f"unrecognized usage: {unknown[0]}")
    not_after = now + duration if duration < SHORT else now + duration - BACKDATE
    not_after = min(not_after, ca.certificate.not_valid_after_utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(request.subject)
        .issuer_name(ca.certificate.subject)
        .public_key(request.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.private_key.public_key()), critical=False
        )
    )
    flags = {_KEY_USAGES[u] for u in usages if u in _KEY_USAGES}
    if flags:
        names = (
            "digital_signature",
            "content_commitment",
            "key_encipherment",
            "data_encipherment",
            "key_agreement",
            "key_cert_sign",
            "crl_sign",
            "encipher_only",
            "decipher_only",
        )
        key_agreement = "key_agreement" in flags
        values = {
            n: n in flags and (key_agreement or n not in ("encipher_only", "decipher_only")) for n in names
        }
        builder = builder.add_extension(x509.KeyUsage(**values), critical=True)
    extended: list[x509.ObjectIdentifier] = []
    for usage in usages:
        oid = _EXTENDED_KEY_USAGES.get(usage)
        if oid is not None and oid not in extended:
            extended.append(oid)
    if extended:
        builder = builder.add_extension(x509.ExtendedKeyUsage(extended), critical=False)
    sans = _sans(request)
    if list(sans):
        builder = builder.add_extension(sans, critical=False)
    return builder.sign(ca.private_key, hashes.SHA256())


# --- the controller --------------------------------------------------------------------------


def needs_signing(csr: Obj) -> bool:
    """Approved, not denied, not failed, no certificate yet, and for a signer served here."""
    types = certificates.condition_types(csr)
    status = csr.get("status") or {}
    return (
        certificates.APPROVED in types
        and certificates.DENIED not in types
        and certificates.FAILED not in types
        and not status.get("certificate")
        and (csr.get("spec") or {}).get("signerName") in SIGNERS
    )


class CSRSigningController:
    name = "csrsigning"

    def __init__(
        self,
        ctx: ControllerContext,
        *,
        ca: CertificateAuthority,
        duration: timedelta,
        clock: Clock = lambda: datetime.now(UTC),
        workers: int | None = None,
    ) -> None:
        self._client = ctx.client
        self._ca = ca
        self._duration = duration
        self._clock = clock
        self._workers = workers or ctx.options.concurrent_syncs
        self._csrs = ctx.informers.informer(CERTIFICATE_SIGNING_REQUESTS)
        self._queue: RateLimitingQueue[str] = RateLimitingQueue(name=QUEUE_NAME)

    async def run(self) -> None:
        self._queue = queue = RateLimitingQueue(name=QUEUE_NAME)
        csrs = self._csrs
        registration = csrs.add_event_handler(
            on_add=self._enqueue, on_update=lambda old, new: self._enqueue(new)
        )
        try:
            await Controller(self.name, queue, self.reconcile, workers=self._workers, informers=[csrs]).run()
        finally:
            csrs.remove_event_handler(registration)

    def _enqueue(self, csr: Obj) -> None:
        if needs_signing(csr):
            self._queue.add(csr["metadata"]["name"])

    async def reconcile(self, name: str) -> None:
        """Sign CSR ``name`` if it still needs it, or mark it Failed if its signer refuses it."""
        cached = self._csrs.cache.get_by_key(name)
        if cached is None or not needs_signing(cached):
            return
        spec = cached.get("spec") or {}
        usages = [str(u) for u in spec.get("usages") or []]
        try:
            request = certificates.parse_request(certificates.decode_bytes(spec.get("request")))
        except (ValueError, certificates.RequestError) as exc:
            raise PermanentError(f"unable to parse csr {name!r}: {exc}") from exc
        status = dict(cached.get("status") or {})
        try:
            check_request(str(spec.get("signerName")), request, usages)
            expiration = spec.get("expirationSeconds")
            duration = certificate_duration(
                default=self._duration, expiration_seconds=expiration if isinstance(expiration, int) else None
            )
            certificate = sign(
                ca=self._ca, request=request, usages=usages, duration=duration, now=self._clock()
            )
        except SignerValidationError as exc:
            status["conditions"] = [*status.get("conditions", []), self._failed(str(exc))]
            log.info("refused to sign CSR %s: %s", name, exc)
        else:
            pem = certificate.public_bytes(serialization.Encoding.PEM)
            status["certificate"] = base64.b64encode(pem).decode("ascii")
        try:
            await self._client.replace(
                CERTIFICATE_SIGNING_REQUESTS, {**cached, "status": status}, name=name, subresource="status"
            )
        except errors.NotFoundError:
            return  # deleted meanwhile
        if "certificate" in status:
            log.info("signed CSR %s", name)

    def _failed(self, message: str) -> dict[str, Any]:
        now = self._clock().strftime("%Y-%m-%dT%H:%M:%SZ")
        return {
            "type": certificates.FAILED,
            "status": "True",
            "reason": "SignerValidationFailure",
            "message": message,
            "lastUpdateTime": now,
        }


class SkippedSigner:
    """What runs in the signer's place without cluster signing files (upstream skips it)."""

    name = "csrsigning"

    async def run(self) -> None:
        log.info("skipping the CSR signer: no cluster signing certificate and key were given")


def new_controller(ctx: ControllerContext) -> CSRSigningController | SkippedSigner:
    """The controller on the manager's cluster signing files; a :class:`SkippedSigner` without
    them; start-up fails when they are named but unusable."""
    options = ctx.options
    if not (options.cluster_signing_cert_file and options.cluster_signing_key_file):
        return SkippedSigner()
    try:
        ca = load_ca(
            cert_file=Path(options.cluster_signing_cert_file), key_file=Path(options.cluster_signing_key_file)
        )
    except PKIError as exc:
        raise SigningFilesError(f"csrsigning: {exc}") from exc
    return CSRSigningController(ctx, ca=ca, duration=timedelta(seconds=options.cluster_signing_duration))
