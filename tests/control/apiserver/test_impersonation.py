"""Impersonation: the ``Impersonate-*`` headers, checked piece by piece as upstream's filter does.

The unit tests drive ``impersonate`` with a recording authorizer, so every authorization
question asked (verb, resource, subresource, namespace, name) is asserted; the HTTP tests run
the real API server (RBAC mode) and check what a refused or allowed impersonation looks like
on the wire.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from control.apiserver import errors
from control.apiserver.authn import UserInfo
from control.apiserver.authorization import Attributes, AuthorizerChain, Decision, SubjectRules
from control.apiserver.impersonation import impersonate, split_service_account_username
from control.pki import PKIFiles, ensure_client_certificate, load_ca
from tests.control.apiserver.conftest import RunningServer, client_ssl_context, running_apiserver

ALICE = UserInfo(name="alice", groups=("dev", "system:authenticated"))
Question = tuple[str, str, str, str, str, str]  # group, resource, subresource, namespace, name, verb


class Recording:
    """Allows what ``allow`` lists (by resource, or resource/subresource) and records every question."""

    def __init__(self, *allow: str) -> None:
        self.allow = set(allow)
        self.asked: list[Question] = []

    def authorize(self, attributes: Attributes) -> tuple[Decision, str]:
        self.asked.append(
            (
                attributes.api_group,
                attributes.resource,
                attributes.subresource,
                attributes.namespace,
                attributes.name,
                attributes.verb,
            )
        )
        assert attributes.user is ALICE, "impersonation is asked about the authenticated caller"
        key = (
            f"{attributes.resource}/{attributes.subresource}"
            if attributes.subresource
            else attributes.resource
        )
        if attributes.resource in self.allow or key in self.allow:
            return Decision.ALLOW, ""
        return Decision.NO_OPINION, ""

    def rules_for(self, user: UserInfo, namespace: str) -> SubjectRules:
        return SubjectRules()


def headers(*pairs: tuple[str, str]) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict(pairs))


def run(recording: Recording, *pairs: tuple[str, str]) -> UserInfo:
    return impersonate(
        headers=headers(*pairs), user=ALICE, authorizer=AuthorizerChain(authorizers=[recording])
    )


# --- the headers, unit by unit --------------------------------------------------------------------


def test_no_impersonation_headers_return_the_same_user_and_ask_nothing() -> None:
    recording = Recording()
    assert run(recording, ("Accept", "application/json"), ("User-Agent", "kubectl")) is ALICE
    assert run(recording, ("Impersonate-User", "")) is ALICE  # an empty user is no request
    assert recording.asked == []


def test_a_user_gets_system_authenticated_and_nothing_of_the_caller() -> None:
    recording = Recording("users")
    assert run(recording, ("Impersonate-User", "bob")) == UserInfo(
        name="bob", groups=("system:authenticated",)
    )
    assert recording.asked == [("", "users", "", "", "bob", "impersonate")]


def test_header_names_are_case_insensitive() -> None:
    user = run(Recording("users", "groups"), ("impersonate-user", "bob"), ("IMPERSONATE-GROUP", "ops"))
    assert user == UserInfo(name="bob", groups=("ops", "system:authenticated"))


def test_groups_uid_and_extras_are_each_checked_in_upstreams_order() -> None:
    recording = Recording("users", "groups", "uids", "userextras")
    user = run(
        recording,
        ("Impersonate-User", "bob"),
        ("Impersonate-Group", "ops"),
        ("Impersonate-Group", "dev"),
        ("Impersonate-Uid", "1234"),
        ("Impersonate-Extra-Scopes", "view"),
        ("Impersonate-Extra-Scopes", "edit"),
        ("Impersonate-Extra-Example.com%2fteam", "blue"),
    )
    assert user == UserInfo(
        name="bob",
        groups=("ops", "dev", "system:authenticated"),
        uid="1234",
        extra={"scopes": ("view", "edit"), "example.com/team": ("blue",)},
    )
    assert recording.asked == [
        ("", "users", "", "", "bob", "impersonate"),
        ("", "groups", "", "", "ops", "impersonate"),
        ("", "groups", "", "", "dev", "impersonate"),
        ("authentication.k8s.io", "userextras", "scopes", "", "view", "impersonate"),
        ("authentication.k8s.io", "userextras", "scopes", "", "edit", "impersonate"),
        ("authentication.k8s.io", "userextras", "example.com/team", "", "blue", "impersonate"),
        ("authentication.k8s.io", "uids", "", "", "1234", "impersonate"),
    ]


def test_a_malformed_percent_escape_keeps_the_extra_key_as_sent() -> None:
    user = run(
        Recording("users", "userextras"), ("Impersonate-User", "bob"), ("Impersonate-Extra-a%zz%41", "v")
    )
    assert user.extra == {"a%zz%41": ("v",)}


def test_a_service_account_is_checked_in_its_namespace_and_gets_its_groups() -> None:
    recording = Recording("serviceaccounts")
    user = run(recording, ("Impersonate-User", "system:serviceaccount:team-a:builder"))
    assert user == UserInfo(
        name="system:serviceaccount:team-a:builder",
        groups=("system:serviceaccounts", "system:serviceaccounts:team-a", "system:authenticated"),
    )
    assert recording.asked == [("", "serviceaccounts", "", "team-a", "builder", "impersonate")]


def test_given_groups_replace_a_service_accounts_groups() -> None:
    user = run(
        Recording("serviceaccounts", "groups"),
        ("Impersonate-User", "system:serviceaccount:team-a:builder"),
        ("Impersonate-Group", "ops"),
    )
    assert user.groups == ("ops", "system:authenticated")


@pytest.mark.parametrize(
    "username",
    [
        "system:serviceaccount:team-a",
        "system:serviceaccount:a:b:c",
        "system:serviceaccount:Team:x",
        "system:sa:a:b",
    ],
)
def test_names_that_are_not_service_accounts_are_users(username: str) -> None:
    assert split_service_account_username(username) is None
    recording = Recording("users")
    assert run(recording, ("Impersonate-User", username)).groups == ("system:authenticated",)
    assert recording.asked == [("", "users", "", "", username, "impersonate")]


def test_system_authenticated_is_not_added_when_the_groups_say_otherwise() -> None:
    allow = Recording("users", "groups")
    assert run(
        allow, ("Impersonate-User", "bob"), ("Impersonate-Group", "system:unauthenticated")
    ).groups == ("system:unauthenticated",)
    assert run(allow, ("Impersonate-User", "bob"), ("Impersonate-Group", "system:authenticated")).groups == (
        "system:authenticated",
    )


def test_impersonating_anonymous_gives_system_unauthenticated() -> None:
    user = run(Recording("users"), ("Impersonate-User", "system:anonymous"))
    assert user == UserInfo(name="system:anonymous", groups=("system:unauthenticated",))
    assert not user.authenticated


@pytest.mark.parametrize(
    ("pairs", "listed"),
    [
        ((("Impersonate-Group", "system:masters"),), "{Group  system:masters    }"),
        ((("Impersonate-Uid", "42"),), "{UID  42  authentication.k8s.io/v1  }"),
        (
            (("Impersonate-Group", "a"), ("Impersonate-Extra-Scopes", "x")),
            "{Group  a    } {UserExtra  x  authentication.k8s.io/v1  scopes}",
        ),
    ],
)
def test_groups_uid_or_extras_without_a_user_are_a_bad_request(pairs: tuple, listed: str) -> None:
    recording = Recording("users", "groups", "uids", "userextras")
    with pytest.raises(errors.StatusError) as caught:
        run(recording, *pairs)
    assert caught.value.code == 400
    assert caught.value.message == f"requested [{listed}] without impersonating a user"
    assert recording.asked == []


def test_refusing_the_user_is_upstreams_403() -> None:
    with pytest.raises(errors.StatusError) as caught:
        run(Recording(), ("Impersonate-User", "bob"))
    assert caught.value.code == 403
    assert caught.value.message == (
        'users "bob" is forbidden: User "alice" cannot impersonate resource "users" in API group "" '
        "at the cluster scope"
    )


def test_the_first_refused_piece_decides() -> None:
    recording = Recording("users")
    with pytest.raises(errors.StatusError) as caught:
        run(
            recording,
            ("Impersonate-User", "bob"),
            ("Impersonate-Group", "system:masters"),
            ("Impersonate-Uid", "1"),
        )
    assert caught.value.message == (
        'groups "system:masters" is forbidden: User "alice" cannot impersonate resource "groups" '
        'in API group "" at the cluster scope'
    )
    assert [question[1] for question in recording.asked] == ["users", "groups"]


def test_refused_service_accounts_and_extras_name_their_namespace_and_subresource() -> None:
    with pytest.raises(errors.StatusError) as caught:
        run(Recording(), ("Impersonate-User", "system:serviceaccount:team-a:builder"))
    assert caught.value.message == (
        'serviceaccounts "builder" is forbidden: User "alice" cannot impersonate resource "serviceaccounts" '
        'in API group "" in the namespace "team-a"'
    )
    with pytest.raises(errors.StatusError) as caught:
        run(Recording("users"), ("Impersonate-User", "bob"), ("Impersonate-Extra-Scopes", "view"))
    assert caught.value.message == (
        'userextras.authentication.k8s.io "view" is forbidden: User "alice" cannot impersonate resource '
        '"userextras/scopes" in API group "authentication.k8s.io" at the cluster scope'
    )


# --- on the wire -------------------------------------------------------------------------------------


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_apiserver(tmp_path, authorization_modes=("RBAC",)) as running:
        yield running


async def user_session(server: RunningServer, tmp_path: Path, user: str) -> aiohttp.ClientSession:
    files = PKIFiles(server.data_dir / "pki")
    ca = load_ca(cert_file=files.ca_cert, key_file=files.ca_key)
    cert, key = tmp_path / f"{user}.crt", tmp_path / f"{user}.key"
    ensure_client_certificate(ca=ca, cert_file=cert, key_file=key, user=user)
    context = client_ssl_context(ca_file=server.ca_file, cert_file=cert, key_file=key)
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context))


WHOAMI = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
REVIEW = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}


async def test_an_admin_may_impersonate_and_the_request_runs_as_the_new_user(server: RunningServer) -> None:
    code, body = await server.request(
        "POST",
        WHOAMI,
        body=REVIEW,
        headers={
            "Impersonate-User": "bob",
            "Impersonate-Group": "system:masters",  # so bob may ask without any RBAC binding
            "Impersonate-Uid": "u-1",
            "Impersonate-Extra-Scopes": "view",
        },
    )
    assert code == 201, body
    assert body["status"]["userInfo"] == {
        "username": "bob",
        "uid": "u-1",
        "groups": ["system:masters", "system:authenticated"],
        "extra": {"scopes": ["view"]},
    }


async def test_a_user_without_impersonate_gets_403_before_the_request_is_served(
    server: RunningServer, tmp_path: Path
) -> None:
    async with (
        await user_session(server, tmp_path, "alice") as alice,
        alice.get(
            server.url + "/api/v1/namespaces/default/pods", headers={"Impersonate-User": "kubernetes-admin"}
        ) as response,
    ):
        status = await response.json()
    assert response.status == 403
    assert status["reason"] == "Forbidden"
    assert status["message"] == (
        'users "kubernetes-admin" is forbidden: User "alice" cannot impersonate resource "users" '
        'in API group "" at the cluster scope'
    )
    assert status["details"] == {"name": "kubernetes-admin", "kind": "users"}


async def test_groups_without_a_user_are_refused_on_the_wire(server: RunningServer) -> None:
    code, body = await server.request(
        "POST", WHOAMI, body=REVIEW, headers={"Impersonate-Group": "system:masters"}
    )
    assert code == 400
    assert body["reason"] == "BadRequest"
    assert body["message"] == "requested [{Group  system:masters    }] without impersonating a user"


async def test_anonymous_requests_cannot_impersonate(server: RunningServer) -> None:
    async with server.anonymous.get(
        server.url + "/api/v1/namespaces", headers={"Impersonate-User": "kubernetes-admin"}
    ) as response:
        assert response.status == 401
