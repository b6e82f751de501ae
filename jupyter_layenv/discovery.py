"""Runs the locators, deduplicates and layers what they found, and caches the result by mtimes.

An unchanged tree is answered after one ``stat`` per directory that matters (roots, and a few per
env); a new, deleted or changed env shows on the very next call. Nothing here runs a process.
"""

from __future__ import annotations

import dataclasses
import functools
import glob
import hashlib
import logging
import os
import re
import stat
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from . import activation, fsread
from .locators import (
    SOURCE_CONDA_ENVS,
    SOURCE_CONDA_ROOT,
    SOURCE_VENV_ROOT,
    Candidate,
    conda,
    configured,
    scoped,
    venv,
)
from .locators.prefix import (
    PrefixFacts,
    inspect_prefix,
    parse_pyvenv_cfg,
    unusable_facts,
)
from .model import (
    CONDA_BASE,
    CONDA_ENV,
    DELETING_PREFIX,
    LAYERED,
    SCOPE_SYSTEM,
    SCOPE_USER,
    VENV,
    Discovered,
    Environment,
    ScopedRoot,
    SkippedEnv,
)
from .probe import PROBE, base_not_responding_reason, not_responding_reason, root_of

log = logging.getLogger(__name__)

# An mtime this close to the scan may hide a change made in the same clock tick (or on a skewed NFS
# server): such a dependency is re-checked by content on the next call instead of trusted.
RACY_WINDOW_NS = 2_000_000_000
_GENERIC_VENV_NAMES = {".venv", "venv", ".env", "env", ".virtualenv"}
_SLUG = re.compile(r"[^a-z0-9._-]+")


@dataclass(frozen=True)
class DiscoveryConfig:
    conda_roots: Sequence[str] = ()
    envs_dirs: Sequence[str] = ()
    environments_files: Sequence[str] = ()
    condarc_paths: Sequence[str] = ()
    venv_roots: Sequence[str] = ()
    env_paths: Sequence[str] = ()
    nested_venvs: bool = True
    server_prefix: str | None = None
    system_roots: Sequence[str] = ()  # the administrator's bases: never written
    group_roots: Sequence[str] = ()  # directories or globs; listed for members of each one's group
    user_roots: Sequence[str] = ()  # where this user's envs are created: scope "user"
    root_timeout: float = 2.0  # seconds a root may take to answer before it is left out and reported


class ScanStats:
    """``stat`` results and directory listings of one scan: each path is read at most once.

    A path in a root that did not answer (``hung``) is never asked: it reads as missing. An mtime after the
    scan started (less the racy window) is not trusted, whenever during the scan it was read: what the scan
    saw of that directory may be older than its mtime.
    """

    def __init__(self, hung: tuple[str, ...] = ()) -> None:
        self._stats: dict[str, os.stat_result | None] = {}
        self._listings: dict[str, Listing | None] = {}
        self.hung = hung
        self.started_ns = time.time_ns()

    def stat(self, path: str) -> os.stat_result | None:
        try:
            return self._stats[path]
        except KeyError:
            try:
                result: os.stat_result | None = None if self.hung and root_of(path, self.hung) else os.stat(path)
            except (OSError, ValueError):
                result = None
            self._stats[path] = result
            return result

    def listing(self, path: str) -> Listing | None:
        """The entries of a directory (name, is a symlink, is a directory not following links); ``None``: unreadable."""
        try:
            return self._listings[path]
        except KeyError:
            found = None if self.hung and root_of(path, self.hung) else list_entries(path)
            self._listings[path] = found
            return found

    def is_dir(self, path: str) -> bool:
        """Whether ``path`` is a directory (following links); a listing of its parent made in this scan answers
        without a ``stat`` unless the entry is a link.
        """
        parent, name = os.path.split(path)
        listing = self._listings.get(parent)
        if listing is not None and name:
            entry = next((entry for entry in listing if entry[0] == name), None)
            if entry is None:
                return False
            if not entry[1]:
                return entry[2]
        result = self.stat(path)
        return result is not None and stat.S_ISDIR(result.st_mode)

    def mtime(self, path: str) -> int | None:
        result = self.stat(path)
        return None if result is None else result.st_mtime_ns

    def dir_id(self, path: str) -> tuple[int, int] | None:
        result = self.stat(path)
        return None if result is None else (result.st_dev, result.st_ino)

    def unchanged(self, signature: Signature) -> bool:
        return all(self.mtime(path) == expected for path, expected in signature)

    def signature(self, paths: Iterable[str]) -> Signature:
        """mtimes to compare next time; one too recent to trust (same clock tick) is stored as "changed"."""
        racy_after = min(self.started_ns, time.time_ns()) - RACY_WINDOW_NS
        signature = []
        for path in dict.fromkeys(paths):
            mtime = self.mtime(path)
            signature.append((path, -1 if mtime is not None and mtime > racy_after else mtime))
        return tuple(signature)


