"""CEL validation rules (x-kubernetes-validations): compiling them with a CRD, evaluating them on
custom resources, each with upstream's wording; Kubernetes' library functions; bounded cost."""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest

from control.resources import crd_cel
from control.resources.builtin import builtin_registry
from control.resources.crd_cel import (
    FieldPathError,
    RuleValidator,
    escape_property,
    field_path,
    rule_validator,
    validate_rules,
    validate_schema_rules,
)
from control.resources.registry import FieldError, field_error
from control.resources.validation import validate, validate_status_update


def rules(*entries: dict[str, Any] | str) -> list[dict[str, Any]]:
    return [{"rule": entry} if isinstance(entry, str) else entry for entry in entries]


def schema_with(spec_rules: list[dict[str, Any]], **properties: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "x-kubernetes-validations": spec_rules,
                "properties": {
                    "replicas": {"type": "integer"},
                    "min": {"type": "integer"},
                    "max": {"type": "integer"},
                    "name": {"type": "string"},
                    "mode": {"type": "string"},
                    **properties,
                },
            },
            "status": {"type": "object", "properties": {"ready": {"type": "integer"}}},
        },
    }


def widget(**spec: Any) -> dict[str, Any]:
    metadata = {"name": "w1", "namespace": "default"}
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": metadata, "spec": spec}


def messages(errors: list[FieldError]) -> list[str]:
    return [error.message() for error in errors]


