"""Which of a user's envs a cleanup may remove, and pruning the package caches of what no env links any more.

Never removed: another user's env, one another tool made (no layenv.json: used from terminals, which leave no kernel
start behind), one used (or, never used, made) within the last N days, one the delete rules refuse (a Conda env, a
base with layers on it, the server's own env, a read-only one), one a kernel runs from (any process whose command
line names a file inside it: kernels of this server, of another server, of a terminal), one a job is working on
(this server's, or another process holding its lock).
"""

from __future__ import annotations

import collections
import fcntl
import os
import shutil
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from .. import fsread
from ..model import PROVENANCE, Environment


@dataclass(frozen=True)
class Verdict:
    env: Environment
    size_bytes: int
    last_used: str | None  # ISO; None: never started a kernel
    kept_because: str | None  # None: to be removed


@dataclass
class CachePrune:
    """What pruning a package cache removes (or, in a dry run, would)."""

    cache: str
    entries: list[str] = field(default_factory=list)
    bytes: int = 0
    skipped: str | None = None  # why nothing was pruned (the installer is using its cache)


def made_at(env: Environment) -> datetime:
    """When an env was made: jupyter_layenv's record of its creation, else its marker files' mtime."""
    for marker in (PROVENANCE, "pyvenv.cfg", os.path.join("conda-meta", "history")):
        try:
            return datetime.fromtimestamp(os.stat(os.path.join(env.path, marker)).st_mtime, timezone.utc)
        except OSError:
            continue
    return datetime.now(timezone.utc)


def select(
    envs: Iterable[Environment],
    *,
    uid: int,
    cutoff: datetime,
    facts: dict[str, dict],
    refusal: Callable[[Environment], str | None],
    busy: Callable[[Environment], bool],
    running: dict[str, list[str]],
) -> list[Verdict]:
    """The verdict on each of the user's envs unused since ``cutoff`` (recently used ones are not listed)."""
    verdicts = []
    for env in envs:
        if env.owner_uid != uid:
            continue
        fact = facts.get(env.path, {})
        last = fact.get("last_used")
        if (datetime.fromisoformat(last) if last else made_at(env)) > cutoff:
            continue
        reason = refusal(env)
        if reason is None and env.path in running:
            reason = f"a kernel (or another process) is running from it: {', '.join(running[env.path][:5])}"
        if reason is None and busy(env):
            reason = "a job is working on it"
        verdicts.append(Verdict(env, int(fact.get("size_bytes") or 0), last, reason))
    verdicts.sort(key=lambda v: (v.kept_because is not None, -v.size_bytes))
    return verdicts


def inode_links(paths: Iterable[str]) -> collections.Counter[tuple[int, int]]:
    """How many links to each multiply-linked inode the trees hold (what removing them takes from the caches)."""
    links: collections.Counter[tuple[int, int]] = collections.Counter()
    for path in paths:
        for directory, _dirs, files in os.walk(path):
            for name in files:
                try:
                    info = os.lstat(os.path.join(directory, name))
                except OSError:
                    continue
                if info.st_nlink > 1 and stat.S_ISREG(info.st_mode):
                    links[(info.st_dev, info.st_ino)] += 1
    return links


def prune_uv_cache(cache: str, going: collections.Counter[tuple[int, int]], *, dry_run: bool) -> CachePrune:
    """Remove the unpacked wheels (``archive-v0/<id>``) of uv's cache that no env links, and uv's entries that
    point at them (else uv would fail to read a missing archive instead of unpacking the wheel again).

    ``going``: links that envs about to be removed hold (a dry run counts them as gone). Holds uv's cache lock
    (``<cache>/.lock``, as ``uv cache clean`` does), and prunes nothing while uv is using the cache.
    """
    result = CachePrune(cache)
    archives = os.path.join(cache, "archive-v0")
    if not fsread.is_dir(archives):
        return result
    try:
        lock = _try_lock(os.path.join(cache, ".lock"), create=True)
    except OSError as err:
        result.skipped = f"cannot lock {cache}: {err.strerror}"
        return result
    if lock is None:
        result.skipped = "uv is using its cache: run the cleanup again when installs are done"
        return result
    try:
        unlinked = {}
        for archive_id in sorted(fsread.listdir(archives)):
            size = _unlinked_size(os.path.join(archives, archive_id), going)
            if size is not None:
                unlinked[archive_id] = size
        result.entries = [os.path.join(archives, archive_id) for archive_id in unlinked]
        result.bytes = sum(unlinked.values())
        if not dry_run and unlinked:
            for pointer in _pointers(cache, set(unlinked)):
                os.unlink(pointer)
            for path in result.entries:
                shutil.rmtree(path, ignore_errors=True)
    finally:
        os.close(lock)
    return result


