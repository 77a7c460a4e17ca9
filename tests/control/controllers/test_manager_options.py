"""ControllerOptions.from_environment: the node monitor timings a lab can shorten, and the switch to per-controller ServiceAccount credentials."""

from __future__ import annotations

import pytest

from control.controllers.manager import ControllerOptions, OptionsError


def test_without_variables_the_upstream_defaults_apply() -> None:
    assert ControllerOptions.from_environment({}) == ControllerOptions()
    assert ControllerOptions.from_environment({}).node_monitor_grace_period == 40.0


def test_variables_override_the_node_monitor_timings() -> None:
    options = ControllerOptions.from_environment(
        {"KUBELAB_NODE_MONITOR_PERIOD": "0.5", "KUBELAB_NODE_MONITOR_GRACE_PERIOD": " 12 "}
    )
    assert options.node_monitor_period == 0.5
    assert options.node_monitor_grace_period == 12.0
    assert options.default_unreachable_toleration_seconds == 300


def test_an_empty_variable_is_ignored() -> None:
    assert (
        ControllerOptions.from_environment({"KUBELAB_NODE_MONITOR_GRACE_PERIOD": ""}) == ControllerOptions()
    )


@pytest.mark.parametrize("text", ["soon", "0", "-3", "nan"])
def test_bad_values_are_refused_naming_the_variable(text: str) -> None:
    with pytest.raises(OptionsError, match="KUBELAB_NODE_MONITOR_GRACE_PERIOD"):
        ControllerOptions.from_environment({"KUBELAB_NODE_MONITOR_GRACE_PERIOD": text})


def test_service_account_credentials_are_off_unless_asked_for() -> None:
    assert ControllerOptions().use_service_account_credentials is False
    assert ControllerOptions.from_environment({}).use_service_account_credentials is False


@pytest.mark.parametrize(
    ("text", "expected"), [("true", True), (" TRUE ", True), ("1", True), ("false", False), ("0", False)]
)
def test_the_environment_turns_service_account_credentials_on_or_off(text: str, expected: bool) -> None:
    options = ControllerOptions.from_environment({"KUBELAB_USE_SERVICE_ACCOUNT_CREDENTIALS": text})
    assert options.use_service_account_credentials is expected


@pytest.mark.parametrize("text", ["yes", "on", "2"])
def test_a_bad_service_account_credentials_value_is_refused_naming_the_variable(text: str) -> None:
    with pytest.raises(OptionsError, match=f"KUBELAB_USE_SERVICE_ACCOUNT_CREDENTIALS='{text}'"):
        ControllerOptions.from_environment({"KUBELAB_USE_SERVICE_ACCOUNT_CREDENTIALS": text})