def check(schema: dict[str, Any], obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[str]:
    return messages(RuleValidator(schema).validate(obj, old=old))


def compile_errors(*entries: dict[str, Any] | str, **properties: Any) -> list[str]:
    return messages(validate_schema_rules(schema_with(rules(*entries), **properties), path="spec.validation"))


RULE_AT = "spec.validation.properties[spec].x-kubernetes-validations"


def go_rule(rule: str) -> str:
    return (
        f'apiextensions.ValidationRule{{Rule:"{rule}", Message:"", MessageExpression:"", '
        'Reason:(*apiextensions.FieldValueErrorReason)(nil), FieldPath:"", OptionalOldSelf:(*bool)(nil)}'
    )


# --- compiling with the CRD -----------------------------------------------------------------------


def test_well_formed_rules_compile_cleanly() -> None:
    assert (
        compile_errors(
            "self.min <= self.max",
            {"rule": "self.name == oldSelf.name", "message": "name is immutable"},
            {"rule": "self.replicas > 0", "messageExpression": "'replicas is ' + string(self.replicas)"},
            {"rule": "!oldSelf.hasValue() || self.mode == oldSelf.value().mode", "optionalOldSelf": True},
            {"rule": "self.replicas >= 0", "fieldPath": ".replicas", "reason": "FieldValueForbidden"},
        )
        == []
    )


def test_a_syntax_error_is_upstreams_compilation_failed_at_the_rule() -> None:
    assert compile_errors("self.min <=") == [
        f"{RULE_AT}[0].rule: Invalid value: {go_rule('self.min <=')}: compilation failed: "
        "ERROR: <input>:1:12: Syntax error: mismatched input '<EOF>' expecting {'[', '{', '(', '.', '-', "
        "'!', 'true', 'false', 'null', NUM_FLOAT, NUM_INT, NUM_UINT, STRING, BYTES, IDENTIFIER}\n"
        " | self.min <=\n"
        " | ...........^"
    ]


def test_undeclared_names_and_type_errors_fail_to_compile() -> None:
    (undeclared,) = compile_errors("size(other) > 0")
    assert (
        "compilation failed: ERROR: <input>:1:6: undeclared reference to 'other' (in container '')"
        in undeclared
    )
    scalar = {
        "type": "object",
        "properties": {"n": {"type": "integer", "x-kubernetes-validations": [{"rule": "self + 'a' == 'b'"}]}},
    }
    (typed,) = messages(validate_schema_rules(scalar, path="schema"))
    assert typed.startswith("schema.properties[n].x-kubernetes-validations[0].rule: Invalid value: ")
    assert (
        "compilation failed: ERROR: <input>:1:6: found no matching overload for '_+_' applied to '(int, string)'"
        in typed
    )


def test_a_rule_must_be_a_bool_and_a_message_expression_a_string() -> None:
    assert compile_errors("1 + 1") == [
        f"{RULE_AT}[0].rule: Invalid value: {go_rule('1 + 1')}: cel expression must evaluate to a bool"
    ]
    (not_string,) = compile_errors({"rule": "true", "messageExpression": "42"})
    assert not_string.startswith(
        f"{RULE_AT}[0].messageExpression: Invalid value: apiextensions.ValidationRule{{"
    )
    assert not_string.endswith("messageExpression must evaluate to a string")
    (broken,) = compile_errors({"rule": "true", "messageExpression": "'abc"})
    assert "messageExpression compilation failed: ERROR: <input>:1:1: Syntax error" in broken


def test_rule_fields_are_checked_before_compiling() -> None:
    assert compile_errors(
        "  ",
        {"rule": "true", "message": "   "},
        {"rule": "true", "message": "two\nlines"},
        {"rule": "true\n&& true"},
        {"rule": "true", "messageExpression": " "},
        {"rule": "true", "reason": "FieldValueWrong"},
        {"rule": "true", "fieldPath": ".nope"},
        {"rule": "true", "fieldPath": "replicas"},
    ) == [
        f"{RULE_AT}[0].rule: Required value: rule is not specified",
        f'{RULE_AT}[1].message: Invalid value: "   ": message must be non-empty if specified',
        f'{RULE_AT}[2].message: Invalid value: "two\nlines": message must not contain line breaks',
        f"{RULE_AT}[3].message: Required value: message must be specified if rule contains line breaks",
        f"{RULE_AT}[4].messageExpression: Required value: messageExpression must be non-empty if specified",
        f'{RULE_AT}[5].reason: Unsupported value: "FieldValueWrong": supported values: "FieldValueDuplicate", '
        '"FieldValueForbidden", "FieldValueInvalid", "FieldValueRequired"',
        f'{RULE_AT}[6].fieldPath: Invalid value: ".nope": fieldPath must be a valid path',
        f'{RULE_AT}[7].fieldPath: Invalid value: "replicas": fieldPath must be a valid path',
    ]


def test_optional_old_self_needs_old_self_and_lists_must_correlate() -> None:
    (optional,) = compile_errors({"rule": "self.min > 0", "optionalOldSelf": True})
    assert (
        optional
        == f"{RULE_AT}[0].optionalOldSelf: Invalid value: true: may not be set if oldSelf is not used in rule"
    )
    atomic_list = {
        "type": "object",
        "properties": {
            "items": {
                "type": "array",
                "items": {"type": "string", "x-kubernetes-validations": [{"rule": "self == oldSelf"}]},
            }
        },
    }
    assert messages(validate_schema_rules(atomic_list, path="s")) == [
        's.properties[items].items.x-kubernetes-validations[0].rule: Invalid value: "self == oldSelf": '
        "oldSelf cannot be used on the uncorrelatable portion of the schema within s.properties[items]"
    ]
    map_list = copy.deepcopy(atomic_list)
    map_list["properties"]["items"].update(
        {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["k"]}
    )
    map_list["properties"]["items"]["items"] = {
        "type": "object",
        "properties": {"k": {"type": "string"}},
        "x-kubernetes-validations": [{"rule": "self == oldSelf"}],
    }
    assert validate_schema_rules(map_list, path="s") == []


def crd(*schemas: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "conversion": {"strategy": "None"},
            "versions": [
                {
                    "name": f"v{i + 1}",
                    "served": True,
                    "storage": i == 0,
                    "schema": {"openAPIV3Schema": schema},
                }
                for i, schema in enumerate(schemas)
            ],
        },
        "status": {"storedVersions": ["v1"]},
    }


