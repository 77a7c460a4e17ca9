"""ServiceAccount tokens: TokenRequest (also through real ``kubectl create token``), the bearer
authenticator over real HTTPS, tampered and stale tokens, TokenReview, OIDC discovery, and
the in-memory checks and cache of :class:`ServiceAccountTokens` against a real store."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from control.apiserver.allocators import ClusterIPAllocator, NodePortAllocator
from control.apiserver.resource_store import DeleteOptions, ResourceStore
from control.apiserver.serviceaccount_tokens import (
    ServiceAccountKeyError,
    ServiceAccountTokens,
    TokenSigner,
    key_id,
    load_public_keys,
    load_signing_key,
)
from control.lab import Layout
from control.resources.builtin import builtin_registry
from control.store import open_store
from tests.control.apiserver.conftest import RunningServer, running_apiserver

ISSUER = "https://kubernetes.default.svc.cluster.local"
KUBECTL = Path("/usr/bin/kubectl")
SA_PATH = "/api/v1/namespaces/default/serviceaccounts"
REVIEWS = "/apis/authentication.k8s.io/v1/tokenreviews"


@dataclass
class Lab:
    server: RunningServer
    signing_key: ec.EllipticCurvePrivateKey

    async def token(self, account: str = "bot", *, namespace: str = "default", **spec: Any) -> str:
        code, answer = await self.server.request(
            "POST", f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}/token", body={"spec": spec}
        )
        assert code == 201, answer
        return answer["status"]["token"]

    async def get_as(self, token: str, path: str = "/api/v1/namespaces/default/pods") -> tuple[int, Any]:
        async with self.server.anonymous.get(
            self.server.url + path, headers={"Authorization": f"Bearer {token}"}
        ) as response:
            return response.status, orjson.loads(await response.read())

    async def review(self, token: str, audiences: list[str] | None = None) -> dict[str, Any]:
        spec: dict[str, Any] = {"token": token}
        if audiences is not None:
            spec["audiences"] = audiences
        code, answer = await self.server.request("POST", REVIEWS, body={"spec": spec})
        assert code == 201, answer
        return answer["status"]


def lab_keys(tmp_path: Path) -> tuple[Path, Path]:
    pki = Layout.resolve(tmp_path / "lab").pki
    return pki.service_account_key, pki.service_account_public_key


@pytest.fixture
async def lab(tmp_path: Path) -> AsyncIterator[Lab]:
    key, public = lab_keys(tmp_path)
    async with running_apiserver(
        tmp_path,
        service_account_signing_key_file=key,
        service_account_key_files=(public,),
        authorization_modes=("RBAC",),
    ) as server:
        code, answer = await server.request("POST", SA_PATH, body={"metadata": {"name": "bot"}})
        assert code == 201, answer
        yield Lab(server=server, signing_key=load_signing_key(key))


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def claims_of(token: str) -> dict[str, Any]:
    return orjson.loads(unb64(token.split(".")[1]))


def header_of(token: str) -> dict[str, Any]:
    return orjson.loads(unb64(token.split(".")[0]))


def forbidden_for(answer: dict[str, Any], user: str) -> bool:
    return answer.get("code") == 403 and f'User "{user}"' in answer["message"]


async def kubectl(server: RunningServer, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        str(KUBECTL),
        "--kubeconfig",
        str(server.data_dir / "kubeconfig"),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=30)
    return process.returncode or 0, out.decode(), err.decode()


# ------------------------------------------------------------------------------ issuing


async def test_kubectl_create_token_issues_a_token_that_authenticates(lab: Lab) -> None:
    code, out, err = await kubectl(lab.server, "create", "token", "bot")
    assert code == 0, err
    token = out.strip()
    claims = claims_of(token)
    assert claims["iss"] == ISSUER
    assert claims["sub"] == "system:serviceaccount:default:bot"
    assert claims["aud"] == [ISSUER]
    assert claims["exp"] - claims["iat"] == 3600 and claims["nbf"] == claims["iat"]
    assert claims["jti"]
    code, account = await lab.server.request("GET", f"{SA_PATH}/bot")
    assert claims["kubernetes.io"] == {
        "namespace": "default",
        "serviceaccount": {"name": "bot", "uid": account["metadata"]["uid"]},
    }
    assert header_of(token) == {"alg": "ES256", "kid": key_id(lab.signing_key.public_key())}
    status, answer = await lab.get_as(token)
    assert status == 403 and forbidden_for(answer, "system:serviceaccount:default:bot")
    # kubectl itself, with nothing but the token (and the CA to trust the server).
    code, out, err = await kubectl(
        lab.server,
        *("--kubeconfig", "/dev/null", "--server", lab.server.url),
        *("--certificate-authority", str(lab.server.ca_file), "--token", token, "get", "pods"),
    )
    assert code == 1
    assert 'User "system:serviceaccount:default:bot" cannot list resource "pods"' in err
    code, out, err = await kubectl(
        lab.server,
        *("--kubeconfig", "/dev/null", "--server", lab.server.url),
        *("--certificate-authority", str(lab.server.ca_file), "--token", token + "x", "get", "pods"),
    )
    assert code == 1 and "Unauthorized" in err


async def test_kubectl_create_token_with_audience_duration_and_bound_pod(lab: Lab) -> None:
    await lab.server.request("POST", "/api/v1/nodes", body={"metadata": {"name": "node-1"}})
    pod = {
        "metadata": {"name": "web"},
        "spec": {
            "serviceAccountName": "bot",
            "nodeName": "node-1",
            "containers": [{"name": "c", "image": "x"}],
        },
    }
    code, created = await lab.server.request("POST", "/api/v1/namespaces/default/pods", body=pod)
    assert code == 201, created
    code, out, err = await kubectl(
        lab.server,
        *("create", "token", "bot", "--audience", "vault", "--duration", "20m"),
        *("--bound-object-kind", "Pod", "--bound-object-name", "web"),
    )
    assert code == 0, err
    token = out.strip()
    claims = claims_of(token)
    assert claims["aud"] == ["vault"] and claims["exp"] - claims["iat"] == 1200
    _, node = await lab.server.request("GET", "/api/v1/nodes/node-1")
    assert claims["kubernetes.io"]["pod"] == {"name": "web", "uid": created["metadata"]["uid"]}
    assert claims["kubernetes.io"]["node"] == {"name": "node-1", "uid": node["metadata"]["uid"]}
    # Meant for vault, not for the API server.
    assert (await lab.get_as(token))[0] == 401
    status = await lab.review(token, audiences=["vault"])
    assert status["authenticated"] is True and status["audiences"] == ["vault"]
    assert status["user"]["extra"] == {
        "authentication.kubernetes.io/pod-name": ["web"],
        "authentication.kubernetes.io/pod-uid": [created["metadata"]["uid"]],
        "authentication.kubernetes.io/credential-id": [f"JTI={claims['jti']}"],
        "authentication.kubernetes.io/node-name": ["node-1"],
        "authentication.kubernetes.io/node-uid": [node["metadata"]["uid"]],
    }
    assert status["user"]["groups"] == [
        "system:serviceaccounts",
        "system:serviceaccounts:default",
        "system:authenticated",
    ]


async def test_token_request_answer_has_the_request_and_status(lab: Lab) -> None:
    code, answer = await lab.server.request(
        "POST", f"{SA_PATH}/bot/token", body={"spec": {"audiences": ["a", "b"], "expirationSeconds": 700}}
    )
    assert code == 201
    assert answer["kind"] == "TokenRequest" and answer["apiVersion"] == "authentication.k8s.io/v1"
    assert answer["metadata"]["name"] == "bot" and answer["metadata"]["namespace"] == "default"
    assert answer["spec"] == {"audiences": ["a", "b"], "expirationSeconds": 700}
    claims = claims_of(answer["status"]["token"])
    expected = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(claims["exp"]))
    assert answer["status"]["expirationTimestamp"] == expected


@pytest.mark.parametrize(
    ("path", "body", "code", "message"),
    [
        ("nope", {"spec": {}}, 404, 'serviceaccounts "nope" not found'),
        (
            "bot",
            {"spec": {"expirationSeconds": 60}},
            422,
            'TokenRequest.authentication.k8s.io "" is invalid: spec.expirationSeconds: Invalid value: 60: '
            "may not specify a duration less than 10 minutes",
        ),
        (
            "bot",
            {"spec": {"expirationSeconds": (1 << 32) + 1}},
            422,
            "may not specify a duration larger than 2^32 seconds",
        ),
        (
            "bot",
            {"metadata": {"name": "other"}, "spec": {}},
            422,
            'TokenRequest.authentication.k8s.io "bot" is invalid: metadata.name: Invalid value: "other": '
            "must match the service account name if specified",
        ),
        (
            "bot",
            {"spec": {"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "ghost"}}},
            404,
            'pods "ghost" not found',
        ),
        (
            "bot",
            {"spec": {"boundObjectRef": {"kind": "ConfigMap", "apiVersion": "v1", "name": "x"}}},
            400,
            "cannot bind token to object of type /v1, Kind=ConfigMap",
        ),
        ("bot", {"spec": {"expirationSeconds": "1h"}}, 400, "cannot be handled as a TokenRequest"),
        ("bot", {"spec": {"audiences": "api"}}, 400, "cannot be handled as a TokenRequest"),
    ],
)
async def test_bad_token_requests_get_upstreams_errors(
    lab: Lab, path: str, body: dict[str, Any], code: int, message: str
) -> None:
    status, answer = await lab.server.request("POST", f"{SA_PATH}/{path}/token", body=body)
    assert status == code, answer
    assert message in answer["message"]


async def test_bound_object_must_match_account_and_uid(lab: Lab) -> None:
    await lab.server.request("POST", SA_PATH, body={"metadata": {"name": "other"}})
    pod = {
        "metadata": {"name": "p"},
        "spec": {"serviceAccountName": "other", "containers": [{"name": "c", "image": "x"}]},
    }
    _, created = await lab.server.request("POST", "/api/v1/namespaces/default/pods", body=pod)
    ref = {"kind": "Pod", "apiVersion": "v1", "name": "p"}
    code, answer = await lab.server.request(
        "POST", f"{SA_PATH}/bot/token", body={"spec": {"boundObjectRef": ref}}
    )
    assert code == 400
    assert answer["message"] == (
        'cannot bind token for serviceaccount "bot" to pod running with different serviceaccount name.'
    )
    stale = {**ref, "uid": "0000"}
    code, answer = await lab.server.request(
        "POST", f"{SA_PATH}/other/token", body={"spec": {"boundObjectRef": stale}}
    )
    assert code == 409 and answer["reason"] == "Conflict"
    assert answer["message"] == (
        'Operation cannot be fulfilled on Pod "p": the UID in the bound object reference (0000) does not '
        "match the UID in record. The object might have been deleted and then recreated"
    )
    matching = {**ref, "uid": created["metadata"]["uid"]}
    code, _ = await lab.server.request(
        "POST", f"{SA_PATH}/other/token", body={"spec": {"boundObjectRef": matching}}
    )
    assert code == 201


# ------------------------------------------------------------------------------ refusing


def sign_hs256(claims: dict[str, Any], secret: bytes) -> str:
    signing_input = f"{b64(orjson.dumps({'alg': 'HS256', 'typ': 'JWT'}))}.{b64(orjson.dumps(claims))}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


async def test_tampered_tokens_are_refused(lab: Lab, tmp_path: Path) -> None:
    token = await lab.token()
    header, payload, signature = token.split(".")
    claims = claims_of(token)
    assert (await lab.get_as(token))[0] == 403  # the genuine one authenticates
    public_pem = lab_keys(tmp_path)[1].read_bytes()
    other_key = ec.generate_private_key(ec.SECP256R1())
    alg_none, alg_rs256 = b64(orjson.dumps({"alg": "none"})), b64(orjson.dumps({"alg": "RS256"}))
    forged = {
        "alg none": f"{alg_none}.{payload}.",
        "HS256 keyed with the public key": sign_hs256(claims, public_pem),
        "RS256 header, same signature": f"{alg_rs256}.{payload}.{signature}",
        "another key": TokenSigner(other_key).sign(claims),
        "changed claims": f"{header}.{b64(orjson.dumps({**claims, 'sub': 'system:admin'}))}.{signature}",
        "extended expiry": f"{header}.{b64(orjson.dumps({**claims, 'exp': claims['exp'] + 10}))}.{signature}",
        "another issuer": TokenSigner(lab.signing_key).sign({**claims, "iss": "https://elsewhere"}),
        "wrong audience": TokenSigner(lab.signing_key).sign({**claims, "aud": ["vault"]}),
        "truncated": f"{header}.{payload}",
        "padded signature": f"{token}==",
        "junk in the signature": f"{token[:-4]}!{token[-4:]}",
        "garbage": "not-a-jwt",
    }
    for what, bad in forged.items():
        status, answer = await lab.get_as(bad)
        assert status == 401, what
        assert answer["reason"] == "Unauthorized", what


async def test_token_times_are_checked_with_a_minute_of_leeway(lab: Lab) -> None:
    claims = claims_of(await lab.token())
    signer = TokenSigner(lab.signing_key)
    now = int(time.time())
    expired = signer.sign({**claims, "iat": now - 4000, "nbf": now - 4000, "exp": now - 120})
    just_expired = signer.sign({**claims, "iat": now - 4000, "nbf": now - 4000, "exp": now - 20})
    not_yet = signer.sign({**claims, "nbf": now + 600, "exp": now + 4000})
    assert (await lab.get_as(expired))[0] == 401
    assert (await lab.get_as(not_yet))[0] == 401
    assert (await lab.get_as(just_expired))[0] == 403  # within go-jose's leeway
    assert (await lab.review(expired))["error"] == "service account token has expired"
    assert (await lab.review(not_yet))["error"] == "service account token is not valid yet"


async def test_a_deleted_or_recreated_service_account_token_is_refused_at_once(lab: Lab) -> None:
    token = await lab.token()
    assert (await lab.get_as(token))[0] == 403
    code, _ = await lab.server.request("DELETE", f"{SA_PATH}/bot")
    assert code == 200
    assert (await lab.get_as(token))[0] == 401
    assert (await lab.review(token))["error"] == 'serviceaccounts "bot" not found'
    code, account = await lab.server.request("POST", SA_PATH, body={"metadata": {"name": "bot"}})
    assert (await lab.get_as(token))[0] == 401
    uid = claims_of(token)["kubernetes.io"]["serviceaccount"]["uid"]
    assert (await lab.review(token))["error"] == (
        f"service account UID ({account['metadata']['uid']}) does not match claim ({uid})"
    )


async def test_a_token_bound_to_a_deleted_pod_or_secret_is_refused(lab: Lab) -> None:
    pod = {
        "metadata": {"name": "p"},
        "spec": {"serviceAccountName": "bot", "containers": [{"name": "c", "image": "x"}]},
    }
    await lab.server.request("POST", "/api/v1/namespaces/default/pods", body=pod)
    await lab.server.request("POST", "/api/v1/namespaces/default/secrets", body={"metadata": {"name": "s"}})
    by_pod = await lab.token(boundObjectRef={"kind": "Pod", "apiVersion": "v1", "name": "p"})
    by_secret = await lab.token(boundObjectRef={"kind": "Secret", "apiVersion": "v1", "name": "s"})
    assert (await lab.get_as(by_pod))[0] == 403
    assert (await lab.get_as(by_secret))[0] == 403
    code, _ = await lab.server.request(
        "DELETE", "/api/v1/namespaces/default/pods/p", body={"gracePeriodSeconds": 0}
    )
    assert code == 200
    await lab.server.request("DELETE", "/api/v1/namespaces/default/secrets/s")
    assert (await lab.get_as(by_pod))[0] == 401
    assert (await lab.get_as(by_secret))[0] == 401
    assert (await lab.review(by_pod))["error"] == "service account token has been invalidated"


async def test_a_node_bound_token_lives_with_its_node(lab: Lab) -> None:
    _, node = await lab.server.request("POST", "/api/v1/nodes", body={"metadata": {"name": "node-9"}})
    token = await lab.token(boundObjectRef={"kind": "Node", "apiVersion": "v1", "name": "node-9"})
    status = await lab.review(token)
    assert status["user"]["extra"]["authentication.kubernetes.io/node-uid"] == [node["metadata"]["uid"]]
    await lab.server.request("DELETE", "/api/v1/nodes/node-9")
    assert (await lab.get_as(token))[0] == 401


# ------------------------------------------------------------------------------ TokenReview


async def test_token_review_reports_like_upstream(lab: Lab) -> None:
    token = await lab.token(audiences=["api", "vault"])
    status = await lab.review(token, audiences=["vault", "other"])
    assert status["authenticated"] is True and status["audiences"] == ["vault"]
    assert status["user"]["username"] == "system:serviceaccount:default:bot"
    refused = await lab.review(token)
    assert "authenticated" not in refused and refused["user"] == {}
    assert refused["error"] == (
        f'token audiences ["api" "vault"] is invalid for the target audiences ["{ISSUER}"]'
    )
    other_key = ec.generate_private_key(ec.SECP256R1())
    forged = await lab.review(TokenSigner(other_key).sign(claims_of(token)), audiences=["api"])
    assert forged == {"user": {}, "error": "go-jose/go-jose: error in cryptographic primitive"}
    foreign = await lab.review(TokenSigner(other_key).sign({**claims_of(token), "iss": "https://x"}))
    assert foreign == {"user": {}}  # not ours: no error, as upstream
    code, answer = await lab.server.request("POST", REVIEWS, body={"spec": {}})
    assert code == 400 and answer["message"] == "token is required for TokenReview in authentication"


# ------------------------------------------------------------------------------ discovery


async def test_openid_discovery_publishes_the_verifying_key(lab: Lab) -> None:
    code, config = await lab.server.request("GET", "/.well-known/openid-configuration")
    assert code == 200
    port = lab.server.url.rsplit(":", 1)[1]
    assert config == {
        "issuer": ISSUER,
        "jwks_uri": f"https://127.0.0.1:{port}/openid/v1/jwks",
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
    }
    code, jwks = await lab.server.request("GET", "/openid/v1/jwks")
    assert code == 200
    (jwk,) = jwks["keys"]
    public = lab.signing_key.public_key()
    assert jwk["kid"] == key_id(public) and jwk["alg"] == "ES256" and jwk["use"] == "sig"
    numbers = ec.EllipticCurvePublicNumbers(
        int.from_bytes(unb64(jwk["x"]), "big"), int.from_bytes(unb64(jwk["y"]), "big"), ec.SECP256R1()
    )
    assert numbers == public.public_numbers()


# ------------------------------------------------------------------------------ keys


def test_keys_must_be_p256(tmp_path: Path) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "rsa.pem"
    path.write_bytes(
        rsa_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    with pytest.raises(ServiceAccountKeyError, match="EC P-256"):
        load_signing_key(path)
    with pytest.raises(ServiceAccountKeyError, match="EC P-256"):
        load_public_keys(path)
    empty = tmp_path / "empty.pem"
    empty.write_text("nothing here\n")
    with pytest.raises(ServiceAccountKeyError, match="no public or private key"):
        load_public_keys(empty)
    with pytest.raises(ServiceAccountKeyError, match="cannot read"):
        load_public_keys(tmp_path / "missing.pem")


# ------------------------------------------------------------------------------ in memory


@pytest.fixture
async def objects(tmp_path: Path) -> AsyncIterator[ResourceStore]:
    store = open_store("sqlite://", data_dir=tmp_path)
    await store.start()
    try:
        objects = ResourceStore(
            store=store,
            registry=builtin_registry(),
            cluster_ips=ClusterIPAllocator("127.96.0.0/16"),
            node_ports=NodePortAllocator(30000, 32767),
        )
        namespaces = objects.registry.lookup(group="", version="v1", plural="namespaces")
        await objects.create(namespaces, {"metadata": {"name": "default"}}, namespace="")
        yield objects
    finally:
        await store.close()


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


async def wait_until(check: Any, what: str) -> None:
    deadline = time.monotonic() + 5
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


async def test_started_checks_read_memory_and_see_deletions(objects: ResourceStore) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    clock = Clock()
    tokens = ServiceAccountTokens(
        objects=objects, signing_key=key, issuer=ISSUER, jwks_uri="https://x/openid/v1/jwks", clock=clock
    )
    accounts = objects.registry.lookup(group="", version="v1", plural="serviceaccounts")
    account = await objects.create(accounts, {"metadata": {"name": "bot"}}, namespace="default")
    now = int(clock.now)
    token = TokenSigner(key).sign(
        {
            "iss": ISSUER,
            "aud": [ISSUER],
            "iat": now,
            "nbf": now,
            "exp": now + 600,
            "sub": "system:serviceaccount:default:bot",
            "kubernetes.io": {
                "namespace": "default",
                "serviceaccount": {"name": "bot", "uid": account["metadata"]["uid"]},
            },
        }
    )
    tokens.start()
    try:
        await wait_until(lambda: tokens.synced, "the checks to list")
        reads = 0
        real_get = objects.store.get

        async def counting_get(key: str) -> Any:
            nonlocal reads
            reads += 1
            return await real_get(key)

        objects.store.get = counting_get  # type: ignore[method-assign]
        user = await tokens.authenticate(token)
        assert user is not None and user.name == "system:serviceaccount:default:bot"
        assert user.uid == account["metadata"]["uid"]
        assert await tokens.authenticate(token) == user
        assert reads == 0 and tokens.cached_tokens == 1
        clock.now += 600 + 61  # past exp and the leeway
        assert await tokens.authenticate(token) is None
        assert tokens.cached_tokens == 0
        clock.now -= 661
        await objects.delete(accounts, namespace="default", name="bot", options=DeleteOptions())
        deadline = time.monotonic() + 5
        while await tokens.authenticate(token) is not None:  # until the follower sees the deletion
            assert time.monotonic() < deadline, "the deleted account's token still authenticates"
            await asyncio.sleep(0.01)
    finally:
        await tokens.stop()


async def test_the_verified_token_cache_is_bounded(objects: ResourceStore) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    tokens = ServiceAccountTokens(
        objects=objects, signing_key=key, issuer=ISSUER, jwks_uri="https://x/jwks", cache_entries=2
    )
    accounts = objects.registry.lookup(group="", version="v1", plural="serviceaccounts")
    account = await objects.create(accounts, {"metadata": {"name": "bot"}}, namespace="default")
    now = int(time.time())
    base = {
        "iss": ISSUER,
        "aud": [ISSUER],
        "exp": now + 600,
        "kubernetes.io": {
            "namespace": "default",
            "serviceaccount": {"name": "bot", "uid": account["metadata"]["uid"]},
        },
    }
    for index in range(3):
        assert await tokens.authenticate(TokenSigner(key).sign({**base, "jti": str(index)})) is not None
    assert tokens.cached_tokens == 2
    with pytest.raises(ValueError, match="at least 1"):
        ServiceAccountTokens(objects=objects, signing_key=key, issuer=ISSUER, jwks_uri="x", cache_entries=0)


async def test_lifetimes_are_clamped_to_the_configured_maximum(tmp_path: Path) -> None:
    key, public = lab_keys(tmp_path)
    async with running_apiserver(
        tmp_path,
        service_account_signing_key_file=key,
        service_account_key_files=(public,),
        service_account_max_token_expiration_seconds=900,
        api_audiences=("api", "other"),
    ) as server:
        await server.request("POST", SA_PATH, body={"metadata": {"name": "bot"}})
        code, answer = await server.request(
            "POST", f"{SA_PATH}/bot/token", body={"spec": {"expirationSeconds": 7200}}
        )
        assert code == 201, answer
        claims = claims_of(answer["status"]["token"])
        assert claims["exp"] - claims["iat"] == 900
        assert claims["aud"] == ["api", "other"]  # the API audiences when none are asked for


async def test_no_signing_key_no_tokens(tmp_path: Path) -> None:
    async with running_apiserver(tmp_path, service_account_signing_key_file=None) as server:
        await server.request("POST", SA_PATH, body={"metadata": {"name": "bot"}})
        code, answer = await server.request("POST", f"{SA_PATH}/bot/token", body={"spec": {}})
        assert code == 503 and "not configured" in answer["message"]
        async with server.anonymous.get(
            server.url + "/api/v1/namespaces", headers={"Authorization": "Bearer abc.def.ghi"}
        ) as response:
            assert response.status == 401


async def test_a_pod_being_deleted_keeps_its_tokens_for_the_leeway_only(objects: ResourceStore) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    clock = Clock()
    tokens = ServiceAccountTokens(objects=objects, signing_key=key, issuer=ISSUER, jwks_uri="x", clock=clock)
    accounts = objects.registry.lookup(group="", version="v1", plural="serviceaccounts")
    pods = objects.registry.lookup(group="", version="v1", plural="pods")
    account = await objects.create(accounts, {"metadata": {"name": "bot"}}, namespace="default")
    pod = await objects.create(
        pods,
        {
            "metadata": {"name": "p"},
            "spec": {
                "serviceAccountName": "bot",
                "nodeName": "node-1",
                "containers": [{"name": "c", "image": "x"}],
            },
        },
        namespace="default",
    )
    now = int(clock.now)
    token = TokenSigner(key).sign(
        {
            "iss": ISSUER,
            "aud": [ISSUER],
            "exp": now + 3600,
            "kubernetes.io": {
                "namespace": "default",
                "serviceaccount": {"name": "bot", "uid": account["metadata"]["uid"]},
                "pod": {"name": "p", "uid": pod["metadata"]["uid"]},
            },
        }
    )
    tokens.start()
    try:
        await wait_until(lambda: tokens.synced, "the checks to list")
        outcome = await objects.delete(
            pods, namespace="default", name="p", options=DeleteOptions(grace_period_seconds=30)
        )
        assert not outcome.deleted  # graceful: marked, still there
        deadline = time.monotonic() + 5
        clock.now = now + 30 + 65  # the deletion time (now + grace) is more than the leeway ago
        while await tokens.authenticate(token) is not None:
            assert time.monotonic() < deadline, "the follower never saw the deletion mark"
            await asyncio.sleep(0.01)
        clock.now = now + 30 + 55  # within the leeway of the deletion time: still good
        assert await tokens.authenticate(token) is not None
    finally:
        await tokens.stop()
