"""Why an env a job has just built is not in the listing, and what to do: the last step of a create says so.

Discovery skips a prefix it cannot use with a reason of its own (a garbled ``pyvenv.cfg``, a dangling interpreter);
that reason is the cause to report. Where discovery does not look at all is known before building: a create there
is refused at once (:func:`unseen_conda_dir`), so it is no reason a build fails. A root discovery reaches under
another name (a symlink) lists the env under that name: it is listed (:func:`listed_as`), not missing.
"""

from __future__ import annotations

import os
from collections.abc import Collection

from .create.conda import environments_txt
from .model import Discovered, Environment
from .probe import PROBE, root_of


def listed_as(discovered: Discovered, path: str) -> Environment | None:
    """The env discovery lists for the directory ``path``: by that path, or under another name for it (a root reached
    through a symlink is listed under the name discovery found it by first), which ends in the same name (blocking)."""
    env = discovered.by_path(path)
    if env is not None:
        return env
    name = os.path.basename(path)
    return next((e for e in discovered.environments if os.path.basename(e.path) == name and _same(e.path, path)), None)


def _same(one: str, other: str) -> bool:
    try:
        return os.path.samefile(one, other)
    except OSError:
        return False


def unseen_conda_dir(envs_dir: str, scanned: Collection[str] | None, environments_files: Collection[str]) -> str | None:
    """Why a Conda env built in ``envs_dir`` would not be listed (``None``: it would). A layer's roots are always
    scanned (the user root is a venv root, a group root is scanned for its members, ``inside_base`` needs
    ``nested_venvs``); a Conda env's directory, ``LayenvService.conda_envs_dir``, is listed only when discovery scans
    it or reads the ``environments.txt`` the build records it in. ``scanned``: ``None`` when no scan completed."""
    listing = environments_txt()
    if scanned is None or envs_dir in scanned or listing in environments_files:
        return None
    if _scanned_under_another_name(envs_dir, scanned):  # listed_as finds the env there
        return None
    return (
        f"discovery does not look in {envs_dir} (LayenvService.conda_envs_dir) and does not read {listing}, where a "
        f"new Conda env is recorded: add {envs_dir} to LayenvKernelSpecManager.envs_dirs (or {listing} to "
        "LayenvKernelSpecManager.environments_files), or set LayenvService.conda_envs_dir to a directory it scans"
    )


def _scanned_under_another_name(envs_dir: str, scanned: Collection[str]) -> bool:
    """Whether a scanned directory is ``envs_dir`` reached by another path (a symlink, a bind mount), told by
    ``(st_dev, st_ino)``: one ``stat`` of ``envs_dir``; a scanned root's id is the root probe's answer to the listing
    just made, and only a scanned directory that is no root (a Conda root's ``envs/``) is asked, once. Nothing in a
    root that has not answered the probe (a hung or slow mount: it would block this thread) is asked: discovery
    leaves such a root out of its listings, so an env made there would not be listed now either."""
    ids, unanswered = PROBE.answers()
    if root_of(envs_dir, unanswered) is not None:
        return False
    wanted = ids[envs_dir] if envs_dir in ids else _dir_id(envs_dir)
    if wanted is None:
        return False
    for directory in scanned:
        if root_of(directory, unanswered) is None:
            found = ids[directory] if directory in ids else _dir_id(directory)
            if found == wanted:
                return True
    return False


def _dir_id(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def unlisted_message(discovered: Discovered, path: str, job_id: str, *, installed_packages: bool) -> str:
    """The error of a job whose env ``path`` discovery does not list (REST words: the CLI's ``cli_words`` turns the
    log's address into "the log above"); ``installed_packages``: the job installed packages of its own into it."""
    log = f"the job's log (GET jobs/{job_id}/log)"
    reason = next((skipped.reason for skipped in discovered.skipped if skipped.path == path), None)
    if reason is None:  # where it was built is scanned (see unseen_conda_dir), yet nothing is listed there
        return f"{path} was built but discovery no longer finds it: was it removed or moved meanwhile? See {log}"
    if installed_packages:
        what = f"a package installed into it probably broke it: see the install step in {log}, leave that package out"
    else:
        what = f"nothing was installed into it, so something else changed it while it was built: see {log}"
    return f"{path} was built but is not listed: discovery skips it ({reason}); {what}"
