"""certificates.k8s.io/v1 CertificateSigningRequests: what the kind *is*, as kube-apiserver 1.33's
registry strategy and ``pkg/apis/certificates/validation`` define it.

A CSR carries a PEM PKCS#10 request (``spec.request``, base64 in JSON as every ``[]byte``), the
signer asked to sign it (``spec.signerName``), key usages and an optional ``expirationSeconds``.
Three writers touch three different parts, each through its own path, and the rules here keep
them apart:

- the requester creates it: the server fills ``spec.username``/``uid``/``groups``/``extra`` from
  the authenticated user (:func:`fill_requestor`, run by admission, the one place that knows the
  user) and clears ``status``; the spec never changes afterwards (:func:`keep_spec`);
- an approver writes ``/approval``: only ``status.conditions`` change, Approved and Denied among
  them (:func:`approval_update`);
- a signer writes ``/status``: ``status.certificate`` once, and conditions other than
  Approved/Denied (:func:`status_update`).

Validation (:func:`validate`, :func:`validate_status_update`, :func:`validate_approval_update`)
follows upstream's ``validateCertificateSigningRequest`` with the v1 options: the request must
parse and its signature verify, usages come from the known set without duplicates, the signer
name is ``<domain>/<path>``, conditions are well-formed and Approved/Denied exclusive, and
``status.certificate`` holds only CERTIFICATE PEM blocks. Upstream's tolerances for data already
stored (duplicate conditions, unknown usages ...) are kept, so an old object stays updatable.

Parsing helpers (:func:`parse_request`, :func:`decode_bytes`) are shared with the admission
plugins and the signing controller.
"""

from __future__ import annotations

import base64
import binascii
import copy
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm

from control.resources.registry import FieldError, field_error

GROUP = "certificates.k8s.io"

KUBE_APISERVER_CLIENT = "kubernetes.io/kube-apiserver-client"
KUBE_APISERVER_CLIENT_KUBELET = "kubernetes.io/kube-apiserver-client-kubelet"
KUBELET_SERVING = "kubernetes.io/kubelet-serving"
LEGACY_UNKNOWN = "kubernetes.io/legacy-unknown"

APPROVED = "Approved"
DENIED = "Denied"
FAILED = "Failed"

# upstream's allValidUsages
VALID_USAGES = frozenset(
    {
        "signing",
        "digital signature",
        "content commitment",
        "key encipherment",
        "key agreement",
        "data encipherment",
        "cert sign",
        "crl sign",
        "encipher only",
        "decipher only",
        "any",
        "server auth",
        "client auth",
        "code signing",
        "email protection",
        "s/mime",
        "ipsec end system",
        "ipsec tunnel",
        "ipsec user",
        "timestamping",
        "ocsp signing",
        "microsoft sgc",
        "netscape sgc",
    }
)
_TRUE_ONLY = frozenset({APPROVED, DENIED, FAILED})  # condition types whose status may only be True
_ALL_STATUSES = ("False", "True", "Unknown")
_MIN_EXPIRATION_SECONDS = 600

Obj = Mapping[str, Any]
SignerNameRule = Callable[[str, str], list[FieldError]]


class RequestError(ValueError):
    """``spec.request`` is not a PEM certificate request with a valid signature."""


# --- parsing ---------------------------------------------------------------------------------


def decode_bytes(value: Any) -> bytes:
    """A ``[]byte`` field as JSON carries it (standard base64; absent is empty); raises ValueError
    when it is not."""
    if value is None:
        return b""
    if not isinstance(value, str):
        raise ValueError("must be a base64-encoded string")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"illegal base64 data: {exc}") from exc


def parse_request(pem: bytes) -> x509.CertificateSigningRequest:
    """Upstream's ``ParseCSR`` plus ``CheckSignature``: the first PEM block must be a
    CERTIFICATE REQUEST whose signature verifies."""
    try:
        request = x509.load_pem_x509_csr(_first_block(pem, "CERTIFICATE REQUEST"))
        valid = request.is_signature_valid
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise RequestError(str(exc)) from exc
    if not valid:
        raise RequestError("x509: signature verification failure")
    return request


def _first_block(pem: bytes, block_type: str) -> bytes:
    begin = f"-----BEGIN {block_type}-----".encode()
    start = pem.find(b"-----BEGIN ")
    if start < 0 or not pem.startswith(begin, start):
        raise RequestError(f"PEM block type must be {block_type}")
    end_marker = f"-----END {block_type}-----".encode()
    end = pem.find(end_marker, start)
    if end < 0:
        raise RequestError(f"PEM block type must be {block_type}")
    return pem[start : end + len(end_marker)] + b"\n"


