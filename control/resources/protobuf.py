"""Decode request bodies sent in Kubernetes' protobuf encoding into JSON-shaped objects.

kubectl 1.32 and later (client-go's typed clients) send the objects they create, update
and delete (``DeleteOptions``) as ``application/vnd.kubernetes.protobuf``: the magic bytes
``k8s\\x00``, then a ``runtime.Unknown`` envelope naming the apiVersion and kind and holding
the object's own protobuf message. The API server works on JSON-shaped dicts, so this
module turns such a body into exactly the dict the same client would have sent as JSON:
what Go's ``encoding/json`` makes of the decoded struct. That needs more than protobuf
knows, and the vendored descriptor table (``schemas/kubernetes-v1.33-protobuf.json.gz``,
written by ``scripts/vendor_protobuf.py`` from upstream's ``generated.proto`` files and
Go structs) carries it per field: the JSON name (``uID`` on the wire is ``uid`` in JSON;
inlined structs such as ``Volume.volumeSource`` merge into their parent), whether the Go
field is a pointer (``replicas: 0`` is kept) and whether it is ``omitempty`` (an empty
value field is left out, an absent non-omitempty one becomes ``null`` or its zero value).
A handful of types marshal to JSON in their own way and are converted here: ``Time``
(RFC 3339 seconds), ``MicroTime`` (microseconds), ``IntOrString``, ``Quantity``,
``FieldsV1`` and ``RawExtension`` (embedded JSON), and slice wrappers such as
``ExtraValue`` (bare arrays).

Like upstream, unknown field numbers are skipped; a known field with the wrong wire type,
a truncated or overlong varint, a length running past its message, a bad magic prefix or
a kind without a message is a :class:`ProtobufDecodeError` (a ``ValueError``) whose
message says what and where (byte offsets are into the body). Nothing else escapes.

The decoder is written for the request path: the table is compiled once, on first use,
into per-message dicts keyed by the full wire tag (field number and wire type), so the
inner loop does one dict lookup per field and never resolves a name.
"""

from __future__ import annotations

import gzip
import threading
from base64 import b64encode
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import orjson

MAGIC = b"k8s\x00"
MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
VENDORED_TABLE = Path(__file__).with_name("schemas") / "kubernetes-v1.33-protobuf.json.gz"
TABLE_FORMAT = 1


class ProtobufDecodeError(ValueError):
    """The body is not a protobuf-encoded Kubernetes object this server can read."""


# Wire types.
_VARINT = 0
_I64 = 1
_LEN = 2
_I32 = 5

# Value kinds of a field (a map field's kind is _MAP; its values have their own kind).
_STRING = 0
_BYTES = 1  # base64 text in JSON
_RAW = 2  # kept as bytes: the payload of FieldsV1 and RawExtension
_INT32 = 3
_INT64 = 4
_BOOL = 5
_MESSAGE = 6
_MAP = 7

_SCALAR_KINDS = {"string": _STRING, "bytes": _BYTES, "int32": _INT32, "int64": _INT64, "bool": _BOOL}
_VARINT_KINDS = frozenset({_INT32, _INT64, _BOOL})
_ZERO = {_STRING: "", _BYTES: None, _INT32: 0, _INT64: 0, _BOOL: False}  # bytes: a nil slice

_MASK64 = (1 << 64) - 1
_GO_ZERO_TIME_SECONDS = -62135596800  # time.Time{}.Unix(): renders as null
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# What a decoded value does to the object (by_tag entries carry one).
_SET = 0
_APPEND = 1  # a repeated field
_MERGE = 2  # an inlined struct: its keys join the parent's
_SET_NONZERO = 3  # a Go value scalar with omitempty: a zero value is left out
_PACKED = 8  # kind of a repeated varint field's packed form (its element kind is the target)

# How an absent field is filled in after a message is decoded.
_FILL_VALUE = 0  # an immutable constant (None, "", 0, False)
_FILL_MESSAGE = 1  # a Go value struct: the JSON of its zero value
_FILL_INLINE = 2  # an inlined Go value struct: merge the JSON of its zero value


class _Field(NamedTuple):
    """One field as the inner loop unpacks it (a tuple: one unpack, no attribute lookups)."""

    kind: int
    json: str  # "" for an inlined struct
    target: Any  # the _Message of a message field or of a map's values; a packed run's element kind
    mode: int  # _SET, _APPEND, _MERGE or _SET_NONZERO
    label: str  # "ConfigMap.data": for error messages


