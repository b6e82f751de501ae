"""Prefixes named one by one: the administrator's ``env_paths`` and the server's own ``sys.prefix``.

A Conda install named there is a root, with the envs in its ``envs/``.
"""

from __future__ import annotations

from collections.abc import Iterable

from . import SOURCE_CONFIGURED, SOURCE_SERVER, Candidate, Located, ScanChildren
from .conda import add_root
from .prefix import looks_like_conda_root, looks_like_env


def locate(env_paths: Iterable[str], server_prefix: str | None, scan: ScanChildren) -> Located:
    located = Located()
    for path in env_paths:
        located.deps.append(path)
        if looks_like_conda_root(path, named_root=True):
            add_root(located, scan, path)
        elif looks_like_env(path):
            located.candidates.append(Candidate(path, SOURCE_CONFIGURED))
    if server_prefix:
        located.candidates.append(Candidate(server_prefix, SOURCE_SERVER))
    return located