Listing = list[tuple[str, bool, bool]]


def list_entries(path: str) -> Listing | None:
    """One ``scandir``: names and the types its ``d_type`` gives for free (no ``stat`` per entry)."""
    try:
        with os.scandir(path) as entries:
            return [(entry.name, entry.is_symlink(), entry.is_dir(follow_symlinks=False)) for entry in entries]
    except (OSError, ValueError):
        return None


Signature = tuple[tuple[str, int | None], ...]


def changed_paths(signature: Signature) -> list[str]:
    """The paths whose mtime is not the one stored (all of them: a warm listing makes the same calls)."""
    stat = os.stat
    changed = []
    for path, expected in signature:
        try:
            mtime = stat(path).st_mtime_ns
        except (OSError, ValueError):
            mtime = None
        if mtime != expected:
            changed.append(path)
    return changed


def signature_unchanged(signature: Signature) -> bool:
    """The warm path: plain ``stat`` calls, stopping at the first change."""
    stat = os.stat
    for path, expected in signature:
        try:
            mtime = stat(path).st_mtime_ns
        except (OSError, ValueError):
            mtime = None
        if mtime != expected:
            return False
    return True


def mtime_signature(paths: Iterable[str]) -> Signature:
    return ScanStats().signature(paths)


class _Memo:
    """Results keyed by path, each valid while the mtimes of its dependencies stay the same.

    A result checked once in a scan is not checked again in that scan (discovery asks for the same
    prefix several times: dedupe, layering, bases). A result the last scan checked has its dependencies in
    that scan's signature: once the signature says which paths changed (``changed``), it is valid when it
    depends on none of them, without a ``stat``.
    """

    def __init__(self) -> None:
        self.entries: dict[object, tuple[Signature, object, frozenset[str]]] = {}
        self._checked: dict[object, object] = {}
        self._checked_for: ScanStats | None = None
        self.trusted: set[object] = set()  # keys checked in the last complete scan
        self.changed: frozenset[str] | None = None  # paths whose mtime moved since then (None: not known)

    def get(self, key: object, compute: Callable[[object], tuple[object, Sequence[str]]], stats: ScanStats) -> object:
        if self._checked_for is not stats:
            self._checked_for, self._checked = stats, {}
        elif key in self._checked:
            return self._checked[key]
        cached = self.entries.get(key)
        if cached is not None and self._valid(key, cached, stats):
            value = cached[1]
        else:
            value = self.compute(key, compute, stats)
        self._checked[key] = value
        return value

    def _valid(self, key: object, cached: tuple[Signature, object, frozenset[str]], stats: ScanStats) -> bool:
        if self.changed is not None and key in self.trusted:
            return self.changed.isdisjoint(cached[2])
        return stats.unchanged(cached[0])

    def compute(
        self, key: object, compute: Callable[[object], tuple[object, Sequence[str]]], stats: ScanStats
    ) -> object:
        """Computes again; an equal answer keeps the previous object, so what was built from it is reused."""
        if self._checked_for is not stats:
            self._checked_for, self._checked = stats, {}
        cached = self.entries.get(key)
        value, deps = compute(cached[1] if cached is not None else None)
        if cached is not None and value == cached[1]:
            value = cached[1]
        signature = stats.signature(deps)
        self.entries[key] = (signature, value, frozenset(path for path, _mtime in signature))
        self._checked[key] = value
        return value

    def affected(self, changed: frozenset[str]) -> list[object]:
        """The keys of the last scan that depend on a changed path."""
        entries = self.entries
        return [key for key in self.trusted if not changed.isdisjoint(entries[key][2])]

    def value(self, key: object) -> object:
        return self.entries[key][1]

    def deps_of(self, key: object) -> list[str]:
        return [path for path, _mtime in self.entries[key][0]]

    def checked(self) -> list[object]:
        return list(self._checked)

    def finish_scan(self) -> None:
        self.trusted = set(self._checked)


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
        self._protos: dict[str, tuple[tuple, dict]] = {}
        self._environments: dict[str, tuple[dict, Environment]] = {}
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


