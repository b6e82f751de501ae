"""Conda installs and their environments, from the files conda itself keeps.

Roots (``conda-meta/`` plus ``envs/`` or ``condabin/``; a configured one also with ``bin/micromamba`` only),
every ``envs/`` and ``envs_dirs`` entry, ``environments.txt``, and the ``envs_dirs`` of every ``.condarc`` conda
reads. ``conda`` is never run.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Iterable

import yaml

from .. import fsread
from . import (
    SOURCE_CONDA_ENVS,
    SOURCE_CONDA_ROOT,
    SOURCE_CONDARC,
    SOURCE_ENVIRONMENTS_TXT,
    Candidate,
    Located,
    ScanChildren,
    scan_into,
)
from .prefix import looks_like_conda_root

_ROOT_CONDARCS = (".condarc", "condarc", "condarc.d")  # what conda reads in an install root, in its order


def _names(path: str) -> Collection[str]:
    return set(fsread.listdir(path))


def locate(
    roots: Iterable[str],
    envs_dirs: Iterable[str],
    environments_files: Iterable[str],
    condarc_paths: Iterable[str],
    scan: ScanChildren,
    skip: Callable[[str], bool] = lambda path: False,
    names: Callable[[str], Collection[str]] = _names,
) -> Located:
    """``skip``: paths not to touch at all (in a root that did not answer: reading them would hang). ``names``: the
    entries of a directory (discovery's come from the listing its inspection of the root reuses).

    An install that ``environments.txt`` names (its root, or one of the envs in its ``envs/``) is a root like
    a configured one: a server not started from an activated shell knows it only from there.
    """
    located = Located()
    listed: list[str] = []
    for listing in environments_files:
        located.deps.append(listing)
        listed.extend(read_environments_txt(listing, skip))
    named = list(roots)
    found_roots = []
    root_condarcs: list[str] = []
    absent: set[str] = set()  # root condarc files the root's listing does not have: nothing to read
    for root in dict.fromkeys([*named, *_installs_of(listed, located.deps)]):
        located.deps.append(root)
        top = names(root)
        if looks_like_conda_root(root, named_root=root in named, names=top):
            found_roots.append(root)
            add_root(located, scan, root)
            for name in _ROOT_CONDARCS:
                root_condarcs.append(os.path.join(root, name))
                if name not in top:
                    absent.add(root_condarcs[-1])
    for directory in _condarc_envs_dirs([*condarc_paths, *root_condarcs], located.deps, absent):
        if skip(directory):
            continue
        scan_into(located, scan, directory, SOURCE_CONDARC)
    for directory in envs_dirs:
        scan_into(located, scan, directory, SOURCE_CONDA_ENVS)
    located.candidates.extend(Candidate(path, SOURCE_ENVIRONMENTS_TXT) for path in listed if path not in found_roots)
    return located


def add_root(located: Located, scan: ScanChildren, root: str) -> None:
    """A Conda install root as a candidate, and the envs in its ``envs/``."""
    located.candidates.append(Candidate(root, SOURCE_CONDA_ROOT, conda_root=root))
    scan_into(located, scan, os.path.join(root, "envs"), SOURCE_CONDA_ENVS, conda_root=root)


def _installs_of(prefixes: Iterable[str], deps: list[str]) -> list[str]:
    """The install each listed prefix is (a root) or belongs to (``<root>/envs/<name>``)."""
    found = []
    for prefix in prefixes:
        parent = os.path.dirname(prefix.rstrip(os.sep))
        if os.path.basename(parent) == "envs":
            install = os.path.dirname(parent)
            deps.append(install)
            found.append(install)
        else:
            found.append(prefix)
    return found


def read_environments_txt(path: str, skip: Callable[[str], bool] = lambda path: False) -> list[str]:
    """Prefixes conda recorded; stale lines (deleted envs) are dropped, as conda itself does."""
    text = fsread.read_small_text(path) or ""
    lines = [line.strip() for line in text.splitlines()]
    prefixes = [fsread.expand(line) for line in lines if line and not line.startswith("#")]
    return [prefix for prefix in prefixes if not skip(prefix) and fsread.is_dir(prefix)]


def _condarc_envs_dirs(paths: Iterable[str], deps: list[str], absent: Collection[str] = ()) -> list[str]:
    """The ``envs_dirs`` the files name; every path is a dependency, those ``absent`` are not read."""
    found: list[str] = []
    for path in paths:
        deps.append(path)
        if path in absent:
            continue
        if path.endswith(".d") or fsread.is_dir(path):
            files = sorted(name for name in fsread.listdir(path) if name.endswith((".yml", ".yaml")))
            for name in files:
                deps.append(os.path.join(path, name))
            texts = [fsread.read_small_text(os.path.join(path, name)) for name in files]
        else:
            texts = [fsread.read_small_text(path)]
        for text in texts:
            found.extend(fsread.expand(entry) for entry in parse_condarc_list(text or "", "envs_dirs"))
    return found


def parse_condarc_list(text: str, key: str) -> list[str]:
    """The strings under a top-level ``key`` of a .condarc; a file conda could not read either gives nothing."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError:
        return []
    value = document.get(key) if isinstance(document, dict) else None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return []
    return [str(item) for item in value if isinstance(item, (str, int, float)) and str(item)]
