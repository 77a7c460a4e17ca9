"""ValidatingAdmissionPolicy and ValidatingAdmissionPolicyBinding as resources: upstream's
defaults (pkg/apis/admissionregistration/v1/defaults.go), validation in upstream's words
(pkg/apis/admissionregistration/validation/validation.go, including the CEL compile checks it
runs at write time) and the Table rows of pkg/printers/internalversion/printers.go. The webhook
configurations' matchConditions, which share validateMatchConditions, are checked here too."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from control.resources import defaults, validation
from control.resources.builtin import builtin_registry
from control.resources.printers import column_definitions, row_cells
from control.resources.registry import ResourceType

REGISTRY = builtin_registry()
GROUP = "admissionregistration.k8s.io"


def kind(plural: str) -> ResourceType:
    rt = REGISTRY.lookup(group=GROUP, version="v1", plural=plural)
    assert rt is not None
    return rt


POLICY = kind("validatingadmissionpolicies")
BINDING = kind("validatingadmissionpolicybindings")
WEBHOOKS = kind("validatingwebhookconfigurations")

Errors = list[tuple[str, str]]


def policy(**spec: Any) -> dict[str, Any]:
    """The upstream docs' example policy, with ``spec`` fields replaced (None removes one)."""
    body: dict[str, Any] = {
        "failurePolicy": "Fail",
        "matchConstraints": {
            "resourceRules": [
                {
                    "apiGroups": ["apps"],
                    "apiVersions": ["v1"],
                    "operations": ["CREATE", "UPDATE"],
                    "resources": ["deployments"],
                }
            ]
        },
        "validations": [{"expression": "object.spec.replicas <= 5"}],
    }
    body.update(spec)
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": "demo-policy.example.com"},
        "spec": {key: value for key, value in body.items() if value is not None},
    }


def binding(**spec: Any) -> dict[str, Any]:
    """The upstream docs' example binding, with ``spec`` fields replaced (None removes one)."""
    body: dict[str, Any] = {
        "policyName": "demo-policy.example.com",
        "validationActions": ["Deny"],
        "matchResources": {"namespaceSelector": {"matchLabels": {"environment": "test"}}},
    }
    body.update(spec)
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": "demo-binding-test.example.com"},
        "spec": {key: value for key, value in body.items() if value is not None},
    }


def messages(rt: ResourceType, obj: dict[str, Any], *, old: dict[str, Any] | None = None) -> list[str]:
    """What kubectl shows for each cause, after defaulting as the server does."""
    obj = copy.deepcopy(obj)
    defaults.apply_defaults(rt, obj, old=old)
    return [error.message() for error in validation.validate(rt, obj, old=old)]


def raw_messages(rt: ResourceType, obj: dict[str, Any]) -> list[str]:
    """Validation without defaulting: what a patch that nulls a defaulted field meets."""
    return [error.message() for error in validation.validate(rt, obj)]


# --- declarations -----------------------------------------------------------------------------------


def test_the_kinds_are_declared_as_upstream_serves_them() -> None:
    assert (POLICY.kind, POLICY.namespaced, POLICY.categories) == (
        "ValidatingAdmissionPolicy",
        False,
        ("api-extensions",),
    )
    assert POLICY.subresources == ("status",)
    assert POLICY.definition == "io.k8s.api.admissionregistration.v1.ValidatingAdmissionPolicy"
    assert (BINDING.kind, BINDING.namespaced, BINDING.categories) == (
        "ValidatingAdmissionPolicyBinding",
        False,
        ("api-extensions",),
    )
    assert BINDING.subresources == ()
    assert BINDING.definition == "io.k8s.api.admissionregistration.v1.ValidatingAdmissionPolicyBinding"


# --- defaults ---------------------------------------------------------------------------------------