class _Message:
    __slots__ = ("by_number", "by_tag", "fills", "name", "special")

    def __init__(self, name: str) -> None:
        self.name = name
        self.by_tag: dict[int, _Field] = {}  # by the full wire tag: number << 3 | wire type
        self.by_number: dict[int, _Field] = {}
        self.fills: tuple[tuple[str, int, Any], ...] = ()
        self.special: Callable[[dict[str, Any]], Any] | None = None


class _Table:
    """The compiled descriptor table: kinds by apiVersion, and every message."""

    def __init__(self, raw: dict[str, Any]) -> None:
        if raw.get("format") != TABLE_FORMAT:
            raise ValueError(
                f"protobuf descriptor table has format {raw.get('format')!r}, not {TABLE_FORMAT}"
            )
        described: dict[str, dict[str, Any]] = raw["messages"]
        self.messages = {name: _Message(name) for name in described}
        for name, description in described.items():
            self._compile(self.messages[name], description)
        self.kinds: dict[str, dict[str, _Message]] = {
            api_version: {kind: self.messages[message] for kind, message in by_kind.items()}
            for api_version, by_kind in raw["kinds"].items()
        }

    def _compile(self, message: _Message, description: dict[str, Any]) -> None:
        special = description.get("special")
        if special is not None:
            message.special = _SPECIALS[special]
        short = message.name.rsplit(".", 1)[1]
        fills: list[tuple[str, int, Any]] = []
        for number, proto_name, json_name, type_name, flags in description["fields"]:
            target = self.messages.get(type_name)
            scalar = _SCALAR_KINDS.get(type_name, _MESSAGE)
            if scalar == _BYTES and special in ("fieldsv1", "rawextension"):
                scalar = _RAW
            is_map = "m" in flags
            repeated = "r" in flags
            pointer = "p" in flags
            omitempty = "o" in flags
            label = f"{short}.{json_name or proto_name}"
            if repeated:
                mode = _APPEND
            elif not json_name:
                mode = _MERGE
            elif scalar != _MESSAGE and not (is_map or pointer) and omitempty:
                mode = _SET_NONZERO
            else:
                mode = _SET
            if is_map:
                # a map's entries are keyed by their own value kind: string, bytes or message
                field = _Field(_MAP, json_name, (scalar, target), mode, label)
            else:
                field = _Field(scalar, json_name, target, mode, label)
            wire = _VARINT if field.kind in _VARINT_KINDS else _LEN
            message.by_number[number] = field
            message.by_tag[number << 3 | wire] = field
            if repeated and wire == _VARINT:
                message.by_tag[number << 3 | _LEN] = _Field(_PACKED, json_name, scalar, mode, label)
            if is_map or repeated or pointer:
                if not omitempty:
                    fills.append((json_name, _FILL_VALUE, None))
            elif mode == _MERGE:
                fills.append((json_name, _FILL_INLINE, field))
            elif scalar == _MESSAGE:
                fills.append((json_name, _FILL_MESSAGE, target))
            elif not omitempty:
                fills.append((json_name, _FILL_VALUE, _ZERO[scalar]))
        message.fills = tuple(fills)


_table: _Table | None = None
_table_lock = threading.Lock()


def _loaded_table() -> _Table:
    global _table
    if _table is None:
        with _table_lock:
            if _table is None:
                _table = _Table(orjson.loads(gzip.decompress(VENDORED_TABLE.read_bytes())))
    return _table


def decode_object(body: bytes) -> dict[str, Any]:
    """The JSON-shaped object (with ``apiVersion`` and ``kind``) a protobuf body encodes."""
    if not isinstance(body, bytes):
        body = bytes(body)
    if not body.startswith(MAGIC):
        raise ProtobufDecodeError(
            f"protobuf body does not start with the magic prefix {MAGIC!r} (got {body[:4]!r})"
        )
    if len(body) == len(MAGIC):
        raise ProtobufDecodeError("protobuf body is empty after the magic prefix")
    api_version, kind, start, stop = _read_unknown(body, len(MAGIC), len(body))
    if not kind or not api_version:
        raise ProtobufDecodeError(
            f"protobuf body does not name its {'kind' if not kind else 'apiVersion'} (runtime.Unknown typeMeta)"
        )
    message = _loaded_table().kinds.get(api_version, {}).get(kind)
    if message is None:
        raise ProtobufDecodeError(
            f'no protobuf message is known for apiVersion "{api_version}", kind "{kind}"'
        )
    # The generator refuses cyclic tables, so nesting (and recursion) is bounded by the schema.
    decoded = _decode(message, body, start, stop)
    obj: dict[str, Any] = {"apiVersion": api_version, "kind": kind}
    obj.update(decoded)
    return obj


