"""The candidate scan's pieces: which children of a directory are envs, and one prefix's facts."""

from __future__ import annotations

import dataclasses
import functools
import glob
import os
import stat
from collections.abc import Iterable

from .. import fsread
from ..locators.prefix import (
    PrefixFacts,
    inspect_prefix,
    parse_pyvenv_cfg,
    unusable_facts,
)
from ..model import (
    DELETING_PREFIX,
    SkippedEnv,
)
from ..probe import base_not_responding_reason, root_of
from .cache import Listing, ScanStats
from .config import DiscoveryConfig


def inspect_candidate(path: str, stats: ScanStats, timeout: float = 0) -> tuple[PrefixFacts, tuple[str, ...]]:
    """The prefix's facts; a venv whose base is in a root that did not answer is not inspected (its python link
    leads there, and following it would hang). Its ``home`` is a dependency: it reads as missing until the root
    answers again, then as changed.

    The prefix's ``stat`` and listing are the scan's (the listing often made already, when its parent was
    scanned for envs), so the signature and the facts cost no second call. A venv's facts also depend on its
    base (``_base_marker``): its python link leads there, and dangles once the base is deleted, though the venv did
    not change.
    """
    hung = stats.hung
    if hung:
        cfg_path = os.path.join(path, "pyvenv.cfg")
        home = (parse_pyvenv_cfg(fsread.read_small_text(cfg_path) or "") or {}).get("home", "")
        root = root_of(home, hung) if home else None
        if root is not None:
            problem = base_not_responding_reason(prefix_of_home(home), root, timeout)
            unusable = dataclasses.replace(unusable_facts(path, problem), deps=(path, cfg_path, home))
            return unusable, unusable.deps
    if stats.ahead is not None:
        stats.ahead(path, stats)
    listing = stats.listing(path)
    st = stats.stat(path)
    # gone or unreadable: inspect_prefix reads it again and says which, in its words
    if listing is None or st is None:
        facts = inspect_prefix(path, parsed=stats.pyvenvs, parsed_specs=stats.kernel_specs)
    else:
        facts = inspect_prefix(
            path,
            names=listing,
            st=st,
            parsed=stats.pyvenvs,
            parsed_specs=stats.kernel_specs,
            defer_distribution=stats.defer_distributions,
        )
    # read just now (site-packages, listed or its ipykernel stat'ed; a Conda prefix's conda-meta): no stat for them
    if facts.site_packages:
        stats.note_listed(facts.site_packages)
    if facts.is_conda:
        stats.note_listed(os.path.join(path, "conda-meta"))
    pyvenv = facts.pyvenv
    deps = facts.deps
    if stats.watch_also is not None and pyvenv is not None and path not in deps and deps:
        # a healthy venv's own directory and pyvenv.cfg, which the signature leaves out (one stat less per venv):
        # change notifications watch them for free and report its first dependency changed when they change
        also = (deps[0], stats.started_ns)
        cfg = (path if path.endswith(os.sep) else path + os.sep) + "pyvenv.cfg"  # os.path.join's answer, cheaper
        stats.watch_also[path] = stats.watch_also[cfg] = also
    base_home = pyvenv.get("home") if pyvenv is not None else None
    return facts, (*deps, _base_marker(base_home, stats)) if base_home else deps


def _base_marker(home: str, stats: ScanStats) -> str:
    """The path whose mtime tells a venv its base went: a Conda base's ``conda-meta/`` when this scan listed the
    base (its own facts depend on it: in the signature already, no extra ``stat``; and a layer created inside the
    base leaves it alone), else ``home`` itself."""
    prefix = prefix_of_home(home)
    listing = stats.listed(prefix)
    return os.path.join(prefix, "conda-meta") if listing is not None and "conda-meta" in listing else home


@functools.lru_cache(maxsize=4096)
def prefix_of_home(home: str) -> str:
    """The prefix a pyvenv.cfg ``home`` (usually the base's bin directory) belongs to; the layers of one base share
    their ``home``: asked per layer, worked out once."""
    return os.path.dirname(home) if os.path.basename(home) in ("bin", "Scripts") else home


def glob_parent(pattern: str) -> str:
    """The directory a glob lists: its path up to the first component with a wildcard."""
    parts = pattern.split(os.sep)
    first = next(i for i, part in enumerate(parts) if glob.has_magic(part))
    return os.sep.join(parts[:first]) or os.sep


def without_roots(cfg: DiscoveryConfig, hung: tuple[str, ...]) -> tuple[DiscoveryConfig, list[str]]:
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
        elif root_of(glob_parent(pattern), hung) is None:
            matches = sorted(glob.glob(pattern))
            deps.append(glob_parent(pattern))
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


def env_children(
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
    listed: Listing | list[str]
    if known and not nested and not stats.hung and stats.listed(directory) is None:
        listed = _names(directory)  # children known already: the names, and a type only for the new ones
    else:
        listed = stats.listing(directory) or {}
    base = directory if directory.endswith(os.sep) else directory + os.sep
    for name in sorted(listed):
        if (nested and name in _CONDA_PREFIX_DIRS) or name.startswith(DELETING_PREFIX):
            continue
        path = base + name
        if path in known:
            children.append(path)
            continue
        entry = listed[name] if isinstance(listed, dict) else _Entry(path)
        if entry.is_symlink():
            problem = fsread.link_problem(path)
            if problem == "symlink loop":
                skipped.append(SkippedEnv(path, f"symlink loop: {path} points back to itself; remove the link"))
                continue
            if problem or not fsread.is_dir(path):
                continue
        elif not entry.is_dir(follow_symlinks=False):
            continue
        elif stats.ahead is not None:
            stats.ahead(path, stats)
        if _child_is_env(path, stats.listing(path), nested=nested):
            children.append(path)
        else:
            deps += [path, os.path.join(path, "conda-meta")]
    return (children, skipped), deps


def _names(directory: str) -> list[str]:
    """The names in a directory (``[]``: unreadable), without a ``DirEntry`` each: a directory listed again after a
    change, whose children are mostly known envs, needs the type of its new names only (``_Entry``)."""
    try:
        return os.listdir(directory)
    except (OSError, ValueError):
        return []


class _Entry:
    """What ``env_children`` asks of a ``DirEntry``, from one ``lstat`` (a name gone meanwhile: not a directory)."""

    __slots__ = ("mode",)

    def __init__(self, path: str) -> None:
        try:
            self.mode = os.lstat(path).st_mode
        except (OSError, ValueError):
            self.mode = 0

    def is_symlink(self) -> bool:
        return stat.S_ISLNK(self.mode)

    def is_dir(self, *, follow_symlinks: bool) -> bool:
        return stat.S_ISDIR(self.mode)


def _child_is_env(path: str, listing: Listing | None, *, nested: bool) -> bool:
    """A venv (``pyvenv.cfg``), or unless nested a Conda prefix (an install root has ``conda-meta/`` too), judged
    from the child's listing: only a symlinked entry needs a ``stat``. A child that cannot be listed is asked.
    """
    if listing is None:
        return fsread.exists(os.path.join(path, "pyvenv.cfg")) or (
            not nested and fsread.is_dir(os.path.join(path, "conda-meta"))
        )
    cfg = listing.get("pyvenv.cfg")
    if cfg is not None and (not cfg.is_symlink() or fsread.exists(os.path.join(path, "pyvenv.cfg"))):
        return True
    if nested:
        return False
    meta = listing.get("conda-meta")
    if meta is None:
        return False
    if meta.is_symlink():
        return fsread.is_dir(os.path.join(path, "conda-meta"))
    return meta.is_dir(follow_symlinks=False)
