"""Ctrl-C while following: the first stops the loop at its next pause, a second at once.

The handler is called directly, as the interpreter calls it on SIGINT: a real signal sent to
this test process could land anywhere in it (a gc callback, another test's thread). The
installed command's test sends a real one (tests/gpurun/test_installed_command.py).
"""

from __future__ import annotations

import signal
import time

import pytest

from gpurun.interrupt import deferred_interrupt


def ctrl_c() -> None:
    handler = signal.getsignal(signal.SIGINT)
    assert callable(handler)
    handler(signal.SIGINT, None)


def test_a_ctrl_c_lets_the_work_in_flight_finish_and_stops_the_next_pause() -> None:
    with deferred_interrupt() as sleep:
        ctrl_c()  # returns: the AWS call in flight is not interrupted
        started = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            sleep(60)
    assert time.monotonic() - started < 30  # the pause ended at once, not after 60 s


def test_a_second_ctrl_c_raises_at_once() -> None:
    with deferred_interrupt():
        ctrl_c()
        with pytest.raises(KeyboardInterrupt):
            ctrl_c()


def test_a_pause_without_ctrl_c_just_waits() -> None:
    with deferred_interrupt() as sleep:
        sleep(0.01)


def test_the_previous_handler_is_back_afterwards() -> None:
    before = signal.getsignal(signal.SIGINT)
    with deferred_interrupt():
        assert signal.getsignal(signal.SIGINT) is not before
    assert signal.getsignal(signal.SIGINT) is before
