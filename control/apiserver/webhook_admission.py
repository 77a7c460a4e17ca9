"""Dynamic admission: the MutatingAdmissionWebhook and ValidatingAdmissionWebhook plugins.

kube-apiserver sends writes to the webhooks that ``admissionregistration.k8s.io/v1``
MutatingWebhookConfigurations and ValidatingWebhookConfigurations declare (upstream's
k8s.io/apiserver/pkg/admission/plugin/webhook/{generic,mutating,validating,predicates}). This
module is that part; the AdmissionReview is :mod:`control.apiserver.admission_review` and the
HTTPS call :mod:`control.apiserver.webhook_client`.

Following the configurations: :class:`WebhookConfigurations` lists and then watches each kind in
the store (as the API server's other caches do, there being no informers here) and keeps the
webhooks compiled — rules, parsed selectors, client config — in upstream's order (configurations
by name, webhooks in their order), indexed by (API group, resource) with ``*`` for wildcards. A
request no webhook's rules can match costs four dictionary lookups and no store read. The server
waits for the first list before it serves.

Matching (``ShouldCallHook``): the rules (operations incl. ``*``; apiGroups, apiVersions;
resources incl. ``pods/status``, ``pods/*``, ``*/status``, ``*`` without subresources, ``*/*``;
scope ``Cluster``/``Namespaced``/``*``), then the namespaceSelector against the namespace's labels
(a Namespace's own labels for a write to it; cluster-scoped objects always match; a namespace
that does not exist answers 404 as upstream), then the objectSelector against the new or the old
object's labels (:mod:`control.apiserver.admission_matching`, shared with admission policies),
then the ``matchConditions`` (CEL, :mod:`control.apiserver.admission_expressions`): any false skips
the webhook; one that fails to evaluate refuses the request with upstream's 403 under ``Fail`` and
skips the webhook under ``Ignore``. The configuration kinds themselves are never sent to webhooks,
so a bad webhook can always be removed. ``matchPolicy: Equivalent`` matches as ``Exact``: kubelab
serves one version of each built-in kind.

Calling: a dry-run request fails with upstream's 400 ``admission webhook "x" does not support dry
run`` when a matching webhook's sideEffects is not None/NoneOnDryRun. A webhook that cannot be
called, times out, answers something that is not a valid AdmissionReview or a patch that does not
decode, is subject to its failurePolicy: ``Ignore`` carries on (logged), ``Fail`` answers 500
``Internal error occurred: failed calling webhook "x": ...``. A refusal is upstream's
``ToStatusErr``: the webhook's code (at least 400), reason and details, and the message
``admission webhook "x" denied the request: <message>``. Warnings become ``Warning`` headers.

Mutating webhooks run one after another in the mutate phase (after the built-in mutating
plugins, before ResourceQuota, as upstream orders them); each JSONPatch is applied to the object,
which is defaulted again (and, for an update, validated again: the API server validates updates
before admission). ``reinvocationPolicy: IfNeeded`` webhooks are called once more when a
webhook after them changed the object (upstream's reinvocation, without re-running the built-in
plugins). The API server runs no mutate phase for deletes, so mutating webhooks that match a
DELETE are called in the validate phase (they may refuse; a patch is an error, as upstream).
Validating webhooks run in the validate phase, all at once; when several refuse, the first in
upstream's order is answered.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from control.apiserver import errors
from control.apiserver.admission import DELETE, UPDATE, AdmissionRequest, forbidden
from control.apiserver.admission_expressions import (
    MatchCondition,
    RequestExpressions,
    compile_match_conditions,
    match_conditions,
)
from control.apiserver.admission_matching import NamespaceOfRequest, Rule, Selectors, is_exempt
from control.apiserver.admission_metrics import AdmissionMetrics
from control.apiserver.admission_review import (
    AdmissionResponse,
    InvalidResponseError,
    NoKnownReviewVersionError,
    admission_review,
    review_version,
    verify_response,
)
from control.apiserver.authorization import AuthorizerChain
from control.apiserver.patch import PatchError, json_patch
from control.apiserver.resource_store import ResourceStore
from control.apiserver.service_endpoints import ServiceEndpoints
from control.apiserver.store_follower import FollowedObjects
from control.apiserver.warning import add_warning
from control.apiserver.webhook_client import ClientConfig, WebhookCallError, WebhookClient, WebhookClientError
from control.resources import defaults, validation
from control.resources.registry import ResourceType
from control.store import Store

log = logging.getLogger("kubelab.apiserver.webhooks")

GROUP = "admissionregistration.k8s.io"
MUTATING_CONFIGURATIONS = "mutatingwebhookconfigurations"
VALIDATING_CONFIGURATIONS = "validatingwebhookconfigurations"
MUTATING_TYPE = "admit"  # upstream's "type" label of mutating webhooks in admission metrics
VALIDATING_TYPE = "validating"
_NO_SIDE_EFFECTS = frozenset({"None", "NoneOnDryRun"})
SYNC_TIMEOUT_SECONDS = 60.0


class CallingWebhookError(Exception):
    """Upstream's ErrCallingWebhook: the webhook could not be asked (not a refusal)."""

    def __init__(self, webhook: str, reason: str) -> None:
        super().__init__(f'failed calling webhook "{webhook}": {reason}')


