"""What an environment costs on disk, measured off the event loop and cached by directory mtimes.

An env's files are often hard links: uv links a layer's packages from its cache, conda links an env's from
``pkgs/``, and one env may link another's. Deleting the env frees only the inodes whose every link is inside it,
so that is its ``size_bytes`` (each inode counted once, in allocated blocks as ``du`` counts them); the bytes of
files also linked from elsewhere are its ``shared_bytes``. A walk records the mtime of every directory it saw; the
measure stays valid while none of them changed (a file added, removed or renamed changes its directory's mtime).
"""

from __future__ import annotations

import os
import queue
import stat
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

BLOCK = 512  # st_blocks unit
YIELD_EVERY = 16  # directories walked between two chances for other threads to run


@dataclass(frozen=True)
class Measure:
    size_bytes: int  # bytes only this env holds: freed by deleting it
    shared_bytes: int  # bytes of files hard-linked from outside it too (a package cache, another env)
    files: int  # distinct inodes that are not directories
    dirs: tuple[tuple[str, int], ...]  # every directory walked and its st_mtime_ns, to validate the measure
    measured_at: float

    def unchanged(self) -> bool:
        """Whether every directory still has the mtime it had when measured (a few stat calls, no walk)."""
        for path, mtime in self.dirs:
            try:
                if os.lstat(path).st_mtime_ns != mtime:
                    return False
            except OSError:
                return False
        return True


def measure(root: str) -> Measure:
    """Walk ``root`` without following symlinks or leaving its filesystem."""
    try:
        top = os.lstat(root)
    except OSError:
        return Measure(0, 0, 0, ((root, -1),), time.time())
    device = top.st_dev
    links: dict[int, list[int]] = {}  # inode -> [links seen here, st_nlink, bytes]
    dirs: list[tuple[str, int]] = []
    own = top.st_blocks * BLOCK
    files = 0
    todo = [root]
    dirs.append((root, top.st_mtime_ns))
    walked = 0
    while todo:
        directory = todo.pop()
        walked += 1
        if walked % YIELD_EVERY == 0:
            time.sleep(0)  # lets a waiting thread (a listing, the event loop) take the GIL now and then
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        for entry in entries:
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if info.st_dev != device:
                continue  # a mount inside the env is not the env's
            if stat.S_ISDIR(info.st_mode):
                dirs.append((entry.path, info.st_mtime_ns))
                todo.append(entry.path)
                own += info.st_blocks * BLOCK
            elif info.st_nlink <= 1:
                own += info.st_blocks * BLOCK
                files += 1
            else:
                seen = links.setdefault(info.st_ino, [0, info.st_nlink, info.st_blocks * BLOCK])
                seen[0] += 1
    shared = 0
    for seen_here, nlink, size in links.values():
        files += 1
        if seen_here >= nlink:
            own += size
        else:
            shared += size
    return Measure(own, shared, files, tuple(dirs), time.time())


class SizeTracker:
    """Sizes of many envs: answered at once from what is known, measured on one background thread.

    ``sizes`` never waits: an env not measured yet is ``None`` and its walk is queued; a measured one is checked
    against its directories' mtimes (in the background too) at most every ``refresh`` seconds. The thread is a
    daemon: a command that exits does not wait for walks it no longer needs.
    """

    def __init__(self, refresh: float = 30.0) -> None:
        self.refresh = refresh
        self._known: dict[str, Measure] = {}
        self._checked: dict[str, float] = {}
        self._queued: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._work: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def sizes(self, paths: Iterable[str]) -> dict[str, Measure | None]:
        now = time.monotonic()
        answer: dict[str, Measure | None] = {}
        with self._lock:
            for path in paths:
                answer[path] = self._known.get(path)
                due = path not in self._known or now - self._checked.get(path, 0) >= self.refresh
                if due and path not in self._queued:
                    self._checked[path] = now
                    self._queued[path] = threading.Event()
                    self._work.put(path)
            if self._queued and self._thread is None:
                self._thread = threading.Thread(target=self._run, name="layenv-sizing", daemon=True)
                self._thread.start()
        return answer

    def measured(self, paths: Iterable[str]) -> dict[str, Measure]:
        """Up-to-date measures, waiting for them (the CLI and cleanup, never a request on the event loop)."""
        wanted = list(paths)
        self.sizes(wanted)
        with self._lock:
            pending = [self._queued[path] for path in wanted if path in self._queued]
        for done in pending:
            done.wait()
        with self._lock:
            return {path: self._known[path] for path in wanted if path in self._known}

    def forget(self, path: str) -> None:
        with self._lock:
            self._known.pop(path, None)
            self._checked.pop(path, None)

    def _run(self) -> None:
        while (path := self._work.get()) is not None:
            try:
                known = self._known.get(path)
                if known is None or not known.unchanged():
                    fresh = measure(path)
                    with self._lock:
                        self._known[path] = fresh
            finally:
                with self._lock:
                    self._queued.pop(path).set()

    def stop(self) -> None:
        self._work.put(None)
