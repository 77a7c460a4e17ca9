"""The CSR cleaner: CertificateSigningRequests do not pile up forever (upstream's
``pkg/controller/certificates/cleaner``).

Every hour (and once at start, after the cache has synced) every CSR is checked and deleted when
it is done with:

- approved and issued, the approval last updated more than an hour ago;
- denied, or failed, the condition last updated more than an hour ago;
- pending (no conditions at all) and created more than 24 hours ago;
- approved and issued, and the certificate has expired (whatever its age).

Ages come from condition ``lastUpdateTime`` and ``metadata.creationTimestamp``; a missing time
never counts as old, as upstream. The clock and the interval are injected so tests need not wait.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from control.client import errors
from control.controllers.kinds import CERTIFICATE_SIGNING_REQUESTS
from control.controllers.manager import ControllerContext
from control.resources import certificates

log = logging.getLogger("kubelab.controllers.csrcleaner")

POLLING_INTERVAL = timedelta(hours=1)
APPROVED_EXPIRATION = timedelta(hours=1)
DENIED_EXPIRATION = timedelta(hours=1)  # also for Failed, as upstream
PENDING_EXPIRATION = timedelta(hours=24)

Clock = Callable[[], datetime]
Obj = Mapping[str, Any]


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _older_than(stamp: Any, age: timedelta, now: datetime) -> bool:
    moment = _time(stamp)
    return moment is not None and now - moment > age


def _certificate_expired(csr: Obj, now: datetime) -> bool:
    """Issued, and the (first) certificate's notAfter has passed. Unparseable content never expires."""
    value = (csr.get("status") or {}).get("certificate")
    if not value:
        return False
    try:
        issued = certificates.pem_certificates(base64.b64decode(value))
    except ValueError:
        return False
    return now > issued[0].not_valid_after_utc


def expired(csr: Obj, now: datetime) -> bool:
    """Whether the cleaner deletes ``csr`` at ``now`` (the rules of the module docstring)."""
    status = csr.get("status") or {}
    conditions = [c for c in status.get("conditions") or [] if isinstance(c, dict)]
    issued = bool(status.get("certificate"))
    if not conditions:
        return _older_than((csr.get("metadata") or {}).get("creationTimestamp"), PENDING_EXPIRATION, now)
    for condition in conditions:
        kind, updated = condition.get("type"), condition.get("lastUpdateTime")
        stale = _older_than(updated, APPROVED_EXPIRATION, now) or _certificate_expired(csr, now)
        if kind == certificates.APPROVED and issued and stale:
            return True
        if kind in (certificates.DENIED, certificates.FAILED) and _older_than(
            updated, DENIED_EXPIRATION, now
        ):
            return True
    return False


class CSRCleaner:
    name = "csrcleaner"

    def __init__(
        self,
        ctx: ControllerContext,
        *,
        clock: Clock = lambda: datetime.now(UTC),
        interval: timedelta = POLLING_INTERVAL,
    ) -> None:
        self._client = ctx.client
        self._clock = clock
        self._interval = interval
        self._csrs = ctx.informers.informer(CERTIFICATE_SIGNING_REQUESTS)

    async def run(self) -> None:
        await self._csrs.wait_for_sync()
        while True:
            await self.clean()
            await asyncio.sleep(self._interval.total_seconds())

    async def clean(self) -> None:
        """One pass over the cache; a failed delete is logged and tried again next pass."""
        now = self._clock()
        for csr in self._csrs.cache.list():
            if not expired(csr, now):
                continue
            name = csr["metadata"]["name"]
            try:
                await self._client.delete(CERTIFICATE_SIGNING_REQUESTS, name)
            except errors.NotFoundError:
                continue
            except errors.RequestError as exc:
                log.warning("unable to delete CSR %s: %s", name, exc)
                continue
            log.info("deleted expired CSR %s", name)


def new_controller(ctx: ControllerContext) -> CSRCleaner:
    return CSRCleaner(ctx)