@dataclass(frozen=True, kw_only=True, eq=False)
class Webhook:
    """One webhook of a configuration, compiled for matching and calling."""

    name: str
    kind: str  # MUTATING_TYPE or VALIDATING_TYPE (upstream's metric label "type")
    configuration: str
    position: int  # upstream's order across all configurations of the kind
    rules: tuple[Rule, ...]
    ignore_failures: bool
    selectors: Selectors
    match_conditions: tuple[MatchCondition, ...]
    side_effects: str
    timeout: float
    review_versions: tuple[str, ...]
    reinvoke: bool
    client: ClientConfig

    @classmethod
    def from_object(cls, hook: dict[str, Any], *, kind: str, configuration: str, position: int) -> Webhook:
        return cls(
            name=str(hook.get("name") or ""),
            kind=kind,
            configuration=configuration,
            position=position,
            rules=tuple(Rule.from_object(r) for r in hook.get("rules") or () if isinstance(r, dict)),
            ignore_failures=hook.get("failurePolicy") == "Ignore",
            selectors=Selectors.from_object(hook),
            match_conditions=compile_match_conditions(hook.get("matchConditions"), params=False),
            side_effects=str(hook.get("sideEffects") or ""),
            timeout=float(hook.get("timeoutSeconds") or 10),
            review_versions=tuple(str(v) for v in hook.get("admissionReviewVersions") or ()),
            reinvoke=hook.get("reinvocationPolicy") == "IfNeeded",
            client=ClientConfig.from_object(hook.get("clientConfig") or {}),
        )

    def index_keys(self) -> set[tuple[str, str]]:
        """The (group, resource) buckets this webhook's rules can match, ``*`` for any."""
        return {
            (group, resource)
            for rule in self.rules
            for group in rule.groups
            for resource, _ in rule.resources
        }


class WebhookConfigurations:
    """The webhooks of one configuration kind, followed from the store (see the module doc)."""

    def __init__(self, *, store: Store, prefix: str, what: str, kind: str) -> None:
        self._kind = kind
        self._followed = FollowedObjects(store=store, prefix=prefix, what=what, changed=self._reindex)
        self._index: dict[tuple[str, str], tuple[Webhook, ...]] = {}
        self.synced = self._followed.synced

    def start(self) -> None:
        self._followed.start()

    async def stop(self) -> None:
        await self._followed.stop()

    def candidates(self, rt: ResourceType) -> Sequence[Webhook]:
        """Webhooks whose rules name ``rt``'s group and resource (or wildcards), in order."""
        if not self._index:
            return ()
        found: dict[Webhook, None] = {}
        for key in ((rt.group, rt.plural), (rt.group, "*"), ("*", rt.plural), ("*", "*")):
            found.update(dict.fromkeys(self._index.get(key, ())))
        return sorted(found, key=lambda hook: hook.position)

    def _reindex(self) -> None:
        buckets: dict[tuple[str, str], list[Webhook]] = {}
        position = 0
        objects = self._followed.objects
        for name in sorted(objects):
            for hook in objects[name].get("webhooks") or ():
                if not isinstance(hook, dict):
                    continue
                webhook = Webhook.from_object(hook, kind=self._kind, configuration=name, position=position)
                position += 1
                for key in webhook.index_keys():
                    buckets.setdefault(key, []).append(webhook)
        self._index = {key: tuple(hooks) for key, hooks in buckets.items()}


