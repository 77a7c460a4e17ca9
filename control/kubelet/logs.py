"""Container log files in the CRI format, their rotation, and reading them back.

A container's stdout and stderr are written (by its shim, see
``control.kubelet.runtime.shim``) to ``pods/<ns>_<pod>_<uid>/<container>/<restart>.log``
under the node's data directory, one entry per line, exactly as containerd writes them::

    2024-05-01T10:00:00.123456789Z stdout F hello
    2024-05-01T10:00:00.2Z stderr P first 16 KiB of a long line...
    2024-05-01T10:00:00.2Z stderr F ...and the rest

The timestamp is RFC 3339 with nanoseconds (trailing zeros trimmed, as Go's RFC3339Nano),
then the stream, then ``F`` (full line) or ``P`` (part of a line longer than 16 KiB, or a
last line that ended without a newline), then the text without its newline (a ``\\r``
before the newline is dropped, as containerd does). The kubelet also keeps
``containers/<pod>_<ns>_<container>-<id>.log`` symlinks to the current files, as
``/var/log/containers`` on a real node, for log shippers.

Files rotate when they reach ``max_bytes`` (default 10 MiB): the file is renamed to
``<restart>.log.<YYYYMMDD-HHMMSS>`` (UTC) and a new one started, keeping ``max_files``
files in all (default 5). Rotated files are not compressed (upstream gzips all but the
newest rotated file).

Reading (for the kubelet's ``/containerLogs`` endpoint)::

    source = agent.pods.log_source(namespace, pod, container, previous=False)  # pods.py
    async for chunk in read_container_log(source.path, LogOptions(follow=True, tail_lines=10),
                                          still_running=source.still_running):
        ...  # bytes to send: whole entries, with "\\n" after full lines

As upstream, only the current file is read (not rotated ones); ``tail_lines`` counts
entries; ``since_time`` skips older entries; ``timestamps`` prefixes each entry with its
time in the fixed nine-digit form kubectl shows; ``limit_bytes`` cuts the output; with
``follow`` the reader waits for new entries (following a rotation to the new file) until
``still_running()`` says the container has stopped and nothing more is written.

Termination messages (upstream's ``getTerminationMessage`` and
``readLastStringFromContainerLogs``): each attempt of a container gets an empty, world-writable
file ``<container>/<restart>.termination-log`` beside its log, which the runtime binds at the
container's ``terminationMessagePath`` (``/dev/termination-log`` by default).
:func:`termination_message` reads it once the attempt has exited: its last 4096 bytes
(``MaxContainerTerminationMessageLength``); under ``FallbackToLogsOnError`` a failed attempt
that wrote nothing there (or has no such file) gets the last 80 lines of its log instead, cut
at 2048 bytes. Without a mount namespace nothing is bound (the path would be the host's, shared
by every container), so only the log fallback applies.
"""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_MAX_FILES = 5
MAX_LINE_BYTES = 16 * 1024  # containerd's max_container_log_line_size
STREAMS = ("stdout", "stderr")
_ROTATED_SUFFIX_FORMAT = "%Y%m%d-%H%M%S"
TERMINATION_MESSAGE_MAX_BYTES = 4 * 1024  # MaxContainerTerminationMessageLength
TERMINATION_LOG_MAX_BYTES = 2 * 1024  # MaxContainerTerminationMessageLogLength
TERMINATION_LOG_MAX_LINES = 80  # MaxContainerTerminationMessageLogLines


class LogFormatError(ValueError):
    """A line that is not ``<time> <stream> <tag> <message>``."""


class TerminationLogError(OSError):
    """The termination-message file of a container attempt could not be created."""


# ---------------------------------------------------------------------------- timestamps

_second_cache: tuple[int, bytes] = (-1, b"")


def format_timestamp(nanoseconds: int) -> bytes:
    """Go's RFC3339Nano in UTC: ``2024-05-01T10:00:00.12Z`` (trailing zeros trimmed)."""
    global _second_cache
    seconds, nanos = divmod(nanoseconds, 1_000_000_000)
    cached_second, prefix = _second_cache
    if cached_second != seconds:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)).encode()
        _second_cache = (seconds, prefix)
    if nanos == 0:
        return prefix + b"Z"
    return prefix + b"." + (b"%09d" % nanos).rstrip(b"0") + b"Z"


