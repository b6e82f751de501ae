"""What one layered env is made of (a :class:`BuildPlan`) and the file work around building it.

The env is a virtualenv made with the base's own interpreter: ``--system-site-packages`` gives it the base's
packages. It is built in place (virtualenv and installers write absolute paths into scripts, so a build
elsewhere could not be moved), inside a directory this module creates first with an ownership marker:
only a directory carrying the marker of a job is ever removed as "half-made".

An env made in a group root belongs to the root's group: setgid directories keep new files in it and the build
runs with umask 002, so every member can install into it and delete it.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

from .. import fsread
from ..model import BUILDING_MARKER, PROVENANCE
from ..safewrite import replace_file


@dataclass(frozen=True)
class BuildPlan:
    name: str
    path: str
    base_id: str
    base_path: str
    base_python: str
    python_version: str | None  # base_python's (discovery's): which lib/pythonX.Y the layer and its base import from
    inherit: bool
    seed_pip: bool
    installer: str  # "uv" or "pip"
    uv: str | None
    requirements: tuple[str, ...]  # validated specs, ipykernel added when the env could not import it
    requested: tuple[str, ...]  # what the caller asked for
    display_name: str | None
    creator: str
    group_gid: int | None = None  # set for a group root: the env is shared with that group
    options: tuple[str, ...] = ()  # installer options the policy allowed (names from SAFE_INSTALLER_OPTIONS)
    environment_yml: dict[str, Any] | None = None  # the file it was made from: name, channels, specs (provenance)

    @property
    def umask(self) -> int | None:
        """The build's umask: group-writable files in a shared env, the server's own otherwise."""
        return 0o002 if self.group_gid is not None else None

    @property
    def python(self) -> str:
        return os.path.join(self.path, "bin", "python")

    def to_json(self) -> dict:
        return asdict(self)


def virtualenv_command(plan: BuildPlan) -> list[str]:
    command = [sys.executable, "-m", "virtualenv", "--no-periodic-update", "--no-download", "-p", plan.base_python]
    if plan.inherit:
        command.append("--system-site-packages")
    command += ["--no-setuptools"] if plan.seed_pip else ["--no-seed"]
    return [*command, "--", plan.path]


def reserve(path: str, group_gid: int | None, job_id: str) -> bool:
    """Make the env directory ``path`` (a layer's or a Conda env's), owned by this job, given to ``group_gid``'s group
    when set; ``False`` when the path exists already (blocking: use a thread)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        os.mkdir(path)
    except FileExistsError:
        return False
    try:
        if group_gid is not None:
            share_with_group(path, group_gid)
        replace_file(path, BUILDING_MARKER, job_id)  # never into a link a member swapped in for the new directory
    except BaseException as err:
        shutil.rmtree(path, ignore_errors=True)  # we made it a moment ago: no marker-only directory left
        if isinstance(err, OSError) and err.filename is None:  # a write's error names no file: name where it was
            raise OSError(err.errno, err.strerror, path) from None
        raise
    return True


def share_with_group(path: str, gid: int) -> None:
    """Give a group's env to the group: its gid, setgid group-writable directories, group-writable files.

    Files hard-linked from an installer's cache (several links) are left alone: changing their mode would
    change the cache's copy too, and deleting them needs only the directory's write permission.

    The members may write the env's directories while this runs: each entry is changed through a descriptor opened
    without following a link (``os.fwalk``, ``O_NOFOLLOW``), never by path after an ``lstat``, where a member who
    swapped a file for a link in between had the builder's own files (``~/.bashrc``) given to the group, writable.
    """
    uid = os.getuid()
    for _directory, _dirs, files, dir_fd in os.fwalk(path):
        _share(dir_fd, gid, uid, stat.S_ISGID | stat.S_IRWXG)
        for name in files:
            try:
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
            except OSError:
                continue  # a link (ELOOP), gone, or not readable: left as it is
            try:
                _share(fd, gid, uid, stat.S_IRGRP | stat.S_IWGRP)
            finally:
                os.close(fd)


def _share(fd: int, gid: int, uid: int, bits: int) -> None:
    try:
        st = os.fstat(fd)
        if st.st_uid != uid or (stat.S_ISREG(st.st_mode) and st.st_nlink > 1):
            return
        if st.st_gid != gid:
            os.fchown(fd, -1, gid)
        wanted = stat.S_IMODE(st.st_mode) | bits
        if stat.S_ISREG(st.st_mode) and st.st_mode & stat.S_IXUSR:
            wanted |= stat.S_IXGRP
        if wanted != stat.S_IMODE(st.st_mode) or st.st_gid != gid:  # chown clears setgid on some systems
            os.fchmod(fd, wanted)
    except OSError:
        pass  # best effort: a file that stays private only means members cannot overwrite that one file


def owned_by(path: str, job_id: str) -> bool:
    try:
        with open(os.path.join(path, BUILDING_MARKER), encoding="utf-8") as handle:
            return handle.read().strip() == job_id
    except OSError:
        return False


def remove_half_made(path: str, job_id: str) -> bool:
    """Remove the env only if this job's marker is still in it (never a finished env, never another's)."""
    if not owned_by(path, job_id):
        return False
    shutil.rmtree(path, ignore_errors=True)
    return not os.path.lexists(path)


def finished_by(path: str, job_id: str) -> bool:
    """The env is complete and this job made it: its provenance (written by :func:`finish`) names the job."""
    try:
        with fsread.open_regular(os.path.join(path, PROVENANCE), encoding="utf-8") as handle:
            recorded = json.load(handle)
    except (OSError, ValueError):
        return False
    return isinstance(recorded, dict) and recorded.get("job") == job_id


def remove_unlisted(path: str, job_id: str) -> bool:
    """Remove the env this job finished when the job still failed (its last step found it no kernel): only the
    job itself, holding the env's lock, calls this; a finished env of any other job is never touched."""
    if not finished_by(path, job_id):
        return False
    shutil.rmtree(path, ignore_errors=True)
    return not os.path.lexists(path)


def write_requirements(path: str, specs: tuple[str, ...]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("".join(f"{spec}\n" for spec in specs))


def finish(plan: BuildPlan, job_id: str) -> None:
    """Record provenance in ``layenv.json`` and drop the building marker: from now on the env is complete."""
    if plan.group_gid is not None:
        share_with_group(plan.path, plan.group_gid)
    provenance = {
        "base": plan.base_path,
        "base_id": plan.base_id,
        "inherit": plan.inherit,
        "packages": list(plan.requested),
        "installed": list(plan.requirements),
        "installer": plan.installer if plan.requirements else None,
        "display_name": plan.display_name,
        "creator": plan.creator,
        "creator_uid": os.getuid(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "job": job_id,
        "environment_yml": plan.environment_yml,
    }
    mode = 0o664 if plan.group_gid is not None else None  # a group env's: made while members may write its dir
    replace_file(plan.path, PROVENANCE, json.dumps(provenance, indent=1), mode)
    os.unlink(os.path.join(plan.path, BUILDING_MARKER))
