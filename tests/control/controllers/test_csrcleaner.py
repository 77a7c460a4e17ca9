"""The CSR cleaner: which requests are done with at a given time, and a pass over a real server
deleting exactly those."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from control.client import errors
from control.controllers.csrcleaner import CSRCleaner, expired
from control.controllers.kinds import CERTIFICATE_SIGNING_REQUESTS
from control.pki import issue_client_certificate, load_ca, load_or_create_ca
from tests.control.apiserver import conftest as apiserver_fixtures
from tests.control.apiserver.conftest import RunningServer
from tests.control.certificate_requests import csr_body, new_request
from tests.control.controllers.harness import running

apiserver = apiserver_fixtures.apiserver  # the shared fixture

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def csr(
    *, created: datetime, conditions: Sequence[dict[str, Any]] = (), certificate: str = ""
) -> dict[str, Any]:
    status: dict[str, Any] = {"conditions": list(conditions)} if conditions else {}
    if certificate:
        status["certificate"] = certificate
    return {"metadata": {"name": "x", "creationTimestamp": stamp(created)}, "status": status}


def condition(kind: str, updated: datetime) -> dict[str, Any]:
    return {"type": kind, "status": "True", "lastUpdateTime": stamp(updated)}


def certificate_valid_until(moment: datetime, tmp_path: Path) -> str:
    ca, _ = load_or_create_ca(
        cert_file=tmp_path / "ca.crt", key_file=tmp_path / "ca.key", now=moment - timedelta(days=2)
    )
    cert, _ = issue_client_certificate(
        ca=ca, user="u", groups=(), now=moment - timedelta(days=1), validity=timedelta(days=1)
    )
    return base64.b64encode(cert).decode()


@pytest.mark.parametrize(
    ("case", "obj", "deleted"),
    [
        ("pending for 23 h", csr(created=NOW - timedelta(hours=23)), False),
        ("pending for 25 h", csr(created=NOW - timedelta(hours=25)), True),
        (
            "denied 59 min ago",
            csr(created=NOW, conditions=[condition("Denied", NOW - timedelta(minutes=59))]),
            False,
        ),
        (
            "denied 61 min ago",
            csr(created=NOW, conditions=[condition("Denied", NOW - timedelta(minutes=61))]),
            True,
        ),
        (
            "failed 61 min ago",
            csr(created=NOW, conditions=[condition("Failed", NOW - timedelta(minutes=61))]),
            True,
        ),
        (
            "approved 61 min ago, never issued",
            csr(created=NOW, conditions=[condition("Approved", NOW - timedelta(minutes=61))]),
            False,
        ),
        (
            "approved and issued 61 min ago",
            csr(
                created=NOW,
                conditions=[condition("Approved", NOW - timedelta(minutes=61))],
                certificate="eA==",
            ),
            True,
        ),
        (
            "approved and issued a minute ago",
            csr(
                created=NOW,
                conditions=[condition("Approved", NOW - timedelta(minutes=1))],
                certificate="eA==",
            ),
            False,
        ),
        (
            "no timestamps at all",
            {"metadata": {"name": "x"}, "status": {"conditions": [{"type": "Denied"}]}},
            False,
        ),
    ],
)
def test_what_is_done_with(case: str, obj: dict[str, Any], deleted: bool) -> None:
    assert expired(obj, NOW) is deleted, case


def test_an_issued_certificate_past_its_end_is_done_with_at_once(tmp_path: Path) -> None:
    certificate = certificate_valid_until(NOW - timedelta(minutes=1), tmp_path)
    obj = csr(
        created=NOW, conditions=[condition("Approved", NOW - timedelta(minutes=5))], certificate=certificate
    )
    assert expired(obj, NOW)
    assert not expired(obj, NOW - timedelta(minutes=2))


async def test_a_pass_deletes_exactly_the_requests_done_with(apiserver: RunningServer) -> None:
    later = datetime.now(UTC) + timedelta(hours=2)
    pki = apiserver.data_dir / "pki"
    ca = load_ca(cert_file=pki / "ca.crt", key_file=pki / "ca.key")
    async with running(apiserver) as setup:
        client = setup.client
        names = ("pending", "approved", "issued", "denied")
        created = {
            name: await client.create(CERTIFICATE_SIGNING_REQUESTS, csr_body(name, new_request(name)))
            for name in names
        }
        for name, kind in (("approved", "Approved"), ("issued", "Approved"), ("denied", "Denied")):
            body = {**created[name], "status": {"conditions": [{"type": kind, "status": "True"}]}}
            created[name] = await client.replace(CERTIFICATE_SIGNING_REQUESTS, body, subresource="approval")
        cert, _ = issue_client_certificate(ca=ca, user="issued", groups=())
        issued = {
            **created["issued"],
            "status": {**created["issued"]["status"], "certificate": base64.b64encode(cert).decode()},
        }
        await client.replace(CERTIFICATE_SIGNING_REQUESTS, issued, subresource="status")

    cleaners: list[CSRCleaner] = []

    def build(ctx: Any) -> CSRCleaner:
        cleaners.append(CSRCleaner(ctx, clock=lambda: later, interval=timedelta(hours=1)))
        return cleaners[0]

    async with running(apiserver, build) as cluster:
        await cluster.wait_gone(CERTIFICATE_SIGNING_REQUESTS, "denied")
        await cluster.wait_gone(CERTIFICATE_SIGNING_REQUESTS, "issued")
        await cleaners[0].clean()  # a second pass changes nothing more
        for name in ("pending", "approved"):
            await cluster.client.get(CERTIFICATE_SIGNING_REQUESTS, name)
        with pytest.raises(errors.NotFoundError):
            await cluster.client.get(CERTIFICATE_SIGNING_REQUESTS, "denied")
