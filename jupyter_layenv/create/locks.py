"""Per-env file locks (``flock``), so two servers, or a server and the CLI, sharing a root never build one env twice.

A lock lives beside the env it guards: ``<parent>/.layenv-locks/<name>.lock``. ``flock`` conflicts between two
open files even inside one process, and the kernel drops it when its holder dies, which is how a restarted
server tells an interrupted job from one another process is still running.
"""

from __future__ import annotations

import fcntl
import os

LOCK_DIR = ".layenv-locks"


def lock_path(env_path: str) -> str:
    parent, name = os.path.split(env_path.rstrip(os.sep))
    return os.path.join(parent, LOCK_DIR, f"{name}.lock")


class EnvLock:
    """An exclusive, non-blocking lock on one env path; blocking syscalls, so call from a thread."""

    def __init__(self, path: str, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def try_acquire(cls, env_path: str, *, create: bool = True) -> EnvLock | None:
        """The lock, or ``None`` when another holder has it (or, without ``create``, when nobody ever made it)."""
        path = lock_path(env_path)
        if create:
            os.makedirs(os.path.dirname(path), exist_ok=True)
        try:
            fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | (os.O_CREAT if create else 0), 0o644)
        except FileNotFoundError:  # only without ``create``: nobody ever locked this env
            return cls(path, -1)
        except OSError:  # a symlink planted as the lock file (O_NOFOLLOW), or no permission: never ours
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return None
        return cls(path, fd)

    def release(self) -> None:
        if self._fd is not None and self._fd >= 0:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
        self._fd = None
