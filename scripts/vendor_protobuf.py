"""Regenerate control/resources/schemas/kubernetes-v<VERSION>-protobuf.json.gz.

kubectl 1.32 and later send request bodies of built-in kinds in Kubernetes' protobuf
encoding; ``control/resources/protobuf.py`` decodes them with the descriptor table this
script writes. The table is built from upstream's own sources, read straight out of git
repositories of k8s.io/api and k8s.io/apimachinery at one release tag:

* the ``generated.proto`` files give every message, its field numbers, wire types and
  which fields are repeated or maps;
* the Go structs they are generated from (``types.go`` and friends) give what protobuf
  cannot: the JSON name of each field (and which embedded structs are inlined in JSON),
  ``omitempty``, and whether a scalar is a Go pointer (so ``replicas: 0`` survives while
  an empty value field is left out, exactly as Go's JSON encoding would render it);
* the vendored OpenAPI definitions (``kubernetes-v<VERSION>-definitions.json.gz``) give the
  group/version/kind of every top-level type, so the table covers precisely the kinds
  upstream serves.

Only messages reachable from those kinds are written. The script refuses to write a table
it cannot vouch for: a field without a Go counterpart, a type with its own JSON encoding
that the decoder does not know, a map other than from strings to strings, bytes or
messages, messages that refer to themselves, or inlined structs whose JSON names collide
stop it with an error naming the culprit.

    git clone --bare https://github.com/kubernetes/api /tmp/k8s-api.git
    git clone --bare https://github.com/kubernetes/apimachinery /tmp/k8s-apimachinery.git
    python scripts/vendor_protobuf.py --api /tmp/k8s-api.git \\
        --apimachinery /tmp/k8s-apimachinery.git --ref v0.33.0 --version 1.33

The output is reproducible: sorted keys, and a gzip header without timestamp or file name.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

SCHEMAS = Path(__file__).resolve().parent.parent / "control" / "resources" / "schemas"
FORMAT = 1

SCALARS = frozenset({"string", "bytes", "int32", "int64", "bool"})

# Types whose Go implementation marshals to JSON in its own way, by the name the decoder
# knows them under. Any other reachable type with a MarshalJSON method stops the script.
SPECIAL = {
    "k8s.io.apimachinery.pkg.apis.meta.v1.Time": "time",
    "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime": "microtime",
    "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1": "fieldsv1",
    "k8s.io.apimachinery.pkg.runtime.RawExtension": "rawextension",
    "k8s.io.apimachinery.pkg.util.intstr.IntOrString": "intorstring",
    "k8s.io.apimachinery.pkg.api.resource.Quantity": "quantity",
}
# go-to-protobuf wraps a named slice type (``type ExtraValue []string``) in a message with
# one repeated ``items`` field and marks it so; in JSON it is the bare array.
SLICE_WRAPPER_MARK = "+protobuf.nullable=true"
SLICE_WRAPPER = "list"

APIMACHINERY_PROTOS = (
    "pkg/apis/meta/v1/generated.proto",
    "pkg/runtime/generated.proto",
    "pkg/runtime/schema/generated.proto",
    "pkg/util/intstr/generated.proto",
    "pkg/api/resource/generated.proto",
)
_GO_SKIP = re.compile(r"(_test\.go|generated\.pb\.go|zz_generated[^/]*\.go|_generated\.go)$")


class VendorError(Exception):
    """The sources cannot give a table the decoder can trust; the message says why."""


@dataclass(frozen=True)
class GitTree:
    """One repository at one ref, read with ``git show`` (bare clones work)."""

    git_dir: Path
    ref: str

    def _git(self, *args: str) -> str:
        try:
            result = subprocess.run(
                ["git", "--git-dir", str(self.git_dir), *args],
                capture_output=True,
                text=True,
                check=True,
            )
        except subprocess.CalledProcessError as exc:
            raise VendorError(f"git {' '.join(args)} in {self.git_dir}: {exc.stderr.strip()}") from exc
        return result.stdout

    def commit(self) -> str:
        return self._git("rev-parse", f"{self.ref}^{{commit}}").strip()

    def files(self) -> list[str]:
        return self._git("ls-tree", "-r", "--name-only", self.ref).splitlines()

    def read(self, path: str) -> str:
        return self._git("show", f"{self.ref}:{path}")


# ---------------------------------------------------------------------------------------
# generated.proto


@dataclass
class ProtoField:
    number: int
    name: str
    type: str  # scalar or fully qualified message name (resolved after parsing)
    label: str  # "optional", "repeated" or "map"
    key_type: str = ""


@dataclass
class ProtoMessage:
    full_name: str
    go_dir: str  # the directory of the proto file: where its Go structs live
    comments: list[str]
    fields: list[ProtoField] = field(default_factory=list)


_PACKAGE = re.compile(r"^package\s+([\w.]+)\s*;")
_MESSAGE = re.compile(r"^message\s+(\w+)\s*\{\s*$")
_FIELD = re.compile(r"^(optional|repeated)\s+([\w.]+)\s+(\w+)\s*=\s*(\d+)\s*;$")
_MAP_FIELD = re.compile(r"^map\s*<\s*(\w+)\s*,\s*([\w.]+)\s*>\s+(\w+)\s*=\s*(\d+)\s*;$")
_IGNORED = re.compile(r"^(syntax|import|option)\b")


def parse_proto(text: str, *, go_dir: str, source: str) -> list[ProtoMessage]:
    """The messages of one ``generated.proto`` (go-to-protobuf's subset of proto2)."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    package = ""
    messages: list[ProtoMessage] = []
    current: ProtoMessage | None = None
    comments: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line.startswith("//"):
            comments.append(line[2:].strip())
            continue
        if not line:
            continue
        where = f"{source}:{number}"
        if current is None:
            if match := _PACKAGE.match(line):
                package = match.group(1)
            elif match := _MESSAGE.match(line):
                if not package:
                    raise VendorError(f"{where}: message before the package statement")
                current = ProtoMessage(f"{package}.{match.group(1)}", go_dir, comments)
            elif not _IGNORED.match(line):
                raise VendorError(f"{where}: unexpected line {line!r}")
        elif line == "}":
            messages.append(current)
            current = None
        elif match := _FIELD.match(line):
            label, type_, name, field_number = match.groups()
            current.fields.append(ProtoField(int(field_number), name, type_, label))
        elif match := _MAP_FIELD.match(line):
            key_type, value_type, name, field_number = match.groups()
            current.fields.append(ProtoField(int(field_number), name, value_type, "map", key_type))
        else:
            raise VendorError(f"{where}: unexpected line in message {current.full_name}: {line!r}")
        comments = []
    if current is not None:
        raise VendorError(f"{source}: message {current.full_name} is not closed")
    return messages


def resolve_types(messages: dict[str, ProtoMessage]) -> None:
    """Make every message-typed field name its message fully (``.a.b.C`` or ``C`` in the package)."""
    for message in messages.values():
        package = message.full_name.rsplit(".", 1)[0]
        for proto_field in message.fields:
            if proto_field.type in SCALARS:
                continue
            name = (
                proto_field.type[1:] if proto_field.type.startswith(".") else f"{package}.{proto_field.type}"
            )
            if name not in messages:
                raise VendorError(f"{message.full_name}.{proto_field.name}: unknown type {proto_field.type}")
            proto_field.type = name
        for proto_field in message.fields:
            if proto_field.label == "map" and (
                proto_field.key_type != "string" or proto_field.type in SCALARS - {"string", "bytes"}
            ):
                raise VendorError(
                    f"{message.full_name}.{proto_field.name}: the decoder reads maps from strings to "
                    f"strings, bytes or messages, not map<{proto_field.key_type}, {proto_field.type}>"
                )


# ---------------------------------------------------------------------------------------
# Go structs


@dataclass(frozen=True)
class GoField:
    go_name: str  # "" for an embedded field
    go_type: str
    json_name: str  # "" when an embedded struct is inlined
    omitempty: bool

    @property
    def pointer(self) -> bool:
        return self.go_type.startswith("*")


_STRUCT = re.compile(r"^type\s+(\w+)\s+struct\s*\{\s*$")
_GO_FIELD = re.compile(r"^\s+(?:([A-Za-z_]\w*)\s+)?([^\s`]+)\s+`([^`]*)`")
_TAG = re.compile(r'(\w+):"([^"]*)"')
_MARSHAL_JSON = re.compile(r"^func\s+\(\s*\w*\s*\*?(\w+)\s*\)\s+MarshalJSON\(", re.M)
_DEFINED = re.compile(r"^type\s+(\w+)\s+(\w+)\.(\w+)\s*$", re.M)
_IMPORT = re.compile(r'^\s*(\w+)\s+"k8s\.io/(?:api|apimachinery)/([\w/]+)"\s*$', re.M)


@dataclass
class GoPackage:
    structs: dict[str, dict[int, GoField]] = field(default_factory=dict)
    custom_json: set[str] = field(default_factory=set)
    # ``type MatchCondition v1.MatchCondition``: name -> (directory of v1, struct name)
    defined: dict[str, tuple[str, str]] = field(default_factory=dict)


def parse_go_package(sources: Iterable[tuple[str, str]]) -> GoPackage:
    """Structs with protobuf tags (by field number) and types with their own MarshalJSON."""
    package = GoPackage()
    for path, text in sources:
        package.custom_json.update(_MARSHAL_JSON.findall(text))
        imports = dict(_IMPORT.findall(text))
        for name, alias, type_name in _DEFINED.findall(text):
            if alias in imports:
                package.defined[name] = (imports[alias], type_name)
        struct: dict[int, GoField] | None = None
        for line in text.splitlines():
            if struct is None:
                if match := _STRUCT.match(line):
                    struct = package.structs.setdefault(match.group(1), {})
                continue
            if line.startswith("}"):
                struct = None
                continue
            match = _GO_FIELD.match(line)
            if match is None:
                continue
            go_name, go_type, tag_text = match.groups()
            tags = dict(_TAG.findall(tag_text))
            protobuf = tags.get("protobuf", "")
            if not protobuf or protobuf == "-":
                continue
            number = int(protobuf.split(",")[1])
            json_name, *options = tags.get("json", "").split(",")
            if not json_name:
                # Go's encoding/json inlines an embedded struct without a name and names any
                # other field after the Go field.
                json_name = go_name or ""
            if number in struct:
                raise VendorError(f"{path}: protobuf field {number} appears twice in one struct")
            struct[number] = GoField(go_name or "", go_type, json_name, "omitempty" in options)
    return package


class GoSources:
    """Go packages parsed on first use, keyed by directory; ``read`` lists a directory's
    ``(path, text)`` Go sources."""

    def __init__(self, read: Callable[[str], list[tuple[str, str]]]) -> None:
        self._read = read
        self._packages: dict[str, GoPackage] = {}

    def package(self, directory: str) -> GoPackage:
        if directory not in self._packages:
            self._packages[directory] = parse_go_package(self._read(directory))
        return self._packages[directory]

    def struct(self, directory: str, name: str) -> dict[int, GoField] | None:
        """The protobuf-tagged fields of struct ``name``, following ``type X other.Y``."""
        package = self.package(directory)
        if name in package.structs:
            return package.structs[name]
        if name in package.defined:
            return self.struct(*package.defined[name])
        return None


# ---------------------------------------------------------------------------------------
# The table


def proto_name_of_definition(definition: str) -> str:
    """``io.k8s.api.core.v1.ConfigMap`` -> ``k8s.io.api.core.v1.ConfigMap``."""
    return "k8s.io." + definition[len("io.k8s.") :] if definition.startswith("io.k8s.") else ""


def kinds_from_definitions(definitions: dict, messages: dict[str, ProtoMessage]) -> dict[str, dict[str, str]]:
    kinds: dict[str, dict[str, str]] = {}
    for definition, schema in definitions.items():
        message = proto_name_of_definition(definition)
        # WatchEvent carries a GVK too, but no TypeMeta: it is never a request body.
        if message not in messages or "kind" not in schema.get("properties", {}):
            continue
        for gvk in schema.get("x-kubernetes-group-version-kind", ()):
            api_version = f"{gvk['group']}/{gvk['version']}" if gvk["group"] else gvk["version"]
            kinds.setdefault(api_version, {})[gvk["kind"]] = message
    if not kinds:
        raise VendorError("no definition names a kind with a protobuf message")
    return kinds


def reachable(roots: Iterable[str], messages: dict[str, ProtoMessage]) -> list[str]:
    """Every message the kinds use, refusing cycles: the decoder recurses once per nesting
    level, so an acyclic table bounds how deep any body can nest."""
    done: set[str] = set()
    path: list[str] = []

    def visit(name: str) -> None:
        if name in done:
            return
        if name in path:
            cycle = " -> ".join([*path[path.index(name) :], name])
            raise VendorError(f"messages refer to themselves: {cycle}")
        path.append(name)
        for proto_field in messages[name].fields:
            if proto_field.type not in SCALARS:
                visit(proto_field.type)
        path.pop()
        done.add(name)

    for root in roots:
        visit(root)
    return sorted(done)


def field_flags(proto_field: ProtoField, go_field: GoField | None) -> str:
    """``r`` repeated, ``m`` map, ``p`` Go pointer, ``o`` omitempty (see the decoder)."""
    flags = {"repeated": "r", "map": "m"}.get(proto_field.label, "")
    if go_field is None:  # the fields of special and slice-wrapper messages
        return flags + "po"
    if go_field.pointer:
        flags += "p"
    if go_field.omitempty:
        flags += "o"
    return flags


def describe_message(message: ProtoMessage, go: GoSources) -> dict:
    short = message.full_name.rsplit(".", 1)[1]
    package = go.package(message.go_dir)
    special = SPECIAL.get(message.full_name)
    if special is None and SLICE_WRAPPER_MARK in message.comments:
        if [(f.number, f.name, f.label) for f in message.fields] != [(1, "items", "repeated")]:
            raise VendorError(f"{message.full_name}: a slice wrapper must have only `repeated items = 1`")
        special = SLICE_WRAPPER
    if special is None and short in package.custom_json:
        raise VendorError(f"{message.full_name} has its own MarshalJSON the decoder does not know")
    go_struct = None if special or not message.fields else go.struct(message.go_dir, short)
    if special is None and message.fields and go_struct is None:
        raise VendorError(f"{message.full_name}: no Go struct {short} with protobuf tags in {message.go_dir}")
    fields = []
    for proto_field in sorted(message.fields, key=lambda f: f.number):
        go_field = None
        json_name = proto_field.name
        if go_struct is not None:
            go_field = go_struct.get(proto_field.number)
            if go_field is None:
                raise VendorError(f"{message.full_name}.{proto_field.name}: no Go field {proto_field.number}")
            if go_field.json_name == "-":
                raise VendorError(f'{message.full_name}.{proto_field.name} is not in JSON (json:"-")')
            json_name = go_field.json_name
            if not json_name and proto_field.type in SCALARS:
                raise VendorError(f"{message.full_name}.{proto_field.name}: an inlined scalar")
        entry = [
            proto_field.number,
            proto_field.name,
            json_name,
            proto_field.type,
            field_flags(proto_field, go_field),
        ]
        fields.append(entry)
    described: dict = {"fields": fields}
    if special:
        described["special"] = special
    return described


def json_names(table: dict[str, dict], message: str) -> list[str]:
    """The JSON names a message's object holds, those of inlined structs included."""
    names: list[str] = []
    for _number, _name, json_name, type_name, _flags in table[message]["fields"]:
        names.extend([json_name] if json_name else json_names(table, type_name))
    return names


def check_inline_names(table: dict[str, dict]) -> None:
    """Inlined structs must not bring a JSON name their parent already has: the decoder
    merges them into one object."""
    for name in table:
        names = json_names(table, name)
        if clash := sorted({n for n in names if names.count(n) > 1}):
            raise VendorError(f"{name}: inlined fields collide on {clash}")


def build_table(*, api: GitTree, apimachinery: GitTree, definitions: dict, version: str) -> dict:
    messages: dict[str, ProtoMessage] = {}
    trees: dict[str, tuple[GitTree, list[str]]] = {}
    api_files = api.files()
    machinery_files = apimachinery.files()
    sources = [(api, api_files, p) for p in api_files if p.endswith("/generated.proto")]
    sources += [(apimachinery, machinery_files, p) for p in APIMACHINERY_PROTOS]
    for tree, files, path in sources:
        go_dir = path.rsplit("/", 1)[0]
        trees[go_dir] = (tree, files)
        for message in parse_proto(tree.read(path), go_dir=go_dir, source=path):
            messages[message.full_name] = message
    resolve_types(messages)
    kinds = kinds_from_definitions(definitions, messages)
    names = reachable((m for by_kind in kinds.values() for m in by_kind.values()), messages)

    def read_go(directory: str) -> list[tuple[str, str]]:
        if directory not in trees:
            raise VendorError(f"no Go package {directory} in the repositories")
        tree, files = trees[directory]
        prefix = f"{directory}/"
        return [
            (path, tree.read(path))
            for path in files
            if path.startswith(prefix)
            and "/" not in path[len(prefix) :]
            and path.endswith(".go")
            and not _GO_SKIP.search(path)
        ]

    go = GoSources(read_go)
    table = {name: describe_message(messages[name], go) for name in names}
    check_inline_names(table)
    return {
        "format": FORMAT,
        "kubernetes": version,
        "sources": {
            "k8s.io/api": {"ref": api.ref, "commit": api.commit()},
            "k8s.io/apimachinery": {"ref": apimachinery.ref, "commit": apimachinery.commit()},
        },
        "kinds": kinds,
        "messages": table,
    }


def write_table(table: dict, *, version: str, directory: Path = SCHEMAS) -> Path:
    target = directory / f"kubernetes-v{version}-protobuf.json.gz"
    data = json.dumps(table, sort_keys=True, separators=(",", ":")).encode()
    with (
        target.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as out,
    ):
        out.write(data)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api", type=Path, required=True, help="git repository of k8s.io/api")
    parser.add_argument(
        "--apimachinery", type=Path, required=True, help="git repository of k8s.io/apimachinery"
    )
    parser.add_argument("--ref", default="v0.33.0", help="tag to read in both repositories (default v0.33.0)")
    parser.add_argument("--version", default="1.33", help="Kubernetes minor version (default 1.33)")
    args = parser.parse_args(argv)
    definitions_path = SCHEMAS / f"kubernetes-v{args.version}-definitions.json.gz"
    try:
        with gzip.open(definitions_path) as handle:
            definitions = json.load(handle)["$defs"]
        table = build_table(
            api=GitTree(args.api, args.ref),
            apimachinery=GitTree(args.apimachinery, args.ref),
            definitions=definitions,
            version=args.version,
        )
    except (VendorError, OSError) as exc:
        print(f"vendor_protobuf: {exc}", file=sys.stderr)
        return 1
    target = write_table(table, version=args.version)
    kinds = sum(len(by_kind) for by_kind in table["kinds"].values())
    print(f"vendor_protobuf: wrote {len(table['messages'])} messages for {kinds} kinds to {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
