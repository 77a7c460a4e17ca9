"""Fixtures for the client library tests: every test must leave no task and no child process behind."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest


def _children() -> set[int]:
    pid = os.getpid()
    path = Path(f"/proc/{pid}/task/{pid}/children")
    if not path.exists():
        return set()
    return {int(child) for child in path.read_text().split()}


@pytest.fixture(autouse=True)
async def no_leaks():
    """Fail a test that leaves asyncio tasks running or child processes alive (client-go uses goleak)."""
    tasks_before = asyncio.all_tasks()
    children_before = _children()
    yield
    for _ in range(10):  # let cancelled tasks finish unwinding
        await asyncio.sleep(0)
    current = asyncio.current_task()
    leaked = [task for task in asyncio.all_tasks() - tasks_before if task is not current and not task.done()]
    for task in leaked:
        task.cancel()
    await asyncio.gather(*leaked, return_exceptions=True)
    assert not leaked, f"the test left tasks running: {leaked}"
    children = _children() - children_before
    assert not children, f"the test left child processes behind: {sorted(children)}"
