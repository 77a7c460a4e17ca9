"""ServiceAccount tokens: issuing them (TokenRequest), checking them (the bearer-token
authenticator and TokenReview), and publishing the keys that check them (OIDC discovery).

A token is a JWT signed with the API server's EC P-256 key (ES256), with upstream's claims
(``pkg/serviceaccount/claims.go``): ``iss``, ``sub`` = ``system:serviceaccount:<ns>:<name>``,
``aud``, ``exp``/``iat``/``nbf``, ``jti`` and ``kubernetes.io`` naming the namespace, the
ServiceAccount and — for a bound token — the Pod, Secret or Node it lives and dies with.
The header's ``kid`` is upstream's: the unpadded base64url SHA-256 of the public key's DER.

Checking follows upstream's ``jwt.go`` and the claims validator, in that order: a token
whose (unverified) issuer is not ours, or that is not an ES256 JWS, is simply not ours (no
error); then the signature must verify under one of the configured public keys; then one
of its audiences must be one the caller accepts (the API audiences, or a TokenReview's);
then ``exp``/``nbf``/``iat`` with go-jose's one minute of leeway; then the ServiceAccount
— and a bound Pod, Secret or Node — must still exist with the uid in the token, and not
have been marked for deletion more than that minute ago. Each failure carries upstream's
message, which TokenReview reports as ``status.error``.

Every request carries its token, so checking must be cheap. The cryptographic part is
done once per token: verified claims are kept in a bounded LRU keyed by the token's
SHA-256 (never the token itself) until they expire. The existence checks run on every
request but read memory: once ``start`` is called, the uid and deletion time of every
ServiceAccount, Pod, Secret and Node are followed from the store (``follow_prefix``), so a
deleted ServiceAccount's token is refused as soon as the deletion is seen. Memory is only
trusted to say yes: an object it lacks, or whose uid differs (a watch that has not caught
up), is read from the store before the token is refused — upstream's informer-then-client
getter. Without ``start`` every check reads the store.

Lab deviation: upstream's ``--service-account-extend-token-expiration`` (kubelet tokens
asked for 3607 s silently living a year, with a ``warnafter`` claim) is not implemented;
tokens live exactly as long as requested (clamped to
``service_account_max_token_expiration_seconds`` when that is set).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import ipaddress
import re
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from control.apiserver import errors
from control.apiserver.admission import CREATE, AdmissionRequest
from control.apiserver.authn import UserInfo
from control.apiserver.call import Call, json_response
from control.apiserver.options import APIServerOptions
from control.apiserver.resource_store import ResourceStore
from control.apiserver.store_follower import follow_prefix
from control.resources.registry import ResourceType
from control.store import Event, EventType, KeyValue, Store

ALGORITHM = "ES256"
JWKS_PATH = "/openid/v1/jwks"
LEEWAY_SECONDS = 60  # go-jose's jwt.DefaultLeeway
DEFAULT_EXPIRATION_SECONDS = 3600
MIN_EXPIRATION_SECONDS = 600
MAX_EXPIRATION_SECONDS = 1 << 32
CACHE_ENTRIES = 4096
TOKEN_REQUEST_API_VERSION = "authentication.k8s.io/v1"

SERVICE_ACCOUNT_GROUP = "system:serviceaccounts"
AUTHENTICATED_GROUP = "system:authenticated"
EXTRA_POD_NAME = "authentication.kubernetes.io/pod-name"
EXTRA_POD_UID = "authentication.kubernetes.io/pod-uid"
EXTRA_NODE_NAME = "authentication.kubernetes.io/node-name"
EXTRA_NODE_UID = "authentication.kubernetes.io/node-uid"
EXTRA_CREDENTIAL_ID = "authentication.kubernetes.io/credential-id"

INVALIDATED = "service account token has been invalidated"
_SIGNATURE_FAILED = "go-jose/go-jose: error in cryptographic primitive"
_UNEXPECTED = "service account token claims could not be validated due to unexpected validation error"
_DELETION_MARK = b'"deletionTimestamp"'
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z ]+)-----.+?-----END \1-----", re.DOTALL)


class ServiceAccountKeyError(ValueError):
    """A configured service account key file is missing, unreadable or not an EC P-256 key."""


class TokenError(Exception):
    """The token is ours but does not authenticate; the message is upstream's."""


