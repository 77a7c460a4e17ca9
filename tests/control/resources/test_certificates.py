"""CertificateSigningRequest rules without a server: validation of create, of the main update and
of the two subresources, the strategy's preparation of each write, and the Table row."""

from __future__ import annotations

import base64
import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from control.resources import certificates
from control.resources.builtin import builtin_registry
from control.resources.defaults import apply_defaults
from control.resources.printers import row_cells
from control.resources.validation import validate, validate_approval_update, validate_status_update
from tests.control.certificate_requests import csr_body, new_request

RT = builtin_registry().lookup(group="certificates.k8s.io", version="v1", plural="certificatesigningrequests")
assert RT is not None
NOW = "2026-11-26T08:00:00Z"


def create_messages(obj: dict[str, Any]) -> list[str]:
    return [e.message() for e in validate(RT, obj)]


def valid() -> dict[str, Any]:
    obj = csr_body("jane", new_request("jane", ["dev"]))
    obj["spec"]["username"] = "jane"
    return obj


def stored(obj: dict[str, Any], **status: Any) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    obj["metadata"].update(resourceVersion="7", uid="u-1", creationTimestamp="2026-11-26T07:00:00Z")
    obj["status"] = status
    return obj


def self_signed_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ca")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return base64.b64encode(certificate.public_bytes(serialization.Encoding.PEM)).decode()


def approved(**extra: Any) -> dict[str, Any]:
    return {"type": "Approved", "status": "True", "reason": "KubectlApprove", **extra}


def stamped() -> dict[str, Any]:
    """An Approved condition as stored: the approval path stamped it."""
    return approved(lastUpdateTime="2026-11-26T07:30:00Z", lastTransitionTime="2026-11-26T07:30:00Z")


# --- create ----------------------------------------------------------------------------------


def test_a_well_formed_request_is_valid() -> None:
    assert create_messages(valid()) == []


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda s: s.update(request=base64.b64encode(b"not pem").decode()),
            'spec.request: Invalid value: "<request data>": PEM block type must be CERTIFICATE REQUEST',
        ),
        (
            lambda s: s.update(request="%%%"),
            'spec.request: Invalid value: "<request data>": illegal base64 data: Only base64 data is allowed',
        ),
        (lambda s: s.update(usages=[]), "spec.usages: Required value"),
        (
            lambda s: s.update(usages=["client auth", "client auth"]),
            'spec.usages[1]: Duplicate value: "client auth"',
        ),
        (lambda s: s.pop("signerName"), "spec.signerName: Required value"),
        (
            lambda s: s.update(signerName="example.com"),
            'spec.signerName: Invalid value: "example.com": must be a fully qualified domain and path of the '
            "form 'example.com/signer-name'",
        ),
        (
            lambda s: s.update(signerName="localhost/x"),
            'spec.signerName: Invalid value: "localhost": should be a domain with at least two segments '
            "separated by dots",
        ),
        (
            lambda s: s.update(signerName="kubernetes.io/legacy-unknown"),
            'spec.signerName: Invalid value: "kubernetes.io/legacy-unknown": the legacy signerName is not '
            "allowed via this API version",
        ),
        (
            lambda s: s.update(expirationSeconds=599),
            "spec.expirationSeconds: Invalid value: 599: may not specify a duration less than 600 seconds "
            "(10 minutes)",
        ),
    ],
)
def test_spec_rules(edit: Any, expected: str) -> None:
    obj = valid()
    edit(obj["spec"])
    assert create_messages(obj) == [expected]


def test_unknown_usages_list_the_supported_ones() -> None:
    obj = valid()
    obj["spec"]["usages"] = ["client auth", "telepathy"]
    (message,) = create_messages(obj)
    assert message.startswith('spec.usages[1]: Unsupported value: "telepathy": supported values: "any", ')


def test_a_request_whose_signature_does_not_verify_is_refused() -> None:
    request = new_request("jane")
    der = bytearray(x509.load_pem_x509_csr(request.pem).public_bytes(serialization.Encoding.DER))
    der[-3] ^= 0x01  # inside the signature
    pem = (
        b"-----BEGIN CERTIFICATE REQUEST-----\n"
        + base64.encodebytes(bytes(der))
        + b"-----END CERTIFICATE REQUEST-----\n"
    )
    obj = valid()
    obj["spec"]["request"] = base64.b64encode(pem).decode()
    (message,) = create_messages(obj)
    assert message.startswith('spec.request: Invalid value: "<request data>": ')


