"""How the proxy opens its sockets: listeners on service addresses, and sockets towards backends.

**Several node agents on one machine.** A lab runs one proxy per node agent, all on the same
host, and every one of them must serve every ClusterIP. Only one socket may normally bind
``127.96.0.10:53``; so ClusterIP listeners are opened with ``SO_REUSEPORT``: every proxy binds
the same address and the kernel spreads new TCP connections (and UDP flows, by their address
4-tuple) over the proxies' sockets. There is no leader to elect and nothing to hand over: when a
node agent stops or is killed, its sockets close and the kernel sends everything to the others
at once. The kernel only lets sockets of the same user share a port this way, so all node
agents must run as the same user. NodePorts bind the node's own IP (``127.100.0.N``), which no
other proxy uses, so they are opened *without* ``SO_REUSEPORT``: a second process on the same
node address is an error worth seeing.

**Towards backends** the proxy connects from the node's IP, as kube-proxy's userspace mode did
(the backend sees the node as its client). ``IP_BIND_ADDRESS_NO_PORT`` lets the kernel choose
the source port at connect time, per destination, so binding the source address does not limit
the proxy to one ephemeral port range for all backends together.

Bind failures become :class:`ListenError` with a message that says what to do — notably that
ports below 1024 need root.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket

from control.proxy.state import ListenerKey

# Linux's IP_BIND_ADDRESS_NO_PORT (include/uapi/linux/in.h); the socket module lacks it before 3.12.
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)
LISTEN_BACKLOG = socket.SOMAXCONN


class ListenError(Exception):
    """A listener could not be opened; the message names the address and the likely fix."""

    def __init__(self, message: str, *, key: ListenerKey) -> None:
        super().__init__(message)
        self.key = key


def listen_socket(key: ListenerKey, *, shared: bool) -> socket.socket:
    """A bound, non-blocking socket for ``key`` (listening, for TCP); ``shared`` sets SO_REUSEPORT."""
    kind = socket.SOCK_STREAM if key.protocol == "TCP" else socket.SOCK_DGRAM
    sock = socket.socket(socket.AF_INET, kind)
    try:
        if kind == socket.SOCK_STREAM:
            # Lets a restarted proxy bind again while old connections sit in TIME_WAIT.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if shared:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((key.ip, key.port))
        if kind == socket.SOCK_STREAM:
            sock.listen(LISTEN_BACKLOG)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise ListenError(explain_bind_error(key, exc, shared=shared), key=key) from exc
    return sock


def outgoing_socket(protocol: str, *, source_ip: str) -> socket.socket:
    """A non-blocking socket bound to ``source_ip`` (port chosen at connect), ready to connect."""
    kind = socket.SOCK_STREAM if protocol == "TCP" else socket.SOCK_DGRAM
    sock = socket.socket(socket.AF_INET, kind)
    try:
        sock.setblocking(False)
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((source_ip, 0))
    except OSError:
        sock.close()
        raise
    return sock


def start_connect(sock: socket.socket, address: tuple[str, int]) -> bool:
    """Start connecting the non-blocking ``sock``; True if it is already connected.

    Towards a loopback address the kernel completes the handshake within ``connect()`` itself
    (which still answers ``EINPROGRESS``), so checking for that first avoids a trip through the
    event loop — about half the cost of a new proxied connection compared with
    ``loop.sock_connect``. Otherwise :func:`wait_connected` finishes the job. Raises OSError.
    """
    code = sock.connect_ex(address)
    if code == 0:
        return True
    if code != errno.EINPROGRESS:
        raise OSError(code, os.strerror(code))
    try:
        sock.getpeername()
    except OSError:
        return False  # not yet: the backend has not answered (a full accept queue, say)
    return True


async def wait_connected(sock: socket.socket) -> None:
    """Wait until a connect started by :func:`start_connect` finishes; raise OSError if it failed."""
    loop = asyncio.get_running_loop()
    writable = loop.create_future()
    fd = sock.fileno()
    loop.add_writer(fd, lambda: writable.done() or writable.set_result(None))
    try:
        await writable
    finally:
        loop.remove_writer(fd)
    code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if code != 0:
        raise OSError(code, os.strerror(code))


def explain_bind_error(key: ListenerKey, error: OSError, *, shared: bool) -> str:
    """What went wrong binding ``key``, in words a lab user can act on."""
    where = f"cannot listen on {key}"
    if error.errno == errno.EACCES:
        return (
            f"{where}: permission denied. Ports below 1024 need root (or CAP_NET_BIND_SERVICE, "
            "or a lower net.ipv4.ip_unprivileged_port_start): run the node agent as root"
        )
    if error.errno == errno.EADDRINUSE:
        if shared:
            return (
                f"{where}: the address is in use by a socket that does not share it (SO_REUSEPORT), "
                "or by a process of another user; another program may be listening there"
            )
        return f"{where}: the address is in use; is another process (or node agent) using this node IP?"
    if error.errno == errno.EADDRNOTAVAIL:
        return (
            f"{where}: {key.ip} is not an address of this machine (service and node addresses "
            "must be in 127.0.0.0/8, which is local on Linux)"
        )
    return f"{where}: {error.strerror or error}"
