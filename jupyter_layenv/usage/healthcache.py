"""Health of every env for a listing: answered at once from what is known, checked on a background thread.

A check reads every ``*.dist-info`` of an env (and of a layer's base): too slow for a listing of hundreds of envs,
so a listing gets what is known (``None``: not checked yet, queued) and a check is cached by the mtimes of the
directories it read (site-packages, ``conda-meta``, the base's site-packages): installing, removing or replacing a
distribution changes them; a check made while one was still changing is made again when due. Validation runs in the
background too, at most every ``refresh`` seconds per env.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from ..locators.prefix import site_packages_of
from ..model import Discovered, Environment
from .background import Background, Stamps, stamp, unchanged
from .health import HealthIssue, check

Work = tuple[Environment, Environment | None]  # an env and the base it is checked against


@dataclass(frozen=True)
class Checked:
    issues: tuple[HealthIssue, ...]
    base: str | None  # the base it was checked against
    dirs: Stamps  # the directories read
    settled: bool  # none of them had changed within the racy window: the stamps alone can validate the check


def _check(work: Work) -> Checked:
    """Stamps what a check reads before it reads (a change during the check is seen next time), then checks."""
    env, base = work
    paths = [os.path.join(env.path, "conda-meta")]
    for prefix in (env, base) if base is not None else (env,):
        site, _version, _entries = site_packages_of(prefix.path, prefix.python_version)
        paths.append(site or os.path.join(prefix.path, "lib"))
    dirs, settled = stamp(paths)
    return Checked(tuple(check(env, base)), base.path if base is not None else None, dirs, settled)


def _valid(known: Checked, work: Work) -> bool:
    base = work[1]
    return known.settled and known.base == (base.path if base is not None else None) and unchanged(known.dirs)


class HealthTracker(Background[Work, Checked]):
    def __init__(self, refresh: float = 30.0) -> None:
        super().__init__(_check, _valid, name="layenv-health", refresh=refresh)

    def issues(self, discovered: Discovered) -> dict[str, list[HealthIssue] | None]:
        """Every env's known issues (``None``: not checked yet); queues the checks that are due. Never waits."""
        found = self.lookup(_paths(discovered), _work(discovered))
        return {path: list(known.issues) if known is not None else None for path, known in found.items()}

    def checked(self, discovered: Discovered) -> dict[str, list[HealthIssue]]:
        """Up-to-date issues of every env, waiting for them (a command, never a request on the event loop)."""
        found = self.wait_for(_paths(discovered), _work(discovered))
        return {path: list(known.issues) for path, known in found.items()}


def _paths(discovered: Discovered) -> list[str]:
    return [env.path for env in discovered.environments]


def _work(discovered: Discovered) -> Callable[[str], Work]:
    """What checking the env at a path takes: the env and its base (looked up only for the envs that are due)."""

    def work(path: str) -> Work:
        env = discovered.by_path(path)
        assert env is not None  # the paths asked are the discovered envs'
        return env, discovered.by_path(env.base) if env.base else None

    return work
