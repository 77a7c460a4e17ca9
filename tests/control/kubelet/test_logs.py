"""CRI log files: the writer's format, line splitting and rotation; the reader's options."""

from __future__ import annotations

import asyncio
import itertools
import os
from pathlib import Path

import pytest

from control.kubelet import logs
from control.kubelet.logs import (
    MAX_LINE_BYTES,
    CRILogWriter,
    LogFormatError,
    LogOptions,
    format_timestamp,
    output_timestamp,
    parse_line,
    parse_timestamp,
    read_container_log,
    rotated_files,
    tail_text,
)

BASE = 1_700_000_000 * 1_000_000_000  # 2023-11-14T22:13:20Z


def ticking_clock(step_ns: int = 1_000_000):
    counter = itertools.count()
    return lambda: BASE + next(counter) * step_ns


def entries(path: Path) -> list[tuple[str, str, bytes]]:
    parsed = []
    for line in path.read_bytes().splitlines():
        entry = parse_line(line)
        parsed.append((entry.stream, "P" if entry.partial else "F", entry.message))
    return parsed


@pytest.mark.parametrize(
    ("nanoseconds", "text"),
    [
        (BASE, b"2023-11-14T22:13:20Z"),
        (BASE + 500_000_000, b"2023-11-14T22:13:20.5Z"),
        (BASE + 123_456_789, b"2023-11-14T22:13:20.123456789Z"),
        (BASE + 120_000, b"2023-11-14T22:13:20.00012Z"),
    ],
)
def test_timestamps_are_go_rfc3339_nano(nanoseconds: int, text: bytes) -> None:
    assert format_timestamp(nanoseconds) == text
    assert parse_timestamp(text) == nanoseconds


def test_timestamp_parsing_accepts_offsets_and_rejects_garbage() -> None:
    assert parse_timestamp(b"2023-11-14T23:13:20.5+01:00") == BASE + 500_000_000
    assert parse_timestamp(b"2023-11-14T21:13:20-01:00") == BASE
    assert output_timestamp(BASE + 5) == b"2023-11-14T22:13:20.000000005Z"
    for bad in (
        b"",
        b"yesterday",
        b"2023-11-14 22:13:20Z",
        b"2023-11-14T22:13:20.Z",
        b"2023-11-14T22:13:20+0100",
    ):
        with pytest.raises(LogFormatError):
            parse_timestamp(bad)


def test_writer_writes_one_entry_per_line_per_stream(tmp_path: Path) -> None:
    writer = CRILogWriter(tmp_path / "0.log", clock=ticking_clock())
    writer.write("stdout", b"hello\nwor")
    writer.write("stderr", b"oops\r\n\n")
    writer.write("stdout", b"ld\n")
    writer.close()
    assert entries(tmp_path / "0.log") == [
        ("stdout", "F", b"hello"),
        ("stderr", "F", b"oops"),
        ("stderr", "F", b""),
        ("stdout", "F", b"world"),
    ]
    first = (tmp_path / "0.log").read_bytes().splitlines()[0]
    assert first == b"2023-11-14T22:13:20Z stdout F hello"


def test_long_lines_are_split_into_partial_entries(tmp_path: Path) -> None:
    writer = CRILogWriter(tmp_path / "0.log", clock=ticking_clock())
    exact = b"a" * MAX_LINE_BYTES
    writer.write("stdout", exact + b"\n")
    writer.write("stdout", b"b" * (2 * MAX_LINE_BYTES + 10) + b"\n")
    writer.write("stdout", b"c" * (MAX_LINE_BYTES + 1))  # no newline yet: one part goes out now
    writer.close()  # the rest ends as a partial entry, as containerd does at EOF
    assert [(tag, len(message)) for _, tag, message in entries(tmp_path / "0.log")] == [
        ("F", MAX_LINE_BYTES),
        ("P", MAX_LINE_BYTES),
        ("P", MAX_LINE_BYTES),
        ("F", 10),
        ("P", MAX_LINE_BYTES),
        ("P", 1),
    ]


def test_rotation_keeps_max_files_and_never_reuses_a_name(tmp_path: Path) -> None:
    path = tmp_path / "3.log"
    writer = CRILogWriter(path, max_bytes=200, max_files=3, clock=ticking_clock())
    for index in range(40):
        writer.write("stdout", f"line {index:03d}\n".encode())
    writer.close()
    rotated = rotated_files(path)
    assert len(rotated) == 2
    assert all(p.stat().st_size >= 200 for p in rotated)
    lines = [message for p in [*rotated, path] for _, _, message in entries(p)]
    assert lines == [f"line {index:03d}".encode() for index in range(40 - len(lines), 40)], (
        "newest kept, in order"
    )
    names = [p.name for p in rotated]
    assert names == sorted(names, key=lambda name: int(name.rsplit("-", 1)[1]) if name.count("-") == 2 else 0)


