"""Label and field selectors against apimachinery's own test tables.

Cases are ported from k8s.io/apimachinery pkg/labels/selector_test.go
(TestSelectorParse, TestSelectorMatches, TestSetSelectorParser, TestToString,
TestRequirementConstructor, TestRequirementSelectorMatching) and
pkg/fields/selector_test.go (TestSplitTerms, TestEscapeValue, TestSelectorParse,
TestSelectorMatches, TestRequiresExactMatch); error texts are the ones upstream returns.
"""

from __future__ import annotations

from typing import Any

import pytest

from control.resources.selectors import (
    EVERYTHING,
    NOTHING,
    FieldSelector,
    LabelSelector,
    Operator,
    SelectorError,
    escape_field_value,
    format_label_selector,
    format_labels,
    go_quote,
    label_selector_from_spec,
    new_requirement,
    parse_field_selector,
    parse_label_selector,
)

KEY_NAME_ERROR = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
    "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
VALUE_ERROR = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "
    "'12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


# --- labels.Parse ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["x=a,y=b,z=c", "", "x!=a,y=b", "x=", "x= ", "x=,z= ", "x= ,z= ", "!x", "x>1", "x>1,z<5"]
)
def test_good_selectors_render_back_without_spaces(text: str) -> None:
    assert str(parse_label_selector(text)) == text.replace(" ", "")


@pytest.mark.parametrize("text", ["x=a||y=b", "x==a==b", "!x=a", "x<a"])
def test_bad_selectors_are_rejected(text: str) -> None:
    with pytest.raises(SelectorError):
        parse_label_selector(text)