@pytest.mark.parametrize(
    ("conditions", "expected"),
    [
        (
            [{"type": "Approved", "status": "False"}],
            ['status.conditions[0].status: Unsupported value: "False": supported values: "True"'],
        ),
        (
            [{"type": "Custom", "status": "Maybe"}],
            [
                'status.conditions[0].status: Unsupported value: "Maybe": supported values: "False", "True", "Unknown"'
            ],
        ),
        ([{"type": "Custom"}], ["status.conditions[0].status: Required value"]),
        ([{"status": "True"}], ["status.conditions[0].type: Required value"]),
        (
            [approved(), {"type": "Denied", "status": "True"}],
            [
                'status.conditions[1].type: Invalid value: "Denied": Approved and Denied conditions are mutually exclusive'
            ],
        ),
        ([approved(), approved()], ['status.conditions[1].type: Duplicate value: "Approved"']),
    ],
)
def test_condition_rules(conditions: list[dict[str, Any]], expected: list[str]) -> None:
    obj = valid()
    obj["status"] = {"conditions": conditions}
    assert create_messages(obj) == expected


# --- the main resource: spec immutable, status not writable -----------------------------------


def test_an_update_keeps_the_stored_spec() -> None:
    old = stored(valid())
    new = copy.deepcopy(old)
    new["spec"]["usages"] = ["server auth"]
    new["spec"]["username"] = "mallory"
    new["metadata"]["labels"] = {"team": "a"}
    apply_defaults(RT, new, old=old)
    assert new["spec"] == old["spec"]
    assert validate(RT, new, old=old) == []


def test_the_main_resource_cannot_approve_or_set_a_certificate() -> None:
    old = stored(valid())
    new = stored(valid(), conditions=[approved()], certificate=self_signed_pem())
    new["spec"] = old["spec"]
    assert [e.message() for e in validate(RT, new, old=old)] == [
        'status.conditions: Forbidden: updates may not add a condition of type "Approved"',
        "status.certificate: Forbidden: updates may not set certificate content",
    ]


# --- /approval -------------------------------------------------------------------------------


def test_approval_changes_only_conditions_and_stamps_them() -> None:
    old = stored(valid())
    desired = copy.deepcopy(old)
    desired["spec"]["signerName"] = "example.com/other"
    desired["status"] = {"conditions": [approved()], "certificate": self_signed_pem()}
    new = certificates.approval_update(desired, old, now=NOW)
    assert new["spec"] == old["spec"]
    assert "certificate" not in new["status"]
    assert new["status"]["conditions"] == [approved(lastUpdateTime=NOW, lastTransitionTime=NOW)]
    assert validate_approval_update(new, old=old) == []


def test_approval_keeps_the_transition_time_of_an_unchanged_condition() -> None:
    old = stored(valid(), conditions=[approved(lastUpdateTime="t0", lastTransitionTime="t0")])
    desired = stored(valid(), conditions=[{"type": "Approved", "status": "True", "reason": "Again"}])
    new = certificates.approval_update(desired, old, now=NOW)
    assert new["status"]["conditions"][0]["lastTransitionTime"] == "t0"
    assert new["status"]["conditions"][0]["lastUpdateTime"] == NOW


def test_approval_may_not_remove_a_decision_or_add_its_opposite() -> None:
    old = stored(valid(), conditions=[approved()])
    cleared = certificates.approval_update(stored(valid()), old, now=NOW)
    assert [e.message() for e in validate_approval_update(cleared, old=old)] == [
        'status.conditions: Forbidden: updates may not remove a condition of type "Approved"'
    ]
    both = certificates.approval_update(
        stored(valid(), conditions=[approved(), {"type": "Denied", "status": "True"}]), old, now=NOW
    )
    assert [e.message() for e in validate_approval_update(both, old=old)] == [
        'status.conditions[1].type: Invalid value: "Denied": Approved and Denied conditions are mutually exclusive'
    ]


# --- /status ---------------------------------------------------------------------------------


def test_status_sets_the_certificate_once_and_keeps_the_approval() -> None:
    old = stored(valid(), conditions=[stamped()])
    certificate = self_signed_pem()
    desired = stored(valid(), conditions=[approved(reason="Rewritten")], certificate=certificate)
    new = certificates.status_update(desired, old, now=NOW)
    assert new["status"]["conditions"] == old["status"]["conditions"]  # Approved kept as stored
    assert new["status"]["certificate"] == certificate
    assert validate_status_update(RT, new, old=old) == []
    again = certificates.status_update(stored(valid(), certificate=self_signed_pem()), new, now=NOW)
    again["status"]["conditions"] = new["status"]["conditions"]
    assert [e.message() for e in validate_status_update(RT, again, old=new)] == [
        "status.certificate: Forbidden: updates may not modify existing certificate content"
    ]