def test_policy_defaults_follow_upstream() -> None:
    obj = policy(
        failurePolicy=None,
        matchConstraints={
            "resourceRules": [
                {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["*"], "resources": ["pods"]}
            ],
            "excludeResourceRules": [
                {
                    "apiGroups": [""],
                    "apiVersions": ["v1"],
                    "operations": ["*"],
                    "resources": ["pods"],
                    "scope": "Cluster",
                }
            ],
        },
    )
    defaults.apply_defaults(POLICY, obj)
    spec = obj["spec"]
    assert spec["failurePolicy"] == "Fail"
    constraints = spec["matchConstraints"]
    assert constraints["matchPolicy"] == "Equivalent"
    assert constraints["namespaceSelector"] == constraints["objectSelector"] == {}
    assert constraints["resourceRules"][0]["scope"] == "*"
    assert constraints["excludeResourceRules"][0]["scope"] == "Cluster"  # a set value is kept


def test_policy_defaults_keep_explicit_values_and_add_no_match_constraints() -> None:
    obj = policy(failurePolicy="Ignore", matchConstraints=None)
    defaults.apply_defaults(POLICY, obj)
    assert obj["spec"]["failurePolicy"] == "Ignore"
    assert "matchConstraints" not in obj["spec"]  # a pointer upstream: nil stays nil


def test_policy_without_spec_gets_its_failure_policy() -> None:
    obj = {"metadata": {"name": "p"}}
    defaults.apply_defaults(POLICY, obj)
    assert obj["spec"] == {"failurePolicy": "Fail"}


def test_binding_defaults_only_touch_match_resources() -> None:
    obj = binding(paramRef={"name": "limits", "namespace": "default"})
    defaults.apply_defaults(BINDING, obj)
    match = obj["spec"]["matchResources"]
    assert match == {
        "namespaceSelector": {"matchLabels": {"environment": "test"}},
        "matchPolicy": "Equivalent",
        "objectSelector": {},
    }
    assert obj["spec"]["paramRef"] == {"name": "limits", "namespace": "default"}  # no v1 default
    without = binding(matchResources=None)
    defaults.apply_defaults(BINDING, without)
    assert "matchResources" not in without["spec"]


# --- policy validation ------------------------------------------------------------------------------


def test_the_docs_example_policy_and_binding_are_valid() -> None:
    assert messages(POLICY, policy()) == []
    assert messages(BINDING, binding()) == []


def test_a_full_policy_with_params_is_valid() -> None:
    obj = policy(
        paramKind={"apiVersion": "rules.example.com/v1", "kind": "ReplicaLimit"},
        matchConditions=[{"name": "exclude-leases", "expression": "params.maxReplicas > 0"}],
        variables=[{"name": "replicas", "expression": "object.spec.replicas"}],
        validations=[
            {
                "expression": "variables.replicas <= params.maxReplicas",
                "messageExpression": "'at most ' + string(params.maxReplicas)",
                "message": "too many replicas",
                "reason": "Invalid",
            }
        ],
        auditAnnotations=[
            {"key": "high-replica-count", "valueExpression": "'replicas: ' + string(params.x)"}
        ],
    )
    assert messages(POLICY, obj) == []


def test_required_fields_when_nothing_is_defaulted() -> None:
    obj = {"metadata": {"name": "p"}, "spec": {"matchConstraints": {"resourceRules": []}}}
    assert raw_messages(POLICY, obj) == [
        "spec.failurePolicy: Required value",
        "spec.matchConstraints.matchPolicy: Required value",
        "spec.matchConstraints.namespaceSelector: Required value",
        "spec.matchConstraints.objectSelector: Required value",
        "spec.matchConstraints.resourceRules: Required value",
        "spec.validations: Required value: validations or auditAnnotations must contain at least one item",
        "spec.auditAnnotations: Required value: validations or auditAnnotations must contain at least one item",
    ]


def test_match_constraints_are_required() -> None:
    assert messages(POLICY, policy(matchConstraints=None)) == ["spec.matchConstraints: Required value"]


def test_unsupported_failure_and_match_policies() -> None:
    obj = policy(failurePolicy="Maybe")
    obj["spec"]["matchConstraints"]["matchPolicy"] = "Fuzzy"
    assert messages(POLICY, obj) == [
        'spec.failurePolicy: Unsupported value: "Maybe": supported values: "Fail", "Ignore"',
        'spec.matchConstraints.matchPolicy: Unsupported value: "Fuzzy": supported values: "Equivalent", "Exact"',
    ]


