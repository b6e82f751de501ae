"""The stat/listing cache of one scan, mtime signatures, and the per-path memo that makes rescans incremental."""

from __future__ import annotations

import os
import stat
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Generic, TypeVar

from ..probe import root_of

# An mtime this close to the scan may hide a change made in the same clock tick (or on a skewed NFS
# server): such a dependency is re-checked by content on the next call instead of trusted.
RACY_WINDOW_NS = 2_000_000_000
# a cache miss, for the lookups of this module and of the build: not read yet (None: read, and missing or unreadable)
UNREAD: Any = object()


# The clock the kernel stamps a file's mtime and ctime with on Linux: the coarse one, up to a tick (1-10 ms) behind
# ``time.time_ns()``. Elsewhere the precise clock (no coarse clock to ask).
_FS_CLOCK = getattr(time, "CLOCK_REALTIME_COARSE", 5 if sys.platform.startswith("linux") else None)


def fs_now_ns() -> int:
    """Now, as the file system would stamp a change made now: the start of a scan for ``settled_since``. Against
    ``time.time_ns()``, a directory changed a moment after the start (the same tick) could show a ctime before it
    and pass as unchanged; against this clock its ctime is at or after the start, and a change made in the tick
    before the start counts as changed too (read again: the safe side)."""
    return time.clock_gettime_ns(_FS_CLOCK) if _FS_CLOCK is not None else time.time_ns()


def settled_since(mtime_ns: int, ctime_ns: int, started: int) -> bool:
    """Whether a directory read at ``started`` (ns, from ``fs_now_ns``) is still as read: its mtime older than the racy
    window before that, and its ctime before it (an mtime moved back by ``rsync -a`` or an unpacked archive moves the
    ctime)."""
    return mtime_ns <= started - RACY_WINDOW_NS and ctime_ns < started


class Listed:
    """The signature's entry of a directory the scan listed and did not ``stat``: unchanged while its mtime is not
    within the racy window of the scan's start (``started``) or later, and its ctime is earlier than that start.

    Listed after the scan started, the directory changed since only with a later mtime, or (an archive or
    ``rsync -a`` restoring an old mtime, which ``utime`` does) a later ctime. So the next listing's ``stat`` answers
    what a ``stat`` right after the listing would have been compared with, and the scan saves that call; its mtime
    is the baseline from then on (``changed_paths``' ``settled``). A directory whose mtime was moved back before the
    scan (a test's settled tree) counts as unchanged, as it did. Like the racy window itself, this trusts the file
    system's clock to agree with ours within the window.
    """

    __slots__ = ("mtime_by", "started")

    def __init__(self, started: int) -> None:
        self.started = started
        self.mtime_by = started - RACY_WINDOW_NS  # the latest mtime that holds (``_changed`` compares it inline)

    def holds(self, result: os.stat_result | None) -> bool:
        return result is not None and settled_since(result.st_mtime_ns, result.st_ctime_ns, self.started)

    def __repr__(self) -> str:
        return f"Listed(started={self.started})"


