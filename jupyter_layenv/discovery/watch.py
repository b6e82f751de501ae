"""Change notifications (Linux inotify) that spare a warm listing the ``stat`` of signature paths known unchanged.

The ``stat`` design stays the source of truth: a signature path is skipped only while it is *promoted*, i.e.

* it, and every directory between it and its discovery root, is watched (the watch added before the ``stat`` that
  validates it), none of them is a symlink and all lie on the root's device, a local file system where inotify sees
  every change (another host's change to an NFS, CIFS, FUSE, Lustre or GPFS directory makes no event);
* a ``stat`` made after its watch matched its signature entry and was settled (out of the racy window);
* no event has touched it, its watched ancestors or its root since, the root still is the directory watched, the
  mount table did not change and the event queue did not overflow.

Anything else about a path *demotes* it: the listing ``stat``-checks it again, as without notifications (so the
answer is the ``stat`` design's, by construction), and the background thread promotes it again once a later
listing left it settled. Promotion (``inotify_add_watch`` and the ``lstat`` calls) runs in that thread (one per
process, for every watcher: ``_Promoter``), under the discovery lock in small batches, never on a listing's path and
never on the event loop; except for a new env's few
directories, which the incremental listing that finds it watches before it reads them (``watch_ahead``), and then
promotes whatever their mtime: a later change is an event in the queue.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import logging
import os
import stat
import struct
import sys
import threading
import time
import weakref
from collections import Counter
from collections.abc import Iterable, Iterator

from ..mounts import Mount, MountTable
from ..probe import PROBE
from .cache import UNREAD, Expected, Listed, ScanStats, Signature, fs_now_ns, settled_since

IN_MODIFY, IN_ATTRIB, IN_CLOSE_WRITE = 0x2, 0x4, 0x8
IN_MOVED_FROM, IN_MOVED_TO, IN_CREATE, IN_DELETE = 0x40, 0x80, 0x100, 0x200
IN_DELETE_SELF, IN_MOVE_SELF, IN_UNMOUNT, IN_Q_OVERFLOW, IN_IGNORED = 0x400, 0x800, 0x2000, 0x4000, 0x8000
IN_ONLYDIR, IN_DONT_FOLLOW = 0x01000000, 0x02000000
IN_NONBLOCK, IN_CLOEXEC = os.O_NONBLOCK, os.O_CLOEXEC
# what changes a path's ``stat`` or what it resolves to (IN_CLOSE_WRITE: a write through a mapping)
MASK = (
    IN_MODIFY
    | IN_ATTRIB
    | IN_CLOSE_WRITE
    | IN_MOVED_FROM
    | IN_MOVED_TO
    | IN_CREATE
    | IN_DELETE
    | IN_DELETE_SELF
    | IN_MOVE_SELF
)
ENTRY_EVENTS = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO  # they move the watched directory's own mtime
EVENT = struct.Struct("iIII")

# File systems whose every change, made on this host, makes an event; anything else (network and cluster file
# systems, FUSE, overlay whose lower layers change underneath, unknown) is never promoted.
WATCHABLE_FILE_SYSTEMS = frozenset(("ext2", "ext3", "ext4", "xfs", "btrfs", "tmpfs", "f2fs", "zfs"))
WATCH_SHARE = 8  # use at most 1/WATCH_SHARE of the user's inotify watches (other users' servers share the limit)
BATCH = 32  # paths promoted per hold of the discovery lock (about 0.2 ms)
RETRY_S = 2.5  # a path not settled yet is tried again after this (the racy window and a little)
# A wake waits this long before promoting: the listing that woke the thread returns first (the thread, started or woken
# at once, took the GIL from it for up to the 5 ms switch interval: +1.5 ms on a cold listing at 500 envs), and a
# client's request right after it does not wait for the batches either; a server's next poll comes seconds later
PROMOTE_AFTER_S = 0.05


def supported() -> bool:
    return sys.platform.startswith("linux")


@functools.cache
def _libc() -> ctypes.CDLL:
    """The C library's inotify functions, looked up once per process (each watcher of a cold listing did)."""
    libc = ctypes.CDLL(None, use_errno=True)
    for name in ("inotify_init1", "inotify_add_watch", "inotify_rm_watch"):
        getattr(libc, name).restype = ctypes.c_int
    libc.inotify_add_watch.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32)
    libc.inotify_rm_watch.argtypes = (ctypes.c_int, ctypes.c_int)
    return libc


def user_watch_limit() -> int | None:
    try:
        with open("/proc/sys/fs/inotify/max_user_watches", "rb") as file:
            return int(file.read())
    except (OSError, ValueError):
        return None


def changed_points(before: Iterable[Mount], after: Iterable[Mount]) -> set[str]:
    """The mount points where a mount came, went, or changed (its device, type or read-only flag)."""
    return {mount.point for mount in set(before).symmetric_difference(after)}


