"""Defaults and validation of the admissionregistration.k8s.io/v1 webhook configurations, in
upstream's words (pkg/apis/admissionregistration/validation, util/webhook/validation.go). The
API-level 422s are in tests/control/apiserver/test_webhook_admission.py; these are the rules'
corners, run as plain functions (kept apart from test_validation.py, which other kinds share)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from control.resources import defaults, validation
from control.resources.builtin import builtin_registry
from control.resources.registry import ResourceType

REGISTRY = builtin_registry()


def kind(plural: str) -> ResourceType:
    rt = REGISTRY.lookup(group="admissionregistration.k8s.io", version="v1", plural=plural)
    assert rt is not None
    return rt


VALIDATING = kind("validatingwebhookconfigurations")
MUTATING = kind("mutatingwebhookconfigurations")


def hook(**fields: Any) -> dict[str, Any]:
    return {
        "name": "hook.kubelab.test",
        "clientConfig": {"url": "https://hooks.example.com/x"},
        "rules": [
            {"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}
        ],
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
        **fields,
    }


def errors_of(
    rt: ResourceType, *webhooks: dict[str, Any], old: dict[str, Any] | None = None
) -> set[tuple[str, str]]:
    obj = {"metadata": {"name": "config", "resourceVersion": "1" if old else ""}, "webhooks": list(webhooks)}
    defaults.apply_defaults(rt, obj, old=old)
    return {(e.field, e.detail) for e in validation.validate(rt, obj, old=old)}


def test_defaults_follow_upstream() -> None:
    obj = {
        "metadata": {"name": "config"},
        "webhooks": [hook(clientConfig={"service": {"namespace": "ns", "name": "svc"}}, timeoutSeconds=3)],
    }
    defaults.apply_defaults(MUTATING, obj)
    [webhook] = obj["webhooks"]
    assert webhook["failurePolicy"] == "Fail"
    assert webhook["matchPolicy"] == "Equivalent"
    assert webhook["namespaceSelector"] == webhook["objectSelector"] == {}
    assert webhook["timeoutSeconds"] == 3  # only a missing value is defaulted
    assert webhook["reinvocationPolicy"] == "Never"
    assert webhook["rules"][0]["scope"] == "*"
    assert webhook["clientConfig"]["service"]["port"] == 443
    validating = {"metadata": {"name": "config"}, "webhooks": [hook()]}
    defaults.apply_defaults(VALIDATING, validating)
    assert "reinvocationPolicy" not in validating["webhooks"][0]
    assert (
        "sideEffects" in validating["webhooks"][0] and "admissionReviewVersions" in validating["webhooks"][0]
    )


def test_a_good_configuration_has_no_errors() -> None:
    assert errors_of(VALIDATING, hook(), hook(name="other.kubelab.test")) == set()
    assert errors_of(MUTATING, hook(reinvocationPolicy="IfNeeded", sideEffects="NoneOnDryRun")) == set()


@pytest.mark.parametrize(
    ("resources", "expected"),
    [
        (
            ["pods/*", "pods/status"],
            {("rules[0].resources[1]", "if 'pods/*' is present, must not specify pods/status")},
        ),
        (
            ["*/status", "pods/status"],
            {("rules[0].resources[1]", "if '*/status' is present, must not specify pods/status")},
        ),
        (["*/*", "pods"], {("rules[0].resources", "if '*/*' is present, must not specify other resources")}),
        (["*", "pods/status"], set()),  # "*" does not cover subresources
        (["pods", ""], {("rules[0].resources[1]", "")}),
        ([], {("rules[0].resources", "")}),
    ],
)
def test_rule_resources(resources: list[str], expected: set[tuple[str, str]]) -> None:
    rule = {"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": resources}
    found = errors_of(VALIDATING, hook(rules=[rule]))
    assert {(field.removeprefix("webhooks[0]."), detail) for field, detail in found} == expected


def test_rule_operations_groups_versions_and_scope() -> None:
    rule = {
        "operations": ["PATCH"],
        "apiGroups": ["*", "apps"],
        "apiVersions": ["v1", ""],
        "resources": ["pods"],
        "scope": "Everywhere",
    }
    assert errors_of(VALIDATING, hook(rules=[rule])) == {
        (
            "webhooks[0].rules[0].operations[0]",
            'supported values: "*", "CONNECT", "CREATE", "DELETE", "UPDATE"',
        ),
        ("webhooks[0].rules[0].apiGroups", "if '*' is present, must not specify other API groups"),
        ("webhooks[0].rules[0].apiVersions[1]", ""),
        ("webhooks[0].rules[0].scope", 'supported values: "*", "Cluster", "Namespaced"'),
    }


@pytest.mark.parametrize(
    ("client_config", "expected"),
    [
        ({}, {("webhooks[0].clientConfig", "exactly one of url or service is required")}),
        (
            {"url": "https://h/x", "service": {"namespace": "n", "name": "s"}},
            {("webhooks[0].clientConfig", "exactly one of url or service is required")},
        ),
        (
            {"url": "https:///x"},
            {("webhooks[0].clientConfig.url", "host must be provided; desired format: https://host[/path]")},
        ),
        (
            {"service": {"namespace": "n", "name": "s", "path": "relative"}},
            {("webhooks[0].clientConfig.service.path", "must start with a '/'")},
        ),
        ({"service": {"namespace": "n", "name": "s", "path": "/Upper/"}}, None),
        ({"service": {"namespace": "n", "name": "s", "path": "/"}}, set()),
    ],
)
def test_client_config(client_config: dict[str, Any], expected: set[tuple[str, str]] | None) -> None:
    found = errors_of(VALIDATING, hook(clientConfig=client_config))
    if expected is None:  # a path segment that is not a DNS subdomain
        [(field, detail)] = found
        assert field == "webhooks[0].clientConfig.service.path" and detail.startswith(
            "segment[0]: a lowercase RFC 1123"
        )
    else:
        assert found == expected


def test_names_selectors_and_review_versions() -> None:
    bad_selector = {"matchExpressions": [{"key": "a", "operator": "In", "values": []}]}
    found = errors_of(
        VALIDATING,
        hook(
            name="",
            namespaceSelector=bad_selector,
            admissionReviewVersions=["v1", "v1", "V2"],
            matchPolicy="Fuzzy",
        ),
    )
    fields = {field for field, _ in found}
    assert fields == {
        "webhooks[0].name",
        "webhooks[0].namespaceSelector.matchExpressions[0].values",
        "webhooks[0].admissionReviewVersions[1]",
        "webhooks[0].admissionReviewVersions[2]",
        "webhooks[0].matchPolicy",
    }
    assert ("webhooks[0].admissionReviewVersions[1]", "duplicate version") in found


def test_an_update_keeps_what_the_stored_object_already_had() -> None:
    """Upstream's update options: rules the old object already broke are not enforced."""
    stored = {
        "metadata": {
            "name": "config",
            "resourceVersion": "1",
            "uid": "u",
            "creationTimestamp": "2026-01-01T00:00:00Z",
        },
        "webhooks": [hook(sideEffects="Some"), hook(sideEffects="Some")],
    }
    updated = copy.deepcopy(stored)
    updated["webhooks"][0]["timeoutSeconds"] = 5
    defaults.apply_defaults(VALIDATING, updated, old=stored)
    assert validation.validate(VALIDATING, updated, old=stored) == []
    created = {"metadata": {"name": "config"}, "webhooks": copy.deepcopy(stored["webhooks"])}
    defaults.apply_defaults(VALIDATING, created)
    assert {e.field for e in validation.validate(VALIDATING, created)} == {
        "webhooks[0].sideEffects",
        "webhooks[1].sideEffects",
        "webhooks[1].name",
    }