def _inspect(path: str, stats: ScanStats, timeout: float = 0) -> tuple[PrefixFacts, tuple[str, ...]]:
    """The prefix's facts; a venv whose base is in a root that did not answer is not inspected (its python link
    leads there, and following it would hang). Its ``home`` is a dependency: it reads as missing until the root
    answers again, then as changed.

    The prefix's ``stat`` and listing are the scan's (the listing often made already, when its parent was
    scanned for envs), so the signature and the facts cost no second call.
    """
    hung = stats.hung
    if hung:
        cfg_path = os.path.join(path, "pyvenv.cfg")
        home = (parse_pyvenv_cfg(fsread.read_small_text(cfg_path) or "") or {}).get("home", "")
        root = root_of(home, hung) if home else None
        if root is not None:
            problem = base_not_responding_reason(_home_prefix(home), root, timeout)
            facts = dataclasses.replace(unusable_facts(path, problem), deps=(path, cfg_path, home))
            return facts, facts.deps
    listing = stats.listing(path)
    st = stats.stat(path)
    if listing is None or st is None:  # gone or unreadable: inspect_prefix says which, in its words
        facts = inspect_prefix(path)
    else:
        facts = inspect_prefix(path, names=[name for name, _link, _dir in listing], st=st)
    return facts, facts.deps


def _home_prefix(home: str) -> str:
    """The prefix a pyvenv.cfg ``home`` (usually the base's bin directory) belongs to."""
    return os.path.dirname(home) if os.path.basename(home) in ("bin", "Scripts") else home


def _glob_parent(pattern: str) -> str:
    """The directory a glob lists: its path up to the first component with a wildcard."""
    parts = pattern.split(os.sep)
    first = next(i for i, part in enumerate(parts) if glob.has_magic(part))
    return os.sep.join(parts[:first]) or os.sep


def _without_roots(cfg: DiscoveryConfig, hung: tuple[str, ...]) -> tuple[DiscoveryConfig, list[str]]:
    """The configuration minus every path in a root that did not answer, and the glob parents then listed here.

    A group glob whose parent answered is expanded here (listing the parent, not touching the matches), so that
    one hung group root does not take the others with it.
    """

    def keep(paths: Iterable[str]) -> list[str]:
        return [path for path in paths if root_of(path, hung) is None]

    group_roots: list[str] = []
    deps: list[str] = []
    for pattern in cfg.group_roots:
        if not glob.has_magic(pattern):
            group_roots += keep([pattern])
        elif root_of(_glob_parent(pattern), hung) is None:
            matches = sorted(glob.glob(pattern))
            deps.append(_glob_parent(pattern))
            group_roots += keep(matches) if any(root_of(m, hung) for m in matches) else [pattern]
    server_prefix = cfg.server_prefix if cfg.server_prefix and root_of(cfg.server_prefix, hung) is None else None
    without = dataclasses.replace(
        cfg,
        conda_roots=keep(cfg.conda_roots),
        envs_dirs=keep(cfg.envs_dirs),
        environments_files=keep(cfg.environments_files),
        condarc_paths=keep(cfg.condarc_paths),
        venv_roots=keep(cfg.venv_roots),
        env_paths=keep(cfg.env_paths),
        system_roots=keep(cfg.system_roots),
        group_roots=group_roots,
        user_roots=keep(cfg.user_roots),
        server_prefix=server_prefix,
    )
    return without, deps


# What a Conda prefix holds besides nested venvs: not worth a stat each when looking for the seed's layout.
_CONDA_PREFIX_DIRS = frozenset(
    (
        *("bin", "lib", "lib64", "include", "share", "etc", "conda-meta", "ssl", "man", "libexec", "sbin", "var"),
        *("shell", "doc", "docs", "info", "envs", "pkgs", "condabin", "compiler_compat", "licensing", "__pycache__"),
        *("x86_64-conda-linux-gnu", "x86_64-conda_cos6-linux-gnu", "aarch64-conda-linux-gnu"),
        *("Library", "Lib", "Scripts", "DLLs", "Tools", "Menu", "mkspecs", "plugins", "qml", "translations"),
    )
)