class _Dispatcher:
    """What both plugins do alike: match a request against webhooks and call one."""

    def __init__(
        self,
        *,
        objects: ResourceStore,
        client: WebhookClient,
        authorizer: AuthorizerChain,
        metrics: AdmissionMetrics,
    ) -> None:
        self._objects = objects
        self._client = client
        self._authorizer = authorizer
        self._metrics = metrics

    async def matching(self, hooks: Sequence[Webhook], request: AdmissionRequest) -> list[Webhook]:
        """The webhooks of ``hooks`` that ``request`` must be sent to, in order: rules, selectors,
        then matchConditions (a condition that fails to evaluate refuses the request under
        ``Fail``, as upstream's ShouldCallHook, and skips the webhook under ``Ignore``)."""
        found = []
        namespace = NamespaceOfRequest(objects=self._objects, request=request)
        expressions: RequestExpressions | None = None
        for hook in hooks:
            if not any(rule.matches(request) for rule in hook.rules):
                continue
            if not await hook.selectors.match(request, namespace):
                continue
            if hook.match_conditions:
                if expressions is None:
                    expressions = RequestExpressions(
                        request=request, namespace=None, authorizer=self._authorizer
                    )
                outcome = await match_conditions(
                    hook.match_conditions, expressions, fail_closed=not hook.ignore_failures
                )
                labels = (hook.name, "webhook", hook.kind, request.operation)
                if outcome.errored:
                    self._metrics.match_condition_errors.labels(*labels).inc()
                elif not outcome.matches:
                    self._metrics.match_condition_exclusions.labels(*labels).inc()
                if outcome.error:
                    log.warning(
                        "Failed evaluating match conditions, failing closed %s: %s", hook.name, outcome.error
                    )
                    raise forbidden(request, outcome.error)
                if not outcome.matches:
                    continue
            found.append(hook)
        return found

    async def admit(
        self, hook: Webhook, request: AdmissionRequest
    ) -> tuple[AdmissionResponse, list[Any]] | None:
        """Call ``hook``: its allowing answer and (for a mutating webhook) its patch operations;
        None when the call failed and the failure policy ignores that. A refusal, or a failure
        under ``Fail``, is raised. Each call is observed in the webhook metrics."""
        mutating = hook.kind == MUTATING_TYPE
        started = time.perf_counter()
        try:
            response = await self._call(hook, request, mutating=mutating)
            operations = _decoded_patch(hook, response) if mutating else []
        except CallingWebhookError as exc:
            self._metrics.observe_webhook(
                name=hook.name,
                type_=hook.kind,
                operation=request.operation,
                seconds=time.perf_counter() - started,
                code=503,
                rejected=not hook.ignore_failures,
                error_type="calling_webhook_error",
            )
            if not hook.ignore_failures:
                log.warning("Failed calling webhook, failing closed %s: %s", hook.name, exc)
                raise errors.internal(str(exc)) from exc
            self._metrics.webhook_fail_open.labels(hook.name, hook.kind).inc()
            log.warning("Failed calling webhook, failing open %s: %s", hook.name, exc)
            return None
        refusal = None if response.allowed else rejection(hook.name, response.result)
        self._metrics.observe_webhook(
            name=hook.name,
            type_=hook.kind,
            operation=request.operation,
            seconds=time.perf_counter() - started,
            code=200 if refusal is None else refusal.code,
            rejected=refusal is not None,
            error_type="no_error",
        )
        if refusal is not None:
            raise refusal
        return response, operations

    async def _call(self, hook: Webhook, request: AdmissionRequest, *, mutating: bool) -> AdmissionResponse:
        """Send ``request`` to ``hook``: its verified answer (warnings already added), a
        CallingWebhookError (the failure policy decides), or a StatusError for a dry run it
        cannot take."""
        if request.dry_run and hook.side_effects not in _NO_SIDE_EFFECTS:
            raise errors.bad_request(f'admission webhook "{hook.name}" does not support dry run')
        try:
            version = review_version(hook.review_versions)
        except NoKnownReviewVersionError as exc:
            raise CallingWebhookError(hook.name, f"could not create admission objects: {exc}") from exc
        uid, review = admission_review(request, version=version)
        try:
            answer = await self._client.post(hook.client, review, timeout_seconds=hook.timeout)
        except WebhookClientError as exc:
            raise CallingWebhookError(hook.name, str(exc)) from exc
        except WebhookCallError as exc:
            raise CallingWebhookError(hook.name, f"failed to call webhook: {exc}") from exc
        try:
            response = verify_response(answer, uid=uid, version=version, mutating=mutating)
        except InvalidResponseError as exc:
            raise CallingWebhookError(hook.name, f"received invalid webhook response: {exc}") from exc
        for warning in response.warnings:
            add_warning(warning)
        return response


