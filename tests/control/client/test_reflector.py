"""The reflector against a FakeListerWatcher: list/watch parameters, relist on 410, bookmarks, backoff, WatchList."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from control.client.errors import TooManyRequestsError, TransportError, api_error_from_status
from control.client.reflector import Backoff, Reflector
from control.client.testing import FakeClock, FakeListerWatcher, expired_error
from tests.control.client.support import eventually


def cm(name: str, data: str = "x", namespace: str = "default") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace}, "data": {"v": data}}


class RecordingStore:
    """A ReflectorStore that records what it is told, keyed by name."""

    def __init__(self) -> None:
        self.objects: dict[str, dict] = {}
        self.calls: list[tuple[str, str]] = []
        self.replaced_at: list[str] = []

    def replace(self, items: list[dict], resource_version: str) -> None:
        self.objects = {o["metadata"]["name"]: o for o in items}
        self.replaced_at.append(resource_version)
        self.calls.append(("replace", resource_version))

    def add(self, obj: dict) -> None:
        if obj["metadata"]["name"] == "poison":
            raise ValueError("cannot store this")
        self.objects[obj["metadata"]["name"]] = obj
        self.calls.append(("add", obj["metadata"]["name"]))

    def update(self, obj: dict) -> None:
        self.objects[obj["metadata"]["name"]] = obj
        self.calls.append(("update", obj["metadata"]["name"]))

    def delete(self, obj: dict) -> None:
        self.objects.pop(obj["metadata"]["name"], None)
        self.calls.append(("delete", obj["metadata"]["name"]))

    def data(self) -> dict[str, str]:
        return {name: obj["data"]["v"] for name, obj in self.objects.items()}


class Harness:
    def __init__(self, fake: FakeListerWatcher, **options: Any) -> None:
        self.fake = fake
        self.clock = FakeClock()
        self.store = RecordingStore()
        options.setdefault("rand", lambda: 0.0)
        self.reflector = Reflector(fake, self.store, name="test", clock=self.clock, **options)
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self.reflector.run())

    async def watching(self, count: int = 1) -> None:
        """Wait until ``count`` watches have been opened in total and the last one is open."""
        await eventually(
            lambda: len(self.fake.watches) >= count and self.fake.watches[count - 1].closed is False
        )

    async def backoff(self) -> float:
        """Wait for the reflector to sleep, then let that sleep pass; returns its length."""
        await eventually(lambda: self.clock.pending())
        return self.clock.advance_to_next()

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


@pytest.fixture
async def harness_factory():
    made: list[Harness] = []

    def make(fake: FakeListerWatcher | None = None, **options: Any) -> Harness:
        harness = Harness(fake or FakeListerWatcher(), **options)
        made.append(harness)
        return harness

    yield make
    for harness in made:
        await harness.stop()
        assert not harness.fake.open_watches, "a stopped reflector must close its watch"


async def test_lists_from_rv_0_then_watches_from_the_list_rv(harness_factory):
    fake = FakeListerWatcher([cm("a"), cm("b")])
    h = harness_factory(fake, rand=lambda: 0.5)
    h.start()
    await h.watching()
    assert fake.list_calls == [
        {"resource_version": "0", "resource_version_match": None, "limit": 500, "continue": None}
    ]
    assert h.store.replaced_at == [str(fake.revision)]
    assert h.store.data() == {"a": "x", "b": "x"}
    assert fake.watch_calls == [
        {
            "resource_version": str(fake.revision),
            "resource_version_match": None,
            "timeout_seconds": 450,
            "allow_watch_bookmarks": True,
            "send_initial_events": None,
        }
    ]


async def test_watch_timeout_is_randomised_between_300_and_600_seconds(harness_factory):
    for rand, expected in ((0.0, 300), (0.999, 599)):
        fake = FakeListerWatcher()
        h = harness_factory(fake, rand=lambda r=rand: r)
        h.start()
        await h.watching()
        assert fake.watch_calls[0]["timeout_seconds"] == expected
        await h.stop()


async def test_events_reach_the_store_and_advance_the_resource_version(harness_factory):
    fake = FakeListerWatcher([cm("a")])
    h = harness_factory(fake)
    h.start()
    await h.watching()
    fake.create(cm("b"))
    fake.update(cm("a", "y"))
    fake.delete("default/b")
    await eventually(lambda: h.reflector.last_sync_resource_version == str(fake.revision))
    assert h.store.calls[1:] == [("add", "b"), ("update", "a"), ("delete", "b")]
    assert h.store.data() == {"a": "y"}


async def test_bookmarks_advance_the_resource_version_only(harness_factory):
    fake = FakeListerWatcher([cm("a")])
    h = harness_factory(fake)
    h.start()
    await h.watching()
    fake.revision += 10  # other collections moved on
    fake.bookmark()
    await eventually(lambda: h.reflector.last_sync_resource_version == str(fake.revision))
    assert h.store.calls == [("replace", "2")]
    fake.drop_watches()
    h.clock.advance(5.0)  # the watch lasted long enough: re-watch, no relist
    await h.watching(2)
    assert fake.watch_calls[1]["resource_version"] == str(fake.revision)
    assert len(fake.list_calls) == 1


async def test_paginated_initial_list_follows_continue(harness_factory):
    fake = FakeListerWatcher([cm(f"o{i}") for i in range(5)])
    h = harness_factory(fake, page_size=2)
    h.start()
    await h.watching()
    assert [(c["resource_version"], c["limit"], c["continue"] is not None) for c in fake.list_calls] == [
        ("0", 2, False),
        (None, 2, True),
        (None, 2, True),
    ]
    assert sorted(h.store.data()) == ["o0", "o1", "o2", "o3", "o4"]


async def test_expired_continue_token_falls_back_to_one_full_list(harness_factory):
    fake = FakeListerWatcher([cm(f"o{i}") for i in range(4)])
    original_list = fake.list

    async def compact_after_first_page(**kwargs):
        page = await original_list(**kwargs)
        if kwargs["continue_"] is None and kwargs["limit"]:
            fake.create(cm("late"))
            fake.compact()
        return page

    fake.list = compact_after_first_page
    h = harness_factory(fake, page_size=2)
    h.start()
    await h.watching()
    assert [(c["resource_version"], c["limit"]) for c in fake.list_calls] == [
        ("0", 2),
        (None, 2),
        ("0", None),
    ]
    assert sorted(h.store.data()) == ["late", "o0", "o1", "o2", "o3"]


async def test_watch_410_relists_from_the_last_resource_version(harness_factory):
    fake = FakeListerWatcher([cm("a")])
    h = harness_factory(fake)
    h.start()
    await h.watching()
    fake.create(cm("b"))
    await eventually(lambda: "b" in h.store.objects)
    last = h.reflector.last_sync_resource_version
    fake.expire_watches()
    assert await h.backoff() == pytest.approx(0.8)
    await h.watching(2)
    assert fake.list_calls[1] == {
        "resource_version": last,
        "resource_version_match": None,
        "limit": None,
        "continue": None,
    }
    assert h.store.replaced_at[-1] == str(fake.revision)


async def test_relist_that_410s_again_lists_from_empty_resource_version(harness_factory):
    fake = FakeListerWatcher([cm("a")])
    h = harness_factory(fake)
    h.start()
    await h.watching()
    fake.fail_next_list(expired_error())
    fake.expire_watches()
    await h.backoff()
    await h.watching(2)
    assert [c["resource_version"] for c in fake.list_calls] == ["0", "2", ""]
    assert fake.list_calls[2]["limit"] is None, "client-go keeps the relist's page size for the retry"
    fake.expire_watches()
    await h.backoff()
    await h.watching(3)
    assert fake.list_calls[3]["resource_version"] == str(fake.revision), (
        "back to the last RV once a list succeeded"
    )


async def test_too_large_resource_version_is_treated_like_expired(harness_factory):
    fake = FakeListerWatcher([cm("a")])
    h = harness_factory(fake)
    h.start()
    await h.watching()
    too_large = api_error_from_status(
        {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "reason": "Timeout",
            "code": 504,
            "message": "Too large resource version",
            "details": {"causes": [{"reason": "ResourceVersionTooLarge"}]},
        }
    )
    fake.fail_next_list(too_large)
    fake.expire_watches()
    await h.backoff()
    await h.watching(2)
    assert fake.list_calls[-1]["resource_version"] == ""


async def test_watch_from_a_compacted_revision_relists(harness_factory):
    fake = FakeListerWatcher([cm("a")])
    h = harness_factory(fake)
    h.start()
    await h.watching()
    fake.drop_watches()
    fake.create(cm("b"))
    fake.compact()  # the reflector's last RV is now too old
    h.clock.advance(2.0)
    await h.backoff()
    await h.watching(3)
    assert len(fake.list_calls) == 2
    assert h.store.data() == {"a": "x", "b": "x"}


async def test_watch_closed_within_a_second_without_events_counts_as_an_error(harness_factory):
    fake = FakeListerWatcher([cm("a")])
    h = harness_factory(fake)
    h.start()
    await h.watching()
    fake.drop_watches()
    assert await h.backoff() == pytest.approx(0.8)
    await h.watching(2)
    assert len(fake.list_calls) == 2, "a very short watch leads to a relist"


async def test_short_watch_with_events_is_fine(harness_factory):
    fake = FakeListerWatcher([cm("a")])
    h = harness_factory(fake)
    h.start()
    await h.watching()
    fake.create(cm("b"))
    fake.drop_watches()
    await h.watching(2)
    assert len(fake.list_calls) == 1


@pytest.mark.parametrize(
    "error",
    [
        TransportError("connection refused"),
        api_error_from_status(
            {
                "kind": "Status",
                "apiVersion": "v1",
                "status": "Failure",
                "reason": "TooManyRequests",
                "code": 429,
            }
        ),
    ],
)
async def test_retriable_watch_start_errors_back_off_and_rewatch_without_relisting(harness_factory, error):
    fake = FakeListerWatcher([cm("a")])
    fake.fail_next_watch(error)
    h = harness_factory(fake)
    h.start()
    assert await h.backoff() == pytest.approx(0.8)
    await h.watching(1)
    assert len(fake.watch_calls) == 2 and len(fake.list_calls) == 1


async def test_429_in_the_watch_stream_backs_off_and_rewatches(harness_factory):
    fake = FakeListerWatcher([cm("a")])
    h = harness_factory(fake)
    h.start()
    await h.watching()
    fake.open_watches[0].fail(TooManyRequestsError({"reason": "TooManyRequests", "code": 429}))
    await h.backoff()
    await h.watching(2)
    assert len(fake.list_calls) == 1


async def test_other_watch_start_errors_end_the_pass_and_relist(harness_factory):
    fake = FakeListerWatcher([cm("a")])
    forbidden = api_error_from_status(
        {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden", "code": 403}
    )
    fake.fail_next_watch(forbidden)
    h = harness_factory(fake)
    h.start()
    await h.backoff()
    await h.watching(1)
    assert len(fake.list_calls) == 2


async def test_list_failures_back_off_exponentially_with_a_cap(harness_factory):
    fake = FakeListerWatcher([cm("a")])
    for _ in range(8):
        fake.fail_next_list(TransportError("connection refused"))
    h = harness_factory(fake)
    h.start()
    waits = [await h.backoff() for _ in range(8)]
    assert waits == pytest.approx([0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 30.0, 30.0])
    await h.watching()
    assert h.store.data() == {"a": "x"}


def test_backoff_jitter_and_reset():
    clock = FakeClock()
    backoff = Backoff(clock=clock, rand=lambda: 0.5)
    assert backoff.next() == pytest.approx(1.2)  # 0.8 + 0.5 * 0.8
    assert backoff.next() == pytest.approx(2.4)
    clock.advance(121.0)
    assert backoff.next() == pytest.approx(1.2), "two quiet minutes reset the backoff"


async def test_store_errors_do_not_stop_the_watch(harness_factory):
    fake = FakeListerWatcher([cm("a")])
    h = harness_factory(fake)
    h.start()
    await h.watching()
    fake.create(cm("poison"))
    fake.create(cm("b"))
    await eventually(lambda: "b" in h.store.objects)
    assert h.reflector.last_sync_resource_version == str(fake.revision)


async def test_watch_list_mode_streams_the_initial_state(harness_factory):
    fake = FakeListerWatcher([cm("a"), cm("b")])
    h = harness_factory(fake, use_watch_list=True)
    h.start()
    await h.watching()
    assert fake.list_calls == []
    call = fake.watch_calls[0]
    assert call["send_initial_events"] is True
    assert call["resource_version_match"] == "NotOlderThan"
    assert call["resource_version"] == ""
    assert call["allow_watch_bookmarks"] is True
    await eventually(lambda: h.store.replaced_at)
    assert h.store.replaced_at == [str(fake.revision)]
    assert h.store.data() == {"a": "x", "b": "x"}
    fake.create(cm("c"))
    await eventually(lambda: "c" in h.store.objects)
    assert len(fake.watch_calls) == 1, "the same stream carries on as the watch"


async def test_watch_list_falls_back_to_list_when_refused(harness_factory):
    fake = FakeListerWatcher([cm("a")], support_watch_list=False)
    h = harness_factory(fake, use_watch_list=True)
    h.start()
    await h.watching(1)  # the refused watch-list never opened a stream
    assert len(fake.watch_calls) == 2
    assert fake.watch_calls[0]["send_initial_events"] is True
    assert fake.list_calls[0]["resource_version"] == "0"
    assert fake.watch_calls[1]["send_initial_events"] is None
    assert h.store.data() == {"a": "x"}


async def test_watch_list_retries_from_scratch_after_410(harness_factory):
    fake = FakeListerWatcher([cm("a")])
    fake.fail_next_watch(expired_error())
    h = harness_factory(fake, use_watch_list=True)
    h.start()
    await h.watching(1)
    assert len(fake.watch_calls) == 2
    assert fake.watch_calls[1]["resource_version"] == ""
    await eventually(lambda: h.store.data() == {"a": "x"})


async def test_cancelling_run_closes_the_watch(harness_factory):
    fake = FakeListerWatcher([cm("a")])
    h = harness_factory(fake)
    h.start()
    await h.watching()
    await h.stop()
    assert fake.open_watches == []