def _env_children(
    directory: str,
    previous: tuple[list[str], list[SkippedEnv]] | None,
    *,
    nested: bool = False,
    stats: ScanStats | None = None,
) -> tuple[tuple[list[str], list[SkippedEnv]], list[str]]:
    """Env-like subdirectories, and symlink loops to report.

    Children already known as envs are not probed again. A subdirectory that is not an env (yet) is a
    dependency itself: an env being created there (``pyvenv.cfg`` or ``conda-meta/history`` written after
    the directory) changes its mtime, not ours. A child is probed by listing it (one call, which the scan
    keeps: inspecting the env then reuses it).
    """
    stats = stats if stats is not None else ScanStats()
    known = set(previous[0]) if previous else set()
    children, skipped, deps = [], [], [directory]
    listed = sorted(stats.listing(directory) or ())
    for name, is_link, is_dir in listed:
        if (nested and name in _CONDA_PREFIX_DIRS) or name.startswith(DELETING_PREFIX):
            continue
        path = os.path.join(directory, name)
        if path in known:
            children.append(path)
            continue
        if is_link:
            problem = fsread.link_problem(path)
            if problem == "symlink loop":
                skipped.append(SkippedEnv(path, f"symlink loop: {path} points back to itself; remove the link"))
                continue
            if problem or not fsread.is_dir(path):
                continue
        elif not is_dir:
            continue
        if _child_is_env(path, stats.listing(path), nested=nested):
            children.append(path)
        else:
            deps += [path, os.path.join(path, "conda-meta")]
    return (children, skipped), deps


def _child_is_env(path: str, listing: Listing | None, *, nested: bool) -> bool:
    """A venv (``pyvenv.cfg``), or unless nested a Conda prefix (an install root has ``conda-meta/`` too), judged
    from the child's listing: only a symlinked entry needs a ``stat``. A child that cannot be listed is asked.
    """
    if listing is None:
        return fsread.exists(os.path.join(path, "pyvenv.cfg")) or (
            not nested and fsread.is_dir(os.path.join(path, "conda-meta"))
        )
    entries = {name: (is_link, is_dir) for name, is_link, is_dir in listing}
    cfg = entries.get("pyvenv.cfg")
    if cfg is not None and (not cfg[0] or fsread.exists(os.path.join(path, "pyvenv.cfg"))):
        return True
    if nested:
        return False
    meta = entries.get("conda-meta")
    return meta is not None and (meta[1] or (meta[0] and fsread.is_dir(os.path.join(path, "conda-meta"))))


@dataclass(frozen=True)
class _BuildRecord:
    """What one candidate became, and everything outside its own facts that the answer depended on."""

    cand: Candidate
    facts: PrefixFacts
    proto: dict | SkippedEnv | None
    extra_base: tuple[str, Candidate] | None
    deps: frozenset[object]  # ("p", path): a candidate; ("i", dir_id): who has it; (read kind, path): a read
    reads: tuple[tuple[str, str], ...]  # the reads among deps, read again before the next build trusts them


@dataclass
class _BuildMemo:
    context: tuple  # anything every env depends on: a change rebuilds them all
    records: dict[str, _BuildRecord]
    reads: dict[tuple[str, str], object]