def _read_unknown(body: bytes, pos: int, end: int) -> tuple[str, str, int, int]:
    """runtime.Unknown: typeMeta = 1 {apiVersion = 1, kind = 2}, raw = 2; 3 and 4 are ignored
    (upstream's serializer ignores contentEncoding and contentType too)."""
    api_version = kind = ""
    raw = (end, end)
    while pos < end:
        tag, pos = _varint(body, pos, end, "runtime.Unknown")
        number, wire = tag >> 3, tag & 7
        if number in (1, 2, 3, 4):
            if wire != _LEN:
                raise ProtobufDecodeError(
                    f"runtime.Unknown field {number} has wire type {wire}, expected {_LEN} (at byte {pos})"
                )
            start, pos = _length(body, pos, end, f"runtime.Unknown field {number}")
            if number == 1:
                api_version, kind = _read_type_meta(body, start, pos)
            elif number == 2:
                raw = (start, pos)
        else:
            pos = _skip(body, pos, end, tag, "runtime.Unknown")
    return api_version, kind, raw[0], raw[1]


def _read_type_meta(body: bytes, pos: int, end: int) -> tuple[str, str]:
    values = {1: "", 2: ""}
    while pos < end:
        tag, pos = _varint(body, pos, end, "runtime.TypeMeta")
        number = tag >> 3
        if number in values and tag & 7 == _LEN:
            start, pos = _length(body, pos, end, "runtime.TypeMeta")
            values[number] = body[start:pos].decode("utf-8", "replace")
        elif number in values:
            raise ProtobufDecodeError(
                f"runtime.TypeMeta field {number} has wire type {tag & 7}, expected {_LEN} (at byte {pos})"
            )
        else:
            pos = _skip(body, pos, end, tag, "runtime.TypeMeta")
    return values[1], values[2]


def _decode(message: _Message, buf: bytes, pos: int, end: int) -> Any:
    """Decode ``buf[pos:end]`` as ``message``; specials return their JSON value, others a dict."""
    out: dict[str, Any] = {}
    by_tag = message.by_tag
    merged: set[_Field] | None = None
    while pos < end:
        tag = buf[pos]
        pos += 1
        if tag >= 0x80:
            tag, pos = _varint_rest(buf, pos, end, tag, message.name)
        field = by_tag.get(tag)
        if field is None:
            pos = _skip_unknown(message, buf, pos, end, tag)
            continue
        kind, json_name, target, mode, label = field
        if tag & 7 == _LEN:
            if pos >= end:
                raise _truncated(label, pos)
            size = buf[pos]
            pos += 1
            if size >= 0x80:
                size, pos = _varint_rest(buf, pos, end, size, label)
            stop = pos + size
            if stop > end:
                raise _truncated(label, pos)
            if kind == _STRING:
                value: Any = buf[pos:stop].decode("utf-8", "replace")
            elif kind == _MESSAGE:
                value = _decode(target, buf, pos, stop)
            elif kind == _MAP:
                key, value = _map_entry(target, label, buf, pos, stop)
                entries = out.get(json_name)
                if entries is None:
                    out[json_name] = entries = {}
                entries[key] = value
                pos = stop
                continue
            elif kind == _BYTES:
                value = b64encode(buf[pos:stop]).decode("ascii")
            elif kind == _RAW:
                value = buf[pos:stop]
            else:  # _PACKED: a run of varints
                values = out.get(json_name)
                if values is None:
                    out[json_name] = values = []
                while pos < stop:
                    number, pos = _varint(buf, pos, stop, label)
                    values.append(_scalar(target, number))
                continue
            pos = stop
        else:
            if pos >= end:
                raise ProtobufDecodeError(f"{label}: truncated varint at byte {pos}")
            value = buf[pos]
            pos += 1
            if value >= 0x80:
                value, pos = _varint_rest(buf, pos, end, value, label)
            if kind == _BOOL:
                value = value != 0
            elif value >> 31:  # below 2**31 int32 and int64 read the same
                value = _scalar(kind, value)
        if mode == _SET:
            out[json_name] = value
        elif mode == _APPEND:
            values = out.get(json_name)
            if values is None:
                out[json_name] = [value]
            else:
                values.append(value)
        elif mode == _SET_NONZERO:
            if value:
                out[json_name] = value
            else:
                out.pop(json_name, None)
        else:
            if merged is None:
                merged = set()
            merged.add(field)
            out.update(value)
    for json_name, how, what in message.fills:
        if how == _FILL_VALUE:
            if json_name not in out:
                out[json_name] = what
        elif how == _FILL_MESSAGE:
            if json_name not in out:
                out[json_name] = _decode(what, buf, 0, 0)
        elif merged is None or what not in merged:
            for key, value in _decode(what.target, buf, 0, 0).items():
                out.setdefault(key, value)
    if message.special is not None:
        return message.special(out)
    return out


