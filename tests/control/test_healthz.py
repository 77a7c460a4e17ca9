"""The health endpoints' answers, as k8s.io/apiserver's healthz handler words them."""

from __future__ import annotations

import pytest
from multidict import MultiDict

from control.healthz import HealthChecks, check_response, health_response


def checks_with(*, failing: str | None = None) -> HealthChecks:
    checks = HealthChecks()
    checks.add("log", lambda: None)
    checks.add("poststarthook/start-informers", lambda: "informers not synced" if failing else None)
    checks.add("shutdown", lambda: None, endpoints=("readyz",))
    return checks


def test_health_checks_refuse_bad_names_and_endpoints():
    checks = HealthChecks()
    for name, endpoints in (
        ("", ("readyz",)),
        ("/a", ("readyz",)),
        ("a/", ("readyz",)),
        ("ok", ("metrics",)),
        ("ok", ()),
    ):
        with pytest.raises(ValueError, match="a health check needs a name"):
            checks.add(name, lambda: None, endpoints=endpoints)


def test_each_endpoint_runs_its_own_checks_in_order():
    answer = health_response(checks_with(), endpoint="readyz", query=MultiDict(verbose=""))
    assert (answer.status, answer.text) == (
        200,
        "[+]ping ok\n[+]log ok\n[+]poststarthook/start-informers ok\n[+]shutdown ok\nreadyz check passed\n",
    )
    answer = health_response(checks_with(), endpoint="livez", query=MultiDict(verbose=""))
    assert "shutdown" not in answer.text
    assert health_response(checks_with(), endpoint="livez", query=MultiDict()).text == "ok"


def test_a_failure_lists_every_check_and_withholds_the_reason():
    answer = health_response(checks_with(failing="yes"), endpoint="healthz", query=MultiDict())
    assert (answer.status, answer.text) == (
        500,
        "[+]ping ok\n[+]log ok\n[-]poststarthook/start-informers failed: reason withheld\nhealthz check failed\n",
    )
    excluded = MultiDict([("exclude", "poststarthook/start-informers")])
    assert health_response(checks_with(failing="yes"), endpoint="healthz", query=excluded).status == 200


def test_unknown_exclusions_are_warned_about_joined_as_upstream():
    query = MultiDict([("verbose", ""), ("exclude", "zz"), ("exclude", "log"), ("exclude", "aa")])
    answer = health_response(checks_with(), endpoint="livez", query=query)
    assert answer.text == (
        "[+]ping ok\n[+]log excluded: ok\n[+]poststarthook/start-informers ok\n"
        'warn: some health checks cannot be excluded: no matches for "aa","zz"\nlivez check passed\n'
    )


def test_a_single_check_tells_its_reason():
    ok = check_response(checks_with(), endpoint="readyz", name="poststarthook/start-informers")
    assert (ok.status, ok.text) == (200, "ok")
    failing = check_response(
        checks_with(failing="yes"), endpoint="readyz", name="poststarthook/start-informers"
    )
    assert (failing.status, failing.text) == (500, "internal server error: informers not synced\n")
    missing = check_response(checks_with(), endpoint="livez", name="shutdown")
    assert (missing.status, missing.text) == (404, "404 page not found\n")


def test_a_check_that_raises_is_a_failing_check():
    checks = HealthChecks()
    checks.add("broken", lambda: str(1 / 0))
    answer = check_response(checks, endpoint="healthz", name="broken")
    assert (answer.status, answer.text) == (
        500,
        "internal server error: ZeroDivisionError: division by zero\n",
    )
