"""What a dead process left behind: its jobs failed, its installers killed, its half-made envs removed.

A job's env lock is free once its process is gone; only then is anything of its job touched.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import time
from collections.abc import Callable, Iterator

from .. import fsread
from ..layers.change import restore_snapshot
from . import builder
from .jobstore import ACTIVE, Job, JobStore
from .locks import EnvLock, PlantedLink

# Recovered at the next start of its server or by another live server sharing the root: "stopped" fits both.
INTERRUPTED_BY, AGAIN = "interrupted: the server running it stopped;", "create it again"
# by whichever listing found it abandoned first: another server sharing the root, this one restarted, or the CLI
ALREADY_REMOVED = "its half-made environment had already been removed (a listing found it abandoned)"
INTERRUPTED = f"{INTERRUPTED_BY} the half-made environment was removed, {AGAIN}"
KEPT = "it is kept; delete it if it is not listed as a kernel"
PUT_BACK = "the layer was put back as it was before, make the change again"  # a change stopped by any means
INTERRUPTED_CHANGE = f"{INTERRUPTED_BY} {PUT_BACK}"
# a half-made env its job could not remove (its root made read-only): the next listing that can, does
HALF_MADE_KEPT = "the half-made %s could not be removed: the next listing removes it once it can be written again"


def recover_job(store: JobStore, job: Job, log: logging.Logger) -> bool:
    """Fail a job whose process died, undoing what it half did; ``False``: a live process still holds its lock, or
    another process recovered the job meanwhile (then ``job`` is updated to what that one recorded).

    An env the job had finished (killed in its last step, the check that it is a kernel) is kept: by the time the
    job is recovered, other tools may list and use it.
    """

    def planted(err: PlantedLink) -> None:
        log.warning("jupyter_layenv: job %s for %s not recovered: %s", job.id, job.path, err)

    with _abandoned(job.path, planted) as free:
        if not free:
            return False  # another live process (a second server, the CLI) still holds it
        # ``job`` was read before the lock was taken: another server may have recovered it and released the lock
        # since. Only the record read under the lock says whether it is still to recover (once, one audit event).
        current = store.load(job.id)
        if current is not None:
            for field in dataclasses.fields(Job):
                setattr(job, field.name, getattr(current, field.name))
        if current is None or job.state not in ACTIVE:
            return False
        if job.pid:
            _kill_orphan(job.pid, job.path)
        if job.plan.get("kind") == "change":
            restore_snapshot(job.path, job.id)  # the layer as it was before the interrupted change
            error = INTERRUPTED_CHANGE
        else:
            ours = builder.owned_by(job.path, job.id)
            if builder.remove_half_made(job.path, job.id):
                error = INTERRUPTED
            elif ours:
                error = f"{INTERRUPTED_BY} the half-made {job.path} could not be removed entirely: delete it, then "
                error += AGAIN
            elif builder.finished_by(job.path, job.id):  # killed in its last step: complete, other tools list it
                error = f"{INTERRUPTED_BY} {job.path} was built but not checked yet: {KEPT}"
            else:
                error = f"{INTERRUPTED_BY} {ALREADY_REMOVED}; {AGAIN}"
        job.state, job.error, job.finished, job.pid = "failed", error, time.time(), None
        store.append_log(job.id, f"\n== failed: {error}\n")
        store.save(job)
    log.warning("jupyter_layenv: job %s for %s failed: %s", job.id, job.path, job.error)
    return True


def clean_abandoned(path: str) -> bool | None:
    """Remove a half-made env nobody is building any more (its builder died: the lock is free). Blocking.

    ``True``: removed; ``False``: abandoned, but it could not be removed (its root is read-only, say); ``None``: not
    a half-made env, or a live build holds it."""
    marker = os.path.join(path, builder.BUILDING_MARKER)
    try:
        with fsread.open_regular(marker, encoding="utf-8") as handle:
            job_id = handle.read().strip()
    except OSError:
        return None
    # never through a planted link (the listing keeps showing it as being created), nor while a live build holds it
    with _abandoned(path) as free:
        return builder.remove_half_made(path, job_id) if free else None


@contextlib.contextmanager
def _abandoned(path: str, planted: Callable[[PlantedLink], None] = lambda err: None) -> Iterator[bool]:
    """Holds the env's lock while the body runs if no live process does (``True``, also for an env nobody ever
    locked); ``False``: a live process holds it (here or elsewhere), or its lock file or directory is a planted link
    (the directory's told to ``planted``)."""
    try:
        lock = EnvLock.try_acquire(path, create=False)
    except PlantedLink as err:
        planted(err)
        lock = None
    if lock is None:
        yield False
        return
    try:
        yield True
    finally:
        lock.release()


def _kill_orphan(pid: int, env_path: str) -> None:
    """A dead server's installer may still run (its own session): kill its group if it is really that process."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            cmdline = handle.read().decode("utf-8", "replace")
    except OSError:
        return
    if env_path not in cmdline:
        return  # the pid was reused by an unrelated process
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    """Running, not a zombie (a container's init may never reap the orphan)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
            return handle.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except (OSError, IndexError):
        return False