class ScanStats:
    """``stat`` results and directory listings of one scan: each path is read at most once.

    A path in a root that did not answer (``hung``) is never asked: it reads as missing. An mtime after the
    scan started (less the racy window) is not trusted, whenever during the scan it was read: what the scan
    saw of that directory may be older than its mtime. A directory the scan listed and has no other use of a
    ``stat`` for (``note_listed``) gets a ``Listed`` entry instead of its mtime.
    """

    def __init__(self, hung: tuple[str, ...] = (), *, watch_also: dict[str, tuple[str, int]] | None = None) -> None:
        # change notifications are on: path read in this scan -> (the signature path to report changed when it
        # changes, the scan's start); see ``.watch``
        self.watch_also = watch_also
        self._stats: dict[str, os.stat_result | None] = {}
        self._listings: dict[str, Listing | None] = {}
        self._listed: set[str] = set()
        self._listed_mark: Listed | None = None  # one for every listed directory of the scan (they share ``started``)
        self.pyvenvs: dict[bytes, dict[str, str] | None] = {}  # pyvenv.cfg contents parsed in this scan
        self.kernel_specs: dict[bytes, dict | None] = {}  # and kernel.json contents
        # a layer's inspection may leave its dist-info unlooked for (``PrefixFacts.has_ipykernel``): the first listing
        # of a discovery only. Facts inspected again are compared with the last ones; the build's look at the
        # dist-info is made again only when they differ, so they must say what it would find.
        self.defer_distributions = False
        self.hung = hung
        self.started_ns = fs_now_ns()
        # an incremental listing with change notifications: called with a prefix (or a directory that may be one)
        # before this scan first reads it (``Watcher.watch_ahead``); ``None`` in a complete scan
        self.ahead: Callable[[str, ScanStats], None] | None = None

    def read_already(self, path: str) -> bool:
        """Whether this scan has ``stat``-ed or listed ``path`` already."""
        return path in self._stats or path in self._listings

    def entry_read(self, path: str) -> Expected | Any:
        """The signature entry this scan's own read of ``path`` gives (``UNREAD``: it made none); no call made."""
        result = self._stats.get(path, UNREAD)
        if result is UNREAD:
            return self._listed_mark if path in self._listed and self._listed_mark is not None else UNREAD
        mtime = None if result is None else result.st_mtime_ns
        racy_after = min(self.started_ns, fs_now_ns()) - RACY_WINDOW_NS
        return -1 if mtime is not None and mtime > racy_after else mtime

    # A miss is the common case in a cold scan: looked up with a sentinel, not by catching KeyError (3x dearer).

    def stat(self, path: str) -> os.stat_result | None:
        result = self._stats.get(path, UNREAD)
        if result is not UNREAD:
            return result
        try:
            result = None if self.hung and root_of(path, self.hung) else os.stat(path)
        except (OSError, ValueError):
            result = None
        self._stats[path] = result
        return result

    def listing(self, path: str) -> Listing | None:
        """The entries of a directory by name (their types from ``d_type``); ``None``: unreadable."""
        found = self._listings.get(path, UNREAD)
        if found is not UNREAD:
            return found
        found = None if self.hung and root_of(path, self.hung) else list_entries(path)
        self._listings[path] = found
        return found

    def listed(self, path: str) -> Listing | None:
        """The listing of a directory if this scan made one already (``None`` otherwise: nothing is read)."""
        return self._listings.get(path)

    def is_dir(self, path: str) -> bool:
        """Whether ``path`` is a directory (following links); a listing of its parent made in this scan answers
        without a ``stat`` unless the entry is a link.
        """
        parent, name = os.path.split(path)
        listing = self._listings.get(parent)
        if listing is not None and name:
            entry = listing.get(name)
            if entry is None:
                return False
            if not entry.is_symlink():
                return entry.is_dir(follow_symlinks=False)
        result = self.stat(path)
        return result is not None and stat.S_ISDIR(result.st_mode)

    def dir_id(self, path: str) -> tuple[int, int] | None:
        result = self.stat(path)
        return None if result is None else (result.st_dev, result.st_ino)

    def note_listed(self, path: str) -> None:
        """A directory this scan has just listed (successfully), or found the entry it asked for in with a ``stat``
        (a listing would have shown it too): its signature entry needs no ``stat``."""
        self._listed.add(path)

    def unchanged(self, signature: Signature) -> bool:
        return all(_matches(self.stat(path), expected) for path, expected in signature.items())

    def signature(self, paths: Iterable[str]) -> Signature:
        """mtimes to compare next time; one too recent to trust (same clock tick) is stored as "changed"; a
        directory listed in this scan and not read otherwise, as ``Listed``."""
        started = min(self.started_ns, fs_now_ns())
        racy_after = started - RACY_WINDOW_NS
        known, listed = self._stats, self._listed
        signature: Signature = {}
        for path in paths:
            if path in signature:
                continue
            if path in known:  # most were read already in this scan
                result = known[path]
            elif path in listed:
                mark = self._listed_mark
                if mark is None or mark.started != started:  # the clock went back during the scan: a mark of its own
                    mark = self._listed_mark = Listed(started)
                signature[path] = mark
                continue
            else:
                result = self.stat(path)
            mtime = None if result is None else result.st_mtime_ns
            signature[path] = -1 if mtime is not None and mtime > racy_after else mtime
        return signature