def test_crd_validation_names_the_shared_schema_or_each_version() -> None:
    crds = builtin_registry().lookup(
        group="apiextensions.k8s.io", version="v1", plural="customresourcedefinitions"
    )
    assert crds is not None
    bad = schema_with(rules("self.min <"))
    shared = [e.message() for e in validate(crds, crd(bad, bad))]
    assert len(shared) == 1
    assert shared[0].startswith(
        f"{RULE_AT.replace('spec.validation', 'spec.validation.openAPIV3Schema')}[0].rule:"
    )
    different = [e.field for e in validate(crds, crd(bad, schema_with(rules("self.max >"))))]
    assert different == [
        "spec.versions[0].schema.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule",
        "spec.versions[1].schema.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule",
    ]
    assert validate(crds, crd(schema_with(rules("self.min <= self.max")))) == []


# --- evaluating on custom resources ---------------------------------------------------------------


def test_a_failed_rule_reports_its_message_or_the_default_and_all_failures_are_reported() -> None:
    schema = schema_with(
        rules(
            {"rule": "self.min <= self.max", "message": "min must not exceed max"},
            "self.replicas < 10",
            "self.name.startsWith('w')",
        )
    )
    assert check(schema, widget(min=5, max=1, replicas=3, name="web")) == [
        "spec: Invalid value: min must not exceed max"
    ]
    assert check(schema, widget(min=5, max=1, replicas=30, name="app")) == [
        "spec: Invalid value: min must not exceed max",
        "spec: Invalid value: failed rule: self.replicas < 10",
        "spec: Invalid value: failed rule: self.name.startsWith('w')",
    ]
    assert check(schema, widget(min=1, max=5, replicas=3, name="w")) == []


def test_scalar_nodes_show_their_value_and_object_nodes_none() -> None:
    schema = schema_with([], replicas={"type": "integer", "x-kubernetes-validations": rules("self % 2 == 0")})
    schema["properties"]["spec"]["properties"]["name"]["x-kubernetes-validations"] = rules("self.size() < 4")
    assert check(schema, widget(replicas=3, name="long")) == [
        "spec.replicas: Invalid value: 3: failed rule: self % 2 == 0",
        'spec.name: Invalid value: "long": failed rule: self.size() < 4',
    ]


def test_message_expression_reason_and_field_path() -> None:
    schema = schema_with(
        rules(
            {
                "rule": "self.replicas <= self.max",
                "messageExpression": "'replicas ' + string(self.replicas) + ' exceeds ' + string(self.max)",
                "fieldPath": ".replicas",
            },
            {
                "rule": "has(self.name)",
                "reason": "FieldValueRequired",
                "fieldPath": ".name",
                "message": "name!",
            },
            {"rule": "self.mode != 'off'", "reason": "FieldValueForbidden", "message": "off is gone"},
            {"rule": "self.min != self.max", "reason": "FieldValueDuplicate"},
            {"rule": "self.min >= 0", "reason": "FieldValueInvalid", "messageExpression": "'x'.substring(5)"},
        )
    )
    errors = RuleValidator(schema).validate(widget(replicas=7, max=3, mode="off", min=-1))
    assert messages(errors) == [
        "spec.replicas: Invalid value: replicas 7 exceeds 3",
        "spec.name: Required value: name!",
        "spec: Forbidden: off is gone",
        "spec: Invalid value: failed rule: self.min >= 0",
    ]
    assert [e.type for e in errors] == [
        "FieldValueInvalid",
        "FieldValueRequired",
        "FieldValueForbidden",
        "FieldValueInvalid",
    ]
    (duplicate,) = RuleValidator(schema).validate(widget(replicas=1, max=3, name="n", min=3, mode="on"))
    assert duplicate == field_error("FieldValueDuplicate", "spec")
    assert duplicate.message() == "spec: Duplicate value"


def test_runtime_errors_read_as_upstreams() -> None:
    schema = schema_with(
        rules("self.name == 'x'", "self.replicas / self.min > 1", "self.mode + 1 == 2"),
        mode={"x-kubernetes-int-or-string": True},
    )
    assert check(schema, widget(replicas=4, min=0, mode="a")) == [
        "spec: Invalid value: \"object\": no such key: name evaluating rule: self.name == 'x'",
        'spec: Invalid value: "object": division by zero evaluating rule: self.replicas / self.min > 1',
        "spec: Invalid value: \"object\": 'no such overload': call arguments did not match a supported "
        "operator, function or macro signature for rule: self.mode + 1 == 2",
    ]


