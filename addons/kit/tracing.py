"""OpenTelemetry spans, only when the environment asks for them.

``OTEL_EXPORTER_OTLP_ENDPOINT`` (OTLP over HTTP) or ``OTEL_TRACES_EXPORTER=console`` turns
tracing on (``OTEL_TRACES_EXPORTER=none`` turns it off again). Otherwise :func:`configure_tracer`
returns None and :func:`span` is a no-op context manager, so a hot path that is not traced pays
one ``is None`` test and nothing else. The SDK is imported only when tracing is on.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from typing import Any

from opentelemetry import trace


def tracing_enabled(environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    exporter = env.get("OTEL_TRACES_EXPORTER", "")
    if exporter == "none":
        return False
    return exporter == "console" or bool(env.get("OTEL_EXPORTER_OTLP_ENDPOINT"))


def configure_tracer(service_name: str, *, environ: Mapping[str, str] | None = None) -> trace.Tracer | None:
    """A tracer exporting spans as the ``OTEL_*`` environment says, or None when tracing is off."""
    env = os.environ if environ is None else environ
    if not tracing_enabled(env):
        return None
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

    exporter: SpanExporter
    if env.get("OTEL_TRACES_EXPORTER") == "console":
        exporter = ConsoleSpanExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider.get_tracer(f"kubelab.{service_name}")


@contextlib.contextmanager
def span(tracer: trace.Tracer | None, name: str, **attributes: Any) -> Iterator[trace.Span | None]:
    """A span named ``name`` with ``attributes`` when ``tracer`` is set; nothing otherwise."""
    if tracer is None:
        yield None
        return
    with tracer.start_as_current_span(name, attributes=attributes) as current:
        yield current