_parsed_seconds: dict[bytes, int] = {}


def parse_timestamp(raw: bytes) -> int:
    """An RFC 3339 timestamp (any number of fraction digits, ``Z`` or ``±hh:mm``) -> epoch nanoseconds."""
    if len(raw) < 20 or raw[10:11] not in (b"T", b"t"):
        raise LogFormatError(f"bad timestamp {raw!r}")
    head = raw[:19]
    seconds = _parsed_seconds.get(head)
    if seconds is None:
        try:
            seconds = calendar.timegm(time.strptime(head.decode(), "%Y-%m-%dT%H:%M:%S"))
        except ValueError as exc:
            raise LogFormatError(f"bad timestamp {raw!r}") from exc
        if len(_parsed_seconds) > 4096:
            _parsed_seconds.clear()
        _parsed_seconds[head] = seconds
    rest = raw[19:]
    nanos = 0
    if rest[:1] == b".":
        end = 1
        while end < len(rest) and 48 <= rest[end] <= 57:
            end += 1
        digits = rest[1:end]
        if not digits:
            raise LogFormatError(f"bad timestamp {raw!r}")
        nanos = int(digits[:9].ljust(9, b"0"))
        rest = rest[end:]
    if rest in (b"Z", b"z"):
        offset = 0
    elif len(rest) == 6 and rest[:1] in (b"+", b"-") and rest[3:4] == b":":
        try:
            offset = int(rest[1:3]) * 3600 + int(rest[4:6]) * 60
        except ValueError as exc:
            raise LogFormatError(f"bad timestamp {raw!r}") from exc
        if rest[:1] == b"-":
            offset = -offset
    else:
        raise LogFormatError(f"bad timestamp {raw!r}")
    return (seconds - offset) * 1_000_000_000 + nanos


def output_timestamp(nanoseconds: int) -> bytes:
    """The kubelet's ``--timestamps`` form: always nine fraction digits, UTC."""
    seconds, nanos = divmod(nanoseconds, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)).encode() + b".%09dZ" % nanos


# ---------------------------------------------------------------------------- writing


