"""A read-only FUSE loopback file system, and a fixture helper that mounts it and can freeze it.

``python loopfs.py SOURCE MOUNTPOINT`` serves SOURCE at MOUNTPOINT (fusepy over libfuse 2), with every
kernel cache off, so each ``stat`` under the mount asks this process. Stopping it (SIGSTOP) makes the
mount behave as a dead NFS server or a hung FUSE daemon does: every ``stat``, ``listdir`` and ``open``
under it blocks until the process continues (SIGCONT) or dies.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

MNT_DETACH = 2


def _mounted(mountpoint: Path) -> bool:
    """From /proc, which never asks the file system (a ``stat`` of a frozen mount would hang)."""
    target = str(mountpoint)
    with open("/proc/self/mountinfo", encoding="utf-8") as handle:
        return any(line.split()[4] == target for line in handle)


class LoopMount:
    """SOURCE served at MOUNTPOINT by a separate process, which :meth:`freeze` stops and :meth:`thaw` resumes."""

    def __init__(self, source: Path, mountpoint: Path) -> None:
        self.source = source
        self.path = mountpoint
        self.process: subprocess.Popen[bytes] | None = None

    def mount(self, timeout: float = 15) -> str | None:
        """Mounts it; ``None`` when mounted, else why FUSE cannot be mounted here."""
        if not os.path.exists("/dev/fuse"):
            return "no /dev/fuse in this machine (a container started without --device /dev/fuse?)"
        self.path.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [sys.executable, __file__, str(self.source), str(self.path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _mounted(self.path):
                return None
            if self.process.poll() is not None:
                lines = self.process.stderr.read().decode(errors="replace").split("\n") if self.process.stderr else []
                error = next((line.strip() for line in reversed(lines) if line.strip()), "")
                return f"the FUSE loopback could not mount: {error or f'exit status {self.process.returncode}'}"
            time.sleep(0.05)
        self.unmount()
        return f"the FUSE loopback did not mount {self.path} within {timeout} s"

    def freeze(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)

    def unmount(self) -> None:
        """Whatever state it is in: resumed, asked to exit (libfuse unmounts), killed, and detached if still there."""
        if self.process is not None:
            self.thaw()
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()  # a dead daemon fails every pending request (ENOTCONN): nothing stays stuck
                self.process.wait(10)
            if self.process.stderr:
                self.process.stderr.close()
        if _mounted(self.path):
            libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
            libc.umount2(str(self.path).encode(), MNT_DETACH)


def _serve(source: str, mountpoint: str) -> None:
    import errno

    from fuse import FUSE, FuseOSError, Operations

    attrs = ("st_atime", "st_ctime", "st_mtime", "st_gid", "st_uid", "st_mode", "st_nlink", "st_size", "st_ino")

    class Loopback(Operations):  # type: ignore[misc]
        """Every call answered from SOURCE; nothing cached by the kernel (the mount options below)."""

        def _real(self, path: str) -> str:
            return os.path.join(source, path.lstrip("/"))

        def getattr(self, path: str, fh: int | None = None) -> dict[str, int | float]:
            try:
                st = os.lstat(self._real(path))
            except OSError as err:
                raise FuseOSError(err.errno or errno.EIO) from None
            return {name: getattr(st, name) for name in attrs}

        def readdir(self, path: str, fh: int) -> list[str]:
            return [".", "..", *os.listdir(self._real(path))]

        def readlink(self, path: str) -> str:
            return os.readlink(self._real(path))

        def access(self, path: str, amode: int) -> None:
            if not os.access(self._real(path), amode):
                raise FuseOSError(errno.EACCES)

        def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
            with open(self._real(path), "rb") as handle:
                handle.seek(offset)
                return handle.read(size)

    FUSE(
        Loopback(),
        mountpoint,
        foreground=True,
        nothreads=True,
        ro=True,
        use_ino=True,
        attr_timeout=0,
        entry_timeout=0,
        negative_timeout=0,
    )


if __name__ == "__main__":
    _serve(sys.argv[1], sys.argv[2])
