"""Writes: create, update (PUT), patch, delete, deletecollection, and the write
subresources (status, scale, binding, finalize).

Each handler decodes and checks the request, then hands a *transform* to the
ResourceStore, which runs it inside its compare-and-swap loop. Patches are applied to the
freshly read object on every attempt, so concurrent patches never lose each other's
changes, and a resourceVersion inside the patch still pins the version (409 on mismatch).

``fieldValidation`` decides what happens to unknown fields, as upstream: Strict -> 400,
Warn (the default) -> dropped with a Warning header, Ignore -> dropped silently.
"""

from __future__ import annotations

import copy
from typing import Any

from aiohttp import web

from control.apiserver import apply as server_side_apply
from control.apiserver import errors, patch
from control.apiserver.call import Call, json_response
from control.apiserver.conversion import decoded
from control.apiserver.negotiation import decode_body, media_type, require_object
from control.apiserver.predicate import compile_predicate
from control.apiserver.resource_store import DeleteOptions
from control.resources import schema, selectors
from control.resources.registry import ResourceType, ScaleSubresource
from control.store import StoreError

PATCH_TYPES = {
    "application/merge-patch+json": "merge",
    "application/json-patch+json": "json",
    "application/strategic-merge-patch+json": "strategic",
}
_APPLY_PATCH = "application/apply-patch+yaml"
_FIELD_VALIDATION = ("", "Ignore", "Warn", "Strict")
_SCALE_DEFINITION = "io.k8s.api.autoscaling.v1.Scale"


# ---------------------------------------------------------------- decoding
def _field_validation(call: Call) -> str:
    value = call.param("fieldValidation")
    if value not in _FIELD_VALIDATION:
        raise errors.bad_request(
            f'fieldValidation: Unsupported value: "{value}": supported values: "Ignore", "Strict", "Warn"'
        )
    return value or "Warn"


def _check_fields(call: Call, obj: dict[str, Any], *, mode: str) -> None:
    """Type errors -> 400 always; unknown fields per fieldValidation (pruned unless Strict)."""
    node = schema.schema_for(call.rt)
    if node is None:
        return
    report = schema.check_fields(obj, node, prune=mode != "Strict")
    if report.type_errors:
        if not report.type_errors[0].builtin:  # custom resources: schema validation, 422
            name = str((obj.get("metadata") or {}).get("name") or "")
            raise errors.invalid(call.rt, name, [mismatch.field_error() for mismatch in report.type_errors])
        raise errors.bad_request("; ".join(mismatch.message() for mismatch in report.type_errors))
    if not report.unknown_fields:
        return
    if mode == "Strict":
        raise errors.bad_request(report.strict_error())
    if mode == "Warn":
        call.warnings.extend(report.warnings())


def _check_type_meta(rt: ResourceType, obj: dict[str, Any]) -> None:
    """The body's apiVersion/kind, when given, must be the URL's (missing ones default to it)."""
    api_version = obj.get("apiVersion")
    kind = obj.get("kind")
    if api_version and api_version != rt.api_version:
        raise errors.bad_request(
            f"the API version in the data ({api_version}) does not match the expected API version ({rt.api_version})"
        )
    if kind and kind != rt.kind:
        raise errors.bad_request(
            f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})"
        )
    obj["apiVersion"] = rt.api_version
    obj["kind"] = rt.kind


async def _object_body(call: Call) -> dict[str, Any]:
    obj = require_object(await call.body())
    if "metadata" in obj and not isinstance(obj["metadata"], dict):
        raise errors.bad_request("metadata: Invalid value: must be an object")
    return obj


async def decoded_object(call: Call) -> dict[str, Any]:
    """The request's object as a create decodes it: ``fieldValidation``, apiVersion/kind against
    the URL's kind, schema types, unknown fields (pruned, warned about or refused)."""
    mode = _field_validation(call)
    obj = await _object_body(call)
    _check_type_meta(call.rt, obj)
    _check_fields(call, obj, mode=mode)
    return obj