class CRILogWriter:
    """Turns a container's output into CRI log entries in one file, rotating it by size.

    ``write`` takes raw bytes as read from a stream; whole lines are written at once (one
    ``write(2)`` per call), a line without its newline yet is kept until it is completed or
    grows past ``line_max``. ``close`` writes what is left as partial entries.
    """

    def __init__(
        self,
        path: Path,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_files: int = DEFAULT_MAX_FILES,
        line_max: int = MAX_LINE_BYTES,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, got {max_bytes}")
        if max_files < 2:
            raise ValueError(
                f"max_files must be at least 2 (the current file and one rotated), got {max_files}"
            )
        if line_max <= 0:
            raise ValueError(f"line_max must be positive, got {line_max}")
        self.path = path
        self._max_bytes = max_bytes
        self._max_files = max_files
        self._line_max = line_max
        self._clock = clock
        self._pending: dict[str, bytearray] = {stream: bytearray() for stream in STREAMS}
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self._size = os.fstat(self._fd).st_size

    def write(self, stream: str, data: bytes) -> None:
        pending = self._pending[stream]
        pending += data
        header = b"%s %s " % (format_timestamp(self._clock()), stream.encode())
        out = bytearray()
        start = 0
        while True:
            newline = pending.find(b"\n", start)
            if newline < 0:
                break
            end = newline - 1 if newline > start and pending[newline - 1] == 13 else newline
            self._entries(out, header, pending, start, end, last_tag=b"F")
            start = newline + 1
        # What is left has no newline yet: emit parts only once it exceeds the line limit.
        while len(pending) - start > self._line_max:
            out += header + b"P " + pending[start : start + self._line_max] + b"\n"
            start += self._line_max
        del pending[:start]
        if out:
            self._emit(out)

    def _entries(
        self, out: bytearray, header: bytes, buf: bytearray, start: int, end: int, *, last_tag: bytes
    ) -> None:
        limit = self._line_max
        while end - start > limit:
            out += header + b"P " + buf[start : start + limit] + b"\n"
            start += limit
        out += header + last_tag + b" " + buf[start:end] + b"\n"

    def close(self) -> None:
        """Write out unterminated lines (as ``P`` entries, as containerd does at EOF) and close."""
        if self._fd < 0:
            return
        out = bytearray()
        for stream, pending in self._pending.items():
            if pending:
                header = b"%s %s " % (format_timestamp(self._clock()), stream.encode())
                self._entries(out, header, pending, 0, len(pending), last_tag=b"P")
                pending.clear()
        if out:
            self._emit(out)
        os.close(self._fd)
        self._fd = -1

    def _emit(self, out: bytearray) -> None:
        """Append whole entries, rotating at the first entry boundary at or past ``max_bytes``."""
        view = memoryview(out)
        while view:
            room = self._max_bytes - self._size
            cut = len(view)
            if room <= len(view):
                newline = out.find(b"\n", len(out) - len(view) + max(room - 1, 0))
                cut = (newline + 1 - (len(out) - len(view))) if newline >= 0 else len(view)
            chunk = view[:cut]
            while chunk:
                written = os.write(self._fd, chunk)
                chunk = chunk[written:]
            self._size += cut
            view = view[cut:]
            if self._size >= self._max_bytes:
                self.rotate()

    def rotate(self) -> None:
        """Rename the current file aside, start a new one, and drop the oldest rotated files."""
        stamp = time.strftime(_ROTATED_SUFFIX_FORMAT, time.gmtime(self._clock() / 1e9))
        # Several rotations within a second get -1, -2...: never reuse a name, even a deleted one.
        same_second = [key[1] for key, _ in _rotated(self.path) if key[0] == stamp]
        name = f"{self.path.name}.{stamp}" + (f"-{max(same_second) + 1}" if same_second else "")
        os.rename(self.path, self.path.with_name(name))
        os.close(self._fd)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self._size = 0
        for old in rotated_files(self.path)[: -(self._max_files - 1)]:
            with contextlib.suppress(FileNotFoundError):
                old.unlink()


def _rotated(path: Path) -> list[tuple[tuple[str, int], Path]]:
    """((stamp, counter), path) of each rotated sibling ``<name>.<YYYYMMDD-HHMMSS>[-N]``, oldest first."""
    prefix = path.name + "."
    try:
        entries = [entry for entry in os.scandir(path.parent) if entry.name.startswith(prefix)]
    except FileNotFoundError:
        return []
    found = []
    for entry in entries:
        parts = entry.name[len(prefix) :].split("-")
        if len(parts) not in (2, 3) or not all(part.isdigit() for part in parts):
            continue
        found.append(((f"{parts[0]}-{parts[1]}", int(parts[2]) if len(parts) == 3 else 0), Path(entry.path)))
    found.sort()
    return found


def rotated_files(path: Path) -> list[Path]:
    """The rotated siblings of a log file, oldest first."""
    return [rotated for _, rotated in _rotated(path)]


# ---------------------------------------------------------------------------- layout


def pod_directory(pods_root: Path, *, namespace: str, name: str, uid: str) -> Path:
    return pods_root / f"{namespace}_{name}_{uid}"


def container_log_path(pod_dir: Path, *, container: str, restart_count: int) -> Path:
    return pod_dir / container / f"{restart_count}.log"


def termination_message_path(pod_dir: Path, *, container: str, restart_count: int) -> Path:
    """The host file bound at the attempt's ``terminationMessagePath``."""
    return pod_dir / container / f"{restart_count}.termination-log"


def create_termination_message_file(path: Path) -> None:
    """An empty file any container user may write (mode 0666 whatever the umask, as upstream's
    makeMounts chmods it); an existing one (a re-used attempt number) is emptied."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW, 0o666)
        try:
            os.fchmod(fd, 0o666)
        finally:
            os.close(fd)
    except OSError as exc:
        raise TerminationLogError(
            exc.errno, f'error on creating termination-log file "{path}": {exc.strerror}'
        ) from exc


def log_link_name(*, pod: str, namespace: str, container: str, container_id: str) -> str:
    return f"{pod}_{namespace}_{container}-{container_id}.log"


def create_log_link(
    containers_dir: Path, *, pod: str, namespace: str, container: str, container_id: str, target: Path
) -> Path:
    containers_dir.mkdir(parents=True, exist_ok=True)
    link = containers_dir / log_link_name(
        pod=pod, namespace=namespace, container=container, container_id=container_id
    )
    with contextlib.suppress(FileNotFoundError):
        link.unlink()
    link.symlink_to(target)
    return link


def remove_log_link(
    containers_dir: Path, *, pod: str, namespace: str, container: str, container_id: str
) -> None:
    name = log_link_name(pod=pod, namespace=namespace, container=container, container_id=container_id)
    with contextlib.suppress(FileNotFoundError):
        (containers_dir / name).unlink()


# ---------------------------------------------------------------------------- reading


@dataclass(frozen=True, kw_only=True)
class LogOptions:
    """What ``kubectl logs`` asks for (PodLogOptions, minus the container selection)."""

    follow: bool = False
    tail_lines: int | None = None
    since_time: float | None = None  # epoch seconds; sinceSeconds = now - since
    timestamps: bool = False
    limit_bytes: int | None = None
    streams: Collection[str] = field(default=STREAMS)

    def __post_init__(self) -> None:
        if self.tail_lines is not None and self.tail_lines < 0:
            raise ValueError(f"tail_lines must not be negative, got {self.tail_lines}")
        if self.limit_bytes is not None and self.limit_bytes <= 0:
            raise ValueError(f"limit_bytes must be positive, got {self.limit_bytes}")
        unknown = set(self.streams) - set(STREAMS)
        if unknown:
            raise ValueError(f"unknown streams {sorted(unknown)}: use stdout and/or stderr")


@dataclass(frozen=True, slots=True)
class LogEntry:
    timestamp: int  # epoch nanoseconds
    stream: str
    partial: bool
    message: bytes


def parse_line(line: bytes) -> LogEntry:
    """One CRI log line (without its newline)."""
    parts = line.split(b" ", 3)
    if len(parts) < 3:
        raise LogFormatError(f"unexpected CRI log line {line[:80]!r}")
    stamp, stream, tag = parts[0], parts[1], parts[2]
    if stream not in (b"stdout", b"stderr") or tag[:1] not in (b"P", b"F"):
        raise LogFormatError(f"unexpected CRI log line {line[:80]!r}")
    return LogEntry(
        timestamp=parse_timestamp(stamp),
        stream=stream.decode(),
        partial=tag[:1] == b"P",
        message=parts[3] if len(parts) == 4 else b"",
    )


def _tail_offset(fd: int, size: int, lines: int) -> int:
    """Byte offset where the last ``lines`` complete lines of the file start."""
    if lines == 0:
        return size
    block = 64 * 1024
    position = size
    newlines = 0
    # A final newline ends the last line; it does not start another one.
    end_skip = 1 if size and os.pread(fd, 1, size - 1) == b"\n" else 0
    while position > 0:
        read_from = max(0, position - block)
        chunk = os.pread(fd, position - read_from, read_from)
        if position == size and end_skip:
            chunk = chunk[:-1]
        index = len(chunk)
        while True:
            index = chunk.rfind(b"\n", 0, index)
            if index < 0:
                break
            newlines += 1
            if newlines == lines:
                return read_from + index + 1
        position = read_from
    return 0


class _Output:
    """Formats entries and enforces ``limit_bytes``."""

    def __init__(self, options: LogOptions) -> None:
        self.options = options
        self.remaining = options.limit_bytes
        self.since_ns = None if options.since_time is None else int(options.since_time * 1e9)
        self.streams = frozenset(options.streams)

    @property
    def exhausted(self) -> bool:
        return self.remaining is not None and self.remaining <= 0

    def render(self, lines: list[bytes]) -> bytes:
        out = bytearray()
        for line in lines:
            try:
                entry = parse_line(line)
            except LogFormatError:
                continue
            if entry.stream not in self.streams:
                continue
            if self.since_ns is not None and entry.timestamp < self.since_ns:
                continue
            if self.options.timestamps:
                out += output_timestamp(entry.timestamp) + b" "
            out += entry.message
            if not entry.partial:
                out += b"\n"
        data = bytes(out)
        if self.remaining is not None:
            data = data[: self.remaining]
            self.remaining -= len(data)
        return data


def tail_text(path: Path, *, lines: int = 80, limit_bytes: int = 2048) -> str:
    """The last ``lines`` entries as text, cut at ``limit_bytes`` (a terminated container's
    message under ``terminationMessagePolicy: FallbackToLogsOnError``); "" without a log."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return ""
    try:
        size = os.fstat(fd).st_size
        start = _tail_offset(fd, size, lines)
        data = os.pread(fd, size - start, start)
    finally:
        os.close(fd)
    output = _Output(LogOptions(limit_bytes=limit_bytes))
    return output.render(data.rstrip(b"\n").split(b"\n")).decode(errors="replace")


def _read_last(path: Path, limit: int) -> bytes:
    """tail.ReadAtMost: the last ``limit`` bytes of the file."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    try:
        size = os.fstat(fd).st_size
        start = max(size - limit, 0)
        return os.pread(fd, size - start, start)
    finally:
        os.close(fd)


def termination_message(*, message_file: Path | None, log_path: Path, fallback_to_logs: bool) -> str:
    """What an exited attempt left as its termination message (see the module doc).

    ``message_file``: the host file bound at its ``terminationMessagePath`` (None when nothing
    was bound); ``fallback_to_logs``: ``FallbackToLogsOnError`` and a non-zero exit. An
    unreadable file gives upstream's ``Error on reading termination log <path>: <error>``."""
    check_logs = fallback_to_logs
    message = ""
    if message_file is not None:
        try:
            data = _read_last(message_file, TERMINATION_MESSAGE_MAX_BYTES)
        except FileNotFoundError:
            data = None
        except OSError as exc:
            return f"Error on reading termination log {message_file}: {exc}"
        if data is not None:
            message = data.decode(errors="replace")
            check_logs = fallback_to_logs and not data
    if check_logs:
        return tail_text(log_path, lines=TERMINATION_LOG_MAX_LINES, limit_bytes=TERMINATION_LOG_MAX_BYTES)
    return message


async def read_container_log(
    path: Path,
    options: LogOptions,
    *,
    still_running: Callable[[], bool] | None = None,
    poll_interval: float = 0.1,
    chunk_size: int = 64 * 1024,
) -> AsyncIterator[bytes]:
    """Yield the container's log output as ``kubectl logs`` prints it (see the module doc).

    Raises ``FileNotFoundError`` if the log file does not exist. Without ``follow`` it stops
    at the end the file had when it was opened, so ``tailLines=N`` gives N lines even while the
    container writes more; with ``follow`` (when ``still_running`` is None or says False) at
    the end of the file.
    """
    output = _Output(options)
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        stat = os.fstat(fd)
        end = None if options.follow else stat.st_size
        position = 0
        if options.tail_lines is not None:
            position = _tail_offset(fd, stat.st_size, options.tail_lines)
        carry = b""
        idle_since: float | None = None
        while True:
            chunk = os.pread(fd, chunk_size if end is None else min(chunk_size, end - position), position)
            if chunk:
                position += len(chunk)
                data = carry + chunk
                cut = data.rfind(b"\n")
                if cut < 0:
                    carry = data
                    continue
                carry = data[cut + 1 :]
                text = output.render(data[:cut].split(b"\n"))
                if text:
                    yield text
                if output.exhausted:
                    return
                idle_since = None
                continue
            if not options.follow:
                return
            # End of file while following: rotated? stopped? or just quiet.
            try:
                current = os.stat(path)
            except FileNotFoundError:
                current = None
            if current is not None and (current.st_ino != stat.st_ino or current.st_size < position):
                os.close(fd)
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                stat = os.fstat(fd)
                position = 0
                carry = b""
                continue
            now = time.monotonic()
            if idle_since is None:
                idle_since = now
            # Stopped? Then one more look first: it may have written its last lines just now.
            stopped = still_running is None or not still_running()
            if stopped and os.fstat(fd).st_size <= position and now - idle_since >= poll_interval:
                return
            await asyncio.sleep(poll_interval)
    finally:
        os.close(fd)