def _scalar(kind: int, value: int) -> Any:
    """A varint as the field's Go type reads it: int64 and int32 are two's complement."""
    if kind == _INT64:
        return value - (1 << 64) if value >> 63 else value
    if kind == _INT32:
        value &= 0xFFFFFFFF
        return value - (1 << 32) if value >> 31 else value
    return value != 0


_KEY_TAG = 1 << 3 | _LEN
_VALUE_TAG = 2 << 3 | _LEN


def _map_entry(
    values: tuple[int, _Message | None], label: str, buf: bytes, pos: int, end: int
) -> tuple[str, Any]:
    """One map entry: key = 1 (a string), value = 2 (a string, bytes or a message: the
    generator admits nothing else). A missing part is the Go zero value."""
    value_kind, message = values
    key = ""
    value: Any = None
    while pos < end:
        tag, pos = _varint(buf, pos, end, label)
        if tag == _KEY_TAG:
            start, pos = _length(buf, pos, end, label)
            key = buf[start:pos].decode("utf-8", "replace")
        elif tag == _VALUE_TAG:
            start, pos = _length(buf, pos, end, label)
            if value_kind == _STRING:
                value = buf[start:pos].decode("utf-8", "replace")
            elif value_kind == _BYTES:
                value = b64encode(buf[start:pos]).decode("ascii")
            else:
                value = _decode(message, buf, start, pos)  # type: ignore[arg-type]
        elif tag >> 3 in (1, 2):
            raise ProtobufDecodeError(
                f"{label}: map entry field {tag >> 3} has wire type {tag & 7}, expected {_LEN} (at byte {pos})"
            )
        else:
            pos = _skip(buf, pos, end, tag, label)
    if value is None:
        value = _decode(message, buf, 0, 0) if value_kind == _MESSAGE else ""  # type: ignore[arg-type]
    return key, value


# ---------------------------------------------------------------------------------------
# Wire primitives


def _varint(buf: bytes, pos: int, end: int, where: str) -> tuple[int, int]:
    if pos >= end:
        raise ProtobufDecodeError(f"{where}: truncated varint at byte {pos}")
    first = buf[pos]
    if first < 0x80:
        return first, pos + 1
    return _varint_rest(buf, pos + 1, end, first, where)


def _varint_rest(buf: bytes, pos: int, end: int, first: int, where: str) -> tuple[int, int]:
    """Continue a varint whose first byte (``first``, with its high bit set) is already read."""
    start = pos - 1
    result = first & 0x7F
    shift = 7
    while True:
        if pos >= end:
            raise ProtobufDecodeError(f"{where}: truncated varint at byte {start}")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result & _MASK64, pos
        shift += 7
        if shift >= 70:
            raise ProtobufDecodeError(f"{where}: varint longer than 10 bytes at byte {start}")


def _length(buf: bytes, pos: int, end: int, where: str) -> tuple[int, int]:
    """Read a length prefix; return where the payload starts and where it stops."""
    size, start = _varint(buf, pos, end, where)
    stop = start + size
    if stop > end:
        raise ProtobufDecodeError(
            f"{where}: length {size} at byte {pos} runs past the end of its message (byte {end})"
        )
    return start, stop