# name -> its entry, whose ``is_symlink()`` and ``is_dir(follow_symlinks=False)`` answer from ``d_type``
Listing = dict[str, os.DirEntry]


def list_entries(path: str) -> Listing | None:
    """One ``scandir``: the entries by name; their types are asked only where needed (no ``stat`` per entry)."""
    try:
        with os.scandir(path) as entries:
            return {entry.name: entry for entry in entries}
    except (OSError, ValueError):
        return None


Expected = int | Listed | None  # an mtime; -1: changed (racy); None: missing; Listed: see there
# path -> what its stat should show; a dict (one object, not a tuple per path: fewer for the garbage collector)
Signature = dict[str, Expected]


def _matches(result: os.stat_result | None, expected: Expected) -> bool:
    if expected.__class__ is Listed:
        return expected.holds(result)
    return (None if result is None else result.st_mtime_ns) == expected


def _changed(signature: Iterable[tuple[str, Expected]], settled: dict[str, int] | None = None) -> Iterator[str]:
    """The paths whose mtime is not the one stored (or, ``Listed``, is too recent), found with plain ``stat``
    calls as they are asked for. ``settled``: gets the mtime of each ``Listed`` path found unchanged, its baseline
    from now on (the same as a ``stat`` right after its listing would have given)."""
    stat = os.stat
    for path, expected in signature:
        try:
            result = stat(path)
        except (OSError, ValueError):
            if expected is not None:
                yield path
            continue
        mtime = result.st_mtime_ns
        if mtime != expected:
            # the first listing after its scan: ``Listed.holds`` inlined (most of a scan's signature is ``Listed``,
            # and two calls each cost the first update after a cold listing 0.1-0.2 ms at 500 envs)
            if expected.__class__ is Listed and mtime <= expected.mtime_by and result.st_ctime_ns < expected.started:
                if settled is not None:
                    settled[path] = mtime
                continue
            yield path


def changed_paths(signature: Iterable[tuple[str, Expected]], settled: dict[str, int] | None = None) -> list[str]:
    """All the changed paths (a warm listing makes the same calls); ``settled``: see ``_changed``."""
    return list(_changed(signature, settled))


def signature_unchanged(signature: Signature) -> bool:
    """The warm path: stops at the first change."""
    return next(_changed(signature.items()), None) is None


def mtime_signature(paths: Iterable[str]) -> Signature:
    return ScanStats().signature(paths)


V = TypeVar("V")


def _depend(dependents: dict[str, object], paths: Iterable[str], key: object) -> None:
    """Records that ``key``'s entry depends on ``paths``: one key per path, or a set of them when several do."""
    for path in paths:
        found = dependents.get(path, UNREAD)
        if found is UNREAD:
            dependents[path] = key
        elif isinstance(found, set):
            found.add(key)
        elif found != key:
            dependents[path] = {found, key}