class _Builder:
    """Turns candidates into Environments: kinds, bases, names, ids, kernel eligibility.

    Incremental: an env whose candidate and facts are the same objects as last time, and whose recorded
    dependencies (other candidates it looked up, device/inode owners, reads outside the candidates) are all
    unchanged, keeps its last answer; a new or deleted env costs its own inspection, not a pass over the tree.
    """

    def __init__(
        self, discovery: Discovery, candidates: dict[str, Candidate], cfg: DiscoveryConfig, roots: list[ScopedRoot]
    ) -> None:
        self.discovery = discovery
        self.candidates = candidates
        self.cfg = cfg
        self.roots = roots
        self.scoped_dirs = [(root.path, root.scope) for root in roots]
        self.scoped_dirs += [(path, SCOPE_USER) for path in cfg.user_roots]
        self.stats = discovery._stats
        self.facts_of = {path: discovery._facts(path) for path in candidates}
        self.id_to_path = {facts.dir_id: path for path, facts in self.facts_of.items()}
        self.server_id = self.stats.dir_id(cfg.server_prefix) if cfg.server_prefix else None
        self.uid = os.getuid() if hasattr(os, "getuid") else -1
        self.reads: dict[tuple[str, str], object] = {}
        self._deps: set[object] = set()

    def facts(self, path: str) -> PrefixFacts:
        return self.discovery._facts(path)

    def build(self, skipped: list[SkippedEnv]) -> Discovered:
        protos: list[dict] = []
        skipped = list(skipped)
        extra_bases: dict[str, Candidate] = {}
        previous = self.discovery._built
        context = (self.stats.hung, self.server_id, tuple(self.scoped_dirs), self.cfg, self.uid)
        reusable = previous is not None and previous.context == context
        dirty = self._dirty(previous) if reusable and previous is not None else frozenset()
        records: dict[str, _BuildRecord] = {}
        old_records = previous.records if reusable and previous is not None else {}
        facts_of = self.facts_of
        for path, cand in self.candidates.items():
            facts = facts_of[path]
            record = old_records.get(path)
            if record is None or record.cand != cand or record.facts is not facts or not record.deps.isdisjoint(dirty):
                record = self._record(path, cand, facts)
            records[path] = record
            if record.extra_base is not None:
                extra_bases.setdefault(*record.extra_base)
            if isinstance(record.proto, SkippedEnv):
                skipped.append(record.proto)
            elif record.proto is not None:
                protos.append(record.proto)
        for path, cand in extra_bases.items():
            protos.append(self._conda_proto(path, self.facts(path), cand))
        kept_reads = {key for record in records.values() for key in record.reads}
        self.discovery._built = _BuildMemo(context, records, {key: self.reads[key] for key in kept_reads})
        environments = _assign_ids(protos, self.discovery._environments)
        return Discovered(
            environments=tuple(environments),
            skipped=tuple(sorted(skipped, key=lambda s: s.path)),
            roots=tuple(self.roots),
        )

    def _dirty(self, previous: _BuildMemo) -> frozenset[object]:
        """The dependencies that moved since the last build: candidates added, removed or changed (and the
        device/inode they had or have), and reads outside the candidates that now answer otherwise."""
        dirty: set[object] = set()
        old, new = previous.records, self.candidates
        facts_of = self.facts_of
        for path in old.keys() ^ new.keys():
            dirty.add(("p", path))
            dirty.add(("i", old[path].facts.dir_id if path in old else facts_of[path].dir_id))
        for path, cand in new.items():
            record = old.get(path)
            if record is not None and (record.facts is not facts_of[path] or record.cand != cand):
                dirty.update((("p", path), ("i", record.facts.dir_id), ("i", facts_of[path].dir_id)))
        for key, value in previous.reads.items():
            now = self._read(*key)
            if now is not value and (key[0] == "facts" or now != value):
                dirty.add(key)
        return frozenset(dirty)

    def _record(self, path: str, cand: Candidate, facts: PrefixFacts) -> _BuildRecord:
        self._deps = set()
        extra: dict[str, Candidate] = {}
        proto: dict | SkippedEnv | None = None
        if facts.problem:
            proto = SkippedEnv(path, facts.problem)
        elif facts.is_venv:
            proto = self._venv_proto(path, facts, cand, extra)  # a deleted base explains a dangling python
        elif facts.is_conda:
            proto = self._conda_proto(path, facts, cand)
        if isinstance(proto, dict) and facts.python_problem and not facts.kernels:
            reason = f"broken interpreter: {facts.python_problem}; recreate the environment or delete it"
            proto = SkippedEnv(path, reason)
        deps = frozenset(self._deps)
        reads = tuple(key for key in deps if isinstance(key, tuple) and key[0] in _READS)
        return _BuildRecord(cand, facts, proto, next(iter(extra.items()), None), deps, reads)

    def _read(self, kind: str, path: str) -> Any:
        """A read outside the candidates' facts, once per build, recorded as a dependency of the env at hand."""
        key = (kind, path)
        self._deps.add(key)
        try:
            return self.reads[key]
        except KeyError:
            value = _READS[kind](self, path)
            self.reads[key] = value
            return value

    def _is_candidate(self, path: str) -> bool:
        self._deps.add(("p", path))
        return path in self.candidates

    def _known(self, prefix: str) -> str | None:
        """The listed env that directory is; a listed env's own path answers without a ``stat`` (its inspection
        read the device and inode that dedupe kept it by)."""
        if self._is_candidate(prefix) and self.discovery._facts(prefix).dir_id != (0, 0):
            return prefix
        dir_id = self._read("dir_id", prefix)
        self._deps.add(("i", dir_id))
        return self.id_to_path.get(dir_id)

    def _home_is_dir(self, home: str) -> bool:
        """Whether a venv's ``home`` is a directory; the directory of a listed env's python is one."""
        prefix = os.path.dirname(home)
        if self._is_candidate(prefix):
            python = self.discovery._facts(prefix).python
            if python and os.path.dirname(python) == home:
                return True
        return self._read("is_dir", home)

    def _venv_base(self, path: str, pyvenv: dict[str, str]) -> tuple[str | None, str]:
        """The known env a venv was made from, and the prefix of its base interpreter.

        ``home`` names the base's bin directory, unless the base's python was a symlink (virtualenv and
        uv resolve it): then the interpreter itself, and the seed's nesting, tell which Conda env it was.
        """
        home = pyvenv["home"]
        home_prefix = os.path.dirname(home) if os.path.basename(home) in ("bin", "Scripts") else home
        for prefix in (home_prefix, pyvenv.get("base-prefix")):
            known = self._known(prefix) if prefix else None
            if known is not None and known != path:
                return known, known
        parent = os.path.dirname(path)
        if self._is_candidate(parent) and (parent_facts := self.discovery._facts(parent)).is_conda:
            interpreter = pyvenv.get("base-executable") or os.path.join(home, "python")
            if parent_facts.python and self._read("realpath", parent_facts.python) == self._read(
                "realpath", interpreter
            ):
                return parent, parent
        return None, pyvenv.get("base-prefix") or home_prefix

    def _conda_proto(self, path: str, facts: PrefixFacts, cand: Candidate) -> dict:
        is_root = (facts.is_conda_root and cand.source == SOURCE_CONDA_ROOT) or cand.conda_root == path
        in_root = cand.conda_root if cand.source == SOURCE_CONDA_ENVS and cand.conda_root != path else None
        name = "base" if is_root else os.path.basename(path)
        return self._proto(
            path,
            facts,
            kind=CONDA_BASE if is_root else CONDA_ENV,
            name=name,
            base=in_root,
            base_facts=None,
            chain=(name,),
            conda_env_name=name if is_root or in_root else None,
            conda_root=path if is_root else in_root,
        )

    def _venv_proto(
        self, path: str, facts: PrefixFacts, cand: Candidate, extra_bases: dict[str, Candidate]
    ) -> dict | SkippedEnv:
        pyvenv = facts.pyvenv or {}
        home = pyvenv.get("home", "")
        # right inside a venv root, ``venv`` is its own name: the root's name says nothing about it
        name = os.path.basename(path) if cand.source == SOURCE_VENV_ROOT else _venv_name(path)
        label = _prompt(pyvenv) or name
        hung_root = root_of(home, self.stats.hung) if self.stats.hung and home else None
        if hung_root is not None:  # reading anything of the base would hang
            return SkippedEnv(path, base_not_responding_reason(_home_prefix(home), hung_root, self.cfg.root_timeout))
        if not self._home_is_dir(home):
            dangling = f" (so {facts.python_problem})" if facts.python_problem else ""
            return SkippedEnv(
                path,
                f"base deleted: {home} no longer exists{dangling}; "
                "delete this environment or recreate it on an existing base",
            )
        base_path, base_prefix = self._venv_base(path, pyvenv)
        if base_path is None and self._read("exists", os.path.join(base_prefix, "conda-meta")):
            base_path = base_prefix
            extra_bases.setdefault(base_prefix, Candidate(base_prefix, "layer-base"))
        base_facts = self._read("facts", base_path or base_prefix)
        inherits = pyvenv.get("include-system-site-packages", "false").lower() == "true"
        if base_path is not None:
            base_name = "base" if base_facts.is_conda_root else _venv_name(base_path)
            return self._proto(
                path,
                facts,
                kind=LAYERED,
                name=name,
                base=base_path,
                base_facts=base_facts,
                chain=(base_name, label),
                inherits=inherits,
                conda_env_name=base_name if base_facts.is_conda else None,
                conda_root=None,
            )
        return self._proto(
            path,
            facts,
            kind=VENV,
            name=name,
            base=None,
            base_facts=base_facts if inherits else None,
            chain=(label,),
            inherits=inherits,
            conda_env_name=None,
            conda_root=None,
        )

    def _proto(
        self,
        path: str,
        facts: PrefixFacts,
        *,
        kind: str,
        name: str,
        base: str | None,
        base_facts: PrefixFacts | None,
        chain: tuple[str, ...],
        conda_env_name: str | None,
        conda_root: str | None,
        inherits: bool = False,
    ) -> dict:
        """A new proto only when its inputs changed: unchanged envs cost nothing on an incremental rescan."""
        key = (kind, name, base, chain, conda_env_name, conda_root, inherits)
        cached = self.discovery._protos.get(path)
        if cached is not None and cached[0][0] is facts and cached[0][1] is base_facts and cached[0][2:] == key:
            return cached[1]
        proto = self._new_proto(path, facts, base_facts, *key)
        self.discovery._protos[path] = ((facts, base_facts, *key), proto)
        return proto

    def _new_proto(
        self,
        path: str,
        facts: PrefixFacts,
        base_facts: PrefixFacts | None,
        kind: str,
        name: str,
        base: str | None,
        chain: tuple[str, ...],
        conda_env_name: str | None,
        conda_root: str | None,
        inherits: bool,
    ) -> dict:
        inherited_ipykernel = inherits and base_facts is not None and base_facts.has_ipykernel
        version = facts.python_version or (base_facts.python_version if base_facts else None)
        return {
            "path": path,
            "name": name,
            "kind": kind,
            "base": base,
            "chain": chain,
            "facts": facts,
            "base_facts": base_facts,
            "version": version,
            "inherits": inherits,
            "has_ipykernel": facts.has_ipykernel or inherited_ipykernel,
            "ipykernel_resources": facts.ipykernel_resources
            or (base_facts.ipykernel_resources if inherited_ipykernel else None),
            "conda_env_name": conda_env_name,
            "conda_root": conda_root,
            "scope": self._scope(path, facts.owner_uid),
            "is_server_prefix": facts.dir_id == self.server_id,
            "activation": activation.activation_for(
                facts, base=base_facts if kind == LAYERED else None, conda_env_name=conda_env_name
            ),
        }

    def _scope(self, path: str, owner_uid: int) -> str:
        """The configured root the env lies in decides; elsewhere, whether the server's user owns it."""
        for root, scope in self.scoped_dirs:
            if path == root or path.startswith(root.rstrip(os.sep) + os.sep):
                return scope
        return SCOPE_USER if owner_uid == self.uid else SCOPE_SYSTEM


