"""Chunked LIST: pages merged, resourceVersion only on the first page, full relist when a page expires."""

from __future__ import annotations

import pytest

from control.client.errors import NotFoundError
from control.client.pager import list_pages
from control.client.testing import FakeListerWatcher, expired_error


def objects(count: int) -> list[dict]:
    return [{"metadata": {"name": f"o{i:02d}", "namespace": "default"}} for i in range(count)]


async def test_single_page_is_returned_as_is():
    fake = FakeListerWatcher(objects(3))
    result, paginated = await list_pages(fake.list, resource_version="0", page_size=10)
    assert not paginated
    assert len(result["items"]) == 3 and result["kind"] == "ConfigMapList"


async def test_pages_are_merged_with_the_first_pages_metadata():
    fake = FakeListerWatcher(objects(5))
    result, paginated = await list_pages(
        fake.list, resource_version="", resource_version_match=None, page_size=2
    )
    assert paginated
    assert [o["metadata"]["name"] for o in result["items"]] == [f"o{i:02d}" for i in range(5)]
    assert result["metadata"] == {"resourceVersion": str(fake.revision)}
    assert [(c["resource_version"], c["limit"], bool(c["continue"])) for c in fake.list_calls] == [
        ("", 2, False),
        (None, 2, True),
        (None, 2, True),
    ]


async def test_no_page_size_sends_no_limit():
    fake = FakeListerWatcher(objects(3))
    await list_pages(fake.list, resource_version="5", page_size=None)
    assert fake.list_calls[0]["limit"] is None


async def test_expired_continuation_falls_back_to_one_unpaged_list():
    fake = FakeListerWatcher(objects(4))
    original = fake.list

    async def list_then_expire(**kwargs):
        page = await original(**kwargs)
        if kwargs["continue_"] is None and kwargs["limit"]:
            fake.fail_next_list(expired_error())
        return page

    result, paginated = await list_pages(
        list_then_expire, resource_version="0", resource_version_match="NotOlderThan", page_size=2
    )
    assert paginated
    assert len(result["items"]) == 4
    assert fake.list_calls[-1] == {
        "resource_version": "0",
        "resource_version_match": "NotOlderThan",
        "limit": None,
        "continue": None,
    }


async def test_other_errors_propagate():
    fake = FakeListerWatcher(objects(4))
    fake.fail_next_list(NotFoundError({"reason": "NotFound", "code": 404}))
    with pytest.raises(NotFoundError):
        await list_pages(fake.list, page_size=2)
    first_page_expired = FakeListerWatcher(objects(4))
    first_page_expired.fail_next_list(expired_error())
    with pytest.raises(type(expired_error())):
        await list_pages(first_page_expired.list, page_size=2)
