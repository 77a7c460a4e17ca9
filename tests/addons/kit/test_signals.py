"""SIGTERM and SIGINT as an event; running a main coroutine for its exit code."""

from __future__ import annotations

import asyncio
import os
import signal

from addons.kit.signals import StopSignal, loop_factory, run


async def test_sigterm_sets_the_event_once() -> None:
    with StopSignal() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        async with asyncio.timeout(5):
            assert await stop.wait() is signal.SIGTERM
        os.kill(os.getpid(), signal.SIGINT)  # a second signal while stopping is only logged
        await asyncio.sleep(0)
        assert stop.received is signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, signal.SIG_IGN, None) or callable(
        signal.getsignal(signal.SIGTERM)
    )


def test_run_returns_the_exit_code_on_uvloop_when_installed() -> None:
    async def main() -> int:
        return (
            3
            if (loop_factory() is None) == ("uvloop" not in type(asyncio.get_running_loop()).__module__)
            else 4
        )

    assert run(main()) == 3

    async def nothing() -> None:
        return None

    assert run(nothing(), use_uvloop=False) == 0
