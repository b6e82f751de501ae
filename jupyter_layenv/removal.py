"""Deleting an environment: whole or not at all, never through a link, and also a layer whose base is gone.

A layer whose base was deleted is no usable environment (discovery skips it: its interpreter dangles), but it
is still someone's directory: the listing gives it an id and the same delete rules as any layer. Blocking file
work: call from a thread.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import sys
import uuid
from collections.abc import Callable, Sequence

from jupyter_core.paths import jupyter_path

from . import fsread, kernelstart
from .create.locks import LOCK_DIR, EnvLock, PlantedLink, lock_path, short_name
from .discovery import slug
from .inuse import RunningKernel
from .kernels import SYNC_MARKER
from .model import (
    DELETING_PREFIX,
    LAYERED,
    SCOPE_GROUP,
    SCOPE_SYSTEM,
    SCOPE_USER,
    VENV,
    Discovered,
    Environment,
)
from .policy import LayenvPolicy, PolicyError, kernels_refusal, read_only_mount_words
from .unlisted import listed_as

BASE_DELETED = "base deleted"  # how discovery's skip reason for a layer whose base is gone begins
OWN_PACKAGES_FORMATS = ("requirements.txt", "lock")  # what a layer exports without its base
BROKEN_INTERPRETER = "broken interpreter"  # ... for a venv whose bin/python dangles ("recreate … or delete it")


def orphaned_layers(discovered: Discovered) -> list[Environment]:
    """The skipped layers whose base was deleted, and the venvs whose interpreter dangles, as environments a person
    may delete (their skip reasons say to)."""
    found = []
    for skipped in discovered.skipped:
        if skipped.reason.startswith(BASE_DELETED):
            prefix, kind = "orphan", LAYERED
        elif skipped.reason.startswith(BROKEN_INTERPRETER) and fsread.exists(os.path.join(skipped.path, "pyvenv.cfg")):
            prefix, kind = "broken", VENV
        else:
            continue
        try:
            st = os.lstat(skipped.path)
        except OSError:
            continue
        name = os.path.basename(skipped.path)
        digest = hashlib.sha1(skipped.path.encode("utf-8", "surrogateescape")).hexdigest()[:6]
        group_roots = [r.path.rstrip(os.sep) + os.sep for r in discovered.roots if r.scope == SCOPE_GROUP]
        in_group = skipped.path.startswith(tuple(group_roots))
        found.append(
            Environment(
                id=f"{prefix}.{slug(name)}-{digest}",
                name=name,
                path=skipped.path,
                dir_id=(st.st_dev, st.st_ino),
                kind=kind,
                base=None,
                python=None,
                python_version=None,
                scope=SCOPE_GROUP if in_group else SCOPE_USER if st.st_uid == os.getuid() else SCOPE_SYSTEM,
                writable=os.access(skipped.path, os.W_OK),
                owner_uid=st.st_uid,
                owner_gid=st.st_gid,
                has_ipykernel=False,
                skipped_reason=skipped.reason,
            )
        )
    return found


def _unusable(discovered: Discovered, env_id: str) -> tuple[Environment, str] | None:
    """A deletable skipped env (its base deleted, its interpreter dangling) and why it is not usable, by its id."""
    env = next((env for env in orphaned_layers(discovered) if env.id == env_id), None)
    return None if env is None else (env, (env.skipped_reason or "skipped").split(":")[0])


def skipped_to_export(discovered: Discovered, env_id: str, fmt: str) -> Environment | None:
    """A deletable skipped env exports its own packages, what its owner needs to create it again on an existing
    base; ``None`` when ``env_id`` is none of them."""
    found = _unusable(discovered, env_id)
    if found is None:
        return None
    env, why = found
    if fmt not in OWN_PACKAGES_FORMATS:
        raise PolicyError(
            400,
            f"{env.name} is not usable ({why}): only its own packages can be exported (format requirements.txt or "
            "lock), to create it again on an existing base from that file",
            "not usable",
        )
    return env


def unusable_refusal(discovered: Discovered, env_id: str) -> PolicyError | None:
    """Why a deletable skipped env cannot be changed or restored."""
    found = _unusable(discovered, env_id)
    if found is None:
        return None
    env, why = found
    return PolicyError(
        409,
        f"{env.name} is not usable ({why}): it cannot be changed; export its own packages (format requirements.txt) "
        "and create it again on an existing base from that file, or delete it",
        "not usable",
    )


def unlisted(roots: list[str], discovered: Discovered) -> list[str]:
    """Directories in the create roots that discovery does not know and no build is working on: a build killed
    before the env took shape (only its marker, say), or an orphan's leftovers. Each blocks a name."""
    known = {env.path for env in discovered.environments} | {skipped.path for skipped in discovered.skipped}
    names = {os.path.basename(env.path) for env in discovered.environments}
    found = []
    for root in roots:
        locks: set[str] | None = None  # listed once, after the root, when first needed
        listed = False
        for name in fsread.listdir(root):
            path = os.path.join(root, name)
            if name.startswith(".") or path in known or not os.path.isdir(path):
                continue
            if not listed:
                locks, listed = _lock_files(root), True
            if (locks is None or os.path.basename(lock_path(path)) in locks) and _being_built(path):
                continue
            if name not in names or listed_as(discovered, path) is None:  # not listed under another name of its root
                found.append(path)
    return found


