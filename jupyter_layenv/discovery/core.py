"""Discovery: runs the locators, deduplicates and layers what they found, and caches the result by mtimes."""

from __future__ import annotations

import glob
import logging
import os
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from ..locators import (
    SOURCE_VENV_ROOT,
    Candidate,
    conda,
    configured,
    scoped,
    venv,
)
from ..locators.prefix import (
    PrefixFacts,
)
from ..model import (
    Discovered,
    Environment,
    SkippedEnv,
)
from ..probe import PROBE, not_responding_reason, root_of
from .build import _Builder, _BuildMemo
from .cache import ScanStats, Signature, _Memo, changed_paths
from .config import DiscoveryConfig
from .proto import Proto
from .scan import _env_children, _glob_parent, _inspect, _without_roots

log = logging.getLogger("jupyter_layenv.discovery")


class Discovery:
    """Thread-safe; ``discover()`` is cheap when nothing changed, and incremental when something did."""

    def __init__(self, config: DiscoveryConfig, logger: logging.Logger | None = None) -> None:
        self.config = config
        self.log = logger or log
        self._lock = threading.Lock()
        self._result: Discovered | None = None
        self._signature: Signature = ()
        self._children = _Memo()
        self._prefixes = _Memo()
        self._protos: dict[str, tuple[tuple, Proto]] = {}
        self._environments: dict[str, tuple[Proto, Environment]] = {}
        self._built: _BuildMemo | None = None  # what the last build made of each candidate, and what it read
        self._logged: set[tuple[str, str]] = set()
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
                    *(_glob_parent(p) if glob.has_magic(p) else p for p in cfg.group_roots),
                    *([cfg.server_prefix] if cfg.server_prefix else []),
                ]
            )
        )
        self._globs = [pattern for pattern in cfg.group_roots if glob.has_magic(pattern)]

    def discover(self) -> Discovered:
        """The listing; a root that does not answer within ``root_timeout`` is left out and reported as skipped.

        The roots are asked first, from other threads: a hung mount would block this one (and, through the
        lock, every later listing) in its first ``stat``. Nothing under a root left out is read, not even the
        warm path's ``stat`` calls.
        """
        hung = self._unresponsive_roots()
        with self._lock:
            changed: frozenset[str] | None = None
            if self._result is not None and hung == self._hung:
                changed = frozenset(changed_paths(self._signature))
                if not changed:
                    return self._result
            self._stats = ScanStats(hung)
            self._children.changed = self._prefixes.changed = changed
            if changed and self._recheck(changed):
                return self._result
            result, deps = self._scan()
            entries = self._prefixes.entries
            for key in self._prefixes.checked():  # every prefix inspected, the duplicates dedupe dropped too
                deps += entries[key][2]
            if hung:
                deps = [dep for dep in deps if root_of(dep, hung) is None]
            self._signature = self._new_signature(deps, changed)
            self._children.finish_scan()
            self._prefixes.finish_scan()
            self._result = result
            self._hung = hung
            self._log_new_skips(result)
            return result

    def _new_signature(self, deps: list[str], changed: frozenset[str] | None) -> Signature:
        """The signature of a scan; a path the old signature had, found unchanged just before it, keeps its entry
        (checked at the start of this call: a later change moves its trusted mtime), so only the rest is read.
        """
        if not changed:
            return self._stats.signature(deps)
        old = {path: mtime for path, mtime in self._signature if path not in changed}
        fresh = self._stats.signature(path for path in deps if path not in old)
        return (*((path, old[path]) for path in dict.fromkeys(deps) if path in old), *fresh)

    def _recheck(self, changed: frozenset[str]) -> bool:
        """Whether the last result still holds: each changed path is read again through the results that depend
        on it, and each of them gave the same answer.

        A listing inside the racy window lands here (a just-modified directory's mtime is stored as "changed"):
        it lists those directories again, not the tree. Anything a locator reads itself needs a full scan.
        """
        if not changed.isdisjoint(self._direct):
            return False
        work = [(memo, key) for memo in (self._children, self._prefixes) for key in memo.affected(changed)]
        covered = frozenset(path for memo, key in work for path in memo.deps_of(key))
        if not changed <= covered:
            return False
        for memo, key in work:
            before = memo.value(key)
            if memo.compute(key, self._compute_for(memo, key), self._stats) is not before:
                return False
        merged = dict(self._signature)  # the same paths, now read again, and any new dependency (a new subdirectory)
        for memo, key in work:
            merged.update(memo.entries[key][0])
        self._signature = tuple(merged.items())
        return True

    def _compute_for(self, memo: _Memo, key: Any) -> Callable[[object], tuple[object, Sequence[str]]]:
        stats = self._stats
        if memo is self._prefixes:
            timeout = self.config.root_timeout
            return lambda _previous: _inspect(key, stats, timeout)
        if isinstance(key, tuple):  # ("nested", prefix)
            return lambda previous: _env_children(key[1], previous, nested=True, stats=stats)
        return lambda previous: _env_children(key, previous, stats=stats)

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
            parents = [pattern for pattern in self._globs if root_of(_glob_parent(pattern), hung) is None]
            matches = [match for pattern in parents for match in sorted(glob.glob(pattern)) if match not in asked]
            hung += PROBE.unresponsive(matches, timeout)
        return hung

    # -- scanning ---------------------------------------------------------------------------------

    def _scan(self) -> tuple[Discovered, list[str]]:
        hung = self._stats.hung
        cfg, self._scan_deps = _without_roots(self.config, hung) if hung else (self.config, [])
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
        candidates = self._dedupe(found)
        builder = _Builder(self, candidates, cfg, roots)
        discovered = builder.build(located.skipped)
        direct = Counter(located.deps)
        direct.subtract(located.scanned)
        self._direct = frozenset([*(path for path, count in direct.items() if count > 0), *glob_deps])
        deps = [*located.deps, *self._scan_deps]  # and every inspected prefix's (see discover)
        return discovered, deps

    def _scan_children(self, directory: str) -> tuple[list[str], list[SkippedEnv]]:
        result = self._children.get(directory, self._compute_for(self._children, directory), self._stats)
        self._scan_deps += self._children.deps_of(directory)
        return result

    def _scan_nested(self, prefix: str) -> tuple[list[str], list[SkippedEnv]]:
        key = ("nested", prefix)
        result = self._children.get(key, self._compute_for(self._children, key), self._stats)
        self._scan_deps += self._children.deps_of(key)
        return result

    def _facts(self, path: str) -> PrefixFacts:
        memo = self._prefixes
        stats = self._stats
        if memo._checked_for is stats and path in memo._checked:  # the common case: asked already in this scan
            return memo._checked[path]
        return memo.get(path, self._compute_for(memo, path), stats)

    def _dedupe(self, candidates: list[Candidate]) -> dict[str, Candidate]:
        """One candidate per directory (device and inode: no realpath walk); the first place found names it."""
        by_dir: dict[object, Candidate] = {}
        for cand in candidates:
            dir_id = self._facts(cand.path).dir_id
            key = dir_id if dir_id != (0, 0) else cand.path
            kept = by_dir.get(key)
            if kept is None:
                by_dir[key] = cand
            elif kept.conda_root is None and cand.conda_root is not None:
                by_dir[key] = Candidate(kept.path, cand.source, cand.conda_root)
        return {cand.path: cand for cand in by_dir.values()}

    def _log_new_skips(self, result: Discovered) -> None:
        reasons = {(skip.path, skip.reason) for skip in result.skipped}
        reasons |= {(env.path, env.skipped_reason) for env in result.environments if env.skipped_reason}
        for path, reason in sorted(reasons - self._logged):
            self.log.info("jupyter_layenv: %s: %s", path, reason)
        self._logged = reasons