_READS: dict[str, Callable[[_Builder, str], object]] = {
    "dir_id": lambda builder, path: builder.stats.dir_id(path),
    "is_dir": lambda builder, path: builder.stats.is_dir(path),
    "exists": lambda builder, path: builder.stats.stat(path) is not None,
    "realpath": lambda _builder, path: os.path.realpath(path),
    "facts": lambda builder, path: builder.facts(path),
}


def _prompt(pyvenv: dict[str, str]) -> str | None:
    """``prompt`` of a pyvenv.cfg (``python -m venv --prompt`` quotes it: ``prompt = 'My Project'``)."""
    prompt = pyvenv.get("prompt", "").strip()
    if len(prompt) >= 2 and prompt[0] == prompt[-1] and prompt[0] in "'\"":
        prompt = prompt[1:-1].strip()
    return prompt or None


def _venv_name(path: str) -> str:
    base = os.path.basename(path.rstrip(os.sep))
    if base in _GENERIC_VENV_NAMES:
        return os.path.basename(os.path.dirname(path.rstrip(os.sep))) or base
    return base


@functools.lru_cache(maxsize=8192)
def slug(text: str) -> str:
    return _SLUG.sub("_", text.lower()).strip("._-") or "env"


def layer_id(base_id: str, name: str) -> str:
    """The id a layer named ``name`` on the env ``base_id`` gets (unless two envs claim the same one)."""
    return f"{base_id}.{slug(name)}"


