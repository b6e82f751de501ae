"""Facts about many envs too slow for a listing (sizes, health), worked out on one background thread and cached.

A listing asks and never waits: it gets what is known (``None``: not yet) and the envs that are due are queued. A
command asks and waits. A cached fact stays valid while the directories it read keep the mtimes stamped before it
read them (:func:`stamp`, :func:`unchanged`): the thread checks that at most every ``refresh`` seconds per env, and
works the fact out again only when one changed. A fact read while what it read was still changing (discovery's racy
rule, :func:`settled_since`) is not trusted that way: a file created and not yet written, or a second entry made in
the same clock tick, moves no stamped mtime when it is finished, so such a fact is worked out again when next due.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

from ..discovery import fs_now_ns, settled_since

W = TypeVar("W")  # what the measuring function is given for one env
R = TypeVar("R")  # what it finds

Stamps = tuple[tuple[str, int], ...]  # directories and their st_mtime_ns (-1: absent)

log = logging.getLogger("jupyter_layenv.usage")


def mtime(path: str) -> int:
    """A directory's st_mtime_ns, ``-1`` when it is absent (or cannot be read)."""
    info = _lstat(path)
    return -1 if info is None else info.st_mtime_ns


def stamp(paths: Iterable[str]) -> tuple[Stamps, bool]:
    """The directories' mtimes, and whether each was settled when stamped (none changed within the racy window)."""
    started = fs_now_ns()  # settled_since's start
    stamps: list[tuple[str, int]] = []
    settled = True
    for path in paths:
        info = _lstat(path)
        stamps.append((path, -1 if info is None else info.st_mtime_ns))
        if info is not None:
            settled = settled and settled_since(info.st_mtime_ns, info.st_ctime_ns, started)
    return tuple(stamps), settled


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except OSError:
        return None


def unchanged(stamps: Stamps) -> bool:
    """Whether every directory still has its stamp (a few stat calls): one absent then and now is unchanged."""
    return all(mtime(path) == stamped for path, stamped in stamps)


class Background(Generic[W, R]):
    """Facts keyed by env path: answered at once from what is known, measured on one daemon thread.

    ``measure(work)`` works a fact out; ``valid(fact, work)`` says whether a cached one still holds. The thread is a
    daemon: a command that exits does not wait for work it no longer needs.

    The same rules for sizes and health:

    - **An error of ``measure``** is logged, and the thread goes on with the next env (a thread that died on one
      env left every later waiter waiting for ever). The env keeps what was known before (``None`` if nothing) and
      is tried again when it is next due.
    - **A missing directory** is stamped ``-1``: one absent when measured and still absent is unchanged, so an env
      that is gone is not walked again every ``refresh`` seconds; one that appears (or goes) is a change.
    - **Waiting** (:meth:`wait_for`) waits for the asked envs only, never for work queued for others.
    """

    def __init__(
        self, measure: Callable[[W], R], valid: Callable[[R, W], bool], *, name: str, refresh: float = 30.0
    ) -> None:
        self.refresh = refresh
        self._measure = measure
        self._valid = valid
        self._name = name
        self._known: dict[str, R] = {}
        self._checked_at: dict[str, float] = {}
        self._queued: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._work: queue.SimpleQueue[tuple[str, W] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def lookup(self, paths: Iterable[str], work: Callable[[str], W]) -> dict[str, R | None]:
        """What is known of each env (``None``: not yet); queues those due, with ``work(path)``. Never waits."""
        now = time.monotonic()
        answer: dict[str, R | None] = {}
        with self._lock:
            for path in paths:
                known = self._known.get(path)
                answer[path] = known
                checked_at = self._checked_at.get(path)  # None: never queued (or forgotten since)
                due = checked_at is None or now - checked_at >= self.refresh  # a failed measure too: not every call
                if due and path not in self._queued:
                    self._checked_at[path] = now
                    self._queued[path] = threading.Event()
                    self._work.put((path, work(path)))
            if self._queued and self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
        return answer

    def wait_for(self, paths: Iterable[str], work: Callable[[str], W]) -> dict[str, R]:
        """Up-to-date facts of the envs asked, waiting for them (a command, never a request on the event loop); an
        env whose measure failed and that was never measured is not in the answer."""
        wanted = list(paths)
        self.lookup(wanted, work)
        with self._lock:
            pending = [self._queued[path] for path in wanted if path in self._queued]
        for done in pending:
            done.wait()
        with self._lock:
            return {path: self._known[path] for path in wanted if path in self._known}

    def forget(self, path: str) -> None:
        with self._lock:
            self._known.pop(path, None)
            self._checked_at.pop(path, None)

    def stop(self) -> None:
        self._work.put(None)

    def _run(self) -> None:
        while (item := self._work.get()) is not None:
            path, work = item
            try:
                known = self._known.get(path)
                if known is None or not self._valid(known, work):
                    fresh = self._measure(work)
                    with self._lock:
                        self._known[path] = fresh
            except Exception as err:
                log.warning("jupyter_layenv: %s of %s failed: %s", self._name, path, err, exc_info=True)
            finally:
                with self._lock:
                    self._queued.pop(path).set()