def _truncated(label: str, pos: int) -> ProtobufDecodeError:
    return ProtobufDecodeError(f"{label}: truncated length-delimited value at byte {pos}")


def _skip_unknown(message: _Message, buf: bytes, pos: int, end: int, tag: int) -> int:
    field = message.by_number.get(tag >> 3)
    if field is not None:
        expected = _VARINT if field.kind in _VARINT_KINDS else _LEN
        raise ProtobufDecodeError(
            f"{field.label} (field {tag >> 3}) has wire type {tag & 7}, expected {expected} (at byte {pos})"
        )
    return _skip(buf, pos, end, tag, message.name.rsplit(".", 1)[1])


def _skip(buf: bytes, pos: int, end: int, tag: int, where: str) -> int:
    """Step over a field this table does not know, as upstream's decoder does."""
    number, wire = tag >> 3, tag & 7
    if number == 0:
        raise ProtobufDecodeError(f"{where}: illegal field number 0 at byte {pos}")
    if wire == _VARINT:
        return _varint(buf, pos, end, where)[1]
    if wire == _LEN:
        return _length(buf, pos, end, where)[1]
    if wire in (_I64, _I32):
        stop = pos + (8 if wire == _I64 else 4)
        if stop > end:
            raise ProtobufDecodeError(f"{where}: truncated fixed-width field {number} at byte {pos}")
        return stop
    raise ProtobufDecodeError(f"{where}: field {number} has unsupported wire type {wire} at byte {pos}")


# ---------------------------------------------------------------------------------------
# Types with their own JSON form. Each gets the message decoded with proto field names.


def _time(fields: dict[str, Any]) -> str | None:
    """metav1.Time: whole seconds (upstream drops nanos), RFC 3339 in UTC; zero is null."""
    if not fields:
        return None
    seconds = fields.get("seconds", 0)
    if seconds == _GO_ZERO_TIME_SECONDS:
        return None
    moment = _moment(seconds, 0)
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T"
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}Z"
    )


def _micro_time(fields: dict[str, Any]) -> str | None:
    """metav1.MicroTime: nanos truncated to microseconds, six fraction digits, UTC."""
    if not fields:
        return None
    seconds = fields.get("seconds", 0)
    nanos = fields.get("nanos", 0)
    micros = int(nanos / 1000)  # toward zero, as Go's Duration.Truncate
    if seconds == _GO_ZERO_TIME_SECONDS and micros == 0:
        return None
    moment = _moment(seconds, micros)
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T"
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}.{moment.microsecond:06d}Z"
    )


def _moment(seconds: int, micros: int) -> datetime:
    try:
        return _EPOCH + timedelta(seconds=seconds, microseconds=micros)
    except OverflowError as exc:
        raise ProtobufDecodeError(f"timestamp {seconds}s is outside the years 1 to 9999") from exc


def _int_or_string(fields: dict[str, Any]) -> int | str:
    kind = fields.get("type", 0)
    if kind == 0:
        return fields.get("intVal", 0)
    if kind == 1:
        return fields.get("strVal", "")
    raise ProtobufDecodeError(f"IntOrString has type {kind}: only 0 (int) and 1 (string) exist")


def _quantity(fields: dict[str, Any]) -> str:
    return fields.get("string", "0")


def _fields_v1(fields: dict[str, Any]) -> Any:
    return _embedded_json(fields.get("Raw"), "FieldsV1")


def _raw_extension(fields: dict[str, Any]) -> Any:
    return _embedded_json(fields.get("raw"), "RawExtension")


def _embedded_json(raw: bytes | None, what: str) -> Any:
    """The JSON document FieldsV1 and RawExtension carry; empty is null."""
    if not raw:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ProtobufDecodeError(f"{what} does not hold JSON: {exc}") from exc


def _slice(fields: dict[str, Any]) -> list[Any] | None:
    """A named slice type (ExtraValue): the bare array, null when empty."""
    return fields.get("items")


_SPECIALS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "time": _time,
    "microtime": _micro_time,
    "intorstring": _int_or_string,
    "quantity": _quantity,
    "fieldsv1": _fields_v1,
    "rawextension": _raw_extension,
    "list": _slice,
}