def test_policy_names_are_dns_subdomains() -> None:
    obj = policy()
    obj["metadata"]["name"] = "Demo"
    assert messages(POLICY, obj) == [
        'metadata.name: Invalid value: "Demo": a lowercase RFC 1123 subdomain must consist of lower case '
        "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character "
        "(e.g. 'example.com', regex used for validation is "
        "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
    ]


@pytest.mark.parametrize(
    ("param_kind", "expected"),
    [
        ({"apiVersion": "v1", "kind": "ConfigMap"}, []),
        ({}, ["spec.paramKind.apiVersion: Required value", "spec.paramKind.kind: Required value"]),
        (
            {"apiVersion": "a/b/c", "kind": "K"},
            ['spec.paramKind.apiVersion: Invalid value: "a/b/c": unexpected GroupVersion string: a/b/c'],
        ),
        (
            {"apiVersion": "example.com/", "kind": "K"},
            ['spec.paramKind.apiVersion: Invalid value: "example.com/": version must be specified'],
        ),
        (
            {"apiVersion": "Example.com/v1", "kind": "K"},
            [
                'spec.paramKind.apiVersion: Invalid value: "Example.com": a lowercase RFC 1123 subdomain must '
                "consist of lower case alphanumeric characters, '-' or '.', and must start and end with an "
                "alphanumeric character (e.g. 'example.com', regex used for validation is "
                "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
            ],
        ),
        (
            {"apiVersion": "example.com/1", "kind": "K"},
            [
                'spec.paramKind.apiVersion: Invalid value: "1": a DNS-1035 label must consist of lower case '
                "alphanumeric characters or '-', start with an alphabetic character, and end with an "
                "alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is "
                "'[a-z]([-a-z0-9]*[a-z0-9])?')"
            ],
        ),
        (
            {"apiVersion": "v1", "kind": "Config_Map"},
            [
                'spec.paramKind.kind: Invalid value: "Config_Map": may have mixed case, but should otherwise '
                "match: a DNS-1035 label must consist of lower case alphanumeric characters or '-', start "
                "with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
                "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
            ],
        ),
    ],
)
def test_param_kind(param_kind: dict[str, Any], expected: list[str]) -> None:
    assert messages(POLICY, policy(paramKind=param_kind)) == expected


def test_resource_rules_are_checked_as_webhook_rules_with_resource_names() -> None:
    obj = policy(
        matchConstraints={
            "resourceRules": [
                {
                    "apiGroups": ["apps"],
                    "apiVersions": ["v1"],
                    "operations": ["*", "CREATE"],
                    "resources": ["deployments"],
                    "resourceNames": ["web", "a/b", "web"],
                }
            ],
            "excludeResourceRules": [{"apiGroups": [], "apiVersions": ["v1"], "operations": ["PATCH"]}],
        }
    )
    assert messages(POLICY, obj) == [
        "spec.matchConstraints.resourceRules[0].resourceNames[1]: Invalid value: \"a/b\": may not contain '/'",
        'spec.matchConstraints.resourceRules[0].resourceNames[2]: Duplicate value: "web"',
        "spec.matchConstraints.resourceRules[0].operations: Invalid value: "
        '[]admissionregistration.OperationType{"*", "CREATE"}: '
        "if '*' is present, must not specify other operations",
        'spec.matchConstraints.excludeResourceRules[0].operations[0]: Unsupported value: "PATCH": '
        'supported values: "*", "CONNECT", "CREATE", "DELETE", "UPDATE"',
        "spec.matchConstraints.excludeResourceRules[0].apiGroups: Required value",
        "spec.matchConstraints.excludeResourceRules[0].resources: Required value",
    ]


def test_selectors_are_validated_strictly() -> None:
    obj = policy()
    obj["spec"]["matchConstraints"]["objectSelector"] = {"matchLabels": {"app": "not ok"}}
    [message] = messages(POLICY, obj)
    assert message.startswith('spec.matchConstraints.objectSelector.matchLabels: Invalid value: "not ok": ')


