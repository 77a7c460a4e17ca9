"""``/healthz``, ``/livez`` and ``/readyz`` as k8s.io/apiserver's ``healthz`` package answers
them, for every kubelab process that serves them: the API server and the control-plane
components' secure ports (``control.controllers.metrics_serving``).

A process keeps its named checks in one :class:`HealthChecks`, each check on some of the three
endpoints. The answers are upstream's, word for word, because people read them with
``kubectl get --raw '/readyz?verbose'`` and scripts match them:

- ``/<endpoint>``: ``ok``; with ``?verbose`` one ``[+]name ok`` line per check and ``<endpoint>
  check passed``; ``?exclude=name`` skips a check (``[+]name excluded: ok``, and a ``warn:`` line
  for names that match nothing). Any failing check makes a 500 that lists every check, a failing
  one as ``[-]name failed: reason withheld``: the endpoints are public, so the reason goes to the
  log only.
- ``/<endpoint>/<name>``: that check alone, ``ok`` or a 500 ``internal server error: <reason>``;
  404 for a name the endpoint does not have.

Checks are plain functions, not coroutines: they read state the process already keeps (a flag,
an informer's synced event), so a probe never waits on anything.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from aiohttp import web
from multidict import MultiMapping

log = logging.getLogger("kubelab.healthz")

HEALTH_ENDPOINTS = ("healthz", "livez", "readyz")

HealthCheck = Callable[[], str | None]
"""A check: ``None`` when healthy, else why not (for the log)."""


class HealthChecks:
    """Named checks, each on some of ``/healthz``, ``/livez`` and ``/readyz``, in the order added.

    ``ping`` (always healthy) is on all three from the start. Adding a name again replaces that
    check, so a restarted component re-registers its own. Names may contain ``/``, as upstream's
    ``poststarthook/<hook>`` do.
    """

    def __init__(self) -> None:
        self._checks: dict[str, tuple[HealthCheck, frozenset[str]]] = {}
        self.add("ping", lambda: None)

    def add(self, name: str, check: HealthCheck, *, endpoints: Iterable[str] = HEALTH_ENDPOINTS) -> None:
        chosen = frozenset(endpoints)
        unknown = chosen - set(HEALTH_ENDPOINTS)
        if not name or name.startswith("/") or name.endswith("/") or unknown or not chosen:
            raise ValueError(
                f"a health check needs a name that neither starts nor ends with '/' and endpoints "
                f"among {HEALTH_ENDPOINTS}, got {name!r} on {sorted(chosen)}"
            )
        self._checks[name] = (check, chosen)

    def remove(self, name: str) -> None:
        self._checks.pop(name, None)

    def of(self, endpoint: str) -> list[tuple[str, HealthCheck]]:
        """The checks of ``endpoint``, in the order added."""
        return [(name, check) for name, (check, endpoints) in self._checks.items() if endpoint in endpoints]


def run_check(name: str, check: HealthCheck) -> str | None:
    """The check's verdict; a check that raises is a failing check, not a broken endpoint."""
    try:
        return check()
    except Exception as exc:
        log.exception("health check %s raised", name)
        return f"{type(exc).__name__}: {exc}"


def health_response(checks: HealthChecks, *, endpoint: str, query: MultiMapping[str]) -> web.Response:
    """The answer of ``/<endpoint>`` with ``query`` (``verbose``, ``exclude``), as upstream words it."""
    excluded = set(query.getall("exclude", ()))
    lines: list[str] = []
    failures: list[str] = []
    for name, check in checks.of(endpoint):
        if name in excluded:
            excluded.discard(name)
            lines.append(f"[+]{name} excluded: ok")
            continue
        reason = run_check(name, check)
        if reason is None:
            lines.append(f"[+]{name} ok")
        else:
            lines.append(f"[-]{name} failed: reason withheld")
            failures.append(f"[-]{name} failed: {reason}")
    if excluded:
        # upstream's formatQuoted: the names quoted and joined with ","
        quoted = ",".join(f'"{name}"' for name in sorted(excluded))
        lines.append(f"warn: some health checks cannot be excluded: no matches for {quoted}")
    body = "".join(line + "\n" for line in lines)
    if failures:
        log.warning("/%s check failed:\n%s", endpoint, "\n".join(failures))
        return text_response(500, f"{body}{endpoint} check failed\n")
    if "verbose" not in query:
        return text_response(200, "ok")
    return text_response(200, f"{body}{endpoint} check passed\n")


def check_response(checks: HealthChecks, *, endpoint: str, name: str) -> web.Response:
    """The answer of ``/<endpoint>/<name>``: that one check, its reason told."""
    check = dict(checks.of(endpoint)).get(name)
    if check is None:
        return text_response(404, "404 page not found\n")
    reason = run_check(name, check)
    if reason is not None:
        return text_response(500, f"internal server error: {reason}\n")
    return text_response(200, "ok")


def text_response(status: int, text: str) -> web.Response:
    return web.Response(
        status=status,
        text=text,
        content_type="text/plain",
        charset="utf-8",
        headers={"X-Content-Type-Options": "nosniff"},
    )
