"""Listening and outgoing sockets: shared ClusterIP binds, bind errors in words, fast connects."""

from __future__ import annotations

import asyncio
import errno
import os
import socket
from pathlib import Path

import pytest

from control.proxy.sockets import (
    ListenError,
    explain_bind_error,
    listen_socket,
    outgoing_socket,
    start_connect,
    wait_connected,
)
from control.proxy.state import ListenerKey
from tests.control.proxy.conftest import pod_ip


def free_key(protocol: str = "TCP") -> ListenerKey:
    """A random service-like address with a port nothing uses."""
    ip = pod_ip().replace("127.244.", "127.98.")
    kind = socket.SOCK_STREAM if protocol == "TCP" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind((ip, 0))
        return ListenerKey(protocol, ip, probe.getsockname()[1])


@pytest.mark.parametrize("protocol", ["TCP", "UDP"])
def test_shared_listeners_bind_the_same_address(protocol):
    key = free_key(protocol)
    first = listen_socket(key, shared=True)
    second = listen_socket(key, shared=True)
    try:
        assert first.getsockname() == second.getsockname() == (key.ip, key.port)
        assert not first.getblocking()
    finally:
        first.close()
        second.close()


def test_unshared_listener_reports_the_address_in_use():
    key = free_key()
    holder = listen_socket(key, shared=True)
    try:
        with pytest.raises(ListenError) as caught:
            listen_socket(key, shared=False)
        assert caught.value.key == key
        assert str(caught.value).startswith(f"cannot listen on {key}: the address is in use")
        assert isinstance(caught.value.__cause__, OSError)
        assert caught.value.__cause__.errno == errno.EADDRINUSE
    finally:
        holder.close()


def test_shared_listener_blocked_by_a_socket_that_does_not_share():
    key = free_key()
    holder = listen_socket(key, shared=False)
    try:
        with pytest.raises(ListenError, match="does not share it"):
            listen_socket(key, shared=True)
    finally:
        holder.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop to another user")
def test_low_port_without_root_says_root_is_needed():
    """A child process that is not root tries to listen on port 80 and reports the message."""
    if int(Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text()) <= 80:
        pytest.skip("unprivileged users may bind port 80 on this machine")
    key = ListenerKey("TCP", pod_ip().replace("127.244.", "127.98."), 80)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop to nobody, try, report, exit without running any test machinery
        os.close(read_end)
        try:
            os.setgid(65534)
            os.setuid(65534)
            listen_socket(key, shared=True)
            os.write(write_end, b"bound")
        except ListenError as exc:
            os.write(write_end, str(exc).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        message = pipe.read().decode()
    os.waitpid(pid, 0)
    assert message.startswith(f"cannot listen on {key}: permission denied")
    assert "Ports below 1024 need root" in message


@pytest.mark.parametrize(
    ("code", "shared", "expected"),
    [
        (errno.EACCES, True, "permission denied. Ports below 1024 need root"),
        (errno.EADDRNOTAVAIL, True, "is not an address of this machine"),
        (errno.EADDRINUSE, False, "is another process (or node agent) using this node IP?"),
        (errno.EMFILE, True, "Too many open files"),
    ],
)
def test_bind_errors_are_explained(code, shared, expected):
    key = ListenerKey("UDP", "127.96.0.10", 53)
    message = explain_bind_error(key, OSError(code, os.strerror(code)), shared=shared)
    assert message.startswith("cannot listen on 127.96.0.10:53/UDP: ")
    assert expected in message


async def test_outgoing_socket_connects_from_the_source_address():
    server = listen_socket(free_key(), shared=False)
    source = pod_ip().replace("127.244.", "127.101.")
    sock = outgoing_socket("TCP", source_ip=source)
    try:
        if not start_connect(sock, server.getsockname()):
            await asyncio.wait_for(wait_connected(sock), 5)
        assert sock.getsockname()[0] == source
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    finally:
        sock.close()
        server.close()


async def test_loopback_connect_completes_without_waiting():
    server = listen_socket(free_key(), shared=False)
    sock = outgoing_socket("TCP", source_ip="127.0.0.1")
    try:
        assert start_connect(sock, server.getsockname()) is True
    finally:
        sock.close()
        server.close()


async def test_refused_connect_raises():
    key = free_key()  # nothing listens there
    sock = outgoing_socket("TCP", source_ip="127.0.0.1")
    try:
        with pytest.raises(ConnectionRefusedError):
            if not start_connect(sock, (key.ip, key.port)):
                await asyncio.wait_for(wait_connected(sock), 5)
    finally:
        sock.close()


async def test_a_backend_that_does_not_answer_is_waited_for():
    """A full accept queue drops the SYN: the connect stays in progress until the timeout."""
    server = socket.socket()
    server.bind((free_key().ip, 0))
    server.listen(0)
    fillers: list[socket.socket] = []
    sock = outgoing_socket("TCP", source_ip="127.0.0.1")
    try:
        # Fill the queue (its length is backlog + 1) with connections nobody accepts.
        while True:
            filler = outgoing_socket("TCP", source_ip="127.0.0.1")
            fillers.append(filler)
            if not start_connect(filler, server.getsockname()):
                break
        assert start_connect(sock, server.getsockname()) is False
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(wait_connected(sock), 0.2)
    finally:
        for filler in fillers:
            filler.close()
        sock.close()
        server.close()
