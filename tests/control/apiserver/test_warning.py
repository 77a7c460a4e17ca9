"""Admission warnings recorded per request: sent to the list the request bound, once each, and
dropped where no request bound one."""

from __future__ import annotations

import asyncio

from control.apiserver.warning import add_warning, record_into


async def test_warnings_go_to_the_bound_list_once_each() -> None:
    warnings: list[str] = []
    record_into(warnings)
    add_warning("first")
    add_warning("second")
    add_warning("first")
    add_warning("")
    assert warnings == ["first", "second"]


async def test_each_task_records_into_its_own_list() -> None:
    async def request(text: str) -> list[str]:
        warnings: list[str] = []
        record_into(warnings)
        await asyncio.sleep(0)  # let the other request run in between
        add_warning(text)
        return warnings

    assert await asyncio.gather(request("a"), request("b")) == [["a"], ["b"]]


def test_a_warning_outside_a_request_is_dropped() -> None:
    add_warning("nobody is listening")  # no list bound in this context: nothing happens, no error
