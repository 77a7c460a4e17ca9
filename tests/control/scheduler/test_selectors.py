"""Label selectors and node selectors: every operator, the empty/absent rules, bad input."""

from __future__ import annotations

import pytest

from control.scheduler.selectors import (
    EVERYTHING,
    NOTHING,
    InvalidSelectorError,
    LabelSelector,
    NodeSelector,
    NodeSelectorTerm,
)

LABELS = {"app": "web", "tier": "front", "size": "7"}


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ({}, True),
        ({"matchLabels": {"app": "web"}}, True),
        ({"matchLabels": {"app": "db"}}, False),
        ({"matchLabels": {"app": "web", "tier": "back"}}, False),
        ({"matchExpressions": [{"key": "app", "operator": "In", "values": ["db", "web"]}]}, True),
        ({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["web"]}]}, False),
        ({"matchExpressions": [{"key": "absent", "operator": "NotIn", "values": ["x"]}]}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, True),
        ({"matchExpressions": [{"key": "absent", "operator": "Exists"}]}, False),
        ({"matchExpressions": [{"key": "absent", "operator": "DoesNotExist"}]}, True),
        ({"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]}, False),
        (
            {
                "matchLabels": {"app": "web"},
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["x"]}],
            },
            False,
        ),
    ],
)
def test_label_selector(selector, matches):
    assert LabelSelector.parse(selector, path="s").matches(LABELS) is matches


def test_absent_selector_matches_nothing_and_empty_everything():
    assert LabelSelector.parse(None, path="s") is NOTHING
    assert not NOTHING.matches({}) and NOTHING.with_requirements([("a", "In", frozenset("b"))]) is NOTHING
    assert EVERYTHING.matches({}) and EVERYTHING.is_empty
    assert LabelSelector.from_labels({}).is_empty
    assert LabelSelector.from_labels({"app": "web"}).matches(LABELS)
    assert not LabelSelector.from_labels({"app": "web", "x": "y"}).matches(LABELS)


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        (
            {"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]},
            r"s.matchExpressions\[0\].operator",
        ),
        ({"matchExpressions": [{"key": "a", "operator": "In"}]}, "Required value"),
        ({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}, "Forbidden"),
        ({"matchExpressions": [{"operator": "Exists"}]}, r"s.matchExpressions\[0\].key"),
        ({"matchExpressions": "app"}, "must be a list"),
        ({"matchLabels": {"app": 1}}, r"s.matchLabels\[app\]"),
        ({"matchLabels": ["app"]}, "must be a map"),
        ("app=web", "must be an object"),
    ],
)
def test_bad_label_selectors(selector, message):
    with pytest.raises(InvalidSelectorError, match=message):
        LabelSelector.parse(selector, path="s")


def term(*expressions: dict, fields: tuple[dict, ...] = ()) -> dict:
    return {"matchExpressions": list(expressions), "matchFields": list(fields)}


@pytest.mark.parametrize(
    ("raw", "matches"),
    [
        (term({"key": "size", "operator": "Gt", "values": ["5"]}), True),
        (term({"key": "size", "operator": "Gt", "values": ["7"]}), False),
        (term({"key": "size", "operator": "Lt", "values": ["8"]}), True),
        (term({"key": "app", "operator": "Lt", "values": ["8"]}), False),  # not an integer
        (term({"key": "absent", "operator": "Gt", "values": ["0"]}), False),
        (term({"key": "app", "operator": "In", "values": ["web"]}), True),
        (term(fields=({"key": "metadata.name", "operator": "In", "values": ["node-1"]},)), True),
        (term(fields=({"key": "metadata.name", "operator": "NotIn", "values": ["node-1"]},)), False),
        (
            term(
                {"key": "app", "operator": "In", "values": ["web"]},
                fields=({"key": "metadata.name", "operator": "In", "values": ["node-2"]},),
            ),
            False,
        ),
        (term(), False),  # an empty term matches nothing
    ],
)
def test_node_selector_term(raw, matches):
    assert NodeSelectorTerm(raw, path="t").matches("node-1", LABELS) is matches


def test_node_selector_ors_its_terms():
    selector = NodeSelector(
        {
            "nodeSelectorTerms": [
                term({"key": "app", "operator": "In", "values": ["db"]}),
                term({"key": "tier", "operator": "Exists"}),
            ]
        },
        path="n",
    )
    assert selector.matches("node-1", LABELS)
    assert not selector.matches("node-1", {"app": "db2"})
    assert not NodeSelector({"nodeSelectorTerms": []}, path="n").matches("node-1", LABELS)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (term({"key": "size", "operator": "Gt", "values": ["x"]}), "must be an integer"),
        (term({"key": "size", "operator": "Gt", "values": ["1", "2"]}), "single value"),
        (
            term(fields=({"key": "metadata.labels", "operator": "In", "values": ["x"]},)),
            "not a valid field selector key",
        ),
        (term(fields=({"key": "metadata.name", "operator": "Exists"},)), "Unsupported value"),
        ({"matchExpressions": "app"}, "must be lists"),
    ],
)
def test_bad_node_selectors(raw, message):
    with pytest.raises(InvalidSelectorError, match=message):
        NodeSelectorTerm(raw, path="t")
    with pytest.raises(InvalidSelectorError, match=message):
        NodeSelector({"nodeSelectorTerms": [raw]}, path="n")


@pytest.mark.parametrize("raw", [{"nodeSelectorTerms": "x"}, "x"])
def test_bad_node_selector_shapes(raw):
    with pytest.raises(InvalidSelectorError, match=r"^n"):
        NodeSelector(raw, path="n")