def test_transition_rules_run_only_on_update_with_an_old_value() -> None:
    schema = schema_with(
        rules(
            {"rule": "self.name == oldSelf.name", "message": "name is immutable"},
            {
                "rule": "self.replicas >= oldSelf.replicas",
                "messageExpression": "'was ' + string(oldSelf.replicas)",
            },
        )
    )
    assert check(schema, widget(name="a", replicas=1)) == []
    old = widget(name="a", replicas=5)
    assert check(schema, widget(name="b", replicas=2), old) == [
        "spec: Invalid value: name is immutable",
        "spec: Invalid value: was 5",
    ]
    assert check(schema, widget(name="a", replicas=6), old) == []


def test_optional_old_self_sees_no_value_on_create() -> None:
    schema = schema_with(
        rules(
            {
                "rule": "oldSelf.hasValue() ? self.mode == oldSelf.value().mode : self.mode == 'initial'",
                "optionalOldSelf": True,
                "message": "starts initial and never changes",
            }
        )
    )
    assert check(schema, widget(mode="other")) == ["spec: Invalid value: starts initial and never changes"]
    assert check(schema, widget(mode="initial")) == []
    assert check(schema, widget(mode="initial", name="n"), widget(mode="initial")) == []
    assert check(schema, widget(mode="other"), widget(mode="initial")) == [
        "spec: Invalid value: starts initial and never changes"
    ]


def test_unchanged_values_ratchet_but_changed_ones_do_not() -> None:
    schema = schema_with(
        [],
        limits={
            "type": "object",
            "properties": {"cpu": {"type": "integer"}},
            "x-kubernetes-validations": rules("self.cpu < 4"),
        },
    )
    stored = widget(limits={"cpu": 8}, name="a")
    assert check(schema, widget(limits={"cpu": 8}, name="b"), stored) == []
    assert check(schema, widget(limits={"cpu": 9}, name="a"), stored) == [
        "spec.limits: Invalid value: failed rule: self.cpu < 4"
    ]


def test_lists_maps_and_nested_nodes() -> None:
    schema = schema_with(
        [],
        ports={
            "type": "array",
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
            "x-kubernetes-validations": rules("self.all(p, p.port > 0)", "self.map(p, p.port).isSorted()"),
            "items": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "port": {"type": "integer"}},
                "x-kubernetes-validations": [
                    {"rule": "self.port == oldSelf.port", "message": "a port's number is immutable"}
                ],
            },
        },
        labels={
            "type": "object",
            "additionalProperties": {"type": "string", "x-kubernetes-validations": rules("self.size() <= 3")},
            "x-kubernetes-validations": rules("self.all(k, k.startsWith('x'))", "'xa' in self"),
        },
        tags={
            "type": "array",
            "items": {"type": "string"},
            "x-kubernetes-validations": rules("self.exists_one(t, t == 'a')"),
        },
    )
    obj = widget(
        ports=[{"name": "web", "port": 90}, {"name": "dns", "port": 0}],
        labels={"xa": "long", "y": "ok"},
        tags=["a", "a"],
    )
    assert check(schema, obj) == [
        "spec.ports: Invalid value: failed rule: self.all(p, p.port > 0)",
        "spec.ports: Invalid value: failed rule: self.map(p, p.port).isSorted()",
        "spec.labels: Invalid value: failed rule: self.all(k, k.startsWith('x'))",
        'spec.labels[xa]: Invalid value: "long": failed rule: self.size() <= 3',
        "spec.tags: Invalid value: failed rule: self.exists_one(t, t == 'a')",
    ]
    old = widget(ports=[{"name": "dns", "port": 53}, {"name": "web", "port": 90}])
    new = widget(ports=[{"name": "web", "port": 90}, {"name": "dns", "port": 54}, {"name": "new", "port": 1}])
    assert check(schema, new, old) == [
        "spec.ports: Invalid value: failed rule: self.map(p, p.port).isSorted()",
        "spec.ports[1]: Invalid value: a port's number is immutable",
    ]