def pem_certificates(pem: bytes) -> list[x509.Certificate]:
    """Upstream's ``validateCertificate``: one or more CERTIFICATE blocks, without headers, and
    no other block type; raises ValueError with upstream's message otherwise."""
    found: list[x509.Certificate] = []
    rest = pem
    while (start := rest.find(b"-----BEGIN ")) >= 0:
        header_end = rest.find(b"-----", start + 11)
        if header_end < 0:
            break
        block_type = rest[start + 11 : header_end].decode("ascii", "replace")
        end_marker = f"-----END {block_type}-----".encode()
        end = rest.find(end_marker, header_end)
        if end < 0:
            break
        if block_type != "CERTIFICATE":
            raise ValueError(f'only CERTIFICATE PEM blocks are allowed, found "{block_type}"')
        block = rest[start : end + len(end_marker)]
        if any(b":" in line for line in block.splitlines()[1:-1]):  # base64 has no colons; headers do
            raise ValueError("no PEM block headers are permitted")
        try:
            found.append(x509.load_pem_x509_certificate(block + b"\n"))
        except ValueError as exc:
            raise ValueError(f"x509: malformed certificate: {exc}") from exc
        rest = rest[end + len(end_marker) :]
    if not found:
        raise ValueError("must contain at least one CERTIFICATE PEM block")
    return found


# --- strategy --------------------------------------------------------------------------------


def fill_requestor(
    csr: dict[str, Any],
    *,
    username: str,
    uid: str,
    groups: Iterable[str],
    extra: Mapping[str, Iterable[str]],
) -> None:
    """PrepareForCreate: the requester is who made the request, whatever the body says, and a new
    request has no status (no pre-approved requests)."""
    spec = csr.get("spec")
    if not isinstance(spec, dict):
        spec = csr["spec"] = {}
    for key in ("username", "uid", "groups", "extra"):
        spec.pop(key, None)
    spec["username"] = username
    if uid:
        spec["uid"] = uid
    if groups:
        spec["groups"] = list(groups)
    if extra:
        spec["extra"] = {key: list(values) for key, values in extra.items()}
    csr["status"] = {}


def keep_spec(csr: dict[str, Any], old: Obj) -> None:
    """PrepareForUpdate of the main resource: the stored spec stays (the API server keeps the
    stored status too), so only metadata changes there."""
    csr["spec"] = copy.deepcopy(old.get("spec"))


def status_update(desired: Obj, old: Obj, *, now: str) -> dict[str, Any]:
    """The object ``/status`` stores: the stored one with the request's status, Approved/Denied
    instances kept as stored (changing their count fails validation) and condition timestamps
    filled in."""
    new = copy.deepcopy(dict(old))
    new["status"] = copy.deepcopy(desired.get("status")) if isinstance(desired.get("status"), dict) else {}
    conditions = _conditions(new)
    old_conditions = _conditions(old)
    for kind in (APPROVED, DENIED):
        new_indices = [i for i, c in enumerate(conditions) if c.get("type") == kind]
        old_items = [c for c in old_conditions if c.get("type") == kind]
        if len(new_indices) == len(old_items):
            for index, item in zip(new_indices, old_items, strict=True):
                conditions[index] = copy.deepcopy(item)
    _stamp_conditions(conditions, old_conditions, now=now)
    if conditions:
        new["status"]["conditions"] = conditions
    return new


def approval_update(desired: Obj, old: Obj, *, now: str) -> dict[str, Any]:
    """The object ``/approval`` stores: the stored one with the request's conditions only."""
    new = copy.deepcopy(dict(old))
    wanted = desired.get("status") if isinstance(desired.get("status"), dict) else {}
    conditions = copy.deepcopy(wanted.get("conditions"))
    status = new.get("status") if isinstance(new.get("status"), dict) else {}
    new["status"] = status
    if conditions:
        status["conditions"] = conditions
        _stamp_conditions(_conditions(new), _conditions(old), now=now)
    else:
        status.pop("conditions", None)
    return new


def _conditions(csr: Obj) -> list[dict[str, Any]]:
    status = csr.get("status")
    conditions = status.get("conditions") if isinstance(status, dict) else None
    return [c for c in conditions if isinstance(c, dict)] if isinstance(conditions, list) else []


