"""What an environment costs on disk, measured off the event loop and cached by directory mtimes.

An env's files are often hard links: uv links a layer's packages from its cache, conda links an env's from
``pkgs/``, and one env may link another's. Deleting the env frees only the inodes whose every link is inside it,
so that is its ``size_bytes`` (each inode counted once, in allocated blocks as ``du`` counts them); the bytes of
files also linked from elsewhere are its ``shared_bytes``. A walk records the mtime of every directory it saw; the
measure stays valid while none of them changed (a file added, removed or renamed changes its directory's mtime). A walk
that met a file or directory changed within the racy window (an install still writing) is walked again when next due:
a file's content written after the walk moves no directory's mtime. A file that grows in place long after (a log)
is seen once its directory next changes.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterable
from dataclasses import dataclass

from ..discovery import fs_now_ns, settled_since
from .background import Background, Stamps, unchanged

BLOCK = 512  # st_blocks unit
YIELD_EVERY = 16  # directories walked between two chances for other threads to run


@dataclass(frozen=True)
class Measure:
    size_bytes: int  # bytes only this env holds: freed by deleting it
    shared_bytes: int  # bytes of files hard-linked from outside it too (a package cache, another env)
    files: int  # distinct inodes that are not directories
    dirs: Stamps  # every directory walked, to validate the measure
    settled: bool  # nothing walked had changed within the racy window: the stamps alone can validate the measure
    measured_at: float


def measure(root: str) -> Measure:
    """Walk ``root`` without following symlinks or leaving its filesystem."""
    started = fs_now_ns()  # settled_since's start
    try:
        top = os.lstat(root)
    except OSError:
        return Measure(0, 0, 0, ((root, -1),), True, time.time())
    device = top.st_dev
    links: dict[int, list[int]] = {}  # inode -> [links seen here, st_nlink, bytes]
    dirs: list[tuple[str, int]] = []
    own = top.st_blocks * BLOCK
    files = 0
    todo = [root]
    dirs.append((root, top.st_mtime_ns))
    settled = settled_since(top.st_mtime_ns, top.st_ctime_ns, started)
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
            settled = settled and settled_since(info.st_mtime_ns, info.st_ctime_ns, started)
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
    return Measure(own, shared, files, tuple(dirs), settled, time.time())


class SizeTracker(Background[str, Measure]):
    """Sizes of many envs: answered at once from what is known, measured on one background thread.

    ``sizes`` never waits: an env not measured yet is ``None`` and its walk is queued; a measured one is checked
    against its directories' mtimes (in the background too) at most every ``refresh`` seconds.
    """

    def __init__(self, refresh: float = 30.0) -> None:
        super().__init__(measure, _valid, name="layenv-sizing", refresh=refresh)

    def sizes(self, paths: Iterable[str]) -> dict[str, Measure | None]:
        return self.lookup(paths, _walked)

    def measured(self, paths: Iterable[str]) -> dict[str, Measure]:
        """Up-to-date measures, waiting for them (the CLI and cleanup, never a request on the event loop)."""
        return self.wait_for(paths, _walked)


def _valid(known: Measure, _path: str) -> bool:
    return known.settled and unchanged(known.dirs)


def _walked(path: str) -> str:
    """What a measure is given for an env: its own path, which it walks."""
    return path
