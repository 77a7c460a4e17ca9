"""ValidatingAdmissionPolicies end to end on the in-process API server: matching, params,
variables, matchConditions, the authorizer library, failure policies, validation actions and
upstream's refusal; plus webhook ``matchConditions``, which share the CEL environment.

The API server follows policies and bindings from two watches, so a test that has just written
some waits until they are in effect: :func:`configure` also writes a *barrier* policy and
binding (refusing ConfigMaps labelled ``barrier: N``) and sends dry-run probes until one is
refused — each watch delivers in order, so the objects written before the barrier are in effect.
"""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.control.apiserver.conftest import RunningServer
from tests.control.apiserver.test_admission_policy_resources_kubectl import DOCS_EXAMPLE, apply
from tests.control.apiserver.test_api import deployment

GROUP_PATH = "/apis/admissionregistration.k8s.io/v1"
POLICIES = f"{GROUP_PATH}/validatingadmissionpolicies"
BINDINGS = f"{GROUP_PATH}/validatingadmissionpolicybindings"
NAMESPACES = "/api/v1/namespaces"
CONFIGMAPS = "/api/v1/namespaces/default/configmaps"
DEPLOYMENTS = "/apis/apps/v1/namespaces/{namespace}/deployments"

CONFIGMAP_RULE = {
    "apiGroups": [""],
    "apiVersions": ["v1"],
    "operations": ["CREATE", "UPDATE"],
    "resources": ["configmaps"],
}
_barriers = itertools.count()


def policy(
    name: str, *validations: dict[str, Any], rules: list[dict[str, Any]] | None = None, **spec: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {"matchConstraints": {"resourceRules": rules or [CONFIGMAP_RULE]}, **spec}
    if validations:
        body["validations"] = list(validations)
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": body,
    }


def binding(
    name: str, policy_name: str, *, actions: tuple[str, ...] = ("Deny",), **spec: Any
) -> dict[str, Any]:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {"policyName": policy_name, "validationActions": list(actions), **spec},
    }


def configmap(name: str, data: dict[str, str] | None = None, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels},
        "data": data or {},
    }


async def configure(api: RunningServer, *objects: dict[str, Any]) -> None:
    """Write ``objects`` (policies and bindings) and wait until the API server applies them."""
    for obj in objects:
        path = POLICIES if obj["kind"] == "ValidatingAdmissionPolicy" else BINDINGS
        code, body = await api.request("POST", path, body=obj)
        assert code == 201, body
    number = next(_barriers)
    await configure_unchecked(
        api,
        policy(f"barrier-{number}", {"expression": "false"}),
        binding(
            f"barrier-{number}",
            f"barrier-{number}",
            matchResources={"objectSelector": {"matchLabels": {"barrier": str(number)}}},
        ),
    )
    await dry_run_answers(api, configmap("probe", barrier=str(number)), 422)


async def dry_run_answers(api: RunningServer, obj: dict[str, Any], status: int) -> None:
    """Repeat a dry-run create of ``obj`` until it is answered ``status`` (a change took effect)."""
    async with asyncio.timeout(10):
        while True:
            if (await api.request("POST", CONFIGMAPS, body=obj, params={"dryRun": "All"}))[0] == status:
                return
            await asyncio.sleep(0.01)


async def configure_unchecked(api: RunningServer, *objects: dict[str, Any]) -> None:
    for obj in objects:
        path = POLICIES if obj["kind"] == "ValidatingAdmissionPolicy" else BINDINGS
        code, body = await api.request("POST", path, body=obj)
        assert code == 201, body


async def metric(api: RunningServer, metric_name: str, **labels: str) -> float:
    """The value of one sample of the API server's /metrics (0 when absent)."""
    async with api.session.get(api.url + "/metrics") as response:
        text = await response.text()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == metric_name and sample.labels == labels:
                return sample.value
    return 0.0


