"""OpenTelemetry spans, only when the environment asks for them.

``OTEL_EXPORTER_OTLP_ENDPOINT`` (OTLP over HTTP) or ``OTEL_TRACES_EXPORTER=console`` turns
tracing on (``OTEL_TRACES_EXPORTER=none`` turns it off again). Otherwise :func:`configure_tracing`
returns None and :func:`span` is a no-op context manager, so a hot path that is not traced pays
one ``is None`` test and nothing else. The SDK is imported only when tracing is on.

An add-on calls :meth:`Tracing.shutdown` when it stops, so the spans still batched are exported
before the process exits.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opentelemetry import trace

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter


def tracing_enabled(environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    exporter = env.get("OTEL_TRACES_EXPORTER", "")
    if exporter == "none":
        return False
    return exporter == "console" or bool(env.get("OTEL_EXPORTER_OTLP_ENDPOINT"))


@dataclass
class Tracing:
    """A component's tracer and the provider behind it."""

    tracer: trace.Tracer
    provider: TracerProvider

    def shutdown(self) -> None:
        """Export what is still batched and stop (idempotent)."""
        self.provider.shutdown()


def configure_tracing(
    service_name: str, *, environ: Mapping[str, str] | None = None, exporter: SpanExporter | None = None
) -> Tracing | None:
    """Tracing as the ``OTEL_*`` environment says, or None when it is off.

    ``exporter`` replaces the one the environment names (tests pass an in-memory exporter).
    """
    env = os.environ if environ is None else environ
    if not tracing_enabled(env):
        return None
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    if exporter is None:
        if env.get("OTEL_TRACES_EXPORTER") == "console":
            exporter = ConsoleSpanExporter()
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": service_name}), shutdown_on_exit=False
    )
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return Tracing(tracer=provider.get_tracer(f"kubelab.{service_name}"), provider=provider)


@contextlib.contextmanager
def span(tracing: Tracing | None, name: str, **attributes: Any) -> Iterator[trace.Span | None]:
    """A span named ``name`` with ``attributes`` when tracing is on; nothing otherwise."""
    if tracing is None:
        yield None
        return
    with tracing.tracer.start_as_current_span(name, attributes=attributes) as current:
        yield current
