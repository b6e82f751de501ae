"""A Conda env built by py-rattler: what it is made of (:class:`CondaPlan`) and running its build.

No ``conda`` binary: py-rattler (the engine of pixi) solves and installs. It runs in a worker process of our
own (``python -m jupyter_layenv.create.conda_worker``), not on the server's threads, because cancelling must
stop it for good: an abandoned rattler future would keep linking files into a directory being removed. A
killed process group stops at once, and the job machinery of layers (lock, marker, pid, recovery) applies
unchanged. The worker reports rattler's progress (solve, download n/N, link n/N) as lines on its stdout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass

from ..model import BUILDING_MARKER, PROVENANCE
from ..safewrite import replace_file
from .process import kill_group, spawn_guarded

PROGRESS = "@layenv-progress "  # a worker stdout line carrying {"step", "done", "total", "package", "fraction"}
KIND = "conda"
# Where each part's progress starts and ends in the job's 0..1: the solve, then the install (downloads and links
# interleave: the worker reports the fraction of both together).
SOLVE_RANGE, INSTALL_RANGE = (0.02, 0.1), (0.1, 0.9)


@dataclass(frozen=True)
class CondaPlan:
    name: str
    path: str
    specs: tuple[str, ...]  # validated match specs, ipykernel added unless refused
    requested: tuple[str, ...]  # what the caller asked for
    ipykernel: bool
    channels: tuple[str, ...]  # from configuration, never from a request
    platform: str
    pkgs_dir: str | None  # rattler's package cache (None: rattler's default)
    creator: str
    group_gid: int | None = None
    kind: str = KIND
    then: dict | None = None  # an environment.yml's layer, queued on this env once it is built (basefirst)

    @property
    def umask(self) -> int | None:
        return 0o002 if self.group_gid is not None else None

    def to_json(self) -> dict:
        return asdict(self)


def worker_command(plan_file: str, prefix: str) -> list[str]:
    """The worker's argv: our interpreter and module, a plan file the server wrote, the prefix (never a request's
    text: the prefix is there so recovery recognises the orphan by its command line)."""
    return [sys.executable, "-m", "jupyter_layenv.create.conda_worker", plan_file, prefix]


def write_plan(path: str, plan: CondaPlan) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(plan.to_json(), handle)


def read_plan(path: str) -> CondaPlan:
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    for key in ("specs", "requested", "channels"):
        data[key] = tuple(data[key])
    return CondaPlan(**data)


def progress_of(line: str) -> tuple[str, float, str] | None:
    """``(step, job progress, log text)`` of a worker's progress line, ``None`` for any other line."""
    if not line.startswith(PROGRESS):
        return None
    try:
        event = json.loads(line[len(PROGRESS) :])
        step, done, total = str(event["step"]), int(event["done"]), int(event["total"])
    except (ValueError, KeyError, TypeError):
        return None
    part = event.get("fraction")
    if not isinstance(part, (int, float)):
        part = done / total if total else 0.0
    start, end = SOLVE_RANGE if step == "solve" else INSTALL_RANGE
    fraction = start + (end - start) * min(max(float(part), 0.0), 1.0)
    package = f" {event['package']}" if event.get("package") else ""
    return step, fraction, f"{step} {done}/{total}{package}\n"


def needed_of(line: str) -> str | None:
    """What a worker's progress line says the install needs (after the solve), ``None`` when it says nothing."""
    if not line.startswith(PROGRESS):
        return None
    try:
        needed = json.loads(line[len(PROGRESS) :]).get("needed")
    except (ValueError, AttributeError):
        return None
    return needed if isinstance(needed, str) and needed else None


async def run_worker(
    argv: list[str],
    *,
    log_path: str,
    env: dict[str, str],
    cwd: str,
    on_spawn: Callable[[int], Awaitable[None]],
    on_progress: Callable[[str, float], Awaitable[None]],
    umask: int | None,
    keep_fds: tuple[int, ...] = (),
    on_needed: Callable[[str], None] | None = None,
) -> int:
    """Run the worker (no shell, its own session led by the guard that kills it with the server, the env's lock
    in ``keep_fds``), its lines into the log, its progress to ``on_progress``, what it needs to ``on_needed``."""
    proc = await spawn_guarded(argv, stdout=asyncio.subprocess.PIPE, env=env, cwd=cwd, umask=umask, keep_fds=keep_fds)
    try:
        await on_spawn(proc.pid)
        assert proc.stdout is not None
        while raw := await proc.stdout.readline():
            line = raw.decode("utf-8", "replace")
            progress = progress_of(line)
            text = progress[2] if progress else line
            await asyncio.to_thread(_append, log_path, text)
            if progress:
                await on_progress(progress[0], progress[1])
                if on_needed is not None and (needed := needed_of(line)):
                    on_needed(needed)
        return await proc.wait()
    except asyncio.CancelledError:
        await asyncio.shield(kill_group(proc))
        raise


def crashed(code: int) -> bool:
    """Whether the worker died of a crash (SIGSEGV, SIGBUS, SIGABRT; the guard reports a signal as 128 + N)."""
    crashes = (signal.SIGSEGV, signal.SIGBUS, signal.SIGABRT)
    return code in {-int(sig) for sig in crashes} | {128 + int(sig) for sig in crashes}


def _append(path: str, text: str) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(text)


def finish(plan: CondaPlan, job_id: str) -> None:
    """The env is complete: provenance in ``layenv.json`` (it tells a Conda env jupyter_layenv made, which it may
    delete), the prefix where conda lists envs, and the building marker dropped (blocking)."""
    from .builder import share_with_group

    if plan.group_gid is not None:
        share_with_group(plan.path, plan.group_gid)
    tag = os.path.join(plan.path, "CACHEDIR.TAG")  # rattler marks the prefix as a cache dir; conda's envs are not
    with contextlib.suppress(OSError):
        with open(tag, encoding="utf-8") as handle:
            created_by_rattler = "rattler" in handle.read(200)
        if created_by_rattler:
            os.unlink(tag)
    provenance = {
        "kind": KIND,
        "packages": list(plan.requested),
        "installed": list(plan.specs),
        "channels": list(plan.channels),
        "platform": plan.platform,
        "installer": "py-rattler",
        "creator": plan.creator,
        "creator_uid": os.getuid(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "job": job_id,
    }
    replace_file(plan.path, PROVENANCE, json.dumps(provenance, indent=1))
    register_environment(plan.path)
    os.unlink(os.path.join(plan.path, BUILDING_MARKER))


def environments_txt() -> str:
    return os.path.join(os.path.expanduser("~"), ".conda", "environments.txt")


def register_environment(prefix: str) -> None:
    """Add the prefix to ``~/.conda/environments.txt``, as conda does, so conda and nb_conda_kernels list it."""
    path = environments_txt()
    with contextlib.suppress(OSError), open(path, encoding="utf-8") as handle:
        if prefix in (line.strip() for line in handle):
            return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    _append(path, f"{prefix}\n")


def unregister_environment(prefix: str) -> None:
    """Drop a deleted prefix from ``~/.conda/environments.txt`` (rewritten whole, by rename)."""
    path = environments_txt()
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return
    kept = [line for line in lines if line.strip() != prefix]
    if len(kept) == len(lines):
        return
    tmp = f"{path}.{os.getpid()}.{time.monotonic_ns()}.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write("".join(f"{line}\n" for line in kept))
    os.replace(tmp, path)