async def namespace(api: RunningServer, name: str, **labels: str) -> None:
    code, body = await api.request("POST", NAMESPACES, body={"metadata": {"name": name, "labels": labels}})
    assert code == 201, body


# --- the documentation's example ----------------------------------------------------------------


async def test_the_docs_example_refuses_too_many_replicas_in_test_namespaces(apiserver: RunningServer):
    await namespace(apiserver, "test-ns", environment="test")
    await namespace(apiserver, "prod-ns", environment="prod")
    await configure(
        apiserver,
        policy(
            "demo-policy.example.com",
            {"expression": "object.spec.replicas <= 5"},
            rules=[
                {
                    "apiGroups": ["apps"],
                    "apiVersions": ["v1"],
                    "operations": ["CREATE", "UPDATE"],
                    "resources": ["deployments"],
                }
            ],
            failurePolicy="Fail",
        ),
        binding(
            "demo-binding-test.example.com",
            "demo-policy.example.com",
            matchResources={"namespaceSelector": {"matchLabels": {"environment": "test"}}},
        ),
    )
    code, body = await apiserver.request(
        "POST", DEPLOYMENTS.format(namespace="test-ns"), body=deployment("nginx", 6)
    )
    assert code == 422, body
    message = (
        "ValidatingAdmissionPolicy 'demo-policy.example.com' with binding 'demo-binding-test.example.com' "
        "denied request: failed expression: object.spec.replicas <= 5"
    )
    assert body["reason"] == "Invalid"
    assert body["message"] == f'deployments.apps "nginx" is forbidden: {message}'
    assert body["details"] == {
        "name": "nginx",
        "group": "apps",
        "kind": "deployments",
        "causes": [{"message": message}],
    }
    code, body = await apiserver.request(
        "POST", DEPLOYMENTS.format(namespace="test-ns"), body=deployment("small", 5)
    )
    assert code == 201, body
    code, body = await apiserver.request(
        "POST", DEPLOYMENTS.format(namespace="prod-ns"), body=deployment("nginx", 6)
    )
    assert code == 201, body
    # an update is checked too
    path = DEPLOYMENTS.format(namespace="test-ns") + "/small"
    code, body = await apiserver.request(
        "PATCH", path, body={"spec": {"replicas": 7}}, content_type="application/merge-patch+json"
    )
    assert code == 422, body
    checks = await metric(
        apiserver,
        "apiserver_validating_admission_policy_check_total",
        policy="demo-policy.example.com",
        policy_binding="demo-binding-test.example.com",
        error_type="invalid_error",
        enforcement_action="deny",
    )
    assert checks == 2
    rejected_steps = await metric(
        apiserver,
        "apiserver_admission_step_admission_duration_seconds_count",
        type="validate",
        operation="UPDATE",
        rejected="true",
    )
    assert rejected_steps == 1


# --- messages, reasons and actions ---------------------------------------------------------------


async def test_message_expression_then_message_then_the_expression_and_the_reasons_code(
    apiserver: RunningServer,
):
    await configure(
        apiserver,
        policy(
            "messages",
            {
                "expression": "!has(object.data) || !('a' in object.data)",
                "messageExpression": "'key a is not allowed in ' + object.metadata.name",
                "message": "unused",
            },
            {
                "expression": "!has(object.data) || !('b' in object.data)",
                "message": "  no b  ",
                "reason": "Forbidden",
            },
            {
                "expression": "!has(object.data) || !('c' in object.data)",
                "messageExpression": "1 == 1 ? '' : 'x'",
            },
            {"expression": "!has(object.data) || !('d' in object.data)", "reason": "RequestEntityTooLarge"},
        ),
        binding("messages", "messages"),
    )
    cases = {
        "a": (422, "Invalid", "key a is not allowed in cm"),
        "b": (403, "Forbidden", "no b"),
        "c": (422, "Invalid", "failed expression: !has(object.data) || !('c' in object.data)"),
        "d": (413, "RequestEntityTooLarge", "failed expression: !has(object.data) || !('d' in object.data)"),
    }
    for key, (status, reason, message) in cases.items():
        code, body = await apiserver.request("POST", CONFIGMAPS, body=configmap("cm", {key: "1"}))
        assert (code, body["reason"]) == (status, reason), body
        assert body["message"].endswith(f"with binding 'messages' denied request: {message}"), body


