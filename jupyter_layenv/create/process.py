"""Running a build step's subprocess without blocking the event loop, its output going straight to the job log.

The child gets its own session (process group), so cancelling kills it and everything it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Awaitable, Callable, Sequence

KILL_GRACE_S = 3.0


async def run_logged(
    argv: Sequence[str],
    *,
    log_path: str,
    env: dict[str, str],
    cwd: str,
    on_spawn: Callable[[int], Awaitable[None]],
    umask: int | None = None,
) -> int:
    """Run ``argv`` (never through a shell), appending its output to ``log_path``; returns the exit code."""
    log = await asyncio.to_thread(open, log_path, "ab")
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
            umask=-1 if umask is None else umask,
        )
    finally:
        log.close()
    try:
        await on_spawn(proc.pid)
        return await proc.wait()
    except asyncio.CancelledError:
        await asyncio.shield(_kill_group(proc))
        raise


async def _kill_group(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM the whole group; after a grace period SIGKILL what is left (children the leader started too)."""
    _signal_group(proc.pid, signal.SIGTERM)
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(proc.wait(), KILL_GRACE_S)
    _signal_group(proc.pid, signal.SIGKILL)
    await proc.wait()


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)
