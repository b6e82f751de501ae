"""A writable FUSE file system with a per-user disk quota: writes past the limit fail with EDQUOT, as on a shared
server's quota-limited home, while ``df`` (statfs) shows the disk's free space, which is not the user's.

Why FUSE: the kernel quota (tmpfs ``usrquota``, ext4/XFS quotas) needs a kernel built with CONFIG_QUOTA (or
CONFIG_TMPFS_QUOTA), which test machines and CI containers often lack; a FUSE daemon that enforces a quota, as
network file systems do on their server, makes the same ``Disk quota exceeded`` reach every writer (virtualenv,
uv, pip, the product) through the kernel, with no kernel option.

``python quotafs.py BACKING MOUNTPOINT BLOCK_LIMIT INODE_LIMIT`` serves BACKING (a directory alone on its file
system, e.g. a small tmpfs: what is used there is what the user used) at MOUNTPOINT, to every user
(``allow_other``; the kernel checks permissions against the owners served, ``default_permissions``). Callers other
than root get EDQUOT when a write would take the file system's use over BLOCK_LIMIT bytes or a new file over
INODE_LIMIT files; root is exempt, as with kernel quotas. Run it as root.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path


def _mounted(mountpoint: Path) -> bool:
    target = str(mountpoint)
    with open("/proc/self/mountinfo", encoding="utf-8") as handle:
        return any(line.split()[4] == target for line in handle)


class QuotaMount:
    """BACKING served at MOUNTPOINT with a quota, by a separate process (root only)."""

    def __init__(self, backing: Path, mountpoint: Path, block_limit: int, inode_limit: int) -> None:
        self.backing, self.path = backing, mountpoint
        self.limits = (block_limit, inode_limit)
        self.process: subprocess.Popen[bytes] | None = None

    def mount(self, timeout: float = 15) -> str | None:
        """Mounts it; ``None`` when mounted, else why FUSE cannot be mounted here."""
        if not os.path.exists("/dev/fuse"):
            return "no /dev/fuse in this machine (a container started without --device /dev/fuse?)"
        argv = [sys.executable, __file__, str(self.backing), str(self.path), *map(str, self.limits)]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _mounted(self.path):
                return None
            if self.process.poll() is not None:
                error = (self.process.stderr.read() if self.process.stderr else b"").decode(errors="replace").strip()
                return f"the FUSE quota file system could not mount: {error or self.process.returncode}"
            time.sleep(0.05)
        self.unmount()
        return f"the FUSE quota file system did not mount {self.path} within {timeout} s"

    def unmount(self) -> None:
        if _mounted(self.path):
            subprocess.run(["umount", "-l", str(self.path)], check=False)
        if self.process is not None:
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
            if self.process.stderr:
                self.process.stderr.close()


def _serve(backing: str, mountpoint: str, block_limit: int, inode_limit: int) -> None:
    import errno

    from fuse import FUSE, FuseOSError, Operations, fuse_get_context

    attrs = ("st_atime", "st_ctime", "st_mtime", "st_gid", "st_uid", "st_mode", "st_nlink", "st_size", "st_ino",
             "st_blocks", "st_rdev")  # fmt: skip

    def used() -> tuple[int, int]:
        st = os.statvfs(backing)
        return (st.f_blocks - st.f_bfree) * st.f_frsize, st.f_files - st.f_ffree

    def caller() -> tuple[int, int]:
        uid, gid, _ = fuse_get_context()
        return uid, gid

    def pages(size: int) -> int:
        return -(-size // 4096) * 4096  # what the backing tmpfs allocates (a quota counts blocks, not bytes)

    def check(grow: int = 0, files: int = 0) -> None:
        if caller()[0] == 0:
            return
        blocks, inodes = used()
        if (grow > 0 and blocks + grow > block_limit) or (files and inodes + files > inode_limit):
            raise FuseOSError(errno.EDQUOT)

    class Quota(Operations):  # type: ignore[misc]
        """Every call passed to BACKING as root, new files given to the caller (or a setgid parent's group)."""

        def _real(self, path: str) -> str:
            return os.path.join(backing, path.lstrip("/"))

        def _own(self, path: str) -> None:
            uid, gid = caller()
            parent = os.stat(os.path.dirname(self._real(path)))
            os.lchown(self._real(path), uid, parent.st_gid if parent.st_mode & stat.S_ISGID else gid)

        def access(self, path: str, amode: int) -> None:
            return None  # default_permissions: the kernel checked already

        def getattr(self, path: str, fh: int | None = None) -> dict[str, int | float]:
            st = os.lstat(self._real(path))
            return {name: getattr(st, name) for name in attrs}

        def readdir(self, path: str, fh: int) -> list[str]:
            return [".", "..", *os.listdir(self._real(path))]

        def readlink(self, path: str) -> str:
            return os.readlink(self._real(path))

        def statfs(self, path: str) -> dict[str, int]:
            st = os.statvfs(backing)  # the disk's free space: what df shows, not what the quota leaves
            return {k: getattr(st, k) for k in ("f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail", "f_ffree",
                                                "f_files", "f_flag", "f_frsize", "f_namemax")}  # fmt: skip

        def mkdir(self, path: str, mode: int) -> None:
            check(files=1)
            os.mkdir(self._real(path), mode)
            self._own(path)
            if os.stat(os.path.dirname(self._real(path))).st_mode & stat.S_ISGID:
                os.chmod(self._real(path), os.stat(self._real(path)).st_mode | stat.S_ISGID)

        def create(self, path: str, mode: int, fi=None) -> int:
            check(files=1)
            fd = os.open(self._real(path), os.O_RDWR | os.O_CREAT, mode)
            self._own(path)
            return fd

        def symlink(self, target: str, source: str) -> None:
            check(files=1)
            os.symlink(source, self._real(target))
            self._own(target)

        def link(self, target: str, source: str) -> None:
            os.link(self._real(source), self._real(target))

        def open(self, path: str, flags: int) -> int:
            return os.open(self._real(path), flags & ~(os.O_CREAT | os.O_EXCL))

        def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
            return os.pread(fh, size, offset)

        def write(self, path: str, data: bytes, offset: int, fh: int) -> int:
            check(grow=pages(offset + len(data)) - pages(os.fstat(fh).st_size))
            return os.pwrite(fh, data, offset)

        def truncate(self, path: str, length: int, fh: int | None = None) -> None:
            check(grow=pages(length) - pages(os.lstat(self._real(path)).st_size))
            os.truncate(self._real(path), length)

        def release(self, path: str, fh: int) -> None:
            os.close(fh)

        def flush(self, path: str, fh: int) -> None:
            return None

        def fsync(self, path: str, datasync: int, fh: int) -> None:
            os.fsync(fh)

        def unlink(self, path: str) -> None:
            os.unlink(self._real(path))

        def rmdir(self, path: str) -> None:
            os.rmdir(self._real(path))

        def rename(self, old: str, new: str) -> None:
            os.rename(self._real(old), self._real(new))

        def chmod(self, path: str, mode: int) -> None:
            os.chmod(self._real(path), mode)

        def chown(self, path: str, uid: int, gid: int) -> None:
            os.lchown(self._real(path), uid, gid)

        def utimens(self, path: str, times: tuple[float, float] | None = None) -> None:
            os.utime(self._real(path), times, follow_symlinks=False)

    FUSE(Quota(), mountpoint, foreground=True, nothreads=True, allow_other=True, default_permissions=True,
         use_ino=True, fsname="quotafs")  # fmt: skip


if __name__ == "__main__":
    _serve(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