async def test_warn_adds_a_warning_and_audit_only_logs(
    apiserver: RunningServer, caplog: pytest.LogCaptureFixture
):
    await configure(
        apiserver,
        policy(
            "no-x", {"expression": "!has(object.data) || !('x' in object.data)", "message": "x is deprecated"}
        ),
        binding("warn-and-audit", "no-x", actions=("Warn", "Audit")),
    )
    caplog.set_level("INFO", logger="kubelab.apiserver.policies")
    async with apiserver.session.post(
        apiserver.url + CONFIGMAPS, json=configmap("warned", {"x": "1"})
    ) as response:
        assert response.status == 201, await response.text()
        assert response.headers.getall("Warning") == [
            "299 - \"Validation failed for ValidatingAdmissionPolicy 'no-x' with binding 'warn-and-audit': x is deprecated\""
        ]
    audited = [r for r in caplog.records if r.getMessage() == "admission policy audit"]
    assert [(r.policy, r.binding, r.failure) for r in audited] == [
        ("no-x", "warn-and-audit", "x is deprecated")
    ]


async def test_a_runtime_error_fails_closed_or_is_ignored_by_the_failure_policy(apiserver: RunningServer):
    await configure(
        apiserver,
        policy("strict", {"expression": "object.data.missing == 'x'"}, failurePolicy="Fail"),
        binding("strict", "strict", matchResources={"objectSelector": {"matchLabels": {"policy": "strict"}}}),
        policy("lenient", {"expression": "object.data.missing == 'x'"}, failurePolicy="Ignore"),
        binding(
            "lenient", "lenient", matchResources={"objectSelector": {"matchLabels": {"policy": "lenient"}}}
        ),
    )
    code, body = await apiserver.request("POST", CONFIGMAPS, body=configmap("a", {"k": "v"}, policy="strict"))
    assert code == 422, body
    assert body["message"] == (
        "configmaps \"a\" is forbidden: ValidatingAdmissionPolicy 'strict' with binding 'strict' denied request: "
        "expression 'object.data.missing == 'x'' resulted in error: no such key: missing"
    )
    code, body = await apiserver.request(
        "POST", CONFIGMAPS, body=configmap("b", {"k": "v"}, policy="lenient")
    )
    assert code == 201, body


# --- matching ------------------------------------------------------------------------------------


async def test_exclusions_resource_names_and_object_selectors_narrow_the_match(apiserver: RunningServer):
    named_rule = {**CONFIGMAP_RULE, "resourceNames": ["guarded", "excluded"]}
    await configure(
        apiserver,
        policy(
            "names",
            {"expression": "false", "message": "refused"},
            rules=[named_rule],
            matchConstraints={
                "resourceRules": [named_rule],
                "excludeResourceRules": [{**CONFIGMAP_RULE, "resourceNames": ["excluded"]}],
            },
        ),
        binding(
            "names",
            "names",
            matchResources={
                "objectSelector": {"matchExpressions": [{"key": "free", "operator": "DoesNotExist"}]}
            },
        ),
    )
    assert (await apiserver.request("POST", CONFIGMAPS, body=configmap("guarded")))[0] == 422
    assert (await apiserver.request("POST", CONFIGMAPS, body=configmap("excluded")))[0] == 201
    assert (await apiserver.request("POST", CONFIGMAPS, body=configmap("other")))[0] == 201
    assert (
        await apiserver.request(
            "POST", "/api/v1/namespaces/kube-system/configmaps", body=configmap("guarded", free="yes")
        )
    )[0] == 201