def _stamp_conditions(conditions: list[dict[str, Any]], old: list[dict[str, Any]], *, now: str) -> None:
    """populateConditionTimestamps: lastUpdateTime now when missing; lastTransitionTime kept from
    a stored condition of the same type and status, else now."""
    for condition in conditions:
        if not condition.get("lastUpdateTime"):
            condition["lastUpdateTime"] = now
        if condition.get("lastTransitionTime"):
            continue
        condition["lastTransitionTime"] = next(
            (
                item["lastTransitionTime"]
                for item in old
                if item.get("type") == condition.get("type")
                and item.get("status") == condition.get("status")
                and item.get("lastTransitionTime")
            ),
            now,
        )


def condition_types(csr: Obj) -> set[str]:
    return {str(c.get("type")) for c in _conditions(csr)}


# --- validation ------------------------------------------------------------------------------


def validate(csr: Obj, old: Obj | None, *, signer_name: SignerNameRule) -> list[FieldError]:
    """Create (``old`` None) or update of the main resource; metadata is checked by the caller,
    the signer name's form by ``signer_name`` (upstream's shared ValidateSignerName)."""
    errors = _validate(csr, old, signer_name=signer_name)
    if old is not None:
        errors += _validate_update(csr, old, setting_certificate=False, setting_approval=False)
    return errors


def validate_status_update(csr: Obj, old: Obj, *, signer_name: SignerNameRule) -> list[FieldError]:
    """A write to ``/status``: the certificate may be set once; Approved/Denied stay as stored."""
    errors = _validate(csr, old, signer_name=signer_name)
    return errors + _validate_update(csr, old, setting_certificate=True, setting_approval=False)


def validate_approval_update(csr: Obj, old: Obj, *, signer_name: SignerNameRule) -> list[FieldError]:
    """A write to ``/approval``: Approved/Denied may be added; none may be removed."""
    errors = _validate(csr, old, signer_name=signer_name)
    return errors + _validate_update(csr, old, setting_certificate=False, setting_approval=True)


def _spec(csr: Obj) -> Obj:
    spec = csr.get("spec")
    return spec if isinstance(spec, dict) else {}


def _status(csr: Obj) -> Obj:
    status = csr.get("status")
    return status if isinstance(status, dict) else {}


def _validate(csr: Obj, old: Obj | None, *, signer_name: SignerNameRule) -> list[FieldError]:
    spec = _spec(csr)
    old_spec = _spec(old) if old is not None else {}
    errors: list[FieldError] = []
    try:
        parse_request(decode_bytes(spec.get("request")))
    except (ValueError, RequestError) as exc:
        errors.append(field_error("FieldValueInvalid", "spec.request", str(exc), value="<request data>"))
    usages = spec.get("usages") if isinstance(spec.get("usages"), list) else []
    old_usages = old_spec.get("usages") if isinstance(old_spec.get("usages"), list) else []
    if not usages:
        errors.append(field_error("FieldValueRequired", "spec.usages"))
    if all(_known_usage(u) for u in old_usages):
        for index, usage in enumerate(usages):
            if not _known_usage(usage):
                errors.append(
                    FieldError(
                        type="FieldValueNotSupported",
                        field=f"spec.usages[{index}]",
                        detail="supported values: " + ", ".join(f'"{u}"' for u in sorted(VALID_USAGES)),
                        value=usage,
                        has_value=True,
                    )
                )
    if len(set(map(str, old_usages))) == len(old_usages):
        seen: set[str] = set()
        for index, usage in enumerate(usages):
            if str(usage) in seen:
                errors.append(field_error("FieldValueDuplicate", f"spec.usages[{index}]", value=usage))
            seen.add(str(usage))
    signer = spec.get("signerName") if isinstance(spec.get("signerName"), str) else ""
    if signer == LEGACY_UNKNOWN and old_spec.get("signerName") != LEGACY_UNKNOWN:
        errors.append(
            field_error(
                "FieldValueInvalid",
                "spec.signerName",
                "the legacy signerName is not allowed via this API version",
                value=signer,
            )
        )
    elif signer != LEGACY_UNKNOWN:
        errors += signer_name("spec.signerName", signer)
    expiration = spec.get("expirationSeconds")
    if isinstance(expiration, int) and expiration < _MIN_EXPIRATION_SECONDS:
        errors.append(
            field_error(
                "FieldValueInvalid",
                "spec.expirationSeconds",
                "may not specify a duration less than 600 seconds (10 minutes)",
                value=expiration,
            )
        )
    errors += _validate_conditions(csr, old)
    certificate = _status(csr).get("certificate")
    untouched = old is not None and certificate == _status(old).get("certificate")
    if certificate and not untouched and not _bad_certificate(_status(old or {}).get("certificate")):
        try:
            pem_certificates(decode_bytes(certificate))
        except ValueError as exc:
            errors.append(
                field_error("FieldValueInvalid", "status.certificate", str(exc), value="<certificate data>")
            )
    return errors