def _points_under(root: str, real: str, points: Iterable[str]) -> Iterator[str]:
    """The mount points inside ``root`` (whose real path is ``real``: mount points are real paths), named under it."""
    return (root + point[len(real) :] for point in points if point.startswith(real + "/"))


def _overlaps(path: str, points: Iterable[str]) -> bool:
    """Whether a mount point is ``path``, inside it, or above it (a mount over its parent hides it too)."""
    return any(
        point == path or point.startswith(path + "/") or path.startswith(point.rstrip("/") + "/") for point in points
    )


def file_systems(mounts: Iterable[Mount]) -> tuple[dict[int, str], list[str]]:
    """Device -> file system type (its first mount's), and every mount point."""
    found: dict[int, str] = {}
    for mount in mounts:
        found.setdefault(mount.device, mount.fs_type)
    return found, [mount.point for mount in mounts]


class Watcher:
    """The watches and the promoted signature paths of one :class:`~.core.Discovery`.

    Every method but :meth:`close` and :meth:`wake` is called with the discovery lock held (``lock``); the
    background thread takes that lock itself. The watcher holds no reference to the Discovery: a Discovery that goes
    away is finalized, which stops the thread, and the thread closes the descriptors it owns.
    """

    def __init__(
        self, lock: threading.Lock, roots: Iterable[str], max_watches: int, logger: logging.Logger, *, probed: bool
    ) -> None:
        """``probed``: each listing asks the roots through ``PROBE`` first (``root_timeout`` > 0): a root is watched
        only once it answered there, never asked from here first (a hung mount would hold the discovery lock)."""
        self._lock = lock
        self._probed = probed
        self.log = logger
        self._libc = _libc()
        fd = self._libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
        self._fd = fd
        # a mount over a watched directory makes no event: its changes demote its root. Opened here, inside the
        # listing that makes the watcher, right after its probe answered the roots (a mount since then is a change),
        # and read at the first promotion (``_mounts_changed``), out of that listing's time
        self._mounts = MountTable(parse=False)
        self._parsed = False
        self._fs_types: dict[int, str] = {}
        self._mount_points: list[str] = []
        # a mount came or went at, inside or above a root since the last listing's probe answered it: its answer may
        # be the directory the mount hides (and asking the root from here may hang): no root is watched before the
        # next listing has asked the roots again (``check``)
        self._probe_stale = False
        system = user_watch_limit()
        self.max_watches = max_watches if system is None else min(max_watches, system // WATCH_SHARE)
        # longest first: a path belongs to the deepest root it is under
        # the name each root has for the probe (as configured), by the one paths are matched with
        self._given = {os.path.normpath(root): root for root in roots if root}
        self._roots = sorted(self._given, key=len, reverse=True)
        self.promoted: dict[str, Expected] = {}  # path -> the signature entry validated (skipped while it is that)
        self._refused: dict[str, Expected] = {}  # path -> the entry found not promotable (tried again if it changes)
        self._dirs: dict[str, int] = {}  # directories watched and checked (no symlink, root's device) -> root device
        self._checked: dict[str, bool] = {}  # every path watched and checked so, directory or file
        self._kids: dict[str, set[str]] = {}  # path -> the paths under it in the tables, one level down
        self._root_ids: dict[str, tuple[int, int] | None] = {}  # root -> (dev, ino) when watched; None: never promote
        self._inner_mounts: dict[str, tuple[str, ...]] = {}  # root -> the mount points under it (never watched)
        self._real_roots: dict[str, str] = {}  # root -> its real path, when watched (mount points are real paths)
        self._wds: dict[int, set[str]] = {}  # watch descriptor -> the paths watched through it
        self._wd_of: dict[str, int] = {}
        self._signature: Signature | None = None
        # not in the signature, watched for free: path -> (the signature path to report changed, the scan's start)
        self._also: dict[str, tuple[str, int]] = {}
        self._extra: dict[str, tuple[str, int]] = {}  # those of them watched and unchanged since their scan read them
        self._forced: set[str] = set()  # signature paths to report changed at the next listing
        self._ahead: set[str] = set()  # directories the running listing watched before reading them (``watch_ahead``)
        self.dirty = False  # paths were demoted since the last wake
        self._retry_at: float | None = None
        self._full = False  # the watch cap (or the kernel's limit) was reached: no new watch
        self.forgotten = 0  # times everything was demoted (queue overflow, a mount table no longer readable)
        # paths that left ``promoted``, or got an entry no listing gave them, since ``ToCheck`` last looked
        self.demoted: set[str] = set()
        self.calls: Counter[str] = Counter()  # add_watch, stat/lstat: the file-system calls promotion made
        self.closed = False
        # the promotion thread's (``_Promoter``) bookkeeping, under its condition: woken (at ``_woken_at``), in a
        # pass, stopped (the thread then closes the descriptors, holding the discovery lock: no listing reads them)
        self._stop = False
        self._pending = False
        self._woken_at = 0.0
        self._busy = False
        self._fds_open = True
        # called (discovery lock held) before each promotion pass: the discovery's work a listing leaves for later
        # (its indexes for updates), done here so that an update seconds later finds it done; a weak reference, as
        # the watcher holds none to its discovery
        self.prepare: weakref.WeakMethod | None = None

    # -- the listing's side (discovery lock held) -------------------------------------------------------------

    def check(self, hung: tuple[str, ...]) -> tuple[dict[str, Expected], list[str]]:
        """Reads the events and demotes what they touched. The promoted paths, which a listing need not ``stat``, and
        the roots that are another directory now: changed, whatever their mtime says (a symlink pointed elsewhere,
        at a directory of the same mtime, would pass a ``stat`` check)."""
        if self.closed:
            return {}, []
        if self._parsed:  # (not before the first promotion: nothing is watched yet, and the cold listing is in a hurry)
            self._mounts_changed()
        self._probe_stale = False  # this listing's probe has just asked the roots (a mount table change: afresh)
        self._drain()
        if self.promoted or self._extra:
            for root, seen in list(self._root_ids.items()):
                if seen is None:
                    continue
                if self._given.get(root, root) in hung:
                    self._demote(root)
                    continue
                try:
                    result = os.stat(root)
                    now: tuple[int, int] | None = (result.st_dev, result.st_ino)
                except (OSError, ValueError):
                    now = None
                if now != seen:
                    self._demote(root)
                    self._forced.add(root)
        forced = list(self._forced)
        self._forced.clear()
        return self.promoted, forced

    def _mounts_changed(self) -> bool:
        """Whether the mount table changed at, inside or above a root since it was last read; if so those roots are
        demoted, what the last signature holds at or under a mount point that came or went is read again, and no
        root is watched before the next listing's probe (a mount makes no event; the directory it hides or uncovers
        may carry an older mtime, which a ``Listed`` entry takes for unchanged; and a file system mounted since may
        hang: nothing under it is asked here). A mount elsewhere (another user's home, automounted as they log in)
        leaves the rest promoted. The first call reads the table: changed since the watcher was made, every root
        counts as touched."""
        if not self._parsed:
            self._parsed = True
            moved = self._mounts.changed()
            if not moved:
                self._mounts.parse()
            self._fs_types, self._mount_points = file_systems(self._mounts.mounts)
            if moved:
                self._probe_stale = self.dirty = True
            return moved
        before = self._mounts.mounts
        if not self._mounts.changed():
            return False
        self._fs_types, self._mount_points = file_systems(self._mounts.mounts)
        if self._mounts.closed:  # the table can no longer be read: nothing tells a mount from another
            self._forget_all()
            self._probe_stale = True
            return True
        points = changed_points(before, self._mounts.mounts)
        here = set(points)  # and as they are named under a root that is a symbolic link
        for root, real in self._real_roots.items():
            here.update(_points_under(root, real, points))
        self._forced.update(path for path in self._signature or () if _overlaps(path, here))
        touched = [root for root in self._roots if _overlaps(self._real_roots.get(root, root), points)]
        for root in touched:
            self._real_roots.pop(root, None)
            self._inner_mounts.pop(root, None)
            self._demote_many(set(), {root})
            self._root_ids.pop(root, None)
        if touched:
            self._probe_stale = self.dirty = True
        return bool(touched)

    def track(self, signature: Signature, also: dict[str, tuple[str, int]], changed: bool) -> None:
        """After a listing: when it ``changed`` the signature or demoted paths, promote what can be, in the
        background (``also``: see ``ScanStats.watch_also``)."""
        if self.closed or not (changed or self.dirty or signature is not self._signature):
            return
        self._signature, self._also, self.dirty = signature, also, False
        self.wake()

    def skips(self, path: str) -> bool:
        """Whether ``path`` is promoted (a signature path) or watched for its dependent (see ``_promote_also``)."""
        return path in self.promoted or path in self._extra

    def promote_read(self, entries: Iterable[tuple[str, Expected]]) -> None:
        """Paths this listing found changed and read again, with their new entries (an mtime inside the racy window
        included): promoted at once when they and every directory up to their root stayed watched and checked
        since this listing read the events. Their content was read after that, so a later change is an event in the
        queue, which the next listing reads first; a path new to the watches waits for the background thread."""
        if self.closed:
            return
        dirs, checked, root_ids = self._dirs, self._checked, self._root_ids
        for path, expected in entries:
            root = self._root_for(path)
            if root is None or root_ids.get(root) is None or root not in dirs:
                continue
            if expected is None:  # missing: its parent's watch reports its creation
                if path == root or os.path.dirname(path) not in dirs:
                    continue
            elif path not in checked:
                continue
            directory = os.path.dirname(path)
            while path != root and directory != root and directory in dirs:
                directory = os.path.dirname(directory)
            if path == root or directory == root:
                self.promoted[path] = expected
                self._note(path)  # a missing path is not watched itself: reached from its parent

    def watch_ahead(self, prefix: str, stats: ScanStats) -> None:
        """Before an incremental listing first reads ``prefix`` (a new env, most often): watches it, the directories
        down to its site-packages and its conda-meta, and the directories between it and its root, top-down, each
        before the listing reads it. What this listing then reads there is promoted at its end (``promote_ahead``),
        racy or not: a later change is an event in the queue. A symlink, another device, a path this listing read
        already: not watched ahead (the background thread's rules then)."""
        if self.closed or self._full or prefix in self._checked:  # watched already (a known env's, through ``_also``)
            return
        root = self._root_for(prefix)
        if root is None or prefix == root or self._root_ids.get(root) is None or root not in self._dirs:
            return
        device = self._dirs[root]
        chain = []
        directory = os.path.dirname(prefix)
        while directory != root:
            chain.append(directory)
            directory = os.path.dirname(directory)
        for directory in reversed(chain):  # top-down: each one's parent watches its entry first
            if directory not in self._dirs and not self._watch_dir(directory, device):
                return
        if not self._watch_ahead(prefix, device, stats):
            return
        listing = stats.listing(prefix)  # after its watch (the listing the inspection reuses)
        if not listing:
            return
        for name in ("conda-meta", "lib", "Lib"):
            entry = listing.get(name)
            if entry is None or entry.is_symlink() or not entry.is_dir(follow_symlinks=False):
                continue
            path = os.path.join(prefix, name)
            known = path in self._dirs  # its python* and site-packages too, then (a changed env: no listing more)
            if not self._watch_ahead(path, device, stats) or name == "conda-meta" or known:
                continue
            if name == "Lib":
                self._watch_ahead(os.path.join(path, "site-packages"), device, stats)
                continue
            for version in (stats.listing(path) or {}).values():
                if (
                    version.name.startswith("python")
                    and version.is_dir(follow_symlinks=False)
                    and self._watch_ahead(version.path, device, stats)
                ):
                    self._watch_ahead(os.path.join(version.path, "site-packages"), device, stats)

    def _watch_ahead(self, directory: str, device: int, stats: ScanStats) -> bool:
        """Watches a directory (its parent is); noted for ``promote_ahead`` when this listing has not read it yet."""
        if directory not in self._dirs:
            if stats.read_already(directory) or not self._watch_dir(directory, device):
                return False
            self._ahead.add(directory)
        return True

    def promote_ahead(self, signature: Signature, stats: ScanStats) -> None:
        """At the end of the listing that watched paths ahead: those whose signature entry is what it read of them,
        after their watch, are promoted (their watches and their chain up to the root still held)."""
        if not self._ahead:
            return
        ahead, self._ahead = self._ahead, set()
        if self.closed:
            return
        dirs = self._dirs
        for path in ahead:
            expected = signature.get(path, UNREAD)
            if expected is UNREAD or path not in dirs or stats.entry_read(path) != expected:
                continue
            root = self._root_for(path)
            if root is None or self._root_ids.get(root) is None:
                continue
            directory = os.path.dirname(path)
            while directory != root and directory in dirs:
                directory = os.path.dirname(directory)
            if directory == root and root in dirs:
                self.promoted[path] = expected

    # -- events -----------------------------------------------------------------------------------------------

    def _drain(self) -> None:
        exact: set[str] = set()
        under: set[str] = set()
        while True:
            try:
                data = os.read(self._fd, 65536)
            except BlockingIOError:
                break
            except OSError:
                self._forget_all()
                return
            if not data:
                break
            offset = 0
            while offset + EVENT.size <= len(data):
                wd, mask, _cookie, length = EVENT.unpack_from(data, offset)
                name = data[offset + EVENT.size : offset + EVENT.size + length].rstrip(b"\0")
                offset += EVENT.size + length
                if mask & IN_Q_OVERFLOW:
                    self._forget_all()
                    continue
                paths = self._wds.get(wd)
                if not paths:
                    continue
                if mask & IN_IGNORED:  # the watch is gone (its inode deleted, its file system unmounted)
                    for path in self._wds.pop(wd):
                        if self._wd_of.get(path) == wd:
                            del self._wd_of[path]
                        under.add(path)
                    continue
                if name:
                    child = os.fsdecode(name)
                    for path in paths:
                        under.add(os.path.join(path, child))
                        if mask & ENTRY_EVENTS:
                            exact.add(path)
                else:  # the watched path itself: its attributes, content, deletion, move, unmount
                    under.update(paths)
        if exact or under:
            self._demote_many(exact, under)

    def _demote(self, path: str) -> None:
        self._demote_many(set(), {path})

    def _demote_many(self, exact: set[str], under: set[str]) -> None:
        """Demotes the paths in ``exact`` (their own mtime moved) and everything at or under a path of ``under``
        (what it is, or what it resolves to, may have changed: watched again and checked before a promotion)."""
        promoted, extra, kids = self.promoted, self._extra, self._kids
        self.dirty = True
        demoted = self.demoted
        for path in exact:
            if promoted.pop(path, UNREAD) is not UNREAD:
                demoted.add(path)
            if path in extra:
                self._unextra(path)
        # everything promoted or watched hangs from the root through watched directories (``_note``): the subtree
        # is walked, not the tables
        subtree: set[str] = set()
        stack = list(under)
        while stack:
            path = stack.pop()
            if path not in subtree:
                subtree.add(path)
                stack.extend(kids.get(path, ()))
        for path in subtree:
            if promoted.pop(path, UNREAD) is not UNREAD:
                demoted.add(path)
            self._dirs.pop(path, None)
            self._checked.pop(path, None)
            self._root_ids.pop(path, None)
            self._refused.pop(path, None)
            if path in extra:
                self._unextra(path)
            if path in self._wd_of:
                self._unwatch(path)
            kids.pop(path, None)
            siblings = kids.get(os.path.dirname(path))
            if siblings is not None:
                siblings.discard(path)

    def _unextra(self, path: str) -> None:
        """A path watched for its dependent changed: the dependent is reported changed at the next listing."""
        self._forced.add(self._extra.pop(path)[0])
        self._also.pop(path, None)  # its dependent's new inspection gives it again

    def _note(self, path: str) -> None:
        """``path`` is in the tables: reachable from its parent's when a subtree is demoted."""
        parent = os.path.dirname(path)
        if parent != path:
            self._kids.setdefault(parent, set()).add(path)

    def _unwatch(self, path: str) -> None:
        """Forgets the watch ``path`` was checked through (its inode may be another now); a watch no path uses goes."""
        wd = self._wd_of.pop(path)
        paths = self._wds.get(wd)
        if paths is None:
            return
        paths.discard(path)
        if not paths:
            del self._wds[wd]
            self._libc.inotify_rm_watch(self._fd, wd)  # its IN_IGNORED finds no path: nothing more to do

    def _forget_all(self) -> None:
        self.forgotten += 1
        self._forced.update(anchor for anchor, _started in self._extra.values())  # their events may be lost
        for path in self._extra:
            self._also.pop(path, None)
        self._extra.clear()
        self._kids.clear()
        self.promoted.clear()
        self.demoted.clear()  # all of them: ``forgotten`` tells
        self._dirs.clear()
        self._checked.clear()
        self._refused.clear()
        self._root_ids.clear()
        for path in list(self._wd_of):
            self._unwatch(path)
        self.dirty = True

    # -- promotion (background thread) ------------------------------------------------------------------------

    def wake(self) -> None:
        with _PROMOTER.cond:
            if self._stop:
                return
            if not self._pending:  # (pending: it runs anyway, after the delay counted from the first wake)
                self._pending, self._woken_at = True, time.monotonic()
                _PROMOTER.schedule(self)

    def idle(self, timeout: float) -> bool:
        """Waits until nothing is left to promote now (paths waiting to settle aside); for benchmarks and tests."""
        deadline = time.monotonic() + timeout
        cond = _PROMOTER.cond
        with cond:
            while self._pending or self._busy:
                left = deadline - time.monotonic()
                if left <= 0 or self._stop:
                    return False
                cond.wait(min(left, 0.01))
        return True

    def _due(self) -> float | None:
        """When the promotion thread should turn to this watcher (its condition held): at once when stopped, a delay
        after a wake (the listing that woke it returns first: started or woken at once, the thread took the GIL
        from it for up to the 5 ms switch interval; a stop cuts the delay short), or at the retry; ``None``: no work.
        """
        if self._stop:
            return 0.0
        if self._pending:
            return self._woken_at + PROMOTE_AFTER_S
        return self._retry_at

    def _finish(self) -> None:
        """The end, in the promotion thread: the descriptors closed once no listing uses them."""
        with self._lock:
            self._close_fds()

    def _promote_pass(self) -> None:
        with self._lock:  # copies only: the lock is held as briefly as can be
            signature, also = self._signature, self._also
            if self.closed or signature is None:
                return
            prepare = self.prepare() if self.prepare is not None else None
            if prepare is not None:  # what the listing left for later, out of its time (see ``prepare``)
                prepare()
            items, also_items = list(signature.items()), list(also.items())
        # sorted out without the lock, from tables only it and listings change: each one is checked again under it
        promoted, refused, extra = self.promoted, self._refused, self._extra
        todo = [
            (path, expected)
            for path, expected in items
            if promoted.get(path, UNREAD) is not expected and refused.get(path, UNREAD) is not expected
        ]
        todo_also = [(path, entry) for path, entry in also_items if extra.get(path) is not entry]
        retry = False
        for start in range(0, len(todo), BATCH):
            with self._lock:
                if self.closed or self._stop or self._signature is not signature or self._mounts_changed():
                    return  # a new signature: its listing woke the thread again; a mount: the next listing probes
                promoted, refused = self.promoted, self._refused
                for path, expected in todo[start : start + BATCH]:
                    if (
                        signature.get(path, UNREAD) is expected
                        and promoted.get(path, UNREAD) is not expected
                        and refused.get(path, UNREAD) is not expected
                    ):
                        retry = self._promote(path, expected) or retry
        for start in range(0, len(todo_also), BATCH):
            with self._lock:
                if self.closed or self._stop or self._signature is not signature or self._mounts_changed():
                    return
                for path, entry in todo_also[start : start + BATCH]:
                    if also.get(path) is entry:
                        self._promote_also(path, entry, signature)
        if retry:
            with _PROMOTER.cond:
                self._retry_at = time.monotonic() + RETRY_S

    def _promote(self, path: str, expected: Expected) -> bool:
        """Tries to promote one path; whether to try it again later (it matched but has not settled yet)."""
        root = self._root_for(path)
        if root is None or not self._watch_root(root):
            if root is None or root in self._root_ids:
                self._refused[path] = expected
            return False
        device = self._dirs[root]
        parent = os.path.dirname(path)
        if path != root:
            chain = []
            directory = parent
            while directory != root:
                chain.append(directory)
                directory = os.path.dirname(directory)
            for directory in reversed(chain):  # top-down: each one's parent watches its entry first
                if directory not in self._dirs and not self._watch_dir(directory, device):
                    if not self._full:
                        self._refused[path] = expected
                    return False
        if expected is None:  # missing: its parent's watch reports its creation
            try:
                self.calls["lstat"] += 1
                os.lstat(path)
            except FileNotFoundError:
                if path != root:
                    self._promote_as(path, expected)
                    self._note(path)  # a missing path is not watched itself: reached from its parent
                return False
            except (OSError, ValueError):
                pass
            self._refused[path] = expected
            return False
        if path == root:
            result: os.stat_result | None = self._stat_self(path, device, follow=True)
        else:
            result = self._stat_self(path, device, follow=False)
        if result is None:
            if not self._full:
                self._refused[path] = expected
            return False
        if expected.__class__ is Listed:
            assert isinstance(expected, Listed)
            if not expected.holds(result):
                self._refused[path] = expected  # the next listing finds it changed and gives it a new entry
                return False
        elif result.st_mtime_ns != expected:
            self._refused[path] = expected
            return False
        elif not settled_since(result.st_mtime_ns, result.st_ctime_ns, fs_now_ns()):
            return True
        if stat.S_ISDIR(result.st_mode):
            self._dirs[path] = device
        self._promote_as(path, expected)
        return False

    def _promote_as(self, path: str, expected: Expected) -> None:
        """A promotion from the thread, whose signature may be older than the listing's: an entry it replaces may be
        the one the listing has (the listing must check the path again: ``ToCheck``)."""
        if path in self.promoted:
            self.demoted.add(path)
        self.promoted[path] = expected

    def _promote_also(self, path: str, entry: tuple[str, int], signature: Signature) -> None:
        """Watches a path its dependent's inspection read (at or after ``entry[1]``): unchanged since when its ctime
        is older (a local file system: the kernel's clock is ours), else its dependent is reported changed."""
        anchor, started = entry
        if anchor not in signature:  # its env went
            del self._also[path]
            return
        root = self._root_for(path)
        if root is None or not self._watch_root(root):
            return
        device = self._dirs[root]
        directory, chain = os.path.dirname(path), []
        while directory != root and len(directory) > len(root):
            chain.append(directory)
            directory = os.path.dirname(directory)
        for directory in reversed(chain):
            if directory not in self._dirs and not self._watch_dir(directory, device):
                return
        result = self._stat_self(path, device, follow=False)
        if result is None:
            return
        if result.st_ctime_ns >= started:
            self._forced.add(anchor)  # changed since it was read (or while): the next listing reads it again
            del self._also[path]
            self.dirty = True
            return
        self._extra[path] = entry

    def _root_for(self, path: str) -> str | None:
        """The root ``path`` is under, unless it is at or under another file system mounted inside that root."""
        for root in self._roots:
            if path == root or path.startswith(root + "/"):
                inner = self._inner_mounts.get(root, ())
                if inner and any(path == point or path.startswith(point + "/") for point in inner):
                    return None
                return root
        return None

    def _watch_root(self, root: str) -> bool:
        """Watches a root (it may be a symlink: its identity is checked on every listing) on a watchable file
        system; ``False``: nothing under it is promoted (for now)."""
        if root in self._root_ids:
            return self._root_ids[root] is not None and root in self._dirs
        if self._mounts_changed() or self._probe_stale:
            self.dirty = True  # tried again after the next listing, once its probe has asked the roots afresh
            return False
        if self._probed:  # its device as it answered the listing's probe: nothing here asks a mount that may hang
            ids, _asked = PROBE.answers()
            seen = ids.get(self._given.get(root, root))
            if seen is None:
                self.dirty = True  # missing, or not answered lately: tried again after the next listing
                return False
        else:
            try:
                self.calls["stat"] += 1
                first = os.stat(root)
            except (OSError, ValueError):
                return False
            seen = (first.st_dev, first.st_ino)
        if self._fs_types.get(seen[0]) not in WATCHABLE_FILE_SYSTEMS:
            self._root_ids[root] = None
            return False
        real = os.path.realpath(root)  # a local file system up to the root: nothing here can hang
        self._real_roots[root] = real
        self._inner_mounts[root] = tuple(_points_under(root, real, self._mount_points))
        if self._add_watch(root, MASK | IN_ONLYDIR) is None:
            return False
        try:
            self.calls["stat"] += 1
            result = os.stat(root)
        except (OSError, ValueError):
            return False
        if (result.st_dev, result.st_ino) != seen:
            return False  # moved since the probe: tried again later
        self._root_ids[root] = seen
        self._dirs[root] = result.st_dev
        self._checked[root] = True
        return True

    def _watch_dir(self, directory: str, device: int) -> bool:
        result = self._stat_self(directory, device, follow=False, only_dir=True)
        if result is None:
            return False
        self._dirs[directory] = device
        return True

    def _stat_self(self, path: str, device: int, *, follow: bool, only_dir: bool = False) -> os.stat_result | None:
        """Watches ``path`` itself, then ``lstat``s it: ``None`` when it is a symlink, on another device, or the
        watch could not be added."""
        mask = MASK | (0 if follow else IN_DONT_FOLLOW) | (IN_ONLYDIR if only_dir else 0)
        if self._add_watch(path, mask) is None:
            return None
        try:
            self.calls["stat" if follow else "lstat"] += 1
            result = os.stat(path) if follow else os.lstat(path)
        except (OSError, ValueError):
            return None
        if stat.S_ISLNK(result.st_mode) or result.st_dev != device:
            return None
        self._checked[path] = True
        return result

    def _add_watch(self, path: str, mask: int) -> int | None:
        if path in self._wd_of:
            return self._wd_of[path]  # still watched: no IN_IGNORED came (that drops it)
        if self._full or len(self._wds) >= self.max_watches:
            self._limit_reached(f"the limit of {self.max_watches} watches (LayenvKernelSpecManager.max_watches)")
            return None
        self.calls["add_watch"] += 1
        wd = self._libc.inotify_add_watch(self._fd, os.fsencode(path), mask)
        if wd < 0:
            err = ctypes.get_errno()
            if err in (errno.ENOSPC, errno.ENOMEM):
                self._limit_reached("the system's inotify watch limit (fs.inotify.max_user_watches)")
            return None
        self._wds.setdefault(wd, set()).add(path)
        self._wd_of[path] = wd
        self._note(path)
        return wd

    def _limit_reached(self, which: str) -> None:
        if not self._full:
            self._full = True
            self.log.info(
                "jupyter_layenv: change notifications reached %s; the other paths are checked with stat", which
            )

    # -- the end ----------------------------------------------------------------------------------------------

    def close(self, *, join: bool = True) -> None:
        """Stops promoting; the promotion thread closes the descriptors once no listing uses them (``closed``: no
        listing starts to); ``join``: waits for that (never from that thread, nor while holding the discovery lock).
        """
        self.closed = True
        cond = _PROMOTER.cond
        with cond:
            self._stop = True
            _PROMOTER.schedule(self)
            if join and not _PROMOTER.is_current():
                deadline = time.monotonic() + 5
                while self._fds_open and (left := deadline - time.monotonic()) > 0:
                    cond.wait(left)

    def _close_fds(self) -> None:
        if self._fds_open:
            self._fds_open = False
            os.close(self._fd)
            self._mounts.close()


class _Promoter:
    """The promotion thread, one per process for every watcher: started at the first wake (not inside a listing: it
    takes the GIL) or close, then kept. A thread per watcher cost each cold listing its start (``Thread.start`` waits
    until the new thread runs: 0.05-0.3 ms, up to 2 ms on a busy machine), and left as many threads as managers
    made. Watchers are served in turn; a pass takes the discovery lock in small batches, as before."""

    def __init__(self) -> None:
        self.cond = threading.Condition(threading.Lock())
        self._watchers: set[Watcher] = set()  # woken, waiting for a retry, or stopped (to be finished)
        self._thread: threading.Thread | None = None

    def schedule(self, watcher: Watcher) -> None:
        """The thread looks at ``watcher`` now (``cond`` held)."""
        self._watchers.add(watcher)
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="layenv-watch", daemon=True)
            self._thread.start()
        self.cond.notify_all()

    def is_current(self) -> bool:
        return threading.current_thread() is self._thread

    def _next(self) -> Watcher:
        """The first watcher due, waiting until one is (``cond`` held)."""
        while True:
            now = time.monotonic()
            soonest: float | None = None
            for watcher in list(self._watchers):
                due = watcher._due()
                if due is None:
                    self._watchers.discard(watcher)
                elif due <= now:
                    return watcher
                elif soonest is None or due < soonest:
                    soonest = due
            self.cond.wait(None if soonest is None else soonest - now)

    def _run(self) -> None:
        cond = self.cond
        while True:
            with cond:
                watcher = self._next()
                stopped = watcher._stop
                if stopped:
                    self._watchers.discard(watcher)
                else:
                    watcher._busy = True
                    watcher._pending, watcher._retry_at = False, None
            try:
                if stopped:
                    watcher._finish()
                else:
                    watcher._promote_pass()
            except Exception:  # one watcher's failure ends its notifications (listings go on with stat), not others'
                watcher.log.exception("jupyter_layenv: change notifications stopped")
                watcher.closed = True
                with cond:
                    watcher._stop = True
                    if not stopped:  # finished next (its descriptors closed)
                        self._watchers.add(watcher)
            finally:
                with cond:
                    watcher._busy = False
                    cond.notify_all()

    def _after_fork(self) -> None:
        """A child process has no promotion thread (nor a usable lock of the parent's): the next wake starts one."""
        self.cond = threading.Condition(threading.Lock())
        self._thread = None