async def test_match_conditions_skip_the_policy_or_fail_it(apiserver: RunningServer):
    await configure(
        apiserver,
        policy(
            "conditional",
            {"expression": "false", "message": "refused"},
            matchConditions=[
                {
                    "name": "labelled",
                    "expression": "has(object.metadata.labels) && 'check' in object.metadata.labels",
                },
                {"name": "not-kube-system", "expression": "request.namespace != 'kube-system'"},
                {
                    "name": "breaks-on-demand",
                    "expression": "object.metadata.labels['check'] != 'error' || object.data.nope == ''",
                },
            ],
        ),
        binding("conditional", "conditional"),
    )
    assert (await apiserver.request("POST", CONFIGMAPS, body=configmap("unlabelled")))[0] == 201
    code, body = await apiserver.request("POST", CONFIGMAPS, body=configmap("checked", check="yes"))
    assert code == 422 and body["message"].endswith("denied request: refused"), body
    code, body = await apiserver.request("POST", CONFIGMAPS, body=configmap("broken", check="error"))
    assert code == 422, body
    assert "resulted in error: no such key: nope" in body["message"], body


async def test_delete_sees_the_old_object_and_no_new_one(apiserver: RunningServer):
    code, body = await apiserver.request("POST", CONFIGMAPS, body=configmap("kept", protected="true"))
    assert code == 201, body
    await configure(
        apiserver,
        policy(
            "protect",
            {
                "expression": "object == null && oldObject.metadata.labels['protected'] != 'true'",
                "messageExpression": "'cannot ' + request.operation + ' ' + oldObject.metadata.name + ' as ' + request.userInfo.username",
            },
            rules=[{**CONFIGMAP_RULE, "operations": ["DELETE"]}],
        ),
        binding("protect", "protect"),
    )
    code, body = await apiserver.request("DELETE", CONFIGMAPS + "/kept")
    assert code == 422, body
    assert body["message"].endswith("denied request: cannot DELETE kept as kubernetes-admin"), body


async def test_namespace_object_and_variables_are_available(apiserver: RunningServer):
    await namespace(apiserver, "team-a", team="a")
    await configure(
        apiserver,
        policy(
            "team-prefix",
            {
                "expression": "object.metadata.name.startsWith(variables.prefix)",
                "messageExpression": "'names in ' + namespaceObject.metadata.name + ' start with ' + variables.prefix",
            },
            {"expression": "!('k' in object.data) || variables.broken == \"\""},
            variables=[
                {"name": "team", "expression": "namespaceObject.metadata.labels['team']"},
                {"name": "prefix", "expression": "variables.team + '-'"},
                {"name": "broken", "expression": "object.data.nope"},
            ],
            failurePolicy="Fail",
        ),
        binding(
            "team-prefix",
            "team-prefix",
            matchResources={
                "namespaceSelector": {"matchExpressions": [{"key": "team", "operator": "Exists"}]}
            },
        ),
    )
    path = "/api/v1/namespaces/team-a/configmaps"
    code, body = await apiserver.request("POST", path, body=configmap("a-settings"))
    assert code == 201, body
    code, body = await apiserver.request("POST", path, body=configmap("settings"))
    assert code == 422, body
    assert body["message"].endswith("denied request: names in team-a start with a-"), body
    # a variable that fails to evaluate fails only the expressions that need its value
    code, body = await apiserver.request("POST", path, body=configmap("a-more", {"k": "v"}))
    assert code == 422, body
    assert body["message"].endswith(
        "denied request: expression '!('k' in object.data) || variables.broken == \"\"' resulted in error: "
        'composited variable "broken" fails to compile or evaluate: '
        "expression 'object.data.nope' resulted in error: no such key: nope"
    ), body


