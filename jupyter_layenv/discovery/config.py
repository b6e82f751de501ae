"""What discovery looks at: the configured roots and switches, one frozen value per kernel spec manager."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


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
    notifications: bool = False  # inotify spares the stat of paths known unchanged (``.watch``); the server's is on
    max_watches: int = 8192  # at most this many inotify watches (and 1/8 of fs.inotify.max_user_watches)
