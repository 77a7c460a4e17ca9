"""Content negotiation: what the client sent, and what shape it wants back.

Requests: JSON or YAML bodies (kubectl sends JSON; people curl YAML), or built-in objects
in Kubernetes' protobuf encoding (kubectl 1.32+ typed clients: ``kubectl create configmap``),
decoded into the same JSON-shaped dicts by ``control.resources.protobuf``; bounded in size.
Answers: always JSON (even to clients that prefer protobuf, as DESIGN.md says), in one of
three shapes chosen by the Accept header's ``as=`` parameter: the object itself, a
meta.k8s.io Table (``kubectl get``), or PartialObjectMetadata (metadata-only informers).
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass
from typing import Any

import orjson
import yaml

from control.apiserver import errors
from control.resources import protobuf

MAX_BODY_BYTES = 3 * 1024 * 1024  # upstream's default max request body


class Shape(enum.Enum):
    OBJECT = "Object"
    TABLE = "Table"
    PARTIAL_METADATA = "PartialObjectMetadata"


@dataclass(frozen=True, slots=True)
class Wanted:
    shape: Shape
    table_version: str = "v1"  # meta.k8s.io version of Table / PartialObjectMetadata


@functools.lru_cache(maxsize=256)
def wanted_shape(accept: str) -> Wanted:
    """The first Accept entry we can serve, in the client's order (as upstream). Cached: clients
    send the same few Accept headers on every request."""
    if not accept:
        return Wanted(Shape.OBJECT)
    for entry in accept.split(","):
        media, *raw_params = (part.strip() for part in entry.split(";"))
        params = dict(p.split("=", 1) for p in raw_params if "=" in p)
        as_ = params.get("as", "")
        if as_ in ("Table", "PartialObjectMetadata", "PartialObjectMetadataList"):
            if params.get("g") != "meta.k8s.io" or params.get("v") not in ("v1", "v1beta1"):
                continue
            if media not in ("application/json", "*/*", "application/*"):
                continue
            shape = Shape.TABLE if as_ == "Table" else Shape.PARTIAL_METADATA
            return Wanted(shape, params["v"])
        if as_:
            continue
        if media in (
            "application/json",
            "application/yaml",
            "*/*",
            "application/*",
            "application/vnd.kubernetes.protobuf",
            "application/json;stream=watch",
        ) or media.startswith("application/vnd.kubernetes.protobuf"):
            return Wanted(Shape.OBJECT)
    return Wanted(Shape.OBJECT)


def media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def decode_body(body: bytes, *, content_type: str) -> Any:
    """Parse a JSON, YAML or protobuf request body; 400 with the parser's message when malformed."""
    media = media_type(content_type) or "application/json"
    if media == protobuf.MEDIA_TYPE:
        try:
            return protobuf.decode_object(body)
        except protobuf.ProtobufDecodeError as exc:
            raise errors.bad_request(f"protobuf decode error: {exc}") from exc
    if media in ("application/json", "text/json", "*/*") or media.endswith("+json"):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise errors.bad_request(f"json parse error: {exc}") from exc
    if media in ("application/yaml", "application/x-yaml", "text/yaml") or media.endswith("+yaml"):
        try:
            return yaml.safe_load(body)
        except yaml.YAMLError as exc:
            raise errors.bad_request(f"yaml parse error: {exc}") from exc
    raise errors.unsupported_media_type(content_type)


def require_object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise errors.bad_request(
            f"the body of the request must be a JSON object, not {type(value).__name__.replace('dict', 'object')}"
        )
    return value