# ---------------------------------------------------------------- create
async def create(call: Call) -> web.Response:
    rt = call.rt
    obj = await decoded_object(call)
    created = await call.objects.create(
        rt, obj, namespace=call.info.namespace, dry_run=call.dry_run, user=call.user
    )
    return json_response(created, status=201, warnings=call.warnings)


# ---------------------------------------------------------------- update
async def update(call: Call) -> web.Response:
    rt = call.rt
    mode = _field_validation(call)
    body = await _object_body(call)
    subresource = call.info.subresource
    if subresource == "scale":
        return await _update_scale(call, lambda scale: body)
    if subresource not in ("", "status", "finalize", "ephemeralcontainers", "approval"):
        raise errors.method_not_supported(rt, "update")
    _check_type_meta(rt, body)
    _check_fields(call, body, mode=mode)

    def replace(current: dict[str, Any]) -> dict[str, Any]:
        return body

    updated = await call.objects.update(
        rt,
        namespace=call.info.namespace,
        name=call.info.name,
        transform=_tracking_managers(call, replace) if subresource == "" else replace,
        subresource=subresource,
        dry_run=call.dry_run,
        user=call.user,
    )
    return json_response(updated, warnings=call.warnings)


# ---------------------------------------------------------------- patch
async def patch_(call: Call) -> web.Response:
    rt = call.rt
    content_type = media_type(call.request.headers.get("Content-Type", ""))
    if content_type == _APPLY_PATCH:
        return await _server_side_apply(call)
    kind = PATCH_TYPES.get(content_type)
    if kind is None:
        raise errors.StatusError(
            code=415,
            reason="UnsupportedMediaType",
            message=f"the body of the request was in an unknown format - accepted media types include: "
            f'{", ".join(PATCH_TYPES)}, {_APPLY_PATCH} (got "{content_type}")',
        )
    mode = _field_validation(call)
    document = await call.body()
    if kind == "json" and not isinstance(document, list):
        raise errors.bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    if kind != "json" and not isinstance(document, dict):
        raise errors.bad_request("the body of the request must be a JSON object for this patch type")
    subresource = call.info.subresource

    def apply(current: dict[str, Any]) -> dict[str, Any]:
        try:
            if kind == "merge":
                patched = patch.json_merge_patch(current, document)
            elif kind == "json":
                patched = patch.json_patch(current, document)
            else:
                target = (
                    schema.definitions().node(_SCALE_DEFINITION)
                    if subresource == "scale"
                    else schema.schema_for(rt)
                )
                patched = patch.strategic_merge_patch(current, document, target)
        except patch.PatchError as exc:
            raise errors.StatusError(code=exc.code, reason=exc.reason, message=exc.message) from exc
        if not isinstance(patched, dict):
            raise errors.bad_request("the patched object is not a JSON object")
        if subresource != "scale":
            _check_type_meta(rt, patched)
            _check_fields(call, patched, mode=mode)
        return patched

    if subresource == "scale":
        return await _update_scale(call, apply)
    if subresource not in ("", "status", "ephemeralcontainers", "approval"):
        raise errors.method_not_supported(rt, "patch")
    updated = await call.objects.update(
        rt,
        namespace=call.info.namespace,
        name=call.info.name,
        transform=_tracking_managers(call, apply) if subresource == "" else apply,
        subresource=subresource,
        dry_run=call.dry_run,
        user=call.user,
    )
    return json_response(updated, warnings=call.warnings)


# ---------------------------------------------------------------- server-side apply
def _field_manager(call: Call) -> str:
    """``fieldManager``, else the User-Agent's product (upstream's prefixFromUserAgent)."""
    manager = call.param("fieldManager")
    if manager:
        return manager
    return call.request.headers.get("User-Agent", "").split("/", 1)[0] or "unknown"