def test_root_rules_see_only_name_and_generate_name_of_metadata() -> None:
    schema = {
        "type": "object",
        "x-kubernetes-validations": rules(
            "self.metadata.name.startsWith('w')", "has(self.metadata.labels)", "self.kind == 'Widget'"
        ),
        "properties": {"spec": {"type": "object"}},
    }
    obj = widget()
    obj["metadata"]["labels"] = {"a": "b"}
    assert check(schema, obj) == ["<nil>: Invalid value: failed rule: has(self.metadata.labels)"]
    with_path = {
        **schema,
        "x-kubernetes-validations": [{"rule": "self.spec.size() > 0", "fieldPath": ".spec"}],
    }
    assert check(with_path, obj) == ["spec: Invalid value: failed rule: self.spec.size() > 0"]


def test_formats_and_numbers_bind_as_upstream_types() -> None:
    schema = schema_with(
        [],
        started={
            "type": "string",
            "format": "date-time",
            "x-kubernetes-validations": rules("self < timestamp('2030-01-01T00:00:00Z')"),
        },
        timeout={
            "type": "string",
            "format": "duration",
            "x-kubernetes-validations": rules("self <= duration('1h')"),
        },
        data={"type": "string", "format": "byte", "x-kubernetes-validations": rules("size(self) == 3")},
        ratio={"type": "number", "x-kubernetes-validations": rules("self <= 1.0")},
        window={
            "type": "object",
            "properties": {"from": {"type": "string", "format": "date-time"}},
            "x-kubernetes-validations": rules("timestamp(self.from) > timestamp('2000-01-01T00:00:00Z')"),
        },
    )
    good = widget(
        started="2026-01-01T00:00:00Z",
        timeout="90m",
        data="YWJj",
        ratio=1,
        window={"from": "2001-01-01T00:00:00Z"},
    )
    assert check(schema, good) == [
        "spec.timeout: Invalid value: \"90m\": failed rule: self <= duration('1h')"
    ]
    assert check(schema, widget(timeout="1h30m0.5s", ratio=2)) == [
        "spec.timeout: Invalid value: \"1h30m0.5s\": failed rule: self <= duration('1h')",
        "spec.ratio: Invalid value: 2: failed rule: self <= 1.0",
    ]


def test_escaped_property_names() -> None:
    assert escape_property("in") == "__in__"
    assert escape_property("x-y.z/w") == "x__dash__y__dot__z__slash__w"
    assert escape_property("a__b") == "a__underscores__b"
    assert escape_property("9lives") is None
    schema = schema_with(rules("self.x__dash__y == 'ok'", "self.__namespace__ == 'ns'"))
    schema["properties"]["spec"]["properties"].update(
        {"x-y": {"type": "string"}, "namespace": {"type": "string"}}
    )
    assert check(schema, widget(**{"x-y": "ok", "namespace": "ns"})) == []
    assert len(check(schema, widget(**{"x-y": "no", "namespace": "ns"}))) == 1