class MutatingAdmissionWebhook:
    """Calls the mutating webhooks one by one and applies their patches (see the module doc)."""

    def __init__(self, *, configurations: WebhookConfigurations, dispatcher: _Dispatcher) -> None:
        self._configurations = configurations
        self._dispatcher = dispatcher

    async def mutate(self, request: AdmissionRequest) -> None:
        if request.operation == DELETE or is_exempt(request.rt):
            return
        hooks = self._configurations.candidates(request.rt)
        if not hooks:
            return
        reinvoke: set[Webhook] = set()
        invoked_reinvocable: list[Webhook] = []
        for hook in await self._dispatcher.matching(hooks, request):
            if await self._admit(hook, request):
                reinvoke.update(invoked_reinvocable)
                invoked_reinvocable.clear()
            if hook.reinvoke:
                invoked_reinvocable.append(hook)
        if reinvoke:
            for hook in await self._dispatcher.matching(hooks, request):
                if hook in reinvoke:
                    await self._admit(hook, request)

    async def validate(self, request: AdmissionRequest) -> None:
        """Deletes have no mutate phase here: mutating webhooks for DELETE are asked now."""
        if request.operation != DELETE or is_exempt(request.rt):
            return
        hooks = self._configurations.candidates(request.rt)
        if hooks:
            for hook in await self._dispatcher.matching(hooks, request):
                await self._admit(hook, request)

    async def _admit(self, hook: Webhook, request: AdmissionRequest) -> bool:
        """Call ``hook`` and apply its patch to ``request.obj``; True if the object changed."""
        admitted = await self._dispatcher.admit(hook, request)
        if admitted is None:
            return False
        _, operations = admitted
        if not operations:
            return False
        if request.obj is None:
            raise errors.internal(
                f'admission webhook "{hook.name}" attempted to modify the object, which is not supported '
                "for this operation"
            )
        rt = request.rt
        before = {**request.obj, "apiVersion": rt.api_version, "kind": rt.kind}
        try:
            patched = json_patch(before, operations)
        except PatchError as exc:
            raise errors.internal(exc.message) from exc
        if not isinstance(patched, dict) or not isinstance(patched.get("metadata"), dict):
            raise errors.internal(f'admission webhook "{hook.name}" patched the object into something else')
        patched.update(apiVersion=rt.api_version, kind=rt.kind)
        defaults.apply_defaults(rt, patched, old=request.old)
        changed = patched != before
        if changed and request.operation == UPDATE and request.old is not None:
            _check_patched_update(rt, patched, old=request.old, request=request)
        request.obj.clear()
        request.obj.update(patched)
        return changed