def test_writer_rejects_bad_settings(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_files must be at least 2"):
        CRILogWriter(tmp_path / "x.log", max_files=1)
    with pytest.raises(ValueError, match="max_bytes must be positive"):
        CRILogWriter(tmp_path / "x.log", max_bytes=0)


def test_layout_and_links(tmp_path: Path) -> None:
    pod_dir = logs.pod_directory(tmp_path / "pods", namespace="ns", name="web", uid="u1")
    assert pod_dir == tmp_path / "pods" / "ns_web_u1"
    target = logs.container_log_path(pod_dir, container="app", restart_count=2)
    assert target == pod_dir / "app" / "2.log"
    link = logs.create_log_link(
        tmp_path / "containers", pod="web", namespace="ns", container="app", container_id="abc", target=target
    )
    assert link.name == "web_ns_app-abc.log" and os.readlink(link) == str(target)
    logs.remove_log_link(
        tmp_path / "containers", pod="web", namespace="ns", container="app", container_id="abc"
    )
    assert not link.exists() and not link.is_symlink()
    logs.remove_log_link(
        tmp_path / "containers", pod="web", namespace="ns", container="app", container_id="abc"
    )


async def read(path: Path, **options: object) -> bytes:
    return b"".join([chunk async for chunk in read_container_log(path, LogOptions(**options))])  # type: ignore[arg-type]


def sample_log(path: Path) -> None:
    writer = CRILogWriter(path, clock=ticking_clock(step_ns=1_000_000_000))
    writer.write("stdout", b"one\n")
    writer.write("stderr", b"two\n")
    writer.write("stdout", b"x" * (MAX_LINE_BYTES + 3) + b"\n")
    writer.write("stdout", b"four\n")
    writer.close()
    with path.open("ab") as out:
        out.write(b"not a cri line\n")


async def test_reader_options(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    sample_log(path)
    long_line = b"x" * (MAX_LINE_BYTES + 3)
    assert await read(path) == b"one\ntwo\n" + long_line + b"\nfour\n", "parts are joined; bad lines skipped"
    assert await read(path, tail_lines=2) == b"four\n", "the unparsable last line still counts as a line"
    assert await read(path, tail_lines=3) == b"xxx\nfour\n"
    assert await read(path, tail_lines=0) == b""
    assert await read(path, streams=("stderr",)) == b"two\n"
    since = (BASE + 2_000_000_000) / 1e9
    assert await read(path, since_time=since) == long_line + b"\nfour\n", (
        "entries before sinceTime are dropped"
    )
    assert await read(path, limit_bytes=6) == b"one\ntw"
    stamped = (await read(path, timestamps=True, tail_lines=2)).splitlines()
    assert stamped == [b"2023-11-14T22:13:23.000000000Z four"]
    with pytest.raises(FileNotFoundError):
        await read(tmp_path / "missing.log")
    for bad in ({"tail_lines": -1}, {"limit_bytes": 0}, {"streams": ("stdin",)}):
        with pytest.raises(ValueError):
            LogOptions(**bad)  # type: ignore[arg-type]


async def test_without_follow_the_log_ends_where_it_was_when_asked(tmp_path: Path) -> None:
    """``--tail=2`` of a container that keeps writing gives 2 lines, not those written meanwhile."""
    path = tmp_path / "0.log"
    writer = CRILogWriter(path, clock=ticking_clock())
    for word in (b"one", b"two", b"three"):
        writer.write("stdout", word + b"\n")
    chunks = read_container_log(path, LogOptions(tail_lines=2), chunk_size=40)
    first = await anext(chunks)  # the reader has opened the file and read part of it
    writer.write("stdout", b"four\n")
    writer.close()
    rest = b"".join([chunk async for chunk in chunks])
    assert first + rest == b"two\nthree\n"


async def test_follow_sees_new_entries_and_rotations_until_stopped(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    writer = CRILogWriter(path, max_bytes=120, max_files=5, clock=ticking_clock())
    writer.write("stdout", b"before\n")
    running = True
    received: list[bytes] = []

    async def follow() -> None:
        async for chunk in read_container_log(
            path, LogOptions(follow=True), still_running=lambda: running, poll_interval=0.01
        ):
            received.append(chunk)

    reader = asyncio.create_task(follow())
    for index in range(6):  # several rotations happen under the reader's feet
        await asyncio.sleep(0.03)
        writer.write("stdout", f"line {index} {'.' * 40}\n".encode())
    await asyncio.sleep(0.05)
    running = False
    await asyncio.wait_for(reader, timeout=5)
    writer.close()
    text = b"".join(received).decode()
    assert text.startswith("before\n")
    assert [line.split()[1] for line in text.splitlines()[1:]] == [str(i) for i in range(6)]


def test_tail_text_for_termination_messages(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    writer = CRILogWriter(path, clock=ticking_clock())
    for index in range(100):
        writer.write("stdout" if index % 2 else "stderr", f"line {index}\n".encode())
    writer.close()
    text = tail_text(path)
    assert text.splitlines() == [f"line {index}" for index in range(20, 100)]
    assert tail_text(path, lines=3, limit_bytes=10) == "line 97\nli"
    assert tail_text(tmp_path / "missing.log") == ""
