"""SKELETON (to be written): the NodeRestriction admission plugin."""

from __future__ import annotations

from control.apiserver.admission import AdmissionRequest


class NodeRestriction:
    async def mutate(self, request: AdmissionRequest) -> None:
        return None

    async def validate(self, request: AdmissionRequest) -> None:
        return None