def test_expression_that_does_not_compile_is_refused_with_the_compiler_output() -> None:
    [message] = messages(POLICY, policy(validations=[{"expression": "object.x <"}]))
    assert message.startswith(
        'spec.validations[0].expression: Invalid value: "object.x <": compilation failed: ERROR: <input>:1:'
    )


def test_expression_values_are_quoted_as_go_quotes_them() -> None:
    assert messages(POLICY, policy(validations=[{"expression": '"x" + "y"'}])) == [
        'spec.validations[0].expression: Invalid value: "\\"x\\" + \\"y\\"": must evaluate to bool but got string'
    ]


def test_expressions_must_return_their_type() -> None:
    obj = policy(
        validations=[{"expression": "'yes'", "messageExpression": "1"}],
        auditAnnotations=[{"key": "count", "valueExpression": "1"}],
    )
    assert messages(POLICY, obj) == [
        "spec.validations[0].expression: Invalid value: \"'yes'\": must evaluate to bool but got string",
        'spec.validations[0].messageExpression: Invalid value: "1": must evaluate to string but got int',
        'spec.auditAnnotations[0].valueExpression: Invalid value: "1": must evaluate to one of '
        "[string null_type] but got int",
    ]


def test_params_are_only_declared_with_a_param_kind() -> None:
    without = messages(POLICY, policy(validations=[{"expression": "params.max > 1"}]))
    assert len(without) == 1
    assert without[0].startswith(
        'spec.validations[0].expression: Invalid value: "params.max > 1": compilation'
    )
    assert messages(POLICY, policy(paramKind={"apiVersion": "v1", "kind": "ConfigMap"})) == []
    with_kind = policy(
        paramKind={"apiVersion": "v1", "kind": "ConfigMap"}, validations=[{"expression": "params.max > 1"}]
    )
    assert messages(POLICY, with_kind) == []


def test_validation_fields() -> None:
    obj = policy(
        validations=[
            {"expression": "  ", "message": "a\nb", "reason": "Unauthorized"},
            {"expression": "true", "message": "   ", "messageExpression": "  "},
        ]
    )
    assert messages(POLICY, obj) == [
        "spec.validations[0].expression: Required value: expression is not specified",
        'spec.validations[0].message: Invalid value: "a\\nb": message must not contain line breaks',
        'spec.validations[0].reason: Unsupported value: "Unauthorized": supported values: "Forbidden", '
        '"Invalid", "RequestEntityTooLarge"',
        'spec.validations[1].messageExpression: Invalid value: "  ": must be non-empty if specified',
        'spec.validations[1].message: Invalid value: "   ": message must be non-empty if specified',
    ]


def test_variables() -> None:
    obj = policy(
        variables=[
            {"name": "ok_1", "expression": "object.spec"},
            {"name": "1bad", "expression": "object."},
            {"name": "while", "expression": " "},
            {"name": " ", "expression": "1"},
            {"name": "trailing\n", "expression": "1"},
        ]
    )
    found = messages(POLICY, obj)
    assert found[0] == 'spec.variables[1].name: Invalid value: "1bad": name is not a valid CEL identifier'
    assert found[1].startswith('spec.variables[1].expression: Invalid value: "object.": compilation failed: ')
    assert found[2:] == [
        'spec.variables[2].name: Invalid value: "while": name is not a valid CEL identifier',
        "spec.variables[2].expression: Required value: expression is not specified",
        "spec.variables[3].name: Required value: name is not specified",
        'spec.variables[4].name: Invalid value: "trailing\\n": name is not a valid CEL identifier',
    ]


def test_audit_annotations() -> None:
    obj = policy(
        auditAnnotations=[
            {"key": "ok", "valueExpression": "'v'"},
            {"key": "bad key", "valueExpression": " "},
            {"key": "ok", "valueExpression": "x" * 5121},
        ]
    )
    assert messages(POLICY, obj) == [
        'spec.auditAnnotations[1].key: Invalid value: "demo-policy.example.com/bad key": name part must '
        "consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
        "character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
        "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
        "spec.auditAnnotations[1].valueExpression: Required value: valueExpression is not specified",
        "spec.auditAnnotations[2].valueExpression: Required value: must not exceed 5120 bytes in length",
        'spec.auditAnnotations[2].key: Duplicate value: "ok"',
    ]


