"""The per-container shim: starts one container and watches over it until it exits.

Modelled on containerd's shim and conmon. The container's stdout and stderr are pipes
(or a pseudo-terminal when the container asked for a TTY) read by its shim, not by the
node agent, so a container keeps running — and its output keeps reaching its CRI log
file — while the node agent restarts; the agent re-adopts it from the records the shim
writes in the container's directory:

- ``config.json`` (written by the runtime): argv, env, working dir, mounts, log file and
  rotation, cgroup, attach socket name;
- ``state.json`` (written once the container runs): the shim's and the container's pids
  and their start times (so a recycled pid is never mistaken for them), the start time;
- ``exit.json`` (written when the container has exited): exit code, reason
  (``Completed``, ``Error``, ``OOMKilled``, ``StartError``), message, finish time.

Start-up: the shim forks the container process, which becomes a session leader (so the
runtime can signal its whole process group), joins its cgroups, enters its mount
namespace (``control.kubelet.runtime.mountns``) when asked, takes on its credentials (user,
groups, capabilities, no_new_privs: ``control.kubelet.runtime.security``), changes directory
(as the container's user) and execs.
A failure before ``exec`` (program not found, bad working dir, mount error) comes back
over a close-on-exec pipe and ends as exit code 128 with reason ``StartError``, as with
containerd. The shim then reports ``{"pid": ...}`` or ``{"error": ...}`` on the handshake
file descriptor the runtime gave it.

While the container runs, the shim copies its output into the log file and to attached
clients. Attach is a Unix socket in the abstract namespace (no path length limits), open
to the shim's own user (and root) only; frames both ways are ``<channel:1><length:4>
<payload>`` — client to shim: 0 stdin, 3 close stdin, 4 resize (``{"width","height"}``);
shim to client: 1 stdout, 2 stderr, 3 exit (``{"exit_code": N}``).

When the container's main process exits, what is left of it (its process group, and its
cgroup when there is one) is killed, as a pid namespace ending would, the remaining
output is drained, and ``exit.json`` is written.

The shim ignores SIGTERM, SIGINT and SIGHUP: it ends when its container ends.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import json
import os
import selectors
import signal
import socket
import struct
import termios
import time
from pathlib import Path
from typing import Any

from control.kubelet.logs import CRILogWriter
from control.kubelet.runtime import mountns, procfs, security
from control.kubelet.runtime.cgroups import read_oom_kills

START_ERROR_EXIT_CODE = 128
DRAIN_SECONDS = 2.0
MAX_CLIENT_BUFFER = 4 * 1024 * 1024
_FRAME = struct.Struct(">BI")
CHANNEL_STDIN, CHANNEL_STDOUT, CHANNEL_STDERR, CHANNEL_CONTROL, CHANNEL_RESIZE = 0, 1, 2, 3, 4
_PR_SET_NAME = 15


def write_json_atomically(path: Path, value: Any) -> None:
    """Replace ``path`` in one step, so a reader (or a restarted agent) never sees half a record.

    Not fsynced: these records matter across process crashes, which the page cache survives;
    after a machine crash every container is gone anyway."""
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "w") as out:
        json.dump(value, out)
    os.replace(temporary, path)


def frame(channel: int, payload: bytes) -> bytes:
    return _FRAME.pack(channel, len(payload)) + payload


def start_error_message(exc: BaseException, *, argv0: str, working_dir: str) -> str:
    """Why the container could not start, worded as runc words it."""
    prefix = "failed to start container process: "
    if isinstance(exc, _ChdirError):
        return f'{prefix}chdir to cwd ("{working_dir}") set in config.json failed: {os.strerror(exc.errno or 0).lower()}'
    if isinstance(exc, (mountns.MountError, security.CredentialsError)):
        return prefix + str(exc.strerror or exc)
    if isinstance(exc, FileNotFoundError):
        if "/" in argv0:
            return f'{prefix}exec: "{argv0}": stat {argv0}: no such file or directory'
        return f'{prefix}exec: "{argv0}": executable file not found in $PATH'
    if isinstance(exc, PermissionError):
        return f'{prefix}exec: "{argv0}": permission denied'
    if isinstance(exc, OSError):
        return f'{prefix}exec: "{argv0}": {os.strerror(exc.errno or 0).lower()}'
    return f"{prefix}{exc}"


class _ChdirError(OSError):
    pass


def _set_process_name(name: bytes) -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(_PR_SET_NAME, ctypes.c_char_p(name), 0, 0, 0)


class _Client:
    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.inbox = bytearray()
        self.outbox = bytearray()
        self.sent_stdin = False


class Shim:
    def __init__(self, directory: Path, handshake_fd: int) -> None:
        self.directory = directory
        self.handshake_fd = handshake_fd
        self.config: dict[str, Any] = json.loads((directory / "config.json").read_text())
        self.selector = selectors.DefaultSelector()
        self.clients: dict[int, _Client] = {}
        self.stdin_fd = -1
        self.stdin_pending = bytearray()
        self.stdin_closing = False
        self.tty_master = -1
        self.outputs: dict[int, str] = {}  # fd -> stream name

    # ------------------------------------------------------------------ start-up

    def run(self) -> int:
        _set_process_name(b"kubelab-shim")
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        config = self.config
        oom_file = config.get("oom_file")
        oom_before = read_oom_kills(Path(oom_file)) if oom_file else 0
        writer = CRILogWriter(
            Path(config["log_path"]), max_bytes=config["log_max_bytes"], max_files=config["log_max_files"]
        )
        child_fds, parent_fds = self._stdio()
        error_r, error_w = os.pipe2(os.O_CLOEXEC)
        pid = os.fork()
        if pid == 0:  # the container
            os.close(error_r)
            self._exec_container(child_fds, error_w)
        os.close(error_w)
        for fd in child_fds:
            os.close(fd)
        failure = b""
        while chunk := os.read(error_r, 65536):
            failure += chunk
        os.close(error_r)
        if failure:
            os.waitpid(pid, 0)
            writer.close()
            now = time.time()
            write_json_atomically(
                self.directory / "exit.json",
                {
                    "exit_code": START_ERROR_EXIT_CODE,
                    "reason": "StartError",
                    "message": failure.decode(errors="replace"),
                    "started_at": now,
                    "finished_at": now,
                },
            )
            self._handshake({"error": failure.decode(errors="replace")})
            return 0
        started_at = time.time()
        write_json_atomically(
            self.directory / "state.json",
            {
                "shim_pid": os.getpid(),
                "shim_start": procfs.start_ticks(os.getpid()),
                "pid": pid,
                "pid_start": procfs.start_ticks(pid),
                "started_at": started_at,
            },
        )
        listener = self._listen()
        self._handshake({"pid": pid, "started_at": started_at})
        status = self._supervise(pid, parent_fds, listener, writer)
        writer.close()
        oom_killed = bool(oom_file) and read_oom_kills(Path(oom_file)) > oom_before
        exit_code, reason = _exit_of(status, oom_killed=oom_killed)
        write_json_atomically(
            self.directory / "exit.json",
            {
                "exit_code": exit_code,
                "reason": reason,
                "message": "",
                "started_at": started_at,
                "finished_at": time.time(),
            },
        )
        self._say_goodbye(exit_code)
        return 0

    def _handshake(self, message: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):
            os.write(self.handshake_fd, json.dumps(message).encode() + b"\n")
        with contextlib.suppress(OSError):
            os.close(self.handshake_fd)

    def _stdio(self) -> tuple[list[int], list[int]]:
        """(fds for the container's 0, 1, 2), (fds the shim keeps)."""
        config = self.config
        if config.get("tty"):
            master, slave = os.openpty()
            os.set_blocking(master, False)
            self.tty_master = master
            self.outputs[master] = "stdout"
            if config.get("stdin"):
                self.stdin_fd = master
            return [slave, os.dup(slave), os.dup(slave)], [master]
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        for fd in (out_r, err_r):
            os.set_blocking(fd, False)
        self.outputs[out_r] = "stdout"
        self.outputs[err_r] = "stderr"
        if config.get("stdin"):
            in_r, in_w = os.pipe()
            os.set_blocking(in_w, False)
            self.stdin_fd = in_w
            return [in_r, out_w, err_w], [out_r, err_r, in_w]
        return [os.open(os.devnull, os.O_RDONLY), out_w, err_w], [out_r, err_r]

    def _exec_container(self, child_fds: list[int], error_w: int) -> None:
        config = self.config
        argv = config["argv"]
        working_dir = config.get("working_dir") or "/"
        try:
            os.setsid()
            if config.get("tty"):
                fcntl.ioctl(child_fds[0], termios.TIOCSCTTY, 0)
            for procs in config.get("cgroup_procs") or ():
                with open(procs, "w") as handle:
                    handle.write(str(os.getpid()))
            if config.get("namespaces"):
                mountns.enter_container_root(
                    rootfs=config["rootfs"],
                    hostname=config.get("hostname", ""),
                    mounts=[mountns.MountSpec(**spec) for spec in config.get("mounts") or ()],
                    private_tmp=config.get("private_tmp", True),
                    keep_in_tmp=config.get("keep_in_tmp") or (),
                    read_only_root=bool(config.get("read_only_root")),
                    host_devices=bool(config.get("host_devices")),
                )
            if config.get("credentials"):
                security.apply_credentials(security.Credentials.from_record(config["credentials"]))
            for target, fd in enumerate(child_fds):
                os.dup2(fd, target, inheritable=True)
            os.closerange(3, error_w)
            os.closerange(error_w + 1, 65536)
            try:
                os.chdir(working_dir)
            except OSError as exc:
                raise _ChdirError(exc.errno, exc.strerror) from exc
            for signum in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                signal.signal(signum, signal.SIG_DFL)
            os.execvpe(argv[0], argv, config["env"])
        except BaseException as exc:  # everything must end in the error pipe, then _exit
            message = start_error_message(exc, argv0=argv[0] if argv else "", working_dir=working_dir)
            with contextlib.suppress(OSError):
                os.write(error_w, message.encode())
        finally:
            os._exit(START_ERROR_EXIT_CODE)

    def _listen(self) -> socket.socket | None:
        name = self.config.get("attach")
        if not name:
            return None
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        listener.bind("\0" + name)
        listener.listen(8)
        listener.setblocking(False)
        return listener

    # ------------------------------------------------------------------ the loop

    def _supervise(
        self, pid: int, parent_fds: list[int], listener: socket.socket | None, writer: CRILogWriter
    ) -> int:
        selector = self.selector
        for fd in self.outputs:
            selector.register(fd, selectors.EVENT_READ, "output")
        pidfd = os.pidfd_open(pid)
        selector.register(pidfd, selectors.EVENT_READ, "exit")
        if listener is not None:
            selector.register(listener, selectors.EVENT_READ, "listener")
        status: int | None = None
        drain_deadline = 0.0
        while True:
            timeout = None if status is None else max(0.0, drain_deadline - time.monotonic())
            for key, mask in selector.select(timeout):
                kind = key.data
                if kind == "output":
                    self._read_output(key.fd, writer)
                elif kind == "exit":
                    selector.unregister(pidfd)
                    os.close(pidfd)
                    _, status = os.waitpid(pid, 0)
                    self._kill_leftovers(pid)
                    drain_deadline = time.monotonic() + DRAIN_SECONDS
                elif kind == "listener":
                    self._accept(listener)
                elif kind == "client":
                    self._client_event(key.fd, mask)
                elif kind == "stdin":
                    self._flush_stdin()
            if status is not None and (not self.outputs or time.monotonic() >= drain_deadline):
                break
        for fd in list(self.outputs):
            self._close_output(fd)
        if listener is not None:
            with contextlib.suppress(KeyError, ValueError):
                selector.unregister(listener)
            listener.close()
        for fd in parent_fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        return status

    def _read_output(self, fd: int, writer: CRILogWriter) -> None:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError as exc:  # a pty master reads EIO once the container side is closed
            if exc.errno != errno.EIO:
                raise
            data = b""
        if not data:
            self._close_output(fd)
            return
        stream = self.outputs[fd]
        writer.write(stream, data)
        if self.clients:
            self._broadcast(frame(CHANNEL_STDOUT if stream == "stdout" else CHANNEL_STDERR, data))

    def _close_output(self, fd: int) -> None:
        if self.outputs.pop(fd, None) is None:
            return
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(fd)
        if fd != self.tty_master:
            with contextlib.suppress(OSError):
                os.close(fd)

    def _kill_leftovers(self, pid: int) -> None:
        """The main process is gone: end the rest of the container, as its pid namespace would."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        for procs in self.config.get("cgroup_procs") or ():
            with contextlib.suppress(OSError):
                for raw in Path(procs).read_text().split():
                    with contextlib.suppress(ProcessLookupError, ValueError):
                        os.kill(int(raw), signal.SIGKILL)

    # ------------------------------------------------------------------ attach

    def _accept(self, listener: socket.socket | None) -> None:
        assert listener is not None
        try:
            conn, _ = listener.accept()
        except BlockingIOError:
            return
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        _, uid, _ = struct.unpack("3i", creds)
        if uid not in (0, os.getuid()):
            conn.close()
            return
        conn.setblocking(False)
        self.clients[conn.fileno()] = _Client(conn)
        self.selector.register(conn, selectors.EVENT_READ, "client")

    def _drop_client(self, client: _Client) -> None:
        self.clients.pop(client.conn.fileno(), None)
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(client.conn)
        client.conn.close()
        if client.sent_stdin and self.config.get("stdin_once"):
            self._close_stdin()

    def _client_event(self, fd: int, mask: int) -> None:
        client = self.clients.get(fd)
        if client is None:
            return
        if mask & selectors.EVENT_WRITE:
            self._flush_client(client)
        if mask & selectors.EVENT_READ:
            try:
                data = client.conn.recv(65536)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._drop_client(client)
                return
            client.inbox += data
            while len(client.inbox) >= _FRAME.size:
                channel, length = _FRAME.unpack_from(client.inbox)
                if len(client.inbox) < _FRAME.size + length:
                    break
                payload = bytes(client.inbox[_FRAME.size : _FRAME.size + length])
                del client.inbox[: _FRAME.size + length]
                self._client_frame(client, channel, payload)

    def _client_frame(self, client: _Client, channel: int, payload: bytes) -> None:
        if channel == CHANNEL_STDIN and self.stdin_fd >= 0 and not self.stdin_closing:
            client.sent_stdin = True
            self.stdin_pending += payload
            self._flush_stdin()
        elif channel == CHANNEL_CONTROL:
            self._close_stdin()
        elif channel == CHANNEL_RESIZE and self.tty_master >= 0:
            with contextlib.suppress(ValueError, KeyError, OSError):
                size = json.loads(payload)
                fcntl.ioctl(
                    self.tty_master,
                    termios.TIOCSWINSZ,
                    struct.pack("HHHH", int(size["height"]), int(size["width"]), 0, 0),
                )

    def _flush_stdin(self) -> None:
        if self.stdin_fd < 0:
            return
        while self.stdin_pending:
            try:
                written = os.write(self.stdin_fd, self.stdin_pending)
            except BlockingIOError:
                break
            except OSError:  # the container closed its stdin
                self.stdin_pending.clear()
                break
            del self.stdin_pending[:written]
        registered = self.stdin_fd in self.selector.get_map() if self.stdin_fd != self.tty_master else False
        if self.stdin_pending and not registered and self.stdin_fd != self.tty_master:
            self.selector.register(self.stdin_fd, selectors.EVENT_WRITE, "stdin")
        elif not self.stdin_pending and registered:
            self.selector.unregister(self.stdin_fd)
        if not self.stdin_pending and self.stdin_closing:
            self._close_stdin()

    def _close_stdin(self) -> None:
        if self.stdin_fd < 0:
            return
        self.stdin_closing = True
        if self.stdin_pending:
            return
        if self.stdin_fd == self.tty_master:
            # A terminal has no half-close: send the EOF character, as a user typing ^D would.
            with contextlib.suppress(OSError):
                os.write(self.tty_master, b"\x04")
        else:
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(self.stdin_fd)
            with contextlib.suppress(OSError):
                os.close(self.stdin_fd)
        self.stdin_fd = -1

    def _broadcast(self, data: bytes) -> None:
        for client in list(self.clients.values()):
            client.outbox += data
            if len(client.outbox) > MAX_CLIENT_BUFFER:
                self._drop_client(client)  # too slow a reader: it must not hold the container up
                continue
            self._flush_client(client)

    def _flush_client(self, client: _Client) -> None:
        try:
            while client.outbox:
                sent = client.conn.send(client.outbox)
                del client.outbox[:sent]
        except BlockingIOError:
            pass
        except OSError:
            self._drop_client(client)
            return
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if client.outbox else 0)
        with contextlib.suppress(KeyError, ValueError):
            self.selector.modify(client.conn, events, "client")

    def _say_goodbye(self, exit_code: int) -> None:
        goodbye = frame(CHANNEL_CONTROL, json.dumps({"exit_code": exit_code}).encode())
        for client in list(self.clients.values()):
            with contextlib.suppress(OSError):
                client.conn.setblocking(True)
                client.conn.settimeout(1.0)
                client.conn.sendall(bytes(client.outbox) + goodbye)
            client.conn.close()
        self.clients.clear()


def _exit_of(status: int, *, oom_killed: bool) -> tuple[int, str]:
    """(exit code as Kubernetes reports it, reason)."""
    code = 128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    if oom_killed and code == 128 + signal.SIGKILL:
        return code, "OOMKilled"
    return code, "Completed" if code == 0 else "Error"


def run(directory: Path, handshake_fd: int) -> int:
    """The shim's whole life (called in a process forked by the zygote)."""
    return Shim(directory, handshake_fd).run()