class ValidatingAdmissionWebhook:
    """Calls the validating webhooks, all at once, in the validate phase."""

    def __init__(self, *, configurations: WebhookConfigurations, dispatcher: _Dispatcher) -> None:
        self._configurations = configurations
        self._dispatcher = dispatcher

    async def validate(self, request: AdmissionRequest) -> None:
        if is_exempt(request.rt):
            return
        hooks = self._configurations.candidates(request.rt)
        if not hooks:
            return
        invoked = await self._dispatcher.matching(hooks, request)
        outcomes = await asyncio.gather(
            *(self._dispatcher.admit(hook, request) for hook in invoked), return_exceptions=True
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome


class WebhookAdmission:
    """Both plugins, the configurations they follow and the client they share; start before
    serving (it waits for the first lists), stop at shutdown."""

    def __init__(
        self, *, objects: ResourceStore, authorizer: AuthorizerChain, metrics: AdmissionMetrics
    ) -> None:
        self.client = WebhookClient(resolve=ServiceEndpoints(objects))
        dispatcher = _Dispatcher(objects=objects, client=self.client, authorizer=authorizer, metrics=metrics)
        followed = []
        for plural, kind in (
            (MUTATING_CONFIGURATIONS, MUTATING_TYPE),
            (VALIDATING_CONFIGURATIONS, VALIDATING_TYPE),
        ):
            rt = objects.registry.lookup(group=GROUP, version="v1", plural=plural)
            if rt is None:
                raise RuntimeError(f"the registry lacks {plural}")
            followed.append(
                WebhookConfigurations(
                    store=objects.store, prefix=objects.prefix(rt, namespace=""), what=plural, kind=kind
                )
            )
        self.mutating_configurations, self.validating_configurations = followed
        self.mutating = MutatingAdmissionWebhook(configurations=followed[0], dispatcher=dispatcher)
        self.validating = ValidatingAdmissionWebhook(configurations=followed[1], dispatcher=dispatcher)

    async def start(self) -> None:
        for configurations in (self.mutating_configurations, self.validating_configurations):
            configurations.start()
        for configurations in (self.mutating_configurations, self.validating_configurations):
            await asyncio.wait_for(configurations.synced.wait(), timeout=SYNC_TIMEOUT_SECONDS)

    async def stop(self) -> None:
        await self.mutating_configurations.stop()
        await self.validating_configurations.stop()
        await self.client.close()


def rejection(webhook: str, result: dict[str, Any] | None) -> errors.StatusError:
    """Upstream's ``ToStatusErr``: a refusal in the webhook's own Status, with its name."""
    result = result or {}
    code = result.get("code")
    code = code if isinstance(code, int) and code >= 400 else 400
    message, reason = str(result.get("message") or ""), str(result.get("reason") or "")
    denied = f'admission webhook "{webhook}" denied the request'
    if message:
        text = f"{denied}: {message}"
    elif reason:
        text = f"{denied}: {reason}"
    else:
        text = f"{denied} without explanation"
    details = result.get("details")
    return errors.StatusError(
        code=code, reason=reason, message=text, details=details if isinstance(details, dict) else None
    )


def _check_patched_update(
    rt: ResourceType, patched: dict[str, Any], *, old: dict[str, Any], request: AdmissionRequest
) -> None:
    """The API server validates an update before admission (creates after it): an update a
    webhook changed is validated again here, as upstream validates after mutating admission."""
    if request.subresource == "status":
        problems = validation.validate_status_update(rt, patched, old=old)
    elif not request.subresource:
        problems = validation.validate(rt, patched, old=old)
    else:
        return
    if problems:
        raise errors.invalid(rt, request.name, problems)


def _decoded_patch(hook: Webhook, response: AdmissionResponse) -> list[Any]:
    """The response's JSON patch operations ([] without a patch); CallingWebhookError if bad."""
    if not response.patch:
        return []
    try:
        operations = orjson.loads(base64.b64decode(response.patch, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise CallingWebhookError(
            hook.name, f"received undecodable patch in webhook response: {exc}"
        ) from exc
    if not isinstance(operations, list):
        raise CallingWebhookError(
            hook.name,
            "received undecodable patch in webhook response: json: cannot unmarshal into jsonpatch.Patch",
        )
    if operations and response.patch_type != "JSONPatch":
        raise CallingWebhookError(hook.name, f'unsupported patch type "{response.patch_type}"')
    return operations
