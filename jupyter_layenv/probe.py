"""Asks each configured root whether it answers, off the caller's thread and within a time limit.

A hung NFS or FUSE mount blocks every ``stat`` under it, in whatever thread makes it, for as long as the
server is away (forever, for a dead one). Discovery asks here first and leaves out, and reports, the roots
that did not answer in time: one dead mount costs a listing at most ``timeout`` seconds, later listings
nothing, and no thread but the one already stuck in it.

A root on a local disk or memory file system (ext4, xfs, tmpfs…) that answered a moment ago is not asked again
until the mount table changes or ``RECHECK`` seconds pass: asking costs two thread switches, measured at 0.2 to
0.4 ms on a 1.6 ms warm listing of 500 envs.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from collections import deque
from collections.abc import Iterable

from .mounts import Mount, MountTable

POOL_SIZE = 4  # most threads answering at once; those stuck on a dead mount are not counted
# One thread asks every root in turn (one hand-off: a warm listing stays cheap). When an answer takes longer
# than this, more threads take the roots queued behind the slow one, so a dead mount delays no other root.
GRACE = 0.02
RECHECK = 5.0  # seconds a root on a local file system is trusted without asking it again
LOCAL_FILE_SYSTEMS = frozenset(
    (
        *("ext2", "ext3", "ext4", "xfs", "btrfs", "bcachefs", "zfs", "f2fs", "jfs", "reiserfs", "nilfs2"),
        *("tmpfs", "ramfs", "devtmpfs", "overlay", "squashfs", "erofs", "iso9660", "udf"),
        *("vfat", "exfat", "ntfs", "ntfs3", "hfsplus", "apfs"),
    )
)


def not_responding_reason(path: str, timeout: float) -> str:
    return (
        f"not responding: {path} did not answer within {timeout:g} s (a hung network mount?); "
        "it is retried on the next listing"
    )


def base_not_responding_reason(base: str, root: str, timeout: float) -> str:
    """Why an env whose base lies in a root that did not answer is not listed (its files cannot be read)."""
    return (
        f"not responding: its base {base} is in {root}, which did not answer within {timeout:g} s "
        "(a hung network mount?); it is retried on the next listing"
    )


def root_of(path: str, roots: Iterable[str]) -> str | None:
    """The root ``path`` lies in (or is), by path text alone: asking the file system could hang."""
    for root in roots:
        if path == root or path.startswith(root.rstrip(os.sep) + os.sep):
            return root
    return None


Seen = tuple[int, int, int]  # (st_dev, st_ino, st_mtime_ns) of a root when it last answered


def _ask(path: str, seen: Seen | None) -> tuple[Seen | None, int | None]:
    """What discovery does first with a root: ``stat`` it, and read its first entry when it changed.

    Discovery reads a root's entries only after its mtime changed; an unchanged root gets the same single
    ``stat`` as on a warm listing (reading a large directory costs more than the whole probe otherwise).
    Also the device it lies on (a missing root: its nearest existing parent's), to tell a local one.
    """
    try:
        st = os.stat(path)
        now = (st.st_dev, st.st_ino, st.st_mtime_ns)
        if now != seen and stat.S_ISDIR(st.st_mode):
            with os.scandir(path) as entries:
                next(entries, None)
    except Exception:  # an error is an answer: the root is missing or unreadable, and discovery says so itself
        return None, _parent_device(path)
    return now, st.st_dev


def _parent_device(path: str) -> int | None:
    parent = os.path.dirname(path)
    while parent != path:
        try:
            return os.stat(parent).st_dev
        except Exception:
            path, parent = parent, os.path.dirname(parent)
    return None


class _LocalDevices:
    """The devices of local disk and memory file systems, from the mount table (:class:`~.mounts.MountTable`, read
    again only when it changed). Where there is none (not Linux), no device counts as local and every root is asked
    every time."""

    def __init__(self) -> None:
        self._table: MountTable | None = None  # opened at the first call
        self.devices: frozenset[int] = frozenset()
        self.read_write: frozenset[int] = frozenset()  # local devices mounted read-write wherever they are mounted

    def changed(self) -> bool:
        """Whether the mount table changed since the last call (then :attr:`devices` is read again)."""
        if self._table is None:
            self._table = MountTable()
        elif not self._table.changed():
            return False
        self.devices, self.read_write = _local_devices(self._table.mounts)
        return True


def _local_devices(mounts: Iterable[Mount]) -> tuple[frozenset[int], frozenset[int]]:
    """The local devices, and those of them no mount (a bind mount included) makes read-only."""
    local = [mount for mount in mounts if mount.fs_type in LOCAL_FILE_SYSTEMS]
    devices = frozenset(mount.device for mount in local)
    return devices, devices - {mount.device for mount in local if mount.read_only}


class _ReadWriteDevices:
    """:attr:`_LocalDevices.read_write`, looked at again at most every ``RECHECK_RW`` seconds (one ``poll``)."""

    RECHECK_RW = 1.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._devices = _LocalDevices()
        self._checked = -self.RECHECK_RW

    def __call__(self) -> frozenset[int]:
        now = time.monotonic()
        if now - self._checked >= self.RECHECK_RW:
            with self._lock:
                self._devices.changed()
                self._checked = now
        return self._devices.read_write


# The devices of local file systems mounted read-write everywhere: there, access(2) answers from the mode bits
read_write_local_devices = _ReadWriteDevices()


class RootProbe:
    """A small persistent pool of daemon threads that ``stat`` roots for callers who wait a bounded time.

    Thread-safe, and one per process (:data:`PROBE`): a hung mount is hung for every caller. A root still
    unanswered after a caller's timeout is not asked again while its thread is stuck (no pile-up of threads
    on a dead mount) and counts as not responding at once; when that thread comes back, the next call asks
    it again.
    """

    def __init__(self, pool_size: int = POOL_SIZE) -> None:
        self._pool_size = pool_size
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._answers = threading.Condition(self._lock)
        self._queue: deque[str] = deque()
        self._asked: dict[str, float] = {}  # path -> when it was asked; present until it answers
        self._seen: dict[str, Seen | None] = {}  # path -> (dev, ino, mtime) at its last answer
        self._answered: dict[str, float] = {}  # path -> when it last answered
        self._local: dict[str, float] = {}  # path on a local file system -> when it last answered
        self._devices = _LocalDevices()
        self._free = 0  # threads waiting for work, or starting
        self._threads = 0

    def unresponsive(self, roots: Iterable[str], timeout: float) -> tuple[str, ...]:
        """The roots that did not answer within ``timeout`` seconds, in the order given (``timeout <= 0``: none)."""
        paths = list(dict.fromkeys(roots))
        if timeout <= 0 or not paths:
            return ()
        with self._lock:
            start = time.monotonic()
            if self._devices.changed():
                self._local.clear()  # a root may now be a mount point, or lie under a new one
            waiting = []
            for path in paths:
                asked, local = self._asked.get(path), self._local.get(path)
                if asked is None and local is not None and start - local < RECHECK:
                    continue  # on a local disk, and answered a moment ago
                if asked is None:
                    self._asked[path] = start
                    self._queue.append(path)
                    waiting.append(path)
                elif start - asked < timeout:
                    waiting.append(path)  # a concurrent listing just asked: wait for the same answer
            if waiting:
                self._wait(waiting, start + timeout)
            return tuple(path for path in paths if path in self._asked)

    def answers(self, max_age: float = RECHECK) -> tuple[dict[str, tuple[int, int] | None], frozenset[str]]:
        """The roots' directory ids (``(st_dev, st_ino)``; ``None``: missing or unreadable) as they answered within
        the last ``max_age`` seconds, and the roots asked and not answered yet (hung, or slow).

        What a listing just learnt, for a caller that must tell a directory by its id without asking a root again (a
        root on a dead mount would block it): right after ``unresponsive``, every root it was given is in one of
        the two (a local root is asked at most every ``RECHECK`` seconds).
        """
        with self._lock:
            now, asked = time.monotonic(), frozenset(self._asked)
            ids = {
                path: None if seen is None else seen[:2]
                for path, seen in self._seen.items()
                if path not in asked and now - self._answered[path] <= max_age
            }
            return ids, asked

    def _wait(self, waiting: list[str], deadline: float) -> None:
        asked = self._asked

        def answered() -> bool:
            return not any(path in asked for path in waiting)

        self._hands(1)
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or self._answers.wait_for(answered, min(GRACE, left)):
                return
            self._hands(min(len(self._queue), self._pool_size))  # roots queued behind a slow one

    def _hands(self, wanted: int) -> None:
        """At least ``wanted`` threads free to take the queue: idle ones woken, new ones started if need be."""
        if not self._queue:
            return
        for _ in range(wanted - self._free):
            self._threads += 1
            self._free += 1
            threading.Thread(target=self._serve, name=f"layenv-root-probe-{self._threads}", daemon=True).start()
        self._work.notify(wanted)

    def _serve(self) -> None:
        with self._lock:
            while True:
                while not self._queue:
                    self._work.wait()
                path = self._queue.popleft()
                seen = self._seen.get(path)
                self._free -= 1
                self._lock.release()
                device = None
                try:
                    seen, device = _ask(path, seen)
                finally:
                    self._lock.acquire()
                    self._free += 1
                    self._seen[path] = seen
                    self._answered[path] = time.monotonic()
                    self._asked.pop(path, None)
                    if device in self._devices.devices:
                        self._local[path] = time.monotonic()
                    else:
                        self._local.pop(path, None)
                    if not self._queue:
                        self._answers.notify_all()


PROBE = RootProbe()
