"""A full disk or an exhausted quota, said in words a person can act on: which file system, how much is free.

A build writes to two places, the env's root and the job store; either may fill up at any step. Blocking
(``statvfs``): call from a thread.
"""

from __future__ import annotations

import errno
import os

from ..mounts import MOUNTINFO, parse_mountinfo

NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
NO_SPACE_TEXT = ("No space left on device", "Disk quota exceeded")
READ_ONLY_TEXT = "Read-only file system"  # strerror(EROFS), as installers print it
NOTHING_KEPT = "nothing of this environment was kept"  # a create: its half-made env is removed
UNCHANGED = "the environment is as it was before"  # a change: the layer is restored from its snapshot


class DiskFull(Exception):
    """A create could not even start: the root or the job store is full, or the user's quota there used up (the
    message names which)."""

    def __init__(self, message: str, quota: bool = False) -> None:
        super().__init__(message)
        self.quota = quota

    @property
    def reason(self) -> str:
        """The refusal's short reason (REST ``reason``)."""
        return "disk quota exceeded" if self.quota else "disk full"


def full_at(err: BaseException, where: str, outcome: str = NOTHING_KEPT) -> DiskFull:
    """The refusal of a job that could not start for want of space at ``where`` (a quota told from a full disk)."""
    quota = getattr(err, "errno", None) != errno.ENOSPC
    return DiskFull(no_space_message(where, quota=quota, outcome=outcome), quota=quota)


def is_no_space(err: BaseException) -> bool:
    return isinstance(err, OSError) and err.errno in NO_SPACE


def mentions_no_space(text: str) -> bool:
    """An installer's output that ended on a full disk."""
    return any(words in text for words in NO_SPACE_TEXT)


def is_read_only(err: BaseException, text: str = "") -> bool:
    """A write refused because the file system went read-only (remounted, or a bind mount put over a root) after
    the job started: the error's errno, or an installer's output saying so."""
    return (isinstance(err, OSError) and err.errno == errno.EROFS) or READ_ONLY_TEXT in text


def read_only_message(path: str) -> str:
    """What to tell a person when a job's writes under ``path`` were refused by a file system made read-only."""
    try:
        where = f"the file system mounted at {mount_point(path)}"
    except OSError:
        where = "its file system"
    return (
        f"{where} became read-only while the job ran (writing {path}): ask your administrator to mount it "
        "read-write, then try again"
    )


def mount_point(path: str) -> str:
    """The directory the file system holding ``path`` (or its nearest existing parent) is mounted at: the deepest
    mount of the mount table above it (a bind mount has its file system's device, so devices alone would name the
    mount it was taken from), else where the device changes."""
    path = os.path.abspath(path)
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    path = os.path.realpath(path)
    try:
        with open(MOUNTINFO, encoding="utf-8", errors="replace") as handle:
            points = [mount.point for mount in parse_mountinfo(handle.read())]
    except OSError:
        points = []
    above = [point for point in points if path == point or path.startswith(point.rstrip("/") + "/")]
    if above:
        return max(above, key=len)
    device = os.stat(path).st_dev
    while os.path.dirname(path) != path and os.stat(os.path.dirname(path)).st_dev == device:
        path = os.path.dirname(path)
    return path


def no_space_message(path: str, quota: bool = False, needed: str | None = None, outcome: str = NOTHING_KEPT) -> str:
    """What to tell a person when writing under ``path`` failed for want of space; ``needed``: what the step
    needed, where known (see :mod:`.needed`); ``outcome``: what became of the environment.

    A quota (EDQUOT) is not a full disk: ``statvfs`` (what ``df`` shows) counts the disk's free space, not what is
    left of the user's quota, which may be nothing while the disk has plenty. Said as the disk's, not as the user's.
    """
    needs = f"; {needed}" if needed else ""
    mount: str | None
    free: str | None
    try:
        mount = mount_point(path)
        st = os.statvfs(mount)
        free = f"{st.f_bavail * st.f_frsize // 1024} KiB and {st.f_favail} files free"
    except OSError:
        mount = free = None
    if quota:
        where = f"the file system mounted at {mount}" if mount else "its file system"
        disk = f" ({free} on the disk, but not within your quota)" if free else ""
        return (
            f"disk quota exceeded: your quota on {where} is used up (writing {path}){needs}{disk}: delete some of "
            "your files there (`quota -s` shows your use and limit) or ask your administrator for a larger quota, "
            f"and try again; {outcome}"
        )
    where = f"on the file system mounted at {mount} ({free})" if mount else "on its file system"
    return (
        f"no space left for {path} {where}{needs}: free some space there (or ask your administrator for a larger "
        f"quota) and try again; {outcome}"
    )