async def test_the_authorizer_library_asks_the_api_servers_authorizer(apiserver: RunningServer):
    await configure(
        apiserver,
        policy(
            "who-may",
            {
                "expression": "authorizer.serviceAccount('default', 'nobody').group('').resource('secrets').namespace('default').check('list').allowed()",
                "messageExpression": "'nobody may not list secrets; admin may: ' + string(authorizer.group('').resource('secrets').check('list').allowed()) + ', request: ' + string(authorizer.requestResource.check('create').allowed())",
            },
        ),
        binding("who-may", "who-may"),
    )
    code, body = await apiserver.request("POST", CONFIGMAPS, body=configmap("c"))
    assert code == 422, body
    assert body["message"].endswith(
        "denied request: nobody may not list secrets; admin may: true, request: true"
    ), body


# --- params --------------------------------------------------------------------------------------


async def test_params_by_name_by_selector_and_when_missing(apiserver: RunningServer):
    limits = [
        {"metadata": {"name": "limit-1", "labels": {"kind": "limit"}}, "data": {"max": "1"}},
        {"metadata": {"name": "limit-2", "labels": {"kind": "limit"}}, "data": {"max": "2"}},
    ]
    for limit in limits:
        assert (await apiserver.request("POST", "/api/v1/namespaces/kube-system/configmaps", body=limit))[
            0
        ] == 201
    param_kind = {"apiVersion": "v1", "kind": "ConfigMap"}
    size = "!has(object.data) || size(object.data) <= int(params.data.max)"
    message = "'at most ' + params.data.max + ' keys (' + params.kind + ' ' + params.metadata.name + ')'"
    rules = [{**CONFIGMAP_RULE, "operations": ["CREATE"]}]
    await configure(
        apiserver,
        policy(
            "max-keys", {"expression": size, "messageExpression": message}, rules=rules, paramKind=param_kind
        ),
        binding(
            "by-name",
            "max-keys",
            paramRef={"name": "limit-2", "namespace": "kube-system", "parameterNotFoundAction": "Deny"},
            matchResources={"objectSelector": {"matchLabels": {"by": "name"}}},
        ),
        binding(
            "by-selector",
            "max-keys",
            paramRef={
                "selector": {"matchLabels": {"kind": "limit"}},
                "namespace": "kube-system",
                "parameterNotFoundAction": "Deny",
            },
            matchResources={"objectSelector": {"matchLabels": {"by": "selector"}}},
        ),
        binding(
            "missing-deny",
            "max-keys",
            paramRef={"name": "absent", "namespace": "kube-system", "parameterNotFoundAction": "Deny"},
            matchResources={"objectSelector": {"matchLabels": {"by": "missing-deny"}}},
        ),
        binding(
            "missing-allow",
            "max-keys",
            paramRef={"name": "absent", "namespace": "kube-system", "parameterNotFoundAction": "Allow"},
            matchResources={"objectSelector": {"matchLabels": {"by": "missing-allow"}}},
        ),
    )
    two = {"a": "1", "b": "2"}
    assert (await apiserver.request("POST", CONFIGMAPS, body=configmap("n2", two, by="name")))[0] == 201
    code, body = await apiserver.request(
        "POST", CONFIGMAPS, body=configmap("n3", {**two, "c": "3"}, by="name")
    )
    assert code == 422 and body["message"].endswith("denied request: at most 2 keys (ConfigMap limit-2)"), (
        body
    )
    # with a selector every param is checked: limit-1 refuses two keys
    code, body = await apiserver.request("POST", CONFIGMAPS, body=configmap("s2", two, by="selector"))
    assert code == 422 and body["message"].endswith("denied request: at most 1 keys (ConfigMap limit-1)"), (
        body
    )
    code, body = await apiserver.request("POST", CONFIGMAPS, body=configmap("d", by="missing-deny"))
    assert code == 422, body
    assert body["message"].endswith(
        "with binding 'missing-deny' denied request: failed to configure binding: "
        "no params found for policy binding with `Deny` parameterNotFoundAction"
    ), body
    assert (await apiserver.request("POST", CONFIGMAPS, body=configmap("e", by="missing-allow")))[0] == 201


