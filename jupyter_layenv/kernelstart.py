"""A kernel's start and a delete of its env exclude each other, so no kernel runs from a deleted env.

Between the provisioner's look at the env and the kernel's process (whose command line, naming the env's Python and
a connection file, is what :mod:`inuse` finds), the server lists no kernel and ``/proc`` shows none: a delete there
would remove the env under the start. So a start holds a shared ``flock`` on the env's directory itself from before
it reads the env until its process runs (``Popen`` returns once the kernel's program is ``exec``-ed), and a delete
takes it exclusively, without waiting, for its last look at the running kernels and the rename that takes the env
away. A start that waited for a delete finds the directory renamed: the env was deleted. The directory is the lock:
no file is left anywhere. Where the file system takes no ``flock`` on a directory (some NFS mounts), there is no
guard, as before. Blocking calls: from a thread.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time

START_WAIT = 10.0  # seconds a start waits for a delete's last check and rename (a fraction of a second)
_NO_LOCKS = (errno.EBADF, errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL)


class EnvLocked(Exception):
    """The env's directory stays locked: a delete (for a start) or a start (for a delete) holds it."""


class DirLock:
    """A ``flock`` held on an env's directory; ``release`` (or losing the descriptor) lets it go."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the only descriptor drops the flock
            self._fd = None


def hold_for_start(env_path: str, wait: float = START_WAIT) -> DirLock | None:
    """The shared lock a kernel start holds until its process runs; ``None`` when there is no env there to hold (a
    deleted one: the start's look at the env says so) or no lock to take on that file system."""
    return _flock(env_path, fcntl.LOCK_SH, wait)


def block_starts(env_path: str) -> DirLock | None:
    """The exclusive lock a delete holds over its last check and rename, without waiting; :class:`EnvLocked` while a
    kernel of the env is starting; ``None`` when the env's directory is gone or its file system takes no such lock."""
    return _flock(env_path, fcntl.LOCK_EX, 0.0)


def _flock(env_path: str, operation: int, wait: float) -> DirLock | None:
    """``operation`` on the env's directory, tried for ``wait`` seconds; :class:`EnvLocked` when it stays held; a
    directory renamed away while we waited (a delete took it) is no env to hold."""
    fd = _open_dir(env_path)
    if fd is None:
        return None
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, operation | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                raise EnvLocked(env_path) from None
            time.sleep(0.02)
        except OSError as err:
            os.close(fd)
            if err.errno in _NO_LOCKS:
                return None
            raise
    if not _same_dir(fd, env_path):
        os.close(fd)
        return None
    return DirLock(fd)


def _open_dir(path: str) -> int | None:
    try:
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None


def _same_dir(fd: int, path: str) -> bool:
    try:
        there, held = os.stat(path, follow_symlinks=False), os.fstat(fd)
    except OSError:
        return False
    return (there.st_dev, there.st_ino) == (held.st_dev, held.st_ino)