_PROMOTER = _Promoter()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_PROMOTER._after_fork)


class ToCheck:
    """The signature entries a listing with change notifications must ``stat``: those not promoted, kept from one
    listing to the next so that a warm listing (and one inside the racy window) walks them alone, not the whole
    signature (about 700 entries at 500 envs, which a listing after other work finds out of the CPU caches: it took
    2-3 times the few ``stat`` calls left).

    A promotion only shrinks what must be checked (each use filters it again). What may grow it is looked at again:
    the paths the watcher demoted (``Watcher.demoted``) and those an update gave new entries (``touch``); when the
    watcher demoted everything at once (``Watcher.forgotten``) or a complete scan made a new signature (``reset``),
    the whole signature is.
    """

    def __init__(self) -> None:
        self._entries: dict[str, Expected] | None = None
        self._made_for: tuple[Watcher, int] | None = None
        self._touched: set[str] | None = None  # the paths an update under way gave new entries (``changing``)

    def reset(self) -> None:
        """A new signature: worked out from all of it."""
        self._entries, self._touched = None, None

    def changing(self) -> None:
        """An update starts: the paths it gives new entries are recorded (``touch``), paths it drops are dropped."""
        if self._entries is not None and self._touched is None:
            self._touched = set()

    def touch(self, paths: Iterable[str]) -> None:
        if self._touched is not None:
            self._touched.update(paths)

    def current(self) -> bool:
        """Whether the entries are those of the signature as it is (no update since they were worked out)."""
        return self._entries is not None and self._touched is None

    def entries(self, signature: Signature, watcher: Watcher) -> dict[str, Expected]:
        """The entries of ``signature`` not promoted now (the listing holds the discovery lock)."""
        kept = self._entries
        made_for = (watcher, watcher.forgotten)
        demoted, touched = watcher.demoted, self._touched
        if kept is None or self._made_for != made_for:
            kept = signature
        elif demoted or touched is not None:
            again = [*kept, *demoted, *(touched or ())]  # with their entries now (none: dropped since)
            kept = {path: signature[path] for path in again if path in signature}
        demoted.clear()
        self._touched = None
        known = watcher.promoted.get
        self._entries = {path: expected for path, expected in kept.items() if known(path, UNREAD) is not expected}
        self._made_for = made_for
        return self._entries

    def settle(self, settled: dict[str, int]) -> None:
        """The new entries a listing gave the ``Listed`` paths it found unchanged (it checked them: they are here)."""
        if settled and self._entries is not None:
            self._entries.update(settled)
