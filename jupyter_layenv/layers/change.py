"""Changing an existing layer (add, remove, restore a revision) as a job that is atomic.

Before anything is touched, the layer's directories are snapshotted by hard links into ``.layenv-snapshot``
(installers replace files, never write into them: uv and pip unlink or rename before writing, so a link keeps
the old content). Failed, cancelled, or killed with its server, the job puts the snapshot back: the layer is
exactly as before. Succeeded, the snapshot is dropped and a revision recorded.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import stat
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from packaging.utils import canonicalize_name

from .. import fsread
from ..inventory import TOOLING, distributions
from ..safewrite import chmod_dir, replace_file
from . import revisions
from .apply import uninstall_argv
from .plan import LayerPlan, Pin

if TYPE_CHECKING:
    from ..create.jobs import Job, JobManager

SNAPSHOT_DIR = ".layenv-snapshot"
NOTHING_TO_CHANGE = "nothing to change: the layer has what was asked already, or its base provides it"
FOUND = "as found"  # the first revision of a layer jupyter_layenv did not make, recorded at its first change
SNAPSHOT_MARKER = "job.json"
SNAPSHOT_TOPS = ("bin", "lib", "lib64", "share", "etc", "include")


@dataclass(frozen=True)
class ChangePlan:
    """A validated change of one layer: what a change job needs, persisted with the job."""

    action: str  # "change" | "restore"
    name: str
    path: str
    base_id: str
    base_path: str | None  # None: the layer does not inherit its base
    python_version: str | None  # the layer's Python's (its base's): which lib/pythonX.Y it and its base import from
    installer: str
    uv: str | None
    creator: str
    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()
    force: bool = False
    options: tuple[str, ...] = ()
    revision: int | None = None  # restore: the revision restored
    lock: tuple[dict[str, Any], ...] = ()  # restore: that revision's lock
    umask: int | None = None
    ipykernel: bool = True  # the env was a kernel: a change that would leave it none is undone
    kind: str = "change"

    @property
    def python(self) -> str:
        return os.path.join(self.path, "bin", "python")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def request(self) -> dict[str, Any]:
        if self.action == "restore":
            return {"action": "restore", "revision": self.revision}
        return {"action": "change", "add": list(self.add), "remove": list(self.remove), "force": self.force}


# -- the snapshot ---------------------------------------------------------------------------------------------


def _link_tree(src: str, dst: str) -> None:
    """Mirror ``src`` at ``dst``: directories made, files hard linked, symlinks recreated."""
    os.makedirs(dst)
    st = os.stat(src)
    chmod_dir(dst, stat.S_IMODE(st.st_mode), like=st)  # as copystat, never through a link swapped in for dst
    with os.scandir(src) as entries:
        for entry in entries:
            target = os.path.join(dst, entry.name)
            if entry.is_symlink():
                os.symlink(os.readlink(entry.path), target)
            elif entry.is_dir():
                _link_tree(entry.path, target)
            else:
                os.link(entry.path, target)


def take_snapshot(env_path: str, job_id: str) -> None:
    """Hard-link copies of the layer's directories, marked with the job that owns them. Blocking."""
    snapshot = os.path.join(env_path, SNAPSHOT_DIR)
    if os.path.lexists(snapshot):
        shutil.rmtree(snapshot)  # a finished job's leftover (its marker is checked before any restore)
    os.mkdir(snapshot)
    shared = _shared_modes(env_path)
    chmod_dir(snapshot, shared[0])
    tops = [top for top in SNAPSHOT_TOPS if os.path.isdir(os.path.join(env_path, top))]
    for top in tops:
        _link_tree(os.path.join(env_path, top), os.path.join(snapshot, top))
    replace_file(snapshot, SNAPSHOT_MARKER, json.dumps({"job": job_id, "tops": tops}), shared[1])


def _shared_modes(env_path: str) -> tuple[int, int]:
    """The modes of a directory and of a file the snapshot adds: the env directory's (in a group root, setgid and
    group-writable), so that another member can put back or remove the snapshot of a change whose server died, as
    they may the env itself (made with the server's umask, they were the changer's alone: 2755 and 0644)."""
    mode = stat.S_IMODE(os.stat(env_path).st_mode)
    return mode, mode & 0o666