def test_audit_annotation_keys_need_a_policy_name_and_at_most_twenty() -> None:
    obj = policy(auditAnnotations=[{"key": f"k{i}", "valueExpression": "null"} for i in range(21)])
    obj["metadata"] = {"generateName": "demo-"}
    name_required, *found = messages(POLICY, obj)
    assert name_required == "metadata.name: Required value: name or generateName is required"
    assert found[0] == (
        "spec.auditAnnotations: Invalid value: []admissionregistration.AuditAnnotation{"
        + ", ".join(
            f'admissionregistration.AuditAnnotation{{Key:"k{i}", ValueExpression:"null"}}' for i in range(21)
        )
        + "}: must not have more than 20 auditAnnotations"
    )
    assert (
        found[1] == 'spec.auditAnnotations[0].key: Invalid value: "k0": requires metadata.name be non-empty'
    )


def test_audit_annotations_alone_satisfy_the_one_item_rule() -> None:
    obj = policy(validations=None, auditAnnotations=[{"key": "seen", "valueExpression": "'yes'"}])
    assert messages(POLICY, obj) == []


def test_match_conditions() -> None:
    obj = policy(
        matchConditions=[
            {"name": "a", "expression": "true"},
            {"name": "a", "expression": "'x'"},
            {"name": "", "expression": " "},
            {"name": "bad name", "expression": "true"},
        ]
    )
    assert messages(POLICY, obj) == [
        "spec.matchConditions[1].expression: Invalid value: \"'x'\": must evaluate to bool but got string",
        'spec.matchConditions[1].name: Duplicate value: "a"',
        "spec.matchConditions[2].expression: Required value",
        "spec.matchConditions[2].name: Required value",
        'spec.matchConditions[3].name: Invalid value: "bad name": name part must consist of alphanumeric '
        "characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  "
        "or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
    ]


def test_more_than_64_match_conditions() -> None:
    conditions = [{"name": f"c{i}", "expression": "true"} for i in range(65)]
    assert messages(POLICY, policy(matchConditions=conditions)) == [
        "spec.matchConditions: Too many: 65: must have at most 64 items"
    ]


def test_update_skips_unchanged_match_conditions_but_not_changed_ones() -> None:
    stored = policy(matchConditions=[{"name": "c", "expression": "'stored before the check'"}])
    stored["metadata"].update(resourceVersion="5", uid="u", creationTimestamp="2024-01-01T00:00:00Z")
    update = copy.deepcopy(stored)
    update["spec"]["validations"] = [{"expression": "object.spec.replicas <= 6"}]
    assert messages(POLICY, update, old=stored) == []
    refused = [
        "spec.matchConditions[0].expression: Invalid value: \"'stored before the check'\": must evaluate "
        "to bool but got string"
    ]
    update["spec"]["paramKind"] = {"apiVersion": "v1", "kind": "ConfigMap"}
    assert messages(POLICY, update, old=stored) == refused  # a new paramKind re-checks them
    update["spec"].pop("paramKind")
    update["spec"]["matchConditions"].append({"name": "d", "expression": "true"})
    assert messages(POLICY, update, old=stored) == refused


def test_status_update_checks_warnings_and_conditions() -> None:
    stored = policy()
    stored["metadata"].update(resourceVersion="5", uid="u", creationTimestamp="2024-01-01T00:00:00Z")
    obj = copy.deepcopy(stored)
    obj["status"] = {
        "observedGeneration": 1,
        "typeChecking": {
            "expressionWarnings": [{"fieldRef": "spec.validations[0].expression", "warning": ""}]
        },
        "conditions": [{"type": "Ready", "status": "Maybe", "reason": "Checked", "lastTransitionTime": "x"}],
    }
    found = [e.message() for e in validation.validate_status_update(POLICY, obj, old=stored)]
    assert found == [
        "status.typeChecking.expressionWarnings[0].warning: Required value",
        'status.conditions[0].status: Unsupported value: "Maybe": supported values: "False", "True", "Unknown"',
    ]
    obj["status"]["typeChecking"]["expressionWarnings"] = [{"fieldRef": " ", "warning": "w"}]
    obj["status"]["conditions"] = []
    assert [e.message() for e in validation.validate_status_update(POLICY, obj, old=stored)] == [
        "status.typeChecking.expressionWarnings[0].fieldRef: Required value"
    ]