def test_status_may_not_approve() -> None:
    old = stored(valid())
    new = certificates.status_update(stored(valid(), conditions=[approved()]), old, now=NOW)
    assert [e.message() for e in validate_status_update(RT, new, old=old)] == [
        'status.conditions: Forbidden: updates may not add a condition of type "Approved"'
    ]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"garbage", "must contain at least one CERTIFICATE PEM block"),
        (
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            'only CERTIFICATE PEM blocks are allowed, found "PRIVATE KEY"',
        ),
    ],
)
def test_status_certificate_must_be_certificate_pem(content: bytes, expected: str) -> None:
    old = stored(valid(), conditions=[stamped()])
    desired = stored(valid(), conditions=[stamped()], certificate=base64.b64encode(content).decode())
    new = certificates.status_update(desired, old, now=NOW)
    assert [e.message() for e in validate_status_update(RT, new, old=old)] == [
        f'status.certificate: Invalid value: "<certificate data>": {expected}'
    ]


def test_status_may_add_a_failed_condition() -> None:
    old = stored(valid(), conditions=[stamped()])
    failed = {"type": "Failed", "status": "True", "reason": "SignerValidationFailure"}
    new = certificates.status_update(stored(valid(), conditions=[stamped(), failed]), old, now=NOW)
    assert validate_status_update(RT, new, old=old) == []
    assert new["status"]["conditions"][1]["lastTransitionTime"] == NOW


# --- create strategy and printing --------------------------------------------------------------


def test_fill_requestor_replaces_what_the_body_claims() -> None:
    obj = valid()
    obj["spec"].update(username="admin", groups=["system:masters"], uid="forged", extra={"x": ["y"]})
    obj["status"] = {"conditions": [approved()]}
    certificates.fill_requestor(
        obj, username="jane", uid="", groups=["dev", "system:authenticated"], extra={}
    )
    assert obj["spec"]["username"] == "jane"
    assert obj["spec"]["groups"] == ["dev", "system:authenticated"]
    assert "uid" not in obj["spec"] and "extra" not in obj["spec"]
    assert obj["status"] == {}


@pytest.mark.parametrize(
    ("status", "condition"),
    [
        ({}, "Pending"),
        ({"conditions": [approved()]}, "Approved"),
        ({"conditions": [approved()], "certificate": "eA=="}, "Approved,Issued"),
        ({"conditions": [{"type": "Denied", "status": "True"}]}, "Denied"),
        ({"conditions": [approved(), {"type": "Failed", "status": "True"}]}, "Approved,Failed"),
    ],
)
def test_table_row(status: dict[str, Any], condition: str) -> None:
    obj = stored(valid(), **status)
    obj["spec"]["expirationSeconds"] = 86400
    now = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
    assert row_cells(RT, obj, now=now) == [
        "jane",
        "60m",
        "kubernetes.io/kube-apiserver-client",
        "jane",
        "24h",
        condition,
    ]


def test_a_missing_request_reads_as_no_pem_block() -> None:
    obj = valid()
    del obj["spec"]["request"]
    assert create_messages(obj) == [
        'spec.request: Invalid value: "<request data>": PEM block type must be CERTIFICATE REQUEST'
    ]


def test_a_certificate_pem_is_not_a_request() -> None:
    obj = valid()
    obj["spec"]["request"] = self_signed_pem()
    assert create_messages(obj) == [
        'spec.request: Invalid value: "<request data>": PEM block type must be CERTIFICATE REQUEST'
    ]


def test_pem_certificates_reads_chains_and_refuses_headers() -> None:
    one = base64.b64decode(self_signed_pem())
    assert len(certificates.pem_certificates(one + one)) == 2
    with_header = one.replace(b"-----\n", b"-----\nProc-Type: 4,ENCRYPTED\n", 1)
    with pytest.raises(ValueError, match="no PEM block headers are permitted"):
        certificates.pem_certificates(with_header)
    with pytest.raises(ValueError, match="must contain at least one CERTIFICATE PEM block"):
        certificates.pem_certificates(b"-----BEGIN CERTIFICATE-----")
