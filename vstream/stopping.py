"""Ctrl-C and SIGTERM as a request to stop that never costs work already done.

Under :func:`stop_on_signals` the first signal raises KeyboardInterrupt, which the pipelines take
as "stop reading, finish what is in flight, finalise". From then on, and from the moment a run
starts finalising (:func:`finishing`), signals raise nothing: they only set :func:`hurried`,
which tells a drain to stop waiting for work still in flight. So a second Ctrl-C shortens the
stop instead of interrupting the code that writes what was done. Without :func:`stop_on_signals`
(vstream used as a library) Python's own SIGINT handling is left as it is.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGINT, signal.SIGTERM)
EXIT_INTERRUPTED = 130  # the exit code of a run a signal stopped
STOPPED_BEFORE_WORK = "interrupted: nothing written"  # what a run stopped before it wrote anything says
_calm = threading.Event()  # a stop was asked for, or the run is finalising: raise no more
_hurry = threading.Event()
_stopped = threading.Event()  # a signal stopped the run


def hurried() -> bool:
    """True once a signal came while the run was already stopping or finalising."""
    return _hurry.is_set()


def finishing() -> None:
    """The run is finalising its outputs: from here on a signal only hurries it."""
    _calm.set()


def _on_signal(signum: int, frame: object) -> None:
    if not _calm.is_set():
        _calm.set()
        _stopped.set()
        raise KeyboardInterrupt
    if not _hurry.is_set():
        _hurry.set()
        log.warning("%s again: finishing now, without the work still in flight",
                    signal.Signals(signum).name)


_active = threading.Event()  # inside stop_on_signals
RESEND_S = 0.01  # a dropped stop is asked for again this much later


def _on_dropped(unraisable) -> None:
    """``sys.unraisablehook`` inside :func:`stop_on_signals`.

    A signal's handler can run where Python cannot raise (an ``os.register_at_fork`` hook, which
    logging and filelock register, while Ray forks). Its KeyboardInterrupt or SystemExit is then
    dropped. That is a stop being asked for, not an error, so it is not printed as one. A stop of
    ours is asked for again, by re-sending the signal a moment later from another thread (sent from
    here, it would land in this hook), so that it lands where it can be raised.
    Ray's SystemExit while it starts is read back by
    :func:`vstream.drivers.actors.connect_ray`.
    """
    if not isinstance(unraisable.exc_value, (KeyboardInterrupt, SystemExit)):
        sys.__unraisablehook__(unraisable)
        return
    if isinstance(unraisable.exc_value, KeyboardInterrupt) and _stopped.is_set() and not _hurry.is_set():
        _calm.clear()
        _stopped.clear()
        threading.Timer(RESEND_S, os.kill, (os.getpid(), signal.SIGINT)).start()


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Handle SIGINT and SIGTERM as described in this module, inside the block (main thread only).

    Afterwards the previous handlers are back, unless a signal stopped the run: then the signals
    stay ignored, so that a late one of a burst cannot turn the exit code (130) into a kill."""
    _calm.clear()
    _hurry.clear()
    _stopped.clear()
    previous = {signum: signal.signal(signum, _on_signal) for signum in SIGNALS}
    previous_hook, sys.unraisablehook = sys.unraisablehook, _on_dropped
    _active.set()
    try:
        yield
    finally:
        _active.clear()
        sys.unraisablehook = previous_hook
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_IGN if _stopped.is_set() else handler)
        _calm.clear()
        _hurry.clear()


def reclaim_signals() -> None:
    """Handle the signals again inside :func:`stop_on_signals`, after a library (``ray.init``,
    which makes SIGTERM end the process at once) installed its own handlers."""
    if _active.is_set() and threading.current_thread() is threading.main_thread():
        for signum in SIGNALS:
            signal.signal(signum, _on_signal)
