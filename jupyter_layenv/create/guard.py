"""The leader of a build step's process group: the step dies with the server that started it.

A server killed with ``kill -9`` cannot clean up; without this its installer would keep writing into a
half-made env that another server, seeing the env's lock free, may be removing. The guard asks the kernel for a
signal when its parent dies (Linux ``PR_SET_PDEATHSIG``) and then kills its whole group. It also keeps the env's
lock descriptor open (as does every process of the step), so the ``flock`` stays held until the last of them
is gone: a lock that is free means nothing of the build is left.

Usage (by :mod:`.process` only): ``python -m jupyter_layenv.create.guard PARENT_PID -- ARGV...``
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys

PR_SET_PDEATHSIG = 1
PARENT_DIED = signal.SIGUSR1


def _kill_group(*_: object) -> None:
    os.killpg(0, signal.SIGKILL)  # the guard too: nothing of the step survives its server


def main(argv: list[str]) -> int:
    parent, argv = int(argv[0]), argv[argv.index("--") + 1 :]
    signal.signal(PARENT_DIED, _kill_group)
    with contextlib.suppress(OSError, AttributeError):  # no prctl (not Linux): recovery kills the group
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(PARENT_DIED), 0, 0, 0)
    if os.getppid() != parent:  # the server died before the request took effect
        _kill_group()
    child = subprocess.Popen(argv, close_fds=False)  # the lock descriptor stays open in the step's processes
    while True:
        try:
            code = child.wait()
            break
        except InterruptedError:
            continue
    return 128 - code if code < 0 else code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