class _NotOurs(Exception):
    """Not a token this issuer signed (another issuer, not a JWS, another algorithm)."""


# ----------------------------------------------------------------------------- keys and JWS


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def key_id(public_key: ec.EllipticCurvePublicKey) -> str:
    """Upstream's ``keyIDFromPublicKey``: base64url(SHA-256(PKIX DER)), unpadded."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return _b64encode(hashlib.sha256(der).digest())


def _p256(key: Any, *, where: Path) -> Any:
    public = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    if not isinstance(public, ec.EllipticCurvePublicKey) or not isinstance(public.curve, ec.SECP256R1):
        raise ServiceAccountKeyError(f"{where}: service account keys must be EC P-256 keys (ES256)")
    return key


def load_signing_key(path: Path) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ServiceAccountKeyError(f"cannot load the service account signing key {path}: {exc}") from exc
    return _p256(key, where=path)


def load_public_keys(path: Path) -> list[ec.EllipticCurvePublicKey]:
    """Every key in a PEM file (public keys, private keys or certificates), as upstream's
    ``--service-account-key-file``."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ServiceAccountKeyError(f"cannot read the service account key file {path}: {exc}") from exc
    keys: list[ec.EllipticCurvePublicKey] = []
    for block in _PEM_BLOCK.finditer(data):
        label = block.group(1)
        try:
            if label == b"CERTIFICATE":
                key: Any = x509.load_pem_x509_certificate(block.group(0)).public_key()
            elif label.endswith(b"PRIVATE KEY"):
                key = serialization.load_pem_private_key(block.group(0), password=None).public_key()
            elif label.endswith(b"PUBLIC KEY"):
                key = serialization.load_pem_public_key(block.group(0))
            else:
                continue
        except (ValueError, TypeError) as exc:
            raise ServiceAccountKeyError(f"{path}: cannot load a {label.decode()}: {exc}") from exc
        keys.append(_p256(key, where=path))
    if not keys:
        raise ServiceAccountKeyError(f"{path}: no public or private key found")
    return keys


