"""The AdmissionReview sent to webhooks and the checks on their answers, as upstream's
webhook/request package words them."""

from __future__ import annotations

from typing import Any

import pytest

from control.apiserver.admission import CREATE, DELETE, UPDATE, AdmissionRequest
from control.apiserver.admission_review import (
    InvalidResponseError,
    NoKnownReviewVersionError,
    admission_review,
    review_version,
    verify_response,
)
from control.apiserver.authn import UserInfo
from control.resources.builtin import builtin_registry

REGISTRY = builtin_registry()
USER = UserInfo(
    name="alice", groups=("devs", "system:authenticated"), uid="u-1", extra={"scopes": ("a", "b")}
)


def request(plural: str, *, operation: str = CREATE, group: str = "", **fields: Any) -> AdmissionRequest:
    rt = REGISTRY.lookup(group=group, version="v1", plural=plural)
    assert rt is not None
    values: dict[str, Any] = {
        "operation": operation,
        "rt": rt,
        "namespace": "default",
        "name": "web",
        "subresource": "",
        "user": USER,
        "obj": {"metadata": {"name": "web"}},
        "old": None,
    }
    return AdmissionRequest(**{**values, **fields})


def answer(uid: str, **response: Any) -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {"uid": uid, "allowed": True, **response},
    }


def test_the_first_version_this_server_speaks_is_used() -> None:
    assert review_version(("v2", "v1beta1", "v1")) == "v1beta1"
    with pytest.raises(NoKnownReviewVersionError, match=r"does not accept known AdmissionReview versions"):
        review_version(("v2",))


def test_a_v1_review_describes_the_request() -> None:
    uid, review = admission_review(
        request(
            "pods", operation=UPDATE, subresource="status", old={"metadata": {"name": "web"}}, dry_run=True
        ),
        version="v1",
    )
    assert (review["apiVersion"], review["kind"]) == ("admission.k8s.io/v1", "AdmissionReview")
    body = review["request"]
    assert body["uid"] == uid
    assert body["kind"] == {"group": "", "version": "v1", "kind": "Pod"}
    assert body["resource"] == {"group": "", "version": "v1", "resource": "pods"}
    assert body["subResource"] == body["requestSubResource"] == "status"
    assert body["userInfo"] == {
        "username": "alice",
        "uid": "u-1",
        "groups": ["devs", "system:authenticated"],
        "extra": {"scopes": ["a", "b"]},
    }
    assert body["object"] == {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"}}
    assert body["oldObject"]["kind"] == "Pod"
    assert body["dryRun"] is True
    assert body["options"] == {"kind": "UpdateOptions", "apiVersion": "meta.k8s.io/v1", "dryRun": ["All"]}
    assert admission_review(request("pods"), version="v1")[0] != uid  # a fresh uid per review


def test_a_namespace_written_by_name_is_its_own_namespace() -> None:
    _, created = admission_review(request("namespaces", namespace=""), version="v1")
    _, deleted = admission_review(
        request("namespaces", operation=DELETE, namespace="", obj=None), version="v1"
    )
    assert created["request"]["namespace"] == ""
    assert deleted["request"]["namespace"] == "web"
    assert deleted["request"]["object"] is None
    assert deleted["request"]["options"]["kind"] == "DeleteOptions"


def test_a_v1beta1_review_has_the_same_request() -> None:
    _, review = admission_review(request("configmaps"), version="v1beta1")
    assert review["apiVersion"] == "admission.k8s.io/v1beta1"
    assert review["request"]["operation"] == "CREATE"


def test_a_valid_answer_gives_the_verdict() -> None:
    result = {"code": 403, "message": "no"}
    verdict = verify_response(
        answer("u", allowed=False, status=result, warnings=["w"]), uid="u", version="v1", mutating=False
    )
    assert (verdict.allowed, verdict.result, verdict.warnings) == (False, result, ("w",))
    patched = verify_response(
        answer("u", patch="W10=", patchType="JSONPatch"), uid="u", version="v1", mutating=True
    )
    assert (patched.patch, patched.patch_type) == ("W10=", "JSONPatch")


def test_the_refusal_status_is_read_from_its_json_name_status() -> None:
    # AdmissionResponse.Result is `json:"status,omitempty"` (k8s.io/api admission/v1 types.go);
    # webhooks built on it (kopf, controller-runtime) send the Status there, never as "result".
    status = {"code": 422, "message": "too big"}
    verdict = verify_response(
        answer("u", allowed=False, status=status), uid="u", version="v1", mutating=False
    )
    assert verdict.result == status
    misnamed = verify_response(
        answer("u", allowed=False, result=status), uid="u", version="v1", mutating=False
    )
    assert misnamed.result is None


@pytest.mark.parametrize(
    ("body", "mutating", "message"),
    [
        ("not an object", False, "webhook response was absent"),
        (
            {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"},
            False,
            "webhook response was absent",
        ),
        (answer("other"), False, 'expected response.uid="u", got "other"'),
        (
            {**answer("u"), "apiVersion": "admission.k8s.io/v1beta1"},
            False,
            "expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, "
            "got admission.k8s.io/v1beta1, Kind=AdmissionReview",
        ),
        (answer("u", patch="W10="), True, "webhook returned response.patch but not response.patchType"),
        (
            answer("u", patchType="JSONPatch"),
            True,
            "webhook returned response.patchType but not response.patch",
        ),
        (answer("u", patch="W10=", patchType=""), True, 'webhook returned invalid response.patchType of ""'),
        (answer("u", patch="W10="), False, "validating webhook may not return response.patch"),
        (answer("u", patchType="JSONPatch"), False, "validating webhook may not return response.patchType"),
    ],
)
def test_a_bad_v1_answer_is_refused_in_upstreams_words(body: Any, mutating: bool, message: str) -> None:
    with pytest.raises(InvalidResponseError) as caught:
        verify_response(body, uid="u", version="v1", mutating=mutating)
    assert str(caught.value) == message


def test_a_v1beta1_answer_is_checked_loosely() -> None:
    body = {"apiVersion": "whatever", "response": {"uid": "other", "allowed": True, "patch": "W10="}}
    mutating = verify_response(body, uid="u", version="v1beta1", mutating=True)
    assert (mutating.allowed, mutating.patch, mutating.patch_type) == (True, "W10=", "JSONPatch")
    validating = verify_response(body, uid="u", version="v1beta1", mutating=False)
    assert (validating.patch, validating.patch_type) == ("", "")
