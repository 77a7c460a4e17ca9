"""Admission's Prometheus metrics, with kube-apiserver's names, labels and buckets.

Upstream's ``k8s.io/apiserver/pkg/admission/metrics`` and the ValidatingAdmissionPolicy plugin's
metrics, so dashboards and alerts written for kube-apiserver read kubelab's ``/metrics``:

- ``apiserver_admission_step_admission_duration_seconds{type,operation,rejected}``: the whole
  mutating (``admit``) or validating (``validate``) step of a write. Upstream also times every
  built-in plugin on its own (``apiserver_admission_controller_admission_duration_seconds``);
  kubelab does not, as that would cost each write a few dozen clock reads and observations.
- ``apiserver_admission_webhook_admission_duration_seconds{name,type,operation,rejected}``,
  ``apiserver_admission_webhook_request_total{name,type,operation,code,rejected}``,
  ``apiserver_admission_webhook_rejection_count{name,type,operation,error_type,rejection_code}``
  and ``apiserver_admission_webhook_fail_open_count{name,type}``: one observation per call.
- ``apiserver_admission_match_condition_evaluation_errors_total{name,kind,type,operation}`` and
  ``apiserver_admission_match_condition_exclusions_total{...}``: matchConditions of webhooks
  (``kind="webhook"``) and policies (``kind="validatingadmissionpolicy"``).
- ``apiserver_validating_admission_policy_check_total{policy,policy_binding,error_type,
  enforcement_action}`` and ``..._check_duration_seconds``: as upstream, observed for denials,
  warnings, audits and errors that were ignored (a plain pass is not counted).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

ADMIT = "admit"  # upstream's type label of mutating admission
VALIDATE = "validate"
_STEP_BUCKETS = (0.005, 0.025, 0.1, 0.5, 1.0, 2.5)
_WEBHOOK_BUCKETS = (0.005, 0.025, 0.1, 0.5, 1.0, 2.5, 10, 25)
_POLICY_BUCKETS = (0.0000005, 0.001, 0.01, 0.1, 1.0)


def rejected_label(rejected: bool) -> str:
    return "true" if rejected else "false"


class AdmissionMetrics:
    def __init__(self, *, registry: CollectorRegistry) -> None:
        self.step_duration = Histogram(
            "apiserver_admission_step_admission_duration_seconds",
            "Admission sub-step latency histogram in seconds, broken out for each operation and API resource "
            "and step type (validate or admit).",
            ("type", "operation", "rejected"),
            buckets=_STEP_BUCKETS,
            registry=registry,
        )
        self.webhook_duration = Histogram(
            "apiserver_admission_webhook_admission_duration_seconds",
            "Admission webhook latency histogram in seconds, identified by name and broken out for each "
            "operation and API resource and type (validate or admit).",
            ("name", "type", "operation", "rejected"),
            buckets=_WEBHOOK_BUCKETS,
            registry=registry,
        )
        self.webhook_requests = Counter(
            "apiserver_admission_webhook_request",
            "Admission webhook request total, identified by name and broken out for each admission type "
            "(validating or mutating) and operation. Additional labels specify whether the request was "
            "rejected or not and an HTTP status code. Codes greater than 600 are truncated to 600, to keep "
            "the metrics cardinality bounded.",
            ("name", "type", "operation", "code", "rejected"),
            registry=registry,
        )
        self.webhook_rejections = Counter(
            "apiserver_admission_webhook_rejection_count",
            "Admission webhook rejection count, identified by name and broken out for each admission type "
            "(validating or admit) and operation. Additional labels specify an error type "
            "(calling_webhook_error or apiserver_internal_error if an error occurred; no_error otherwise) and "
            "optionally a non-zero rejection code if the webhook rejects the request with an HTTP status code "
            "(honored by the apiserver when the code is greater or equal to 400). Codes greater than 600 are "
            "truncated to 600, to keep the metrics cardinality bounded.",
            ("name", "type", "operation", "error_type", "rejection_code"),
            registry=registry,
        )
        self.webhook_fail_open = Counter(
            "apiserver_admission_webhook_fail_open_count",
            "Admission webhook fail open count, identified by name and broken out for each admission type "
            "(validating or admit).",
            ("name", "type"),
            registry=registry,
        )
        self.match_condition_errors = Counter(
            "apiserver_admission_match_condition_evaluation_errors",
            "Admission match condition evaluation errors count, identified by name of resource containing "
            "the match condition and broken out for each kind containing matchConditions (webhook or policy), "
            "operation and admission type (validate or admit).",
            ("name", "kind", "type", "operation"),
            registry=registry,
        )
        self.match_condition_exclusions = Counter(
            "apiserver_admission_match_condition_exclusions",
            "Admission match condition evaluation exclusions count, identified by name of resource containing "
            "the match condition and broken out for each kind containing matchConditions (webhook or policy), "
            "operation and admission type (validate or admit).",
            ("name", "kind", "type", "operation"),
            registry=registry,
        )
        self.policy_checks = Counter(
            "apiserver_validating_admission_policy_check",
            "Validation admission policy check total, labeled by policy and further identified by binding "
            "and enforcement action taken.",
            ("policy", "policy_binding", "error_type", "enforcement_action"),
            registry=registry,
        )
        self.policy_check_duration = Histogram(
            "apiserver_validating_admission_policy_check_duration_seconds",
            "Validation admission latency for individual validation expressions in seconds, labeled by "
            "policy and further including binding and enforcement action taken.",
            ("policy", "policy_binding", "error_type", "enforcement_action"),
            buckets=_POLICY_BUCKETS,
            registry=registry,
        )

    def observe_webhook(
        self,
        *,
        name: str,
        type_: str,
        operation: str,
        seconds: float,
        code: int,
        rejected: bool,
        error_type: str,
    ) -> None:
        """One webhook call: its latency, its request count and, when it refused, its rejection."""
        rejected_text = rejected_label(rejected)
        self.webhook_duration.labels(name, type_, operation, rejected_text).observe(seconds)
        self.webhook_requests.labels(name, type_, operation, str(min(code, 600)), rejected_text).inc()
        if rejected:
            rejection_code = str(min(code, 600)) if error_type == "no_error" else "0"
            self.webhook_rejections.labels(name, type_, operation, error_type, rejection_code).inc()

    def observe_policy(
        self, *, policy: str, binding: str, error_type: str, action: str, seconds: float
    ) -> None:
        self.policy_checks.labels(policy, binding, error_type, action).inc()
        self.policy_check_duration.labels(policy, binding, error_type, action).observe(seconds)