def _marker(env_path: str) -> dict[str, Any] | None:
    try:
        with fsread.open_regular(os.path.join(env_path, SNAPSHOT_DIR, SNAPSHOT_MARKER), encoding="utf-8") as handle:
            marker = json.load(handle)
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def restore_snapshot(env_path: str, job_id: str) -> bool:
    """Put a job's snapshot back in place of what the job changed; ``False`` when it holds no (complete) one."""
    marker = _marker(env_path)
    snapshot = os.path.join(env_path, SNAPSHOT_DIR)
    if marker is None or marker.get("job") != job_id:
        if os.path.isdir(snapshot) and marker is None:
            shutil.rmtree(snapshot, ignore_errors=True)  # died while snapshotting: nothing was changed yet
        return False
    tops = [str(top) for top in marker.get("tops") or []]
    trash = os.path.join(snapshot, ".replaced")
    os.makedirs(trash, exist_ok=True)
    for top in SNAPSHOT_TOPS:  # what the job changed or made goes to the trash, the snapshot back in its place
        current = os.path.join(env_path, top)
        if os.path.lexists(current):
            os.rename(current, os.path.join(trash, top))
        if top in tops:
            os.rename(os.path.join(snapshot, top), current)
    shutil.rmtree(snapshot, ignore_errors=True)
    return True


def drop_snapshot(env_path: str, job_id: str) -> None:
    marker = _marker(env_path)
    if marker is not None and marker.get("job") == job_id:
        shutil.rmtree(os.path.join(env_path, SNAPSHOT_DIR), ignore_errors=True)


# -- the job's steps -------------------------------------------------------------------------------------------


def restore_plan(env_path: str, python_version: str | None, lock: tuple[dict[str, Any], ...]) -> LayerPlan:
    """What makes the layer exactly ``lock``: remove what differs, install what is missing, pinned."""
    current = {dist.key: dist for dist in distributions(env_path, python_version) if dist.key not in TOOLING}
    target: dict[str, dict[str, Any]] = {canonicalize_name(str(entry["name"])): entry for entry in lock}
    remove = tuple(d for key, d in current.items() if key not in target or target[key]["version"] != d.version)
    install = tuple(
        Pin(str(e["name"]), str(e["version"]), tuple(e.get("hashes") or ()), e.get("url"))
        for key, e in target.items()
        if key not in current or current[key].version != e["version"]
    )
    return LayerPlan(install=install, remove=remove)


async def run_change(jobs: JobManager, job: Job, change: ChangePlan) -> None:
    """The steps of a change job; any failure leaves the snapshot for the job manager to put back."""
    await jobs.step(job, "snapshot", 0.05)
    previous = await asyncio.to_thread(revisions.latest, change.path)
    if previous is None:  # made by hand (or before revisions): first the layer as found, so the change can be undone
        previous = await asyncio.to_thread(_record_as_found, job, change)
    await asyncio.to_thread(take_snapshot, change.path, job.id)
    known: dict[str, dict[str, Any]] = {canonicalize_name(str(e["name"])): e for e in previous.lock} if previous else {}
    if change.action == "restore":
        layer_plan = await asyncio.to_thread(restore_plan, change.path, change.python_version, change.lock)
        await asyncio.to_thread(jobs.store.append_log, job.id, f"# plan: {json.dumps(layer_plan.json())}\n")
    else:
        await jobs.step(job, "resolve", 0.15)
        layer_plan = await jobs.plan_layer(job, change.python, change.python_version, change.base_path, change.path,
                                           change.installer, change.uv, add=change.add, remove=change.remove,
                                           force=change.force, options=change.options)  # fmt: skip
    if layer_plan.remove:
        await jobs.step(job, "uninstall", 0.4)
        workdir = await asyncio.to_thread(jobs.store.work_dir, job.id)
        names = os.path.join(workdir, "remove.txt")
        await asyncio.to_thread(_write_names, names, [dist.name for dist in layer_plan.remove])
        argv = uninstall_argv(change.installer, change.uv, change.python, names)
        await jobs.command(job, change.installer, argv, jobs.installer_env(), change.umask)
    if layer_plan.install:
        await jobs.step(job, "install", 0.6)
        await jobs.install(job, change.installer, change.uv, change.python, layer_plan.install, change.options,
                           change.umask)  # fmt: skip
    await jobs.step(job, "register", 0.9)
    job.environment = await jobs.register(job)  # still a kernel, or the change is undone
    if change.action != "restore" and not layer_plan.install and not layer_plan.remove:
        job.plan["unchanged"] = True  # all there already (in the layer, or from its base): no revision to add
        await asyncio.to_thread(jobs.store.append_log, job.id, f"# {NOTHING_TO_CHANGE}\n")
    else:
        await asyncio.to_thread(jobs.record, job, change.path, change.python_version, change.base_path,
                                change.request(), layer_plan.install, known)  # fmt: skip
    await asyncio.to_thread(drop_snapshot, change.path, job.id)


def _record_as_found(job: Job, change: ChangePlan) -> revisions.Revision:
    lock = revisions.current_lock(change.path, change.python_version, {})
    return revisions.record(change.path, user=job.user, request={"action": FOUND}, lock=lock,
                            base_path=change.base_path, python_version=change.python_version)  # fmt: skip


def _write_names(path: str, names: list[str]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("".join(f"{name}\n" for name in names))