def test_parse_is_deterministic() -> None:
    assert str(parse_label_selector("x=a,a=x")) == str(parse_label_selector("a=x,x=a")) == "a=x,x=a"


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("", {"x": "y"}, True),
        ("x=y", {"x": "y"}, True),
        ("x=y,z=w", {"x": "y", "z": "w"}, True),
        ("x!=y,z!=w", {"x": "z", "z": "a"}, True),
        ("notin=in", {"notin": "in"}, True),
        ("x", {"x": "z"}, True),
        ("!x", {"y": "z"}, True),
        ("x>1", {"x": "2"}, True),
        ("x<1", {"x": "0"}, True),
        ("x=z", {}, False),
        ("x=y", {"x": "z"}, False),
        ("x=y,z=w", {"x": "w", "z": "w"}, False),
        ("x!=y,z!=w", {"x": "z", "z": "w"}, False),
        ("x", {"y": "z"}, False),
        ("!x", {"x": "z"}, False),
        ("x>1", {"x": "0"}, False),
        ("x<1", {"x": "2"}, False),
        ("foo=bar", {"foo": "bar", "baz": "blah"}, True),
        ("foo=bar,baz=blah", {"foo": "bar", "baz": "blah"}, True),
        ("foo=blah", {"foo": "bar", "baz": "blah"}, False),
        ("foo=bar,foobar=bar,baz=blah", {"foo": "bar", "baz": "blah"}, False),
        # beyond upstream's table: set operators, missing keys, integers
        ("x in (a,b)", {"x": "b"}, True),
        ("x in (a,b)", {"x": "c"}, False),
        ("x in (a,b)", {}, False),
        ("x notin (a,b)", {}, True),
        ("x notin (a,b)", {"x": "a"}, False),
        ("x!=a", {}, True),
        ("x in ()", {"x": ""}, True),
        ("x>1", {"x": "v2"}, False),
        ("x>1", {}, False),
        ("x<1", {"x": "-5"}, True),
        ("x>1", {"x": "+2"}, True),
        ("x>1", {"x": "99999999999999999999"}, False),  # out of int64: ParseInt fails
        ("x>1", {"x": " 2"}, False),
    ],
)
def test_matches(text: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_label_selector(text).matches(labels) is expected


def _shape(text: str) -> list[tuple[str, Operator, tuple[str, ...]]]:
    return [(r.key, r.operator, r.values) for r in parse_label_selector(text).requirements]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\rx", [("x", Operator.EXISTS, ())]),
        (
            "this-is-a-dns.domain.com/key-with-dash",
            [("this-is-a-dns.domain.com/key-with-dash", Operator.EXISTS, ())],
        ),
        (
            "this-is-another-dns.domain.com/key-with-dash in (so,what)",
            [("this-is-another-dns.domain.com/key-with-dash", Operator.IN, ("so", "what"))],
        ),
        (
            "0.1.2.domain/99 notin (10.10.100.1, tick.tack.clock)",
            [("0.1.2.domain/99", Operator.NOT_IN, ("10.10.100.1", "tick.tack.clock"))],
        ),
        ("foo  in\t (abc)", [("foo", Operator.IN, ("abc",))]),
        ("x notin\n (abc)", [("x", Operator.NOT_IN, ("abc",))]),
        ("x  notin\t\t\t(abc,def)", [("x", Operator.NOT_IN, ("abc", "def"))]),
        ("x in (abc,)", [("x", Operator.IN, ("", "abc"))]),
        ("x in ()", [("x", Operator.IN, ("",))]),
        (
            "x notin (abc,,def),bar,z in (),w",
            [
                ("bar", Operator.EXISTS, ()),
                ("w", Operator.EXISTS, ()),
                ("x", Operator.NOT_IN, ("", "abc", "def")),
                ("z", Operator.IN, ("",)),
            ],
        ),
        ("x,y in (a)", [("x", Operator.EXISTS, ()), ("y", Operator.IN, ("a",))]),
        ("x=a", [("x", Operator.EQUALS, ("a",))]),
        ("x==a", [("x", Operator.DOUBLE_EQUALS, ("a",))]),
        ("x>1", [("x", Operator.GREATER_THAN, ("1",))]),
        ("x<7", [("x", Operator.LESS_THAN, ("7",))]),
        ("x=a,y!=b", [("x", Operator.EQUALS, ("a",)), ("y", Operator.NOT_EQUALS, ("b",))]),
        ("x notin ( )", [("x", Operator.NOT_IN, ("",))]),
        ("x notin (, a)", [("x", Operator.NOT_IN, ("", "a"))]),
        ("a ", [("a", Operator.EXISTS, ())]),
        ("a in (x,y,notin, z,in)", [("a", Operator.IN, ("in", "notin", "x", "y", "z"))]),
        ("notin=in", [("notin", Operator.EQUALS, ("in",))]),
    ],
)
def test_parses_requirements(text: str, expected: list[tuple[str, Operator, tuple[str, ...]]]) -> None:
    assert _shape(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x,,y", "found ',', expected: identifier after ','"),
        (",x,y", "found ',', expected: !, identifier, or 'end of string'"),
        (
            "x nott in (y)",
            "unable to parse requirement: found 'nott', expected: in, notin, =, ==, !=, gt, lt",
        ),
        ("a in (xyz),", "found '', expected: identifier after ','"),
        ("a in (xyz)b notin ()", "found 'b', expected: ',' or 'end of string'"),
        ("a in (xyz abc)", "unable to parse requirement: found 'abc', expected: ',' or ')'"),
        ("a notin(", "unable to parse requirement: found '', expected: ',', ')' or identifier"),
        ("a (", "unable to parse requirement: found '(', expected: in, notin, =, ==, !=, gt, lt"),
        ("(", "found '(', expected: !, identifier, or 'end of string'"),
        ("x in", "unable to parse requirement: found '' expected: '('"),
        ("x in (a b", "unable to parse requirement: found 'b', expected: ',' or ')'"),
        ("x in (a,", "unable to parse requirement: found '', expected: ',', or identifier"),
        ("x=(", "unable to parse requirement: found '(', expected: identifier"),
        ("!", "unable to parse requirement: found '', expected: identifier"),
        ("x==a==b", "found '==', expected: ',' or 'end of string'"),
        ("!x=a", "found '=', expected: ',' or 'end of string'"),
        ("x=a b", "found 'b', expected: ',' or 'end of string'"),
        (
            "x<a",
            "unable to parse requirement: values[0]: Invalid value: \"a\": for 'Gt', 'Lt' operators, "
            "the value must be an integer",
        ),
        ("-a=b", f'unable to parse requirement: <nil>: Invalid value: "-a": {KEY_NAME_ERROR}'),
        ("a=b$", f'unable to parse requirement: values[0][a]: Invalid value: "b$": {VALUE_ERROR}'),
        (
            "a/b/c",
            'unable to parse requirement: <nil>: Invalid value: "a/b/c": a qualified name must '
            "consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
            "character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
            "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' "
            "(e.g. 'example.com/MyName')",
        ),
        (
            "Example.com/a",
            'unable to parse requirement: <nil>: Invalid value: "Example.com/a": prefix part '
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and "
            "must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation "
            "is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
        ),
        ("/a", 'unable to parse requirement: <nil>: Invalid value: "/a": prefix part must be non-empty'),
        (
            "a" * 64,
            f'unable to parse requirement: <nil>: Invalid value: "{"a" * 64}": '
            "name part must be no more than 63 characters",
        ),
        (
            "x>" + "9" * 20,
            f'unable to parse requirement: values[0]: Invalid value: "{"9" * 20}": '
            "for 'Gt', 'Lt' operators, the value must be an integer",
        ),
        (
            "x=" + "v" * 64,
            f'unable to parse requirement: values[0][x]: Invalid value: "{"v" * 64}": '
            "must be no more than 63 characters",
        ),
        (
            "x>a$",
            "unable to parse requirement: [values[0]: Invalid value: \"a$\": for 'Gt', 'Lt' operators, "
            f'the value must be an integer, values[0][x]: Invalid value: "a$": {VALUE_ERROR}]',
        ),
    ],
)
def test_parse_errors_are_upstreams(text: str, message: str) -> None:
    with pytest.raises(SelectorError) as caught:
        parse_label_selector(text)
    assert str(caught.value) == message


