"""Admission for CertificateSigningRequests: who may ask for, approve and sign certificates.

A CSR is a request for an identity, so three of kube-apiserver's admission plugins guard it
(``plugin/pkg/admission/certificates``), and one step of its registry strategy lives here too
because only admission knows the requesting user:

- :class:`CertificateRequestor` — the strategy's PrepareForCreate: ``spec.username``, ``uid``,
  ``groups`` and ``extra`` are the authenticated user's, whatever the body said, so an approver
  sees who really asked;
- :class:`CertificateApproval` — a write to ``/approval`` needs the ``approve`` verb on the
  synthetic resource ``signers`` (group ``certificates.k8s.io``) named by the stored CSR's signer;
- :class:`CertificateSigning` — a write to ``/status`` that changes the certificate or the
  conditions needs ``sign`` on that signer;
- :class:`CertificateSubjectRestriction` — a ``kubernetes.io/kube-apiserver-client`` request may not
  name ``system:masters`` among its organizations: a signed one would be a superuser certificate.

Signer checks ask the authorizer twice, as upstream's ``IsAuthorizedForSignerName``: for the
signer's own name, then for its domain wildcard (``kubernetes.io/*``), so a role can grant every
signer of a domain at once.
"""

from __future__ import annotations

from typing import Any

from cryptography.x509.oid import NameOID

from control.apiserver.admission import CREATE, UPDATE, AdmissionPlugin, AdmissionRequest, forbidden
from control.apiserver.authn import UserInfo
from control.apiserver.authorization import Attributes, AuthorizerChain
from control.resources import certificates

PLURAL = "certificatesigningrequests"
CSRS = frozenset({(certificates.GROUP, PLURAL)})  # what the plugins here act on
SYSTEM_MASTERS = "system:masters"


def _is_csr(request: AdmissionRequest) -> bool:
    return request.rt.group == certificates.GROUP and request.rt.plural == PLURAL


def _signer(obj: dict[str, Any] | None) -> str:
    spec = (obj or {}).get("spec")
    signer = spec.get("signerName") if isinstance(spec, dict) else None
    return signer if isinstance(signer, str) else ""


def authorized_for_signer(authorizer: AuthorizerChain, *, user: UserInfo, verb: str, signer: str) -> bool:
    """``verb`` on ``signers/<signer>``, or on ``signers/<domain>/*``."""
    for name in (signer, signer.split("/", 1)[0] + "/*"):
        attributes = Attributes(
            user=user, verb=verb, api_group=certificates.GROUP, api_version="*", resource="signers", name=name
        )
        if authorizer.allowed(attributes):
            return True
    return False


class CertificateRequestor:
    """Creates record the requesting user in the spec (upstream: csrStrategy.PrepareForCreate)."""

    resources = CSRS

    async def mutate(self, request: AdmissionRequest) -> None:
        if request.operation != CREATE or request.subresource or not _is_csr(request) or request.obj is None:
            return
        user = request.user
        certificates.fill_requestor(
            request.obj, username=user.name, uid=user.uid, groups=user.groups, extra=user.extra
        )


class CertificateApproval:
    """``/approval`` writes need ``approve`` on the stored CSR's signer."""

    resources = CSRS

    def __init__(self, *, authorizer: AuthorizerChain) -> None:
        self.authorizer = authorizer

    async def validate(self, request: AdmissionRequest) -> None:
        if request.operation != UPDATE or request.subresource != "approval" or not _is_csr(request):
            return
        # The stored object's signer: the approval path cannot change it, and must not be fooled
        # by a body naming another.
        signer = _signer(request.old)
        if not authorized_for_signer(self.authorizer, user=request.user, verb="approve", signer=signer):
            raise forbidden(request, f'user not permitted to approve requests with signerName "{signer}"')


class CertificateSigning:
    """``/status`` writes changing the certificate or the conditions need ``sign`` on the signer."""

    resources = CSRS

    def __init__(self, *, authorizer: AuthorizerChain) -> None:
        self.authorizer = authorizer

    async def validate(self, request: AdmissionRequest) -> None:
        if request.operation != UPDATE or request.subresource != "status" or not _is_csr(request):
            return
        new_status = (request.obj or {}).get("status") or {}
        old_status = (request.old or {}).get("status") or {}
        if new_status.get("certificate") == old_status.get("certificate") and new_status.get(
            "conditions"
        ) == old_status.get("conditions"):
            return
        signer = _signer(request.old)
        if not authorized_for_signer(self.authorizer, user=request.user, verb="sign", signer=signer):
            raise forbidden(request, f'user not permitted to sign requests with signerName "{signer}"')


class CertificateSubjectRestriction:
    """No ``system:masters`` organization in a kube-apiserver-client request."""

    resources = CSRS

    async def validate(self, request: AdmissionRequest) -> None:
        if request.operation != CREATE or request.subresource or not _is_csr(request):
            return
        if _signer(request.obj) != certificates.KUBE_APISERVER_CLIENT:
            return
        try:
            parsed = certificates.parse_request(
                certificates.decode_bytes(((request.obj or {}).get("spec") or {}).get("request"))
            )
        except (ValueError, certificates.RequestError) as exc:
            raise forbidden(request, f"failed to parse CSR: {exc}") from exc
        organizations = parsed.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
        if any(attribute.value == SYSTEM_MASTERS for attribute in organizations):
            raise forbidden(
                request,
                f"use of {certificates.KUBE_APISERVER_CLIENT} signer with system:masters group is not allowed",
            )


def certificate_plugins(*, authorizer: AuthorizerChain) -> list[AdmissionPlugin]:
    """The four steps in upstream's order (the strategy first; then the validating plugins)."""
    return [
        CertificateRequestor(),
        CertificateApproval(authorizer=authorizer),
        CertificateSigning(authorizer=authorizer),
        CertificateSubjectRestriction(),
    ]
