"""Warnings an admission plugin adds to the response of the request it admits — upstream's
k8s.io/apiserver/pkg/warning (``warning.AddWarning(ctx, "", text)``), which the PodSecurity
plugin uses for its ``warn`` mode and for the existing pods a namespace label change would refuse.

Upstream carries a per-request warning recorder in the request's ``context.Context``; the Python
equivalent is a context variable. The API server binds the request's ``Call.warnings`` list with
:func:`record_into` when it builds the :class:`~control.apiserver.call.Call` (aiohttp serves every
request in a task of its own, so the binding is the request's alone), and the handlers already
send that list as ``Warning: 299 - "<text>"`` headers. Admission plugins are not handed the Call
(they are also run for writes no HTTP request made); :func:`add_warning` outside a request that
bound a list does nothing, as upstream's AddWarning without a recorder.

As upstream's recorder, an empty text and a text already recorded are dropped (an update that is
retried after a conflict runs admission again and must not warn twice).
"""

from __future__ import annotations

from contextvars import ContextVar

_recorded: ContextVar[list[str] | None] = ContextVar("kubelab_request_warnings", default=None)


def record_into(warnings: list[str]) -> None:
    """Send the warnings added from now on in this request (this task) to ``warnings``."""
    _recorded.set(warnings)


def add_warning(text: str) -> None:
    """Add a warning to the current request's response, once; nothing outside a request."""
    warnings = _recorded.get()
    if warnings is None or not text or text in warnings:
        return
    warnings.append(text)
