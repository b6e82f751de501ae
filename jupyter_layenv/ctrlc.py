"""Ctrl-C in ``jupyter layenv``: one SIGINT handler for the whole command, from the moment its code loads.

Pressed with nothing to cancel (the commands loading, a listing, an export, a sync), it ends the command with one
``error: interrupted`` line, exit 1, never a traceback (``finally`` blocks still run). A command that follows a job
hands it what to do instead while it runs (:func:`handled_by`: cancel the job), and nothing once the outcome is
decided (made, changed, cancelled or refused: a Ctrl-C then would only turn its report into "interrupted").
"""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Callable, Iterator
from types import FrameType

_action: Callable[[], object] | None = None  # what Ctrl-C does to the running work (None: end the command)


def install() -> None:
    """Handle SIGINT from now on; outside the main thread (imported by a test, say) there is no Ctrl-C to handle."""
    with contextlib.suppress(ValueError):
        signal.signal(signal.SIGINT, _pressed)


@contextlib.contextmanager
def handled_by(action: Callable[[], object]) -> Iterator[None]:
    """Ctrl-C calls ``action`` (from the signal handler: it must only schedule work) while the block runs, and is
    ignored after it: the outcome is decided."""
    global _action
    _action = action
    install()  # again: an earlier block left Ctrl-C ignored
    try:
        yield
    finally:
        # SIG_IGN, not a handler that does nothing: Python puts its handlers back to the default as it exits, and a
        # Ctrl-C then would kill the process (exit 130 after "created …")
        with contextlib.suppress(ValueError):
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def _pressed(signum: int, frame: FrameType | None) -> None:
    if _action is not None:
        _action()
        return
    sys.stderr.write("error: interrupted\n")
    raise SystemExit(1)
