"""Which of its base's packages each layer holds a copy of (the listing's ``shadowed`` badge), cached by mtimes.

Answering means listing the site-packages of every layer and every base: hundreds of directories at 500 envs, on
every listing, while discovery itself costs one ``stat`` per watched directory. The ``*.dist-info`` /
``*.egg-info`` names of a site-packages change only with its mtime (an install, upgrade or removal adds, removes or
renames an entry), so they are kept with the ``stat`` of the directories that were read to find them, and read
again only when one of those changed. A ``stat`` too recent to trust (discovery's racy window; a change may hide in
the same clock tick) is not kept: the next listing reads that site-packages again.

The site-packages read is the one of the Python discovery gives the env (a ``lib/python3.X`` another Python left
behind is not it), and none is read through a symlink leading out of the env.

Blocking file reads: the service calls this in the listing's thread, never on the event loop.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..discovery import fs_now_ns, settled_since
from ..inventory import TOOLING, dist_names
from ..locators.prefix import site_packages_of
from ..model import LAYERED, Discovered

Stamp = tuple[int, int, int] | None  # st_mtime_ns, st_ctime_ns, st_ino; None: missing


@dataclass(frozen=True, slots=True)
class _Read:
    version: str | None  # the env's Python version the site-packages was chosen by
    names: dict[str, str]  # canonical name: the name as the entry spells it
    dirs: tuple[tuple[str, Stamp], ...]  # what the names depend on (lib, site-packages); empty: read again


class Shadows:
    """Distribution names per prefix, valid while the directories they were read from keep their ``stat``."""

    def __init__(self) -> None:
        self._read: dict[str, _Read] = {}

    def shadowing(self, discovered: Discovered) -> dict[str, list[str]]:
        """For every layer inheriting its base, the base packages it holds a copy of (any version), from the names
        of the ``*.dist-info`` directories alone. Warm: two ``stat`` calls per layer and per base, no listing."""
        read: dict[str, _Read] = {}

        def names(prefix: str) -> dict[str, str]:
            if prefix not in read:
                env = discovered.by_path(prefix)
                read[prefix] = self._names(prefix, env.python_version if env is not None else None)
            return read[prefix].names

        found: dict[str, list[str]] = {}
        for env in discovered.environments:
            if env.kind != LAYERED or not env.inherits_base or not env.base:
                continue
            base = names(env.base)
            own = names(env.path)
            found[env.path] = sorted(name for key, name in own.items() if key in base and key not in TOOLING)
        self._read = read  # prefixes no longer listed are forgotten
        return found

    def _names(self, prefix: str, version: str | None) -> _Read:
        known = self._read.get(prefix)
        if (
            known is not None
            and known.version == version
            and known.dirs
            and all(_stamp(path) == stamp for path, stamp in known.dirs)
        ):
            return known
        started = fs_now_ns()  # settled_since's start
        site, _x_y, entries = site_packages_of(prefix, version)
        if site is None:  # nothing to watch that would tell a site-packages appeared: read again next time
            return _Read(version, {}, ())
        names = {} if _leaves(prefix, site) else dist_names(entries)
        # Stamped after the listing: a change since it started shows as an mtime too recent to trust. The stamps
        # follow links: a directory on the way replaced by a link (or a link retargeted) changes an inode.
        dirs = tuple((path, _stamp(path)) for path in (os.path.dirname(os.path.dirname(site)), site))
        trusted = all(_settled(stamp, started) for _path, stamp in dirs)
        return _Read(version, names, dirs if trusted else ())


def _leaves(prefix: str, site: str) -> bool:
    """Whether ``site`` (a path under ``prefix``) is reached through a symlink leading out of ``prefix``: its names
    are then another directory's, not the env's. One ``lstat`` per directory on the way (``lib``, ``pythonX.Y``,
    ``site-packages``); the real paths only when one is a link."""
    path = prefix
    for part in os.path.relpath(site, prefix).split(os.sep):
        path = os.path.join(path, part)
        if os.path.islink(path):
            real, root = os.path.realpath(site), os.path.realpath(prefix)
            return os.path.commonpath([real, root]) != root
    return False


def _stamp(path: str) -> Stamp:
    try:
        result = os.stat(path)
    except (OSError, ValueError):
        return None
    return result.st_mtime_ns, result.st_ctime_ns, result.st_ino


def _settled(stamp: Stamp, started: int) -> bool:
    """Discovery's rule for a directory it listed (``settled_since``)."""
    return stamp is not None and settled_since(stamp[0], stamp[1], started)