class Memo(Generic[V]):
    """Results keyed by path, each valid while the mtimes of its dependencies stay the same.

    A result checked once in a scan is not checked again in that scan (discovery asks for the same
    prefix several times: dedupe, layering, bases). A result the last scan checked has its dependencies in
    that scan's signature: once the signature says which paths changed (``changed``), it is valid when it
    depends on none of them, without a ``stat``.
    """

    def __init__(self, compute: Callable[[Any, V | None, ScanStats], tuple[V, Sequence[str]]]) -> None:
        """``compute(key, previous value or None, stats)``: a key's value and the paths it depends on; one function
        for every key (not a closure made per key: a cold scan asks for every prefix once)."""
        self._compute = compute
        # key -> its signature (iterated, its dependencies' paths), and key -> its value: two dicts, not a tuple per
        # key (fewer objects for the garbage collector)
        self.entries: dict[object, Signature] = {}
        self.values: dict[object, V] = {}
        self._checked: dict[object, V] = {}
        self._checked_for: ScanStats | None = None
        self.trusted: set[object] = set()  # keys checked in the last complete scan (or added since, incrementally)
        self.changed: frozenset[str] | None = None  # paths whose mtime moved since then (None: not known)
        # path -> the key whose entry depends on it, or a set of them when several do (most paths have one: no set);
        # made at its first use (``dependents``), then kept up to date
        self._dependents: dict[str, object] | None = None
        self.orphaned: set[str] = set()  # paths that lost their last dependent key (for the signature to drop)

    @property
    def dependents(self) -> dict[str, object]:
        """The index of the keys by dependency, for updates. Made from the entries when first asked for (the first
        update after a complete scan, or its promotion in the background), not key by key as a cold listing computes
        them: an index only updates use, which cost a cold listing at 500 envs 0.4 ms (with the build's, 0.8)."""
        dependents = self._dependents
        if dependents is None:
            dependents = self._dependents = {}
            for key, signature in self.entries.items():
                _depend(dependents, signature, key)
        return dependents

    def get(self, key: object, stats: ScanStats) -> V:
        if self._checked_for is not stats:
            self._checked_for, self._checked = stats, {}
        # the common case (discovery asks for a prefix about 4 times a scan): asked already; no value is None
        elif (found := self._checked.get(key)) is not None:
            return found
        cached = self.entries.get(key)
        valid = cached is not None and self._valid(key, cached, stats)
        value = self.values[key] if valid else self.compute(key, stats)
        self._checked[key] = value
        return value

    def _valid(self, key: object, cached: Signature, stats: ScanStats) -> bool:
        if self.changed is not None and key in self.trusted:
            return self.changed.isdisjoint(cached)
        return stats.unchanged(cached)

    def compute(self, key: object, stats: ScanStats) -> V:
        """Computes again; an equal answer keeps the previous object, so what was built from it is reused."""
        if self._checked_for is not stats:
            self._checked_for, self._checked = stats, {}
        cached = self.entries.get(key)
        previous = self.values[key] if cached is not None else None
        # an index made after this entry changed would not know the paths it no longer depends on
        dependents = self.dependents if cached is not None else self._dependents
        value, deps = self._compute(key, previous, stats)
        if cached is not None and value == previous:
            value = previous
        signature = stats.signature(deps)
        self.entries[key] = signature
        self.values[key] = value
        self._checked[key] = value
        if dependents is None:  # made later, from the entries
            return value
        paths = signature.keys()
        if cached is not None and cached.keys() != paths:
            self._unlink(key, cached.keys() - paths)
        _depend(dependents, paths if cached is None else paths - cached.keys(), key)
        return value

    def _unlink(self, key: object, paths: Iterable[str]) -> None:
        dependents = self.dependents
        for path in paths:
            found = dependents.get(path, UNREAD)
            if found is UNREAD:
                continue
            if isinstance(found, set):
                found.discard(key)
                if len(found) == 1:
                    dependents[path] = next(iter(found))
                continue
            if found == key:
                del dependents[path]
                self.orphaned.add(path)

    def forget(self, key: object) -> None:
        """Drops a key (an env deleted since): its entry, and its dependencies unless another key has them."""
        if key in self.entries:
            self.dependents  # noqa: B018  (made before the entry goes: its paths may become orphans)
        cached = self.entries.pop(key, None)
        self.values.pop(key, None)
        self.trusted.discard(key)
        self._checked.pop(key, None)
        if cached is not None:
            self._unlink(key, cached)

    def affected(self, changed: frozenset[str]) -> list[object]:
        """The trusted keys that depend on a changed path: an index lookup per path, not a pass over the keys."""
        dependents, trusted = self.dependents, self.trusted
        found: set[object] = set()
        for path in changed:
            keys = dependents.get(path, UNREAD)
            if isinstance(keys, set):
                found.update(keys)
            elif keys is not UNREAD:
                found.add(keys)
        return [key for key in found if key in trusted]

    def value(self, key: object) -> V:
        return self.values[key]

    def deps_of(self, key: object) -> list[str]:
        return list(self.entries[key])

    def checked(self) -> list[object]:
        return list(self._checked)

    def finish_scan(self) -> None:
        """What this complete scan checked is trusted next time; what it did not ask for (deleted envs) is dropped."""
        self.trusted = set(self._checked)
        self._checked, self._checked_for = {}, None  # the scan's, and its ScanStats (see Discovery.discover)
        if len(self.entries) > len(self.trusted):
            for key in [key for key in self.entries if key not in self.trusted]:
                self.forget(key)
        self.orphaned.clear()  # a complete scan's signature is made from scratch
