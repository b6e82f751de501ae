"""The administrator's roots on a shared server: system roots (read-only bases) and group roots.

A system root is a Conda install (``/opt/conda``) or a directory of envs (``/opt/conda/envs``). A group root is a
directory (or a glob of them, ``/srv/layenv/*``) whose Unix group owns it; its envs are listed only for members.
What a root is, who owns it and whether it can be written all come from the filesystem, not from configuration.
"""

from __future__ import annotations

import glob
import hashlib
import os
from collections.abc import Iterable

from ..model import SCOPE_GROUP, SCOPE_SYSTEM, ScopedRoot
from . import SOURCE_CONDA_ENVS, SOURCE_CONDA_ROOT, SOURCE_VENV_ROOT, Candidate, Located, ScanChildren, scan_into
from .prefix import looks_like_conda_root


def caller_groups() -> frozenset[int]:
    """The gids this process acts with: what the kernel checks, so what membership means here."""
    return frozenset([os.getgid(), os.getegid(), *os.getgroups()])


def expand_group_roots(patterns: Iterable[str], deps: list[str]) -> list[str]:
    """Directories named by the patterns; a glob's parent is a dependency, so a new group's root shows up."""
    found: list[str] = []
    for pattern in patterns:
        if glob.has_magic(pattern):
            deps.append(os.path.dirname(pattern.rstrip(os.sep)))
            found.extend(sorted(path for path in glob.glob(pattern) if os.path.isdir(path)))
        else:
            found.append(pattern)
    return list(dict.fromkeys(os.path.abspath(path) for path in found))


def locate(
    system_roots: Iterable[str],
    group_roots: Iterable[str],
    scan: ScanChildren,
    *,
    uid: int,
    gids: frozenset[int],
) -> tuple[Located, list[ScopedRoot]]:
    located = Located()
    roots: list[ScopedRoot] = []
    for path in system_roots:
        located.deps.append(path)
        info = _root(path, SCOPE_SYSTEM, f"system:{path}", uid, gids)
        if info is None:
            continue
        roots.append(info)
        if looks_like_conda_root(path):
            located.candidates.append(Candidate(path, SOURCE_CONDA_ROOT, conda_root=path))
            scan_into(located, scan, os.path.join(path, "envs"), SOURCE_CONDA_ENVS, conda_root=path)
        else:
            scan_into(located, scan, path, SOURCE_VENV_ROOT)
    group_paths = expand_group_roots(group_roots, located.deps)
    names = [os.path.basename(path.rstrip(os.sep)) for path in group_paths]
    for path, name in zip(group_paths, names, strict=True):
        located.deps.append(path)
        root_id = f"group:{name}" if names.count(name) == 1 else f"group:{name}-{_short_hash(path)}"
        info = _root(path, SCOPE_GROUP, root_id, uid, gids)
        if info is None:
            continue
        roots.append(info)
        if info.member:
            scan_into(located, scan, path, SOURCE_VENV_ROOT)
    return located, roots


def _root(path: str, scope: str, root_id: str, uid: int, gids: frozenset[int]) -> ScopedRoot | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    member = scope == SCOPE_SYSTEM or uid == 0 or st.st_gid in gids  # system bases are everyone's
    return ScopedRoot(
        id=root_id,
        scope=scope,
        path=path,
        owner_uid=st.st_uid,
        gid=st.st_gid,
        member=member,
        writable=os.access(path, os.W_OK | os.X_OK),
    )


def _short_hash(path: str) -> str:
    return hashlib.sha1(path.encode()).hexdigest()[:6]
