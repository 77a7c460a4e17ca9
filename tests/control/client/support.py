"""Waiting helpers for tests: yield to the event loop until a condition holds, never sleep."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def eventually(condition: Callable[[], object], *, rounds: int = 1000) -> None:
    """Let other tasks run until ``condition()`` is true; fail after ``rounds`` loop turns.

    Only for conditions that other tasks make true without waiting on wall time (fake clock,
    fake servers on loopback), so a bounded number of loop turns is enough.
    """
    for _ in range(rounds):
        if condition():
            return
        await asyncio.sleep(0)
    assert condition(), f"condition never became true: {condition}"