def _tracking_managers(call: Call, transform: Any, *, subresource: str = "") -> Any:
    """``transform``, then the managedFields of an applied object follow the change (made
    through ``subresource``, for the scale subresource's writes)."""

    def tracked(current: dict[str, Any]) -> dict[str, Any]:
        desired = transform(current)
        if isinstance(desired, dict) and (current.get("metadata") or {}).get("managedFields"):
            server_side_apply.track_update(
                current,
                desired,
                schema=schema.schema_for(call.rt),
                has_status=call.rt.has_status,
                manager=_field_manager(call),
                api_version=call.rt.api_version,
                now=call.now,
                subresource=subresource,
            )
        return desired

    return tracked


async def _server_side_apply(call: Call) -> web.Response:
    """PATCH with application/apply-patch+yaml (see ``control.apiserver.apply``)."""
    rt = call.rt
    if call.info.subresource:
        raise errors.method_not_supported(rt, "apply")
    manager = call.param("fieldManager")
    if not manager:
        raise errors.StatusError(
            code=422,
            reason="Invalid",
            message='PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: '
            "is required for apply patch",
        )
    force_text = call.param("force")
    if force_text not in ("", "true", "false"):
        raise errors.bad_request(f'force: Invalid value: "{force_text}": must be true or false')
    mode = _field_validation(call)
    applied = require_object(await call.body())
    if not applied.get("apiVersion") or not applied.get("kind"):
        missing = "apiVersion" if not applied.get("apiVersion") else "kind"
        raise errors.bad_request(f"{missing} must be set in an applied configuration")
    _check_type_meta(rt, applied)
    metadata = applied.get("metadata")
    if not isinstance(metadata, dict):
        raise errors.bad_request("metadata must be set in an applied configuration")
    if metadata.get("name") not in (None, "", call.info.name):
        raise errors.bad_request(
            f"the name of the object ({metadata.get('name')}) does not match the name on the URL ({call.info.name})"
        )
    _check_fields(call, applied, mode=mode)
    node = schema.schema_for(rt)
    options: dict[str, Any] = {
        "schema": node,
        "has_status": rt.has_status,
        "manager": manager,
        "force": force_text == "true",
        "api_version": rt.api_version,
        "now": call.now,
    }
    try:
        await call.objects.get_kv(rt, namespace=call.info.namespace, name=call.info.name)
    except errors.StatusError as exc:
        if exc.code != 404:
            raise
        created = server_side_apply.apply(
            None, {**applied, "metadata": {**metadata, "name": call.info.name}}, **options
        )
        result = await call.objects.create(
            rt, created, namespace=call.info.namespace, dry_run=call.dry_run, user=call.user
        )
        return json_response(result, status=201, warnings=call.warnings)

    def applying(current: dict[str, Any]) -> dict[str, Any]:
        return server_side_apply.apply(current, applied, **options)

    updated = await call.objects.update(
        rt,
        namespace=call.info.namespace,
        name=call.info.name,
        transform=applying,
        dry_run=call.dry_run,
        user=call.user,
    )
    return json_response(updated, warnings=call.warnings)


# ---------------------------------------------------------------- delete
def delete_options(call: Call, body: dict[str, Any] | None) -> DeleteOptions:
    """DeleteOptions from a body (or an Eviction's ``deleteOptions``) and the query, checked as upstream."""
    options = dict(body or {})
    query = call.query
    if "gracePeriodSeconds" in query:
        options["gracePeriodSeconds"] = query["gracePeriodSeconds"]
    if "propagationPolicy" in query:
        options["propagationPolicy"] = query["propagationPolicy"]
    if "orphanDependents" in query and "propagationPolicy" not in options:
        options["orphanDependents"] = query["orphanDependents"].lower() == "true"
    policy = options.get("propagationPolicy") or ""
    if options.get("orphanDependents") is not None:
        if policy:
            raise errors.StatusError(
                code=422,
                reason="Invalid",
                message="DeleteOptions.meta.k8s.io is invalid: propagationPolicy: Invalid value: "
                f'"{policy}": orphanDependents and deletionPropagation cannot be both set',
            )
        policy = "Orphan" if options["orphanDependents"] else "Background"
    if policy not in ("", "Orphan", "Background", "Foreground"):
        raise errors.StatusError(
            code=422,
            reason="Invalid",
            message=f'DeleteOptions.meta.k8s.io is invalid: propagationPolicy: Unsupported value: "{policy}": '
            'supported values: "Foreground", "Background", "Orphan", "nil"',
        )
    grace = options.get("gracePeriodSeconds")
    if grace is not None:
        try:
            grace = int(grace)
        except (TypeError, ValueError) as exc:
            raise errors.bad_request(
                f'gracePeriodSeconds: Invalid value: "{grace}": must be an integer'
            ) from exc
    preconditions = options.get("preconditions") or {}
    dry_run = call.dry_run or bool(options.get("dryRun"))
    return DeleteOptions(
        propagation_policy=policy,
        grace_period_seconds=grace,
        precondition_uid=str(preconditions.get("uid") or ""),
        precondition_resource_version=str(preconditions.get("resourceVersion") or ""),
        dry_run=dry_run,
    )