def _known_usage(usage: Any) -> bool:
    return isinstance(usage, str) and usage in VALID_USAGES


def _bad_certificate(value: Any) -> bool:
    """Stored content that upstream's validateCertificate refuses (tolerated once stored)."""
    if not value:
        return False
    try:
        pem_certificates(decode_bytes(value))
    except ValueError:
        return True
    return False


def _validate_conditions(csr: Obj, old: Obj | None) -> list[FieldError]:
    old_conditions = _conditions(old) if old is not None else []
    old_types = [c.get("type") for c in old_conditions]
    allow_both = APPROVED in old_types and DENIED in old_types
    allow_duplicates = len(set(map(str, old_types))) != len(old_types)
    allow_empty_type = any(not t for t in old_types)
    errors: list[FieldError] = []
    seen: set[str] = set()
    has_approved = has_denied = False
    for index, condition in enumerate(_conditions(csr)):
        path = f"status.conditions[{index}]"
        kind = str(condition.get("type") or "")
        if not kind and not allow_empty_type:
            errors.append(field_error("FieldValueRequired", f"{path}.type"))
        allowed = ("True",) if kind in _TRUE_ONLY else _ALL_STATUSES
        status = condition.get("status")
        if not status:
            errors.append(field_error("FieldValueRequired", f"{path}.status"))
        elif status not in allowed:
            errors.append(
                FieldError(
                    type="FieldValueNotSupported",
                    field=f"{path}.status",
                    detail="supported values: " + ", ".join(f'"{s}"' for s in allowed),
                    value=status,
                    has_value=True,
                )
            )
        if not allow_both and kind in (APPROVED, DENIED):
            has_approved = has_approved or kind == APPROVED
            has_denied = has_denied or kind == DENIED
            if has_approved and has_denied:
                errors.append(
                    field_error(
                        "FieldValueInvalid",
                        f"{path}.type",
                        "Approved and Denied conditions are mutually exclusive",
                        value=kind,
                    )
                )
        if not allow_duplicates:
            if kind in seen:
                errors.append(field_error("FieldValueDuplicate", f"{path}.type", value=kind))
            seen.add(kind)
    return errors


def _validate_update(
    csr: Obj, old: Obj, *, setting_certificate: bool, setting_approval: bool
) -> list[FieldError]:
    errors: list[FieldError] = []
    new_conditions, old_conditions = _conditions(csr), _conditions(old)
    for kind in (APPROVED, DENIED, FAILED):
        if _count(new_conditions, kind) < _count(old_conditions, kind):
            errors.append(
                field_error(
                    "FieldValueForbidden",
                    "status.conditions",
                    f'updates may not remove a condition of type "{kind}"',
                )
            )
    if not setting_approval:
        for kind in (APPROVED, DENIED):
            new_items = [c for c in new_conditions if c.get("type") == kind]
            old_items = [c for c in old_conditions if c.get("type") == kind]
            if len(new_items) > len(old_items):
                errors.append(
                    field_error(
                        "FieldValueForbidden",
                        "status.conditions",
                        f'updates may not add a condition of type "{kind}"',
                    )
                )
            elif len(new_items) == len(old_items) and new_items != old_items:
                errors.append(
                    field_error(
                        "FieldValueForbidden",
                        "status.conditions",
                        f'updates may not modify a condition of type "{kind}"',
                    )
                )
    certificate, old_certificate = _status(csr).get("certificate"), _status(old).get("certificate")
    if (certificate or None) != (old_certificate or None):
        if not setting_certificate:
            errors.append(
                field_error(
                    "FieldValueForbidden", "status.certificate", "updates may not set certificate content"
                )
            )
        elif old_certificate:
            errors.append(
                field_error(
                    "FieldValueForbidden",
                    "status.certificate",
                    "updates may not modify existing certificate content",
                )
            )
    return errors


def _count(conditions: list[dict[str, Any]], kind: str) -> int:
    return sum(1 for c in conditions if c.get("type") == kind)