def test_nested_parse_errors_keep_their_cause() -> None:
    with pytest.raises(SelectorError) as caught:
        parse_label_selector("x in (a b")
    assert isinstance(caught.value.__cause__, SelectorError)


def test_empty_text_is_everything() -> None:
    selector = parse_label_selector("  ")
    assert selector is EVERYTHING
    assert selector.empty and selector.matches({}) and str(selector) == ""


# --- requirements ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "operator", "values", "message"),
    [
        (
            "x1",
            Operator.IN,
            [],
            "values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't be empty",
        ),
        (
            "x1",
            Operator.IN,
            None,
            "values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be empty",
        ),
        (
            "x5",
            Operator.EQUALS,
            ["bar", "foo"],
            'values: Invalid value: []string{"bar", "foo"}: '
            "exact-match compatibility requires one single value",
        ),
        (
            "x8",
            Operator.EXISTS,
            ["foo"],
            'values: Invalid value: []string{"foo"}: values set must be empty for exists and does not exist',
        ),
        (
            "x13",
            Operator.GREATER_THAN,
            [],
            "values: Invalid value: []string{}: for 'Gt', 'Lt' operators, exactly one value is required",
        ),
        (
            "x14",
            Operator.GREATER_THAN,
            ["bar"],
            "values[0]: Invalid value: \"bar\": for 'Gt', 'Lt' operators, the value must be an integer",
        ),
        ("x17", Operator.EQUALS, ["a b"], f'values[0][x17]: Invalid value: "a b": {VALUE_ERROR}'),
        (
            "x18",
            "unsupportedOp",
            [],
            'operator: Unsupported value: "unsupportedOp": supported values: '
            '"in", "notin", "=", "==", "!=", "gt", "lt", "exists", "!"',
        ),
        (
            "a" * 254,
            Operator.EXISTS,
            [],
            f'key: Invalid value: "{"a" * 254}": name part must be no more than 63 characters',
        ),
    ],
)
def test_requirement_constructor_errors(
    key: str, operator: str, values: list[str] | None, message: str
) -> None:
    with pytest.raises(SelectorError) as caught:
        new_requirement(key, operator, values=values)
    assert str(caught.value) == message


def test_requirement_error_paths_can_be_prefixed() -> None:
    with pytest.raises(SelectorError, match=r"^spec\.selector\.values: Invalid value"):
        new_requirement("x", Operator.IN, values=[], path="spec.selector")


@pytest.mark.parametrize(
    ("requirements", "text"),
    [
        (
            [("x", "in", ["abc", "def"]), ("y", "notin", ["jkl"]), ("z", "exists", [])],
            "x in (abc,def),y notin (jkl),z",
        ),
        (
            [("x", "notin", ["abc", "def"]), ("y", "!=", ["jkl"]), ("z", "!", [])],
            "x notin (abc,def),y!=jkl,!z",
        ),
        (
            [("x", "notin", ["abc"]), ("y", "in", ["jkl", "mno"]), ("z", "notin", [""])],
            "x notin (abc),y in (jkl,mno),z notin ()",
        ),
        (
            [("x", "=", ["abc"]), ("y", "==", ["jkl"]), ("z", "!=", ["a"]), ("z", "exists", [])],
            "x=abc,y==jkl,z!=a,z",
        ),
        ([("x", "gt", ["2"]), ("y", "lt", ["8"]), ("z", "exists", [])], "x>2,y<8,z"),
        ([("x", "in", ["b", "a"])], "x in (a,b)"),  # values are sorted only when rendered
    ],
)
def test_selector_to_string(requirements: list[tuple[str, str, list[str]]], text: str) -> None:
    selector = LabelSelector(new_requirement(k, op, values=v) for k, op, v in requirements)
    assert str(selector) == text


