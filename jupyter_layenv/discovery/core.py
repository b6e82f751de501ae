"""Discovery: runs the locators, deduplicates and layers what they found, and caches the result by mtimes."""

from __future__ import annotations

import functools
import glob
import logging
import os
import threading
import weakref
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..locators import (
    SOURCE_NESTED,
    SOURCE_VENV_ROOT,
    Candidate,
    conda,
    configured,
    scoped,
    venv,
)
from ..locators.prefix import PrefixFacts
from ..model import (
    Discovered,
    Environment,
    ScopedRoot,
    SkippedEnv,
)
from ..probe import PROBE, not_responding_reason, root_of
from .build import Builder, BuildMemo
from .cache import UNREAD, Expected, Memo, ScanStats, Signature, changed_paths
from .config import DiscoveryConfig
from .naming import Naming
from .scan import env_children, glob_parent, inspect_candidate, without_roots
from .watch import ToCheck, Watcher, supported

log = logging.getLogger("jupyter_layenv.discovery")


@dataclass
class _ScanState:
    """What the last complete scan found, kept so that a change in a few directories updates it in place."""

    cfg: DiscoveryConfig
    roots: list[ScopedRoot]
    candidates: dict[str, Candidate]  # after dedupe
    id_to_path: dict[tuple[int, int], str]
    origins: dict[str, tuple[str, str | None] | None]  # scanned directory -> source, conda root (None: mixed)
    duplicates: frozenset[str]  # paths dedupe merged with another: a change to one needs a complete scan
    skipped: list[SkippedEnv]  # the locators' own
    located: frozenset[str]  # the paths the locators depend on (the signature keeps them)


