from __future__ import annotations

import os
import signal
import time

import pytest

from vstream.stopping import hurried, stop_on_signals


@pytest.fixture
def handlers():
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield saved
    for s, handler in saved.items():
        signal.signal(s, handler)


def _deliver(sig: int) -> None:
    os.kill(os.getpid(), sig)
    time.sleep(0.05)  # the handler runs in the main thread at the next bytecode


def test_a_signal_stops_once_and_later_ones_only_hurry(handlers):
    with pytest.raises(KeyboardInterrupt), stop_on_signals():
        _deliver(signal.SIGTERM)
    with stop_on_signals():
        with pytest.raises(KeyboardInterrupt):
            _deliver(signal.SIGINT)
        _deliver(signal.SIGINT)  # the drain goes on: no second KeyboardInterrupt
        assert hurried()


def test_after_a_stop_a_late_signal_of_the_burst_is_ignored(handlers):
    with pytest.raises(KeyboardInterrupt), stop_on_signals():
        _deliver(signal.SIGINT)
    _deliver(signal.SIGINT)  # would end the process (exit -2, not 130) if the default were back
    _deliver(signal.SIGTERM)


def test_a_run_that_was_not_stopped_gets_its_handlers_back(handlers):
    with stop_on_signals():
        pass
    assert all(signal.getsignal(s) is handler for s, handler in handlers.items())


class _DroppingFinaliser:
    """Delivers a signal inside ``__del__``, where Python cannot raise: the handler's
    KeyboardInterrupt is dropped there, as in an ``os.register_at_fork`` hook while Ray forks."""

    def __del__(self) -> None:
        _deliver(signal.SIGTERM)


def test_a_stop_dropped_where_python_cannot_raise_is_asked_for_again_and_not_printed(handlers, capsys):
    with pytest.raises(KeyboardInterrupt), stop_on_signals():
        finaliser = _DroppingFinaliser()
        del finaliser  # the stop is dropped inside __del__ ...
        time.sleep(0.5)  # ... and lands again here
    assert "Exception ignored" not in capsys.readouterr().err