# --- binding validation -----------------------------------------------------------------------------


def test_binding_requires_a_policy_name_and_an_action() -> None:
    assert messages(BINDING, binding(policyName=None, validationActions=None)) == [
        "spec.policyName: Required value",
        "spec.validationActions: Required value: at least one validation action is required",
    ]
    [message] = messages(BINDING, binding(policyName="Demo"))
    assert message.startswith('spec.policyName: Invalid value: "Demo": a lowercase RFC 1123 subdomain')


def test_validation_actions() -> None:
    assert messages(BINDING, binding(validationActions=["Warn", "Audit"])) == []
    assert messages(BINDING, binding(validationActions=["Deny", "Log", "Deny", "Warn"])) == [
        'spec.validationActions[1]: Unsupported value: "Log": supported values: "Audit", "Deny", "Warn"',
        'spec.validationActions[2]: Duplicate value: "Deny"',
        "spec.validationActions: Invalid value: "
        '[]admissionregistration.ValidationAction{"Deny", "Log", "Deny", "Warn"}: must not contain both '
        "Deny and Warn (repeating the same validation failure information in the API response and headers "
        "serves no purpose)",
    ]


@pytest.mark.parametrize(
    ("param_ref", "expected"),
    [
        ({"name": "limits", "parameterNotFoundAction": "Deny"}, []),
        ({"selector": {}, "namespace": "default", "parameterNotFoundAction": "Allow"}, []),
        (
            {"parameterNotFoundAction": "Deny"},
            ["spec.paramRef: Required value: one of name or selector must be specified"],
        ),
        (
            {"name": "limits", "selector": {"matchLabels": {"a": "b"}}, "parameterNotFoundAction": "Deny"},
            [
                "spec.paramRef.name: Forbidden: name and selector are mutually exclusive",
                "spec.paramRef.selector: Forbidden: name and selector are mutually exclusive",
            ],
        ),
        (
            {"name": "..", "parameterNotFoundAction": "Ignore"},
            [
                "spec.paramRef.name: Invalid value: \"..\": may not be '..'",
                'spec.paramRef.parameterNotFoundAction: Unsupported value: "Ignore": supported values: '
                '"Deny", "Allow"',
            ],
        ),
        ({"name": "limits"}, ["spec.paramRef.parameterNotFoundAction: Required value"]),
        (
            {"name": "limits", "parameterNotFoundAction": ""},
            ["spec.paramRef.parameterNotFoundAction: Required value"],
        ),
    ],
)
def test_param_ref(param_ref: dict[str, Any], expected: list[str]) -> None:
    assert messages(BINDING, binding(paramRef=param_ref)) == expected


def test_binding_match_resources() -> None:
    obj = binding(matchResources={"matchPolicy": "Fuzzy", "resourceRules": [{"operations": ["CREATE"]}]})
    assert messages(BINDING, obj) == [
        'spec.matchResources.matchPolicy: Unsupported value: "Fuzzy": supported values: "Equivalent", "Exact"',
        "spec.matchResources.resourceRules[0].apiGroups: Required value",
        "spec.matchResources.resourceRules[0].apiVersions: Required value",
        "spec.matchResources.resourceRules[0].resources: Required value",
    ]


def test_binding_update_is_checked_as_a_create() -> None:
    stored = binding()
    stored["metadata"].update(resourceVersion="5", uid="u", creationTimestamp="2024-01-01T00:00:00Z")
    update = copy.deepcopy(stored)
    update["spec"]["validationActions"] = []
    assert messages(BINDING, update, old=stored) == [
        "spec.validationActions: Required value: at least one validation action is required"
    ]