class Discovery:
    """Thread-safe; ``discover()`` is cheap when nothing changed, and incremental when something did."""

    def __init__(self, config: DiscoveryConfig, logger: logging.Logger | None = None) -> None:
        self.config = config
        self.log = logger or log
        self._lock = threading.Lock()
        self._result: Discovered | None = None
        self._signature: Signature = {}
        self._state: _ScanState | None = None
        self._children: Memo[tuple[list[str], list[SkippedEnv]]] = Memo(_children_of)
        self._prefixes: Memo[PrefixFacts] = Memo(functools.partial(_inspect, timeout=config.root_timeout))
        self._naming = Naming()  # ids, chains and Environments of the last build
        # (before, after, Environments new in after, Environments of before gone): what the last update changed
        self._changes: tuple[Discovered, Discovered, list[Environment], list[Environment]] | None = None
        self._built: BuildMemo | None = None  # what the last build made of each candidate, and what it read
        self._logged_skips: set[tuple[str, str]] = set()  # the reasons logged, of skipped paths
        self._logged_envs: set[tuple[str, str]] = set()  # and of listed envs that are not kernels
        self._stats = ScanStats()
        self._scan_deps: list[str] = []  # directories the child scans depend on, for the next signature
        self._hung: tuple[str, ...] = ()  # roots left out of the last scan: they did not answer
        self._direct: frozenset[str] = frozenset()  # paths the locators read themselves (not through a memo)
        cfg = config
        self._roots = list(
            dict.fromkeys(
                [
                    *cfg.conda_roots,
                    *cfg.envs_dirs,
                    *cfg.venv_roots,
                    *cfg.env_paths,
                    *cfg.system_roots,
                    *cfg.user_roots,
                    *(glob_parent(p) if glob.has_magic(p) else p for p in cfg.group_roots),
                    *([cfg.server_prefix] if cfg.server_prefix else []),
                ]
            )
        )
        self._globs = [pattern for pattern in cfg.group_roots if glob.has_magic(pattern)]
        self._watcher: Watcher | None = None  # change notifications (``config.notifications``), made at first listing
        self._closed = not (cfg.notifications and supported())  # never watches
        self._tried = False  # a watcher was made (or failed to be)
        self._updated = False  # whether the last listing changed the signature (see ``discover``)
        self._watch_also: dict[str, tuple[str, int]] = {}  # see ``ScanStats.watch_also``
        self._promote_later = False  # a listing changed the signature, its promotion left to ``promote``
        self._reread: list[tuple[str, object]] = []  # the changed paths of this listing, and their entries before
        self._to_check = ToCheck()  # the signature entries not promoted (change notifications on)

    def close(self, wait: bool = True) -> None:
        """Stops change notifications (their thread and descriptors); listings go on with ``stat`` alone. Never
        blocks on a listing unless ``wait`` (its thread then ends after the listing)."""
        self._closed = True
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.close(join=wait)

    def watching(self, timeout: float = 10.0) -> bool:
        """Waits until change notifications have promoted what they can for now (benchmarks and tests); ``False``:
        notifications are off, or still busy after ``timeout`` seconds."""
        watcher = self._watcher
        return watcher is not None and watcher.idle(timeout)

    @property
    def watcher(self) -> Watcher | None:
        return self._watcher

    def _watch(self) -> Watcher | None:
        """The watcher, made at the first listing (lock held); ``None`` when notifications are off or failed."""
        if self._watcher is None and not self._closed and not self._tried:
            self._tried = True  # one try: a failure is logged once
            try:
                watcher = Watcher(
                    self._lock, self._roots, self.config.max_watches, self.log, probed=self.config.root_timeout > 0
                )
            except (OSError, AttributeError) as err:  # EMFILE: the user's inotify instances are used up; no inotify
                self.log.info("jupyter_layenv: no change notifications (%s); listings check with stat", err)
                return None
            self._watcher = watcher
            watcher.prepare = weakref.WeakMethod(self._index_for_updates)
            weakref.finalize(self, watcher.close, join=False)
            if self._closed:  # closed meanwhile (``close`` takes no lock)
                self._watcher = None
                watcher.close(join=False)
        return self._watcher

    def discover(self, *, promote: bool = True) -> Discovered:
        """The listing; a root that does not answer within ``root_timeout`` is left out and reported as skipped.

        The roots are asked first, from other threads: a hung mount would block this one (and, through the
        lock, every later listing) in its first ``stat``. Nothing under a root left out is read, not even the
        warm path's ``stat`` calls. ``promote=False``: the background promotion this listing calls for waits for
        ``promote()``, which the caller calls once it has answered with the listing (the promotion thread takes the
        GIL: started here, it slowed the kernel table a cold listing then builds by 2 ms at 500 envs).
        """
        hung = self._unresponsive_roots()
        with self._lock:
            watcher = self._watch()
            skip, forced = watcher.check(hung) if watcher is not None else (None, [])
            try:
                return self._discover(hung, skip, forced)
            finally:
                if watcher is not None and self._watcher is watcher:
                    if self._reread:
                        signature = self._signature
                        watcher.promote_read(
                            (path, signature[path])
                            for path, before in self._reread
                            if path in signature and signature[path] is not before
                        )
                        self._reread = []
                    watcher.promote_ahead(self._signature, self._stats)
                    if not self._to_check.current() and watcher.promoted:  # the signature changed: worked out now,
                        self._to_check.entries(self._signature, watcher)  # not in the next listing (in the racy window)
                    if promote:
                        watcher.track(self._signature, self._watch_also, self._updated or self._promote_later)
                        self._promote_later = False
                    else:
                        self._promote_later = self._promote_later or self._updated

    def _index_for_updates(self) -> None:
        """Makes the indexes an update goes by, which a cold listing leaves to their first use (lock held; called by
        change notifications' background thread before it promotes, seconds before a server's next listing)."""
        self._children.dependents  # noqa: B018  (a property that makes it)
        self._prefixes.dependents  # noqa: B018
        if self._built is not None:
            self._built.dependents  # noqa: B018

    def promote(self) -> None:
        """Starts what ``discover(promote=False)`` left for later (nothing when notifications are off)."""
        with self._lock:
            watcher = self._watcher
            if watcher is not None:
                watcher.track(self._signature, self._watch_also, self._promote_later)
            self._promote_later = False

    def _discover(self, hung: tuple[str, ...], skip: dict[str, Any] | None, forced: list[str]) -> Discovered:
        """``discover``, lock held; ``skip``: the paths change notifications know unchanged; ``forced``: those they
        know changed, whatever a ``stat`` says."""
        self._updated = True
        changed: frozenset[str] | None = None
        if self._result is not None and hung == self._hung:
            settled: dict[str, int] = {}  # directories the last scan listed without a stat: their baseline now
            changed = frozenset(changed_paths(self._unpromoted(skip), settled))
            if forced:
                changed |= {path for path in forced if path in self._signature}
            if skip is not None:  # read again below: promoted at once if their watches held (``promote_read``)
                self._reread = [(path, self._signature.get(path, UNREAD)) for path in changed]
            self._signature.update(settled)
            self._to_check.settle(settled)
            if not changed:
                self._updated = bool(settled)  # new entries: promotable now
                return self._result
        self._to_check.changing()  # the signature changes from here on (``_sign``)
        self._stats = self._new_stats(hung)
        self._stats.defer_distributions = self._result is None and not self._prefixes.entries  # a first listing
        self._children.changed = self._prefixes.changed = changed
        if changed and not hung:
            watcher = self._watcher
            if watcher is not None:  # new prefixes watched before they are read, promoted at the end (``discover``)
                self._stats.ahead = watcher.watch_ahead
            result = self._incremental(changed)
            self._stats.ahead = None  # a complete scan reads as without notifications
            if result is not None:
                if result is not self._result:
                    changes = self._naming.changes
                    self._changes = (self._result, result, *changes) if changes and self._result else None
                    self._result = result
                    self._log_new_skips(result, changes)
                return result
        self._changes = None
        self._state = None
        result, deps = self._scan()
        entries = self._prefixes.entries
        for key in self._prefixes.checked():  # every prefix inspected, the duplicates dedupe dropped too
            deps += entries[key]
        if hung:
            deps = [dep for dep in deps if root_of(dep, hung) is None]
        self._signature = self._new_signature(deps, changed)
        self._to_check.reset()
        self._children.finish_scan()
        self._prefixes.finish_scan()
        # the scan's stats and listings go now, not in the next update's time (each listing a DirEntry per name)
        self._stats = self._new_stats(hung)
        self._result = result
        self._hung = hung
        self._log_new_skips(result)
        return result

    def _unpromoted(self, skip: dict[str, Any] | None) -> Iterable[tuple[str, Expected]]:
        """The signature entries to ``stat``: all of them but those ``skip`` (promoted) has; with change notifications,
        from the last listing's (``ToCheck``), without a walk over the whole signature."""
        signature = self._signature
        watcher = self._watcher
        if watcher is not None and skip is watcher.promoted:
            return self._to_check.entries(signature, watcher).items()
        if not skip:
            return signature.items()
        known = skip.get
        return [(path, expected) for path, expected in signature.items() if known(path, UNREAD) is not expected]

    def _new_stats(self, hung: tuple[str, ...]) -> ScanStats:
        """A listing's stats: with change notifications on, they also collect what the watcher watches for free."""
        return ScanStats(hung, watch_also=self._watch_also if self._watcher is not None else None)

    def _new_signature(self, deps: list[str], changed: frozenset[str] | None) -> Signature:
        """The signature of a scan; a path the old signature had, found unchanged just before it, keeps its entry
        (checked at the start of this call: a later change moves its trusted mtime), so only the rest is read.
        """
        if not changed:
            return dict(self._stats.signature(deps))
        old = self._signature
        fresh = dict(self._stats.signature(path for path in deps if path not in old or path in changed))
        return {path: fresh[path] if path in fresh else old[path] for path in dict.fromkeys(deps)}

    def _incremental(self, changed: frozenset[str]) -> Discovered | None:
        """The listing after a change, from the results that depend on the changed paths only; ``None``: the
        change needs a complete scan.

        Each changed path is read again through the results that depend on it. When each gives the same answer
        (a listing inside the racy window: a just-modified directory's mtime is stored as "changed"), the last
        result stands. When envs appeared in or left a scanned directory, or an env's files changed, the last
        scan's candidates and build are updated in place. Anything a locator reads itself needs a complete scan.
        """
        if not changed.isdisjoint(self._direct):
            return None
        work = [(memo, key) for memo in (self._children, self._prefixes) for key in memo.affected(changed)]
        covered = {path for memo, key in work for path in memo.entries[key]}
        if not changed <= covered:
            return None
        moved = []
        for memo, key in work:
            before = memo.value(key)
            after = memo.compute(key, self._stats)
            if after is not before:
                moved.append((memo, key, before, after))
        result = self._apply(moved) if moved else self._result
        if result is None:
            return None
        for memo, key in work:
            if key in memo.entries:
                self._sign(memo.entries[key])
        for memo in (self._children, self._prefixes):  # results first asked for now (a new layer's base)
            for key in memo.checked():
                if key not in memo.trusted and key in memo.entries:
                    memo.trusted.add(key)
                    self._sign(memo.entries[key])
        self._drop_orphans()
        return result

    def _apply(self, moved: list[tuple[Memo[Any], Any, Any, Any]]) -> Discovered | None:
        """Envs added to or removed from scanned directories, and envs whose facts changed; ``None`` when the
        change is one only a complete scan gets right (a duplicate directory, a new Conda root, a prefix turned
        from venv to Conda...)."""
        state = self._state
        if state is None:
            return None
        candidates = state.candidates
        added: dict[str, Candidate] = {}
        removed: dict[str, None] = {}
        refreshed: list[str] = []
        for memo, key, before, after in moved:
            if memo is self._prefixes:
                refreshed.append(key)
                continue
            (old_children, old_skipped), (new_children, new_skipped) = before, after
            if old_skipped != new_skipped:
                return None
            origin = (SOURCE_NESTED, None) if isinstance(key, tuple) else state.origins.get(key)
            old_set, new_set = set(old_children), set(new_children)
            removed.update((path, None) for path in old_children if path not in new_set)
            for path in new_children:
                if path not in old_set:
                    if origin is None:
                        return None
                    added[path] = Candidate(path, *origin)
        records = self._built.records if self._built is not None else {}
        gone: list[tuple[Memo[Any], Any]] = []
        for path in list(removed):  # grows: a removed Conda env's nested venvs go with it
            if path not in candidates or path in state.duplicates or path not in records:
                return None
            if records[path].facts.dir_id == (0, 0):
                return None
            nested = ("nested", path)
            if nested in self._children.trusted:
                removed.update((child, None) for child in self._children.value(nested)[0] if child != path)
                gone.append((self._children, nested))
            gone.append((self._prefixes, path))
        new_ids: dict[tuple[int, int], str] = {}
        fresh: list[tuple[Memo[Any], Any]] = []
        pending = list(added.items())
        while pending:
            path, cand = pending.pop()
            if path in candidates or path in removed:
                return None
            facts = self._facts(path)
            owner = state.id_to_path.get(facts.dir_id)
            if facts.dir_id == (0, 0) or facts.dir_id in new_ids or (owner is not None and owner not in removed):
                return None
            if cand.source == SOURCE_VENV_ROOT and facts.is_conda_root:
                return None
            new_ids[facts.dir_id] = path
            fresh.append((self._prefixes, path))
            if state.cfg.nested_venvs and cand.source != SOURCE_NESTED and facts.is_conda:
                nested = ("nested", path)
                children, skipped = self._children.get(nested, self._stats)
                if skipped:
                    return None
                fresh.append((self._children, ("nested", path)))
                for child in children:
                    if child != path:
                        added[child] = Candidate(child, SOURCE_NESTED)
                        pending.append((child, added[child]))
        for memo, key, before, after in moved:  # what the locators and dedupe went by must not have changed
            kept = memo is self._prefixes and key in candidates and key not in removed
            if kept and _placed(before) != _placed(after):
                return None
        builder = self._builder(candidates, state.cfg, state.roots, state.id_to_path)
        if not builder.can_update():
            return None
        # from here on, the change is applied
        for path in removed:
            del candidates[path]
            dir_id = records[path].facts.dir_id
            if state.id_to_path.get(dir_id) == path:
                del state.id_to_path[dir_id]
        candidates.update(added)
        state.id_to_path.update(new_ids)
        refreshed = [path for path in refreshed if path in candidates and path not in added]
        moved_facts = {key for memo, key, _before, _after in moved if memo is self._prefixes}
        moved_facts.update(removed, added)
        result = builder.update(added, removed, refreshed, state.skipped, moved_facts)
        self._built = builder.memo
        for memo, key in fresh:
            memo.trusted.add(key)
            self._sign(memo.entries[key])
        for memo, key in gone:
            memo.forget(key)
        return result

    def _sign(self, entries: Signature) -> None:
        """Entries an update gives the signature (``ToCheck`` learns which paths to look at again)."""
        self._signature.update(entries)
        self._to_check.touch(entries)

    def _drop_orphans(self) -> None:
        """Paths no result depends on any more (deleted envs') leave the signature."""
        orphaned = self._children.orphaned | self._prefixes.orphaned
        if not orphaned:
            return
        keep = self._state.located if self._state is not None else frozenset()
        signature = self._signature
        for path in orphaned:
            if path not in keep and path not in self._children.dependents and path not in self._prefixes.dependents:
                signature.pop(path, None)
        self._children.orphaned.clear()
        self._prefixes.orphaned.clear()

    def changes(self, before: Discovered, after: Discovered) -> tuple[list[Environment], list[Environment]] | None:
        """The Environments new in ``after`` and those of ``before`` it no longer has, when ``after`` is the update
        of ``before`` (a kernel table built for ``before`` then patches those envs only); ``None``: not known."""
        with self._lock:
            found = self._changes
        if found is None or found[0] is not before or found[1] is not after:
            return None
        return found[2], found[3]

    def scanned_by(self) -> dict[str, str]:
        """Each directory the last complete scan listed, by the locator source that asked for it (``condarc``,
        ``conda-envs-dir``, ``venv-root``...): GET usage says from it what a group of envs is."""
        with self._lock:
            state = self._state
            return {directory: origin[0] for directory, origin in state.origins.items() if origin} if state else {}

    def scanned(self) -> frozenset[str] | None:
        """Every directory the last complete scan listed the children of (``None``: no complete scan yet): a new
        env there is listed by the next scan."""
        with self._lock:
            return frozenset(self._state.origins) if self._state else None

    def invalidate(self) -> None:
        with self._lock:
            self._result = None

    def _unresponsive_roots(self) -> tuple[str, ...]:
        """The roots that did not answer, group roots a glob matches included (each may be a mount of its own)."""
        timeout = self.config.root_timeout
        if timeout <= 0:
            return ()
        found = self._result.roots if self._result is not None else ()
        roots = list(dict.fromkeys([*self._roots, *(root.path for root in found)]))
        hung = PROBE.unresponsive(roots, timeout)
        if self._globs:  # listing a glob's parent, which just answered, touches none of its matches
            asked = set(roots)
            parents = [pattern for pattern in self._globs if root_of(glob_parent(pattern), hung) is None]
            matches = [match for pattern in parents for match in sorted(glob.glob(pattern)) if match not in asked]
            hung += PROBE.unresponsive(matches, timeout)
        return hung

    # -- scanning ---------------------------------------------------------------------------------

    def _scan(self) -> tuple[Discovered, list[str]]:
        hung = self._stats.hung
        cfg, self._scan_deps = without_roots(self.config, hung) if hung else (self.config, [])
        glob_deps = list(self._scan_deps)
        located, roots = scoped.locate(
            cfg.system_roots,
            cfg.group_roots,
            self._scan_children,
            uid=os.getuid(),
            gids=scoped.caller_groups(),
        )
        located.extend(
            conda.locate(
                cfg.conda_roots,
                cfg.envs_dirs,
                cfg.environments_files,
                cfg.condarc_paths,
                self._scan_children,
                skip=lambda path: root_of(path, hung) is not None,
                names=lambda path: self._stats.listing(path) or {},  # the listing the root's inspection reuses
            )
        )
        located.extend(configured.locate(cfg.env_paths, cfg.server_prefix, self._scan_children))
        located.extend(venv.locate(cfg.venv_roots, self._scan_children))
        for cand in list(located.candidates):  # a Conda install in a venv root (~/.pyenv/versions/miniconda3-…)
            if cand.source == SOURCE_VENV_ROOT and self._facts(cand.path).is_conda_root:
                conda.add_root(located, self._scan_children, cand.path)
        located.skipped.extend(SkippedEnv(root, not_responding_reason(root, cfg.root_timeout)) for root in hung)
        found = located.candidates
        if cfg.nested_venvs:
            conda_prefixes = [path for path in dict.fromkeys(c.path for c in found) if self._facts(path).is_conda]
            nested = venv.locate_nested(conda_prefixes, self._scan_nested)
            located.skipped.extend(nested.skipped)
            found = [*found, *nested.candidates]
        candidates, duplicates = self._dedupe(found)
        id_to_path = {self._facts(path).dir_id: path for path in candidates}
        builder = self._builder(candidates, cfg, roots, id_to_path)
        discovered = builder.build(located.skipped)
        self._built = builder.memo
        direct = Counter(located.deps)
        direct.subtract(located.scanned)
        self._direct = frozenset([*(path for path, count in direct.items() if count > 0), *glob_deps])
        deps = [*located.deps, *self._scan_deps]  # and every inspected prefix's (see discover)
        if not hung:
            self._state = _ScanState(
                cfg, roots, candidates, id_to_path, located.origins, duplicates, located.skipped, frozenset(deps)
            )
        return discovered, deps

    def _scan_children(self, directory: str) -> tuple[list[str], list[SkippedEnv]]:
        result = self._children.get(directory, self._stats)
        self._scan_deps += self._children.deps_of(directory)
        return result

    def _scan_nested(self, prefix: str) -> tuple[list[str], list[SkippedEnv]]:
        key = ("nested", prefix)
        result = self._children.get(key, self._stats)
        self._scan_deps += self._children.deps_of(key)
        return result

    def _builder(
        self,
        candidates: dict[str, Candidate],
        cfg: DiscoveryConfig,
        roots: list[ScopedRoot],
        id_to_path: dict[tuple[int, int], str],
    ) -> Builder:
        return Builder(self._facts, self._stats, self._naming, self._built, candidates, cfg, roots, id_to_path)

    def _facts(self, path: str) -> PrefixFacts:
        """A prefix's facts in this scan; asked about four times per env (dedupe, bases, the build): one asked
        already is answered here, without ``Memo.get``'s call."""
        memo = self._prefixes
        if memo._checked_for is self._stats:
            found = memo._checked.get(path)
            if found is not None:
                return found
        return memo.get(path, self._stats)

    def _dedupe(self, candidates: list[Candidate]) -> tuple[dict[str, Candidate], frozenset[str]]:
        """One candidate per directory (device and inode: no realpath walk); the first place found names it, unless
        that name is a symbolic link and a later one is not: a link anyone may plant in a shared root (``alias ->
        projA``) must not take the env's name and kernel, nor send the env itself to ``skipped``.

        Also the paths found more than once (the same directory under two names, or from two places).
        """
        by_dir: dict[object, Candidate] = {}
        duplicates: set[str] = set()
        for cand in candidates:
            dir_id = self._facts(cand.path).dir_id
            key = dir_id if dir_id != (0, 0) else cand.path
            kept = by_dir.get(key)
            if kept is None:
                by_dir[key] = cand
                continue
            duplicates.update((kept.path, cand.path))
            if os.path.islink(kept.path) and not os.path.islink(cand.path):  # a collision only: rare, one lstat
                kept, cand = cand, kept
                by_dir[key] = kept
            if kept.conda_root is None and cand.conda_root is not None:
                by_dir[key] = Candidate(kept.path, cand.source, cand.conda_root)
        return {cand.path: cand for cand in by_dir.values()}, frozenset(duplicates)

    def _log_new_skips(
        self, result: Discovered, changes: tuple[list[Environment], list[Environment]] | None = None
    ) -> None:
        """Logs each reason an env is skipped or not a kernel once, while it lasts; ``changes``: after an update,
        the Environments made and dropped (the other envs' reasons are the ones logged already)."""
        skips = {(skip.path, skip.reason) for skip in result.skipped}
        if changes is None:
            envs = {(env.path, env.skipped_reason) for env in result.environments if env.skipped_reason}
            new = (skips - self._logged_skips) | (envs - self._logged_envs)
        else:
            envs = self._logged_envs
            made = {(env.path, env.skipped_reason) for env in changes[0] if env.skipped_reason}
            new = (skips - self._logged_skips) | (made - envs)
            envs.difference_update((env.path, env.skipped_reason) for env in changes[1] if env.skipped_reason)
            envs |= made
        for path, reason in sorted(new):
            self.log.info("jupyter_layenv: %s: %s", path, reason)
        self._logged_skips, self._logged_envs = skips, envs


def _inspect(
    path: str, _previous: PrefixFacts | None, stats: ScanStats, *, timeout: float
) -> tuple[PrefixFacts, Sequence[str]]:
    """The prefixes' memo's compute (see ``Memo``)."""
    return inspect_candidate(path, stats, timeout)


def _children_of(
    key: str | tuple[str, str], previous: tuple[list[str], list[SkippedEnv]] | None, stats: ScanStats
) -> tuple[tuple[list[str], list[SkippedEnv]], list[str]]:
    """The child scans' memo's compute: a directory's env children, or for ``("nested", prefix)`` a Conda prefix's."""
    if isinstance(key, tuple):
        return env_children(key[1], previous, nested=True, stats=stats)
    return env_children(key, previous, stats=stats)


def _placed(facts: PrefixFacts) -> tuple[object, ...]:
    """What the locators and dedupe read of a candidate's facts."""
    return (facts.dir_id, facts.is_conda, facts.is_conda_root)