# --- what is never admitted by policies, and how policies change --------------------------------


async def test_policies_never_see_their_own_kinds_and_take_effect_when_changed(apiserver: RunningServer):
    everything = [{"apiGroups": ["*"], "apiVersions": ["*"], "operations": ["*"], "resources": ["*"]}]
    await configure(
        apiserver,
        policy("deny-all", {"expression": "request.namespace == 'kube-public'"}, rules=everything),
        binding("deny-all", "deny-all", matchResources={"objectSelector": {"matchLabels": {"deny": "all"}}}),
    )
    # the configuration kinds are exempt: the policy can be relaxed and its binding removed
    code, body = await apiserver.request(
        "PATCH",
        f"{BINDINGS}/deny-all",
        body={"metadata": {"labels": {"deny": "all"}}, "spec": {"validationActions": ["Warn"]}},
        content_type="application/merge-patch+json",
    )
    assert code == 200, body
    await dry_run_answers(apiserver, configmap("w", deny="all"), 201)
    code, body = await apiserver.request("DELETE", f"{BINDINGS}/deny-all")
    assert code == 200, body


async def test_a_binding_without_its_policy_does_nothing(apiserver: RunningServer):
    await configure(apiserver, binding("orphan", "no-such-policy"))
    assert (await apiserver.request("POST", CONFIGMAPS, body=configmap("fine")))[0] == 201


# --- webhook matchConditions ---------------------------------------------------------------------


async def test_webhook_match_conditions_skip_the_webhook_or_refuse_under_fail(apiserver: RunningServer):
    # the webhook's URL answers nothing: a call would fail (and, under Fail, refuse the request)
    webhook = {
        "name": "conditional.kubelab.test",
        "clientConfig": {"url": "https://127.0.0.1:1/never"},
        "rules": [CONFIGMAP_RULE],
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
        "failurePolicy": "Fail",
        "matchConditions": [
            {"name": "opted-in", "expression": "'webhook' in object.metadata.labels"},
            {"name": "no-namespace-object", "expression": "namespaceObject == null"},  # as upstream
            {
                "name": "breaks",
                "expression": "object.metadata.labels['webhook'] != 'error' || object.data.nope == ''",
            },
        ],
    }
    config = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "conditional"},
        "webhooks": [webhook],
    }
    code, body = await apiserver.request("POST", f"{GROUP_PATH}/validatingwebhookconfigurations", body=config)
    assert code == 201, body
    await dry_run_answers(apiserver, configmap("probe", webhook="yes"), 500)  # in effect: the call fails
    assert (await apiserver.request("POST", CONFIGMAPS, body=configmap("skipped", other="x")))[0] == 201
    code, body = await apiserver.request("POST", CONFIGMAPS, body=configmap("broken", webhook="error"))
    assert code == 403, body
    assert body["message"] == (
        "configmaps \"broken\" is forbidden: expression 'object.metadata.labels['webhook'] != 'error' || "
        "object.data.nope == ''' resulted in error: no such key: nope"
    )
    labels = {
        "name": "conditional.kubelab.test",
        "kind": "webhook",
        "type": "validating",
        "operation": "CREATE",
    }
    assert await metric(apiserver, "apiserver_admission_match_condition_exclusions_total", **labels) >= 1
    assert (
        await metric(apiserver, "apiserver_admission_match_condition_evaluation_errors_total", **labels) == 1
    )
    calls = await metric(
        apiserver,
        "apiserver_admission_webhook_request_total",
        name="conditional.kubelab.test",
        type="validating",
        operation="CREATE",
        code="503",
        rejected="true",
    )
    assert calls >= 1  # the probes that reached the (unreachable) webhook


# --- real kubectl --------------------------------------------------------------------------------