def rattler_cache_dir(configured: str | None) -> str:
    """The package cache py-rattler extracts Conda packages into: LayenvService.conda_pkgs_dir, else rattler's own
    (``RATTLER_CACHE_DIR``, else ``$XDG_CACHE_HOME/rattler/cache``, its ``pkgs/``)."""
    if configured:
        return fsread.expand(configured)
    root = os.environ.get("RATTLER_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "rattler", "cache"
    )
    return os.path.join(root, "pkgs")


def prune_conda_cache(pkgs: str, going: collections.Counter[tuple[int, int]], *, dry_run: bool) -> CachePrune:
    """Remove the extracted packages (``<pkgs>/<name>-<version>-<build>/``) no env links any more, as
    ``conda clean --packages`` does, with rattler's lock file beside each; a package whose lock another process
    holds (rattler extracting or validating it) is left alone. Archives are kept: a solve offline still finds them.
    """
    result = CachePrune(pkgs)
    for name in sorted(fsread.listdir(pkgs)):
        path = os.path.join(pkgs, name)
        if os.path.islink(path) or not fsread.is_dir(path) or not fsread.is_dir(os.path.join(path, "info")):
            continue  # not an extracted package (conda's cache/, urls.txt, archives)
        size = _unlinked_size(path, going)
        if size is None:
            continue
        lock_file = f"{path}.lock"
        try:
            lock = _try_lock(lock_file) if os.path.exists(lock_file) else -1
        except OSError:
            continue  # a lock file we cannot open: not ours to decide for
        if lock is None:
            continue
        try:
            result.entries.append(path)
            result.bytes += size
            if not dry_run:
                shutil.rmtree(path, ignore_errors=True)
                if lock >= 0:
                    os.unlink(lock_file)
        finally:
            if lock is not None and lock >= 0:
                os.close(lock)
    return result


def _try_lock(path: str, *, create: bool = False) -> int | None:
    """An exclusive lock on ``path`` (its descriptor), or ``None`` when another process holds it; ``OSError`` when
    the file cannot be opened (never through a symbolic link)."""
    fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | (os.O_CREAT if create else 0), 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _unlinked_size(archive: str, going: collections.Counter[tuple[int, int]]) -> int | None:
    """The bytes of an unpacked wheel none of whose files is linked from outside it (but by ``going``)."""
    inside: collections.Counter[tuple[int, int]] = collections.Counter()
    nlinks: dict[tuple[int, int], tuple[int, int]] = {}
    total = 0
    for directory, dirs, files in os.walk(archive):
        for name in [*dirs, *files]:
            try:
                info = os.lstat(os.path.join(directory, name))
            except OSError:
                return None
            total += info.st_blocks * 512 if (name in dirs or info.st_nlink == 1) else 0
            if name in files and info.st_nlink > 1:
                key = (info.st_dev, info.st_ino)
                inside[key] += 1
                nlinks[key] = (info.st_nlink, info.st_blocks * 512)
    for key, (nlink, size) in nlinks.items():
        if nlink > inside[key] + going[key]:
            return None  # an env that stays links it
        total += size
    return total


def _pointers(cache: str, archive_ids: set[str]) -> list[str]:
    """uv's entries naming the archives: symlinks to them and the small revision files that record their ids."""
    pointers = []
    needles = [archive_id.encode() for archive_id in archive_ids]
    for directory, dirs, files in os.walk(cache):
        if directory == cache:
            dirs[:] = [d for d in dirs if d != "archive-v0"]
        for name in [*files, *dirs]:
            path = os.path.join(directory, name)
            if os.path.islink(path):
                if os.path.basename(os.readlink(path).rstrip("/")) in archive_ids:
                    pointers.append(path)
            elif name in files and name.endswith((".rev", ".http", ".msgpack")):
                data = _read_bytes(path)
                if any(needle in data for needle in needles):
                    pointers.append(path)
    return pointers


def _read_bytes(path: str, limit: int = 1024 * 1024) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read(limit)
    except OSError:
        return b""