@pytest.mark.parametrize(
    ("labels", "requirements", "expected"),
    [
        ({"x": "foo", "y": "baz"}, [("x", "in", ["foo"]), ("y", "notin", ["alpha"])], True),
        ({"x": "foo", "y": "baz"}, [("x", "in", ["foo"]), ("y", "in", ["alpha"])], False),
        ({"y": ""}, [("x", "notin", [""]), ("y", "exists", [])], True),
        ({"y": ""}, [("x", "!", []), ("y", "exists", [])], True),
        ({"y": ""}, [("x", "notin", [""]), ("y", "!", [])], False),
        ({"y": "baz"}, [("x", "in", [""])], False),
        ({"z": "2"}, [("z", "gt", ["1"])], True),
        ({"z": "v2"}, [("z", "gt", ["1"])], False),
    ],
)
def test_requirement_matching(
    labels: dict[str, str], requirements: list[tuple[str, str, list[str]]], expected: bool
) -> None:
    selector = LabelSelector(new_requirement(k, op, values=v) for k, op, v in requirements)
    assert selector.matches(labels) is expected


def test_exact_match_for_index_lookups() -> None:
    selector = parse_label_selector("app=web,tier in (db),env notin (prod),x in (a,b)")
    assert selector.exact_match("app") == "web"
    assert selector.exact_match("tier") == "db"
    assert selector.exact_match("env") is None
    assert selector.exact_match("x") is None
    assert selector.exact_match("missing") is None


# --- metav1.LabelSelector ----------------------------------------------------------------------


def test_nil_spec_matches_nothing_and_empty_spec_everything() -> None:
    nil = label_selector_from_spec(None)
    assert nil is NOTHING
    assert not nil.matches({}) and not nil.matches({"a": "b"})
    assert not nil.empty and nil.matches_nothing and str(nil) == ""
    for empty in ({}, {"matchLabels": {}, "matchExpressions": []}, {"matchLabels": None}):
        selector = label_selector_from_spec(empty)
        assert selector is EVERYTHING
        assert selector.empty and selector.matches({"a": "b"})


def test_spec_combines_labels_and_expressions() -> None:
    selector = label_selector_from_spec(
        {
            "matchLabels": {"b": "1", "a": "2"},
            "matchExpressions": [
                {"key": "c", "operator": "In", "values": ["y", "x"]},
                {"key": "d", "operator": "NotIn", "values": ["z"]},
                {"key": "e", "operator": "Exists"},
                {"key": "f", "operator": "DoesNotExist", "values": []},
            ],
        }
    )
    assert str(selector) == "a=2,b=1,c in (x,y),d notin (z),e,!f"
    assert selector.matches({"a": "2", "b": "1", "c": "x", "e": ""})
    assert not selector.matches({"a": "2", "b": "1", "c": "x", "e": "", "f": "1"})
    assert not selector.matches({"a": "2", "b": "1", "c": "x", "d": "z", "e": ""})


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]},
            '"Gt" is not a valid label selector operator',
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "In"}]},
            "values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be empty",
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
            'values: Invalid value: []string{"x"}: values set must be empty for exists and does not exist',
        ),
        ({"matchLabels": {"a b": "c"}}, f'key: Invalid value: "a b": {KEY_NAME_ERROR}'),
        ({"matchLabels": {"a": "c d"}}, f'values[0][a]: Invalid value: "c d": {VALUE_ERROR}'),
    ],
)
def test_spec_errors(spec: dict, message: str) -> None:
    with pytest.raises(SelectorError) as caught:
        label_selector_from_spec(spec)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (["a"], "invalid label selector: the selector must be an object"),
        ({"matchLabels": {"a": 1}}, "invalid label selector: matchLabels must be a map of strings"),
        ({"matchLabels": ["a"]}, "invalid label selector: matchLabels must be a map of strings"),
        (
            {"matchExpressions": {"key": "a"}},
            "invalid label selector: matchExpressions must be a list of objects",
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "In", "values": "ab"}]},
            "invalid label selector: a match expression must be a string key with string values",
        ),
        (
            {"matchExpressions": [{"key": 7, "operator": "Exists"}]},
            "invalid label selector: a match expression must be a string key with string values",
        ),
    ],
)
def test_spec_of_the_wrong_shape(spec: Any, message: str) -> None:
    with pytest.raises(SelectorError) as caught:
        label_selector_from_spec(spec)
    assert str(caught.value) == message
    assert format_label_selector(spec) == "<error>"


