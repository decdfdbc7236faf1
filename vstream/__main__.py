"""``python -m vstream`` and the ``vstream`` command."""

import signal
import sys

from .stopping import EXIT_INTERRUPTED, STOPPED_BEFORE_WORK


def run() -> None:
    """Load the command line and run it. A signal while it loads (most of a second: PyAV, OpenCV,
    NumPy) stops it as one before any work does later: a line and exit code 130, not a
    traceback (SIGINT) or a silent kill (SIGTERM)."""
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        from .cli import main
    except KeyboardInterrupt:
        print(STOPPED_BEFORE_WORK, file=sys.stderr)
        raise SystemExit(EXIT_INTERRUPTED) from None
    signal.signal(signal.SIGTERM, previous)
    main()


if __name__ == "__main__":
    run()