class TokenSigner:
    """Signs claims as an ES256 JWS in compact form, with upstream's header."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        self._key = private_key
        header = orjson.dumps({"alg": ALGORITHM, "kid": key_id(private_key.public_key())})
        self._header = _b64encode(header)

    def sign(self, claims: dict[str, Any]) -> str:
        signing_input = f"{self._header}.{_b64encode(orjson.dumps(claims, option=orjson.OPT_SORT_KEYS))}"
        r, s = decode_dss_signature(self._key.sign(signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256())))
        return f"{signing_input}.{_b64encode(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


# ----------------------------------------------------------------------------- verified claims


@dataclass(frozen=True, slots=True)
class _Ref:
    name: str
    uid: str


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    """A token whose signature, issuer and claim shapes were checked (cacheable)."""

    user: UserInfo
    audiences: tuple[str, ...]
    expires: float | None
    not_before: float | None
    issued_at: float | None
    namespace: str
    account: _Ref
    pod: _Ref | None
    secret: _Ref | None
    node: _Ref | None


def _ref(value: Any) -> _Ref | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("name", ""), str):
        raise TokenError(_UNEXPECTED)
    uid = value.get("uid", "")
    if not isinstance(uid, str):
        raise TokenError(_UNEXPECTED)
    return _Ref(name=value.get("name", ""), uid=uid)


def _numeric_date(claims: dict[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TokenError(_UNEXPECTED)
    return float(value)


def _audiences(value: Any) -> tuple[str, ...]:
    """``aud`` is a string or a list of strings (go-jose's Audience)."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    if value is None:
        return ()
    raise TokenError(_UNEXPECTED)


def _verified_from_claims(claims: dict[str, Any]) -> VerifiedToken:
    private = claims.get("kubernetes.io")
    if not isinstance(private, dict):
        private = {}
    namespace = private.get("namespace", "")
    account = _ref(private.get("serviceaccount") or {})
    if not isinstance(namespace, str) or account is None:
        raise TokenError(_UNEXPECTED)
    pod, secret, node = _ref(private.get("pod")), _ref(private.get("secret")), _ref(private.get("node"))
    jti = claims.get("jti")
    extra: dict[str, tuple[str, ...]] = {}
    if pod is not None and pod.name and pod.uid:
        extra[EXTRA_POD_NAME] = (pod.name,)
        extra[EXTRA_POD_UID] = (pod.uid,)
    if isinstance(jti, str) and jti:
        extra[EXTRA_CREDENTIAL_ID] = (f"JTI={jti}",)
    if node is not None and node.name:
        extra[EXTRA_NODE_NAME] = (node.name,)
        if node.uid:
            extra[EXTRA_NODE_UID] = (node.uid,)
    user = UserInfo(
        name=f"system:serviceaccount:{namespace}:{account.name}",
        uid=account.uid,
        groups=(SERVICE_ACCOUNT_GROUP, f"{SERVICE_ACCOUNT_GROUP}:{namespace}", AUTHENTICATED_GROUP),
        extra=extra,
    )
    return VerifiedToken(
        user=user,
        audiences=_audiences(claims.get("aud")),
        expires=_numeric_date(claims, "exp"),
        not_before=_numeric_date(claims, "nbf"),
        issued_at=_numeric_date(claims, "iat"),
        namespace=namespace,
        account=account,
        pod=pod,
        secret=secret,
        node=node,
    )


# ----------------------------------------------------------------------------- object liveness


@dataclass(frozen=True, slots=True)
class _Live:
    uid: str
    deleted_at: float | None  # epoch seconds of metadata.deletionTimestamp


def _parse_time(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _live(obj: dict[str, Any]) -> _Live:
    metadata = obj.get("metadata") or {}
    deletion = metadata.get("deletionTimestamp")
    return _Live(uid=metadata.get("uid", ""), deleted_at=_parse_time(deletion) if deletion else None)


class _Presence:
    """The uid and deletion time of every object under one storage prefix, followed from the
    store. Slim on purpose: a token check needs nothing else, and pods can be many."""

    def __init__(self, *, store: Store, prefix: str) -> None:
        self._store = store
        self._prefix = prefix
        self._live: dict[str, _Live] = {}
        self.listed = False

    def get(self, key: str) -> _Live | None:
        return self._live.get(key)

    async def run(self) -> None:
        await follow_prefix(
            self._store,
            self._prefix,
            on_list=self._relisted,
            on_event=self._changed,
            what=f"service account token checks ({self._prefix})",
        )

    async def _relisted(self, items: list[KeyValue]) -> None:
        live: dict[str, _Live] = {}
        for index, kv in enumerate(items):
            live[kv.key] = _live(orjson.loads(kv.value))
            if index % 1000 == 999:
                await asyncio.sleep(0)  # thousands of pods: let requests through meanwhile
        self._live = live
        self.listed = True

    async def _changed(self, event: Event) -> None:
        key = event.kv.key
        if event.type is EventType.DELETE:
            self._live.pop(key, None)
        elif event.prev is None or key not in self._live or _DELETION_MARK in event.kv.value:
            self._live[key] = _live(orjson.loads(event.kv.value))
        # else: an update of a known object that is not being deleted. Its uid cannot have
        # changed and a deletionTimestamp is never removed, so there is nothing to decode.


# ----------------------------------------------------------------------------- the service


class ServiceAccountTokens:
    def __init__(
        self,
        *,
        objects: ResourceStore,
        signing_key: ec.EllipticCurvePrivateKey,
        public_keys: Iterable[ec.EllipticCurvePublicKey] = (),
        issuer: str,
        audiences: tuple[str, ...] = (),
        jwks_uri: str,
        max_expiration_seconds: int = 0,
        clock: Callable[[], float] = time.time,
        cache_entries: int = CACHE_ENTRIES,
    ) -> None:
        if cache_entries < 1:
            raise ValueError(f"cache_entries must be at least 1, not {cache_entries}")
        self.objects = objects
        self.issuer = issuer
        self.audiences = audiences or (issuer,)
        self.max_expiration_seconds = max_expiration_seconds
        self._clock = clock
        self._signer = TokenSigner(signing_key)
        self._keys: dict[str, ec.EllipticCurvePublicKey] = {}
        for key in (signing_key.public_key(), *public_keys):
            self._keys.setdefault(key_id(key), key)
        self._cache: OrderedDict[bytes, VerifiedToken] = OrderedDict()
        self._cache_entries = cache_entries
        registry = objects.registry
        self._types: dict[str, ResourceType] = {}
        for plural in ("serviceaccounts", "pods", "secrets", "nodes"):
            rt = registry.lookup(group="", version="v1", plural=plural)
            if rt is None:
                raise ValueError(f"the registry has no core/v1 {plural}")
            self._types[plural] = rt
        self._presence = {
            plural: _Presence(store=objects.store, prefix=rt.storage_prefix)
            for plural, rt in self._types.items()
        }
        self._tasks: list[asyncio.Task[None]] = []
        self._discovery = orjson.dumps(
            {
                "issuer": issuer,
                "jwks_uri": jwks_uri,
                "response_types_supported": ["id_token"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": [ALGORITHM],
            }
        )
        self._jwks = orjson.dumps({"keys": [_jwk(kid, key) for kid, key in self._keys.items()]})

    @classmethod
    def from_options(
        cls, options: APIServerOptions, *, objects: ResourceStore
    ) -> ServiceAccountTokens | None:
        if options.service_account_signing_key_file is None:
            return None
        public_keys = [key for path in options.service_account_key_files for key in load_public_keys(path)]
        host = options.advertise_address
        with contextlib.suppress(ValueError):
            if ipaddress.ip_address(host).version == 6:
                host = f"[{host}]"
        return cls(
            objects=objects,
            signing_key=load_signing_key(options.service_account_signing_key_file),
            public_keys=public_keys,
            issuer=options.service_account_issuer,
            audiences=options.api_audiences,
            jwks_uri=f"https://{host}:{options.port}{JWKS_PATH}",
            max_expiration_seconds=options.service_account_max_token_expiration_seconds,
        )

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Follow ServiceAccounts, Pods, Secrets and Nodes so checks read memory."""
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(presence.run(), name=f"token-checks-{plural}")
                for plural, presence in self._presence.items()
            ]

    @property
    def synced(self) -> bool:
        """True once every followed kind was listed (checks read memory from then on)."""
        return all(presence.listed for presence in self._presence.values())

    @property
    def cached_tokens(self) -> int:
        """How many verified tokens are held (at most ``cache_entries``)."""
        return len(self._cache)

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # ------------------------------------------------------------------ authentication
    async def authenticate(self, token: str) -> UserInfo | None:
        """The ServiceAccount the token names, or None (the server answers 401)."""
        try:
            reviewed = await self.review(token, audiences=self.audiences)
        except TokenError:
            return None
        return None if reviewed is None else reviewed[0].user

    async def review(
        self, token: str, *, audiences: tuple[str, ...]
    ) -> tuple[VerifiedToken, list[str]] | None:
        """Check ``token`` for a caller accepting ``audiences``: the verified token and the
        audiences it is good for; None when this issuer did not make it (no error, as
        upstream). Raises TokenError with upstream's message when it is ours but bad."""
        digest = hashlib.sha256(token.encode()).digest()
        verified = self._cache.get(digest)
        if verified is None:
            try:
                claims = self._verify_signature(token)
            except _NotOurs:
                return None
            verified = _verified_from_claims(claims)
            self._cache[digest] = verified
            if len(self._cache) > self._cache_entries:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(digest)
        token_audiences = verified.audiences or self.audiences
        matched = [audience for audience in token_audiences if audience in audiences]
        if not matched:
            raise TokenError(
                f"token audiences {_go_quote(token_audiences)} is invalid "
                f"for the target audiences {_go_quote(audiences)}"
            )
        now = self._clock()
        if verified.expires is not None and now - LEEWAY_SECONDS > verified.expires:
            self._cache.pop(digest, None)
            raise TokenError("service account token has expired")
        if verified.not_before is not None and now + LEEWAY_SECONDS < verified.not_before:
            raise TokenError("service account token is not valid yet")
        if verified.issued_at is not None and now + LEEWAY_SECONDS < verified.issued_at:
            raise TokenError(_UNEXPECTED)
        await self._check_objects(verified, now=now)
        return verified, matched

    def _verify_signature(self, token: str) -> dict[str, Any]:
        if _COMPACT_JWS.fullmatch(token) is None:  # strict unpadded base64url, as Go's RawURLEncoding
            raise _NotOurs
        parts = token.split(".")
        try:
            header = orjson.loads(_b64decode(parts[0]))
            claims = orjson.loads(_b64decode(parts[1]))
            signature = _b64decode(parts[2])
        except (ValueError, orjson.JSONDecodeError) as exc:
            raise _NotOurs from exc
        # upstream's hasCorrectIssuer, then a parse that accepts only asymmetric algorithms
        if not isinstance(claims, dict) or claims.get("iss") != self.issuer:
            raise _NotOurs
        if not isinstance(header, dict) or header.get("alg") != ALGORITHM:
            raise _NotOurs
        if len(signature) != 64:
            raise TokenError(_SIGNATURE_FAILED)
        der = encode_dss_signature(
            int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        )
        signing_input = f"{parts[0]}.{parts[1]}".encode("ascii")
        kid = header.get("kid")
        named = self._keys.get(kid) if isinstance(kid, str) else None
        candidates = [named] if named is not None else list(self._keys.values())
        for key in candidates:
            try:
                key.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
            except InvalidSignature:
                continue
            return claims
        raise TokenError(_SIGNATURE_FAILED)

    async def _check_objects(self, verified: VerifiedToken, *, now: float) -> None:
        """Upstream's validator: the ServiceAccount and the bound object still exist, with the
        token's uids, and were not marked for deletion more than the leeway ago."""
        namespace, account = verified.namespace, verified.account
        invalid_if_deleted_before = now - LEEWAY_SECONDS
        live = await self._lookup("serviceaccounts", namespace=namespace, name=account.name, uid=account.uid)
        if live is None:
            raise TokenError(f'serviceaccounts "{account.name}" not found')
        if live.deleted_at is not None and live.deleted_at < invalid_if_deleted_before:
            raise TokenError(f"service account {namespace}/{account.name} has been deleted")
        if live.uid != account.uid:
            raise TokenError(f"service account UID ({live.uid}) does not match claim ({account.uid})")
        for plural, ref, kind in (("secrets", verified.secret, "secret"), ("pods", verified.pod, "pod")):
            if ref is None:
                continue
            live = await self._lookup(plural, namespace=namespace, name=ref.name, uid=ref.uid)
            if live is None or (live.deleted_at is not None and live.deleted_at < invalid_if_deleted_before):
                raise TokenError(INVALIDATED)
            if live.uid != ref.uid:
                raise TokenError(
                    f"{kind} UID ({live.uid}) does not match service account {kind} ref claim ({ref.uid})"
                )
        node = verified.node
        if node is not None and verified.pod is None:  # a pod-bound token's node is informational
            live = await self._lookup("nodes", namespace="", name=node.name, uid=node.uid)
            if live is None:
                raise TokenError(INVALIDATED)
            if node.uid and live.uid != node.uid:
                raise TokenError(
                    f"node UID ({live.uid}) does not match service account node ref claim ({node.uid})"
                )
            if live.deleted_at is not None and live.deleted_at < invalid_if_deleted_before:
                raise TokenError(INVALIDATED)

    async def _lookup(self, plural: str, *, namespace: str, name: str, uid: str) -> _Live | None:
        """Memory when it agrees with the token, else the store (authoritative)."""
        rt = self._types[plural]
        key = ResourceStore.key(rt, namespace=namespace, name=name)
        live = self._presence[plural].get(key)
        if live is not None and live.uid == uid:
            return live
        kv = await self.objects.store.get(key)
        return None if kv is None else _live(orjson.loads(kv.value))

    # ------------------------------------------------------------------ TokenRequest
    async def token_request(self, call: Call) -> web.Response:
        """POST serviceaccounts/<name>/token, as upstream's TokenREST.Create."""
        namespace, name = call.info.namespace, call.info.name
        body = await call.body()
        if not isinstance(body, dict):
            raise _undecodable("TokenRequest", "the body is not a JSON object")
        metadata = body.get("metadata") or {}
        spec = body.get("spec") or {}
        if not isinstance(metadata, dict) or not isinstance(spec, dict):
            raise _undecodable("TokenRequest", "metadata and spec must be objects")
        if metadata.get("name") and metadata["name"] != name:
            raise _invalid_token_request(
                name,
                [("metadata.name", metadata["name"], "must match the service account name if specified")],
            )
        if metadata.get("namespace") and metadata["namespace"] != namespace:
            raise _invalid_token_request(
                name,
                [
                    (
                        "metadata.namespace",
                        metadata["namespace"],
                        "must match the service account namespace if specified",
                    )
                ],
            )
        accounts = self._types["serviceaccounts"]
        account = await self.objects.get(accounts, namespace=namespace, name=name)
        audiences = spec.get("audiences")
        if audiences is not None and (
            not isinstance(audiences, list) or not all(isinstance(item, str) for item in audiences)
        ):
            raise _undecodable("TokenRequest", "spec.audiences must be a list of strings")
        expiration = spec.get("expirationSeconds")
        if expiration is None:
            expiration = DEFAULT_EXPIRATION_SECONDS
        if isinstance(expiration, bool) or not isinstance(expiration, int):
            raise _undecodable("TokenRequest", "spec.expirationSeconds must be an integer")
        bound = spec.get("boundObjectRef")
        if bound is not None and not isinstance(bound, dict):
            raise _undecodable("TokenRequest", "spec.boundObjectRef must be an object")
        now = int(self._clock())
        out_spec: dict[str, Any] = {
            "audiences": audiences or list(self.audiences),
            "expirationSeconds": expiration,
        }
        if bound:
            out_spec["boundObjectRef"] = bound
        request = {
            "kind": "TokenRequest",
            "apiVersion": TOKEN_REQUEST_API_VERSION,
            "metadata": {
                "name": name,
                "namespace": namespace,
                "creationTimestamp": _rfc3339(now),
            },
            "spec": out_spec,
        }
        problems = []
        if expiration < MIN_EXPIRATION_SECONDS:
            problems.append(
                ("spec.expirationSeconds", expiration, "may not specify a duration less than 10 minutes")
            )
        if expiration > MAX_EXPIRATION_SECONDS:
            problems.append(
                ("spec.expirationSeconds", expiration, "may not specify a duration larger than 2^32 seconds")
            )
        if problems:
            raise _invalid_token_request("", problems)
        await self.objects.admission.validate(
            AdmissionRequest(
                operation=CREATE,
                rt=accounts,
                namespace=namespace,
                name=name,
                subresource="token",
                user=call.user,
                obj=request,
                old=None,
                dry_run=call.dry_run,
            )
        )
        private: dict[str, Any] = {
            "namespace": namespace,
            "serviceaccount": {"name": name, "uid": account["metadata"]["uid"]},
        }
        if bound:
            private.update(await self._bound_claims(bound, namespace=namespace, account=name))
        lifetime = expiration
        if 0 < self.max_expiration_seconds < lifetime:
            lifetime = self.max_expiration_seconds
        claims = {
            "iss": self.issuer,
            "sub": f"system:serviceaccount:{namespace}:{name}",
            "aud": out_spec["audiences"],
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "jti": str(uuid.uuid4()),
            "kubernetes.io": private,
        }
        request["status"] = {
            "token": self._signer.sign(claims),
            "expirationTimestamp": _rfc3339(now + lifetime),
        }
        return json_response(request, status=201)

    async def _bound_claims(self, ref: dict[str, Any], *, namespace: str, account: str) -> dict[str, Any]:
        kind = ref.get("kind", "")
        api_version = ref.get("apiVersion", "")
        group, _, version = api_version.rpartition("/")
        name = ref.get("name", "")
        if group == "" and kind == "Pod":
            pod = await self.objects.get(self._types["pods"], namespace=namespace, name=name)
            if (pod.get("spec") or {}).get("serviceAccountName") != account:
                raise errors.bad_request(
                    f'cannot bind token for serviceaccount "{account}" '
                    "to pod running with different serviceaccount name."
                )
            claims: dict[str, Any] = {"pod": {"name": name, "uid": pod["metadata"]["uid"]}}
            node_name = (pod.get("spec") or {}).get("nodeName")
            if node_name:
                node = await self.objects.store.get(
                    ResourceStore.key(self._types["nodes"], namespace="", name=node_name)
                )
                if node is not None:  # as upstream: a missing node is left out of the token
                    claims["node"] = {"name": node_name, "uid": _live(orjson.loads(node.value)).uid}
            uid = claims["pod"]["uid"]
        elif group == "" and kind == "Secret":
            secret = await self.objects.get(self._types["secrets"], namespace=namespace, name=name)
            uid = secret["metadata"]["uid"]
            claims = {"secret": {"name": name, "uid": uid}}
        elif group == "" and kind == "Node":
            node_obj = await self.objects.get(self._types["nodes"], namespace="", name=name)
            uid = node_obj["metadata"]["uid"]
            claims = {"node": {"name": name, "uid": uid}}
        else:
            raise errors.bad_request(f"cannot bind token to object of type {group}/{version}, Kind={kind}")
        wanted = ref.get("uid") or ""
        if wanted and wanted != uid:
            raise errors.StatusError(
                code=409,
                reason="Conflict",
                message=(
                    f'Operation cannot be fulfilled on {kind} "{name}": the UID in the bound object reference '
                    f"({wanted}) does not match the UID in record. The object might have been deleted and "
                    "then recreated"
                ),
                details={"name": name, "kind": kind},
            )
        return claims

    # ------------------------------------------------------------------ TokenReview
    async def token_review(self, call: Call) -> web.Response:
        """POST tokenreviews: would this token authenticate, for these audiences?"""
        body = await call.body()
        if not isinstance(body, dict):
            raise _undecodable("TokenReview", "the body is not a JSON object")
        spec = body.get("spec") or {}
        if not isinstance(spec, dict):
            raise _undecodable("TokenReview", "spec must be an object")
        token = spec.get("token") or ""
        requested = spec.get("audiences") or []
        if not isinstance(token, str) or not isinstance(requested, list):
            raise _undecodable("TokenReview", "spec.token must be a string and spec.audiences a list")
        if not all(isinstance(item, str) for item in requested):
            raise _undecodable("TokenReview", "spec.audiences must be a list of strings")
        if not token:
            raise errors.bad_request("token is required for TokenReview in authentication")
        status: dict[str, Any] = {"user": {}}
        try:
            reviewed = await self.review(token, audiences=tuple(requested) or self.audiences)
        except TokenError as exc:
            status["error"] = str(exc)
            reviewed = None
        if reviewed is not None:
            verified, matched = reviewed
            user = verified.user
            status = {
                "authenticated": True,
                "user": user.as_user_info(),
                "audiences": matched,
            }
        answer = {
            "kind": "TokenReview",
            "apiVersion": f"{call.rt.group}/{call.rt.version}",
            "metadata": {"creationTimestamp": None},
            "spec": spec,
            "status": status,
        }
        return json_response(answer, status=201)

    # ------------------------------------------------------------------ discovery
    def openid_configuration(self) -> bytes:
        return self._discovery

    def jwks(self) -> bytes:
        return self._jwks


def _jwk(kid: str, key: ec.EllipticCurvePublicKey) -> dict[str, str]:
    numbers = key.public_numbers()
    return {
        "use": "sig",
        "kty": "EC",
        "kid": kid,
        "crv": "P-256",
        "alg": ALGORITHM,
        "x": _b64encode(numbers.x.to_bytes(32, "big")),
        "y": _b64encode(numbers.y.to_bytes(32, "big")),
    }


def _go_quote(values: Iterable[str]) -> str:
    """Go's ``%q`` of a []string: ``["a" "b"]``."""
    return "[" + " ".join(orjson.dumps(value).decode() for value in values) + "]"


def _rfc3339(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _undecodable(kind: str, why: str) -> errors.StatusError:
    return errors.bad_request(f'{kind} in version "v1" cannot be handled as a {kind}: {why}')


def _invalid_token_request(name: str, problems: list[tuple[str, Any, str]]) -> errors.StatusError:
    """Upstream's NewInvalid for TokenRequest.authentication.k8s.io (field.Invalid each)."""
    messages = [
        f"{field}: Invalid value: {orjson.dumps(value).decode()}: {detail}"
        for field, value, detail in problems
    ]
    summary = messages[0] if len(messages) == 1 else "[" + ", ".join(messages) + "]"
    return errors.StatusError(
        code=422,
        reason="Invalid",
        message=f'TokenRequest.authentication.k8s.io "{name}" is invalid: {summary}',
        details={
            **({"name": name} if name else {}),
            "group": "authentication.k8s.io",
            "kind": "TokenRequest",
            "causes": [
                {"reason": "FieldValueInvalid", "message": message.split(": ", 1)[1], "field": field}
                for message, (field, _, _) in zip(messages, problems, strict=True)
            ],
        },
    )