def _identity(proto: dict, ids_by_path: dict[str, str]) -> str:
    kind = proto["kind"]
    if kind == CONDA_BASE:
        return "conda-base"
    if kind == CONDA_ENV:
        return f"conda-{slug(proto['name'])}"
    if kind == LAYERED and proto["base"] in ids_by_path:
        return layer_id(ids_by_path[proto["base"]], proto["name"])
    return f"venv-{slug(proto['name'])}"


def _assign_ids(protos: list[dict], previous: dict[str, tuple[dict, Environment]]) -> list[Environment]:
    """Stable ids from identity (base name + env name); a collision gets a short hash of the path."""
    ids_by_path: dict[str, str] = {}
    for round_kinds in ((CONDA_BASE, CONDA_ENV, VENV), (LAYERED,)):
        batch = [proto for proto in protos if proto["kind"] in round_kinds]
        wanted = {proto["path"]: _identity(proto, ids_by_path) for proto in batch}
        counts: dict[str, int] = {}
        for identity in wanted.values():
            counts[identity] = counts.get(identity, 0) + 1
        for path, identity in wanted.items():
            if counts[identity] > 1:
                identity = f"{identity}-{hashlib.sha1(path.encode()).hexdigest()[:6]}"
            ids_by_path[path] = identity
    chains = _distinct_chains(protos)
    environments = []
    for proto in protos:
        env_id, chain = ids_by_path[proto["path"]], chains[proto["path"]]
        cached = previous.get(proto["path"])
        if cached is None or cached[0] is not proto or cached[1].id != env_id or cached[1].chain != chain:
            cached = (proto, _environment(proto, env_id, chain))
            previous[proto["path"]] = cached
        environments.append(cached[1])
    for gone in set(previous) - set(ids_by_path):
        del previous[gone]
    return sorted(environments, key=lambda env: (env.base or env.path, env.path))


