"""Structured logs: one JSON object per line on stderr, as every kubelab component writes them.

Log collectors (the logging add-on, ``kubectl logs`` piped to ``jq``) read one event per line
with ``time`` (RFC 3339, UTC, milliseconds), ``level``, ``logger``, ``msg``, the record's
``extra`` fields, and ``error`` (the formatted traceback) when an exception was logged. The
shape matches ``kubelab``'s own components, so one parser reads them all.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

# LogRecord's own attributes are not copied as extra fields.
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
LEVELS = ("debug", "info", "warning", "error", "critical")


class JSONFormatter(logging.Formatter):
    """``{"time", "level", "logger", "msg", ...extra fields, "error"}`` per record.

    ``static`` fields (the component's name, say) are added to every event.
    """

    def __init__(self, *, static: dict[str, Any] | None = None) -> None:
        super().__init__()
        self._static = dict(static or {})

    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")[:-6] + "Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **self._static,
        }
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRIBUTES:
                event[key] = value
        if record.exc_info:
            event["error"] = self.formatException(record.exc_info)
        return orjson.dumps(event, default=str).decode()


def configure_logging(
    level: str = "info", *, component: str | None = None, stream: TextIO | None = None
) -> None:
    """Send every logger's records, as JSON lines, to ``stream`` (stderr) at ``level`` and above.

    Raises ``ValueError`` for a level that is not one of :data:`LEVELS`.
    """
    if level.lower() not in LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)}, got {level!r}")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JSONFormatter(static={"component": component} if component else None))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
