"""SKELETON (to be written): the ServiceAccount admission plugin."""

from __future__ import annotations

from control.apiserver.admission import AdmissionRequest
from control.apiserver.resource_store import ResourceStore


class ServiceAccountAdmission:
    def __init__(self, *, objects: ResourceStore) -> None:
        self.objects = objects

    async def mutate(self, request: AdmissionRequest) -> None:
        return None

    async def validate(self, request: AdmissionRequest) -> None:
        return None