def _lock_files(root: str) -> set[str] | None:
    """The lock files of ``root``'s lock directory (one listing). A build makes its lock file before its directory
    and keeps it to its end, so a directory listed before this whose name has no lock file here is no build's: it
    need not be asked (asking makes and removes a lock file, on NFS round trips: 10,000 junk directories a member
    left in a group root cost every member's listing 0.4 s of it)."""
    try:
        return set(os.listdir(os.path.join(root, LOCK_DIR)))
    except FileNotFoundError:
        return set()
    except (OSError, ValueError):
        return None  # the lock directory could not be listed: every directory's lock is asked


def leftover(path: str) -> dict[str, str]:
    """A skipped entry for an unlisted directory that is no half-made build: listed with what to do, never hidden."""
    if os.path.islink(path):  # to an env listed where it is, or to anything else: never "rm -r" through it
        return {
            "path": path,
            "reason": f"a symbolic link to {os.path.realpath(path)}, not an environment of its own here: it blocks "
            f"the name {os.path.basename(path)!r}; remove the link (rm {path}) if it is not wanted",
        }
    return {
        "path": path,
        "reason": f"not an environment (no pyvenv.cfg, no conda-meta/): perhaps left by a build that was killed; it "
        f"blocks the name {os.path.basename(path)!r}: delete it (rm -r {path}) if nothing is using it",
    }


def abandoned(path: str) -> dict[str, str]:
    """The skipped entry of a half-made env no build holds any more that could not be removed (its root was made
    read-only, say): discovery's "being created" would say a job is building it."""
    root = os.path.dirname(path)
    why = read_only_mount_words(root, "removed") or f"{root} is not writable for this server's user"
    return {
        "path": path,
        "reason": f"left half-made by a build that ended: no job is building it, but it could not be removed ({why}); "
        "the next listing removes it once it can",
    }


def _being_built(path: str) -> bool:
    """A build holds the lock from before it makes the directory until it is complete (or removed)."""
    try:
        lock = EnvLock.try_acquire(path, create=False)
    except PlantedLink:
        return False
    if lock is None:
        return True
    lock.release()
    return False


def find_deletable(discovered: Discovered, env_id: str) -> Environment | None:
    """A listed env, or a layer whose base was deleted, by id."""
    return discovered.by_id(env_id) or next((e for e in orphaned_layers(discovered) if e.id == env_id), None)


