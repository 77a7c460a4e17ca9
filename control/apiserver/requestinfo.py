"""Turn a request path and method into what is being asked, as upstream's RequestInfoFactory.

``/apis/apps/v1/namespaces/web/deployments/front/scale`` with PATCH is the ``patch`` verb
on ``deployments`` (group apps, version v1) named ``front`` in namespace ``web``,
subresource ``scale``. Everything after routing (authorization, metrics, handlers) works
on this one value rather than re-reading the path.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

_NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})

_METHOD_VERBS = {
    "POST": "create",
    "GET": "get",
    "HEAD": "get",
    "PUT": "update",
    "PATCH": "patch",
    "DELETE": "delete",
}


@dataclass(frozen=True, kw_only=True, slots=True)
class RequestInfo:
    is_resource_request: bool
    path: str
    verb: str  # get list watch create update patch delete deletecollection, or the method for non-resource
    api_prefix: str = ""  # "api" or "apis"
    group: str = ""
    version: str = ""
    namespace: str = ""
    resource: str = ""
    name: str = ""
    subresource: str = ""
    # Path segments after the subresource (pods/proxy/<path>, nodes/proxy/<path>).
    parts: tuple[str, ...] = ()


def parse_request(*, method: str, path: str, query: dict[str, str]) -> RequestInfo:
    """Parse; paths that are not resource requests come back with is_resource_request False."""
    stripped = path.strip("/")
    segments = stripped.split("/") if stripped else []
    if "%" in stripped:
        segments = [unquote(segment) for segment in segments]
    if not segments or segments[0] not in ("api", "apis"):
        return _non_resource(method=method, path=path)
    prefix = segments[0]
    rest = segments[1:]
    group = ""
    if prefix == "apis":
        if len(rest) < 2:
            return _non_resource(method=method, path=path)
        group, rest = rest[0], rest[1:]
    if len(rest) < 2:
        return _non_resource(method=method, path=path)
    version, rest = rest[0], rest[1:]

    namespace = ""
    if rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        # namespaces/<ns>/<resource>...; but namespaces/<name>[/status|/finalize] is the
        # namespace object itself.
        if len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
        else:
            namespace = ""
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    parts = tuple(rest[3:])

    method = method.upper()
    verb = _METHOD_VERBS.get(method) or method.lower()
    if method in ("GET", "HEAD"):
        if _is_true(query.get("watch", "")):
            verb = "watch"
        elif not name:
            verb = "list"
    elif method == "DELETE" and not name:
        verb = "deletecollection"
    return RequestInfo(
        is_resource_request=True,
        path=path,
        verb=verb,
        api_prefix=prefix,
        group=group,
        version=version,
        namespace=namespace,
        resource=resource,
        name=name,
        subresource=subresource,
        parts=parts,
    )


def _non_resource(*, method: str, path: str) -> RequestInfo:
    return RequestInfo(is_resource_request=False, path=path, verb=method.lower())


def _is_true(value: str) -> bool:
    return value.lower() in ("true", "1")