@pytest.mark.parametrize(
    ("spec", "text"),
    [
        (None, "<none>"),
        ({}, "<none>"),
        ({"matchLabels": {"app": "web"}}, "app=web"),
        (
            {
                "matchLabels": {"app": "web"},
                "matchExpressions": [{"key": "x", "operator": "In", "values": ["b", "a"]}],
            },
            "app=web,x in (a,b)",
        ),
        ({"matchExpressions": [{"key": "x", "operator": "Bogus"}]}, "<error>"),
    ],
)
def test_format_label_selector(spec: dict | None, text: str) -> None:
    assert format_label_selector(spec) == text


def test_format_labels() -> None:
    assert format_labels({"b": "2", "a": "1"}) == "a=1,b=2"
    assert format_labels({}) == "<none>"
    assert format_labels(None) == "<none>"


def test_go_quote() -> None:
    assert go_quote('a"b\\c') == '"a\\"b\\\\c"'
    assert go_quote("\n\t\x01é") == '"\\n\\t\\x01é"'


# --- fields.ParseSelector ----------------------------------------------------------------------


@pytest.mark.parametrize("text", ["x=a,y=b,z=c", "", "x!=a,y=b", r"x=a||y\=b", r"x=a\=\=b"])
def test_good_field_selectors_render_back(text: str) -> None:
    assert str(parse_field_selector(text)) == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x=a||y=b", "invalid field selector: unescaped character in value: 61"),
        ("x==a==b", "invalid field selector: unescaped character in value: 61"),
        ("x=a,b", "invalid selector: 'x=a,b'; can't understand 'b'"),
        ("x in (a)", "invalid selector: 'x in (a)'; can't understand 'x in (a)'"),
        ("x in (a,b,c)", "invalid selector: 'x in (a,b,c)'; can't understand 'b'"),
        ("x", "invalid selector: 'x'; can't understand 'x'"),
        ("k=\\", "invalid field selector: invalid escape sequence: \\"),
        ("k=\\\\\\", "invalid field selector: invalid escape sequence: \\"),
        ("k=\\a", "invalid field selector: invalid escape sequence: \\a"),
    ],
)
def test_bad_field_selectors(text: str, message: str) -> None:
    with pytest.raises(SelectorError) as caught:
        parse_field_selector(text)
    assert str(caught.value) == message


def test_field_selector_terms_are_sorted_and_unescaped() -> None:
    selector = parse_field_selector(r"x=a,a=x,k=\,,b==c,c!=d,함=수")
    assert [(r.field, r.operator, r.value) for r in selector.requirements] == [
        ("a", "=", "x"),
        ("b", "=", "c"),
        ("c", "!=", "d"),
        ("k", "=", ","),
        ("x", "=", "a"),
        ("함", "=", "수"),
    ]
    assert str(parse_field_selector("x=a,a=x")) == str(parse_field_selector("a=x,x=a"))


def test_field_selector_drops_empty_terms() -> None:
    assert parse_field_selector(",a=a,").requirements == parse_field_selector("a=a").requirements
    assert parse_field_selector("=").empty
    assert parse_field_selector("").empty
    assert parse_field_selector("a=").requirements[0].value == ""


@pytest.mark.parametrize(
    ("value", "escaped"),
    [("", ""), ("a", "a"), ("=", r"\="), (",", r"\,"), ("\\", "\\\\"), ("\\=\\,\\", r"\\\=\\\,\\")],
)
def test_escape_round_trip(value: str, escaped: str) -> None:
    assert escape_field_value(value) == escaped
    assert parse_field_selector("k=" + escaped).requirements[0].value == value


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", True),
        ("foo=bar", True),
        ("baz=blah", True),
        ("foo=bar,baz=blah", True),
        (r"foo=bar,baz=blah,complex=\=value\\\,\\", True),
        ("foo=blah", False),
        ("baz=bar", False),
        ("foo=bar,foobar=bar,baz=blah", False),
        ("foobar=", True),  # an unset field reads ""
        ("foo!=bar", False),
        ("foo!=x", True),
    ],
)
def test_field_selector_matches(text: str, expected: bool) -> None:
    fields = {"foo": "bar", "baz": "blah", "complex": "=value\\,\\"}
    assert parse_field_selector(text).matches(lambda name: fields.get(name, "")) is expected


def test_field_exact_match() -> None:
    selector = parse_field_selector("metadata.name=web,spec.nodeName!=n1,status.phase=")
    assert selector.exact_match("metadata.name") == "web"
    assert selector.exact_match("spec.nodeName") is None
    assert selector.exact_match("status.phase") == ""
    assert selector.exact_match("other") is None
    assert FieldSelector().empty and FieldSelector().matches(lambda name: "x")