def remove(
    env: Environment,
    discovered: Discovered,
    policy: LayenvPolicy,
    log: logging.Logger,
    running: Callable[[], Sequence[RunningKernel]],
) -> bool:
    """Delete ``env`` after the rules, under its lock; ``False``: it is gone already (another server deleted it).

    ``running``: the kernels running now (see ``inuse``), asked last, right before the env is renamed away: a kernel
    started since the caller's check is refused too. One that starts after the rename finds no env (the
    provisioner says so) instead of running from files being removed.
    """
    uid = os.getuid()
    who = discovered.label(env)
    refusal = policy.path_refusal(env)  # a link or a read-only root is a refusal, not "busy"
    if refusal is not None:
        raise refusal
    try:
        lock = EnvLock.try_acquire(env.path, create=False)
    except PlantedLink as err:
        raise PolicyError(409, str(err), "planted link") from None
    if lock is None:
        raise PolicyError(409, f"another process is working on {who}; try again when it is done", "busy")
    try:
        if not os.path.isdir(env.path):
            return False
        # the listing may predate another server's work on it: the rules again, on what is there now
        policy.check_delete(dataclasses.replace(env, writable=os.access(env.path, os.W_OK)), discovered, uid)
        blocked = _first_unwritable_dir(env.path)
        if blocked is not None:
            raise PolicyError(
                403,
                f"{blocked} inside {who} is not writable for this server's user, so the environment could "
                f"only be deleted in part; its owner can run `chmod -R g+w {env.path}` (or delete it)",
                "read-only",
            )
        try:  # a kernel starting from it has no process yet for ``running`` to find; one started since, has
            starts = kernelstart.block_starts(env.path)
        except kernelstart.EnvLocked:
            raise PolicyError(
                409,
                f"a kernel is starting from {who}: wait until it has started, shut it down, then delete",
                "kernel starting",
            ) from None
        try:
            refusal = kernels_refusal(env, running(), name=who)
            if refusal is not None:
                raise refusal
            # One rename takes the env away whole: no listing, here or on another server, sees it half-deleted,
            # and a crash during the removal leaves only a hidden directory, never a broken env under its name.
            doomed = os.path.join(
                os.path.dirname(env.path), f"{DELETING_PREFIX}{short_name(env.path)}-{uuid.uuid4().hex[:8]}"
            )
            os.rename(env.path, doomed)
        finally:
            if starts is not None:
                starts.release()  # a start that waited finds the env renamed away: deleted
    finally:
        lock.release()
    shutil.rmtree(doomed, ignore_errors=True)
    if os.path.lexists(doomed):
        log.warning("jupyter_layenv: %s was deleted, but %s could not be removed entirely", env.path, doomed)
    remove_synced_kernelspecs(env.path)
    return True


def remove_synced_kernelspecs(env_path: str) -> list[str]:
    """Kernelspecs ``jupyter layenv sync`` wrote for an env (marked), wherever Jupyter looks for kernels."""
    removed = []
    for directory in dict.fromkeys([*jupyter_path("kernels"), os.path.join(sys.prefix, "share", "jupyter", "kernels")]):
        for name in fsread.listdir(directory):
            spec_dir = os.path.join(directory, name)
            text = fsread.read_small_text(os.path.join(spec_dir, "kernel.json"))
            try:
                metadata = (json.loads(text) if text else {}).get("metadata") or {}
            except (ValueError, AttributeError):
                continue
            if metadata.get(SYNC_MARKER) and (metadata.get("layenv") or {}).get("path") == env_path:
                shutil.rmtree(spec_dir, ignore_errors=True)
                removed.append(spec_dir)
    return removed


def _first_unwritable_dir(path: str) -> str | None:
    """A directory under ``path`` whose entries this user could not remove (a delete would stop half-way)."""
    for directory, _dirs, _files in os.walk(path):
        if not os.access(directory, os.W_OK | os.X_OK):
            return directory
    return None