# --- webhook configurations' matchConditions -------------------------------------------------------


def webhook_configuration(*conditions: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {"name": "hooks"},
        "webhooks": [
            {
                "name": "hook.kubelab.test",
                "clientConfig": {"url": "https://hooks.example.com/x"},
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
                "matchConditions": list(conditions),
            }
        ],
    }


def test_webhook_match_conditions_are_validated_without_params() -> None:
    obj = webhook_configuration(
        {"name": "ok", "expression": "request.userInfo.username != 'admin'"},
        {"name": "ok", "expression": "params.x"},
    )
    found = messages(WEBHOOKS, obj)
    assert found[0].startswith(
        'webhooks[0].matchConditions[1].expression: Invalid value: "params.x": compilation failed: '
    )
    assert found[1:] == ['webhooks[0].matchConditions[1].name: Duplicate value: "ok"']


def test_webhook_update_with_unchanged_match_conditions_skips_them() -> None:
    stored = webhook_configuration({"name": "old", "expression": "'not a bool'"})
    stored["metadata"].update(resourceVersion="5", uid="u", creationTimestamp="2024-01-01T00:00:00Z")
    update = copy.deepcopy(stored)
    update["webhooks"][0]["timeoutSeconds"] = 5
    assert messages(WEBHOOKS, update, old=stored) == []
    update["webhooks"][0]["matchConditions"].append({"name": "new", "expression": "true"})
    assert messages(WEBHOOKS, update, old=stored) == [
        "webhooks[0].matchConditions[0].expression: Invalid value: \"'not a bool'\": must evaluate to bool "
        "but got string"
    ]


# --- Table rows -------------------------------------------------------------------------------------

NOW = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)
CREATED = "2024-06-01T11:00:00Z"


def test_policy_table() -> None:
    assert [(c["name"], c["type"]) for c in column_definitions(POLICY)] == [
        ("Name", "string"),
        ("Validations", "integer"),
        ("ParamKind", "string"),
        ("Age", "string"),
    ]
    obj = policy()
    obj["metadata"]["creationTimestamp"] = CREATED
    assert row_cells(POLICY, obj, now=NOW) == ["demo-policy.example.com", 1, "<unset>", "60m"]
    with_params = policy(
        paramKind={"apiVersion": "rules.example.com/v1", "kind": "ReplicaLimit"}, validations=[]
    )
    with_params["metadata"]["creationTimestamp"] = CREATED
    assert row_cells(POLICY, with_params, now=NOW) == [
        "demo-policy.example.com",
        0,
        "rules.example.com/v1/ReplicaLimit",
        "60m",
    ]


@pytest.mark.parametrize(
    ("param_ref", "shown"),
    [
        (None, "<unset>"),
        ({"name": "limits", "namespace": "default"}, "default/limits"),
        ({"name": "limits"}, "*/limits"),
        (
            {"selector": {}},
            "&LabelSelector{MatchLabels:map[string]string{},MatchExpressions:[]LabelSelectorRequirement{},}",
        ),
        (
            {
                "selector": {
                    "matchLabels": {"tier": "web", "app": "x"},
                    "matchExpressions": [{"key": "env", "operator": "In", "values": ["a", "b"]}],
                }
            },
            "&LabelSelector{MatchLabels:map[string]string{app: x,tier: web,},MatchExpressions:"
            "[]LabelSelectorRequirement{LabelSelectorRequirement{Key:env,Operator:In,Values:[a b],},},}",
        ),
    ],
)
def test_binding_table(param_ref: dict[str, Any] | None, shown: str) -> None:
    assert [(c["name"], c["type"]) for c in column_definitions(BINDING)] == [
        ("Name", "string"),
        ("PolicyName", "string"),
        ("ParamRef", "string"),
        ("Age", "string"),
    ]
    obj = binding(paramRef=param_ref)
    obj["metadata"]["creationTimestamp"] = CREATED
    assert row_cells(BINDING, obj, now=NOW) == [
        "demo-binding-test.example.com",
        "demo-policy.example.com",
        shown,
        "60m",
    ]
