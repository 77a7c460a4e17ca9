"""Structured logs: one JSON object per line with the fields log shippers read."""

from __future__ import annotations

import io
import logging

import orjson
import pytest

from addons.kit.logs import configure_logging


def test_records_are_json_lines_with_extras_and_errors() -> None:
    stream = io.StringIO()
    configure_logging("debug", component="demo", stream=stream)
    try:
        log = logging.getLogger("addons.demo")
        log.info("synced %d objects", 3, extra={"kind": "Service"})
        try:
            raise ValueError("bad")
        except ValueError:
            log.exception("failed")
        log.debug("details")
    finally:
        logging.basicConfig(force=True)
    first, second, third = (orjson.loads(line) for line in stream.getvalue().splitlines())
    assert first["msg"] == "synced 3 objects" and first["level"] == "info" and first["kind"] == "Service"
    assert first["logger"] == "addons.demo" and first["component"] == "demo"
    assert first["time"].endswith("Z") and "T" in first["time"]
    assert second["level"] == "error" and "ValueError: bad" in second["error"]
    assert third["level"] == "debug"


def test_unknown_levels_are_refused() -> None:
    with pytest.raises(ValueError, match="log level must be one of"):
        configure_logging("verbose")
