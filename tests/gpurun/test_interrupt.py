"""Ctrl-C while following: the first stops the loop at its next pause, a second at once."""

from __future__ import annotations

import os
import signal
import time

import pytest

from gpurun.interrupt import deferred_interrupt


def ctrl_c() -> None:
    os.kill(os.getpid(), signal.SIGINT)


def test_a_ctrl_c_lets_the_work_in_flight_finish_and_stops_the_next_pause() -> None:
    finished = False
    with deferred_interrupt() as sleep:
        ctrl_c()
        finished = True  # an AWS call in flight: not interrupted
        started = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            sleep(60)
    assert finished
    assert time.monotonic() - started < 30  # the pause ended at once, not after 60 s


def second_ctrl_c_while_working() -> None:
    ctrl_c()
    ctrl_c()
    for _ in range(1000):  # the handler runs between bytecodes: give it some
        time.sleep(0.01)
    pytest.fail("a second Ctrl-C did not interrupt")


def test_a_second_ctrl_c_raises_at_once() -> None:
    with deferred_interrupt(), pytest.raises(KeyboardInterrupt):
        second_ctrl_c_while_working()


def test_a_pause_without_ctrl_c_just_waits() -> None:
    with deferred_interrupt() as sleep:
        sleep(0.01)


def test_the_previous_handler_is_back_afterwards() -> None:
    before = signal.getsignal(signal.SIGINT)
    with deferred_interrupt():
        assert signal.getsignal(signal.SIGINT) is not before
    assert signal.getsignal(signal.SIGINT) is before
