"""The groups GET usage sums envs by, and what each one is, so that the panel calls a root only what is one.

An env counts in the deepest place holding it, a root or a Conda install (one inside a root too), else in the
folder it sits in. An env found through ``~/.conda/environments.txt``, a Conda install on the server's ``PATH`` or a
default place lands in a group no one configured: its ``kind`` says what it is (a Conda install or a folder) and its
``source`` how the server came to look there.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..model import SCOPE_GROUP, Environment

CONDA_INSTALL = "conda-install"
FOLDER = "folder"

CREATE_ROOT = "create-root"  # where this server creates the user's envs
SYSTEM_ROOT = "system-root"
GROUP_ROOT = "group-root"
CONFIGURED = "configured"  # named in the configuration (conda_roots, envs_dirs, venv_roots, env_paths, ...)
DEFAULT = "default"  # searched when nothing else is configured: the tools' default places, their variables, PATH
CONDARC = "condarc"  # named in the envs_dirs of a .condarc conda reads: conda's configuration, not the server's
SERVER_PREFIX = "server-prefix"  # the folder of the server's own environment
FOUND = "found"  # none of these: the folder or install of an env found one by one (environments.txt, env_paths)


@dataclass(frozen=True)
class Places:
    """Where the server looks, by how each place came to be looked at (paths expanded)."""

    create_root: str
    scoped: Mapping[str, str]  # system and group roots: path -> scope
    configured: frozenset[str]  # roots named in the configuration
    defaults: frozenset[str]  # roots searched when the configuration names none
    named: frozenset[str] = frozenset()  # prefixes named one by one (env_paths): a Conda install there is configured
    condarc: frozenset[str] = frozenset()  # envs dirs the .condarc files name


@dataclass(frozen=True)
class Group:
    path: str
    kind: str
    source: str


def group_envs(envs: Iterable[Environment], places: Places) -> dict[str, Group]:
    """Each env's group, by the env's path."""
    envs = list(envs)
    installs = {env.conda_root for env in envs if env.conda_root}
    roots = {places.create_root, *places.scoped, *places.configured, *places.defaults, *places.condarc, *installs}
    roots.discard("")
    groups = {}
    for env in envs:
        path = max((r for r in roots if env.path == r or _inside(env.path, r)), key=len, default=None)
        if path is None:
            path = os.path.dirname(env.path)
            fallback = SERVER_PREFIX if env.is_server_prefix else FOUND
        else:
            fallback = FOUND
        groups[env.path] = Group(path, CONDA_INSTALL if path in installs else FOLDER, _source(path, places, fallback))
    return groups


def _source(path: str, places: Places, fallback: str) -> str:
    if path == places.create_root:
        return CREATE_ROOT
    if path in places.scoped:
        return GROUP_ROOT if places.scoped[path] == SCOPE_GROUP else SYSTEM_ROOT
    if path in places.configured or path in places.named:
        return CONFIGURED
    if path in places.defaults:
        return DEFAULT
    if path in places.condarc:
        return CONDARC
    return fallback


def _inside(path: str, root: str) -> bool:
    return path.startswith(root.rstrip(os.sep) + os.sep)
