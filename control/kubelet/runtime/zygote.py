"""The shim fork server: one small process per node agent that forks a shim per container.

Starting a Python interpreter costs tens of milliseconds of CPU; forking a small
single-threaded process that has already imported the shim costs about a millisecond.
So the runtime starts this server once (``python -m control.kubelet.runtime.zygote <fd>``)
and asks it for each shim over a ``SOCK_SEQPACKET`` socket: one message per container,
``{"directory": ...}``, carrying the write end of the container's handshake pipe as
``SCM_RIGHTS``. The forked shim reports on that pipe itself (see
``control.kubelet.runtime.shim``).

Forking from the node agent directly is not an option: it is a multi-threaded asyncio
process, and running Python in a child forked from one is unsafe.

The server lives as long as its socket: when the node agent closes it (or dies) the server
exits, and the shims it forked carry on, re-parented, until their containers end — which
is what lets containers survive a node agent restart. Children are reaped automatically
(``SIGCHLD`` ignored); each shim restores the default before it forks its container.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
from pathlib import Path

from control.kubelet.runtime import shim

MAX_MESSAGE = 64 * 1024


def serve(sock: socket.socket) -> None:
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(sock, MAX_MESSAGE, 4)
        except InterruptedError:
            continue
        except OSError:
            return
        if not message:
            for fd in fds:
                os.close(fd)
            return
        if len(fds) != 1:
            for fd in fds:
                os.close(fd)
            continue
        request = json.loads(message)
        handshake_fd = fds[0]
        if os.fork() == 0:
            code = 1
            try:
                sock.close()
                os.setsid()
                code = shim.run(Path(request["directory"]), handshake_fd)
            finally:
                os._exit(code)
        os.close(handshake_fd)


def main() -> None:
    sock = socket.socket(fileno=int(sys.argv[1]))
    with contextlib.suppress(KeyboardInterrupt):
        serve(sock)


if __name__ == "__main__":
    main()