# --- Kubernetes' library --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rule",
    [
        "[1, 2, 3].isSorted() && ![2, 1].isSorted()",
        "[1, 2, 3].sum() == 6 && [0.5, 1.5].sum() == 2.0",
        "[3, 1, 2].min() == 1 && [3, 1, 2].max() == 3",
        "['a', 'b', 'a'].indexOf('a') == 0 && ['a', 'b', 'a'].lastIndexOf('a') == 2 && [1].indexOf(5) == -1",
        "'abc 123 def 456'.find('[0-9]+') == '123' && 'x'.find('[0-9]') == ''",
        "'a1b2c3'.findAll('[0-9]') == ['1', '2', '3'] && 'a1b2c3'.findAll('[0-9]', 2) == ['1', '2']",
        "'abc'.matches('^a') && 'Hello'.lowerAscii() == 'hello' && 'a,b'.split(',') == ['a', 'b']",
        "'%s has %d items'.format(['list', 3]) == 'list has 3 items'",
        "'  x '.trim() == 'x' && 'abc'.substring(1) == 'bc' && 'abc'.charAt(0) == 'a'",
        "url('https://user@example.com:8443/a/b?x=1&x=2').getHostname() == 'example.com'",
        "url('https://example.com:8443/a').getPort() == '8443' && url('/p').getEscapedPath() == '/p'",
        "url('https://example.com/?x=1&x=2').getQuery() == {'x': ['1', '2']} && !isURL('not a url')",
        "quantity('1Gi').isGreaterThan(quantity('1000Mi')) && quantity('500m').isLessThan(quantity('1'))",
        "quantity('1').add(quantity('500m')) == quantity('1500m') && quantity('2').sub(1).asInteger() == 1",
        "!quantity('500m').isInteger() && quantity('1.5').asApproximateFloat() == 1.5 && isQuantity('1Ki')",
        "quantity('1Ki').compareTo(quantity('1024')) == 0 && quantity('-1').sign() == -1",
        "ip('10.0.0.1').family() == 4 && ip('::1').isLoopback() && !isIP('1.2.3')",
        "ip('8.8.8.8').isGlobalUnicast() && ip('0.0.0.0').isUnspecified() && ip('169.254.1.1').isLinkLocalUnicast()",
        "cidr('10.0.0.0/8').containsIP('10.1.2.3') && cidr('10.0.0.0/8').containsCIDR(cidr('10.1.0.0/16'))",
        "cidr('10.1.2.3/8').masked() == cidr('10.0.0.0/8') && cidr('10.1.2.3/8').ip() == ip('10.1.2.3')",
        "string(cidr('10.1.2.3/8').masked()) == '10.0.0.0/8' && cidr('10.0.0.0/8').prefixLength() == 8",
        "math.greatest(1, 5) == 5 && optional.of(1).hasValue()",
    ],
)
def test_library_functions(rule: str) -> None:
    schema = {"type": "object", "x-kubernetes-validations": rules(rule)}
    assert validate_schema_rules(schema, path="s") == []
    assert check(schema, widget()) == []


def test_library_errors_are_runtime_errors() -> None:
    schema = {
        "type": "object",
        "x-kubernetes-validations": rules("[].max() == 1", "'x'.find('(') == ''", "url('::') != url('/a')"),
    }
    errors = check(schema, widget())
    assert len(errors) == 3
    assert "max called on empty list evaluating rule: [].max() == 1" in errors[0]
    assert "error parsing regexp: missing ): ( evaluating rule" in errors[1]
    assert "URL parse error" in errors[2]


# --- cost, caching, blocking ----------------------------------------------------------------------


def test_a_runaway_rule_is_stopped_and_stops_the_rest() -> None:
    schema = schema_with(
        rules("self.items.all(a, self.items.all(b, self.items.all(c, a + b + c >= 0)))", "self.min > 100"),
        items={"type": "array", "items": {"type": "integer"}},
    )
    started = time.monotonic()
    errors = check(schema, widget(items=list(range(300)), min=1))
    assert time.monotonic() - started < 5
    assert errors == [
        "spec: Invalid value: \"object\": 'operation cancelled: actual cost limit exceeded': no further validation "
        "rules will be run due to call cost exceeds limit for rule: "
        "self.items.all(a, self.items.all(b, self.items.all(c, a + b + c >= 0)))"
    ]


def test_the_runtime_budget_ends_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(crd_cel, "RUNTIME_BUDGET_SECONDS", -1.0)
    assert check(schema_with(rules("true")), widget()) == [
        'spec: Invalid value: "object": validation failed due to running out of cost budget, '
        "no further validation rules will be run"
    ]


def test_rules_compile_once_per_schema_object() -> None:
    schema = schema_with(rules("self.min <= self.max"))
    first = rule_validator(schema)
    assert rule_validator(schema) is first
    assert rule_validator(copy.deepcopy(schema)) is not first


