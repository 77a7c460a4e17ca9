"""A filter's verdict on one node: the code and the reasons that end up in FailedScheduling.

Kept apart from the framework so the preemption message (which reads the codes) and the
plugins (which produce them) share it without importing each other.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Code(enum.Enum):
    UNSCHEDULABLE = "Unschedulable"
    """The node does not fit now; removing pods from it (preemption) might change that."""
    UNSCHEDULABLE_AND_UNRESOLVABLE = "UnschedulableAndUnresolvable"
    """The node cannot take the pod whatever runs on it (labels, taints, its size)."""


@dataclass(frozen=True, slots=True)
class Status:
    """Why a node was filtered out: the code, the reasons for the message, the plugin's name."""

    code: Code
    reasons: tuple[str, ...]
    plugin: str