async def _delete_body(call: Call) -> dict[str, Any] | None:
    raw = await call.raw_body()
    if not raw.strip():
        return None
    return require_object(decode_body(raw, content_type=call.request.headers.get("Content-Type", "")))


async def delete(call: Call) -> web.Response:
    rt = call.rt
    if call.info.subresource:
        raise errors.method_not_supported(rt, "delete")
    options = delete_options(call, await _delete_body(call))
    outcome = await call.objects.delete(
        rt, namespace=call.info.namespace, name=call.info.name, options=options, user=call.user
    )
    if outcome.return_object or not outcome.deleted:
        return json_response(outcome.obj)
    metadata = outcome.obj["metadata"]
    details: dict[str, Any] = {"name": metadata["name"], "kind": rt.plural, "uid": metadata.get("uid")}
    if rt.group:
        details["group"] = rt.group
    return json_response(
        {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}
    )


async def delete_collection(call: Call) -> web.Response:
    rt = call.rt
    options = delete_options(call, await _delete_body(call))
    predicate = compile_predicate(
        rt, label_selector=call.param("labelSelector"), field_selector=call.param("fieldSelector")
    )
    prefix = call.objects.prefix(rt, namespace=call.info.namespace)
    listing = await call.objects.store.list(prefix)
    deleted = []
    for kv in listing.items:
        obj = decoded(rt, kv)
        if not predicate.matches(obj):
            continue
        metadata = obj["metadata"]
        try:
            outcome = await call.objects.delete(
                rt,
                namespace=metadata.get("namespace", ""),
                name=metadata["name"],
                options=options,
                user=call.user,
            )
        except errors.StatusError as exc:
            if exc.code == 404:
                continue
            raise
        deleted.append(outcome.obj)
    return json_response(
        {
            "kind": f"{rt.kind}List",
            "apiVersion": rt.api_version,
            "metadata": {"resourceVersion": str(listing.revision)},
            "items": deleted,
        }
    )


