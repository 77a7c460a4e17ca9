"""Waiting helpers for tests: yield to the event loop until a condition holds, never sleep."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def eventually(condition: Callable[[], object], *, within: float = 5.0) -> None:
    """Let other tasks run until ``condition()`` is true; fail if it is not within ``within`` seconds.

    Each check yields one turn of the event loop (no sleeping), so conditions that other tasks
    make true at once — fake clocks, fake servers on loopback — are seen as soon as they hold;
    the time bound only turns a hang into a failure.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"condition never became true: {condition}")
        await asyncio.sleep(0)