def test_rules_that_do_not_compile_report_at_write_time() -> None:
    schema = schema_with(rules("self.min <"))
    (error,) = check(schema, widget(min=1))
    assert error.startswith('spec: Invalid value: "object": rule compile error: compilation failed: ERROR:')


def test_type_errors_block_the_rules() -> None:
    schema = schema_with(rules("self.min <= self.max"))
    found = [field_error("FieldValueTypeInvalid", "spec.min", "must be integer", value="x")]
    assert messages(validate_rules(schema, widget(min="x"), found=found)) == [
        '<nil>: Invalid value: "null": some validation rules were not checked because the object was invalid; '
        "correct the existing errors to complete validation"
    ]
    required = [field_error("FieldValueRequired", "spec.name")]
    assert len(validate_rules(schema, widget(min=1, max=0), found=required)) == 1
    not_blocking = [field_error("FieldValueInvalid", "spec.min", "too small", value=1)]
    assert messages(validate_rules(schema, widget(min=1, max=0), found=not_blocking)) == [
        "spec: Invalid value: failed rule: self.min <= self.max"
    ]
    assert validate_rules({"type": "object"}, widget(), found=found) == []


def test_custom_resource_writes_and_status_updates_run_the_rules() -> None:
    from control.apiserver.custom_resources import resource_types

    schema = schema_with(rules({"rule": "self.min <= self.max", "message": "min > max"}))
    schema["properties"]["status"]["x-kubernetes-validations"] = rules("self.ready >= 0")
    definition = crd(schema)
    definition["spec"]["versions"][0]["subresources"] = {"status": {}}
    (widgets,) = resource_types(definition)
    assert messages(validate(widgets, widget(min=2, max=1))) == ["spec: Invalid value: min > max"]
    stored = widget(min=1, max=2)
    stored["metadata"]["resourceVersion"] = "7"
    updated = {**stored, "status": {"ready": -1}}
    assert messages(validate_status_update(widgets, updated, old=stored)) == [
        "status: Invalid value: failed rule: self.ready >= 0"
    ]
    assert validate_status_update(widgets, {**stored, "status": {"ready": 1}}, old=stored) == []


def test_field_paths_walk_properties_and_map_keys() -> None:
    schema = schema_with([], labels={"type": "object", "additionalProperties": {"type": "string"}})
    spec = schema["properties"]["spec"]
    assert field_path(".replicas", spec) == "replicas"
    assert field_path(".labels['app.kubernetes.io/name']", spec) == "labels[app.kubernetes.io/name]"
    assert field_path("['replicas']", spec) == "replicas"
    for bad in ("replicas", ".nope", ".replicas.deeper", ".labels[app]", ".labels['a\\q']", ""):
        with pytest.raises(FieldPathError):
            field_path(bad, spec)
    spec["x-kubernetes-validations"] = [
        {"rule": "!('bad' in self.labels)", "fieldPath": ".labels['bad']", "message": "no bad label"}
    ]
    assert check(schema, widget(labels={"bad": "x"})) == ["spec.labels[bad]: Invalid value: no bad label"]


def test_unknown_fields_are_dyn_and_atomic_maps_still_correlate() -> None:
    schema = schema_with(
        [],
        extra={
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": True,
            "x-kubernetes-validations": rules("self.any.size() == 2 && self.n + 1 == 3"),
        },
        pinned={
            "type": "object",
            "x-kubernetes-map-type": "atomic",
            "properties": {"v": {"type": "string", "x-kubernetes-validations": rules("self == oldSelf")}},
        },
        window={
            "type": "string",
            "format": "duration",
            "x-kubernetes-validations": rules("self == duration('49h')"),
        },
    )
    assert check(schema, widget(extra={"any": [1, "two"], "n": 2}, window="2d1h")) == []
    assert check(schema, widget(pinned={"v": "b"}), widget(pinned={"v": "a"})) == [
        'spec.pinned.v: Invalid value: "b": failed rule: self == oldSelf'
    ]
