"""Regenerate control/resources/schemas/kubernetes-v<VERSION>-definitions.json.gz.

The vendored file is kubernetes-validate's ``_definitions.json`` for one Kubernetes
version, gzipped byte for byte (kubernetes-validate derives it from upstream's OpenAPI
spec). kubernetes-validate is not a dependency of kubelab: install it where you run this
script, then run it from the repository root:

    python -m venv /tmp/kv && /tmp/kv/bin/pip install kubernetes-validate
    /tmp/kv/bin/python scripts/vendor_openapi.py --version 1.33

The output is reproducible: the gzip header carries no timestamp and no file name.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from importlib import resources
from pathlib import Path

SCHEMAS = Path(__file__).resolve().parent.parent / "control" / "resources" / "schemas"


class VendorError(Exception):
    """The installed kubernetes-validate cannot provide the requested definitions."""


def read_definitions(version: str) -> bytes:
    """The ``_definitions.json`` bytes kubernetes-validate ships for ``version`` (``1.33``)."""
    try:
        package = resources.files("kubernetes_validate")
    except ModuleNotFoundError as exc:
        raise VendorError("kubernetes-validate is not installed in this Python environment") from exc
    source = package / "kubernetes-json-schema" / f"v{version}.0-local" / "_definitions.json"
    if not source.is_file():
        raise VendorError(f"kubernetes-validate has no definitions for Kubernetes {version} ({source})")
    data = source.read_bytes()
    document = json.loads(data)
    if not isinstance(document.get("$defs"), dict) or not document["$defs"]:
        raise VendorError(f"{source} holds no $defs")
    return data


def write_vendored(data: bytes, *, version: str, directory: Path = SCHEMAS) -> Path:
    target = directory / f"kubernetes-v{version}-definitions.json.gz"
    with (
        target.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as out,
    ):
        out.write(data)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", default="1.33", help="Kubernetes minor version, e.g. 1.33 (default)")
    args = parser.parse_args(argv)
    try:
        data = read_definitions(args.version)
    except VendorError as exc:
        print(f"vendor_openapi: {exc}", file=sys.stderr)
        return 1
    target = write_vendored(data, version=args.version)
    count = len(json.loads(data)["$defs"])
    print(f"vendor_openapi: wrote {count} definitions to {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