# ---------------------------------------------------------------- scale
def _at_path(obj: dict[str, Any], path: str) -> Any:
    value: Any = obj
    for part in path.split(".") if path else ():
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _set_path(obj: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    target = obj
    for part in parents:
        target = target.setdefault(part, {})
    target[leaf] = value


def scale_of(rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    """autoscaling/v1 Scale for a workload or a custom resource with a scale subresource.

    Built-ins render ``spec.selector`` as a string: the apps/v1 workloads' LabelSelector as
    ``metav1.FormatLabelSelector`` does, a core/v1 ReplicationController's label map as
    ``labels.SelectorFromSet(...).String()`` (``k=v`` pairs sorted by key, ``""`` when
    empty); custom resources read the CRD's ``labelSelectorPath``, which already holds a
    string.
    """
    paths = rt.scale or ScaleSubresource()
    metadata = obj["metadata"]
    selector = ""
    raw_selector = (obj.get("spec") or {}).get("selector")
    if rt.schema is not None:
        raw = _at_path(obj, paths.label_selector_path) if paths.label_selector_path else None
        selector = raw if isinstance(raw, str) else ""
    elif isinstance(raw_selector, dict) and not rt.group:
        selector = ",".join(f"{key}={value}" for key, value in sorted(raw_selector.items()))
    elif isinstance(raw_selector, dict):
        selector = selectors.format_label_selector(raw_selector)
    replicas = _at_path(obj, paths.spec_replicas_path)
    current = _at_path(obj, paths.status_replicas_path)
    scale: dict[str, Any] = {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            key: metadata[key]
            for key in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if key in metadata
        },
        "spec": {"replicas": replicas if isinstance(replicas, int) else 0},
        "status": {"replicas": current if isinstance(current, int) else 0},
    }
    if selector:
        scale["status"]["selector"] = selector
    return scale


async def get_scale(call: Call) -> web.Response:
    obj = await call.objects.get(call.rt, namespace=call.info.namespace, name=call.info.name)
    return json_response(scale_of(call.rt, obj))


async def _update_scale(call: Call, change: Any) -> web.Response:
    rt = call.rt

    def apply(current: dict[str, Any]) -> dict[str, Any]:
        scale = change(scale_of(rt, current))
        if not isinstance(scale, dict):
            raise errors.bad_request("the body of the request must be a Scale object")
        replicas = (scale.get("spec") or {}).get("replicas", 0)
        if not isinstance(replicas, int) or isinstance(replicas, bool):
            raise errors.bad_request("spec.replicas: Invalid value: must be an integer")
        if replicas < 0:
            raise errors.StatusError(
                code=422,
                reason="Invalid",
                message=f'Scale.autoscaling "{call.info.name}" is invalid: spec.replicas: Invalid value: '
                f"{replicas}: must be greater than or equal to 0",
            )
        updated = copy.deepcopy(current)
        pinned = (scale.get("metadata") or {}).get("resourceVersion")
        if pinned:
            updated["metadata"]["resourceVersion"] = pinned
        _set_path(updated, (rt.scale or ScaleSubresource()).spec_replicas_path, replicas)
        return updated

    updated = await call.objects.update(
        rt,
        namespace=call.info.namespace,
        name=call.info.name,
        transform=_tracking_managers(call, apply, subresource="scale"),
        dry_run=call.dry_run,
        user=call.user,
    )
    return json_response(scale_of(rt, updated))


# ---------------------------------------------------------------- pods/binding
async def bind(call: Call) -> web.Response:
    """POST pods/<name>/binding (or the bindings collection): set spec.nodeName once."""
    binding = require_object(await call.body())
    target = (binding.get("target") or {}).get("name") or ""
    name = (
        call.info.name if call.info.subresource == "binding" else (binding.get("metadata") or {}).get("name")
    )
    pods = call.objects.registry.lookup(group="", version="v1", plural="pods")
    assert pods is not None
    if not target:
        raise errors.StatusError(
            code=422, reason="Invalid", message=f'Binding "{name}" is invalid: target.name: Required value'
        )

    def assign(current: dict[str, Any]) -> dict[str, Any]:
        spec = current.setdefault("spec", {})
        if current["metadata"].get("deletionTimestamp"):
            raise errors.conflict(pods, name, "pod is being deleted, cannot be assigned to a host")
        if spec.get("nodeName"):
            raise errors.conflict(pods, name, f'pod {name} is already assigned to node "{spec["nodeName"]}"')
        spec["nodeName"] = target
        uid = (binding.get("metadata") or {}).get("uid")
        if uid and uid != current["metadata"].get("uid"):
            raise errors.conflict(pods, name, "Precondition failed: UID in precondition does not match")
        return current

    try:
        await call.objects.update(
            pods,
            namespace=call.info.namespace,
            name=name,
            transform=assign,
            subresource="binding",
            dry_run=call.dry_run,
            user=call.user,
        )
    except StoreError as exc:
        raise errors.internal(str(exc)) from exc
    return json_response(
        {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}, status=201
    )
