"""Health of every env for a listing: answered at once from what is known, checked on a background thread.

A check reads every ``*.dist-info`` of an env (and of a layer's base): too slow for a listing of hundreds of envs,
so a listing gets what is known (``None``: not checked yet, queued) and a check is cached by the mtimes of the
directories it read (site-packages, ``conda-meta``, the base's site-packages): installing, removing or replacing a
distribution changes them. Validation runs in the background too, at most every ``refresh`` seconds per env.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from dataclasses import dataclass

from ..locators.prefix import site_packages_of
from ..model import Discovered, Environment
from .health import HealthIssue, check


@dataclass(frozen=True)
class Checked:
    issues: tuple[HealthIssue, ...]
    base: str | None  # the base it was checked against
    dirs: tuple[tuple[str, int], ...]  # the directories read and their st_mtime_ns (-1: absent)

    def unchanged(self, base: str | None) -> bool:
        return base == self.base and all(_mtime(path) == mtime for path, mtime in self.dirs)


def _mtime(path: str) -> int:
    try:
        return os.lstat(path).st_mtime_ns
    except OSError:
        return -1


def _dirs(env: Environment, base: Environment | None) -> tuple[tuple[str, int], ...]:
    """What a check of ``env`` reads, stamped before it reads (a change during the check is seen next time)."""
    paths = [os.path.join(env.path, "conda-meta")]
    for prefix in (env, base) if base is not None else (env,):
        site, _version, _entries = site_packages_of(prefix.path, prefix.python_version)
        paths.append(site or os.path.join(prefix.path, "lib"))
    return tuple((path, _mtime(path)) for path in paths)


class HealthTracker:
    def __init__(self, refresh: float = 30.0) -> None:
        self.refresh = refresh
        self._known: dict[str, Checked] = {}
        self._checked_at: dict[str, float] = {}
        self._queued: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._work: queue.SimpleQueue[tuple[Environment, Environment | None] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def issues(self, discovered: Discovered) -> dict[str, list[HealthIssue] | None]:
        """Every env's known issues (``None``: not checked yet); queues the checks that are due. Never waits."""
        now = time.monotonic()
        answer: dict[str, list[HealthIssue] | None] = {}
        with self._lock:
            for env in discovered.environments:
                known = self._known.get(env.path)
                answer[env.path] = list(known.issues) if known is not None else None
                due = known is None or now - self._checked_at.get(env.path, 0) >= self.refresh
                if due and env.path not in self._queued:
                    self._checked_at[env.path] = now
                    self._queued[env.path] = threading.Event()
                    self._work.put((env, discovered.by_path(env.base) if env.base else None))
            if self._queued and self._thread is None:
                self._thread = threading.Thread(target=self._run, name="layenv-health", daemon=True)
                self._thread.start()
        return answer

    def checked(self, discovered: Discovered) -> dict[str, list[HealthIssue]]:
        """Up-to-date issues of every env, waiting for them (a command, never a request on the event loop)."""
        self.issues(discovered)
        with self._lock:
            pending = list(self._queued.values())
        for done in pending:
            done.wait()
        with self._lock:
            return {env.path: list(self._known[env.path].issues) for env in discovered.environments
                    if env.path in self._known}  # fmt: skip

    def known(self, path: str) -> Checked | None:
        with self._lock:
            return self._known.get(path)

    def forget(self, path: str) -> None:
        with self._lock:
            self._known.pop(path, None)
            self._checked_at.pop(path, None)

    def _run(self) -> None:
        while (work := self._work.get()) is not None:
            env, base = work
            try:
                known = self._known.get(env.path)
                base_path = base.path if base is not None else None
                if known is None or not known.unchanged(base_path):
                    dirs = _dirs(env, base)
                    fresh = Checked(tuple(check(env, base)), base_path, dirs)
                    with self._lock:
                        self._known[env.path] = fresh
            except Exception:
                pass
            finally:
                with self._lock:
                    self._queued.pop(env.path).set()

    def stop(self) -> None:
        self._work.put(None)