def _distinct_chains(protos: list[dict]) -> dict[str, tuple[str, ...]]:
    """Display chains, the first name qualified by its install (or folder) where two envs share it.

    Two installs with an env ``py311`` each: ``miniforge3/py311`` and ``anaconda3/py311``, and their layers
    ``miniforge3/py311 ▸ exp``.
    """
    by_path = {proto["path"]: proto for proto in protos}
    heads: dict[str, int] = {}
    for proto in protos:
        if len(proto["chain"]) == 1:
            heads[proto["chain"][0]] = heads.get(proto["chain"][0], 0) + 1
    chains = {}
    for proto in protos:
        chain = proto["chain"]
        head = proto if len(chain) == 1 else by_path.get(proto["base"])
        if head is not None and heads.get(chain[0], 0) > 1:
            where = head["conda_root"] or os.path.dirname(head["path"])
            chain = (f"{os.path.basename(where.rstrip(os.sep))}/{chain[0]}", *chain[1:])
        chains[proto["path"]] = chain
    return chains


def _environment(proto: dict, env_id: str, chain: tuple[str, ...]) -> Environment:
    facts: PrefixFacts = proto["facts"]
    return Environment(
        id=env_id,
        name=proto["name"],
        path=proto["path"],
        dir_id=facts.dir_id,
        kind=proto["kind"],
        base=proto["base"],
        python=facts.python,
        python_version=proto["version"],
        scope=proto["scope"],
        writable=facts.writable,
        owner_uid=facts.owner_uid,
        owner_gid=facts.owner_gid,
        creator=facts.creator,
        has_ipykernel=proto["has_ipykernel"],
        inherits_base=proto["inherits"],
        conda_root=proto["conda_root"],
        conda_env_name=proto["conda_env_name"],
        chain=chain,
        shipped_kernels=facts.kernels,
        ipykernel_resources=proto["ipykernel_resources"],
        activation=proto["activation"],
        skipped_reason=_not_a_kernel_reason(proto),
        is_server_prefix=proto["is_server_prefix"],
        display_name=facts.display_name,
    )


def _not_a_kernel_reason(proto: dict) -> str | None:
    facts: PrefixFacts = proto["facts"]
    if facts.python is None:
        if facts.python_problem:
            return f"broken interpreter: {facts.python_problem}; recreate the environment"
        return "no Python interpreter in this environment" if not facts.kernels else None
    if proto["has_ipykernel"]:
        return None
    install = f"`{facts.python} -m pip install ipykernel`"
    if proto["kind"] in (CONDA_BASE, CONDA_ENV):
        return f"no ipykernel: run {install} (or conda install ipykernel), or create a layer on it with inherit"
    if proto["kind"] == LAYERED and not proto["inherits"]:
        return f"no ipykernel: run {install}; this layer does not inherit its base's packages"
    return f"no ipykernel: run {install}"