async def test_kubectl_sees_the_docs_example_refuse_a_deployment(apiserver: RunningServer, tmp_path: Path):
    code, out = await apply(apiserver, tmp_path, DOCS_EXAMPLE)
    assert code == 0, out
    code, _, err = await apiserver.kubectl("create", "namespace", "test")
    assert code == 0, err
    code, _, err = await apiserver.kubectl("label", "namespace", "test", "environment=test")
    assert code == 0, err
    await configure(apiserver)  # the barrier: the applied policy and binding are in effect
    code, out, err = await apiserver.kubectl(
        "create", "deployment", "nginx", "--image=nginx", "--replicas=6", "-n", "test"
    )
    assert code == 1, out
    assert err.strip() == (
        'error: failed to create deployment: deployments.apps "nginx" is forbidden: ValidatingAdmissionPolicy '
        "'demo-policy.example.com' with binding 'demo-binding-test.example.com' denied request: "
        "failed expression: object.spec.replicas <= 5"
    )
    code, out, err = await apiserver.kubectl(
        "create", "deployment", "nginx", "--image=nginx", "--replicas=5", "-n", "test"
    )
    assert code == 0, err


# --- who may point a policy at params ------------------------------------------------------------


async def test_pointing_at_params_needs_permission_to_read_them(apiserver: RunningServer):
    rbac = "/apis/rbac.authorization.k8s.io/v1"
    writer = {
        "apiGroups": ["admissionregistration.k8s.io"],
        "resources": ["*"],
        "verbs": ["create", "update"],
    }
    for name, rules in (
        ("policy-writer", [writer]),
        (
            "configmap-reader",
            [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}],
        ),
    ):
        code, body = await apiserver.request(
            "POST", f"{rbac}/clusterroles", body={"metadata": {"name": name}, "rules": rules}
        )
        assert code == 201, body
    subject = [{"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"}]

    async def bind(role: str) -> None:
        body = {
            "metadata": {"name": role},
            "roleRef": {"kind": "ClusterRole", "name": role, "apiGroup": "rbac.authorization.k8s.io"},
            "subjects": subject,
        }
        code, answer = await apiserver.request("POST", f"{rbac}/clusterrolebindings", body=body)
        assert code == 201, answer

    await bind("policy-writer")
    as_alice = {"Impersonate-User": "alice"}
    params = policy(
        "with-params", {"expression": "true"}, paramKind={"apiVersion": "v1", "kind": "ConfigMap"}
    )
    code, body = await answer_other_than(apiserver, 403, POLICIES, params, headers=as_alice)  # RBAC in effect
    assert code == 422, body
    assert body["details"]["causes"] == [
        {
            "reason": "FieldValueForbidden",
            "message": 'Forbidden: user &{alice  [system:authenticated] map[]} must have "get" permission on all '
            "objects of the referenced paramKind (kind=ConfigMap, apiVersion=v1)",
            "field": "spec.paramKind",
        }
    ]
    ref = binding(
        "with-params",
        "with-params",
        paramRef={"name": "limits", "namespace": "default", "parameterNotFoundAction": "Allow"},
    )
    code, body = await apiserver.request("POST", POLICIES, body=params)  # the admin may
    assert code == 201, body
    code, body = await apiserver.request("POST", BINDINGS, body=ref, headers=as_alice)
    assert code == 422, body
    assert body["details"]["causes"][0]["message"] == (
        'Forbidden: user &{alice  [system:authenticated] map[]} does not have "get" permission on the object '
        "referenced by paramRef"
    )
    await bind("configmap-reader")
    code, body = await answer_other_than(apiserver, 422, BINDINGS, ref, headers=as_alice)  # RBAC in effect
    assert code == 201, body


async def answer_other_than(
    api: RunningServer, status: int, path: str, body: dict[str, Any], *, headers: dict[str, str]
) -> tuple[int, Any]:
    """POST until the answer is not ``status`` (the API server follows RBAC from a watch)."""
    async with asyncio.timeout(10):
        while True:
            code, answer = await api.request("POST", path, body=body, headers=headers)
            if code != status:
                return code, answer
            await asyncio.sleep(0.01)
