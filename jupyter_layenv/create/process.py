"""Running a build step's subprocess without blocking the event loop, its output going straight to the job log.

The child gets its own session (process group), so cancelling kills it and everything it started; its leader
is a small guard (:mod:`.guard`) that kills the group when the server dies, and every process of the step holds
the env's lock descriptor, so the lock is free only once nothing of the step is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import IO

KILL_GRACE_S = 3.0
GUARD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "guard.py")


def error_line(output: str) -> str:
    """The line of a tool's output that says what went wrong (the first starting with "error" or "fatal", else the
    last): what a failure's first line shows, in the panel and the CLI, before the rest under "Show log"."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return next((line for line in lines if line.lower().startswith(("error", "fatal"))), lines[-1] if lines else "")


def guarded(argv: Sequence[str]) -> list[str]:
    """``argv`` led by the guard, which kills the step's whole group when this server dies."""
    return [sys.executable, "-I", GUARD, str(os.getpid()), "--", *argv]


async def spawn_guarded(
    argv: Sequence[str],
    *,
    stdout: IO[bytes] | int,
    env: dict[str, str],
    cwd: str | None,
    umask: int | None,
    keep_fds: tuple[int, ...],
) -> asyncio.subprocess.Process:
    """Start a build step: never through a shell, no stdin, stderr with stdout, in a session of its own led by the
    guard (which kills the whole group when this server dies), ``keep_fds`` (the env's lock) open in all of it."""
    return await asyncio.create_subprocess_exec(
        *guarded(argv),
        pass_fds=keep_fds,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=stdout,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
        cwd=cwd,
        start_new_session=True,
        umask=-1 if umask is None else umask,
    )


async def run_logged(
    argv: Sequence[str],
    *,
    log_path: str,
    env: dict[str, str],
    cwd: str,
    on_spawn: Callable[[int], Awaitable[None]],
    umask: int | None = None,
    keep_fds: tuple[int, ...] = (),
) -> int:
    """Run ``argv`` (never through a shell), appending its output to ``log_path``; returns the exit code.

    ``keep_fds`` stay open in every process of the step (the env's lock)."""
    log = await asyncio.to_thread(open, log_path, "ab")
    try:
        proc = await spawn_guarded(argv, stdout=log, env=env, cwd=cwd, umask=umask, keep_fds=keep_fds)
    finally:
        log.close()
    try:
        await on_spawn(proc.pid)
        return await proc.wait()
    except asyncio.CancelledError:
        await asyncio.shield(kill_group(proc))
        raise


async def kill_group(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM the whole group; after a grace period SIGKILL what is left (children the leader started too)."""
    _signal_group(proc.pid, signal.SIGTERM)
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(proc.wait(), KILL_GRACE_S)
    _signal_group(proc.pid, signal.SIGKILL)
    await proc.wait()


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)
